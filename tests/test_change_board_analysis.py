"""Issue 13 items 5 and 6: the change board against the local ServiceNow and GitHub servers
together. Every production deployment gets the change request that covered it (explicit and
window links), its type, approval wait and approvers; ``Analysis.change_board`` reports the
failure rate, approval wait and lead time per change type with intervals — each figure
recomputed here by hand from the fakes' own records and the prepared lead times.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deliverypulse_servicenow import ServiceNowConnector
from fake_github import FakeGitHub, Repo, make_repo
from github_helpers import TOKEN
from statsmodels.stats.proportion import proportion_confint

import deliverypulse as dp
from deliverypulse.analysis.changeboard import CHANGE_TYPES, NO_CHANGE_REQUESTS
from deliverypulse.analysis.model import CHANGE_BOARD_COLUMNS, WHAT_IF_COLUMNS
from deliverypulse.cli.analyze import render_text
from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.demo.servicenow_server import (
    BoardService,
    Deployment,
    FakeServiceNow,
    Instance,
    change_board,
)
from deliverypulse.streams import Runtime

SN_TOKEN = "sn-board-token-0123456789"
HOTFIX_EVERY = 9  # every 9th production deployment of a repo is a hotfix: an emergency change


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _finished(deployment: dict[str, object]) -> datetime:
    """When the attempt took effect: its SUCCESS or FAILURE status (as the connector reads)."""
    statuses = deployment["statuses"]
    assert isinstance(statuses, list)
    final = [s for s in statuses if s["state"] in ("SUCCESS", "FAILURE")]
    return _time(final[0]["createdAt"])


def world() -> tuple[list[Repo], list[Deployment], Instance]:
    payments = make_repo("acme", "payments", pulls=70, deployments=70, runs=0, incidents=0)
    search = make_repo(
        "acme", "search", pulls=70, deployments=70, runs=0, incidents=0, run_id_base=3_000_000
    )
    board_deployments = []
    for repo in (payments, search):
        production = [d for d in repo.deployments if d["environment"] == "production"]
        for index, item in enumerate(production):
            board_deployments.append(
                Deployment(
                    repo.full_name,
                    str(item["sha"]),
                    _finished(item),
                    hotfix=index % HOTFIX_EVERY == 4,
                )
            )
    board = change_board(
        board_deployments,
        [
            BoardService("Payments Service", ("acme/payments",)),  # under the CAB
            BoardService("Search Platform", ("acme/search",), process="standard"),
        ],
        rejected_share=0.3,
    )
    return [payments, search], board_deployments, board


def collect(repos: list[Repo], board: Instance, out: Path) -> None:
    with (
        FakeGitHub(repos, token=TOKEN) as github,
        FakeServiceNow(board, token=SN_TOKEN, max_limit=25) as servicenow,
    ):
        config = config_from_dict(
            {
                "output": {"path": str(out)},
                "sources": [
                    {
                        "name": "gh",
                        "type": "github",
                        "org": "acme",
                        "api_url": github.url,
                        "token_env": "GITHUB_TOKEN",
                        "since": "2024-01-01",
                        "streams": ["changes", "deployments", "commits"],
                    },
                    {
                        "name": "sn",
                        "type": "servicenow",
                        "url": servicenow.url,
                        "token_env": "SN_TOKEN",
                    },
                ],
                "services": [
                    {
                        "name": "payments",
                        "repos": ["acme/payments"],
                        "configuration_items": ["Payments Service"],
                        "team": "payments",
                    },
                    {
                        "name": "search",
                        "repos": ["acme/search"],
                        "configuration_items": ["Search Platform"],
                        "team": "search",
                    },
                ],
            }
        )
        lines = run_collect(config, runtime=Runtime(sleep=lambda _s: None)).lines()
    assert all("FAILED" not in line for line in lines), lines


def by_hand(board: Instance) -> pd.DataFrame:
    """Per change number, from the instance's own records: type, first approval request,
    approval, approvers who approved, and the wait between."""
    users = {r["sys_id"]: r["name"] for r in board.tables["sys_user"].values()}
    rows = []
    for change in board.tables["change_request"].values():
        mine = [
            r
            for r in board.tables["sysapproval_approver"].values()
            if r["sysapproval"] == change["sys_id"]
        ]
        requested = min((_sn(r["sys_created_on"]) for r in mine), default=None)
        approved = _sn(change["approval_set"]) if change["approval"] == "approved" else None
        rows.append(
            {
                "change_request_id": change["number"],
                "type": change["type"],
                "requested": requested,
                "approved": approved,
                "rejected_once": any(r["state"] == "rejected" for r in mine),
                "approvers": sorted(users[r["approver"]] for r in mine if r["state"] == "approved"),
                "wait_h": (approved - requested).total_seconds() / 3600
                if approved is not None and requested is not None
                else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("change_request_id")


def _sn(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[dp.Prepared, Instance, list]:
    patch = pytest.MonkeyPatch()
    patch.setenv("GITHUB_TOKEN", TOKEN)
    patch.setenv("SN_TOKEN", SN_TOKEN)
    dp.register_connector(ServiceNowConnector)
    try:
        repos, deployments, board = world()
        out = tmp_path_factory.mktemp("board")
        collect(repos, board, out)
        return dp.prepare(dp.load(out)), board, deployments
    finally:
        patch.undo()


def test_every_production_deployment_gets_the_change_request_that_covered_it(
    collected: tuple[dp.Prepared, Instance, list[Deployment]],
) -> None:
    prepared, board, deployments = collected
    ds = prepared.dataset
    production = ds.deployments.loc[
        ds.deployments["environment"].eq("production").to_numpy(dtype=bool)
        & ds.deployments["status"].isin(["success", "failure", "error"]).to_numpy(dtype=bool)
    ]
    assert len(production) == len(deployments) == 70
    links = ds.deployment_change_requests  # linked once, by prepare
    assert len(links) == len(production)
    assert links[["repo", "deployment_id"]].drop_duplicates().shape[0] == len(production)
    expected = {
        (d.repo, d.sha): "emergency"
        if d.hotfix
        else ("normal" if d.repo == "acme/payments" else "standard")
        for d in deployments
    }
    shas = production.set_index(["repo", "deployment_id"])["sha"].astype(str)
    hand = by_hand(board)
    crs = ds.change_requests.set_index("change_request_id")
    for row in links.itertuples():
        kind = expected[(row.repo, shas[(row.repo, row.deployment_id)])]
        assert hand.loc[row.change_request_id, "type"] == kind
        assert crs.loc[row.change_request_id, "type"] == kind
        assert row.link == ("window" if kind == "normal" else "explicit"), row
        assert not row.ambiguous
        collected_cr = crs.loc[row.change_request_id]
        assert sorted(collected_cr["approvers"]) == hand.loc[row.change_request_id, "approvers"]
        if kind == "standard":
            assert pd.isna(collected_cr["approved_at"]) or not len(collected_cr["approvers"])
            continue
        wait = (
            collected_cr["approved_at"] - collected_cr["approval_requested_at"]
        ).total_seconds() / 3600
        assert wait == pytest.approx(hand.loc[row.change_request_id, "wait_h"])
        assert len(collected_cr["approvers"]) == (2 if kind == "normal" else 1)
    # A rejected-then-approved change waited from its first request, before the rejection.
    again = hand.loc[hand["rejected_once"] & hand["approved"].notna()]
    assert len(again) >= 2
    for number in again.index:
        assert crs.loc[number, "approval_requested_at"] < crs.loc[number, "rejected_at"]
        assert crs.loc[number, "approval_requested_at"] == pd.Timestamp(
            hand.loc[number, "requested"]
        )


def test_change_board_per_type_checked_by_hand(
    collected: tuple[dp.Prepared, Instance, list[Deployment]],
) -> None:
    prepared, board, _ = collected
    analysis = dp.analyze(prepared, min_deployments=10, min_per_group=3)
    table = analysis.change_board
    assert tuple(table.columns) == CHANGE_BOARD_COLUMNS
    assert table["change_type"].tolist() == list(CHANGE_TYPES)
    ds = prepared.dataset
    hand = by_hand(board)
    links = ds.deployment_change_requests.assign(
        change_type=lambda f: f["change_request_id"].map(hand["type"])
    )
    typed = analysis.deployments.drop(columns=["change_type"]).merge(  # ours, by hand
        links[["source", "repo", "deployment_id", "change_type", "change_request_id"]],
        on=["source", "repo", "deployment_id"],
        how="left",
    )
    typed["change_type"] = typed["change_type"].fillna("none")
    lead = prepared.lead.assign(
        repo=ds.deployments["repo"].astype(str).to_numpy()[prepared.lead_deployment],
        deployment_id=ds.deployments["deployment_id"].to_numpy()[prepared.lead_deployment],
        lead_h=prepared.lead["lead_time"].dt.total_seconds() / 3600,
    )[["repo", "deployment_id", "lead_h"]].merge(
        typed[["repo", "deployment_id", "change_type"]].astype({"repo": str}),
        on=["repo", "deployment_id"],
    )
    lead = lead.loc[lead["lead_h"] >= 0]
    by_type = table.set_index("change_type")
    for kind in CHANGE_TYPES:
        mine = typed.loc[typed["change_type"] == kind]
        row = by_type.loc[kind]
        n, failed = len(mine), int(mine["failed"].sum())
        assert (row["deployments"], row["failures"]) == (n, failed), kind
        if kind == "none":
            assert n == 0
            continue
        assert n > 0
        assert row["change_failure_rate"] == pytest.approx(failed / n)
        low, high = proportion_confint(failed, n, alpha=0.05, method="wilson")
        assert (row["change_failure_rate_low"], row["change_failure_rate_high"]) == (
            pytest.approx(low),
            pytest.approx(high),
        )
        waits = hand.loc[mine["change_request_id"].unique(), "wait_h"].dropna()
        if kind == "standard":
            assert pd.isna(row["approval_wait_median_h"])
        else:
            assert row["approval_wait_median_h"] == pytest.approx(float(np.median(waits)))
        leads = lead.loc[lead["change_type"] == kind, "lead_h"]
        assert row["lead_time_median_h"] == pytest.approx(float(np.median(leads)))
        assert row["changes"] == len(leads)
    # CAB approval costs days; emergency changes are approved after the fact, within hours.
    assert by_type.loc["normal", "approval_wait_median_h"] > 24
    assert by_type.loc["emergency", "approval_wait_median_h"] < 4

    finding = analysis.finding("change_board")
    assert finding.scope == "within repo"
    assert finding.estimates[1].scope == "across repos (crude)"
    cab = typed.loc[(typed["repo"] == "acme/payments")]
    cab_n = int((cab["change_type"] == "normal").sum())
    cab_failed = int(((cab["change_type"] == "normal") & cab["failed"]).sum())
    assert finding.plain.startswith(
        f"In the 1 repo that deploys both ways, {cab_failed} of {cab_n} CAB-approved and "
    )
    assert "odds ratio" not in finding.plain and "p =" not in finding.plain

    what_if = analysis.change_board_what_if
    assert list(what_if.columns[: len(WHAT_IF_COLUMNS)]) == list(WHAT_IF_COLUMNS)
    assert what_if["group"].tolist() == ["acme/payments"]
    assert what_if["control"].tolist() == ["CAB approval"]
    assert what_if["gated_deployments"].tolist() == [cab_n]
    normal_waits = hand.loc[
        cab.loc[cab["change_type"] == "normal", "change_request_id"].unique(), "wait_h"
    ]
    assert what_if["approval_wait_median_h"].iloc[0] == pytest.approx(np.median(normal_waits))
    assert what_if["lead_time_saved_median_h"].iloc[0] > 24
    assert (
        what_if["plain"]
        .iloc[0]
        .startswith("Dropping CAB approval on acme/payments would have saved a median ")
    )
    as_json = analysis.to_dict()["change_board"]
    assert [row["change_type"] for row in as_json["table"]] == list(CHANGE_TYPES)
    assert as_json["finding"]["plain"] == finding.plain


def test_analyze_prints_the_change_board_and_json_keeps_it(
    collected: tuple[dp.Prepared, Instance, list[Deployment]],
) -> None:
    prepared, _, _ = collected
    analysis = dp.analyze(prepared, min_deployments=10, min_per_group=3)
    text = render_text(analysis, 100)
    plain, technical = text.split("Technical detail")
    board = plain[plain.index("Change board") :]
    assert board.index("normal") < board.index("standard") < board.index("emergency")
    assert "In the 1 repo that deploys both ways" in board
    assert "Dropping CAB approval on acme/payments" in board
    assert "Do CAB-approved deployments fail more often?" in technical
    assert json.loads(json.dumps(analysis.to_dict()))["change_board"]["what_if"]


def test_no_change_requests_gives_an_empty_table_and_one_sentence() -> None:
    ds = dp.Dataset.from_frames(
        deployments=[
            {
                "repo": "acme/web",
                "deployment_id": "1",
                "environment": "production",
                "sha": "a" * 40,
                "created_at": "2026-03-02T10:00:00Z",
                "finished_at": "2026-03-02T10:05:00Z",
                "status": "success",
            }
        ]
    )
    analysis = dp.analyze(ds)
    assert analysis.change_board.empty
    assert tuple(analysis.change_board.columns) == CHANGE_BOARD_COLUMNS
    assert analysis.finding("change_board").plain == NO_CHANGE_REQUESTS
    assert analysis.change_board_what_if.empty
