"""Runs the git CLI and parses its output as a stream: a few calls per run, never one per commit.

Formats follow the documented placeholders of git-log (https://git-scm.com/docs/git-log#_pretty_formats)
and git-for-each-ref (https://git-scm.com/docs/git-for-each-ref#_field_names). Times are read as
Unix seconds (``%at``, ``%ct``, ``:unix``), which are UTC whatever offset the author had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from deliverypulse.errors import DeliveryPulseError

_CHUNK = 1 << 20
_FIELD = "\x1f"
# Commit fields, in order. The body comes last so that a stray separator inside it cannot shift
# the other fields.
_LOG_FORMAT = "%H%x1f%P%x1f%aN%x1f%aE%x1f%at%x1f%ct%x1f%s%x1f%b"
_NUMSTAT_FORMAT = "%x1e%H"
_KEPT_LINES = ("This reverts commit", "See merge request")
_REF_FORMAT = _FIELD.join(
    [
        "%(refname)",
        "%(objectname)",
        "%(objecttype)",
        "%(*objectname)",
        "%(*objecttype)",
        "%(creatordate:unix)",
        "%(taggername)",
    ]
)


class GitError(DeliveryPulseError):
    """A git command failed; the message names the command, the repository and git's own words."""


@dataclass
class Commits:
    """Commits as parallel columns (one list per field), cheap to build and to turn into a frame."""

    shas: list[str] = field(default_factory=list)
    parents: list[list[str]] = field(default_factory=list)
    author_names: list[str] = field(default_factory=list)
    author_emails: list[str] = field(default_factory=list)
    authored: list[int] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.shas)


@dataclass(frozen=True)
class Ref:
    """A ref and the commit it points at (annotated tags peeled), with its creation time."""

    name: str
    commit: str
    created: int
    creator: str | None


@dataclass(frozen=True)
class Sizes:
    """Lines and files changed by one commit relative to its first parent."""

    additions: int
    deletions: int
    changed_files: int


