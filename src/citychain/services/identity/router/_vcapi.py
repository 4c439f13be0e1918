"""The W3C VC-API verifier endpoints, checked against this node's chain.

Theory of operation
-------------------
``POST /credentials/verify`` takes ``{"verifiableCredential": <a VC 2.0 credential with a Data
Integrity proof, or an SD-JWT VC as a string>, "options": {}}``; ``POST /presentations/verify``
takes ``{"verifiablePresentation": <a presentation>, "options": {"challenge", "domain"}}``,
where the presentation is a VC 2.0 presentation with its Data Integrity proof or an SD-JWT
with its Key Binding JWT, whose ``nonce`` must be the challenge and ``aud`` the domain (an
SD-JWT given to ``/credentials/verify`` is checked without a key binding: a credential, not
a holder's presentation of it). An SD-JWT VC has no JSON Schema here; its ``status`` claim,
when it has one (``{"status_list": {"idx", "uri"}}`` naming a status list of this chain), is
checked as a VC's status entry is, against the list's own purpose. Its ``checks`` list only
what was checked.
:class:`Verifier` answers each with an :class:`Answer` (status and body); the routes only
render it. A credential is valid here when, in this order (the first failure decides):

==================================  ============================================  ======
check                               refusal code                                  status
==================================  ============================================  ======
the body is a JSON object of the    ``bad_arguments`` / ``invalid_credential``     400
VC-API's shape
the data model, the contexts        ``invalid_credential``, ``unknown_context``    400
(bundled only: nothing is fetched)
the proof (``eddsa-jcs-2022``,      ``tampered``, ``wrong_key``,                   400
``eddsa-rdfc-2022``; SD-JWT with    ``key_not_authorized``, ``disclosure_invalid``
its disclosures) by a key in the
issuer's DID document *as this
chain has it now*
the issuer's DID is usable          ``did_not_found``, ``did_deactivated``         400
validity dates against now          ``credential_expired``, ``not_yet_valid``      400
the ``credentialSchema``            ``schema_violation``                           400
the trusted-issuer registry trusts  ``issuer_not_trusted``                         403
the issuer for one of the
credential's types
its status-list entries on chain    ``credential_revoked``,                        400
(``BitstringStatusListEntry``       ``credential_suspended``,
whose ``statusListCredential`` is   ``status_list_not_found``
a list of this chain)
==================================  ============================================  ======

A failed verification is never ``200`` with ``verified: false``: it is the status above with
``{"verified": false, "code", "message", "errors": [{"code", "message"}]}`` and, once the
issuer is known, ``issuer`` (and ``issuerName`` when the registry names it), so a person
reading the public page learns who was claimed to have issued it. Success is ``200`` with
``verified: true``, the ``checks`` made, the issuer and its name from the registry, the
credential's type and validity dates.

``POST /bundles/verify`` takes an offline proof bundle's exact bytes and checks it as an
offline verifier would (:func:`~citychain.services.identity.sdk.verify_bundle`, anchored at
this chain's genesis validator set, id and suite; nothing is read from the node's state):
``200`` with the verdict *as of the bundle's height*, or the refusal as above. The public page
asks it beside ``/credentials/verify`` for the credential inside, so a person learns both what
the file proves and whether it still holds.

The SDK's verify functions are pure and take a *synchronous* resolver; the node's state is
read asynchronously. So every DID the document names (its issuer or holder, and each proof's
verification method) is resolved first, through the ``identity`` contract's ``resolve``
query on the latest committed state (``did:key`` locally), then the pure checks run over
those documents on a worker thread, then the registry and the status lists are read. "Now"
is the node's clock: verification is a read, never part of computing state.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from citychain.api.service import NodeService
from citychain.errors import CitychainError, ErrorCode, InvalidInput, NotFound
from citychain.services.identity.sdk import (
    check_sd_jwt_status,
    did_key_document,
    status_entries,
    verify_bundle,
    verify_credential,
    verify_presentation,
    verify_sd_jwt,
)
from citychain.services.identity.shapes import NAME, split_status_list_id

#: Largest number of DIDs one request may make the node resolve.
MAX_DIDS = 32
#: Largest number of credentials in one presentation.
MAX_CREDENTIALS = 16

_STATUS = {
    ErrorCode.ISSUER_NOT_TRUSTED: 403,
    ErrorCode.TOO_LARGE: 413,
}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def _refusal(exc: CitychainError, facts: Mapping[str, Any]) -> Answer:
    error = {"code": str(exc.code), "message": exc.message}
    body = {"verified": False, **error, "errors": [error], **facts}
    return Answer(_STATUS.get(exc.code, 400), body)


def _did_of(url: Any) -> str | None:
    if isinstance(url, Mapping):
        url = url.get("id")
    if not isinstance(url, str) or not url.startswith("did:"):
        return None
    return url.split("#", 1)[0].split("?", 1)[0].split("/", 1)[0]


def _dids_in(document: Any, found: list[str]) -> None:
    """The DIDs a credential or presentation asks a verifier to resolve."""
    if not isinstance(document, Mapping):
        return
    for value in (document.get("issuer"), document.get("holder")):
        did = _did_of(value)
        if did is not None and did not in found:
            found.append(did)
    proofs = document.get("proof")
    for proof in proofs if isinstance(proofs, list) else [proofs]:
        if isinstance(proof, Mapping):
            did = _did_of(proof.get("verificationMethod"))
            if did is not None and did not in found:
                found.append(did)


def _sd_jwt_dids(sd_jwt: str) -> list[str]:
    """The issuer's DID of an SD-JWT: its header's ``kid`` and its payload's ``iss``."""
    found: list[str] = []
    parts = sd_jwt.split("~", 1)[0].split(".")
    for i in (0, 1):
        try:
            raw = parts[i] + "=" * (-len(parts[i]) % 4)
            value = json.loads(base64.urlsafe_b64decode(raw))
        except (IndexError, ValueError):
            raise InvalidInput(
                "the SD-JWT's header or payload is not base64url JSON", ErrorCode.TAMPERED
            ) from None
        if isinstance(value, Mapping):
            did = _did_of(value.get("kid" if i == 0 else "iss"))
            if did is not None and did not in found:
                found.append(did)
    return found


