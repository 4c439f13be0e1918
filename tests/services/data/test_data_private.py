"""Private data collections: the contract part (definitions, hashes only, purge index, every
refusal with its code, at admission and in a block alike) and the pure dissemination logic
(who is sent an item; the p2p messages and their limits; the counting of acknowledgements)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from data_net import CITIZEN, DEPT, PROV, Net, ok  # type: ignore[import-not-found]
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.errors import DecodeError, ErrorCode, InvalidInput, NotFound
from citychain.types import private_data as pv

H = hashlib.sha256(b"value" + bytes(32)).digest()


@pytest.fixture
def net(tmp_path: Path) -> Net:
    return Net(tmp_path / "chain")


def test_a_collection_holds_only_hashes_and_schedules_the_purge(net: Net) -> None:
    r = ok(net.send(PROV, "define_collection", {"name": "tax", "orgs": ["org2", "org1"],
                                                "block_to_live": 3}))  # fmt: skip
    assert r.result == "tax"
    c = net.query("collection", name="tax")
    assert (c["orgs"], c["block_to_live"], c["member_only_read"]) == (["org1", "org2"], 3, True)
    r = ok(net.send(DEPT, "put_private", {"collection": "tax", "key": "case-1", "hash": H,
                                          "size": 5}))  # fmt: skip
    height = net.height
    assert r.result == {"version": 1, "purge_height": height + 3}
    ((kind, attrs),) = [(e.type, e.attributes) for e in r.events]
    assert kind == "private_put" and attrs["hash"] == H and "value" not in attrs
    item = net.query("private_item", collection="tax", key="case-1")
    assert (item["hash"], item["size"], item["version"], item["purged"]) == (H, 5, 1, False)
    again = {"collection": "tax", "key": "case-1", "hash": H, "size": 5}
    assert ok(net.send(PROV, "put_private", again)).result["version"] == 2
    due = net.query("purge_due", after=0, through=height + 3)
    assert [(d["key"], d["version"], d["purge_height"]) for d in due["items"]] == [
        ("case-1", 1, height + 3)
    ]
    assert due["through"] == height + 3
    assert net.query("purge_due", after=height + 3, through=height + 3)["items"] == []
    while net.height < height + 3:
        net.block()
    assert net.query("private_item", collection="tax", key="case-1", version=1)["purged"]
    assert not net.query("private_item", collection="tax", key="case-1")["purged"]


def test_block_to_live_zero_keeps_the_value(net: Net) -> None:
    ok(net.send(PROV, "define_collection", {"name": "keep", "orgs": ["org1"]}))
    r = ok(net.send(PROV, "put_private", {"collection": "keep", "key": "k", "hash": H, "size": 1}))
    assert r.result["purge_height"] == 0
    assert net.query("purge_due", after=0, through=net.height + 100)["items"] == []


def test_refusals_have_precise_codes(net: Net) -> None:
    define = {"name": "only1", "orgs": ["org1"]}
    net.refused_twice(DEPT, "define_collection", define, ErrorCode.NOT_IN_COLLECTION,
                      "definer's organisation must be listed")  # fmt: skip
    net.refused_twice(PROV, "define_collection", {"name": "x", "orgs": ["org9"]},
                      ErrorCode.BAD_ARGUMENTS, "org9 is no organisation")  # fmt: skip
    net.refused_twice(PROV, "define_collection", {"name": "x", "orgs": ["org1", "org1"]},
                      ErrorCode.BAD_ARGUMENTS, "twice")  # fmt: skip
    net.refused_twice(PROV, "define_collection", {"name": "Bad Name", "orgs": ["org1"]},
                      ErrorCode.BAD_ARGUMENTS, "collection name")  # fmt: skip
    ok(net.send(PROV, "define_collection", define))
    net.refused_twice(PROV, "define_collection", define, ErrorCode.DUPLICATE, "already defined")
    put = {"collection": "only1", "key": "k", "hash": H, "size": 5}
    net.refused_twice(DEPT, "put_private", put, ErrorCode.NOT_IN_COLLECTION, "a member of 'org2'")
    net.refused_twice(CITIZEN, "put_private", put, ErrorCode.NOT_MEMBER, "")
    net.refused_twice(PROV, "put_private", {**put, "collection": "nope"},
                      ErrorCode.COLLECTION_NOT_FOUND, "no private data collection")  # fmt: skip
    net.refused_twice(PROV, "put_private", {**put, "hash": b"short"},
                      ErrorCode.BAD_ARGUMENTS, "32 bytes")  # fmt: skip
    net.refused_twice(PROV, "put_private", {**put, "size": pv.MAX_ITEM_BYTES + 1},
                      ErrorCode.BAD_ARGUMENTS, "size")  # fmt: skip
    net.refused_twice(PROV, "put_private", {**put, "value": b"secret"},
                      ErrorCode.BAD_ARGUMENTS, "value")  # fmt: skip
    with pytest.raises(NotFound) as none:
        net.query("collection", name="nope")
    assert none.value.code == ErrorCode.COLLECTION_NOT_FOUND


def test_peer_counts_are_recorded_bounded_and_read_as_zero_when_absent(net: Net) -> None:
    ok(net.send(PROV, "define_collection", {"name": "old", "orgs": ["org1", "org2"]}))
    # A definition without the counts is the record it was before they existed (an old
    # chain's, byte for byte), and reads as the defaults: 0 required, 0 (no limit) at most.
    (raw,) = [v for k, v in net.chain.state.iter_prefix(b"") if k.endswith(b"pc/old")]
    assert "required_peers" not in codec.decode(raw) and "max_peers" not in codec.decode(raw)
    old = net.query("collection", name="old")
    assert (old["required_peers"], old["max_peers"]) == (0, 0)
    r = ok(net.send(PROV, "define_collection", {"name": "safe", "orgs": ["org1", "org2"],
                                                "required_peers": 1, "max_peers": 2}))  # fmt: skip
    ((kind, attrs),) = [(e.type, e.attributes) for e in r.events]
    assert kind == "collection" and (attrs["required_peers"], attrs["max_peers"]) == (1, 2)
    safe = net.query("collection", name="safe")
    assert (safe["required_peers"], safe["max_peers"]) == (1, 2)
    r = ok(net.send(PROV, "define_collection", {"name": "wide", "orgs": ["org1"],
                                                "required_peers": 3}))  # fmt: skip
    assert "max_peers" not in r.events[0].attributes  # no limit: at most what the node reaches
    assert net.query("collection", name="wide")["max_peers"] == 0
    base = {"name": "x", "orgs": ["org1"]}
    for extra, words in (
        ({"required_peers": 3, "max_peers": 2}, "'required_peers' (3) exceeds 'max_peers' (2)"),
        ({"required_peers": -1}, "'required_peers' must be an integer from 0 to 64, got -1"),
        ({"max_peers": pv.MAX_PEER_COUNT + 1}, "'max_peers' must be an integer from 0 to 64"),
        ({"max_peers": True}, "'max_peers' must be an integer"),
        ({"required_peers": "2"}, "'required_peers' must be an integer"),
    ):
        net.refused_twice(PROV, "define_collection", {**base, **extra}, ErrorCode.BAD_ARGUMENTS,
                          words)  # fmt: skip


# -- the pure dissemination logic ------------------------------------------------------------
PEERS = {"n0": "org1", "n1": "org2", "n2": "org3", "n3": "org1", "n4": None}


def test_an_item_goes_only_to_peers_of_listed_organisations() -> None:
    assert pv.recipients(PEERS, ["org1", "org2"], "org1") == ["n0", "n1", "n3"]
    assert pv.recipients(PEERS, ["org2"], "org2") == ["n1"]


def test_a_node_outside_the_collection_sends_nothing_and_an_unknown_org_gets_nothing() -> None:
    assert pv.recipients(PEERS, ["org1", "org2"], "org3") == []
    assert pv.recipients(PEERS, ["org1"], "") == []
    assert "n4" not in pv.recipients(PEERS, ["org1", "org2", "org3"], "org1")
    assert not pv.may_hold(["org1"], None) and not pv.may_hold(["org1"], "")


def test_the_push_round_trips_and_refuses_what_is_malformed_or_oversize() -> None:
    push = pv.PrivatePush("tax", "case-1", H, bytes(32), b"value")
    assert pv.PrivatePush.decode(push.encode()) == push
    assert pv.item_hash(hashlib.sha256, b"value", bytes(32)) == H
    big = pv.PrivatePush("tax", "k", H, bytes(32), bytes(pv.MAX_ITEM_BYTES + 1)).encode()
    with pytest.raises(DecodeError):
        pv.PrivatePush.decode(big)
    for bad in (
        codec.encode(["pvt", "tax", "k", H, bytes(31), b"v"]),
        codec.encode(["pvt", "Tax!", "k", H, bytes(32), b"v"]),
        codec.encode(["pvt", "tax", "k", H[:5], bytes(32), b"v"]),
        codec.encode(["other"]),
        b"\xff",
    ):
        with pytest.raises(DecodeError):
            pv.PrivatePush.decode(bad)


def test_a_pull_names_one_value_and_is_told_from_a_push() -> None:
    pull = pv.PrivatePull("tax", "case-1", H)
    assert pv.decode_message(pull.encode()) == pull
    push = pv.PrivatePush("tax", "case-1", H, bytes(32), b"value")
    assert pv.decode_message(push.encode()) == push
    for bad in (
        codec.encode(["pvt-pull", "tax", "case-1", H[:31]]),
        codec.encode(["pvt-pull", "tax", "a/b", H]),
        codec.encode(["pvt-pull", "tax"]),
    ):
        with pytest.raises(DecodeError):
            pv.decode_message(bad)


def test_an_ack_round_trips_and_refuses_what_is_malformed() -> None:
    ack = pv.PrivateAck("tax", "case-1", H)
    assert ack.stored and pv.decode_message(ack.encode()) == ack
    refusal = pv.PrivateAck("tax", "case-1", H, "hash_mismatch")
    assert not refusal.stored and pv.decode_message(refusal.encode()) == refusal
    for bad in (
        codec.encode(["pvt-ack", "tax", "case-1", H, "maybe"]),  # no such result
        codec.encode(["pvt-ack", "tax", "case-1", H[:31], "stored"]),
        codec.encode(["pvt-ack", "Tax!", "case-1", H, "stored"]),
        codec.encode(["pvt-ack", "tax", "case-1", H]),
        codec.encode(["pvt-ack", "tax", "k" * 129, H, "stored"]),
    ):
        with pytest.raises(DecodeError):
            pv.decode_message(bad)


_NAMES = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
_KEYS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True)


@given(_NAMES, _KEYS, st.binary(min_size=32, max_size=32), st.sampled_from(pv.ACK_RESULTS))
@settings(max_examples=25, deadline=None)
def test_every_ack_round_trips_within_its_bound(name: str, key: str, digest: bytes,
                                               result: str) -> None:  # fmt: skip
    ack = pv.PrivateAck(name, key, digest, result)
    raw = ack.encode()
    assert len(raw) <= pv.MAX_ACK_BYTES and pv.decode_message(raw) == ack


@given(st.binary(max_size=600))
@settings(max_examples=200, deadline=None)
def test_bytes_decode_as_a_checked_message_or_are_refused(raw: bytes) -> None:
    try:
        msg = pv.decode_message(raw)
    except DecodeError:
        return
    assert msg.encode() == raw  # canonical CBOR: only the one encoding of a message decodes


@given(_KEYS, st.binary(min_size=32, max_size=32), st.sampled_from(pv.ACK_RESULTS),
       st.integers(0, 40), st.integers(0, 31), st.integers(0, 255))  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_a_changed_ack_is_refused_or_another_valid_ack(
    key: str, digest: bytes, result: str, where: int, cut: int, byte: int
) -> None:
    raw = bytearray(pv.PrivateAck("tax", key, digest, result).encode())
    raw[where % len(raw)] = byte
    for changed in (bytes(raw), bytes(raw[: len(raw) - 1 - cut % len(raw)])):
        try:
            msg = pv.decode_message(changed)
        except DecodeError:
            continue
        assert msg.encode() == changed


def test_required_acks_count_once_per_target_and_value() -> None:
    ack = pv.PrivateAck("tax", "k", H)
    assert pv.Dissemination("tax", "k", H, [], 0).state == pv.DONE  # none required
    assert pv.Dissemination("tax", "k", H, ["a"], 2).state == pv.FAILED  # cannot reach 2
    d = pv.Dissemination("tax", "k", H, ["a", "b", "c"], 2)
    assert d.state == pv.WAITING
    assert not d.ack("x", ack)  # not pushed to
    assert not d.ack("a", pv.PrivateAck("tax", "k2", H))  # another key
    assert not d.ack("a", pv.PrivateAck("tax", "k", bytes(32)))  # another value
    assert d.ack("a", ack) and not d.ack("a", ack) and d.acks == 1  # once
    assert d.ack("b", pv.PrivateAck("tax", "k", H, "full")) and d.state == pv.WAITING  # c left
    d.unreachable("a")  # already acknowledged: stays counted
    assert d.ack("c", ack) and (d.state, d.acks) == (pv.DONE, 2)
    d.timeout()
    assert d.state == pv.DONE  # settled states never change
    lost = pv.Dissemination("tax", "k", H, ["a", "b"], 2)
    lost.unreachable("b")
    assert lost.state == pv.FAILED and not lost.ack("a", ack)
    late = pv.Dissemination("tax", "k", H, ["a"], 1)
    late.timeout()
    assert late.state == pv.FAILED and not late.ack("a", ack)


def test_targets_prefer_other_organisations_round_robin_then_the_own() -> None:
    peers = {"a1": "org1", "a2": "org1", "b1": "org2", "b2": "org2", "c1": "org3", "d": None}
    orgs = ["org1", "org2", "org3"]
    assert pv.choose_targets(peers, orgs, "org1", 0) == ["b1", "c1", "b2", "a1", "a2"]
    assert pv.choose_targets(peers, orgs, "org1", 2) == ["b1", "c1"]
    assert pv.choose_targets(peers, orgs, "org3", 3) == ["a1", "b1", "a2"]
    assert pv.choose_targets(peers, ["org1"], "org1", 0) == ["a1", "a2"]
    assert pv.choose_targets(peers, orgs, "org9", 0) == []  # this node is not listed
    shuffled = pv.choose_targets(peers, orgs, "org1", 3, lambda xs: xs.reverse())
    assert sorted(shuffled) == ["b1", "b2", "c1"]


def test_peer_counts_are_checked_alike_everywhere() -> None:
    assert pv.check_peer_counts(0, 0) == (0, 0) and pv.check_peer_counts(5, 0) == (5, 0)
    assert pv.check_peer_counts(2, 2) == (2, 2)
    for required, most in ((3, 2), (-1, 0), (0, pv.MAX_PEER_COUNT + 1), (False, 0), (1.0, 0)):
        with pytest.raises(InvalidInput):
            pv.check_peer_counts(required, most)
    assert pv.peer_counts({"orgs": ["org1"]}) == (0, 0)
    assert pv.peer_counts({"required_peers": 1, "max_peers": 3}) == (1, 3)


def test_purge_heights_and_key_layout() -> None:
    assert pv.purge_height(10, 0) == 0 and pv.purge_height(10, 5) == 15
    assert pv.is_purged({"purge_height": 15}, 15) and not pv.is_purged({"purge_height": 15}, 14)
    assert not pv.is_purged({"purge_height": 0}, 10**9)
    k = pv.purge_key(7, "tax", "a:b", 3)
    assert pv.parse_purge_key(k) == (7, "tax", "a:b", 3)
    with pytest.raises(InvalidInput):
        pv.check_item_key("a/b")
