"""Collection on a real Dask cluster (two worker processes on 127.0.0.1): the demo's fake
organisation fanned out by repo bucket stores exactly what one process stores, each task writes
only its own bucket's files, and a rerun adds nothing."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from local_services import moto_s3, two_worker_cluster

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.config import Config, load_config
from deliverypulse.demo import DEMO_TOKEN, TOKEN_ENV, write_config
from deliverypulse.demo.github_server import FakeGitHub
from deliverypulse.demo.gitlab_server import FakeGitLab
from deliverypulse.demo.organisation import GITLAB_GROUP, build_organisation
from deliverypulse.demo.pagerduty_server import FakePagerDuty
from deliverypulse.demo.servicenow_server import FakeServiceNow
from deliverypulse.errors import ConfigError
from deliverypulse.store import TABLES, SyncState, spec_for

distributed = pytest.importorskip("distributed")

BUCKETS = 4
SCALE = 0.15
#: Seconds each way, printed by the timing test for the report.
TIMES: dict[str, float] = {}


def hand_bucket(repo: str) -> int:
    """The bucket a repo must land in, computed here from the documented rule."""
    digest = hashlib.blake2b(repo.lower().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    """The demo's four fake servers and a config naming them; the token is in the environment
    before the cluster starts, so the workers read it from theirs."""
    folder = tmp_path_factory.mktemp("config")
    org = build_organisation(SCALE)
    gitlab = FakeGitLab(token=DEMO_TOKEN)
    for project in org.projects:
        gitlab.add_project(project)
    gitlab.groups[GITLAB_GROUP] = [project.path for project in org.projects]
    servers = (
        FakeGitHub(org.repos, token=DEMO_TOKEN),
        gitlab,
        FakeServiceNow(org.servicenow, token=DEMO_TOKEN),
        FakePagerDuty(org.pagerduty, token=DEMO_TOKEN),
    )
    with ExitStack() as stack, pytest.MonkeyPatch.context() as env:
        for server in servers:
            stack.enter_context(server)
        env.setenv(TOKEN_ENV, DEMO_TOKEN)
        path = write_config(
            folder,
            github_url=servers[0].url,
            gitlab_url=servers[1].url,
            servicenow_url=servers[2].url,
            pagerduty_url=servers[3].url,
        )
        yield load_config(path)


BUCKET = "fanout"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with one bucket; the environment points at it before the
    cluster starts, so the workers write there with credentials from their own environment."""
    with moto_s3(BUCKET, "AKIAFANOUTTEST000001", "fanout-test-secret"):
        yield f"s3://{BUCKET}"


