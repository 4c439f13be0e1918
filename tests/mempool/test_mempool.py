"""Mempool behaviour a node relies on: admission codes, nonce order, fairness, limits, update."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import cbor2
import pytest

from citychain import codec
from citychain.crypto import ED25519, Ed25519Suite, Signer, VerifyItem
from citychain.errors import CitychainError, ConfigError, ErrorCode
from citychain.mempool import MAX_REAP_MISFITS, AddResult, Mempool, MempoolConfig
from citychain.types import Transaction

CHAIN = "test-chain"
BIG = 10**12


class FakeChain:
    """Committed account nonces and height, as the node's state would report them."""

    def __init__(self) -> None:
        self.nonces: dict[bytes, int] = {}
        self.height = 0
        self.nonce_reads: list[bytes] = []

    def account_nonce(self, address: bytes) -> int:
        self.nonce_reads.append(address)
        return self.nonces.get(address, 0)

    def commit(self, pool: Mempool, txs: Sequence[Transaction]) -> None:
        for tx in txs:
            addr = ED25519.address(tx.sender)
            assert tx.nonce == self.nonces.get(addr, 0), "test built an invalid block"
            self.nonces[addr] = tx.nonce + 1
        self.height += 1
        pool.update(txs, self.height)


class CountingSuite(Ed25519Suite):
    def __init__(self) -> None:
        super().__init__()
        self.batch_calls: list[int] = []

    def batch_verify(self, items: Sequence[VerifyItem]) -> list[bool]:
        self.batch_calls.append(len(items))
        return super().batch_verify(items)


SIGNERS = [Signer(ED25519, bytes([i + 1]) * 32) for i in range(6)]
A, B, C = SIGNERS[:3]


def make_tx(signer: Signer, nonce: int, **kw: Any) -> Transaction:
    kw.setdefault("chain_id", CHAIN)
    kw.setdefault("contract", "token")
    kw.setdefault("method", "transfer")
    kw.setdefault("args", {"to": b"\x01" * 20, "amount": 1})
    return Transaction.create(signer, nonce=nonce, **kw)


def new_pool(**cfg: Any) -> tuple[Mempool, FakeChain]:
    chain = FakeChain()
    pool = Mempool(MempoolConfig(**cfg), ED25519, CHAIN, chain.account_nonce, lambda: chain.height)
    return pool, chain


def add_ok(pool: Mempool, *txs: Transaction) -> None:
    results = pool.add([tx.encode() for tx in txs])
    assert [r.code for r in results] == [ErrorCode.OK] * len(txs), results


def codes(results: Sequence[AddResult]) -> list[ErrorCode]:
    return [r.code for r in results]


def reap_all(pool: Mempool) -> list[Transaction]:
    return pool.reap(BIG, BIG, BIG)


def ids(txs: Sequence[Transaction]) -> list[tuple[str, int]]:
    names = {s.public_key: "ABCDEF"[i] for i, s in enumerate(SIGNERS)}
    return [(names[tx.sender], tx.nonce) for tx in txs]


# -- ordering -------------------------------------------------------------------------------
def test_out_of_order_nonces_become_executable_when_the_gap_fills() -> None:
    pool, _ = new_pool()
    add_ok(pool, make_tx(A, 2), make_tx(A, 1))
    assert len(pool) == 2
    assert reap_all(pool) == []  # nonce 0 missing: nothing executable
    assert pool.pending_nonce(A.address) == 0
    add_ok(pool, make_tx(A, 0))
    assert ids(reap_all(pool)) == [("A", 0), ("A", 1), ("A", 2)]
    assert pool.pending_nonce(A.address) == 3


def test_pending_nonce_of_an_unknown_sender_is_the_account_nonce() -> None:
    pool, chain = new_pool()
    chain.nonces[B.address] = 7
    assert pool.pending_nonce(B.address) == 7
    add_ok(pool, make_tx(B, 7), make_tx(B, 9))
    assert pool.pending_nonce(B.address) == 8


def test_reap_is_round_robin_across_senders_in_arrival_order() -> None:
    pool, _ = new_pool()
    add_ok(pool, *(make_tx(A, n) for n in range(4)))
    add_ok(pool, *(make_tx(B, n) for n in range(3)))
    add_ok(pool, make_tx(C, 0))
    assert ids(reap_all(pool)) == [
        ("A", 0), ("B", 0), ("C", 0),
        ("A", 1), ("B", 1),
        ("A", 2), ("B", 2),
        ("A", 3),
    ]  # fmt: skip
    # A busy sender cannot crowd out the others from a small block.
    assert ids(pool.reap(3, BIG, BIG)) == [("A", 0), ("B", 0), ("C", 0)]


