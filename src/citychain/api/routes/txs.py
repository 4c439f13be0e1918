"""Transactions: submit a batch or one, and look one up by hash."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from citychain.api import _gates
from citychain.api import models as m
from citychain.api._body import (
    CBOR_TYPES,
    JSON_TYPE,
    check_fields,
    media_type,
    parse_cbor_byte_array,
    parse_hex,
    parse_json_object,
    read_body,
    unsupported_media,
)
from citychain.api._errors import (
    bad_arguments,
    citychain_error_response,
    error_response,
    http_status,
)
from citychain.api._withhold import withholding
from citychain.api.openapi import cbor_or_json_body, error_responses
from citychain.api.routes._common import HashParam, Limits, LimitsDep, ServiceDep, json
from citychain.api.service import NodeService, SubmitResult, TxStatus
from citychain.errors import ErrorCode, InternalError, InvalidInput, NotFound, TxRejected

router = APIRouter(tags=["transactions"])


async def _submit(request: Request, service: NodeService, raw: list[bytes]) -> list[SubmitResult]:
    """Submit ``raw`` after the services' admission gates (:mod:`citychain.api._gates`): a
    gated-out transaction gets its refusal as its result and never reaches the node."""
    refused = await _gates.refusals(request.app, request.app.state.tx_gates, raw)
    admit = [tx for i, tx in enumerate(raw) if i not in refused]
    answered = list(await service.submit(admit)) if admit else []
    if len(answered) != len(admit):
        raise InternalError(f"node answered {len(answered)} results for {len(admit)} txs")
    if not refused:
        return answered
    it = iter(answered)
    return [refused[i] if i in refused else next(it) for i in range(len(raw))]


async def _batch_body(request: Request, limits: Limits) -> list[bytes]:
    """The transactions of a batch body: CBOR array of byte strings, or ``{"txs": [hex]}``."""
    kind = media_type(request)
    if kind not in (*CBOR_TYPES, JSON_TYPE):
        raise unsupported_media(kind, (*CBOR_TYPES, JSON_TYPE))
    body = await read_body(request, limits.max_body_bytes)
    if kind != JSON_TYPE:
        return parse_cbor_byte_array(body, limits.max_batch_txs)
    obj = parse_json_object(body, "body")
    check_fields(obj, {"txs"})
    items = obj["txs"]
    if not isinstance(items, list):
        raise bad_arguments("body field 'txs' must be an array of hex strings")
    if len(items) > limits.max_batch_txs:
        raise InvalidInput(
            f"batch has {len(items)} transactions; the limit is {limits.max_batch_txs}",
            ErrorCode.TOO_LARGE,
        )
    return [parse_hex(x, f"txs[{i}]") for i, x in enumerate(items)]


@router.post(
    "/v1/txs",
    response_model=m.SubmitBatchResponse,
    responses=error_responses(413, 415, 503),
    openapi_extra=cbor_or_json_body(
        m.SubmitBatchRequest,
        "a CBOR array of byte strings, each a transaction's canonical wire bytes",
    ),
    summary="Submit a batch of transactions",
)
async def submit_batch(request: Request, service: ServiceDep, limits: LimitsDep) -> Response:
    """Admit transactions to the mempool. The answer is 200 with one result per
    transaction (in request order), each with its own code: a refused transaction does
    not fail the batch."""
    raw = await _batch_body(request, limits)
    if not raw:
        raise bad_arguments("the batch is empty")
    results = await _submit(request, service, raw)
    accepted = sum(1 for r in results if r.ok)
    return json(
        {
            "accepted": accepted,
            "rejected": len(results) - accepted,
            "results": [r.to_json(i) for i, r in enumerate(results)],
        }
    )


@router.post(
    "/v1/tx",
    status_code=202,
    response_model=m.SubmitOneResponse,
    responses=error_responses(413, 415, 429, 503),
    openapi_extra=cbor_or_json_body(
        m.SubmitOneRequest, "the transaction's canonical CBOR wire bytes"
    ),
    summary="Submit one transaction",
)
async def submit_one(request: Request, service: ServiceDep, limits: LimitsDep) -> Response:
    """Admit one transaction to the mempool: 202 with its hash, or an error whose code
    says why it was refused (e.g. ``bad_signature``, ``nonce_too_low``)."""
    kind = media_type(request)
    if kind not in (*CBOR_TYPES, JSON_TYPE):
        raise unsupported_media(kind, (*CBOR_TYPES, JSON_TYPE))
    body = await read_body(request, limits.max_body_bytes)
    if kind == JSON_TYPE:
        obj = parse_json_object(body, "body")
        check_fields(obj, {"tx"})
        raw = parse_hex(obj["tx"], "body field 'tx'")
    else:
        raw = body
        if not raw:
            raise bad_arguments("the body is empty; send the transaction's wire bytes")
    (result,) = await _submit(request, service, [raw])
    if not result.ok:
        refused = TxRejected(result.message or result.code.value, result.code)
        if http_status(refused) == 404:
            # /v1/tx exists: a transaction naming a contract, method or record that does not
            # is a bad request (its code says which), not a missing resource; a client that
            # sees 404 looks for a wrong URL.
            return error_response(400, refused.code, refused.message)
        return citychain_error_response(refused, "POST /v1/tx")
    if result.tx_hash is None:
        raise InternalError("node admitted a transaction without reporting its hash")
    return json({"hash": result.tx_hash.hex(), "status": "pending"}, 202)


@router.get(
    "/v1/txs/{tx_hash}",
    response_model=m.TxResponse,
    responses=error_responses(),
    summary="A transaction and, once committed, its receipt",
)
async def get_tx(tx_hash: HashParam, request: Request, service: ServiceDep) -> Response:
    """A private call (a contract's ``private_methods``) is shown whole, with its receipt,
    only to a signed read (RFC 9421) by its sender, an endorser or a member in good standing;
    to anyone else as ``{hash, contract, method, leaf, withheld: true}`` with no receipt."""
    h = parse_hex(tx_hash, "transaction hash", size=32)
    info = service.tx(h)
    if info.status == TxStatus.UNKNOWN or info.tx is None:
        raise NotFound(
            f"transaction {h.hex()} is unknown to this node (never received, or dropped "
            "from the mempool before it was committed)"
        )
    return json(info.to_json(await withholding(request, service, [info.tx])))
