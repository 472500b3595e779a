"""The ``deployments`` stream: deployments to every environment, with their approvals, and the
merge requests GitLab says a production one off the default branch shipped
(``deployment_changes``).

Every environment is kept, as the GitHub connector keeps them, so a staging lead time or
approval wait is there for whoever wants it (``environments=`` of the metrics); the metrics
count only rows with ``is_production``. Production means the environment's tier is
``production`` or its name matches the source's ``production`` regex.

Requests: one page of deployments per 100 updated deployments; the environments list and the
protected environments once per run that has new deployments; one ``merge_requests`` call per
new successful *production* deployment off the default branch (GitLab's own answer to "what
did this ship", where the ``commits`` stream's default-branch graph cannot tell; the project's
``default_branch`` is read once and remembered; a default-branch or staging deployment's
changes come from the commit graph, through ``link``); a single deployment only where the list
lacks the approvals of a gated deployment, in any environment (an ungated staging deployment
costs nothing beyond its share of a list page). A rerun with nothing new costs the one list
request, whatever the environments.

The ids of the pipelines behind this run's production deployments are shared with the
``test_runs`` stream (declared after this one), which fetches their test report summaries.
``is_rollback`` stays null: GitLab's deployments carry no rollback marker (its "rollback"
re-runs an older deployment job), so the metrics decide from the deployment sequence.

``started_by`` is GitLab's word on what started a deployment: a pipeline job when it has a
``deployable`` (a job with ``environment:``, manual or not), a person when it was created
through the Deployments API without a job (``deployable`` null) by a ``user``; null otherwise.
The core adds the ``bots`` pattern on the creator (``rules.automated_flags``).

- https://docs.gitlab.com/api/deployments/#list-project-deployments
- https://docs.gitlab.com/api/deployments/#list-of-merge-requests-associated-with-a-deployment
- https://docs.gitlab.com/api/projects/#get-a-single-project (``default_branch``)
- https://docs.gitlab.com/api/deployments/#create-a-deployment (no job: ``deployable`` null)
- https://docs.gitlab.com/ci/environments/deployment_approvals/
- https://docs.gitlab.com/api/environments/#list-environments
- https://docs.gitlab.com/api/protected_environments/
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.rules import AUTOMATION, PERSON, is_production
from deliverypulse.streams import StreamRun, UpdatedAfter, Watermark
from deliverypulse_gitlab.api import JSONObject, project_path, username
from deliverypulse_gitlab.settings import Reading, Settings

#: GitLab deployment statuses in the dataset's vocabulary.
STATUSES = {
    "created": "queued",
    "running": "in_progress",
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "cancelled",
    "blocked": "blocked",
}
FINAL = frozenset({"success", "failed", "canceled", "skipped"})
#: What the ``test_runs`` stream reads from this one: the ids of the pipelines behind this
#: run's production deployments (their test report summaries are worth a request).
PRODUCTION_PIPELINES = "production_pipelines"


@dataclass
class _Environments:
    """Environment tiers and approval rules, learnt at most once per run."""

    tiers: dict[str, str]
    required_approvals: dict[str, int] | None
    default_branch: str | None = None
    tiers_fresh: bool = False
    rules_fresh: bool = False
    branch_asked: bool = False

    def remembered(self, cursor: Watermark) -> Watermark:
        """``cursor`` carrying the tiers, rules and default branch to the next run."""
        extra: dict[str, Any] = {
            "tiers": self.tiers,
            "required_approvals": self.required_approvals,
        }
        if self.default_branch is not None:
            extra["default_branch"] = self.default_branch
        return Watermark(cursor.updated_at, cursor.seen, cursor.open, extra)


def read_deployments(connector: Reading, run: StreamRun) -> Iterator[Page]:
    """Deployments of every environment updated since the watermark, a page at a time;
    shares the pipelines behind the production ones with ``test_runs``."""
    api, settings = connector.api, connector.settings
    cursor: Watermark = run.cursor
    base = project_path(run.repo)
    envs = _Environments(
        tiers=dict(cursor.extra.get("tiers") or {}),
        required_approvals=cursor.extra.get("required_approvals"),
        default_branch=cursor.extra.get("default_branch"),
    )
    pipelines: set[int] = set()
    walk = UpdatedAfter().walk(api.updated_after(f"{base}/deployments"), cursor, run.since)
    for step in walk:
        if step.finished:
            break  # its cursor is the last page's
        records: list[JSONObject] = []
        links: list[JSONObject] = []
        if step.items:
            _learn_tiers(connector, base, envs, step.items)
            _learn_rules(connector, base, envs)  # a gate matters in every environment
            deployments = sorted(step.items, key=lambda d: d.get("created_at") or "")
            deployments = api.each(lambda d: _with_approvals(connector, base, envs, d), deployments)
            flags = [_is_production(settings, envs, d) for d in deployments]
            records = [
                _record(connector, run.repo, envs, deployment, flag)
                for deployment, flag in zip(deployments, flags, strict=True)
            ]
            production = [d for d, flag in zip(deployments, flags, strict=True) if flag]
            for deployment in production:
                pipeline_id = ((deployment.get("deployable") or {}).get("pipeline") or {}).get("id")
                if pipeline_id is not None:
                    pipelines.add(int(pipeline_id))
            succeeded = [d for d in production if d.get("status") == "success"]
            unlinkable = _beyond_the_graph(connector, base, envs, succeeded)
            for shipped in api.each(lambda d: _shipped(connector, base, d), unlinkable):
                links.extend(shipped)
            run.share(PRODUCTION_PIPELINES, frozenset(pipelines))
        if links:
            yield Page(links, table="deployment_changes")
        yield Page(records, cursor=envs.remembered(step.cursor))


def _environment(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return deployment.get("environment") or {}


def _learn_tiers(
    connector: Reading, base: str, envs: _Environments, deployments: list[JSONObject]
) -> None:
    for deployment in deployments:
        environment = _environment(deployment)
        if environment.get("tier"):
            envs.tiers[str(environment["name"])] = str(environment["tier"])
    unknown = {str(_environment(d).get("name")) for d in deployments} - set(envs.tiers)
    if unknown and not envs.tiers_fresh:
        envs.tiers_fresh = True
        for page in connector.api.pages(f"{base}/environments"):
            for environment in page:
                envs.tiers[str(environment["name"])] = str(environment.get("tier") or "")


def _learn_rules(connector: Reading, base: str, envs: _Environments) -> None:
    """Required approvals per protected environment (Premium; None when unavailable)."""
    if envs.rules_fresh:
        return
    envs.rules_fresh = True
    rules = connector.api.get_optional(f"{base}/protected_environments", {"per_page": 100})
    if not isinstance(rules, list):
        return
    envs.required_approvals = {
        str(rule.get("name")): _required_approvals(rule) for rule in rules if rule.get("name")
    }


def _required_approvals(rule: Mapping[str, Any]) -> int:
    """Approvals a protected environment needs: the legacy ``required_approval_count`` or the
    sum of its approval rules' ``required_approvals``."""
    from_rules = sum(
        int(r.get("required_approvals") or 0) for r in rule.get("approval_rules") or []
    )
    return max(int(rule.get("required_approval_count") or 0), from_rules)


