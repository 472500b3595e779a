"""The commits already read, kept between runs so that a rerun asks git only for what is new.

A commit's facts (parents, author, times, message lines, size against its first parent) never
change once the commit exists, so a cache of them is always true: at worst it lacks commits,
which are then read. What else shapes them is part of the cache's fingerprint (the ``.mailmap``
that ``%aN`` applies, a shallow clone's boundary, replace refs): when it changes, the cache is
dropped. The cache holds the ancestry closure of its ``roots`` (the tips of the run that wrote
it), so ``git log NEW --not ROOTS`` lists exactly the commits it lacks.

It lives in the repository's git folder (``.git/deliverypulse/``), one Parquet file per choice
of mainline and deployments, written atomically; a repository that cannot be written is read
in full each time instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deliverypulse.store.files import write_atomic
from deliverypulse_git.gitlog import Commits, Sizes

#: Bump when the cached columns or their meaning change.
FORMAT = "1"
_log = logging.getLogger(__name__)
_SCHEMA = pa.schema(
    [
        ("sha", pa.string()),
        ("parents", pa.list_(pa.string())),
        ("author_name", pa.string()),
        ("author_email", pa.string()),
        ("authored", pa.int64()),
        ("committed", pa.int64()),
        ("subject", pa.string()),
        ("body", pa.string()),
        ("additions", pa.int64()),
        ("deletions", pa.int64()),
        ("changed_files", pa.int64()),
    ]
)


@dataclass
class History:
    """Commits (each once), their sizes where known, and the roots whose ancestry they hold."""

    commits: Commits = field(default_factory=Commits)
    sizes: dict[str, Sizes] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {sha: position for position, sha in enumerate(self.commits.shas)}

    def add(self, new: Commits, roots: Iterable[str]) -> int:
        """Append the commits not held yet (``new`` holds the ancestry of ``roots`` that the
        history lacked); returns how many were added."""
        added = 0
        mine, index = self.commits, self.index
        for position, sha in enumerate(new.shas):
            if sha in index:
                continue
            index[sha] = len(mine.shas)
            mine.shas.append(sha)
            mine.parents.append(new.parents[position])
            mine.author_names.append(new.author_names[position])
            mine.author_emails.append(new.author_emails[position])
            mine.authored.append(new.authored[position])
            mine.committed.append(new.committed[position])
            mine.subjects.append(new.subjects[position])
            mine.bodies.append(new.bodies[position])
            added += 1
        self.roots = list(dict.fromkeys([*self.roots, *roots]))
        return added

    def closure(self, tips: Sequence[str]) -> tuple[list[int], int]:
        """Positions of the commits reachable from ``tips`` (in history order), and how many
        parents of those commits the history lacks (none, unless the clone is shallow)."""
        index, parents = self.index, self.commits.parents
        seen = bytearray(len(self.commits))
        stack = [index[tip] for tip in tips if tip in index]
        missing = 0
        while stack:
            position = stack.pop()
            if seen[position]:
                continue
            seen[position] = 1
            for parent in parents[position]:
                found = index.get(parent)
                if found is None:
                    missing += 1
                elif not seen[found]:
                    stack.append(found)
        return [position for position, flag in enumerate(seen) if flag], missing

    def subset(self, positions: Sequence[int]) -> Commits:
        """The commits at ``positions``, as columns."""
        commits = self.commits
        if len(positions) == len(commits):
            return commits
        return Commits(
            shas=[commits.shas[p] for p in positions],
            parents=[commits.parents[p] for p in positions],
            author_names=[commits.author_names[p] for p in positions],
            author_emails=[commits.author_emails[p] for p in positions],
            authored=[commits.authored[p] for p in positions],
            committed=[commits.committed[p] for p in positions],
            subjects=[commits.subjects[p] for p in positions],
            bodies=[commits.bodies[p] for p in positions],
        )


def load(path: Path, fingerprint: str) -> History | None:
    """The cached history at ``path``, or None when there is none, it is unreadable, or it was
    written under another fingerprint (then it is of no use and will be replaced)."""
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        _log.info("ignoring the unreadable git history cache %s: %s", path, error)
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"format") != FORMAT.encode() or meta.get(b"fingerprint") != fingerprint.encode():
        return None
    if table.schema.remove_metadata() != _SCHEMA:
        return None
    columns = {name: table.column(name).to_pylist() for name in _SCHEMA.names}
    commits = Commits(
        shas=columns["sha"],
        parents=columns["parents"],
        author_names=columns["author_name"],
        author_emails=columns["author_email"],
        authored=columns["authored"],
        committed=columns["committed"],
        subjects=columns["subject"],
        bodies=columns["body"],
    )
    sizes = {
        sha: Sizes(added, deleted, files)
        for sha, added, deleted, files in zip(
            columns["sha"],
            columns["additions"],
            columns["deletions"],
            columns["changed_files"],
            strict=True,
        )
        if added is not None
    }
    roots = [str(root) for root in json.loads(meta.get(b"roots", b"[]"))]
    return History(commits, sizes, roots)


def save(path: Path, history: History, fingerprint: str) -> bool:
    """Write ``history`` atomically; False (and a log line) when the folder is not writable."""
    commits, sizes = history.commits, history.sizes
    size_of = [sizes.get(sha) for sha in commits.shas]
    table = pa.table(
        {
            "sha": commits.shas,
            "parents": commits.parents,
            "author_name": commits.author_names,
            "author_email": commits.author_emails,
            "authored": commits.authored,
            "committed": commits.committed,
            "subject": commits.subjects,
            "body": commits.bodies,
            "additions": [s.additions if s else None for s in size_of],
            "deletions": [s.deletions if s else None for s in size_of],
            "changed_files": [s.changed_files if s else None for s in size_of],
        },
        schema=_SCHEMA,
    ).replace_schema_metadata(
        {"format": FORMAT, "fingerprint": fingerprint, "roots": json.dumps(history.roots)}
    )
    try:
        write_atomic(path, lambda temp: pq.write_table(table, temp, compression="zstd"))
    except OSError as error:
        _log.warning(
            "cannot write the git history cache %s (%s): the next run reads the whole history "
            "again",
            path,
            error.strerror or error,
        )
        return False
    return True
