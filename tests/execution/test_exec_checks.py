"""Per-transaction checks: each refusal gives a failed receipt and changes nothing at all."""

from __future__ import annotations

from typing import Any

import pytest
from exec_helpers import SUITE, Chain, registry, signer

from citychain.errors import ErrorCode
from citychain.execution import Executor, GasSchedule
from citychain.execution.keys import account_nonce
from citychain.types import Transaction

ALICE, BOB = signer(2), signer(3)


def fresh() -> Chain:
    return Chain({"balances": {ALICE.address.hex(): 100}})


def transfer(chain: Chain, **kw: Any) -> Transaction:
    return chain.tx(ALICE, "token", "transfer", {"to": BOB.address, "amount": 1}, **kw)


def forged(tx: Transaction) -> Transaction:
    sig = bytearray(tx.signature)
    sig[0] ^= 1
    return tx.with_signature(bytes(sig))


CASES: dict[str, tuple[ErrorCode, Any]] = {
    "bad signature": (ErrorCode.BAD_SIGNATURE, lambda c: forged(transfer(c, nonce=0))),
    "signed by another key": (
        ErrorCode.BAD_SIGNATURE,
        lambda c: transfer(c, nonce=0).with_signature(
            BOB.sign(transfer(c, nonce=0).signing_bytes())
        ),
    ),
    "wrong chain": (ErrorCode.WRONG_CHAIN, lambda c: transfer(c, nonce=0, chain_id="other")),
    "expired": (ErrorCode.EXPIRED, lambda c: transfer(c, nonce=0, expiry=0)),
    "nonce gap": (ErrorCode.NONCE_GAP, lambda c: transfer(c, nonce=1)),
    "gas limit too high": (
        ErrorCode.GAS_LIMIT_TOO_HIGH,
        lambda c: transfer(c, nonce=0, gas_limit=GasSchedule().max_gas_per_tx + 1),
    ),
    "gas limit too low": (
        ErrorCode.GAS_LIMIT_TOO_LOW,
        lambda c: transfer(c, nonce=0, gas_limit=100),
    ),
    "unknown contract": (
        ErrorCode.UNKNOWN_CONTRACT,
        lambda c: c.tx(ALICE, "nosuch", "transfer", {}, nonce=0),
    ),
    "unknown method": (
        ErrorCode.UNKNOWN_METHOD,
        lambda c: c.tx(ALICE, "token", "steal", {}, nonce=0),
    ),
    "query sent as a transaction": (
        ErrorCode.UNKNOWN_METHOD,
        lambda c: c.tx(ALICE, "token", "balance", {"owner": ALICE.address}, nonce=0),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_transaction_changes_nothing(case: str) -> None:
    code, build = CASES[case]
    chain = fresh()
    before = dict(chain.state.data)
    tx = build(chain)
    result = chain.run(tx)
    (r,) = result.receipts
    assert r.code == code, r.message
    assert r.message and r.gas_used == 0 and r.events == () and r.result is None
    assert r.tx_hash == tx.hash
    assert result.writes == {} and result.gas_used == 0
    assert chain.state.data == before
    # The nonce did not move: the same nonce still works afterwards.
    ok = chain.run(transfer(chain, nonce=0)).receipts[0]
    assert ok.ok, ok.message


def test_used_nonce_is_too_low_and_replay_is_refused() -> None:
    chain = fresh()
    tx = transfer(chain, nonce=0)
    first, replay = chain.run(tx, tx).receipts
    assert first.ok
    assert replay.code == ErrorCode.NONCE_TOO_LOW and "next nonce is 1" in replay.message
    again = chain.run(tx).receipts[0]
    assert again.code == ErrorCode.NONCE_TOO_LOW
    assert chain.balance(BOB) == 1 and account_nonce(chain.state, ALICE.address) == 1


def test_expiry_equal_to_height_is_still_valid() -> None:
    chain = fresh()
    assert chain.run(transfer(chain, nonce=0, expiry=1)).receipts[0].ok  # block height 1


def test_checks_run_in_the_documented_order() -> None:
    chain = fresh()
    # Bad signature wins over wrong chain, wrong chain over expiry, expiry over nonce, ...
    assert (
        chain.run(forged(transfer(chain, nonce=5, chain_id="x", expiry=0))).receipts[0].code
        == ErrorCode.BAD_SIGNATURE
    )
    assert (
        chain.run(transfer(chain, nonce=5, chain_id="x", expiry=0)).receipts[0].code
        == ErrorCode.WRONG_CHAIN
    )
    assert chain.run(transfer(chain, nonce=5, expiry=0)).receipts[0].code == ErrorCode.EXPIRED
    assert (
        chain.run(chain.tx(ALICE, "nosuch", "m", {}, nonce=5, gas_limit=10**12)).receipts[0].code
        == ErrorCode.NONCE_GAP
    )
    assert (
        chain.run(chain.tx(ALICE, "nosuch", "m", {}, nonce=0, gas_limit=10**12)).receipts[0].code
        == ErrorCode.GAS_LIMIT_TOO_HIGH
    )


def test_signatures_are_checked_in_one_batch_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    chain = fresh()
    real = SUITE.batch_verify

    def counting(items: Any) -> list[bool]:
        calls.append(len(items))
        return real(items)

    monkeypatch.setattr(SUITE, "batch_verify", counting)
    txs = [transfer(chain) for _ in range(3)]
    assert all(r.ok for r in chain.run(*txs).receipts)
    assert calls == [3]


def test_a_refused_tx_between_good_ones_does_not_disturb_them() -> None:
    chain = fresh()
    a = transfer(chain, nonce=0)
    bad = forged(transfer(chain, nonce=1))
    b = transfer(chain, nonce=1)
    ra, rbad, rb = chain.run(a, bad, b).receipts
    assert ra.ok and rbad.code == ErrorCode.BAD_SIGNATURE and rb.ok
    assert chain.balance(BOB) == 2 and account_nonce(chain.state, ALICE.address) == 2


def test_custom_gas_schedule_limits_are_enforced() -> None:
    ex = Executor(registry(), SUITE, GasSchedule(max_gas_per_tx=200_000))
    chain = Chain({"balances": {ALICE.address.hex(): 100}}, executor=ex)
    r = chain.run(transfer(chain, nonce=0, gas_limit=200_001)).receipts[0]
    assert r.code == ErrorCode.GAS_LIMIT_TOO_HIGH and "200000" in r.message
