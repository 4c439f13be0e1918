"""The BFT fault tests on a GM network (issue 13): four validators of two organisations on the
``sm2-sm3`` suite (SM2 signatures, SM3 hashes), as ``citychain net up --crypto sm2`` makes.

The same faults as the Ed25519 tests (``test_e2e_bft.py``, ``test_e2e_faults.py``, whose
helpers this module reuses; ``byzantine.py`` signs with the node's own key, so SM2 here, and
the proxy relays bytes: neither needed a change), on ONE network, in order, in ONE test
function: the steps share the network to keep the suite's wall time (xdist may send tests of
one module to different workers, so steps that build on each other cannot be separate tests).
Every link runs through :class:`faultproxy.FaultProxy`.

1. kill -9 of node1 under a transfer load (:class:`test_e2e_bft.Load`, SM2-signed): the other
   three keep committing, the node restarts at least where it was and catches up; the load
   then ends and every transfer (every nonce it sent, so every one any node admitted) is in
   the chain exactly once.
2. A 2|2 partition: no node commits while cut; healed, every node advances and the transfer
   sent while cut commits once everywhere.
3. Two outsiders, running since the start and dialled by every validator: one with a
   certificate from a CA genesis does not list, one with an expired certificate. Both are
   refused in plain words ("wrong CA", "expired") in the logs of both sides.
4. node3 restarts as the test-only double signer (``byzantine.py``; it signs with its SM2 key
   and bypasses its guard): the honest three agree, and its duplicate-vote evidence is
   committed and checks with SM2 (the suite's verify and, independently, GmSSL's) and SM3
   (its hash).

At the end the honest three (the restarted node1 among them) hold the same blocks at every
height, each one's hash SM3 of its header as GmSSL computes it, and prove the same balances
with SM2-signed commits (the SDK's light client, anchored on genesis).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gmssl_pyx as gmssl
import pytest
from byzantine import start_as_double_signer  # type: ignore[import-not-found]
from netproc import (  # type: ignore[import-not-found]
    FAST_PARAMS,
    IDLE_BLOCK_MS,
    LocalNet,
)
from ports import free_base_port  # type: ignore[import-not-found]
from test_e2e_bft import (  # type: ignore[import-not-found]
    WINDOW,
    Load,
    Observer,
    fetch_blocks,
    tx_places,
)
from test_e2e_faults import (  # type: ignore[import-not-found]
    check_evidence,
    check_outsiders_refused,
    committed_at,
    everyone_but,
    explained,
    heights,
    make_outsider,
    poll,
    transfer,
    tx_status,
    wait_frozen,
    wait_links,
)

from citychain.crypto import SM2_SM3, Signer
from citychain.crypto.sm2 import Sm2Suite
from citychain.node.config import NodeConfig
from citychain.node.processes import spawn_node, stop_processes
from citychain.node.testnet import PORT_STRIDE, NetNode
from citychain.p2p.certs import (
    NodeKey,
    decrypt_key_pem,
    encrypt_key_pem,
    generate_org_ca,
    issue_node_cert,
)
from citychain.sdk import Client
from citychain.services.token.shapes import balance_key
from citychain.types import Vote, VoteType
from citychain.types.genesis import Genesis, Organisation

pytestmark = pytest.mark.slow

#: The validator killed with SIGKILL in step 1, and the one that double-signs in step 4.
VICTIM, BYZ = 1, 3
HONEST = [0, 1, 2]
#: A halted chain shows no new height on any node for this long (step 2).
HALT_S = 3.0
#: The e2e tests' short timeouts, with half their wait for a proposal: a height whose
#: proposer is down (step 1) or double-signing (step 4) moves to its next round sooner.
GM_PARAMS = dataclasses.replace(FAST_PARAMS, timeout_propose_ms=500)


def test_gm_network_survives_kill9_partition_double_signer_and_refuses_bad_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalNet(
        tmp_path,
        validators=4,
        orgs=2,
        proxy=True,
        params=GM_PARAMS,
        empty_blocks_interval_ms=IDLE_BLOCK_MS,
        suite=SM2_SM3,
    ) as net:
        genesis = Genesis.load(net.layout.genesis_file)
        assert genesis.crypto_suite == "sm2-sm3" and len(genesis.validators) == 4
        assert {n.org for n in net.layout.nodes} == {"org1", "org2"}
        outsiders = make_outsiders(net, tmp_path / "outsiders", genesis)
        extra = [(o.name, o.log_file, o.api_url) for o in outsiders]
        net.start_all()
        procs = [spawn_node(o) for o in outsiders]
        try:
            with explained(net, extra):
                net.wait_height(2, timeout=60)
                wait_links(net, {i: everyone_but(net, i) for i in range(4)})
                t0 = time.monotonic()
                sink, sent = kill9_under_load(net, genesis)
                t1 = time.monotonic()
                partition_2_2(net)
                t2 = time.monotonic()
                refused_certificates(net, outsiders)
                t3 = time.monotonic()
                double_signer(net, monkeypatch, genesis)
                t4 = time.monotonic()
                same_sm3_chain(net, genesis, HONEST, sink, sent)
                print(
                    f"kill -9 {t1 - t0:.1f} s, partition {t2 - t1:.1f} s, certificates "
                    f"{t3 - t2:.1f} s, double signer {t4 - t3:.1f} s, chain check "
                    f"{time.monotonic() - t4:.1f} s"
                )
        finally:
            stop_processes(procs, grace=5.0)


# -- 1. kill -9 under load -----------------------------------------------------------------------
def kill9_under_load(net: LocalNet, genesis: Genesis) -> tuple[bytes, int]:
    """Step 1; the load's sink address and how many transfers reached it."""
    alice, bob = net.signer("alice"), net.signer("bob")
    assert alice.suite.name == bob.suite.name == "sm2-sm3"
    sink = Signer.generate(genesis.suite).address
    others = [i for i in range(4) if i != VICTIM]
    # alice and bob (genesis members, nonce 0) send 1 each to a new address, unbounded for now.
    load = Load(net, genesis.chain_id, [alice, bob], sink)
    observer = Observer(net, VICTIM)
    observer.start()
    load.start()
    try:
        poll(
            "transfers committing and node1's blocks recorded",
            lambda: sum(load.committed) > 30 and bool(observer.snapshot()[0]),
            30,
        )
        net.kill(VICTIM)
        load.down.add(VICTIM)
        observer.stop_flag.set()
        observer.join(5)
        before, _ = observer.snapshot()

        # The three keep committing, transfers included.
        base = max(heights(net, others).values())
        committed = sum(load.committed)
        net.wait_height(base + 3, others, timeout=30)
        poll(
            "transfers committed while node1 is down",
            lambda: sum(load.committed) > committed + 50,
            30,
        )
        # The load now ends (while node1 restarts): no nonce at or past `total` was ever sent
        # (a sender keeps at most WINDOW past its committed nonce), and it stops once both
        # senders' committed nonces reach it.
        load.total = max(load.committed) + WINDOW

        net.start(VICTIM)
        h = net.height(VICTIM)
        assert h is not None and h >= max(before), f"node1 restarted at {h}, below {max(before)}"
        net.wait_height(max(heights(net, others).values()), [VICTIM], timeout=60)
        load.down.discard(VICTIM)
        load.join(60)
        assert not load.is_alive(), f"load not done in 60 s; committed nonces {load.committed}"
    finally:
        load.stop_flag.set()
        load.join(10)
        observer.stop_flag.set()
    assert load.error is None, repr(load.error)
    assert not load.odd, load.odd[:10]

    # Every node has the blocks node1 reported before it was killed, and every transfer (so
    # every one admitted) exactly once.
    top = max(heights(net, range(4)).values())
    net.wait_height(top, timeout=30)
    with ThreadPoolExecutor(4) as pool:
        chains = list(pool.map(lambda i: fetch_blocks(net, i, top), range(4)))
    for h in range(top):
        assert len({c[h]["hash"] for c in chains}) == 1, f"fork at height {h + 1}"
    for h, (block_hash, state_root, hashes) in before.items():
        b = chains[0][h - 1]
        assert (b["hash"], b["header"]["state_root"]) == (block_hash, state_root), h
        assert [t["hash"] for t in b["txs"]] == hashes, h
    places = tx_places(chains[0])
    total = load.total
    sent = {load.tx(s, n).hash.hex() for s in range(2) for n in range(total)}
    assert set(load.accepted) <= sent
    for tx_hash in sent:
        assert len(places.get(tx_hash, [])) == 1, f"{tx_hash} at {places.get(tx_hash)}"
    print(f"kill -9: {2 * total} transfers, {load.rewinds} re-sent, chain at {top}")
    return sink, 2 * total