@pytest.fixture(scope="module")
def client(config: Config, s3: str) -> Iterator[Any]:
    with (
        two_worker_cluster() as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def collected(
    config: Config, client: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The same organisation three ways: through the cluster with 4 buckets, in one process
    with 4 buckets, and in one process in today's layout (no buckets)."""
    root = tmp_path_factory.mktemp("collected")
    started = time.perf_counter()
    dp.collect(config, output=root / "plain")
    TIMES["in-process, 1 bucket"] = time.perf_counter() - started
    started = time.perf_counter()
    dp.collect(config, output=root / "local", buckets=BUCKETS)
    TIMES["in-process, 4 buckets"] = time.perf_counter() - started
    started = time.perf_counter()
    dp.collect(config, output=root / "cluster", buckets=BUCKETS, client=client)
    TIMES["2 workers, 4 buckets"] = time.perf_counter() - started
    return {name: root / name for name in ("plain", "local", "cluster")}


def frames(folder: Path) -> dict[str, pd.DataFrame]:
    """Every table of the dataset, in key order, index dropped."""
    return frames_of(dp.load(folder))


def frames_of(ds: dp.Dataset) -> dict[str, pd.DataFrame]:
    """Every table of ``ds``, in key order, index dropped."""
    out = {}
    for name in TABLES:
        frame = getattr(ds, name, None)
        if isinstance(frame, pd.DataFrame):
            key = [k for k in spec_for(name).key if k in frame.columns]
            out[name] = frame.sort_values(key).reset_index(drop=True)
    return out


def test_the_cluster_stores_what_one_process_stores(collected: dict[str, Path]) -> None:
    cluster, local, plain = (frames(collected[n]) for n in ("cluster", "local", "plain"))
    assert sum(len(f) for f in plain.values()) > 1000  # a real organisation, not empty tables
    assert len(plain["deployments"]) and len(plain["changes"]) and len(plain["commits"])
    for name, frame in plain.items():
        pd.testing.assert_frame_equal(cluster[name], frame, obj=f"{name} (cluster)")
        pd.testing.assert_frame_equal(local[name], frame, obj=f"{name} (4 buckets)")


def test_metrics_are_equal(collected: dict[str, Path]) -> None:
    plain = dp.metrics(dp.load(collected["plain"]))
    pd.testing.assert_frame_equal(dp.metrics(dp.load(collected["cluster"])), plain)


def test_each_bucket_has_its_own_parts_and_state(collected: dict[str, Path]) -> None:
    root = collected["cluster"]
    assert json.loads((root / "_deliverypulse" / "layout.json").read_text()) == {"buckets": 4}
    seen_buckets = set()
    for source in ("github", "gitlab"):
        folder = root / "commits" / f"source={source}"
        parts = sorted(p.name for p in folder.iterdir())
        assert parts and all(p in {f"part-{k}.parquet" for k in range(BUCKETS)} for p in parts)
        for part in parts:
            k = int(part.removeprefix("part-").removesuffix(".parquet"))
            repos = pd.read_parquet(folder / part, columns=["repo"])["repo"].astype(str)
            assert {hand_bucket(r) for r in repos} == {k}, (source, part)
            # Within a part rows go by repo first (a reader filtering by repo skips groups).
            assert repos.is_monotonic_increasing
            seen_buckets.add(k)
    assert len(seen_buckets) > 1  # the organisation really spread over several buckets
    main = json.loads((root / "_deliverypulse" / "state.json").read_text())
    assert main["cursors"] == {} and len(main["runs"]) == 1
    cursors = 0
    for source in ("github", "gitlab"):
        for k in range(BUCKETS):  # one file per source and bucket: no two tasks share one
            path = root / "_deliverypulse" / f"state-{k}-{source}.json"
            if not path.exists():
                continue
            saved = json.loads(path.read_text())
            assert set(saved["cursors"]) == {source}
            for repos in saved["cursors"][source].values():
                assert {hand_bucket(r) for r in repos} == {k}
                cursors += len(repos)
    merged = SyncState(root).cursors()
    assert cursors and len(merged) >= cursors
    # The same cursors as one process keeps: every (source, stream, repo), and the values of
    # the hosts' (an incident source's cursor holds the run's own time).
    plain = SyncState(collected["plain"]).cursors()
    assert [(r["source"], r["stream"], r["repo"]) for r in merged] == [
        (r["source"], r["stream"], r["repo"]) for r in plain
    ]
    hosts = ("github", "gitlab")
    assert [r["cursor"] for r in merged if r["source"] in hosts] == [
        r["cursor"] for r in plain if r["source"] in hosts
    ]


def test_a_rerun_through_the_cluster_adds_nothing(
    config: Config, client: Any, collected: dict[str, Path]
) -> None:
    before = frames(collected["cluster"])
    summary = run_collect(config, output=collected["cluster"], client=client)
    assert summary.ok, summary.lines()
    assert summary.results and all(r.added == 0 for r in summary.results)
    github = [r for r in summary.results if r.source == "github"]
    assert github and all(r.repos > 0 for r in github)
    after = frames(collected["cluster"])
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)


def test_buckets_are_fixed_when_the_dataset_is_made(
    config: Config, collected: dict[str, Path]
) -> None:
    with pytest.raises(ConfigError, match="4 repo buckets, fixed when it was created"):
        run_collect(config, output=collected["local"], buckets=2)
    with pytest.raises(ConfigError, match="1 repo bucket, fixed"):
        run_collect(config, output=collected["plain"], buckets=4)


def test_timings(collected: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\ncollect of the demo org at scale", SCALE, TIMES)
    assert set(TIMES) == {"in-process, 1 bucket", "in-process, 4 buckets", "2 workers, 4 buckets"}


def test_the_cli_collects_on_a_scheduler(
    config: Config, client: Any, collected: dict[str, Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from deliverypulse.cli.collect import collect_command

    out = tmp_path / "cli"
    address = client.scheduler.address
    args = ["--config", str(config.path), "-o", str(out), "--buckets", "4"]
    done = CliRunner().invoke(collect_command, [*args, "--scheduler", address, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["ok"] is True
    assert (out / "_deliverypulse" / "layout.json").exists()
    plain = frames(collected["plain"])
    for name, frame in frames(out).items():
        pd.testing.assert_frame_equal(frame, plain[name], obj=name)


def test_the_cluster_collects_into_s3_what_one_process_stores_locally(
    config: Config, client: Any, s3: str, collected: dict[str, Path]
) -> None:
    """Issue 15: workers fan out the collection and each writes its own bucket's objects on
    object storage (moto's S3 on 127.0.0.1); the dataset equals one process's local one."""
    url = f"{s3}/org"
    dp.collect(config, output=url, buckets=BUCKETS, client=client)
    remote, plain = frames_of(dp.load(url)), frames(collected["plain"])
    for name, frame in plain.items():
        pd.testing.assert_frame_equal(remote[name], frame, obj=f"{name} (cluster into S3)")
    pd.testing.assert_frame_equal(dp.metrics(dp.load(url)), dp.metrics(dp.load(collected["plain"])))