def _is_production(settings: Settings, envs: _Environments, deployment: Mapping[str, Any]) -> bool:
    """A production tier, or a name the source's ``production`` regex matches."""
    name = str(_environment(deployment).get("name") or "")
    return envs.tiers.get(name) == "production" or is_production(name, settings.production)


def _approval_required(envs: _Environments, deployment: Mapping[str, Any]) -> bool | None:
    if deployment.get("status") == "blocked" or deployment.get("pending_approval_count"):
        return True
    if deployment.get("approvals"):
        return True
    if envs.required_approvals is None:
        return None  # no access to protection rules: unknown, not "ungated"
    name = str(_environment(deployment).get("name") or "")
    return envs.required_approvals.get(name, 0) > 0


def _with_approvals(
    connector: Reading, base: str, envs: _Environments, deployment: JSONObject
) -> JSONObject:
    """Fetch the single deployment only if it is gated and the list left its approvals out."""
    if "approvals" in deployment or not _approval_required(envs, deployment):
        return deployment
    single = connector.api.get_optional(f"{base}/deployments/{deployment['id']}")
    return {**deployment, **single} if isinstance(single, dict) else deployment


def _record(
    connector: Reading,
    repo: str,
    envs: _Environments,
    deployment: Mapping[str, Any],
    production: bool,
) -> JSONObject:
    environment = _environment(deployment)
    env_name = str(environment.get("name") or "")
    status = str(deployment.get("status") or "")
    deployable = deployment.get("deployable") or {}
    approvals = [a for a in deployment.get("approvals") or [] if a.get("status") == "approved"]
    required = _approval_required(envs, deployment)
    pending = int(deployment.get("pending_approval_count") or 0)
    approved_at = None
    if approvals and not pending and status != "blocked":
        approved_at = max(str(a.get("created_at")) for a in approvals if a.get("created_at"))
    finished_at = deployment.get("finished_at") or deployable.get("finished_at")
    if not finished_at and status in FINAL:
        finished_at = deployment.get("updated_at")
    return {
        "deployment_id": str(deployment["id"]),
        "environment": env_name,
        "is_production": production,
        "sha": deployment.get("sha"),
        "ref": deployment.get("ref"),
        "created_at": deployment.get("created_at"),
        "finished_at": finished_at if status in FINAL else None,
        "status": STATUSES.get(status, "queued"),
        "approval_required": required,
        "approval_requested_at": deployment.get("created_at") if required else None,
        "approved_at": approved_at,
        "approvers": sorted({u for a in approvals if (u := username(a.get("user")))}),
        # GitLab marks no deployment as a rollback (its "rollback" re-runs an old deployment
        # job): the metrics decide from the sequence of successful deployments.
        "is_rollback": None,
        "url": deployable.get("web_url") or _environment_url(connector, repo, environment),
        "creator": username(deployment.get("user")),
        "started_by": started_by(deployment),
        "updated_at": deployment.get("updated_at"),
    }


