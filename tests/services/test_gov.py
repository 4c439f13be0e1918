"""The ``gov`` contract on a real chain: access policies, members, proposals and their effects
on the chain (validators, parameters), certificate identity, and replay determinism.

Every test runs a :class:`Chain` on RocksDB in ``tmp_path`` with three organisations, builds
blocks with a solo commit, and checks each receipt's code and message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from citychain import codec
from citychain.chain import Chain, PendingBlock
from citychain.crypto import ED25519, Signer
from citychain.crypto.member_certs import issue_member_cert
from citychain.errors import ConfigError, ErrorCode, ExecutionFailure, InvalidInput, ProofError
from citychain.execution import (
    BlockContext,
    Context,
    Contract,
    ContractRegistry,
    method,
    query,
)
from citychain.execution.keys import account_nonce
from citychain.p2p.certs import generate_org_ca
from citychain.services.gov.contract import Gov
from citychain.services.token.contract import Token
from citychain.store.kv import KVStore
from citychain.types import Block, Commit, Receipt, Transaction, Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation

CHAIN = "gov-chain"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


T0 = ms(START)
ORGS = ("org1", "org2", "org3")
CAS = {o: generate_org_ca(o, f"Org {o}") for o in (*ORGS, "org4")}
CA1_TWIN = generate_org_ca("org1", "Org org1")  # the same subject, another key
CA9 = generate_org_ca("org9", "Org org9")  # an organisation that is not on the chain


def key(n: int) -> Signer:
    return Signer(ED25519, bytes([n]) * 32)


VALS = {o: key(0x10 + i) for i, o in enumerate(ORGS)}
ADMIN = {o: key(0x20 + i) for i, o in enumerate((*ORGS, "org4"))}
ADMIN1B = key(0x2A)  # org1's second admin
ALICE, BOB, CAROL = key(0x31), key(0x32), key(0x33)  # members of org1, org2, org3
OUTSIDER, DAVE, ERIN = key(0x41), key(0x42), key(0x43)  # not registered in genesis
NEW_VAL = key(0x50)

POLICIES: dict[str, Any] = {
    "token.mint": {"rule": "ANY", "orgs": ["org1"], "roles": ["admin"]},
    "token.burn": {"rule": "ALL"},
    "token.transfer": {"rule": "MAJORITY"},
    "probe.two": {"rule": "2", "orgs": list(ORGS), "roles": ["admin"]},
    "probe.frac": {"rule": "2/3", "roles": ["admin"]},
    "probe.never": {"rule": "4", "orgs": list(ORGS)},
}
MAJORITY_ADMINS = "MAJORITY of every organisation (role admin)"


class Probe(Contract):
    """A contract with methods under different policies, shipped in two versions."""

    name = "probe"

    def _note(self, ctx: Context, args: dict[str, Any]) -> int:
        ctx.set(b"n/" + ctx.caller, codec.encode(args.get("text", "")))
        ctx.emit("noted", by=ctx.caller)
        return type(self).version

    @method
    def note(self, ctx: Context, args: dict[str, Any]) -> int:
        return self._note(ctx, args)

    @method
    def two(self, ctx: Context, args: dict[str, Any]) -> int:
        return self._note(ctx, args)

    @method
    def frac(self, ctx: Context, args: dict[str, Any]) -> int:
        return self._note(ctx, args)

    @method
    def never(self, ctx: Context, args: dict[str, Any]) -> int:
        return self._note(ctx, args)

    @query
    def which(self, ctx: Context, args: dict[str, Any]) -> int:
        return 1


class ProbeV2(Probe):
    version = 2

    @query
    def which(self, ctx: Context, args: dict[str, Any]) -> int:
        return 2


def registry() -> ContractRegistry:
    reg = ContractRegistry()
    for c in (Gov(), Token(), Probe(), ProbeV2()):
        reg.register(c)
    return reg


def make_genesis(
    mode: str = "key", policies: dict[str, Any] | None = None, voting_period: int = 20
) -> Genesis:
    members = {"org1": (ALICE,), "org2": (BOB,), "org3": (CAROL,)}
    organisations = [
        Organisation(
            o,
            f"Org {o}",
            CAS[o][0].decode(),
            admins=(ADMIN[o].public_key, *((ADMIN1B.public_key,) if o == "org1" else ())),
            members=tuple(Member(m.public_key, ("member",)) for m in members[o]),
        )
        for o in ORGS
    ]
    holders = [*(ADMIN[o] for o in ORGS), ADMIN1B, ALICE, BOB, CAROL]
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=T0,
        crypto_suite="ed25519",
        validators=tuple(Validator(VALS[o].public_key, 10, f"val-{o}") for o in ORGS),
        params=ChainParams(block_max_txs=100),
        contracts={
            "token": {
                "issuers": [ADMIN[o].address.hex() for o in ORGS],
                "balances": {s.address.hex(): 1000 for s in holders},
            }
        },
        organisations=tuple(organisations),
        governance=Governance(mode, voting_period, POLICIES if policies is None else policies),
        validator_orgs=tuple((VALS[o].public_key, o) for o in ORGS),
    )
    # through JSON, as a node loads it: the document must pass the genesis checks
    return Genesis.from_json(genesis.to_json())


class Net:
    """A chain, its blocks, and a nonce count per sender for the block being built."""

    def __init__(self, path: Path, genesis: Genesis) -> None:
        self.path = path
        self.genesis = genesis
        self.chain = Chain(KVStore(path), genesis, registry())
        self.blocks: list[Block] = []
        self.last: PendingBlock | None = None
        self._sent: dict[bytes, int] = {}

    @property
    def height(self) -> int:
        return self.chain.height

    def tx(
        self,
        s: Signer,
        contract: str,
        method_name: str,
        args: dict[str, Any] | None = None,
        endorsers: Sequence[Signer] = (),
    ) -> Transaction:
        address = s.address
        nonce = account_nonce(self.chain.state, address) + self._sent.get(address, 0)
        self._sent[address] = self._sent.get(address, 0) + 1
        return Transaction.create(
            s,
            chain_id=CHAIN,
            nonce=nonce,
            contract=contract,
            method=method_name,
            args=args or {},
            gas_limit=20_000_000,
            endorsers=endorsers,
        )

    def forget(self) -> None:
        """Drop the nonces of transactions built but never put in a block."""
        self._sent.clear()

    def block(self, *txs: Transaction, at: int | None = None) -> tuple[Receipt, ...]:
        t = T0 + 1000 * (self.height + 1) if at is None else at
        val = VALS["org1"]
        pending = self.chain.build_block(list(txs), t, val.public_key)
        self.chain.commit(pending, Commit.sign_single(val, CHAIN, pending.header))
        self._sent.clear()
        self.blocks.append(pending.block)
        self.last = pending
        return pending.receipts

    def send(
        self,
        s: Signer,
        contract: str,
        method_name: str,
        args: dict[str, Any] | None = None,
        endorsers: Sequence[Signer] = (),
    ) -> Receipt:
        (r,) = self.block(self.tx(s, contract, method_name, args, endorsers))
        return r

    def gov(self, s: Signer, method_name: str, **args: Any) -> Receipt:
        return self.send(s, "gov", method_name, args)

    def query(self, contract: str, method_name: str, **args: Any) -> Any:
        header = self.chain.last_header()
        ctx = BlockContext(
            CHAIN, self.height, header.time if header else T0, header.proposer if header else b""
        )
        return self.chain.executor.query(self.chain.state, ctx, contract, method_name, args)

    def balance(self, s: Signer) -> int:
        result: int = self.query("token", "balance", owner=s.address)
        return result

    # -- proposals -------------------------------------------------------------------------
    def propose(self, s: Signer, kind: str, params: Any, **extra: Any) -> int:
        r = self.gov(s, "propose", kind=kind, params=params, **extra)
        ok(r)
        pid: int = r.result
        return pid

    def enact(self, kind: str, params: Any, voters: Iterable[Signer] = (ADMIN["org2"],)) -> Receipt:
        """Propose as org1's admin, vote with ``voters``, execute: the execute receipt."""
        pid = self.propose(ADMIN["org1"], kind, params)
        for v in voters:
            ok(self.gov(v, "vote", id=pid))
        r = self.gov(ADMIN["org1"], "execute", id=pid)
        ok(r)
        return r


