"""The metric options, declared once: each with its default and what it means.

Every metric function, the analysis and the report take a :class:`MetricOptions` (or the same
names as keywords, which build one), so an option means one thing everywhere and cannot drift.
It is validated when it is made: a bad value raises :class:`OptionError` naming the option.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

import pandas as pd

from deliverypulse.dora.clusters import check_benchmarks
from deliverypulse.dora.periods import check_tz
from deliverypulse.errors import OptionError
from deliverypulse.rules import BOT_PATTERN, HOTFIX_PATTERN
from deliverypulse.timeutil import utc

#: The failure signals of the change failure rate, in the order they are reported.
SIGNALS: tuple[str, ...] = ("status", "rollback", "revert", "hotfix", "incident")
#: The default revert window.
REVERT_WINDOW = pd.Timedelta(days=7)
#: How long before an incident on a service its last deployment may have finished.
INCIDENT_LOOKBACK = pd.Timedelta(days=7)


class OptionKeywords(TypedDict, total=False):
    """The :class:`MetricOptions` fields as keywords (``metrics(ds, since=...)``); ``tz`` is
    a parameter of its own where it applies (``metrics``, ``summary``, ``report``)."""

    environments: str | Iterable[str] | None
    since: Any
    until: Any
    failure_signals: str | Iterable[str]
    revert_window: str | pd.Timedelta
    incident_lookback: str | pd.Timedelta
    exclude_bots: bool
    bot_pattern: str
    hotfix_pattern: str
    trunk: bool
    approximate: bool
    benchmarks: str


#: Options that change what :func:`deliverypulse.prepare` computes (the others only change how
#: its result is summarised, so they may differ between calls on one prepared value).
PREPARE_OPTIONS = (
    "environments",
    "since",
    "until",
    "failure_signals",
    "revert_window",
    "incident_lookback",
    "exclude_bots",
    "bot_pattern",
    "hotfix_pattern",
    "trunk",
    "approximate",
)


@dataclass(frozen=True)
class MetricOptions:
    """How deployments, changes and failures are counted. Definitions: docs/metrics.md."""

    environments: tuple[str, ...] | None = None
    """Environment names that are production. ``None``: ``is_production``, else an environment
    named like :data:`deliverypulse.rules.PRODUCTION_PATTERN`."""

    since: pd.Timestamp | None = None
    """Start of the window (UTC; a date or a naive time is taken as UTC). Nothing made before it
    is linked, and every metric and the analysis count only deployments from it on. ``None``:
    per source and repo, where the dataset recorded its collection started
    (``Dataset.collection_start``: ``collect --since``); where the whole history was collected,
    per repo and environment the creation of its first production deployment."""

    until: pd.Timestamp | None = None
    """End of the window (UTC; a date is its midnight, so ``until="2024-04-01"`` ends with
    March): every metric, the analysis and the report count only deployments, and changes
    deployed, before it. ``None``: no end."""

    failure_signals: tuple[str, ...] = SIGNALS
    """What makes a deployment failed: any of :data:`SIGNALS`."""

    revert_window: pd.Timedelta = REVERT_WINDOW
    """A revert or hotfix merged within this time after a deployment marks it failed."""

    incident_lookback: pd.Timedelta = INCIDENT_LOOKBACK
    """An incident on a service (PagerDuty, Opsgenie, ServiceNow...) is charged to the last
    successful production deployment of any repo of that service that finished at most this
    long before it opened; with none, it is listed in ``Prepared.unmatched_incidents``
    (``no_deployment``). Incidents of a repo, and those charged by ``caused_by``, have none."""

    exclude_bots: bool = True
    """Changes by bots are no changes: left out of the lead time, the batch sizes and every
    count of changes (their deployments still count, and can still fail)."""

    bot_pattern: str = BOT_PATTERN
    """A bot author where ``is_bot`` is unknown (and for trunk commits)."""

    hotfix_pattern: str = HOTFIX_PATTERN
    """A hotfix among trunk commits (matched on the subject)."""

    trunk: bool = True
    """A deployed commit without pull request is a change of its own."""

    approximate: bool = True
    """Where the commit graph is missing, link changes by merge time (flagged approximate)."""

    benchmarks: str = "2023"
    """The DORA clusters the metrics are placed in: ``2023`` or ``2021``."""

    tz: str = "UTC"
    """Time zone of periods and days."""

    def __post_init__(self) -> None:
        for name, value in _checked(self).items():
            object.__setattr__(self, name, value)

    def replace(self, **keywords: Any) -> MetricOptions:
        """A copy with ``keywords`` changed (and checked)."""
        return dataclasses.replace(self, **keywords) if keywords else self

    @classmethod
    def build(cls, options: MetricOptions | None = None, **keywords: Any) -> MetricOptions:
        """``options`` (default: the defaults) with ``keywords`` applied."""
        if options is not None and not isinstance(options, MetricOptions):
            raise OptionError(f"options must be MetricOptions, not {type(options).__name__}")
        return (options or cls()).replace(**keywords)

    def describe(self) -> dict[str, Any]:
        """The options as plain values (strings, lists), for JSON and the report's page."""
        return {
            "environments": None if self.environments is None else list(self.environments),
            "since": None if self.since is None else str(self.since),
            "until": None if self.until is None else str(self.until),
            "failure_signals": list(self.failure_signals),
            "revert_window": str(self.revert_window),
            "incident_lookback": str(self.incident_lookback),
            "exclude_bots": self.exclude_bots,
            "bot_pattern": self.bot_pattern,
            "hotfix_pattern": self.hotfix_pattern,
            "trunk": self.trunk,
            "approximate": self.approximate,
            "benchmarks": self.benchmarks,
            "tz": self.tz,
        }


