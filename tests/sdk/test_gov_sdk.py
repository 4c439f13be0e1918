"""``client.gov`` and validator-set following, against a real chain in this process.

:class:`ChainService` is the API's ``NodeService`` over a real :class:`citychain.chain.Chain`
(RocksDB in a temporary directory, the real ``gov`` and ``token`` contracts, key identity mode
with two organisations). Each submit makes one block, and its commit is signed by every
validator of the set in force at that height (the test holds every key), so a governance
change of the validator set shows in the headers exactly as on a network.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sdk_helpers import URL, bridge

from citychain.api import create_app
from citychain.api.service import (
    AccountInfo,
    BlockInfo,
    NodeStatus,
    StateProof,
    SubmitResult,
    TxInfo,
    TxStatus,
)
from citychain.chain import Chain
from citychain.crypto import ED25519, CryptoSuite, Signer
from citychain.errors import (
    CitychainError,
    DecodeError,
    ErrorCode,
    ExecutionFailure,
    InvalidInput,
    NotFound,
    ProofError,
    Unavailable,
)
from citychain.execution import BlockContext, default_registry
from citychain.execution.keys import account_nonce
from citychain.p2p.certs import generate_org_ca
from citychain.proof.ics23 import encode_commitment_proof
from citychain.sdk import AsyncClient, Client, ProposalInfo
from citychain.services.token.shapes import balance_key
from citychain.store.kv import KVStore
from citychain.types import (
    Block,
    Commit,
    CommitSig,
    DuplicateVoteEvidence,
    Transaction,
    Validator,
    ValidatorSet,
    VoteType,
    vote_signing_bytes,
)
from citychain.types.genesis import Genesis, Governance, Organisation

CHAIN_ID = "gov-sdk-test"
GENESIS_TIME = 1_767_225_600_000


def key(name: str) -> Signer:
    return Signer(ED25519, hashlib.sha256(b"gov-sdk-" + name.encode()).digest())


ADMIN1, ADMIN2, CLERK = key("admin1"), key("admin2"), key("clerk")
V0, V1, V2 = key("v0"), key("v1"), key("v2")
VALIDATOR_KEYS = {s.public_key: s for s in (V0, V1, V2)}


class ChainService:
    """``NodeService`` over a real chain; every accepted submit is committed as one block."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.registry = CollectorRegistry()

    @property
    def chain_id(self) -> str:
        return self.chain.chain_id

    @property
    def suite(self) -> CryptoSuite:
        return self.chain.suite

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.registry

    async def submit(self, raw_txs: Sequence[bytes]) -> list[SubmitResult]:
        results, txs = [], []
        for raw in raw_txs:
            try:
                tx = Transaction.decode(raw)
            except CitychainError as exc:
                results.append(SubmitResult(None, exc.code, exc.message))
                continue
            try:
                if not tx.verify_signature(self.suite):
                    raise CitychainError("signature does not verify", ErrorCode.BAD_SIGNATURE)
                self.chain.check_admission(tx)
            except CitychainError as exc:
                results.append(SubmitResult(tx.hash, exc.code, exc.message))
                continue
            txs.append(tx)
            results.append(SubmitResult(tx.hash, ErrorCode.OK))
        if txs:
            self.produce(txs)
        return results

    def index_reader(self, space: str) -> Callable[[bytes], bytes | None]:
        return lambda key: None  # no service index here: every read misses

    def private_call(self, tx: Transaction) -> bool:
        return (tx.contract, tx.method) in self.chain.executor.registry.private_calls()

    def produce(self, txs: Sequence[Transaction] = ()) -> Block:
        height = self.chain.height + 1
        vs = self.chain.validators(height)
        pending = self.chain.build_block(
            list(txs), GENESIS_TIME + 1000 * height, vs.validators[0].public_key
        )
        h = pending.header
        msg = vote_signing_bytes(CHAIN_ID, VoteType.PRECOMMIT, height, 0, h.hash)
        sigs = tuple(CommitSig(v.public_key, VALIDATOR_KEYS[v.public_key].sign(msg)) for v in vs)
        self.chain.commit(pending, Commit(height, 0, h.hash, sigs))
        return pending.block

    def tx(self, tx_hash: bytes) -> TxInfo:
        blocks = self.chain.blocks
        loc = blocks.tx_location(tx_hash)
        if loc is None:
            return TxInfo(TxStatus.UNKNOWN)
        block, receipt = blocks.block(loc[0]), blocks.receipt(*loc)
        assert block is not None and receipt is not None
        return TxInfo(TxStatus.COMMITTED, block.txs[loc[1]], loc[0], loc[1], receipt)

    def latest_height(self) -> int:
        return self.chain.height

    def block(self, height: int) -> BlockInfo | None:
        if not 1 <= height <= self.chain.height:
            return None
        block, commit = self.chain.blocks.block(height), self.chain.blocks.commit(height)
        assert block is not None and commit is not None
        return BlockInfo(block, commit)

    def block_by_hash(self, block_hash: bytes) -> BlockInfo | None:
        height = self.chain.blocks.height_of(block_hash)
        return self.block(height) if height is not None else None

    def status(self) -> NodeStatus:
        header = self.chain.last_header()
        return NodeStatus(
            chain_id=CHAIN_ID,
            crypto_suite=self.suite.name,
            node_id="in-process",
            public_key=V0.public_key,
            height=self.chain.height,
            latest_hash=header.hash if header else bytes(32),
            state_root=header.state_root if header else self.chain.genesis_state_root(),
            latest_time=header.time if header else GENESIS_TIME,
            mempool_txs=0,
            mempool_bytes=0,
            validators=self.chain.validators(),
            syncing=False,
            version="test",
        )

    async def state_proof(self, key: bytes, height: int | None) -> StateProof:
        h = self.chain.height if height is None else height
        if not 1 <= h <= self.chain.height:
            raise NotFound(f"height {h} is not committed", ErrorCode.HEIGHT_NOT_COMMITTED)
        header, commit = self.chain.blocks.header(h), self.chain.blocks.commit(h)
        assert header is not None and commit is not None
        value, proof = self.chain.state.prove(key, h)
        return StateProof(key, value, h, encode_commitment_proof(proof), header, commit)

    async def query(self, contract: str, method: str, args: Mapping[str, Any]) -> Any:
        header = self.chain.last_header()
        ctx = BlockContext(
            CHAIN_ID,
            self.chain.height,
            header.time if header else GENESIS_TIME,
            header.proposer if header else b"",
        )
        return self.chain.executor.query(self.chain.state, ctx, contract, method, dict(args))

    def account(self, address: bytes) -> AccountInfo:
        nonce = account_nonce(self.chain.state, address)
        return AccountInfo(address, nonce, nonce)

    def validators(self, height: int | None) -> ValidatorSet:
        if height is not None and height > self.chain.height + 1:
            raise NotFound(
                f"height {height} is beyond the next block", ErrorCode.HEIGHT_NOT_COMMITTED
            )
        return self.chain.validators(height)

    def subscribe(self, contract: str | None, event_type: str | None, shows: Any = None) -> Any:
        raise Unavailable("no subscriptions in this test service")

    def health(self) -> tuple[bool, dict[str, Any]]:
        return True, {"height": self.chain.height}

    def consensus(self) -> dict[str, Any]:
        return {
            "engine": "test",
            "height": self.chain.height + 1,
            "round": 0,
            "step": "commit",
            "waiting_for": "",
            "details": {},
        }

    def peers(self) -> list[dict[str, Any]]:
        return []

    def evidence(self, limit: int) -> list[tuple[int, DuplicateVoteEvidence]]:
        return []

    def pending_evidence(self) -> list[DuplicateVoteEvidence]:
        return []