def ok(r: Receipt) -> Receipt:
    assert r.code == ErrorCode.OK, f"{r.code}: {r.message}"
    return r


def refused(r: Receipt, code: ErrorCode, message: str) -> None:
    """``r`` failed with ``code`` and a message containing ``message``."""
    assert (r.code, message in r.message) == (code.value, True), f"{r.code}: {r.message}"
    assert r.result is None
    assert r.events == ()


def events(r: Receipt) -> list[tuple[str, str]]:
    return [(e.contract, e.type) for e in r.events]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "chain", make_genesis())
    yield n
    n.chain.close()


def replay(net: Net, path: Path) -> Chain:
    """A fresh chain on the same genesis that re-executes every block of ``net``."""
    fresh = Chain(KVStore(path), net.genesis, registry())
    for block in net.blocks:
        pending = fresh.check_block(block)
        fresh.commit(pending, Commit.sign_single(VALS["org1"], CHAIN, block.header))
        assert fresh.state.root == block.header.state_root
        assert fresh.blocks.receipts(block.height) == net.chain.blocks.receipts(block.height)
    return fresh


# -- genesis ------------------------------------------------------------------------------------
def test_genesis_writes_the_registry(net: Net) -> None:
    assert net.query("gov", "config") == {"mode": "key", "voting_period": 20}
    assert [o["id"] for o in net.query("gov", "orgs")] == list(ORGS)
    org1 = net.query("gov", "org", id="org1")
    assert org1["admins"] == sorted([ADMIN["org1"].public_key, ADMIN1B.public_key])
    assert org1["roles"] == ["admin", "auditor", "member", "validator"]
    m = net.query("gov", "member", address=ALICE.address)
    assert (m["org"], m["roles"], m["standing"], m["revoked"]) == ("org1", ["member"], "ok", False)
    assert net.query("gov", "member", address=OUTSIDER.address) is None
    vals = net.query("gov", "validators")
    assert vals["from"] == 1
    assert sorted(v[3] for v in vals["validators"]) == list(ORGS)
    pol = net.query("gov", "policy", target="token.mint")
    assert pol["describe"] == "ANY of org1 (role admin)"
    assert net.query("gov", "policy", target="probe.note") == {
        "target": "probe.note (default)",
        "rule": "ANY",
        "orgs": [],
        "roles": [],
        "describe": "ANY of every organisation (any role)",
    }
    assert net.query("gov", "policy", target="gov:add_org")["describe"] == MAJORITY_ADMINS
    assert {p["target"] for p in net.query("gov", "policies")} == set(POLICIES)
    assert net.chain.organisations()[0]["id"] == "org1"


# -- access policies ----------------------------------------------------------------------------
def test_any_of_one_org_admins(net: Net) -> None:
    a1, a2 = ADMIN["org1"], ADMIN["org2"]
    args = {"to": ALICE.address, "amount": 5}
    r = net.send(a2, "token", "mint", args)
    refused(
        r,
        ErrorCode.POLICY_NOT_MET,
        "policy token.mint (ANY of org1 (role admin)) is not met: needs 1 of 1 organisations, "
        "approved by none",
    )
    assert r.gas_used > 0
    r = net.send(ALICE, "token", "mint", args)  # org1, but not an admin
    refused(r, ErrorCode.POLICY_NOT_MET, "policy token.mint (ANY of org1 (role admin))")
    assert net.balance(ALICE) == 1000
    ok(net.send(a2, "token", "mint", args, endorsers=[a1]))  # org1's admin co-signs
    ok(net.send(a1, "token", "mint", args))
    assert net.balance(ALICE) == 1010


def test_all_orgs(net: Net) -> None:
    args = {"amount": 7}
    words = "policy token.burn (ALL of every organisation (any role)) is not met"
    refused(
        net.send(ALICE, "token", "burn", args),
        ErrorCode.POLICY_NOT_MET,
        f"{words}: needs 3 of 3 organisations, approved by org1",
    )
    refused(
        net.send(ALICE, "token", "burn", args, endorsers=[BOB, ADMIN1B]),
        ErrorCode.POLICY_NOT_MET,
        f"{words}: needs 3 of 3 organisations, approved by org1, org2",
    )
    assert net.balance(ALICE) == 1000
    r = ok(net.send(ALICE, "token", "burn", args, endorsers=[BOB, CAROL]))
    assert events(r) == [("token", "burn")]
    assert net.balance(ALICE) == 993


def test_majority_counts_each_org_once(net: Net) -> None:
    args = {"to": OUTSIDER.address, "amount": 10}
    words = "policy token.transfer (MAJORITY of every organisation (any role)) is not met"
    refused(
        net.send(ALICE, "token", "transfer", args),
        ErrorCode.POLICY_NOT_MET,
        f"{words}: needs 2 of 3 organisations, approved by org1",
    )
    # three keys of org1: still one organisation
    refused(
        net.send(ALICE, "token", "transfer", args, endorsers=[ADMIN["org1"], ADMIN1B]),
        ErrorCode.POLICY_NOT_MET,
        f"{words}: needs 2 of 3 organisations, approved by org1",
    )
    ok(net.send(ALICE, "token", "transfer", args, endorsers=[CAROL]))
    assert (net.balance(ALICE), net.balance(OUTSIDER)) == (990, 10)


def test_k_of_n_with_a_role(net: Net) -> None:
    a1, a2, a3 = (ADMIN[o] for o in ORGS)
    words = "policy probe.two (2-of-n of org1, org2, org3 (role admin)) is not met"
    refused(
        net.send(a1, "probe", "two"),
        ErrorCode.POLICY_NOT_MET,
        f"{words}: needs 2 of 3 organisations, approved by org1",
    )
    # BOB is of org2 but not an admin: his signature is no approval under this policy
    refused(
        net.send(a1, "probe", "two", endorsers=[BOB]),
        ErrorCode.POLICY_NOT_MET,
        f"{words}: needs 2 of 3 organisations, approved by org1",
    )
    ok(net.send(a1, "probe", "two", endorsers=[a3]))
    ok(net.send(BOB, "probe", "two", endorsers=[a1, a2]))  # the sender needs no role itself
    refused(
        net.send(a1, "probe", "never", endorsers=[a2, a3]),
        ErrorCode.POLICY_NOT_MET,
        "policy probe.never (4-of-n of org1, org2, org3 (any role)) is not met: it needs 4 "
        "organisations but only 3 are in its scope, so it can never be met",
    )


def test_fraction(net: Net) -> None:
    a1, a2 = ADMIN["org1"], ADMIN["org2"]
    refused(
        net.send(a1, "probe", "frac", endorsers=[ADMIN1B]),
        ErrorCode.POLICY_NOT_MET,
        "policy probe.frac (2/3 of every organisation (role admin)) is not met: needs 2 of 3 "
        "organisations, approved by org1",
    )
    ok(net.send(a2, "probe", "frac", endorsers=[a1]))


def test_every_signer_must_be_a_member_in_good_standing(net: Net) -> None:
    r = net.send(ALICE, "token", "transfer", {"to": BOB.address, "amount": 1}, [OUTSIDER])
    refused(
        r,
        ErrorCode.NOT_MEMBER,
        f"endorser {OUTSIDER.address.hex()} is not a registered member of any organisation",
    )


def test_a_non_member_is_refused_and_its_nonce_advances(net: Net) -> None:
    tx = net.tx(OUTSIDER, "probe", "note")
    with pytest.raises(ExecutionFailure) as exc:  # the mempool's early refusal
        net.chain.check_admission(tx)
    assert exc.value.code == ErrorCode.NOT_MEMBER
    (r,) = net.block(tx)
    refused(
        r,
        ErrorCode.NOT_MEMBER,
        f"sender {OUTSIDER.address.hex()} is not a registered member of any organisation",
    )
    assert account_nonce(net.chain.state, OUTSIDER.address) == 1
    (again,) = net.block(tx)  # the refused transaction cannot be replayed
    refused(again, ErrorCode.NONCE_TOO_LOW, "nonce 0 is already used")
    net.chain.check_admission(net.tx(ALICE, "probe", "note"))  # a member passes


