"""The API's routes by subject, one ``APIRouter`` per module, in the order ``create_app``
includes them (the order of ``/openapi.json``'s paths and of route matching)."""

from __future__ import annotations

from fastapi import APIRouter

from citychain.api.routes import blocks, consensus, events, gov, ops, state, txs

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    txs.router,
    blocks.router,
    state.router,
    consensus.router,
    gov.router,
    events.router,
    ops.router,
)
