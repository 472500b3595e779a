"""What the stream readers of one GitLab source share: the API, the options, and what one
stream hands the next within a run (the pipelines behind production deployments, for test
reports; the commits the changes stream tied to merge requests, for the commits stream)."""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deliverypulse.patterns import BOT_PATTERN, HOTFIX_PATTERN
from deliverypulse_gitlab.api import GitLabAPI

DEFAULT_HOTFIX = HOTFIX_PATTERN
#: Renovate, Dependabot, GitLab's project/group access-token bots, ``*-bot`` service accounts.
DEFAULT_BOTS = BOT_PATTERN


@dataclass
class Handover:
    """Facts one stream learns that a later stream of the same run and project can use."""

    production_pipelines: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    commit_changes: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_production_pipelines(self, repo: str, ids: set[int]) -> None:
        with self.lock:
            self.production_pipelines[repo] |= ids

    def take_production_pipelines(self, repo: str) -> set[int]:
        with self.lock:
            return set(self.production_pipelines.pop(repo, set()))

    def add_commit_changes(self, repo: str, mapping: Mapping[str, str]) -> None:
        with self.lock:
            self.commit_changes[repo].update(mapping)

    def commit_change(self, repo: str) -> dict[str, str]:
        with self.lock:
            return dict(self.commit_changes.get(repo, {}))


@dataclass(frozen=True)
class StreamContext:
    """Read-only settings of one source plus the shared API and handover."""

    api: GitLabAPI
    production: re.Pattern[str]
    hotfix: re.Pattern[str]
    bots: re.Pattern[str]
    incident_labels: tuple[str, ...]
    test_reports: str
    since: datetime | None
    streams: tuple[str, ...]
    handover: Handover = field(default_factory=Handover)

    def is_bot(self, username: str | None) -> bool:
        return bool(username and self.bots.search(username))


def username(user: Mapping[str, Any] | None) -> str | None:
    if not user:
        return None
    value = user.get("username")
    return str(value) if value else None