# -- members ------------------------------------------------------------------------------------
def test_register_member_by_its_org_admin(net: Net) -> None:
    a1, a2 = ADMIN["org1"], ADMIN["org2"]
    refused(net.send(DAVE, "probe", "note"), ErrorCode.NOT_MEMBER, "is not a registered member")
    r = net.gov(a2, "register_member", public_key=DAVE.public_key, org="org1", roles=["member"])
    refused(
        r,
        ErrorCode.UNAUTHORIZED,
        f"only an admin of organisation 'org1' may do this; {a2.address.hex()} is admin of 'org2'",
    )
    r = net.gov(ALICE, "register_member", public_key=DAVE.public_key, org="org1", roles=["member"])
    refused(r, ErrorCode.UNAUTHORIZED, f"{ALICE.address.hex()} is member of 'org1'")
    r = net.gov(a1, "register_member", public_key=DAVE.public_key, org="org9", roles=["member"])
    refused(r, ErrorCode.NOT_FOUND, "no organisation 'org9' on this chain")
    r = ok(net.gov(a1, "register_member", public_key=DAVE.public_key, org="org1", roles=["member"]))
    assert r.result == DAVE.address
    assert events(r) == [("gov", "member_registered")]
    assert r.events[0].attributes == {"address": DAVE.address, "org": "org1", "roles": "member"}
    ok(net.send(DAVE, "probe", "note"))
    # a member of another organisation cannot be moved by this one's admin
    r = net.gov(a1, "register_member", public_key=BOB.public_key, org="org1", roles=["member"])
    refused(
        r,
        ErrorCode.BAD_ARGUMENTS,
        f"{BOB.address.hex()} is already a member of organisation 'org2'",
    )
    members = net.query("gov", "members", org="org1")
    assert {m["address"] for m in members} == {
        ADMIN["org1"].address,
        ADMIN1B.address,
        ALICE.address,
        DAVE.address,
    }


def test_custom_roles(net: Net) -> None:
    a1, a2 = ADMIN["org1"], ADMIN["org2"]
    args = {"public_key": DAVE.public_key, "org": "org1", "roles": ["inspector"]}
    refused(
        net.send(a1, "gov", "register_member", args),
        ErrorCode.BAD_ARGUMENTS,
        "organisation 'org1' has no role 'inspector' (built-in: admin, auditor, member, "
        "validator; define custom roles with gov.define_role)",
    )
    refused(
        net.gov(a2, "define_role", org="org1", role="inspector"),
        ErrorCode.UNAUTHORIZED,
        "only an admin of organisation 'org1' may do this",
    )
    refused(
        net.gov(a1, "define_role", org="org1", role="admin"),
        ErrorCode.BAD_ARGUMENTS,
        "'admin' is a built-in role; every organisation has it",
    )
    refused(
        net.gov(a1, "define_role", org="org1", role="no such"),
        ErrorCode.BAD_ARGUMENTS,
        "role 'no such' must be 1 to 64 letters",
    )
    r = ok(net.gov(a1, "define_role", org="org1", role="inspector"))
    assert events(r) == [("gov", "role_defined")]
    assert "inspector" in net.query("gov", "org", id="org1")["roles"]
    assert "inspector" not in net.query("gov", "org", id="org2")["roles"]
    ok(net.send(a1, "gov", "register_member", args))
    assert net.query("gov", "member", address=DAVE.address)["roles"] == ["inspector"]
    # the role is org1's: org2 has no such role
    args2 = {"public_key": ERIN.public_key, "org": "org2", "roles": ["inspector", "member"]}
    refused(
        net.send(a2, "gov", "register_member", args2),
        ErrorCode.BAD_ARGUMENTS,
        "organisation 'org2' has no role 'inspector'",
    )


def test_remove_member(net: Net) -> None:
    refused(
        net.gov(ADMIN["org2"], "remove_member", address=ALICE.address),
        ErrorCode.UNAUTHORIZED,
        "only an admin of organisation 'org1'",
    )
    ok(net.gov(ADMIN["org1"], "remove_member", address=ALICE.address))
    refused(net.send(ALICE, "probe", "note"), ErrorCode.NOT_MEMBER, "is not a registered member")
    refused(
        net.gov(ADMIN["org1"], "remove_member", address=ALICE.address),
        ErrorCode.NOT_FOUND,
        f"{ALICE.address.hex()} is not a member",
    )


# -- proposals: the state machine ---------------------------------------------------------------
def test_propose_vote_execute_and_the_history(net: Net) -> None:
    a1, a2 = ADMIN["org1"], ADMIN["org2"]
    r = ok(net.gov(a1, "propose", kind="freeze", params={"address": BOB.address}))
    pid = r.result
    assert pid == 1
    assert events(r) == [("gov", "proposal_created")]
    assert r.events[0].attributes == {
        "id": 1,
        "kind": "freeze",
        "proposer": a1.address,
        "deadline": net.height + 20,
    }
    view = net.query("gov", "proposal", id=pid)
    assert (view["status"], view["passed"], view["approving_orgs"]) == ("open", False, ["org1"])
    assert view["policy"] == MAJORITY_ADMINS
    assert view["needs"] == "needs 2 of 3 organisations, approved by org1"
    r = ok(net.gov(a2, "vote", id=pid))
    assert events(r) == [("gov", "vote")]
    assert r.events[0].attributes == {"id": 1, "voter": a2.address, "org": "org2", "approve": True}
    assert net.query("gov", "proposal", id=pid)["passed"] is True
    assert net.query("gov", "frozen", address=BOB.address) is False
    r = ok(net.gov(ADMIN["org3"], "execute", id=pid))  # anyone may execute a passed proposal
    executed_at = net.height
    assert events(r) == [("gov", "frozen"), ("gov", "proposal_executed")]
    assert r.result == {"address": BOB.address.hex(), "what": f"account {BOB.address.hex()}"}
    assert net.query("gov", "frozen", address=BOB.address) is True
    view = net.query("gov", "proposal", id=pid)
    assert (view["status"], view["executed_height"]) == ("executed", executed_at)
    assert [p["id"] for p in net.query("gov", "proposals", status="executed")] == [1]
    assert net.query("gov", "proposals", status="open") == []

    history = net.query("gov", "history", proposal=pid)
    assert [(h["action"], h["actor"], h["proposal"]) for h in history] == [
        ("propose", a1.address, 1),
        ("vote", a2.address, 1),
        ("execute", ADMIN["org3"].address, 1),
    ]
    assert [h["seq"] for h in history] == sorted(h["seq"] for h in history)
    assert [h["height"] for h in history] == [executed_at - 2, executed_at - 1, executed_at]
    assert history[0]["detail"] == {"kind": "freeze", "deadline": executed_at - 2 + 20}
    assert history[1]["detail"] == {"org": "org2", "approve": True}
    assert history[2]["detail"] == {
        "kind": "freeze",
        "address": BOB.address.hex(),
        "what": f"account {BOB.address.hex()}",
    }
    assert history[2]["tx"] == net.blocks[-1].txs[0].hash
    assert history[2]["time"] == net.blocks[-1].header.time
    # paging: after a sequence number, with a limit
    everything = net.query("gov", "history")
    assert [h["seq"] for h in everything] == list(range(1, len(everything) + 1))
    assert net.query("gov", "history", after=1, limit=1) == [everything[1]]


