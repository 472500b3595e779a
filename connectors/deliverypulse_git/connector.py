"""The ``git`` connector: deployments, changes and commits from a local repository, no network.

It re-reads the whole history on every run (a few streamed git calls, seconds for 100k
commits) and skips the work entirely when the tips and options are the same as last time.
Specs: https://git-scm.com/docs/git-log and https://git-scm.com/docs/git-for-each-ref.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from deliverypulse import rules
from deliverypulse.connector import Connector, Page
from deliverypulse.sources import Option, SourceConfig
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime, Stream, StreamRun, TextCursor
from deliverypulse_git.gitlog import Commits, Git, GitError, Ref, Sizes
from deliverypulse_git.graph import Graph, Line, find_changes, first_shipped, tag_deployments

#: Bump when the rows produced for the same history change, so old cursors stop matching.
CURSOR_VERSION = "3"  # 3: changes of every line (maintenance branches); release-version tags
#: Release versions, with or without "v" (``1.2.3``, ``v1.2``, ``2.0.0rc1``), not archive markers.
DEFAULT_DEPLOYMENTS = f"tags:{rules.RELEASE_VERSION}"
_log = logging.getLogger(__name__)
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?[^/:]+:(?!//)(?P<path>.+)$")


@dataclass(frozen=True)
class Settings:
    """A source's options, parsed and compiled once."""

    path: Path
    deploy_kind: str  # "tags" or "branch"
    deploy_value: str  # the tag regex, or the deploy branch's name
    branch: str | None
    environment: str
    is_production: bool  # the environment's name under the source's ``production`` pattern
    bots: re.Pattern[str]  # also matched on author emails, which the rows do not store
    repo: str | None

    @classmethod
    def from_source(cls, source: SourceConfig) -> Settings:
        deployments = source.value("deployments", str)
        kind, _, value = deployments.partition(":")
        kind = kind.strip()
        if kind == "tags":
            value = value or DEFAULT_DEPLOYMENTS.partition(":")[2]
            _compile(source, "deployments", value)
        elif kind != "branch" or not value.strip():
            raise source.error(
                f"expected 'tags:REGEX' or 'branch:NAME', got {deployments!r}", key="deployments"
            )
        environment = source.value("environment", str)
        return cls(
            path=source.path("path"),
            deploy_kind=kind,
            deploy_value=value.strip() if kind == "branch" else value,
            branch=source.optional("branch", str) or None,
            environment=environment,
            is_production=bool(source.production.search(environment)),
            bots=source.bots,
            repo=source.optional("repo", str) or None,
        )


@dataclass(frozen=True)
class Tips:
    """Where the history to read ends: the mainline, the deploy refs, and a cursor over both."""

    mainline: str | None
    base_ref: str | None
    deploy_refs: tuple[Ref, ...]
    cursor: str

    @property
    def revisions(self) -> list[str]:
        shas = [self.mainline] if self.mainline else []
        return list(dict.fromkeys(shas + [ref.commit for ref in self.deploy_refs]))


def _read_table(connector: GitConnector, run: StreamRun) -> Iterator[Page]:
    return connector.read_table(run)


