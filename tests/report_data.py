"""Datasets for the report's tests and for looking at the page: small hand-made ones and a
realistic organisation built from a seeded random process.

The realistic one has the shape the report is meant to expose: two repos behind an approval gate
that deploy big batches rarely (and fail more), three that deploy small batches often, failures
of every kind (failed deployments, rollbacks, reverts, hotfixes, incidents) and a linear commit
graph, so changes link to deployments by the commit graph as they would from a real collection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset

START = pd.Timestamp("2024-01-01T00:00Z")


@dataclass(frozen=True)
class RepoProfile:
    """How one repo works: how often changes merge, how it deploys, how risky a change is."""

    repo: str
    merges_per_workday: float
    deploy_every_days: int  # 1: every workday it has something to ship
    gated: float  # share of its deployments that wait for an approval
    failure_per_change: float  # chance that one shipped change breaks production
    approval_wait_hours: float = 0.0


ORGANISATION = (
    RepoProfile("acme/web", 2.5, 1, gated=0.0, failure_per_change=0.02),
    RepoProfile("acme/api", 1.8, 1, gated=0.2, failure_per_change=0.025, approval_wait_hours=3),
    RepoProfile("acme/search", 0.9, 2, gated=0.0, failure_per_change=0.03),
    RepoProfile(
        "acme/checkout", 1.5, 4, gated=0.5, failure_per_change=0.025, approval_wait_hours=20
    ),
    RepoProfile(
        "acme/billing", 1.2, 14, gated=1.0, failure_per_change=0.015, approval_wait_hours=30
    ),
    RepoProfile(
        "acme/ledger", 0.8, 21, gated=1.0, failure_per_change=0.012, approval_wait_hours=50
    ),
)
AUTHORS = ("ana", "bo", "chen", "dara", "eli", "fatou", "gus", "hana", "ivo", "jun")


def sha_of(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def _hours(rng: np.random.Generator, median: float, spread: float = 0.8) -> pd.Timedelta:
    return pd.Timedelta(hours=float(rng.lognormal(np.log(median), spread)))


def _workdays(start: pd.Timestamp, days: int) -> list[pd.Timestamp]:
    every = [start + pd.Timedelta(days=offset) for offset in range(days)]
    return [day for day in every if day.day_of_week < 5]


class _Repo:
    """Builds one repo's rows: changes merge onto a linear mainline, deployments ship it."""

    def __init__(self, profile: RepoProfile, rng: np.random.Generator) -> None:
        self.profile = profile
        self.rng = rng
        self.changes: list[dict[str, Any]] = []
        self.commits: list[dict[str, Any]] = []
        self.deployments: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.head: str | None = None

    def merge(self, merged_at: pd.Timestamp, **kind: Any) -> dict[str, Any]:
        """One pull request squash-merged at ``merged_at``, with plausible earlier stages."""
        rng, repo = self.rng, self.profile.repo
        number = len(self.changes) + 1
        review_done = _hours(rng, 5)
        first_review = merged_at - review_done
        ready = first_review - _hours(rng, 3)
        first_commit = ready - _hours(rng, 14, 1.0)
        sha = sha_of(repo, number)
        lines = int(rng.lognormal(np.log(120), 1.0)) + 1
        change = {
            "repo": repo,
            "change_id": f"{repo}!{number}",
            "number": number,
            "title": kind.pop("title", f"Change {number}"),
            "author": str(rng.choice(AUTHORS)),
            "state": "merged",
            "base_ref": "main",
            "created_at": ready,
            "ready_at": ready,
            "first_commit_at": first_commit,
            "first_review_at": first_review,
            "first_approval_at": merged_at - review_done / 2,
            "merged_at": merged_at,
            "merge_sha": sha,
            "additions": lines,
            "deletions": lines // 3,
            "commit_count": int(rng.integers(1, 6)),
            **kind,
        }
        self.changes.append(change)
        parents = [self.head] if self.head else []
        self.commits.append(
            {
                "repo": repo,
                "sha": sha,
                "parents": parents,
                "committed_at": merged_at,
                "authored_at": first_commit,
                "author": change["author"],
                "change_id": change["change_id"],
            }
        )
        self.head = sha
        return change

    def deploy(self, at: pd.Timestamp, status: str = "success", **extra: Any) -> dict[str, Any]:
        profile = self.profile
        created = at - pd.Timedelta(minutes=25)
        gated = bool(self.rng.random() < profile.gated)
        gate: dict[str, Any] = {"approval_required": gated}
        if gated:
            requested = created - _hours(self.rng, profile.approval_wait_hours, 0.5)
            gate |= {"approval_requested_at": requested, "approved_at": created}
            gate |= {"created_at": requested}
        deployment = {
            "repo": profile.repo,
            "deployment_id": f"{profile.repo}@{len(self.deployments) + 1}",
            "environment": "production",
            "is_production": True,
            "sha": self.head,
            "ref": "main",
            "status": status,
            "created_at": created,
            "finished_at": at,
            **gate,
            **extra,
        }
        self.deployments.append(deployment)
        return deployment