def test_executing_twice_double_votes_and_missing_votes(net: Net) -> None:
    a1, a2, a3 = (ADMIN[o] for o in ORGS)
    pid = net.propose(a1, "freeze", {"address": BOB.address})
    refused(net.gov(a1, "vote", id=pid), ErrorCode.DUPLICATE, f"already voted on proposal {pid}")
    # a second admin of the proposer's organisation: a vote, but not a second organisation
    ok(net.gov(ADMIN1B, "vote", id=pid))
    ok(net.gov(a2, "vote", id=pid, approve=False))
    refused(net.gov(a2, "vote", id=pid), ErrorCode.DUPLICATE, "already voted")
    refused(
        net.gov(a1, "execute", id=pid),
        ErrorCode.PROPOSAL_NOT_PASSED,
        f"proposal {pid} has not passed: policy gov:freeze ({MAJORITY_ADMINS}) needs 2 of 3 "
        "organisations, approved by org1",
    )
    assert net.query("gov", "frozen", address=BOB.address) is False
    refused(
        net.gov(ALICE, "vote", id=pid),
        ErrorCode.POLICY_NOT_MET,
        f"policy gov:freeze ({MAJORITY_ADMINS}) does not let {ALICE.address.hex()} (member of "
        "org1) vote on it",
    )
    refused(net.gov(a1, "vote", id=99), ErrorCode.NOT_FOUND, "no proposal 99")
    refused(
        net.gov(a1, "vote", id=pid, approve="yes"),
        ErrorCode.BAD_ARGUMENTS,
        "argument 'approve' must be true or false",
    )
    ok(net.gov(a3, "vote", id=pid))
    executed = ok(net.gov(a1, "execute", id=pid))
    refused(
        net.gov(a1, "execute", id=pid),
        ErrorCode.PROPOSAL_EXECUTED,
        f"proposal {pid} was already executed at height {net.height - 1}",
    )
    refused(net.gov(a2, "vote", id=pid), ErrorCode.PROPOSAL_EXECUTED, "was already executed")
    refused(
        net.gov(a1, "expire", id=pid), ErrorCode.PROPOSAL_EXECUTED, f"proposal {pid} is executed"
    )
    assert executed.events[-1].type == "proposal_executed"


def test_who_may_propose(net: Net) -> None:
    refused(
        net.gov(ALICE, "propose", kind="freeze", params={"address": BOB.address}),
        ErrorCode.POLICY_NOT_MET,
        f"policy gov:freeze ({MAJORITY_ADMINS}) does not let {ALICE.address.hex()} (member of "
        "org1) propose it",
    )
    refused(
        net.gov(ADMIN["org1"], "propose", kind="coup", params={}),
        ErrorCode.BAD_ARGUMENTS,
        "unknown proposal kind 'coup' (kinds: add_org, update_org",
    )
    refused(
        net.gov(ADMIN["org1"], "propose", kind="freeze", params={"address": b"short"}),
        ErrorCode.BAD_ARGUMENTS,
        "param 'address' must be a 20-byte address",
    )
    refused(
        net.gov(ADMIN["org1"], "propose", kind="freeze", params={"contract": "gov"}),
        ErrorCode.BAD_ARGUMENTS,
        "the governance contract cannot be frozen",
    )
    refused(
        net.gov(ADMIN["org1"], "propose", kind="freeze", params={"address": BOB.address, "x": 1}),
        ErrorCode.BAD_ARGUMENTS,
        "unknown proposal param(s) x",
    )
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="freeze",
            params={"address": BOB.address},
            deadline=net.height + 1000,
        ),
        ErrorCode.BAD_ARGUMENTS,
        "argument 'deadline' must be at most",
    )
    assert net.query("gov", "proposals") == []  # nothing was created


def test_a_proposal_past_its_deadline(net: Net) -> None:
    a1, a2, a3 = (ADMIN[o] for o in ORGS)
    deadline = net.height + 3  # proposed at height + 1
    pid = net.propose(a1, "freeze", {"address": BOB.address}, deadline=deadline)
    ok(net.gov(a2, "vote", id=pid))
    refused(
        net.gov(a1, "expire", id=pid),
        ErrorCode.BAD_ARGUMENTS,
        f"proposal {pid} is open until height {deadline}; this is {deadline}",
    )
    assert net.height == deadline  # the next block is past the deadline
    refused(
        net.gov(a1, "execute", id=pid),
        ErrorCode.PROPOSAL_EXPIRED,
        f"proposal {pid} expired after height {deadline}; cannot execute it",
    )
    assert net.query("gov", "frozen", address=BOB.address) is False  # nothing changed
    assert net.query("gov", "proposal", id=pid)["status"] == "expired"  # before expire
    refused(
        net.gov(a3, "vote", id=pid),
        ErrorCode.PROPOSAL_EXPIRED,
        f"proposal {pid} expired after height {deadline}; cannot vote on it",
    )
    r = ok(net.gov(BOB, "expire", id=pid))  # anyone (a member) may write it down
    assert events(r) == [("gov", "proposal_expired")]
    assert net.query("gov", "history", proposal=pid)[-1]["action"] == "expire"
    assert [p["id"] for p in net.query("gov", "proposals", status="expired")] == [pid]
    refused(net.gov(a1, "execute", id=pid), ErrorCode.PROPOSAL_EXPIRED, "expired after height")
    refused(net.gov(a1, "expire", id=pid), ErrorCode.PROPOSAL_EXPIRED, f"proposal {pid} is expired")
    assert net.query("gov", "frozen", address=BOB.address) is False


def test_executing_on_the_deadline_height_is_in_time(net: Net) -> None:
    deadline = net.height + 3
    pid = net.propose(ADMIN["org1"], "freeze", {"address": BOB.address}, deadline=deadline)
    ok(net.gov(ADMIN["org2"], "vote", id=pid))
    ok(net.gov(ADMIN["org1"], "execute", id=pid))
    assert net.height == deadline  # at the deadline height itself


def test_votes_of_a_member_revoked_after_voting_do_not_count(net: Net) -> None:
    a1, a2, a3 = (ADMIN[o] for o in ORGS)
    pid = net.propose(a1, "freeze", {"address": BOB.address})
    ok(net.gov(a2, "vote", id=pid))
    assert net.query("gov", "proposal", id=pid)["passed"] is True
    net.enact("revoke", {"address": a2.address}, voters=[a3])
    view = net.query("gov", "proposal", id=pid)
    assert (view["passed"], view["approving_orgs"]) == (False, ["org1"])
    refused(
        net.gov(a1, "execute", id=pid),
        ErrorCode.PROPOSAL_NOT_PASSED,
        "needs 2 of 3 organisations, approved by org1",
    )
    ok(net.gov(a3, "vote", id=pid))
    ok(net.gov(a1, "execute", id=pid))


# -- proposals: what each kind changes ----------------------------------------------------------
def test_add_org_then_its_admin_acts(net: Net) -> None:
    a4 = ADMIN["org4"]
    refused(net.send(a4, "probe", "note"), ErrorCode.NOT_MEMBER, "is not a registered member")
    params = {
        "id": "org4",
        "name": "Org four",
        "ca_cert": CAS["org4"][0].decode(),
        "admins": [a4.public_key],
        "roles": ["inspector"],
    }
    wrong_ca = {**params, "ca_cert": CAS["org2"][0].decode()}
    refused(
        net.gov(ADMIN["org1"], "propose", kind="add_org", params=wrong_ca),
        ErrorCode.BAD_ARGUMENTS,
        "organisation 'org4': CA certificate: the CA speaks for 'org2' (subject O), not for "
        "organisation 'org4'",
    )
    refused(
        net.gov(ADMIN["org1"], "propose", kind="add_org", params={**params, "id": "org2"}),
        ErrorCode.BAD_ARGUMENTS,
        "organisation 'org2' already exists",
    )
    r = net.enact("add_org", params)
    assert r.result == {"org": "org4", "name": "Org four", "admins": [a4.public_key.hex()]}
    assert ("gov", "org_added") in events(r)
    assert net.last is not None and net.chain.governance_changed(net.last)
    assert [o["id"] for o in net.chain.organisations()] == [*ORGS, "org4"]
    ok(net.send(a4, "probe", "note"))
    ok(net.gov(a4, "register_member", public_key=DAVE.public_key, org="org4", roles=["inspector"]))
    ok(net.send(DAVE, "probe", "note"))
    # four organisations now: a majority is three
    pid = net.propose(ADMIN["org1"], "freeze", {"address": BOB.address})
    ok(net.gov(ADMIN["org2"], "vote", id=pid))
    refused(
        net.gov(ADMIN["org1"], "execute", id=pid),
        ErrorCode.PROPOSAL_NOT_PASSED,
        "needs 3 of 4 organisations, approved by org1, org2",
    )
    ok(net.gov(a4, "vote", id=pid))
    ok(net.gov(ADMIN["org1"], "execute", id=pid))


