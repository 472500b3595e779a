"""The demo's sample organisation: six repositories over six months, seeded so every run is alike.

Two ways of delivering side by side, so the analysis has something to compare: teams that batch
ten or more pull requests into weekly or fortnightly releases behind required reviewers, and
teams that ship one or two changes at a time, several times a day, ungated. Each repo has the
history a real one would: reviews with pickup and review times, a dependabot author, draft pull
requests, merge or squash commits on a consistent commit graph (so linking works by graph, not
by time), CI and deploy runs, failed deployments, rollbacks, reverts, hotfixes and incidents.

Four teams own them (:data:`SERVICES`) and differ in the controls a change goes through, so the
report's "what catches problems" has something to compare within a repo: the storefront team
merges a third of its changes without review, the discovery team deploys over red builds and
starts some deployments by hand, the others review everything, deploy green builds and let
automation deploy. Unreviewed changes and red builds fail somewhat more often; who starts a
deployment makes no difference. The fast teams are paged through PagerDuty, not issues.

The GitHub org ``acme`` is built into :class:`~deliverypulse.demo.github_server.Repo` models;
the GitLab group ``platform`` into :class:`~deliverypulse.demo.gitlab_server.FakeProject` s,
the pages into a :class:`~deliverypulse.demo.pagerduty_server.Account`.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from deliverypulse.demo.github_server import Repo
from deliverypulse.demo.gitlab_server import FakeProject, Scenario, synthetic_project, user
from deliverypulse.demo.gitlab_server import ts as gitlab_ts
from deliverypulse.demo.pagerduty_server import Account
from deliverypulse.demo.servicenow_server import BoardService, Deployment, Instance, change_board

#: The sample's last day; its window runs back from here.
END = datetime(2026, 10, 31, 18, 0, tzinfo=UTC)
#: Days of history at ``scale=1``.
DAYS = 182
SEED = 2026
GITHUB_ORG = "acme"
GITLAB_GROUP = "platform"


@dataclass(frozen=True)
class Profile:
    """How one team delivers: its release cadence, batch size, gate and failure habits."""

    name: str
    cadence: str  # "weekly", "fortnightly", "daily" or "many" (several a day)
    batch: tuple[int, int]  # pull requests per regular deployment, inclusive
    gated: bool  # production requires reviewers
    failure_rate: float  # share of regular deployments that need intervention
    recovery_hours: tuple[float, float]  # how long a fix takes, uniform range
    pickup_hours: float  # median wait for the first review
    review_hours: float  # median first review to merge
    merge_commits: bool  # merge commits (else squash merges)
    authors: tuple[str, ...]
    reviewers: tuple[str, ...]
    change_size: int  # median lines changed per pull request
    dependabot_share: float = 0.08
    #: Review habits: the share of pull requests merged with no review at all, and the failure
    #: rate of a deployment that ships one (``failure_rate`` is then the fully reviewed one's).
    unreviewed_share: float = 0.0
    unreviewed_failure_rate: float | None = None
    #: Test discipline: the share of CI runs on the default branch that go red. A disciplined
    #: team re-runs or fixes a red build before deploying it; one with ``red_failure_rate`` set
    #: deploys over it, and such a deployment fails at that rate.
    red_share: float = 0.07
    red_failure_rate: float | None = None
    #: Deployment automation: the share of production deployments a person starts by hand.
    manual_share: float = 0.0
    #: The PagerDuty service that pages the team (its incidents live there, not in issues).
    pagerduty: str | None = None


GITHUB_PROFILES = (
    Profile(
        "payments",
        "weekly",
        (10, 25),
        gated=True,
        failure_rate=0.22,
        recovery_hours=(3, 30),
        pickup_hours=9,
        review_hours=20,
        merge_commits=True,
        authors=("amara", "bjorn", "chen", "dana", "eli", "farah"),
        reviewers=("amara", "chen", "grace"),
        change_size=240,
    ),
    Profile(
        "ledger",
        "fortnightly",
        (15, 30),
        gated=True,
        failure_rate=0.25,
        recovery_hours=(6, 48),
        pickup_hours=14,
        review_hours=26,
        merge_commits=True,
        authors=("hiro", "ines", "jonas", "kemi"),
        reviewers=("hiro", "grace"),
        change_size=300,
        dependabot_share=0.05,
    ),
    Profile(
        "web",
        "many",
        (1, 2),
        gated=False,
        failure_rate=0.04,
        recovery_hours=(0.25, 1.0),
        pickup_hours=0.6,
        review_hours=1.5,
        merge_commits=False,
        authors=("lena", "mo", "nia", "omar", "pia", "quinn", "raj"),
        reviewers=("lena", "mo", "nia", "omar"),
        change_size=45,
        # A third of the storefront's small changes merge without review; deployments that
        # ship one fail somewhat more often than fully reviewed ones.
        unreviewed_share=0.3,
        unreviewed_failure_rate=0.1,
        pagerduty="web-prod",
    ),
    Profile(
        "search",
        "daily",
        (1, 4),
        gated=False,
        failure_rate=0.07,
        recovery_hours=(0.5, 3.0),
        pickup_hours=1.5,
        review_hours=3.0,
        merge_commits=False,
        authors=("sofia", "tariq", "uma"),
        reviewers=("sofia", "tariq", "uma"),
        change_size=80,
        # Search's main branch goes red more often and the team deploys over it; some of its
        # deployments are started by hand.
        red_share=0.2,
        red_failure_rate=0.2,
        manual_share=0.2,
        pagerduty="search-prod",
    ),
)

#: Release managers who approve gated production deployments.
APPROVERS = ("grace", "victor")


def window(scale: float) -> tuple[datetime, datetime]:
    """The sample's time window: ``DAYS * scale`` days (at least two weeks) ending at END."""
    days = max(14, round(DAYS * scale))
    start = (END - timedelta(days=days)).replace(hour=8, minute=0)
    return start, END