def test_within_a_round_the_earlier_arrival_goes_first() -> None:
    pool, _ = new_pool()
    add_ok(pool, make_tx(A, 0), make_tx(B, 0), make_tx(B, 1), make_tx(A, 1))
    assert ids(reap_all(pool)) == [("A", 0), ("B", 0), ("B", 1), ("A", 1)]


def test_a_head_that_arrives_late_ranks_by_its_own_arrival() -> None:
    pool, _ = new_pool()
    add_ok(pool, make_tx(A, 1), make_tx(B, 0), make_tx(A, 0))
    # A's head (nonce 0) arrived after B's head.
    assert ids(reap_all(pool)) == [("B", 0), ("A", 0), ("A", 1)]


def test_reap_does_not_remove_and_is_repeatable() -> None:
    pool, _ = new_pool()
    add_ok(pool, make_tx(A, 0), make_tx(B, 0), make_tx(A, 1))
    first = reap_all(pool)
    assert reap_all(pool) == first
    assert len(pool) == 3
    assert pool.reap(0, BIG, BIG) == []


def test_reap_respects_byte_and_gas_budgets() -> None:
    pool, _ = new_pool()
    big = make_tx(A, 0, args={"blob": b"x" * 2000})
    add_ok(pool, big, make_tx(A, 1), make_tx(B, 0), make_tx(C, 0, gas_limit=900))
    small = len(make_tx(B, 0).encode())
    # A's head does not fit the bytes: A is skipped for this block, the others still go.
    got = pool.reap(BIG, 3 * small, BIG)
    assert ids(got) == [("B", 0), ("C", 0)]
    assert sum(len(t.encode()) for t in got) <= 3 * small
    # Gas: after A's head only 1000 is left: B's 100_000 does not fit, C's 900 does.
    got = pool.reap(BIG, BIG, big.gas_limit + 1000)
    assert ids(got) == [("A", 0), ("C", 0)]
    assert sum(t.gas_limit for t in got) <= big.gas_limit + 1000


def test_reap_gives_up_after_a_bounded_number_of_misfits() -> None:
    pool, _ = new_pool()
    signers = [Signer(ED25519, i.to_bytes(32, "big")) for i in range(1, MAX_REAP_MISFITS + 3)]
    for s in signers[:-1]:
        add_ok(pool, make_tx(s, 0, args={"blob": b"x" * 500}))
    add_ok(pool, make_tx(signers[-1], 0))
    limit = len(make_tx(signers[-1], 0).encode())
    # MAX_REAP_MISFITS + 1 large heads come first; reap stops before the small one.
    assert pool.reap(BIG, limit, BIG) == []


# -- refusals -------------------------------------------------------------------------------
def test_stateless_refusal_codes() -> None:
    pool, _ = new_pool(max_tx_bytes=1000, max_gas_per_tx=500_000)
    good = make_tx(A, 0)
    wire = codec.decode(good.encode())
    # Re-encode the same array with a non-shortest integer for the version (0x18 0x01).
    non_canonical = b"\x8a\x18\x01" + b"".join(codec.encode(v) for v in wire[1:])
    assert cbor2.loads(non_canonical) == wire
    forged = good.with_signature(bytes(64))
    bad_key = Transaction(CHAIN, b"\x02" * 33, 0, 2**63 - 1, "token", "transfer", {}, 100)
    cases: list[tuple[bytes, ErrorCode]] = [
        (make_tx(A, 0, args={"blob": b"x" * 2000}).encode(), ErrorCode.TOO_LARGE),
        (b"\xff\x00garbage", ErrorCode.MALFORMED),
        (codec.encode([1, 2, 3]), ErrorCode.MALFORMED),
        (non_canonical, ErrorCode.NON_CANONICAL),
        (make_tx(A, 0, chain_id="other-chain").encode(), ErrorCode.WRONG_CHAIN),
        (make_tx(A, 0, gas_limit=500_001).encode(), ErrorCode.GAS_LIMIT_TOO_HIGH),
        (forged.encode(), ErrorCode.BAD_SIGNATURE),
        (bad_key.with_signature(b"\x00" * 64).encode(), ErrorCode.BAD_PUBLIC_KEY),
        (make_tx(A, 0, gas_limit=500_000).encode(), ErrorCode.OK),
    ]
    results = pool.add([raw for raw, _ in cases])
    assert codes(results) == [code for _, code in cases]
    for r in results:
        assert r.ok == (r.code == ErrorCode.OK)
        assert r.ok or r.message
    # Decodable transactions keep their hash in the result, garbage has none.
    assert results[0].tx_hash is None and results[1].tx_hash is None
    assert results[4].tx_hash == make_tx(A, 0, chain_id="other-chain").hash
    assert results[6].tx_hash == forged.hash
    assert "500000" in results[5].message and "500001" in results[5].message
    assert "other-chain" in results[4].message and CHAIN in results[4].message
    assert len(pool) == 1


