"""The mempool's "transactions available" signal, which wakes a consensus engine holding back an
idle height: ``has_executable`` and ``on_txs_available``."""

from __future__ import annotations

import random

from test_mempool import A, B, make_tx, new_pool, reap_all  # type: ignore[import-not-found]


def test_executable_means_a_block_could_take_a_transaction() -> None:
    pool, chain = new_pool()
    calls: list[int] = []
    pool.on_txs_available = lambda: calls.append(pool.size)
    assert not pool.has_executable()
    # Behind a nonce gap: pooled, but no block can take it, so nobody is woken.
    assert pool.add([make_tx(A, 1).encode()])[0].ok
    assert not pool.has_executable() and calls == []
    # The gap fills: both become executable, one signal for the insert.
    assert pool.add([make_tx(A, 0).encode()])[0].ok
    assert pool.has_executable() and calls == [2]
    # More of an executable sender: nothing new to announce.
    assert pool.add([make_tx(A, 2).encode()])[0].ok
    assert calls == [2]
    # A refused transaction announces nothing.
    assert not pool.add([make_tx(A, 2).encode()])[0].ok
    assert calls == [2]
    # Another sender's first transaction does, once per insert however many it holds.
    assert all(r.ok for r in pool.add([make_tx(B, 0).encode(), make_tx(B, 1).encode()]))
    assert calls == [2, 5]
    # Committed: the pool is empty and nothing is executable any more.
    chain.commit(pool, reap_all(pool))
    assert pool.size == 0 and not pool.has_executable()


def test_has_executable_agrees_with_reap_through_random_inserts_and_blocks() -> None:
    rng = random.Random(9)
    pool, chain = new_pool()
    for _ in range(300):
        s = rng.choice([A, B])
        if rng.random() < 0.6:
            nonce = chain.nonces.get(s.address, 0) + rng.randrange(0, 4)
            pool.add([make_tx(s, nonce).encode()])
        else:
            txs = reap_all(pool)
            chain.commit(pool, txs[: rng.randrange(0, len(txs) + 1)])
        assert pool.has_executable() == bool(reap_all(pool))