def _simulate(profile: RepoProfile, rng: np.random.Generator, days: int) -> _Repo:
    repo = _Repo(profile, rng)
    workdays = _workdays(START, days)
    pending: list[dict[str, Any]] = []
    for index, day in enumerate(workdays):
        for _ in range(int(rng.poisson(profile.merges_per_workday))):
            at = day + pd.Timedelta(hours=float(rng.uniform(9, 18)))
            pending.append(repo.merge(at))
        due = index % profile.deploy_every_days == profile.deploy_every_days - 1
        if not due or not pending:
            continue
        _ship(repo, day + pd.Timedelta(hours=18, minutes=float(rng.uniform(0, 50))), pending)
        pending = []
    return repo


def _ship(repo: _Repo, at: pd.Timestamp, batch: list[dict[str, Any]]) -> None:
    """Deploy ``batch``; a batch fails with the chance that any one of its changes breaks."""
    rng, profile = repo.rng, repo.profile
    risk = 1 - (1 - profile.failure_per_change) ** len(batch)
    if rng.random() >= risk:
        repo.deploy(at)
        return
    how = rng.choice(["status", "incident", "revert", "rollback", "hotfix"])
    if how == "status":  # the deployment itself fails, a fixed one follows
        repo.deploy(at, status="failure")
        repo.merge(at + _hours(rng, 2), title="Fix deploy", is_hotfix=True)
        repo.deploy(at + _hours(rng, 3))
    elif how == "incident":
        repo.deploy(at)
        opened = at + _hours(rng, 2)
        resolved = opened + _hours(rng, 4 if not profile.gated else 20)
        repo.incidents.append(
            {
                "repo": profile.repo,
                "incident_id": f"INC-{profile.repo}-{len(repo.incidents) + 1}",
                "title": "Customer-facing errors",
                "created_at": opened,
                "resolved_at": resolved,
                "severity": str(rng.choice(["sev1", "sev2", "sev3"])),
            }
        )
    elif how == "revert":
        repo.deploy(at)
        culprit = batch[int(rng.integers(len(batch)))]
        fixed = at + _hours(rng, 6)
        title = f"Revert {culprit['title']}"
        repo.merge(fixed, title=title, is_revert=True, reverts=culprit["change_id"])
        repo.deploy(fixed + pd.Timedelta(minutes=40))
    elif how == "hotfix":
        repo.deploy(at)
        fixed = at + _hours(rng, 5)
        repo.merge(fixed, title="Hotfix", is_hotfix=True)
        repo.deploy(fixed + pd.Timedelta(minutes=30))
    else:  # roll back to what ran before
        previous = repo.deployments[-1]["sha"] if repo.deployments else None
        repo.deploy(at)
        if previous is not None:
            shipped = repo.head
            repo.head = previous
            repo.deploy(at + _hours(rng, 1.5), is_rollback=True)
            repo.head = shipped