def test_remove_org_only_without_validators(net: Net) -> None:
    a3 = ADMIN["org3"]
    refused(
        net.gov(ADMIN["org1"], "propose", kind="remove_org", params={"id": "org3"}),
        ErrorCode.BAD_ARGUMENTS,
        "organisation 'org3' still runs 1 validator(s); remove them first",
    )
    net.enact("remove_validator", {"public_key": VALS["org3"].public_key})
    r = net.enact("remove_org", {"id": "org3"})
    assert r.result == {"org": "org3"}
    assert [o["id"] for o in net.chain.organisations()] == ["org1", "org2"]
    # its members went with it
    for s in (a3, CAROL):
        refused(
            net.send(s, "probe", "note"),
            ErrorCode.NOT_MEMBER,
            f"sender {s.address.hex()} is not a registered member of any organisation",
        )
    assert net.query("gov", "members", org="org3") == []
    # ALL of every organisation now means org1 and org2
    ok(net.send(ALICE, "token", "burn", {"amount": 1}, endorsers=[BOB]))


def test_validator_changes_apply_two_heights_after_execution(net: Net) -> None:
    before = net.chain.validators()
    add = {"public_key": NEW_VAL.public_key, "power": 5, "name": "val-new", "org": "org1"}
    r = net.enact("add_validator", add)
    h = net.height
    assert r.result["from_height"] == h + 2
    assert ("gov", "validator_added") in events(r)
    assert net.chain.validators(h + 1).hash == before.hash
    after = net.chain.validators(h + 2)
    assert {v.public_key: v.power for v in after} == {
        **{VALS[o].public_key: 10 for o in ORGS},
        NEW_VAL.public_key: 5,
    }
    assert net.chain.validators(h + 50).hash == after.hash
    refused(
        net.gov(ADMIN["org1"], "propose", kind="add_validator", params=add),
        ErrorCode.BAD_ARGUMENTS,
        f"{NEW_VAL.public_key.hex()} is already a validator",
    )
    r = net.enact("set_validator_power", {"public_key": NEW_VAL.public_key, "power": 7})
    h2 = net.height
    assert r.result["from"] == 5 and r.result["to"] == 7
    assert {v.public_key: v.power for v in net.chain.validators(h2 + 1)}[NEW_VAL.public_key] == 5
    assert {v.public_key: v.power for v in net.chain.validators(h2 + 2)}[NEW_VAL.public_key] == 7
    net.enact("remove_validator", {"public_key": VALS["org2"].public_key})
    h3 = net.height
    assert VALS["org2"].public_key in {v.public_key for v in net.chain.validators(h3 + 1)}
    assert VALS["org2"].public_key not in {v.public_key for v in net.chain.validators(h3 + 2)}
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="remove_validator",
            params={"public_key": key(0x77).public_key},
        ),
        ErrorCode.NOT_FOUND,
        "is not a validator",
    )
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="set_validator_power",
            params={"public_key": NEW_VAL.public_key, "power": 0},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "param 'power' must be an integer in 1..",
    )
    # the headers carry the set in force at their height
    for b in net.blocks:
        assert b.header.validators_hash == net.chain.validators(b.height).hash


def test_set_params_apply_from_the_next_height(net: Net, tmp_path: Path) -> None:
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="set_params",
            params={"params": {"chain": {"block_max_txs": 0}}},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "chain parameter 'block_max_txs' must be a positive integer",
    )
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="set_params",
            params={"params": {"chain": {"no_such": 1}}},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "unknown chain parameter 'no_such'",
    )
    pid = net.propose(ADMIN["org1"], "set_params", {"params": {"chain": {"block_max_txs": 3}}})
    ok(net.gov(ADMIN["org2"], "vote", id=pid))
    assert net.chain.params.block_max_txs == 100
    # the executing block itself holds five transactions: the old limit still applies to it
    receipts = net.block(
        net.tx(ADMIN["org1"], "gov", "execute", {"id": pid}),
        *(net.tx(s, "probe", "note") for s in (ALICE, BOB, CAROL, ADMIN1B)),
    )
    for r in receipts:
        ok(r)
    assert receipts[0].result["changes"] == {"chain.block_max_txs": [100, 3]}
    assert receipts[0].result["from_height"] == net.height + 1
    assert net.chain.params.block_max_txs == 3
    assert net.query("gov", "params")["chain"]["block_max_txs"] == 3
    four = net.chain.build_block(
        [net.tx(s, "probe", "note") for s in (ALICE, BOB, CAROL, ADMIN1B)],
        T0 + 10**6,
        VALS["org1"].public_key,
    )
    with pytest.raises(ProofError, match="4 transactions exceed the limit of 3"):
        net.chain.check_block(four.block)
    net.forget()
    # a replaying node applies the same limits at the same heights, and so does a restart
    fresh = replay(net, tmp_path / "replayed")
    assert fresh.params.block_max_txs == 3
    fresh.close()
    net.chain.close()
    net.chain = Chain(KVStore(net.path), net.genesis, registry())
    assert net.chain.params.block_max_txs == 3


def test_revoke_a_key(net: Net) -> None:
    refused(
        net.gov(ADMIN["org1"], "propose", kind="revoke", params={"address": OUTSIDER.address}),
        ErrorCode.NOT_FOUND,
        f"{OUTSIDER.address.hex()} is not a member",
    )
    r = net.enact("revoke", {"address": ALICE.address})
    assert r.result == {"address": ALICE.address.hex(), "org": "org1"}
    assert ("gov", "key_revoked") in events(r)
    refused(
        net.send(ALICE, "probe", "note"),
        ErrorCode.REVOKED,
        f"the key of sender {ALICE.address.hex()} was revoked",
    )
    refused(
        net.send(BOB, "token", "transfer", {"to": BOB.address, "amount": 1}, endorsers=[ALICE]),
        ErrorCode.REVOKED,
        f"the key of endorser {ALICE.address.hex()} was revoked",
    )
    m = net.query("gov", "member", address=ALICE.address)
    assert m["revoked"] is True
    assert m["standing"] == f"the key of account {ALICE.address.hex()} was revoked"
    # the organisation's admin cannot undo governance's revocation by registering it again
    r = net.gov(
        ADMIN["org1"], "register_member", public_key=ALICE.public_key, org="org1", roles=["member"]
    )
    refused(r, ErrorCode.REVOKED, "was revoked")
    refused(
        net.gov(ADMIN["org1"], "remove_member", address=ALICE.address),
        ErrorCode.REVOKED,
        "was revoked",
    )
    refused(net.send(ALICE, "probe", "note"), ErrorCode.REVOKED, "was revoked")


def test_freeze_and_unfreeze_an_account(net: Net) -> None:
    r = net.enact("freeze", {"address": BOB.address})
    refused(
        net.send(BOB, "probe", "note"),
        ErrorCode.FROZEN,
        f"account {BOB.address.hex()} is frozen by governance",
    )
    refused(
        net.send(ALICE, "token", "transfer", {"to": ALICE.address, "amount": 1}, endorsers=[BOB]),
        ErrorCode.FROZEN,
        f"account {BOB.address.hex()} is frozen by governance",
    )
    # a frozen account still receives
    ok(net.send(ALICE, "token", "transfer", {"to": BOB.address, "amount": 1}, endorsers=[CAROL]))
    assert r.result["what"] == f"account {BOB.address.hex()}"
    net.enact("unfreeze", {"address": BOB.address})
    ok(net.send(BOB, "probe", "note"))
    pid = net.propose(ADMIN["org1"], "unfreeze", {"address": BOB.address})
    ok(net.gov(ADMIN["org2"], "vote", id=pid))
    refused(
        net.gov(ADMIN["org1"], "execute", id=pid),
        ErrorCode.NOT_FOUND,
        f"account {BOB.address.hex()} is not frozen",
    )