def github_org(scale: float = 1.0, seed: int = SEED) -> list[Repo]:
    """The GitHub org ``acme``: one :class:`Repo` per profile, deterministic for a seed."""
    return _github(scale, seed)[0]


def _github(scale: float, seed: int) -> tuple[list[Repo], list[Page]]:
    """The org's repos, and the pages of the teams whose incidents live in PagerDuty."""
    start, end = window(scale)
    repos: list[Repo] = []
    pages: list[Page] = []
    for index, profile in enumerate(GITHUB_PROFILES):
        builder = _RepoBuilder(
            profile,
            random.Random(f"{seed}/{profile.name}"),
            start,
            end,
            id_base=(index + 1) * 1_000_000,
            habits=random.Random(f"{seed}/{profile.name}/habits"),
            builds=random.Random(f"{seed}/{profile.name}/builds"),
        )
        repos.append(builder.build())
        pages.extend(builder.pages)
    return repos, pages


def gitlab_group(scale: float = 1.0, seed: int = SEED) -> tuple[list[FakeProject], str]:
    """The GitLab group ``platform``: ``api`` (ungated, frequent, rarely fails) and
    ``billing-engine`` (a protected environment with approvals, big batches, failures)."""
    return _gitlab(scale, seed)[0], GITLAB_GROUP


def _gitlab(scale: float, seed: int) -> tuple[list[FakeProject], list[Page]]:
    """The group's projects, and the pages of ``api``, whose incidents live in PagerDuty.

    Both teams review every change and deploy only green pipelines (the fake's trunk pushes
    and deployments over red pipelines are taken out); ``api``'s team starts some production
    deployments by hand."""
    start, end = window(scale)
    days = (end - start).days
    api = synthetic_project(
        f"{GITLAB_GROUP}/api",
        101,
        Scenario(
            merge_requests=max(10, round(days * 1.6)),
            deployments=max(6, round(days * 0.7)),
            pipelines=max(10, round(days * 1.2)),
            incidents=0,
            jobs_per_pipeline=3,
            start=start,
            mr_spacing=timedelta(hours=15),
        ),
    )
    _ungate(api, random.Random(f"{seed}/api"))
    billing = synthetic_project(
        f"{GITLAB_GROUP}/billing-engine",
        102,
        Scenario(
            merge_requests=max(10, round(days * 0.7)),
            deployments=max(4, round(days / 14)),
            pipelines=max(10, round(days * 0.5)),
            incidents=0,
            jobs_per_pipeline=3,
            start=start,
            mr_spacing=timedelta(hours=34),
        ),
    )
    _stretch_reviews(billing, 5.0)
    _slow_gate(billing, random.Random(f"{seed}/billing/gate"))
    _by_hand(api, random.Random(f"{seed}/api/by-hand"), 0.15)
    pages: list[Page] = []
    for project, fixes, incidents, paged in (
        (api, 0.15, 0.02, "api-prod"),
        (billing, 0.3, 0.15, None),
    ):
        _no_trunk_pushes(project)
        _green_deploys(project)
        _fewer_fixes(project, random.Random(f"{seed}/{project.path}/fixes"), fixes)
        rng = random.Random(f"{seed}/{project.path}/incidents")
        pages += _incidents(project, rng, incidents, paged)
    return [api, billing], pages


def _no_trunk_pushes(project: FakeProject) -> None:
    """The fake pushes a commit straight to the default branch after one merge request in
    ten; a team that reviews every change does not. Drop them: what pointed at one (a child
    commit, a pipeline, a deployment) points at its parent instead."""
    pushed = {
        c["id"]: c["parent_ids"][0] for c in project.commits if c["title"].startswith("Trunk fix")
    }

    def kept(sha: str) -> str:
        while sha in pushed:
            sha = pushed[sha]
        return sha

    project.commits = [c for c in project.commits if c["id"] not in pushed]
    branches = [c for commits in project.mr_commits.values() for c in commits]
    for commit in [*project.commits, *branches]:
        commit["parent_ids"] = [kept(parent) for parent in commit["parent_ids"]]
    pipelines = [
        *project.pipelines,
        *(job["pipeline"] for job in project.jobs),
        *(d["deployable"]["pipeline"] for d in project.deployments if _pipeline(d)),
    ]
    for item in [*pipelines, *project.deployments]:
        item["sha"] = kept(item["sha"])
    project.changed()


def _pipeline(deployment: dict[str, Any]) -> dict[str, Any] | None:
    job = deployment.get("deployable") or {}
    pipeline: dict[str, Any] | None = job.get("pipeline")
    return pipeline


