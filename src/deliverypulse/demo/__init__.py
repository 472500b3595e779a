"""The offline demo: a bundled sample organisation, served by local fake GitHub, GitLab,
ServiceNow and PagerDuty servers to the real connectors, then collect → link → metrics →
analysis → report.

Nothing is mocked below the HTTP layer, so the demo shows exactly what a first real run would
produce, without a token or a network: the servers listen on 127.0.0.1 only and live as long as
the run. ``run_demo`` is what ``deliverypulse demo`` calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from deliverypulse.analysis import Analysis, analyze
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import load_config
from deliverypulse.dataset import load
from deliverypulse.demo.github_server import FakeGitHub
from deliverypulse.demo.gitlab_server import FakeGitLab
from deliverypulse.demo.organisation import (
    GITHUB_ORG,
    GITLAB_GROUP,
    SERVICES,
    Service,
    build_organisation,
)
from deliverypulse.demo.pagerduty_server import FakePagerDuty
from deliverypulse.demo.servicenow_server import FakeServiceNow
from deliverypulse.dora import prepare, summary
from deliverypulse.errors import CollectError, ConfigError
from deliverypulse.progress import Progress
from deliverypulse.reporting import report

#: The variable the demo's config names; set only while the demo collects.
TOKEN_ENV = "DELIVERYPULSE_DEMO_TOKEN"
#: What the local fake servers accept: not a secret, they serve made-up data on 127.0.0.1.
DEMO_TOKEN = "deliverypulse-demo-token"
CONFIG_NAME = "deliverypulse.toml"
#: The demo config's first words: how a rerun knows the folder is the demo's own.
CONFIG_MARK = "# Written by `deliverypulse demo`"
REPORT_NAME = "report.html"


@dataclass(frozen=True)
class DemoResult:
    """What a demo run made: the dataset, the report, and the numbers it printed."""

    dataset: Path
    report: Path
    config: Path
    summary: pd.DataFrame  # deliverypulse.summary() of the dataset: one row, every metric
    analysis: Analysis
    collect: RunSummary
    #: deliverypulse.summary(..., by=["repo"]): each repo's own figures and DORA ratings.
    by_repo: pd.DataFrame = field(default_factory=pd.DataFrame)


def run_demo(
    out: Path | str,
    *,
    report_path: Path | str | None = None,
    scale: float = 1.0,
    progress: Progress | None = None,
) -> DemoResult:
    """Serve the sample organisation locally, collect it into ``out`` and report on it.

    ``out`` becomes the dataset root and holds the config written for the run
    (``deliverypulse.toml``, pointing at the servers' 127.0.0.1 URLs of this run); the report
    goes to ``report_path`` (default ``out/report.html``). ``scale`` shrinks or stretches the
    sample's six months (tests use a fraction). Rerunning into the same folder collects
    incrementally and leaves the same rows. Raises :class:`CollectError` if a source failed.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    dataset = Path(out).expanduser().resolve()
    _check_folder(dataset)
    dataset.mkdir(parents=True, exist_ok=True)
    target = Path(report_path) if report_path is not None else dataset / REPORT_NAME
    org = build_organisation(scale)
    github = FakeGitHub(org.repos, token=DEMO_TOKEN)
    servicenow = FakeServiceNow(org.servicenow, token=DEMO_TOKEN)
    pagerduty = FakePagerDuty(org.pagerduty, token=DEMO_TOKEN)
    gitlab = FakeGitLab(token=DEMO_TOKEN)
    for project in org.projects:
        gitlab.add_project(project)
    gitlab.groups[GITLAB_GROUP] = [project.path for project in org.projects]
    with ExitStack() as stack:
        for server in (github, gitlab, servicenow, pagerduty):
            stack.enter_context(server)
        stack.enter_context(_environment(TOKEN_ENV, DEMO_TOKEN))
        config_path = write_config(
            dataset,
            github_url=github.url,
            gitlab_url=gitlab.url,
            servicenow_url=servicenow.url,
            pagerduty_url=pagerduty.url,
        )
        collected = run_collect(load_config(config_path), progress=progress)
    if not collected.ok:
        failed = [line for line in collected.lines() if "FAILED" in line]
        raise CollectError("the demo's collect failed: " + "; ".join(failed), summary=collected)
    prepared = prepare(load(dataset))  # link once: the headline, analysis and report share it
    headline = summary(prepared)
    by_repo = summary(prepared, by=["repo"])
    analysis = analyze(prepared)
    written = report(
        prepared, target, analysis=analysis, title="deliverypulse demo: acme and platform"
    )
    return DemoResult(dataset, written, config_path, headline, analysis, collected, by_repo)


def _check_folder(folder: Path) -> None:
    """Refuse a folder that holds something other than an earlier demo: the demo writes its
    config there and adds its sources to the dataset, which must never touch a user's own."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ConfigError(f"{folder} is a file; give --out a folder for the demo")
    config = folder / CONFIG_NAME
    if config.is_file():
        if config.read_text(encoding="utf-8", errors="replace").startswith(CONFIG_MARK):
            return
        raise ConfigError(
            f"{folder} holds a {CONFIG_NAME} that the demo did not write; "
            "give --out an empty or new folder"
        )
    if any(folder.iterdir()):
        raise ConfigError(
            f"{folder} is not empty and holds no earlier demo; give --out an empty or new folder"
        )


def write_config(
    folder: Path,
    *,
    github_url: str,
    gitlab_url: str,
    servicenow_url: str | None = None,
    pagerduty_url: str | None = None,
) -> Path:
    """The demo's config, as a user would write it: one GitHub org, one GitLab group, with
    ``servicenow_url`` the ServiceNow instance holding the change board, with
    ``pagerduty_url`` the PagerDuty account that pages the fast teams, and the service
    catalogue: each service's repo, owning team, configuration item and PagerDuty service."""
    text = f"""\
{CONFIG_MARK} for one run: the URLs are local fake servers that lived only
# as long as that run, serving a made-up organisation. A real config looks the same with
# api_url/url left out (github.com, gitlab.com) or pointing at your instances.

[output]
path = "."

[[sources]]
name = "github"
type = "github"
org = "{GITHUB_ORG}"
api_url = "{github_url}"
token_env = "{TOKEN_ENV}"

[[sources]]
name = "gitlab"
type = "gitlab"
group = "{GITLAB_GROUP}"
url = "{gitlab_url}"
token_env = "{TOKEN_ENV}"
"""
    if servicenow_url is not None:
        text += f"""
[[sources]]
name = "servicenow"
type = "servicenow"
url = "{servicenow_url}"
token_env = "{TOKEN_ENV}"
"""
    if pagerduty_url is not None:
        text += f"""
[[sources]]
name = "pagerduty"
type = "pagerduty"
url = "{pagerduty_url}"
token_env = "{TOKEN_ENV}"
"""
    text += "".join(_service_table(service) for service in SERVICES)
    path = folder / CONFIG_NAME
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path


def _service_table(service: Service) -> str:
    """One ``[[services]]`` table of the catalogue."""
    lines = ["", "[[services]]", f'name = "{service.name}"', f'repos = ["{service.repo}"]']
    if service.configuration_item:
        lines.append(f'configuration_items = ["{service.configuration_item}"]')
    if service.pagerduty:
        lines.append(f'incident_services = ["{service.pagerduty}"]')
    lines.append(f'team = "{service.team}"')
    return "\n".join(lines) + "\n"


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``name=value`` in the environment for the block, then as it was before."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


__all__ = ["DEMO_TOKEN", "TOKEN_ENV", "DemoResult", "run_demo", "write_config"]