def make_genesis() -> Genesis:
    ca1, _ = generate_org_ca("org1", "Org One")
    ca2, _ = generate_org_ca("org2", "Org Two")
    return Genesis(
        chain_id=CHAIN_ID,
        genesis_time=GENESIS_TIME,
        crypto_suite="ed25519",
        validators=(Validator(V0.public_key, 10, "v0"),),
        contracts={
            "token": {
                "issuers": [{"hex": ADMIN1.address.hex()}],
                "balances": {ADMIN1.address.hex(): 1000},
            }
        },
        organisations=(
            Organisation("org1", "Org One", ca1.decode(), (ADMIN1.public_key,)),
            Organisation("org2", "Org Two", ca2.decode(), (ADMIN2.public_key,)),
        ),
        # Minting needs an admin of every organisation: the sender and an endorser.
        governance=Governance("key", 50, {"token.mint": {"rule": "ALL", "roles": ["admin"]}}),
        validator_orgs=((V0.public_key, "org1"),),
    )


@pytest.fixture
def genesis() -> Genesis:
    return make_genesis()


@pytest.fixture
def service(tmp_path: Path, genesis: Genesis) -> Iterator[ChainService]:
    chain = Chain(KVStore(tmp_path / "data"), genesis, default_registry(), retain_versions=None)
    try:
        yield ChainService(chain)
    finally:
        chain.close()


