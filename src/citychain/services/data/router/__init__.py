"""The data directory's routes (``/v1/data/...``): the public catalogue, signed reads of grants,
audit trails and the citizen's view, chunk uploads and downloads.

A resource code (``101001001/12``: classification and sequence, 政务信息资源代码) holds a ``/``,
so a resource's path is ``/v1/data/resources/{class}/{sequence}``.

Public (anyone):

* ``GET /v1/data/resources?provider=&theme=&keyword=&sharing=``: search the catalogue;
* ``GET /v1/data/resources/{cls}/{seq}``, ``.../history``, ``.../versions``: a resource's
  record, every revision, its data versions (hashes, sizes, anchoring block);
* ``GET /v1/data/catalogue``: the whole catalogue as one DCAT 3 JSON-LD document;
* ``GET /v1/data/hashes/{plain_hash}``: the versions anchoring a plaintext (to verify a file);
* ``GET .../{cls}/{seq}/versions/{n}/stored``: whether this node holds every chunk of that
  version (a downloader asks first, so no access is recorded for a download it cannot make).

Signed (RFC 9421; who may read what is the contract's ``can_read``):

* ``GET .../{cls}/{seq}/grants``, ``/requests``, ``/audit``: its provider or an auditor;
* ``GET /v1/data/grants/{id}``, ``/requests/{id}``, ``/accesses/{id}``: the party too;
* ``GET /v1/data/subjects/{tag}/accesses``, ``/records``: the citizen's view (its did:key);
* ``GET .../versions/{n}/key``: the data key wrapped for the signer;
* ``GET .../versions/{n}/manifest?access=``, ``.../content?access=``: a recorded, recent
  access under an active grant;
* ``POST /v1/data/blobs/missing``, ``PUT /v1/data/blobs/{id}``, ``PUT
  /v1/data/manifests/{id}``: uploads, by a member in good standing.

Private data collections (``/v1/data/collections/...``): :mod:`._private`.

The citizen's page (``GET /my-data``: the citizen's view from a phone's browser): :mod:`._page`.

``data.add_version`` transactions pass :data:`TX_GATES` on ``POST /v1/tx(s)``: refused
(``chunk_missing``) until the manifest and all its chunks are stored here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response, StreamingResponse

from citychain.api._body import parse_json_object
from citychain.api._httpsig import ContentAddressedDep, SignedBy, SignedDep, public_base
from citychain.api._json import dumps
from citychain.api.openapi import error_responses
from citychain.api.routes._common import ServiceDep, json
from citychain.blobs import BlobStore
from citychain.crypto.envelope import Manifest, parse_id
from citychain.errors import CitychainError, ErrorCode, InvalidInput
from citychain.services.data.router import _blobs
from citychain.services.data.router import _private as _private_routes
from citychain.services.data.router._blobs import MAX_ASK, StoreDep
from citychain.services.data.router._page import router as _page_router
from citychain.services.data.router._reads import DataReads
from citychain.services.data.shapes import (
    MAX_PAGE,
    NAME,
    catalogue_entry,
    check_code,
    export_catalogue,
)
from citychain.types.tx import codec_to_json

router = APIRouter(tags=["data"])

#: ``data.add_version`` is admitted only once its chunks are stored (citychain.api._gates).
TX_GATES = {
    (NAME, "add_version"): _blobs.version_gate,
    (NAME, "put_private"): _private_routes.put_gate,  # the value is held here first
}

CBOR = "application/cbor"
OCTETS = "application/octet-stream"
JSONLD = "application/ld+json"


async def _reads(service: ServiceDep) -> DataReads:
    return DataReads(service)


ReadsDep = Annotated[DataReads, Depends(_reads)]
ClassPath = Annotated[str, Path(description="the resource code's classification, e.g. 101001001")]
SeqPath = Annotated[str, Path(description="the resource code's sequence number, e.g. 12")]
AfterQuery = Annotated[int, Query(ge=0, le=2**63 - 1, description="page after this id")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_PAGE, description="most entries")]
_SIGNED = error_responses(401, 403)


def _code(cls: str, seq: str) -> str:
    return check_code(f"{cls}/{seq}")


def _answer(value: Any) -> Response:
    """A query's value as the generic query route renders it (bytes as hex, ...)."""
    return json({"result": codec_to_json(value)})


