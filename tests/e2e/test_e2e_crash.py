"""kill -9 under load, then restart: nothing reported committed is lost, and nothing forks.

A loader thread keeps submitting batches of transfers from several senders; an observer
thread records every committed block (hash, state root, tx hashes) as the node reports it.
The node is killed with SIGKILL at a random instant, three times. After each restart the node
must be at least at the highest height it reported, every block it reported must be there
with the same hash and state root, and every transaction it reported committed must still be
committed at the same height. Finally replay reproduces every state root.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest
from nodeproc import NodeProcess, cli  # type: ignore[import-not-found]

from citychain.crypto import ED25519, Signer
from citychain.sdk import Client
from citychain.services.token.shapes import balance_key
from citychain.types import Transaction

pytestmark = pytest.mark.slow

SENDERS = 8
BATCH = 200


class Observer(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.blocks: dict[int, tuple[str, str, list[str]]] = {}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=2) as c:
            while not self.stop_flag.is_set():
                try:
                    height = int(c.get("/v1/status").json()["height"])
                    for h in range(max(self.blocks, default=0) + 1, height + 1):
                        b = c.get(f"/v1/blocks/{h}").json()
                        self.blocks[h] = (
                            b["hash"],
                            b["header"]["state_root"],
                            [t["hash"] for t in b["txs"]],
                        )
                except (httpx.HTTPError, KeyError, ValueError):
                    pass  # the node is being killed
                time.sleep(0.02)


class Loader(threading.Thread):
    def __init__(self, url: str, chain_id: str, senders: list[Signer], sink: bytes) -> None:
        super().__init__(daemon=True)
        self.url, self.chain_id, self.senders, self.sink = url, chain_id, senders, sink
        self.stop_flag = threading.Event()
        self.accepted = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as c:
            nonces = {
                s.address: int(c.get(f"/v1/accounts/{s.address.hex()}").json()["nonce"])
                for s in self.senders
            }
            while not self.stop_flag.is_set():
                txs = []
                for i in range(BATCH):
                    s = self.senders[i % len(self.senders)]
                    txs.append(
                        Transaction.create(
                            s,
                            chain_id=self.chain_id,
                            nonce=nonces[s.address],
                            contract="token",
                            method="transfer",
                            args={"to": self.sink, "amount": 1},
                        )
                    )
                    nonces[s.address] += 1
                try:
                    r = c.post("/v1/txs", json={"txs": [t.encode().hex() for t in txs]})
                    self.accepted += sum(1 for x in r.json()["results"] if x["code"] == "ok")
                except (httpx.HTTPError, KeyError, ValueError):
                    return  # the node died: this loader is done
                # keep the mempool from running far ahead of the chain
                time.sleep(0.05)


def test_kill9_under_load_loses_nothing_and_never_forks(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    node = NodeProcess(tmp_path / "node")
    node.start()
    alice = node.signer("alice")
    senders = [Signer.generate(ED25519) for _ in range(SENDERS)]
    sink = Signer.generate(ED25519).address
    with Client(node.url) as c:
        chain_id = c.status().chain_id
        admin = node.signer("org1-admin")  # the chain admits registered keys only
        for k, s in enumerate(senders):
            args = {"public_key": s.public_key, "org": "org1", "roles": ["member"]}
            c.send(admin, "gov", "register_member", args, wait=k == len(senders) - 1)
        for s in senders:
            c.send(alice, "token", "mint", {"to": s.address, "amount": 10**9}, wait=False)
        c.send(alice, "token", "transfer", {"to": sink, "amount": 1})  # waits: mints are before it
    observer = Observer(node.url)
    observer.start()
    seen_tx: dict[str, int] = {}
    try:
        for cycle in range(3):
            loader = Loader(node.url, chain_id, senders, sink)
            loader.start()
            time.sleep(rng.uniform(0.8, 2.5))
            node.kill9()
            loader.stop_flag.set()
            loader.join(10)
            time.sleep(0.3)  # let the observer notice the node is gone
            reported = dict(observer.blocks)
            assert reported, "the node committed nothing under load"
            for h, (_, _, hashes) in reported.items():
                for tx_hash in hashes:
                    seen_tx[tx_hash] = h
            node.start(demo=False)
            top = max(reported)
            assert node.height() >= top, f"cycle {cycle}: node restarted below height {top}"
            with httpx.Client(base_url=node.url, timeout=5) as c:
                for h, (block_hash, state_root, _) in reported.items():
                    b = c.get(f"/v1/blocks/{h}").json()
                    assert b["hash"] == block_hash, f"block {h} changed after restart (fork)"
                    assert b["header"]["state_root"] == state_root
                for tx_hash in rng.sample(sorted(seen_tx), min(300, len(seen_tx))):
                    info = c.get(f"/v1/txs/{tx_hash}").json()
                    assert info["status"] == "committed" and info["height"] == seen_tx[tx_hash]
            # state after restart answers proofs against its signed header
            with Client(node.url) as c:
                proven = c.get_state(balance_key(sink))
                assert proven.verified and proven.value is not None
    finally:
        observer.stop_flag.set()
        node.stop()
    assert len(seen_tx) > 100, "too little load got through to exercise recovery"
    done = cli("node", "replay", "--home", str(node.home))
    assert done.returncode == 0, done.stdout + done.stderr
