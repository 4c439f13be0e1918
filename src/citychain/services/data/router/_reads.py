"""What the data routes ask the node, and who may see the answer.

Theory of operation
-------------------
Routes do not decide. :class:`DataReads` is the one place a route's question becomes contract
queries, on the node's latest committed state:

* a *public* read (the catalogue, a resource, its history and versions, a hash) is a query;
* a *private* read (grants, requests, audit trails, the citizen's view, a wrapped key) comes
  with the RFC 9421 signer (:class:`~citychain.api._httpsig.SignedBy`): the contract's
  ``can_read`` says whether that reader may see that query's answer, and why not; only then
  does the private query run, with the reader as its caller. The contract, not the API, keeps
  the rules (a member of the provider, an auditor, the grantee, the citizen's own did:key);
* a *download* needs an access the chain recorded (``record_access``, which checks the grant):
  by this signer, of this resource and version, no older than :data:`ACCESS_WINDOW_MS` of block
  time, under a grant still active now. So the grant is checked by the chain at every download,
  and the download is in the audit trail before a byte leaves the node;
* an *upload* (a chunk, a manifest) is taken only from a member in good standing, so a stranger
  cannot fill the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citychain.api._httpsig import SignedBy, refuse
from citychain.api.service import NodeService
from citychain.errors import ErrorCode, InvalidInput
from citychain.services.data.shapes import NAME

#: How long (block time) a recorded access opens the download of that version.
ACCESS_WINDOW_MS = 10 * 60 * 1000
_GOV = "gov"


@dataclass(frozen=True, slots=True)
class Download:
    """A download the chain allowed: the version's record and the access that opened it."""

    code: str
    version: dict[str, Any]
    access: dict[str, Any]


class DataReads:
    """The data routes' questions to the node (see the module)."""

    def __init__(self, service: NodeService) -> None:
        self._service = service

    @property
    def hash_name(self) -> str:
        """The chain suite's hash (``sha256`` or ``sm3``): what its data hashes are."""
        return self._service.suite.hash_name

    async def public(self, method: str, args: dict[str, Any]) -> Any:
        return await self._service.query(NAME, method, args)

    async def private(self, signed: SignedBy, method: str, args: dict[str, Any]) -> Any:
        """The private query ``method`` for ``signed``, if the contract says it may read it."""
        verdict = await self._service.query(
            NAME, "can_read", {"reader": signed.public_key, "query": method, "args": args}
        )
        if not verdict["allowed"]:
            raise refuse(signed, str(verdict["why"]))
        return await self._service.query(NAME, method, args, private=True, caller=signed.address)

    async def member(self, signed: SignedBy, what: str) -> dict[str, Any]:
        """``signed``'s member record; 403 unless it is a member in good standing."""
        m = await self._service.query(_GOV, "member", {"address": signed.address})
        if not isinstance(m, dict) or m.get("standing") != "ok":
            raise refuse(signed, f"only a member of an organisation in good standing may {what}")
        return m

    async def version(self, code: str, number: int) -> dict[str, Any]:
        for v in await self.public("versions", {"code": code, "after": number - 1, "limit": 1}):
            if v["version"] == number:
                return dict(v)
        raise InvalidInput(f"resource {code} has no version {number}", ErrorCode.RESOURCE_NOT_FOUND)

    async def download(self, signed: SignedBy, code: str, number: int, access: int) -> Download:
        """The download ``signed`` may make of ``code`` version ``number`` with the access
        ``access`` it recorded (see the module), or the refusal saying what is missing."""
        entry = await self.private(signed, "access", {"id": access})
        if entry.get("action") != "download" or entry.get("by") != signed.address:
            raise refuse(signed, f"access {access} is not a download recorded by this account")
        if entry.get("code") != code or entry.get("version") != number:
            raise refuse(
                signed,
                f"access {access} was recorded for resource {entry.get('code')} version "
                f"{entry.get('version')}, not {code} version {number}",
            )
        now = self._service.status().latest_time
        if now - int(entry["time"]) > ACCESS_WINDOW_MS:
            raise InvalidInput(
                f"access {access} was recorded more than {ACCESS_WINDOW_MS // 60000} minutes "
                "ago (block time): record a new access (data.record_access) and download again",
                ErrorCode.ACCESS_STALE,
            )
        grant = await self.private(signed, "grant", {"id": entry["grant"]})
        if grant["state"] != "active":
            revoked = grant["state"] == "revoked"
            code_ = ErrorCode.GRANT_REVOKED if revoked else ErrorCode.GRANT_EXPIRED
            raise InvalidInput(
                f"grant {entry['grant']} is {grant['state']}: the data is no longer yours to read",
                code_,
            )
        return Download(code, await self.version(code, number), entry)
