"""A dataset on object storage: moto's S3 server on 127.0.0.1 (and fsspec's ``memory://``)
holds what a local folder holds, and every command reads and writes it the same way.

Each test compares the S3 dataset with the same collect into a local folder, so the expected
values come from the local store that the rest of the suite checks by hand, never from the S3
code path itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner, Result
from gitrepo import GitRepo
from local_services import moto_s3, two_worker_cluster

import deliverypulse as dp
from deliverypulse.cli import main
from deliverypulse.dora.engine import DaskEngine
from deliverypulse.store import DatasetLock, SyncState
from deliverypulse.store.schemas import TABLES, spec_for

pytest.importorskip("moto.server")

BUCKET = "delivery"
KEY_ID = "AKIAFAKEKEYID123456"
SECRET = "fake-secret-Zq8VvT2mK9pLx4"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with one bucket; the environment points at it."""
    with moto_s3(BUCKET, KEY_ID, SECRET) as endpoint:
        yield endpoint


def _bucket_maker(endpoint: str) -> pafs.S3FileSystem:
    host = endpoint.split("://", 1)[1]
    return pafs.S3FileSystem(
        endpoint_override=host, scheme="http", region="us-east-1", allow_bucket_creation=True
    )


def _objects(endpoint: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` of the bucket, read straight from the server."""
    fs = _bucket_maker(endpoint)
    found = fs.get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True))
    out = {}
    for info in found:
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as stream:
                out[info.path.removeprefix(f"{BUCKET}/{prefix}/")] = stream.read()
    return out


def _prefix() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    git = GitRepo(tmp_path / "service")
    git.commit("first", date="2024-01-01T10:00:00+00:00", files={"a.txt": "1\n"})
    git.tag("v1.0.0")
    git.commit("second", date="2024-01-03T10:00:00+00:00", files={"a.txt": "2\n"})
    git.commit("third", date="2024-01-04T10:00:00+00:00", files={"b.txt": "3\n"})
    git.tag("v1.1.0")
    return git


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _collect(repo: GitRepo, out: str | Path) -> Result:
    result = _cli("collect", "--git", str(repo.path), "--out", str(out))
    assert result.exit_code == 0, result.output + result.stderr
    return result


def _assert_same_dataset(remote: dp.Dataset, local: dp.Dataset) -> None:
    for name in TABLES:
        key = list(spec_for(name).key)
        mine = remote.table(name).sort_values(key).reset_index(drop=True)
        theirs = local.table(name).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, theirs, obj=name)
    pd.testing.assert_frame_equal(remote.collection_start, local.collection_start)


def test_a_collect_into_s3_loads_like_the_same_collect_into_a_folder(
    s3: str, repo: GitRepo, tmp_path: Path
) -> None:
    prefix = _prefix()
    url = f"s3://{BUCKET}/{prefix}/data"
    _collect(repo, url)
    _collect(repo, tmp_path / "local")

    remote, local = dp.load(url), dp.load(tmp_path / "local")
    assert remote.path == url
    assert len(local.deployments) == 2 and len(local.commits) == 3  # two tags, three commits
    _assert_same_dataset(remote, local)

    stored = _objects(s3, f"{prefix}/data")
    assert "deployments/source=git-service/part-0.parquet" in stored
    assert "_deliverypulse/state.json" in stored
    assert "_deliverypulse/lock" not in stored  # the lease is given back at the end
    assert not [key for key in stored if ".tmp-" in key]  # whole-object PUTs, no temp keys
    for body in stored.values():  # no credential in anything written
        assert SECRET.encode() not in body and KEY_ID.encode() not in body


def test_a_rerun_on_s3_adds_only_what_is_new(s3: str, repo: GitRepo, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/{_prefix()}/data"
    _collect(repo, url)
    _collect(repo, tmp_path / "local")
    first = SyncState(url).cursors()
    assert first and all(row["cursor"] for row in first)

    repo.commit("fourth", date="2024-02-01T10:00:00+00:00", files={"c.txt": "4\n"})
    repo.tag("v1.2.0")
    again = _cli("collect", "--git", str(repo.path), "--out", url, "--json")
    assert again.exit_code == 0, again.stderr
    here = _cli("collect", "--git", str(repo.path), "--out", str(tmp_path / "local"), "--json")

    streams = {row["stream"]: row for row in json.loads(again.output)["streams"]}
    assert streams["deployments"]["added"] == 1  # v1.2.0 only
    assert streams["commits"]["added"] == 1  # "fourth" only
    local_streams = {row["stream"]: row for row in json.loads(here.output)["streams"]}
    for name, row in streams.items():  # the cursors read back from S3 resume where local does
        assert row["fetched"] == local_streams[name]["fetched"], name
    remote = dp.load(url)
    assert sorted(remote.deployments["ref"].astype(str)) == ["v1.0.0", "v1.1.0", "v1.2.0"]
    _assert_same_dataset(remote, dp.load(tmp_path / "local"))
    assert len(SyncState(url).runs) == 2


def test_metrics_status_and_report_read_s3_like_a_folder(
    s3: str, repo: GitRepo, tmp_path: Path
) -> None:
    url = f"s3://{BUCKET}/{_prefix()}/data"
    _collect(repo, url)
    _collect(repo, tmp_path / "local")

    remote = _cli("metrics", url, "--format", "csv")
    local = _cli("metrics", str(tmp_path / "local"), "--format", "csv")
    assert remote.exit_code == 0, remote.stderr
    assert remote.output == local.output and remote.output.count("\n") >= 2
    summary = _cli("metrics", url, "--summary")
    assert summary.output == _cli("metrics", str(tmp_path / "local"), "--summary").output

    status = _cli("status", url, "--json")
    assert status.exit_code == 0, status.stderr
    rows = {(r["table"], r["source"]): r["rows"] for r in json.loads(status.output)["tables"]}
    assert rows[("deployments", "git-service")] == 2 and rows[("commits", "git-service")] == 3

    written = _cli("metrics", url, "--write", "--format", "csv")
    assert written.exit_code == 0, written.stderr
    assert f"{url}/metrics/part-0.parquet" in written.stderr

    page = tmp_path / "report.html"
    report = _cli("report", url, "--output", str(page))
    assert report.exit_code == 0, report.stderr
    assert page.read_text(encoding="utf-8").startswith("<!")
    # The report's pseudonyms use the dataset's own key, kept with it on S3 like in a folder.
    stored = _objects(s3, url.removeprefix(f"s3://{BUCKET}/"))["_deliverypulse/pseudonym.key"]
    assert dp.pseudonym_key(url) == stored.strip() and len(stored.strip()) == 64


def test_the_lease_keeps_a_second_run_out_until_the_first_gives_it_back(
    s3: str, repo: GitRepo
) -> None:
    prefix = _prefix()
    url = f"s3://{BUCKET}/{prefix}/data"
    with DatasetLock(url):
        lease = json.loads(_objects(s3, f"{prefix}/data")["_deliverypulse/lock"])
        assert lease["pid"] == os.getpid() and SECRET not in json.dumps(lease)
        second = _cli("collect", "--git", str(repo.path), "--out", url)
        assert second.exit_code == 1
        line = second.stderr.strip()
        assert "\n" not in line and "another deliverypulse run" in line and url in line
    assert "_deliverypulse/lock" not in _objects(s3, f"{prefix}/data")
    _collect(repo, url)  # given back: the next run goes ahead


def test_a_held_lease_is_renewed_past_its_first_expiry(s3: str) -> None:
    url = f"s3://{BUCKET}/{_prefix()}/long"
    with DatasetLock(url, lease_seconds=1.5):
        time.sleep(3.0)  # twice the lease: only the renewals keep it alive
        with pytest.raises(dp.LockError, match="another deliverypulse run"), DatasetLock(url):
            pass
    with DatasetLock(url):  # given back at the end
        pass


def test_two_runs_starting_together_get_one_lease(s3: str) -> None:
    url = f"s3://{BUCKET}/{_prefix()}/race"
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    release = threading.Event()

    def run() -> None:
        barrier.wait()
        try:
            with DatasetLock(url):
                outcomes.append("held")
                release.wait(10)
        except dp.LockError:
            outcomes.append("refused")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(outcomes) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["held", "refused"]


def test_a_lease_past_its_expiry_is_taken_over(s3: str, repo: GitRepo) -> None:
    prefix = _prefix()
    url = f"s3://{BUCKET}/{prefix}/data"
    stale = {
        "owner": "dead-run",
        "host": "elsewhere",
        "pid": 1,
        "since": "2024-01-01T00:00:00+00:00",
        "expires": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
    }
    fs = _bucket_maker(s3)
    with fs.open_output_stream(f"{BUCKET}/{prefix}/data/_deliverypulse/lock") as stream:
        stream.write(json.dumps(stale).encode())
    _collect(repo, url)
    assert "_deliverypulse/lock" not in _objects(s3, f"{prefix}/data")

    live = {**stale, "expires": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}
    with fs.open_output_stream(f"{BUCKET}/{prefix}/data/_deliverypulse/lock") as stream:
        stream.write(json.dumps(live).encode())
    refused = _cli("collect", "--git", str(repo.path), "--out", url)
    assert refused.exit_code == 1 and "host elsewhere, pid 1" in refused.stderr


def test_a_config_names_the_bucket_and_its_endpoint(
    s3: str, repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the config says where the server is
    url = f"s3://{BUCKET}/{_prefix()}/from-config"
    config = tmp_path / "deliverypulse.toml"
    config.write_text(
        f'[output]\npath = "{url}"\nendpoint_url = "{s3}"\n'
        f'[[sources]]\ntype = "git"\nname = "service"\npath = "{repo.path}"\n'
    )
    ds = dp.collect(config)
    assert len(ds.deployments) == 2 and ds.path == url
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    assert len(dp.load(url).commits) == 3


def test_a_missing_bucket_is_one_line_naming_it(s3: str, repo: GitRepo) -> None:
    url = "s3://no-such-bucket/data"
    done = _cli("collect", "--git", str(repo.path), "--out", url)
    assert done.exit_code == 2  # like a folder that cannot be made
    line = done.stderr.strip()
    assert "\n" not in line and url in line and "the bucket does not exist" in line
    read = _cli("metrics", url)
    assert read.exit_code == 1  # like a folder with no dataset
    assert url in read.stderr and "the bucket does not exist" in read.stderr
    with pytest.raises(dp.DeliveryPulseError, match="no-such-bucket"):
        dp.load(url)


def test_an_empty_prefix_is_no_dataset(s3: str) -> None:
    done = _cli("metrics", f"s3://{BUCKET}/nothing-here")
    assert done.exit_code == 1
    assert f"no dataset at s3://{BUCKET}/nothing-here" in done.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("s3:///data", "no bucket named"),
        (f"s3://{KEY_ID}:{SECRET}@{BUCKET}/data", "credentials do not belong"),
        (f"s3://{BUCKET}/data?endpoint_override=x", "options do not go in the dataset URL"),
        ("nosuchscheme://x/data", "no filesystem for nosuchscheme://"),
    ],
)
def test_a_bad_url_is_a_usage_error(s3: str, repo: GitRepo, url: str, said: str) -> None:
    for args in (["collect", "--git", str(repo.path), "--out", url], ["metrics", url]):
        done = _cli(*args)
        assert done.exit_code == 2, (args, done.stderr)
        assert said in done.stderr and "Traceback" not in done.stderr
        assert SECRET not in done.stderr + done.output


def test_an_unreachable_endpoint_fails_fast_naming_the_url(
    s3: str, repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    url = f"s3://{BUCKET}/data"
    started = time.monotonic()
    done = _cli("collect", "--git", str(repo.path), "--out", url)
    assert done.exit_code == 2
    assert url in done.stderr and "cannot be reached" in done.stderr
    read = _cli("metrics", url)
    assert read.exit_code == 1 and url in read.stderr and "cannot be reached" in read.stderr
    assert time.monotonic() - started < 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_with_auth() -> Iterator[str]:
    """A second moto server that checks credentials (none are known to it, so every key is
    refused), as its own process: moto reads that setting when it starts."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_bad_credentials_are_refused_without_showing_them(
    s3: str, s3_with_auth: str, repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_with_auth)
    url = f"s3://{BUCKET}/data"
    done = _cli("collect", "--git", str(repo.path), "--out", url)
    assert done.exit_code == 2
    line = done.stderr.strip()
    assert "\n" not in line and url in line and "access denied" in line
    assert SECRET not in line and KEY_ID not in line
    read = _cli("metrics", url)
    assert read.exit_code == 1 and "access denied" in read.stderr
    assert SECRET not in read.stderr and KEY_ID not in read.stderr


def test_an_fsspec_memory_url_holds_a_dataset(repo: GitRepo, tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    url = f"memory://deliverypulse-{uuid.uuid4().hex[:8]}/data"
    _collect(repo, url)
    _collect(repo, tmp_path / "local")
    _assert_same_dataset(dp.load(url), dp.load(tmp_path / "local"))

    ds = dp.Dataset.from_frames(
        deployments=[
            {"deployment_id": "d1", "repo": "org/x", "created_at": "2024-03-01", "status": "ok"}
        ],
        source="manual",
    )
    saved = f"memory://deliverypulse-{uuid.uuid4().hex[:8]}/saved"
    ds.save(saved)
    back = dp.load(saved)
    assert back.deployments["deployment_id"].tolist() == ["d1"]


@pytest.mark.parametrize(
    ("output", "said"),
    [
        ('path = "s3://b/p"\nendpoint_url = "127.0.0.1:9000"', r"expected an http\(s\) URL"),
        ('path = "s3://b/p"\nendpoint_url = "http://u:pw123456@h:9"', "credentials do not belong"),
        ('path = "s3://"', "no bucket named"),
    ],
)
def test_the_config_checks_a_dataset_url_without_the_network(
    tmp_path: Path, output: str, said: str
) -> None:
    config = tmp_path / "deliverypulse.toml"
    config.write_text(f'[output]\n{output}\n[[sources]]\ntype = "git"\npath = "."\n')
    with pytest.raises(dp.ConfigError, match=said) as raised:
        dp.run_collect(config)
    assert str(config) in str(raised.value) and "pw123456" not in str(raised.value)


def test_a_url_in_the_config_is_kept_as_written(tmp_path: Path) -> None:
    from deliverypulse.config import config_from_dict

    raw = {"output": {"path": "s3://bucket/team/dora/"}, "sources": [{"type": "git", "path": "."}]}
    assert config_from_dict(raw).output == "s3://bucket/team/dora"
    assert config_from_dict(raw, output=tmp_path / "x").output == tmp_path / "x"


def test_two_dask_workers_read_their_repos_from_s3_and_agree_with_one_process(
    s3: str, tmp_path: Path
) -> None:
    """Issue 15: the dataset on object storage, the metrics on a real two-process LocalCluster
    whose workers each read their own repos from S3 — the same frames as one process reading a
    local copy. The workers inherit this process's environment (credentials, endpoint)."""
    distributed = pytest.importorskip("distributed")
    from report_data import organisation

    ds = organisation(days=40)
    url = f"s3://{BUCKET}/{_prefix()}/org"
    ds.save(url)
    ds.save(tmp_path / "local")
    local = dp.load(tmp_path / "local")
    assert len(local.deployments) > 50 and local.deployments["repo"].nunique() > 3
    with (
        two_worker_cluster() as cluster,
        distributed.Client(cluster) as client,
    ):
        engine = DaskEngine(client, partitions=3)
        by_repo = dp.summary(url, by=["repo"], engine=engine)
        pd.testing.assert_frame_equal(by_repo, dp.summary(local, by=["repo"]))
        monthly = dp.metrics(url, engine=engine)
        pd.testing.assert_frame_equal(monthly, dp.metrics(local))
