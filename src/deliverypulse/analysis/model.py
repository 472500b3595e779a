"""The results of the analysis as plain values: one ``Finding`` per comparison, one ``Analysis``.

Frozen dataclasses over pandas frames, so a notebook, the CLI and the HTML report read the same
numbers; ``to_dict`` gives the JSON-safe form used by ``--format json`` and the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Columns of ``Finding.groups``.
GROUP_COLUMNS = (
    "group",
    "deployments",
    "failures",
    "change_failure_rate",
    "cfr_low",
    "cfr_high",
    "median_lead_time_h",
    "median_recovery_h",
)

#: Columns of ``Finding.strata`` (the gate findings): one row per repo (or team).
STRATA_COLUMNS = (
    "stratum",
    "gated_deployments",
    "gated_failures",
    "ungated_deployments",
    "ungated_failures",
    "both_ways",  # it has gated and ungated deployments: it enters the within comparison
)

#: Columns of ``Analysis.deployments``.
DEPLOYMENT_COLUMNS = (
    "source",
    "repo",
    "deployment_id",
    "environment",
    "finished_at",
    "batch_changes",
    "batch_commits",
    "batch_lines",
    "batch_group",
    "gated",
    "approval_wait_h",
    "failed",
    "recovery_h",
    "lead_time_h",
    "stratum",  # what the within comparisons compare like with like in (the repo, or a team)
)

#: The controls each production deployment went through (further columns of
#: ``Analysis.deployments``, issue 16). Nullable booleans: NA where the data cannot tell.
CONTROL_DEPLOYMENT_COLUMNS = (
    "reviewed_share",  # share of its counted changes reviewed by someone else before merge
    "fully_reviewed",  # every counted change reviewed (NA for a batch of no changes)
    "tests_passed",  # CI on the deployed commit finished green before it started (NA: no CI data)
    "tests_failed_ignored",  # it deployed over a red run
    "automated",  # started by automation (workflow, pipeline, bot), not by a person
    "change_type",  # normal, standard, emergency, or none (no change request)
    "cab_approved",  # a normal change request (the change board) covered it
)

#: The controls compared in ``Analysis.controls``, in this order.
CONTROLS = ("cab_approved", "gated", "fully_reviewed", "tests_passed", "automated")

#: Columns of ``Analysis.controls``: one row per control in ``CONTROLS``.
CONTROLS_COLUMNS = (
    "control",  # a name in CONTROLS
    "label",  # how a board reads it: "Peer review of every change"
    "with_deployments",
    "with_failures",
    "with_rate",
    "with_rate_low",
    "with_rate_high",
    "without_deployments",
    "without_failures",
    "without_rate",
    "without_rate_low",
    "without_rate_high",
    "unknown_deployments",  # the data cannot tell whether the control applied
    "strata_both_ways",  # repos (strata) with deployments both with and without it
    "within_with_deployments",  # the counts in those repos only: what the within test compares
    "within_with_failures",
    "within_without_deployments",
    "within_without_failures",
    "within_odds_ratio",  # within repo, failures with vs without (Mantel-Haenszel or exact)
    "within_low",
    "within_high",
    "within_p",
    "within_test",
    "adjusted_odds_ratio",  # the model with every control together, stratified by repo
    "adjusted_low",
    "adjusted_high",
    "adjusted_p",
    "adjusted_test",
    "median_lead_time_with_h",
    "median_lead_time_without_h",
    "verdict",  # "fewer failures", "more failures", "no clear difference", "cannot tell"
    "plain",  # the row in plain words, with counts a person can check
)


#: Columns of ``Analysis.what_if``: one row per repo (or team) with gated deployments.
WHAT_IF_COLUMNS = (
    "group",  # the repo (or team) the row is about
    "gated_deployments",
    "approval_wait_median_h",
    "approval_wait_total_h",
    "lead_time_saved_median_h",  # estimated drop in the median lead time without the waits
    "lead_time_saved_low_h",
    "lead_time_saved_high_h",
    "failure_difference",  # gated minus ungated change failure rate, within the group
    "failure_difference_low",
    "failure_difference_high",
    "failure_note",  # e.g. "no ungated deployments to compare with"
    "plain",  # the row in plain words, for a board
)

#: Further columns of ``Analysis.what_if`` (the counts behind the row, and its scope).
WHAT_IF_DETAIL_COLUMNS = (
    "gated_failures",
    "ungated_deployments",
    "ungated_failures",
    "changes",  # changes with a lead time, over which the saving is a median
    "median_lead_time_h",
    "median_lead_time_without_waits_h",
)


#: Columns of ``Analysis.change_board``: one row per change type.
CHANGE_BOARD_COLUMNS = (
    "change_type",  # normal (CAB-approved), standard, emergency, none (no change request)
    "deployments",  # production deployment attempts in the window
    "failures",
    "change_failure_rate",
    "change_failure_rate_low",  # Wilson 95 % interval, as in the gate comparison
    "change_failure_rate_high",
    "approval_wait_median_h",  # first request -> approval, per change request
    "lead_time_median_h",  # first commit -> deployed, of the changes those deployments shipped
    "change_requests",  # distinct change requests behind the deployments
    "changes",  # deployed changes with a lead time (what lead_time_median_h is a median of)
)


def empty_what_if() -> pd.DataFrame:
    """A ``what_if`` frame with no rows (no group had gated deployments)."""
    columns = (*WHAT_IF_COLUMNS, *WHAT_IF_DETAIL_COLUMNS)
    return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})


@dataclass(frozen=True)
class Estimate:
    """One effect estimate and the test behind it (a finding may carry several, e.g. the crude
    Fisher comparison and the one stratified by repo)."""

    effect: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    test: str
    p_value: float | None
    note: str = ""
    #: What it compares: "within repo" (like with like) or "across repos (crude)".
    scope: str = ""


#: The scope of a comparison made within each repo (or team): like with like.
WITHIN = "within {unit}"
#: The scope of the crude comparison over every deployment, repos mixed.
ACROSS = "across {unit}s (crude)"


@dataclass(frozen=True)
class Finding:
    """One comparison: the groups side by side, the main effect with its 95 % CI and test, and a
    plain sentence of what it shows or cannot show. ``estimates`` holds every estimate computed
    for the comparison (the main one first)."""

    question: str
    groups: pd.DataFrame
    effect: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    test: str
    p_value: float | None
    statement: str
    name: str = ""
    estimates: tuple[Estimate, ...] = ()
    enough_data: bool = True
    #: The finding in plain words a board reads: countable numbers, no test names. Its
    #: estimate, interval and p-value (in ``statement``) all come from ``estimates[0]``.
    plain: str = ""
    #: What the leading estimate compares: "within repo" (like with like) or "across repos".
    scope: str = ""
    #: Per repo (or team), the counts behind a within comparison (``STRATA_COLUMNS``; the gate
    #: finding); empty where it does not apply.
    strata: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(STRATA_COLUMNS)))

    @classmethod
    def led_by(
        cls,
        name: str,
        question: str,
        groups: pd.DataFrame,
        estimates: Sequence[Estimate],
        statement: str,
        enough: bool,
        plain: str = "",
    ) -> Finding:
        """A finding whose effect, interval, test, p-value and scope are all ``estimates[0]``'s
        (so a sentence never mixes methods)."""
        main = estimates[0]
        return cls(
            question=question,
            groups=groups,
            effect=main.effect,
            estimate=main.estimate,
            ci_low=main.ci_low,
            ci_high=main.ci_high,
            test=main.test,
            p_value=main.p_value,
            statement=statement,
            name=name,
            estimates=tuple(estimates),
            enough_data=enough,
            plain=plain or statement,
            scope=main.scope,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "question": self.question,
            "plain": self.plain or self.statement,
            "scope": self.scope,
            "groups": frame_records(self.groups),
            "strata": frame_records(self.strata),
            "effect": self.effect,
            "estimate": json_value(self.estimate),
            "ci_low": json_value(self.ci_low),
            "ci_high": json_value(self.ci_high),
            "test": self.test,
            "p_value": json_value(self.p_value),
            "statement": self.statement,
            "enough_data": self.enough_data,
            "estimates": [
                {
                    "effect": item.effect,
                    "estimate": json_value(item.estimate),
                    "ci_low": json_value(item.ci_low),
                    "ci_high": json_value(item.ci_high),
                    "test": item.test,
                    "p_value": json_value(item.p_value),
                    "note": item.note,
                    "scope": item.scope,
                }
                for item in self.estimates
            ],
        }


@dataclass(frozen=True)
class Analysis:
    """Batch size and approval gates against failure, recovery and lead time, with a verdict.

    ``deployments``: one row per production deployment attempt (columns
    ``DEPLOYMENT_COLUMNS``; a failed attempt's batch is what it tried to put live).
    ``verdict``: plain sentences, most important first, caveats included; ``headline`` is the
    first thing a board reads. ``what_if``: per repo (or team) with gated deployments, what
    dropping the gate would save and what the data says about failures (``WHAT_IF_COLUMNS``).
    """

    deployments: pd.DataFrame
    batch_size: Finding
    gates: Finding
    findings: tuple[Finding, ...]
    verdict: tuple[str, ...]
    enough_data: bool
    window: tuple[pd.Timestamp | None, pd.Timestamp | None]
    caveats: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    what_if: pd.DataFrame = field(default_factory=empty_what_if)
    #: One row per change type (``CHANGE_BOARD_COLUMNS``); no rows without change requests.
    change_board: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(CHANGE_BOARD_COLUMNS))
    )
    #: CAB-approved against other deployments, within repo first (``finding("change_board")``).
    change_board_finding: Finding | None = None
    #: ``what_if``'s columns plus ``control`` ("CAB approval"), per repo with CAB-approved
    #: deployments: what dropping CAB approval would save per change.
    change_board_what_if: pd.DataFrame = field(default_factory=empty_what_if)
    #: One row per control (``CONTROLS_COLUMNS``): which controls go with fewer failures and
    #: which only with longer waits, within repo and in one model of all of them (issue 16).
    controls: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(CONTROLS_COLUMNS))
    )
    #: The controls in plain words, most trustworthy first (the report's "What catches
    #: problems"); the first sentence is the one a board reads.
    controls_verdict: tuple[str, ...] = ()
    #: The caveats among ``controls_verdict`` (as ``caveats`` are among ``verdict``).
    controls_caveats: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        """The answer in plain words with numbers a person can check: the verdict's first
        sentence."""
        return self.verdict[0] if self.verdict else ""

    def finding(self, name: str) -> Finding:
        """The finding called ``name`` (``batch_size``, ``gates``, ``gate_lead_time``...)."""
        for item in self.findings:
            if item.name == name:
                return item
        if name == "change_board" and self.change_board_finding is not None:
            return self.change_board_finding
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: timestamps as ISO strings, NaN/NA as None, numpy scalars as Python."""
        return {
            "enough_data": self.enough_data,
            "window": [json_value(self.window[0]), json_value(self.window[1])],
            "headline": self.headline,
            "verdict": list(self.verdict),
            "caveats": list(self.caveats),
            "parameters": {key: json_value(value) for key, value in self.parameters.items()},
            "batch_size": self.batch_size.to_dict(),
            "gates": self.gates.to_dict(),
            "findings": [item.to_dict() for item in self.findings],
            "what_if": frame_records(self.what_if),
            "change_board": {
                "table": frame_records(self.change_board),
                "finding": None
                if self.change_board_finding is None
                else self.change_board_finding.to_dict(),
                "what_if": frame_records(self.change_board_what_if),
            },
            "controls": {
                "table": frame_records(self.controls),
                "verdict": list(self.controls_verdict),
                "caveats": list(self.controls_caveats),
            },
            "deployments": frame_records(self.deployments),
        }


def json_value(value: Any) -> Any:
    """One value in a JSON-safe form."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, tuple | list | np.ndarray):
        return [json_value(item) for item in value]
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-safe dicts."""
    columns = [str(name) for name in frame.columns]
    rows = frame.astype(object).to_numpy().tolist()
    return [
        {name: json_value(value) for name, value in zip(columns, row, strict=True)} for row in rows
    ]


__all__ = [
    "ACROSS",
    "CHANGE_BOARD_COLUMNS",
    "CONTROLS",
    "CONTROLS_COLUMNS",
    "CONTROL_DEPLOYMENT_COLUMNS",
    "DEPLOYMENT_COLUMNS",
    "GROUP_COLUMNS",
    "STRATA_COLUMNS",
    "WHAT_IF_COLUMNS",
    "WHAT_IF_DETAIL_COLUMNS",
    "WITHIN",
    "Analysis",
    "Estimate",
    "Finding",
    "empty_what_if",
    "frame_records",
    "json_value",
]
