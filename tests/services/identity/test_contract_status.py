"""Status lists anchored on chain: an issuer registers a list and changes entries by
transaction; the chain keeps the bitstring's SHA-256 and every change; each refusal."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from typing import Any

import pytest
from test_contract_genesis import (  # type: ignore[import-not-found]
    ALICE,
    BOB,
    Net,
    citychain_did,
    document,
    mk,
    net,
    ok,
    refused,
)
from test_token_status import resigned  # type: ignore[import-not-found]

from citychain.errors import ErrorCode, NotFound
from citychain.services.identity.sdk import StatusList, status_list_token
from citychain.services.identity.sdk._di import EDDSA_JCS_2022
from citychain.services.identity.sdk._lists import _signed_list
from citychain.services.identity.shapes import (
    status_bit,
    status_chunk_key,
    status_list_digest,
    status_list_key,
    xsd_datetime,
)
from citychain.services.identity.shapes._jose import b64url as sdk_b64

__all__ = ["net"]
SIZE = 131_072


def register(net: Net, issuer: str, name: str, purpose: str, size: int | None = None) -> str:
    args = {"issuer": issuer, "name": name, "purpose": purpose}
    if size is not None:
        args["size"] = size
    list_id: str = ok(net.send(ALICE, "register_status_list", args)).result
    return list_id


def test_an_issuer_revokes_and_suspends_and_the_chain_keeps_the_hash(net: Net) -> None:
    issuer = net.create(ALICE, document(ALICE))
    rev = register(net, issuer, "rev-1", "revocation")
    assert rev == f"{issuer}/status/rev-1"
    head = net.query("status_list", list_id=rev)
    assert (head["issuer"], head["purpose"], head["size"], head["changes"]) == (
        issuer,
        "revocation",
        SIZE,
        0,
    )
    assert head["hash"] == hashlib.sha256(bytes(SIZE // 8)).digest()
    r = ok(net.send(ALICE, "set_status", {"list_id": rev, "set": [94567, 7, 131071]}))
    assert r.result == 1
    assert [(e.type, e.attributes) for e in r.events] == [
        ("status_changed", {"id": rev, "seq": 1, "set": 3, "clear": 0})
    ]
    bits = net.query("status_bitstring", list_id=rev)
    assert len(bits) == SIZE // 8
    assert [i for i in (0, 7, 8, 94567, 131071) if status_bit(bits, i)] == [7, 94567, 131071]
    assert bits[0] == 0x01  # index 7 is the last bit of the first byte: left-most is 0
    st = net.query("status", list_id=rev, index=94567)
    assert (st["set"], st["purpose"], st["changes"]) == (True, "revocation", 1)
    assert st["hash"] == status_list_digest(bits) == net.query("status_list", list_id=rev)["hash"]
    assert not net.query("status", list_id=rev, index=94566)["set"]
    # Suspension: set, then lifted.
    sus = register(net, issuer, "sus-1", "suspension", size=2 * SIZE)
    ok(net.send(ALICE, "set_status", {"list_id": sus, "set": [5, 200_000]}))
    ok(net.send(ALICE, "set_status", {"list_id": sus, "clear": [5], "set": [6]}))
    bits = net.query("status_bitstring", list_id=sus)
    assert len(bits) == 2 * SIZE // 8
    assert [i for i in (5, 6, 200_000) if status_bit(bits, i)] == [6, 200_000]
    assert net.query("status_list", list_id=sus)["hash"] == status_list_digest(bits)
    hist = net.query("status_history", list_id=sus)
    assert [(h["seq"], h["set"], h["clear"]) for h in hist] == [
        (1, [5, 200_000], []),
        (2, [6], [5]),
    ]
    assert hist[1]["hash"] == status_list_digest(bits)
    assert hist[1]["by"] == ALICE.public_key and hist[1]["height"] == net.height
    assert net.query("status_history", list_id=sus, after=1) == [hist[1]]
    # A cleared chunk leaves state; the chunk of a set entry is there to prove.
    state = net.chain.state
    assert state.get(status_list_key(sus)) is not None
    assert state.get(status_chunk_key(sus, 200_000)) is not None
    ok(net.send(ALICE, "set_status", {"list_id": sus, "clear": [200_000]}))
    assert state.get(status_chunk_key(sus, 200_000)) is None


def test_an_entry_reads_as_it_was_at_a_past_time(net: Net) -> None:
    """The change history answers for any moment: the entry, the hash and the count then."""
    issuer = net.create(ALICE, document(ALICE))
    sus = register(net, issuer, "sus", "suspension")  # height 2
    t = net.time_of
    ok(net.send(ALICE, "set_status", {"list_id": sus, "set": [42, 43]}))  # 3
    ok(net.send(ALICE, "set_status", {"list_id": sus, "clear": [42]}))  # 4
    ok(net.send(ALICE, "set_status", {"list_id": sus, "set": [42]}))  # 5
    hist = net.query("status_history", list_id=sus)
    empty = hashlib.sha256(bytes(SIZE // 8)).digest()
    for at, set42, digest, changes in [
        (t(2), False, empty, 0),
        (t(3) - 1, False, empty, 0),
        (t(3), True, hist[0]["hash"], 1),
        (xsd_datetime(t(4)), False, hist[1]["hash"], 2),
        (t(5), True, hist[2]["hash"], 3),
    ]:
        st = net.query("status", list_id=sus, index=42, at=at)
        assert (st["set"], st["hash"], st["changes"]) == (set42, digest, changes), at
    assert net.query("status", list_id=sus, index=43, at=t(4))["set"]
    with pytest.raises(NotFound) as info:
        net.query("status", list_id=sus, index=42, at=t(2) - 1)
    assert info.value.code == ErrorCode.STATUS_LIST_NOT_FOUND
    assert "did not exist yet" in info.value.message


def test_status_list_refusals(net: Net) -> None:
    issuer = net.create(ALICE, document(ALICE))
    rev = register(net, issuer, "rev", "revocation")
    ok(net.send(ALICE, "set_status", {"list_id": rev, "set": [3]}))
    net.refused_twice(
        ALICE,
        "set_status",
        {"list_id": rev, "clear": [3]},
        ErrorCode.REVOCATION_FINAL,
        f"{rev} is a revocation list: entry 3 stays revoked",
    )
    net.refused_twice(
        BOB,
        "set_status",
        {"list_id": rev, "set": [4]},
        ErrorCode.NOT_CONTROLLER,
        f"the signing key {mk(BOB)} is not in capabilityInvocation of {issuer}",
    )
    missing = f"{issuer}/status/nope"
    net.refused_twice(
        ALICE,
        "set_status",
        {"list_id": missing, "set": [1]},
        ErrorCode.STATUS_LIST_NOT_FOUND,
        f"no status list {missing}",
    )
    for args, words in [
        ({"list_id": rev, "set": [3]}, "entry 3 of"),
        ({"list_id": rev, "set": [SIZE]}, f"{SIZE} is not an index of this list (0 to {SIZE - 1})"),
        ({"list_id": rev, "set": [-1]}, "is not an index"),
        ({"list_id": rev}, "give the entries to 'set' or to 'clear'"),
        ({"list_id": rev, "set": [9, 9]}, "an entry is listed twice"),
        ({"list_id": rev, "set": "9"}, "must be a list of entry indexes"),
        ({"list_id": "rev", "set": [1]}, "argument 'list_id'"),
    ]:
        net.refused_twice(ALICE, "set_status", args, ErrorCode.BAD_ARGUMENTS, words)
    base = {"issuer": issuer, "name": "x", "purpose": "revocation"}
    for args, code, words in [
        ({**base, "name": "rev"}, ErrorCode.DUPLICATE, f"status list {rev} already exists"),
        ({**base, "purpose": "refresh"}, ErrorCode.BAD_ARGUMENTS, "revocation, suspension"),
        ({**base, "size": 65_536}, ErrorCode.BAD_ARGUMENTS, "from 131072 to 1048576"),
        ({**base, "size": SIZE + 1}, ErrorCode.BAD_ARGUMENTS, "a multiple of 8192"),
        ({**base, "name": "a/b"}, ErrorCode.BAD_ARGUMENTS, "a status list name is 1 to 64"),
        (
            {**base, "issuer": citychain_did(bytes(16))},
            ErrorCode.DID_NOT_FOUND,
            "is not on this chain",
        ),
    ]:
        net.refused_twice(ALICE, "register_status_list", args, code, words)
    net.refused_twice(BOB, "register_status_list", base, ErrorCode.NOT_CONTROLLER, mk(BOB))
    # A key rotated away or a deactivated issuer changes nothing any more.
    ok(net.send(ALICE, "update_did", {"did": issuer, "document": document(BOB)}))
    net.refused_twice(
        ALICE, "set_status", {"list_id": rev, "set": [4]}, ErrorCode.KEY_ROTATED, "rotated it away"
    )
    ok(net.send(BOB, "deactivate_did", {"did": issuer}))
    net.refused_twice(
        BOB, "set_status", {"list_id": rev, "set": [4]}, ErrorCode.DID_DEACTIVATED, issuer
    )
    with pytest.raises(NotFound) as info:
        net.query("status", list_id=missing, index=0)
    assert info.value.code == ErrorCode.STATUS_LIST_NOT_FOUND


def _slc(list_id: str, net: Net, *, to_set: tuple[int, ...] = (), **over: Any) -> bytes:
    """The list's status list credential, signed by ALICE, with ``to_set`` set on top of the
    chain's bits, and any top-level field replaced by ``over``."""
    head = net.query("status_list", list_id=list_id)
    bits = net.query("status_bitstring", list_id=list_id)
    raw = _signed_list(list_id, head, bits, ALICE, f"{head['issuer']}#key-1", EDDSA_JCS_2022,
                       to_set)  # fmt: skip
    vc = {**json.loads(raw), **over}
    return json.dumps({k: v for k, v in vc.items() if v is not None}).encode()


