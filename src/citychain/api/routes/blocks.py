"""Blocks: the latest, by height, by hash (each with the commit that finalised it).

A private call in a block (a contract's ``private_methods``) is shown whole only to a signed
read (RFC 9421) by a member in good standing or by the call's own sender or endorser; anyone
else gets its ``{hash, contract, method, leaf, withheld: true}`` form, whose ``leaf`` keeps
the header's ``tx_root`` checkable (:mod:`citychain.api._withhold`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from citychain.api import models as m
from citychain.api._body import parse_hex
from citychain.api._withhold import withholding
from citychain.api.openapi import error_responses
from citychain.api.routes._common import HashParam, HeightPath, ServiceDep, json
from citychain.api.service import BlockInfo, NodeService
from citychain.errors import ErrorCode, NotFound

router = APIRouter(tags=["blocks"])


async def _block_or_404(request: Request, service: NodeService, height: int) -> Response:
    info = service.block(height)
    if info is None:
        latest = service.latest_height()
        if height > latest:
            raise NotFound(
                f"block {height} is not committed yet (latest is {latest})",
                ErrorCode.HEIGHT_NOT_COMMITTED,
            )
        raise NotFound(f"block {height} is not stored on this node")
    return await _answer(request, service, info)


async def _answer(request: Request, service: NodeService, info: BlockInfo) -> Response:
    """The block as this reader may see it: private calls withheld unless it may read them
    (:mod:`citychain.api._withhold`)."""
    return json(info.to_json(await withholding(request, service, info.block.txs)))


@router.get(
    "/v1/blocks/latest",
    response_model=m.BlockResponse,
    responses=error_responses(),
    summary="The last committed block",
)
async def latest_block(request: Request, service: ServiceDep) -> Response:
    height = service.latest_height()
    if height == 0:
        raise NotFound("no block is committed yet", ErrorCode.HEIGHT_NOT_COMMITTED)
    return await _block_or_404(request, service, height)


@router.get(
    "/v1/blocks/hash/{block_hash}",
    response_model=m.BlockResponse,
    responses=error_responses(),
    summary="A block by its hash",
)
async def block_by_hash(block_hash: HashParam, request: Request, service: ServiceDep) -> Response:
    h = parse_hex(block_hash, "block hash", size=32)
    info = service.block_by_hash(h)
    if info is None:
        raise NotFound(f"no committed block has hash {h.hex()}")
    return await _answer(request, service, info)


@router.get(
    "/v1/blocks/{height}",
    response_model=m.BlockResponse,
    responses=error_responses(),
    summary="A block by height, with the commit that finalised it",
)
async def block_at(height: HeightPath, request: Request, service: ServiceDep) -> Response:
    """A private call (a contract's ``private_methods``) is shown whole only to a signed read
    (RFC 9421) by its sender, an endorser or a member in good standing; to anyone else as
    ``{hash, contract, method, leaf, withheld: true}``, ``leaf`` keeping ``tx_root`` checkable.
    The same holds for ``/v1/blocks/latest`` and ``/v1/blocks/hash/{hash}``."""
    return await _block_or_404(request, service, height)
