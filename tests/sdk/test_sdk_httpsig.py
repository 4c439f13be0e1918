"""Signed reads in the SDK: what ``sign_request``/``SignedRequests`` put on a request is standard
RFC 9421, checked here by the ``http-message-signatures`` library on its own (its ``ED25519``
through ``cryptography``, its digest check), not by citychain's verifier; and the SDK's clients
sign every request when given a signer, and none otherwise."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from http_sf import parse
from sdk_helpers import seeded_signer

from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.errors import ErrorCode, InvalidInput
from citychain.sdk import AsyncClient, Client, SignedRequests, sign_request
from citychain.sdk._httpsig import keyid_for, parse_keyid

ALICE = seeded_signer(100)
URL = "http://node.test"


class _Message:
    """A request as the library's verifier reads it, built from the httpx request by hand."""

    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)
        self.headers = dict(request.headers.items())


def _independently_verified(request: httpx.Request) -> dict[str, object]:
    keyid = keyid_for(ED25519, ALICE.public_key)
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={keyid: Ed25519PublicKey.from_public_bytes(ALICE.public_key)},
            private_keys={},
        ),
    )
    (result,) = verifier.verify(
        _Message(request),
        expect_tag="citychain",
        require_components=("@method", "@target-uri"),
        body=request.content,
    )
    return {"params": result.parameters, "covered": list(result.covered_components)}


def test_a_signed_get_verifies_with_the_library_alone() -> None:
    request = httpx.Request("GET", f"{URL}/v1/data/grants/7", params={"as": "auditor"})
    sign_request(request, ALICE)
    got = _independently_verified(request)
    params = got["params"]
    assert isinstance(params, dict)
    assert params["keyid"] == f"ed25519:{ALICE.public_key.hex()}"
    assert params["alg"] == "ed25519"
    assert params["tag"] == "citychain"
    assert params["expires"] == params["created"] + 60
    assert abs(params["created"] - time.time()) < 5
    assert len(str(params["nonce"])) >= 16
    assert got["covered"] == ['"@method"', '"@target-uri"', '"@signature-params"']
    assert "content-digest" not in request.headers


def test_a_signed_post_covers_an_rfc9530_digest_of_its_body() -> None:
    body = b'{"purpose": "audit"}'
    request = httpx.Request(
        "POST", f"{URL}/v1/data/x", content=body, headers={"content-type": "application/json"}
    )
    sign_request(request, ALICE)
    assert _independently_verified(request)["covered"] == [
        '"@method"',
        '"@target-uri"',
        '"content-type"',
        '"content-digest"',
        '"@signature-params"',
    ]
    digest = parse(request.headers["content-digest"].encode(), tltype="dictionary")
    assert dict(digest) == {"sha-256": (hashlib.sha256(body).digest(), {})}
    request.headers["content-type"] = "application/cbor"  # covered: the library refuses it
    with pytest.raises(InvalidSignature):
        _independently_verified(request)


def test_the_signature_is_raw_ed25519_over_the_base_as_rfc9421_3_3_6_says() -> None:
    request = httpx.Request("GET", f"{URL}/v1/x")
    sign_request(request, ALICE, created=1_800_000_000, nonce="n1")
    value = request.headers["signature"]
    assert value.startswith("citychain=:") and value.endswith(":")
    signature = base64.b64decode(value[len("citychain=:") : -1])
    base = (
        f'"@method": GET\n"@target-uri": {URL}/v1/x\n"@signature-params": '
        + request.headers["signature-input"].removeprefix("citychain=")
    ).encode()
    Ed25519PublicKey.from_public_bytes(ALICE.public_key).verify(signature, base)


def test_sm2_requests_name_the_unregistered_sm2_sm3_alg() -> None:
    gm = Signer(SM2_SM3, (7).to_bytes(32, "big"))
    request = httpx.Request("GET", f"{URL}/v1/x")
    sign_request(request, gm)
    assert 'alg="sm2-sm3"' in request.headers["signature-input"]
    assert f'keyid="sm2-sm3:{gm.public_key.hex()}"' in request.headers["signature-input"]


def test_keyids_name_suite_and_key_and_refuse_anything_else() -> None:
    suite, key = parse_keyid(keyid_for(ED25519, ALICE.public_key))
    assert suite is ED25519 and key == ALICE.public_key
    for bad in (
        "ed25519",
        "rsa:00",
        "ed25519:zz",
        "ed25519:00",
        f"sm2-sm3:{ALICE.public_key.hex()}",
    ):
        with pytest.raises(InvalidInput) as err:
            parse_keyid(bad)
        assert err.value.code is ErrorCode.SIGNATURE_INVALID


def test_clients_sign_every_request_only_when_given_a_signer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"result": 1})

    with Client(URL, transport=httpx.MockTransport(handler), signer=ALICE) as node:
        node._post_json("/v1/data/read", {"id": "7"})
    with Client(URL, transport=httpx.MockTransport(handler)) as node:
        node._post_json("/v1/data/read", {"id": "7"})

    async def run() -> None:
        async with AsyncClient(URL, transport=httpx.MockTransport(handler), signer=ALICE) as node:
            await node._post_json("/v1/data/read", {"id": "8"})

    asyncio.run(run())
    signed, unsigned, signed_async = seen
    _independently_verified(signed)
    _independently_verified(signed_async)
    assert "signature" not in unsigned.headers and "content-digest" not in unsigned.headers


def test_signed_requests_refuses_a_long_validity() -> None:
    with pytest.raises(InvalidInput):
        SignedRequests(ALICE, validity_s=301)


def test_the_async_data_helpers_sign_their_reads_and_private_writes() -> None:
    """``AsyncClient.data``'s signed reads and private-collection calls carry RFC 9421
    signatures by the given signer (checked by the library alone), as the blocking ones do."""
    from citychain.services.data.shapes import subject_tag
    from citychain.services.identity.shapes import did_key

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if request.method == "PUT":
            return httpx.Response(201, json={"hash": "ab" * 32, "pushed_to": 2})
        if path.startswith("/v1/data/collections/"):
            return httpx.Response(200, content=b"the value")
        if path.endswith("/accesses"):
            return httpx.Response(200, json={"result": [{"seq": 1, "by": {"hex": "00" * 20}}]})
        return httpx.Response(200, json={"result": [{"id": 1}]})

    async def run() -> None:
        async with AsyncClient(URL, transport=httpx.MockTransport(handler)) as node:
            data = node.data
            assert await data.grants(ALICE, "101001/000001") == [{"id": 1}]
            assert await data.audit(ALICE, "101001/000001", after=3) == [{"id": 1}]
            assert await data.accesses(ALICE) == [{"seq": 1, "by": bytes(20)}]
            assert await data.get_private(ALICE, "c1", "k1", version=2) == b"the value"

    asyncio.run(run())
    grants, audit, accesses, private = seen
    assert grants.url.path.endswith("/grants") and audit.url.path.endswith("/audit")
    assert audit.url.params["after"] == "3"
    tag = subject_tag(did_key(ALICE.public_key))
    assert accesses.url.path == f"/v1/data/subjects/{tag.hex()}/accesses"
    assert private.url.params["version"] == "2"
    for request in seen:
        _independently_verified(request)
