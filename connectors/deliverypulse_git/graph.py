"""Turns a commit graph into changes and deployments, in one pass over the commits.

A change is a merge on a line (its commits: those it brings in that nothing claimed yet) or a
squash commit whose subject ends ``(#N)``. Lines are the mainline, the deployment tags' own
history, and maintenance branches where they are merged forward. Merge subjects follow
GitHub (https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/incorporating-changes-from-a-pull-request/about-pull-request-merges),
GitLab (https://docs.gitlab.com/ee/user/project/merge_requests/commit_templates.html) and
``git merge`` (https://git-scm.com/docs/git-merge) defaults.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from deliverypulse import rules
from deliverypulse_git.gitlog import Commits, Ref, Sizes

_GITHUB_MERGE = re.compile(r"^Merge pull request #(\d+) from [^/\s]+/(\S+)")
_GITLAB_REQUEST = re.compile(r"^See merge request \S+!(\d+)\s*$", re.MULTILINE)
_BRANCH_MERGE = re.compile(r"^Merge (?:remote-tracking )?branch '([^']+)'")
_BITBUCKET_MERGE = re.compile(r"^Merged in (\S+) \(pull request #(\d+)\)")
_AZURE_MERGE = re.compile(r"^Merged PR (\d+): (.+)")
_SQUASH_NUMBER = re.compile(r"\s*\(#(\d+)\)\s*$")


@dataclass
class Graph:
    """The commits with parent indexes, so walks are list lookups instead of hash lookups."""

    commits: Commits
    index: dict[str, int] = field(init=False)
    parent_indexes: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {sha: position for position, sha in enumerate(self.commits.shas)}
        index = self.index
        self.parent_indexes = [
            [index[parent] for parent in parents if parent in index]
            for parents in self.commits.parents
        ]

    def first_parent_chain(self, tip: str | None) -> list[int]:
        """The first-parent history of ``tip``, oldest first (stops where the graph is cut)."""
        chain: list[int] = []
        position = self.index.get(tip) if tip else None
        parents = self.commits.parents
        while position is not None:
            chain.append(position)
            first = parents[position][0] if parents[position] else None
            position = self.index.get(first) if first else None
        chain.reverse()
        return chain


#: ``first_shipped`` of a commit no deployment reaches.
NEVER = sys.maxsize


def first_shipped(graph: Graph, deployed: Sequence[str]) -> list[int]:
    """Per commit, the index in ``deployed`` (deployment shas in time order) of the first
    deployment whose commit reaches it, or :data:`NEVER`. One walk: each commit is visited
    once, by the earliest deployment that reaches it."""
    shipped = [NEVER] * len(graph.commits)
    parent_indexes = graph.parent_indexes
    for rank, sha in enumerate(deployed):
        start = graph.index.get(sha)
        if start is None or shipped[start] != NEVER:
            continue
        stack = [start]
        while stack:
            position = stack.pop()
            if shipped[position] != NEVER:
                continue
            shipped[position] = rank
            stack.extend(parent_indexes[position])
    return shipped


@dataclass(frozen=True)
class Line:
    """A branch whose own commits are walked oldest first: the mainline, a deploy ref."""

    tip: str | None
    name: str | None  # its branch name, when known (the changes' base_ref)


def find_changes(
    graph: Graph,
    lines: Sequence[Line],
    sizes: dict[str, Sizes],
    bots: re.Pattern[str],
    shipped: list[int],
) -> tuple[list[dict[str, Any]], list[str | None]]:
    """The changes of every line (as fact rows) and, per commit, the change_id it belongs to.

    ``lines`` are walked in order (the mainline first, then the deploy refs); a line's name is
    its changes' ``base_ref`` and tells a ``git pull`` merge. ``bots`` is matched against the
    author's email, a fact the rows do not carry. ``shipped`` is :func:`first_shipped`.

    Each line's first-parent chain is walked oldest first; a merge claims the commits reachable
    from its other parents that nothing claimed before, so every commit is claimed once. A merge
    whose claimed side holds a pull request of its own, or a commit a deployment shipped before
    the merge itself, brings in another line (a maintenance branch merged forward): it is no
    change, and the side's first-parent chain is walked as a line of its own instead.
    """
    commits = graph.commits
    change_of: list[str | None] = [None] * len(commits)
    claimed = bytearray(len(commits))
    used_ids: set[str] = set()
    changes: list[dict[str, Any]] = []
    members_of: list[list[int]] = []
    for line in lines:
        for position, members, base_ref in _walk_line(graph, line, claimed, shipped):
            is_merge = len(commits.parents[position]) > 1
            described = (
                _describe_merge(commits, position)
                if is_merge
                else _describe_squash(commits, position)
            )
            if described is None:
                continue
            number, head_ref, title = described
            change_id = str(number) if number is not None else commits.shas[position]
            if change_id in used_ids:  # the same number twice (a cherry-pick): keep both, apart
                change_id = commits.shas[position]
            used_ids.add(change_id)
            for member in (*members, position):
                change_of[member] = change_id
            size = sizes.get(commits.shas[position])
            facts = _Described(change_id, number, head_ref, title, base_ref)
            changes.append(_change(commits, position, members, facts, size, bots))
            members_of.append(members)
    for change, members in zip(changes, members_of, strict=True):
        _revert_facts(change, [*members, graph.index[change["merge_sha"]]], graph, change_of)
    return changes, change_of


def _walk_line(
    graph: Graph, line: Line, claimed: bytearray, shipped: list[int]
) -> Iterator[tuple[int, list[int], str | None]]:
    """The commits of a line that may be changes, oldest first, as (position, the side a merge
    brings in, the line's name); lines merged into it are walked where they were merged.

    A sync merge (``git pull`` making ``Merge branch 'main' of ...``, or a fast-forwarded branch
    whose last commit merged main in) has the line itself as its second parent: that parent's
    first-parent chain is walked first, as this line, and the sync merge is no change.
    """
    commits = graph.commits
    start = graph.index.get(line.tip) if line.tip else None
    if start is None or claimed[start]:
        return
    stack: list[tuple[Iterator[int], str | None]] = [
        (iter(_chain(graph, [start], claimed)), line.name)
    ]
    while stack:
        walking, name = stack[-1]
        position = next(walking, None)
        if position is None:
            stack.pop()
            continue
        others = _other_parents(graph, position)
        if not others:
            yield position, [], name
            continue
        sync = _sync_subject(name)
        if sync and sync.match(commits.subjects[position]):
            upstream = _chain(graph, others[:1], claimed)
            stack.append((iter(upstream), name))  # the sync merge itself is no change
            continue
        members = _claim(graph, others, claimed)
        if _brings_a_line(graph, position, members, shipped):
            for member in members:
                claimed[member] = 0
            side = _chain(graph, others, claimed)
            stack.append((iter(side), _merged_branch(commits.subjects[position])))
            continue
        yield position, members, name


def _chain(graph: Graph, starts: list[int], claimed: bytearray) -> list[int]:
    """The unclaimed first-parent chains from ``starts`` (claimed now), oldest first."""
    chain: list[int] = []
    for start in reversed(starts):
        own: list[int] = []
        position: int | None = start
        while position is not None and not claimed[position]:
            claimed[position] = 1
            own.append(position)
            first = graph.commits.parents[position][0] if graph.commits.parents[position] else None
            position = graph.index.get(first) if first else None
        chain.extend(reversed(own))
    return chain


def _brings_a_line(graph: Graph, position: int, members: list[int], shipped: list[int]) -> bool:
    """Whether a merge brings in a line of its own: a member is a pull request, or a deployment
    shipped a member before the merge (so the members cannot all ship with it)."""
    commits = graph.commits
    own = shipped[position]
    return any(shipped[member] != own or _is_request(commits, member) for member in members)


def _is_request(commits: Commits, position: int) -> bool:
    """A commit that records a pull or merge request: a request's merge or a ``(#N)`` squash."""
    subject = commits.subjects[position]
    if _SQUASH_NUMBER.search(subject):
        return True
    if len(commits.parents[position]) < 2:
        return False
    return bool(
        _GITHUB_MERGE.match(subject)
        or _BITBUCKET_MERGE.match(subject)
        or _AZURE_MERGE.match(subject)
        or _GITLAB_REQUEST.search(commits.bodies[position])
    )


def _merged_branch(subject: str) -> str | None:
    """The branch a merge's subject names as merged (``origin/`` and owners left out)."""
    for pattern in (_GITHUB_MERGE, _BRANCH_MERGE, _BITBUCKET_MERGE):
        if match := pattern.match(subject):
            name = match[2] if pattern is _GITHUB_MERGE else match[1]
            if pattern is _BRANCH_MERGE and subject.startswith("Merge remote-tracking"):
                name = name.split("/", 1)[-1]
            return name
    return None


def _sync_subject(base_ref: str | None) -> re.Pattern[str] | None:
    if not base_ref:
        return None
    name = re.escape(base_ref)
    return re.compile(rf"^Merge (?:branch '{name}'|remote-tracking branch '[^'/]+/{name}')(?: |$)")


def _other_parents(graph: Graph, position: int) -> list[int]:
    index = graph.index
    return [index[parent] for parent in graph.commits.parents[position][1:] if parent in index]


def _describe_merge(commits: Commits, position: int) -> tuple[int | None, str | None, str]:
    subject, body = commits.subjects[position], commits.bodies[position]
    body_title = next((line.strip() for line in body.splitlines() if line.strip()), "")
    if body_title.startswith("See merge request"):
        body_title = ""
    if match := _GITHUB_MERGE.match(subject):
        return int(match[1]), match[2], body_title or subject
    if match := _BRANCH_MERGE.match(subject):
        request = _GITLAB_REQUEST.search(body)
        number = int(request[1]) if request else None
        return number, match[1], (body_title if request and body_title else subject)
    if match := _BITBUCKET_MERGE.match(subject):
        return int(match[2]), match[1], body_title or subject
    if match := _AZURE_MERGE.match(subject):
        return int(match[1]), None, match[2]
    if request := _GITLAB_REQUEST.search(body):
        return int(request[1]), None, subject
    if squash := _SQUASH_NUMBER.search(subject):  # GitHub's "pull request title" merge message
        return int(squash[1]), None, subject[: squash.start()]
    return None, None, subject


def _describe_squash(commits: Commits, position: int) -> tuple[int, None, str] | None:
    subject = commits.subjects[position]
    match = _SQUASH_NUMBER.search(subject)
    if match is None:
        return None
    return int(match[1]), None, subject[: match.start()]


def _claim(graph: Graph, starts: list[int], claimed: bytearray) -> list[int]:
    members: list[int] = []
    stack = list(starts)
    parent_indexes = graph.parent_indexes
    while stack:
        position = stack.pop()
        if claimed[position]:
            continue
        claimed[position] = 1
        members.append(position)
        stack.extend(parent_indexes[position])
    return members


@dataclass(frozen=True)
class _Described:
    """What a merge or squash commit's message and the mainline say about its change."""

    change_id: str
    number: int | None
    head_ref: str | None
    title: str
    base_ref: str | None


def _change(
    commits: Commits,
    position: int,
    members: list[int],
    described: _Described,
    size: Sizes | None,
    bots: re.Pattern[str],
) -> dict[str, Any]:
    """A change's fact row (``body`` is filled by :func:`_revert_facts`)."""
    authored, committed, shas = commits.authored, commits.committed, commits.shas
    # Ties in author time go to the latest committed, then by sha: never by where a commit
    # sits in the list, which differs between a full read and one continued from the cache.
    first = (
        min(members, key=lambda m: (authored[m], -committed[m], shas[m])) if members else position
    )
    merged_at = commits.committed[position]
    return {
        "change_id": described.change_id,
        "number": described.number,
        "title": described.title,
        "body": None,
        "author": commits.author_names[first],
        # The email is no column: matched here, with the source's one bot rule.
        "author_is_bot": rules.is_bot(bots, commits.author_emails[first]),
        "base_ref": described.base_ref,
        "head_ref": described.head_ref,
        "state": "merged",
        # git has no pull-request creation time; the first commit is the closest it knows.
        "created_at": authored[first],
        "first_commit_at": authored[first],
        "merged_at": merged_at,
        "closed_at": merged_at,
        "merge_sha": commits.shas[position],
        "additions": size.additions if size else None,
        "deletions": size.deletions if size else None,
        "changed_files": size.changed_files if size else None,
        "commit_count": len(members) if members else 1,
        "is_revert": None,  # the core decides, unless the graph resolves what it reverts
        "reverts": None,
    }


def _revert_facts(
    change: dict[str, Any], positions: list[int], graph: Graph, change_of: list[str | None]
) -> None:
    """Give a change its ``body`` fact: the kept message lines of its commits.

    A ``This reverts commit X`` line naming one of the change's own commits is dropped (it
    undoes work inside the change, not another change). Where the first other X belongs to a
    change, the graph says which: ``reverts`` is that change. Everything else (a ``Revert "..."``
    title, a number in it, an unresolved sha) is the core's rule (``deliverypulse.rules``).
    """
    commits = graph.commits
    own = {commits.shas[position] for position in positions}
    lines: list[str] = []
    reverted: list[str] = []
    for position in positions:
        for line in commits.bodies[position].splitlines():
            reference = rules.reverted_reference(None, line)
            if reference is not None and reference in own:
                continue
            lines.append(line)
            if reference is not None and not reference.isdigit():
                reverted.append(reference)
    change["body"] = "\n".join(line for line in lines if line.strip()) or None
    if not reverted:
        return
    target_position = graph.index.get(reverted[0])
    target = change_of[target_position] if target_position is not None else None
    if target is not None and target != change["change_id"]:
        change["reverts"] = target
        change["is_revert"] = True


def tag_deployments(refs: list[Ref], pattern: re.Pattern[str]) -> list[Ref]:
    """Tags whose short name matches ``pattern``, oldest first (ties by name)."""
    tags = [
        Ref(ref.name.removeprefix("refs/tags/"), ref.commit, ref.created, ref.creator)
        for ref in refs
        if ref.name.startswith("refs/tags/")
    ]
    chosen = [tag for tag in tags if pattern.search(tag.name)]
    return sorted(chosen, key=lambda tag: (tag.created, tag.name))


def first_parent_closure(graph: Graph, tips: Sequence[str]) -> bytearray:
    """Per commit, 1 if it is on the first-parent history of one of ``tips``: the commits
    ``git log --first-parent TIPS`` lists."""
    on_line = bytearray(len(graph.commits))
    parents, index = graph.commits.parents, graph.index
    for tip in tips:
        position = index.get(tip)
        while position is not None and not on_line[position]:
            on_line[position] = 1
            first = parents[position][0] if parents[position] else None
            position = index.get(first) if first else None
    return on_line
