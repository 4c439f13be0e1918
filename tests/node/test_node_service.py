"""The API's view of a real (in-process) node: pruned and future heights answer with codes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from node_world import token_genesis

from citychain.api import node_service
from citychain.api.node_service import NodeServiceAdapter
from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, ExecutionFailure, InvalidInput, NotFound
from citychain.node import Node, NodeConfig
from citychain.node.config import StateSettings
from citychain.services.token.shapes import balance_key
from citychain.types import Commit, Transaction, Validator
from citychain.types.genesis import ChainParams, Genesis


def test_state_proofs_at_pruned_and_future_heights(tmp_path: Path) -> None:
    val, alice = token_genesis(tmp_path)
    node = Node(NodeConfig(home=tmp_path, state=StateSettings(retain_versions=2)), signer=val)
    try:
        for t in range(4):
            pending = node.chain.build_block([], 10 + t, val.public_key)
            node.chain.commit(pending, Commit.sign_single(val, "svc", pending.header))
        service = NodeServiceAdapter(node)
        key = balance_key(alice.address)
        latest = asyncio.run(service.state_proof(key, None))
        assert latest.height == 4 and latest.value is not None
        with pytest.raises(NotFound) as pruned:
            asyncio.run(service.state_proof(key, 1))
        assert pruned.value.code == ErrorCode.HEIGHT_PRUNED
        with pytest.raises(NotFound) as future:
            asyncio.run(service.state_proof(key, 9))
        assert future.value.code == ErrorCode.HEIGHT_NOT_COMMITTED
    finally:
        node.close()


def _metric(node: Node, name: str) -> float:
    value = node.metrics_registry.get_sample_value(name)
    assert value is not None, name
    return value


@pytest.mark.parametrize(("cache_pages", "reads_from_disk"), [(2, True), (100_000, False)])
def test_the_state_page_cache_is_sized_by_node_toml_and_disk_reads_are_a_metric(
    tmp_path: Path, cache_pages: int, reads_from_disk: bool
) -> None:
    """``[state] cache_pages`` sizes the tree's page cache: too small and proofs read pages
    from disk (``citychain_state_page_reads_total`` rises); large enough and, once a page is
    read, it is never read again."""
    val = Signer(ED25519, b"\x01" * 32)
    holders = [bytes([i, i]) * 10 for i in range(1, 241)]
    (tmp_path / "config").mkdir()
    Genesis(
        "svc",
        1,
        "ed25519",
        (Validator(val.public_key, 1, "v"),),
        contracts={"token": {"balances": {a.hex(): 100 for a in holders}}},
    ).save(tmp_path / "config" / "genesis.json")
    node = Node(NodeConfig(home=tmp_path, state=StateSettings(cache_pages=cache_pages)), signer=val)
    try:
        assert _metric(node, "citychain_state_page_cache_capacity") == cache_pages
        pending = node.chain.build_block([], 10, val.public_key)
        node.chain.commit(pending, Commit.sign_single(val, "svc", pending.header))
        service = NodeServiceAdapter(node)

        def prove_all() -> float:
            """Page reads from disk while every balance is proved once."""
            before = _metric(node, "citychain_state_page_reads_total")
            for a in holders:
                assert asyncio.run(service.state_proof(balance_key(a), None)).value is not None
            return _metric(node, "citychain_state_page_reads_total") - before

        prove_all()  # whatever the cache lacked is read now
        again = prove_all()
        assert 0 < _metric(node, "citychain_state_page_cache_pages") <= cache_pages
        assert (again > 0) is reads_from_disk, again
    finally:
        node.close()


def _token_node(tmp_path: Path, max_gas_per_tx: int = 50_000_000) -> tuple[Node, bytes]:
    val, alice = token_genesis(tmp_path, ChainParams(max_gas_per_tx=max_gas_per_tx))
    node = Node(NodeConfig(home=tmp_path), signer=val)
    pending = node.chain.build_block([], 10, val.public_key)
    node.chain.commit(pending, Commit.sign_single(val, "svc", pending.header))
    return node, alice.address


def test_a_cheap_query_answers_on_the_event_loop_and_a_costly_one_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query within INLINE_QUERY_GAS never waits for a worker thread (a hand-off costs
    more than a few point reads); one that runs out of that budget is run again in a thread
    with the chain's whole gas limit and gives the same answer."""
    node, alice = _token_node(tmp_path)
    service = NodeServiceAdapter(node)
    threads: list[object] = []
    real = asyncio.to_thread

    async def counted(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        threads.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(node_service.asyncio, "to_thread", counted)
    try:
        assert asyncio.run(service.query("token", "balance", {"owner": alice})) == 100
        assert threads == []
        monkeypatch.setattr(node_service, "INLINE_QUERY_GAS", 1)
        runs = node.chain.queries.misses
        assert asyncio.run(service.query("token", "balance", {"owner": alice})) == 100
        assert len(threads) == 1
        # Both tries were answered by the chain's query cache, not run: the one on the loop
        # was told out_of_gas from the gas the kept answer used.
        assert node.chain.queries.misses == runs
        # Any other refusal is the query's own answer, given once, on the loop.
        with pytest.raises(InvalidInput) as bad:
            asyncio.run(service.query("token", "balance", {"owner": b"short"}))
        assert bad.value.code == ErrorCode.BAD_ARGUMENTS and len(threads) == 1
    finally:
        node.close()


def test_a_query_beyond_the_chains_gas_limit_is_still_refused_out_of_gas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """... at once: with the chain's limit below the inline budget, the run on the loop was
    already the whole limit, so it is not run a second time in a thread."""
    node, alice = _token_node(tmp_path, max_gas_per_tx=100)
    threads: list[object] = []

    async def counted(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        threads.append(fn)
        return fn(*args, **kwargs)

    monkeypatch.setattr(node_service.asyncio, "to_thread", counted)
    try:
        with pytest.raises(ExecutionFailure) as exc:
            asyncio.run(NodeServiceAdapter(node).query("token", "balance", {"owner": alice}))
        assert exc.value.code == ErrorCode.OUT_OF_GAS
        assert "limit of 100 " in exc.value.message
        assert threads == []
    finally:
        node.close()


def test_submissions_are_counted_by_admission_code(tmp_path: Path) -> None:
    """``citychain_txs_submitted_total{code}``: an operator's count of what the node admitted
    and refused, one per transaction of a batch, by code."""
    val, alice = token_genesis(tmp_path)
    node = Node(NodeConfig(home=tmp_path), signer=val)
    try:

        def transfer(nonce: int) -> bytes:
            return Transaction.create(
                alice,
                chain_id="svc",
                nonce=nonce,
                contract="token",
                method="transfer",
                args={"to": bytes(20), "amount": 1},
            ).encode()

        good = [transfer(n) for n in range(3)]
        results = asyncio.run(node.submit([*good, good[0], b"\x00junk", transfer(10**6)]))
        codes = [r.code for r in results]
        assert codes == ["ok"] * 3 + ["duplicate", "non_canonical", "nonce_gap"]

        def count(code: str) -> float | None:
            return node.metrics_registry.get_sample_value(
                "citychain_txs_submitted_total", {"code": code}
            )

        assert count("ok") == 3
        assert count("duplicate") == count("non_canonical") == count("nonce_gap") == 1
        asyncio.run(node.submit([transfer(3)]))
        assert count("ok") == 4
    finally:
        node.close()


def test_an_index_reader_reads_what_index_get_reads_in_its_own_space(tmp_path: Path) -> None:
    """``index_reader(space)`` (bound once, for reads on every request) answers exactly as
    ``index_get(space, ...)``: entries of its space only, absent ones as None, and entries
    written after it was made."""
    node, _ = _token_node(tmp_path)
    service = NodeServiceAdapter(node)
    try:
        read = service.index_reader("identity")
        service.index_put("identity", [(b"did:a", b"1"), (b"", b"empty key")])
        service.index_put("other", [(b"did:b", b"2")])
        for key in (b"did:a", b"", b"did:b", b"did:none"):
            assert read(key) == service.index_get("identity", key)
        assert read(b"did:a") == b"1" and read(b"did:b") is None
        service.index_put("identity", [(b"did:b", b"3")])
        assert read(b"did:b") == b"3"
        with pytest.raises(ValueError):
            service.index_reader("a/b")
    finally:
        node.close()