def test_freeze_and_unfreeze_a_contract(net: Net) -> None:
    net.enact("freeze", {"contract": "probe"})
    refused(
        net.send(ALICE, "probe", "note"),
        ErrorCode.FROZEN,
        "contract 'probe' is frozen by governance",
    )
    ok(net.send(ALICE, "token", "transfer", {"to": BOB.address, "amount": 1}, endorsers=[BOB]))
    net.enact("unfreeze", {"contract": "probe"})
    ok(net.send(ALICE, "probe", "note"))


def test_enable_contract_version(net: Net) -> None:
    assert net.query("probe", "which") == 1
    assert ok(net.send(ALICE, "probe", "note")).result == 1
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="enable_contract",
            params={"contract": "probe", "version": 3},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "this release has versions 1, 2 of contract 'probe', not 3; upgrade every node before "
        "enabling it",
    )
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="enable_contract",
            params={"contract": "nope", "version": 1},
        ),
        ErrorCode.UNKNOWN_CONTRACT,
        "no system contract named 'nope'",
    )
    r = net.enact("enable_contract", {"contract": "probe", "version": 2})
    assert r.result == {"contract": "probe", "version": 2}
    assert net.query("probe", "which") == 2
    assert ok(net.send(ALICE, "probe", "note")).result == 2


def test_set_policy_of_a_method(net: Net) -> None:
    ok(net.send(ALICE, "probe", "note"))
    refused(
        net.gov(
            ADMIN["org1"], "propose", kind="set_policy", params={"target": "nope.x", "policy": None}
        ),
        ErrorCode.UNKNOWN_CONTRACT,
        "no system contract named 'nope'",
    )
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="set_policy",
            params={"target": "probe.note", "policy": {"rule": "SOME"}},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "policy rule 'SOME' is not ANY, ALL",
    )
    # the contract's default first, then one method of it
    net.enact("set_policy", {"target": "probe.*", "policy": {"rule": "ANY", "roles": ["admin"]}})
    refused(
        net.send(ALICE, "probe", "note"),
        ErrorCode.POLICY_NOT_MET,
        "policy probe.* (ANY of every organisation (role admin)) is not met",
    )
    r = net.enact("set_policy", {"target": "probe.note", "policy": {"rule": "ALL"}})
    assert r.result == {"target": "probe.note", "policy": "ALL of every organisation (any role)"}
    refused(
        net.send(ADMIN["org1"], "probe", "note"),
        ErrorCode.POLICY_NOT_MET,
        "policy probe.note (ALL of every organisation (any role)) is not met: needs 3 of 3",
    )
    ok(net.send(ALICE, "probe", "note", endorsers=[BOB, CAROL]))
    net.enact("set_policy", {"target": "probe.note", "policy": None})
    refused(net.send(ALICE, "probe", "note"), ErrorCode.POLICY_NOT_MET, "policy probe.*")
    net.enact("set_policy", {"target": "probe.*", "policy": None})
    ok(net.send(ALICE, "probe", "note"))


