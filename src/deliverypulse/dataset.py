"""The Dataset: every table as a tidy pandas DataFrame, from Parquet or from hand-made frames."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from deliverypulse.errors import DataError, DeliveryPulseError, StorageError
from deliverypulse.store.catalogue import (
    Service,
    read_catalogue,
    services_frame,
    services_from_frame,
    write_catalogue,
)
from deliverypulse.store.coerce import Records, coerce_frame, from_arrow, to_arrow, to_frame
from deliverypulse.store.location import Location, resolve
from deliverypulse.store.parquet import ParquetStore
from deliverypulse.store.schemas import TABLES, spec_for
from deliverypulse.store.state import SOURCE_START, Start, SyncState
from deliverypulse.timeutil import utc

#: Columns of :attr:`Dataset.collection_start`.
START_COLUMNS = ("source", "repo", "start")


def empty_frame(table: str) -> pd.DataFrame:
    """A zero-row frame with ``table``'s columns and dtypes."""
    return from_arrow(spec_for(table).schema.empty_table())


def start_frame(data: Any = None, *, source: str | None = None) -> pd.DataFrame:
    """Collection starts as a frame of ``source``, ``repo`` and ``start``.

    ``repo`` missing: the source's own start (for its rows under other repo names). ``start``
    missing (NaT): the collection read the source's whole history. Accepts a frame, records,
    or a mapping ``{repo: start}`` (with ``source``); a bad value is a :class:`DataError`.
    """
    if data is None:
        rows: Any = []
    elif isinstance(data, Mapping):
        rows = [{"repo": repo, "start": start} for repo, start in data.items()]
    else:
        rows = data
    frame = to_frame(rows)
    if "start" not in frame.columns and len(frame):
        raise DataError("collection_start needs a 'start' column", table="collection_start")
    out = pd.DataFrame(
        {
            "source": _strings(frame, "source", source),
            "repo": _strings(frame, "repo", None),
            "start": _times(frame),
        }
    )
    if bool(out["source"].isna().any()):
        raise DataError(
            "collection_start: every row needs a source (or pass source=)",
            table="collection_start",
            column="source",
        )
    return out.reset_index(drop=True)


def _strings(frame: pd.DataFrame, name: str, default: str | None) -> pd.Series:
    if name in frame.columns:
        column = frame[name].astype("string")
        return column.mask(column == "") if name == "repo" else column.fillna(default)
    return pd.Series([default] * len(frame), dtype="string")


def _times(frame: pd.DataFrame) -> pd.Series:
    if "start" not in frame.columns:
        return pd.Series([], dtype="datetime64[us, UTC]")
    try:
        return pd.Series(
            [pd.NaT if pd.isna(value) else utc(value) for value in frame["start"]],
            dtype="datetime64[us, UTC]",
        )
    except (TypeError, ValueError) as error:
        raise DataError(
            f"collection_start: 'start' must be timestamps ({error})",
            table="collection_start",
            column="start",
        ) from None


def collection_start_of(ds: Dataset, rows: pd.DataFrame, since: Any = None) -> pd.Series:
    """Per row of ``rows`` (with ``source`` and ``repo``), where its repo's collection started.

    ``since``: a time (every repo starts there), a frame like :func:`start_frame` takes (per
    source and repo), or ``None``: what the dataset recorded (:attr:`Dataset.collection_start`;
    a repo without a row of its own takes its source's). NaT where nothing is known or the
    whole history was read; callers then start at the repo's first production deployment.
    """
    index = rows.index
    if since is not None and not isinstance(since, pd.DataFrame | list | Mapping):
        return pd.Series(utc(since), index=index, dtype="datetime64[us, UTC]")
    table = ds.collection_start if since is None else start_frame(since)
    if table.empty or rows.empty:
        return pd.Series(pd.NaT, index=index, dtype="datetime64[us, UTC]")
    keys = rows[["source", "repo"]].astype("string").reset_index(drop=True)
    own = table.loc[table["repo"].notna()].drop_duplicates(["source", "repo"], keep="last")
    whole = table.loc[table["repo"].isna(), ["source", "start"]].drop_duplicates(
        "source", keep="last"
    )
    found = keys.merge(own, on=["source", "repo"], how="left")["start"]
    has_own = keys.merge(own.assign(_own=True), on=["source", "repo"], how="left")["_own"]
    fallback = keys.merge(whole, on="source", how="left")["start"]
    start = found.where(has_own.notna().to_numpy(dtype=bool), fallback)
    return pd.Series(start.to_numpy(), index=index, dtype="datetime64[us, UTC]")