# -- 2. partition 2|2 ----------------------------------------------------------------------------
def partition_2_2(net: LocalNet) -> None:
    assert net.proxy is not None
    net.proxy.partition([{0, 1}, {2, 3}])
    wait_links(net, {0: {"node1"}, 1: {"node0"}, 2: {"node3"}, 3: {"node2"}})
    tx = transfer(net, 0, 7)
    frozen = wait_frozen(net, [0, 1, 2, 3], hold=HALT_S, timeout=30)
    assert max(frozen.values()) - min(frozen.values()) <= 1, frozen
    assert all(committed_at(net, i, tx) is None for i in range(4))
    assert tx_status(net, 0, tx)["status"] == "pending"

    net.proxy.heal()
    wait_links(net, {i: everyone_but(net, i) for i in range(4)})
    net.wait_height(max(frozen.values()) + 3, timeout=60)
    at = poll("the transfer sent while cut to commit", lambda: committed_at(net, 0, tx), 30)
    assert at > min(frozen.values())
    net.wait_height(at, timeout=30)
    assert all(committed_at(net, i, tx) == at for i in range(4))


# -- 3. refused certificates ---------------------------------------------------------------------
def make_outsiders(net: LocalNet, root: Path, genesis: Genesis) -> list[NetNode]:
    """node4 (a certificate from a CA genesis does not list) and node5 (issued by org1's CA,
    expired yesterday), SM2 node keys both; every validator dials them too.

    Where the network's organisations also have SM2 CAs (``orgs/<org>/gm_ca_cert.pem``: GM
    nodes then authenticate by SM2 node certificates as well), each outsider gets one too, from
    a rogue SM2 CA (named in node4's own genesis) and from org1's: the TLS certificate is what
    is refused, so neither outsider fails for a missing SM2 one first."""
    layout = net.layout
    org1 = layout.orgs[0]
    org1_ca = (
        org1.ca_cert_file.read_bytes(),
        decrypt_key_pem(org1.ca_key_file.read_bytes(), net.passphrase),
    )
    base = free_base_port(2)
    rogue_ca = generate_org_ca("rogue", "Rogue Organisation")
    rogue_org = Organisation(
        "rogue",
        "Rogue Organisation",
        rogue_ca[0].decode(),
        admins=(Signer.generate(genesis.suite).public_key,),
    )
    org1_gm_ca = org1.ca_cert_file.with_name("gm_ca_cert.pem")
    gm_cas: dict[str, tuple[bytes, bytes]] = {}
    if org1_gm_ca.exists():
        from citychain.crypto.sm2_certs import issue_sm2_ca, sm2_secret_from_pem

        suite = genesis.suite
        assert isinstance(suite, Sm2Suite)
        rogue_secret = Signer.generate(SM2_SM3).secret
        gm_cas["rogue"] = (
            issue_sm2_ca("rogue", "Rogue Organisation", rogue_secret, distid=suite.distid),
            rogue_secret,
        )
        gm_key = org1_gm_ca.with_name("gm_ca_key.pem").read_bytes()
        gm_cas[org1.id] = (org1_gm_ca.read_bytes(), sm2_secret_from_pem(gm_key, net.passphrase))
        rogue_org = dataclasses.replace(rogue_org, gm_ca_cert=gm_cas["rogue"][0].decode())
    wrong_ca = make_outsider(
        net,
        root,
        "node4",
        "rogue",
        base,
        issue_node_cert(*rogue_ca, "node4", layout.chain_id, "rogue"),
        # Its own genesis lists the rogue CA (else it would not start with a certificate no
        # peer accepts).
        dataclasses.replace(genesis, organisations=(*genesis.organisations, rogue_org)),
    )
    now = datetime.now(UTC)
    expired = make_outsider(
        net,
        root,
        "node5",
        org1.id,
        base + PORT_STRIDE,
        issue_node_cert(
            *org1_ca,
            "node5",
            layout.chain_id,
            org1.id,
            not_before=now - timedelta(days=30),
            not_after=now - timedelta(days=1),
        ),
        genesis,
    )
    outsiders = [wrong_ca, expired]
    # Their TLS certificates again, naming their SM2 node keys as every generated node's does
    # (make_outsider makes the key, so the first ones could not).
    for o, ca, validity in (
        (wrong_ca, rogue_ca, {}),
        (
            expired,
            org1_ca,
            {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)},
        ),
    ):
        cert, tls_key = issue_node_cert(
            *ca,
            o.name,
            layout.chain_id,
            o.org,
            node_key=NodeKey(genesis.crypto_suite, bytes.fromhex(o.validator_public_key)),
            **validity,
        )
        p2p = NodeConfig.load(o.home).p2p
        (o.home / p2p.cert_file).write_bytes(cert)
        (o.home / p2p.tls_key_file).write_bytes(encrypt_key_pem(tls_key, net.passphrase))
    if gm_cas:
        from citychain.crypto.sm2_certs import issue_sm2_node_cert

        for o in outsiders:
            ca_pem, ca_secret = gm_cas[o.org]
            pem = issue_sm2_node_cert(
                ca_pem,
                ca_secret,
                bytes.fromhex(o.validator_public_key),
                node_name=o.name,
                chain_id=layout.chain_id,
                org_id=o.org,
                distid=suite.distid,
            )
            (o.home / NodeConfig.load(o.home).p2p.gm_cert_file).write_bytes(pem)
    more = ",".join(f"{o.name}@127.0.0.1:{o.p2p_port}" for o in outsiders)
    for i in range(4):
        peers = NodeConfig.load(layout.nodes[i].home).p2p.persistent_peers
        net.configure(i, "p2p", persistent_peers=f"{peers},{more}")
    return outsiders


