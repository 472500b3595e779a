"""The distributed engine: metrics and summary over repo partitions on a real Dask cluster
(two worker processes on 127.0.0.1) equal the in-process numbers exactly."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from local_services import two_worker_cluster
from report_data import organisation

import deliverypulse as dp
from deliverypulse.cli.metrics import metrics_command
from deliverypulse.dataset import Dataset, load
from deliverypulse.dora import engine as engine_module
from deliverypulse.dora.engine import DaskEngine, EngineError, plan_partitions
from deliverypulse.errors import OptionError
from deliverypulse.store.buckets import settle_buckets
from deliverypulse.store.catalogue import Service
from deliverypulse.store.location import resolve

distributed = pytest.importorskip("distributed")


def _cluster() -> Any:
    return two_worker_cluster()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with _cluster() as running:
        yield running


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "deliverypulse", "demo", "--out", str(out), "--scale", "0.3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def _incident(source: str, incident_id: str, at: pd.Timestamp, **extra: Any) -> dict[str, Any]:
    return {
        "source": source,
        "incident_id": incident_id,
        "created_at": at.isoformat(),
        "resolved_at": (at + pd.Timedelta(hours=3)).isoformat(),
        **extra,
    }


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    """Six repos (report_data's organisation), a catalogue where acme/checkout and
    acme/billing share the PagerDuty service ``checkout-pd``, PagerDuty incidents on that
    service (their repo: the account's host), ServiceNow duplicates of some of them, and
    incidents on a service nobody knows."""
    ds = organisation(days=70)
    rng = np.random.default_rng(3)
    ok = ds.deployments.loc[
        ds.deployments["repo"].isin(["acme/checkout", "acme/billing"])
        & (ds.deployments["status"] == "success")
    ]
    chosen = ok.sample(12, random_state=4)["finished_at"]
    rows = []
    for k, finished in enumerate(chosen):
        at = finished + pd.Timedelta(hours=int(rng.integers(1, 40)))
        rows.append(_incident("pd", f"P{k}", at, repo="api.pagerduty.com", service="checkout-pd"))
        if k % 3 == 0:  # the ServiceNow integration raised the same event
            rows.append(
                _incident("sn", f"INC{k}", at, repo="acme.service-now.com", correlation_id=f"P{k}")
            )
    rows.append(_incident("pd", "P-stray", chosen.iloc[0], repo="api.pagerduty.com", service="x"))
    own = ds.incidents.assign(source=ds.incidents["source"].astype("string"))
    incidents = pd.concat([own, pd.DataFrame(rows)], ignore_index=True)
    services = [
        Service(
            "checkout",
            repos=("acme/checkout", "acme/billing"),
            incident_services=("checkout-pd",),
            team="payments",
        ),
        Service("web", repos=("acme/web",), team="storefront"),
        Service("ledger", repos=("acme/ledger",), team="payments"),
    ]
    return Dataset.from_frames(
        deployments=ds.deployments,
        changes=ds.changes,
        commits=ds.commits,
        incidents=incidents,
        services=services,
        source="github",
    )


def _equal(ds: Dataset | Path, engines: list[Any]) -> None:
    """metrics by repo and by week, summary, by team and by repo: the same frames in-process
    and on Dask, with every engine given."""
    data: Any = ds if isinstance(ds, Dataset) else load(ds)
    for call in (
        lambda d, **k: dp.metrics(d, by=["repo"], **k),
        lambda d, **k: dp.metrics(d, period="week", **k),
        lambda d, **k: dp.summary(d, **k),
        lambda d, **k: dp.summary(d, by=["team"], **k),
        lambda d, **k: dp.summary(d, by=["repo"], **k),
    ):
        expected = call(data)
        assert len(expected) > 0
        for engine in engines:
            pd.testing.assert_frame_equal(call(ds, engine=engine), expected)


def test_demo_dataset_on_two_workers_equals_in_process(demo_dir: Path, client: Any) -> None:
    ds = load(demo_dir)
    assert len(ds.change_requests) and len(ds.incidents) and len(ds.services)  # ties to keep
    _equal(ds, [client])  # frames sent to the workers
    _equal(demo_dir, [DaskEngine(client, partitions=6)])  # workers read their repos from disk


def test_synthetic_org_with_shared_service_equals_in_process(
    synthetic: Dataset, client: Any
) -> None:
    _equal(synthetic, [client, DaskEngine(client, partitions=6, in_flight=1)])


def test_synthetic_org_read_from_disk(synthetic: Dataset, client: Any, tmp_path: Path) -> None:
    synthetic.save(tmp_path)
    _equal(tmp_path, [DaskEngine(client, partitions=4)])


def test_synthetic_org_read_from_a_bucketed_dataset(
    synthetic: Dataset, client: Any, tmp_path: Path
) -> None:
    """Partitions cut in the bucketed files' order, each worker opening only its repos'
    buckets: the same numbers whether a partition holds several buckets or part of one."""
    settle_buckets(resolve(tmp_path), 4, fresh=True)
    synthetic.save(tmp_path)
    assert len(list((tmp_path / "commits" / "source=github").glob("part-*.parquet"))) > 1
    _equal(tmp_path, [DaskEngine(client, partitions=2), DaskEngine(client, partitions=6)])


def test_shared_service_incident_charges_the_later_repo(client: Any) -> None:
    """Hand-made: o/a deploys at 10:00, o/b (same PagerDuty service) at 11:00, o/c (another
    service) at 11:15; the service's incident opens at 11:30. By the rule it fails o/b's
    deployment, the last of its service before it: o/a 0 of 1, o/b 1 of 1, o/c 0 of 1 — in
    any partitioning, because o/a and o/b are kept together."""

    def deploy(repo: str, finished: str) -> dict[str, Any]:
        return {
            "repo": repo,
            "deployment_id": f"{repo}-1",
            "environment": "production",
            "is_production": True,
            "sha": f"{repo}-sha",
            "status": "success",
            "created_at": pd.Timestamp(finished) - pd.Timedelta(minutes=5),
            "finished_at": pd.Timestamp(finished),
        }

    ds = Dataset.from_frames(
        deployments=[
            deploy("o/a", "2024-03-01T10:00Z"),
            deploy("o/b", "2024-03-01T11:00Z"),
            deploy("o/c", "2024-03-01T11:15Z"),
        ],
        incidents=[
            _incident(
                "pd",
                "P1",
                pd.Timestamp("2024-03-01T11:30Z"),
                repo="api.pagerduty.com",
                service="shop-pd",
            )
        ],
        services=[
            Service("shop", repos=("o/a", "o/b"), incident_services=("shop-pd",)),
            Service("other", repos=("o/c",), incident_services=("other-pd",)),
        ],
        source="gh",
    )
    for engine in (client, DaskEngine(client, partitions=3)):
        table = dp.summary(ds, by=["repo"], engine=engine)
        assert table["repo"].tolist() == ["o/a", "o/b", "o/c"]
        assert table["failed_deployments"].tolist() == [0, 1, 0]
        assert table["change_failure_rate"].tolist() == [0.0, 1.0, 0.0]


def test_partitions_keep_tied_repos_and_incidents_together(synthetic: Dataset) -> None:
    weights = pd.Series(
        {"acme/checkout": 10, "acme/billing": 10, "acme/web": 5, "ACME/Web": 1, "acme/api": 7}
    )
    incidents = synthetic.incidents.iloc[:0]
    parts, _ = plan_partitions(
        weights, incidents, synthetic, synthetic.deployment_change_requests, 4
    )
    repos = [set(part.repos) for part in parts]
    assert {"acme/checkout", "acme/billing"} in repos  # one service
    assert {"acme/web", "ACME/Web"} in repos  # one repo, compared without case
    assert {"acme/api"} in repos
    assert sorted(part.rows for part in parts) == [6, 7, 20]


def test_load_reads_only_the_asked_repos(synthetic: Dataset, tmp_path: Path) -> None:
    synthetic.save(tmp_path)
    part = load(tmp_path, tables=("deployments", "commits"), repos=["acme/web"])
    assert set(part.deployments["repo"]) == {"acme/web"}
    assert len(part.deployments) == int((synthetic.deployments["repo"] == "acme/web").sum())
    assert len(part.commits) == int((synthetic.commits["repo"] == "acme/web").sum())
    assert part.changes.empty and part.incidents.empty


def test_cli_scheduler_prints_the_same_table(demo_dir: Path, cluster: Any) -> None:
    runner = CliRunner()
    for extra in ([], ["--summary", "--by", "team"]):
        plain = runner.invoke(metrics_command, [str(demo_dir), "--by", "repo", *extra])
        spread = runner.invoke(
            metrics_command,
            [str(demo_dir), "--by", "repo", *extra, "--scheduler", cluster.scheduler_address],
        )
        assert plain.exit_code == 0, plain.output
        assert spread.exit_code == 0, spread.output
        assert spread.output == plain.output
        assert "acme/payments" in plain.output


def test_cli_unreachable_scheduler_is_one_clear_line(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "CONNECT_TIMEOUT", "2s")
    result = CliRunner().invoke(
        metrics_command, [str(demo_dir), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert result.exit_code == 1
    assert "Dask scheduler at tcp://127.0.0.1:9" in result.output


def test_links_object_is_refused(synthetic: Dataset, client: Any) -> None:
    links = dp.prepare(synthetic).links
    with pytest.raises(OptionError, match="deployment_changes table"):
        dp.metrics(synthetic, links=links, engine=client)


def test_without_dask_the_error_says_what_to_install(
    synthetic: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(EngineError, match=r"pip install 'deliverypulse\[distributed\]'"):
        dp.metrics(synthetic, engine="tcp://127.0.0.1:8786")
    assert len(dp.metrics(synthetic)) > 0  # the in-process path needs none of it


def test_a_worker_killed_mid_run_is_replaced_and_numbers_stay_right(synthetic: Dataset) -> None:
    """SIGKILL the worker running a partition: Dask reruns its task on a worker that lives (or
    says it could not); the numbers are the in-process ones either way."""
    big = _bigger(synthetic, copies=6)
    expected = dp.summary(big, by=["repo"])
    with _cluster() as cluster, distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                engine = DaskEngine(client, partitions=12)
                outcome["table"] = dp.summary(big, by=["repo"], engine=engine)
            except Exception as error:  # handed to the test thread
                outcome["error"] = error

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline and thread.is_alive():
            busy = [w for w, tasks in client.processing().items() if tasks]
            victim = busy[0] if busy else None
            time.sleep(0.05)
        assert victim is not None, "no task ever ran"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=240)
        assert not thread.is_alive()
    if "error" in outcome:
        assert isinstance(outcome["error"], EngineError)
        assert "could not prepare the partition" in str(outcome["error"])
    else:
        pd.testing.assert_frame_equal(outcome["table"], expected)


def _bigger(ds: Dataset, copies: int) -> Dataset:
    """``copies`` renamed copies of every repo (``-k`` appended), so there is work to kill."""

    def renamed(frame: pd.DataFrame) -> pd.DataFrame:
        parts = [frame.assign(repo=frame["repo"].astype("string") + f"-{k}") for k in range(copies)]
        return pd.concat(parts, ignore_index=True)

    return dataclasses.replace(
        ds,
        deployments=renamed(ds.deployments),
        changes=renamed(ds.changes),
        commits=renamed(ds.commits),
        incidents=renamed(ds.incidents.loc[ds.incidents["source"] == "github"]),
        services=ds.services.iloc[:0],
    )
