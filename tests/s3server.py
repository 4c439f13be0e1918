"""A real S3-compatible server for tests: moto's standalone server (``moto_server``, from
``moto[s3]`` with Flask, in the ``[dev]`` extra) on a free loopback port, with one bucket. Used
by the blob-store conformance suite and by the tests of nodes whose ``[blobs]`` backend is
``s3``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
        pytest.fail("moto_server is not installed (the [dev] extra: moto[s3], flask, flask-cors)")
    return found


class MotoServer:
    """``moto_server`` running until :meth:`stop`, holding the bucket :data:`BUCKET`."""

    def __init__(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._proc = subprocess.Popen(
            [_moto_server(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"moto_server did not start on port {port}")
                time.sleep(0.05)
        self.client().create_bucket(Bucket=BUCKET)

    def client(self) -> object:
        """A boto3 S3 client of this server (to look at or alter what a store wrote)."""
        import boto3  # type: ignore[import-untyped]

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["access_key"],
            aws_secret_access_key=CREDENTIALS["secret_key"],
            region_name="us-east-1",
        )

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