def test_check_is_stateless_and_verifies_a_batch_in_one_call() -> None:
    suite = CountingSuite()
    chain = FakeChain()
    pool = Mempool(MempoolConfig(), suite, CHAIN, chain.account_nonce, lambda: chain.height)
    raw = [make_tx(s, n).encode() for s in SIGNERS for n in range(20)] + [b"junk"]
    checked = pool.check(raw)
    assert suite.batch_calls == [len(raw) - 1]
    assert chain.nonce_reads == [] and len(pool) == 0  # check touched no state
    assert all(isinstance(c, Transaction) for c in checked[:-1])
    assert isinstance(checked[-1], CitychainError) and checked[-1].code == ErrorCode.MALFORMED


def test_check_gives_the_same_answers_from_many_threads() -> None:
    pool, _ = new_pool()
    raw = [make_tx(A, n).encode() for n in range(30)]
    raw[7] = make_tx(A, 7).with_signature(bytes(64)).encode()
    expected = [getattr(c, "code", None) for c in pool.check(raw)]
    seen: list[list[Any]] = []

    def work() -> None:
        seen.append([getattr(c, "code", None) for c in pool.check(raw)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [expected] * 4
    assert expected[7] == ErrorCode.BAD_SIGNATURE and expected.count(None) == 29


def test_insert_passes_check_errors_through_in_order() -> None:
    pool, _ = new_pool()
    raw = [make_tx(A, 0).encode(), b"\xff", make_tx(A, 1).encode()]
    results = pool.insert(pool.check(raw))
    assert codes(results) == [ErrorCode.OK, ErrorCode.MALFORMED, ErrorCode.OK]
    assert results[0].tx_hash == make_tx(A, 0).hash and results[1].tx_hash is None


def test_stateful_refusal_codes() -> None:
    pool, chain = new_pool(nonce_window=4)
    chain.nonces[A.address] = 5
    chain.height = 10
    add_ok(pool, make_tx(A, 5))
    results = pool.add(
        [
            make_tx(A, 5).encode(),  # same bytes again
            make_tx(A, 5, args={"other": 1}).encode(),  # same sender and nonce
            make_tx(A, 4).encode(),
            make_tx(A, 9).encode(),  # 5 + window
            make_tx(A, 8).encode(),  # last nonce inside the window
            make_tx(A, 6, expiry=10).encode(),
            make_tx(A, 6, expiry=11).encode(),
        ]
    )
    assert codes(results) == [
        ErrorCode.DUPLICATE,
        ErrorCode.DUPLICATE,
        ErrorCode.NONCE_TOO_LOW,
        ErrorCode.NONCE_GAP,
        ErrorCode.OK,
        ErrorCode.EXPIRED,
        ErrorCode.OK,
    ]
    assert "already in the mempool" in results[0].message
    assert make_tx(A, 5).hash.hex() in results[1].message
    assert "next nonce is 5" in results[2].message
    assert "at most 4" in results[3].message
    assert "height 10" in results[5].message
    assert len(pool) == 3


def test_full_by_count_refuses_clearly_and_keeps_what_it_has() -> None:
    pool, _ = new_pool(max_txs=3)
    txs = [make_tx(A, 0), make_tx(A, 1), make_tx(B, 0)]
    add_ok(pool, *txs)
    before = reap_all(pool)
    results = pool.add([make_tx(C, 0).encode(), make_tx(A, 2).encode()])
    assert codes(results) == [ErrorCode.MEMPOOL_FULL] * 2
    assert "limit is 3" in results[0].message
    assert all(tx.hash in pool for tx in txs)
    assert reap_all(pool) == before and len(pool) == 3


def test_full_by_bytes_refuses_clearly_and_keeps_what_it_has() -> None:
    size = len(make_tx(A, 0).encode())
    pool, chain = new_pool(max_bytes=2 * size + 10)
    add_ok(pool, make_tx(A, 0), make_tx(B, 0))
    assert pool.bytes == 2 * size
    results = pool.add([make_tx(C, 0).encode()])
    assert codes(results) == [ErrorCode.MEMPOOL_FULL]
    assert f"limit is {2 * size + 10}" in results[0].message
    assert len(pool) == 2 and pool.bytes == 2 * size
    # Room comes back when a block takes transactions out.
    chain.commit(pool, [make_tx(A, 0)])
    add_ok(pool, make_tx(C, 0))


def test_dedup_by_hash_within_one_batch() -> None:
    pool, _ = new_pool()
    raw = make_tx(A, 0).encode()
    assert codes(pool.add([raw, raw])) == [ErrorCode.OK, ErrorCode.DUPLICATE]
    assert len(pool) == 1 and pool.get(make_tx(A, 0).hash) == make_tx(A, 0)
    assert pool.get(b"\x00" * 32) is None and b"\x00" * 32 not in pool


# -- update after a block ---------------------------------------------------------------------
def test_update_removes_committed_and_keeps_the_rest_executable() -> None:
    pool, chain = new_pool()
    add_ok(pool, *(make_tx(A, n) for n in range(3)), make_tx(B, 0))
    block = pool.reap(2, BIG, BIG)
    assert ids(block) == [("A", 0), ("B", 0)]
    chain.commit(pool, block)
    assert all(tx.hash not in pool for tx in block)
    assert ids(reap_all(pool)) == [("A", 1), ("A", 2)]
    assert pool.pending_nonce(A.address) == 3
    assert pool.bytes == sum(len(make_tx(A, n).encode()) for n in (1, 2))


def test_update_drops_transactions_whose_nonce_another_node_used() -> None:
    pool, chain = new_pool()
    add_ok(pool, make_tx(A, 0), make_tx(A, 1), make_tx(A, 3))
    # The block was built elsewhere: A's nonce 0 and 1 went in as different transactions.
    other = [make_tx(A, 0, args={"x": 1}), make_tx(A, 1, args={"x": 1})]
    chain.commit(pool, other)
    assert len(pool) == 1 and make_tx(A, 3).hash in pool
    assert reap_all(pool) == []  # nonce 2 is missing
    add_ok(pool, make_tx(A, 2))
    assert ids(reap_all(pool)) == [("A", 2), ("A", 3)]


def test_update_drops_expired_transactions() -> None:
    pool, chain = new_pool()
    add_ok(pool, make_tx(A, 0, expiry=1), make_tx(A, 1, expiry=5), make_tx(B, 0, expiry=2))
    chain.commit(pool, [])  # height 1: A0 expires (it could only go into block 1)
    assert make_tx(A, 0, expiry=1).hash not in pool
    assert ids(reap_all(pool)) == [("B", 0)]  # A1 now waits for a new nonce 0
    chain.commit(pool, [])  # height 2
    assert len(pool) == 1 and pool.bytes == len(make_tx(A, 1, expiry=5).encode())
    add_ok(pool, make_tx(A, 0))
    assert ids(reap_all(pool)) == [("A", 0), ("A", 1)]


def test_update_reads_nonces_only_of_senders_in_the_block() -> None:
    pool, chain = new_pool()
    for s in SIGNERS:
        add_ok(pool, make_tx(s, 0), make_tx(s, 1))
    chain.nonce_reads.clear()
    chain.commit(pool, [])
    assert chain.nonce_reads == []
    chain.commit(pool, [make_tx(A, 0)])
    assert chain.nonce_reads == [A.address]
    assert len(pool) == 2 * len(SIGNERS) - 1


def test_update_with_a_foreign_sender_is_harmless() -> None:
    pool, chain = new_pool()
    add_ok(pool, make_tx(A, 0))
    chain.commit(pool, [make_tx(B, 0)])
    assert ids(reap_all(pool)) == [("A", 0)]


def test_many_blocks_keep_size_and_bytes_consistent() -> None:
    pool, chain = new_pool()
    for s in SIGNERS:
        add_ok(pool, *(make_tx(s, n) for n in range(10)))
    blocks = 0
    while len(pool):
        block = pool.reap(7, BIG, BIG)
        assert block
        chain.commit(pool, block)
        blocks += 1
        assert pool.bytes == sum(len(t.encode()) for t in reap_all(pool))
    assert blocks == (len(SIGNERS) * 10 + 6) // 7
    assert pool.bytes == 0
    assert all(pool.pending_nonce(s.address) == 10 for s in SIGNERS)


def test_config_refuses_non_positive_limits() -> None:
    with pytest.raises(ConfigError, match="max_txs must be a positive integer"):
        MempoolConfig(max_txs=0)
    with pytest.raises(ConfigError, match="nonce_window"):
        MempoolConfig(nonce_window=-1)


def test_add_result_to_dict() -> None:
    r = AddResult(b"\xab" * 32, ErrorCode.NONCE_GAP, "too far")
    assert r.to_dict() == {"tx_hash": "ab" * 32, "code": "nonce_gap", "message": "too far"}
    assert AddResult(None, ErrorCode.OK).to_dict()["tx_hash"] is None
