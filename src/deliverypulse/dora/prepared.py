"""One prepared value: link once, then the rows every metric, the analysis and the report read.

Data flows one way: :func:`deliverypulse.linking.find_links` → :func:`prepare` → metrics,
analysis → report. ``prepare`` is the only place that links when no links were given; every
public function that takes a Dataset builds its :class:`Prepared` through :func:`resolve`, and
takes a ``Prepared`` as it is, so a notebook or the report links and classifies once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset, collection_start_of
from deliverypulse.dora.failure import outcome_rows
from deliverypulse.dora.incidents import COLUMNS, REASONS
from deliverypulse.dora.lead_time import is_bot, lead_rows
from deliverypulse.dora.options import PREPARE_OPTIONS, MetricOptions, OptionKeywords
from deliverypulse.errors import OptionError
from deliverypulse.linking import Links, find_links, trunk_frame
from deliverypulse.linking.attempts import attempt_changes
from deliverypulse.linking.change_requests import link_change_requests
from deliverypulse.pseudonyms import pseudonymise_frame
from deliverypulse.timeutil import BoolArray, IntArray


@dataclass(frozen=True, eq=False)
class Prepared:
    """A dataset linked and classified once under one set of options.

    ``changes`` is every change: the dataset's, then (with ``options.trunk``) the deployed
    commits without pull request (``is_trunk``); ``is_counted`` says whether it counts as a
    change under the options (the one definition: bots are left out with ``exclude_bots``).
    The arrays give, per row, a position: ``link_change`` the row in ``changes`` of each link
    (-1: unknown), ``outcome_deployment`` and ``lead_deployment`` the row in
    ``dataset.deployments`` of each outcome and lead row.

    ``batches`` is each attempt's batch, one row per (``outcome``: row in ``outcomes``,
    ``change``: row in ``changes``) for counted changes: what a successful deployment put live
    (what it shipped, and after a rollback what it put live again) and what a failed attempt
    tried to put live (its sha's commit-graph difference from the live deployment's).
    ``shipped`` is true where this attempt first shipped the change.
    """

    dataset: Dataset
    options: MetricOptions
    links: Links
    changes: pd.DataFrame
    link_change: IntArray
    outcomes: pd.DataFrame  # one row per production deployment attempt in the window
    outcome_deployment: IntArray
    lead: pd.DataFrame  # one row per deployed change: what lead_times() returns
    lead_deployment: IntArray
    batches: pd.DataFrame  # (outcome, change, shipped): what each attempt put live or tried to
    incidents: pd.DataFrame = dataclasses.field(default_factory=lambda: _no_incidents())
    """Every incident (``dataset.incidents``' rows, in order) with how it was charged
    (:mod:`deliverypulse.dora.incidents`): ``duplicate_of`` (row here of the incident it
    duplicates, -1), ``charged_by`` (``caused_by``, ``repo``, ``service``; missing when not
    counted), ``outcome`` (row in ``outcomes`` of the deployment it failed, -1) and
    ``reason`` (why it counts for no deployment: a key of ``REASONS``)."""

    @property
    def unmatched_incidents(self) -> pd.DataFrame:
        """The incidents charged to no counted deployment (duplicates aside), with ``reason``
        (``no_service``, ``unknown_service``, ``no_deployment``, ``outside_window``) and
        ``explanation`` (the reason in words, :data:`deliverypulse.dora.incidents.REASONS`)."""
        table = self.incidents
        unmatched = table.loc[table["reason"].notna()].reset_index(drop=True)
        return unmatched.assign(explanation=unmatched["reason"].map(REASONS).astype("string"))

    def pseudonymised(self, key: bytes | str) -> Prepared:
        """This value with every person column (``author``, ``creator``, ``approvers``,
        ``reviewers``...: :data:`deliverypulse.pseudonyms.PERSON_COLUMNS`) of every table, the
        dataset's and the derived ones, shown as pseudonyms under ``key``. What counts is
        unchanged: bots were recognised by name when the value was prepared. The report and
        ``deliverypulse analyze`` show this unless names are asked for."""
        tables: dict[str, Any] = {
            item.name: pseudonymise_frame(getattr(self.dataset, item.name), key)
            for item in dataclasses.fields(Dataset)
            if isinstance(getattr(self.dataset, item.name), pd.DataFrame)
        }
        dataset = dataclasses.replace(self.dataset, **tables)
        return dataclasses.replace(
            self,
            dataset=dataset,
            changes=pseudonymise_frame(self.changes, key),
            outcomes=pseudonymise_frame(self.outcomes, key),
            lead=pseudonymise_frame(self.lead, key),
            batches=pseudonymise_frame(self.batches, key),
            incidents=pseudonymise_frame(self.incidents, key),
        )

    @classmethod
    def combine(cls, parts: Sequence[Prepared]) -> Prepared:
        """Values prepared from disjoint repo partitions of one dataset, under the same options,
        as one: their per-deployment and per-change rows one after the other, every position
        (``outcome_deployment``, ``lead_deployment``, ``batches``, incidents' ``outcome`` and
        ``duplicate_of``) moved to the combined tables.

        What the distributed engine (:mod:`deliverypulse.dora.engine`) gathers: enough for
        :func:`~deliverypulse.dora.table.metrics`, ``summary``, :func:`lead_times` and
        :func:`deployment_outcomes`, which aggregate these rows. The commit graph stays with
        the workers, so the combined value has no ``links`` and no ``commits``; the analysis
        and the report need a value prepared in one process."""
        if not parts:
            raise ValueError("combine needs at least one prepared value")
        options = parts[0].options
        if any(part.options != options for part in parts):
            raise OptionError("combine: every part must be prepared with the same options")
        deployments = _offsets([len(part.dataset.deployments) for part in parts])
        changes = _offsets([len(part.changes) for part in parts])
        outcomes = _offsets([len(part.outcomes) for part in parts])
        incidents = _offsets([len(part.incidents) for part in parts])
        tables: dict[str, Any] = {
            item.name: _concat([getattr(part.dataset, item.name) for part in parts])
            for item in dataclasses.fields(Dataset)
            if item.name in _PER_REPO_TABLES
        }
        first = parts[0].dataset
        dataset = dataclasses.replace(first, **tables, commits=first.commits.iloc[:0])
        batches = _concat(
            [
                part.batches.assign(
                    outcome=part.batches["outcome"].to_numpy(np.int64) + outcomes[i],
                    change=part.batches["change"].to_numpy(np.int64) + changes[i],
                )
                for i, part in enumerate(parts)
            ]
        )
        charged = _concat(
            [
                part.incidents.assign(
                    outcome=_moved(part.incidents["outcome"], outcomes[i]),
                    duplicate_of=_moved(part.incidents["duplicate_of"], incidents[i]),
                )
                for i, part in enumerate(parts)
            ]
        )
        return cls(
            dataset=dataset,
            options=options,
            links=Links.empty(),
            changes=_concat([part.changes for part in parts]),
            link_change=np.zeros(0, dtype=np.int64),
            outcomes=_concat([part.outcomes for part in parts]),
            outcome_deployment=np.concatenate(
                [part.outcome_deployment + deployments[i] for i, part in enumerate(parts)]
            ),
            lead=_concat([part.lead for part in parts]),
            lead_deployment=np.concatenate(
                [part.lead_deployment + deployments[i] for i, part in enumerate(parts)]
            ),
            batches=batches,
            incidents=charged,
        )


#: The dataset's tables whose rows :meth:`Prepared.combine` puts one after the other (the
#: others are the same in every part, or stay with the workers).
_PER_REPO_TABLES = ("deployments", "changes", "incidents", "deployment_change_requests")


def _offsets(sizes: list[int]) -> IntArray:
    """Where each part's rows start in the combined table."""
    return np.concatenate(([0], np.cumsum(sizes[:-1], dtype=np.int64))).astype(np.int64)


def _moved(positions: pd.Series, offset: int) -> IntArray:
    """Row positions moved by ``offset``; -1 (none) stays -1."""
    values = positions.to_numpy(np.int64)
    return np.where(values >= 0, values + offset, -1)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames one after the other; empty ones are left out so that they cannot change a
    column's dtype (an empty part's column may be ``object``)."""
    full = [frame for frame in frames if len(frame)]
    if not full:
        return frames[0].reset_index(drop=True)
    if len(full) == 1:
        return full[0].reset_index(drop=True)
    return pd.concat(full, ignore_index=True)


def _no_incidents() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in [*COLUMNS, "outcome"]})


def _links(ds: Dataset, links: pd.DataFrame | Links | None, options: MetricOptions) -> Links:
    """The links to use: as given, or found (the one place that links when none were given)."""
    if links is None:
        found = find_links(
            ds,
            environments=options.environments,
            since=options.since,
            approximate=options.approximate,
            trunk=options.trunk,
        )
    else:
        found = links if isinstance(links, Links) else Links.of_table(ds, links)
    return found if options.trunk else found.select(found.change >= 0)


def change_table(
    ds: Dataset, links: Links, options: MetricOptions
) -> tuple[pd.DataFrame, IntArray]:
    """Every change (the dataset's, then trunk commits as changes) and each link's row in it.

    ``is_bot`` is resolved (the author's name where the flag is unknown) and ``is_counted``
    added: whether the row counts as a change at all under ``options``. Every metric and the
    analysis count changes through it."""
    changes = ds.changes.assign(is_trunk=False)
    link_change = links.change.copy()
    commits = trunk_commits(links, options)
    if commits.size:
        own = trunk_frame(
            ds.commits,
            commits,
            hotfix_pattern=options.hotfix_pattern,
            bot_pattern=options.bot_pattern,
        )
        is_commit = links.commit >= 0
        link_change[is_commit] = len(changes) + np.searchsorted(commits, links.commit[is_commit])
        changes = pd.concat([changes, own.assign(is_trunk=True)], ignore_index=True)
    bots = is_bot(changes, options.bot_pattern)
    changes["is_bot"] = bots.astype("boolean")
    changes["is_counted"] = ~bots.to_numpy(dtype=bool) if options.exclude_bots else True
    return changes, link_change


def trunk_commits(links: Links, options: MetricOptions) -> IntArray:
    """Rows in ``ds.commits`` of the trunk changes, in the order ``change_table`` adds them."""
    if not options.trunk:
        return np.zeros(0, dtype=np.int64)
    commits = np.unique(links.commit)
    return commits[commits >= 0]


def in_window(ds: Dataset, rows: pd.DataFrame, at: pd.Series, options: MetricOptions) -> BoolArray:
    """Per row (with ``source`` and ``repo``): is ``at`` inside the window, from the repo's
    start (``options.since``, else where the dataset recorded its collection started) to
    ``options.until`` (excluded)?"""
    start = collection_start_of(ds, rows, options.since)
    inside = ~(at < start).fillna(False).to_numpy(dtype=bool)
    if options.until is not None:
        inside &= ~(at >= options.until).fillna(False).to_numpy(dtype=bool)
    return inside


def _batches(
    ds: Dataset,
    links: Links,
    outcomes: pd.DataFrame,
    changes: pd.DataFrame,
    options: MetricOptions,
) -> pd.DataFrame:
    """Each attempt's batch as rows (outcome, change, shipped), counted changes only."""
    found = attempt_changes(ds, outcomes, links)
    position = found["change"].to_numpy(np.int64).copy()
    commit = found["commit"].to_numpy(np.int64)
    commits = trunk_commits(links, options)
    is_commit = commit >= 0
    if commits.size:
        at = np.minimum(np.searchsorted(commits, commit[is_commit]), commits.size - 1)
        known = commits[at] == commit[is_commit]
        position[np.flatnonzero(is_commit)] = np.where(known, len(ds.changes) + at, -1)
    else:
        position[is_commit] = -1  # a commit that is no change (``trunk`` off) or never shipped
    keep = position >= 0
    keep[keep] = changes["is_counted"].to_numpy(dtype=bool)[position[keep]]
    return pd.DataFrame(
        {
            "outcome": found["attempt"].to_numpy(np.int64)[keep],
            "change": position[keep],
            "shipped": found["shipped"].to_numpy(dtype=bool)[keep],
        }
    )


def prepare(
    ds: Dataset,
    options: MetricOptions | None = None,
    *,
    links: pd.DataFrame | Links | None = None,
    **keywords: Unpack[OptionKeywords],
) -> Prepared:
    """Link once and derive what every metric aggregates: the change table, one outcome per
    production deployment attempt (from ``since`` on) and one lead-time row per deployed change.

    ``options`` (default: the defaults) with ``keywords`` applied decides how things are
    counted. ``links``: a ``deployment_changes`` table (or :class:`Links`) to use instead of
    linking. ``metrics``, ``summary``, ``lead_times``, ``deployment_outcomes``, ``analyze`` and
    ``report`` accept the result in place of the dataset.
    """
    chosen = MetricOptions.build(options, **keywords)
    ds = ds.with_teams()  # the catalogue's teams, so every stage can group by team
    ds = with_change_request_links(ds, chosen)
    found = _links(ds, links, chosen)
    changes, link_change = change_table(ds, found, chosen)
    outcomes, incidents, charged = outcome_rows(ds, found, changes, link_change, chosen)
    batches = _batches(ds, found, outcomes, changes, chosen)
    # The window of every metric and the analysis: from each repo's start (``since``, else its
    # recorded collection start; links of earlier deployments are already dropped) to ``until``.
    inside = in_window(ds, outcomes, outcomes["deployed_at"], chosen)
    renumber = np.cumsum(inside) - 1
    incidents = _incidents_in_window(incidents, charged, inside, renumber, chosen)
    outcomes = outcomes.loc[inside].reset_index(drop=True)
    kept = inside[batches["outcome"].to_numpy(np.int64)]
    batches = batches.loc[kept].reset_index(drop=True)
    batches["outcome"] = renumber[batches["outcome"].to_numpy(np.int64)]
    outcome_deployment = outcomes.pop("_row").to_numpy(np.int64)
    lead, lead_deployment = lead_rows(ds, found, changes, link_change, chosen)
    inside = in_window(ds, lead, lead["deployed_at"], chosen)
    lead, lead_deployment = lead.loc[inside].reset_index(drop=True), lead_deployment[inside]
    return Prepared(
        dataset=ds,
        options=chosen,
        links=found,
        changes=changes,
        link_change=link_change,
        outcomes=outcomes,
        outcome_deployment=outcome_deployment,
        lead=lead,
        lead_deployment=lead_deployment,
        batches=batches,
        incidents=incidents,
    )


def with_change_request_links(ds: Dataset, options: MetricOptions) -> Dataset:
    """``ds`` with ``deployment_change_requests`` filled in: the one place change requests are
    linked to deployments for the metrics and the analysis (the table as given when it holds
    rows, else :func:`deliverypulse.link_change_requests` under the options' production
    environments; nothing to do without change requests)."""
    if ds.change_requests.empty or not ds.deployment_change_requests.empty:
        return ds
    links = link_change_requests(ds, environments=options.environments)
    return dataclasses.replace(ds, deployment_change_requests=links)


def _incidents_in_window(
    incidents: pd.DataFrame,
    charged: IntArray,
    inside: BoolArray,
    renumber: IntArray,
    options: MetricOptions,
) -> pd.DataFrame:
    """The incident table with ``outcome`` (row in the windowed outcomes, -1) and reason
    ``outside_window`` for those charged to a deployment outside the window, or opened outside
    it and charged to nothing."""
    outcome = np.full(len(charged), -1, dtype=np.int64)
    hit = charged >= 0
    counted = hit.copy()
    counted[hit] = inside[charged[hit]]
    outcome[counted] = renumber[charged[counted]]
    opened = incidents["created_at"]
    outside = np.zeros(len(charged), dtype=bool)
    if options.since is not None:
        outside |= (opened < options.since).fillna(False).to_numpy(dtype=bool)
    if options.until is not None:
        outside |= (opened >= options.until).fillna(False).to_numpy(dtype=bool)
    unmatched = incidents["reason"].notna().to_numpy(dtype=bool)
    reason = incidents["reason"].mask((hit & ~counted) | (outside & unmatched), "outside_window")
    charged_by = incidents["charged_by"].mask(hit & ~counted)
    return incidents.assign(charged_by=charged_by, reason=reason, outcome=outcome)


def resolve(
    data: Dataset | Prepared,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    keywords: Mapping[str, Any] | None = None,
) -> Prepared:
    """``data`` prepared: a Dataset with ``options``, ``links`` and ``keywords``, or a Prepared
    as it is. A Prepared may take other ``tz`` or ``benchmarks`` (they only change how it is
    summarised); asking it for other links or counting options is an :class:`OptionError`."""
    given: dict[str, Any] = dict(keywords or {})
    if isinstance(data, Dataset):
        return prepare(data, options, links=links, **given)
    if not isinstance(data, Prepared):
        raise TypeError(f"expected a Dataset or a Prepared value, not {type(data).__name__}")
    wanted = MetricOptions.build(options or data.options, **given)
    changed = [
        name for name in PREPARE_OPTIONS if getattr(wanted, name) != getattr(data.options, name)
    ]
    if links is not None:
        changed.insert(0, "links")
    if changed:
        raise OptionError(
            f"{changed[0]} differs from what the value was prepared with: "
            "pass it to prepare() instead"
        )
    return data if wanted == data.options else dataclasses.replace(data, options=wanted)


def lead_times(
    data: Dataset | Prepared,
    *,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    **keywords: Unpack[OptionKeywords],
) -> pd.DataFrame:
    """One row per deployed change, deployed by its first successful production deployment.

    Columns: the change's timestamps, ``deployment_id``/``environment``/``deployed_at`` of
    that deployment, ``is_approximate`` (linked by time, not by commit graph), ``is_trunk``
    (a commit without pull request), and the spans as timedeltas: ``lead_time`` (first commit
    → deployed), ``merge_to_deploy``, and the breakdown ``coding`` (first commit → ready, or
    created), ``pickup`` (→ first review by someone else), ``review`` (→ merged), ``deploy``
    (→ deployed). Options: :class:`MetricOptions` (``exclude_bots`` drops changes by bots).
    """
    return resolve(data, options, links, keywords).lead.copy()


def deployment_outcomes(
    data: Dataset | Prepared,
    *,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    **keywords: Unpack[OptionKeywords],
) -> pd.DataFrame:
    """One row per production deployment attempt from ``since`` on: did it fail, why, and
    when it recovered.

    Columns added to the deployment's own: ``deployed_at``, ``is_success``, ``failed`` and one
    ``failed_by_<signal>`` per signal, ``is_rework`` (it ships a revert or hotfix, rolls back,
    or is the first success after a failed deployment), ``recovery_start``, ``recovery_end``,
    ``recovery`` (a timedelta; missing while not recovered). Options: :class:`MetricOptions`.
    """
    return resolve(data, options, links, keywords).outcomes.copy()


__all__ = [
    "Prepared",
    "change_table",
    "deployment_outcomes",
    "in_window",
    "lead_times",
    "prepare",
    "resolve",
    "trunk_commits",
]