class Git:
    """The git CLI pointed at one repository, with an environment that keeps output stable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.executable = shutil.which("git")
        self.environment = {
            **os.environ,
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_PAGER": "cat",
        }

    def _command(self, args: Sequence[str]) -> list[str]:
        if self.executable is None:
            raise GitError("the git command is not installed (or not on PATH); install git")
        return [self.executable, "-C", str(self.path), "-c", "log.showSignature=false", *args]

    def output(self, args: Sequence[str], *, allowed_exit: int | None = None) -> str | None:
        """Stdout of a short command; None when it exits with ``allowed_exit`` (say, 'not set')."""
        try:
            done = subprocess.run(
                self._command(args), capture_output=True, env=self.environment, check=False
            )
        except OSError as error:
            raise GitError(f"cannot run git: {error.strerror}") from None
        if done.returncode == 0:
            return done.stdout.decode("utf-8", errors="replace")
        if allowed_exit is not None and done.returncode == allowed_exit:
            return None
        raise self._failure(args, done.stderr)

    def stream(self, args: Sequence[str], separator: bytes, stdin: str = "") -> Iterator[str]:
        """Records of a long-running command's stdout, split on ``separator``, as they arrive."""
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(
                    self._command(args),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=self.environment,
                )
            except OSError as error:
                raise GitError(f"cannot run git: {error.strerror}") from None
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(stdin.encode())
                process.stdin.close()
                yield from _split(process.stdout, separator)
            finally:
                process.stdout.close()
                if process.poll() is None:
                    process.kill()
                returncode = process.wait()
            if returncode != 0:
                errors.seek(0)
                raise self._failure(args, errors.read())

    def _failure(self, args: Sequence[str], stderr: bytes) -> GitError:
        lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
        message = next((line for line in lines if line.startswith("fatal:")), None)
        message = message or next((line for line in reversed(lines) if line), "no message")
        return GitError(f"'git {args[0]}' failed in {self.path}: {message}")

    def log(self, revisions: Sequence[str], exclude: Sequence[str] = ()) -> Commits:
        """Every commit reachable from ``revisions`` and not from ``exclude``, in one streamed
        ``git log``."""
        commits = Commits()
        if not revisions:
            return commits
        args = ["log", "--no-color", "--encoding=UTF-8", "-z", f"--format={_LOG_FORMAT}", "--stdin"]
        for record in self.stream(args, b"\0", stdin=_revisions(revisions, exclude)):
            fields = record.split(_FIELD, 7)
            if len(fields) < 8:
                continue
            sha, parents, name, email, authored, committed, subject, body = fields
            commits.shas.append(sha.strip())
            commits.parents.append(parents.split())
            commits.author_names.append(name)
            commits.author_emails.append(email)
            commits.authored.append(int(authored))
            commits.committed.append(int(committed))
            commits.subjects.append(subject)
            commits.bodies.append(_essentials(body))
        return commits

    def first_parent_sizes(
        self, revisions: Sequence[str], *, walk: bool = True, exclude: Sequence[str] = ()
    ) -> dict[str, Sizes]:
        """Sizes of commits against their first parent (a merge: the whole change): of the
        first-parent history of each of ``revisions`` down to what ``exclude`` reaches, or
        (``walk=False``) of those commits."""
        if not revisions:
            return {}
        args = [
            "log",
            "--no-color",
            "--first-parent" if walk else "--no-walk=unsorted",
            "--diff-merges=first-parent",
            "--numstat",
            "--find-renames",
            "--no-ext-diff",
            "--no-textconv",
            f"--format={_NUMSTAT_FORMAT}",
            "--stdin",
            "--",
        ]
        sizes: dict[str, Sizes] = {}
        for record in self.stream(args, b"\x1e", stdin=_revisions(revisions, exclude)):
            lines = record.split("\n")
            additions = deletions = files = 0
            for line in lines[1:]:
                added, _, rest = line.partition("\t")
                if not rest:
                    continue
                deleted = rest.partition("\t")[0]
                files += 1
                # Binary files show "-" for both counts: a changed file with no line counts.
                additions += int(added) if added.isdigit() else 0
                deletions += int(deleted) if deleted.isdigit() else 0
            sizes[lines[0].strip()] = Sizes(additions, deletions, files)
        return sizes

    def refs(self, *patterns: str) -> list[Ref]:
        """Refs under ``patterns`` (say ``refs/tags``), peeled to commits; others are skipped."""
        text = self.output(["for-each-ref", f"--format={_REF_FORMAT}", *patterns]) or ""
        refs = []
        nested: list[tuple[str, int, str | None]] = []
        for line in text.splitlines():
            name, target, kind, peeled, peeled_kind, created, creator = line.split(_FIELD)
            if kind == "tag" and peeled_kind == "tag":
                # A tag of a tag (re-signing, a release tag of an RC tag): git peels one level
                # here; the deployment is of the commit the chain finally names.
                nested.append((name, int(created or 0), creator or None))
                continue
            commit = peeled if kind == "tag" else target
            if (peeled_kind if kind == "tag" else kind) != "commit":
                continue
            refs.append(Ref(name, commit, int(created or 0), creator or None))
        names = [tag for tag, _, _ in nested]
        for (tag, made, maker), peeled_commit in zip(nested, self._commits_of(names), strict=True):
            if peeled_commit is not None:
                refs.append(Ref(tag, peeled_commit, made, maker))
        return refs

    def existing(self, shas: Sequence[str]) -> list[str]:
        """Those of ``shas`` that are commits of the repository now (a force-push and a
        garbage collection can remove one), in one ``git cat-file --batch-check``."""
        return [sha for sha, found in zip(shas, self._commits_of(shas), strict=True) if found]

    def layout(self) -> Layout:
        """Where the repository keeps its files and what shapes ``git log``'s output, in two
        short ``rev-parse`` calls (the second one only in a work tree)."""
        text = self.output(
            [
                "rev-parse",
                "--is-shallow-repository",
                "--is-bare-repository",
                "--path-format=absolute",
                "--git-common-dir",
                "--git-path",
                "shallow",
            ]
        )
        shallow, bare, common, shallow_file = (text or "").splitlines()[:4]
        top = None
        if bare.strip() != "true":
            top = (self.output(["rev-parse", "--show-toplevel"], allowed_exit=128) or "").strip()
        return Layout(
            common_dir=Path(common.strip()),
            shallow=shallow.strip() == "true",
            shallow_file=Path(shallow_file.strip()),
            top=Path(top) if top else None,
        )

    def mailmap_sources(self, layout: Layout) -> list[str]:
        """What ``%aN`` maps author names with (https://git-scm.com/docs/gitmailmap): the
        work tree's ``.mailmap``, ``mailmap.file`` and ``mailmap.blob`` (in a bare repository,
        ``HEAD:.mailmap`` by default), each as its content or blob id."""
        found: list[str] = []
        if layout.top is not None:
            found.append(_file_text(layout.top / ".mailmap"))
        config = self.output(["config", "--get-regexp", r"^mailmap\."], allowed_exit=1) or ""
        blob = None if layout.top is not None else "HEAD:.mailmap"
        for line in config.splitlines():
            key, _, value = line.partition(" ")
            if key == "mailmap.file":
                found.append(_file_text(Path(value).expanduser()))
            elif key == "mailmap.blob":
                blob = value
        if blob:
            sha = self.output(["rev-parse", "-q", "--verify", blob], allowed_exit=1)
            found.append(f"blob {(sha or '').strip()}")
        return found

    def _commits_of(self, names: Sequence[str]) -> list[str | None]:
        """The commit each ref finally points to (None: no commit, say a tag of a tree), in one
        ``git cat-file --batch-check`` (https://git-scm.com/docs/git-cat-file)."""
        if not names:
            return []
        query = "".join(f"{name}^{{commit}}\n" for name in names).encode()
        try:
            done = subprocess.run(
                self._command(["cat-file", "--batch-check=%(objectname) %(objecttype)"]),
                input=query,
                capture_output=True,
                env=self.environment,
                check=False,
            )
        except OSError as error:
            raise GitError(f"cannot run git: {error.strerror}") from None
        if done.returncode != 0:
            raise self._failure(["cat-file", "--batch-check"], done.stderr)
        answers = done.stdout.decode("utf-8", errors="replace").splitlines()
        commits: list[str | None] = []
        for answer in answers[: len(names)]:
            sha, _, kind = answer.partition(" ")
            commits.append(sha if kind == "commit" else None)
        return commits + [None] * (len(names) - len(commits))


