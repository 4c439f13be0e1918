"""``Context.iter_prefix(prefix, after=...)`` on a real RocksDB state: for random committed
keys, random writes and deletes of the block's earlier transactions and of the transaction
itself, and a random start, the page is exactly the whole listing's keys above
``prefix + after``, in order, and only the items of the page are charged."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from exec_helpers import CHAIN, SUITE, Chain, block_ctx, registry, signer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain.errors import ErrorCode
from citychain.execution import Executor, GasSchedule
from citychain.execution.keys import contract_key
from citychain.state import StateDB
from citychain.store.kv import KVStore
from citychain.types import Transaction

ALICE = signer(2)
#: Keys with awkward bytes (0x00, 0xff, prefixes of each other), so pages start between a key
#: and its extensions.
KEYS = [
    b"",
    b"\x00",
    b"\x00\xff",
    b"a",
    b"a\x00",
    b"a\x00\x01",
    b"a\x00\xff",
    b"a\x01",
    b"a\xff",
    b"ab",
    b"ab\x00",
    b"b",
    b"\xff",
    b"\xff\xff",
]
PREFIXES = [b"", b"a", b"a\x00", b"ab", b"\xff"]
VALUES = [b"v0", b"v1", b"\x00"]
change = st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.sampled_from(VALUES)))


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KVStore, StateDB]]:
    """One store for every example: each writes under a namespace of its own, so the others'
    keys are neighbours its listing must leave out."""
    path: Path = tmp_path_factory.mktemp("iter-after")
    with KVStore(path, cache_bytes=8 << 20) as kv:
        yield kv, StateDB(kv, cache_nodes=64)


_names = itertools.count()
_executor = Executor(registry(), SUITE)


def tx(nonce: int, method: str, args: dict[str, Any]) -> Transaction:
    return Transaction.create(
        ALICE, chain_id=CHAIN, nonce=nonce, contract="probe", method=method, args=args
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    base=st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=12),
    block=st.lists(change, max_size=5),
    mine=st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), st.sampled_from(VALUES))),
    prefix=st.sampled_from(PREFIXES),
    after=st.one_of(st.sampled_from(KEYS), st.binary(max_size=3)),
)
def test_a_page_is_the_listing_above_its_start_with_pending_writes_merged(
    state: tuple[KVStore, StateDB],
    base: dict[bytes, bytes],
    block: list[tuple[bytes, bytes | None]],
    mine: dict[bytes, bytes | None],
    prefix: bytes,
    after: bytes,
) -> None:
    kv, db = state
    ns = b"e%05d/" % next(_names)
    prepared = db.prepare(
        {contract_key("probe", ns + k): v for k, v in base.items()}, db.version + 1
    )
    batch = kv.batch()
    db.commit(prepared, batch)
    kv.write(batch, sync=False)
    db.committed(prepared)

    model = {ns + k: v for k, v in base.items()}
    txs = []
    for nonce, (k, v) in enumerate(block):
        if v is None:
            txs.append(tx(nonce, "delete", {"key": ns + k}))
            model.pop(ns + k, None)
        else:
            txs.append(tx(nonce, "put", {"key": ns + k, "value": v}))
            model[ns + k] = v
    args = {
        "prefix": ns + prefix,
        "after": after,
        "set": [[ns + k, v] for k, v in mine.items() if v is not None],
        "delete": [ns + k for k, v in mine.items() if v is None],
    }
    txs.append(tx(len(block), "edit_and_page", args))
    for k, v in mine.items():
        if v is None:
            model.pop(ns + k, None)
        else:
            model[ns + k] = v

    result = _executor.execute_block(db, block_ctx(db.version + 1), txs)
    assert all(r.ok for r in result.receipts), [r.message for r in result.receipts]
    whole, page, page_gas = result.receipts[-1].result
    assert whole == [[k, v] for k, v in sorted(model.items()) if k.startswith(ns + prefix)]
    assert page == [[k, v] for k, v in whole if k > ns + prefix + after]
    gas = GasSchedule()
    assert page_gas == sum(gas.iter_step + gas.iter_byte * (len(k) + len(v)) for k, v in page)


@pytest.mark.parametrize(
    ("after", "words"),
    [("a", "must be bytes, got str"), (b"x" * 1024, "start key of 1026 bytes exceeds")],
)
def test_a_start_that_is_no_key_is_the_contract_s_error(after: object, words: str) -> None:
    chain = Chain()
    args = {"prefix": b"p/", "after": after}
    (r,) = chain.run(chain.tx(ALICE, "probe", "edit_and_page", args)).receipts
    assert r.code == ErrorCode.CONTRACT_ERROR and words in r.message, r.message
