"""A node's private values without a network: who it pushes to, what it refuses from a peer
(and that a refused push is never stored), the bounded pending area, the purge (idempotent
across a reopen) and the sweep of values never anchored. The chain is a fake ``query``; the
switch a fake that records what it was asked to send."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from citychain.errors import ErrorCode, NotFound, Unavailable
from citychain.node.private_data import PrivateData, PrivateStore, value_key
from citychain.p2p import Switch
from citychain.types import Event, Receipt
from citychain.types import private_data as pv


@dataclass
class _Peer:
    name: str
    org_id: str | None
    connected: bool = True


class FakeSwitch:
    def __init__(self, peers: dict[str, str | None]) -> None:
        self._peers = [_Peer(n, o) for n, o in peers.items()]
        self.sent: list[tuple[str, int, bytes]] = []
        self.handlers: dict[int, Any] = {}

    def add_channel(self, channel: int, handler: Any) -> None:
        self.handlers[channel] = handler

    def peers(self) -> list[_Peer]:
        return self._peers

    def send(self, peer: str, channel: int, payload: bytes) -> bool:
        self.sent.append((peer, channel, payload))
        return True


class FakeChain:
    """The data contract's answers the node asks for."""

    def __init__(self) -> None:
        self.height = 10
        self.collections: dict[str, dict[str, Any]] = {}
        self.items: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        assert contract == "data"
        if method == "collection":
            if args["name"] not in self.collections:
                raise NotFound("no collection", ErrorCode.COLLECTION_NOT_FOUND)
            return self.collections[args["name"]]
        if method == "purge_due":
            due = [
                it
                for versions in self.items.values()
                for it in versions
                if args["after"] < it["purge_height"] <= args["through"]
            ]
            return {"items": due, "through": args["through"]}
        if method == "private_item":
            versions = self.items.get((args["collection"], args["key"]))
            if not versions:
                raise NotFound("no item", ErrorCode.RESOURCE_NOT_FOUND)
            n = args.get("version", len(versions))
            it = versions[n - 1]
            purged = it["purge_height"] != 0 and self.height >= it["purge_height"]
            return {**it, "latest": len(versions), "purged": purged}
        raise AssertionError(method)

    def anchor(self, push: pv.PrivatePush, purge_height: int) -> None:
        versions = self.items.setdefault((push.collection, push.key), [])
        versions.append(
            {"collection": push.collection, "key": push.key, "version": len(versions) + 1,
             "hash": push.hash, "purge_height": purge_height}
        )  # fmt: skip


PEERS: dict[str, str | None] = {"n1": "org2", "n2": "org3", "n3": "org1", "n4": None}


def _node(
    tmp: Path,
    chain: FakeChain,
    org: str = "org1",
    peers: dict[str, str | None] = PEERS,
    ack_timeout: float = 5.0,
) -> tuple[PrivateData, FakeSwitch]:
    node = PrivateData(
        tmp / f"private-{org}",
        org_id=org,
        hash_new=hashlib.sha256,
        query=chain.query,
        height=lambda: chain.height,
        registry=CollectorRegistry(),
        ack_timeout=ack_timeout,
    )
    switch = FakeSwitch(peers)
    node.attach(cast(Switch, switch))
    return node, switch


def _push(value: bytes = b"secret", key: str = "k", collection: str = "tax") -> pv.PrivatePush:
    salt = bytes(range(32))
    return pv.PrivatePush(collection, key, pv.item_hash(hashlib.sha256, value, salt), salt, value)


def _count(node: PrivateData, result: str) -> float:
    return node.m_pushes.labels("received", result)._value.get()