def _green_deploys(project: FakeProject) -> None:
    """A disciplined team's deploy job runs only after a green pipeline (a red one is re-run
    or fixed first): every pipeline on a commit deployed to production is green."""
    deployed = {d["sha"] for d in project.deployments if d["environment"]["name"] == "production"}
    fixed = {p["id"] for p in project.pipelines if p["sha"] in deployed and p["status"] == "failed"}
    for pipeline in project.pipelines:
        if pipeline["id"] in fixed:
            pipeline["status"] = "success"
    for job in project.jobs:
        if job["pipeline"]["id"] in fixed:
            job["status"] = job["pipeline"]["status"] = "success"
    for deployment in project.deployments:
        behind = _pipeline(deployment)
        if behind is not None and behind["id"] in fixed:
            behind["status"] = "success"
    for pipeline_id in fixed:
        summary = project.test_summaries.get(pipeline_id)
        if summary is None:
            continue
        for counts, (failed, success) in [
            (summary["total"], ("failed", "success")),
            *((suite, ("failed_count", "success_count")) for suite in summary["test_suites"]),
        ]:
            counts[success] += counts[failed]
            counts[failed] = 0
    project.changed()


def _by_hand(project: FakeProject, rng: random.Random, share: float) -> None:
    """A ``share`` of the production deployments were created by a person through the API
    (GitLab: no job behind them, ``deployable`` null), the rest by the pipeline's deploy job."""
    people = [user(name, 3000 + n) for n, name in enumerate(("alice", "bob", "carol", "dave"))]
    for deployment in project.deployments:
        if deployment["environment"]["name"] != "production" or rng.random() >= share:
            continue
        deployment["deployable"] = None
        deployment["user"] = rng.choice(people)
    project.changed()


def _fewer_fixes(project: FakeProject, rng: random.Random, keep: float) -> None:
    """The fake reverts one merge request in 17 and hot-fixes one in 13, far more than a team
    that ships small changes does; keep only a ``keep`` share of them as reverts and hotfixes."""
    for mr in project.merge_requests:
        fix = mr["title"].startswith('Revert "') or "hotfix" in mr["labels"]
        if fix and rng.random() >= keep:
            mr["title"] = f"Feature {mr['iid']}"
            mr["description"] = "Adds a feature."
            mr["labels"] = ["feature"]
            mr["source_branch"] = f"feature-{mr['iid']}"
    project.changed()


def _stretch_reviews(project: FakeProject, factor: float) -> None:
    """Stretch everything before each merge (first commit, opening, notes, approvals) away from
    the merge by ``factor``: the fake's 40-minute pickups are a small-change team's; a team
    shipping big batches waits hours for a review. Order and the commit graph are unchanged."""
    for mr in project.merge_requests:
        merged = _parse(mr["merged_at"])

        def stretch(text: str, merged: datetime = merged) -> str:
            when = _parse(text)
            return gitlab_ts(merged - (merged - when) * factor) if when < merged else text

        iid = mr["iid"]
        mr["created_at"] = stretch(mr["created_at"])
        for note in project.notes.get(iid, []):
            note["created_at"] = note["updated_at"] = stretch(note["created_at"])
        for commit in project.mr_commits.get(iid, []):
            for key in ("authored_date", "committed_date", "created_at"):
                commit[key] = stretch(commit[key])
    mrs = {mr["iid"] for mr in project.merge_requests}
    merged_at = {mr["iid"]: _parse(mr["merged_at"]) for mr in project.merge_requests}
    for event in project.events:
        on_note = event.get("note")
        target = on_note["noteable_iid"] if on_note else event.get("target_iid")
        if event["action_name"] != "merged" and target in mrs:
            when, merged = _parse(event["created_at"]), merged_at[target]
            event["created_at"] = gitlab_ts(merged - (merged - when) * factor)
    project.commits.sort(key=lambda c: _parse(c["committed_date"]), reverse=True)
    project.changed()


def _slow_gate(project: FakeProject, rng: random.Random) -> None:
    """Approvals of a protected environment take hours, not the fake's ten minutes: each gated
    production deployment waits for its approver, then runs."""
    for deployment in project.deployments:
        if deployment["environment"]["name"] != "production" or not deployment["approvals"]:
            continue
        wait = timedelta(hours=_hours(rng, 6, 0.8))
        created = _parse(deployment["created_at"]) - wait
        deployment["created_at"] = gitlab_ts(created)
        deployment["deployable"]["created_at"] = gitlab_ts(created)
    project.changed()


def _ungate(project: FakeProject, rng: random.Random) -> None:
    """Turn the fake's gated project into one that deploys without approvals and rarely fails:
    no protected environment, no approvals, no blocked deployment, one failure in thirty."""
    project.protected_environments = []
    kept = []
    for deployment in project.deployments:
        if deployment["status"] == "blocked":
            continue
        deployment["approvals"] = []
        deployment["pending_approval_count"] = 0
        if deployment["status"] == "failed" and rng.random() > 0.3:
            deployment["status"] = "success"
            deployment["deployable"]["status"] = "success"
        kept.append(deployment)
    project.deployments = kept
    project.changed()


