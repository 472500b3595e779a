"""The ``git`` connector: deployments, changes and commits from a local repository, no network.

A first run reads the whole history (a few streamed git calls, seconds for 100k commits). Each
stream's cursor holds the tips it stored (mainline, deploy refs) and the commits read are
cached in the repository's git folder (:mod:`deliverypulse_git.history`), so a rerun asks git
only for commits it has not read (``git log NEW --not OLD``), derives every row again in
memory, and yields the rows that differ from what the cursor's tips gave: exactly what a full
run would store. Nothing new (same tips, same options): nothing is read at all.
Specs: https://git-scm.com/docs/git-log and https://git-scm.com/docs/git-for-each-ref.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from deliverypulse import rules
from deliverypulse.connector import Connector, Page
from deliverypulse.sources import Option, SourceConfig
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime, Stream, StreamRun, TextCursor
from deliverypulse_git import history as cache
from deliverypulse_git.gitlog import Commits, Git, GitError, Layout, Ref
from deliverypulse_git.graph import (
    Graph,
    Line,
    find_changes,
    first_parent_closure,
    first_shipped,
    tag_deployments,
)
from deliverypulse_git.history import History
from deliverypulse_git.rows import Table

#: Bump when the rows produced for the same history change, so old cursors stop matching.
CURSOR_VERSION = "4"  # 4: tips in the cursor (incremental runs); first-commit ties by time, sha
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
    """Where the history to read ends (the mainline, the deploy refs) and the options it is
    read with. Each stream's cursor holds them: the next run derives what it stored from them.
    """

    mainline: str | None
    base_ref: str | None
    deploy_refs: tuple[Ref, ...]
    options: str  # a digest of the source's options: other options give other rows
    facts: str  # a digest of what shapes commit facts (the mailmap...): see _fingerprint
    #: A digest of all of the above and CURSOR_VERSION: equal digests, equal rows.
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        lines = [
            CURSOR_VERSION,
            self.mainline or "",
            self.base_ref or "",
            *(f"{r.name} {r.commit} {r.created} {r.creator or ''}" for r in self.deploy_refs),
            self.options,
            self.facts,
        ]
        object.__setattr__(self, "digest", _digest("\n".join(lines)))

    @property
    def revisions(self) -> list[str]:
        shas = [self.mainline] if self.mainline else []
        return list(dict.fromkeys(shas + [ref.commit for ref in self.deploy_refs]))

    def dump(self) -> str:
        """The cursor text: the digest first (``deliverypulse status`` shows the start), then
        the tips themselves, compressed (a repository may have thousands of tags)."""
        tips = {
            "mainline": self.mainline,
            "base_ref": self.base_ref,
            "deploy": [[r.name, r.commit, r.created, r.creator] for r in self.deploy_refs],
        }
        packed = zlib.compress(json.dumps(tips, separators=(",", ":")).encode(), 9)
        return json.dumps(
            {
                "digest": self.digest,
                "options": self.options,
                "facts": self.facts,
                "tips": base64.b64encode(packed).decode("ascii"),
            },
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, text: str | None) -> Tips | None:
        """The tips a cursor holds; None for no cursor (a first run, a full refresh), a cursor
        an older version wrote, or a damaged one (then the run stores every row again)."""
        if not text or not text.startswith("{"):
            return None
        try:
            outer = json.loads(text)
            inner = json.loads(zlib.decompress(base64.b64decode(outer["tips"], validate=True)))
            refs = tuple(
                Ref(str(name), str(commit), int(created), None if who is None else str(who))
                for name, commit, created, who in inner["deploy"]
            )
            tips = cls(
                _text(inner["mainline"]),
                _text(inner["base_ref"]),
                refs,
                str(outer["options"]),
                str(outer["facts"]),
            )
        except (ValueError, TypeError, KeyError, zlib.error):
            return None
        return tips if tips.digest == outer.get("digest") else None


@dataclass
class ReadStats:
    """What one run took from git and from the cache (logged; benchmarks and tests read it)."""

    cached: int = 0  # commits found in the cache
    read: int = 0  # commits git listed as new
    sized: int = 0  # commits whose sizes git computed (``--numstat``)


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
        self._layout: Layout | None = None
        self._replace_refs: list[Ref] = []
        self._history: History | None = None
        self._tables: dict[str, Table] | None = None
        self._baselines: dict[str, dict[str, Table] | None] = {}
        self._dirty = False  # the cache lacks something this run read
        self.stats = ReadStats()

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
        """One stream's rows that are new or changed since the tips its cursor holds.

        Nothing when the tips and options are what the cursor saw. Otherwise every row is
        derived again in memory for the tips now (:meth:`tables`, once per run) and for the
        cursor's tips (:meth:`_baseline`, over the same cached commits), and only the rows that
        differ are yielded. Without a usable cursor (a first run, a full refresh, other
        options), every row is.
        """
        tips = self.tips()
        previous = Tips.load(run.cursor.value)
        if previous is not None and previous.digest == tips.digest:
            return
        name = run.stream.name
        table = self.tables(fresh=previous is None)[name]
        if previous is not None and (previous.options, previous.facts) == (
            tips.options,
            tips.facts,
        ):
            before = self._baseline(previous)
            if before is not None:
                table = table.changed_since(before[name])
        frame = self._frame(name, table)
        frame.insert(0, "repo", run.repo)
        frame.insert(0, "source", self.source.name)
        yield from _pages(frame, TextCursor(tips.dump()), self.page_size)

    def close(self) -> None:
        self._tips = None
        self._layout = None
        self._history = None
        self._tables = None
        self._baselines = {}

    def tips(self) -> Tips:
        """The mainline and deploy refs now, from a few cheap git calls (cached for the run)."""
        if self._tips is None:
            self._tips = self._read_tips()
        return self._tips

    def tables(self, *, fresh: bool = False) -> dict[str, Table]:
        """Every wanted stream's rows for the tips now, derived once per run.

        ``fresh``: read the whole history from git rather than continue from the cache (a
        first run, a full refresh: the one way to re-check the cache against git).
        """
        if self._tables is None:
            tips = self.tips()
            history = self.history(fresh=fresh)
            tables = self._derive(history, tips)
            assert tables is not None  # the tips now can always be derived
            self._tables = tables
            self._save_history(history, tips)
        return self._tables

    def history(self, *, fresh: bool = False) -> History:
        """The commits reachable from the tips now (and those the cache held), read once per
        run: from the cache, plus what ``git log NEW --not CACHED`` lists."""
        if self._history is None:
            self._history = self._read_history(fresh)
        return self._history

    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = self.git.layout()
        return self._layout

    def cache_path(self) -> Path:
        """The history cache of this choice of mainline and deployments (another source of the
        same repository choosing other tips keeps its own)."""
        key = _digest(
            f"{self.settings.branch}\n{self.settings.deploy_kind}:{self.settings.deploy_value}"
        )
        return self.layout().common_dir / "deliverypulse" / f"history-{key[:16]}.parquet"

    def _wanted(self) -> set[str]:
        return set(self.source.streams) or {spec.name for spec in self.stream_specs}

    def _needs_history(self) -> bool:
        """Tag deployments alone need no commit; changes, commits and branch deployments do."""
        return bool(self._wanted() & {"changes", "commits"}) or self.settings.deploy_kind != "tags"

    def _fingerprint(self) -> str:
        """What shapes the cached facts besides the commits: the formats read (through
        ``CURSOR_VERSION``), the mailmap, a shallow boundary and replace refs."""
        layout = self.layout()
        shallow = _file_bytes(layout.shallow_file) if layout.shallow else b""
        parts = [
            CURSOR_VERSION,
            *self.git.mailmap_sources(layout),
            hashlib.sha256(shallow).hexdigest(),
            *sorted(f"{ref.name} {ref.commit}" for ref in self._replace_refs),
        ]
        return _digest("\0".join(parts))

    def _read_history(self, fresh: bool) -> History:
        self.stats = ReadStats()
        if not self._needs_history():
            return History()
        tips = self.tips()
        cached = None if fresh else cache.load(self.cache_path(), self._fingerprint())
        history = cached or History()
        self._dirty = cached is None
        self.stats.cached = len(history.commits)
        new_tips = [rev for rev in tips.revisions if rev not in history.index]
        if new_tips:
            # The cache holds the ancestry of its roots: exclude those that still exist.
            roots = self.git.existing(history.roots) if history.roots else []
            with ThreadPoolExecutor(max_workers=1) as pool:
                # Sizes need a second git call; it runs while the first one is being parsed.
                sizes_job = None
                if self._wanted() & {"changes", "commits"}:
                    sizes_job = pool.submit(self.git.first_parent_sizes, new_tips, exclude=roots)
                new = self.git.log(new_tips, exclude=roots)
                sizes = sizes_job.result() if sizes_job else {}
            self.stats.read = history.add(new, new_tips)
            self.stats.sized = len(sizes)
            history.sizes.update(sizes)
            self._dirty = True
        if cached is not None and not self.layout().shallow:
            _, missing = history.closure(tips.revisions)
            if missing:  # a cache that lies about its roots: never trust it over git
                _log.warning(
                    "the git history cache %s lacks %d parents; reading the whole history",
                    self.cache_path(),
                    missing,
                )
                return self._read_history(fresh=True)
        _log.info(
            "%s: %d commits read from git (%d sized), %d from the cache",
            self.settings.path,
            self.stats.read,
            self.stats.sized,
            self.stats.cached,
        )
        return history

    def _save_history(self, history: History, tips: Tips) -> None:
        """Cache the ancestry of the tips now (commits no tip reaches any more are left out),
        when this run read anything or left anything out."""
        if not self._needs_history():
            return
        positions, _ = history.closure(tips.revisions)
        if not self._dirty and len(positions) == len(history.commits):
            return
        kept = history.subset(positions)
        sizes = {sha: history.sizes[sha] for sha in kept.shas if sha in history.sizes}
        cache.save(self.cache_path(), History(kept, sizes, tips.revisions), self._fingerprint())

    def _baseline(self, previous: Tips) -> dict[str, Table] | None:
        """The rows the cursor's tips gave, derived again; None when the history at hand does
        not hold all they reach (a force-push and a lost cache): then every row is yielded."""
        if previous.digest not in self._baselines:
            history = self.history()
            usable = not self._needs_history() or all(
                rev in history.index for rev in previous.revisions
            )
            self._baselines[previous.digest] = (
                self._derive(history, previous, baseline=True) if usable else None
            )
        return self._baselines[previous.digest]

    def _read_tips(self) -> Tips:
        settings = self.settings
        if self.layout().shallow:
            _log.warning(
                "%s is a shallow clone: changes at its edge miss their first commits; "
                "fetch the full history (git fetch --unshallow) for true lead times",
                settings.path,
            )
        refs = self.git.refs("refs/heads", "refs/remotes", "refs/tags", "refs/replace")
        self._replace_refs = [ref for ref in refs if ref.name.startswith("refs/replace/")]
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
        options = repr(sorted((key, str(value)) for key, value in self.source.options.items()))
        return Tips(mainline, base_ref, deploy_refs, _digest(options), self._fingerprint())

    def _derive(
        self, history: History, tips: Tips, *, baseline: bool = False
    ) -> dict[str, Table] | None:
        """Every wanted stream's rows for ``tips``, from the commits they reach in ``history``.

        Sizes the history lacks are read with one ``git log --no-walk --numstat``; for a
        ``baseline`` whose commits git no longer has, the answer is None (no baseline).
        """
        positions, _ = history.closure(tips.revisions)
        commits = history.subset(positions)
        graph = Graph(commits)
        deployments = self._deployments(graph, tips)
        since = self.source.since
        cutoff = int(since.timestamp()) if since else None
        tables = {
            "deployments": _cut(
                Table.of("deployment_id", _DEPLOYMENT_COLUMNS, deployments), "created_at", cutoff
            )
        }
        if not self._wanted() & {"changes", "commits"}:
            return tables
        shipped = first_shipped(graph, [row["sha"] for row in deployments])
        lines = [Line(tips.mainline, tips.base_ref)]
        if self.settings.deploy_kind == "tags":  # a deploy branch's merges are deployments
            lines += [Line(ref.commit, None) for ref in tips.deploy_refs]
        changes, change_of = find_changes(graph, lines, {}, self.settings.bots, shipped)
        # Sizes are known for the commits of lines: the first-parent history of each tip, and
        # the commits of lines merged in from the side, which no first-parent walk visits.
        on_line = first_parent_closure(graph, tips.revisions)
        merges = {change["merge_sha"] for change in changes}
        for position, (sha, change_id) in enumerate(zip(commits.shas, change_of, strict=True)):
            if change_id is None or sha in merges:
                on_line[position] = 1
        sizes = history.sizes
        missing = [
            sha
            for sha, flag in zip(commits.shas, on_line, strict=True)
            if flag and sha not in sizes
        ]
        if missing:
            if baseline and len(self.git.existing(missing)) < len(missing):
                return None
            fetched = self.git.first_parent_sizes(missing, walk=False)
            sizes.update(fetched)
            self.stats.sized += len(fetched)
            self._dirty = True
        for change in changes:
            size = sizes.get(change["merge_sha"])
            if size is not None:
                change["additions"] = size.additions
                change["deletions"] = size.deletions
                change["changed_files"] = size.changed_files
        tables["changes"] = _cut(
            Table.of("change_id", _CHANGE_COLUMNS, changes), "merged_at", cutoff
        )
        tables["commits"] = _cut(
            _commits_table(commits, change_of, on_line, sizes), "committed_at", cutoff
        )
        return tables

    def _frame(self, stream: str, table: Table) -> pd.DataFrame:
        if stream == "deployments":
            return self._deployments_frame(table)
        return _changes_frame(table) if stream == "changes" else _commits_frame(table)

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

    def _deployments_frame(self, table: Table) -> pd.DataFrame:
        frame = pd.DataFrame(table.columns, columns=_DEPLOYMENT_COLUMNS)
        frame["environment"] = self.settings.environment
        frame["is_production"] = self.settings.is_production
        frame["status"] = "success"
        for column in ("created_at", "finished_at"):
            frame[column] = _utc(frame[column])
        return frame

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


def _commits_table(
    commits: Commits, change_of: list[str | None], sized: bytearray, sizes: dict[str, Any]
) -> Table:
    size_of = [
        sizes.get(sha) if flag else None for sha, flag in zip(commits.shas, sized, strict=True)
    ]
    return Table(
        "sha",
        {
            "sha": commits.shas,
            "parents": commits.parents,
            "authored_at": commits.authored,
            "committed_at": commits.committed,
            "author": commits.author_names,
            "change_id": change_of,
            "subject": commits.subjects,
            "additions": [s.additions if s else None for s in size_of],
            "deletions": [s.deletions if s else None for s in size_of],
        },
    )


def _cut(table: Table, column: str, cutoff: int | None) -> Table:
    """The rows from ``cutoff`` (the source's ``since``, in Unix seconds) on."""
    if cutoff is None:
        return table
    return table.where([value >= cutoff for value in table.columns[column]])


def _commits_frame(table: Table) -> pd.DataFrame:
    frame = pd.DataFrame(table.columns)
    for column in ("additions", "deletions"):
        frame[column] = pd.array(table.columns[column], dtype="Int64")
    for column in ("authored_at", "committed_at"):
        frame[column] = _utc(frame[column])
    return frame


def _changes_frame(table: Table) -> pd.DataFrame:
    frame = pd.DataFrame(table.columns, columns=_CHANGE_COLUMNS)
    for column in ("created_at", "first_commit_at", "merged_at", "closed_at"):
        frame[column] = _utc(frame[column])
    for column in ("number", "additions", "deletions", "changed_files", "commit_count"):
        frame[column] = pd.array(table.columns[column], dtype="Int64")
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


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


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