async def _until(cond: Callable[[], bool], timeout: float = 10) -> None:
    """Stores run in worker threads: wait for their outcome (busy test machines are slow)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
def chain() -> FakeChain:
    c = FakeChain()
    c.collections["tax"] = {"name": "tax", "orgs": ["org1", "org2"], "block_to_live": 5}
    return c


def test_a_taken_value_is_stored_and_pushed_only_to_listed_organisations(
    tmp_path: Path, chain: FakeChain
) -> None:
    node, switch = _node(tmp_path, chain)

    async def take() -> pv.Taken:
        return await node.take("tax", ["org1", "org2"], "k", b"secret")

    taken = asyncio.run(take())
    digest, salt = taken.hash, taken.salt
    assert digest == hashlib.sha256(b"secret" + salt).digest()
    assert (taken.pushed_to, taken.acks) == (2, 0)  # none required: nobody waited
    assert sorted(p for p, _, _ in switch.sent) == ["n1", "n3"]
    assert all(ch == pv.CH_PRIVATE for _, ch, _ in switch.sent)
    assert pv.PrivatePush.decode(switch.sent[0][2]).value == b"secret"
    assert asyncio.run(node.value("tax", "k", digest)) == b"secret"
    node.close()


def test_a_push_is_refused_unless_sender_and_receiver_are_listed_and_the_hash_holds(
    tmp_path: Path, chain: FakeChain
) -> None:
    async def run() -> None:
        node, switch = _node(tmp_path, chain)
        handler = switch.handlers[pv.CH_PRIVATE]
        handler("n2", _push().encode())  # org3 is not listed
        bad = _push()
        handler("n1", pv.PrivatePush(bad.collection, bad.key, bytes(32), bad.salt, b"x").encode())
        handler("n1", b"\x00garbage")
        await asyncio.sleep(0.05)
        assert node.store.count() == 0
        assert (_count(node, "sender_not_listed"), _count(node, "hash_mismatch")) == (1, 1)
        assert _count(node, "malformed") == 1
        handler("n1", _push().encode())
        await _until(lambda: _count(node, "stored") == 1)
        assert node.store.count() == 1
        node.close()

        outsider, sw3 = _node(tmp_path, chain, org="org3")
        sw3.handlers[pv.CH_PRIVATE]("n1", _push().encode())
        await asyncio.sleep(0.05)
        assert outsider.store.count() == 0 and _count(outsider, "node_not_listed") == 1
        outsider.close()

    asyncio.run(run())


def test_a_push_ahead_of_its_collection_waits_in_a_bounded_area(
    tmp_path: Path, chain: FakeChain
) -> None:
    async def run() -> None:
        node, switch = _node(tmp_path, chain)
        handler = switch.handlers[pv.CH_PRIVATE]
        for i in range(pv.MAX_PENDING_ITEMS + 5):
            handler("n1", _push(f"v{i}".encode(), key=f"k{i}", collection="later").encode())
        assert len(node._pending) == pv.MAX_PENDING_ITEMS
        chain.collections["later"] = {"name": "later", "orgs": ["org1", "org2"]}
        node.on_commit(11)
        await _until(lambda: _count(node, "stored") == pv.MAX_PENDING_ITEMS)
        assert node.store.count("later") == pv.MAX_PENDING_ITEMS and not node._pending
        node.close()

    asyncio.run(run())


def test_purge_deletes_due_values_once_and_survives_a_reopen(
    tmp_path: Path, chain: FakeChain
) -> None:
    node, _ = _node(tmp_path, chain)
    early, late = _push(b"a", key="a"), _push(b"b", key="b")
    for p in (early, late):
        node.store.put(p, chain.height)
    chain.anchor(early, purge_height=12)
    chain.anchor(late, purge_height=0)  # block_to_live 0: kept
    node.on_commit(11, [_put_receipt(early), _put_receipt(late)])
    assert node.store.unanchored == 0 and node.store.count() == 2
    node.on_commit(12)
    assert node.store.get("tax", "a", early.hash) is None
    assert node.store.get("tax", "b", late.hash) is not None
    assert node.store.purged_through() == 12
    node.close()
    store = PrivateStore(tmp_path / "private-org1")  # as after a restart
    assert store.purge([{"collection": "tax", "key": "a", "hash": early.hash}], 12) == 0
    assert store.count() == 1
    store.close()


def test_a_value_never_anchored_is_swept_after_its_time(tmp_path: Path, chain: FakeChain) -> None:
    node, _ = _node(tmp_path, chain)
    orphan, anchored, late = _push(b"o", key="o"), _push(b"x", key="x"), _push(b"l", key="l")
    for p in (orphan, anchored, late):
        node.store.put(p, 10)
    chain.anchor(anchored, purge_height=0)  # its event was lost (a crash): the chain says so
    chain.anchor(late, purge_height=20)  # arrived after its purge ran
    node.store.purge([], 25)  # the purge of height 20 ran before `late` arrived
    chain.height = 10 + pv.UNANCHORED_TTL_BLOCKS + 1
    node.on_commit(chain.height)
    assert node.store.get("tax", "o", orphan.hash) is None
    assert node.store.get("tax", "l", late.hash) is None
    assert node.store.get("tax", "x", anchored.hash) is not None
    assert node.store.unanchored == 0
    node.close()


def _put_receipt(p: pv.PrivatePush) -> Receipt:
    attrs = {"collection": p.collection, "key": p.key, "version": 1, "hash": p.hash}
    event = Event("data", "private_put", {**attrs, "purge_height": 0})
    return Receipt(b"", "ok", "", 0, None, (event,))


def test_value_keys_name_collection_key_and_hash() -> None:
    assert value_key("tax", "k", b"\x01" * 32) == b"tax\0k\0" + b"\x01" * 32


def test_a_listed_node_that_missed_a_value_pulls_it_from_a_listed_peer(
    tmp_path: Path, chain: FakeChain
) -> None:
    async def run() -> None:
        holder, hsw = _node(tmp_path, chain, org="org1")
        missed, msw = _node(tmp_path, chain, org="org2")
        p = _push(b"missed", key="m")
        holder.store.put(p, chain.height)
        chain.anchor(p, purge_height=0)
        missed.on_commit(11, [_put_receipt(p)])  # the commit arrives, the push never did
        assert msw.sent == []  # asked only PULL_DELAY_BLOCKS later: the push may be in flight
        missed.on_commit(11 + pv.PULL_DELAY_BLOCKS)
        asked = sorted(peer for peer, _, _ in msw.sent)
        assert asked == ["n1", "n3"]  # the listed organisations' peers, never org3's n2
        pull = pv.decode_message(msw.sent[0][2])
        assert pull == pv.PrivatePull("tax", "m", p.hash)

        hsw.handlers[pv.CH_PRIVATE]("n2", pull.encode())  # org3's node asking: refused
        assert hsw.sent == [] and _count(holder, "pull_refused") == 1
        hsw.handlers[pv.CH_PRIVATE]("n1", pull.encode())  # org2's node asking: answered
        ((to, _, answer),) = hsw.sent
        assert to == "n1" and _count(holder, "pull_answered") == 1

        msw.handlers[pv.CH_PRIVATE]("n3", answer)  # the answer, from org1's node
        await _until(lambda: _count(missed, "stored") == 1)
        assert await missed.value("tax", "m", p.hash) == b"missed"
        msw.handlers[pv.CH_PRIVATE]("n1", answer)  # a second asked peer answers too
        await _until(lambda: _count(missed, "duplicate") == 1)
        # Answers are not acknowledged: no take waits on them, and the answering nodes would
        # count the acks as matching none (their ack_unmatched would look like a fault).
        sent = [pv.decode_message(payload) for _, _, payload in msw.sent]
        assert all(isinstance(m, pv.PrivatePull) for m in sent), sent
        missed.on_commit(11 + pv.PULL_DELAY_BLOCKS + pv.PULL_RETRY_BLOCKS)
        assert not missed._wanted
        holder.close()
        missed.close()

    asyncio.run(run())


def test_a_missed_value_is_still_asked_for_after_a_restart(
    tmp_path: Path, chain: FakeChain
) -> None:
    """The wanted values are kept in the store: a node that restarts between the commit that
    anchored a value it missed and the time to ask goes on asking, and stops once it has it."""

    async def run() -> None:
        missed, _ = _node(tmp_path, chain, org="org2")
        p = _push(b"missed", key="m")
        chain.anchor(p, purge_height=0)
        missed.on_commit(11, [_put_receipt(p)])
        assert list(missed._wanted) == [value_key("tax", "m", p.hash)]
        missed.close()  # a restart before the pull was due

        again, sw = _node(tmp_path, chain, org="org2")
        assert list(again._wanted) == [value_key("tax", "m", p.hash)]
        again.on_commit(11 + pv.PULL_DELAY_BLOCKS)
        assert sorted(peer for peer, _, _ in sw.sent) == ["n1", "n3"]
        assert again._wanted[value_key("tax", "m", p.hash)].tries == 1
        again.store.put(p, chain.height)  # the answer came
        again.on_commit(11 + pv.PULL_DELAY_BLOCKS + pv.PULL_RETRY_BLOCKS)
        assert not again._wanted
        again.close()
        third, _ = _node(tmp_path, chain, org="org2")  # and it is not asked again
        assert not third._wanted
        third.close()

    asyncio.run(run())


# -- required_peers / max_peers: acknowledgements ---------------------------------------------
def _pushed(switch: FakeSwitch) -> list[tuple[str, pv.PrivatePush]]:
    out = []
    for peer, _, payload in switch.sent:
        msg = pv.decode_message(payload)
        if isinstance(msg, pv.PrivatePush):
            out.append((peer, msg))
    return out


def _acks_received(node: PrivateData) -> tuple[float, float, float]:
    return (_count(node, "ack"), _count(node, "ack_refusal"), _count(node, "ack_unmatched"))


def test_a_take_counts_only_acks_of_its_targets_for_its_value(
    tmp_path: Path, chain: FakeChain
) -> None:
    async def run() -> None:
        node, switch = _node(tmp_path, chain)
        handler = switch.handlers[pv.CH_PRIVATE]
        task = asyncio.create_task(
            node.take("tax", ["org1", "org2"], "k", b"secret", required_peers=2)
        )
        await _until(lambda: len(switch.sent) == 2)
        pushed = _pushed(switch)
        assert [p for p, _ in pushed] == ["n1", "n3"]  # another organisation's peer first
        push = pushed[0][1]
        ack = pv.PrivateAck("tax", "k", push.hash)
        handler("n2", ack.encode())  # org3's node: not listed, not pushed to
        handler("n4", ack.encode())  # a peer of no known organisation
        handler("n1", pv.PrivateAck("tax", "other", push.hash).encode())  # another key
        handler("n1", pv.PrivateAck("tax", "k", bytes(32)).encode())  # another value
        handler("n1", ack.encode())  # counted
        handler("n1", ack.encode())  # a second answer: not counted again
        await asyncio.sleep(0.05)
        assert not task.done() and _acks_received(node) == (1, 0, 5)
        handler("n3", ack.encode())
        taken = await asyncio.wait_for(task, 2)
        assert (taken.hash, taken.pushed_to, taken.acks) == (push.hash, 2, 2)
        assert not node._waiting
        handler("n3", ack.encode())  # late: nobody waits for it any more
        assert _acks_received(node) == (2, 0, 6)
        node.close()

    asyncio.run(run())


def test_a_take_fails_with_its_code_when_too_few_peers_acknowledge(
    tmp_path: Path, chain: FakeChain
) -> None:
    async def run() -> None:
        # Only one listed peer is connected, two required: refused at once, pushed to none.
        lonely, sw = _node(tmp_path, chain, peers={"n1": "org2", "n2": "org3"})
        with pytest.raises(Unavailable) as at_once:
            await lonely.take("tax", ["org1", "org2"], "a", b"v", required_peers=2)
        assert at_once.value.code == ErrorCode.DISSEMINATION_FAILED
        assert "requires 2 peer(s)" in at_once.value.message
        assert "only 1 peer(s)" in at_once.value.message and sw.sent == []
        assert lonely.store.count() == 1 and lonely.store.unanchored == 1  # local, unanchored
        lonely.close()

        # Two pushed to, one acknowledges, the other never answers: refused at the timeout.
        node, switch = _node(tmp_path, chain, org="org2", ack_timeout=0.3)
        handler = switch.handlers[pv.CH_PRIVATE]
        task = asyncio.create_task(node.take("tax", ["org1", "org2"], "b", b"v", required_peers=2))
        await _until(lambda: len(switch.sent) == 2)
        ((_, push), _) = _pushed(switch)
        handler("n1", pv.PrivateAck("tax", "b", push.hash).encode())
        with pytest.raises(Unavailable) as timed_out:
            await task
        assert timed_out.value.code == ErrorCode.DISSEMINATION_FAILED
        assert "1 of the 2 peer(s) it was pushed to acknowledged it" in timed_out.value.message
        assert not node._waiting

        # A refusal (the peer's store is full) settles it at once, long before the timeout.
        node.ack_timeout = 30
        switch.sent.clear()
        task = asyncio.create_task(node.take("tax", ["org1", "org2"], "c", b"v", required_peers=2))
        await _until(lambda: len(switch.sent) == 2)
        ((_, push), _) = _pushed(switch)
        handler("n3", pv.PrivateAck("tax", "c", push.hash, "full").encode())
        with pytest.raises(Unavailable) as refused:
            await asyncio.wait_for(task, 2)
        assert "0 of the 2 peer(s)" in refused.value.message
        assert _acks_received(node)[1] == 1
        node.close()

    asyncio.run(run())


def test_max_peers_limits_the_pushes_and_prefers_other_organisations(
    tmp_path: Path, chain: FakeChain
) -> None:
    chain.collections["wide"] = {"name": "wide", "orgs": ["org1", "org2", "org3"]}
    wide = {"a1": "org1", "a2": "org1", "b1": "org2", "b2": "org2", "c1": "org3", "x": "org4"}
    orgs = ["org1", "org2", "org3"]

    async def run() -> None:
        node, switch = _node(tmp_path, chain, peers=wide)
        for most, expect in ((2, {"org2", "org3"}), (3, {"org2", "org3"}), (0, None)):
            switch.sent.clear()
            taken = await node.take("wide", orgs, f"k{most}", b"v", max_peers=most)
            to = [p for p, _ in _pushed(switch)]
            assert taken.pushed_to == len(to) == (most or 5)
            if expect is not None:  # other organisations first, one of each before a second
                assert {wide[p] for p in to} == expect and "c1" in to
            assert "x" not in to
        node.close()

    asyncio.run(run())


def test_a_receiver_acknowledges_only_after_storing_and_names_its_refusals(
    tmp_path: Path, chain: FakeChain
) -> None:
    async def run() -> None:
        node, switch = _node(tmp_path, chain, org="org2")
        handler = switch.handlers[pv.CH_PRIVATE]
        good = _push()
        handler("n3", good.encode())  # org1's node pushes
        await _until(lambda: len(switch.sent) == 1)
        assert node.store.has("tax", "k", good.hash)  # stored before it said so
        ((to, _, raw),) = switch.sent
        assert to == "n3" and pv.decode_message(raw) == pv.PrivateAck("tax", "k", good.hash)
        handler("n3", good.encode())  # again: already held, acknowledged again
        handler("n2", _push(b"o", key="o").encode())  # org3's node: refused
        bad = _push(key="h")
        handler("n3", pv.PrivatePush("tax", "h", bytes(32), bad.salt, bad.value).encode())
        handler("n3", b"\x00garbage")  # malformed: no answer (it names nothing)
        handler("n3", _push(collection="later").encode())  # held back: no answer yet
        answers = [(p, pv.decode_message(r)) for p, _, r in switch.sent[1:]]
        assert answers == [
            ("n3", pv.PrivateAck("tax", "k", good.hash, "stored")),
            ("n2", pv.PrivateAck("tax", "o", _push(b"o", key="o").hash, "not_listed")),
            ("n3", pv.PrivateAck("tax", "h", bytes(32), "hash_mismatch")),
        ]
        node.close()

    asyncio.run(run())
