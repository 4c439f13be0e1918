"""``client.identity``: verifiable credentials from the SDK, pure and offline.

Everything here but the client-bound helpers (``client.identity``) is a pure function of its
arguments: no network, no chain, no clock (the caller passes ``now``), no file but the
package's own bundled data (JSON-LD contexts and credential schemas) and the two files a
caller names: a :class:`Wallet` and an :class:`Issuer`'s status counter. It needs nothing of
the node's ``[node]`` extra.

* **Data Integrity** (:func:`add_proof`, :func:`verify_proof`): ``eddsa-rdfc-2022`` and
  ``eddsa-jcs-2022``; the ``verificationMethod`` is dereferenced through a ``resolver``
  callback (DID -> DID document); ``did:key`` resolves locally.
* **VC Data Model 2.0** (:func:`build_credential`, :func:`issue_credential`,
  :func:`verify_credential`, :func:`create_presentation`, :func:`sign_presentation`,
  :func:`verify_presentation`).
* **SD-JWT VC** (:func:`issue_sd_jwt`, :func:`present_sd_jwt`, :func:`verify_sd_jwt`).
* **Bitstring Status List** (:class:`StatusList`, :func:`status_entry`,
  :func:`status_list_credential`, :func:`check_status`, :class:`IndexAllocator`).
* **Token Status List** (:func:`status_list_token`, :func:`verify_status_list_token`): the
  IETF form of a list, which SD-JWT VC verifiers fetch from a credential's ``status``.
* **Templates** (:data:`TEMPLATES`, :func:`credential_from_template`,
  :func:`validate_schema`): business licence, professional qualification, residence permit,
  property certificate, each with a bundled JSON Schema 2020-12.
* **Batch issuance** (:func:`issue_batch`, ``client.identity.issue_batch``): up to 10,000
  credentials in one call, every one or none; the client's form first asks the chain whether
  the issuer is trusted for each type.
* **Holder wallet** (:class:`Wallet`): a citizen's keys (``did:key``) and credentials in one
  encrypted file; presentations (VC) and chosen disclosures (SD-JWT). A key exported as a
  passphrase-protected JWE (:func:`export_key`, :func:`import_key`, ``Wallet.export_key``)
  signs a citizen in to a node's pages from a phone's browser.
* **Offline proof bundle** (:func:`make_bundle`, :func:`bundle_bytes`,
  :func:`verify_bundle`): a credential with the proven state records that vouch for it and the
  signed header, checked later with no network.
* **QR codes** (:func:`verify_link`, :func:`qr_svg`, :func:`qr_png`,
  :func:`credential_from_link`): a credential as a link to a node's public verification page
  (``/verify#vc=...``), and that link as a QR code a phone's camera opens.

Every refusal is an :class:`~citychain.errors.InvalidInput` whose ``code`` names the reason
(``tampered``, ``wrong_key``, ``key_not_authorized``, ``credential_expired``,
``not_yet_valid``, ``wrong_challenge``, ``wrong_domain``, ``unknown_context``,
``schema_violation``, ``disclosure_invalid``, ``key_binding_invalid``,
``invalid_credential``, ``credential_revoked``, ``credential_suspended``).

No personal data goes on chain: the chain holds issuers' DID documents, the trusted-issuer
registry and status-list bits (and, where someone anchors a credential, only its hash).
"""

from __future__ import annotations

from typing import Any

from citychain.errors import CitychainError, ErrorCode
from citychain.services.identity.sdk._bundle import (
    BundleVerdict,
    bundle_bytes,
    make_bundle,
    verify_bundle,
)
from citychain.services.identity.sdk._contexts import (
    CITYCHAIN_V1,
    CONTEXT_FILES,
    CREDENTIALS_V2,
    check_contexts,
    context_document,
    document_loader,
)
from citychain.services.identity.sdk._di import (
    CRYPTOSUITES,
    EDDSA_JCS_2022,
    EDDSA_RDFC_2022,
    add_proof,
    canonicalize_jcs,
    canonicalize_rdfc,
    check_terms,
    verify_proof,
)
from citychain.services.identity.sdk._dids import AsyncDids, Dids, ProvenDid
from citychain.services.identity.sdk._issue import MAX_BATCH, Issuer, check_for_issue, issue_batch
from citychain.services.identity.sdk._keyfile import export_key, import_key
from citychain.services.identity.sdk._lists import AsyncStatusLists, StatusLists
from citychain.services.identity.sdk._methods import (
    Resolver,
    VerificationMethod,
    dereference,
    did_key_document,
)
from citychain.services.identity.sdk._qr import credential_from_link, qr_png, qr_svg, verify_link
from citychain.services.identity.sdk._sdjwt import (
    Disclosure,
    VerifiedSdJwt,
    check_sd_jwt_status,
    disclosures,
    issue_sd_jwt,
    present_sd_jwt,
    public_jwk,
    sd_jwt_status,
    sdjwt_digest,
    verify_sd_jwt,
)
from citychain.services.identity.sdk._status import (
    IndexAllocator,
    StatusList,
    check_status,
    status_entries,
    status_entry,
    status_list_credential,
)
from citychain.services.identity.sdk._templates import (
    TEMPLATES,
    Template,
    credential_schema,
    validate_schema,
)
from citychain.services.identity.sdk._tokens import (
    TokenStatusList,
    status_list_token,
    verify_status_list_token,
)
from citychain.services.identity.sdk._vc import (
    VerifiedDocument,
    build_credential,
    create_presentation,
    credential_digest,
    credential_from_template,
    issue_credential,
    sign_presentation,
    verify_credential,
    verify_presentation,
)
from citychain.services.identity.sdk._wallet import StoredCredential, Wallet, credential_id


