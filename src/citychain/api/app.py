"""The node's REST + WebSocket API: :func:`create_app` over a :class:`NodeService`.

Routes (all JSON unless noted; every error is ``{"code", "message"}``):

======  ===============================  =================================================
POST    /v1/txs                          submit a batch (CBOR array of tx bytes, or JSON)
POST    /v1/tx                           submit one tx (raw CBOR tx bytes, or JSON); 202
GET     /v1/txs/{hash}                   a transaction: pending, or committed with receipt
GET     /v1/blocks/latest                the last committed block with its commit
GET     /v1/blocks/{height}              a block by height
GET     /v1/blocks/hash/{hash}           a block by hash
GET     /v1/status                       chain, height, mempool, validators
GET     /v1/state/{key}?height=          a state value with its ICS-23 proof, header, commit
GET     /v1/query/{contract}/{method}    a read-only contract query (``?args=<JSON>``)
POST    /v1/query/{contract}/{method}    the same with ``{"args": {...}}`` in the body
GET     /v1/accounts/{address}           committed and pending nonce
GET     /v1/validators?height=           the validator set that signs a height
WS      /v1/events?contract=&type=       committed events as they happen
GET     /v1/consensus                    round, step, who voted, what the node waits for
GET     /v1/net/peers                    p2p peers with traffic and last error
GET     /v1/evidence?limit=              committed and pending evidence of misbehaviour
GET     /v1/gov/config                   identity mode and default voting period
GET     /v1/gov/orgs                     the member organisations
GET     /v1/gov/orgs/{id}                one organisation with its roles
GET     /v1/gov/orgs/{id}/members        an organisation's registered members
GET     /v1/gov/members/{address}        one member and whether it may act now
GET     /v1/gov/validators               the validator set governance last decided
GET     /v1/gov/params                   chain parameters and gas schedule
GET     /v1/gov/policies                 the configured access policies
GET     /v1/gov/policies/{target}        the policy in force for a method or proposal kind
GET     /v1/gov/proposals?status=&limit= proposals, newest first
GET     /v1/gov/proposals/{id}           one proposal: votes, approvals, what it still needs
GET     /v1/gov/history?after=&limit=&proposal=   the governance history, oldest first
GET     /health                          200 when healthy, 503 when not
GET     /metrics                         Prometheus text format
GET     /docs                            Swagger UI over /openapi.json (assets served here)
======  ===============================  =================================================

``/docs`` works without internet: Swagger UI's JS, CSS and favicon come from the installed
``fastapi-offline`` package (under ``/static-offline-docs``), not from a CDN as FastAPI's own
page loads them, and Swagger UI's online spec validator is switched off. ReDoc is not served.

Governance (``/v1/gov/...``) reads the ``gov`` contract's records through its queries, on the
latest committed state; changes are transactions (``gov.propose``, ``gov.vote``, ...) signed by
the client and submitted like any other, never signed here.

Speed: handlers read raw requests and answer with orjson-rendered dicts; pydantic models
describe the shapes for ``/openapi.json`` (see :mod:`citychain.api.models`) but are not run
per request. Bodies are read with a size limit enforced while streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from citychain import __version__
from citychain.api import models as m
from citychain.api._body import (
    CBOR_TYPES,
    JSON_TYPE,
    canonical_args,
    check_fields,
    check_name,
    media_type,
    parse_cbor_byte_array,
    parse_hex,
    parse_json_object,
    read_body,
    unsupported_media,
)
from citychain.api._errors import (
    INTERNAL_MESSAGE,
    CatchAll,
    bad_arguments,
    citychain_error_response,
    error_response,
    http_status,
    log,
    on_citychain_error,
    on_http_exception,
    on_validation_error,
)
from citychain.api._json import JSONResponse, dumps
from citychain.api.service import NodeService, SubmitResult, TxStatus
from citychain.contracts.gov import KINDS
from citychain.errors import (
    CitychainError,
    ErrorCode,
    InternalError,
    InvalidInput,
    NotFound,
    TxRejected,
)
from citychain.types.policy import check_name as check_gov_name

__all__ = ["DEFAULT_MAX_BATCH_TXS", "DEFAULT_MAX_BODY_BYTES", "create_app"]

#: Largest request body accepted (a batch of transactions is the largest legitimate one).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: Most transactions in one ``POST /v1/txs``.
DEFAULT_MAX_BATCH_TXS = 10_000
#: Largest state key (the state tree's limit).
MAX_STATE_KEY = 4096
MAX_HEIGHT = 2**63 - 1
#: Most characters of a ``?args=`` query string (longer arguments go in a POST body).
MAX_ARGS_QUERY = 16 * 1024

_DESCRIPTION = """\
REST and WebSocket API of a citychain node.