def refused_certificates(net: LocalNet, outsiders: list[NetNode]) -> None:
    """Step 3: the same plain words as on an Ed25519 network, on both sides."""
    check_outsiders_refused(net, outsiders)


# -- 4. a double-signing validator ---------------------------------------------------------------
def double_signer(net: LocalNet, monkeypatch: pytest.MonkeyPatch, genesis: Genesis) -> None:
    byz_key = net.layout.nodes[BYZ].validator_public_key
    assert len(bytes.fromhex(byz_key)) == 65  # an SM2 point
    net.kill(BYZ)  # (a clean stop takes longer, and restarting after a crash is step 1's)
    start_as_double_signer(monkeypatch, net.layout.nodes[BYZ].home)
    net.start(BYZ)
    assert "BYZANTINE TEST MODE" in net.log(BYZ)

    def committed_evidence() -> list[dict[str, Any]] | None:
        ev = net.get(0, "/v1/evidence")["committed"]
        return [e for e in ev if e["evidence"]["validator"] == byz_key] or None

    found = poll("double-sign evidence to be committed", committed_evidence, 60)
    every = net.get(0, "/v1/evidence?limit=1000")
    accused = {e["evidence"]["validator"] for e in every["committed"]}
    accused |= {e["validator"] for e in every["pending"]}
    # The kill -9 of step 1 made no node sign twice: only the double signer is accused.
    assert accused == {byz_key}, accused

    entry = found[-1]
    at, ev = entry["committed_height"], entry["evidence"]
    check_evidence(net, ev, byz_key)  # the suite's SM2 verify, the SM3 evidence hash
    suite = genesis.suite
    assert isinstance(suite, Sm2Suite)
    for name in ("vote_a", "vote_b"):  # and GmSSL's SM2, independently, under the chain's ID
        assert gmssl_verifies(ev[name], genesis.chain_id, suite.distid), (name, ev)
    assert ev["height"] < at
    net.wait_height(at, nodes=HONEST, timeout=30)
    for i in HONEST:
        block = net.get(i, f"/v1/blocks/{at}")
        assert ev["hash"] in {e["hash"] for e in block["evidence"]}, (i, block)
    net.wait_height(at + 5, nodes=HONEST, timeout=60)