def _id(text: str, what: str) -> bytes:
    try:
        return parse_id(text)
    except CitychainError:
        raise InvalidInput(
            f"{what} must be 64 lowercase hex digits, got {text[:80]!r}", ErrorCode.MALFORMED
        ) from None


# -- the public catalogue -------------------------------------------------------------------
@router.get("/v1/data/resources", responses=error_responses(), summary="Search the catalogue")
async def search(
    reads: ReadsDep,
    provider: str | None = None,
    theme: str | None = None,
    keyword: str | None = None,
    sharing: str | None = None,
    after: str | None = None,
    limit: LimitQuery = 50,
) -> Response:
    args: dict[str, Any] = {"limit": limit}
    for name, value in (
        ("provider", provider),
        ("theme", theme),
        ("keyword", keyword),
        ("sharing", sharing),
        ("after", after),
    ):
        if value is not None:
            args[name] = value
    return _answer(await reads.public("search", args))


@router.get(
    "/v1/data/resources/{cls}/{seq}", responses=error_responses(), summary="A data resource"
)
async def resource(cls: ClassPath, seq: SeqPath, reads: ReadsDep) -> Response:
    return _answer(await reads.public("resource", {"code": _code(cls, seq)}))


@router.get(
    "/v1/data/resources/{cls}/{seq}/history",
    responses=error_responses(),
    summary="Every revision of a resource's record, oldest first",
)
async def history(
    cls: ClassPath, seq: SeqPath, reads: ReadsDep, after: AfterQuery = 0, limit: LimitQuery = 50
) -> Response:
    args = {"code": _code(cls, seq), "after": after, "limit": limit}
    return _answer(await reads.public("history", args))


@router.get(
    "/v1/data/resources/{cls}/{seq}/versions",
    responses=error_responses(),
    summary="A resource's data versions: manifest, hashes, sizes, anchoring block",
)
async def versions(
    cls: ClassPath, seq: SeqPath, reads: ReadsDep, after: AfterQuery = 0, limit: LimitQuery = 50
) -> Response:
    args = {"code": _code(cls, seq), "after": after, "limit": limit}
    return _answer(await reads.public("versions", args))


@router.get(
    "/v1/data/catalogue",
    responses={**error_responses(), 200: {"content": {JSONLD: {}}}},
    summary="The whole catalogue as one DCAT 3 JSON-LD document",
)
async def catalogue(request: Request, reads: ReadsDep) -> Response:
    resources: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        args: dict[str, Any] = {"limit": MAX_PAGE, **({"after": after} if after else {})}
        page = await reads.public("search", args)
        for found in page["resources"]:
            versions: list[dict[str, Any]] = []
            while True:  # every version, page after page (as the SDK's versions_all)
                more = await reads.public(
                    "versions",
                    {
                        "code": found["code"],
                        "limit": MAX_PAGE,
                        "after": int(versions[-1]["version"]) if versions else 0,
                    },
                )
                versions += more
                if len(more) < MAX_PAGE:
                    break
            resources.append(catalogue_entry(found, versions))
        after = page["next"]
        if after is None:
            break
    base = public_base(request)
    doc = export_catalogue(
        resources,
        base=base,
        endpoint=f"{base}/v1/data",
        hash_name=reads.hash_name,
    )
    return Response(dumps(doc), media_type=JSONLD)


@router.get(
    "/v1/data/hashes/{plain_hash}",
    responses=error_responses(),
    summary="The data versions whose plaintext has this hash (to verify a file)",
)
async def by_hash(plain_hash: str, reads: ReadsDep) -> Response:
    return _answer(await reads.public("by_hash", {"plain_hash": _id(plain_hash, "the hash")}))


