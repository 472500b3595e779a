"""Link change requests to the production deployments they covered: the
``deployment_change_requests`` table, and the deployments incidents' ``caused_by`` changes
point at.

In order of trust:

1. **explicit** — a reference in the change's text (``change_requests.references``) names the
   deployment: ``owner/name@sha`` (the repo and a prefix of 7+ digits of the deployed sha), a
   full 40-digit sha on its own, or the deployment's URL. CI-created changes carry these.
2. **window** — otherwise, a change whose configuration item the service catalogue maps to
   repos covers the production deployment of those repos that took effect (``finished_at``,
   else ``created_at``) within its planned window (``planned_start`` - ``tolerance`` to
   ``planned_end`` + ``tolerance``); when the window holds several, the one nearest the planned
   start, marked ``ambiguous``. A deployment already named explicitly by a change is not a
   window candidate; one that two changes' windows claim is ``ambiguous`` in both rows.

A change that stands rejected, or was canceled, links by no window; one rejected and then
requested again links only deployments after its last rejection (``rejected_at``), so the
rejected window never links and the later one does. Deployment attempts that failed are
linked too: a change covers what it tried to put live.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.selection import deployed_time, production_mask
from deliverypulse.store.catalogue import Service, normal, repos_by_item
from deliverypulse.store.coerce import coerce_frame
from deliverypulse.store.schemas import DEPLOYMENT_CHANGE_REQUESTS

#: Deployment statuses a change request can cover (attempts that ran, whatever the outcome).
ATTEMPTED = ("success", "failure", "error")
DEFAULT_TOLERANCE = timedelta(minutes=30)
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO_SHA = re.compile(r"^(?P<repo>.+)@(?P<sha>[0-9a-f]{7,40})$")
_NO_WINDOW_STATES = ("canceled", "cancelled")


def link_change_requests(
    ds: Dataset,
    *,
    services: Iterable[Service] | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    environments: Any = None,
) -> pd.DataFrame:
    """The ``deployment_change_requests`` table (see the module docstring).

    ``services``: the catalogue (default: the one stored with the dataset, ``ds.services``).
    ``tolerance``: how far outside its planned window a deployment may fall. ``environments``:
    the production environments, as for :func:`deliverypulse.link`.
    """
    deployments = _deployments(ds, environments)
    changes = ds.change_requests.reset_index(drop=True)
    if deployments.empty or changes.empty:
        return coerce_frame(DEPLOYMENT_CHANGE_REQUESTS, [])
    explicit = _explicit(changes, deployments)
    lookup = repos_by_item(ds.catalogue if services is None else services)
    window = _window(changes, deployments, explicit, lookup, tolerance)
    rows = pd.concat([explicit, window], ignore_index=True)
    if rows.empty:
        return coerce_frame(DEPLOYMENT_CHANGE_REQUESTS, [])
    rows = rows.drop_duplicates(["_d", "_c"], keep="first")
    claimed = rows.loc[rows["link"] == "window"].groupby("_d")["_c"].transform("size")
    rows["ambiguous"] = rows["ambiguous"].astype(bool)
    rows.loc[claimed.index[claimed.to_numpy() > 1], "ambiguous"] = True
    d, c = rows["_d"].to_numpy(np.int64), rows["_c"].to_numpy(np.int64)
    table = pd.DataFrame(
        {
            "source": deployments["source"].to_numpy(object)[d],
            "repo": deployments["repo"].to_numpy(object)[d],
            "deployment_id": deployments["deployment_id"].to_numpy(object)[d],
            "change_request_id": changes["change_request_id"].to_numpy(object)[c],
            "link": rows["link"].to_numpy(object),
            "ambiguous": rows["ambiguous"].to_numpy(bool),
            "change_request_source": changes["source"].astype(str).to_numpy(object)[c],
        }
    )
    table = table.sort_values(["source", "repo", "deployment_id", "change_request_id"])
    return coerce_frame(DEPLOYMENT_CHANGE_REQUESTS, table.reset_index(drop=True))


def caused_by_deployments(ds: Dataset, links: pd.DataFrame | None = None) -> pd.DataFrame:
    """Incidents whose ``caused_by`` names a change request, with the deployment they are
    charged to: the last deployment that change covered at or before the incident opened
    (else its first one). Columns: the incident's ``source``, ``repo``, ``incident_id``,
    ``created_at`` and ``caused_by``, then ``deployment_source``, ``deployment_repo``,
    ``deployment_id`` and ``deployed_at``. ``links`` defaults to
    :func:`link_change_requests` of ``ds``.
    """
    columns = ["source", "repo", "incident_id", "created_at", "caused_by"]
    out = [*columns, "deployment_source", "deployment_repo", "deployment_id", "deployed_at"]
    incidents = ds.incidents.loc[ds.incidents["caused_by"].notna(), columns]
    links = link_change_requests(ds) if links is None else links
    if incidents.empty or links.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in out})
    times = ds.deployments.assign(deployed_at=deployed_time(ds.deployments))[
        ["source", "repo", "deployment_id", "deployed_at"]
    ]
    covered = links.merge(times, on=["source", "repo", "deployment_id"]).rename(
        columns={"source": "deployment_source", "repo": "deployment_repo"}
    )
    joined = incidents.assign(_source=incidents["source"].astype(str)).merge(
        covered,
        left_on=["_source", "caused_by"],
        right_on=["change_request_source", "change_request_id"],
    )
    if joined.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in out})
    before = joined["deployed_at"] <= joined["created_at"]
    # Latest deployment before the incident first; then, failing that, the earliest after.
    joined["_rank"] = np.where(before, 0, 1)
    joined["_time"] = np.where(
        before, -joined["deployed_at"].astype("int64"), joined["deployed_at"].astype("int64")
    )
    joined = joined.sort_values(["_rank", "_time"], kind="stable")
    chosen = joined.drop_duplicates(["source", "repo", "incident_id"], keep="first")
    return chosen[out].sort_values(["source", "incident_id"]).reset_index(drop=True)


# --- the two kinds of link -------------------------------------------------------------------


def _deployments(ds: Dataset, environments: Any) -> pd.DataFrame:
    frame = ds.deployments
    keep = production_mask(frame, environments) & frame["status"].isin(ATTEMPTED).fillna(False)
    chosen = frame.loc[keep.to_numpy(dtype=bool)].copy()
    chosen["_at"] = deployed_time(chosen)
    chosen = chosen.loc[chosen["_at"].notna()].reset_index(drop=True)
    chosen["_repo"] = chosen["repo"].astype(str).str.casefold()
    chosen["_sha"] = chosen["sha"].astype("string").str.lower()
    chosen["_url"] = chosen["url"].astype("string").map(_url, na_action="ignore")
    return chosen


def _url(text: str) -> str:
    return text.strip().rstrip("/").casefold()


def _links(
    d: Iterable[int], c: Iterable[int], link: str, ambiguous: Iterable[bool]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_d": np.asarray(list(d), dtype=np.int64),
            "_c": np.asarray(list(c), dtype=np.int64),
            "link": link,
            "ambiguous": np.asarray(list(ambiguous), dtype=bool),
        }
    )


def _explicit(changes: pd.DataFrame, deployments: pd.DataFrame) -> pd.DataFrame:
    """(deployment, change) pairs a change's references name."""
    exploded = changes["references"].explode().dropna()
    if exploded.empty:
        return _links([], [], "explicit", [])
    refs = pd.DataFrame(
        {"_c": exploded.index.to_numpy(np.int64), "ref": exploded.astype(str).str.lower()}
    )
    found: list[pd.DataFrame] = []
    by_sha = refs.loc[refs["ref"].str.match(_SHA)]
    if not by_sha.empty:
        found.append(by_sha.merge(_positions(deployments), left_on="ref", right_on="_sha"))
    pairs = refs["ref"].str.extract(_REPO_SHA).dropna()
    if not pairs.empty:
        pairs = refs.loc[pairs.index, ["_c"]].join(pairs)
        merged = pairs.merge(_positions(deployments), left_on="repo", right_on="_repo")
        prefix = [
            isinstance(full, str) and full.startswith(short)
            for full, short in zip(merged["_sha"], merged["sha"], strict=True)
        ]
        found.append(merged.loc[np.asarray(prefix, dtype=bool)])
    by_url = refs.loc[refs["ref"].str.startswith(("http://", "https://"))]
    if not by_url.empty:
        by_url = by_url.assign(_url=by_url["ref"].map(_url))
        found.append(by_url.merge(_positions(deployments), on="_url"))
    if not found:
        return _links([], [], "explicit", [])
    hits = pd.concat([f[["_d", "_c"]] for f in found], ignore_index=True).drop_duplicates()
    return _links(hits["_d"], hits["_c"], "explicit", np.zeros(len(hits), dtype=bool))


