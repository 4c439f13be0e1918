"""The routes of private data collections (``/v1/data/collections/...``).

Theory of operation
-------------------
The chain holds a collection's definition and each item's hash; the values are held by the
nodes of the listed organisations only (the node's ``private_data``, which the server puts in
``app.state``: :class:`PrivateValues`). These routes decide who may hand a value to this node
and who may read one from it; the contract's definitions are read on the latest committed
state, as every route reads them.

* ``GET /v1/data/collections/{name}`` (public): the definition;
* ``GET /v1/data/collections/{name}/items/{key}/meta`` (public): the item's hash, size,
  heights and whether it is purged, never its value;
* ``PUT /v1/data/collections/{name}/items/{key}`` (RFC 9421 signed; body: the value, at most
  :data:`~citychain.types.private_data.MAX_ITEM_BYTES`): the signer a member in
  good standing of a listed organisation, and this node's organisation listed
  (``not_in_collection`` otherwise). The node stores the value, pushes it to at most the
  collection's ``max_peers`` peers of the listed organisations (0: all), waits until
  ``required_peers`` of them acknowledge storing it and answers ``{hash, salt, size,
  pushed_to, acks}`` (or ``503 dissemination_failed``, saying how many of how many
  acknowledged: then the value is not to be anchored, and the node keeps it only until its
  unanchored values are swept). On success the client then sends
  ``data.put_private`` with that hash and size to the same node (the SDK's ``put_private``
  does both): its admission gate (:func:`put_gate`) refuses it (``private_missing``) unless
  this node holds that value;
* ``GET /v1/data/collections/{name}/items/{key}?version=`` (signed): the value, checked
  against the hash on chain. The signer must be a member in good standing of a listed
  organisation (of any organisation when the collection's ``member_only_read`` is false):
  ``not_in_collection`` (403) otherwise; purged: ``private_purged`` (410); not (yet) held by
  this node: ``private_missing`` (404); this node's organisation not listed:
  ``not_in_collection`` naming the organisations to ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Protocol, cast

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import HTTPConnection
from starlette.responses import Response

from citychain.api import models as m
from citychain.api._httpsig import SignedBy, SignedDep
from citychain.api.openapi import error_responses
from citychain.api.routes._common import ServiceDep, json
from citychain.api.service import NodeService
from citychain.errors import ErrorCode, ExecutionFailure, InvalidInput, NotFound, Unavailable
from citychain.services.data.shapes import NAME
from citychain.types import Transaction
from citychain.types import private_data as pv
from citychain.types.tx import codec_to_json

router = APIRouter(tags=["data"])
OCTETS = "application/octet-stream"


class PrivateValues(Protocol):
    """What these routes need of the node's private store (``citychain.node.private_data``)."""

    org_id: str

    async def take(
        self,
        collection: str,
        orgs: Sequence[str],
        key: str,
        value: bytes,
        *,
        required_peers: int = 0,
        max_peers: int = 0,
    ) -> pv.Taken: ...

    async def value(self, collection: str, key: str, digest: bytes) -> bytes | None: ...

    async def size_of(self, collection: str, key: str, digest: bytes) -> int | None: ...


async def _values(conn: HTTPConnection) -> PrivateValues:
    values = getattr(conn.app.state, "private_data", None)
    if values is None:
        raise Unavailable(
            "this node serves no private data (its API was started without a node store)",
            ErrorCode.UNAVAILABLE,
        )
    return cast(PrivateValues, values)


ValuesDep = Annotated[PrivateValues, Depends(_values)]
NamePath = Annotated[str, Path(description="the collection's name", max_length=64)]
KeyPath = Annotated[str, Path(description="the item's key (never personal data)", max_length=128)]


async def _collection(service: NodeService, name: str) -> dict[str, Any]:
    c: dict[str, Any] = await service.query(
        NAME, "collection", {"name": pv.check_collection_name(name, "name")}
    )
    return c


async def _signer_org(service: NodeService, signed: SignedBy) -> str | None:
    m = await service.query("gov", "member", {"address": signed.address})
    if not isinstance(m, dict) or m.get("standing") != "ok":
        return None
    return str(m["org"])


def _not_listed(
    c: dict[str, Any], signed: SignedBy, org: str | None, what: str
) -> ExecutionFailure:
    return ExecutionFailure(
        f"only a member of {', '.join(c['orgs'])} (the organisations of collection "
        f"{c['name']!r}) may {what}; account {signed.address.hex()} is "
        + (f"a member of {org!r}" if org is not None else "no member in good standing"),
        ErrorCode.NOT_IN_COLLECTION,
    )


def _node_not_listed(c: dict[str, Any], org: str) -> ExecutionFailure:
    return ExecutionFailure(
        f"this node's organisation ({org or 'none'}) is not in collection {c['name']!r}, so it "
        f"holds none of its values: use a node of {', '.join(c['orgs'])}",
        ErrorCode.NOT_IN_COLLECTION,
    )


async def put_gate(app: Any, tx: Transaction) -> None:
    """The admission gate of ``data.put_private`` (:mod:`citychain.api._gates`): the node
    that takes it from a client holds the value its hash anchors, with that size. So a hash
    enters the chain only with its value on a listed organisation's node (the one the client
    handed it to), as a data version enters the catalogue only with its chunks stored."""
    values = getattr(app.state, "private_data", None)
    if values is None:
        raise Unavailable(
            "this node serves no private data: send put_private to the node you handed the "
            "value to",
            ErrorCode.UNAVAILABLE,
        )
    args = tx.args
    name, key, digest, size = (args.get(k) for k in ("collection", "key", "hash", "size"))
    if type(name) is not str or type(key) is not str or type(digest) is not bytes:
        return  # malformed: the contract's own check refuses it with its code
    held = await cast(PrivateValues, values).size_of(name, key, digest)
    if held is None:
        raise NotFound(
            f"this node holds no value of {name}/{key} hashing to {digest.hex()}: hand the "
            f"value to this node first (PUT /v1/data/collections/{name}/items/{key}), then "
            "send put_private here",
            ErrorCode.PRIVATE_MISSING,
        )
    if held != size:
        raise InvalidInput(
            f"put_private says the value is {size!r} bytes; the value held here is {held}",
            ErrorCode.HASH_MISMATCH,
        )


