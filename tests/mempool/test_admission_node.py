"""A real node refuses at admission what its next block would refuse: a ``gov vote`` by a member
who is not an admin answers 403 ``policy_not_met`` from ``POST /v1/tx`` (the SDK raises it, the
CLI prints it) and nothing is committed; the same transaction, executed on the node's own
stored state afterwards, fails with the same code and message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from nodeproc import NodeProcess, cli  # type: ignore[import-not-found]

from citychain.chain import Chain
from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, ExecutionFailure
from citychain.execution import default_registry
from citychain.sdk import Client
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow


def test_a_non_admin_vote_is_refused_before_any_block(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node")
    node.start()
    genesis = Genesis.load(node.home / "config" / "genesis.json")
    admin, alice, bob = node.signer("org1-admin"), node.signer("alice"), node.signer("bob")
    try:
        with Client(node.url, chain_id=genesis.chain_id, validators=genesis.validator_set) as c:
            change = {"params": {"chain": {"block_max_txs": 5000}}}
            proposed = c.send(admin, "gov", "propose", {"kind": "set_params", "params": change})
            assert proposed.ok, proposed
            pid = proposed.result
            nonce = c.account(alice.address).nonce

            vote = c.build_tx(alice, "gov", "vote", {"id": pid})
            answer = httpx.post(
                f"{node.url}/v1/tx",
                content=vote.encode(),
                headers={"content-type": "application/cbor"},
            )
            assert answer.status_code == 403, answer.text
            assert answer.json()["code"] == "policy_not_met"
            message = answer.json()["message"]
            assert message == (
                "policy gov:set_params (MAJORITY of every organisation (role admin)) does not "
                f"let {alice.address.hex()} (member of org1) vote on it"
            )
            with pytest.raises(ExecutionFailure) as info:
                c.send(alice, "gov", "vote", {"id": pid})
            assert (info.value.code, info.value.message) == (ErrorCode.POLICY_NOT_MET, message)

            env = {
                "CITYCHAIN_HOME": str(node.home),
                "CITYCHAIN_NODE": node.url,
                "CITYCHAIN_PASSPHRASE": node.passphrase,
            }
            clerk = Signer.generate(ED25519)
            register = cli(
                "gov",
                "register-member",
                "--org",
                "org1",
                "--roles",
                "member",
                "--public-key",
                clerk.public_key.hex(),
                "--key",
                "alice",
                env=env,
            )
            assert register.returncode == 1
            assert register.stdout == "" and "Traceback" not in register.stderr
            assert register.stderr.strip() == (
                "error [unauthorized]: only an admin of organisation 'org1' may do this; "
                f"{alice.address.hex()} is member of 'org1'"
            )

            # Blocks go on (bob's transfer commits); alice's refused calls never reach one.
            moved = c.send(bob, "token", "transfer", {"to": bob.address, "amount": 1})
            assert moved.ok, moved
            assert c.account(alice.address).nonce == nonce
            assert c.account(alice.address).pending_nonce == nonce
            unknown = httpx.get(f"{node.url}/v1/txs/{vote.hash.hex()}")
            assert unknown.status_code == 404, unknown.text
            assert c.gov.member(clerk.address) is None
    finally:
        assert node.stop() == 0

    # The node's own state, executed without admission: the block would have refused the vote
    # with the same code and message.
    chain = Chain.open(node.home / "data", genesis, default_registry())
    try:
        last = chain.last_header()
        assert last is not None
        pending = chain.build_block([vote], last.time + 1000, last.proposer)
        (receipt,) = pending.receipts
        assert (receipt.code, receipt.message) == ("policy_not_met", message)
    finally:
        chain.close()
