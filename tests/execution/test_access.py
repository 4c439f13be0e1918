"""The access checks the executor runs for every transaction: identity modes, member
standing, freezes, policy lookup, and the signatures of endorsements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from exec_helpers import CHAIN, SUITE, DictState, signer

from citychain import codec
from citychain.crypto import Signer
from citychain.errors import ErrorCode, ExecutionFailure, InternalError
from citychain.execution import BlockContext, Executor, access, default_registry
from citychain.execution.keys import account_nonce
from citychain.p2p.certs import generate_org_ca
from citychain.types import Transaction, Validator
from citychain.types.genesis import Genesis, Governance, Member, Organisation
from citychain.types.policy import Policy

TOKEN_ADDRESS = b"\x07" * 20
A1, A2, M1, M2, OUT = (signer(i) for i in range(1, 6))


# -- check_access on hand-made records ----------------------------------------------------------
def org(org_id: str, ca_fp: bytes = b"fp") -> bytes:
    return codec.encode({"id": org_id, "name": org_id, "ca_cert": "", "ca_fp": ca_fp, "admins": []})


def mem(org_id: str, roles: tuple[str, ...] = ("member",), **extra: Any) -> bytes:
    return codec.encode(access.Member(org_id, roles, b"pk", **extra).to_value())


def records(mode: str = "key") -> dict[bytes, bytes]:
    return {
        access.CFG: codec.encode({"mode": mode, "voting_period": 10}),
        access.org_key("org1"): org("org1"),
        access.org_key("org2"): org("org2"),
        access.member_key(A1.address): mem("org1", ("admin",)),
        access.member_key(M1.address): mem("org1"),
        access.member_key(A2.address): mem("org2", ("admin", "member")),
        access.member_key(M2.address): mem("org2"),
    }


def checker(
    data: dict[bytes, bytes],
) -> Callable[..., None]:
    def run(
        *signers: Signer,
        contract: str = "token",
        method: str = "transfer",
        at: int = 1_000,
    ) -> None:
        access.check_access(
            data.get,
            lambda: sorted(k[len(access.ORG) :].decode() for k in data if k.startswith(access.ORG)),
            contract=contract,
            method=method,
            contract_address=TOKEN_ADDRESS,
            signers=[s.address for s in signers],
            block_time=at,
        )

    return run


def refusal(run: Callable[[], None], code: ErrorCode) -> str:
    with pytest.raises(ExecutionFailure) as exc:
        run()
    assert exc.value.code == code, exc.value.message
    return exc.value.message


def test_open_mode_checks_nothing() -> None:
    data = {access.frozen_key(TOKEN_ADDRESS): b"\xf5", access.frozen_key(OUT.address): b"\xf5"}
    checker(data)(OUT)  # no configuration at all: open
    data[access.CFG] = codec.encode({"mode": "open", "voting_period": 1})
    checker(data)(OUT, M1)
    assert access.mode(data.get) == "open"


def test_members_and_non_members() -> None:
    data = records()
    run = checker(data)
    run(M1)
    run(A2, M1)
    msg = refusal(lambda: run(OUT), ErrorCode.NOT_MEMBER)
    assert msg == f"sender {OUT.address.hex()} is not a registered member of any organisation"
    msg = refusal(lambda: run(M1, OUT), ErrorCode.NOT_MEMBER)
    assert msg.startswith(f"endorser {OUT.address.hex()} is not a registered member")


def test_standing() -> None:
    data = records()
    run = checker(data)
    data[access.member_key(M1.address)] = mem("gone")
    assert refusal(lambda: run(M1), ErrorCode.NOT_MEMBER) == (
        f"sender {M1.address.hex()} belongs to organisation 'gone', which was removed from the "
        "chain"
    )
    data[access.member_key(M1.address)] = mem("org1", revoked=True)
    assert refusal(lambda: run(A1, M1), ErrorCode.REVOKED) == (
        f"the key of endorser {M1.address.hex()} was revoked"
    )
    # certificate members: serial revoked, CA replaced, expired (the last millisecond is valid)
    data[access.member_key(M1.address)] = mem("org1", serial=0xBEEF, ca_fp=b"fp", not_after=5000)
    run(M1, at=5000)
    assert refusal(lambda: run(M1, at=5001), ErrorCode.REVOKED) == (
        f"the certificate of sender {M1.address.hex()} has expired; enrol again with a renewed "
        "certificate"
    )
    data[access.org_key("org1")] = org("org1", ca_fp=b"new fp")
    assert "a CA that organisation org1 no longer uses" in refusal(
        lambda: run(M1), ErrorCode.REVOKED
    )
    data[access.org_key("org1")] = org("org1")
    data[access.revoked_key("org1", 0xBEEF)] = codec.encode({"height": 3})
    assert refusal(lambda: run(M1), ErrorCode.REVOKED) == (
        f"the certificate of sender {M1.address.hex()} (organisation org1, serial beef) was revoked"
    )
    # the serial is revoked for org1 only
    data[access.member_key(M2.address)] = mem("org2", serial=0xBEEF, ca_fp=b"fp", not_after=9000)
    run(M2)
    data[access.frozen_key(M2.address)] = b"\xf5"
    assert refusal(lambda: run(M2), ErrorCode.FROZEN) == (
        f"account {M2.address.hex()} is frozen by governance"
    )


def test_frozen_contract_is_refused_before_anything_else() -> None:
    data = records()
    data[access.frozen_key(TOKEN_ADDRESS)] = b"\xf5"
    run = checker(data)
    assert refusal(lambda: run(OUT), ErrorCode.FROZEN) == "contract 'token' is frozen by governance"
    assert refusal(lambda: run(A1, contract="gov", method="enroll"), ErrorCode.FROZEN)


def test_enroll_is_public_but_not_for_frozen_accounts() -> None:
    data = records("certificate")
    run = checker(data)
    run(OUT, contract="gov", method="enroll")
    refusal(lambda: run(OUT, contract="gov", method="vote"), ErrorCode.NOT_MEMBER)
    data[access.frozen_key(OUT.address)] = b"\xf5"
    assert refusal(lambda: run(OUT, contract="gov", method="enroll"), ErrorCode.FROZEN) == (
        f"account {OUT.address.hex()} is frozen"
    )


def test_policy_lookup_method_then_contract_then_default() -> None:
    data = records()
    run = checker(data)
    assert access.method_policy(data.get, "token", "transfer") == (
        "token.transfer (default)",
        access.DEFAULT_POLICY,
    )
    data[access.policy_key("token", "*")] = codec.encode(Policy("ALL").to_value())
    assert access.method_policy(data.get, "token", "transfer")[0] == "token.*"
    assert refusal(lambda: run(M1), ErrorCode.POLICY_NOT_MET) == (
        "policy token.* (ALL of every organisation (any role)) is not met: needs 2 of 2 "
        "organisations, approved by org1"
    )
    run(M1, M2)
    data[access.policy_key("token", "transfer")] = codec.encode(
        Policy("ANY", ("org2",), ("admin",)).to_value()
    )
    assert refusal(lambda: run(M1, M2), ErrorCode.POLICY_NOT_MET) == (
        "policy token.transfer (ANY of org2 (role admin)) is not met: needs 1 of 1 "
        "organisations, approved by none"
    )
    run(M1, A2)
    # ``burn`` still falls back on token.*
    assert refusal(lambda: run(A2, method="burn"), ErrorCode.POLICY_NOT_MET).startswith(
        "policy token.* "
    )


def test_malformed_records_are_node_faults() -> None:
    data = records()
    data[access.member_key(M1.address)] = b"\xff\xff"
    with pytest.raises(InternalError, match="malformed member record"):
        checker(data)(M1)
    data[access.member_key(M1.address)] = codec.encode({"org": "org1"})
    with pytest.raises(InternalError, match="malformed member record"):
        checker(data)(M1)


def test_record_layout() -> None:
    m = access.Member("org1", ("admin",), b"pk", 7, b"fp", 99, True)
    assert access.Member.from_value(codec.decode(codec.encode(m.to_value()))) == m
    assert access.revoked_key("org1", 1) == b"rev/org1/" + (1).to_bytes(20, "big")
    assert access.revoked_key("org1", 2**160 - 1).endswith(b"\xff" * 20)
    assert access.role_key("org1", "inspector") == b"role/org1/inspector"
    assert access.policy_key("token", "*") == b"pol/token.*"
    assert access.kind_policy_key("add_org") == b"kpol/add_org"
    assert access.VALSET_KEY.endswith(b"gov/val")


# -- the executor -------------------------------------------------------------------------------
CAS = {o: generate_org_ca(o, o)[0].decode() for o in ("org1", "org2")}


def genesis(mode: str | None) -> Genesis:
    return Genesis(
        chain_id=CHAIN,
        genesis_time=1_700_000_000_000,
        crypto_suite="ed25519",
        validators=(Validator(signer(99).public_key, 10, "v"),),
        contracts={"token": {"balances": {s.address.hex(): 100 for s in (A1, M1, M2, OUT)}}},
        organisations=(
            Organisation(
                "org1", "one", CAS["org1"], (A1.public_key,), (Member(M1.public_key, ("member",)),)
            ),
            Organisation(
                "org2", "two", CAS["org2"], (A2.public_key,), (Member(M2.public_key, ("member",)),)
            ),
        ),
        governance=None
        if mode is None
        else Governance(mode, 10, {"token.transfer": {"rule": "ALL"}}),
    )


def start(mode: str | None) -> tuple[Executor, DictState]:
    ex = Executor(default_registry(), SUITE)
    state = DictState()
    g = genesis(mode)
    state.apply(
        ex.init_genesis(state, BlockContext(CHAIN, 0, g.genesis_time, b""), g.contract_params())
    )
    return ex, state


def transfer(s: Signer, nonce: int, endorsers: list[Signer | bytes] | None = None) -> Transaction:
    return Transaction.create(
        s,
        chain_id=CHAIN,
        nonce=nonce,
        contract="token",
        method="transfer",
        args={"to": OUT.address, "amount": 1},
        endorsers=endorsers or [],
    )


def run_block(ex: Executor, state: DictState, *txs: Transaction) -> list[tuple[str, str]]:
    result = ex.execute_block(state, BlockContext(CHAIN, 1, 1_700_000_001_000, b""), txs)
    state.apply(result.writes)
    return [(r.code, r.message) for r in result.receipts]


def test_open_mode_executes_without_access_checks() -> None:
    ex, state = start(None)
    assert run_block(ex, state, transfer(OUT, 0), transfer(M1, 0)) == [("ok", ""), ("ok", "")]
    ex.check_admission(state, BlockContext(CHAIN, 2, 0, b""), transfer(OUT, 1))
    ex, state = start("open")  # a governance section in open mode: the same
    assert run_block(ex, state, transfer(OUT, 0)) == [("ok", "")]


def test_endorsements_meet_the_policy_in_key_mode() -> None:
    ex, state = start("key")
    codes = run_block(ex, state, transfer(M1, 0), transfer(M1, 1, [M2]), transfer(OUT, 0, [M2]))
    assert codes[0] == (
        "policy_not_met",
        "policy token.transfer (ALL of every organisation (any role)) is not met: needs 2 of 2 "
        "organisations, approved by org1",
    )
    assert codes[1] == ("ok", "")
    assert codes[2][0] == "not_member"
    assert account_nonce(state, OUT.address) == 1  # a refused member check uses the nonce
    with pytest.raises(ExecutionFailure) as exc:
        ex.check_admission(state, BlockContext(CHAIN, 2, 0, b""), transfer(M1, 2))
    assert exc.value.code == ErrorCode.POLICY_NOT_MET


def test_a_bad_endorsement_signature_is_a_bad_signature() -> None:
    ex, state = start("key")
    good = transfer(M1, 0, [M2])
    forged = with_endorsements(good, ((M2.public_key, bytes(64)),))
    unsigned = transfer(M1, 0, [M2.public_key])  # a slot the endorser never signed
    other = M2.sign(transfer(M1, 0, [A2]).signing_bytes())  # M2 signed something else
    misplaced = with_endorsements(good, ((M2.public_key, other),))
    # the sender signed the list of endorsers: dropping one breaks the sender's signature
    stripped = with_endorsements(good, ())
    for tx in (forged, unsigned, misplaced, stripped):
        assert run_block(ex, state, tx) == [
            ("bad_signature", "the signature does not verify for the sender")
        ]
    assert account_nonce(state, M1.address) == 0  # nothing changed, not even the nonce
    assert run_block(ex, state, good) == [("ok", "")]


def with_endorsements(
    tx: Transaction, endorsements: tuple[tuple[bytes, bytes], ...]
) -> Transaction:
    return Transaction(
        tx.chain_id,
        tx.sender,
        tx.nonce,
        tx.expiry,
        tx.contract,
        tx.method,
        tx.args,
        tx.gas_limit,
        tx.signature,
        endorsements,
    )