def _positions(deployments: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_d": np.arange(len(deployments), dtype=np.int64),
            "_repo": deployments["_repo"].to_numpy(object),
            "_sha": deployments["_sha"].to_numpy(object),
            "_url": deployments["_url"].to_numpy(object),
        }
    )


def _window(
    changes: pd.DataFrame,
    deployments: pd.DataFrame,
    explicit: pd.DataFrame,
    lookup: dict[str, tuple[str, ...]],
    tolerance: timedelta,
) -> pd.DataFrame:
    """Each eligible change's nearest deployment within its planned window."""
    named = set(explicit["_c"].tolist())
    taken = np.zeros(len(deployments), dtype=bool)
    taken[explicit["_d"].to_numpy(np.int64)] = True
    approval = changes["approval"].astype("string").str.lower()
    state = changes["state"].astype("string").str.lower()
    eligible = (
        changes["planned_start"].notna()
        & changes["planned_end"].notna()
        & changes["configuration_item"].notna()
        & ~approval.eq("rejected").fillna(False)
        & ~state.isin(_NO_WINDOW_STATES).fillna(False)
        & ~pd.Series(changes.index.isin(list(named)), index=changes.index)
    )
    at = deployments["_at"]
    repo = deployments["_repo"]
    d_out: list[int] = []
    c_out: list[int] = []
    ambiguous: list[bool] = []
    for position in np.flatnonzero(eligible.to_numpy(dtype=bool)):
        change = changes.iloc[position]
        repos = {r.casefold() for r in lookup.get(normal(change["configuration_item"]), ())}
        if not repos:
            continue
        start, end = change["planned_start"], change["planned_end"]
        inside = repo.isin(repos) & (at >= start - tolerance) & (at <= end + tolerance) & ~taken
        if pd.notna(change["rejected_at"]):
            inside &= at > change["rejected_at"]
        candidates = np.flatnonzero(inside.to_numpy(dtype=bool))
        if not len(candidates):
            continue
        distance = (at.iloc[candidates] - start).abs().to_numpy()
        d_out.append(int(candidates[int(np.argmin(distance))]))
        c_out.append(int(position))
        ambiguous.append(len(candidates) > 1)
    return _links(d_out, c_out, "window", ambiguous)


__all__ = ["ATTEMPTED", "DEFAULT_TOLERANCE", "caused_by_deployments", "link_change_requests"]
