"""Private data collections on four validators of three organisations (real processes, mutual
TLS): a value put through a node of org1 reaches the nodes of org1 and org2, the collection's
organisations, and never org3's node (nothing in its private store, nothing on its p2p
channel); org1's other node, down at the push, pulls it from a listed peer once it has
caught up; only a listed organisation's member reads it (signed); a hash with no value held
is not admitted; after ``block_to_live`` blocks every member node has purged it, while its
hash stays on chain. Peer counts (Fabric's requiredPeerCount): a collection requiring one
acknowledgement takes a value once org2's node has stored it; one requiring more than the
listed nodes that are up is refused (``dissemination_failed``) and nothing is anchored."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from netproc import FAST_PARAMS, IDLE_BLOCK_MS, LocalNet  # type: ignore[import-not-found]

from citychain.errors import CitychainError, ErrorCode
from citychain.node.private_data import PrivateStore
from citychain.sdk import Client
from citychain.services.data.sdk import DATA_GAS_LIMIT

pytestmark = pytest.mark.slow

BTL = 25  # blocks a value lives after its put_private (the restarted node must catch up first)
T = TypeVar("T")
#: What a read answers while the value is on its way (or the restarted node syncs blocks).
CATCHING_UP = (
    ErrorCode.PRIVATE_MISSING,
    ErrorCode.UNAVAILABLE,
    ErrorCode.COLLECTION_NOT_FOUND,
    ErrorCode.RESOURCE_NOT_FOUND,
)


def _until(what: str, fn: Callable[[], T | None], timeout: float = 20) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _pushes(net: LocalNet, i: int, direction: str) -> dict[str, float]:
    text = httpx.get(f"{net.api(i)}/metrics", timeout=5).text
    pattern = rf'citychain_private_pushes_total{{direction="{direction}",result="(\w+)"}} (\S+)'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text)}


def _purged(net: LocalNet, i: int) -> float:
    text = httpx.get(f"{net.api(i)}/metrics", timeout=5).text
    m = re.search(r"^citychain_private_purged_total (\S+)$", text, re.M)
    return float(m[1]) if m else 0.0


def test_a_private_value_reaches_only_its_organisations_nodes_and_is_purged(
    tmp_path: Path,
) -> None:
    with LocalNet(
        tmp_path, orgs=3, params=FAST_PARAMS, empty_blocks_interval_ms=IDLE_BLOCK_MS
    ) as net:
        orgs = [n.org for n in net.layout.nodes]
        members = [i for i, o in enumerate(orgs) if o in ("org1", "org2")]
        (outsider,) = [i for i, o in enumerate(orgs) if o == "org3"]
        entry, late = [i for i in members if orgs[i] == "org1"]  # late: down at the push
        assert len(members) == 3, orgs
        net.start_many(i for i in range(net.size) if i != late)
        org1, org2, org3 = (net.signer(f"org{k}-admin") for k in (1, 2, 3))
        value = b"tax case 2027-0042: assessment 18,250.00 CNY \x00\xff" * 40

        (org2_node,) = [i for i in members if orgs[i] == "org2"]
        with Client(net.api(entry)) as c:
            # -- peer counts first (before `tax`'s put, so its purge timing is untouched) -----
            assert c.data.define_collection(org1, "safe", ["org1", "org2"], required_peers=1)
            safe = c.data.put_private(org1, "safe", "s-1", b"kept twice")
            assert safe["acks"] == safe["pushed_to"] == 1  # org2's node stored it, then said so
            # Three listed peers required; the other listed nodes are two, and one of them is
            # down: refused at once, and the SDK sent no put_private for the value.
            c.data.define_collection(org1, "strict", ["org1", "org2"], required_peers=3)
            with pytest.raises(CitychainError) as strict:
                c.data.put_private(org1, "strict", "s-1", b"on one disk only")
            assert strict.value.code == ErrorCode.DISSEMINATION_FAILED, strict.value
            assert "requires 3 peer(s)" in strict.value.message
            with pytest.raises(CitychainError) as unanchored:
                c.data.private_item("strict", "s-1")
            assert unanchored.value.code == ErrorCode.RESOURCE_NOT_FOUND

            assert c.data.define_collection(org1, "tax", ["org1", "org2"], block_to_live=BTL)
            assert c.data.collection("tax")["orgs"] == ["org1", "org2"]
            put = c.data.put_private(org1, "tax", "case-42", value)
            assert put["version"] == 1 and put["pushed_to"] == 1  # org2's node; `late` is down
            meta = c.data.private_item("tax", "case-42")
            assert meta["hash"] == put["hash"] and meta["size"] == len(value)
            assert meta["purge_height"] == put["purge_height"] == meta["height"] + BTL

        # -- every member node holds it, read by a member of either listed organisation; the node
        # that was down pulls it from a listed peer when it sees the committed put_private ----
        net.start(late, wait=False)
        for i in members:
            with Client(net.api(i)) as c:

                def read(c: Client = c) -> bytes | None:
                    try:
                        return c.data.get_private(org2, "tax", "case-42")
                    except CitychainError as exc:  # not arrived, or `late` still catching up
                        assert exc.code in CATCHING_UP, exc
                        return None

                assert _until(f"the value on node {i}", read, timeout=40) == value
                assert c.data.get_private(org1, "tax", "case-42") == value

        # -- refusals: org3's member, unsigned, and org3's node itself -----------------------
        with Client(net.api(entry)) as c:
            with pytest.raises(CitychainError) as outside:
                c.data.get_private(org3, "tax", "case-42")
            assert outside.value.code == ErrorCode.NOT_IN_COLLECTION
            assert "org3" in outside.value.message
            with pytest.raises(CitychainError) as put_outside:
                c.data.put_private(org3, "tax", "case-43", b"x")
            assert put_outside.value.code == ErrorCode.NOT_IN_COLLECTION
            bare = {"collection": "tax", "key": "case-44", "hash": bytes(32), "size": 1}
            with pytest.raises(CitychainError) as no_value:  # a hash with no value held here
                c.send(org1, "data", "put_private", bare, gas_limit=DATA_GAS_LIMIT)
            assert no_value.value.code == ErrorCode.PRIVATE_MISSING
        unsigned = httpx.get(f"{net.api(entry)}/v1/data/collections/tax/items/case-42")
        assert unsigned.status_code == 401
        forbidden = httpx.get(f"{net.api(entry)}/v1/data/collections/tax/items/case-42/meta")
        assert forbidden.status_code == 200 and "value" not in forbidden.json()["result"]
        with Client(net.api(outsider)) as c:
            with pytest.raises(CitychainError) as not_here:
                c.data.get_private(org1, "tax", "case-42")
            assert not_here.value.code == ErrorCode.NOT_IN_COLLECTION
            assert "this node's organisation (org3)" in not_here.value.message

        # -- org3's node was never sent it: no push arrived on its p2p channel ---------------
        received = _pushes(net, outsider, "received")
        assert "stored" in received and sum(received.values()) == 0, received
        assert "private value tax/" not in net.log(outsider)
        assert _pushes(net, outsider, "sent").get("queued", 0) == 0
        assert _pushes(net, entry, "received").get("stored", 0) == 0
        assert _pushes(net, org2_node, "received")["stored"] == 2  # safe's value and tax's
        assert _pushes(net, late, "received")["stored"] >= 1  # it may pull safe's too
        assert _pushes(net, org2_node, "sent")["ack"] >= 2
        assert _pushes(net, entry, "received")["ack"] >= 1
        assert _pushes(net, late, "sent")["pull"] >= 1
        answered = [_pushes(net, i, "received")["pull_answered"] for i in members if i != late]
        assert sum(answered) >= 1

        # -- purge: after block_to_live blocks every member node deletes it ------------------
        net.wait_height(put["purge_height"] + 1, timeout=30)
        for i in members:
            _until(f"the purge on node {i}", lambda i=i: _purged(net, i) >= 1 or None)
            with Client(net.api(i)) as c:
                with pytest.raises(CitychainError) as gone:
                    c.data.get_private(org1, "tax", "case-42")
                assert gone.value.code == ErrorCode.PRIVATE_PURGED
                item = c.data.private_item("tax", "case-42")
                assert item["purged"] and item["hash"] == put["hash"]  # the hash stays
        r = httpx.get(f"{net.api(entry)}/v1/data/collections/tax/items/case-42/meta")
        assert r.json()["result"]["purged"] is True

        # -- the stores themselves: empty on the members now, never written on org3's -----
        net.stop_many((*members, outsider))
        for i in (*members, outsider):
            store = PrivateStore(net.layout.nodes[i].home / "data" / "private")
            try:
                assert store.count("tax") == 0, f"node {i} still holds private values"
                assert store.purged_through() >= put["purge_height"]
                # the refused value: on the node that took it only, unanchored (swept later)
                assert store.count("strict") == (1 if i == entry else 0)
                if i != late:  # block_to_live 0: kept (`late` may or may not have pulled it)
                    assert store.count("safe") == (0 if i == outsider else 1)
            finally:
                store.close()
        outsider_files = (net.layout.nodes[outsider].home / "data").rglob("*")
        assert not any(value[:32] in p.read_bytes() for p in outsider_files if p.is_file())
