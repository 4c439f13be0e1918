"""A GM (``sm2-sm3``) network admits an organisation by vote, and its node joins.

On a GM chain a peer is authenticated twice: by its organisation's TLS CA, and by the SM2
certificate its organisation's SM2 CA issued for its node key (:mod:`citychain.p2p.nodekey`).
When governance admits an organisation, every node must start trusting both of its CAs with
the block that admitted it (``Switch.set_trusted_cas`` and ``set_trusted_gm_cas``, called on
commit): a neighbouring city joining the chain, with nothing restarted. Here that is shown on
real node processes: the new organisation's node is refused until the vote, then connects and
follows the chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netproc import FAST_PARAMS, IDLE_BLOCK_MS, LocalNet  # type: ignore[import-not-found]

from citychain.crypto import SM2_SM3, Signer
from citychain.sdk import Client
from citychain.services.gov.sdk import GOV_GAS_LIMIT
from citychain.types import Receipt

pytestmark = pytest.mark.slow


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s")


def _send(c: Client, signer: Signer, method: str, args: dict[str, Any]) -> Receipt:
    # SM2 certificates cost more gas to check than the SDK's default limit: as the gov CLI.
    receipt = c.send(signer, "gov", method, args, gas_limit=GOV_GAS_LIMIT)
    assert receipt.ok, receipt
    return receipt


@pytest.fixture
def gm_net(tmp_path: Path) -> Iterator[LocalNet]:
    with LocalNet(
        tmp_path,
        params=FAST_PARAMS,
        spare_nodes=1,
        suite=SM2_SM3,
        empty_blocks_interval_ms=IDLE_BLOCK_MS,
    ) as n:
        n.start_all()
        yield n


def test_a_gm_network_trusts_both_cas_of_an_organisation_it_admits(gm_net: LocalNet) -> None:
    net = gm_net
    org1, org2 = net.signer("org1-admin"), net.signer("org2-admin")
    org3, _node = net.add_joining_org("org3")
    assert org3.gm_ca_cert_file.exists()
    new = net.size - 1
    net.start(new)  # trusts its own organisation's CAs; every peer refuses it for now
    net.wait_height(3, nodes=range(4))
    _wait(
        lambda: "refused our certificate: wrong CA" in net.log(new),
        20,
        "the peers did not refuse the node of an organisation the chain does not list",
    )
    assert (net.height(new) or 0) == 0  # it has no peer to learn blocks from

    with Client(net.api(0)) as c:
        admin3 = net.signer("org3-admin")
        params = {
            "id": "org3",
            "name": org3.name,
            "ca_cert": org3.ca_cert_file.read_text(),
            "gm_ca_cert": org3.gm_ca_cert_file.read_text(),
            "admins": [admin3.public_key],
        }
        pid = int(_send(c, org1, "propose", {"kind": "add_org", "params": params}).result)
        _send(c, org2, "vote", {"id": pid})
        _send(c, org1, "execute", {"id": pid})
        admitted = net.height(0) or 0  # the admitting block is at or below this height
        orgs = {o["id"]: o for o in c.query("gov", "orgs")}
        assert orgs["org3"]["gm_ca_cert"].strip() == params["gm_ca_cert"].strip()

    # No node restarted: each trusts org3's TLS and SM2 CAs from the admitting block on, so
    # the new node connects (both handshakes pass) and follows the chain by block sync.
    target = (net.height(0) or 0) + 3
    _wait(
        lambda: (net.height(new) or 0) >= target,
        60,
        f"the new organisation's node did not follow the chain past height {target} "
        f"(admitted by height {admitted}); its log ends: {net.log(new)[-1500:]!r}",
    )
    # Only a peer can have given it those blocks; the one it holds where the vote took
    # effect is the one the validators committed.
    h = admitted
    assert net.get(new, f"/v1/blocks/{h}")["hash"] == net.get(0, f"/v1/blocks/{h}")["hash"]