@pytest.fixture
def client(service: ChainService, genesis: Genesis) -> Iterator[Client]:
    with Client(URL, validators=genesis.validator_set, transport=bridge(create_app(service))) as c:
        yield c


def transfer(client: Client, amount: int = 1) -> int:
    """One block; its height."""
    r = client.send(ADMIN1, "token", "transfer", {"to": CLERK.address, "amount": amount})
    assert r.ok, r.message
    return client.status().height


def change_validators(client: Client, kind: str, params: dict[str, Any]) -> int:
    """Propose, vote (org2) and execute a validator change; the height it is in force from."""
    pid = client.gov.propose(ADMIN1, kind, params)
    client.gov.vote(ADMIN2, pid)
    detail = client.gov.execute(ADMIN1, pid)
    from_height = detail["from_height"]
    assert isinstance(from_height, int)
    return from_height


# -- reads ----------------------------------------------------------------------------------------


def test_reads(client: Client, genesis: Genesis) -> None:
    assert client.gov.config() == {"mode": "key", "voting_period": 50}
    orgs = client.gov.orgs()
    assert [o.id for o in orgs] == ["org1", "org2"]
    assert orgs[0].admins == (ADMIN1.public_key,) and len(orgs[0].ca_fp) == 32
    org1 = client.gov.org("org1")
    assert {"admin", "member", "validator", "auditor"} <= set(org1.roles)
    assert "BEGIN CERTIFICATE" in org1.ca_cert
    with pytest.raises(NotFound, match="no organisation 'nope'"):
        client.gov.org("nope")

    m = client.gov.member(ADMIN1.address)
    assert m is not None and m.org == "org1" and m.roles == ("admin",)
    assert m.in_good_standing and m.public_key == ADMIN1.public_key
    assert client.gov.member(CLERK.address) is None
    assert [x.address for x in client.gov.members("org2")] == [ADMIN2.address]
    assert client.gov.members("org2")[0].standing is None

    vals = client.gov.validators()
    assert vals.from_height == 1
    assert [(v.public_key, v.power, v.name, v.org) for v in vals.validators] == [
        (V0.public_key, 10, "v0", "org1")
    ]
    assert vals.validator_set().hash == genesis.validator_set.hash

    params = client.gov.params()
    assert params["chain"]["block_max_txs"] == genesis.params.block_max_txs and "gas" in params
    mint = client.gov.policy("token.mint")
    assert (mint.target, mint.rule, mint.roles) == ("token.mint", "ALL", ("admin",))
    assert "ALL of every organisation" in mint.describe
    assert client.gov.policy("gov:add_validator").rule == "MAJORITY"
    assert [p.target for p in client.gov.policies()] == ["token.mint"]
    assert client.gov.proposals() == [] and client.gov.history() == []


# -- proposals ------------------------------------------------------------------------------------