def started_by(deployment: Mapping[str, Any]) -> str | None:
    """``"automation"`` for a pipeline job's deployment, ``"person"`` for one a user created
    through the API without a job, else None (neither says)."""
    if deployment.get("deployable"):
        return AUTOMATION
    if "deployable" in deployment and username(deployment.get("user")):
        return PERSON
    return None


def _environment_url(connector: Reading, repo: str, environment: Mapping[str, Any]) -> str | None:
    if environment.get("id") is None:
        return None
    return f"{connector.api.url}/{repo}/-/environments/{environment['id']}"


def _beyond_the_graph(
    connector: Reading, base: str, envs: _Environments, deployments: list[JSONObject]
) -> list[JSONObject]:
    """The successful production deployments whose shipped merge requests the commit graph
    cannot tell, so GitLab is asked: those not of the default branch (a tag, a maintenance
    branch), whose history the ``commits`` stream does not walk. A default-branch deployment's
    sha is on the graph ``link`` walks, so it costs nothing. The default branch is learnt once
    (``GET /projects/:id``) and remembered; if GitLab will not say, every deployment is asked
    about, as before."""
    if not deployments:
        return []
    if envs.default_branch is None and not envs.branch_asked:
        envs.branch_asked = True  # at most once per run, answered or not
        project = connector.api.get_optional(base)
        branch = project.get("default_branch") if isinstance(project, dict) else None
        envs.default_branch = str(branch) if branch else None
    if envs.default_branch is None:
        return deployments
    return [
        d
        for d in deployments
        if d.get("ref") != envs.default_branch or (d.get("deployable") or {}).get("tag")
    ]


def _shipped(connector: Reading, base: str, deployment: Mapping[str, Any]) -> list[JSONObject]:
    """GitLab's own list of the merge requests a successful deployment shipped."""
    rows: list[JSONObject] = []
    path = f"{base}/deployments/{deployment['id']}/merge_requests"
    for page in connector.api.pages(path):
        for mr in page:
            rows.append(
                {
                    "deployment_id": str(deployment["id"]),
                    "change_id": str(mr["iid"]),
                    "sha": mr.get("merge_commit_sha")
                    or mr.get("squash_commit_sha")
                    or mr.get("sha"),
                    "environment": _environment(deployment).get("name"),
                    "is_approximate": False,
                }
            )
    return rows