def test_an_issuer_publishes_its_status_list_credential_with_a_change(net: Net) -> None:
    """Verifiers outside the chain read a list as the issuer's signed credential: the chain
    keeps it only when its bits are the list's, and says when the list has moved on."""
    issuer = net.create(ALICE, document(ALICE))
    rev = register(net, issuer, "rev", "revocation")
    with pytest.raises(NotFound) as none:
        net.query("status_credential", list_id=rev)
    assert "has published no status list credential" in none.value.message

    first = _slc(rev, net)
    r = ok(net.send(ALICE, "publish_status_credential", {"list_id": rev, "credential": first}))
    assert r.result == 0
    assert [(e.type, e.attributes) for e in r.events] == [
        ("status_credential_published", {"id": rev, "changes": 0})
    ]
    got = net.query("status_credential", list_id=rev)
    assert (got["credential"], got["changes"], got["current"]) == (first, 0, True)

    # A change with the credential after it: one transaction, kept together.
    after = _slc(rev, net, to_set=(7, 94567))
    r = ok(net.send(ALICE, "set_status", {"list_id": rev, "set": [7, 94567], "credential": after}))
    got = net.query("status_credential", list_id=rev)
    assert (got["credential"], got["changes"], got["current"]) == (after, 1, True)
    encoded = json.loads(after)["credentialSubject"]["encodedList"]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert hashlib.sha256(bits).digest() == net.query("status_list", list_id=rev)["hash"]

    # A change without one leaves the published credential behind: no longer current.
    ok(net.send(ALICE, "set_status", {"list_id": rev, "set": [8]}))
    got = net.query("status_credential", list_id=rev)
    assert (got["changes"], got["current"]) == (1, False)

    # A credential whose bits are not the list's after the change: nothing of it is applied.
    stale = _slc(rev, net)  # the bits now, without entry 9
    r = net.send(ALICE, "set_status", {"list_id": rev, "set": [9], "credential": stale})
    refused(r, ErrorCode.INVALID_CREDENTIAL, "is not the list's bits after this change")
    assert not net.query("status", list_id=rev, index=9)["set"]
    assert net.query("status_list", list_id=rev)["changes"] == 2
    assert net.query("status_credential", list_id=rev)["credential"] == after