def _accreditation(credentials: Any, verification_method: str) -> list[tuple[str, str]]:
    """The (issuer, type) pairs a batch needs the registry to trust, in a stable order."""
    issuer = verification_method.partition("#")[0]
    wanted: dict[tuple[str, str], None] = {}
    for vc in credentials:
        types = vc.get("type") if isinstance(vc, dict) else None
        for t in [types] if isinstance(types, str) else types if isinstance(types, list) else []:
            if isinstance(t, str) and t != "VerifiableCredential":
                wanted[(issuer, t)] = None
    return list(wanted)


def _untrusted(issuer: str, ctype: str) -> CitychainError:
    return CitychainError(
        f"{issuer} is not in the register of trusted issuers for {ctype}: governance must "
        "trust it (identity.trust_issuer) before it issues them",
        ErrorCode.ISSUER_NOT_TRUSTED,
    )


class Identity:
    """``client.identity`` on a blocking :class:`~citychain.sdk.Client`: the pure credential
    functions as methods (``client.identity.verify_credential(vc, now=...)``), and
    ``dids`` (:class:`Dids`: create, update, deactivate and resolve ``did:citychain``, proven
    or not), and ``status_lists`` (:class:`StatusLists`: an issuer's lists on chain, and the
    status list credentials it publishes for verifiers outside the chain)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.dids = Dids(client)
        self.status_lists = StatusLists(client)

    def resolver(self, *, proven: bool = True) -> Resolver:
        """A :data:`Resolver` for the verify functions: ``did:citychain`` through this client
        (by default rebuilt from proven state, so a verdict does not rest on the node's word),
        ``did:key`` locally. A deactivated DID resolves to nothing (``did_deactivated``)."""
        dids = self.dids

        def resolve(did: str) -> dict[str, Any]:
            if proven:
                found = dids.resolve_proven(did)
                document, deactivated = found.document, found.deactivated
            else:
                answer = dids.resolve(did)
                document = answer.get("didDocument") or {}
                deactivated = bool((answer.get("didDocumentMetadata") or {}).get("deactivated"))
            if deactivated:
                raise CitychainError(f"{did} is deactivated", ErrorCode.DID_DEACTIVATED)
            return document

        return resolve

    def verify_online(self, credential: Any) -> dict[str, Any]:
        """Ask the node to verify ``credential`` (a VC object or an SD-JWT text) as its
        ``POST /credentials/verify`` does: proof, dates, schema, the register of trusted
        issuers and the status list on chain. The answer (``issuer``, ``issuerName``,
        ``credentialType``...) if valid; else the coded error (``credential_revoked``...)."""
        answer: dict[str, Any] = self._client._post_json(
            "/credentials/verify", {"verifiableCredential": credential}
        )
        return answer

    def verify_bundle_online(self, bundle: bytes) -> dict[str, Any]:
        """Ask the node to check an offline proof bundle (the file's exact bytes) as
        :func:`verify_bundle` does with no network, anchored at the node's genesis: the
        verdict *as of the bundle's height* (``issuer``, ``issuerName``, ``credentialType``,
        ``height``, ``asOf``), else the coded error. Whether the credential still holds is
        :meth:`verify_online`'s question."""
        answer: dict[str, Any] = self._client._post_bytes(
            "/bundles/verify", bundle, "application/json"
        )
        return answer

    def issue_batch(
        self, credentials: Any, signer: Any, verification_method: str, **options: Any
    ) -> list[dict[str, Any]]:
        """:func:`issue_batch` by an accredited issuer: refused with ``issuer_not_trusted``
        unless the chain's register trusts the issuer for every type in the batch."""
        for issuer, ctype in _accreditation(credentials, verification_method):
            if not self._client.query("identity", "is_trusted", issuer=issuer, type=ctype):
                raise _untrusted(issuer, ctype)
        return issue_batch(credentials, signer, verification_method, **options)

    add_proof = staticmethod(add_proof)
    verify_proof = staticmethod(verify_proof)
    canonicalize_jcs = staticmethod(canonicalize_jcs)
    canonicalize_rdfc = staticmethod(canonicalize_rdfc)
    check_terms = staticmethod(check_terms)
    did_key_document = staticmethod(did_key_document)
    dereference = staticmethod(dereference)
    build_credential = staticmethod(build_credential)
    issue_credential = staticmethod(issue_credential)
    verify_credential = staticmethod(verify_credential)
    create_presentation = staticmethod(create_presentation)
    credential_digest = staticmethod(credential_digest)
    sign_presentation = staticmethod(sign_presentation)
    verify_presentation = staticmethod(verify_presentation)
    issue_sd_jwt = staticmethod(issue_sd_jwt)
    present_sd_jwt = staticmethod(present_sd_jwt)
    verify_sd_jwt = staticmethod(verify_sd_jwt)
    disclosures = staticmethod(disclosures)
    sd_jwt_status = staticmethod(sd_jwt_status)
    status_entry = staticmethod(status_entry)
    status_list_credential = staticmethod(status_list_credential)
    status_list_token = staticmethod(status_list_token)
    verify_status_list_token = staticmethod(verify_status_list_token)
    check_status = staticmethod(check_status)
    credential_from_template = staticmethod(credential_from_template)
    validate_schema = staticmethod(validate_schema)
    verify_link = staticmethod(verify_link)
    credential_from_link = staticmethod(credential_from_link)
    qr_svg = staticmethod(qr_svg)
    qr_png = staticmethod(qr_png)


class AsyncIdentity(Identity):
    """``client.identity`` on an :class:`~citychain.sdk.AsyncClient`. The pure functions are
    the same (they do no I/O, so there is nothing to await); ``dids`` and ``issue_batch``
    are awaited."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.dids = AsyncDids(client)  # type: ignore[assignment]
        self.status_lists = AsyncStatusLists(client)  # type: ignore[assignment]

    async def verify_online(self, credential: Any) -> dict[str, Any]:  # type: ignore[override]
        answer: dict[str, Any] = await self._client._post_json(
            "/credentials/verify", {"verifiableCredential": credential}
        )
        return answer

    async def verify_bundle_online(self, bundle: bytes) -> dict[str, Any]:  # type: ignore[override]
        answer: dict[str, Any] = await self._client._post_bytes(
            "/bundles/verify", bundle, "application/json"
        )
        return answer

    async def issue_batch(  # type: ignore[override]
        self, credentials: Any, signer: Any, verification_method: str, **options: Any
    ) -> list[dict[str, Any]]:
        for issuer, ctype in _accreditation(credentials, verification_method):
            if not await self._client.query("identity", "is_trusted", issuer=issuer, type=ctype):
                raise _untrusted(issuer, ctype)
        return issue_batch(credentials, signer, verification_method, **options)


def bind(client: Any) -> Identity:
    """The helper a :class:`~citychain.sdk.Client` carries as ``client.identity``."""
    return Identity(client)


def bind_async(client: Any) -> AsyncIdentity:
    """The helper an :class:`~citychain.sdk.AsyncClient` carries as ``client.identity``."""
    return AsyncIdentity(client)


__all__ = [
    "CITYCHAIN_V1",
    "CONTEXT_FILES",
    "CREDENTIALS_V2",
    "CRYPTOSUITES",
    "EDDSA_JCS_2022",
    "EDDSA_RDFC_2022",
    "MAX_BATCH",
    "TEMPLATES",
    "AsyncDids",
    "AsyncIdentity",
    "AsyncStatusLists",
    "BundleVerdict",
    "Dids",
    "Disclosure",
    "Identity",
    "IndexAllocator",
    "Issuer",
    "ProvenDid",
    "Resolver",
    "StatusList",
    "StatusLists",
    "StoredCredential",
    "Template",
    "TokenStatusList",
    "VerificationMethod",
    "VerifiedDocument",
    "VerifiedSdJwt",
    "Wallet",
    "add_proof",
    "bind",
    "bind_async",
    "build_credential",
    "bundle_bytes",
    "canonicalize_jcs",
    "canonicalize_rdfc",
    "check_contexts",
    "check_for_issue",
    "check_sd_jwt_status",
    "check_status",
    "check_terms",
    "context_document",
    "create_presentation",
    "credential_digest",
    "credential_from_link",
    "credential_from_template",
    "credential_id",
    "credential_schema",
    "dereference",
    "did_key_document",
    "disclosures",
    "document_loader",
    "export_key",
    "import_key",
    "issue_batch",
    "issue_credential",
    "issue_sd_jwt",
    "make_bundle",
    "present_sd_jwt",
    "public_jwk",
    "qr_png",
    "qr_svg",
    "sd_jwt_status",
    "sdjwt_digest",
    "sign_presentation",
    "status_entries",
    "status_entry",
    "status_list_credential",
    "status_list_token",
    "validate_schema",
    "verify_bundle",
    "verify_credential",
    "verify_link",
    "verify_presentation",
    "verify_proof",
    "verify_sd_jwt",
    "verify_status_list_token",
]
