"""The published models and the answers' one definition cannot drift apart.

Each answer is defined once in :mod:`citychain.types.answers` and rendered by its ``to_json``;
:mod:`citychain.api.models` only describes that JSON for ``/openapi.json``. Here every model
must name exactly the keys the rendering writes, at every level (a key added on one side and
not the other fails, even an optional one pydantic would fill in), and the SDK's parser must
rebuild from the rendering exactly the value the node built.
"""

from __future__ import annotations

import asyncio
import typing
from dataclasses import replace
from typing import Any

import pytest
from fake_node import FakeNode, seeded_signer
from pydantic import BaseModel

from citychain.api import models as m
from citychain.crypto import Signer
from citychain.errors import ErrorCode
from citychain.sdk import _parse
from citychain.types import (
    CommittedEvent,
    DuplicateVoteEvidence,
    Event,
    Vote,
    VoteType,
)
from citychain.types import answers as a


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (inside lists, unions, Annotated...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def check_keys(model: type[BaseModel], value: Any, where: str) -> None:
    assert isinstance(value, dict), where
    assert set(value) == set(model.model_fields), (
        f"{where}: {model.__name__} describes {sorted(model.model_fields)}, "
        f"the answer has {sorted(value)}"
    )
    for name, info in model.model_fields.items():
        inner = _models_in(info.annotation)
        got = value[name]
        if not inner or got is None:
            continue
        for item in got if isinstance(got, list) else [got]:
            # A union (a transaction or its withheld form): the one model naming its keys.
            fits = (
                [x for x in inner if set(x.model_fields) == set(item)] if len(inner) > 1 else inner
            )
            assert len(fits) == 1, f"{where}.{name}: {len(fits)} of the models {inner} fit {item}"
            check_keys(fits[0], item, f"{where}.{name}")


def check(model: type[BaseModel], value: dict[str, Any], where: str) -> None:
    check_keys(model, value, where)
    model.model_validate(value)  # types and patterns too (extra="forbid")


def _evidence(signer: Signer) -> DuplicateVoteEvidence:
    def vote(block_hash: bytes) -> Vote:
        unsigned = Vote(VoteType.PRECOMMIT, 1, 0, block_hash, signer.public_key, b"")
        sig = signer.sign(unsigned.sign_bytes("fake-chain"))
        return Vote(VoteType.PRECOMMIT, 1, 0, block_hash, signer.public_key, sig)

    return DuplicateVoteEvidence.of("fake-chain", vote(b"\x01" * 32), vote(b"\x02" * 32))


@pytest.fixture
def chain(alice: Signer, bob: Signer) -> FakeNode:
    """A fake node with one committed block (a transfer) and one pending transaction."""
    node = FakeNode(auto_commit=False, genesis_balances={alice.address: 1_000})
    committed = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 5})
    asyncio.run(node.submit([committed.encode()]))
    node.commit_block()
    pending = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 6})
    asyncio.run(node.submit([pending.encode()]))
    return node


def test_every_answer_with_a_rendering_is_checked_here() -> None:
    """A new answer class in types.answers must be added to the checks below."""
    rendered = {
        name
        for name in a.__all__
        if isinstance(getattr(a, name), type) and hasattr(getattr(a, name), "to_json")
    }
    checked = {"SubmitResult", "TxInfo", "BlockInfo", "NodeStatus", "StateProof"}
    checked |= {"AccountInfo", "EvidenceInfo", "WithheldTx"}
    assert rendered == checked


def test_submit_results_match_their_model(chain: FakeNode, alice: Signer) -> None:
    tx = chain.make_tx(alice, "transfer", {"to": bytes(20), "amount": 1})
    results = asyncio.run(chain.submit([tx.encode(), b"\xff"]))
    items = [r.to_json(i) for i, r in enumerate(results)]
    assert items[0]["hash"] is not None and items[1]["hash"] is None
    body = {"accepted": 1, "rejected": 1, "results": items}
    check(m.SubmitBatchResponse, body, "POST /v1/txs")
    for r, item in zip(results, items, strict=True):
        assert _parse.submit_result(item) == r


def test_unknown_submit_code_reads_as_internal_with_the_code_in_the_message() -> None:
    item = {"index": 0, "hash": None, "code": "from_the_future", "message": "new"}
    r = _parse.submit_result(item)
    assert r.code == ErrorCode.INTERNAL and not r.ok
    assert r.message == "new (node error code 'from_the_future')"


