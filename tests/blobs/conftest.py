"""A real S3-compatible server for the blob-store suite: moto's standalone server, started
once per session on a free port and stopped at the end; and the two stores every
conformance test runs against."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citychain.blobs import BlobStore, LocalStore
from citychain.blobs.s3 import S3Store
from s3server import BUCKET, CREDENTIALS, MotoServer  # type: ignore[import-not-found]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a running moto S3 server holding the bucket ``BUCKET``."""
    server = MotoServer()
    try:
        yield server.url
    finally:
        server.stop()


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
