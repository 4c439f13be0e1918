"""``client.identity.dids``: create, change and resolve ``did:citychain`` DIDs from the SDK.

Writes are ``identity`` transactions that wait for their commit and raise
:class:`~citychain.errors.ExecutionFailure` with the receipt's code (``not_controller``,
``key_rotated``, ``did_deactivated``...) when the contract refused them.

Two ways to read:

* :meth:`Dids.resolve` asks the node's ``identity.resolve`` query: the document and its
  metadata as the node says (not proven).
* :meth:`Dids.resolve_proven` reads the DID's two state records, its head and the version,
  each with its ICS-23 proof against a header that 2/3+ of the validators signed (through
  :meth:`~citychain.sdk.Client.get_state`, at one height), and rebuilds the document from the
  proven record with the same codec the contract uses. Nothing the node says is taken on
  trust but the validator set the client was given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from citychain.crypto import Signer
from citychain.errors import ErrorCode, NotFound
from citychain.sdk import _parse
from citychain.sdk._services import AsyncServiceClient, ServiceClient, committed
from citychain.sdk._types import VerifiedValue
from citychain.services.identity.shapes import (
    NAME,
    DidHead,
    DidVersion,
    did_head_key,
    did_version_key,
)
from citychain.services.identity.shapes._document import resolution
from citychain.types import Receipt

#: Gas for a DID transaction unless told otherwise (documents are checked key by key).
DID_GAS_LIMIT = 2_000_000


class _Proving(ServiceClient, Protocol):
    def get_state(
        self, key: bytes, height: int | None = None, *, verify: bool = True
    ) -> VerifiedValue: ...


class _AsyncProving(AsyncServiceClient, Protocol):
    async def get_state(
        self, key: bytes, height: int | None = None, *, verify: bool = True
    ) -> VerifiedValue: ...


@dataclass(frozen=True, slots=True)
class ProvenDid:
    """A DID document rebuilt from state records proven at ``height``."""

    did: str
    document: dict[str, Any]
    metadata: dict[str, Any]
    height: int
    #: True when both records' proofs and the header's signatures were checked.
    verified: bool

    @property
    def deactivated(self) -> bool:
        return bool(self.metadata.get("deactivated"))


def _version_number(head: DidHead, did: str, version_id: int | None) -> int:
    if version_id is None:
        return head.versions
    if type(version_id) is not int or not 0 < version_id <= head.versions:
        raise NotFound(
            f"{did} has versions 1 to {head.versions}, not {version_id}", ErrorCode.DID_NOT_FOUND
        )
    return version_id


def _proven(
    did: str, head: DidHead, v: DidVersion, nxt: DidVersion | None, h: VerifiedValue, verified: bool
) -> ProvenDid:
    found = resolution(did, head, v, nxt)
    return ProvenDid(did, found["didDocument"], found["didDocumentMetadata"], h.height, verified)


def _head(value: VerifiedValue, did: str) -> DidHead:
    if not value.exists:
        raise NotFound(f"{did} is not on this chain (proven absent)", ErrorCode.DID_NOT_FOUND)
    return _parse.parsed("DID head", lambda: DidHead.from_value(value.decode()))


def _version(value: VerifiedValue, number: int) -> DidVersion:
    return _parse.parsed("DID version", lambda: DidVersion.from_value(number, value.decode()))


class Dids:
    """``client.identity.dids`` on a blocking :class:`~citychain.sdk.Client`."""

    def __init__(self, client: _Proving) -> None:
        self._client = client

    def _send(
        self,
        signer: Signer,
        method: str,
        args: Mapping[str, Any],
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        receipt = self._client._send_committed(
            signer, NAME, method, args, endorsers=endorsers, timeout=timeout, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt)

    def create(
        self,
        signer: Signer,
        document: Mapping[str, Any],
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = DID_GAS_LIMIT,
    ) -> str:
        """Create a DID with ``document`` (relative ids, no ``id``); the new DID."""
        r = self._send(
            signer, "create_did", {"document": dict(document)}, endorsers, timeout, gas_limit
        )
        return _parse.parsed("identity.create_did result", lambda: _parse.text(r.result))

    def update(
        self,
        signer: Signer,
        did: str,
        document: Mapping[str, Any],
        *,
        version_id: int | None = None,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = DID_GAS_LIMIT,
    ) -> Receipt:
        """Replace ``did``'s document (``version_id``: refuse unless it is still the latest)."""
        args: dict[str, Any] = {"did": did, "document": dict(document)}
        if version_id is not None:
            args["version_id"] = version_id
        return self._send(signer, "update_did", args, endorsers, timeout, gas_limit)

    def deactivate(
        self,
        signer: Signer,
        did: str,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = DID_GAS_LIMIT,
    ) -> Receipt:
        """Deactivate ``did`` for good."""
        return self._send(signer, "deactivate_did", {"did": did}, endorsers, timeout, gas_limit)

    def resolve(
        self, did: str, *, version_id: int | None = None, version_time: str | None = None
    ) -> dict[str, Any]:
        """``{"didDocument", "didDocumentMetadata"}`` as the node resolves it (not proven)."""
        args: dict[str, Any] = {"did": did}
        if version_id is not None:
            args["version_id"] = version_id
        if version_time is not None:
            args["version_time"] = version_time
        raw = self._client.query(NAME, "resolve", **args)
        return _parse.parsed("identity.resolve", lambda: _parse.obj(raw))

    def history(self, did: str) -> list[dict[str, Any]]:
        raw = self._client.query(NAME, "history", did=did)
        return _parse.parsed("identity.history", lambda: [_parse.obj(x) for x in raw])

    def resolve_proven(self, did: str, *, version_id: int | None = None) -> ProvenDid:
        """The document rebuilt from proven state (see the module docstring)."""
        h = self._client.get_state(did_head_key(did))
        head = _head(h, did)
        n = _version_number(head, did, version_id)
        v = _version(self._client.get_state(did_version_key(did, n), height=h.height), n)
        nxt = None
        if n < head.versions:
            nv = self._client.get_state(did_version_key(did, n + 1), height=h.height)
            nxt = _version(nv, n + 1)
        return _proven(did, head, v, nxt, h, h.verified)


