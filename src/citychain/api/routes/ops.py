"""Operations: health (liveness and readiness) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from citychain.api import models as m
from citychain.api.routes._common import ServiceDep, json

router = APIRouter(tags=["operations"])


@router.get(
    "/health",
    response_model=m.HealthResponse,
    responses={503: {"model": m.HealthResponse, "description": "not healthy"}},
    summary="Liveness and readiness",
)
async def health(service: ServiceDep) -> Response:
    ok, details = service.health()
    return json({"ok": ok, "details": details}, 200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "metrics"}},
    summary="Prometheus metrics",
)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics_registry), media_type=CONTENT_TYPE_LATEST)