class GitConnector(Connector):
    """Reads a local git repository with the git CLI.

    How git's facts become rows (git lacks some of what GitHub and GitLab record):

    - changes: each pull or merge request merged into any branch the history reaches
      (``Merge pull request #N from o/b``, a merge subject ending ``(#N)``, GitLab's ``See merge
      request g/p!N``, Bitbucket, Azure DevOps, or a plain ``Merge branch`` whose change_id is
      then its sha) and each commit on a line whose subject ends ``(#N)``. Lines are the
      mainline, the deployment tags' own history, and maintenance branches merged forward
      (their forward merge is no change; see :func:`deliverypulse_git.graph.find_changes`).
      created_at = first_commit_at = the earliest author date among the commits the merge brings
      in, because git keeps no pull-request creation time; merged_at = the committer date.
      Sizes are the merge's diff against its first parent. Review fields stay empty.
    - changes record facts and the core classifies them (``deliverypulse.rules``): title,
      head_ref, author, and as ``body`` the kept message lines of the change's commits (a
      ``This reverts commit X`` line naming one of its own commits is dropped: that undoes
      work inside the change, not another change). Where X belongs to a change, the connector
      resolves it through the graph and sets ``reverts`` to that change; otherwise the core's
      rule names what is reverted. The author's email, which no row stores, is matched
      against ``bots`` here (``author_is_bot``); the name is matched by the core.
    - Commits on a line that are neither are left without change_id: trunk-based changes.
      A ``git pull`` merge on the mainline (``Merge branch 'main' of ...``) is no change: the
      shared history on its second parent is walked as mainline instead.
    - deployments: a tag's creation time (tagger date; a lightweight tag's commit date) or a
      deploy-branch merge's committer date is both created_at and finished_at. git has no
      rollback marker, so ``is_rollback`` stays null: the metrics decide rollbacks from the
      sequence of deployments, the same way for every source.
    - commits.additions/deletions are known for mainline commits only (first-parent diffs).
    """

    type_name: ClassVar[str] = "git"
    streams = (
        Stream(
            "deployments",
            _read_table,
            cursor=TextCursor,
            reads="release-version tags (git for-each-ref) or merges onto a deploy branch",
        ),
        Stream(
            "changes",
            _read_table,
            cursor=TextCursor,
            reads="pull/merge request merges and '(#N)' commits on every line (git log)",
        ),
        Stream(
            "commits",
            _read_table,
            cursor=TextCursor,
            reads="every commit reachable from the mainline and the deploy refs (git log)",
        ),
    )
    options: ClassVar[dict[str, Option]] = {
        "path": Option(str, ".", required=True, help="the repository's folder"),
        "deployments": Option(
            str, DEFAULT_DEPLOYMENTS, help="'tags:REGEX' (tag names) or 'branch:NAME' (its merges)"
        ),
        "branch": Option(str, help="the mainline whose merges are changes; default: HEAD's branch"),
        "environment": Option(str, "production", help="environment the deployments go to"),
        "repo": Option(str, help="repo name to record; default: origin's owner/name or folder"),
    }
    #: Rows per page; only the last page of a stream carries the cursor.
    page_size: int = 50_000

    def __init__(self, source: SourceConfig, runtime: Runtime = DEFAULT_RUNTIME) -> None:
        super().__init__(source, runtime)
        self.settings = Settings.from_source(source)
        self.git = Git(self.settings.path)
        self._tips: Tips | None = None
        self._tables: dict[str, pd.DataFrame] | None = None

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
        """Fail at config time, in one line, on a missing path, a non-repo or a bad option."""
        settings = Settings.from_source(source)
        if not settings.path.exists():
            raise source.error(f"{settings.path} does not exist", key="path")
        git = Git(settings.path)
        if git.executable is None:
            raise source.error("the git command is not installed (or not on PATH); install git")
        try:
            git.output(["rev-parse", "--git-dir"])
        except GitError as error:
            reason = str(error).split(": ", 1)[-1]
            if "not a git repository" in reason or not settings.path.is_dir():
                raise source.error(f"{settings.path} is not a git repository", key="path") from None
            raise source.error(reason, key="path") from None
        try:
            refs = git.refs("refs/heads", "refs/remotes")
        except GitError as error:
            raise source.error(str(error), key="path") from None
        for key, name in (("branch", settings.branch), ("deployments", _deploy_branch(settings))):
            if name and _resolve_branch(refs, name) is None:
                raise source.error(f"no branch {name!r} in {settings.path}", key=key)
        deploy_branch = _deploy_branch(settings)
        if deploy_branch and not settings.branch:
            head = (git.output(["symbolic-ref", "-q", "HEAD"], allowed_exit=1) or "").strip()
            if head == f"refs/heads/{deploy_branch}":
                raise source.error(
                    f"HEAD is on the deploy branch {deploy_branch!r}, so it cannot be the "
                    'mainline too; name the mainline, e.g. branch = "main"',
                    key="branch",
                )

    def repos(self) -> Iterable[str]:
        if self.settings.repo:
            return [self.settings.repo]
        url = self.git.output(["config", "--get", "remote.origin.url"], allowed_exit=1)
        name = repo_from_remote(url.strip()) if url else None
        return [name or self._folder_name()]

    def read_table(self, run: StreamRun) -> Iterator[Page]:
        """One stream's rows, unless the tips and options are what the cursor saw last time.

        The three streams come from one pass over the history (:meth:`tables`), made once per
        run and only for the streams the source collects.
        """
        tips = self.tips()
        if run.cursor.value == tips.cursor:
            return
        frame = self.tables()[run.stream.name].copy()
        frame.insert(0, "repo", run.repo)
        frame.insert(0, "source", self.source.name)
        yield from _pages(frame, TextCursor(tips.cursor), self.page_size)

    def close(self) -> None:
        self._tips = None
        self._tables = None

    def tips(self) -> Tips:
        """The mainline and deploy refs now, from two cheap git calls (cached for the run)."""
        if self._tips is None:
            self._tips = self._read_tips()
        return self._tips

    def tables(self) -> dict[str, pd.DataFrame]:
        """All three streams' rows, built once per run from one pass over the history."""
        if self._tables is None:
            self._tables = self._build_tables()
        return self._tables

    def _read_tips(self) -> Tips:
        settings = self.settings
        if (self.git.output(["rev-parse", "--is-shallow-repository"]) or "").strip() == "true":
            _log.warning(
                "%s is a shallow clone: changes at its edge miss their first commits; "
                "fetch the full history (git fetch --unshallow) for true lead times",
                settings.path,
            )
        refs = self.git.refs("refs/heads", "refs/remotes", "refs/tags")
        if settings.branch:
            mainline = _resolve_branch(refs, settings.branch)
            if mainline is None:
                raise GitError(f"no branch {settings.branch!r} in {settings.path}")
            base_ref: str | None = settings.branch
        else:
            head = self.git.output(["symbolic-ref", "-q", "HEAD"], allowed_exit=1)
            if head:
                head = head.strip()
                mainline = next((ref.commit for ref in refs if ref.name == head), None)
                base_ref = head.removeprefix("refs/heads/")
            else:  # detached HEAD
                sha = self.git.output(
                    ["rev-parse", "-q", "--verify", "HEAD^{commit}"], allowed_exit=1
                )
                mainline, base_ref = (sha.strip() if sha else None), None
        if settings.deploy_kind == "tags":
            deploy_refs = tuple(tag_deployments(refs, re.compile(settings.deploy_value)))
            if not deploy_refs:
                _warn_no_tag_matched(settings, refs)
        else:
            deploy_tip = _resolve_branch(refs, settings.deploy_value)
            if deploy_tip is None:
                raise GitError(f"no deploy branch {settings.deploy_value!r} in {settings.path}")
            deploy_refs = (Ref(settings.deploy_value, deploy_tip, 0, None),)
        fingerprint = "\n".join(
            [
                CURSOR_VERSION,
                mainline or "",
                base_ref or "",
                *(f"{ref.name} {ref.commit} {ref.created}" for ref in deploy_refs),
                repr(sorted((key, str(value)) for key, value in self.source.options.items())),
            ]
        )
        cursor = hashlib.sha256(fingerprint.encode()).hexdigest()[:24]
        return Tips(mainline, base_ref, deploy_refs, cursor)

    def _build_tables(self) -> dict[str, pd.DataFrame]:
        tips = self.tips()
        wanted = set(self.source.streams or self.streams)
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Sizes need a second git call; it runs while the first one is being parsed.
            sizes_job = None
            if tips.revisions and wanted & {"changes", "commits"}:
                sizes_job = pool.submit(self.git.first_parent_sizes, tips.revisions)
            commits = self.git.log(tips.revisions)
            sizes: dict[str, Sizes] = sizes_job.result() if sizes_job else {}
        graph = Graph(commits)
        deployments = self._deployments(graph, tips)
        shipped = first_shipped(graph, [row["sha"] for row in deployments])
        lines = [Line(tips.mainline, tips.base_ref)]
        if self.settings.deploy_kind == "tags":  # a deploy branch's merges are deployments
            lines += [Line(ref.commit, None) for ref in tips.deploy_refs]
        changes, change_of = find_changes(graph, lines, sizes, self.settings.bots, shipped)
        if wanted & {"changes", "commits"}:
            self._add_sizes(commits, changes, change_of, sizes)
        since = self.source.since
        cutoff = int(since.timestamp()) if since else None
        return {
            "commits": _commits_frame(commits, change_of, sizes, cutoff),
            "changes": _changes_frame(changes, cutoff),
            "deployments": self._deployments_frame(deployments, cutoff),
        }

    def _add_sizes(
        self,
        commits: Commits,
        changes: list[dict[str, Any]],
        change_of: list[str | None],
        sizes: dict[str, Sizes],
    ) -> None:
        """Sizes of the changes and own commits of lines merged in from the side (a maintenance
        branch merged forward), which no first-parent walk of a tip visits: one more git call."""
        merges = {change["merge_sha"] for change in changes}
        missing = [
            sha
            for sha, change_id in zip(commits.shas, change_of, strict=True)
            if (change_id is None or sha in merges) and sha not in sizes
        ]
        if not missing:
            return
        sizes.update(self.git.first_parent_sizes(missing, walk=False))
        for change in changes:
            size = sizes.get(change["merge_sha"])
            if size is not None and change["additions"] is None:
                change["additions"] = size.additions
                change["deletions"] = size.deletions
                change["changed_files"] = size.changed_files

    def _deployments(self, graph: Graph, tips: Tips) -> list[dict[str, Any]]:
        """The deployments' rows, in time order (ties by id, as the core orders them)."""
        commits = graph.commits
        rows: list[dict[str, Any]] = []
        if self.settings.deploy_kind == "tags":
            for tag in tips.deploy_refs:
                rows.append(_deployment(tag.name, tag.commit, tag.name, tag.created, tag.creator))
        else:
            branch = tips.deploy_refs[0]
            for position in graph.first_parent_chain(branch.commit):
                if len(commits.parents[position]) > 1:
                    sha = commits.shas[position]
                    rows.append(
                        _deployment(
                            sha,
                            sha,
                            branch.name,
                            commits.committed[position],
                            commits.author_names[position],
                        )
                    )
        return sorted(rows, key=lambda row: (row["created_at"], row["deployment_id"]))

    def _deployments_frame(self, rows: list[dict[str, Any]], cutoff: int | None) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=_DEPLOYMENT_COLUMNS)
        if cutoff is not None:
            frame = frame[frame["created_at"] >= cutoff]
        frame["environment"] = self.settings.environment
        frame["is_production"] = self.settings.is_production
        frame["status"] = "success"
        for column in ("created_at", "finished_at"):
            frame[column] = _utc(frame[column])
        return frame.reset_index(drop=True)

    def _folder_name(self) -> str:
        git_dir = Path((self.git.output(["rev-parse", "--absolute-git-dir"]) or "").strip())
        folder = git_dir.parent if git_dir.name == ".git" else git_dir
        return folder.name.removesuffix(".git") or self.settings.path.name


