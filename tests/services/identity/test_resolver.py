"""DID Resolution over HTTP (``GET /1.0/identifiers/{did}``) on a real node: the statuses and
bodies the DID Resolution specification and its test suites expect."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
from nodeproc import NodeProcess  # type: ignore[import-not-found]

from citychain.sdk import Client
from citychain.services.identity.shapes import citychain_did, did_key, multikey_encode

pytestmark = pytest.mark.slow
RESOLUTION = "application/did-resolution"
BASE = "https://www.w3.org/ns/did#"


class World:
    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.http = httpx.Client(base_url=node.url, timeout=10)
        alice = node.signer("alice")
        self.alice_mk = multikey_encode(alice.public_key)
        doc = {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "verificationMethod": [
                {"id": "#key-1", "type": "Multikey", "publicKeyMultibase": self.alice_mk}
            ],
            "authentication": ["#key-1"],
            "assertionMethod": ["#key-1"],
            "capabilityInvocation": ["#key-1"],
        }
        with Client(node.url) as c:
            self.did = c.send(alice, "identity", "create_did", {"document": doc}).result
            self.gone = c.send(alice, "identity", "create_did", {"document": doc}).result
            c.send(alice, "identity", "deactivate_did", {"did": self.gone})

    def get(self, did: str, accept: str | None = RESOLUTION, **params: str) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        return self.http.get(f"/1.0/identifiers/{did}", params=params, headers=headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = NodeProcess(tmp_path_factory.mktemp("resolver") / "node")
    node.start()
    try:
        w = World(node)
        yield w
        w.http.close()
    finally:
        node.stop()


def error_type(r: httpx.Response) -> str:
    body: dict[str, Any] = r.json()
    assert body["didDocument"] is None and body["didDocumentMetadata"] == {}
    assert body["code"] and body["message"] == body["didResolutionMetadata"]["error"]["detail"]
    return str(body["didResolutionMetadata"]["error"]["type"])


def test_a_did_resolves_with_its_metadata(world: World) -> None:
    r = world.get(world.did)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(RESOLUTION)
    body = r.json()
    assert body["didDocument"]["id"] == world.did
    assert body["didDocument"]["verificationMethod"][0]["publicKeyMultibase"] == world.alice_mk
    assert body["didDocumentMetadata"]["versionId"] == "1"
    assert body["didDocumentMetadata"]["created"].endswith("Z")
    assert body["didResolutionMetadata"]["contentType"] == "application/did+ld+json"


def test_a_url_encoded_did_resolves_too(world: World) -> None:
    r = world.http.get(f"/1.0/identifiers/{quote(world.did, safe='')}")
    assert r.status_code == 200 and r.json()["didDocument"]["id"] == world.did


def test_the_bare_document_by_accept(world: World) -> None:
    ld = world.get(world.did, "application/did+ld+json")
    assert ld.status_code == 200 and ld.headers["content-type"].startswith(
        "application/did+ld+json"
    )
    assert ld.json()["id"] == world.did and "@context" in ld.json()
    plain = world.get(world.did, "application/did+json")
    assert plain.status_code == 200 and "@context" not in plain.json()


def test_versions_by_id_and_time(world: World) -> None:
    assert world.get(world.did, versionId="1").status_code == 200
    assert error_type(world.get(world.did, versionId="2")) == BASE + "NOT_FOUND"
    assert world.get(world.did, versionTime="2999-01-01T00:00:00Z").status_code == 200
    assert (
        error_type(world.get(world.did, versionTime="2000-01-01T00:00:00Z")) == BASE + "NOT_FOUND"
    )


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"versionTime": "2026-01-01T00:00:00.5Z"}, 400, "INVALID_OPTIONS"),  # fractions
        ({"versionTime": "2026-01-01T00:00:00+01:00"}, 400, "INVALID_OPTIONS"),  # not UTC
        ({"versionId": "zero"}, 400, "INVALID_OPTIONS"),
        ({"versionId": "1", "versionTime": "2026-01-01T00:00:00Z"}, 400, "INVALID_OPTIONS"),
        ({"service": "files"}, 501, "FEATURE_NOT_SUPPORTED"),
        ({"hl": "zQm\u00e9"}, 400, "INVALID_OPTIONS"),  # not ASCII
    ],
)
def test_bad_options(world: World, params: dict[str, str], status: int, kind: str) -> None:
    r = world.get(world.did, **params)
    assert r.status_code == status, r.text
    assert error_type(r) == BASE + kind


@pytest.mark.parametrize(
    ("did", "status", "kind"),
    [
        ("not-a-did", 400, "INVALID_DID"),
        ("did:example", 400, "INVALID_DID"),
        ("did:citychain:0OIl", 400, "INVALID_DID"),  # not base58btc
        ("did:unsupported:abc", 501, "METHOD_NOT_SUPPORTED"),
        (citychain_did(bytes(range(16))), 404, "NOT_FOUND"),  # no transaction created it
        ("did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc", 400, "INVALID_DID"),  # X25519
    ],
)
def test_refusals(world: World, did: str, status: int, kind: str) -> None:
    r = world.get(did)
    assert r.status_code == status, r.text
    assert error_type(r) == BASE + kind


def test_no_did_at_all_is_a_400(world: World) -> None:
    r = world.http.get("/1.0/identifiers/")
    assert r.status_code == 400 and error_type(r) == BASE + "INVALID_DID"


def test_an_unknown_representation_is_a_406(world: World) -> None:
    r = world.get(world.did, "application/x-unknown")
    assert r.status_code == 406 and error_type(r) == BASE + "REPRESENTATION_NOT_SUPPORTED"


def test_a_deactivated_did_is_a_410_with_its_metadata(world: World) -> None:
    r = world.get(world.gone)
    assert r.status_code == 410
    body = r.json()
    assert body["didDocumentMetadata"]["deactivated"] is True
    assert body["didDocumentMetadata"]["versionId"] == "2"


def test_a_did_key_resolves_with_no_chain(world: World) -> None:
    did = did_key(bytes(range(32)))
    r = world.get(did)
    assert r.status_code == 200
    doc = r.json()["didDocument"]
    assert doc["id"] == did
    assert doc["verificationMethod"][0]["publicKeyMultibase"] == did.removeprefix("did:key:")
    assert doc["assertionMethod"] == [doc["verificationMethod"][0]["id"]]


def test_the_route_is_in_the_openapi_document(world: World) -> None:
    paths = world.http.get("/openapi.json").json()["paths"]
    assert "/1.0/identifiers/{did}" in paths
