"""Determinism and a model check: every node must compute exactly the same block."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from exec_helpers import SUITE, Chain, block_ctx, registry, signer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain.errors import ErrorCode
from citychain.execution import BlockResult, Executor
from citychain.execution.keys import account_nonce
from citychain.types import Transaction

HERE = Path(__file__).parent
ACCOUNTS = [signer(10 + i) for i in range(4)]
ISSUER = ACCOUNTS[0]


def mixed_block(chain: Chain) -> list[Transaction]:
    a, b, c, _ = ACCOUNTS
    return [
        chain.tx(a, "token", "mint", {"to": c.address, "amount": 9}),
        chain.tx(b, "token", "transfer", {"to": c.address, "amount": 3}),
        chain.tx(c, "token", "transfer", {"to": a.address, "amount": 10**6}),  # fails
        chain.tx(c, "probe", "put", {"key": b"z", "value": b"1"}),
        chain.tx(c, "probe", "put", {"key": b"a", "value": b"2"}),
        chain.tx(b, "probe", "edit_and_list", {"set": [[b"m", b"3"]], "delete": [b"z"]}),
        chain.tx(a, "probe", "boom"),  # fails
        chain.tx(b, "token", "burn", {"amount": 1}),
        chain.tx(a, "token", "transfer", {"to": b.address, "amount": 1}, nonce=99),  # refused
    ]


def new_chain() -> Chain:
    return Chain({"issuers": [ISSUER.address], "balances": {s.address.hex(): 50 for s in ACCOUNTS}})


def fingerprint(result: BlockResult) -> str:
    h = hashlib.sha256()
    for r in result.receipts:
        h.update(r.encode())
    for k, v in result.writes.items():
        h.update(len(k).to_bytes(4, "big") + k + (b"\x00" if v is None else b"\x01" + v))
    return h.hexdigest()


def test_same_block_twice_gives_identical_receipts_and_writes() -> None:
    chain = new_chain()
    txs = mixed_block(chain)
    base = chain.state.copy()
    first = Executor(registry(), SUITE).execute_block(base, block_ctx(1), txs)
    second = Executor(registry(), SUITE).execute_block(chain.state.copy(), block_ctx(1), txs)
    assert [r.encode() for r in first.receipts] == [r.encode() for r in second.receipts]
    assert list(first.writes.items()) == list(second.writes.items())
    assert list(first.writes) == sorted(first.writes)
    assert base.data == chain.state.data  # execution only reads the state it is given
    codes = [r.code for r in first.receipts]
    assert codes.count(ErrorCode.OK) == 6 and ErrorCode.NONCE_GAP in codes


_SCRIPT = """
import hashlib, sys
import test_exec_determinism as t
chain = t.new_chain()
result = chain.run(*t.mixed_block(chain))
print(t.fingerprint(result))
"""


def test_block_result_does_not_depend_on_hash_seed() -> None:
    env_base = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT],
            env={**env_base, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    chain = new_chain()
    local = fingerprint(chain.run(*mixed_block(chain)))
    assert outs == [local, local]


# -- model-based: random mints, transfers and burns against a plain Python model ----------
ops = st.lists(
    st.tuples(
        st.sampled_from(["mint", "transfer", "burn"]),
        st.integers(0, 3),  # sender
        st.integers(0, 3),  # recipient
        st.one_of(st.integers(-1, 60), st.just(2**128 - 1), st.just(2**128)),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initial=st.lists(st.integers(0, 40), min_size=4, max_size=4),
    ops=ops,
    cuts=st.lists(st.integers(0, 30), max_size=4),
)
def test_token_matches_a_model(initial: list[int], ops: list[Any], cuts: list[int]) -> None:
    chain = Chain(
        {
            "issuers": [ISSUER.address],
            "balances": {s.address.hex(): v for s, v in zip(ACCOUNTS, initial, strict=True)},
        }
    )
    balances = dict(enumerate(initial))
    supply = sum(initial)
    txs: list[Transaction] = []
    expected: list[str] = []
    for kind, who, to, amount in ops:
        args: dict[str, Any] = {"amount": amount}
        if kind != "burn":
            args["to"] = ACCOUNTS[to].address
        txs.append(chain.tx(ACCOUNTS[who], "token", kind, args))
        if not 1 <= amount <= 2**128 - 1:
            expected.append(ErrorCode.BAD_ARGUMENTS)
        elif kind == "mint":
            if who != 0:
                expected.append(ErrorCode.UNAUTHORIZED)
            elif supply + amount > 2**128 - 1:
                expected.append(ErrorCode.BAD_ARGUMENTS)
            else:
                balances[to] += amount
                supply += amount
                expected.append(ErrorCode.OK)
        elif balances[who] < amount:
            expected.append(ErrorCode.INSUFFICIENT_FUNDS)
        else:
            balances[who] -= amount
            if kind == "transfer":
                balances[to] += amount
            else:
                supply -= amount
            expected.append(ErrorCode.OK)

    codes: list[str] = []
    bounds = sorted({0, len(txs), *(min(c, len(txs)) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        codes.extend(r.code for r in chain.run(*txs[lo:hi]).receipts)
    assert codes == expected
    assert [chain.balance(s) for s in ACCOUNTS] == [balances[i] for i in range(4)]
    assert chain.query("token", "total_supply") == supply
    sent = [sum(1 for op in ops if op[1] == i) for i in range(4)]
    assert [account_nonce(chain.state, s.address) for s in ACCOUNTS] == sent
