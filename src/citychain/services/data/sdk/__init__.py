"""``client.data``: the data directory from the SDK (catalogue, versions, requests, grants).

Two layers:

* **Builders** (pure, no client): ``register_args``, ``version_args``, ``request_args``,
  ``decide_args``, ``revoke_args``, ``access_args``, ``wrap_args`` check their inputs as the
  contract does and return the ``args`` map of the transaction, so a refusal (``bad_arguments``
  naming the field) comes before anything is signed. ``subject_tag``, ``export_catalogue`` and
  ``import_catalogue`` are the shapes' functions.
* **Helpers** on a client (``client.data``): each transaction helper sends, waits for the
  commit and returns the contract's result (the code, a version number, ``{"request",
  "state", "grant"}``, an access id), or raises :class:`~citychain.errors.ExecutionFailure`
  with the receipt's code (``not_provider``, ``grant_expired``...). The public queries
  (``resource``, ``history``, ``versions``, ``search``, ``search_all``, ``catalogue``) read
  the node's latest state (not proven). The private queries (grants, audit trails, the
  citizen's view, wrapped keys) are not answered by the generic query route: read them
  through the data service's signed routes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from citychain.crypto import Signer
from citychain.sdk._services import AsyncServiceClient, ServiceClient, committed
from citychain.services.data.sdk._transfer import (
    Anchor,
    Progress,
    Transfers,
    Uploaded,
    accesses_path,
    encryption_keypair,
    resource_path,
    subject_of,
)
from citychain.services.data.shapes import (
    MAX_GRANT_MS,
    MAX_PAGE,
    MAX_SUBJECTS,
    MAX_WRAPPED,
    MAX_WRAPS,
    NAME,
    bad,
    catalogue_entry,
    check_cipher,
    check_code,
    check_hash,
    check_tag,
    check_text,
    export_catalogue,
    import_catalogue,
    resource_record,
    subject_tag,
)
from citychain.types import private_data as pv
from citychain.types.address import to_address
from citychain.types.tx import json_to_codec

if TYPE_CHECKING:
    from citychain.crypto.envelope import Manifest

#: Gas for a data transaction unless told otherwise (a download listed under 1,024 subjects
#: writes as many index entries).
DATA_GAS_LIMIT = 5_000_000


def _nat(value: Any, name: str, top: int = 2**63 - 1, low: int = 0) -> int:
    if type(value) is not int or not low <= value <= top:
        raise bad(f"argument {name!r} must be an integer from {low} to {top}")
    return value


# -- builders ----------------------------------------------------------------------------------
def register_args(**fields: Any) -> dict[str, Any]:
    """The args of ``register_resource`` / ``update_resource``: the resource's fields
    (:data:`~citychain.services.data.shapes.RESOURCE_FIELDS`; approvers as addresses, bytes
    or hex), checked and put in canonical form."""
    if "approvers" in fields:
        fields["approvers"] = [to_address(a, "approvers") for a in fields["approvers"]]
    return resource_record(fields)


def version_args(
    code: str,
    *,
    manifest_id: bytes,
    plain_hash: bytes,
    cipher_hash: bytes,
    plain_size: int,
    cipher_size: int,
    cipher: str,
    subjects: Sequence[bytes] = (),
    wraps: Mapping[bytes | str, bytes] | None = None,
) -> dict[str, Any]:
    """The args of ``add_version`` (a manifest the blob store holds every chunk of)."""
    if len(subjects) > MAX_SUBJECTS:
        raise bad(f"argument 'subjects' lists at most {MAX_SUBJECTS} tags")
    tags = sorted(check_tag(t, "subjects") for t in subjects)
    if len(set(tags)) != len(tags):
        raise bad("argument 'subjects' lists a tag twice")
    wrapped = {to_address(a, "wraps"): w for a, w in (wraps or {}).items()}
    if len(wrapped) > MAX_WRAPS:
        raise bad(f"argument 'wraps' holds at most {MAX_WRAPS} keys")
    for w in wrapped.values():
        if type(w) is not bytes or not 0 < len(w) <= MAX_WRAPPED:
            raise bad(f"argument 'wraps': a wrapped key is 1 to {MAX_WRAPPED} bytes")
    args: dict[str, Any] = {
        "code": check_code(code),
        "manifest_id": check_hash(manifest_id, "manifest_id"),
        "plain_hash": check_hash(plain_hash, "plain_hash"),
        "cipher_hash": check_hash(cipher_hash, "cipher_hash"),
        "plain_size": _nat(plain_size, "plain_size"),
        "cipher_size": _nat(cipher_size, "cipher_size"),
        "cipher": check_cipher(cipher),
    }
    if tags:
        args["subjects"] = tags
    if wrapped:
        args["wraps"] = [{"grantee": a, "wrapped": w} for a, w in sorted(wrapped.items())]
    return args


def wrap_args(code: str, version: int, grantee: bytes | str, wrapped: bytes) -> dict[str, Any]:
    """The args of ``wrap_key``."""
    if type(wrapped) is not bytes or not 0 < len(wrapped) <= MAX_WRAPPED:
        raise bad(f"argument 'wrapped' must be 1 to {MAX_WRAPPED} bytes")
    return {
        "code": check_code(code),
        "version": _nat(version, "version", 2**32 - 1, 1),
        "grantee": to_address(grantee, "grantee"),
        "wrapped": wrapped,
    }


def request_args(
    code: str,
    purpose: str,
    *,
    until: int | None = None,
    period: int | None = None,
    legal_basis: str = "",
    subject: bytes | str | None = None,
    enc_key: bytes | None = None,
) -> dict[str, Any]:
    """The args of ``request_access``: ``until`` (block time, ms) or ``period`` (ms from the
    block that takes the request); ``subject`` a subject tag or a DID (turned into its tag).
    A citizen names their own DID (their did:key). ``enc_key``: the X25519 public key data
    keys are to be wrapped for (:func:`encryption_keypair`; needed from an SM2 account)."""
    if (until is None) == (period is None):
        raise bad("give the access period as 'until' (block time, ms) or 'period' (ms)")
    args: dict[str, Any] = {"code": check_code(code), "purpose": check_text(purpose, "purpose")}
    if until is not None:
        args["until"] = _nat(until, "until", low=1)
    else:
        args["period"] = _nat(period, "period", MAX_GRANT_MS, 1)
    if legal_basis:
        args["legal_basis"] = check_text(legal_basis, "legal_basis")
    if subject is not None:
        args["subject"] = subject_tag(subject) if isinstance(subject, str) else check_tag(subject)
    if enc_key is not None:
        if type(enc_key) is not bytes or len(enc_key) != 32:
            raise bad("argument 'enc_key' must be an X25519 public key (32 bytes)")
        args["enc_key"] = enc_key
    return args


def decide_args(request: int, approve: bool, reason: str = "") -> dict[str, Any]:
    """The args of ``decide`` (a reason is required to refuse)."""
    if type(approve) is not bool:
        raise bad("argument 'approve' must be True or False")
    args: dict[str, Any] = {"request": _nat(request, "request", low=1), "approve": approve}
    if reason or not approve:
        args["reason"] = check_text(reason, "reason")
    return args


def revoke_args(grant: int, reason: str) -> dict[str, Any]:
    """The args of ``revoke``."""
    return {"grant": _nat(grant, "grant", low=1), "reason": check_text(reason, "reason")}


def access_args(grant: int, version: int, purpose: str | None = None) -> dict[str, Any]:
    """The args of ``record_access`` (``purpose`` defaults to the grant's)."""
    args: dict[str, Any] = {
        "grant": _nat(grant, "grant", low=1),
        "version": _nat(version, "version", 2**32 - 1, 1),
    }
    if purpose is not None:
        args["purpose"] = check_text(purpose, "purpose")
    return args


def retire_args(code: str, reason: str = "") -> dict[str, Any]:
    args: dict[str, Any] = {"code": check_code(code)}
    if reason:
        args["reason"] = check_text(reason, "reason")
    return args


def _search_args(
    provider: str | None,
    theme: str | None,
    keyword: str | None,
    sharing: str | None,
    after: str | None,
    limit: int,
    retired: bool = False,
) -> dict[str, Any]:
    args: dict[str, Any] = {"limit": _nat(limit, "limit", MAX_PAGE, 1)}
    if retired:
        args["retired"] = True
    for name, value in (
        ("provider", provider),
        ("theme", theme),
        ("keyword", keyword),
        ("sharing", sharing),
    ):
        if value is not None:
            args[name] = value
    if after is not None:
        args["after"] = check_code(after, "after")
    return args


def collection_args(
    name: str,
    orgs: Sequence[str],
    *,
    block_to_live: int = 0,
    member_only_read: bool = True,
    required_peers: int = 0,
    max_peers: int = 0,
) -> dict[str, Any]:
    """The args of ``define_collection``: ``orgs`` must list the signer's organisation;
    ``required_peers`` and ``max_peers`` (0: no limit) are sent only when not 0."""
    if type(member_only_read) is not bool:
        raise bad("argument 'member_only_read' must be true or false")
    required, most = pv.check_peer_counts(required_peers, max_peers)
    args: dict[str, Any] = {
        "name": pv.check_collection_name(name, "name"),
        "orgs": pv.check_orgs(list(orgs)),
        "block_to_live": _nat(block_to_live, "block_to_live", pv.MAX_BLOCK_TO_LIVE),
        "member_only_read": member_only_read,
    }
    if required:
        args["required_peers"] = required
    if most:
        args["max_peers"] = most
    return args


def _taken(taken: Mapping[str, Any], digest: bytes) -> dict[str, Any]:
    """What ``put_private`` adds to the contract's answer from the node's (a node older than
    the acknowledgements answers no ``acks``: 0)."""
    return {"hash": digest, "pushed_to": int(taken["pushed_to"]), "acks": int(taken.get("acks", 0))}


def _item_path(collection: str, key: str) -> str:
    name = pv.check_collection_name(collection)
    return f"/v1/data/collections/{name}/items/{pv.check_item_key(key)}"


# -- helpers on a client -----------------------------------------------------------------------
class Data:
    """``client.data`` on a blocking :class:`~citychain.sdk.Client`."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client
        self._io = Transfers(client, self._send)

    def _send(self, signer: Signer, method: str, args: dict[str, Any], gas_limit: int) -> Any:
        receipt = self._client._send_committed(
            signer, NAME, method, args, endorsers=(), timeout=None, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt).result

    # transactions
    def register_resource(
        self, signer: Signer, *, gas_limit: int = DATA_GAS_LIMIT, **fields: Any
    ) -> str:
        """Register a resource (a member of its provider signs); returns its code."""
        return str(self._send(signer, "register_resource", register_args(**fields), gas_limit))

    def update_resource(
        self, signer: Signer, *, gas_limit: int = DATA_GAS_LIMIT, **fields: Any
    ) -> int:
        """Replace a resource's record (same code and provider); returns the revision."""
        return int(self._send(signer, "update_resource", register_args(**fields), gas_limit))

    def retire_resource(
        self, signer: Signer, code: str, reason: str = "", *, gas_limit: int = DATA_GAS_LIMIT
    ) -> int:
        return int(self._send(signer, "retire_resource", retire_args(code, reason), gas_limit))

    def add_version(
        self, signer: Signer, code: str, *, gas_limit: int = DATA_GAS_LIMIT, **version: Any
    ) -> int:
        """Anchor a version (see :func:`version_args`); returns its number."""
        return int(self._send(signer, "add_version", version_args(code, **version), gas_limit))

    def wrap_key(
        self,
        signer: Signer,
        code: str,
        version: int,
        grantee: bytes | str,
        wrapped: bytes,
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> None:
        self._send(signer, "wrap_key", wrap_args(code, version, grantee, wrapped), gas_limit)

    def request_access(
        self, signer: Signer, code: str, purpose: str, *, gas_limit: int = DATA_GAS_LIMIT, **kw: Any
    ) -> dict[str, Any]:
        """Ask for access (see :func:`request_args`); ``{"request", "state", "grant"}``.
        An account that is not Ed25519 (SM2) sends its X25519 key along unless given."""
        if signer.suite.name != "ed25519" and "enc_key" not in kw:
            kw["enc_key"] = encryption_keypair(signer)[1]
        result: dict[str, Any] = self._send(
            signer, "request_access", request_args(code, purpose, **kw), gas_limit
        )
        return result

    def decide(
        self,
        signer: Signer,
        request: int,
        approve: bool,
        reason: str = "",
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._send(
            signer, "decide", decide_args(request, approve, reason), gas_limit
        )
        return result

    def revoke(
        self, signer: Signer, grant: int, reason: str, *, gas_limit: int = DATA_GAS_LIMIT
    ) -> None:
        self._send(signer, "revoke", revoke_args(grant, reason), gas_limit)

    def record_access(
        self,
        signer: Signer,
        grant: int,
        version: int,
        purpose: str | None = None,
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> int:
        """Record a download before asking the API for it; returns the access id."""
        return int(
            self._send(signer, "record_access", access_args(grant, version, purpose), gas_limit)
        )

    # data in and out (sdk/_transfer.py)
    def upload(
        self,
        signer: Signer,
        code: str,
        source: str | Path | IO[bytes],
        *,
        readers: Sequence[bytes] = (),
        subjects: Sequence[str | bytes] = (),
        chunk_size: int | None = None,
        progress: Progress | None = None,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> Uploaded:
        """Seal ``source`` here, upload its ciphertext and anchor it as ``code``'s next
        version (a member of the provider signs); see :mod:`._transfer`."""
        return self._io.upload(
            signer,
            code,
            source,
            readers=readers,
            subjects=subjects,
            chunk_size=chunk_size,
            progress=progress,
            gas_limit=gas_limit,
        )

    def download(
        self,
        signer: Signer,
        code: str,
        version: int,
        dest: str | Path | IO[bytes],
        *,
        grant: int,
        purpose: str | None = None,
        progress: Progress | None = None,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> Manifest:
        """Record the access (the chain checks ``grant``), stream, decrypt and verify the
        version into ``dest``; see :mod:`._transfer`."""
        return self._io.download(
            signer,
            code,
            version,
            dest,
            grant=grant,
            purpose=purpose,
            progress=progress,
            gas_limit=gas_limit,
        )

    def grant_keys(
        self,
        signer: Signer,
        code: str,
        version: int | None = None,
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> list[int]:
        """Wrap the version's data key for every active grantee (the provider signs)."""
        return self._io.grant_keys(signer, code, version, gas_limit=gas_limit)

    def verify(self, source: str | Path | IO[bytes], *, prove: bool = True) -> list[Anchor]:
        """Where the chain anchors this file, with the proof (empty: nowhere)."""
        return self._io.verify(source, prove=prove)

    # signed reads (RFC 9421: who may read what is the contract's can_read)
    def grants(self, signer: Signer, code: str, *, after: int = 0) -> list[dict[str, Any]]:
        """A resource's grants with their state now (its provider or an auditor)."""
        result: list[dict[str, Any]] = self._io.read(
            signer, f"{resource_path(code)}/grants", after=after, limit=MAX_PAGE
        )
        return result

    def requests(self, signer: Signer, code: str, *, after: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._io.read(
            signer, f"{resource_path(code)}/requests", after=after, limit=MAX_PAGE
        )
        return result

    def audit(self, signer: Signer, code: str, *, after: int = 0) -> list[dict[str, Any]]:
        """A resource's audit trail, oldest first (its provider or an auditor)."""
        result: list[dict[str, Any]] = self._io.read(
            signer, f"{resource_path(code)}/audit", after=after, limit=MAX_PAGE
        )
        return result

    def grant(self, signer: Signer, grant: int) -> dict[str, Any]:
        result: dict[str, Any] = self._io.read(signer, f"/v1/data/grants/{grant}")
        return result

    def request(self, signer: Signer, request: int) -> dict[str, Any]:
        result: dict[str, Any] = self._io.read(signer, f"/v1/data/requests/{request}")
        return result

    def accesses(self, signer: Signer, subject: str | bytes | None = None) -> list[dict[str, Any]]:
        """The citizen's view: every access to records about ``subject`` (the signer's own
        did:key by default), oldest first."""
        return self._io.accesses(signer, subject)

    # private data collections: values on the listed organisations' nodes, hashes on chain
    def define_collection(
        self,
        signer: Signer,
        name: str,
        orgs: Sequence[str],
        *,
        block_to_live: int = 0,
        member_only_read: bool = True,
        required_peers: int = 0,
        max_peers: int = 0,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> str:
        """Define a private data collection (a member of one of ``orgs`` signs); its name.
        Its values are purged ``block_to_live`` blocks after their ``put_private`` (0:
        kept). The node that takes a value pushes it to at most ``max_peers`` peers of the
        listed organisations (0: all) and answers only once ``required_peers`` of them
        acknowledged storing it (Fabric's ``maxPeerCount`` and ``requiredPeerCount``)."""
        args = collection_args(
            name,
            orgs,
            block_to_live=block_to_live,
            member_only_read=member_only_read,
            required_peers=required_peers,
            max_peers=max_peers,
        )
        return str(self._send(signer, "define_collection", args, gas_limit))

    def put_private(
        self,
        signer: Signer,
        collection: str,
        key: str,
        value: bytes,
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> dict[str, Any]:
        """Hand ``value`` to the client's node (a node of a listed organisation; signed
        request), which stores it and pushes it to the listed organisations' nodes only; then
        anchor its hash on chain (``put_private``). Returns ``{"version", "purge_height",
        "hash", "pushed_to", "acks"}``. The value itself never enters a transaction.

        If fewer than the collection's ``required_peers`` acknowledged the value, the node
        answers ``dissemination_failed`` (:class:`~citychain.errors.Unavailable`): this
        raises it and sends no transaction (the value is not anchored; try again later)."""
        if type(value) is not bytes or len(value) > pv.MAX_ITEM_BYTES:
            raise bad(f"a private value is bytes, at most {pv.MAX_ITEM_BYTES}")
        r = self._client._signed(
            signer, "PUT", _item_path(collection, key), content=value, expect=(200, 201)
        )
        taken = r.json()
        digest = bytes.fromhex(taken["hash"])
        args = {"collection": collection, "key": key, "hash": digest, "size": len(value)}
        result: dict[str, Any] = self._send(signer, "put_private", args, gas_limit)
        return {**result, **_taken(taken, digest)}

    def get_private(
        self, signer: Signer, collection: str, key: str, *, version: int | None = None
    ) -> bytes:
        """The value (the node checked it against the hash on chain): ``not_in_collection``
        for a signer outside the collection, ``private_purged`` once purged,
        ``private_missing`` while it has not reached this node."""
        params = None if version is None else {"version": str(_nat(version, "version", low=1))}
        return bytes(
            self._client._signed(signer, "GET", _item_path(collection, key), params=params).content
        )

    def collection(self, name: str) -> dict[str, Any]:
        """A collection's definition (public)."""
        result: dict[str, Any] = self._client.query(
            NAME, "collection", name=pv.check_collection_name(name, "name")
        )
        return result

    def private_item(self, collection: str, key: str, version: int | None = None) -> dict[str, Any]:
        """An item's metadata (hash, size, height, purge_height, purged): never its value."""
        args: dict[str, Any] = {"collection": collection, "key": key}
        if version is not None:
            args["version"] = version
        result: dict[str, Any] = self._client.query(NAME, "private_item", **args)
        return result

    # public queries
    def resource(self, code: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.query(NAME, "resource", code=check_code(code))
        return result

    def history(self, code: str, *, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._client.query(
            NAME, "history", code=check_code(code), after=after, limit=limit
        )
        return result

    def versions(self, code: str, *, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._client.query(
            NAME, "versions", code=check_code(code), after=after, limit=limit
        )
        return result

    def versions_all(self, code: str) -> Iterator[dict[str, Any]]:
        """Every version of ``code``, page after page."""
        after = 0
        while True:
            page = self.versions(code, after=after, limit=MAX_PAGE)
            yield from page
            if len(page) < MAX_PAGE:
                return
            after = int(page[-1]["version"])

    def search(
        self,
        *,
        provider: str | None = None,
        theme: str | None = None,
        keyword: str | None = None,
        sharing: str | None = None,
        after: str | None = None,
        limit: int = 50,
        retired: bool = False,
    ) -> dict[str, Any]:
        """One page: ``{"resources": [...], "next": code or None}`` (``retired``: with no
        filter, retired resources too)."""
        args = _search_args(provider, theme, keyword, sharing, after, limit, retired)
        result: dict[str, Any] = self._client.query(NAME, "search", **args)
        return result

    def search_all(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching resource, page after page."""
        after = None
        while True:
            page = self.search(after=after, limit=MAX_PAGE, **filters)
            yield from page["resources"]
            after = page["next"]
            if after is None:
                return

    def catalogue(self, **export: Any) -> dict[str, Any]:
        """The whole live catalogue as DCAT 3 JSON-LD (:func:`export_catalogue`'s options)."""
        resources = [
            catalogue_entry(view, list(self.versions_all(view["code"])))
            for view in self.search_all()
        ]
        return export_catalogue(resources, **export)

    def can_read(self, reader: bytes, query: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Whether the holder of public key ``reader`` may read private query ``query``."""
        result: dict[str, Any] = self._client.query(
            NAME, "can_read", reader=reader, query=query, args=dict(args)
        )
        return result


class AsyncData:
    """``client.data`` on an :class:`~citychain.sdk.AsyncClient`: :class:`Data`, awaited."""

    def __init__(self, client: AsyncServiceClient) -> None:
        self._client = client

    async def _send(self, signer: Signer, method: str, args: dict[str, Any], gas_limit: int) -> Any:
        receipt = await self._client._send_committed(
            signer, NAME, method, args, endorsers=(), timeout=None, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt).result

    async def register_resource(
        self, signer: Signer, *, gas_limit: int = DATA_GAS_LIMIT, **fields: Any
    ) -> str:
        return str(
            await self._send(signer, "register_resource", register_args(**fields), gas_limit)
        )

    async def update_resource(
        self, signer: Signer, *, gas_limit: int = DATA_GAS_LIMIT, **fields: Any
    ) -> int:
        return int(await self._send(signer, "update_resource", register_args(**fields), gas_limit))

    async def retire_resource(
        self, signer: Signer, code: str, reason: str = "", *, gas_limit: int = DATA_GAS_LIMIT
    ) -> int:
        return int(
            await self._send(signer, "retire_resource", retire_args(code, reason), gas_limit)
        )

    async def add_version(
        self, signer: Signer, code: str, *, gas_limit: int = DATA_GAS_LIMIT, **version: Any
    ) -> int:
        return int(
            await self._send(signer, "add_version", version_args(code, **version), gas_limit)
        )

    async def wrap_key(
        self,
        signer: Signer,
        code: str,
        version: int,
        grantee: bytes | str,
        wrapped: bytes,
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> None:
        await self._send(signer, "wrap_key", wrap_args(code, version, grantee, wrapped), gas_limit)

    async def request_access(
        self, signer: Signer, code: str, purpose: str, *, gas_limit: int = DATA_GAS_LIMIT, **kw: Any
    ) -> dict[str, Any]:
        if signer.suite.name != "ed25519" and "enc_key" not in kw:
            kw["enc_key"] = encryption_keypair(signer)[1]
        result: dict[str, Any] = await self._send(
            signer, "request_access", request_args(code, purpose, **kw), gas_limit
        )
        return result

    async def decide(
        self,
        signer: Signer,
        request: int,
        approve: bool,
        reason: str = "",
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(
            signer, "decide", decide_args(request, approve, reason), gas_limit
        )
        return result

    async def revoke(
        self, signer: Signer, grant: int, reason: str, *, gas_limit: int = DATA_GAS_LIMIT
    ) -> None:
        await self._send(signer, "revoke", revoke_args(grant, reason), gas_limit)

    async def record_access(
        self,
        signer: Signer,
        grant: int,
        version: int,
        purpose: str | None = None,
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> int:
        return int(
            await self._send(
                signer, "record_access", access_args(grant, version, purpose), gas_limit
            )
        )

    # signed reads (RFC 9421), as :class:`Data`'s. Files (``upload``/``download``) stay with
    # the blocking client: their disk and sealing work would hold the event loop.
    async def _read(self, signer: Signer, path: str, **params: Any) -> Any:
        query = {k: str(v) for k, v in params.items() if v is not None}
        r = await self._client._signed(signer, "GET", path, params=query or None)
        return json_to_codec(r.json()["result"])

    async def grants(self, signer: Signer, code: str, *, after: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._read(
            signer, f"{resource_path(code)}/grants", after=after, limit=MAX_PAGE
        )
        return result

    async def requests(self, signer: Signer, code: str, *, after: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._read(
            signer, f"{resource_path(code)}/requests", after=after, limit=MAX_PAGE
        )
        return result

    async def audit(self, signer: Signer, code: str, *, after: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._read(
            signer, f"{resource_path(code)}/audit", after=after, limit=MAX_PAGE
        )
        return result

    async def grant(self, signer: Signer, grant: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._read(signer, f"/v1/data/grants/{grant}")
        return result

    async def request(self, signer: Signer, request: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._read(signer, f"/v1/data/requests/{request}")
        return result

    async def accesses(
        self, signer: Signer, subject: str | bytes | None = None
    ) -> list[dict[str, Any]]:
        tag, after = subject_of(signer, subject), 0
        out: list[dict[str, Any]] = []
        while True:
            page = await self._read(signer, accesses_path(tag), after=after, limit=200)
            out.extend(page)
            if len(page) < 200:
                return out
            after = int(page[-1]["seq"])

    # private data collections, as :class:`Data`'s
    async def define_collection(
        self,
        signer: Signer,
        name: str,
        orgs: Sequence[str],
        *,
        block_to_live: int = 0,
        member_only_read: bool = True,
        required_peers: int = 0,
        max_peers: int = 0,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> str:
        args = collection_args(
            name,
            orgs,
            block_to_live=block_to_live,
            member_only_read=member_only_read,
            required_peers=required_peers,
            max_peers=max_peers,
        )
        return str(await self._send(signer, "define_collection", args, gas_limit))

    async def put_private(
        self,
        signer: Signer,
        collection: str,
        key: str,
        value: bytes,
        *,
        gas_limit: int = DATA_GAS_LIMIT,
    ) -> dict[str, Any]:
        if type(value) is not bytes or len(value) > pv.MAX_ITEM_BYTES:
            raise bad(f"a private value is bytes, at most {pv.MAX_ITEM_BYTES}")
        r = await self._client._signed(
            signer, "PUT", _item_path(collection, key), content=value, expect=(200, 201)
        )
        taken = r.json()
        digest = bytes.fromhex(taken["hash"])
        args = {"collection": collection, "key": key, "hash": digest, "size": len(value)}
        result: dict[str, Any] = await self._send(signer, "put_private", args, gas_limit)
        return {**result, **_taken(taken, digest)}

    async def get_private(
        self, signer: Signer, collection: str, key: str, *, version: int | None = None
    ) -> bytes:
        params = None if version is None else {"version": str(_nat(version, "version", low=1))}
        r = await self._client._signed(signer, "GET", _item_path(collection, key), params=params)
        return bytes(r.content)

    async def collection(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._client.query(
            NAME, "collection", name=pv.check_collection_name(name, "name")
        )
        return result

    async def private_item(
        self, collection: str, key: str, version: int | None = None
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"collection": collection, "key": key}
        if version is not None:
            args["version"] = version
        result: dict[str, Any] = await self._client.query(NAME, "private_item", **args)
        return result

    async def resource(self, code: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._client.query(NAME, "resource", code=check_code(code))
        return result

    async def history(self, code: str, *, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._client.query(
            NAME, "history", code=check_code(code), after=after, limit=limit
        )
        return result

    async def versions(self, code: str, *, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._client.query(
            NAME, "versions", code=check_code(code), after=after, limit=limit
        )
        return result

    async def search(
        self,
        *,
        provider: str | None = None,
        theme: str | None = None,
        keyword: str | None = None,
        sharing: str | None = None,
        after: str | None = None,
        limit: int = 50,
        retired: bool = False,
    ) -> dict[str, Any]:
        args = _search_args(provider, theme, keyword, sharing, after, limit, retired)
        result: dict[str, Any] = await self._client.query(NAME, "search", **args)
        return result

    async def can_read(self, reader: bytes, query: str, args: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._client.query(
            NAME, "can_read", reader=reader, query=query, args=dict(args)
        )
        return result


def bind(client: Any) -> Data:
    """The helper a :class:`~citychain.sdk.Client` carries as ``client.data``."""
    return Data(client)


def bind_async(client: Any) -> AsyncData:
    """The helper an :class:`~citychain.sdk.AsyncClient` carries as ``client.data``."""
    return AsyncData(client)


__all__ = [
    "DATA_GAS_LIMIT",
    "AsyncData",
    "Data",
    "access_args",
    "bind",
    "bind_async",
    "collection_args",
    "decide_args",
    "export_catalogue",
    "import_catalogue",
    "register_args",
    "request_args",
    "retire_args",
    "revoke_args",
    "subject_tag",
    "version_args",
    "wrap_args",
]