@dataclass
class Dataset:
    """The tables of one dataset. Columns and dtypes are fixed by ``deliverypulse.store.schemas``.

    Timestamps are UTC ``datetime64[us, UTC]``; text, integer, float and boolean columns use
    pandas' nullable dtypes (text Arrow-backed); list columns (``labels``, ``parents``...) are
    Arrow lists of strings (``store.coerce.LIST_DTYPE``: a cell reads as a Python list).
    Columns you add (``team``, say) travel along and can be used to group metrics.

    ``services`` is the service catalogue the data was collected with (the config's
    ``[[services]]``, stored as ``_deliverypulse/services.json``): one row per service with
    ``name``, ``repos``, ``configuration_items``, ``incident_services`` and ``team``.
    """

    deployments: pd.DataFrame = field(default_factory=partial(empty_frame, "deployments"))
    changes: pd.DataFrame = field(default_factory=partial(empty_frame, "changes"))
    commits: pd.DataFrame = field(default_factory=partial(empty_frame, "commits"))
    test_runs: pd.DataFrame = field(default_factory=partial(empty_frame, "test_runs"))
    incidents: pd.DataFrame = field(default_factory=partial(empty_frame, "incidents"))
    deployment_changes: pd.DataFrame = field(
        default_factory=partial(empty_frame, "deployment_changes")
    )
    change_requests: pd.DataFrame = field(default_factory=partial(empty_frame, "change_requests"))
    deployment_change_requests: pd.DataFrame = field(
        default_factory=partial(empty_frame, "deployment_change_requests")
    )
    repo_teams: pd.DataFrame = field(default_factory=partial(empty_frame, "repo_teams"))
    """The team the code host names for each repo (a source's ``teams`` option: CODEOWNERS or
    GitHub team permissions), used where the catalogue names none (:meth:`with_teams`)."""
    services: pd.DataFrame = field(default_factory=lambda: services_frame(()))
    path: Path | str | None = None
    """Where it was loaded from: a local folder, or the URL of one on object storage."""
    collection_start: pd.DataFrame = field(default_factory=start_frame)
    """Where each source's (``repo`` missing) and repo's collection started: ``start`` is the
    collect run's ``since``, or NaT when it read the whole history. Every stage starts there
    unless given ``since``."""

    @classmethod
    def from_frames(
        cls,
        *,
        deployments: Records | None = None,
        changes: Records | None = None,
        commits: Records | None = None,
        test_runs: Records | None = None,
        incidents: Records | None = None,
        deployment_changes: Records | None = None,
        collection_start: Any = None,
        change_requests: Records | None = None,
        deployment_change_requests: Records | None = None,
        services: Iterable[Service] | pd.DataFrame | None = None,
        source: str = "manual",
        repo_teams: Records | None = None,
    ) -> Dataset:
        """Build a Dataset from DataFrames or lists of dicts.

        Each table is coerced to its schema: missing optional columns are filled with nulls,
        ISO strings become UTC timestamps, a missing ``source`` becomes ``source``. A value that
        does not fit raises :class:`DataError` naming the table, column and row.
        ``collection_start``: where each repo's collection started (rows of ``source``,
        ``repo``, ``start``, or ``{repo: start}``), as ``collect --since`` records it.
        ``services`` is the catalogue: :class:`~deliverypulse.store.catalogue.Service` values
        or a frame like ``Dataset.services``; ``repo_teams`` the code host's teams (rows of
        ``repo``, ``team``, ``origin``).
        """
        given = {
            "deployments": deployments,
            "changes": changes,
            "commits": commits,
            "test_runs": test_runs,
            "incidents": incidents,
            "deployment_changes": deployment_changes,
            "change_requests": change_requests,
            "deployment_change_requests": deployment_change_requests,
            "repo_teams": repo_teams,
        }
        frames = {
            name: coerce_frame(spec_for(name), data, source=source, keep_extra=True)
            for name, data in given.items()
            if data is not None
        }
        if services is not None:
            values = (
                services_from_frame(services)
                if isinstance(services, pd.DataFrame)
                else tuple(services)
            )
            frames["services"] = services_frame(values)
        starts = start_frame(collection_start, source=source)
        return cls(**frames, collection_start=starts)  # type: ignore[arg-type]

    @property
    def catalogue(self) -> tuple[Service, ...]:
        """``services`` as values (what the linking stage reads)."""
        return services_from_frame(self.services)

    def with_teams(self) -> Dataset:
        """This dataset with a ``team`` column on ``deployments`` and ``changes``, by the row's
        repo (compared without case), from the first of:

        1. the catalogue: the first service (in catalogue order) with a team that lists it;
        2. ``repo_teams``: the team the code host names for it (a source's ``teams`` option),
           the row's own source's first, else any source's (the first by source name).

        Missing for a repo neither names. A table that has a ``team`` column already keeps it;
        with no team anywhere, the dataset is returned as it is. :func:`deliverypulse.prepare`
        calls it, so ``metrics(ds, by="team")`` needs no column of your own."""
        catalogue: dict[str, str] = {}
        for service in self.catalogue:
            if service.team:
                for repo in service.repos:
                    catalogue.setdefault(repo.strip().casefold(), service.team)
        hosted = _host_teams(self.repo_teams)
        if not catalogue and hosted.empty:
            return self
        deployments, changes = self.deployments, self.changes
        if "team" in deployments.columns and "team" in changes.columns:
            return self
        if "team" not in deployments.columns:
            deployments = deployments.assign(team=_team_of(deployments, catalogue, hosted))
        if "team" not in changes.columns:
            changes = changes.assign(team=_team_of(changes, catalogue, hosted))
        return dataclasses.replace(self, deployments=deployments, changes=changes)

    def table(self, name: str) -> pd.DataFrame:
        spec_for(name)
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def save(self, path: Path | str | Location) -> None:
        """Upsert every table into the Parquet dataset at ``path``, a folder or a URL such as
        ``s3://bucket/prefix`` (extra columns are dropped)."""
        location = resolve(path)
        store = ParquetStore(location)
        for name in TABLES:
            frame = self.table(name)
            spec = spec_for(name)
            for source, part in frame.groupby("source", sort=True, observed=True):
                store.upsert(name, str(source), to_arrow(spec, part.reset_index(drop=True)))
        frame = self.collection_start
        starts = [
            Start(
                str(source),
                SOURCE_START if pd.isna(repo) else str(repo),
                None if pd.isna(start) else pd.Timestamp(start).to_pydatetime(),
            )
            for source, repo, start in zip(
                frame["source"].tolist(),
                frame["repo"].tolist(),
                frame["start"].tolist(),
                strict=True,
            )
        ]
        SyncState(location).set_starts(starts)
        if len(self.services):
            write_catalogue(location, self.catalogue)

    def summary(self) -> dict[str, int]:
        return {name: len(self.table(name)) for name in TABLES}

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={count}" for name, count in self.summary().items())
        where = f" at {self.path}" if self.path else ""
        return f"<Dataset{where}: {counts}>"


