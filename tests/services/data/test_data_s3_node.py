"""A node's blob store as the API meets it when storage fails. A node whose ``[blobs]``
backend is S3, against a real S3-compatible server started here (moto's standalone server):
a version goes up through the node into the bucket and nothing onto the node's disk, and
comes back verified; when the S3 server goes down, the node refuses uploads and downloads
with ``backend_down`` in words, registers nothing, records no access, and stays healthy. A
node whose local store reaches its capacity refuses the upload with ``store_full``. (The
blob-store suite runs both backends themselves; this is the node wired to them.)"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nodeproc import NodeProcess  # type: ignore[import-not-found]

from citychain.errors import CitychainError, ErrorCode
from citychain.node.config import BlobsSettings
from citychain.node.home import init_home
from citychain.sdk import Client
from s3server import BUCKET, CREDENTIALS, MotoServer  # type: ignore[import-not-found]

pytestmark = pytest.mark.slow

CODE = "101001/000077"
SECRET_ENV = "CITYCHAIN_TEST_S3_SECRET"


def test_a_node_on_s3_serves_data_and_refuses_in_words_when_s3_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = MotoServer()
    node: NodeProcess | None = None
    try:
        home = tmp_path / "node"
        made = init_home(home, kdf_level="interactive", chain_id="data-s3")
        blobs = BlobsSettings(
            backend="s3",
            bucket=BUCKET,
            endpoint=server.url,
            prefix="node0/",
            access_key=CREDENTIALS["access_key"],
            secret_key_env=SECRET_ENV,
        )
        dataclasses.replace(made.config, blobs=blobs).save()
        monkeypatch.setenv(SECRET_ENV, CREDENTIALS["secret_key"])  # the node inherits it
        node = NodeProcess(home)
        node.start(demo=False)
        alice, bob = node.signer("alice"), node.signer("bob")
        src = tmp_path / "register.csv"
        payload = os.urandom(5000)
        src.write_bytes(payload)
        with Client(node.url) as c:
            d = c.data
            d.register_resource(alice, code=CODE, title="Registered residents",
                                provider="org1", sharing="unconditional")  # fmt: skip
            up = d.upload(alice, CODE, src, chunk_size=1024)
            keys = [
                o["Key"]
                for o in server.client().list_objects_v2(Bucket=BUCKET)["Contents"]  # type: ignore[attr-defined]
            ]
            assert len(keys) == 5 + 1 and all(k.startswith("node0/") for k in keys)  # + manifest
            assert not [p for p in (home / "data" / "blobs").rglob("*") if p.is_file()]
            stored = httpx.get(f"{node.url}/v1/data/resources/{CODE}/versions/1/stored")
            assert stored.status_code == 200 and stored.json()["chunks"] == 5

            asked = d.request_access(bob, CODE, "residents check", period=3_600_000)
            assert asked["state"] == "granted"
            assert d.grant_keys(alice, CODE) == [asked["grant"]]
            d.download(bob, CODE, 1, tmp_path / "back.csv", grant=asked["grant"])
            assert (tmp_path / "back.csv").read_bytes() == payload
            trail = len(d.audit(alice, CODE))

            server.stop()
            with pytest.raises(CitychainError) as down:
                d.upload(alice, CODE, src, chunk_size=1024)
            assert down.value.code == ErrorCode.BACKEND_DOWN, down.value
            assert server.url.split("//")[1] in down.value.message
            with pytest.raises(CitychainError) as gone:
                d.download(bob, CODE, 1, tmp_path / "again.csv", grant=asked["grant"])
            assert gone.value.code == ErrorCode.BACKEND_DOWN, gone.value
            assert not (tmp_path / "again.csv").exists()
            assert d.resource(CODE)["versions"] == 1  # nothing registered
            assert len(d.audit(alice, CODE)) == trail  # no access recorded
            r = httpx.get(f"{node.url}/v1/data/resources/{CODE}/versions/1/stored")
            assert (r.status_code, r.json()["code"]) == (503, "backend_down")
            assert httpx.get(f"{node.url}/v1/status").status_code == 200
        assert "Traceback" not in node.log.read_text()
        assert up.version == 1
    finally:
        if node is not None:
            node.stop()
        server.stop()


def test_a_node_whose_store_is_full_refuses_an_upload_and_registers_nothing(
    tmp_path: Path,
) -> None:
    """``[blobs] capacity`` reached halfway through an upload: the node answers
    ``store_full`` (503) saying what to do, no version is registered, and it stays healthy."""
    home = tmp_path / "node"
    made = init_home(home, kdf_level="interactive", chain_id="data-full")
    dataclasses.replace(made.config, blobs=BlobsSettings(capacity=3000)).save()
    node = NodeProcess(home)
    node.start(demo=False)
    try:
        alice = node.signer("alice")
        src = tmp_path / "big.csv"
        src.write_bytes(os.urandom(5000))
        with Client(node.url) as c:
            d = c.data
            d.register_resource(alice, code=CODE, title="Registered residents",
                                provider="org1", sharing="unconditional")  # fmt: skip
            with pytest.raises(CitychainError) as full:
                d.upload(alice, CODE, src, chunk_size=1024)
            assert full.value.code == ErrorCode.STORE_FULL, full.value
            assert "is full" in full.value.message and "collect garbage" in full.value.message
            assert d.resource(CODE)["versions"] == 0
            assert httpx.get(f"{node.url}/v1/status").status_code == 200
        assert "Traceback" not in node.log.read_text()
    finally:
        node.stop()
