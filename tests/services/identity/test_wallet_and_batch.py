"""Batch issuance (10,000 credentials in one call, every one or none) and the holder's wallet
(keys and credentials encrypted at rest, presentations and chosen SD-JWT disclosures), in the
SDK with no node: what a bureau and a citizen rely on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vc_fixtures import (
    NOW,
    VALID_FROM,
    DictResolver,
    did_document,
    key_did,
    licence_subject,
    signer,
)

from citychain.errors import (
    BatchRefused,
    CitychainError,
    ErrorCode,
    InvalidInput,
    KeystoreError,
    NotFound,
)
from citychain.services.identity import sdk

BUREAU_KEY = signer(21)
BUREAU, BUREAU_VM = key_did(BUREAU_KEY)
LIST = "https://city.example/status/licences"


def licence(n: int, **subject: Any) -> dict[str, Any]:
    return sdk.credential_from_template(
        "business-licence",
        issuer=BUREAU,
        subject=licence_subject(unifiedSocialCreditCode=f"9111{n:014d}", **subject),
        valid_from=VALID_FROM,
    )


def test_ten_thousand_in_one_call_each_with_its_own_status_entry() -> None:
    allocator = sdk.IndexAllocator(b"bureau allocation key 0001")
    batch = [licence(n) for n in range(sdk.MAX_BATCH)]
    t0 = time.perf_counter()
    issued = sdk.issue_batch(
        batch,
        BUREAU_KEY,
        BUREAU_VM,
        status_list=LIST,
        status_indexes=[allocator.index(n) for n in range(len(batch))],
    )
    took = time.perf_counter() - t0
    assert len(issued) == sdk.MAX_BATCH and took < 30, took
    indexes = [vc["credentialStatus"]["statusListIndex"] for vc in issued]
    assert len(set(indexes)) == sdk.MAX_BATCH  # never two credentials on one bit
    # indexes do not follow issue order (they say nothing of when a licence was issued)
    assert sorted(indexes, key=int) != indexes
    for vc in issued[:: sdk.MAX_BATCH // 20]:
        sdk.verify_credential(vc, now=NOW)
    assert issued[0]["proof"]["cryptosuite"] == sdk.EDDSA_JCS_2022


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        (lambda vc: vc["credentialSubject"].pop("legalName"), ErrorCode.SCHEMA_VIOLATION),
        (lambda vc: vc.update(issuer="did:key:z6MkotherIssuer"), ErrorCode.WRONG_ISSUER),
        (lambda vc: vc["@context"].append("https://evil.example/ctx"), ErrorCode.UNKNOWN_CONTEXT),
        (lambda vc: vc.pop("credentialSubject"), ErrorCode.INVALID_CREDENTIAL),
        # a term no context defines, in one item of a batch of one template: still found
        (lambda vc: vc["credentialSubject"].update(nickname="x"), ErrorCode.INVALID_CREDENTIAL),
        (lambda vc: vc.update(proof={"type": "DataIntegrityProof"}), ErrorCode.INVALID_CREDENTIAL),
    ],
)
def test_one_bad_item_refuses_the_whole_batch_and_names_it(spoil: Any, code: ErrorCode) -> None:
    batch = [licence(n) for n in range(300)]
    spoil(batch[217])
    before = json.dumps(batch, sort_keys=True)
    with pytest.raises(BatchRefused) as e:
        sdk.issue_batch(batch, BUREAU_KEY, BUREAU_VM)
    assert (e.value.code, e.value.index, e.value.total) == (code, 217, 300)
    assert "item 217 of 300" in e.value.message
    assert json.dumps(batch, sort_keys=True) == before  # the caller's items are untouched


def test_batch_limits() -> None:
    with pytest.raises(InvalidInput) as e:
        sdk.issue_batch([licence(0)] * (sdk.MAX_BATCH + 1), BUREAU_KEY, BUREAU_VM)
    assert e.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(InvalidInput) as e:
        sdk.issue_batch([], BUREAU_KEY, BUREAU_VM)
    assert e.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(InvalidInput) as e:  # two credentials on one status bit
        sdk.issue_batch(
            [licence(0), licence(1)], BUREAU_KEY, BUREAU_VM, status_list=LIST, status_indexes=[5, 5]
        )
    assert e.value.code == ErrorCode.BAD_ARGUMENTS


# -- the wallet ---------------------------------------------------------------------------------
ISSUER_KEY = signer(22)
ISSUER = "did:citychain:Q4mX7TQfmBuGdF5Aaq9cF3"
RESOLVER = DictResolver(did_document(ISSUER, {"key-1": ISSUER_KEY}, {"assertionMethod": ["key-1"]}))
PASS = "correct horse battery staple"


def resident_sd_jwt(holder_public: bytes) -> str:
    return sdk.issue_sd_jwt(
        {"given_name": "Lei", "birthdate": "1990-05-17", "age_over_18": True},
        ISSUER_KEY,
        issuer=ISSUER,
        vct="https://w3id.org/citychain/vct/resident",
        disclosable=[("given_name",), ("birthdate",), ("age_over_18",)],
        holder_key=holder_public,
        kid=f"{ISSUER}#key-1",
        iat=1_780_000_000,
    )


def test_wallet_keeps_keys_and_credentials_encrypted_and_presents_them(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    w = sdk.Wallet.create(path, PASS, kdf_level="interactive")
    holder = w.new_key("me")
    assert holder.startswith("did:key:z6Mk") and w.keys() == {"me": holder}
    vc = sdk.issue_credential(licence(7, id=holder), BUREAU_KEY, BUREAU_VM)
    vc_id = w.add(vc)
    assert w.add(vc) == vc_id  # the same credential twice is one
    sd_id = w.add(resident_sd_jwt(w.signer("me").public_key))
    # encrypted at rest: no claim, no key, no DID in the file
    raw = path.read_text()
    for secret in ("Li Lei", "1990-05-17", w.signer("me").secret.hex(), holder):
        assert secret not in raw
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    w = sdk.Wallet.open(path, PASS)  # everything survives reopening
    listed = {c.id: c for c in w.credentials()}
    assert set(listed) == {vc_id, sd_id}
    assert listed[vc_id].format == "vc" and "BusinessLicenceCredential" in listed[vc_id].types
    assert listed[sd_id].format == "sd-jwt" and listed[sd_id].issuer == ISSUER

    vp = w.present([vc_id], challenge="c-42", domain="https://bank.example", key="me")
    checked = sdk.verify_presentation(vp, challenge="c-42", domain="https://bank.example", now=NOW)
    assert checked.document["holder"] == holder
    with pytest.raises(InvalidInput) as e:
        sdk.verify_presentation(vp, challenge="c-43", domain="https://bank.example", now=NOW)
    assert e.value.code == ErrorCode.WRONG_CHALLENGE

    # an SD-JWT: the holder chooses age_over_18 only; the birth date stays with them
    assert {d.path for d in w.disclosures(sd_id)} == {
        ("given_name",),
        ("birthdate",),
        ("age_over_18",),
    }
    shown = w.present_sd_jwt(
        sd_id,
        ["age_over_18"],
        nonce="n-9",
        audience="https://bar.example",
        now=1_780_000_100,
        key="me",
    )
    claims = sdk.verify_sd_jwt(
        shown, now=1_780_000_100, nonce="n-9", aud="https://bar.example", resolver=RESOLVER
    ).claims
    assert (
        claims["age_over_18"] is True and "birthdate" not in claims and "given_name" not in claims
    )
    with pytest.raises(InvalidInput) as e:
        w.present_sd_jwt(sd_id, ["address"], nonce="n", audience="a", now=1, key="me")
    assert e.value.code == ErrorCode.BAD_ARGUMENTS and "age_over_18" in e.value.message
    # paths from JSON that are not names and positions: refused by name, not a crash
    for bad in ([{}], [], [1.5], [None]):
        with pytest.raises(InvalidInput) as e:
            w.present_sd_jwt(sd_id, [bad], nonce="n", audience="a", now=1, key="me")  # type: ignore[list-item]
        assert e.value.code == ErrorCode.BAD_ARGUMENTS and "a claim to disclose" in e.value.message

    w.remove(vc_id)
    assert [c.id for c in sdk.Wallet.open(path, PASS).credentials()] == [sd_id]
    with pytest.raises(NotFound):
        w.get(vc_id)


def test_wallet_refusals(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    w = sdk.Wallet.create(path, PASS, kdf_level="interactive")
    with pytest.raises(InvalidInput):
        sdk.Wallet.create(path, PASS, kdf_level="interactive")  # never over an existing wallet
    with pytest.raises(KeystoreError) as k:
        sdk.Wallet.open(path, "wrong")
    assert k.value.code == ErrorCode.WRONG_PASSPHRASE
    w.new_key()
    with pytest.raises(InvalidInput):
        w.new_key()  # the name is taken
    with pytest.raises(InvalidInput):
        w.new_key("no spaces")
    with pytest.raises(InvalidInput) as e:  # unsigned: a wallet keeps issued credentials
        w.add(licence(1))
    assert e.value.code == ErrorCode.INVALID_CREDENTIAL
    with pytest.raises(InvalidInput):
        w.add("not~an~sd-jwt")
    # one flipped character of the ciphertext: refused, never half-read
    doc = json.loads(path.read_text())
    ct = doc["cipher"]["ciphertext"]
    doc["cipher"]["ciphertext"] = ("0" if ct[10] != "0" else "1").join([ct[:10], ct[11:]])
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError) as k:
        sdk.Wallet.open(path, PASS)
    assert k.value.code == ErrorCode.WRONG_PASSPHRASE
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(KeystoreError) as k:
        sdk.Wallet.open(tmp_path / "junk.json", PASS)
    assert k.value.code == ErrorCode.BAD_KEYSTORE
    with pytest.raises(NotFound):
        sdk.Wallet.open(tmp_path / "none.json", PASS)


_CREDS = [sdk.issue_credential(licence(n), BUREAU_KEY, BUREAU_VM) for n in range(4)]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=12))
def test_wallet_contents_follow_adds_and_removes(
    tmp_path: Path, steps: list[tuple[bool, int]]
) -> None:
    """A state machine against a model: after any sequence of adds and removes, the wallet
    reopened from disk holds exactly what the model does."""
    path = tmp_path / f"w{time.monotonic_ns()}.json"
    w = sdk.Wallet.create(path, PASS, kdf_level="interactive")
    model: dict[str, Any] = {}
    for add, n in steps:
        cid = sdk.credential_id(_CREDS[n])
        if add:
            assert w.add(_CREDS[n]) == cid
            model[cid] = _CREDS[n]
        elif cid in model:
            w.remove(cid)
            del model[cid]
        else:
            with pytest.raises(NotFound):
                w.remove(cid)
    again = sdk.Wallet.open(path, PASS)
    assert {c.id: again.get(c.id) for c in again.credentials()} == model


def test_status_indexes_stay_distinct_across_an_issuer_key_rotation(tmp_path: Path) -> None:
    """The list's index permutation is kept in its counter file: an issuer that rotates its
    signing key goes on allocating from the same permutation, so no new credential shares a
    status entry (and its revocation) with one issued before."""
    Issuer = sdk.Issuer
    counter = tmp_path / "licences.counter"
    vm = BUREAU_VM
    before = Issuer(BUREAU_KEY, vm, status_list=LIST, counter_file=counter)._reserve(5_000)
    rotated = Issuer(signer(22), vm, status_list=LIST, counter_file=counter)._reserve(5_000)
    assert len(set(before) | set(rotated)) == 10_000
    assert json.loads(counter.read_text())["next"] == 10_000

    # A counter written before the key was kept in it: permuted as it was (by the signing
    # key), then pinned, so a rotation after the upgrade changes nothing either.
    old = tmp_path / "old.counter"
    old.write_text(json.dumps({"next": 3}))
    first = Issuer(BUREAU_KEY, vm, status_list=LIST, counter_file=old)._reserve(2)
    pinned = json.loads(old.read_text())
    assert pinned["next"] == 5
    assert bytes.fromhex(pinned["key"]) == Issuer(BUREAU_KEY, vm)._signer_key()
    fresh = tmp_path / "fresh.counter"
    fresh.write_text(json.dumps({"next": 0, "key": pinned["key"]}))
    assert Issuer(signer(22), vm, status_list=LIST, counter_file=fresh)._reserve(5)[3:] == first
    for broken in ("{}", '{"next": 1, "key": "00"}', '{"next": -1}', "[1]"):
        old.write_text(broken)
        with pytest.raises(CitychainError) as e:
            Issuer(BUREAU_KEY, vm, status_list=LIST, counter_file=old)._reserve(1)
        assert e.value.code == ErrorCode.INTERNAL and "unreadable" in e.value.message


def test_an_issuer_on_a_suspension_list_writes_entries_for_suspension(tmp_path: Path) -> None:
    """Each entry says its list's purpose (Bitstring Status List 1.0): a verifier that reads
    a suspension list's bit as a revocation would refuse a held licence for good."""
    issuer = sdk.Issuer(
        BUREAU_KEY,
        BUREAU_VM,
        status_list=LIST,
        counter_file=tmp_path / "holds.counter",
        status_purpose="suspension",
    )
    (vc,) = issuer.issue([licence(1)], sdk.EDDSA_JCS_2022)
    assert vc["credentialStatus"]["statusPurpose"] == "suspension"
    sdk.verify_credential(vc, now=NOW)


