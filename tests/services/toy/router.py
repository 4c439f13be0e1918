"""``GET /v1/toy/notes/{address}``: one account's note."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from citychain.api._body import parse_hex
from citychain.api.routes._common import AddressParam, ServiceDep, json

router = APIRouter(tags=["toy"])


@router.get("/v1/toy/notes/{address}", summary="One account's note")
async def toy_note(address: AddressParam, service: ServiceDep) -> Response:
    owner = parse_hex(address, "address", size=20)
    return json({"note": await service.query("toy", "read", {"owner": owner})})