def test_set_policy_of_a_proposal_kind(net: Net) -> None:
    a1, a2, a3 = (ADMIN[o] for o in ORGS)
    refused(
        net.gov(a1, "propose", kind="set_policy", params={"target": "gov:freeze", "policy": None}),
        ErrorCode.BAD_ARGUMENTS,
        "a proposal kind always has a policy; give one",
    )
    refused(
        net.gov(
            a1,
            "propose",
            kind="set_policy",
            params={"target": "gov:coup", "policy": {"rule": "ANY"}},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "no proposal kind 'coup'",
    )
    net.enact("set_policy", {"target": "gov:freeze", "policy": {"rule": "ANY", "roles": ["admin"]}})
    net.enact(
        "set_policy", {"target": "gov:unfreeze", "policy": {"rule": "ALL", "roles": ["admin"]}}
    )
    assert net.query("gov", "policy", target="gov:freeze")["describe"] == (
        "ANY of every organisation (role admin)"
    )
    # one admin is enough to freeze now
    pid = net.propose(a3, "freeze", {"address": BOB.address})
    ok(net.gov(a3, "execute", id=pid))
    refused(net.send(BOB, "probe", "note"), ErrorCode.FROZEN, "is frozen")
    # but unfreezing needs every organisation
    pid = net.propose(a1, "unfreeze", {"address": BOB.address})
    ok(net.gov(a2, "vote", id=pid))
    refused(
        net.gov(a1, "execute", id=pid),
        ErrorCode.PROPOSAL_NOT_PASSED,
        "policy gov:unfreeze (ALL of every organisation (role admin)) needs 3 of 3 "
        "organisations, approved by org1, org2",
    )
    ok(net.gov(a3, "vote", id=pid))
    ok(net.gov(a1, "execute", id=pid))
    ok(net.send(BOB, "probe", "note"))


def test_update_org_admins(net: Net) -> None:
    new_admin = key(0x60)
    net.enact("update_org", {"id": "org2", "admins": [new_admin.public_key]})
    refused(net.send(ADMIN["org2"], "probe", "note"), ErrorCode.NOT_MEMBER, "not a registered")
    ok(
        net.gov(
            new_admin, "register_member", public_key=DAVE.public_key, org="org2", roles=["member"]
        )
    )
    assert net.query("gov", "org", id="org2")["admins"] == [new_admin.public_key]


def test_replay_gives_the_same_state_roots(net: Net, tmp_path: Path) -> None:
    """A mixed history, replayed on a fresh chain: identical roots, receipts and validators."""
    a1 = ADMIN["org1"]
    net.enact(
        "add_org",
        {
            "id": "org4",
            "name": "Four",
            "ca_cert": CAS["org4"][0].decode(),
            "admins": [ADMIN["org4"].public_key],
        },
    )
    ok(net.gov(a1, "define_role", org="org1", role="inspector"))
    ok(net.gov(a1, "register_member", public_key=DAVE.public_key, org="org1", roles=["inspector"]))
    net.enact(
        "add_validator",
        {"public_key": NEW_VAL.public_key, "power": 3, "name": "v4", "org": "org4"},
        voters=[ADMIN["org2"], ADMIN["org4"]],
    )
    net.enact("freeze", {"address": CAROL.address}, voters=[ADMIN["org2"], ADMIN["org4"]])
    net.send(CAROL, "probe", "note")
    net.send(OUTSIDER, "probe", "note")
    net.block(
        net.tx(ALICE, "token", "transfer", {"to": DAVE.address, "amount": 3}, [BOB]),
        net.tx(DAVE, "probe", "note"),
        net.tx(ALICE, "token", "burn", {"amount": 1}),
    )
    fresh = replay(net, tmp_path / "replayed")
    assert fresh.state.root == net.chain.state.root
    for h in range(1, net.height + 4):
        assert fresh.validators(h).hash == net.chain.validators(h).hash
    fresh.close()


def test_a_revoked_admin_dropped_by_update_org_stays_revoked(net: Net) -> None:
    old, new = ADMIN1B, key(0x61)
    net.enact("revoke", {"address": old.address})
    net.enact("update_org", {"id": "org1", "admins": [ADMIN["org1"].public_key, new.public_key]})
    assert net.query("gov", "member", address=old.address)["revoked"] is True
    r = net.gov(new, "register_member", public_key=old.public_key, org="org1", roles=["member"])
    refused(r, ErrorCode.REVOKED, "was revoked by governance; it cannot be registered again")
    refused(net.send(old, "probe", "note"), ErrorCode.REVOKED, "was revoked")


# -- certificate identity -----------------------------------------------------------------------
def cert(
    s: Signer,
    org: str = "org1",
    *,
    ca: tuple[bytes, bytes] | None = None,
    roles: tuple[str, ...] = ("member",),
    not_before: datetime = START - timedelta(days=30),
    not_after: datetime = START + timedelta(days=30),
    serial: int | None = None,
) -> bytes:
    ca_cert, ca_key = CAS[org] if ca is None else ca
    return issue_member_cert(
        ca_cert,
        ca_key,
        s.public_key,
        name=f"member-{s.address.hex()[:8]}",
        org_id=org,
        roles=roles,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
    )


@pytest.fixture
def cnet(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "cert-chain", make_genesis("certificate", policies={}))
    yield n
    n.chain.close()


def test_enrol_with_a_certificate(cnet: Net) -> None:
    refused(cnet.send(DAVE, "probe", "note"), ErrorCode.NOT_MEMBER, "is not a registered member")
    assert account_nonce(cnet.chain.state, DAVE.address) == 1
    c = cert(DAVE, serial=0xABC)
    cnet.chain.check_admission(cnet.tx(DAVE, "gov", "enroll", {"cert": c}))  # public method
    cnet.forget()
    r = ok(cnet.gov(DAVE, "enroll", cert=c))
    assert r.result == DAVE.address
    assert events(r) == [("gov", "member_enrolled")]
    assert r.events[0].attributes == {"address": DAVE.address, "org": "org1", "serial": 0xABC}
    m = cnet.query("gov", "member", address=DAVE.address)
    assert (m["org"], m["roles"], m["serial"], m["standing"]) == ("org1", ["member"], 0xABC, "ok")
    assert m["not_after"] == ms(START + timedelta(days=30))
    assert m["public_key"] == DAVE.public_key
    ok(cnet.send(DAVE, "probe", "note"))
    last = cnet.query("gov", "history")[-1]
    assert (last["action"], last["actor"], last["detail"]) == (
        "enroll",
        DAVE.address,
        {"address": DAVE.address.hex(), "org": "org1", "serial": "abc"},
    )
    # the roles are the certificate's OU values
    ok(cnet.gov(ERIN, "enroll", cert=cert(ERIN, "org2", roles=("auditor", "member"))))
    assert cnet.query("gov", "member", address=ERIN.address)["roles"] == ["auditor", "member"]
    # one organisation per key
    refused(
        cnet.gov(DAVE, "enroll", cert=cert(DAVE, "org2")),
        ErrorCode.BAD_ARGUMENTS,
        f"account {DAVE.address.hex()} is already a member of organisation 'org1'",
    )


def test_enrol_refusals(cnet: Net) -> None:
    cases: list[tuple[bytes, ErrorCode, str]] = [
        (
            cert(DAVE),
            ErrorCode.UNAUTHORIZED,
            "the certificate is for another key than the one that signed this transaction",
        ),
        (
            cert(ERIN, ca=CA1_TWIN),
            ErrorCode.UNAUTHORIZED,
            "member certificate: not signed by this CA (the signature does not verify with the "
            "CA's public key)",
        ),
        (
            cert(ERIN, "org9", ca=CA9),
            ErrorCode.UNAUTHORIZED,
            "the certificate names organisation 'org9', which is not on this chain",
        ),
        (
            cert(ERIN, not_after=START - timedelta(days=1)),
            ErrorCode.UNAUTHORIZED,
            "expired on 2024-12-31",
        ),
        (
            cert(ERIN, not_before=START + timedelta(days=1)),
            ErrorCode.UNAUTHORIZED,
            "not yet valid",
        ),
        (
            cert(ERIN, roles=("inspector",)),
            ErrorCode.BAD_ARGUMENTS,
            "organisation 'org1' has no role 'inspector'",
        ),
        (
            b"not a certificate",
            ErrorCode.BAD_ARGUMENTS,
            "17 bytes that are neither PEM nor DER X.509",
        ),
    ]
    for c, code, words in cases:
        refused(cnet.gov(ERIN, "enroll", cert=c), code, words)
    refused(
        cnet.gov(ERIN, "enroll", cert="PEM as text"),
        ErrorCode.BAD_ARGUMENTS,
        "argument 'cert' must be a certificate (PEM or DER bytes)",
    )
    assert cnet.query("gov", "member", address=ERIN.address) is None
    assert account_nonce(cnet.chain.state, ERIN.address) == len(cases) + 1
    refused(
        cnet.gov(
            ADMIN["org1"],
            "register_member",
            public_key=ERIN.public_key,
            org="org1",
            roles=["member"],
        ),
        ErrorCode.UNAUTHORIZED,
        "this chain runs in 'certificate' identity mode; this method is for 'key' mode",
    )


def test_enrol_is_for_certificate_mode_only(net: Net) -> None:
    refused(
        net.gov(DAVE, "enroll", cert=cert(DAVE)),
        ErrorCode.UNAUTHORIZED,
        "this chain runs in 'key' identity mode; this method is for 'certificate' mode",
    )


def test_a_frozen_account_cannot_enrol(cnet: Net) -> None:
    cnet.enact("freeze", {"address": DAVE.address})
    refused(
        cnet.gov(DAVE, "enroll", cert=cert(DAVE)),
        ErrorCode.FROZEN,
        f"account {DAVE.address.hex()} is frozen",
    )


def test_revoke_a_certificate(cnet: Net) -> None:
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE, serial=0xABC)))
    refused(
        cnet.gov(ADMIN["org1"], "propose", kind="revoke", params={"org": "org1", "serial": 0}),
        ErrorCode.BAD_ARGUMENTS,
        "param 'serial' must be a certificate serial number",
    )
    refused(
        cnet.gov(ADMIN["org1"], "propose", kind="revoke", params={"org": "org9", "serial": 1}),
        ErrorCode.NOT_FOUND,
        "no organisation 'org9'",
    )
    r = cnet.enact("revoke", {"org": "org1", "serial": 0xABC})
    assert r.result == {"org": "org1", "serial": "abc"}
    assert ("gov", "certificate_revoked") in events(r)
    refused(
        cnet.send(DAVE, "probe", "note"),
        ErrorCode.REVOKED,
        f"the certificate of sender {DAVE.address.hex()} (organisation org1, serial abc) was "
        "revoked",
    )
    refused(
        cnet.gov(DAVE, "enroll", cert=cert(DAVE, serial=0xABC)),
        ErrorCode.REVOKED,
        "certificate serial abc of org1 is revoked",
    )
    # the same serial of another organisation is another certificate
    ok(cnet.gov(ERIN, "enroll", cert=cert(ERIN, "org2", serial=0xABC)))
    ok(cnet.send(ERIN, "probe", "note"))
    # a new certificate for the same key
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE, serial=0xABD)))
    ok(cnet.send(DAVE, "probe", "note"))


def test_a_certificate_expiring_after_enrolment(cnet: Net) -> None:
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE, not_after=START + timedelta(hours=1))))
    ok(cnet.send(DAVE, "probe", "note"))
    (r,) = cnet.block(cnet.tx(DAVE, "probe", "note"), at=ms(START + timedelta(hours=2)))
    refused(
        r,
        ErrorCode.REVOKED,
        f"the certificate of sender {DAVE.address.hex()} has expired; enrol again with a renewed "
        "certificate",
    )
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE)))
    ok(cnet.send(DAVE, "probe", "note"))


def test_replacing_the_org_ca_makes_its_members_enrol_again(cnet: Net, tmp_path: Path) -> None:
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE)))
    ok(cnet.gov(ERIN, "enroll", cert=cert(ERIN, "org2")))
    refused(
        cnet.gov(
            ADMIN["org1"],
            "propose",
            kind="update_org",
            params={"id": "org1", "ca_cert": CAS["org2"][0].decode()},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "organisation 'org1': CA certificate: the CA speaks for 'org2' (subject O), not for "
        "organisation 'org1'",
    )
    r = cnet.enact("update_org", {"id": "org1", "ca_cert": CA1_TWIN[0].decode()})
    assert r.result == {"org": "org1", "changed": ["ca_cert"]}
    refused(
        cnet.send(DAVE, "probe", "note"),
        ErrorCode.REVOKED,
        f"the certificate of sender {DAVE.address.hex()} was issued by a CA that organisation "
        "org1 no longer uses; enrol again with a certificate from its current CA",
    )
    ok(cnet.send(ERIN, "probe", "note"))  # another organisation: unaffected
    ok(cnet.send(ADMIN["org1"], "probe", "note"))  # genesis admins hold keys, not certificates
    refused(
        cnet.gov(DAVE, "enroll", cert=cert(DAVE)), ErrorCode.UNAUTHORIZED, "not signed by this CA"
    )
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE, ca=CA1_TWIN)))
    ok(cnet.send(DAVE, "probe", "note"))
    replay(cnet, tmp_path / "replayed").close()