def test_the_holder_service_refuses_an_oversized_body_before_reading_it(tmp_path: Path) -> None:
    """``citychain wallet serve``: a body declared past the service's limit (64 MiB) is
    refused 413 before a byte of it is read, and a streamed one at the first chunk past it."""
    import asyncio

    from citychain.services.identity.router._agent import MAX_BODY_BYTES, agent_app

    token = "holder-token-0123456789"
    app = agent_app(
        token=token, wallet=sdk.Wallet.create(tmp_path / "w", PASS, kdf_level="interactive")
    )
    chunk = b" " * (1024 * 1024)

    def post(headers: list[tuple[bytes, bytes]]) -> tuple[int, int, bytes]:
        pulled, sent = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            pulled += 1
            return {"type": "http.request", "body": chunk, "more_body": pulled < 200}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/credentials", "raw_path": b"/credentials",
            "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "headers": [(b"authorization", f"Bearer {token}".encode()), *headers],
        }  # fmt: skip
        asyncio.run(app(scope, receive, send))
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, pulled, b"".join(m.get("body", b"") for m in sent if "body" in m)

    status, pulled, body = post([(b"content-length", str(MAX_BODY_BYTES + 1).encode())])
    assert (status, pulled) == (413, 0) and b'"code":"too_large"' in body
    status, pulled, body = post([])
    assert (status, pulled) == (413, MAX_BODY_BYTES // len(chunk) + 1), body