class AsyncDids:
    """``client.identity.dids`` on an :class:`~citychain.sdk.AsyncClient`, awaited."""

    def __init__(self, client: _AsyncProving) -> None:
        self._client = client

    async def _send(
        self,
        signer: Signer,
        method: str,
        args: Mapping[str, Any],
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        receipt = await self._client._send_committed(
            signer, NAME, method, args, endorsers=endorsers, timeout=timeout, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt)

    async def create(
        self,
        signer: Signer,
        document: Mapping[str, Any],
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = DID_GAS_LIMIT,
    ) -> str:
        r = await self._send(
            signer, "create_did", {"document": dict(document)}, endorsers, timeout, gas_limit
        )
        return _parse.parsed("identity.create_did result", lambda: _parse.text(r.result))

    async def resolve(self, did: str, *, version_id: int | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"did": did}
        if version_id is not None:
            args["version_id"] = version_id
        raw = await self._client.query(NAME, "resolve", **args)
        return _parse.parsed("identity.resolve", lambda: _parse.obj(raw))

    async def resolve_proven(self, did: str, *, version_id: int | None = None) -> ProvenDid:
        h = await self._client.get_state(did_head_key(did))
        head = _head(h, did)
        n = _version_number(head, did, version_id)
        v = _version(await self._client.get_state(did_version_key(did, n), height=h.height), n)
        nxt = None
        if n < head.versions:
            nv = await self._client.get_state(did_version_key(did, n + 1), height=h.height)
            nxt = _version(nv, n + 1)
        return _proven(did, head, v, nxt, h, h.verified)