def test_a_proposal_through_its_life(client: Client) -> None:
    pid = client.gov.propose(ADMIN1, "add_validator", _add(V1, "org2"))
    assert pid == 1
    p = client.gov.proposal(pid)
    assert isinstance(p, ProposalInfo)
    assert (p.kind, p.status, p.proposer, p.proposer_org) == (
        "add_validator",
        "open",
        ADMIN1.address,
        "org1",
    )
    assert p.params["public_key"] == V1.public_key and p.deadline == p.created + 50
    assert not p.passed and "needs 2 of 2 organisations, approved by org1" in p.needs
    assert [(v.voter, v.org, v.approve) for v in p.votes] == [(ADMIN1.address, "org1", True)]

    with pytest.raises(ExecutionFailure) as info:
        client.gov.execute(ADMIN1, pid)
    assert info.value.code == ErrorCode.PROPOSAL_NOT_PASSED
    # refused at admission (nothing committed), with the words a receipt would carry
    assert info.value.message.startswith("proposal 1 has not passed: policy gov:add_validator")

    receipt = client.gov.vote(ADMIN2, pid)
    assert receipt.ok
    assert client.gov.proposal(pid).passed
    with pytest.raises(CitychainError) as info:  # refused at admission: TxRejected, by its code
        client.gov.vote(ADMIN2, pid)
    assert info.value.code == ErrorCode.DUPLICATE and "already voted" in info.value.message

    detail = client.gov.execute(ADMIN2, pid)
    assert detail["public_key"] == V1.public_key.hex()
    executed = client.gov.proposal(pid)
    assert executed.status == "executed" and executed.result == detail
    assert executed.executed_height == detail["from_height"] - 2
    with pytest.raises(ExecutionFailure) as info:
        client.gov.execute(ADMIN1, pid)
    assert info.value.code == ErrorCode.PROPOSAL_EXECUTED

    assert [p.id for p in client.gov.proposals(status="executed")] == [pid]
    assert client.gov.proposals(status="open") == []
    history = client.gov.history(proposal=pid)
    assert [(e.action, e.actor) for e in history] == [
        ("propose", ADMIN1.address),
        ("vote", ADMIN2.address),
        ("execute", ADMIN2.address),
    ]
    assert all(len(e.tx) == 32 and e.proposal == pid for e in history)
    assert [e.seq for e in client.gov.history(after=history[0].seq, limit=1)] == [history[1].seq]


def test_a_proposal_expires(client: Client) -> None:
    height = client.status().height
    change = {"params": {"chain": {"block_max_txs": 77}}}
    pid = client.gov.propose(ADMIN1, "set_params", change, deadline=height + 2)
    transfer(client)
    transfer(client)  # now past the deadline
    assert client.gov.proposal(pid).status == "expired"
    with pytest.raises(ExecutionFailure) as info:
        client.gov.vote(ADMIN2, pid)
    assert info.value.code == ErrorCode.PROPOSAL_EXPIRED
    assert client.gov.expire(ADMIN2, pid).ok
    assert client.gov.history(proposal=pid)[-1].action == "expire"


def test_a_refused_proposal_raises_with_the_chain_s_words(client: Client) -> None:
    with pytest.raises(InvalidInput) as info:  # the kind's check, run at admission
        client.gov.propose(ADMIN1, "add_validator", {"public_key": V1.public_key})
    assert "proposal params lack power, name, org" in info.value.message
    assert info.value.code == ErrorCode.BAD_ARGUMENTS


def test_members_are_registered_and_then_may_transact(client: Client) -> None:
    with pytest.raises(ExecutionFailure) as info:  # refused at admission: not a member yet
        client.send(CLERK, "token", "transfer", {"to": ADMIN1.address, "amount": 1})
    assert info.value.code == ErrorCode.NOT_MEMBER
    address = client.gov.register_member(ADMIN2, CLERK.public_key, "org2", ["member"])
    assert address == CLERK.address
    m = client.gov.member(CLERK.address)
    assert m is not None and (m.org, m.roles) == ("org2", ("member",))
    with pytest.raises(ExecutionFailure) as info:
        client.gov.register_member(ADMIN1, key("x").public_key, "org2")
    assert info.value.code == ErrorCode.UNAUTHORIZED
    assert client.gov.history()[-1].action == "register_member"


def test_endorsers_meet_a_multi_organisation_policy(client: Client) -> None:
    args = {"to": CLERK.address, "amount": 5}
    with pytest.raises(ExecutionFailure) as info:
        client.send(ADMIN1, "token", "mint", args)
    assert info.value.code == ErrorCode.POLICY_NOT_MET
    receipt = client.send(ADMIN1, "token", "mint", args, endorsers=[ADMIN2])
    assert receipt.ok, receipt.message
    tx = client.tx(receipt.tx_hash).tx
    assert [pk for pk, _ in tx.endorsements] == [ADMIN2.public_key]
    built = client.build_tx(ADMIN1, "token", "mint", args, endorsers=[ADMIN2])
    assert built.verify_signature(ED25519) and built.signers() == (
        ADMIN1.public_key,
        ADMIN2.public_key,
    )
    assert client.balance(CLERK.address) == 5


# -- the validator set changes; proofs keep verifying ---------------------------------------------


def _add(signer: Signer, org: str, power: int = 10) -> dict[str, Any]:
    name = {V0.public_key: "v0", V1.public_key: "v1", V2.public_key: "v2"}[signer.public_key]
    return {"public_key": signer.public_key, "power": power, "name": name, "org": org}


