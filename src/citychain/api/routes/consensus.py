"""Consensus and network: node status, the validator set of a height, consensus state, p2p
peers, evidence of misbehaviour."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from citychain.api import models as m
from citychain.api.openapi import error_responses
from citychain.api.routes._common import HeightQuery, ServiceDep, json
from citychain.types.answers import EvidenceInfo, validators_json

router = APIRouter()


@router.get("/v1/status", response_model=m.StatusResponse, tags=["chain"], summary="Node status")
async def status(service: ServiceDep) -> Response:
    return json(service.status().to_json())


@router.get(
    "/v1/validators",
    response_model=m.ValidatorsResponse,
    responses=error_responses(),
    tags=["chain"],
    summary="The validator set that signs a height",
)
async def validators(service: ServiceDep, height: HeightQuery = None) -> Response:
    vs = service.validators(height)
    signs = height if height is not None else service.latest_height() + 1
    return json(validators_json(signs, vs))


@router.get(
    "/v1/consensus",
    response_model=m.ConsensusResponse,
    tags=["consensus"],
    summary="Consensus state: why the chain is (not) moving",
)
async def consensus(service: ServiceDep) -> Response:
    return json(service.consensus())


@router.get(
    "/v1/net/peers", response_model=m.PeersResponse, tags=["consensus"], summary="P2P peers"
)
async def net_peers(service: ServiceDep) -> Response:
    return json({"peers": service.peers()})


@router.get(
    "/v1/evidence",
    response_model=m.EvidenceResponse,
    responses=error_responses(),
    tags=["consensus"],
    summary="Evidence of misbehaviour (double signing)",
)
async def evidence(
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> Response:
    info = EvidenceInfo(tuple(service.evidence(limit)), tuple(service.pending_evidence()))
    return json(info.to_json())
