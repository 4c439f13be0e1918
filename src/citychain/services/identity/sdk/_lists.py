"""Status lists on chain, from the issuer's side: register a list, change its entries, and
publish the signed forms that verifiers outside the chain read: the
``BitstringStatusListCredential`` (VC 2.0 verifiers) and the Status List Token (SD-JWT VC
verifiers, IETF Token Status List).

The chain keeps the bits; only the issuer can sign what carries them. So a change that should
be visible outside the chain goes as one transaction holding all of it: the entries to set
and clear, and the credential and the token after the change, built here from the bits the
chain has now with the change applied, and signed with the issuer's key
(:meth:`StatusLists.change` with ``publish=``). The contract keeps them only if their bits
are the list's after the change, so a published list is never ahead of or behind the chain;
one published without a change (:meth:`StatusLists.publish`) must show the bits the list has
now. Any node then serves them as the DID URL ``<issuer DID>/status/<name>`` (``GET
/1.0/identifiers/<list id>``; ``Accept: application/statuslist+jwt`` for the token), and says
so when the list has changed since (404: a verifier must not rely on a stale list).

The credential is JSON text in the transaction (compact, UTF-8) and the token its compact
JWS: the chain never re-encodes either, so what a verifier fetches is what the issuer signed.
The token's ``iat`` is the issuer's clock (this side is no state machine), or ``iat=``.

The blocking and the async classes share everything but their I/O: :func:`_publications`
builds what each transaction publishes from the list's head and bits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from citychain.crypto import Signer
from citychain.errors import ErrorCode, InvalidInput
from citychain.sdk._services import AsyncServiceClient, ServiceClient, committed
from citychain.services.identity.sdk._di import EDDSA_JCS_2022
from citychain.services.identity.sdk._status import StatusList, status_list_credential
from citychain.services.identity.sdk._tokens import DEFAULT_TOKEN_TTL, status_list_token
from citychain.services.identity.sdk._vc import issue_credential
from citychain.services.identity.shapes import (
    MAX_STATUS_CREDENTIAL_BYTES,
    MIN_STATUS_LIST_BITS,
    NAME,
    split_status_list_id,
)

#: Gas for a status-list transaction (one with a published credential writes its bytes).
STATUS_GAS_LIMIT = 5_000_000
#: What :meth:`StatusLists.change` and :meth:`StatusLists.publish` publish by default: the
#: list's status list credential and its Status List Token (the contract's argument names).
FORMATS = ("credential", "token")


def _signed_list(
    list_id: str,
    head: Mapping[str, Any],
    bits: bytes,
    key: Signer,
    verification_method: str,
    cryptosuite: str,
    to_set: Iterable[int] = (),
    to_clear: Iterable[int] = (),
) -> bytes:
    """The list's status list credential with ``bits`` changed as given, signed: JSON bytes."""
    how = _Signing(key, verification_method, ("credential",), cryptosuite, None, None)
    raw: bytes = _publications(list_id, head, bits, how, to_set, to_clear)[0]["credential"]
    return raw


def _changed(
    head: Mapping[str, Any], bits: bytes, to_set: Iterable[int], to_clear: Iterable[int]
) -> StatusList:
    status = StatusList(int(head["size"]), bits)
    for index in to_set:
        status.set(index, True)
    for index in to_clear:
        status.set(index, False)
    return status


@dataclass(frozen=True, slots=True)
class _Signing:
    """How the issuer signs what a transaction publishes."""

    key: Signer
    verification_method: str
    formats: Collection[str]
    cryptosuite: str
    iat: int | None
    ttl: int | None