_DEPLOYMENT_COLUMNS = ["deployment_id", "sha", "ref", "created_at", "finished_at", "creator"]


def _deployment(
    deployment_id: str, sha: str, ref: str, created: int, creator: str | None
) -> dict[str, Any]:
    # A tag or a merge is the moment of deployment: git knows no separate start and finish.
    return {
        "deployment_id": deployment_id,
        "sha": sha,
        "ref": ref,
        "created_at": created,
        "finished_at": created,
        "creator": creator,
    }


def _commits_frame(
    commits: Commits, change_of: list[str | None], sizes: dict[str, Sizes], cutoff: int | None
) -> pd.DataFrame:
    size_of = [sizes.get(sha) for sha in commits.shas]
    frame = pd.DataFrame(
        {
            "sha": commits.shas,
            "parents": commits.parents,
            "authored_at": commits.authored,
            "committed_at": commits.committed,
            "author": commits.author_names,
            "change_id": change_of,
            "subject": commits.subjects,
            "additions": pd.array([s.additions if s else None for s in size_of], dtype="Int64"),
            "deletions": pd.array([s.deletions if s else None for s in size_of], dtype="Int64"),
        }
    )
    if cutoff is not None:
        frame = frame[frame["committed_at"] >= cutoff].reset_index(drop=True)
    for column in ("authored_at", "committed_at"):
        frame[column] = _utc(frame[column])
    return frame


