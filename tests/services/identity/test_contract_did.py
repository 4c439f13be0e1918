"""``did:citychain`` on a real chain: create, resolve, update (key rotation, services,
controllers, relationships), deactivate; every version and its time kept; each refusal with
its code, at admission and in a block alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import base58
import pytest
from test_contract_genesis import (  # type: ignore[import-not-found]
    ALICE,
    BOB,
    K1,
    K2,
    K3,
    UNKNOWN,
    VAL,
    Net,
    document,
    mk,
    net,
    ok,
    refused,
    registry,
)

from citychain.chain import Chain
from citychain.errors import ErrorCode, InvalidInput, NotFound
from citychain.services.identity.contract import CONTEXT
from citychain.services.identity.shapes import (
    citychain_id,
    did_head_key,
    did_version_key,
    xsd_datetime,
)
from citychain.store.kv import KVStore
from citychain.types import Commit

__all__ = ["net"]  # the fixture, imported


def test_create_derives_the_did_from_the_transaction_and_resolves_it(net: Net) -> None:
    tx = net.tx(ALICE, "create_did", {"document": document(ALICE, K1)})
    # The sender knows its DID before sending: the first 16 bytes of the transaction's hash.
    expected = "did:citychain:" + base58.b58encode(tx.hash[:16]).decode()
    (r,) = net.block(tx)
    assert ok(r).result == expected
    assert [(e.type, e.attributes) for e in r.events] == [("did_created", {"did": expected})]
    assert citychain_id(expected) == tx.hash[:16]
    res = net.query("resolve", did=expected)
    assert res["didDocument"] == {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": expected,
        "verificationMethod": [
            {
                "id": f"{expected}#key-{i}",
                "type": "Multikey",
                "controller": expected,
                "publicKeyMultibase": mk(k),
            }
            for i, k in ((1, ALICE), (2, K1))
        ],
        "authentication": [f"{expected}#key-1", f"{expected}#key-2"],
        "assertionMethod": [f"{expected}#key-1", f"{expected}#key-2"],
        "capabilityInvocation": [f"{expected}#key-1"],
    }
    assert res["didDocumentMetadata"] == {"created": xsd_datetime(net.time_of(1)), "versionId": "1"}


def test_update_rotates_keys_and_adds_services_controllers_and_relationships(net: Net) -> None:
    did = net.create(ALICE, document(ALICE))
    org = net.create(BOB, document(BOB))
    new = {
        "id": did,
        "controller": [did, org],
        "alsoKnownAs": ["https://market.example.gov"],
        "verificationMethod": [
            {"id": f"{did}#k2", "type": "Multikey", "controller": did, "publicKeyMultibase": mk(K2)}
        ],
        "authentication": ["#k2"],
        "assertionMethod": [
            f"{did}#k2",
            {"id": "#seal", "type": "Multikey", "publicKeyMultibase": mk(K3)},
        ],
        "capabilityInvocation": ["#k2"],
        "capabilityDelegation": ["#k2"],
        "service": [
            {
                "id": "#licences",
                "type": ["LicenceRegistry"],
                "serviceEndpoint": {"uri": "https://x"},
            }
        ],
    }
    r = ok(net.send(ALICE, "update_did", {"did": did, "document": new, "version_id": 1}))
    assert r.result == 2
    assert [(e.type, e.attributes) for e in r.events] == [
        ("did_updated", {"did": did, "version": 2})
    ]
    d = net.query("resolve", did=did)["didDocument"]
    assert d["controller"] == [did, org]
    assert d["alsoKnownAs"] == ["https://market.example.gov"]
    assert d["assertionMethod"] == [
        f"{did}#k2",
        {"id": f"{did}#seal", "type": "Multikey", "controller": did, "publicKeyMultibase": mk(K3)},
    ]
    assert d["capabilityDelegation"] == [f"{did}#k2"]
    assert d["service"] == [
        {
            "id": f"{did}#licences",
            "type": ["LicenceRegistry"],
            "serviceEndpoint": {"uri": "https://x"},
        }
    ]
    # The other controller's key (BOB, in org's capabilityInvocation) may now change it too,
    # while ALICE's rotated-away key may not.
    ok(net.send(BOB, "update_did", {"did": did, "document": {**new, "alsoKnownAs": []}}))
    r = net.send(ALICE, "update_did", {"did": did, "document": document(ALICE)})
    refused(r, ErrorCode.KEY_ROTATED, "rotated it away")
    assert net.query("resolve", did=did)["didDocumentMetadata"]["versionId"] == "3"


def test_every_version_resolves_by_id_and_by_time(net: Net) -> None:
    did = net.create(ALICE, document(ALICE))  # height 1
    t = net.time_of
    ok(net.send(ALICE, "update_did", {"did": did, "document": document(ALICE, K1)}))  # 2
    net.block()  # 3: nothing
    ok(net.send(ALICE, "update_did", {"did": did, "document": document(K2, ALICE, invoke=(1,))}))
    ok(net.send(ALICE, "deactivate_did", {"did": did, "version_id": 3}))  # 5

    def keys(res: dict[str, Any]) -> list[str]:
        return [vm["publicKeyMultibase"] for vm in res["didDocument"].get("verificationMethod", [])]

    v1 = net.query("resolve", did=did, version_id=1)
    assert keys(v1) == [mk(ALICE)]
    assert v1["didDocumentMetadata"] == {
        "created": xsd_datetime(t(1)),
        "versionId": "1",
        "nextVersionId": "2",
        "nextUpdate": xsd_datetime(t(2)),
    }
    v3 = net.query("resolve", did=did, version_id="3")
    assert keys(v3) == [mk(K2), mk(ALICE)]
    assert v3["didDocumentMetadata"]["updated"] == xsd_datetime(t(4))
    now = net.query("resolve", did=did)
    assert now["didDocument"] == {"@context": v1["didDocument"]["@context"], "id": did}
    assert now["didDocumentMetadata"] == {
        "created": xsd_datetime(t(1)),
        "updated": xsd_datetime(t(5)),
        "versionId": "4",
        "deactivated": True,
    }
    # By time: a dateTime covers its whole second, ms are exact.
    for when, version in [
        (t(1), "1"),
        (t(2) - 1, "1"),
        (xsd_datetime(t(2)), "2"),
        (t(3) + 500, "2"),
        (xsd_datetime(t(4)), "3"),
        ("2030-01-01T00:00:00Z", "4"),
        ("2026-01-01T08:00:03+08:00", "2"),
    ]:
        res = net.query("resolve", did=did, version_time=when)
        assert res["didDocumentMetadata"]["versionId"] == version, when
    with pytest.raises(NotFound) as info:
        net.query("resolve", did=did, version_time=t(1) - 1)
    assert info.value.code == ErrorCode.DID_NOT_FOUND and "did not exist yet" in info.value.message
    with pytest.raises(NotFound) as info:
        net.query("resolve", did=did, version_id=5)
    assert "has versions 1 to 4, not 5" in info.value.message
    hist = net.query("history", did=did)
    assert [(h["versionId"], h["operation"], h["height"], h["signer"]) for h in hist] == [
        ("1", "create", 1, mk(ALICE)),
        ("2", "update", 2, mk(ALICE)),
        ("3", "update", 4, mk(ALICE)),
        ("4", "deactivate", 5, mk(ALICE)),
    ]
    assert net.query("history", did=did, after=2, limit=1)[0]["versionId"] == "3"
    assert hist[0]["tx"] == net.blocks[0].txs[0].hash


def test_a_controller_did_and_a_did_key_control_a_did(net: Net) -> None:
    org = net.create(BOB, document(BOB))
    # A department's DID controlled by the organisation's DID and by a did:key: no key of
    # its own may change it, and the signer (BOB) holds no key of the new document.
    dept = net.create(BOB, document(K3, invoke=(), controller=[org, "did:key:" + mk(ALICE)]))
    d = net.query("resolve", did=dept)["didDocument"]
    assert d["controller"] == [org, "did:key:" + mk(ALICE)]
    assert "capabilityInvocation" not in d
    ok(net.send(ALICE, "update_did", {"did": dept, "document": document(K3, controller=org)}))
    # Once the organisation's DID is deactivated its keys control nothing.
    ok(net.send(BOB, "deactivate_did", {"did": org}))
    net.refused_twice(
        BOB,
        "update_did",
        {"did": dept, "document": document(K1)},
        ErrorCode.NOT_CONTROLLER,
        f"controller {org} is deactivated",
    )


# -- refusals -----------------------------------------------------------------------------------
def test_wrong_controller_is_refused(net: Net) -> None:
    did = net.create(ALICE, document(ALICE, K1))  # K1 authenticates but cannot invoke
    net.refused_twice(
        BOB,
        "update_did",
        {"did": did, "document": document(BOB)},
        ErrorCode.NOT_CONTROLLER,
        f"the signing key {mk(BOB)} is not in capabilityInvocation of {did}'s controller(s) {did}",
    )
    net.refused_twice(BOB, "deactivate_did", {"did": did}, ErrorCode.NOT_CONTROLLER, mk(BOB))
    # A create must be controlled by its signer: no DID for someone else's keys.
    net.refused_twice(
        BOB, "create_did", {"document": document(ALICE)}, ErrorCode.NOT_CONTROLLER, mk(BOB)
    )


def test_a_rotated_away_key_is_refused(net: Net) -> None:
    did = net.create(ALICE, document(ALICE))
    ok(net.send(ALICE, "update_did", {"did": did, "document": document(BOB)}))
    net.refused_twice(
        ALICE,
        "update_did",
        {"did": did, "document": document(ALICE)},
        ErrorCode.KEY_ROTATED,
        f"key {mk(ALICE)} controlled {did} until version 1; version 2 (height 2) rotated it away",
    )
    ok(net.send(BOB, "update_did", {"did": did, "document": document(BOB, ALICE, invoke=(1,))}))


def test_a_deactivated_did_changes_no_more(net: Net) -> None:
    did = net.create(ALICE, document(ALICE))
    r = ok(net.send(ALICE, "deactivate_did", {"did": did}))
    assert [(e.type, e.attributes) for e in r.events] == [
        ("did_deactivated", {"did": did, "version": 2})
    ]
    for method, args in [
        ("update_did", {"did": did, "document": document(ALICE)}),
        ("deactivate_did", {"did": did}),
    ]:
        net.refused_twice(
            ALICE, method, args, ErrorCode.DID_DEACTIVATED, f"{did} was deactivated at height 2"
        )
    # ... nor controls another DID.
    net.refused_twice(
        ALICE,
        "create_did",
        {"document": document(K1, invoke=(), controller=did)},
        ErrorCode.DID_DEACTIVATED,
        did,
    )


def test_an_unknown_did_is_refused(net: Net) -> None:
    for method, args in [
        ("update_did", {"did": UNKNOWN, "document": document(ALICE)}),
        ("deactivate_did", {"did": UNKNOWN}),
        ("create_did", {"document": document(ALICE, controller=[UNKNOWN])}),
    ]:
        net.refused_twice(
            ALICE, method, args, ErrorCode.DID_NOT_FOUND, f"{UNKNOWN} is not on this chain"
        )
    for q in ("resolve", "history"):
        with pytest.raises(NotFound) as info:
            net.query(q, did=UNKNOWN)
        assert info.value.code == ErrorCode.DID_NOT_FOUND
    with pytest.raises(InvalidInput) as bad:
        net.query("resolve", did="did:web:example.com")
    assert bad.value.code == ErrorCode.BAD_ARGUMENTS and "not a did:citychain" in bad.value.message


def test_a_stale_version_and_a_change_of_nothing_are_refused(net: Net) -> None:
    did = net.create(ALICE, document(ALICE))
    ok(net.send(ALICE, "update_did", {"did": did, "document": document(ALICE, K1)}))
    net.refused_twice(
        ALICE,
        "update_did",
        {"did": did, "document": document(ALICE), "version_id": 1},
        ErrorCode.VERSION_CONFLICT,
        f"{did} is at version 2, not 1",
    )
    net.refused_twice(
        ALICE,
        "update_did",
        {"did": did, "document": document(ALICE, K1)},
        ErrorCode.BAD_ARGUMENTS,
        "the same as version 2",
    )


_VM = {"id": "#k", "type": "Multikey", "publicKeyMultibase": mk(ALICE)}
_JWK_VM = {"id": "#k", "type": "JsonWebKey", "publicKeyJwk": {"kty": "OKP"}}


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ("not a map", "must be a map"),
        ({"id": UNKNOWN, **document(ALICE)}, "id: must be left out at create"),
        ({**document(ALICE), "name": "Alice Zhang"}, "has name, which this method does not take"),
        ({**document(ALICE), "@context": "https://example.com"}, "@context"),
        ({**document(ALICE), "@context": [CONTEXT[0], {"@vocab": None}]}, "@context: must be"),
        ({"verificationMethod": [_JWK_VM], "capabilityInvocation": ["#k"]}, "has publicKeyJwk"),
        (
            {"verificationMethod": [{**_VM, "publicKeyMultibase": "zQ3s"}]},
            "verificationMethod[0].publicKeyMultibase: publicKeyMultibase is not an Ed25519",
        ),
        ({"verificationMethod": [{**_VM, "type": "Ed25519VerificationKey2020"}]}, "'Multikey'"),
        ({"verificationMethod": [_VM, _VM]}, "id #k is used twice"),
        ({"verificationMethod": [_VM], "capabilityInvocation": ["#nope"]}, "refers to #nope"),
        (
            {"verificationMethod": [_VM], "capabilityInvocation": ["did:example:1#k"]},
            "must be an id in this document",
        ),
        ({"verificationMethod": [_VM], "keyAgreement": ["#k"]}, "needs X25519 keys"),
        ({"verificationMethod": [_VM]}, "no key could ever change"),
        ({**document(ALICE), "controller": []}, "controller: is empty"),
        ({**document(ALICE), "controller": "alice"}, "controller[0]: 'alice' is not a DID"),
        (
            {**document(ALICE), "service": [{"id": "#s", "type": "X", "serviceEndpoint": b"\x01"}]},
            "serviceEndpoint: must be a URI",
        ),
        (
            {**document(ALICE), "service": [{"id": "#s", "type": "X"}]},
            "exactly id, type and serviceEndpoint",
        ),
        ({**document(ALICE), "alsoKnownAs": ["nothing"]}, "alsoKnownAs[0]: 'nothing' is not a URI"),
        (
            {**document(ALICE), "verificationMethod": [{**_VM, "id": "#a b"}]},
            "a fragment is 1 to 64",
        ),
        (
            {**document(ALICE), "alsoKnownAs": [f"https://x.example/{i}" for i in range(17)]},
            "has 17 entries; at most 16",
        ),
    ],
)
def test_malformed_documents_are_refused(net: Net, doc: Any, words: str) -> None:
    net.refused_twice(ALICE, "create_did", {"document": doc}, ErrorCode.INVALID_DID_DOCUMENT, words)


def test_an_update_naming_another_did_is_refused(net: Net) -> None:
    did = net.create(ALICE, document(ALICE))
    other = net.create(ALICE, document(ALICE))
    net.refused_twice(
        ALICE,
        "update_did",
        {"did": did, "document": {"id": other, **document(ALICE)}},
        ErrorCode.INVALID_DID_DOCUMENT,
        f"id: is '{other}', not the DID {did}",
    )
    net.refused_twice(
        ALICE,
        "update_did",
        {"did": did, "document": document(ALICE), "extra": 1},
        ErrorCode.BAD_ARGUMENTS,
        "unknown argument(s) 'extra'",
    )


def test_versions_are_state_keys_and_a_replay_reaches_the_same_state(
    net: Net, tmp_path: Path
) -> None:
    """Each version is the state key ``did_version_key`` names (so a node can prove it), and
    a fresh chain that re-executes the blocks reaches the same state root and receipts."""
    did = net.create(ALICE, document(ALICE))
    ok(net.send(ALICE, "update_did", {"did": did, "document": document(ALICE, K1)}))
    net.send(BOB, "update_did", {"did": did, "document": document(BOB)})  # refused: kept too
    ok(net.send(ALICE, "deactivate_did", {"did": did}))
    state = net.chain.state
    assert state.get(did_head_key(did)) is not None
    assert [state.get(did_version_key(did, n)) is not None for n in (1, 2, 3, 4)] == [
        True,
        True,
        True,
        False,
    ]
    fresh = Chain(KVStore(tmp_path / "replay"), net.genesis, registry())
    try:
        for block in net.blocks:
            pending = fresh.check_block(block)
            fresh.commit(pending, Commit.sign_single(VAL, net.genesis.chain_id, block.header))
            assert fresh.state.root == block.header.state_root
            assert fresh.blocks.receipts(block.height) == net.chain.blocks.receipts(block.height)
    finally:
        fresh.close()


def test_a_create_checked_at_admission_commits_what_one_never_checked_does(
    net: Net, tmp_path: Path
) -> None:
    """The record admission made is taken again in the block (keyed by the transaction's
    hash): the block's receipts and state root are those of a chain that never saw the
    transaction at admission, with that cache empty."""
    from citychain.services.identity.contract import _contract as contract_module

    txs = [net.tx(s, "create_did", {"document": document(s, K1)}) for s in (ALICE, BOB)]
    for tx in txs:
        net.chain.check_admission(tx)  # fills the cache
    assert all((tx.hash, False) in contract_module._records for tx in txs)
    (r1, r2) = net.block(*txs)
    fresh = Chain(KVStore(tmp_path / "fresh"), net.chain.genesis, registry())
    contract_module._records.clear()
    block = net.chain.blocks.block(net.height)
    assert block is not None
    pending = fresh.check_block(block)
    assert pending.receipts == (r1, r2) and ok(r1).result != ok(r2).result
    assert pending.header.state_root == block.header.state_root
    fresh.close()