def _publications(
    list_id: str,
    head: Mapping[str, Any],
    bits: bytes,
    how: _Signing,
    to_set: Iterable[int] = (),
    to_clear: Iterable[int] = (),
) -> list[dict[str, Any]]:
    """The ``credential`` and/or ``token`` arguments publishing the list after the change,
    one dict a transaction: both forms together past ``MAX_STATUS_CREDENTIAL_BYTES`` (a dense
    list) would not fit one transaction, so the token follows in a second. Until it does,
    the node answers that the token is stale, never a stale list."""
    formats = how.formats
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InvalidInput(
            f"publish as {', '.join(FORMATS)} or both, not {unknown or 'nothing'}",
            ErrorCode.BAD_ARGUMENTS,
        )
    status = _changed(head, bits, to_set, to_clear)
    issuer, _ = split_status_list_id(list_id)
    purpose = str(head["purpose"])
    out: dict[str, Any] = {}
    if "credential" in formats:
        unsigned = status_list_credential(list_id, issuer, status, purpose)
        signed = issue_credential(
            unsigned, how.key, how.verification_method, cryptosuite=how.cryptosuite
        )
        out["credential"] = json.dumps(signed, separators=(",", ":"), ensure_ascii=False).encode()
    if "token" in formats:
        iat = int(time.time()) if how.iat is None else how.iat
        out["token"] = status_list_token(
            list_id, status, purpose, how.key, how.verification_method, iat=iat, ttl=how.ttl
        )
    if len(out) < 2 or sum(map(len, out.values())) <= MAX_STATUS_CREDENTIAL_BYTES:
        return [out]
    return [{"credential": out["credential"]}, {"token": out["token"]}]


def _published(answer: Mapping[str, Any]) -> dict[str, Any]:
    return {**answer, "credential": json.loads(bytes(answer["credential"]))}


