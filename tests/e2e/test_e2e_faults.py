"""Faults on a real four-validator network: partitions, a Byzantine validator, bad certificates.

Every node is a real ``citychain start`` process (:class:`netproc.LocalNet`) talking mutual TLS
over real sockets. Partitions are made by :class:`faultproxy.FaultProxy`, which every directed
link runs through: cutting a pair resets its open connections and refuses new ones, so the
nodes see exactly what a network partition looks like (resets, then failed redials).

* 2|2: neither half has 2/3 of the power, so no node commits while the network is cut; once
  healed every node advances and all hold identical headers at every height.
* 3|1: the three keep committing (a transfer sent to them commits); the isolated node stops,
  and once healed catches up (40+ blocks behind: block sync) and agrees on every header.
* A validator running the test-only double-signing engine (``byzantine.py``: two proposals and
  two different votes per step, to the two halves of its peers) cannot make the honest three
  disagree, and its double signing is committed as evidence in a block (API and CLI).
* A node whose certificate comes from a CA not in genesis, and one whose certificate has
  expired, are refused in plain words ("wrong CA", "expired") in the logs of both sides,
  and the network keeps committing.

Every wait polls with a deadline; a failure carries every node's height, consensus state,
peers and log tail (:func:`explained`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from byzantine import start_as_double_signer  # type: ignore[import-not-found]
from netproc import (  # type: ignore[import-not-found]
    FAST_PARAMS,
    IDLE_BLOCK_MS,
    LocalNet,
)
from nodeproc import cli  # type: ignore[import-not-found]
from ports import free_base_port  # type: ignore[import-not-found]

from citychain.crypto import ED25519, Signer
from citychain.crypto.keystore import save_key
from citychain.node.config import ApiConfig, NodeConfig, NodeSettings, P2PSettings
from citychain.node.processes import log_tail, spawn_node, stop_processes
from citychain.node.testnet import PORT_STRIDE, TEST_NETWORK_KEYS, NetNode
from citychain.p2p.certs import (
    decrypt_key_pem,
    encrypt_key_pem,
    generate_org_ca,
    issue_node_cert,
)
from citychain.sdk import Client
from citychain.types import DuplicateVoteEvidence, Vote, VoteType
from citychain.types.genesis import Genesis, Organisation

pytestmark = pytest.mark.slow

T = TypeVar("T")

#: A halted chain must show no new height on any node for this long.
HALT_S = 5.0
#: Blocks the three must commit past the isolated node (more than the block-sync window of 32).
ISOLATED_GAP = 40


# -- diagnostics ---------------------------------------------------------------------------------
def _safe_get(url: str, timeout: float = 2) -> Any:
    try:
        r = httpx.get(url, timeout=timeout)
        return r.json() if r.status_code == 200 else f"HTTP {r.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        return f"no answer ({type(exc).__name__})"


def report(net: LocalNet, extra: Iterable[tuple[str, Path, str]] = (), lines: int = 40) -> str:
    """Every node's height, consensus state, peers and log tail (for failure messages)."""
    out = [f"heights: {net.heights()}"]
    if net.proxy is not None:
        cut = sorted(
            (i, j)
            for i in range(net.size)
            for j in range(i + 1, net.size)
            if net.proxy.is_cut(i, j)
        )
        out.append(f"cut pairs: {cut}")
    for i in range(net.size):
        c = _safe_get(f"{net.api(i)}/v1/consensus")
        if isinstance(c, dict):
            d = c.get("details", {})
            c = (
                f"height {c.get('height')} round {c.get('round')} step {c.get('step')}; "
                f"waiting for {c.get('waiting_for')}; prevotes {d.get('prevotes')}; "
                f"precommits {d.get('precommits')}; evidence pending {d.get('evidence_pending')}"
            )
        p = _safe_get(f"{net.api(i)}/v1/net/peers")
        if isinstance(p, dict):
            p = ", ".join(
                f"{x['name']}:{'up' if x['connected'] else 'down (' + str(x['last_error']) + ')'}"
                for x in p.get("peers", [])
            )
        out.append(
            f"--- node{i} ({'running' if net.running(i) else 'NOT RUNNING'}) ---\n"
            f"consensus: {c}\npeers: {p}\n{log_tail(net.log_file(i), lines)}"
        )
    for name, log_file, url in extra:
        out.append(
            f"--- {name} ---\nstatus: {_safe_get(f'{url}/v1/status')}\n{log_tail(log_file, lines)}"
        )
    return "\n".join(out)