def gmssl_verifies(j: dict[str, Any], chain_id: str, distid: bytes) -> bool:
    """GmSSL's SM2 verify of a vote given as JSON, over its sign bytes, under ``distid``."""
    vote = Vote(
        VoteType.PREVOTE if j["type"] == "prevote" else VoteType.PRECOMMIT,
        j["height"],
        j["round"],
        bytes.fromhex(j["block_hash"] or ""),
        bytes.fromhex(j["validator"]),
        bytes.fromhex(j["signature"]),
    )
    sig = vote.signature
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    ok: bool = gmssl.sm2_verify(vote.validator[1:], vote.sign_bytes(chain_id), _der(r, s), distid)
    return ok


def _der(r: int, s: int) -> bytes:
    def one(v: int) -> bytes:
        b = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return b"\x02" + bytes([len(b)]) + b

    body = one(r) + one(s)
    return b"\x30" + bytes([len(body)]) + body


# -- the end: one chain, hashed with SM3 ---------------------------------------------------------
def same_sm3_chain(
    net: LocalNet, genesis: Genesis, nodes: list[int], sink: bytes, sent: int
) -> None:
    """``nodes`` hold the same blocks up to the lowest of their heights; every block hash is
    SM3 of its header (GmSSL's SM3, not the suite's), and each node proves the sink's balance
    under SM2-signed commits."""
    top = min(heights(net, nodes).values())
    with ThreadPoolExecutor(len(nodes)) as pool:
        chains = dict(zip(nodes, pool.map(lambda i: fetch_blocks(net, i, top), nodes), strict=True))
    for h in range(top):
        hashes = {chains[i][h]["hash"] for i in nodes}
        assert len(hashes) == 1, f"fork at height {h + 1}: {hashes}"
    anchors: dict[str, Any] = dict(
        chain_id=genesis.chain_id, validators=genesis.validator_set, suite=genesis.crypto_suite
    )
    lock = threading.Lock()
    checked: list[int] = []

    def sm3_of_headers(part: range) -> None:
        with Client(net.api(nodes[0]), **anchors) as c:
            for h in part:
                header = c.block(h).header.encode()
                assert gmssl.sm3_hash(header).hex() == chains[nodes[0]][h - 1]["hash"], h
                with lock:
                    checked.append(h)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(sm3_of_headers, [range(1, top + 1, 2), range(2, top + 1, 2)]))
    assert sorted(checked) == list(range(1, top + 1))
    for i in nodes:
        with Client(net.api(i), **anchors) as c:
            proven = c.get_state(balance_key(sink))
            assert proven.verified and proven.signers >= 3, proven
            assert c.balance(sink) == sent