def test_proofs_verify_across_governance_changes_of_the_validator_set(
    client: Client, service: ChainService, genesis: Genesis
) -> None:
    transfer(client)
    early = client.get_state(balance_key(CLERK.address))
    assert early.verified and early.validators == 1

    # v1 joins (power 10): from then on headers name {v0, v1}.
    start = change_validators(client, "add_validator", _add(V1, "org2"))
    while client.status().height < start + 1:
        transfer(client)
    got = client.get_state(balance_key(CLERK.address))
    assert got.verified and got.height >= start
    assert (got.validators, got.signers, got.total_power) == (2, 2, 20)
    assert got.header.validators_hash != genesis.validator_set.hash
    assert client.trusted_validators is not None
    assert client.trusted_validators.hash == got.header.validators_hash
    assert [(t.low >= start, len(t.validators)) for t in client.trusted_sets] == [
        (False, 1),
        (True, 2),
    ]

    # v0 leaves: {v1}; the set trusted since the last step still vouches (10 of 20 > 1/3).
    start2 = change_validators(client, "remove_validator", {"public_key": V0.public_key})
    while client.status().height < start2 + 1:
        transfer(client)
    latest = client.get_state(balance_key(CLERK.address))
    assert (latest.validators, latest.signers) == (1, 1)
    assert latest.header.validators_hash == service.chain.validators().hash

    # Old heights still verify, each against the set that signed it.
    for h in (early.height, start, start2 - 1):
        old = client.get_state(balance_key(CLERK.address), height=h)
        assert old.verified and old.height == h
    assert len(client.trusted_sets) == 3


def test_a_client_that_knows_only_genesis_bisects_to_the_latest_set(
    client: Client, service: ChainService, genesis: Genesis
) -> None:
    start = change_validators(client, "add_validator", _add(V1, "org2"))
    for _ in range(4):
        transfer(client)
    start2 = change_validators(client, "remove_validator", {"public_key": V0.public_key})
    for _ in range(6):
        transfer(client)
    latest_height = client.status().height
    assert latest_height > start2 > start

    # From genesis {v0} straight to {v1}: nothing of v0 signed, so it must find {v0, v1} first.
    seen: list[str] = []
    app = create_app(service)

    def record(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        seen.append(request.url.path)
        return answer

    with Client(URL, validators=genesis.validator_set, transport=bridge(app, record)) as fresh:
        got = fresh.get_state(balance_key(ADMIN1.address))
        assert got.verified and got.height == latest_height and got.validators == 1
        pivots = [p for p in seen if p.startswith("/v1/blocks/")]
        assert pivots, seen
        assert {len(t.validators) for t in fresh.trusted_sets} == {1, 2}
        assert len(fresh.trusted_sets) == 3


def test_a_change_too_large_for_one_step_is_explained_and_can_be_trusted_explicitly(
    client: Client, service: ChainService, genesis: Genesis
) -> None:
    # {v0: 10} -> {v0: 10, v1: 100} -> {v1: 100}: fine step by step. Then v2 (10) joins and
    # v1 (100 of 120) leaves in the same block: {v0, v2} holds 20 of the 120 trusted power.
    change_validators(client, "add_validator", _add(V1, "org2", power=100))
    transfer(client)
    transfer(client)
    assert client.get_state(balance_key(ADMIN1.address)).validators == 2

    p1 = client.gov.propose(ADMIN1, "add_validator", _add(V2, "org2"))
    client.gov.vote(ADMIN2, p1)
    p2 = client.gov.propose(ADMIN1, "remove_validator", {"public_key": V1.public_key})
    client.gov.vote(ADMIN2, p2)
    # Both executions in one block, so the set changes by both at once.
    first = client.build_tx(ADMIN1, "gov", "execute", {"id": p1}, gas_limit=2_000_000)
    second = client.build_tx(
        ADMIN1, "gov", "execute", {"id": p2}, gas_limit=2_000_000, nonce=first.nonce + 1
    )
    results = client.submit_batch([first, second])
    assert all(r.ok for r in results), results
    assert all(client.wait_for_commit(t.hash).ok for t in (first, second))
    change_height = client.gov.validators().from_height
    while client.status().height < change_height + 1:
        transfer(client)
    with pytest.raises(ProofError) as info:
        client.get_state(balance_key(ADMIN1.address))
    msg = info.value.message
    assert "validator set this client does not trust" in msg
    assert f"between heights {change_height - 1} and {change_height}" in msg
    assert "only 10 of the 110 power" in msg
    assert f"trust_height={change_height}" in msg

    # Checked out of band (here: the node's own set), the new set is passed in and works.
    new_set = service.chain.validators(change_height)
    with Client(
        URL,
        validators=new_set,
        trust_height=change_height,
        transport=bridge(create_app(service)),
    ) as fresh:
        got = fresh.get_state(balance_key(ADMIN1.address))
        assert got.verified and (got.validators, got.signers) == (2, 2)
        assert fresh.verify_header(change_height).validators.hash == new_set.hash


def test_the_async_client(service: ChainService, genesis: Genesis) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=create_app(service))
        async with AsyncClient(URL, validators=genesis.validator_set, transport=transport) as c:
            assert [o.id for o in await c.gov.orgs()] == ["org1", "org2"]
            pid = await c.gov.propose(ADMIN1, "add_validator", _add(V1, "org2"))
            await c.gov.vote(ADMIN2, pid)
            assert (await c.gov.proposal(pid)).passed
            detail = await c.gov.execute(ADMIN1, pid)
            assert (await c.gov.validators()).from_height == detail["from_height"]
            receipt = await c.send(
                ADMIN1, "token", "mint", {"to": CLERK.address, "amount": 3}, endorsers=[ADMIN2]
            )
            assert receipt.ok
            while service.chain.height < detail["from_height"] + 1:
                await c.send(ADMIN1, "token", "transfer", {"to": CLERK.address, "amount": 1})
            got = await c.get_state(balance_key(CLERK.address))
            assert got.verified and got.validators == 2
            assert [e.action for e in await c.gov.history(proposal=pid)] == [
                "propose",
                "vote",
                "execute",
            ]
            header = await c.verify_header(1)
            assert header.validators.hash == genesis.validator_set.hash

    asyncio.run(main())


