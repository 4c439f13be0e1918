"""The API's core routes by subject, one ``APIRouter`` per module.

``create_app`` includes :data:`ROUTERS`, then the router of every registered platform service
(``citychain/services/<name>/router.py``, e.g. ``/v1/gov/...``), then :data:`LAST_ROUTERS`:
the order of ``/openapi.json``'s paths and of route matching.
"""

from __future__ import annotations

from fastapi import APIRouter

from citychain.api.routes import blocks, consensus, events, ops, state, txs

__all__ = ["LAST_ROUTERS", "ROUTERS"]

#: Transactions, blocks, state and proofs, consensus and network.
ROUTERS: tuple[APIRouter, ...] = (
    txs.router,
    blocks.router,
    state.router,
    consensus.router,
)
#: The event stream and the operations routes (health, metrics), after the services'.
LAST_ROUTERS: tuple[APIRouter, ...] = (
    events.router,
    ops.router,
)
