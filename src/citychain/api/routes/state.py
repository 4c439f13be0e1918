"""State and proofs: a state value with its ICS-23 proof, read-only contract queries, and an
account's nonces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from citychain.api import models as m
from citychain.api._body import (
    JSON_TYPE,
    canonical_args,
    check_fields,
    check_name,
    media_type,
    parse_hex,
    parse_json_object,
    read_body,
    unsupported_media,
)
from citychain.api.openapi import error_responses, json_body
from citychain.api.routes._common import AddressParam, HeightQuery, LimitsDep, ServiceDep, json
from citychain.api.service import NodeService
from citychain.errors import ErrorCode, InvalidInput
from citychain.types.answers import query_json

router = APIRouter(tags=["state"])

#: Largest state key (the state tree's limit).
MAX_STATE_KEY = 4096
#: Most characters of a ``?args=`` query string (longer arguments go in a POST body).
MAX_ARGS_QUERY = 16 * 1024


@router.get(
    "/v1/state/{key_hex}",
    response_model=m.StateResponse,
    responses=error_responses(410),
    summary="A state value with its proof",
)
async def state(
    key_hex: Annotated[str, Path(description="the state key in hex (1 to 4096 bytes)")],
    service: ServiceDep,
    height: HeightQuery = None,
) -> Response:
    """The value of a state key after block ``height`` (latest if omitted), or its
    absence, with an ICS-23 proof against ``header.state_root`` and the ``commit`` that
    signs ``header``. ``value`` is null when the key is absent."""
    key = parse_hex(key_hex, "state key", max_size=MAX_STATE_KEY)
    proof = await service.state_proof(key, height)
    return json(proof.to_json())


async def _run_query(
    service: NodeService, contract: str, method: str, args: dict[str, Any]
) -> Response:
    check_name(contract, "contract")
    check_name(method, "method")
    result = await service.query(contract, method, args)
    return json(query_json(contract, method, result))


@router.get(
    "/v1/query/{contract}/{method}",
    response_model=m.QueryResponse,
    responses=error_responses(403),
    summary="A read-only contract query",
)
async def query_get(
    contract: str,
    method: str,
    service: ServiceDep,
    args: Annotated[
        str | None,
        Query(
            description='the arguments as a JSON object, byte strings as {"hex": "..."}',
            examples=['{"owner": {"hex": "00112233445566778899aabbccddeeff00112233"}}'],
        ),
    ] = None,
) -> Response:
    """Runs ``method`` of ``contract`` on the latest committed state; nothing is
    written. Long arguments are better sent with POST. A private query (grants, audit
    trails) is refused here (403 ``not_authorized``): its service's own route answers it to a
    request signed by an authorised account."""
    if args is not None and len(args) > MAX_ARGS_QUERY:
        raise InvalidInput(f"args is longer than {MAX_ARGS_QUERY} characters", ErrorCode.TOO_LARGE)
    parsed = (
        canonical_args(parse_json_object(args.encode(), "query parameter 'args'")) if args else {}
    )
    return await _run_query(service, contract, method, parsed)


@router.post(
    "/v1/query/{contract}/{method}",
    response_model=m.QueryResponse,
    responses=error_responses(403, 413, 415),
    openapi_extra=json_body(m.QueryRequest),
    summary="A read-only contract query (arguments in the body)",
)
async def query_post(
    contract: str, method: str, request: Request, service: ServiceDep, limits: LimitsDep
) -> Response:
    kind = media_type(request)
    if kind != JSON_TYPE:
        raise unsupported_media(kind, (JSON_TYPE,))
    obj = parse_json_object(await read_body(request, limits.max_body_bytes), "body")
    check_fields(obj, set(), {"args"})
    args = canonical_args(obj.get("args", {}), "args")
    return await _run_query(service, contract, method, args)


@router.get(
    "/v1/accounts/{address_hex}",
    response_model=m.AccountResponse,
    responses=error_responses(),
    summary="An account's nonces",
)
async def account(address_hex: AddressParam, service: ServiceDep) -> Response:
    address = parse_hex(address_hex, "address", size=20)
    return json(service.account(address).to_json())