def _incidents(
    project: FakeProject, rng: random.Random, share: float, paged: str | None = None
) -> list[Page]:
    """Incidents opened after a share of the successful production deployments, resolved
    within hours: incident issues, or pages of the PagerDuty service ``paged`` (returned);
    plus a few ordinary issues that are not incidents."""
    project.issues.clear()
    pages: list[Page] = []
    production = [
        d
        for d in project.deployments
        if d["environment"]["name"] == "production" and d["status"] == "success"
    ]
    iid = 1
    for deployment in production:
        if rng.random() >= share:
            continue
        opened = _parse(deployment["finished_at"]) + timedelta(minutes=rng.uniform(20, 240))
        closed = opened + timedelta(hours=rng.uniform(1, 30))
        if paged:
            name = project.path.rsplit("/", 1)[-1]
            pages.append(Page(paged, f"{name}: elevated error rate", opened, closed))
            continue
        project.issues.append(_gitlab_issue(project, iid, opened, closed, incident=True))
        iid += 1
    for n in range(3):
        opened = _parse(project.merge_requests[0]["created_at"]) + timedelta(days=9 * n + 2)
        project.issues.append(_gitlab_issue(project, iid, opened, None, incident=False))
        iid += 1
    project.changed()
    return pages


def _gitlab_issue(
    project: FakeProject, iid: int, opened: datetime, closed: datetime | None, *, incident: bool
) -> dict[str, Any]:
    return {
        "id": 40_000 + project.id * 1000 + iid,
        "iid": iid,
        "project_id": project.id,
        "title": f"Checkout errors after release ({iid})" if incident else f"Flaky test ({iid})",
        "state": "closed" if closed else "opened",
        "created_at": gitlab_ts(opened),
        "updated_at": gitlab_ts(closed or opened),
        "closed_at": gitlab_ts(closed) if closed else None,
        "labels": ["incident", "severity::high"] if incident else ["bug"],
        "issue_type": "incident" if incident else "issue",
        "type": "INCIDENT" if incident else "ISSUE",
        "severity": "HIGH" if incident else "UNKNOWN",
        "web_url": f"{project.web_url}/-/issues/{iid}",
        "author": {"id": 7, "username": "oncall", "name": "Oncall", "state": "active"},
    }


