"""Local stand-ins for the services issue 15 scales out to, shared by the tests that need
them: moto's S3 server and a Dask cluster of two worker processes, both on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def moto_s3(bucket: str, key_id: str, secret: str) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 holding ``bucket``; the environment (credentials, region,
    ``AWS_ENDPOINT_URL``) points at it while the block runs, so processes started inside it
    (Dask workers) inherit it. Yields the endpoint URL."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with pytest.MonkeyPatch.context() as env:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
                env.delenv(name, raising=False)
            env.setenv("AWS_ACCESS_KEY_ID", key_id)
            env.setenv("AWS_SECRET_ACCESS_KEY", secret)
            env.setenv("AWS_REGION", "us-east-1")
            env.setenv("AWS_ENDPOINT_URL", endpoint)
            env.setenv("AWS_EC2_METADATA_DISABLED", "true")
            maker = pafs.S3FileSystem(
                endpoint_override=f"{host}:{port}",
                scheme="http",
                region="us-east-1",
                allow_bucket_creation=True,
            )
            maker.create_dir(bucket)
            yield endpoint
    finally:
        server.stop()


def two_worker_cluster() -> Any:
    """A real ``distributed.LocalCluster``: two worker processes, one thread each, 127.0.0.1."""
    import distributed

    return distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=":0",  # any free port: two clusters never fight over 8787
    )
