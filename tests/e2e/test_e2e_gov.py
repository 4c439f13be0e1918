"""On-chain governance on a running network of real node processes (mutual TLS, Tendermint).

What an operator relies on when the organisations of a city chain change it by vote:

* a majority admits a new organisation, and the validator it then adds signs blocks (its
  node was refused by every peer until the chain listed its CA);
* a vote removes a validator and the chain keeps committing without it;
* a revoked member certificate can no longer transact; a frozen account cannot send;
* a proposal that misses its deadline changes nothing; a proposal executes at most once;
* on a GM (``sm2-sm3``) network, where a peer is authenticated by its organisation's TLS CA
  and by the SM2 certificate its organisation's SM2 CA issued for its node key, a vote that
  admits an organisation makes every node trust both of its CAs from that block on, with
  nothing restarted (``Switch.set_trusted_cas`` and ``set_trusted_gm_cas`` on commit): its
  node, refused until then, joins and follows the chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netproc import FAST_PARAMS, IDLE_BLOCK_MS, LocalNet  # type: ignore[import-not-found]

from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.crypto.member_certs import issue_member_cert
from citychain.errors import ErrorCode, ExecutionFailure
from citychain.p2p.certs import decrypt_key_pem
from citychain.sdk import Client
from citychain.services.gov.sdk import GOV_GAS_LIMIT
from citychain.types import Receipt

pytestmark = pytest.mark.slow


def _send(c: Client, signer: Signer, method: str, args: dict[str, Any]) -> Receipt:
    # The gas the gov CLI and SDK give a governance call: an SM2 certificate costs more to
    # check than the SDK's default limit for any call.
    receipt = c.send(signer, "gov", method, args, gas_limit=GOV_GAS_LIMIT)
    return receipt


def _passed(c: Client, proposer: Signer, voters: list[Signer], kind: str, params: Any) -> int:
    """Propose, have ``voters`` approve, execute; the proposal id."""
    r = _send(c, proposer, "propose", {"kind": kind, "params": params})
    assert r.ok, r
    pid = int(r.result)
    for v in voters:
        vote = _send(c, v, "vote", {"id": pid})
        assert vote.ok, vote
    done = _send(c, proposer, "execute", {"id": pid})
    assert done.ok, done
    return pid


def _signers_of(net: LocalNet, height: int) -> set[str]:
    block = net.get(0, f"/v1/blocks/{height}")
    return {s["validator"] for s in block["commit"]["signatures"]}


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s")


def _started(tmp_path: Path, **options: Any) -> Iterator[LocalNet]:
    """A running network. Its tests watch heights pass with nothing sent (validator changes
    take effect two heights after execution, a proposal's deadline passes by heights): one
    empty block per IDLE_BLOCK_MS."""
    with LocalNet(
        tmp_path, params=FAST_PARAMS, empty_blocks_interval_ms=IDLE_BLOCK_MS, **options
    ) as n:
        n.start_all()
        yield n


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LocalNet]:
    yield from _started(tmp_path, spare_nodes=1)


def test_a_vote_admits_an_organisation_whose_validator_signs_then_a_vote_removes_one(
    net: LocalNet,
) -> None:
    org1, org2 = net.signer("org1-admin"), net.signer("org2-admin")
    org3, node4 = net.add_joining_org("org3")
    new = net.size - 1
    net.start(new)  # trusts its own CA; every peer refuses it for now
    net.wait_height(3, nodes=range(4))
    _wait(
        lambda: "refused our certificate: wrong CA" in net.log(new),
        20,
        "the peers did not refuse the node of an organisation the chain does not list",
    )
    with Client(net.api(0)) as c:
        ca = org3.ca_cert_file.read_text()
        org3_admin = net.signer("org3-admin")
        # One organisation alone is not a majority of two.
        r = _send(
            c,
            org1,
            "propose",
            {
                "kind": "add_org",
                "params": {
                    "id": "org3",
                    "name": org3.name,
                    "ca_cert": ca,
                    "admins": [org3_admin.public_key],
                },
            },
        )
        assert r.ok, r
        pid = int(r.result)
        with pytest.raises(ExecutionFailure) as early:  # refused at admission, not committed
            _send(c, org1, "execute", {"id": pid})
        assert early.value.code == ErrorCode.PROPOSAL_NOT_PASSED
        assert "gov:add_org" in early.value.message and "MAJORITY" in early.value.message
        assert _send(c, org2, "vote", {"id": pid}).ok
        assert _send(c, org1, "execute", {"id": pid}).ok
        with pytest.raises(ExecutionFailure) as again:
            _send(c, org2, "execute", {"id": pid})
        assert again.value.code == ErrorCode.PROPOSAL_EXECUTED

        # The new organisation's admin can now act: it helps pass its validator in.
        pk = bytes.fromhex(node4.validator_public_key)
        _passed(
            c,
            org3_admin,
            [org1],
            "add_validator",
            {"public_key": pk, "power": 10, "name": node4.name, "org": "org3"},
        )
        validators = c.query("gov", "validators")
        start = int(validators["from"])
        net.wait_height(start + 8, nodes=[0, new], timeout=90)
        # A commit carries the first 2/3+ of the precommits, so one of five validators may
        # be missing from any one block: look over a few blocks from the change on.
        signed = [
            h for h in range(start, start + 8) if node4.validator_public_key in _signers_of(net, h)
        ]
        assert signed, "the new validator does not sign blocks after it joined the set"
        assert node4.validator_public_key not in _signers_of(net, start - 1)
        status = net.get(new, "/v1/status")
        assert int(status["height"]) >= start + 8

        # A vote removes node3 (org2) and the chain keeps committing without it.
        gone = net.layout.nodes[3]
        _passed(
            c,
            org1,
            [org2],
            "remove_validator",
            {"public_key": bytes.fromhex(gone.validator_public_key)},
        )
        removed_from = int(c.query("gov", "validators")["from"])
        net.wait_height(removed_from, nodes=[0])
        net.stop(3)
        top = net.height(0) or 0
        net.wait_height(top + 5, nodes=[0, 1, 2, new], timeout=60)
        assert gone.validator_public_key not in _signers_of(net, top + 4)

        history = c.query("gov", "history", limit=200)
        actions = [(e["action"], e["proposal"]) for e in history]
        assert ("propose", pid) in actions and ("vote", pid) in actions
        assert ("execute", pid) in actions


@pytest.fixture
def cert_net(tmp_path: Path) -> Iterator[LocalNet]:
    yield from _started(tmp_path, identity_mode="certificate")


def test_revoked_certificate_frozen_account_expired_proposal(cert_net: LocalNet) -> None:
    net = cert_net
    org1, org2 = net.signer("org1-admin"), net.signer("org2-admin")
    alice, bob = net.signer("alice"), net.signer("bob")
    ca_dir = net.layout.orgs[0]
    ca_cert = ca_dir.ca_cert_file.read_bytes()
    ca_key = decrypt_key_pem(ca_dir.ca_key_file.read_bytes(), net.passphrase)
    carol = Signer.generate(ED25519)
    cert = issue_member_cert(
        ca_cert, ca_key, carol.public_key, name="carol", org_id="org1", roles=["member"]
    )
    with Client(net.api(1)) as c:
        # Not enrolled yet: refused at admission, naming why.
        with pytest.raises(ExecutionFailure) as refused:
            c.send(carol, "token", "transfer", {"to": bob.address, "amount": 1})
        assert refused.value.code == ErrorCode.NOT_MEMBER
        assert c.send(carol, "gov", "enroll", {"cert": cert}).ok
        assert c.send(alice, "token", "transfer", {"to": carol.address, "amount": 50}).ok
        assert c.send(carol, "token", "transfer", {"to": bob.address, "amount": 5}).ok

        # Revoke carol's certificate by serial: she can no longer transact.
        member = c.query("gov", "member", address=carol.address)
        _passed(c, org1, [org2], "revoke", {"org": "org1", "serial": int(member["serial"])})
        with pytest.raises(ExecutionFailure) as revoked:
            c.send(carol, "token", "transfer", {"to": bob.address, "amount": 5})
        assert revoked.value.code == ErrorCode.REVOKED
        assert "revoked" in revoked.value.message

        # Freeze bob: he cannot send; others can still pay him; unfreezing restores him.
        _passed(c, org2, [org1], "freeze", {"address": bob.address})
        with pytest.raises(ExecutionFailure) as frozen:
            c.send(bob, "token", "transfer", {"to": alice.address, "amount": 1})
        assert frozen.value.code == ErrorCode.FROZEN
        assert c.send(alice, "token", "transfer", {"to": bob.address, "amount": 1}).ok
        _passed(c, org2, [org1], "unfreeze", {"address": bob.address})
        assert c.send(bob, "token", "transfer", {"to": alice.address, "amount": 1}).ok

        # A proposal that misses its deadline expires and changes nothing.
        before = c.query("gov", "params")
        # Four heights of slack: empty blocks come every IDLE_BLOCK_MS, and a deadline that
        # has already come by the time the proposal is admitted is refused (bad_arguments).
        deadline = c.status().height + 5
        r = c.send(
            org1,
            "gov",
            "propose",
            {
                "kind": "set_params",
                "params": {"params": {"chain": {"block_max_txs": 77}}},
                "deadline": deadline,
            },
        )
        assert r.ok, r
        pid = int(r.result)
        net.wait_height(deadline + 2, nodes=[1])
        with pytest.raises(ExecutionFailure) as late_vote:  # refused at admission
            c.send(org2, "gov", "vote", {"id": pid})
        assert late_vote.value.code == ErrorCode.PROPOSAL_EXPIRED
        with pytest.raises(ExecutionFailure) as late:
            c.send(org1, "gov", "execute", {"id": pid})
        assert late.value.code == ErrorCode.PROPOSAL_EXPIRED
        assert c.query("gov", "proposal", id=pid)["status"] == "expired"
        assert c.send(org2, "gov", "expire", {"id": pid}).ok
        assert c.query("gov", "params") == before
        history = c.query("gov", "history", proposal=pid)
        assert [e["action"] for e in history] == ["propose", "expire"]


@pytest.fixture
def gm_net(tmp_path: Path) -> Iterator[LocalNet]:
    yield from _started(tmp_path, spare_nodes=1, suite=SM2_SM3)


def test_a_gm_network_trusts_both_cas_of_an_organisation_it_admits(gm_net: LocalNet) -> None:
    net = gm_net
    org1, org2 = net.signer("org1-admin"), net.signer("org2-admin")
    org3, _ = net.add_joining_org("org3")
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
        params = {
            "id": "org3",
            "name": org3.name,
            "ca_cert": org3.ca_cert_file.read_text(),
            "gm_ca_cert": org3.gm_ca_cert_file.read_text(),
            "admins": [net.signer("org3-admin").public_key],
        }
        _passed(c, org1, [org2], "add_org", params)
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