def _changes_frame(changes: list[dict[str, Any]], cutoff: int | None) -> pd.DataFrame:
    frame = pd.DataFrame(changes, columns=_CHANGE_COLUMNS)
    if cutoff is not None:
        frame = frame[frame["merged_at"] >= cutoff].reset_index(drop=True)
    for column in ("created_at", "first_commit_at", "merged_at", "closed_at"):
        frame[column] = _utc(frame[column])
    for column in ("number", "additions", "deletions", "changed_files", "commit_count"):
        frame[column] = frame[column].astype("Int64")
    return frame


# Facts only: the core fills is_revert/reverts (where not resolved here), is_hotfix and is_bot.
_CHANGE_COLUMNS = [
    "change_id", "number", "title", "body", "author", "author_is_bot", "base_ref", "head_ref",
    "state", "created_at", "first_commit_at", "merged_at", "closed_at", "merge_sha",
    "additions", "deletions", "changed_files", "commit_count", "is_revert", "reverts",
]  # fmt: skip


def _utc(epochs: pd.Series) -> pd.Series:
    seconds = np.asarray(epochs, dtype="int64")
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True), index=epochs.index)


def _pages(frame: pd.DataFrame, cursor: TextCursor, size: int) -> Iterator[Page]:
    """Chunks of ``size`` rows; an empty stream still yields one page so its cursor is kept."""
    starts = range(0, max(len(frame), 1), size)
    for start in starts:
        last = start == starts[-1]
        chunk = frame.iloc[start : start + size].reset_index(drop=True)
        yield Page(records=chunk, cursor=cursor if last else None)


