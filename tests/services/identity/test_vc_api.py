"""The W3C VC-API verifier endpoints on a real node, and the public verification page using
them in a real headless Chromium: valid, revoked, suspended, expired, tampered and untrusted
credentials, each answered with its code (never 200 with verified: false) and in words."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nodeproc import CLI, NodeProcess, cli, free_port  # type: ignore[import-not-found]
from vc_fixtures import REFUSALS, licence_subject  # type: ignore[import-not-found]

import browser  # type: ignore[import-not-found]
from citychain.crypto import ED25519, Signer
from citychain.errors import CitychainError, ErrorCode, InvalidInput, ProofError
from citychain.sdk import Client
from citychain.services.identity.cli import own_document
from citychain.services.identity.sdk import (
    EDDSA_JCS_2022,
    EDDSA_RDFC_2022,
    bundle_bytes,
    credential_from_template,
    issue_credential,
    make_bundle,
    qr_svg,
    status_entry,
    verify_bundle,
    verify_link,
)
from citychain.types import Validator, ValidatorSet
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow

BUREAU = "Fuzhou Market Regulation Bureau"
TYPE = "BusinessLicenceCredential"


@dataclass
class World:
    node: NodeProcess
    issuer: Signer
    did: str
    revocation: str
    suspension: str
    stranger: Signer
    stranger_did: str

    def licence(
        self,
        *,
        index: int | None = None,
        suspension: bool = False,
        signer: Signer | None = None,
        did: str | None = None,
        valid_until: datetime | None = None,
        suite: str = EDDSA_JCS_2022,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        did = did or self.did
        status = None
        if index is not None:
            lst = self.suspension if suspension else self.revocation
            purpose = purpose or ("suspension" if suspension else "revocation")
            status = status_entry(lst, index, purpose)
        vc = credential_from_template(
            "business-licence",
            issuer=did,
            subject=licence_subject(),
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            valid_until=valid_until or datetime(2031, 1, 1, tzinfo=UTC),
            credential_status=status,
        )
        return issue_credential(vc, signer or self.issuer, f"{did}#key-1", cryptosuite=suite)

    def sd_jwt(self, holder: Signer, status: dict[str, Any] | None = None) -> str:
        """An SD-JWT VC of the bureau's licence type, bound to ``holder``'s key."""
        from citychain.services.identity.sdk import issue_sd_jwt

        now = int(time.time())
        return issue_sd_jwt(
            {"legalName": "Example Trading Ltd.", "registeredCapital": 1_000_000},
            self.issuer,
            issuer=self.did,
            vct=TYPE,
            disclosable=[("legalName",), ("registeredCapital",)],
            holder_key=holder.public_key,
            kid=f"{self.did}#key-1",
            iat=now - 60,
            exp=now + 86_400,
            status=status,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = NodeProcess(tmp_path_factory.mktemp("vc-api") / "node")
    node.start()
    try:
        genesis = Genesis.load(node.home / "config" / "genesis.json")
        with Client(node.url, chain_id=genesis.chain_id, validators=genesis.validator_set) as c:
            issuer, stranger = node.signer("alice"), node.signer("bob")
            did = c.identity.dids.create(issuer, own_document(issuer.public_key))
            stranger_did = c.identity.dids.create(stranger, own_document(stranger.public_key))
            c.send(
                node.signer("org1-admin"),
                "identity",
                "trust_issuer",
                {"issuer": did, "type": TYPE, "name": BUREAU},
            )
            lists = []
            for name, purpose in (("licences", "revocation"), ("holds", "suspension")):
                r = c.send(
                    issuer,
                    "identity",
                    "register_status_list",
                    {"issuer": did, "name": name, "purpose": purpose},
                )
                lists.append(str(r.result))
            c.send(issuer, "identity", "set_status", {"list_id": lists[0], "set": [7]})
            c.send(issuer, "identity", "set_status", {"list_id": lists[1], "set": [3]})
        yield World(node, issuer, did, lists[0], lists[1], stranger, stranger_did)
    finally:
        node.stop()


def verify(world: World, vc: Any) -> httpx.Response:
    return httpx.post(
        world.node.url + "/credentials/verify", json={"verifiableCredential": vc}, timeout=30
    )


@pytest.mark.parametrize("suite", [EDDSA_JCS_2022, EDDSA_RDFC_2022])
def test_a_licence_of_a_trusted_issuer_verifies_with_its_name(world: World, suite: str) -> None:
    r = verify(world, world.licence(index=1, suite=suite))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verified"] is True and body["issuerName"] == BUREAU
    assert body["issuer"] == world.did and body["credentialType"] == TYPE


def test_each_refusal_has_its_code_and_never_a_200(world: World) -> None:
    tampered = world.licence(index=2)
    tampered["credentialSubject"]["legalName"] = "Someone Else Ltd."
    cases: list[tuple[Any, int, str]] = [
        (world.licence(index=7), 400, "credential_revoked"),
        (world.licence(index=3, suspension=True), 400, "credential_suspended"),
        (
            world.licence(valid_until=datetime.now(UTC) - timedelta(days=1)),
            400,
            "credential_expired",
        ),
        (tampered, 400, "tampered"),
        (
            world.licence(signer=world.stranger, did=world.stranger_did),
            403,
            "issuer_not_trusted",
        ),
        # the issuer's DID names the key, but bob signed
        (world.licence(signer=world.stranger), 400, "tampered"),
        ({"not": "a credential"}, 400, "invalid_credential"),
        # an entry of the revocation list that says it is for suspension
        (world.licence(index=1, purpose="suspension"), 400, "invalid_credential"),
    ]
    for vc, status, code in cases:
        r = verify(world, vc)
        assert (r.status_code, r.json().get("code")) == (status, code), r.text
        assert r.json()["verified"] is False and r.json()["errors"][0]["code"] == code
    # A status index that is not ASCII decimal: once int("²") raised past the checks (a 500)
    # and "٣" was read as 3; both are refused by the one reader of status entries.
    for odd in ("²", "٣", "9" * 13):
        vc = issue_credential(
            credential_from_template(
                "business-licence",
                issuer=world.did,
                subject=licence_subject(),
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                credential_status={**status_entry(world.revocation, 2), "statusListIndex": odd},
            ),
            world.issuer,
            f"{world.did}#key-1",
            cryptosuite=EDDSA_JCS_2022,
        )
        r = verify(world, vc)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_credential"), r.text
    r = httpx.post(world.node.url + "/credentials/verify", content=b"{nope")
    assert r.status_code == 400 and r.json()["code"] == "malformed"
    r = httpx.post(world.node.url + "/credentials/verify", json={"credential": {}})
    assert r.status_code == 400 and r.json()["code"] == "bad_arguments"


def test_the_page_says_it_in_words_for_pasted_uploaded_and_scanned(
    world: World, tmp_path: Path
) -> None:
    page_url = world.node.url + "/verify"
    good, revoked = world.licence(index=11), world.licence(index=7)
    with browser.page() as page:
        # pasted
        page.goto(page_url)
        page.fill("#credential", json.dumps(good))
        page.click("#check")
        assert verdict(page) == "Valid"
        assert BUREAU in page.locator("#facts").inner_text()
        assert "not revoked or suspended" in page.locator("#explain").inner_text()
        # a pasted SD-JWT: valid, and the page does not claim a status it has none of
        forget(page)
        page.fill("#credential", world.sd_jwt(world.stranger))
        page.click("#check")
        assert verdict(page) == "Valid"
        assert BUREAU in page.locator("#facts").inner_text()
        assert "revoked" not in page.locator("#explain").inner_text()
        # an uploaded file
        path = tmp_path / "licence.json"
        path.write_text(json.dumps(revoked))
        forget(page)
        page.set_input_files("#file", str(path))
        assert verdict(page) == "Revoked"
        assert "revoked" in page.locator("#explain").inner_text()
    # a QR code read back from a screenshot, then opened as a phone's camera would
    qr_page = tmp_path / "qr.html"
    qr_page.write_text(f"<html><body style='margin:40px'>{qr_svg(verify_link(good, page_url))}")
    shot = browser.screenshot(qr_page.as_uri(), tmp_path / "qr.png", size=(900, 900))
    # QR codes only: among a QR code's modules a linear-barcode reader now and then finds an
    # EAN-13 that is not there (a CI run read "0361407493667" beside the link).
    image = Image.open(io.BytesIO(shot.read_bytes()))
    found = [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]
    assert found == [verify_link(good, page_url)]
    with browser.page() as page:
        page.goto(found[0])
        assert verdict(page) == "Valid"
        page.goto(
            verify_link(world.licence(signer=world.stranger, did=world.stranger_did), page_url)
        )
        page.reload()
        assert verdict(page) == "Not issued by a trusted issuer"


def test_the_page_and_the_api_name_suspended_expired_revoked_sd_jwt_and_a_closed_issuer(
    world: World,
) -> None:
    """The other verdicts a person meets, in Chromium, each after the API's own code: a
    suspended licence, an expired one, a revoked SD-JWT (its status claim), and a licence
    whose issuer has since deactivated its DID."""
    from citychain.services.identity.sdk import sd_jwt_status

    with Client(world.node.url) as c:
        closing = c.identity.dids.create(world.stranger, own_document(world.stranger.public_key))
        closed = world.licence(signer=world.stranger, did=closing)
        c.identity.dids.deactivate(world.stranger, closing)
    expired = world.licence(valid_until=datetime.now(UTC) - timedelta(days=1))
    cases = [
        (json.dumps(world.licence(index=3, suspension=True)), "credential_suspended",
         "Suspended", "suspended"),
        (json.dumps(expired), "credential_expired", "Expired", "past its validity date"),
        (world.sd_jwt(world.stranger, sd_jwt_status(world.revocation, 7)),
         "credential_revoked", "Revoked", "revoked"),
        (json.dumps(closed), "did_deactivated", "Issuer closed", "has been closed"),
    ]  # fmt: skip
    for text, code, _, _ in cases:
        r = verify(world, json.loads(text) if text.startswith("{") else text)
        assert (r.status_code, r.json()["code"]) == (400, code), r.text
    with browser.page() as page:
        page.goto(world.node.url + "/verify")
        for text, _, words, explain in cases:
            forget(page)
            page.fill("#credential", text)
            page.click("#check")
            assert verdict(page) == words
            assert explain in page.locator("#explain").inner_text()


def forget(page: Page) -> None:
    """Hide the last verdict, so the next one read is the answer to what follows."""
    page.locator("#result").evaluate("box => { box.hidden = true }")


def verdict(page: Page) -> str:
    """The page's answer, once it has one (locator waits: the page's CSP forbids eval)."""
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#verdict")).not_to_have_text(re.compile(r"^(Checking…)?$"))
    return page.locator("#verdict").inner_text()


def _jcs(value: Any) -> bytes:
    """RFC 8785 for documents of strings, lists and objects with ASCII keys (no numbers):
    sorted keys, no spaces, JSON's own escapes. Written here so that the check below shares no
    code with citychain's (nor its rfc8785 library)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _verify_eddsa_jcs_2022(vc: dict[str, Any], public_key: bytes) -> None:
    """Data Integrity EdDSA's eddsa-jcs-2022 verification, from the spec (§3.3), with the
    ``cryptography`` package's Ed25519: raises if the proof does not hold."""
    import base58
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    proof = dict(vc["proof"])
    assert (proof["type"], proof["cryptosuite"]) == ("DataIntegrityProof", "eddsa-jcs-2022")
    signature = base58.b58decode(proof.pop("proofValue")[1:])
    unsecured = {k: v for k, v in vc.items() if k != "proof"}
    proof.setdefault("@context", unsecured["@context"])
    data = hashlib.sha256(_jcs(proof)).digest() + hashlib.sha256(_jcs(unsecured)).digest()
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)