def test_a_malformed_governance_answer_is_a_clear_error(service: ChainService) -> None:
    def drop_admins(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        if request.url.path != "/v1/query/gov/orgs":
            return answer
        body = answer.json()
        for o in body["result"]:
            del o["admins"]
        return httpx.Response(200, json=body)

    with Client(URL, transport=bridge(create_app(service), drop_admins)) as c:
        with pytest.raises(DecodeError, match=r"unexpected answer from the node: gov\.orgs"):
            c.gov.orgs()
        assert c.gov.org("org1").admins == (ADMIN1.public_key,)


def test_trust_height_goes_with_a_validator_set(genesis: Genesis) -> None:
    with pytest.raises(InvalidInput, match="trust_height is the height of the trusted validators"):
        Client(URL, trust_height=5)
    anchor = genesis.validator_set
    with Client(URL, validators=anchor, trust_height=7) as c:
        assert [(t.low, t.high) for t in c.trusted_sets] == [(7, 7)]
        assert c.trusted_validators is anchor
    with Client(URL) as c:
        assert c.trusted_sets == () and c.trusted_validators is None


def test_which_policy_decides_a_target(client: Client, service: ChainService) -> None:
    # set explicitly in genesis / the built-in default, for a method and for a proposal kind
    assert client.gov.policy_source("token.mint") == "token.mint"
    assert client.gov.policy_source("token.transfer") is None
    assert client.gov.policy_source("gov:add_org") is None
    pid = client.gov.propose(
        ADMIN1,
        "set_policy",
        {"target": "gov:add_org", "policy": {"rule": "ALL", "roles": ["admin"]}},
    )
    client.gov.vote(ADMIN2, pid)
    client.gov.execute(ADMIN1, pid)
    assert client.gov.policy_source("gov:add_org") == "gov:add_org"
    # a target that is not one is refused before anything is asked of the node
    with pytest.raises(NotFound, match="no proposal kind 'nope'"):
        client.gov.policy_source("gov:nope")
    with pytest.raises(InvalidInput, match=r"must be 'contract\.method'") as refused:
        client.gov.policy("token")
    assert refused.value.code == "bad_arguments"

    async def main() -> None:
        transport = httpx.ASGITransport(app=create_app(service))
        async with AsyncClient(URL, transport=transport) as c:
            assert await c.gov.policy_source("gov:add_org") == "gov:add_org"
            assert await c.gov.policy_source("token.burn") is None
            with pytest.raises(NotFound):
                await c.gov.policy("gov:nope")

    asyncio.run(main())
