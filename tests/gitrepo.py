"""Builds real git repositories for tests with the git CLI, at fixed dates and time-zone offsets.

Every command runs with the user's and the system's git config switched off, so a developer's
``~/.gitconfig`` (signing, hooks, default branch) cannot change what a test sees.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ANN = ("Ann Lee", "ann@example.com")
BOB = ("Bob Roy", "bob@example.com")


class GitRepo:
    """A repository in a temporary folder, driven one git command at a time."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)

    def git(
        self,
        *args: str,
        date: str = "2024-01-01T00:00:00+00:00",
        committer_date: str | None = None,
        author: tuple[str, str] = ANN,
        committer: tuple[str, str] = ANN,
    ) -> str:
        env = {
            **os.environ,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": committer[0],
            "GIT_COMMITTER_EMAIL": committer[1],
            "GIT_COMMITTER_DATE": committer_date or date,
            "GIT_EDITOR": "true",
        }
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def commit(
        self,
        message: str,
        *,
        date: str,
        files: dict[str, str] | None = None,
        author: tuple[str, str] = ANN,
        committer_date: str | None = None,
        body: str | None = None,
    ) -> str:
        """Write ``files`` (path -> full content), commit them, and return the new sha."""
        for name, content in (files or {}).items():
            (self.path / name).write_text(content, encoding="utf-8")
            self.git("add", name)
        messages = ["-m", message] + (["-m", body] if body else [])
        self.git(
            "commit",
            "-q",
            "--allow-empty",
            *messages,
            date=date,
            author=author,
            committer_date=committer_date,
        )
        return self.sha("HEAD")

    def merge(self, branch: str, *messages: str, date: str) -> str:
        """A ``--no-ff`` merge of ``branch`` into the current branch; each message a paragraph."""
        args = [arg for message in messages for arg in ("-m", message)]
        self.git("merge", "-q", "--no-ff", branch, *args, date=date)
        return self.sha("HEAD")

    def checkout(self, branch: str, *, new: bool = False, start: str | None = None) -> None:
        self.git(
            "checkout", "-q", *(["-b", branch] if new else [branch]), *([start] if start else [])
        )

    def tag(self, name: str, target: str = "HEAD", *, date: str | None = None) -> None:
        """An annotated tag when ``date`` is given (its tagger date), else a lightweight one."""
        if date is None:
            self.git("tag", name, target)
        else:
            self.git("tag", "-a", name, target, "-m", f"Release {name}", date=date)

    def sha(self, revision: str) -> str:
        return self.git("rev-parse", revision)