class StatusLists:
    """``client.identity.status_lists``: an issuer's status lists on chain (see the module)."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    def _send(self, signer: Signer, method: str, args: Mapping[str, Any], gas_limit: int) -> Any:
        receipt = self._client._send_committed(
            signer, NAME, method, args, endorsers=(), timeout=None, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt).result

    def _list(self, list_id: str) -> tuple[dict[str, Any], bytes]:
        head = self._client.query(NAME, "status_list", list_id=list_id)
        return head, bytes(self._client.query(NAME, "status_bitstring", list_id=list_id))

    def register(
        self,
        signer: Signer,
        issuer: str,
        name: str,
        purpose: str = "revocation",
        *,
        size: int = MIN_STATUS_LIST_BITS,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> str:
        """Register list ``name`` of ``issuer`` (a DID ``signer`` controls); its id."""
        args = {"issuer": issuer, "name": name, "purpose": purpose, "size": size}
        return str(self._send(signer, "register_status_list", args, gas_limit))

    def change(
        self,
        signer: Signer,
        list_id: str,
        *,
        set: Iterable[int] = (),
        clear: Iterable[int] = (),
        publish: str | None = None,
        key: Signer | None = None,
        formats: Collection[str] = FORMATS,
        cryptosuite: str = EDDSA_JCS_2022,
        iat: int | None = None,
        ttl: int | None = DEFAULT_TOKEN_TTL,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        """Set and clear entries of ``list_id``; the change's number. With ``publish`` (the
        issuer's verification method, whose private key is ``key``, ``signer`` by default),
        the same transaction publishes the list after the change in ``formats``: its status
        list credential (``cryptosuite``) and its Status List Token (``iat``, ``ttl``); a
        dense list's token too large to share that transaction follows in a second one."""
        args: dict[str, Any] = {"list_id": list_id, "set": list(set), "clear": list(clear)}
        parts: list[dict[str, Any]] = [{}]
        if publish is not None:
            how = _Signing(key or signer, publish, formats, cryptosuite, iat, ttl)
            parts = _publications(list_id, *self._list(list_id), how, args["set"], args["clear"])
        seq = int(self._send(signer, "set_status", args | parts[0], gas_limit))
        for part in parts[1:]:
            self._send(signer, "publish_status_credential", {"list_id": list_id, **part}, gas_limit)
        return seq

    def publish(
        self,
        signer: Signer,
        list_id: str,
        verification_method: str,
        *,
        key: Signer | None = None,
        formats: Collection[str] = FORMATS,
        cryptosuite: str = EDDSA_JCS_2022,
        iat: int | None = None,
        ttl: int | None = DEFAULT_TOKEN_TTL,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        """Publish the list as its bits are now, in ``formats`` (a dense list's two forms in
        two transactions); the change number shown."""
        how = _Signing(key or signer, verification_method, formats, cryptosuite, iat, ttl)
        changes = 0
        for part in _publications(list_id, *self._list(list_id), how):
            args = {"list_id": list_id, **part}
            changes = int(self._send(signer, "publish_status_credential", args, gas_limit))
        return changes

    def published(self, list_id: str) -> dict[str, Any]:
        """The list's published credential (``credential``, a dict), the change it shows,
        and ``current`` (false once the list has changed since)."""
        return _published(self._client.query(NAME, "status_credential", list_id=list_id))

    def published_token(self, list_id: str) -> dict[str, Any]:
        """The list's published Status List Token (``token``), the change it shows, and
        ``current``."""
        answer: dict[str, Any] = self._client.query(NAME, "status_token", list_id=list_id)
        return answer


class AsyncStatusLists:
    """:class:`StatusLists` on an :class:`~citychain.sdk.AsyncClient`, awaited."""

    def __init__(self, client: AsyncServiceClient) -> None:
        self._client = client

    async def _send(
        self, signer: Signer, method: str, args: Mapping[str, Any], gas_limit: int
    ) -> Any:
        receipt = await self._client._send_committed(
            signer, NAME, method, args, endorsers=(), timeout=None, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt).result

    async def _list(self, list_id: str) -> tuple[dict[str, Any], bytes]:
        head = await self._client.query(NAME, "status_list", list_id=list_id)
        return head, bytes(await self._client.query(NAME, "status_bitstring", list_id=list_id))

    async def register(
        self,
        signer: Signer,
        issuer: str,
        name: str,
        purpose: str = "revocation",
        *,
        size: int = MIN_STATUS_LIST_BITS,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> str:
        args = {"issuer": issuer, "name": name, "purpose": purpose, "size": size}
        return str(await self._send(signer, "register_status_list", args, gas_limit))

    async def change(
        self,
        signer: Signer,
        list_id: str,
        *,
        set: Iterable[int] = (),
        clear: Iterable[int] = (),
        publish: str | None = None,
        key: Signer | None = None,
        formats: Collection[str] = FORMATS,
        cryptosuite: str = EDDSA_JCS_2022,
        iat: int | None = None,
        ttl: int | None = DEFAULT_TOKEN_TTL,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        args: dict[str, Any] = {"list_id": list_id, "set": list(set), "clear": list(clear)}
        parts: list[dict[str, Any]] = [{}]
        if publish is not None:
            how = _Signing(key or signer, publish, formats, cryptosuite, iat, ttl)
            head, bits = await self._list(list_id)
            parts = _publications(list_id, head, bits, how, args["set"], args["clear"])
        seq = int(await self._send(signer, "set_status", args | parts[0], gas_limit))
        for part in parts[1:]:
            args = {"list_id": list_id, **part}
            await self._send(signer, "publish_status_credential", args, gas_limit)
        return seq

    async def publish(
        self,
        signer: Signer,
        list_id: str,
        verification_method: str,
        *,
        key: Signer | None = None,
        formats: Collection[str] = FORMATS,
        cryptosuite: str = EDDSA_JCS_2022,
        iat: int | None = None,
        ttl: int | None = DEFAULT_TOKEN_TTL,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        how = _Signing(key or signer, verification_method, formats, cryptosuite, iat, ttl)
        changes = 0
        for part in _publications(list_id, *await self._list(list_id), how):
            args = {"list_id": list_id, **part}
            changes = int(await self._send(signer, "publish_status_credential", args, gas_limit))
        return changes

    async def published(self, list_id: str) -> dict[str, Any]:
        answer = await self._client.query(NAME, "status_credential", list_id=list_id)
        return _published(answer)

    async def published_token(self, list_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._client.query(NAME, "status_token", list_id=list_id)
        return answer