def _entries(vc: dict[str, Any]) -> bytes:
    encoded = vc["credentialSubject"]["encodedList"]
    assert encoded[0] == "u"
    return gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))


def test_a_status_list_is_published_for_verifiers_outside_the_chain(world: World) -> None:
    """A verifier that knows nothing of citychain dereferences a credential's
    ``statusListCredential`` (a DID URL) at any node's resolver, checks the issuer's proof
    with its own code and reads the entry's bit; a list changed since it was last published
    is not served (a stale list would hide a revocation)."""
    import base58
    from cryptography.exceptions import InvalidSignature

    url = world.node.url + "/1.0/identifiers/"
    with Client(world.node.url) as c:
        lists = c.identity.status_lists
        list_id = lists.register(world.issuer, world.did, "published")
        assert list_id == f"{world.did}/status/published"
        entry = status_entry(list_id, 5)  # what a credential of this list carries

        r = httpx.get(url + list_id, timeout=30)
        assert r.status_code == 404, r.text
        assert "has published no status list credential" in r.json()["message"]
        assert lists.publish(world.issuer, list_id, f"{world.did}#key-1") == 0

        doc = httpx.get(url + world.did, timeout=30).json()["didDocument"]
        (method,) = [m for m in doc["verificationMethod"] if m["id"] == f"{world.did}#key-1"]
        key = base58.b58decode(method["publicKeyMultibase"][1:])
        assert key[:2] == b"\xed\x01"

        def fetch() -> dict[str, Any]:
            r = httpx.get(url + list_id, timeout=30)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("application/vc")
            found: dict[str, Any] = r.json()
            _verify_eddsa_jcs_2022(found, key[2:])
            assert found["id"] == entry["statusListCredential"] and found["issuer"] == world.did
            assert found["credentialSubject"]["statusPurpose"] == entry["statusPurpose"]
            return found

        bits = _entries(fetch())
        assert len(bits) * 8 == 131_072 and not any(bits)

        # The issuer revokes entry 5 and publishes in the same transaction.
        assert lists.change(world.issuer, list_id, set=[5], publish=f"{world.did}#key-1") == 1
        published = fetch()
        bits = _entries(published)
        index = int(entry["statusListIndex"])
        assert bits[index // 8] & (0x80 >> (index % 8))
        assert sum(bin(b).count("1") for b in bits) == 1
        assert lists.published(list_id)["credential"] == published
        # A tampered copy fails the same independent check.
        published["credentialSubject"]["encodedList"] = "u" + base64.urlsafe_b64encode(
            gzip.compress(bytes(131_072 // 8), mtime=0)
        ).decode().rstrip("=")
        with pytest.raises(InvalidSignature):
            _verify_eddsa_jcs_2022(published, key[2:])

        # A change without publishing: the node no longer serves the old list.
        assert lists.change(world.issuer, list_id, set=[6]) == 2
        r = httpx.get(url + list_id, timeout=30)
        assert r.status_code == 404 and r.json()["code"] == "status_list_not_found"
        assert "has changed since" in r.json()["message"]
        assert lists.published(list_id)["current"] is False
        assert lists.publish(world.issuer, list_id, f"{world.did}#key-1") == 2
        assert _entries(fetch()).count(0) == 131_072 // 8 - 1  # 5 and 6: one byte

    r = httpx.get(url + f"{world.did}/services/x", timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["didResolutionMetadata"]["error"]["type"].endswith("INVALID_DID_URL")


def test_an_sd_jwt_verifier_outside_the_chain_reads_the_status_list_token(world: World) -> None:
    """An SD-JWT VC verifier that knows nothing of citychain follows a credential's
    ``status.status_list.uri`` to any node's resolver, asks for the IETF Status List Token,
    checks its signature with jwcrypto and reads the entry as the draft says (in code written
    here); citychain's own reader agrees; a stale token is not served."""
    import base58
    from jwcrypto.jwk import JWK
    from jwcrypto.jws import JWS

    from citychain.services.identity.sdk import (
        public_jwk,
        sd_jwt_status,
        verify_status_list_token,
    )

    url = world.node.url + "/1.0/identifiers/"
    jwt = {"Accept": "application/statuslist+jwt"}
    vm = f"{world.did}#key-1"
    doc = httpx.get(url + world.did, timeout=30).json()["didDocument"]
    (method,) = [m for m in doc["verificationMethod"] if m["id"] == vm]
    issuer_jwk = JWK.from_json(
        json.dumps(public_jwk(base58.b58decode(method["publicKeyMultibase"][1:])[2:]))
    )
    holder = Signer(ED25519, b"\x5e" * 32)
    with Client(world.node.url) as c:
        lists = c.identity.status_lists
        list_id = lists.register(world.issuer, world.did, "wallet-holds", "suspension")
        r = httpx.get(url + list_id, headers=jwt, timeout=30)
        assert r.status_code == 404 and "has published no Status List Token" in r.text
        assert lists.publish(world.issuer, list_id, vm) == 0  # both forms, by default
        held = world.sd_jwt(holder, sd_jwt_status(list_id, 12))

        # What the verifier reads from the credential: the signed JWT's status claim.
        body = held.split("~")[0].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        uri, idx = claims["status"]["status_list"]["uri"], claims["status"]["status_list"]["idx"]
        assert (uri, idx) == (list_id, 12)

        def fetch() -> tuple[int, str]:
            r = httpx.get(url + uri, headers=jwt, timeout=30)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("application/statuslist+jwt")
            jws = JWS()
            jws.deserialize(r.text)
            jws.verify(issuer_jwk, "EdDSA")
            assert jws.jose_header["typ"] == "statuslist+jwt"
            token = json.loads(jws.payload)
            assert token["sub"] == uri and token["iss"] == world.did
            assert token["iat"] <= time.time() + 5 and token["ttl"] > 0
            bits, lst = token["status_list"]["bits"], token["status_list"]["lst"]
            raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
            per = 8 // bits
            return (raw[idx // per] >> (idx % per) * bits) & ((1 << bits) - 1), r.text

        assert fetch()[0] == 0x00  # VALID
        assert verify(world, held).status_code == 200

        assert lists.change(world.issuer, list_id, set=[12], publish=vm) == 1
        value, token = fetch()
        assert value == 0x02  # SUSPENDED
        assert lists.published_token(list_id)["token"] == token
        r = verify(world, held)
        assert (r.status_code, r.json()["code"]) == (400, "credential_suspended"), r.text
        read = verify_status_list_token(
            token, uri=uri, now=int(time.time()), resolver=c.identity.resolver()
        )
        assert read.status_name(12) == "SUSPENDED" and read.status_name(13) == "VALID"

        # The VC form is still the default, and a form not offered is refused by name.
        r = httpx.get(url + uri, timeout=30)
        assert r.headers["content-type"].startswith("application/vc"), r.text
        assert r.json()["credentialSubject"]["statusPurpose"] == "suspension"
        r = httpx.get(url + uri, headers={"Accept": "text/html"}, timeout=30)
        assert r.status_code == 406 and "application/statuslist+jwt" in r.json()["message"]

        # Lifted without publishing: neither form is served stale.
        assert lists.change(world.issuer, list_id, clear=[12]) == 2
        r = httpx.get(url + uri, headers=jwt, timeout=30)
        assert r.status_code == 404 and "Status List Token" in r.json()["message"]
        assert "has changed since" in r.json()["message"]
        assert lists.published_token(list_id)["current"] is False
        assert lists.publish(world.issuer, list_id, vm, formats=["token"]) == 2
        assert fetch()[0] == 0x00
        assert httpx.get(url + uri, timeout=30).status_code == 404  # the credential: stale


def test_a_dense_lists_two_forms_follow_its_change_in_two_transactions(world: World) -> None:
    """A list dense enough that its credential and token together would not fit one
    transaction: the change carries the credential, the token follows in a second; both are
    then current, and the token reads the entries."""
    from citychain.services.identity.sdk import verify_status_list_token

    vm = f"{world.did}#key-1"
    entries = random.Random(7).sample(range(1_048_576), 21_000)
    with Client(world.node.url) as c:
        lists = c.identity.status_lists
        list_id = lists.register(world.issuer, world.did, "dense", size=1_048_576)
        for part in (entries[:7_000], entries[7_000:14_000], entries[14_000:-1]):
            lists.change(world.issuer, list_id, set=part)  # no publication: small and quick
        seq = lists.change(world.issuer, list_id, set=entries[-1:], publish=vm)
        credential, token = lists.published(list_id), lists.published_token(list_id)
        assert credential["changes"] == token["changes"] == seq and seq == 4
        assert credential["current"] and token["current"]
        assert credential["tx"] != token["tx"]  # two transactions
        size = len(json.dumps(credential["credential"], separators=(",", ":")))
        assert size < 48 * 1024 and size + len(token["token"]) > 64 * 1024  # one transaction
        read = verify_status_list_token(
            token["token"], uri=list_id, now=int(time.time()), resolver=c.identity.resolver()
        )
        assert all(read.status(i) == 1 for i in entries[::500])
        sampled = sum(read.status(i) for i in range(0, 1_048_576, 97))
        assert sampled == sum(i % 97 == 0 for i in entries)  # and nothing else is set


def test_a_web_app_of_another_origin_reads_a_did_and_a_status_list(world: World) -> None:
    """A wallet or verifier web app served from its own origin fetches an issuer's DID and a
    list's Status List Token from a node, in a real Chromium: the node's answers allow any
    origin (without that header the browser hides them from the page). The app's origin here
    is the node under another host name (localhost against 127.0.0.1): another origin,
    which Chromium's local-network rules do not mix in."""
    with Client(world.node.url) as c:
        list_id = c.identity.status_lists.register(world.issuer, world.did, "cors")
        c.identity.status_lists.publish(world.issuer, list_id, f"{world.did}#key-1")
    base = world.node.url + "/1.0/identifiers/"
    app = world.node.url.replace("127.0.0.1", "localhost") + "/v1/status"
    script = """async ([did, list]) => {
        const doc = await (await fetch(did)).json();
        const accept = {headers: {Accept: 'application/statuslist+jwt'}};
        const token = await (await fetch(list, accept)).text();
        let refused = 'no';
        try { await fetch(did.replace('/1.0/identifiers/', '/v1/status')); }
        catch (e) { refused = e.name; }
        return [location.origin, doc.didDocument.id, token.split('.').length, refused];
    }"""
    with browser.page() as page:
        page.goto(app)
        got = page.evaluate(script, [base + world.did, base + list_id])
    origin, did, parts, refused = got
    assert origin.startswith("http://localhost:") and (did, parts) == (world.did, 3), got
    assert refused == "TypeError", got  # a route that allows no other origin stays closed


def test_the_async_client_registers_changes_and_publishes_a_list(world: World) -> None:
    """``AsyncClient.identity.status_lists``: the same calls, awaited."""
    import asyncio

    from citychain.sdk import AsyncClient

    async def go() -> dict[str, Any]:
        async with AsyncClient(world.node.url) as c:
            lists = c.identity.status_lists
            list_id = await lists.register(world.issuer, world.did, "async", "suspension")
            assert await lists.publish(world.issuer, list_id, f"{world.did}#key-1") == 0
            seq = await lists.change(world.issuer, list_id, set=[3], publish=f"{world.did}#key-1")
            assert seq == 1
            assert await lists.change(world.issuer, list_id, clear=[3]) == 2
            published: dict[str, Any] = await lists.published(list_id)
            return published

    published = asyncio.run(go())
    assert (published["changes"], published["current"]) == (1, False)
    bits = _entries(published["credential"])
    assert bits[0] == 0x80 >> 3


def test_a_presentation_with_challenge_and_domain(world: World) -> None:
    from citychain.services.identity.sdk import create_presentation, sign_presentation

    holder = world.stranger
    vp = create_presentation([world.licence(index=12)], holder=world.stranger_did)
    signed = sign_presentation(
        vp, holder, f"{world.stranger_did}#key-1", challenge="c-123", domain="bank.example"
    )
    url = world.node.url + "/presentations/verify"
    ok = httpx.post(
        url,
        json={
            "verifiablePresentation": signed,
            "options": {"challenge": "c-123", "domain": "bank.example"},
        },
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["credentials"][0]["issuerName"] == BUREAU
    wrong = httpx.post(
        url,
        json={
            "verifiablePresentation": signed,
            "options": {"challenge": "other", "domain": "bank.example"},
        },
        timeout=30,
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "wrong_challenge")


def test_an_sd_jwt_is_a_credential_and_with_its_key_binding_a_presentation(
    world: World,
) -> None:
    """An SD-JWT VC of a trusted issuer verifies at /credentials/verify (the credential: no
    key binding asked), and at /presentations/verify only with a Key Binding JWT made by the
    holder's key for this verifier's challenge and domain: a bare copy of someone's SD-JWT,
    or one bound for another verifier, is refused."""
    from citychain.services.identity.sdk import present_sd_jwt

    holder = Signer(ED25519, b"\x5c" * 32)
    now = int(time.time())
    sd_jwt = world.sd_jwt(holder)
    r = verify(world, sd_jwt)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issuerName"] == BUREAU and body["credentialType"] == TYPE
    assert "status" not in body["checks"] and "keyBinding" not in body["checks"]

    url = world.node.url + "/presentations/verify"
    options = {"challenge": "c-77", "domain": "https://bank.example"}
    shown = present_sd_jwt(
        sd_jwt, [("legalName",)], holder=holder, nonce="c-77", aud=options["domain"], iat=now
    )
    ok = httpx.post(url, json={"verifiablePresentation": shown, "options": options}, timeout=30)
    assert ok.status_code == 200, ok.text
    assert "keyBinding" in ok.json()["checks"] and ok.json()["issuerName"] == BUREAU

    elsewhere = present_sd_jwt(
        sd_jwt, [("legalName",)], holder=holder, nonce="c-77", aud="https://other.example", iat=now
    )
    stolen = present_sd_jwt(
        sd_jwt,
        [("legalName",)],
        holder=world.stranger,
        nonce="c-77",
        aud=options["domain"],
        iat=now,
    )
    cases: list[tuple[Any, dict[str, str], str]] = [
        (sd_jwt, options, "key_binding_invalid"),  # a bare copy: no key binding at all
        (shown, {**options, "challenge": "c-78"}, "wrong_challenge"),  # replayed
        (elsewhere, options, "wrong_domain"),
        (stolen, options, "key_binding_invalid"),  # bound by a key that is not the holder's
        (shown, {"challenge": "c-77"}, "bad_arguments"),  # no domain to check it against
    ]
    for vp, opts, code in cases:
        r = httpx.post(url, json={"verifiablePresentation": vp, "options": opts}, timeout=30)
        assert (r.status_code, r.json().get("code")) == (400, code), r.text
        assert r.json()["verified"] is False


def test_an_sd_jwt_with_a_status_is_refused_once_revoked_or_suspended(world: World) -> None:
    """A citizen-held SD-JWT VC can be revoked or suspended like a VC 2.0 one: its ``status``
    claim names an entry of the issuer's list on chain, shown in every presentation."""
    from citychain.services.identity.sdk import present_sd_jwt, sd_jwt_status

    holder = Signer(ED25519, b"\x5d" * 32)
    good = world.sd_jwt(holder, sd_jwt_status(world.revocation, 11))
    r = verify(world, good)
    assert r.status_code == 200, r.text
    assert "status" in r.json()["checks"]
    cases = [
        (sd_jwt_status(world.revocation, 7), 400, "credential_revoked"),
        (sd_jwt_status(world.suspension, 3), 400, "credential_suspended"),
        (sd_jwt_status(f"{world.did}/status/none", 1), 400, "status_list_not_found"),
        (sd_jwt_status("https://elsewhere.example/lists/1", 1), 400, "status_list_not_found"),
    ]
    for status, code, name in cases:
        r = verify(world, world.sd_jwt(holder, status))
        assert (r.status_code, r.json()["code"]) == (code, name), r.text
        assert r.json()["verified"] is False
    # The status is in the signed JWT, so a presentation disclosing nothing still carries it.
    revoked = world.sd_jwt(holder, sd_jwt_status(world.revocation, 7))
    options = {"challenge": "c-9", "domain": "https://bank.example"}
    shown = present_sd_jwt(
        revoked, [], holder=holder, nonce="c-9", aud=options["domain"], iat=int(time.time())
    )
    r = httpx.post(
        world.node.url + "/presentations/verify",
        json={"verifiablePresentation": shown, "options": options},
        timeout=30,
    )
    assert (r.status_code, r.json()["code"]) == (400, "credential_revoked"), r.text


# -- the offline proof bundle ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled(world: World) -> tuple[bytes, Genesis, dict[str, Any], bytes]:
    """(a valid licence's bundle file, the genesis, a revoked licence, its bundle file)."""
    genesis = Genesis.load(world.node.home / "config" / "genesis.json")
    good, revoked = world.licence(index=21), world.licence(index=7)
    with Client(world.node.url, chain_id=genesis.chain_id) as c:
        files = [bundle_bytes(make_bundle(c, vc)) for vc in (good, revoked)]
    return files[0], genesis, revoked, files[1]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an offline verification touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def offline(data: bytes, genesis: Genesis) -> Any:
    return verify_bundle(
        data, chain_id=genesis.chain_id, validators=genesis.validator_set, now=datetime.now(UTC)
    )


def test_a_bundle_verifies_with_no_network(
    bundled: tuple[bytes, Genesis, dict[str, Any], bytes], no_network: None
) -> None:
    data, genesis, _, revoked = bundled
    verdict = offline(data, genesis)
    assert verdict.issuer_name == BUREAU and verdict.credential_type == TYPE
    with pytest.raises(InvalidInput) as err:
        offline(revoked, genesis)
    assert err.value.code == ErrorCode.CREDENTIAL_REVOKED
    stranger = ValidatorSet([Validator(Signer(ED25519, b"\x09" * 32).public_key, 10, "x")])
    with pytest.raises(ProofError, match="lacks what a light client needs"):
        verify_bundle(data, chain_id=genesis.chain_id, validators=stranger, now=datetime.now(UTC))


def test_no_single_byte_of_a_bundle_changes_unnoticed(
    bundled: tuple[bytes, Genesis, dict[str, Any], bytes], no_network: None
) -> None:
    """Positions of the file, at most 6,000 evenly spaced ones (every position of a shorter
    file), each changed to another printable byte, so every part of it (credential,
    validators, each proof's key, value, proof, header and commit) is hit; each change is
    refused with a named code."""
    data, genesis, _, _ = bundled
    rng = random.Random(20261203)
    step = -(-len(data) // 6000)  # rounded up: at most 6,000 positions, as said above
    for pos in range(rng.randrange(step), len(data), step):
        changed = bytearray(data)
        changed[pos] = rng.choice([b for b in range(32, 127) if b != data[pos]])
        with pytest.raises(CitychainError) as err:
            offline(bytes(changed), genesis)
        assert err.value.code in REFUSALS, (pos, err.value)


@pytest.fixture(scope="module")
def sd_jwt_bundled(world: World) -> tuple[bytes, bytes, str]:
    """(a citizen's SD-JWT VC's bundle file, a revoked one's, the SD-JWT showing one claim)."""
    from citychain.services.identity.sdk import disclosures, sd_jwt_status

    holder = Signer(ED25519, b"\x5f" * 32)
    good = world.sd_jwt(holder, sd_jwt_status(world.revocation, 23))
    revoked = world.sd_jwt(holder, sd_jwt_status(world.revocation, 7))
    # The citizen keeps only the disclosure of legalName: the capital stays hidden.
    jwt = good.split("~")[0]
    kept = [d.encoded for d in disclosures(good) if d.name == "legalName"]
    shown = "~".join([jwt, *kept]) + "~"
    with Client(world.node.url) as c:
        files = [bundle_bytes(make_bundle(c, vc)) for vc in (shown, revoked)]
    return files[0], files[1], shown


def test_an_sd_jwt_vc_bundle_verifies_with_no_network(
    world: World, sd_jwt_bundled: tuple[bytes, bytes, str], no_network: None
) -> None:
    """A citizen's SD-JWT VC, bundled with only the disclosure they will show, is checked
    offline years later like a licence: issuer, trust, status at the bundle's height; a
    revoked one is refused; the hidden claim is nowhere in the file; a presentation (with a
    key binding) is not bundled."""
    from citychain.services.identity.sdk import present_sd_jwt

    data, revoked, shown = sd_jwt_bundled
    genesis = Genesis.load(world.node.home / "config" / "genesis.json")
    verdict = offline(data, genesis)
    assert (verdict.issuer_name, verdict.credential_type) == (BUREAU, TYPE)
    assert b"registeredCapital" not in data and b"legalName" not in data  # a digest, a b64 text
    assert json.loads(data)["credential"] == shown
    with pytest.raises(InvalidInput) as err:
        offline(revoked, genesis)
    assert err.value.code == ErrorCode.CREDENTIAL_REVOKED
    rng = random.Random(20261205)
    step = -(-len(data) // 1500)
    for pos in range(rng.randrange(step), len(data), step):
        changed = bytearray(data)
        changed[pos] = rng.choice([b for b in range(32, 127) if b != data[pos]])
        with pytest.raises(CitychainError) as bent:
            offline(bytes(changed), genesis)
        assert bent.value.code in {*REFUSALS, ErrorCode.DISCLOSURE_INVALID}, (pos, bent.value)
    holder = Signer(ED25519, b"\x5f" * 32)
    presented = present_sd_jwt(shown, [], holder=holder, nonce="n", aud="a", iat=1_780_000_000)
    with pytest.raises(InvalidInput, match="without a Key Binding JWT") as kb:
        make_bundle(None, presented, suite=ED25519)  # type: ignore[arg-type]  # no call made
    assert kb.value.code == ErrorCode.INVALID_CREDENTIAL


def test_vc_bundle_and_vc_verify_offline_from_the_command_line(
    world: World, tmp_path: Path
) -> None:
    genesis = str(world.node.home / "config" / "genesis.json")
    for name, vc, index in (("good", world.licence(index=31), 0), ("revoked", None, 7)):
        (tmp_path / f"{name}.json").write_text(json.dumps(vc or world.licence(index=index)))
        r = cli("vc", "bundle", str(tmp_path / f"{name}.json"), "-o", str(tmp_path / f"{name}.b"),
                "--node", world.node.url)  # fmt: skip
        assert r.returncode == 0, r.stderr
    r = cli("vc", "verify", "--offline", str(tmp_path / "good.b"), "--genesis", genesis)
    assert r.returncode == 0, r.stderr
    assert f"issued by {BUREAU}" in r.stdout and "checked offline against genesis" in r.stdout
    r = cli("vc", "verify", "--offline", str(tmp_path / "revoked.b"), "--genesis", genesis)
    assert r.returncode != 0 and "credential_revoked" in r.stderr and "Traceback" not in r.stderr
    data = (tmp_path / "good.b").read_bytes()
    (tmp_path / "bent.b").write_bytes(data.replace(b'"height":', b'"height" :', 1))
    r = cli("vc", "verify", "--offline", str(tmp_path / "bent.b"), "--genesis", genesis)
    assert r.returncode != 0 and "tampered" in r.stderr
    # Online, a node checks the bundle's proofs as of its block, then the credential today.
    r = cli("vc", "verify", str(tmp_path / "good.b"), "--node", world.node.url)
    assert r.returncode == 0, r.stderr
    assert "the bundle holds: valid as of block" in r.stdout and "valid today" in r.stdout
    r = cli("vc", "verify", str(tmp_path / "revoked.b"), "--node", world.node.url)
    assert r.returncode != 0 and "credential_revoked" in r.stderr and "Traceback" not in r.stderr
    r = cli("vc", "verify", str(tmp_path / "good.b"), "--node", world.node.url, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["bundle"]["issuerName"] == BUREAU
    r = cli("vc", "bundle", str(tmp_path / "good.b"), "-o", str(tmp_path / "x"),
            "--node", world.node.url)  # fmt: skip
    assert r.returncode != 0 and "offline proof bundle, not a credential" in r.stderr
    # A citizen's SD-JWT VC (its text), bundled and checked the same way.
    from citychain.services.identity.sdk import sd_jwt_status

    sd_jwt = world.sd_jwt(Signer(ED25519, b"\x60" * 32), sd_jwt_status(world.revocation, 33))
    (tmp_path / "citizen.sd-jwt").write_text(sd_jwt + "\n")
    r = cli("vc", "bundle", str(tmp_path / "citizen.sd-jwt"), "-o", str(tmp_path / "sd.b"),
            "--node", world.node.url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("vc", "verify", "--offline", str(tmp_path / "sd.b"), "--genesis", genesis)
    assert r.returncode == 0 and f"issued by {BUREAU}" in r.stdout, r.stderr


def test_a_node_checks_a_bundle_as_an_offline_verifier_would(
    world: World, bundled: tuple[bytes, Genesis, dict[str, Any], bytes]
) -> None:
    """``POST /bundles/verify``: the file's exact bytes, checked against this chain's genesis
    as ``citychain vc verify --offline`` checks them, with the same verdict and the same codes."""
    data, genesis, _, revoked = bundled
    url = world.node.url + "/bundles/verify"
    r = httpx.post(url, content=data, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == offline(data, genesis).to_json()
    assert r.json()["issuerName"] == BUREAU and r.json()["credentialType"] == TYPE
    # the SDK's form of the same question, blocking and async
    from citychain.sdk import AsyncClient

    with Client(world.node.url) as c:
        assert c.identity.verify_bundle_online(data) == r.json()
        with pytest.raises(InvalidInput) as err:
            c.identity.verify_bundle_online(revoked)
        assert err.value.code == ErrorCode.CREDENTIAL_REVOKED

    async def via_async() -> Any:
        async with AsyncClient(world.node.url) as ac:
            return await ac.identity.verify_bundle_online(data)

    assert asyncio.run(via_async()) == r.json()
    cases = [
        (revoked, 400, "credential_revoked"),
        (data.replace(b'"height":', b'"height" :', 1), 400, "tampered"),
        (b"{nope", 400, "tampered"),
        (b" " * (5 * 1024 * 1024), 413, "too_large"),  # a bundle is at most 4 MiB
    ]
    for body, status, code in cases:
        r = httpx.post(url, content=body, timeout=30)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text[:300]
        assert r.json()["verified"] is False
    # Past the node's body limit (32 MiB by default) a body is refused as it streams in, here
    # and on the VC-API's routes: a public route never buffers whatever it is sent.
    huge = b" " * (33 * 1024 * 1024)
    for route in ("/bundles/verify", "/credentials/verify", "/presentations/verify"):
        r = httpx.post(world.node.url + route, content=huge, timeout=30)
        assert (r.status_code, r.json()["code"]) == (413, "too_large"), (route, r.text[:300])
        assert "the limit is" in r.json()["message"]


def test_the_page_checks_an_uploaded_bundle_then_and_now(
    world: World, bundled: tuple[bytes, Genesis, dict[str, Any], bytes], tmp_path: Path
) -> None:
    """A person uploads the offline proof file they were given: the page says whether the
    certificate holds today, and what the file itself proves, as of its block. A licence
    bundled while valid and revoked since reads "Revoked" with the file's proof still
    holding; a changed file is said not to hold."""
    data, genesis, _, revoked = bundled
    later = world.licence(index=43)
    with Client(world.node.url, chain_id=genesis.chain_id) as c:
        then = bundle_bytes(make_bundle(c, later))
        c.send(world.issuer, "identity", "set_status", {"list_id": world.revocation, "set": [43]})
    files = {
        "good": data,
        "revoked-since": then,
        "revoked": revoked,
        "changed": data.replace(b'"height":', b'"height" :', 1),
    }
    for name, content in files.items():
        (tmp_path / f"{name}.bundle").write_bytes(content)
    height = json.loads(data)["height"]
    with browser.page() as page:
        page.goto(world.node.url + "/verify")
        expected = [
            ("good", "Valid", f"holds: valid as of block {height} ("),
            ("revoked-since", "Revoked", "holds: valid as of block"),
            ("revoked", "Revoked", "does not hold: revoked as of block"),
            ("changed", "Valid", "does not hold: the bundle is not exactly its canonical JSON"),
        ]
        for name, words, fact in expected:
            forget(page)
            page.set_input_files("#file", str(tmp_path / f"{name}.bundle"))
            assert verdict(page) == words, name
            facts = page.locator("#facts").inner_text()
            assert "Offline proof in this file" in facts and fact in facts, (name, facts)
            assert BUREAU in facts
        # pasted, with the newline a terminal's copy adds
        forget(page)
        page.fill("#credential", data.decode() + "\n")
        page.click("#check")
        assert verdict(page) == "Valid"
        assert "holds: valid as of block" in page.locator("#facts").inner_text()


# -- the issuer's and the holder's own services (citychain vc serve, citychain wallet ...) -----
TOKEN = "issuer-token-0123456789abcdef"


class Agent:
    """``citychain vc serve`` / ``wallet serve`` as a real process on a free port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, *args, "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(log.read_text())
            try:
                httpx.get(self.url + "/credentials", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(log.read_text())

    def post(self, path: str, body: Any, token: str = TOKEN) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"}
        return httpx.post(self.url + path, json=body, headers=auth, timeout=120)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def unsigned(n: int) -> dict[str, Any]:
    """An unsigned business licence with no issuer: the service signs as its own."""
    vc = credential_from_template(
        "business-licence",
        issuer="did:example:placeholder",
        subject=licence_subject(unifiedSocialCreditCode=f"9135{n:014d}"),
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    del vc["issuer"]
    return vc


def test_the_issuer_service_issues_one_or_a_batch_of_10000_that_any_node_verifies(
    world: World, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    counter = tmp_path / "licences.counter"
    agent = Agent(
        [
            "vc",
            "serve",
            "--key",
            "alice",
            "--did",
            world.did,
            "--token-file",
            str(tmp_path / "token"),
            "--status-list",
            world.revocation,
            "--counter",
            str(counter),
            "--node",
            world.node.url,
            "--home",
            str(world.node.home),
        ],
        {"CITYCHAIN_PASSPHRASE": world.node.passphrase},
        tmp_path / "issuer.log",
    )
    try:
        r = agent.post("/credentials/issue", {"credential": unsigned(0)}, token="wrong" * 4)
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        assert r.headers["www-authenticate"] == "Bearer"

        r = agent.post("/credentials/issue", {"credential": unsigned(1)})
        assert r.status_code == 201, r.text
        one = r.json()["verifiableCredential"]
        assert one["issuer"] == world.did and one["credentialStatus"]["statusListCredential"]
        ok = verify(world, one)
        assert ok.status_code == 200 and ok.json()["issuerName"] == BUREAU

        # 10,000 in one call, each on its own status bit
        r = agent.post(
            "/credentials/issue/batch", {"credentials": [unsigned(n) for n in range(10_000)]}
        )
        assert r.status_code == 201, r.text[:300]
        batch = r.json()["verifiableCredentials"]
        indexes = {int(vc["credentialStatus"]["statusListIndex"]) for vc in batch}
        assert (
            len(batch) == 10_000
            and len(indexes | {int(one["credentialStatus"]["statusListIndex"])}) == 10_001
        )
        kept = json.loads(counter.read_text())
        assert kept["next"] == 10_001 and len(bytes.fromhex(kept["key"])) == 32
        for vc in batch[::2_500]:
            assert verify(world, vc).status_code == 200
        # the entries are real: the bureau revokes one and every node says so
        with Client(world.node.url) as c:
            c.send(
                world.issuer,
                "identity",
                "set_status",
                {
                    "list_id": world.revocation,
                    "set": [int(batch[5]["credentialStatus"]["statusListIndex"])],
                },
            )
        assert verify(world, batch[5]).json()["code"] == "credential_revoked"

        # one bad item refuses the batch, named; nothing is issued
        bad = [unsigned(n) for n in range(500)]
        bad[499]["credentialSubject"].pop("legalName")
        r = agent.post("/credentials/issue/batch", {"credentials": bad})
        assert r.status_code == 422 and r.json()["code"] == "schema_violation"
        assert (r.json()["index"], r.json()["total"]) == (499, 500)
        assert "verifiableCredentials" not in r.json()

        wrong = unsigned(2)
        wrong["issuer"] = world.stranger_did
        r = agent.post("/credentials/issue", {"credential": wrong})
        assert r.status_code == 400 and r.json()["code"] == "wrong_issuer"
        permit = unsigned(3)
        permit["type"] = ["VerifiableCredential", "ResidencePermitCredential"]
        r = agent.post("/credentials/issue", {"credential": permit})
        assert r.status_code == 403 and r.json()["code"] == "issuer_not_trusted"
        r = agent.post("/credentials/issue", {"credential": unsigned(4), "options": {"x": 1}})
        assert r.status_code == 400 and r.json()["code"] == "bad_arguments"
        r = agent.post("/credentials/issue", {"credential": {**unsigned(5), "type": 5}})
        assert r.status_code == 400 and r.json()["code"] == "invalid_credential", r.text
        assert "type must be a string or a list of strings" in r.json()["message"]
    finally:
        agent.stop()


def test_the_holder_wallet_from_the_cli_and_its_service(world: World, tmp_path: Path) -> None:
    env = {
        "CITYCHAIN_WALLET": str(tmp_path / "wallet.json"),
        "CITYCHAIN_WALLET_PASSPHRASE": "pw pw pw",
    }
    r = cli("wallet", "init", "--kdf", "interactive", env=env)
    assert r.returncode == 0, r.stderr
    holder = r.stdout.split()[-1]
    assert holder.startswith("did:key:z6Mk")
    subject = licence_subject(id=holder)
    vc = issue_credential(
        credential_from_template(
            "business-licence",
            issuer=world.did,
            subject=subject,
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        world.issuer,
        f"{world.did}#key-1",
        cryptosuite=EDDSA_JCS_2022,
    )
    (tmp_path / "licence.json").write_text(json.dumps(vc))
    r = cli("wallet", "add", str(tmp_path / "licence.json"), env=env)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    listed = json.loads(cli("wallet", "list", "--json", env=env).stdout)
    assert [c["id"] for c in listed] == [cid] and listed[0]["issuer"] == world.did
    r = cli(
        "wallet",
        "present",
        cid,
        "--challenge",
        "c-1",
        "--domain",
        "https://bank.example",
        "-o",
        str(tmp_path / "vp.json"),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    vp = json.loads((tmp_path / "vp.json").read_text())
    options = {"challenge": "c-1", "domain": "https://bank.example"}
    r = httpx.post(
        world.node.url + "/presentations/verify",
        json={"verifiablePresentation": vp, "options": options},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    # a wrong passphrase is one line, no traceback
    r = cli("wallet", "list", env={**env, "CITYCHAIN_WALLET_PASSPHRASE": "nope"})
    assert r.returncode != 0 and "wrong_passphrase" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr

    (tmp_path / "token").write_text(TOKEN)
    agent = Agent(
        ["wallet", "serve", "--token-file", str(tmp_path / "token")], env, tmp_path / "w.log"
    )
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(agent.url + "/credentials").status_code == 401
        got = httpx.get(agent.url + "/credentials", headers=auth).json()["credentials"]
        assert [c["id"] for c in got] == [cid]
        r = agent.post(
            "/presentations", {"credentialIds": [cid], "options": {**options, "challenge": "c-2"}}
        )
        assert r.status_code == 201, r.text
        r = httpx.post(
            world.node.url + "/presentations/verify",
            timeout=30,
            json={
                "verifiablePresentation": r.json()["verifiablePresentation"],
                "options": {**options, "challenge": "c-2"},
            },
        )
        assert r.status_code == 200, r.text
        assert (
            agent.post(
                "/presentations", {"credentialIds": ["nope"], "options": options}
            ).status_code
            == 404
        )
        assert httpx.delete(agent.url + f"/credentials/{cid}", headers=auth).status_code == 204
        assert httpx.get(agent.url + "/credentials", headers=auth).json()["credentials"] == []
    finally:
        agent.stop()


def test_cli_issues_a_batch_from_a_template_and_verifies_online(
    world: World, tmp_path: Path
) -> None:
    env = {"CITYCHAIN_PASSPHRASE": world.node.passphrase}
    subjects = tmp_path / "subjects.jsonl"
    subjects.write_text(
        "\n".join(
            json.dumps(licence_subject(unifiedSocialCreditCode=f"9135{n:014d}")) for n in range(50)
        )
    )
    common = [
        "--key",
        "alice",
        "--did",
        world.did,
        "--home",
        str(world.node.home),
        "--node",
        world.node.url,
        "--template",
        "business-licence",
        "--valid-from",
        "2026-01-01T00:00:00Z",
    ]
    out = tmp_path / "issued.json"
    r = cli(
        "vc",
        "issue",
        str(subjects),
        *common,
        "--status-list",
        world.revocation,
        "--counter",
        str(tmp_path / "c"),
        "-o",
        str(out),
        env=env,
    )
    assert r.returncode == 0, r.stderr + r.stdout
    issued = json.loads(out.read_text())
    assert len(issued) == 50 and all(vc["issuer"] == world.did for vc in issued)
    (tmp_path / "one.json").write_text(json.dumps(issued[3]))
    r = cli("vc", "verify", str(tmp_path / "one.json"), "--node", world.node.url, env=env)
    assert (
        r.returncode == 0 and "valid: a BusinessLicenceCredential issued by " + BUREAU in r.stdout
    )
    # the revoked one, online: the reason in one line, exit 1
    (tmp_path / "revoked.json").write_text(json.dumps(world.licence(index=7)))
    r = cli("vc", "verify", str(tmp_path / "revoked.json"), "--node", world.node.url, env=env)
    assert r.returncode == 1 and "credential_revoked" in r.stderr + r.stdout

    # one subject missing a required claim: nothing is written, the line is named
    lines = subjects.read_text().splitlines()
    lines[41] = json.dumps({"legalName": "No Code Ltd."})
    subjects.write_text("\n".join(lines))
    out2 = tmp_path / "issued2.json"
    r = cli("vc", "issue", str(subjects), *common, "-o", str(out2), env=env)
    assert r.returncode == 1 and "item 41 of 50" in r.stderr + r.stdout, r.stderr + r.stdout
    assert "schema_violation" in r.stderr + r.stdout and not out2.exists()

    # the SDK's batch by an accredited issuer: bob's DID is in no register
    with Client(world.node.url) as c:
        vc = unsigned(1)
        vc["issuer"] = world.stranger_did
        with pytest.raises(CitychainError) as e:
            c.identity.issue_batch([vc], world.stranger, f"{world.stranger_did}#key-1")
        assert e.value.code == ErrorCode.ISSUER_NOT_TRUSTED
        assert c.identity.verify_online(issued[0])["issuerName"] == BUREAU


def test_a_repeated_resolution_answered_by_the_protocol_is_the_routes_answer(
    world: World,
) -> None:
    """On a real node the first resolution is made and kept (by the HTTP protocol itself, or by
    the app for a target with resolution options); the same request again is given by the
    protocol from what was kept (citychain.api._kept). Byte for byte the same answer, the date
    aside, for each Accept and version asked."""
    port = int(world.node.url.rsplit(":", 1)[1])

    def twice(target: str, accept: str | None = None) -> list[bytes]:
        head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += f"Accept: {accept}\r\n" if accept else ""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            answers = []
            for _ in range(2):
                s.sendall((head + "\r\n").encode())
                got = b""
                while b"\r\n\r\n" not in got:
                    got += s.recv(65536)
                top, _, body = got.partition(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", top).group(1))  # type: ignore[union-attr]
                while len(body) < length:
                    body += s.recv(65536)
                answers.append(re.sub(rb"date: [^\r]*\r\n", b"", top) + b"\r\n\r\n" + body)
        return answers

    for target, accept in (
        (f"/1.0/identifiers/{world.did}", None),
        (f"/1.0/identifiers/{world.did}", "application/did+json"),
        (f"/1.0/identifiers/{world.did}?versionId=1", None),
    ):
        first, again = twice(target, accept)
        assert first == again and first.startswith(b"HTTP/1.1 200 OK\r\n"), (target, first[:300])
        assert b"access-control-allow-origin: *" in first
