"""Admission gates at the API edge: a service's check of a transaction that only the node
receiving it from a client can make, because it needs something off chain.

Theory of operation
-------------------
A contract sees only state, so it cannot know that the blob store holds every chunk of the
version an ``add_version`` names; the node that takes the transaction from a client can. A
service's router exposes ``TX_GATES``: ``{(contract, method): gate}``, where ``gate(app, tx)``
is an async function that returns when the transaction may go on, or raises a
:class:`~citychain.errors.CitychainError` whose code and message the client gets (for one
transaction) or finds in the batch result (one refused item does not fail the batch).

The gate runs before the mempool's own checks, on the transactions submitted through
``POST /v1/tx`` and ``POST /v1/txs``; a transaction gossiped by another node was gated where
it entered. Most transactions name no gated method: a gate's method name is looked for in the
raw bytes first (the canonical CBOR holds it as text), and only a transaction whose bytes
contain it is decoded, so transfers pay one substring search each.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from citychain import registry
from citychain.errors import CitychainError
from citychain.types import SubmitResult, Transaction

#: ``gate(app, tx)``: return to admit; raise a CitychainError to refuse.
Gate = Callable[[Any, Transaction], Awaitable[None]]
Gates = Mapping[tuple[str, str], Gate]


def collect() -> dict[tuple[str, str], Gate]:
    """Every registered service's ``TX_GATES`` (its router's), merged."""
    found: dict[tuple[str, str], Gate] = {}
    for _service, module in registry.parts("router"):
        found.update(getattr(module, "TX_GATES", {}))
    return found


async def refusals(app: Any, gates: Gates, raw: Sequence[bytes]) -> dict[int, SubmitResult]:
    """The transactions of ``raw`` a gate refuses, by index, with the refusal as a result."""
    if not gates:
        return {}
    # One C scan a transaction for any gated method's name (a generator over the names was
    # ~1.5 % of a node's time under a transfer load, py-spy).
    needles = re.compile(b"|".join(re.escape(m.encode()) for m in sorted({m for _, m in gates})))
    refused: dict[int, SubmitResult] = {}
    for i, data in enumerate(raw):
        if needles.search(data) is None:
            continue
        try:
            tx = Transaction.decode(data)
        except CitychainError:
            continue  # the mempool refuses it with the decoder's own code
        gate = gates.get((tx.contract, tx.method))
        if gate is None:
            continue
        try:
            await gate(app, tx)
        except CitychainError as exc:
            refused[i] = SubmitResult(tx.hash, exc.code, exc.message)
    return refused