# -- signed reads ---------------------------------------------------------------------------
def _private_route(path: str, query: str, summary: str) -> None:
    @router.get(f"/v1/data/resources/{{cls}}/{{seq}}/{path}", responses=_SIGNED, summary=summary)
    async def read(
        cls: ClassPath,
        seq: SeqPath,
        signed: SignedDep,
        reads: ReadsDep,
        after: AfterQuery = 0,
        limit: LimitQuery = 50,
    ) -> Response:
        args = {"code": _code(cls, seq), "after": after, "limit": limit}
        return _answer(await reads.private(signed, query, args))

    read.__name__ = f"resource_{path}"


_private_route("grants", "grants", "A resource's grants (signed: its provider or an auditor)")
_private_route("requests", "requests", "A resource's access requests (signed)")
_private_route("audit", "audit", "A resource's audit trail (signed: its provider or an auditor)")


def _record_route(kind: str, query: str, summary: str) -> None:
    @router.get(f"/v1/data/{kind}/{{ident}}", responses=_SIGNED, summary=summary)
    async def read(
        ident: Annotated[int, Path(ge=1, le=2**63 - 1)], signed: SignedDep, reads: ReadsDep
    ) -> Response:
        return _answer(await reads.private(signed, query, {"id": ident}))

    read.__name__ = f"one_{query}"


_record_route("grants", "grant", "One grant with its state now (signed)")
_record_route("requests", "request", "One access request (signed)")
_record_route("accesses", "access", "One audit entry (signed)")


def _subject_route(path: str, query: str, summary: str) -> None:
    @router.get(f"/v1/data/subjects/{{tag}}/{path}", responses=_SIGNED, summary=summary)
    async def read(
        tag: str, signed: SignedDep, reads: ReadsDep, after: AfterQuery = 0, limit: LimitQuery = 50
    ) -> Response:
        args: dict[str, Any] = {"subject": _id(tag, "the subject tag")}
        if query == "accesses":
            args.update(after=after, limit=limit)
        return _answer(await reads.private(signed, query, args))

    read.__name__ = f"subject_{path}"


_subject_route(
    "accesses",
    "accesses",
    "The citizen's view: who accessed records about this subject, when and why (signed: the "
    "subject's did:key or an auditor)",
)
_subject_route("records", "records", "The resources holding records about this subject (signed)")


VersionPath = Annotated[int, Path(ge=1, le=2**32 - 1, description="the version number")]
AccessQuery = Annotated[int, Query(ge=1, le=2**63 - 1, description="the recorded access id")]


@router.get(
    "/v1/data/resources/{cls}/{seq}/versions/{n}/key",
    responses=_SIGNED,
    summary="The version's data key, wrapped for the signer (signed)",
)
async def wrapped_key(
    cls: ClassPath, seq: SeqPath, n: VersionPath, signed: SignedDep, reads: ReadsDep
) -> Response:
    args = {"code": _code(cls, seq), "version": n, "grantee": signed.address}
    return _answer(await reads.private(signed, "wrapped_key", args))


async def _opened(
    signed: SignedBy,
    reads: DataReads,
    store: BlobStore,
    code: str,
    n: int,
    access: int,
    *,
    whole: bool,
) -> Manifest:
    """The manifest of version ``n`` of ``code``, once the chain's recorded access allows
    ``signed`` to download it (see :meth:`DataReads.download`) and this node holds the
    manifest and, if ``whole``, every chunk it names (else ``chunk_missing``, before any
    byte is sent)."""
    allowed = await reads.download(signed, code, n, access)
    manifest_id = allowed.version["manifest_id"]
    return await _blobs.complete(store, manifest_id, _blobs.ELSEWHERE, chunks=whole)


@router.get(
    "/v1/data/resources/{cls}/{seq}/versions/{n}/stored",
    responses=error_responses(404, 503),
    summary="Whether this node holds every chunk of the version (ask before recording an access)",
)
async def stored(
    cls: ClassPath, seq: SeqPath, n: VersionPath, reads: ReadsDep, store: StoreDep
) -> Response:
    """Public: that a version exists, and its manifest id, are in the catalogue already."""
    code = _code(cls, seq)
    version = await reads.version(code, n)
    found = await _blobs.complete(store, version["manifest_id"], _blobs.ELSEWHERE)
    return json(
        {
            "code": code,
            "version": n,
            "manifest_id": found.id.hex(),
            "chunks": len(found.chunks),
            "cipher_size": found.cipher_size,
        }
    )


