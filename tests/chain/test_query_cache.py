"""Answers of queries are given again from the chain's cache until the next commit
(``Chain.queries``, :mod:`citychain.chain._queries`): these tests pin down that an answer from
the cache is always the one a fresh run would give, and that the cache stays in its bounds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from citychain import codec
from citychain.chain import Chain, QueryCache
from citychain.chain._queries import MAX_ANSWER_BYTES
from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, ExecutionFailure, InvalidInput
from citychain.execution import (
    Context,
    Contract,
    Executor,
    QueryAnswer,
    default_registry,
    method,
    query,
)
from citychain.store.kv import KVStore
from citychain.types import Commit, Transaction, Validator
from citychain.types.genesis import ChainParams, Genesis

CHAIN = "query-cache"
VAL, ALICE, BOB = (Signer(ED25519, bytes([i]) * 32) for i in (1, 2, 3))
T0 = 1_700_000_000_000


class Memo(Contract):
    """Notes per caller; a query that names its caller; a private query; a big answer."""

    name = "memo"

    @method
    def note(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.set(b"n/" + ctx.caller, codec.encode(args["text"]))

    @query
    def read(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        raw = ctx.get(b"n/" + bytes(args["of"]))
        return {"text": None if raw is None else codec.decode(raw), "tags": ["a", "b"]}

    @query
    def whoami(self, ctx: Context, args: dict[str, Any]) -> bytes:
        return ctx.caller

    @query
    def clock(self, ctx: Context, args: dict[str, Any]) -> list[int]:
        return [ctx.height, ctx.time]

    @query(private=True)
    def secret(self, ctx: Context, args: dict[str, Any]) -> str:
        return "for authorised readers"

    @query
    def big(self, ctx: Context, args: dict[str, Any]) -> bytes:
        return bytes(int(args["size"]))


def registry() -> Any:
    reg = default_registry()
    reg.register(Memo())
    return reg


def genesis() -> Genesis:
    return Genesis(
        chain_id=CHAIN,
        genesis_time=T0,
        crypto_suite="ed25519",
        validators=(Validator(VAL.public_key, 10, "val"),),
        params=ChainParams(block_max_txs=100, max_gas_per_tx=50_000_000),
        contracts={
            "token": {
                "issuers": [{"hex": ALICE.address.hex()}],
                "balances": {ALICE.address.hex(): 1000},
            }
        },
    )


class Net:
    def __init__(self, path: Path, cache_bytes: int = 1 << 20) -> None:
        self.chain = Chain(KVStore(path), genesis(), registry(), query_cache_bytes=cache_bytes)
        self.nonces: dict[bytes, int] = {}

    def tx(self, s: Signer, contract: str, method_name: str, args: dict[str, Any]) -> Transaction:
        nonce = self.nonces.get(s.address, 0)
        self.nonces[s.address] = nonce + 1
        return Transaction.create(
            s, chain_id=CHAIN, nonce=nonce, contract=contract, method=method_name, args=args
        )

    def block(self, *txs: Transaction) -> None:
        pending = self.chain.build_block(
            list(txs), T0 + 1000 * (self.chain.height + 1), VAL.public_key
        )
        for r in pending.receipts:
            assert r.code == "ok", r
        self.chain.commit(pending, Commit.sign_single(VAL, CHAIN, pending.header))

    def note(self, s: Signer, text: str) -> None:
        self.block(self.tx(s, "memo", "note", {"text": text}))

    def read(self, s: Signer) -> Any:
        return self.chain.query("memo", "read", {"of": s.address})


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "chain")
    yield n
    n.chain.close()


def test_a_repeated_query_is_answered_from_the_cache_until_a_block_changes_it(net: Net) -> None:
    cache = net.chain.queries
    assert net.read(ALICE)["text"] is None
    assert (cache.hits, cache.misses) == (0, 1)
    assert net.read(ALICE)["text"] is None
    assert (cache.hits, cache.misses) == (1, 1)
    net.note(ALICE, "first")
    assert net.read(ALICE)["text"] == "first"  # not the answer kept before the block
    net.note(BOB, "unrelated")  # any block empties it: the context changed too
    assert net.read(ALICE)["text"] == "first"
    assert cache.misses == 3


def test_every_answer_is_a_fresh_copy(net: Net) -> None:
    first = net.read(ALICE)
    first["tags"].append("edited by a caller")
    first["text"] = "edited"
    second = net.read(ALICE)
    assert net.chain.queries.hits == 1
    assert second == {"text": None, "tags": ["a", "b"]}
    assert second is not first


def test_the_block_context_is_part_of_what_changes(net: Net) -> None:
    assert net.chain.query("memo", "clock", {}) == [0, T0]
    net.block()  # an empty block writes no state, yet queries see a new height and time
    assert len(net.chain.queries) == 0
    assert net.chain.query("memo", "clock", {}) == [1, T0 + 1000]


def test_the_caller_and_the_privacy_are_part_of_the_question(net: Net) -> None:
    chain = net.chain
    assert chain.query("memo", "whoami", {}, ALICE.address) == ALICE.address
    assert chain.query("memo", "whoami", {}, BOB.address) == BOB.address
    assert chain.query("memo", "whoami", {}) == bytes(20)
    assert chain.query("memo", "secret", {}, private=True) == "for authorised readers"
    # Asked again without the authorisation, the private answer is refused, not recalled.
    with pytest.raises(InvalidInput) as refused:
        chain.query("memo", "secret", {})
    assert refused.value.code == ErrorCode.NOT_AUTHORIZED
    assert chain.queries.hits == 0


def test_a_kept_answer_serves_every_gas_limit_it_fits_and_refuses_the_others(
    net: Net, tmp_path: Path
) -> None:
    chain = net.chain
    answer = chain.executor.query_canonical(
        chain.state, chain.context(), "memo", "big", {"size": 300}
    )
    used = answer.gas_used
    assert used > 1_000
    assert chain.query("memo", "big", {"size": 300}) == bytes(300)  # computed, kept
    assert chain.query("memo", "big", {"size": 300}, gas_limit=used) == bytes(300)
    with pytest.raises(ExecutionFailure) as told:
        chain.query("memo", "big", {"size": 300}, gas_limit=used - 1)
    assert chain.queries.hits == 2 and chain.queries.misses == 1  # neither was run again
    # What the run itself says under that limit, word for word.
    with pytest.raises(ExecutionFailure) as ran:
        chain.executor.query(
            chain.state, chain.context(), "memo", "big", {"size": 300}, gas_limit=used - 1
        )
    assert (told.value.code, told.value.message) == (ran.value.code, ran.value.message)
    assert told.value.code == ErrorCode.OUT_OF_GAS


def test_an_answer_computed_while_a_block_commits_is_not_kept(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Executor.query_canonical

    def racing(self: Executor, *args: Any, **kwargs: Any) -> QueryAnswer:
        answer = run(self, *args, **kwargs)  # read the state before the block ...
        monkeypatch.setattr(Executor, "query_canonical", run)
        net.note(ALICE, "committed meanwhile")  # ... which commits before it is kept
        return answer

    monkeypatch.setattr(Executor, "query_canonical", racing)
    assert net.read(ALICE)["text"] is None  # what it read
    assert net.read(ALICE)["text"] == "committed meanwhile"  # not the answer above


def test_refusals_are_not_kept_and_bad_arguments_are_refused_as_before(net: Net) -> None:
    with pytest.raises(InvalidInput) as refused:
        net.chain.query("memo", "read", {"of": 1.5})
    assert refused.value.code == ErrorCode.BAD_ARGUMENTS
    assert "not canonical data" in refused.value.message
    assert len(net.chain.queries) == 0
    with pytest.raises(InvalidInput) as refused:
        net.chain.query("memo", "whoami", {}, bytearray(20))  # type: ignore[arg-type]
    assert refused.value.code == ErrorCode.BAD_ARGUMENTS
    assert "20-byte address" in refused.value.message


def test_the_cache_keeps_to_its_budget(tmp_path: Path) -> None:
    net = Net(tmp_path / "small", cache_bytes=3_000)
    try:
        chain, cache = net.chain, net.chain.queries
        chain.query("memo", "big", {"size": 1_000})
        chain.query("memo", "big", {"size": 1_001})
        assert len(cache) == 2 and cache.kept_bytes <= 3_000
        chain.query("memo", "big", {"size": 1_002})  # over the budget: it starts over
        assert len(cache) == 1 and cache.kept_bytes <= 3_000
        chain.query("memo", "big", {"size": 5_000})  # bigger than the whole budget
        assert len(cache) == 1
    finally:
        net.chain.close()
    net = Net(tmp_path / "off", cache_bytes=0)
    try:
        assert net.read(ALICE) == net.read(ALICE)
        assert len(net.chain.queries) == 0 and net.chain.queries.misses == 0
    finally:
        net.chain.close()


def test_an_answer_over_the_largest_is_computed_each_time() -> None:
    cache = QueryCache(64 << 20)
    key = QueryCache.key("memo", "big", {}, None, False)
    assert key is not None
    cache.put(key, bytes(MAX_ANSWER_BYTES + 1), 1, cache.generation)
    assert cache.get(key) is None
    cache.put(key, bytes(MAX_ANSWER_BYTES), 1, cache.generation)
    assert cache.get(key) == (bytes(MAX_ANSWER_BYTES), 1)


class Interleavings(RuleBasedStateMachine):
    """Queries start and finish around commits in any order (the API's threads against the
    execution thread). A commit is two steps: its state becomes visible, then the cache is
    emptied. Once a commit has finished, no answer read from an older state is given."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = QueryCache(1 << 20)
        self.visible = 0  # the state version readers see
        self.finished = 0  # the last version whose commit has emptied the cache
        self.running: list[tuple[bytes, int, int]] = []  # (key's args, version read, gen)

    @rule(arg=st.sampled_from([b"a", b"b"]))
    def start(self, arg: bytes) -> None:
        self.running.append((arg, self.visible, self.cache.generation))

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        arg, version, gen = self.running.pop(data.draw(st.integers(0, len(self.running) - 1)))
        key = QueryCache.key("c", "m", {"arg": arg}, None, False)
        assert key is not None
        self.cache.put(key, codec.encode(version), 1, gen)

    @precondition(lambda self: self.visible == self.finished)
    @rule()
    def write(self) -> None:
        self.visible += 1

    @precondition(lambda self: self.visible == self.finished + 1)
    @rule()
    def invalidate(self) -> None:
        self.cache.invalidate()
        self.finished = self.visible

    @invariant()
    def no_answer_older_than_the_last_finished_commit(self) -> None:
        for arg in (b"a", b"b"):
            key = QueryCache.key("c", "m", {"arg": arg}, None, False)
            assert key is not None
            kept = self.cache._values.get(key)
            if kept is not None:
                assert codec.decode(kept[0]) >= self.finished


TestInterleavings = Interleavings.TestCase
TestInterleavings.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
