"""Status lists on chain, from the issuer's side: register a list, change its entries, and
publish the ``BitstringStatusListCredential`` that verifiers outside the chain read.

The chain keeps the bits; only the issuer can sign the credential that carries them. So a
change that should be visible outside the chain goes as one transaction holding both: the
entries to set and clear and the credential after the change, built here from the bits the
chain has now with the change applied, and signed with the issuer's key
(:meth:`StatusLists.change` with ``publish=``). The contract keeps the credential only if its
bits are the list's after the change, so a published credential is never ahead of or behind
the chain; one published without a change (:meth:`StatusLists.publish`) must show the bits
the list has now. Any node then serves it as the DID URL ``<issuer DID>/status/<name>``
(``GET /1.0/identifiers/<list id>``), and says so when the list has changed since (404: a
verifier must not rely on a stale list).

The credential is JSON text in the transaction (compact, UTF-8): the chain never re-encodes
it, so what a verifier fetches is what the issuer signed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from citychain.crypto import Signer
from citychain.sdk._services import AsyncServiceClient, ServiceClient, committed
from citychain.services.identity.sdk._di import EDDSA_JCS_2022
from citychain.services.identity.sdk._status import StatusList, status_list_credential
from citychain.services.identity.sdk._vc import issue_credential
from citychain.services.identity.shapes import MIN_STATUS_LIST_BITS, NAME, split_status_list_id

#: Gas for a status-list transaction (one with a published credential writes its bytes).
STATUS_GAS_LIMIT = 5_000_000


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
    status = StatusList(int(head["size"]), bits)
    for index in to_set:
        status.set(index, True)
    for index in to_clear:
        status.set(index, False)
    issuer, _ = split_status_list_id(list_id)
    unsigned = status_list_credential(list_id, issuer, status, str(head["purpose"]))
    signed = issue_credential(unsigned, key, verification_method, cryptosuite=cryptosuite)
    return json.dumps(signed, separators=(",", ":"), ensure_ascii=False).encode()


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
        cryptosuite: str = EDDSA_JCS_2022,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        """Set and clear entries of ``list_id``; the change's number. With ``publish`` (the
        issuer's verification method, whose private key is ``key``, ``signer`` by default),
        the same transaction publishes the list's credential after the change."""
        args: dict[str, Any] = {"list_id": list_id, "set": list(set), "clear": list(clear)}
        if publish is not None:
            head = self._client.query(NAME, "status_list", list_id=list_id)
            bits = self._client.query(NAME, "status_bitstring", list_id=list_id)
            args["credential"] = _signed_list(
                list_id, head, bytes(bits), key or signer, publish, cryptosuite,
                args["set"], args["clear"],
            )  # fmt: skip
        return int(self._send(signer, "set_status", args, gas_limit))

    def publish(
        self,
        signer: Signer,
        list_id: str,
        verification_method: str,
        *,
        key: Signer | None = None,
        cryptosuite: str = EDDSA_JCS_2022,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        """Publish the list's credential as its bits are now; the change number it shows."""
        head = self._client.query(NAME, "status_list", list_id=list_id)
        bits = self._client.query(NAME, "status_bitstring", list_id=list_id)
        raw = _signed_list(
            list_id, head, bytes(bits), key or signer, verification_method, cryptosuite
        )
        args = {"list_id": list_id, "credential": raw}
        return int(self._send(signer, "publish_status_credential", args, gas_limit))

    def published(self, list_id: str) -> dict[str, Any]:
        """The list's published credential (``credential``, a dict), the change it shows,
        and ``current`` (false once the list has changed since)."""
        return _published(self._client.query(NAME, "status_credential", list_id=list_id))


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
        cryptosuite: str = EDDSA_JCS_2022,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        args: dict[str, Any] = {"list_id": list_id, "set": list(set), "clear": list(clear)}
        if publish is not None:
            head = await self._client.query(NAME, "status_list", list_id=list_id)
            bits = await self._client.query(NAME, "status_bitstring", list_id=list_id)
            args["credential"] = _signed_list(
                list_id, head, bytes(bits), key or signer, publish, cryptosuite,
                args["set"], args["clear"],
            )  # fmt: skip
        return int(await self._send(signer, "set_status", args, gas_limit))

    async def publish(
        self,
        signer: Signer,
        list_id: str,
        verification_method: str,
        *,
        key: Signer | None = None,
        cryptosuite: str = EDDSA_JCS_2022,
        gas_limit: int = STATUS_GAS_LIMIT,
    ) -> int:
        head = await self._client.query(NAME, "status_list", list_id=list_id)
        bits = await self._client.query(NAME, "status_bitstring", list_id=list_id)
        raw = _signed_list(
            list_id, head, bytes(bits), key or signer, verification_method, cryptosuite
        )
        args = {"list_id": list_id, "credential": raw}
        return int(await self._send(signer, "publish_status_credential", args, gas_limit))

    async def published(self, list_id: str) -> dict[str, Any]:
        answer = await self._client.query(NAME, "status_credential", list_id=list_id)
        return _published(answer)