def _host_teams(repo_teams: pd.DataFrame) -> pd.DataFrame:
    """``repo_teams`` rows that name a team, with the repo case-folded (``key``), by source."""
    named = repo_teams.loc[repo_teams["team"].notna(), ["source", "repo", "team"]]
    return named.assign(
        source=named["source"].astype("string"),
        key=named["repo"].astype("string").str.strip().str.casefold(),
    ).sort_values(["source", "key"], kind="stable")


def _team_of(frame: pd.DataFrame, catalogue: Mapping[str, str], hosted: pd.DataFrame) -> pd.Series:
    """Each row's team: the catalogue's for its repo, else its own source's ``repo_teams``
    team, else another source's."""
    folded = frame["repo"].astype("string").str.strip().str.casefold()
    team = folded.map(catalogue, na_action="ignore").astype("string")
    if hosted.empty:
        return team
    rows = pd.DataFrame(
        {"source": frame["source"].astype("string").to_numpy(), "key": folded.to_numpy()}
    )
    own = hosted.drop_duplicates(["source", "key"])[["source", "key", "team"]]
    anyone = hosted.drop_duplicates("key")[["key", "team"]]
    from_own = rows.merge(own, on=["source", "key"], how="left")["team"]
    from_any = rows.merge(anyone, on="key", how="left")["team"]
    host = from_own.fillna(from_any).astype("string").to_numpy()
    return team.fillna(pd.Series(host, index=team.index, dtype="string"))


def load(
    path: Path | str | Location,
    *,
    tables: Iterable[str] | None = None,
    repos: Iterable[str] | None = None,
) -> Dataset:
    """Load the dataset at ``path`` (the ``[output] path`` of the config): a local folder, or a
    URL such as ``s3://bucket/prefix`` (credentials and endpoint from the environment, see
    :mod:`deliverypulse.store.location`).

    ``tables``: read only these (the others are empty); ``repos``: only rows of these repos
    (as the dataset spells them) in the tables keyed by repo, filtered while pyarrow reads, so
    a process that needs a few repos never holds the others (the distributed engine's workers
    read their partition so)."""
    root = resolve(path)
    if not root.exists():
        if root.bucket_missing():
            raise StorageError(f"no dataset at {root}: the bucket does not exist")
        raise DeliveryPulseError(
            f"no dataset at {root}: run 'deliverypulse collect' (or 'deliverypulse demo') first"
        )
    store = ParquetStore(root)
    wanted = set(TABLES if tables is None else [spec_for(name).name for name in tables])
    only = None if repos is None else list(repos)
    frames = {
        name: (
            from_arrow(store.read(name, repos=only if "repo" in spec_for(name).key else None))
            if name in wanted
            else empty_frame(name)
        )
        for name in TABLES
    }
    recorded = SyncState(root).starts()
    starts = start_frame(
        [
            {"source": row["source"], "repo": row["repo"], "start": row.get("since")}
            for row in recorded
        ]
    )
    return Dataset(
        **frames,
        services=services_frame(read_catalogue(root)),
        path=root.local or root.url,
        collection_start=starts,
    )


__all__ = ["START_COLUMNS", "Dataset", "collection_start_of", "empty_frame", "load", "start_frame"]
