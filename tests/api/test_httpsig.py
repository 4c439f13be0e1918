"""Signed reads on the node: RFC 9421 signatures checked by ``citychain.api._httpsig``.

* The standard's own example (RFC 9421 B.2.6, ``tests/vectors/rfc9421/``) verifies with
  citychain's verifier code path: the signature base it builds is the RFC's, byte for byte,
  the chain's Ed25519 reproduces the RFC's signature from the RFC's key, and the check accepts
  the published Signature-Input/Signature (and refuses them when a covered field changes).
* End to end through a real FastAPI app with a signed dummy route: unsigned, tampered body,
  wrong path, replay, expired, unauthorised signer, and good requests, on both suites; a node
  behind a proxy checks the public origin it is configured with.
* Private queries: the generic ``/v1/query`` routes (GET and POST) refuse them with 403 and the
  way to the signed route; a service route that authorised the caller runs them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_node import FakeNode, TestClient, seeded_signer
from fastapi import APIRouter, Request
from starlette.responses import Response

from citychain.api import create_app
from citychain.api._httpsig import (
    ContentAddressedDep,
    SignatureVerifier,
    SignedDep,
    check_signature,
    install,
    require,
)
from citychain.api.routes._common import ServiceDep, json
from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.errors import ErrorCode, InvalidInput
from citychain.execution import (
    BlockContext,
    Context,
    Contract,
    ContractRegistry,
    Executor,
    query,
)
from citychain.sdk import SignedRequests, sign_request
from citychain.sdk._httpsig import algorithm_for

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9421"
NOW = 1_800_000_000


# -- RFC 9421 appendix B.2.6 ---------------------------------------------------------------------
def _unwrap(name: str) -> str:
    """A vector file's text with RFC 8792 single-backslash wrapping undone (the "NOTE" line
    and the blank line after it dropped; a line ending in "\\" joins the next one, whose
    leading spaces go)."""
    text = (VECTORS / name).read_text()
    if text.startswith("NOTE: '\\' line wrapping per RFC 8792\n\n"):
        text = text.split("\n\n", 1)[1]
    return re.sub(r"\\\n *", "", text).rstrip("\n")


def _pem_body(kind: str) -> bytes:
    text = (VECTORS / "test-key-ed25519.txt").read_text()
    found = re.search(f"-----BEGIN {kind} KEY-----\n(.*?)\n-----END {kind} KEY-----", text, re.S)
    assert found is not None
    return base64.b64decode(found.group(1))


def _rfc_request() -> tuple[str, str, list[tuple[str, str]], bytes]:
    head, body = _unwrap("test-request.txt").split("\n\n", 1)
    request_line, *lines = head.split("\n")
    method, target, _ = request_line.split(" ")
    headers = [(k, v) for k, _, v in (line.partition(": ") for line in lines)]
    host = dict(headers)["Host"]
    return method, f"https://{host}{target}", headers, body.encode()


def _rfc_signature_fields() -> list[tuple[str, str]]:
    return [
        (k, v)
        for k, _, v in (
            line.partition(": ") for line in _unwrap("b26-signature-headers.txt").split("\n")
        )
    ]


def test_rfc9421_b26_signature_base_and_signature_are_reproduced() -> None:
    from http_message_signatures import HTTPMessageSigner

    from citychain.api._httpsig import _Fields, _Message

    method, url, headers, _body = _rfc_request()
    # SubjectPublicKeyInfo and PKCS#8 of an Ed25519 key end with the raw 32 bytes.
    public_key, seed = _pem_body("PUBLIC")[-32:], _pem_body("PRIVATE")[-32:]
    assert ED25519.public_key(seed) == public_key
    prepared = HTTPMessageSigner(signature_algorithm=algorithm_for("ed25519")).prepare(
        _Message(method, url, _Fields(headers)),
        key_id="test-key-ed25519",
        created=datetime.fromtimestamp(1618884473, UTC),
        include_alg=False,
        label="sig-b26",
        use_existing_digest=True,  # the test-request carries one; B.2.6 does not cover it
        covered_component_ids=(
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ),
    )
    assert prepared.signature_base.decode() == _unwrap("b26-signature-base.txt")
    published = dict(_rfc_signature_fields())
    assert f"sig-b26={prepared.signature_params}" == published["Signature-Input"]
    # Ed25519 is deterministic: the chain's suite makes the RFC's signature from the RFC's key.
    signature = ED25519.sign(seed, prepared.signature_base)
    assert f"sig-b26=:{base64.b64encode(signature).decode()}:" == published["Signature"]


def test_rfc9421_b26_published_signature_verifies_with_citychains_check() -> None:
    method, url, headers, _body = _rfc_request()
    public_key = _pem_body("PUBLIC")[-32:]
    signed = headers + _rfc_signature_fields()
    # B.2.6 covers no digest, so the body is not checked (None), as the RFC signs it.
    check_signature(method, url, signed, None, "ed25519", "test-key-ed25519", public_key)

    tampered = [(k, "Tue, 20 Apr 2021 02:07:56 GMT" if k == "Date" else v) for k, v in signed]
    with pytest.raises(InvalidInput) as err:
        check_signature(method, url, tampered, None, "ed25519", "test-key-ed25519", public_key)
    assert err.value.code is ErrorCode.SIGNATURE_INVALID
    assert "does not verify" in err.value.message


# -- end to end through a FastAPI app ------------------------------------------------------------
ALICE = seeded_signer(100)  # may read
MALLORY = seeded_signer(101)  # signs correctly, may not read
GM_ALICE = Signer(SM2_SM3, (7).to_bytes(32, "big"))  # an SM2 account that may read


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def _dummy_router() -> APIRouter:
    router = APIRouter()

    @router.api_route("/v1/test/secret/{item}", methods=["GET", "POST"])
    async def secret(item: str, signed: SignedDep, request: Request) -> Response:
        require(
            signed,
            {ALICE.address, GM_ALICE.address},
            "only the record's owner reads it",
        )
        assert await request.body() == signed.body  # the route sees the checked bytes
        return json(
            {
                "item": item,
                "reader": signed.address.hex(),
                "suite": signed.suite,
                "body": signed.body.decode(),
            }
        )

    @router.put("/v1/test/blob/{digest}")
    async def blob(digest: str, signed: ContentAddressedDep) -> Response:
        if hashlib.sha256(signed.body).hexdigest() != digest:  # the route's own check
            raise InvalidInput("the body is not this blob", ErrorCode.CHUNK_ID_MISMATCH)
        return json({"stored": len(signed.body)})

    return router


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> Iterator[TestClient]:
    app = create_app(FakeNode())
    app.include_router(_dummy_router())
    install(app, SignatureVerifier(clock=clock))
    with TestClient(app, base_url="http://node.test") as c:
        yield c


def _signed(
    c: TestClient, signer: Signer, method: str, path: str, content: bytes | None = None
) -> httpx.Request:
    request = c.build_request(
        method,
        path,
        content=content,
        headers={"content-type": "application/json"} if content else None,
    )
    sign_request(request, signer, created=NOW)
    return request


def _refusal(r: httpx.Response, status: int, code: ErrorCode) -> str:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code.value
    message: str = r.json()["message"]
    return message


def test_a_good_signed_read_answers_who_signed(client: TestClient) -> None:
    r = client.send(_signed(client, ALICE, "GET", "/v1/test/secret/7?view=full"))
    assert r.status_code == 200, r.text
    assert r.json() == {"item": "7", "reader": ALICE.address.hex(), "suite": "ed25519", "body": ""}

    r = client.send(_signed(client, ALICE, "POST", "/v1/test/secret/8", b'{"why": "audit"}'))
    assert r.status_code == 200, r.text
    assert r.json()["body"] == '{"why": "audit"}'


def test_an_sm2_account_signs_reads_too(client: TestClient) -> None:
    r = client.send(_signed(client, GM_ALICE, "POST", "/v1/test/secret/9", b'{"a": 1}'))
    assert r.status_code == 200, r.text
    assert r.json()["reader"] == GM_ALICE.address.hex()
    assert r.json()["suite"] == "sm2-sm3"


def test_the_sdk_auth_signs_with_the_callers_clock(client: TestClient, clock: Clock) -> None:
    r = client.get("/v1/test/secret/1", auth=SignedRequests(ALICE, clock=clock))
    assert r.status_code == 200, r.text


def test_unsigned_is_401_with_what_to_sign(client: TestClient) -> None:
    r = client.get("/v1/test/secret/1")
    message = _refusal(r, 401, ErrorCode.SIGNATURE_MISSING)
    assert "signed by an authorised account" in message
    assert r.headers["accept-signature"].startswith('citychain=("@method" "@target-uri")')
    assert 'tag="citychain"' in r.headers["accept-signature"]
    assert r.headers["www-authenticate"].startswith("Signature")


def test_a_tampered_body_is_401(client: TestClient) -> None:
    good = _signed(client, ALICE, "POST", "/v1/test/secret/1", b'{"amount": 1}')
    forged = client.build_request(
        "POST", "/v1/test/secret/1", content=b'{"amount": 9}', headers=good.headers
    )
    message = _refusal(client.send(forged), 401, ErrorCode.SIGNATURE_INVALID)
    assert "Content-Digest does not match" in message


def test_a_body_the_signature_does_not_cover_is_401(client: TestClient) -> None:
    bare = _signed(client, ALICE, "GET", "/v1/test/secret/1")
    smuggled = client.build_request(
        "POST", "/v1/test/secret/1", content=b"{}", headers=bare.headers
    )
    message = _refusal(client.send(smuggled), 401, ErrorCode.SIGNATURE_INVALID)
    assert '"content-digest"' in message


def test_a_content_addressed_put_needs_no_digest_and_only_there(client: TestClient) -> None:
    """A route whose URI names its body's hash (ContentAddressedDep) takes a signature without
    Content-Digest: the signed URI binds the body through the hash, which the route checks.
    Any other route still refuses a body the signature does not cover."""
    body = b"ciphertext chunk"
    path = f"/v1/test/blob/{hashlib.sha256(body).hexdigest()}"
    request = client.build_request("PUT", path, content=body)
    sign_request(request, ALICE, created=NOW, digest=False)
    assert "content-digest" not in request.headers
    r = client.send(request)
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": len(body)}
    assert _refusal(client.send(request), 401, ErrorCode.SIGNATURE_REPLAYED)
    swapped = client.build_request("PUT", path, content=b"other bytes")  # signed afresh
    sign_request(swapped, ALICE, created=NOW, digest=False)
    assert _refusal(client.send(swapped), 400, ErrorCode.CHUNK_ID_MISMATCH)
    plain = client.build_request("POST", "/v1/test/secret/1", content=body)
    sign_request(plain, ALICE, created=NOW, digest=False)
    message = _refusal(client.send(plain), 401, ErrorCode.SIGNATURE_INVALID)
    assert '"content-digest"' in message


def test_another_path_or_query_is_401(client: TestClient) -> None:
    for signed_for, sent_to in (
        ("/v1/test/secret/1", "/v1/test/secret/2"),
        ("/v1/test/secret/1?view=brief", "/v1/test/secret/1?view=full"),
    ):
        good = _signed(client, ALICE, "GET", signed_for)
        moved = client.build_request("GET", sent_to, headers=good.headers)
        message = _refusal(client.send(moved), 401, ErrorCode.SIGNATURE_INVALID)
        assert "does not verify" in message


def test_a_replay_is_401(client: TestClient) -> None:
    request = _signed(client, ALICE, "GET", "/v1/test/secret/1")
    assert client.send(request).status_code == 200
    message = _refusal(client.send(request), 401, ErrorCode.SIGNATURE_REPLAYED)
    assert "already used" in message


def test_expired_and_too_old_or_early_are_401(client: TestClient, clock: Clock) -> None:
    clock.now = NOW + 61  # past expires (created + 60 s)
    message = _refusal(
        client.send(_signed(client, ALICE, "GET", "/v1/test/secret/1")),
        401,
        ErrorCode.SIGNATURE_EXPIRED,
    )
    assert "expired 1 s ago" in message
    clock.now = NOW - 301  # the signer's clock runs 301 s ahead of the node's
    message = _refusal(
        client.send(_signed(client, ALICE, "GET", "/v1/test/secret/1")),
        401,
        ErrorCode.SIGNATURE_EXPIRED,
    )
    assert "301 s in the future" in message


def test_malformed_signatures_are_401_saying_what_is_wrong(client: TestClient) -> None:
    good = _signed(client, ALICE, "GET", "/v1/test/secret/1")
    cases = {
        "Signature-Input is not a structured-field dictionary": {"signature-input": "((("},
        "no keyid": {
            "signature-input": good.headers["signature-input"].replace(";keyid=", ";kid=")
        },
        "is not '<suite>:<public key hex>'": {
            "signature-input": good.headers["signature-input"].replace(
                'keyid="ed25519:', 'keyid="rsa:'
            )
        },
        'tagged tag="citychain"': {
            "signature-input": good.headers["signature-input"].replace(
                'tag="citychain"', 'tag="other"'
            )
        },
        "both Signature-Input and Signature": {"signature": None},
    }
    for expected, change in cases.items():
        headers = {k: v for k, v in good.headers.items() if k not in change}
        headers.update({k: v for k, v in change.items() if v is not None})
        r = client.send(client.build_request("GET", "/v1/test/secret/1", headers=headers))
        assert expected in _refusal(r, 401, ErrorCode.SIGNATURE_INVALID), expected


def test_an_unauthorised_signer_is_403_with_the_reason(client: TestClient) -> None:
    r = client.send(_signed(client, MALLORY, "GET", "/v1/test/secret/1"))
    message = _refusal(r, 403, ErrorCode.NOT_AUTHORIZED)
    assert MALLORY.address.hex() in message
    assert "only the record's owner reads it" in message
    assert "accept-signature" not in r.headers


def test_behind_a_proxy_the_node_checks_its_public_origin(clock: Clock) -> None:
    app = create_app(FakeNode())
    app.include_router(_dummy_router())
    install(app, SignatureVerifier(origin="https://data.city.example", clock=clock))
    public = httpx.Request("GET", "https://data.city.example/v1/test/secret/1")
    sign_request(public, ALICE, created=NOW)
    with TestClient(app, base_url="http://10.0.0.5:26657") as c:  # the proxy's hop
        r = c.get("/v1/test/secret/1", headers=dict(public.headers))
        assert r.status_code == 200, r.text
        other = httpx.Request("GET", "https://elsewhere.example/v1/test/secret/1")
        sign_request(other, ALICE, created=NOW)
        r = c.get("/v1/test/secret/1", headers=dict(other.headers))
        assert r.status_code == 401
    with pytest.raises(ValueError, match="origin"):
        SignatureVerifier(origin="https://data.city.example/v1")


def test_the_replay_cache_is_bounded_and_fails_closed(clock: Clock) -> None:
    verifier = SignatureVerifier(replay_capacity=2, clock=clock)

    def read(nonce: str, created: int = NOW) -> int:
        request = httpx.Request("GET", "http://node.test/x")
        sign_request(request, ALICE, created=created, nonce=nonce)
        return verifier.verify(
            "GET", "http://node.test/x", list(request.headers.multi_items()), b""
        ).created

    read("a"), read("b")
    with pytest.raises(Exception) as err:
        read("c")
    assert getattr(err.value, "code", None) is ErrorCode.UNAVAILABLE  # never forgets "a" early
    clock.now = NOW + 61  # "a" and "b" can no longer be accepted: they are forgotten
    read("c", NOW + 61)
    read("a", NOW + 61)


# -- private queries -----------------------------------------------------------------------------
class Vault(Contract):
    name = "vault"

    @query
    def public_count(self, ctx: Context, args: dict[str, Any]) -> int:
        return 3

    @query(private=True)
    def secret(self, ctx: Context, args: dict[str, Any]) -> bytes:
        return ctx.caller


class _State:
    def get(self, key: bytes) -> bytes | None:
        return None

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return iter(())


class VaultNode(FakeNode):
    """The fake node, with its queries run by a real executor over the Vault contract."""

    def __init__(self) -> None:
        super().__init__()
        registry = ContractRegistry()
        registry.register(Vault())
        self.executor = Executor(registry, ED25519)

    async def query(
        self,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        private: bool = False,
        caller: bytes | None = None,
    ) -> Any:
        ctx = BlockContext("fake-chain", 1, 1_700_000_000_000, b"")
        return self.executor.query(_State(), ctx, contract, method, args, caller, private=private)


def test_query_marks_private_and_plain_query_still_works() -> None:
    assert Vault.entries["secret"].private and Vault.entries["secret"].read_only
    assert not Vault.entries["public_count"].private


def test_generic_query_routes_refuse_a_private_query_and_a_signed_route_runs_it(
    clock: Clock,
) -> None:
    node = VaultNode()
    app = create_app(node)
    router = APIRouter()

    @router.get("/v1/vault/secret")
    async def vault_secret(signed: SignedDep, service: ServiceDep) -> Response:
        require(signed, {ALICE.address}, "only alice")
        result = await service.query("vault", "secret", {}, private=True, caller=signed.address)
        return json({"result": result.hex()})

    app.include_router(router)
    install(app, SignatureVerifier(clock=clock))
    with TestClient(app, base_url="http://node.test") as c:
        assert c.get("/v1/query/vault/public_count").json()["result"] == 3
        for r in (
            c.get("/v1/query/vault/secret"),
            c.post("/v1/query/vault/secret", json={"args": {}}),
        ):
            message = _refusal(r, 403, ErrorCode.NOT_AUTHORIZED)
            assert "private query" in message and "signed" in message
        request = c.build_request("GET", "/v1/vault/secret")
        sign_request(request, ALICE, created=NOW)
        r = c.send(request)
        assert r.status_code == 200, r.text
        assert r.json()["result"] == ALICE.address.hex()  # the contract saw the signer


def test_digest_is_rfc9530_sha256() -> None:
    request = httpx.Request("POST", "http://node.test/x", content=b'{"a": 1}')
    sign_request(request, ALICE, created=NOW)
    digest = base64.b64encode(hashlib.sha256(b'{"a": 1}').digest()).decode()
    assert request.headers["content-digest"] == f"sha-256=:{digest}:"


def test_the_node_config_names_the_public_origin() -> None:
    from citychain.node.config import ApiConfig

    assert ApiConfig(public_origin="https://data.city.example").problem() is None
    for bad in ("data.city.example", "ftp://x", "https://x/v1"):
        assert "public_origin" in (ApiConfig(public_origin=bad).problem() or "")
