"""Which production deployment each incident is charged to: the one rule.

In order:

1. **Duplicates.** An incident whose ``correlation_id`` is the ``incident_id`` of an incident
   of another source (a ServiceNow incident raised by the PagerDuty or Opsgenie integration)
   is the same event: it is counted once, as the incident it names (whose times are the
   event's), and lends it its ``caused_by`` and ``service`` where that one has none.
2. **caused_by.** An incident whose ``caused_by`` names a change request the linker connected
   to a deployment (:func:`deliverypulse.linking.change_requests.caused_by_deployments`) is
   charged to that deployment.
3. **Its repo.** An incident of a repo with production deployments of its own (a GitHub or
   GitLab incident issue) is charged to that repo's last successful production deployment
   that finished before (or as) it opened.
4. **Its service.** Any other incident is charged to the last successful production
   deployment of *any* repo its ``service`` has in the catalogue (``Dataset.services``: the
   service's name, its ``incident_services`` and its ``configuration_items``, compared without
   case) that finished before (or as) it opened, at most ``incident_lookback`` before.

An incident charged to nothing is kept, with a ``reason`` (:data:`REASONS`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.dora.options import MetricOptions
from deliverypulse.linking.change_requests import caused_by_deployments
from deliverypulse.store.catalogue import Service, normal

#: Why an incident was charged to no counted deployment (the ``reason`` column).
REASONS: dict[str, str] = {
    "no_service": "names no service, and its repo has no production deployments",
    "unknown_service": "names a service the catalogue does not know",
    "no_deployment": "no successful production deployment of its service (or repo) "
    "finished within the look-back before it opened",
    "outside_window": "opened, or charged to a deployment, outside the window",
}
#: How a counted incident found its deployment (the ``charged_by`` column).
CHARGED_BY = ("caused_by", "repo", "service")

COLUMNS = [
    "source",
    "repo",
    "incident_id",
    "created_at",
    "resolved_at",
    "service",
    "caused_by",
    "correlation_id",
    "duplicate_of",
    "charged_by",
    "reason",
]


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _duplicates(incidents: pd.DataFrame) -> np.ndarray:
    """Per row, the row of the incident it duplicates (its correlation id names that one's
    id, in another source), else -1. Mutual pairs keep the earlier row."""
    n = len(incidents)
    out = np.full(n, -1, dtype=np.int64)
    correlation = _column(incidents, "correlation_id").str.strip()
    asked = pd.DataFrame(
        {"_i": np.arange(n), "_source": incidents["source"].astype(str), "_id": correlation}
    ).dropna(subset=["_id"])
    if asked.empty:
        return out
    known = pd.DataFrame(
        {
            "_j": np.arange(n),
            "_jsource": incidents["source"].astype(str),
            "_id": incidents["incident_id"].astype("string"),
        }
    )
    pairs = asked.merge(known, on="_id")
    pairs = pairs.loc[pairs["_source"] != pairs["_jsource"]].drop_duplicates("_i")
    out[pairs["_i"].to_numpy(np.int64)] = pairs["_j"].to_numpy(np.int64)
    for i in np.flatnonzero(out >= 0):
        j = out[i]
        if out[j] >= 0:  # the one it names names another (or it back): follow, keep one
            out[i] = -1 if out[j] == i and i < j else out[j]
            if out[i] == i:
                out[i] = -1
    return out


def _item_repos(services: tuple[Service, ...]) -> dict[str, set[str]]:
    """Service name, incident service or configuration item (normalised) -> its repos
    (case-folded)."""
    found: dict[str, set[str]] = {}
    for service in services:
        for name in (service.name, *service.incident_services, *service.configuration_items):
            found.setdefault(normal(name), set()).update(r.casefold() for r in service.repos)
    return found


def _by_cause(ds: Dataset, frame: pd.DataFrame) -> np.ndarray:
    """Per incident row, the attempt (``_d`` in ``frame``) its ``caused_by`` change deployed."""
    out = np.full(len(ds.incidents), -1, dtype=np.int64)
    if not bool(_column(ds.incidents, "caused_by").notna().any()) or ds.change_requests.empty:
        return out
    given = ds.deployment_change_requests  # linked once, by prepare
    charged = caused_by_deployments(ds, None if given.empty else given)
    if charged.empty:
        return out
    rows = pd.DataFrame(
        {
            "_i": np.arange(len(ds.incidents)),
            "source": ds.incidents["source"].astype(str),
            "repo": ds.incidents["repo"].astype(str),
            "incident_id": ds.incidents["incident_id"].astype(str),
        }
    )
    attempts = pd.DataFrame(
        {
            "deployment_source": frame["source"].astype(str).to_numpy(object),
            "deployment_repo": frame["repo"].astype(str).to_numpy(object),
            "deployment_id": frame["deployment_id"].astype(str).to_numpy(object),
            "_d": frame["_d"].to_numpy(np.int64),
        }
    )
    charged = charged.astype(
        {
            name: str
            for name in (
                "source",
                "repo",
                "incident_id",
                "deployment_source",
                "deployment_repo",
                "deployment_id",
            )
        }
    )
    found = rows.merge(charged, on=["source", "repo", "incident_id"]).merge(
        attempts, on=["deployment_source", "deployment_repo", "deployment_id"]
    )
    out[found["_i"].to_numpy(np.int64)] = found["_d"].to_numpy(np.int64)
    return out


def _last_before(
    ok: pd.DataFrame, events: pd.DataFrame, key: list[str], lookback: pd.Timedelta | None
) -> pd.DataFrame:
    """``events`` (``_i``, ``key`` columns, ``created_at``) with the last successful deployment
    of the same ``key`` that finished at or before ``created_at`` (``_d``, ``deployed_at``; -1 where
    none, or none within ``lookback``), the latest over an event's several keys."""
    if events.empty or ok.empty:
        return pd.DataFrame({"_i": pd.Series(dtype=np.int64), "_d": pd.Series(dtype=np.int64)})
    found = pd.merge_asof(
        events.sort_values("created_at", kind="stable"),
        ok[[*key, "deployed_at", "_d"]].sort_values("deployed_at", kind="stable"),
        left_on="created_at",
        right_on="deployed_at",
        by=key,
        direction="backward",
        allow_exact_matches=True,
    ).dropna(subset=["_d"])
    if lookback is not None:
        found = found.loc[found["created_at"] - found["deployed_at"] <= lookback]
    found = found.sort_values(["_i", "deployed_at", "_d"], kind="stable")
    found = found.drop_duplicates("_i", keep="last")
    return found[["_i", "_d"]].astype(np.int64)