@dataclass(frozen=True)
class Layout:
    """The repository's shared git folder, whether it is shallow (and where git lists its
    boundary), and its work tree's top (None in a bare repository)."""

    common_dir: Path
    shallow: bool
    shallow_file: Path
    top: Path | None


def _revisions(revisions: Sequence[str], exclude: Sequence[str]) -> str:
    """``--stdin`` input: the revisions, then ``^rev`` for each excluded one."""
    return "".join(f"{rev}\n" for rev in revisions) + "".join(f"^{rev}\n" for rev in exclude)


def _file_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _essentials(body: str) -> str:
    """The body lines the connector reads, so a long history's messages do not fill memory.

    Kept: the first line (a merge's title) and ``This reverts commit`` / ``See merge request``
    lines.
    """
    first, _, rest = body.strip().partition("\n")
    if _KEPT_LINES[0] not in rest and _KEPT_LINES[1] not in rest:
        return first
    kept = [line for line in rest.splitlines() if line.lstrip().startswith(_KEPT_LINES)]
    return "\n".join([first, *kept])


def _split(stdout: IO[bytes], separator: bytes) -> Iterator[str]:
    pending = b""
    while chunk := stdout.read(_CHUNK):
        pending += chunk
        records = pending.split(separator)
        pending = records.pop()
        for record in records:
            if record:
                yield record.decode("utf-8", errors="replace")
    if pending.strip():
        yield pending.decode("utf-8", errors="replace")
