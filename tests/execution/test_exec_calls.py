"""Contract execution: rollback, gas, nested calls, iteration, queries and the context."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from exec_helpers import CHAIN, SUITE, Chain, DictState, block_ctx, registry, signer

from citychain.errors import ErrorCode, ExecutionFailure, InternalError
from citychain.execution import MAX_CALL_DEPTH, Executor, GasSchedule
from citychain.execution.keys import account_nonce, contract_address, contract_key
from citychain.services.token.shapes import balance_key
from citychain.types import Event

ALICE, BOB = signer(2), signer(3)
PROBE = contract_address(SUITE, "probe")


def fresh() -> Chain:
    return Chain({"balances": {ALICE.address.hex(): 100}})


def pk(key: bytes) -> bytes:
    return contract_key("probe", key)


# -- rollback ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("put_then_fail", ErrorCode.UNAUTHORIZED),
        ("boom", ErrorCode.CONTRACT_ERROR),
        ("spin", ErrorCode.OUT_OF_GAS),
        ("swallow_oog", ErrorCode.OUT_OF_GAS),
        ("bad_return", ErrorCode.CONTRACT_ERROR),
        ("bad_event", ErrorCode.CONTRACT_ERROR),
        ("empty_value", ErrorCode.CONTRACT_ERROR),
    ],
)
def test_failed_tx_discards_writes_and_events_but_advances_nonce(
    method: str, code: ErrorCode
) -> None:
    chain = fresh()
    before = chain.run(chain.tx(ALICE, "probe", "put", {"key": b"k", "value": b"v0"}))
    assert before.receipts[0].ok
    first = chain.tx(ALICE, "token", "transfer", {"to": BOB.address, "amount": 10})
    failing = chain.tx(ALICE, "probe", method, {}, gas_limit=50_000)
    later = chain.tx(ALICE, "probe", "put", {"key": b"k", "value": b"v1"})
    result = chain.run(first, failing, later)
    r_first, r_fail, r_later = result.receipts
    assert r_first.ok and r_later.ok
    assert r_fail.code == code, r_fail.message
    assert r_fail.events == () and r_fail.result is None and r_fail.gas_used > 0
    assert pk(b"doomed") not in result.writes
    assert chain.state.get(pk(b"doomed")) is None
    assert chain.state.get(pk(b"k")) == b"v1"
    assert chain.balance(BOB) == 10
    assert account_nonce(chain.state, ALICE.address) == 4


def test_unexpected_exception_gives_generic_message_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = fresh()
    with caplog.at_level(logging.ERROR, logger="citychain.execution"):
        (r,) = chain.run(chain.tx(ALICE, "probe", "boom")).receipts
    assert r.code == ErrorCode.CONTRACT_ERROR
    assert r.message == "contract probe.boom failed with an internal error"
    assert "Traceback" not in r.message and "ZeroDivision" not in r.message
    assert any("ZeroDivisionError" in (rec.exc_text or "") for rec in caplog.records)


def test_out_of_gas_uses_the_whole_limit_and_stops_at_the_limit() -> None:
    chain = fresh()
    (r,) = chain.run(chain.tx(ALICE, "probe", "spin", gas_limit=30_000)).receipts
    assert r.code == ErrorCode.OUT_OF_GAS and r.gas_used == 30_000
    assert "30000" in r.message


def test_gas_is_charged_per_op_and_per_byte() -> None:
    gas = GasSchedule()
    chain = fresh()
    small_tx = chain.tx(ALICE, "probe", "put", {"key": b"a", "value": b"x"})
    big_tx = chain.tx(ALICE, "probe", "put", {"key": b"b", "value": b"x" * 101})
    small, big = chain.run(small_tx, big_tx).receipts
    wire = len(big_tx.encode()) - len(small_tx.encode())
    assert big.gas_used - small.gas_used == wire * gas.tx_byte + 100 * gas.write_byte
    assert small.gas_used > gas.intrinsic(len(small_tx.encode()))


def test_a_contract_cannot_mutate_the_transactions_args() -> None:
    chain = fresh()
    tx = chain.tx(ALICE, "probe", "mutate_args", {"list": [1]})
    encoded = tx.encode()
    assert chain.run(tx).receipts[0].ok
    assert tx.args == {"list": [1]}
    assert tx.encode() == encoded


# -- the context ---------------------------------------------------------------------------
def test_context_identity_for_direct_and_nested_calls() -> None:
    chain = fresh()
    direct_tx = chain.tx(ALICE, "probe", "whoami")
    nested_tx = chain.tx(ALICE, "probe", "relay", {"contract": "probe", "method": "whoami"})
    direct, nested = chain.run(direct_tx, nested_tx).receipts
    assert direct.result == {
        "caller": ALICE.address,
        "origin": ALICE.address,
        "sender_public_key": ALICE.public_key,
        "address": PROBE,
        "height": 1,
        "time": block_ctx(1).time,
        "chain_id": CHAIN,
        "tx_hash": direct_tx.hash,
        "depth": 1,
    }
    assert nested.result["caller"] == PROBE
    assert nested.result["origin"] == ALICE.address
    assert nested.result["tx_hash"] == nested_tx.hash
    assert nested.result["depth"] == 2
    assert ALICE.address != PROBE and len(PROBE) == 20


def test_nested_call_acts_as_the_calling_contract() -> None:
    chain = Chain({"balances": {PROBE.hex(): 50}})
    (r,) = chain.run(
        chain.tx(
            ALICE,
            "probe",
            "relay",
            {"contract": "token", "method": "transfer", "args": {"to": BOB.address, "amount": 20}},
        )
    ).receipts
    assert r.ok, r.message
    assert r.events == (
        Event("token", "transfer", {"from": PROBE, "to": BOB.address, "amount": 20}),
    )
    assert chain.balance(PROBE) == 30 and chain.balance(BOB) == 20
    assert chain.state.get(pk(b"relayed")) == b"1"


@pytest.mark.parametrize("method", ["relay", "relay_swallow"])
def test_failing_nested_call_fails_the_whole_tx_even_if_caught(method: str) -> None:
    chain = Chain({"balances": {PROBE.hex(): 5}})
    (r,) = chain.run(
        chain.tx(
            ALICE,
            "probe",
            method,
            {"contract": "token", "method": "transfer", "args": {"to": BOB.address, "amount": 20}},
        )
    ).receipts
    assert r.code == ErrorCode.INSUFFICIENT_FUNDS
    assert chain.state.get(pk(b"relayed")) is None and chain.state.get(pk(b"after")) is None
    assert chain.balance(PROBE) == 5
    assert account_nonce(chain.state, ALICE.address) == 1


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ({"contract": "nosuch", "method": "x"}, ErrorCode.UNKNOWN_CONTRACT),
        ({"contract": "token", "method": "nosuch"}, ErrorCode.UNKNOWN_METHOD),
        ({"contract": "probe", "method": "boom"}, ErrorCode.CONTRACT_ERROR),
    ],
)
def test_nested_call_errors_carry_their_code(target: dict[str, Any], code: ErrorCode) -> None:
    chain = fresh()
    (r,) = chain.run(chain.tx(ALICE, "probe", "relay_swallow", target)).receipts
    assert r.code == code
    assert chain.state.get(pk(b"after")) is None


def test_call_depth_limit() -> None:
    chain = fresh()
    deepest_ok = MAX_CALL_DEPTH - 1
    ok, too_deep = chain.run(
        chain.tx(ALICE, "probe", "recurse", {"n": deepest_ok}),
        chain.tx(ALICE, "probe", "recurse", {"n": deepest_ok + 1}),
    ).receipts
    assert ok.ok and ok.result == MAX_CALL_DEPTH
    assert too_deep.code == ErrorCode.CALL_DEPTH and str(MAX_CALL_DEPTH) in too_deep.message


def test_nested_call_into_a_query_is_read_only() -> None:
    chain = fresh()
    ok, refused = chain.run(
        chain.tx(ALICE, "probe", "relay", {"contract": "token", "method": "total_supply"}),
        chain.tx(ALICE, "probe", "relay", {"contract": "probe", "method": "write_in_query"}),
    ).receipts
    assert ok.ok and ok.result == 100
    assert refused.code == ErrorCode.CONTRACT_ERROR and "read-only" in refused.message


# -- iteration -----------------------------------------------------------------------------
def put(chain: Chain, *pairs: tuple[bytes, bytes]) -> None:
    txs = [chain.tx(ALICE, "probe", "put", {"key": k, "value": v}) for k, v in pairs]
    assert all(r.ok for r in chain.run(*txs).receipts)


def test_iteration_merges_tx_block_and_base_in_key_order_hiding_deletions() -> None:
    chain = fresh()
    put(chain, (b"p/1", b"base1"), (b"p/3", b"base3"), (b"p/5", b"base5"), (b"q/1", b"other"))
    block = [
        chain.tx(ALICE, "probe", "put", {"key": b"p/2", "value": b"block2"}),
        chain.tx(ALICE, "probe", "delete", {"key": b"p/3"}),
        chain.tx(ALICE, "probe", "put", {"key": b"p/5", "value": b"block5"}),
        chain.tx(
            ALICE,
            "probe",
            "edit_and_list",
            {
                "prefix": b"p/",
                "set": [[b"p/0", b"tx0"], [b"p/6", b"tx6"], [b"p/2", b"tx2"]],
                "delete": [b"p/1"],
            },
        ),
        chain.tx(ALICE, "probe", "listing", {"prefix": b"p/"}),
    ]
    result = chain.run(*block)
    assert all(r.ok for r in result.receipts)
    inside = result.receipts[3].result
    assert inside == [[b"p/0", b"tx0"], [b"p/2", b"tx2"], [b"p/5", b"block5"], [b"p/6", b"tx6"]]
    assert result.receipts[4].result == inside  # a later tx sees the same merged view
    # And the committed state agrees with what the contract saw.
    committed = [[k[len(pk(b"")) :], v] for k, v in chain.state.iter_prefix(pk(b"p/"))]
    assert committed == inside


def test_iteration_after_a_failed_tx_does_not_see_its_writes() -> None:
    chain = fresh()
    put(chain, (b"doomex", b"1"))
    _, listing = chain.run(
        chain.tx(ALICE, "probe", "put_then_fail"),
        chain.tx(ALICE, "probe", "listing", {"prefix": b"doom"}),
    ).receipts
    assert listing.result == [[b"doomex", b"1"]]


def test_iteration_charges_gas_per_item() -> None:
    chain = fresh()
    put(chain, *[(b"i/%03d" % i, b"v") for i in range(20)])
    few, many = chain.run(
        chain.tx(ALICE, "probe", "listing", {"prefix": b"i/00"}),
        chain.tx(ALICE, "probe", "listing", {"prefix": b"i/"}),
    ).receipts
    assert len(few.result) == 10 and len(many.result) == 20
    gas = GasSchedule()
    assert many.gas_used - few.gas_used >= 10 * gas.iter_step
    (starved,) = chain.run(
        chain.tx(ALICE, "probe", "listing", {"prefix": b"i/"}, gas_limit=few.gas_used)
    ).receipts
    assert starved.code == ErrorCode.OUT_OF_GAS


def test_contracts_cannot_see_other_namespaces() -> None:
    chain = fresh()
    (r,) = chain.run(chain.tx(ALICE, "probe", "listing", {"prefix": b""})).receipts
    assert r.ok and r.result == []  # the token's balances and the nonces are invisible


# -- queries -------------------------------------------------------------------------------
def test_query_sees_committed_state_and_refuses_writes() -> None:
    chain = fresh()
    put(chain, (b"k", b"v"))
    assert chain.query("probe", "read", {"key": b"k"}) == b"v"
    with pytest.raises(ExecutionFailure) as info:
        chain.query("probe", "write_in_query")
    assert info.value.code == ErrorCode.CONTRACT_ERROR and "read-only" in info.value.message
    ex = chain.executor
    ctx = block_ctx(1)
    assert ex.query(chain.state, ctx, "probe", "whoami_q", {}) == [bytes(20), bytes(20), True]
    assert ex.query(chain.state, ctx, "probe", "whoami_q", {}, caller=BOB.address)[0] == (
        BOB.address
    )


def test_query_gas_is_bounded_by_max_gas_per_tx() -> None:
    tight = Executor(registry(), SUITE, GasSchedule(max_gas_per_tx=30_000))
    chain = Chain({}, executor=tight)
    txs = [
        chain.tx(
            ALICE, "probe", "put", {"key": b"i/%03d" % i, "value": b"v" * 100}, gas_limit=30_000
        )
        for i in range(100)
    ]
    assert all(r.ok for r in chain.run(*txs).receipts)
    with pytest.raises(ExecutionFailure) as info:
        chain.query("probe", "count", {"prefix": b"i/"})
    assert info.value.code == ErrorCode.OUT_OF_GAS
    roomy = Executor(registry(), SUITE)
    assert roomy.query(chain.state, block_ctx(1), "probe", "count", {"prefix": b"i/"}) == 100


# -- node faults ---------------------------------------------------------------------------
class BrokenState(DictState):
    """A state whose reads of one key (or of any iteration) fail like a broken disk."""

    def __init__(self, data: dict[bytes, bytes], bad_key: bytes | None) -> None:
        super().__init__(data)
        self.bad_key = bad_key

    def get(self, key: bytes) -> bytes | None:
        if key == self.bad_key:
            raise OSError("I/O error")
        return super().get(key)

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        if self.bad_key is None:
            raise OSError("I/O error while iterating")
        yield from super().iter_prefix(prefix, after=after)


@pytest.mark.parametrize("bad_key", [pk(b"k"), None])
def test_a_failing_state_read_aborts_the_block_instead_of_writing_a_receipt(
    bad_key: bytes | None,
) -> None:
    chain = fresh()
    broken = BrokenState(chain.state.data, bad_key)
    tx = chain.tx(ALICE, "probe", "read_swallowing_everything", {"key": b"k"})
    with pytest.raises(InternalError, match="state read failed"):
        chain.executor.execute_block(broken, block_ctx(1), [tx])
    ok = chain.executor.execute_block(chain.state, block_ctx(1), [tx]).receipts[0]
    assert ok.ok and ok.result == "read"


def test_corrupt_token_state_is_a_node_fault() -> None:
    chain = fresh()
    chain.state.data[balance_key(ALICE.address)] = b"\xff"
    tx = chain.tx(ALICE, "token", "transfer", {"to": BOB.address, "amount": 1})
    with pytest.raises(InternalError, match="malformed amount"):
        chain.run(tx)
