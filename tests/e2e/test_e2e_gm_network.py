"""``citychain net up --crypto sm2``: four validators of two organisations on the GM suite.

The network is made and started by the CLI, as an operator would; the test then sends
transfers through one node and reads them back, proven, from another. Every node agrees on
blocks whose hashes are SM3 of their headers (the ctypes SM3 of ``citychain.crypto.sm2``,
not the ``hashlib`` one the nodes use).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest
from nodeproc import cli  # type: ignore[import-not-found]
from ports import free_base_port  # type: ignore[import-not-found]

from citychain.crypto.keystore import load_key
from citychain.crypto.sm2 import sm3
from citychain.sdk import Client
from citychain.services.token.shapes import balance_key
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow


@dataclass
class GmNet:
    dir: Path
    base: int

    def api(self, i: int) -> str:
        return f"http://127.0.0.1:{self.base + 10 * i + 1}"

    @property
    def genesis(self) -> Genesis:
        return Genesis.load(self.dir / "config" / "genesis.json")

    def key(self, name: str) -> Any:
        passphrase = (self.dir / "passphrase").read_text().strip()
        return load_key(self.dir / "keys" / f"{name}.json", passphrase)

    def status(self) -> dict[str, Any]:
        r = cli("net", "status", "--dir", str(self.dir), "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        doc: dict[str, Any] = json.loads(r.stdout)
        return doc


def _wait(what: str, cond: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout} s (last: {last!r})")


@pytest.fixture(scope="module")
def gm_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GmNet]:
    d = tmp_path_factory.mktemp("gmnet") / "net"
    base = free_base_port(4)
    up = cli(
        "net", "up", "--validators", "4", "--orgs", "2", "--dir", str(d),
        "--base-port", str(base), "--crypto", "sm2", timeout=240,
    )  # fmt: skip
    n = GmNet(d, base)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield n
    finally:
        down = cli("net", "down", "--dir", str(d), "--clean")
        assert down.returncode == 0, down.stdout + down.stderr


def test_four_gm_validators_agree_on_sm3_blocks_and_prove_state(gm_net: GmNet) -> None:
    g = gm_net.genesis
    assert g.crypto_suite == "sm2-sm3" and len(g.validators) == 4
    assert all(len(v.public_key) == 65 for v in g.validators)

    def together() -> bool:
        nodes = gm_net.status()["nodes"]
        return all(n["up"] and (n["height"] or 0) >= 2 and n["peers"] == 3 for n in nodes)

    _wait("the GM network comes together", together)
    alice, bob = gm_net.key("alice"), gm_net.key("bob")
    assert alice.suite.name == "sm2-sm3"
    anchors: dict[str, Any] = dict(
        chain_id=g.chain_id, validators=g.validator_set, suite=g.crypto_suite
    )
    with Client(gm_net.api(1), **anchors) as c1:
        before = c1.balance(bob.address)
        receipt = c1.send(alice, "token", "transfer", {"to": bob.address, "amount": 42})
        assert receipt.ok, receipt
        info = c1.tx(receipt.tx_hash)
    height = info.height
    assert height is not None
    assert receipt.tx_hash == sm3(info.tx.encode())
    # every node has the same block at that height, hashed with SM3
    hashes = set()
    for i in range(4):
        raw = _wait(
            f"node{i} has block {height}",
            lambda i=i: (
                r.json()
                if (r := httpx.get(f"{gm_net.api(i)}/v1/blocks/{height}", timeout=10)).status_code
                == 200
                else None
            ),
        )
        hashes.add(raw["header"]["hash"])
    with Client(gm_net.api(3), **anchors) as c3:
        b = c3.block(height)
        assert hashes == {sm3(b.header.encode()).hex()}
        proven = _wait(
            "node3 proves the new balance",
            lambda: (
                p
                if (p := c3.get_state(balance_key(bob.address))).value is not None
                and cbor2.loads(p.value) == before + 42
                else None
            ),
        )
        assert proven.verified and proven.signers >= 3