# -- malformed input: precise refusals, never an internal error ----------------------------------
def test_missing_or_mistyped_arguments_are_bad_arguments(net: Net, cnet: Net) -> None:
    a1 = ADMIN["org1"]
    name_words = "must be 1 to 64 letters, digits, '.', '_' or '-'"
    cases: list[tuple[Net, str, dict[str, Any], str]] = [
        (net, "register_member", {}, f"organisation id None {name_words}"),
        (net, "register_member", {"org": "org1"}, "'roles' must be a non-empty list"),
        (net, "register_member", {"org": "org1", "roles": ["member"]}, "public keys are 32 bytes"),
        (
            net,
            "register_member",
            {"org": 5, "roles": ["member"], "public_key": DAVE.public_key},
            f"organisation id 5 {name_words}",
        ),
        (net, "define_role", {}, f"organisation id None {name_words}"),
        (net, "define_role", {"org": "org1"}, f"role None {name_words}"),
        (net, "remove_member", {}, "missing argument 'address'"),
        (net, "vote", {}, "argument 'id' must be a proposal number"),
        (net, "execute", {"id": "1"}, "argument 'id' must be a proposal number"),
        (
            net,
            "propose",
            {"kind": "freeze", "params": {"address": DAVE.address}, "x": 1},
            "unknown argument(s) 'x'",
        ),
        (
            net,
            "propose",
            {
                "kind": "add_validator",
                "params": {"public_key": NEW_VAL.public_key, "power": 1, "name": "v", "org": 5},
            },
            f"organisation id 5 {name_words}",
        ),
        (
            net,
            "propose",
            {"kind": "remove_org", "params": {"id": None}},
            f"organisation id None {name_words}",
        ),
        (
            net,
            "propose",
            {"kind": "revoke", "params": {"org": ["org1"], "serial": 1}},
            f"organisation id ['org1'] {name_words}",
        ),
        (
            net,
            "propose",
            {"kind": "update_org", "params": {"id": "org1"}},
            "update_org needs at least one of name, ca_cert, admins",
        ),
        (net, "propose", {"kind": "set_params", "params": "x"}, "proposal params must be a map"),
        (cnet, "enroll", {}, "argument 'cert' must be a certificate (PEM or DER bytes)"),
    ]
    for chain, name, args, words in cases:
        refused(chain.send(a1, "gov", name, args), ErrorCode.BAD_ARGUMENTS, words)
    with pytest.raises(InvalidInput, match="organisation id 7"):
        net.query("gov", "org", id=7)


def test_gas_parameters_follow_the_chain_parameter(net: Net) -> None:
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="set_params",
            params={"params": {"gas": {"max_gas_per_tx": 5_000}}},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "params.gas.max_gas_per_tx follows params.chain.max_gas_per_tx; change that one",
    )
    refused(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="set_params",
            params={"params": {"gas": {"tx_base": -1}}},
        ),
        ErrorCode.BAD_ARGUMENTS,
        "gas schedule tx_base must be a non-negative integer",
    )
    pid = net.propose(
        ADMIN["org1"],
        "set_params",
        {"params": {"chain": {"max_gas_per_tx": 30_000_000}, "gas": {"tx_base": 5_000}}},
    )
    ok(net.gov(ADMIN["org2"], "vote", id=pid))
    # the same refused call (policy_not_met: gas_used is the intrinsic cost) before and after
    execute, before = net.block(
        net.tx(ADMIN["org1"], "gov", "execute", {"id": pid}), net.tx(ALICE, "probe", "never")
    )
    ok(execute)
    assert execute.result["changes"] == {
        "chain.max_gas_per_tx": [50_000_000, 30_000_000],
        "gas.max_gas_per_tx": [50_000_000, 30_000_000],
        "gas.tx_base": [2_000, 5_000],
    }
    (after,) = net.block(net.tx(ALICE, "probe", "never"))
    assert (before.code, after.code) == ("policy_not_met", "policy_not_met")
    assert after.gas_used - before.gas_used == 3_000
    assert net.chain.executor.gas.max_gas_per_tx == 30_000_000
    assert net.chain.params.max_gas_per_tx == 30_000_000
    (r,) = net.block(net.tx(ALICE, "probe", "note"))  # asks for 20_000_000: still fine
    ok(r)


def test_a_genesis_policy_for_an_unknown_target_is_refused(tmp_path: Path) -> None:
    for target in ("tokn.mint", "token", "token.", "gov:coup"):
        kv = KVStore(tmp_path / target)
        with pytest.raises(ConfigError, match=f"policy '{re.escape(target)}'"):
            Chain(kv, make_genesis(policies={target: {"rule": "ANY"}}), registry())
        kv.close()
    # the targets that exist are fine, including a contract's default
    ok_targets = {"token.*": {"rule": "ANY"}, "probe.note": {"rule": "ALL"}}
    Chain(KVStore(tmp_path / "fine"), make_genesis(policies=ok_targets), registry()).close()


def test_two_validator_changes_in_one_block_compose(net: Net) -> None:
    a1, a2 = ADMIN["org1"], ADMIN["org2"]
    add = {"public_key": NEW_VAL.public_key, "power": 4, "name": "val-new", "org": "org2"}
    p1 = net.propose(a1, "add_validator", add)
    p2 = net.propose(a1, "set_validator_power", {"public_key": VALS["org3"].public_key, "power": 1})
    net.block(net.tx(a2, "gov", "vote", {"id": p1}), net.tx(a2, "gov", "vote", {"id": p2}))
    receipts = net.block(
        net.tx(a1, "gov", "execute", {"id": p1}), net.tx(a1, "gov", "execute", {"id": p2})
    )
    for r in receipts:
        ok(r)
    h = net.height
    powers = {v.public_key: v.power for v in net.chain.validators(h + 2)}
    assert powers == {
        VALS["org1"].public_key: 10,
        VALS["org2"].public_key: 10,
        VALS["org3"].public_key: 1,
        NEW_VAL.public_key: 4,
    }
    assert len(net.chain.validators(h + 1)) == 3


def test_re_adding_a_removed_org(net: Net) -> None:
    """Removing an organisation removes its members and roles: admitting the id again gives
    a new organisation, not the old keys back (its old admin least of all)."""
    a3, new_admin = ADMIN["org3"], key(0x62)
    ok(net.gov(a3, "define_role", org="org3", role="inspector"))
    ok(net.gov(a3, "register_member", public_key=DAVE.public_key, org="org3", roles=["member"]))
    net.enact("revoke", {"address": CAROL.address})
    net.enact("remove_validator", {"public_key": VALS["org3"].public_key})
    net.enact("remove_org", {"id": "org3"})
    # a revoked key stays on record, so its refusal still has something to say
    refused(
        net.send(CAROL, "probe", "note"),
        ErrorCode.NOT_MEMBER,
        f"sender {CAROL.address.hex()} belongs to organisation 'org3', which was removed from "
        "the chain",
    )
    net.enact(
        "add_org",
        {
            "id": "org3",
            "name": "Org three again",
            "ca_cert": CAS["org3"][0].decode(),
            "admins": [new_admin.public_key],
        },
    )
    ok(net.send(new_admin, "probe", "note"))
    for old in (DAVE, a3):
        refused(net.send(old, "probe", "note"), ErrorCode.NOT_MEMBER, "is not a registered member")
    r = net.gov(a3, "register_member", public_key=ERIN.public_key, org="org3", roles=["member"])
    refused(r, ErrorCode.NOT_MEMBER, "is not a registered member")
    refused(net.send(CAROL, "probe", "note"), ErrorCode.REVOKED, "was revoked")
    assert {m["address"] for m in net.query("gov", "members", org="org3")} == {
        new_admin.address,
        CAROL.address,
    }
    assert "inspector" not in net.query("gov", "org", id="org3")["roles"]
    # a key of the removed organisation may join another one
    ok(
        net.gov(
            ADMIN["org1"], "register_member", public_key=a3.public_key, org="org1", roles=["member"]
        )
    )
    ok(net.send(a3, "probe", "note"))
