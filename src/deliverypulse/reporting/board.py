"""What a board reads first, as plain values: the answer (the analysis's headline and each
finding's plain sentence), "what if we dropped the gate", the spread of per-repo (and per-team)
DORA ratings, what counted as a deployment, the change against the previous period, and where a
figure rests on weak ground.

No statistics are computed here beyond counting: every estimate comes from the analysis, every
rating from ``summary(..., by=[...])``. This module only words and counts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from deliverypulse.analysis import Analysis, Finding
from deliverypulse.reporting import formatting as fmt

CLUSTERS = ("elite", "high", "medium", "low")
#: summary() rating columns of the four DORA metrics, by the tile's metric column.
RATED = {
    "deployments_per_day": "deployment_frequency_cluster",
    "lead_time_median_hours": "lead_time_cluster",
    "change_failure_rate": "change_failure_rate_cluster",
    "recovery_median_hours": "recovery_cluster",
}
#: Below this many deployments on either side of a like-with-like gate comparison, say so.
FEW_DEPLOYMENTS = 20
#: Share of successful deployments that shipped no counted change above which the page warns.
EMPTY_SHARE = 0.10
#: Share of recoveries of at most a minute above which the page warns.
INSTANT_SHARE = 0.10
INSTANT = pd.Timedelta(minutes=1)
MINUS = "\u2212"  # a typographic minus sign for signed changes


# -- ratings: the spread across repos (and teams), never one rating for everything ----------


@dataclass(frozen=True)
class Spread:
    """How many repos (or teams) fall in each DORA cluster for one metric."""

    unit: str  # "repo" or "team"
    counts: tuple[tuple[str, int], ...]  # (cluster, how many), elite first; "not rated" last

    @property
    def total(self) -> int:
        return sum(count for _, count in self.counts)

    def count(self, cluster: str) -> int:
        return dict(self.counts).get(cluster, 0)

    @property
    def text(self) -> str:
        """ "1 of 6 repos elite, 4 high, 1 medium" (groups with no rating: "1 not rated")."""
        shown = [(cluster, count) for cluster, count in self.counts if count]
        if not shown:
            return f"no {self.unit}s rated"
        noun = self.unit if self.total == 1 else f"{self.unit}s"
        (first, many), *rest = shown
        parts = [f"{many} of {self.total} {noun} {first}"]
        parts += [f"{count} {cluster}" for cluster, count in rest]
        return ", ".join(parts)


def spread(table: pd.DataFrame, column: str, unit: str) -> Spread | None:
    """The spread of ``column`` (a ``*_cluster`` column of ``summary(..., by=[unit])``)."""
    if table.empty or column not in table.columns:
        return None
    values = table[column].astype(object).where(table[column].notna(), None)
    counts = [(cluster, int((values == cluster).sum())) for cluster in CLUSTERS]
    unrated = int(values.isna().sum())
    if unrated:
        counts.append(("not rated", unrated))
    return Spread(unit, tuple(counts))


# -- the answer -------------------------------------------------------------------------------


def plain(finding: Finding) -> str:
    """A finding in plain words: its ``plain`` sentence, or (from an older analysis) its
    statement."""
    return finding.plain or finding.statement


def crude(finding: Finding) -> bool:
    """Whether the finding compares across repos (the crude comparison, shown second)."""
    return finding.scope.lower().startswith("across repos")


def leading(analysis: Analysis, finding: Finding) -> bool:
    """Whether ``finding`` is one of the two questions the page leads with (gates and batch
    size), within repos or across them (``gates_crude``...)."""
    names = {analysis.gates.name, analysis.batch_size.name}
    return finding.name in names or any(finding.name.startswith(f"{name}_") for name in names)


def answer(analysis: Analysis) -> tuple[str, ...]:
    """The sentences under the headline: the gate and batch-size findings in plain words,
    like-with-like comparisons first, crude ones after and labelled; the headline itself is
    not repeated. The other findings follow further down the page."""
    headline = analysis.headline
    found = [analysis.gates, analysis.batch_size]
    found += [item for item in analysis.findings if leading(analysis, item)]
    ordered = sorted(
        (item for item in found if item.enough_data and plain(item)),
        key=crude,
    )
    lines: list[str] = []
    for item in ordered:
        sentence = plain(item)
        if crude(item) and not sentence.lower().startswith("across"):
            sentence = f"Across repos (not like with like): {sentence}"
        if sentence != headline and sentence not in lines:
            lines.append(sentence)
    return tuple(lines)


# -- what if we dropped the gate --------------------------------------------------------------


def _hours_range(middle: Any, low: Any, high: Any) -> str:
    text = fmt.duration(middle)
    if fmt.number(low) is None or fmt.number(high) is None:
        return text
    return f"{text} ({fmt.duration(low)} to {fmt.duration(high)})"


def _points(value: Any) -> str:
    amount = fmt.number(value)
    if amount is None:
        return fmt.MISSING
    return f"{amount * 100:+.0f} points".replace("-", MINUS)


def what_if_rows(frame: pd.DataFrame) -> tuple[tuple[str, ...], ...]:
    """The ``Analysis.what_if`` table as text cells, plain labels in ``WHAT_IF_LABELS``."""
    rows = []
    for row in frame.to_dict("records"):
        note = row.get("failure_note")
        if fmt.number(row.get("failure_difference")) is not None:
            failures = _points(row["failure_difference"])
            low, high = row.get("failure_difference_low"), row.get("failure_difference_high")
            if fmt.number(low) is not None and fmt.number(high) is not None:
                failures += f" ({_points(low)} to {_points(high)})"
        else:
            failures = str(note) if isinstance(note, str) and note else fmt.MISSING
        rows.append(
            (
                str(row.get("group")),
                fmt.count(row.get("gated_deployments")),
                fmt.duration(row.get("approval_wait_median_h")),
                fmt.duration(row.get("approval_wait_total_h")),
                _hours_range(
                    row.get("lead_time_saved_median_h"),
                    row.get("lead_time_saved_low_h"),
                    row.get("lead_time_saved_high_h"),
                ),
                failures,
            )
        )
    return tuple(rows)


WHAT_IF_LABELS = (
    "Where",
    "Gated deployments",
    "Typical wait for approval",
    "All waiting, added up",
    "Lead time saved per change (likely range)",
    "Failure rate with the gate, minus without (likely range)",
)


def what_if_sentences(frame: pd.DataFrame) -> tuple[str, ...]:
    return tuple(
        str(text) for text in frame.get("plain", pd.Series(dtype=object)) if isinstance(text, str)
    )


# -- the gate chart: like with like first -------------------------------------------------------


def mixed_repos(deployments: pd.DataFrame) -> list[str]:
    """Repos with both gated and ungated deployments: the only like-with-like comparison."""
    known = deployments.loc[deployments["gated"].notna(), ["repo", "gated"]]
    kinds = known.assign(gated=known["gated"].astype(bool)).groupby("repo")["gated"].nunique()
    return sorted(str(repo) for repo in kinds.index[kinds == 2])


# -- where a figure rests on weak ground -------------------------------------------------------


def warnings(analysis: Analysis, outcomes: pd.DataFrame) -> tuple[str, ...]:
    """Plain data-quality warnings, each with the counts behind it."""
    found: list[str] = []
    deployments = analysis.deployments
    mixed = mixed_repos(deployments) if not deployments.empty else []
    known = deployments.loc[deployments["gated"].notna()]
    if mixed:
        inside = known.loc[known["repo"].isin(mixed)]
        gated = int(inside["gated"].astype(bool).sum())
        ungated = len(inside) - gated
        if min(gated, ungated) < FEW_DEPLOYMENTS:
            found.append(
                f"Few deployments to compare like with like: in the {_repos(len(mixed))} that "
                f"deploy both ways there are {gated} gated and {ungated} ungated deployments, "
                "so a difference between them can easily be chance."
            )
    elif not known.empty and known["gated"].astype(bool).any():
        found.append(
            "No repo deploys both with and without a gate, so the data cannot compare gated "
            "and ungated deployments of the same repo; any difference may be the repos'."
        )
    if not deployments.empty and "batch_changes" in deployments.columns:
        succeeded = deployments.loc[~deployments["failed"].astype(bool)]
        empty = int((succeeded["batch_changes"].fillna(0) == 0).sum())
        if len(succeeded) and empty / len(succeeded) >= EMPTY_SHARE:
            found.append(
                f"{empty} of {len(succeeded)} successful deployments shipped no change that "
                "counts (redeploys, configuration-only or bot-only releases): they make "
                "deployment frequency look higher than the flow of changes."
            )
    if "recovery" in outcomes.columns:
        recovered = outcomes.loc[outcomes["recovery"].notna(), "recovery"]
        instant = int((recovered <= INSTANT).sum())
        if instant and instant / len(recovered) >= INSTANT_SHARE:
            found.append(
                f"{instant} of {len(recovered)} recoveries took a minute or less (a rollback "
                "that finished as the failure was recorded), so recovery time may look shorter "
                "than restoring service really took."
            )
    found.append(
        "These are patterns in the delivery history, not proof of cause: teams choose which "
        "deployments to gate and how much to batch."
    )
    return tuple(found)


def _repos(count: int) -> str:
    return f"{count} repo" if count == 1 else f"{count} repos"


# -- what counted as a deployment ---------------------------------------------------------------


def _how_found(rows: pd.DataFrame) -> str:
    ids = rows["deployment_id"].astype(str)
    no_url = rows["url"].isna().all() if "url" in rows.columns else True
    if ids.str.startswith("release-").all():
        return "published releases"
    if no_url and (ids == rows["ref"].astype(str)).all():
        return "release tags in git (a tag is a deployment at the moment it was made)"
    if no_url and (ids == rows["sha"].astype(str)).all():
        refs = ", ".join(sorted({str(ref) for ref in rows["ref"].dropna()})) or "a branch"
        return f"merges into {refs} in git"
    return "deployment records kept by the provider, each with its own status"


def deployment_sources(deployments: pd.DataFrame, outcomes: pd.DataFrame) -> tuple[str, ...]:
    """Per source: which environments counted as production (with how many deployment attempts
    in the window), how the deployments were found, and which environments did not count."""
    lines = []
    if outcomes.empty:
        return ()
    start, end = outcomes["finished_at"].min(), outcomes["finished_at"].max()
    for source, counted in outcomes.groupby(outcomes["source"].astype(str), sort=True):
        environments = counted["environment"].astype(object).fillna("(unnamed)")
        named = environments.value_counts()
        production = (
            f"“{named.index[0]}”"
            if len(named) == 1
            else ", ".join(f"“{name}” ({count:,})" for name, count in named.items())
        )
        gated = int(counted["approval_required"].eq(True).sum())
        gate = f"; {gated:,} of them waited for an approval" if gated else ""
        everything = deployments.loc[deployments["source"].astype(str) == source]
        when = everything["finished_at"].fillna(everything["created_at"])
        inside = everything.loc[(when >= start) & (when <= end)]
        others = inside.loc[~inside["environment"].astype(object).isin(set(environments))]
        skipped = ""
        if not others.empty:
            names = others["environment"].astype(object).fillna("(unnamed)").value_counts()
            skipped = "; not counted: " + ", ".join(
                f"“{name}” ({count:,})" for name, count in names.items()
            )
        how = _how_found(counted)
        lines.append(
            f"{source}: {len(counted):,} production deployment attempts to {production}, "
            f"from {how}{gate}{skipped}."
        )
    return tuple(lines)


# -- the latest period against the one before --------------------------------------------------


def delta(now: Any, before: Any, kind: str) -> str:
    a, b = fmt.number(now), fmt.number(before)
    if a is None or b is None:
        return ""
    change = a - b
    if kind == "count":
        return "no change" if change == 0 else f"{change:+,.0f}".replace("-", MINUS)
    if kind == "rate":
        points = change * 100
        if abs(points) < 0.05:
            return "no change"
        return f"{'up' if points > 0 else 'down'} {abs(points):.1f} points"
    if abs(change) < 1 / 60:
        return "no change"
    return f"{'up' if change > 0 else 'down'} {fmt.duration(abs(change))}"


def period_change(per_period: pd.DataFrame, period: str, window_end: Any, label: Any) -> str | None:
    """The last period against the one before, each figure with the count it rests on."""
    if len(per_period) < 2:
        return None
    last, before = per_period.iloc[-1], per_period.iloc[-2]
    starts = pd.Timestamp(last["period"])
    ends = starts + (pd.DateOffset(weeks=1) if period == "week" else pd.DateOffset(months=1))
    partial = ""
    if window_end is not None and pd.Timestamp(window_end) + pd.Timedelta(days=1) < ends:
        partial = f" (so far: to {pd.Timestamp(window_end):%d %b})"

    def part(value: str, change: str, basis: str) -> str:
        inner = "; ".join(item for item in (change, basis) if item)
        return f"{value} ({inner})" if inner else value

    pieces = [
        part(
            f"{fmt.count(last['deployments'])} deployments",
            delta(last["deployments"], before["deployments"], "count"),
            "",
        ),
        part(
            f"median lead time {fmt.duration(last['lead_time_median_hours'])}",
            delta(last["lead_time_median_hours"], before["lead_time_median_hours"], "hours"),
            f"{fmt.count(last['lead_time_count'])} changes",
        ),
        part(
            f"failure rate {fmt.percent(last['change_failure_rate'])}",
            delta(last["change_failure_rate"], before["change_failure_rate"], "rate"),
            f"{fmt.count(last['failed_deployments'])} of {fmt.count(last['deployment_attempts'])}",
        ),
        part(
            f"median recovery {fmt.duration(last['recovery_median_hours'])}",
            delta(last["recovery_median_hours"], before["recovery_median_hours"], "hours"),
            f"{fmt.count(last['recovery_count'])} recoveries",
        ),
    ]
    return (
        f"{label(last['period'], period)}{partial} against {label(before['period'], period)}: "
        + ", ".join(pieces)
        + "."
    )


def join(items: Iterable[str]) -> str:
    names = list(items)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


__all__ = [
    "CLUSTERS",
    "RATED",
    "WHAT_IF_LABELS",
    "Spread",
    "answer",
    "crude",
    "delta",
    "deployment_sources",
    "leading",
    "mixed_repos",
    "period_change",
    "plain",
    "spread",
    "warnings",
    "what_if_rows",
    "what_if_sentences",
]