@router.get(
    "/v1/data/collections/{name}",
    responses=error_responses(),
    summary="A private data collection's definition",
)
async def collection(name: NamePath, service: ServiceDep) -> Response:
    return json({"result": codec_to_json(await _collection(service, name))})


@router.get(
    "/v1/data/collections/{name}/items/{key}/meta",
    responses=error_responses(),
    summary="A private item's hash, size and heights (never its value)",
)
async def item_meta(
    name: NamePath,
    key: KeyPath,
    service: ServiceDep,
    version: Annotated[int | None, Query(ge=1, le=2**32 - 1)] = None,
) -> Response:
    args: dict[str, Any] = {"collection": name, "key": key}
    if version is not None:
        args["version"] = version
    return json({"result": codec_to_json(await service.query(NAME, "private_item", args))})


_TAKEN = {
    "description": "Stored here and pushed; acknowledged by the collection's required_peers",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["collection", "key", "hash", "salt", "size", "pushed_to", "acks"],
                "properties": {
                    "collection": {"type": "string"},
                    "key": {"type": "string"},
                    "hash": {"type": "string", "description": "H(value ‖ salt), hex"},
                    "salt": {"type": "string", "description": "32 bytes, hex"},
                    "size": {"type": "integer"},
                    "pushed_to": {
                        "type": "integer",
                        "description": "peers of listed organisations it was pushed to "
                        "(at most the collection's max_peers)",
                    },
                    "acks": {
                        "type": "integer",
                        "description": "peers that acknowledged storing it before this answer "
                        "(at least required_peers; 0 when the collection requires none)",
                    },
                },
            }
        }
    },
}


@router.put(
    "/v1/data/collections/{name}/items/{key}",
    status_code=201,
    responses={
        **error_responses(401, 403, 413),
        201: _TAKEN,
        503: {
            "model": m.ErrorBody,
            "description": "store_full; or dissemination_failed: fewer than the collection's "
            "required_peers acknowledged the value in time (do not anchor it)",
        },
    },
    summary="Hand a private value to this node (signed member of a listed organisation)",
)
async def put_item(
    name: NamePath, key: KeyPath, signed: SignedDep, service: ServiceDep, values: ValuesDep
) -> Response:
    pv.check_item_key(key)
    if len(signed.body) > pv.MAX_ITEM_BYTES:
        raise InvalidInput(
            f"a private value is at most {pv.MAX_ITEM_BYTES} bytes; this one is {len(signed.body)}",
            ErrorCode.TOO_LARGE,
        )
    c = await _collection(service, name)
    org = await _signer_org(service, signed)
    if org is None or org not in c["orgs"]:
        raise _not_listed(c, signed, org, "put items into it")
    if not pv.may_hold(c["orgs"], values.org_id):
        raise _node_not_listed(c, values.org_id)
    required, most = pv.peer_counts(c)
    taken = await values.take(
        name, c["orgs"], key, signed.body, required_peers=required, max_peers=most
    )
    return json(
        {
            "collection": name,
            "key": key,
            "hash": taken.hash.hex(),
            "salt": taken.salt.hex(),
            "size": len(signed.body),
            "pushed_to": taken.pushed_to,
            "acks": taken.acks,
        },
        201,
    )


@router.get(
    "/v1/data/collections/{name}/items/{key}",
    responses=error_responses(401, 403, 410, 503),
    summary="A private value (signed member of a listed organisation)",
)
async def get_item(
    name: NamePath,
    key: KeyPath,
    signed: SignedDep,
    service: ServiceDep,
    values: ValuesDep,
    version: Annotated[int | None, Query(ge=1, le=2**32 - 1)] = None,
) -> Response:
    c = await _collection(service, name)
    org = await _signer_org(service, signed)
    allowed = org is not None and (org in c["orgs"] or not c["member_only_read"])
    if not allowed:
        raise _not_listed(c, signed, org, "read its values")
    args: dict[str, Any] = {"collection": name, "key": pv.check_item_key(key)}
    if version is not None:
        args["version"] = version
    item = await service.query(NAME, "private_item", args)
    if item["purged"]:
        raise NotFound(
            f"the value of {name}/{key} version {item['version']} was purged at height "
            f"{item['purge_height']} (its hash stays on chain)",
            ErrorCode.PRIVATE_PURGED,
        )
    if not pv.may_hold(c["orgs"], values.org_id):
        raise _node_not_listed(c, values.org_id)
    data = await values.value(name, key, item["hash"])
    if data is None:
        raise NotFound(
            f"this node does not hold the value of {name}/{key} version {item['version']} "
            "(not arrived yet, or it was down when it was pushed): ask another node of "
            f"{', '.join(c['orgs'])}",
            ErrorCode.PRIVATE_MISSING,
        )
    return Response(
        data,
        media_type=OCTETS,
        headers={
            "X-Citychain-Hash": item["hash"].hex(),
            "X-Citychain-Version": str(item["version"]),
            "X-Citychain-Height": str(item["height"]),
        },
    )


__all__ = ["PrivateValues", "put_gate", "router"]
