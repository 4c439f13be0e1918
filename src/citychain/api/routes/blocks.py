"""Blocks: the latest, by height, by hash (each with the commit that finalised it)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from citychain.api import models as m
from citychain.api._body import parse_hex
from citychain.api.openapi import error_responses
from citychain.api.routes._common import HashParam, HeightPath, ServiceDep, json
from citychain.api.service import NodeService
from citychain.errors import ErrorCode, NotFound

router = APIRouter(tags=["blocks"])


def _block_or_404(service: NodeService, height: int) -> Response:
    info = service.block(height)
    if info is None:
        latest = service.latest_height()
        if height > latest:
            raise NotFound(
                f"block {height} is not committed yet (latest is {latest})",
                ErrorCode.HEIGHT_NOT_COMMITTED,
            )
        raise NotFound(f"block {height} is not stored on this node")
    return json(info.to_json())


@router.get(
    "/v1/blocks/latest",
    response_model=m.BlockResponse,
    responses=error_responses(),
    summary="The last committed block",
)
async def latest_block(service: ServiceDep) -> Response:
    height = service.latest_height()
    if height == 0:
        raise NotFound("no block is committed yet", ErrorCode.HEIGHT_NOT_COMMITTED)
    return _block_or_404(service, height)


@router.get(
    "/v1/blocks/hash/{block_hash}",
    response_model=m.BlockResponse,
    responses=error_responses(),
    summary="A block by its hash",
)
async def block_by_hash(block_hash: HashParam, service: ServiceDep) -> Response:
    h = parse_hex(block_hash, "block hash", size=32)
    info = service.block_by_hash(h)
    if info is None:
        raise NotFound(f"no committed block has hash {h.hex()}")
    return json(info.to_json())


@router.get(
    "/v1/blocks/{height}",
    response_model=m.BlockResponse,
    responses=error_responses(),
    summary="A block by height, with the commit that finalised it",
)
async def block_at(height: HeightPath, service: ServiceDep) -> Response:
    return _block_or_404(service, height)