def check_signals(signals: str | Iterable[str]) -> tuple[str, ...]:
    """Failure signals as a tuple; an unknown one is an :class:`OptionError`."""
    chosen = (signals,) if isinstance(signals, str) else tuple(signals)
    unknown = [name for name in chosen if name not in SIGNALS]
    if unknown:
        raise OptionError(
            f"unknown failure signal {unknown[0]!r}; the signals are {', '.join(SIGNALS)}"
        )
    return chosen


def _names(environments: Any) -> tuple[str, ...] | None:
    if environments is None:
        return None
    names = (environments,) if isinstance(environments, str) else tuple(environments)
    if not all(isinstance(name, str) for name in names):
        raise OptionError(f"environments must be names (strings), got {environments!r}")
    return names


def _pattern(name: str, value: Any) -> str:
    try:
        re.compile(value)
    except (re.error, TypeError) as error:
        raise OptionError(f"{name} is not a regular expression ({error}): {value!r}") from None
    return str(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{name} must be True or False, not {value!r}")
    return value


def _duration(name: str, value: Any) -> pd.Timedelta:
    try:
        duration = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise OptionError(f"{name} must be a duration such as '7D', not {value!r}") from None
    if pd.isna(duration) or duration < pd.Timedelta(0):
        raise OptionError(f"{name} must be a positive duration, not {value!r}")
    return duration


def _checked(options: MetricOptions) -> dict[str, Any]:
    """Each field normalised, or an :class:`OptionError` naming the bad one."""
    try:
        since = None if options.since is None else utc(options.since)
    except (ValueError, TypeError):
        raise OptionError(f"since must be a date or a timestamp, not {options.since!r}") from None
    try:
        until = None if options.until is None else utc(options.until)
    except (ValueError, TypeError):
        raise OptionError(f"until must be a date or a timestamp, not {options.until!r}") from None
    if since is not None and until is not None and until <= since:
        raise OptionError(f"until ({until}) must come after since ({since})")
    try:
        window = pd.Timedelta(options.revert_window)
    except (ValueError, TypeError):
        raise OptionError(
            f"revert_window must be a duration such as '7D', not {options.revert_window!r}"
        ) from None
    if pd.isna(window) or window < pd.Timedelta(0):
        raise OptionError(f"revert_window must be a positive duration, not {window!r}")
    lookback = _duration("incident_lookback", options.incident_lookback)
    try:
        tz = check_tz(options.tz)
    except OptionError as error:
        raise OptionError(f"tz: {error}") from None
    return {
        "environments": _names(options.environments),
        "since": since,
        "until": until,
        "failure_signals": check_signals(options.failure_signals),
        "revert_window": window,
        "incident_lookback": lookback,
        "exclude_bots": _flag("exclude_bots", options.exclude_bots),
        "bot_pattern": _pattern("bot_pattern", options.bot_pattern),
        "hotfix_pattern": _pattern("hotfix_pattern", options.hotfix_pattern),
        "trunk": _flag("trunk", options.trunk),
        "approximate": _flag("approximate", options.approximate),
        "benchmarks": check_benchmarks(options.benchmarks),
        "tz": tz,
    }


__all__ = [
    "INCIDENT_LOOKBACK",
    "PREPARE_OPTIONS",
    "SIGNALS",
    "MetricOptions",
    "OptionKeywords",
    "check_signals",
]