* Byte strings are lowercase hex (a `0x` prefix is accepted on input); hashes are 32 bytes.
* Contract arguments, results and event attributes are canonical values in JSON, with byte
  strings written as `{"hex": "..."}`. Floats are not allowed.
* Every error is `{"code": ..., "message": ...}`; `code` is stable and machine-readable
  (400 bad input, 404 not found, 410 pruned, 413 too large, 415 media type, 429 mempool full,
  503 unavailable).
* State answers carry an ICS-23 proof, the header it checks against and the commit that signs
  that header, so a client can verify them (the Python SDK does).
* `WS /v1/events?contract=&type=` streams committed events: one `EventMessage` per text
  message; the server ends the stream with a `ClosedMessage` saying why (for example, a
  subscriber too slow to keep up).
"""

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.ErrorBody, "description": "bad input"},
    404: {"model": m.ErrorBody, "description": "not found"},
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    out = dict(_ERRORS)
    for c in codes:
        out[c] = {"model": m.ErrorBody}
    return out


def _cbor_or_json_body(json_model: type[m._Model], cbor_desc: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/cbor": {
                    "schema": {"type": "string", "format": "binary", "description": cbor_desc}
                },
                JSON_TYPE: {"schema": json_model.model_json_schema()},
            },
        }
    }


HashParam = Annotated[
    str,
    Path(
        description="32-byte hash, 64 hex digits",
        json_schema_extra={"pattern": "^(0x)?[0-9a-fA-F]{64}$"},
    ),
]
HeightPath = Annotated[int, Path(ge=1, le=MAX_HEIGHT, description="block height (from 1)")]
HeightQuery = Annotated[
    int | None, Query(ge=1, le=MAX_HEIGHT, description="block height; latest if omitted")
]
OrgParam = Annotated[str, Path(description="an organisation id, e.g. org1")]

#: The governance contract, and the most entries one page of its listings holds.
GOV = "gov"
GOV_MAX_PAGE = 200


def check_policy_target(target: str) -> None:
    """``gov:<kind>`` of a known kind, or ``contract.method`` / ``contract.*``."""
    if target.startswith("gov:"):
        if target[4:] not in KINDS:
            raise NotFound(f"no proposal kind {target[4:]!r} (kinds: {', '.join(KINDS)})")
        return
    contract, _, method = target.partition(".")
    if not (_is_name(contract) and (method == "*" or _is_name(method))):
        raise bad_arguments(
            f"policy target {target[:80]!r} must be 'contract.method', 'contract.*' or 'gov:<kind>'"
        )


def _is_name(value: str) -> bool:
    try:
        check_gov_name(value, "name")
    except CitychainError:
        return False
    return True


def create_app(
    service: NodeService,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_batch_txs: int = DEFAULT_MAX_BATCH_TXS,
) -> FastAPI:
    """The API of ``service`` as an ASGI app (serve it with uvicorn)."""
    if max_body_bytes <= 0 or max_batch_txs <= 0:
        raise ValueError("max_body_bytes and max_batch_txs must be positive")

    # FastAPI with /docs served from the package's own copy of Swagger UI (offline).
    app = FastAPIOffline(
        title="citychain node API",
        version=__version__,
        description=_DESCRIPTION,
        default_response_class=JSONResponse,
        docs_url="/docs",
        redoc_url=None,
        # No badge fetched from validator.swagger.io: the page asks no host but the node.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.add_exception_handler(CitychainError, on_citychain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_middleware(CatchAll)

    def json(content: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(content, status)

    # -- submission ------------------------------------------------------------------------
    async def submit(raw: list[bytes]) -> list[SubmitResult]:
        results = list(await service.submit(raw))
        if len(results) != len(raw):
            raise InternalError(f"node answered {len(results)} results for {len(raw)} txs")
        return results

    @app.post(
        "/v1/txs",
        response_model=m.SubmitBatchResponse,
        responses=_errors(413, 415, 503),
        openapi_extra=_cbor_or_json_body(
            m.SubmitBatchRequest,
            "a CBOR array of byte strings, each a transaction's canonical wire bytes",
        ),
        tags=["transactions"],
        summary="Submit a batch of transactions",
    )
    async def submit_batch(request: Request) -> Response:
        """Admit transactions to the mempool. The answer is 200 with one result per
        transaction (in request order), each with its own code: a refused transaction does
        not fail the batch."""
        kind = media_type(request)
        if kind not in (*CBOR_TYPES, JSON_TYPE):
            raise unsupported_media(kind, (*CBOR_TYPES, JSON_TYPE))
        body = await read_body(request, max_body_bytes)
        if kind == JSON_TYPE:
            obj = parse_json_object(body, "body")
            check_fields(obj, {"txs"})
            items = obj["txs"]
            if not isinstance(items, list):
                raise bad_arguments("body field 'txs' must be an array of hex strings")
            if len(items) > max_batch_txs:
                raise InvalidInput(
                    f"batch has {len(items)} transactions; the limit is {max_batch_txs}",
                    ErrorCode.TOO_LARGE,
                )
            raw = [parse_hex(x, f"txs[{i}]") for i, x in enumerate(items)]
        else:
            raw = parse_cbor_byte_array(body, max_batch_txs)
        if not raw:
            raise bad_arguments("the batch is empty")
        results = await submit(raw)
        accepted = sum(1 for r in results if r.ok)
        return json(
            {
                "accepted": accepted,
                "rejected": len(results) - accepted,
                "results": [m.submit_item_json(i, r) for i, r in enumerate(results)],
            }
        )

    @app.post(
        "/v1/tx",
        status_code=202,
        response_model=m.SubmitOneResponse,
        responses=_errors(413, 415, 429, 503),
        openapi_extra=_cbor_or_json_body(
            m.SubmitOneRequest, "the transaction's canonical CBOR wire bytes"
        ),
        tags=["transactions"],
        summary="Submit one transaction",
    )
    async def submit_one(request: Request) -> Response:
        """Admit one transaction to the mempool: 202 with its hash, or an error whose code
        says why it was refused (e.g. ``bad_signature``, ``nonce_too_low``)."""
        kind = media_type(request)
        if kind not in (*CBOR_TYPES, JSON_TYPE):
            raise unsupported_media(kind, (*CBOR_TYPES, JSON_TYPE))
        body = await read_body(request, max_body_bytes)
        if kind == JSON_TYPE:
            obj = parse_json_object(body, "body")
            check_fields(obj, {"tx"})
            raw = parse_hex(obj["tx"], "body field 'tx'")
        else:
            raw = body
            if not raw:
                raise bad_arguments("the body is empty; send the transaction's wire bytes")
        (result,) = await submit([raw])
        if not result.ok:
            refused = TxRejected(result.message or result.code.value, result.code)
            return citychain_error_response(refused, "POST /v1/tx")
        if result.tx_hash is None:
            raise InternalError("node admitted a transaction without reporting its hash")
        return json({"hash": result.tx_hash.hex(), "status": "pending"}, 202)

    @app.get(
        "/v1/txs/{tx_hash}",
        response_model=m.TxResponse,
        responses=_errors(),
        tags=["transactions"],
        summary="A transaction and, once committed, its receipt",
    )
    async def get_tx(tx_hash: HashParam) -> Response:
        h = parse_hex(tx_hash, "transaction hash", size=32)
        info = service.tx(h)
        if info.status == TxStatus.UNKNOWN or info.tx is None:
            raise NotFound(
                f"transaction {h.hex()} is unknown to this node (never received, or dropped "
                "from the mempool before it was committed)"
            )
        return json(m.tx_info_json(h, info, info.tx))

    # -- blocks ----------------------------------------------------------------------------
    def block_or_404(height: int) -> Response:
        info = service.block(height)
        if info is None:
            latest = service.latest_height()
            if height > latest:
                raise NotFound(
                    f"block {height} is not committed yet (latest is {latest})",
                    ErrorCode.HEIGHT_NOT_COMMITTED,
                )
            raise NotFound(f"block {height} is not stored on this node")
        return json(m.block_json(info))

    @app.get(
        "/v1/blocks/latest",
        response_model=m.BlockResponse,
        responses=_errors(),
        tags=["blocks"],
        summary="The last committed block",
    )
    async def latest_block() -> Response:
        height = service.latest_height()
        if height == 0:
            raise NotFound("no block is committed yet", ErrorCode.HEIGHT_NOT_COMMITTED)
        return block_or_404(height)

    @app.get(
        "/v1/blocks/hash/{block_hash}",
        response_model=m.BlockResponse,
        responses=_errors(),
        tags=["blocks"],
        summary="A block by its hash",
    )
    async def block_by_hash(block_hash: HashParam) -> Response:
        h = parse_hex(block_hash, "block hash", size=32)
        info = service.block_by_hash(h)
        if info is None:
            raise NotFound(f"no committed block has hash {h.hex()}")
        return json(m.block_json(info))

    @app.get(
        "/v1/blocks/{height}",
        response_model=m.BlockResponse,
        responses=_errors(),
        tags=["blocks"],
        summary="A block by height, with the commit that finalised it",
    )
    async def block_at(height: HeightPath) -> Response:
        return block_or_404(height)

    # -- chain and state -------------------------------------------------------------------
    @app.get("/v1/status", response_model=m.StatusResponse, tags=["chain"], summary="Node status")
    async def status() -> Response:
        return json(m.status_json(service.status()))

    @app.get(
        "/v1/state/{key_hex}",
        response_model=m.StateResponse,
        responses=_errors(410),
        tags=["state"],
        summary="A state value with its proof",
    )
    async def state(
        key_hex: Annotated[str, Path(description="the state key in hex (1 to 4096 bytes)")],
        height: HeightQuery = None,
    ) -> Response:
        """The value of a state key after block ``height`` (latest if omitted), or its
        absence, with an ICS-23 proof against ``header.state_root`` and the ``commit`` that
        signs ``header``. ``value`` is null when the key is absent."""
        key = parse_hex(key_hex, "state key", max_size=MAX_STATE_KEY)
        proof = await service.state_proof(key, height)
        return json(m.state_json(proof))

    async def run_query(contract: str, method: str, args: dict[str, Any]) -> Response:
        check_name(contract, "contract")
        check_name(method, "method")
        result = await service.query(contract, method, args)
        return json(m.query_json(contract, method, result))

    @app.get(
        "/v1/query/{contract}/{method}",
        response_model=m.QueryResponse,
        responses=_errors(),
        tags=["state"],
        summary="A read-only contract query",
    )
    async def query_get(
        contract: str,
        method: str,
        args: Annotated[
            str | None,
            Query(
                description='the arguments as a JSON object, byte strings as {"hex": "..."}',
                examples=['{"owner": {"hex": "00112233445566778899aabbccddeeff00112233"}}'],
            ),
        ] = None,
    ) -> Response:
        """Runs ``method`` of ``contract`` on the latest committed state; nothing is
        written. Long arguments are better sent with POST."""
        if args is not None and len(args) > MAX_ARGS_QUERY:
            raise InvalidInput(
                f"args is longer than {MAX_ARGS_QUERY} characters", ErrorCode.TOO_LARGE
            )
        parsed = (
            canonical_args(parse_json_object(args.encode(), "query parameter 'args'"))
            if args
            else {}
        )
        return await run_query(contract, method, parsed)

    @app.post(
        "/v1/query/{contract}/{method}",
        response_model=m.QueryResponse,
        responses=_errors(413, 415),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON_TYPE: {"schema": m.QueryRequest.model_json_schema()}},
            }
        },
        tags=["state"],
        summary="A read-only contract query (arguments in the body)",
    )
    async def query_post(contract: str, method: str, request: Request) -> Response:
        kind = media_type(request)
        if kind != JSON_TYPE:
            raise unsupported_media(kind, (JSON_TYPE,))
        obj = parse_json_object(await read_body(request, max_body_bytes), "body")
        check_fields(obj, set(), {"args"})
        return await run_query(contract, method, canonical_args(obj.get("args", {}), "args"))

    @app.get(
        "/v1/accounts/{address_hex}",
        response_model=m.AccountResponse,
        responses=_errors(),
        tags=["state"],
        summary="An account's nonces",
    )
    async def account(
        address_hex: Annotated[str, Path(description="a 20-byte account address in hex")],
    ) -> Response:
        address = parse_hex(address_hex, "address", size=20)
        return json(m.account_json(service.account(address)))

    @app.get(
        "/v1/validators",
        response_model=m.ValidatorsResponse,
        responses=_errors(),
        tags=["chain"],
        summary="The validator set that signs a height",
    )
    async def validators(height: HeightQuery = None) -> Response:
        vs = service.validators(height)
        return json(
            m.validators_json(height if height is not None else service.latest_height() + 1, vs)
        )

    # -- governance ------------------------------------------------------------------------
    async def gov(method: str, **args: Any) -> Any:
        return await service.query(GOV, method, args)

    @app.get(
        "/v1/gov/config",
        response_model=m.GovConfigResponse,
        responses=_errors(),
        tags=["governance"],
        summary="Identity mode and default voting period",
    )
    async def gov_config() -> Response:
        return json(m.gov_config_json(await gov("config")))

    @app.get(
        "/v1/gov/orgs",
        response_model=m.GovOrgsResponse,
        responses=_errors(),
        tags=["governance"],
        summary="The member organisations",
    )
    async def gov_orgs() -> Response:
        return json({"orgs": [m.gov_org_json(o) for o in await gov("orgs")]})

    async def org_or_404(org_id: str) -> dict[str, Any]:
        check_gov_name(org_id, "organisation id")
        org: dict[str, Any] = await gov("org", id=org_id)
        return org

    @app.get(
        "/v1/gov/orgs/{org_id}",
        response_model=m.GovOrgResponse,
        responses=_errors(),
        tags=["governance"],
        summary="One organisation with its roles",
    )
    async def gov_org(org_id: OrgParam) -> Response:
        org = await org_or_404(org_id)
        return json({**m.gov_org_json(org), "roles": list(org["roles"])})

    @app.get(
        "/v1/gov/orgs/{org_id}/members",
        response_model=m.GovMembersResponse,
        responses=_errors(),
        tags=["governance"],
        summary="An organisation's registered members",
    )
    async def gov_org_members(org_id: OrgParam) -> Response:
        await org_or_404(org_id)
        members = await gov("members", org=org_id)
        return json({"org": org_id, "members": [m.gov_member_json(x) for x in members]})

    @app.get(
        "/v1/gov/members/{address_hex}",
        response_model=m.GovMemberResponse,
        responses=_errors(),
        tags=["governance"],
        summary="One member and whether it may act now",
    )
    async def gov_member(
        address_hex: Annotated[str, Path(description="a 20-byte account address in hex")],
    ) -> Response:
        address = parse_hex(address_hex, "address", size=20)
        member = await gov("member", address=address)
        if member is None:
            raise NotFound(f"account {address.hex()} is not a member of any organisation")
        standing = member["standing"]
        return json(
            {
                **m.gov_member_json(member),
                "in_good_standing": standing == "ok",
                "standing": standing,
            }
        )

    @app.get(
        "/v1/gov/validators",
        response_model=m.GovValidatorsResponse,
        responses=_errors(),
        tags=["governance"],
        summary="The validator set governance last decided",
    )
    async def gov_validators() -> Response:
        """The latest validator set with each validator's organisation, and the height it
        signs from (a change is in force two heights after the proposal is executed; for the
        set that signs a given height, see ``/v1/validators?height=``)."""
        return json(m.gov_validators_json(await gov("validators")))

    @app.get(
        "/v1/gov/params",
        response_model=m.GovParamsResponse,
        responses=_errors(),
        tags=["governance"],
        summary="Chain parameters and gas schedule",
    )
    async def gov_params() -> Response:
        p = await gov("params")
        return json({"chain": dict(p["chain"]), "gas": dict(p["gas"])})

    @app.get(
        "/v1/gov/policies",
        response_model=m.GovPoliciesResponse,
        responses=_errors(),
        tags=["governance"],
        summary="The configured access policies",
    )
    async def gov_policies() -> Response:
        """Policies set in genesis or by ``set_policy`` proposals. A method without one is
        open to any member; a proposal kind without one needs a MAJORITY of the
        organisations' admins."""
        return json({"policies": [m.gov_policy_json(p) for p in await gov("policies")]})

    @app.get(
        "/v1/gov/policies/{target}",
        response_model=m.GovPolicyResponse,
        responses=_errors(),
        tags=["governance"],
        summary="The policy in force for a method or a proposal kind",
    )
    async def gov_policy(
        target: Annotated[
            str,
            Path(
                description="'contract.method' (e.g. token.mint) or 'gov:<kind>' (e.g. gov:add_org)"
            ),
        ],
    ) -> Response:
        check_policy_target(target)
        p = await gov("policy", target=target)
        if target.startswith("gov:"):
            configured = {x["target"] for x in await gov("policies")}
            source = target if target in configured else None
        else:
            name = p["target"]
            source = None if name.endswith(" (default)") else name
        return json({**m.gov_policy_json({**p, "target": target}), "source": source})

    @app.get(
        "/v1/gov/proposals",
        response_model=m.GovProposalsResponse,
        responses=_errors(),
        tags=["governance"],
        summary="Proposals, newest first",
    )
    async def gov_proposals(
        status: Annotated[
            m.ProposalStatus | None, Query(description="only proposals in this state")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=GOV_MAX_PAGE, description="at most this many")] = 50,
    ) -> Response:
        args: dict[str, Any] = {"limit": limit}
        if status is not None:
            args["status"] = status
        found = await gov("proposals", **args)
        return json({"proposals": [m.gov_proposal_json(p) for p in found]})

    @app.get(
        "/v1/gov/proposals/{proposal_id}",
        response_model=m.GovProposalModel,
        responses=_errors(),
        tags=["governance"],
        summary="One proposal: its votes, approvals and what it still needs",
    )
    async def gov_proposal(
        proposal_id: Annotated[int, Path(ge=1, le=MAX_HEIGHT, description="proposal number")],
    ) -> Response:
        return json(m.gov_proposal_json(await gov("proposal", id=proposal_id)))

    @app.get(
        "/v1/gov/history",
        response_model=m.GovHistoryResponse,
        responses=_errors(),
        tags=["governance"],
        summary="The governance history, oldest first",
    )
    async def gov_history(
        after: Annotated[
            int, Query(ge=0, le=MAX_HEIGHT, description="entries after this sequence number")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=GOV_MAX_PAGE, description="at most this many")] = 100,
        proposal: Annotated[
            int | None, Query(ge=1, le=MAX_HEIGHT, description="only this proposal's entries")
        ] = None,
    ) -> Response:
        """Every governance action (proposals, votes, executions, member changes) with the
        block, time, transaction and account behind it. Page with ``next_after``."""
        args: dict[str, Any] = {"after": after, "limit": limit}
        if proposal is not None:
            args["proposal"] = proposal
        return json(m.gov_history_json(await gov("history", **args), after))

    # -- consensus and network -------------------------------------------------------------
    @app.get(
        "/v1/consensus",
        response_model=m.ConsensusResponse,
        tags=["consensus"],
        summary="Consensus state: why the chain is (not) moving",
    )
    async def consensus() -> Response:
        return json(service.consensus())

    @app.get(
        "/v1/net/peers", response_model=m.PeersResponse, tags=["consensus"], summary="P2P peers"
    )
    async def net_peers() -> Response:
        return json({"peers": service.peers()})

    @app.get(
        "/v1/evidence",
        response_model=m.EvidenceResponse,
        responses=_errors(),
        tags=["consensus"],
        summary="Evidence of misbehaviour (double signing)",
    )
    async def evidence(
        limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
    ) -> Response:
        return json(m.evidence_json(service.evidence(limit), service.pending_evidence()))

    # -- events ----------------------------------------------------------------------------
    @app.get(
        "/v1/events",
        status_code=426,
        response_model=m.ErrorBody,
        tags=["events"],
        summary="Committed events (WebSocket)",
    )
    async def events_http() -> Response:
        """A WebSocket endpoint: connect to ``ws://HOST/v1/events?contract=&type=`` (both
        filters optional). Each text message is an ``EventMessage``; the server sends a
        ``ClosedMessage`` before it closes the stream. A plain HTTP GET answers 426."""
        return error_response(
            426,
            ErrorCode.UNSUPPORTED,
            "/v1/events is a WebSocket endpoint: connect with ws:// (or wss://) "
            "and optional ?contract=&type= filters",
        )

    @app.websocket("/v1/events")
    async def events(ws: WebSocket) -> None:
        await ws.accept()
        params = ws.query_params
        try:
            unknown = sorted(set(params) - {"contract", "type"})
            if unknown:
                raise bad_arguments(f"unknown query parameter {unknown[0]!r}")
            contract, event_type = params.get("contract"), params.get("type")
            if contract is not None:
                check_name(contract, "contract")
            if event_type is not None:
                check_name(event_type, "type")
            stream = service.subscribe(contract, event_type)
        except CitychainError as exc:
            await _close_ws(ws, exc.code, exc.message)
            return

        async def forward() -> None:
            async for item in stream:
                await ws.send_text(dumps(m.event_json(item)).decode())

        async def until_disconnect() -> None:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass

        pump = asyncio.ensure_future(forward())
        watch = asyncio.ensure_future(until_disconnect())
        try:
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                failure = pump.exception()
                if failure is None:
                    reason = stream.closed_reason or "the event stream ended"
                    await _close_ws(ws, ErrorCode.UNAVAILABLE, reason)
                elif isinstance(failure, CitychainError) and http_status(failure) < 500:
                    await _close_ws(ws, failure.code, failure.message)
                elif not isinstance(failure, WebSocketDisconnect | OSError):
                    log.error("event stream failed", exc_info=failure)
                    await _close_ws(ws, ErrorCode.INTERNAL, INTERNAL_MESSAGE)
        finally:
            for task in (pump, watch):
                task.cancel()
            for task in (pump, watch):
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await task
            stream.close("client disconnected")

    # -- operations ------------------------------------------------------------------------
    @app.get(
        "/health",
        response_model=m.HealthResponse,
        responses={503: {"model": m.HealthResponse, "description": "not healthy"}},
        tags=["operations"],
        summary="Liveness and readiness",
    )
    async def health() -> Response:
        ok, details = service.health()
        return json({"ok": ok, "details": details}, 200 if ok else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "metrics"}},
        tags=["operations"],
        summary="Prometheus metrics",
    )
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics_registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=None,
            )
            # Validation errors are answered 400 with an ErrorBody, never 422.
            for path in schema.get("paths", {}).values():
                for op in path.values():
                    op.get("responses", {}).pop("422", None)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            comps.pop("HTTPValidationError", None)
            comps.pop("ValidationError", None)
            # The WebSocket messages of /v1/events, which no HTTP route declares.
            _, defs = models_json_schema(
                [(m.EventMessage, "serialization"), (m.ClosedMessage, "serialization")],
                ref_template="#/components/schemas/{model}",
            )
            comps.update(defs.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _close_ws(ws: WebSocket, code: ErrorCode, reason: str) -> None:
    """Send a ClosedMessage, then close with a matching WebSocket close code."""
    if ws.application_state != WebSocketState.CONNECTED:
        return
    ws_code = 1013 if code in (ErrorCode.UNAVAILABLE, ErrorCode.MEMPOOL_FULL) else 1008
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await ws.send_text(dumps(m.closed_json(code, reason)).decode())
        await ws.close(ws_code, reason.encode()[:120].decode(errors="ignore"))
