"""A real node process driven through the SDK, the CLI and raw HTTP."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import cbor2
import httpx
import pytest
from nodeproc import NodeProcess, cli  # type: ignore[import-not-found]

from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, ExecutionFailure
from citychain.sdk import Client
from citychain.services.token.shapes import balance_key
from citychain.types import Transaction
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow


def client_for(node: NodeProcess) -> Client:
    genesis = Genesis.load(node.home / "config" / "genesis.json")
    return Client(node.url, chain_id=genesis.chain_id, validators=genesis.validator_set)


def test_sdk_transfer_query_proof_and_events(node: NodeProcess) -> None:
    alice, bob = node.signer("alice"), node.signer("bob")
    with client_for(node) as c:
        before = c.balance(bob.address)
        events: list[object] = []
        sub = c.subscribe("token", "transfer")
        got_one = threading.Event()

        def listen() -> None:
            for ev in sub:
                events.append(ev)
                got_one.set()
                return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        receipt = c.send(alice, "token", "transfer", {"to": bob.address, "amount": 25})
        assert receipt.ok, receipt
        assert c.balance(bob.address) == before + 25
        # a failing transaction is committed with its error code and changes no balance
        poor = Signer.generate(ED25519)
        # an account nobody registered is refused on admission, naming why
        with pytest.raises(ExecutionFailure, match="not a registered member") as refused:
            c.send(poor, "token", "transfer", {"to": bob.address, "amount": 1})
        assert refused.value.code == ErrorCode.NOT_MEMBER
        admin = node.signer("org1-admin")
        registered = c.send(
            admin,
            "gov",
            "register_member",
            {"public_key": poor.public_key, "org": "org1", "roles": ["member"]},
        )
        assert registered.ok, registered
        failed = c.send(poor, "token", "transfer", {"to": bob.address, "amount": 1})
        assert failed.code == ErrorCode.INSUFFICIENT_FUNDS
        assert c.balance(bob.address) == before + 25
        # the balance is proven against a header signed by the genesis validators
        proven = c.get_state(balance_key(bob.address))
        assert proven.verified and proven.value is not None
        assert cbor2.loads(proven.value) == before + 25
        absent = c.get_state(balance_key(poor.address))
        assert absent.verified and absent.value is None
        assert got_one.wait(10), "no transfer event arrived"
        sub.close()
        first = events[0]
        assert first.event.attributes["amount"] == 25  # type: ignore[attr-defined]


def test_cli_against_a_running_node(node: NodeProcess) -> None:
    env = {
        "CITYCHAIN_HOME": str(node.home),
        "CITYCHAIN_NODE": node.url,
        "CITYCHAIN_PASSPHRASE": node.passphrase,
    }
    status = cli("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "citychain-demo" in status.stdout
    bob = node.signer("bob").address.hex()
    sent = cli("tx", "transfer", "--key", "alice", "--to", bob, "--amount", "7", env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "ok in block" in sent.stdout
    bal = cli("query", "balance", bob, env=env)
    assert bal.returncode == 0 and "1000000000007" in bal.stdout, bal.stdout
    proof = cli("query", "state", balance_key(bytes.fromhex(bob)).hex(), env=env)
    assert proof.returncode == 0 and "proof verified" in proof.stdout, proof.stdout
    bad = cli("tx", "transfer", "--key", "alice", "--to", "zz", "--amount", "1", env=env)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stdout + bad.stderr
    # a refusal from the node is shown with its code
    poor = cli("tx", "transfer", "--key", "bob", "--to", bob, "--amount", str(10**15), env=env)
    assert "insufficient_funds" in poor.stdout + poor.stderr


def test_bad_input_to_a_real_node_is_refused_with_a_code(node: NodeProcess) -> None:
    alice = node.signer("alice")
    genesis = Genesis.load(node.home / "config" / "genesis.json")
    url = node.url

    def post_tx(raw: bytes) -> httpx.Response:
        return httpx.post(f"{url}/v1/tx", content=raw, headers={"content-type": "application/cbor"})

    def tx(**kw: object) -> Transaction:
        fields: dict[str, object] = dict(
            chain_id=genesis.chain_id,
            nonce=0,
            contract="token",
            method="transfer",
            args={"to": alice.address, "amount": 1},
        )
        fields.update(kw)
        return Transaction.create(alice, **fields)  # type: ignore[arg-type]

    cases = {
        "malformed": post_tx(b"\xff\x00garbage"),
        "wrong_chain": post_tx(tx(chain_id="another-chain").encode()),
        "bad_signature": post_tx(tx().with_signature(bytes(64)).encode()),
        "nonce_gap": post_tx(tx(nonce=10**6).encode()),
        "too_large": httpx.post(
            f"{url}/v1/txs",
            content=b"\x00" * (64 * 1024 * 1024),
            headers={"content-type": "application/cbor"},
        ),
        "bad_arguments": httpx.get(f"{url}/v1/state/nothex"),
    }
    for code, resp in cases.items():
        assert 400 <= resp.status_code < 500, (code, resp.status_code, resp.text)
        assert resp.json()["code"] == code, (code, resp.text)
    # expired: expiry below the next height
    ok = post_tx(tx(nonce=0).encode())
    assert ok.status_code == 202
    replay = post_tx(tx(nonce=0).encode())
    assert replay.status_code == 400 and replay.json()["code"] in {"duplicate", "nonce_too_low"}
    with Client(url) as c:
        c.wait_for_commit(bytes.fromhex(ok.json()["hash"]), 20)
    again = post_tx(tx(nonce=0).encode())
    assert again.json()["code"] == "nonce_too_low"
    expired = post_tx(tx(nonce=1, expiry=0).encode())
    assert expired.json()["code"] == "expired"
    unknown = post_tx(tx(nonce=1, contract="nope").encode())
    # refused at admission, as the block would refuse it: nothing is committed
    # a bad request naming what is unknown: /v1/tx itself exists, so not a 404
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_contract"
    assert "no contract named 'nope'" in unknown.json()["message"]
    with Client(url) as c:
        assert c.account(alice.address).pending_nonce == 1


def test_replay_reproduces_every_state_root(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node")
    node.start()
    try:
        alice, bob = node.signer("alice"), node.signer("bob")
        with client_for(node) as c:
            for i in range(5):
                c.send(alice, "token", "transfer", {"to": bob.address, "amount": i + 1})
            height = c.status().height
    finally:
        assert node.stop() == 0
    done = cli("node", "replay", "--home", str(node.home))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replay ok" in done.stdout and f"{height} blocks" in done.stdout

    # Tamper with a stored block (same header, other transactions): replay must refuse it.
    from citychain.store.blocks import BlockStore
    from citychain.store.kv import KVStore
    from citychain.types import Block

    kv = KVStore(node.home / "data")
    store = BlockStore(kv)
    block = store.block(2)
    assert block is not None and block.txs
    batch = kv.batch()
    batch.put("blocks", b"b" + (2).to_bytes(8, "big"), Block(block.header, ()).encode())
    kv.write(batch)
    kv.close()
    broken = cli("node", "replay", "--home", str(node.home))
    assert broken.returncode == 1
    assert "replay diverged" in broken.stdout + broken.stderr
    assert "Traceback" not in broken.stdout + broken.stderr


def test_keep_alive_requests_do_not_wait_for_delayed_acks(node: NodeProcess) -> None:
    """An SDK client keeps its connection open; each answer must leave at once. Without
    TCP_NODELAY on the node's accepted sockets, an answer written as headers then body sat
    behind Nagle until the client's delayed ACK: 44 ms for every request (2026-12-03)."""
    with httpx.Client(base_url=node.url) as client:
        for path in ("/health", "/v1/status"):
            times = []
            for _ in range(25):
                t0 = time.perf_counter()
                assert client.get(path).status_code == 200
                times.append(time.perf_counter() - t0)
            assert statistics.median(times) < 0.02, (path, sorted(times))


def test_a_lone_validator_holds_its_organisations_private_values(node: NodeProcess) -> None:
    """A single-node chain (the demo's, no p2p) is its genesis organisation's node: a private
    collection of that organisation keeps and serves its values there."""
    admin = node.signer("org1-admin")
    with Client(node.url) as c:
        c.data.define_collection(admin, "permits", ["org1"])
        put = c.data.put_private(admin, "permits", "2027-01", b"site 7: approved")
        assert (put["version"], put["pushed_to"]) == (1, 0)  # no peers to push to
        assert c.data.get_private(admin, "permits", "2027-01") == b"site 7: approved"