def _warn_no_tag_matched(settings: Settings, refs: Sequence[Ref]) -> None:
    """Say so when the tag pattern matched none of the repository's tags, naming a few."""
    tags = sorted(
        (ref for ref in refs if ref.name.startswith("refs/tags/")),
        key=lambda ref: ref.created,
        reverse=True,
    )
    if not tags:
        return
    names = [ref.name.removeprefix("refs/tags/") for ref in tags[:5]]
    more = f" and {len(tags) - len(names)} more" if len(tags) > len(names) else ""
    default = settings.deploy_value == DEFAULT_DEPLOYMENTS.partition(":")[2]
    pattern = "the default (release versions: 1.2.3, v1.2, 2.0.0rc1)" if default else None
    _log.warning(
        "%s: the deployments pattern %s matched none of its %d tags (newest: %s%s), so no "
        'deployments were found; set deployments = "tags:REGEX" (or --deployments)',
        settings.path,
        pattern or repr(settings.deploy_value),
        len(tags),
        ", ".join(names),
        more,
    )


def _compile(source: SourceConfig, key: str, pattern: str) -> re.Pattern[str]:
    """The tag pattern inside ``deployments = "tags:REGEX"`` (the one regex the core cannot
    compile for us: it is part of a larger value)."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise source.error(f"not a valid regular expression: {error}", key=key) from None


def _deploy_branch(settings: Settings) -> str | None:
    return settings.deploy_value if settings.deploy_kind == "branch" else None


def _resolve_branch(refs: Sequence[Ref], name: str) -> str | None:
    """A branch's commit: the local branch, else origin's, else any remote's, else a full ref."""
    by_name = {ref.name: ref.commit for ref in refs}
    for candidate in (f"refs/heads/{name}", f"refs/remotes/origin/{name}", name):
        if candidate in by_name:
            return by_name[candidate]
    remote_branches = (ref for ref in refs if ref.name.startswith("refs/remotes/"))
    return next(
        (ref.commit for ref in remote_branches if ref.name.split("/", 3)[3:] == [name]), None
    )


def repo_from_remote(url: str) -> str | None:
    """``owner/name`` (or a GitLab ``group/sub/name``) from an https or ssh remote URL.

    Only the path is kept, so credentials embedded in the URL never reach the dataset. Local
    paths and ``file://`` remotes give None (the caller uses the folder name).
    """
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ssh", "git", "git+ssh", "ssh+git"):
            return None
        path = parts.path
    elif match := _SCP_LIKE.match(url):
        path = match["path"]
    else:
        return None
    path = path.strip("/").removesuffix(".git").strip("/")
    return path if "/" in path else None