# -- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One ``[[services]]`` entry of the demo's catalogue: its repo and owning team, its
    ServiceNow configuration item and how it changes there (``process``), and the PagerDuty
    service that pages for it."""

    name: str
    team: str
    repo: str
    configuration_item: str | None = None
    process: str = "none"  # "cab", "standard" or "none" (see change_board_instance)
    pagerduty: str | None = None


#: The demo's service catalogue and its four teams. ServiceNow: the gated GitHub repos under
#: the change board (normal changes, approved at the weekly CAB), the daily deployer on
#: pre-approved standard changes its pipeline opens, the many-a-day web team with no change
#: requests; a hotfix anywhere gets an emergency change. PagerDuty pages the fast teams.
#:
#: - **payments** (acme/payments, platform/billing-engine) and **finance** (acme/ledger):
#:   big gated batches, every change reviewed, green builds, deployed by automation;
#: - **storefront** (acme/web): many small deployments a day; a third of its changes merge
#:   without review;
#: - **discovery** (acme/search, platform/api): deploys over red builds on search, and starts
#:   some deployments by hand.
SERVICES: tuple[Service, ...] = (
    Service("payments", "payments", f"{GITHUB_ORG}/payments", "Payments Service", "cab"),
    Service("billing-engine", "payments", f"{GITLAB_GROUP}/billing-engine"),
    Service("ledger", "finance", f"{GITHUB_ORG}/ledger", "General Ledger", "cab"),
    Service("web", "storefront", f"{GITHUB_ORG}/web", "Web Storefront", "none", "web-prod"),
    Service(
        "search", "discovery", f"{GITHUB_ORG}/search", "Search Platform", "standard", "search-prod"
    ),
    Service("api", "discovery", f"{GITLAB_GROUP}/api", pagerduty="api-prod"),
)


@dataclass
class Organisation:
    """Everything the demo's servers serve: the GitHub org, the GitLab group's projects, the
    ServiceNow instance and the PagerDuty account."""

    repos: list[Repo]
    projects: list[FakeProject]
    servicenow: Instance
    pagerduty: Account


def build_organisation(scale: float = 1.0, seed: int = SEED) -> Organisation:
    """The whole sample organisation, deterministic for a seed."""
    repos, github_pages = _github(scale, seed)
    projects, gitlab_pages = _gitlab(scale, seed)
    account = pagerduty_account([*github_pages, *gitlab_pages], window(scale)[0])
    return Organisation(repos, projects, change_board_instance(repos), account)


def pagerduty_account(pages: list[Page], start: datetime) -> Account:
    """The PagerDuty account: the teams' pages, and one that matches no deployment, so the
    report's unmatched incidents show what they are for: a search alert the day before the
    sample's first deployment (no deployment of its service in the look-back before it).

    Every page names a service of the catalogue: the connector gives an incident of a service
    it cannot map to one repo the API host as its repo, and the demo's host (a new port each
    run) would make a rerun store such an incident again."""
    unmatched = [
        Page(
            "search-prod",
            "search: index rebuild stuck",
            start - timedelta(hours=20),
            start - timedelta(hours=17),
        ),
    ]
    teams = {service.pagerduty: service.team for service in SERVICES if service.pagerduty}
    account = Account()
    rng = random.Random(f"{SEED}/pagerduty")
    for page in sorted([*pages, *unmatched], key=lambda p: (p.opened, p.service)):
        team = teams.get(page.service)
        account.incident(
            page.opened,
            title=page.title,
            service=page.service,
            urgency=page.urgency,
            priority=rng.choice(["P1", "P2", "P2", "P3"]),
            teams=(team,) if team else (),
            resolved_at=page.resolved,
        )
    return account


def change_board_instance(repos: list[Repo]) -> Instance:
    """The demo's ServiceNow instance: change requests for the org's production deployments
    (:func:`~deliverypulse.demo.servicenow_server.change_board`, seeded). Hotfix deployments
    get emergency changes; rollbacks are done under no change request of their own."""
    deployments = []
    for repo in repos:
        for item in repo.deployments:
            description = str(item["description"])
            if item["environment"] != "production" or description.startswith("Rollback"):
                continue
            deployments.append(
                Deployment(
                    repo.full_name,
                    str(item["sha"]),
                    _parse(str(item["updatedAt"])),
                    hotfix=description.startswith("Hotfix"),
                )
            )
    services = [
        BoardService(
            service.configuration_item,
            (service.repo,),
            process=service.process,
            approvers=("Grace Hopper", "Victor Okafor"),
        )
        for service in SERVICES
        if service.configuration_item
    ]
    return change_board(deployments, services, seed=SEED)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sha(*parts: Any) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def _hours(rng: random.Random, median: float, spread: float = 0.8) -> float:
    """A log-normal duration: most near the median, a long tail, as waiting times are."""
    return median * math.exp(rng.gauss(0, spread))


# -- GitHub ------------------------------------------------------------------------------------

#: Who starts a deployment that automation starts: the workflow's app, a bot to GitHub.
DEPLOYER = ("github-actions[bot]", "Bot")


@dataclass
class _Build:
    """A CI run: when it started and finished, whether it went red, and its attempt (a
    re-run of a red build is attempt 2, and GitHub lists the latest attempt)."""

    started: datetime
    finished: datetime
    red: bool = False
    attempt: int = 1


@dataclass(frozen=True)
class Page:
    """An incident a team was paged for: its PagerDuty service, title, opened and resolved."""

    service: str
    title: str
    opened: datetime
    resolved: datetime | None
    urgency: str = "high"


def _deploy_slots(
    cadence: str, start: datetime, end: datetime, rng: random.Random
) -> list[datetime]:
    """Regular production deployment times for a cadence, on working days."""
    slots: list[datetime] = []
    day = start.replace(hour=0, minute=0)
    index = 0
    while day < end:
        if day.weekday() < 5:
            if cadence == "weekly" and day.weekday() == 1:
                slots.append(day + timedelta(hours=14, minutes=rng.randint(0, 50)))
            elif cadence == "fortnightly" and day.weekday() == 3:
                if index % 2 == 0:
                    slots.append(day + timedelta(hours=15, minutes=rng.randint(0, 40)))
                index += 1
            elif cadence == "daily" and rng.random() < 0.85:
                slots.append(day + timedelta(hours=rng.uniform(10, 16)))
            elif cadence == "many":
                times = sorted(rng.uniform(9, 18) for _ in range(rng.randint(2, 5)))
                slots.extend(day + timedelta(hours=t) for t in times)
        day += timedelta(days=1)
    return [s for s in slots if start + timedelta(hours=2) < s < end]


@dataclass
class _RepoBuilder:
    """Walks one repo's history forward in time: pull requests merge onto the default branch,
    deployments ship its head, and some deployments fail and get fixed."""

    profile: Profile
    rng: random.Random
    start: datetime
    end: datetime
    id_base: int
    repo: Repo = field(init=False)
    head_times: list[datetime] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    number: int = 0
    deployment_ids: int = 0
    last_deployed: datetime | None = None
    #: The CI run on the default branch after each merge, by merge sha.
    ci: dict[str, _Build] = field(default_factory=dict)
    #: Numbers of the pull requests merged without review.
    unreviewed: set[int] = field(default_factory=set)
    #: What paged the team (repos whose incidents live in PagerDuty).
    pages: list[Page] = field(default_factory=list)
    #: Own streams for the team's habits (review, who deploys) and for its CI builds, so the
    #: main stream draws what it drew before they were added.
    habits: random.Random = field(default_factory=random.Random)
    builds: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.repo = Repo(GITHUB_ORG, self.profile.name)
        reviewers = list(APPROVERS) if self.profile.gated else []
        self.repo.environments = {"production": reviewers, "staging": []}
        root = self._commit(_sha(self.profile.name, "root"), [], self.start - timedelta(days=90))
        root["messageHeadline"] = "Initial commit"

    # the commit graph
    def _commit(
        self, oid: str, parents: list[str], when: datetime, login: str = "founder", pull: int = 0
    ) -> dict[str, Any]:
        commit = {
            "oid": oid,
            "authoredDate": _iso(when),
            "committedDate": _iso(when),
            "messageHeadline": f"Work on #{pull}" if pull else "Commit",
            "login": login,
            "parents": parents,
            "pull": pull or None,
        }
        self.repo.commits.append(commit)
        return commit

    def _advance(self, oid: str, when: datetime) -> None:
        self.head_times.append(when)
        self.heads.append(oid)

    def _head_at(self, when: datetime) -> str:
        index = bisect.bisect_right(self.head_times, when)
        return self.heads[max(0, index - 1)]

    @property
    def head(self) -> str:
        return self.heads[-1]

    def build(self) -> Repo:
        self._advance(self.repo.commits[0]["oid"], self.start - timedelta(days=90))
        slots = _deploy_slots(self.profile.cadence, self.start, self.end, self.rng)
        # The first deployment ships what was there: the collection starts with it.
        self._deploy(self.start + timedelta(hours=1), self.head, "Initial deployment")
        previous = self.start + timedelta(hours=1)
        for index, slot in enumerate(slots):
            following = slots[index + 1] if index + 1 < len(slots) else self.end
            count = self.rng.randint(*self.profile.batch)
            gap = (slot - previous).total_seconds()
            merges = sorted(
                previous + timedelta(seconds=gap * self.rng.uniform(0.05, 0.95))
                for _ in range(count)
            )
            shipped = [self._pull(when) for when in merges]
            # A fix must land before the next regular deployment: no failure when it is close.
            fails = self.rng.random() < self._failure_rate(shipped)
            fails &= following - slot > timedelta(hours=1)
            mode = self.rng.choice(self._modes) if fails else ""
            finished = self._deploy(slot, self.head, f"Release {index + 1}", fails=mode == "status")
            if mode:
                self._fail(mode, finished, following, shipped)
            previous = max(slot, self.last_deployed or slot)
        self._runs_and_issues()
        self.repo.commits.sort(key=lambda c: (c["committedDate"], c["oid"]), reverse=True)
        return self.repo

    def _failure_rate(self, shipped: list[int]) -> float:
        """How likely the deployment of ``shipped`` (onto the head) is to fail, given the
        team's habits: an unreviewed change in it, or a red build it deploys over."""
        profile = self.profile
        build = self.ci.get(self.head)
        if profile.red_failure_rate is not None and build is not None and build.red:
            return profile.red_failure_rate
        if profile.unreviewed_failure_rate is not None and self.unreviewed.intersection(shipped):
            return profile.unreviewed_failure_rate
        return profile.failure_rate

    @property
    def _modes(self) -> list[str]:
        """How a failure shows. A paged team sees more of its failures as incidents."""
        modes = ["status", "rollback", "revert", "incident"]
        return [*modes, "incident"] if self.profile.pagerduty else modes

    # pull requests
    def _pull(
        self,
        merged: datetime,
        *,
        title: str | None = None,
        body: str = "",
        branch: str | None = None,
        labels: list[str] | None = None,
        urgent: bool = False,
    ) -> int:
        profile, rng = self.profile, self.rng
        self.number += 1
        number = self.number
        bot = title is None and rng.random() < profile.dependabot_share
        author = "dependabot[bot]" if bot else rng.choice(profile.authors)
        reviewers = [r for r in profile.reviewers if r != author] or list(APPROVERS)
        scale = 0.15 if urgent else 1.0
        review = _hours(rng, profile.review_hours * scale)
        pickup = _hours(rng, profile.pickup_hours * scale)
        created = merged - timedelta(hours=review + pickup)
        coding = _hours(rng, 0.5 if bot else 6 * scale + 2, 1.0)
        first_commit = created - timedelta(hours=coding)
        size = 3 + int(_hours(rng, profile.change_size * (0.3 if urgent or bot else 1.0), 1.0))
        if title is None:
            title = (
                f"Bump {rng.choice(['httpx', 'pydantic', 'react', 'lodash'])} to a new version"
                if bot
                else f"{rng.choice(['Add', 'Fix', 'Refactor', 'Speed up'])} "
                f"{rng.choice(['checkout', 'invoices', 'search index', 'login', 'exports'])}"
                f" ({number})"
            )
        labels = labels if labels is not None else (["dependencies"] if bot else [])
        branch = branch or (f"dependabot/{number}" if bot else f"feature/{number}")
        first_reviewer = rng.choice(reviewers)
        # Merged without anyone looking: opened shortly before, no review, no approval.
        unreviewed = self.habits.random() < profile.unreviewed_share
        if unreviewed:
            self.unreviewed.add(number)
            created = merged - timedelta(hours=(review + pickup) * 0.1)
            first_commit = created - timedelta(hours=coding)
        reviews = [
            {
                "state": "COMMENTED",
                "submittedAt": _iso(created + timedelta(hours=pickup)),
                "author": {"__typename": "User", "login": first_reviewer},
            },
            {
                "state": "APPROVED",
                "submittedAt": _iso(created + timedelta(hours=pickup + review * 0.9)),
                "author": {"__typename": "User", "login": first_reviewer},
            },
        ][: 0 if unreviewed else 2]
        # The branch: one to four commits, forked from the default branch's head of the day.
        fork = self._head_at(first_commit)
        commits = []
        parent = fork
        pieces = 1 if bot or urgent else rng.randint(1, 4)
        for piece in range(pieces):
            when = first_commit + (created - first_commit) * (piece / pieces)
            oid = _sha(profile.name, "branch", number, piece)
            commits.append({"oid": oid, "authoredDate": _iso(when), "committedDate": _iso(when)})
            if profile.merge_commits:
                self._commit(oid, [parent], when, author, number)
            parent = oid
        merge_sha = _sha(profile.name, "merge", number)
        parents = [self.head, parent] if profile.merge_commits else [self.head]
        merge = self._commit(merge_sha, parents, merged, author, number)
        merge["messageHeadline"] = (
            f"Merge pull request #{number} from {GITHUB_ORG}/{branch}"
            if profile.merge_commits
            else f"{title} (#{number})"
        )
        self._advance(merge_sha, merged)
        minutes = self.builds.uniform(4, 14)
        self.ci[merge_sha] = _Build(
            merged + timedelta(seconds=20),
            merged + timedelta(minutes=minutes),
            self.builds.random() < profile.red_share,
        )
        draft = not bot and rng.random() < 0.2 and not unreviewed
        self.repo.pulls.append(
            {
                "number": number,
                "title": title,
                "body": body,
                "state": "MERGED",
                "isDraft": False,
                "createdAt": _iso(created),
                "updatedAt": _iso(merged + timedelta(minutes=1)),
                "mergedAt": _iso(merged),
                "closedAt": _iso(merged),
                "baseRefName": "main",
                "headRefName": branch,
                "additions": size,
                "deletions": size // 3,
                "changedFiles": 1 + size // 60,
                "author": {"__typename": "Bot" if bot else "User", "login": author},
                "mergeSha": merge_sha,
                "labels": labels,
                "commits": commits,
                "reviews": reviews,
                "comments": [],
                "readyAt": _iso(created + timedelta(hours=pickup * 0.3)) if draft else None,
                "_ci": _iso(created),
                "_head": parent,
            }
        )
        return number

    # deployments
    def _deploy(
        self,
        at: datetime,
        sha: str,
        description: str,
        *,
        fails: bool = False,
        urgent: bool = False,
    ) -> datetime:
        """A production deployment (after a staging one in gated repos); returns its finish.

        It starts once CI on ``sha`` has finished: a red build is re-run green first unless the
        team deploys over red ones. A share of a team's deployments are started by hand (no
        workflow run: a person created the deployment)."""
        rng = self.rng
        at = self._after_build(at, sha)
        by_hand = self.habits.random() < self.profile.manual_share
        creator = (rng.choice(self.profile.authors), "User") if by_hand else DEPLOYER
        run_id = self.id_base + 500_000 + len(self.repo.runs) + 1
        run_url = f"https://github.com/{self.repo.full_name}/actions/runs/{run_id}"
        if self.profile.gated:
            staged = at - timedelta(hours=rng.uniform(1, 3))
            self._deployment("staging", sha, staged, ["QUEUED", "SUCCESS"], 0.2, run_url)
        states = ["QUEUED", "IN_PROGRESS", "FAILURE" if fails else "SUCCESS"]
        wait = 0.0
        # An emergency fix may bypass the gate (an admin's override): gated repos then have
        # ungated deployments too, which the analysis can compare like with like.
        if self.profile.gated and not (urgent and rng.random() < 0.5):
            states = ["WAITING", *states]
            wait = rng.uniform(0.2, 1.0) if urgent else _hours(rng, 5, 0.9)
            approver = rng.choice(APPROVERS)
            self.repo.run_reviews[run_id] = [
                {
                    "state": "APPROVED",
                    "comment": "approved for release",
                    "login": approver,
                    "environments": ["production"],
                }
            ]
        duration = rng.uniform(0.1, 0.3) if self.profile.gated else rng.uniform(0.05, 0.15)
        if by_hand:
            run_url = f"https://deploy.acme.example/{self.repo.full_name}/{run_id}"
        finished = self._deployment(
            "production",
            sha,
            at,
            states,
            duration,
            run_url,
            wait=wait,
            description=description,
            creator=creator,
        )
        self.last_deployed = finished
        if by_hand:
            return finished
        self.repo.runs.append(
            {
                "id": run_id,
                "name": "Deploy",
                "head_sha": sha,
                "head_branch": "main",
                "event": "workflow_dispatch" if self.profile.gated else "push",
                "status": "completed",
                "conclusion": "failure" if fails else "success",
                "created_at": _iso(at),
                "run_started_at": _iso(at + timedelta(hours=wait)),
                "updated_at": _iso(finished),
                "run_attempt": 1,
            }
        )
        return finished

    def _deployment(
        self,
        environment: str,
        sha: str,
        at: datetime,
        states: list[str],
        duration: float,
        run_url: str,
        *,
        wait: float = 0.0,
        description: str = "Deploy",
        creator: tuple[str, str] = DEPLOYER,
    ) -> datetime:
        """One deployment with its statuses, ``wait`` hours in WAITING; returns its finish."""
        self.deployment_ids += 1
        deployment_id = self.id_base + self.deployment_ids
        times = [at]
        for k in range(1, len(states)):
            waited = k == 1 and states[0] == "WAITING"
            step = wait if waited else duration / (len(states) - 1)
            times.append(times[-1] + timedelta(hours=step))
        self.repo.deployments.append(
            {
                "id": deployment_id,
                "environment": environment,
                "sha": sha,
                "ref": "main",
                "createdAt": _iso(at),
                "updatedAt": _iso(times[-1]),
                "description": description,
                # Who started it: GitHub's creator login and its type ("Bot" or "User").
                "creator": creator[0],
                "creator_type": creator[1],
                "statuses": [
                    {
                        "state": state,
                        "createdAt": _iso(when),
                        "logUrl": f"{run_url}/job/{deployment_id % 1_000_000 * 10 + k}",
                    }
                    for k, (state, when) in enumerate(zip(states, times, strict=True))
                ],
            }
        )
        return times[-1]

    def _after_build(self, at: datetime, sha: str) -> datetime:
        """When a deployment of ``sha`` planned for ``at`` starts: after CI on it finished
        (the deploy job waits for it). A disciplined team re-runs a red build (a flaky test)
        and deploys once it is green; a team that deploys over red ones does not wait."""
        build = self.ci.get(sha)
        if build is None:
            return at
        if build.red and self.profile.red_failure_rate is None:
            rerun = build.finished + timedelta(minutes=self.builds.uniform(3, 8))
            build = self.ci[sha] = _Build(rerun, rerun + (build.finished - build.started), False, 2)
        return max(at, build.finished + timedelta(minutes=2))

    # failures and their fixes
    def _fail(self, mode: str, finished: datetime, following: datetime, shipped: list[int]) -> None:
        """The deployment just made needed intervention (``mode``: its own status, a rollback,
        a revert or an incident); fix it before ``following``, the next regular deployment."""
        rng = self.rng
        room = max(0.2, (following - finished).total_seconds() / 3600 * 0.8)
        low, high = self.profile.recovery_hours
        fix_after = min(rng.uniform(low, high), room)
        bad = self.repo.deployments[-1]
        if mode == "status":
            self._recover(finished, fix_after, "hotfix")
        elif mode == "rollback":
            back_to = self._previous_success_sha(bad["sha"])
            if back_to is None:
                return
            at = finished + timedelta(hours=min(fix_after, 0.5))
            self._deploy(at, back_to, f"Rollback to {back_to[:7]}", urgent=True)
            # The rollback shipped an old sha; the next deployment ships the head again.
            self._recover(at, max(0.2, fix_after - 0.5), "revert", shipped)
        elif mode == "revert":
            self._recover(finished, fix_after, "revert", shipped)
        else:
            opened = finished + timedelta(hours=fix_after * rng.uniform(0.05, 0.3))
            fixed = self._recover(opened, fix_after * 0.7, "hotfix")
            closed = fixed + timedelta(minutes=rng.uniform(10, 90))
            what = rng.choice(["errors", "latency", "timeouts"])
            if self.profile.pagerduty:  # the team is paged; it files no incident issues
                title = f"{self.profile.name}: elevated {what}"
                self.pages.append(Page(self.profile.pagerduty, title, opened, closed))
                return
            self.number += 1
            self.repo.issues.append(
                {
                    "number": self.number,
                    "title": f"Incident: {what} in {self.profile.name} after release",
                    "labels": ["incident", rng.choice(["sev1", "sev2", "sev2", "sev3"])],
                    "created_at": _iso(opened),
                    "updated_at": _iso(closed),
                    "closed_at": _iso(closed),
                    "state": "closed",
                }
            )

    def _previous_success_sha(self, current: str) -> str | None:
        for deployment in reversed(self.repo.deployments[:-1]):
            ok = any(s["state"] == "SUCCESS" for s in deployment["statuses"])
            if deployment["environment"] == "production" and ok and deployment["sha"] != current:
                return str(deployment["sha"])
        return None

    def _recover(
        self, since: datetime, hours: float, kind: str, shipped: list[int] | None = None
    ) -> datetime:
        """Merge a hotfix (or a revert of one of ``shipped``) and deploy it; its finish."""
        merged = since + timedelta(hours=hours * 0.6)
        if kind == "revert" and shipped:
            target = self.rng.choice(shipped)
            original = next(p for p in self.repo.pulls if p["number"] == target)
            self._pull(
                merged,
                title=f'Revert "{original["title"]}"',
                body=f"Reverts {self.repo.full_name}#{target}",
                branch=f"revert-{target}",
                labels=[],
                urgent=True,
            )
        else:
            self._pull(
                merged,
                title=f"Hotfix: {self.rng.choice(['null total', 'timeout', 'rounding'])}",
                branch=f"hotfix/{self.number + 1}",
                labels=["hotfix"],
                urgent=True,
            )
        return self._deploy(since + timedelta(hours=hours), self.head, "Hotfix", urgent=True)

    # CI runs and other issues
    def _runs_and_issues(self) -> None:
        rng = self.rng
        run_id = self.id_base + 800_000
        for pull in self.repo.pulls:
            when = _parse(pull.pop("_ci"))
            minutes = rng.uniform(4, 14)
            branch = _Build(when + timedelta(seconds=20), when + timedelta(minutes=minutes))
            branch.red = rng.random() < 0.07
            for event, sha, build in (
                ("pull_request", pull.pop("_head"), branch),
                ("push", pull["mergeSha"], self.ci[pull["mergeSha"]]),
            ):
                run_id += 1
                self.repo.runs.append(
                    {
                        "id": run_id,
                        "name": "CI",
                        "head_sha": sha,
                        "head_branch": "main" if event == "push" else pull["headRefName"],
                        "event": event,
                        "status": "completed",
                        "conclusion": "failure" if build.red else "success",
                        "created_at": _iso(build.started - timedelta(seconds=20)),
                        "run_started_at": _iso(build.started),
                        "updated_at": _iso(build.finished),
                        "run_attempt": build.attempt,
                    }
                )
        self.repo.issues.append(
            {
                "number": self.number + 1,
                "title": "Document the release process",
                "labels": ["docs"],
                "created_at": _iso(self.start + timedelta(days=3)),
                "updated_at": _iso(self.start + timedelta(days=3)),
                "closed_at": None,
                "state": "open",
            }
        )