@contextlib.contextmanager
def explained(net: LocalNet, extra: Iterable[tuple[str, Path, str]] = ()) -> Iterator[None]:
    """On any failure inside, attach :func:`report` to the exception."""
    try:
        yield
    except Exception as exc:
        exc.add_note(report(net, extra))
        raise


def poll(what: str, fn: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T:
    """``fn()`` once it returns something other than None/False; fails after ``timeout`` s
    with ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = fn()
        if last is not None and last is not False:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} (last: {last!r:.500})"
            )
        time.sleep(interval)


# -- observing the network -----------------------------------------------------------------------
def heights(net: LocalNet, nodes: Iterable[int]) -> dict[int, int]:
    hs = net.heights(nodes)
    missing = [i for i, h in hs.items() if h is None]
    assert not missing, f"nodes {missing} do not answer their API; heights {hs}"
    return {i: int(h) for i, h in hs.items() if h is not None}


def connected(net: LocalNet, i: int) -> set[str]:
    return {p["name"] for p in net.get(i, "/v1/net/peers")["peers"] if p["connected"]}


def wait_links(net: LocalNet, want: dict[int, set[str]], timeout: float = 30) -> None:
    """Wait until node i is connected to exactly the peers ``want[i]``."""

    def ok() -> bool:
        return all(connected(net, i) == peers for i, peers in want.items())

    poll(f"peer connections {want}", ok, timeout)


def everyone_but(net: LocalNet, i: int) -> set[str]:
    return {f"node{j}" for j in range(net.size) if j != i}


def wait_frozen(net: LocalNet, nodes: list[int], hold: float, timeout: float) -> dict[int, int]:
    """Wait until no node of ``nodes`` commits a new height for ``hold`` seconds (blocks in
    flight at the moment of a cut may still land first); the frozen heights."""
    deadline = time.monotonic() + timeout
    last = heights(net, nodes)
    since = time.monotonic()
    while True:
        time.sleep(0.25)
        now_hs = heights(net, nodes)
        if now_hs != last:
            last, since = now_hs, time.monotonic()
        elif time.monotonic() - since >= hold:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"nodes {nodes} kept committing: no {hold:g} s without a new height within "
                f"{timeout:g} s (last heights {last})"
            )


def headers(net: LocalNet, i: int, upto: int) -> list[tuple[str, dict[str, Any]]]:
    """(hash, header) of blocks 1..upto on node i."""
    out = []
    with httpx.Client(base_url=net.api(i), timeout=10) as c:
        for h in range(1, upto + 1):
            r = c.get(f"/v1/blocks/{h}")
            assert r.status_code == 200, f"node{i} has no block {h}: {r.text}"
            b = r.json()
            out.append((b["hash"], b["header"]))
    return out


def assert_same_headers(net: LocalNet, nodes: list[int]) -> int:
    """Every node of ``nodes`` holds identical block hashes and headers at every height up to
    the lowest of their heights; that height."""
    top = min(heights(net, nodes).values())
    assert top > 0
    with ThreadPoolExecutor(len(nodes)) as pool:  # one node process each: fetch in parallel
        chains = dict(zip(nodes, pool.map(lambda i: headers(net, i, top), nodes), strict=True))
    ref = chains[nodes[0]]
    for i in nodes[1:]:
        for h, (a, b) in enumerate(zip(ref, chains[i], strict=True), start=1):
            assert a == b, f"node{nodes[0]} and node{i} disagree at height {h}:\n{a}\n{b}"
    return top


def transfer(net: LocalNet, i: int, amount: int) -> str:
    """Send ``amount`` from alice to bob through node i, without waiting; the tx hash (hex)."""
    alice, bob = net.signer("alice"), net.signer("bob")
    with Client(net.api(i)) as c:
        return c.send(
            alice, "token", "transfer", {"to": bob.address, "amount": amount}, wait=False
        ).hex()


def tx_status(net: LocalNet, i: int, tx_hash: str) -> dict[str, Any]:
    r = httpx.get(f"{net.api(i)}/v1/txs/{tx_hash}", timeout=5)
    return r.json() if r.status_code == 200 else {"status": f"HTTP {r.status_code}"}


def committed_at(net: LocalNet, i: int, tx_hash: str) -> int | None:
    st = tx_status(net, i, tx_hash)
    if st.get("status") != "committed":
        return None
    assert st["receipt"]["code"] == "ok", st
    return int(st["height"])


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def proxied_net(tmp_path: Path) -> Iterator[LocalNet]:
    # The partition tests count heights on a chain they send little to (40 blocks past an
    # isolated node): empty blocks without waiting for transactions (interval 0), as fast
    # as the network goes.
    with LocalNet(
        tmp_path, validators=4, proxy=True, params=FAST_PARAMS, empty_blocks_interval_ms=0
    ) as net:
        net.start_all()
        with explained(net):
            net.wait_height(3, timeout=60)
            wait_links(net, {i: everyone_but(net, i) for i in range(4)})
        yield net


# -- 1. partition 2|2 ----------------------------------------------------------------------------
def test_partition_2_2_halts_then_resumes_and_agrees(proxied_net: LocalNet) -> None:
    net = proxied_net
    with explained(net):
        net.proxy.partition([{0, 1}, {2, 3}])
        wait_links(net, {0: {"node1"}, 1: {"node0"}, 2: {"node3"}, 3: {"node2"}})
        # A transfer submitted while cut is gossiped within its half but cannot commit.
        tx = transfer(net, 0, 7)
        frozen = wait_frozen(net, [0, 1, 2, 3], hold=HALT_S, timeout=30)
        assert max(frozen.values()) - min(frozen.values()) <= 1, frozen
        assert all(committed_at(net, i, tx) is None for i in range(4))
        assert tx_status(net, 0, tx)["status"] == "pending"
        # Each node is stuck deciding the next height, short of votes it cannot get while cut
        # (Algorithm 1 starts the prevote and precommit timeouts only on 2/3+ of the votes).
        for i in range(4):
            c = net.get(i, "/v1/consensus")
            assert c["height"] == frozen[i] + 1, (i, c)
            assert "need 27" in c["waiting_for"], (i, c)

        net.proxy.heal()
        wait_links(net, {i: everyone_but(net, i) for i in range(4)})
        net.wait_height(max(frozen.values()) + 5, timeout=60)
        at = poll(
            "the transfer sent during the partition to commit", lambda: committed_at(net, 0, tx), 30
        )
        assert at > min(frozen.values())
        top = assert_same_headers(net, [0, 1, 2, 3])
        assert top >= max(frozen.values()) + 5
        assert all(committed_at(net, i, tx) == at for i in range(4))


# -- 2. partition 3|1 ----------------------------------------------------------------------------
def test_isolated_node_catches_up_and_agrees(proxied_net: LocalNet) -> None:
    net = proxied_net
    with explained(net):
        net.proxy.isolate(3)
        wait_links(
            net, {0: {"node1", "node2"}, 1: {"node0", "node2"}, 2: {"node0", "node1"}, 3: set()}
        )
        stuck = wait_frozen(net, [3], hold=2.0, timeout=20)[3]
        # The three keep committing, transactions included.
        tx = transfer(net, 1, 11)
        at = poll("the transfer to commit on the three", lambda: committed_at(net, 1, tx), 30)
        assert at > stuck
        net.wait_height(stuck + ISOLATED_GAP, nodes=[0, 1, 2], timeout=60)
        assert heights(net, [3])[3] == stuck, "the isolated node committed without a quorum"
        assert committed_at(net, 3, tx) is None

        net.proxy.heal()
        wait_links(net, {i: everyone_but(net, i) for i in range(4)})
        target = max(heights(net, [0, 1, 2]).values()) + 3
        net.wait_height(target, timeout=60)
        assert_same_headers(net, [0, 1, 2, 3])
        assert committed_at(net, 3, tx) == at
        # Heights the others had committed come only through block sync.
        sync = net.get(3, "/v1/consensus")["details"]["sync"]
        assert sync["synced_blocks"] >= ISOLATED_GAP, sync


# -- 3. a Byzantine validator --------------------------------------------------------------------
def test_double_signing_validator_cannot_fork_and_is_committed_as_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    byz, honest = 3, [0, 1, 2]
    # No transactions here: heights advance by empty blocks, one per IDLE_BLOCK_MS.
    with LocalNet(
        tmp_path, validators=4, params=FAST_PARAMS, empty_blocks_interval_ms=IDLE_BLOCK_MS
    ) as net:
        # A real process of its own: the node built with tests/e2e/byzantine.py's engine.
        start_as_double_signer(monkeypatch, net.layout.nodes[byz].home)
        byz_key = net.layout.nodes[byz].validator_public_key
        net.start_all()
        with explained(net):
            assert "BYZANTINE TEST MODE" in net.log(byz)

            def committed_evidence() -> list[dict[str, Any]] | None:
                ev = net.get(0, "/v1/evidence")["committed"]
                mine = [e for e in ev if e["evidence"]["validator"] == byz_key]
                return mine or None

            found = poll("double-sign evidence to be committed", committed_evidence, 60)
            # Only the Byzantine validator was ever accused.
            every = net.get(0, "/v1/evidence?limit=1000")
            accused = {e["evidence"]["validator"] for e in every["committed"]}
            accused |= {e["validator"] for e in every["pending"]}
            assert accused == {byz_key}, accused

            entry = found[-1]  # the oldest listed (newest block first)
            at, ev = entry["committed_height"], entry["evidence"]
            check_evidence(net, ev, byz_key)
            assert ev["height"] < at
            # The block at that height carries it, on every honest node.
            net.wait_height(at, nodes=honest, timeout=30)
            for i in honest:
                block = net.get(i, f"/v1/blocks/{at}")
                assert ev["hash"] in {e["hash"] for e in block["evidence"]}, (i, block)

            # In a round it proposes in, it votes for each of its two blocks (to each half).
            def for_two_blocks() -> dict[str, Any] | None:
                listed = net.get(2, "/v1/evidence?limit=1000")["committed"]
                evs = [e["evidence"] for e in listed]
                return next(
                    (e for e in evs if e["vote_a"]["block_hash"] and e["vote_b"]["block_hash"]),
                    None,
                )

            two = poll("evidence of votes for two different blocks", for_two_blocks, 30)
            check_evidence(net, two, byz_key)

            # The CLI shows it (it lists the newest 100, so read what it shows, then check
            # that against the blocks).
            shown = cli("evidence", "--node", net.api(1))
            assert shown.returncode == 0, shown.stdout + shown.stderr
            rows = re.findall(rf"committed in (\d+) +{byz_key[:16]} ", shown.stdout)
            assert rows, shown.stdout
            as_json = cli("evidence", "--node", net.api(1), "--json")
            assert as_json.returncode == 0, as_json.stdout + as_json.stderr
            listed = json.loads(as_json.stdout)["committed"]
            assert listed, as_json.stdout
            for item in (listed[0], listed[-1]):
                check_evidence(net, item["evidence"], byz_key)
                block = net.get(0, f"/v1/blocks/{item['committed_height']}")
                assert item["evidence"] in block["evidence"], (item, block["evidence"])
            for h in {int(rows[0]), int(rows[-1])}:
                block = net.get(2, f"/v1/blocks/{h}")
                assert byz_key in {e["validator"] for e in block["evidence"]}, (h, block)

            # The honest three keep committing and agree on every header.
            net.wait_height(at + 10, nodes=honest, timeout=60)
            assert_same_headers(net, honest)


def check_evidence(net: LocalNet, ev: dict[str, Any], validator: str) -> None:
    """``ev`` (JSON) is duplicate-vote evidence against ``validator`` that checks on its own:
    two votes for one step with different values, both signed by it, and the hash matches."""
    assert ev["kind"] == "duplicate_vote", ev
    assert ev["validator"] == validator, ev

    def vote(j: dict[str, Any]) -> Vote:
        return Vote(
            VoteType.PREVOTE if j["type"] == "prevote" else VoteType.PRECOMMIT,
            j["height"],
            j["round"],
            bytes.fromhex(j["block_hash"] or ""),
            bytes.fromhex(j["validator"]),
            bytes.fromhex(j["signature"]),
        )

    genesis = Genesis.load(net.layout.genesis_file)  # its suite: Ed25519 or SM2 with SM3
    evidence = DuplicateVoteEvidence(
        vote(ev["vote_a"]), vote(ev["vote_b"]), hash_new=genesis.suite.hash_new
    )
    evidence.verify(genesis.suite, genesis.chain_id, genesis.validator_set)
    assert evidence.hash.hex() == ev["hash"], ev
    assert (evidence.height, evidence.vote_a.round) == (ev["height"], ev["round"]), ev


# -- 4. refused certificates ---------------------------------------------------------------------
def status(api_url: str) -> Any:
    return _safe_get(f"{api_url}/v1/status")


def peers_of(api_url: str) -> list[dict[str, Any]]:
    peers: list[dict[str, Any]] = httpx.get(f"{api_url}/v1/net/peers", timeout=5).json()["peers"]
    return peers


def read_log(node: NetNode) -> str:
    try:
        return node.log_file.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def check_outsiders_refused(net: LocalNet, outsiders: list[NetNode]) -> None:
    """``outsiders`` (node4 from an unlisted CA, node5 expired) are refused in plain words on
    both sides, they connect to nobody, and the honest nodes' peer lists say why while they
    stay connected to each other (shared with the GM network's fault test)."""
    wrong_ca, expired = outsiders
    n4, n5 = wrong_ca.p2p_port, expired.p2p_port
    # What each honest node i logs: when the outsider dialled it (acceptor side: OpenSSL
    # refuses the unknown CA before the peer's name is known), and when it dialled the
    # outsider (dialler side: our certificate check).
    honest_lines = [
        r"refused peer at 127\.0\.0\.1:\d+: wrong CA — its certificate does not chain to any "
        "organisation CA of this chain",
        rf"refused peer node4 at 127\.0\.0\.1:{n4}: wrong CA — the certificate of node4 does not "
        "chain to any organisation CA of this chain",
        rf"refused peer node5 at 127\.0\.0\.1:(?!{n5}\b)\d+: expired — the certificate of node5 "
        "expired on ",
        rf"refused peer node5 at 127\.0\.0\.1:{n5}: expired — the certificate of node5 expired on ",
    ]
    for i in range(4):
        # What each outsider logs about honest node i: when it dialled i (a silent close after
        # its TLS handshake for the unknown CA, or the TLS alert on a stack that sends one; a
        # Refuse frame saying "expired"), and when i dialled it (a Refuse frame saying why).
        p = net.layout.nodes[i].p2p_port
        mine = rf"peer node{i} at 127\.0\.0\.1:{p} refused our certificate: "
        theirs = rf"peer node{i} at 127\.0\.0\.1:(?!{p}\b)\d+ refused our certificate: "
        outsider_lines = [
            (
                wrong_ca,
                f"{mine}wrong CA — (it closed the connection right after the TLS handshake|it "
                "does not trust our CA)",
            ),
            (wrong_ca, f"{theirs}wrong CA — the certificate of node4 does not chain"),
            (expired, f"{mine}expired — the certificate of node5 expired on "),
            (expired, f"{theirs}expired — the certificate of node5 expired on "),
        ]
        for rx in honest_lines:
            poll(
                f"node{i} to log {rx!r}",
                lambda i=i, rx=rx: re.search(rx, net.log(i)) is not None,
                30,
            )
        for o, rx in outsider_lines:
            poll(
                f"{o.name} to log {rx!r}",
                lambda o=o, rx=rx: re.search(rx, read_log(o)) is not None,
                30,
            )
    for o in outsiders:
        assert all(not p["connected"] for p in peers_of(o.api_url)), o.name
        assert status(o.api_url)["height"] == 0
    want = {"node4": "refused: wrong CA", "node5": "refused: expired"}
    for i in range(4):

        def last_errors(i: int = i) -> dict[str, str | None]:
            return {p["name"]: p["last_error"] for p in peers_of(net.api(i))}

        poll(
            f"node{i}'s peer list to say {want}",
            lambda: {k: last_errors().get(k) for k in want} == want,
            15,
        )
        assert connected(net, i) == everyone_but(net, i)


def make_outsider(
    net: LocalNet,
    root: Path,
    name: str,
    org_id: str,
    port: int,
    cert: tuple[bytes, bytes],
    genesis: Genesis,
) -> NetNode:
    """A node home for ``name`` with the given (cert, key) PEMs, dialling every network node
    directly (not through the proxy)."""
    home = root / name
    (home / "config").mkdir(parents=True)
    passphrase = net.passphrase
    genesis.save(home / "config" / "genesis.json")
    (home / "config" / "passphrase").write_text(passphrase + "\n")
    (home / "config" / "passphrase").chmod(0o600)
    signer = Signer.generate(genesis.suite)  # not a validator; of the chain's suite
    save_key(home / "config" / "node_key.json", signer, passphrase, kdf_level="interactive")
    p2p = P2PSettings(
        listen_host="127.0.0.1",
        listen_port=port,
        persistent_peers=",".join(f"{n.name}@127.0.0.1:{n.p2p_port}" for n in net.layout.nodes),
        org_id=org_id,
    )
    (home / p2p.cert_file).write_bytes(cert[0])
    (home / p2p.tls_key_file).write_bytes(encrypt_key_pem(cert[1], passphrase))
    NodeConfig(
        home=home,
        node=NodeSettings(name=name),
        api=ApiConfig(host="127.0.0.1", port=port + 1),
        p2p=p2p,
        keys=TEST_NETWORK_KEYS,  # its passphrase file is a test network's
    ).save()
    NodeConfig.load(home)
    return NetNode(
        index=-1,
        name=name,
        home=home,
        org=org_id,
        api_url=f"http://127.0.0.1:{port + 1}",
        api_port=port + 1,
        p2p_port=port,
        validator_public_key=signer.public_key.hex(),
    )


def test_wrong_ca_and_expired_certificates_are_refused_in_plain_words(tmp_path: Path) -> None:
    # "The network keeps committing" is checked on an idle chain: one empty block per
    # IDLE_BLOCK_MS.
    with LocalNet(
        tmp_path, validators=4, params=FAST_PARAMS, empty_blocks_interval_ms=IDLE_BLOCK_MS
    ) as net:
        layout = net.layout
        genesis = Genesis.load(layout.genesis_file)
        org1 = layout.orgs[0]
        org1_ca = (
            org1.ca_cert_file.read_bytes(),
            decrypt_key_pem(org1.ca_key_file.read_bytes(), net.passphrase),
        )
        base = free_base_port(2)
        outsiders_dir = tmp_path / "outsiders"

        # node4: a certificate from a CA that genesis does not list. Its own genesis lists
        # that CA too (else it would refuse to start with a certificate no peer accepts).
        rogue_ca = generate_org_ca("rogue", "Rogue Organisation")
        rogue_org = Organisation(
            "rogue",
            "Rogue Organisation",
            rogue_ca[0].decode(),
            admins=(Signer.generate(ED25519).public_key,),
        )
        wrong_ca = make_outsider(
            net,
            outsiders_dir,
            "node4",
            "rogue",
            base,
            issue_node_cert(*rogue_ca, "node4", layout.chain_id, "rogue"),
            dataclasses.replace(genesis, organisations=(*genesis.organisations, rogue_org)),
        )
        # node5: issued by a genesis CA, but expired yesterday.
        now = datetime.now(UTC)
        expired = make_outsider(
            net,
            outsiders_dir,
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
        # The honest nodes dial the two as well: both directions of the check are exercised.
        for i in range(4):
            peers = NodeConfig.load(layout.nodes[i].home).p2p.persistent_peers
            more = ",".join(f"{o.name}@127.0.0.1:{o.p2p_port}" for o in outsiders)
            net.configure(i, "p2p", persistent_peers=f"{peers},{more}")

        extra = [(o.name, o.log_file, o.api_url) for o in outsiders]
        net.start_all()
        procs = [spawn_node(o) for o in outsiders]
        try:
            with explained(net, extra):
                for o in outsiders:
                    poll(f"{o.name}'s API", lambda o=o: isinstance(status(o.api_url), dict), 60)
                start = heights(net, range(4))
                check_outsiders_refused(net, [wrong_ca, expired])
                # ... and the network keeps committing.
                net.wait_height(max(start.values()) + 10, timeout=60)
                assert_same_headers(net, [0, 1, 2, 3])
        finally:
            stop_processes(procs, grace=5.0)