@router.get(
    "/v1/data/resources/{cls}/{seq}/versions/{n}/manifest",
    responses={**_SIGNED, 200: {"content": {CBOR: {}}}},
    summary="The version's manifest (signed, with a recorded access)",
)
async def manifest(
    cls: ClassPath,
    seq: SeqPath,
    n: VersionPath,
    access: AccessQuery,
    signed: SignedDep,
    reads: ReadsDep,
    store: StoreDep,
) -> Response:
    found = await _opened(signed, reads, store, _code(cls, seq), n, access, whole=False)
    return Response(found.encode(), media_type=CBOR)


@router.get(
    "/v1/data/resources/{cls}/{seq}/versions/{n}/content",
    responses={**_SIGNED, 200: {"content": {OCTETS: {}}}},
    summary="The version's ciphertext, streamed chunk by chunk (signed, with a recorded access)",
)
async def content(
    cls: ClassPath,
    seq: SeqPath,
    n: VersionPath,
    access: AccessQuery,
    signed: SignedDep,
    reads: ReadsDep,
    store: StoreDep,
) -> Response:
    found = await _opened(signed, reads, store, _code(cls, seq), n, access, whole=True)
    return StreamingResponse(
        _blobs.chunks(store, found),
        media_type=OCTETS,
        headers={"Content-Length": str(found.cipher_size)},
    )


# -- uploads --------------------------------------------------------------------------------
@router.post(
    "/v1/data/blobs/missing",
    responses=_SIGNED,
    summary="Which of these chunk ids the store lacks (signed member; to resume an upload)",
)
async def blobs_missing(signed: SignedDep, reads: ReadsDep, store: StoreDep) -> Response:
    await reads.member(signed, "upload data")
    obj = parse_json_object(signed.body, "body")
    ids = obj.get("ids")
    if not isinstance(ids, list) or len(ids) > MAX_ASK:
        raise InvalidInput(
            f"body field 'ids' must be a list of at most {MAX_ASK} chunk ids",
            ErrorCode.BAD_ARGUMENTS,
        )
    asked = [_id(i, f"ids[{k}]") for k, i in enumerate(ids)]
    absent = await _blobs.missing(store, asked)
    return json({"missing": [i.hex() for i in absent]})


@router.put(
    "/v1/data/blobs/{chunk_id}",
    responses=error_responses(401, 403, 503),
    summary="Store one ciphertext chunk under the hash of its bytes (signed member)",
)
async def put_blob(
    chunk_id: str, signed: ContentAddressedDep, reads: ReadsDep, store: StoreDep
) -> Response:
    # The signature covers the URI, which names the chunk's hash, and the store refuses bytes
    # that do not hash to it (chunk_id_mismatch): the body needs no Content-Digest of its own.
    await reads.member(signed, "upload data")
    new = await _blobs.put(store, _id(chunk_id, "the chunk id"), signed.body)
    return json({"id": chunk_id, "stored": new}, 201 if new else 200)


@router.put(
    "/v1/data/manifests/{manifest_id}",
    responses=error_responses(401, 403, 503),
    summary="Store a version's manifest once all its chunks are stored (signed member)",
)
async def put_manifest(
    manifest_id: str, signed: SignedDep, reads: ReadsDep, store: StoreDep
) -> Response:
    await reads.member(signed, "upload data")
    wanted = _id(manifest_id, "the manifest id")
    found = await _blobs.manifest_in(store, signed.body)
    if found.id != wanted:
        raise InvalidInput(
            f"the body is manifest {found.id.hex()}, not {manifest_id}",
            ErrorCode.CHUNK_ID_MISMATCH,
        )
    return json({"id": manifest_id, "chunks": len(found.chunks)}, 201)


# Private data collections: /v1/data/collections/... (their own module).
router.include_router(_private_routes.router)
# The citizen's page (GET /my-data), for people with a phone.
router.include_router(_page_router)

__all__ = ["TX_GATES", "router"]