def test_transaction_answers_match_their_model(chain: FakeNode) -> None:
    committed_hash = chain.blocks[0].block.txs[0].hash
    (pending_hash,) = chain.mempool
    for h, status in ((committed_hash, a.TxStatus.COMMITTED), (pending_hash, a.TxStatus.PENDING)):
        info = chain.tx(h)
        assert info.status == status
        check(m.TxResponse, info.to_json(), f"GET /v1/txs ({status})")
        back = _parse.tx_info(info.to_json())
        assert back == info and back.tx_hash == h
        assert back.committed == (status == a.TxStatus.COMMITTED)
    unknown = chain.tx(bytes(32))
    assert unknown.status == a.TxStatus.UNKNOWN
    with pytest.raises(ValueError, match="no JSON answer"):
        unknown.to_json()


def test_withheld_answers_match_their_models(chain: FakeNode) -> None:
    """A private call as anyone but its signers and members reads it (WithheldTx)."""
    chain.private_calls.add(("token", "transfer"))
    hide = chain.private_call
    committed_hash = chain.blocks[0].block.txs[0].hash
    (pending_hash,) = chain.mempool
    for h in (committed_hash, pending_hash):
        info = chain.tx(h)
        assert info.tx is not None
        body = info.to_json(hide)
        check(m.TxResponse, body, "GET /v1/txs (withheld)")
        assert body["receipt"] is None
        back = _parse.tx_info(body)
        assert back.tx is None and back.withheld == a.WithheldTx.of(info.tx)
        assert back.tx_hash == h and back.to_json() == body
    block = chain.block(1)
    assert block is not None
    body = block.to_json(hide)
    check(m.BlockResponse, body, "GET /v1/blocks/1 (withheld)")
    back = _parse.block_info(body)
    assert back.withheld == ((0, a.WithheldTx.of(block.block.txs[0])),)
    assert back.block.txs == () and back.to_json() == body


def test_block_status_account_and_state_answers_match_their_models(
    chain: FakeNode, alice: Signer
) -> None:
    block = chain.block(1)
    assert block is not None
    check(m.BlockResponse, block.to_json(), "GET /v1/blocks/1")
    assert _parse.block_info(block.to_json()) == block

    status = chain.status()
    check(m.StatusResponse, status.to_json(), "GET /v1/status")
    back = _parse.status(status.to_json())
    assert back.validators.hash == status.validators.hash  # ValidatorSet compares by identity
    assert replace(back, validators=status.validators) == status
    assert back.latest_block_hash == status.latest_hash == block.hash
    assert back.latest_block_time == status.latest_time == block.header.time

    vs = chain.validators(None)
    check(m.ValidatorsResponse, a.validators_json(2, vs), "GET /v1/validators")

    account = chain.account(alice.address)
    check(m.AccountResponse, account.to_json(), "GET /v1/accounts")
    assert _parse.account(account.to_json()) == account

    for key in (b"c/token/supply", b"absent"):
        proof = asyncio.run(chain.state_proof(key, None))
        check(m.StateResponse, proof.to_json(), f"GET /v1/state ({key!r})")
        assert _parse.state_proof(proof.to_json()) == proof
        assert proof.to_json()["exists"] is proof.exists


def test_evidence_query_and_event_answers_match_their_models() -> None:
    ev = _evidence(seeded_signer(7))
    info = a.EvidenceInfo(((3, ev),), (ev,))
    check(m.EvidenceResponse, info.to_json(), "GET /v1/evidence")
    assert _parse.evidence_info(info.to_json()) == info
    empty = a.EvidenceInfo((), ())
    check(m.EvidenceResponse, empty.to_json(), "GET /v1/evidence (none)")

    check(m.QueryResponse, a.query_json("token", "balance", {"x": b"\x01"}), "query")
    event = CommittedEvent(4, b"\x09" * 32, 1, Event("token", "transfer", {"amount": 3}))
    message = a.event_message_json(event)
    check(m.EventMessage, message, "/v1/events event")
    assert _parse.committed_event(message) == event
    closed = a.closed_message_json(ErrorCode.UNAVAILABLE, "node stopping")
    check(m.ClosedMessage, closed, "/v1/events closed")


def test_the_key_check_can_fail() -> None:
    """A key the model does not name, or one it names and the answer lacks, fails."""
    good = {"address": "00", "nonce": 1, "pending_nonce": 1}
    check_keys(m.AccountResponse, good, "ok")
    with pytest.raises(AssertionError, match="AccountResponse"):
        check_keys(m.AccountResponse, {**good, "extra": 1}, "extra")
    nested = FakeNode().status().to_json()
    del nested["mempool"]["bytes"]
    with pytest.raises(AssertionError, match="MempoolModel"):
        check_keys(m.StatusResponse, nested, "nested")