def organisation(days: int = 182, seed: int = 7) -> Dataset:
    """Six repos over about six months: the dataset a board report is made from."""
    rng = np.random.default_rng(seed)
    repos = [_simulate(profile, rng, days) for profile in ORGANISATION]
    return Dataset.from_frames(
        deployments=[row for repo in repos for row in repo.deployments],
        changes=[row for repo in repos for row in repo.changes],
        commits=[row for repo in repos for row in repo.commits],
        incidents=[row for repo in repos for row in repo.incidents],
        source="github",
    )


def one_repo(deployments: int = 8) -> Dataset:
    """One ungated repo deploying one change a day; the third deployment fails."""
    rng = np.random.default_rng(1)
    repo = _Repo(RepoProfile("solo/app", 1, 1, gated=0.0, failure_per_change=0), rng)
    for day in _workdays(START, deployments * 2)[:deployments]:
        repo.merge(day + pd.Timedelta(hours=10))
        status = "failure" if len(repo.deployments) == 2 else "success"
        repo.deploy(day + pd.Timedelta(hours=16), status=status)
    return Dataset.from_frames(
        deployments=repo.deployments, changes=repo.changes, commits=repo.commits
    )


def no_deployments() -> Dataset:
    """Changes but not a single production deployment (a repo before its first release)."""
    rng = np.random.default_rng(2)
    repo = _Repo(RepoProfile("new/app", 1, 1, gated=0.0, failure_per_change=0), rng)
    for day in _workdays(START, 5):
        repo.merge(day + pd.Timedelta(hours=12))
    return Dataset.from_frames(changes=repo.changes, commits=repo.commits)


__all__ = ["ORGANISATION", "RepoProfile", "no_deployments", "one_repo", "organisation"]


# -- an analysis as the issue-11 interface describes it, for the report's tests ------------------

PLAIN_HEADLINE = (
    "In the 2 repos that deploy both ways, 10 of 49 gated and 0 of 8 ungated deployments "
    "failed; with so few ungated deployments this could be chance."
)
PLAIN_BATCH = (
    "Within each repo, deployments of 8 or more changes failed about as often as single-change "
    "ones (3 of 40 against 5 of 70): no link between batch size and failure could be shown."
)
PLAIN_CRUDE = (
    "Across all repos, 12 of 61 gated and 53 of 731 ungated deployments failed, but those are "
    "mostly different repos."
)


def plain_analysis(analysis: Any) -> Any:
    """``analysis`` with the plain sentences, scopes, headline and what-if rows the analysis
    half of issue 11 provides (frozen dataclasses: replaced, not mutated), so the report's
    tests do not depend on it."""
    from dataclasses import replace

    gates = replace(analysis.gates, plain=PLAIN_HEADLINE, scope="within repo")
    batch = replace(analysis.batch_size, plain=PLAIN_BATCH, scope="within repo")
    crude = replace(analysis.gates, name="gates_crude", plain=PLAIN_CRUDE, scope="across repos")
    others = tuple(
        replace(item, plain=f"In plain words: {item.question.lower()}", scope="within repo")
        for item in analysis.findings
        if not item.name.startswith(("gates", "batch_size"))
    )
    what_if = pd.DataFrame(
        {
            "group": ["acme/checkout", "acme/ledger"],
            "gated_deployments": [21, 9],
            "approval_wait_median_h": [20.0, 50.0],
            "approval_wait_total_h": [450.0, 470.0],
            "lead_time_saved_median_h": [23.0, 40.0],
            "lead_time_saved_low_h": [9.5, 12.0],
            "lead_time_saved_high_h": [31.0, 70.0],
            "failure_difference": [0.12, None],
            "failure_difference_low": [-0.05, None],
            "failure_difference_high": [0.3, None],
            "failure_note": [None, "no ungated deployments to compare with"],
            "plain": [
                "Dropping the gate on acme/checkout would have saved a median 23 h per change; "
                "the data cannot show that the gate prevented any failure.",
                "Dropping the gate on acme/ledger would have saved a median 40 h per change; "
                "it has no ungated deployments to compare failures with.",
            ],
        }
    )
    return replace(
        analysis,
        gates=gates,
        batch_size=batch,
        findings=(gates, batch, crude, *others),
        verdict=(PLAIN_HEADLINE, *analysis.verdict),
        what_if=what_if,
    )
