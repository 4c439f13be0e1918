"""Refusals decided at admission: every ``gov`` refusal that the committed state and the
transaction decide is given by ``Chain.check_admission`` (what the mempool runs) with the code
and message the receipt would carry, and the very same transaction, put in a block without
admission, fails at execution with that code and message.

Each case builds one signed transaction, asks admission, then executes it in a block on the
same state (the ``Net`` helper builds blocks directly, bypassing the mempool).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_gov import (  # type: ignore[import-not-found]
    ADMIN,
    ALICE,
    BOB,
    DAVE,
    EPOCH,
    ERIN,
    OUTSIDER,
    T0,
    Net,
    cert,
    make_genesis,
    ok,
)

from citychain.crypto import Signer
from citychain.errors import CitychainError, ErrorCode
from citychain.execution.keys import account_nonce
from citychain.types import Receipt, Transaction


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "chain", make_genesis())
    yield n
    n.chain.close()


@pytest.fixture
def cnet(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "cert-chain", make_genesis("certificate", policies={}))
    yield n
    n.chain.close()


def admission_refusal(net: Net, tx: Transaction) -> CitychainError:
    with pytest.raises(CitychainError) as info:
        net.chain.check_admission(tx)
    return info.value


def refused_twice(
    net: Net,
    s: Signer,
    method: str,
    args: dict[str, Any],
    code: ErrorCode,
    words: str,
    contract: str = "gov",
) -> Receipt:
    """``s``'s call is refused at admission with ``code`` and a message holding ``words``, and
    the same transaction executed in a block fails with that code and message."""
    tx = net.tx(s, contract, method, args)
    root = net.chain.state.root
    nonce = account_nonce(net.chain.state, s.address)
    early = admission_refusal(net, tx)
    assert (early.code, words in early.message) == (code, True), early
    assert net.chain.state.root == root  # admission wrote nothing
    assert account_nonce(net.chain.state, s.address) == nonce
    (late,) = net.block(tx)
    assert (late.code, late.message) == (early.code.value, early.message)
    assert late.events == ()
    return late


def test_a_vote_is_refused_at_admission_for_what_execution_would_refuse(net: Net) -> None:
    pid = net.propose(ADMIN["org1"], "freeze", {"address": DAVE.address})
    # a member that is not an admin: gov:freeze needs admins
    refused_twice(
        net,
        ALICE,
        "vote",
        {"id": pid},
        ErrorCode.POLICY_NOT_MET,
        f"policy gov:freeze (MAJORITY of every organisation (role admin)) does not let "
        f"{ALICE.address.hex()} (member of org1) vote on it",
    )
    refused_twice(
        net, OUTSIDER, "vote", {"id": pid}, ErrorCode.NOT_MEMBER, "is not a registered member"
    )
    refused_twice(net, ADMIN["org2"], "vote", {"id": 99}, ErrorCode.NOT_FOUND, "no proposal 99")
    refused_twice(
        net,
        ADMIN["org2"],
        "vote",
        {"id": pid, "approve": "yes"},
        ErrorCode.BAD_ARGUMENTS,
        "argument 'approve' must be true or false",
    )
    refused_twice(
        net,
        ADMIN["org1"],
        "vote",
        {"id": pid},
        ErrorCode.DUPLICATE,
        f"already voted on proposal {pid}",
    )
    # an admitted vote passes admission, writes nothing there, and then counts
    good = net.tx(ADMIN["org2"], "gov", "vote", {"id": pid})
    root = net.chain.state.root
    net.chain.check_admission(good)
    assert net.chain.state.root == root
    ok(*net.block(good))
    ok(net.gov(ADMIN["org1"], "execute", id=pid))
    refused_twice(
        net,
        ADMIN["org3"],
        "vote",
        {"id": pid},
        ErrorCode.PROPOSAL_EXECUTED,
        f"proposal {pid} was already executed at height",
    )


def test_execute_and_expire_are_refused_at_admission(net: Net) -> None:
    pid = net.propose(ADMIN["org1"], "freeze", {"address": DAVE.address}, deadline=net.height + 3)
    refused_twice(
        net,
        ADMIN["org1"],
        "execute",
        {"id": pid},
        ErrorCode.PROPOSAL_NOT_PASSED,
        f"proposal {pid} has not passed: policy gov:freeze (MAJORITY of every organisation "
        "(role admin)) needs 2 of 3 organisations, approved by org1",
    )
    refused_twice(
        net,
        ADMIN["org1"],
        "expire",
        {"id": pid},
        ErrorCode.BAD_ARGUMENTS,
        f"proposal {pid} is open until height",
    )
    while net.height <= net.query("gov", "proposal", id=pid)["deadline"]:
        net.block()
    refused_twice(
        net,
        ADMIN["org2"],
        "vote",
        {"id": pid},
        ErrorCode.PROPOSAL_EXPIRED,
        f"proposal {pid} expired after height",
    )
    refused_twice(
        net, ADMIN["org1"], "execute", {"id": pid}, ErrorCode.PROPOSAL_EXPIRED, "cannot execute"
    )
    ok(net.gov(ADMIN["org3"], "expire", id=pid))  # anyone may write the expiry down
    refused_twice(
        net, ADMIN["org1"], "expire", {"id": pid}, ErrorCode.PROPOSAL_EXPIRED, "is expired"
    )


def test_a_malformed_or_unauthorised_proposal_is_refused_at_admission(net: Net) -> None:
    a1 = ADMIN["org1"]
    refused_twice(
        net,
        a1,
        "propose",
        {"kind": "abolish_city", "params": {}},
        ErrorCode.BAD_ARGUMENTS,
        "unknown proposal kind 'abolish_city' (kinds: add_org,",
    )
    refused_twice(
        net,
        a1,
        "propose",
        {"kind": "add_org", "params": {"id": "org5"}},
        ErrorCode.BAD_ARGUMENTS,
        "proposal params lack name, ca_cert, admins",
    )
    refused_twice(
        net,
        a1,
        "propose",
        {"kind": "set_params", "params": {"params": {"chain": {"block_max_txs": 0}}}},
        ErrorCode.BAD_ARGUMENTS,
        "block_max_txs",
    )
    refused_twice(
        net,
        a1,
        "propose",
        {"kind": "remove_validator", "params": {"public_key": DAVE.public_key}},
        ErrorCode.NOT_FOUND,
        f"{DAVE.public_key.hex()} is not a validator",
    )
    refused_twice(
        net,
        BOB,
        "propose",
        {"kind": "freeze", "params": {"address": DAVE.address}},
        ErrorCode.POLICY_NOT_MET,
        "policy gov:freeze (MAJORITY of every organisation (role admin)) does not let",
    )
    refused_twice(
        net,
        a1,
        "propose",
        {"kind": "freeze", "params": {"address": DAVE.address}, "deadline": 10**9},
        ErrorCode.BAD_ARGUMENTS,
        "deadline",
    )


def test_member_changes_by_a_non_admin_are_refused_at_admission(net: Net) -> None:
    register = {"public_key": DAVE.public_key, "org": "org1", "roles": ["member"]}
    refused_twice(
        net,
        ALICE,
        "register_member",
        register,
        ErrorCode.UNAUTHORIZED,
        f"only an admin of organisation 'org1' may do this; {ALICE.address.hex()} is member",
    )
    refused_twice(
        net,
        ADMIN["org2"],
        "register_member",
        register,
        ErrorCode.UNAUTHORIZED,
        "only an admin of organisation 'org1' may do this",
    )
    refused_twice(
        net,
        ADMIN["org1"],
        "register_member",
        {**register, "roles": ["inspector"]},
        ErrorCode.BAD_ARGUMENTS,
        "organisation 'org1' has no role 'inspector'",
    )
    refused_twice(
        net,
        ADMIN["org1"],
        "register_member",
        {**register, "public_key": BOB.public_key},
        ErrorCode.BAD_ARGUMENTS,
        "is already a member of organisation 'org2'",
    )
    refused_twice(
        net,
        ADMIN["org1"],
        "remove_member",
        {"address": DAVE.address},
        ErrorCode.NOT_FOUND,
        f"{DAVE.address.hex()} is not a member",
    )
    refused_twice(
        net,
        ADMIN["org2"],
        "remove_member",
        {"address": ALICE.address},
        ErrorCode.UNAUTHORIZED,
        "only an admin of organisation 'org1' may do this",
    )
    refused_twice(
        net,
        ALICE,
        "define_role",
        {"org": "org1", "role": "inspector"},
        ErrorCode.UNAUTHORIZED,
        "only an admin of organisation 'org1' may do this",
    )
    refused_twice(
        net,
        ADMIN["org1"],
        "define_role",
        {"org": "org1", "role": "admin"},
        ErrorCode.BAD_ARGUMENTS,
        "'admin' is a built-in role",
    )
    refused_twice(
        net,
        DAVE,
        "enroll",
        {"cert": cert(DAVE)},
        ErrorCode.UNAUTHORIZED,
        "this chain runs in 'key' identity mode; this method is for 'certificate' mode",
    )
    ok(net.gov(ADMIN["org1"], "register_member", **register))  # the admin may


def test_calls_no_block_could_run_are_refused_at_admission(net: Net) -> None:
    refused_twice(
        net, ALICE, "mint", {}, ErrorCode.UNKNOWN_CONTRACT, "no contract named 'tokens'", "tokens"
    )
    refused_twice(
        net, ALICE, "steal", {}, ErrorCode.UNKNOWN_METHOD, "has no method 'steal'", "token"
    )
    refused_twice(
        net, ALICE, "balance", {}, ErrorCode.UNKNOWN_METHOD, "token.balance is a query", "token"
    )
    tx = Transaction.create(
        ALICE,
        chain_id=net.genesis.chain_id,
        nonce=account_nonce(net.chain.state, ALICE.address),
        contract="token",
        method="transfer",
        args={"to": BOB.address, "amount": 1},
        gas_limit=10,
    )
    early = admission_refusal(net, tx)
    assert early.code == ErrorCode.GAS_LIMIT_TOO_LOW, early
    (late,) = net.block(tx)
    assert (late.code, late.message) == (early.code.value, early.message)


def _at(ms_since_epoch: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms_since_epoch)


def test_enrolment_is_checked_at_admission_against_the_time_the_block_may_have(cnet: Net) -> None:
    cnet.block()
    last = cnet.chain.last_header()
    assert last is not None and last.time == T0 + 1000
    # Issued so that it becomes valid exactly at the next block's time: admission knows only
    # that the block comes after the last one, so it must not refuse it as "not yet valid".
    fresh = cert(DAVE, not_before=_at(T0 + 2000))
    tx = cnet.tx(DAVE, "gov", "enroll", {"cert": fresh})
    cnet.chain.check_admission(tx)
    ok(*cnet.block(tx))
    # A certificate already expired at the last block's time is expired at any later time.
    stale = cert(ERIN, not_before=_at(T0 - 10_000), not_after=_at(T0))
    tx = cnet.tx(ERIN, "gov", "enroll", {"cert": stale})
    early = admission_refusal(cnet, tx)
    assert early.code == ErrorCode.UNAUTHORIZED
    assert "expired on 2025-01-01 00:00:00" in early.message
    (late,) = cnet.block(tx)
    assert late.code == early.code.value
    # the same words, up to the block time each one names
    assert late.message.split("(block time")[0] == early.message.split("(block time")[0]
    # Signed by another key than the certificate's: refused at admission.
    refused_twice(
        cnet,
        ERIN,
        "enroll",
        {"cert": cert(ALICE)},
        ErrorCode.UNAUTHORIZED,
        "the certificate is for another key than the one that signed this transaction",
    )