def _types(credential: Mapping[str, Any]) -> list[str]:
    raw = credential.get("type")
    types = raw if isinstance(raw, list) else [raw]
    return [t for t in types if isinstance(t, str) and t != "VerifiableCredential"]


class Verifier:
    """The VC-API verifier of one node (see the module docstring)."""

    def __init__(self, service: NodeService) -> None:
        self._service = service

    # -- endpoints ---------------------------------------------------------------------------
    async def credential(self, body: Any) -> Answer:
        facts: dict[str, Any] = {}
        try:
            if not isinstance(body, Mapping) or "verifiableCredential" not in body:
                raise _bad('the body is {"verifiableCredential": ..., "options": {...}}')
            _options(body, ())
            vc = body["verifiableCredential"]
            if isinstance(vc, str):
                return await self._sd_jwt(vc, facts)
            if not isinstance(vc, Mapping):
                raise InvalidInput(
                    "verifiableCredential is a credential (a JSON object) or an SD-JWT (a string)",
                    ErrorCode.INVALID_CREDENTIAL,
                )
            await self._credential(vc, facts)
        except CitychainError as exc:
            return _refusal(exc, facts)
        return Answer(200, _verified(facts))

    async def presentation(self, body: Any) -> Answer:
        facts: dict[str, Any] = {}
        try:
            if not isinstance(body, Mapping) or "verifiablePresentation" not in body:
                raise _bad('the body is {"verifiablePresentation": ..., "options": {...}}')
            options = _options(body, ("challenge", "domain"))
            vp = body["verifiablePresentation"]
            if isinstance(vp, str):
                # An SD-JWT presentation: its Key Binding JWT must answer this verifier's
                # challenge (the KB-JWT's nonce) for this domain (its aud).
                challenge, domain = options.get("challenge"), options.get("domain")
                if not isinstance(challenge, str) or not isinstance(domain, str):
                    raise _bad(
                        "an SD-JWT presentation is verified against options.challenge (its "
                        "key binding's nonce) and options.domain (its aud)"
                    )
                return await self._sd_jwt(vp, facts, nonce=challenge, aud=domain)
            if not isinstance(vp, Mapping):
                raise InvalidInput(
                    "verifiablePresentation is a JSON object (a VC 2.0 presentation) or a "
                    "string (an SD-JWT with its key binding)",
                    ErrorCode.INVALID_CREDENTIAL,
                )
            creds = vp.get("verifiableCredential", [])
            creds = creds if isinstance(creds, list) else [creds]
            if len(creds) > MAX_CREDENTIALS:
                raise _bad(f"a presentation carries at most {MAX_CREDENTIALS} credentials")
            dids: list[str] = []
            _dids_in(vp, dids)
            for c in creds:
                _dids_in(c, dids)
            documents = await self._resolve_all(dids)
            now = datetime.now(UTC)
            verified = await run_in_threadpool(
                lambda: verify_presentation(
                    vp,
                    challenge=options.get("challenge", ""),
                    domain=options.get("domain", ""),
                    now=now,
                    resolver=_resolver(documents),
                )
            )
            facts["holder"] = verified.signer
            facts["credentials"] = []
            for c in creds:
                one: dict[str, Any] = {}
                facts["credentials"].append(one)
                await self._registry_and_status(c, one)
        except CitychainError as exc:
            return _refusal(exc, facts)
        return Answer(200, _verified(facts))

    async def bundle(self, raw: bytes) -> Answer:
        """Check an offline proof bundle (the file's exact bytes) as ``citychain vc verify
        --offline`` does, anchored where an offline verifier of this chain is: its genesis
        validator set, its chain id and its crypto suite. What it answers is the chain's word
        *as of the bundle's height*, not now: the page asks ``/credentials/verify`` for that."""
        service = self._service
        try:
            verdict = await run_in_threadpool(
                lambda: verify_bundle(
                    raw,
                    chain_id=service.chain_id,
                    validators=service.validators(1),
                    suite=service.suite,
                    now=datetime.now(UTC),
                )
            )
        except CitychainError as exc:
            return _refusal(exc, {})
        return Answer(200, verdict.to_json())

    # -- the checks --------------------------------------------------------------------------
    async def _credential(self, vc: Mapping[str, Any], facts: dict[str, Any]) -> None:
        dids: list[str] = []
        _dids_in(vc, dids)
        issuer = _did_of(vc.get("issuer"))
        if issuer is not None:
            facts["issuer"] = issuer
        facts["credentialType"] = ", ".join(_types(vc))
        for field in ("validFrom", "validUntil"):
            if isinstance(vc.get(field), str):
                facts[field] = vc[field]
        documents = await self._resolve_all(dids)
        now = datetime.now(UTC)
        await run_in_threadpool(
            lambda: verify_credential(vc, now=now, resolver=_resolver(documents))
        )
        await self._registry_and_status(vc, facts)

    async def _sd_jwt(
        self,
        sd_jwt: str,
        facts: dict[str, Any],
        *,
        nonce: str | None = None,
        aud: str | None = None,
    ) -> Answer:
        """An SD-JWT VC: as a credential (no ``nonce``: a key binding is not asked for), or
        as a presentation whose key binding must answer ``nonce`` and ``aud``."""
        if len(sd_jwt) > 64 * 1024:
            raise _bad("an SD-JWT over 64 KiB is not a credential")
        dids = _sd_jwt_dids(sd_jwt)
        documents = await self._resolve_all(dids)
        now = int(datetime.now(UTC).timestamp())
        result = await run_in_threadpool(
            lambda: verify_sd_jwt(
                sd_jwt,
                now=now,
                nonce=nonce,
                aud=aud,
                resolver=_resolver(documents),
                require_key_binding=nonce is not None,
            )
        )
        issuer = result.claims.get("iss")
        vct = result.claims.get("vct")
        if isinstance(issuer, str):
            facts["issuer"] = issuer
        if isinstance(vct, str):
            facts["credentialType"] = vct
        if not isinstance(issuer, str) or not isinstance(vct, str):
            raise InvalidInput("an SD-JWT VC names its iss and vct", ErrorCode.INVALID_CREDENTIAL)
        facts["issuerName"] = await self._trusted_name(issuer, [vct])
        # What was checked, and only that: an SD-JWT VC carries no JSON Schema, and a status
        # only when the issuer gave it one.
        checks = ["proof", "issuer", "validity", "trustedIssuer"]
        if "status" in result.claims:
            await self._status(*check_sd_jwt_status(result.claims["status"]), None)
            checks.append("status")
        return Answer(200, _verified(facts, [*checks, "keyBinding"] if nonce else checks))

    async def _registry_and_status(self, vc: Any, facts: dict[str, Any]) -> None:
        if not isinstance(vc, Mapping):
            raise InvalidInput("a credential is a JSON object", ErrorCode.INVALID_CREDENTIAL)
        issuer = _did_of(vc.get("issuer")) or ""
        facts.setdefault("issuer", issuer)
        facts["issuerName"] = await self._trusted_name(issuer, _types(vc))
        for list_id, index, purpose in status_entries(vc):
            await self._status(list_id, index, purpose)

    async def _trusted_name(self, issuer: str, types: list[str]) -> str:
        for ctype in types:
            try:
                entry = await self._service.query(NAME, "issuer", {"issuer": issuer, "type": ctype})
            except CitychainError as exc:
                if exc.code == ErrorCode.ISSUER_NOT_TRUSTED:
                    continue
                raise
            return str(entry.get("name", ""))
        raise CitychainError(
            f"{issuer[:80]} is not in this chain's register of issuers trusted for "
            f"{', '.join(types)[:120] or 'any type'}",
            ErrorCode.ISSUER_NOT_TRUSTED,
        )

    async def _status(self, list_id: str, index: int, purpose: str | None) -> None:
        """Entry ``index`` of ``list_id`` on chain (as :func:`status_entries` reads it);
        ``purpose`` None for an SD-JWT's ``status`` claim, which names none (the list's own
        decides)."""
        try:
            split_status_list_id(list_id)
        except InvalidInput:
            raise NotFound(
                f"the status list {list_id[:120]!r} is not a list of this chain, so the "
                "credential's status cannot be checked here",
                ErrorCode.STATUS_LIST_NOT_FOUND,
            ) from None
        answer = await self._service.query(NAME, "status", {"list_id": list_id, "index": index})
        # Bitstring Status List 1.0, validate: the entry's purpose must be its list's.
        if purpose is not None and purpose != answer.get("purpose"):
            raise InvalidInput(
                f"the credential's status entry says {purpose[:40]!r} but its list is for "
                f"{answer.get('purpose')!r}",
                ErrorCode.INVALID_CREDENTIAL,
            )
        if answer.get("set"):
            if answer.get("purpose") == "suspension":
                raise InvalidInput(
                    "the issuer has suspended this credential", ErrorCode.CREDENTIAL_SUSPENDED
                )
            raise InvalidInput(
                "the issuer has revoked this credential", ErrorCode.CREDENTIAL_REVOKED
            )

    async def _resolve_all(self, dids: list[str]) -> dict[str, Mapping[str, Any]]:
        if len(dids) > MAX_DIDS:
            raise _bad(f"a request may name at most {MAX_DIDS} DIDs")
        documents: dict[str, Mapping[str, Any]] = {}
        for did in dids:
            if did.startswith("did:key:"):
                continue  # resolved locally by _resolver
            if not did.startswith("did:citychain:"):
                continue  # not resolvable here: the SDK's check names it
            answer = await self._service.query(NAME, "resolve", {"did": did})
            if (answer.get("didDocumentMetadata") or {}).get("deactivated"):
                raise CitychainError(f"{did} is deactivated", ErrorCode.DID_DEACTIVATED)
            documents[did] = answer["didDocument"]
        return documents


def _options(body: Mapping[str, Any], allowed: tuple[str, ...]) -> dict[str, str]:
    options = body.get("options", {})
    if not isinstance(options, Mapping):
        raise _bad("options is a JSON object")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise _bad(f"unsupported option(s): {', '.join(map(str, unknown))[:120]}")
    for key, value in options.items():
        if not isinstance(value, str) or len(value) > 512:
            raise _bad(f"option {key} is a string of at most 512 characters")
    return dict(options)


def _resolver(documents: Mapping[str, Mapping[str, Any]]) -> Any:
    def resolve(did: str) -> Mapping[str, Any]:
        if did in documents:
            return documents[did]
        if did.startswith("did:key:"):
            return did_key_document(did)
        raise NotFound(f"{did[:80]} cannot be resolved by this node", ErrorCode.DID_NOT_FOUND)

    return resolve


_CHECKS = ["proof", "issuer", "validity", "schema", "trustedIssuer", "status"]


def _verified(facts: Mapping[str, Any], checks: list[str] | None = None) -> dict[str, Any]:
    return {
        "verified": True,
        "checks": _CHECKS if checks is None else checks,
        "warnings": [],
        "errors": [],
        **facts,
    }
