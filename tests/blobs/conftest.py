"""A real S3-compatible server for the blob-store suite: moto's standalone server, started
once per session on a free port and stopped at the end; and the two stores every
conformance test runs against."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from citychain.blobs import BlobStore, LocalStore
from citychain.blobs.s3 import S3Store

BUCKET = "citychain-test"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_server() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        pytest.fail("moto_server is not installed (pip install 'moto[server]')")
    return found


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a running moto S3 server holding the bucket ``BUCKET``."""
    port = _free_port()
    proc = subprocess.Popen(
        [_moto_server(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start on port {port}")
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        import boto3  # type: ignore[import-untyped]

        boto3.session.Session().client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each conformance test runs against both backends (an S3 store with its own prefix)."""
    if request.param == "local":
        return LocalStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Store(
        BUCKET,
        endpoint,
        CREDENTIALS["access_key"],
        CREDENTIALS["secret_key"],
        prefix=f"t-{uuid.uuid4().hex[:12]}/",
    )