def charge_incidents(
    ds: Dataset, frame: pd.DataFrame, options: MetricOptions
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every incident of ``ds.incidents`` (in its order) with how it was charged, and per row
    the attempt (``_d`` in ``frame``, the production attempts) it is charged to (-1: none).

    Columns: :data:`COLUMNS`: ``duplicate_of`` (the row, in this table, of the incident it
    duplicates; -1), ``charged_by`` (:data:`CHARGED_BY`; missing for duplicates and
    unmatched ones) and ``reason`` (a key of :data:`REASONS` for an unmatched one). The
    window (``outside_window``) is decided by the caller, which knows which attempts count.
    """
    incidents = ds.incidents.reset_index(drop=True)
    n = len(incidents)
    table = pd.DataFrame(
        {
            name: (
                incidents[name].to_numpy()
                if name in ("created_at", "resolved_at")
                else _column(incidents, name).to_numpy()
            )
            for name in COLUMNS[:8]
        }
    )
    for name in ("created_at", "resolved_at"):
        table[name] = pd.to_datetime(table[name], utc=True)
    duplicate = _duplicates(incidents)
    table["duplicate_of"] = duplicate
    # A duplicate lends the incident it names its cause and service.
    for name in ("caused_by", "service"):
        values = table[name].to_numpy(object).copy()
        for i in np.flatnonzero(duplicate >= 0):
            j = duplicate[i]
            if pd.isna(values[j]) and not pd.isna(values[i]):
                values[j] = values[i]
        table[name] = pd.array(values, dtype="string")
    charged = np.full(n, -1, dtype=np.int64)
    how = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    primary = duplicate < 0

    cause = _by_cause(ds, frame)
    for i in np.flatnonzero(~primary & (cause >= 0)):
        j = duplicate[i]
        if cause[j] < 0:
            cause[j] = cause[i]
    hit = primary & (cause >= 0)
    charged[hit], how[hit] = cause[hit], "caused_by"

    # Repos as integers (``_repo_group``): the strings of the few distinct repos are read
    # once, not once per deployment.
    repo_of = frame[["source", "repo", "_repo_group"]].drop_duplicates("_repo_group")
    ok = frame.loc[frame["is_success"], ["_repo_group", "deployed_at", "_d"]]
    own = (
        table[["source", "repo"]]
        .astype(str)
        .merge(repo_of.astype({"source": str, "repo": str}), on=["source", "repo"], how="left")[
            "_repo_group"
        ]
        .fillna(-1)
        .to_numpy(np.int64)
    )
    in_repo = (own >= 0) & primary & (charged < 0)
    opened = table["created_at"].notna().to_numpy(dtype=bool)
    rows = np.flatnonzero(in_repo & opened)
    events = pd.DataFrame(
        {"_i": rows, "_repo_group": own[rows], "created_at": table["created_at"].to_numpy()[rows]}
    )
    found = _last_before(ok, events, ["_repo_group"], None)
    charged[found["_i"].to_numpy()] = found["_d"].to_numpy()
    how[found["_i"].to_numpy()] = "repo"
    reason[in_repo & (charged < 0)] = "no_deployment"

    rest = primary & (charged < 0) & ~in_repo
    lookup = _item_repos(ds.catalogue)
    names = table["service"].map(normal, na_action="ignore").to_numpy(object)
    exploded: list[tuple[int, str]] = []
    for i in np.flatnonzero(rest):
        if names[i] is None or pd.isna(names[i]) or names[i] == "":
            reason[i] = "no_service"
        elif names[i] not in lookup:
            reason[i] = "unknown_service"
        else:
            exploded.extend((int(i), repo) for repo in lookup[names[i]])
            reason[i] = "no_deployment"
    if exploded:
        folded = repo_of["repo"].astype(str).str.casefold().to_numpy(object)
        group_folded = np.empty(len(frame) and int(repo_of["_repo_group"].max()) + 1, dtype=object)
        group_folded[repo_of["_repo_group"].to_numpy(np.int64)] = folded
        ok = ok.assign(_folded=group_folded[ok["_repo_group"].to_numpy(np.int64)])
        events = pd.DataFrame(exploded, columns=["_i", "_folded"])
        events["created_at"] = table["created_at"].to_numpy()[events["_i"].to_numpy()]
        events = events.loc[events["created_at"].notna()]
        found = _last_before(ok, events, ["_folded"], options.incident_lookback)
        charged[found["_i"].to_numpy()] = found["_d"].to_numpy()
        how[found["_i"].to_numpy()] = "service"
        reason[found["_i"].to_numpy()] = None
    table["charged_by"] = pd.array(how, dtype="string")
    table["reason"] = pd.array(reason, dtype="string")
    return table, charged


__all__ = ["CHARGED_BY", "COLUMNS", "REASONS", "charge_incidents"]