def test_a_published_status_list_credential_is_refused_by_name(net: Net) -> None:
    issuer = net.create(ALICE, document(ALICE))
    rev = register(net, issuer, "rev", "revocation")
    sus = register(net, issuer, "sus", "suspension")
    ok(net.send(ALICE, "set_status", {"list_id": rev, "set": [3]}))
    other = net.create(BOB, document(BOB))
    good = json.loads(_slc(rev, net))
    subject = good["credentialSubject"]
    bad_list = {**subject, "encodedList": "u" + base64.urlsafe_b64encode(b"junk").decode()}
    short = gzip.compress(bytes(SIZE // 8 - 1), mtime=0)
    cases: list[tuple[Any, str]] = [
        (b"{", "not JSON text"),
        (b"[]", "not a JSON object"),
        (json.dumps({**good, "n": 1.5}).encode(), "a status list credential holds none"),
        (_slc(rev, net, id=sus), f"its id is {sus!r}, not {rev!r}"),
        (_slc(rev, net, type=["VerifiableCredential"]), "BitstringStatusListCredential"),
        (_slc(rev, net, issuer=other), f"its issuer is {other!r}"),
        (_slc(rev, net, proof=None), "it has no proof"),
        (
            _slc(rev, net, credentialSubject={**subject, "statusPurpose": "suspension"}),
            "its statusPurpose is 'suspension', the list's is 'revocation'",
        ),
        (_slc(rev, net, credentialSubject=bad_list), "encodedList is not GZIP data"),
        (
            _slc(
                rev,
                net,
                credentialSubject={
                    **subject,
                    "encodedList": "u" + base64.urlsafe_b64encode(short).decode(),
                },
            ),
            "does not hold exactly the list's 131072 entries",
        ),
        (_slc(rev, net, to_set=(4,)), "is not the bits"),  # ahead of the chain
        (b"x" * (48 * 1024 + 1), "1 to 49152 bytes"),
        ("{}", "is its JSON text"),
    ]
    for raw, words in cases:
        args = {"list_id": rev, "credential": raw}
        net.refused_twice(
            ALICE, "publish_status_credential", args, ErrorCode.INVALID_CREDENTIAL, words
        )
    net.refused_twice(
        BOB,
        "publish_status_credential",
        {"list_id": rev, "credential": _slc(rev, net)},
        ErrorCode.NOT_CONTROLLER,
        mk(BOB),
    )


def _token(list_id: str, net: Net, *, to_set: tuple[int, ...] = (), **over: Any) -> str:
    """The list's Status List Token signed by ALICE, with ``to_set`` set on top of the chain's
    bits; ``over`` replaces claims (``h_<name>``: header fields), re-signed."""
    head = net.query("status_list", list_id=list_id)
    status = StatusList(head["size"], net.query("status_bitstring", list_id=list_id))
    for i in to_set:
        status.set(i)
    kid = f"{head['issuer']}#key-1"
    token = status_list_token(list_id, status, head["purpose"], ALICE, kid, iat=1_780_000_000)
    if not over:
        return token
    header = {k[2:]: v for k, v in over.items() if k.startswith("h_")}
    claims = {k: v for k, v in over.items() if not k.startswith("h_")}
    return resigned(token, header, claims, ALICE)


def test_an_issuer_publishes_its_status_list_token_for_sd_jwt_verifiers(net: Net) -> None:
    """The IETF Status List Token is kept beside the credential, under the same rule: its
    bits are the list's, now or after the change it comes with."""
    issuer = net.create(ALICE, document(ALICE))
    sus = register(net, issuer, "sus", "suspension")
    with pytest.raises(NotFound) as none:
        net.query("status_token", list_id=sus)
    assert "has published no Status List Token" in none.value.message

    first = _token(sus, net)
    r = ok(net.send(ALICE, "publish_status_credential", {"list_id": sus, "token": first}))
    assert [(e.type, e.attributes) for e in r.events] == [
        ("status_token_published", {"id": sus, "changes": 0})
    ]
    got = net.query("status_token", list_id=sus)
    assert (got["token"], got["changes"], got["current"]) == (first, 0, True)
    with pytest.raises(NotFound):
        net.query("status_credential", list_id=sus)  # published alone

    # Both forms with a change, in one transaction.
    token, credential = _token(sus, net, to_set=(9,)), _slc(sus, net, to_set=(9,))
    args = {"list_id": sus, "set": [9], "token": token, "credential": credential}
    r = ok(net.send(ALICE, "set_status", args))
    assert sorted(e.type for e in r.events) == [
        "status_changed",
        "status_credential_published",
        "status_token_published",
    ]
    assert net.query("status_token", list_id=sus)["token"] == token
    assert net.query("status_credential", list_id=sus)["credential"] == credential

    # One of the two not the list's after the change: the whole change is refused.
    args = {"list_id": sus, "set": [10], "token": _token(sus, net), "credential": _slc(
        sus, net, to_set=(10,))}  # fmt: skip
    refused(net.send(ALICE, "set_status", args), ErrorCode.INVALID_CREDENTIAL, "argument 'token'")
    assert not net.query("status", list_id=sus, index=10)["set"]
    assert net.query("status_token", list_id=sus)["token"] == token

    ok(net.send(ALICE, "set_status", {"list_id": sus, "clear": [9]}))
    assert net.query("status_token", list_id=sus)["current"] is False


def test_a_published_status_list_token_is_refused_by_name(net: Net) -> None:
    issuer = net.create(ALICE, document(ALICE))
    rev = register(net, issuer, "rev", "revocation")
    sus = register(net, issuer, "sus", "suspension")
    other = net.create(BOB, document(BOB))
    good = _token(rev, net)
    head, body, _ = good.split(".")
    two_bits = bytes(SIZE // 4)
    invalid_in_suspension = bytearray(two_bits)
    invalid_in_suspension[1] = 0b0100  # entry 5: 0x01 INVALID
    lst = sdk_b64(zlib.compress(bytes(invalid_in_suspension)))
    cases: list[tuple[str, Any, str]] = [
        (rev, "x", "not a compact JWS"),
        (rev, f"{head}.{body}.", "it is not signed"),
        (rev, b"a.b.c", "compact JWS text"),
        (rev, "x" * (48 * 1024 + 1), "1 to 49152 characters"),
        (rev, _token(rev, net, h_typ="JWT"), "typ is 'JWT'"),
        (rev, _token(rev, net, h_alg="none"), "names no signature algorithm"),
        (rev, _token(rev, net, h_kid=f"{other}#key-1"), "is not a verification method of"),
        (rev, _token(rev, net, sub=sus), f"its sub is {sus!r}"),
        (rev, _token(rev, net, iss=other), f"its iss is {other!r}"),
        (rev, _token(rev, net, iat="now"), "its iat is not a NumericDate"),
        (rev, _token(rev, net, iat=1.5), "a number with a fraction"),
        (rev, _token(rev, net, exp=1_780_000_000), "exp is not a NumericDate after its iat"),
        (rev, _token(rev, net, ttl=0), "its ttl is not"),
        (rev, _token(rev, net, status_list=[]), "has no status_list object"),
        (rev, _token(rev, net, status_list={"bits": 2, "lst": "eA"}), "published with 1 bit"),
        (sus, _token(sus, net, status_list={"bits": 1, "lst": "eA"}), "published with 2 bit"),
        (rev, _token(rev, net, status_list={"bits": 1, "lst": "eA=="}), "base64url"),
        (
            rev,
            _token(rev, net, status_list={"bits": 1, "lst": sdk_b64(zlib.compress(bytes(9)))}),
            "short of the list's 131072 entries",
        ),
        (
            sus,
            _token(sus, net, status_list={"bits": 2, "lst": lst}),
            "entry 5 holds status 0x01 (INVALID)",
        ),
        (rev, _token(rev, net, to_set=(4,)), "is not the bits"),  # ahead of the chain
    ]
    for list_id, raw, words in cases:
        args = {"list_id": list_id, "token": raw}
        net.refused_twice(
            ALICE, "publish_status_credential", args, ErrorCode.INVALID_CREDENTIAL, words
        )
    net.refused_twice(
        ALICE,
        "publish_status_credential",
        {"list_id": rev},
        ErrorCode.BAD_ARGUMENTS,
        "give the list's signed 'credential', its 'token', or both",
    )
    for token in (good, "junk"):  # whoever is no controller is refused before any parsing
        net.refused_twice(
            BOB,
            "publish_status_credential",
            {"list_id": rev, "token": token},
            ErrorCode.NOT_CONTROLLER,
            mk(BOB),
        )


def test_a_default_sized_list_publishes_even_with_half_its_entries_set_at_random(net: Net) -> None:
    """The refusal of a too-dense list says lists of 131,072 entries always fit: half their
    entries set at random (gzip cannot shrink them) still publish, in either form, alone."""
    import random

    issuer = net.create(ALICE, document(ALICE))
    sus = register(net, issuer, "busy", "suspension")
    entries = sorted(random.Random(5).sample(range(SIZE), SIZE // 2))
    for start in range(0, len(entries), 9_000):
        ok(net.send(ALICE, "set_status", {"list_id": sus, "set": entries[start : start + 9_000]}))
    credential, token = _slc(sus, net), _token(sus, net)
    assert len(credential) > 20_000 and len(token) > 20_000  # incompressible
    for args in ({"credential": credential}, {"token": token}):
        ok(net.send(ALICE, "publish_status_credential", {"list_id": sus, **args}))
    assert net.query("status_token", list_id=sus)["current"]
