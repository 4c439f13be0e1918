"""Issuing many credentials in one call, all or nothing.

Theory of operation
-------------------
A batch (at most :data:`MAX_BATCH` credentials, e.g. a bureau's 10,000 licences of one
day) is issued in two passes, so that it either yields every credential or none:

1. **Check every item** before any signature is made: the data model's shape, the bundled
   contexts, that every term is defined (for ``eddsa-jcs-2022``), the bundled
   ``credentialSchema``, that the issuer is the one signing (``wrong_issuer``), and (if given)
   that the status indexes are one per credential and distinct. The first item refused stops
   the batch with :class:`~citychain.errors.BatchRefused`: its reason's code and its index.
2. **Sign every item.** With the checks done, signing fails on an item's content only where
   RDFC canonicalisation finds an undefined term; that, or a fault of the signer (an HSM
   gone), raises and the caller receives nothing of the batch.

No chain state changes here: the status list's entries are bits that stay clear until the
issuer revokes or suspends. Status indexes come from the issuer's
:class:`~citychain.services.identity.sdk.IndexAllocator` and counter (its allocation numbers
are used once even when a batch is refused, so an index is never given twice).

:class:`Issuer` is an issuing service's state around :func:`issue_batch` (``citychain vc
issue`` and ``citychain vc serve`` use it): the key, the accreditation check, and the status
list with its counter file, advanced durably on disk *before* anything is signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from citychain.crypto.keystore import write_private
from citychain.errors import BatchRefused, CitychainError, ErrorCode, InvalidInput
from citychain.services.identity.sdk._contexts import check_contexts
from citychain.services.identity.sdk._di import EDDSA_JCS_2022, EDDSA_RDFC_2022, Signer, add_proof
from citychain.services.identity.sdk._di import check_terms as _check_terms
from citychain.services.identity.sdk._status import IndexAllocator, status_entry
from citychain.services.identity.sdk._templates import validate_schema
from citychain.services.identity.sdk._vc import check_credential_shape, issuer_id

#: Most credentials one batch issues.
MAX_BATCH = 10_000


#: Keys whose values JSON-LD reads as terms or processing instructions, kept in a skeleton.
_TERM_VALUED = frozenset({"type", "@type", "@context", "@language", "@direction", "@vocab"})


def _skeleton(value: Any, key: str = "") -> Any:
    """``value`` with every leaf replaced by its JSON type, except the values JSON-LD reads
    as terms (types, contexts): two credentials with one skeleton use the same terms."""
    if isinstance(value, Mapping):
        return {k: _skeleton(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_skeleton(v, key) for v in value]
    if key in _TERM_VALUED:
        return value
    return type(value).__name__


def check_for_issue(
    credential: Any,
    issuer: str,
    *,
    cryptosuite: str = EDDSA_JCS_2022,
    terms_checked: set[str] | None = None,
) -> None:
    """Everything :func:`issue_batch` checks of one unsigned credential before signing.

    ``terms_checked``: skeletons (see :func:`_skeleton`) whose terms are known to be defined.
    JSON-LD expansion, which finds an undefined term, costs ~5 ms a credential, two thirds of
    a batch; its verdict depends only on the keys, the types and the contexts, so a batch of
    one template expands its first credential and reuses that verdict for the rest."""
    check_credential_shape(credential)
    if "proof" in credential:
        raise InvalidInput("the credential already has a proof", ErrorCode.INVALID_CREDENTIAL)
    if issuer_id(credential) != issuer:
        raise InvalidInput(
            f"this issuer signs for {issuer}, not for {issuer_id(credential)}",
            ErrorCode.WRONG_ISSUER,
        )
    check_contexts(credential)
    if cryptosuite != EDDSA_RDFC_2022:
        if terms_checked is None:
            _check_terms(credential)
        else:
            key = json.dumps(_skeleton(credential), sort_keys=True)
            if key not in terms_checked:
                _check_terms(credential)
                terms_checked.add(key)
    validate_schema(credential)


def issue_batch(
    credentials: Sequence[Mapping[str, Any]],
    signer: Signer,
    verification_method: str,
    *,
    cryptosuite: str = EDDSA_JCS_2022,
    created: datetime | None = None,
    status_list: str | None = None,
    status_indexes: Sequence[int] | None = None,
    status_purpose: str = "revocation",
) -> list[dict[str, Any]]:
    """Sign every credential of ``credentials`` with ``signer`` (``verification_method`` of
    the issuer's DID), or none: the first refused item raises
    :class:`~citychain.errors.BatchRefused` naming its index and reason.

    With ``status_list`` (the list's URL) and ``status_indexes`` (one per credential,
    distinct), each credential gets its ``BitstringStatusListEntry`` in that list."""
    total = len(credentials)
    if not 0 < total <= MAX_BATCH:
        raise InvalidInput(
            f"a batch holds 1 to {MAX_BATCH:,} credentials, got {total:,}", ErrorCode.TOO_LARGE
        )
    if cryptosuite not in (EDDSA_JCS_2022, EDDSA_RDFC_2022):
        raise InvalidInput(f"unknown cryptosuite {cryptosuite!r}", ErrorCode.BAD_ARGUMENTS)
    issuer = verification_method.partition("#")[0]
    items = [dict(c) for c in credentials]
    if status_list is not None:
        indexes = list(status_indexes or ())
        if len(indexes) != total or len(set(indexes)) != total:
            raise InvalidInput(
                "status_indexes must give each credential its own index", ErrorCode.BAD_ARGUMENTS
            )
        for item, index in zip(items, indexes, strict=True):
            if "credentialStatus" not in item:
                item["credentialStatus"] = status_entry(status_list, index, status_purpose)
    terms_checked: set[str] = set()
    for i, item in enumerate(items):
        try:
            check_for_issue(item, issuer, cryptosuite=cryptosuite, terms_checked=terms_checked)
        except CitychainError as exc:
            raise BatchRefused(exc, i, total) from None
    issued = []
    for i, item in enumerate(items):
        try:  # RDFC finds an undefined term only while canonicalising: still nothing returned
            issued.append(
                add_proof(
                    item, signer, verification_method, cryptosuite=cryptosuite, created=created
                )
            )
        except CitychainError as exc:
            raise BatchRefused(exc, i, total) from None
    return issued


@dataclass
class Issuer:
    """What ``citychain vc serve`` issues with: the key, its DID and verification method, the
    node that says whether the DID is trusted (``trusted(issuer, type) -> bool``; None to not
    ask), and optionally a status list (with its size and purpose, as registered on chain) with
    the file that keeps its allocation counter."""

    signer: Any
    verification_method: str
    trusted: Callable[[str, str], bool] | None = None
    status_list: str | None = None
    status_size: int = 131_072
    counter_file: Path | None = None
    #: The status list's purpose (as registered on chain): what each entry says it is for.
    status_purpose: str = "revocation"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def did(self) -> str:
        return self.verification_method.partition("#")[0]

    def _signer_key(self) -> bytes:
        # What counter files written before the key was kept in them were permuted with.
        return hmac.new(self.signer.secret, b"citychain/status-index/v1", hashlib.sha256).digest()

    def _reserve(self, count: int) -> list[int]:
        """``count`` fresh status indexes; the counter is on disk before they are used.

        The counter file keeps the list's allocation key beside the next allocation number
        (``{"next": n, "key": hex}``), made once when the file is. The permutation must stay
        the same for the list's whole life: keyed by the issuer's signing key, as it was, a
        key rotation changed it while the count went on, and new credentials were given
        indexes already held by others (revoking one revoked another). A file without a key
        (written before) gets the one it was permuted with, derived from the signing key."""
        if self.counter_file is None:
            raise InvalidInput(
                "this issuer has a status list but no counter file", ErrorCode.BAD_ARGUMENTS
            )
        with self._lock:
            try:
                kept = json.loads(self.counter_file.read_text())
                start = int(kept["next"])
                key = bytes.fromhex(kept["key"]) if "key" in kept else self._signer_key()
                if start < 0 or len(key) != 32:
                    raise ValueError("a negative count or a key that is not 32 bytes")
            except FileNotFoundError:
                start, key = 0, secrets.token_bytes(32)  # a new list: its own permutation
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise CitychainError(
                    f"the status counter {self.counter_file} is unreadable: {exc}",
                    ErrorCode.INTERNAL,
                ) from None
            if start + count > self.status_size:
                raise InvalidInput(
                    f"the status list has {self.status_size - start:,} unused entries left, "
                    f"not {count:,}: register a new list",
                    ErrorCode.TOO_LARGE,
                )
            write_private(
                self.counter_file, json.dumps({"next": start + count, "key": key.hex()}) + "\n"
            )
        allocator = IndexAllocator(key, self.status_size)
        return [allocator.index(n) for n in range(start, start + count)]

    def issue(self, credentials: list[Any], cryptosuite: str) -> list[dict[str, Any]]:
        """Every credential signed, or a refusal (see the module's docstring)."""
        for i, vc in enumerate(credentials):
            if not isinstance(vc, dict):
                item = InvalidInput("a credential is a JSON object", ErrorCode.INVALID_CREDENTIAL)
                raise BatchRefused(item, i, len(credentials))
            vc.setdefault("issuer", self.did)
        if self.trusted is not None:
            # A ``type`` that is neither a string nor a list is left to issue_batch's shape
            # check, which refuses it by name (walked here, it was a TypeError: a 500).
            wanted = {
                t
                for vc in credentials
                for t in _types(vc.get("type"))
                if isinstance(t, str) and t != "VerifiableCredential"
            }
            for ctype in sorted(wanted):
                if not self.trusted(self.did, ctype):
                    raise CitychainError(
                        f"{self.did} is not in the register of trusted issuers for {ctype}",
                        ErrorCode.ISSUER_NOT_TRUSTED,
                    )
        indexes = None
        if self.status_list is not None:
            # each credential without a status entry gets a reserved index; the others keep
            # theirs (their slot holds a placeholder that issue_batch does not use)
            needs = {i for i, vc in enumerate(credentials) if "credentialStatus" not in vc}
            reserved = iter(self._reserve(len(needs)))
            indexes = [next(reserved) if i in needs else -1 - i for i in range(len(credentials))]
        return issue_batch(
            credentials,
            self.signer,
            self.verification_method,
            cryptosuite=cryptosuite,
            status_list=self.status_list,
            status_indexes=indexes,
            status_purpose=self.status_purpose,
        )

    def issue_sd_jwt(
        self,
        subjects: list[Any],
        vct: str,
        *,
        iat: int,
        exp: int | None = None,
        disclose: Sequence[str] | None = None,
    ) -> list[str]:
        """Each subject as an SD-JWT VC of type ``vct``, every one or none (a citizen-held
        credential: :func:`~citychain.services.identity.sdk.issue_sd_jwt`). A subject is the
        claims, with ``id`` the holder's Ed25519 ``did:key`` (its key then binds every
        presentation; without ``id``, none does). Each claim is disclosable one by one
        (``disclose``: only those named, which every subject must have). With a status list,
        each gets a ``status`` claim of its own index, so the issuer can revoke it. ``iat``
        and ``exp`` are NumericDates given by the caller."""
        from citychain.services.identity.sdk._sdjwt import issue_sd_jwt, sd_jwt_status
        from citychain.services.identity.shapes import multikey_decode, split_did

        total = len(subjects)
        if not 0 < total <= MAX_BATCH:
            raise InvalidInput(
                f"a batch holds 1 to {MAX_BATCH:,} credentials, not {total:,}",
                ErrorCode.BAD_ARGUMENTS,
            )
        if self.trusted is not None and not self.trusted(self.did, vct):
            raise CitychainError(
                f"{self.did} is not in the register of trusted issuers for {vct}",
                ErrorCode.ISSUER_NOT_TRUSTED,
            )
        prepared: list[tuple[dict[str, Any], bytes | None, list[tuple[str | int, ...]]]] = []
        for i, subject in enumerate(subjects):
            try:
                if not isinstance(subject, dict):
                    raise InvalidInput("a subject is a JSON object", ErrorCode.INVALID_CREDENTIAL)
                claims = {k: v for k, v in subject.items() if k != "id"}
                holder = None
                if "id" in subject:
                    method, rest = split_did(subject["id"])
                    if method != "key":
                        raise InvalidInput(
                            "a subject's id is the holder's did:key (its key binds the "
                            f"holder's presentations), not {str(subject['id'])[:80]!r}",
                            ErrorCode.BAD_ARGUMENTS,
                        )
                    holder = multikey_decode(rest)
                names = list(claims) if disclose is None else list(disclose)
                absent = [n for n in names if n not in claims]
                if absent:
                    raise InvalidInput(
                        f"the subject has no claim {absent[0]!r} to make disclosable",
                        ErrorCode.BAD_ARGUMENTS,
                    )
                prepared.append((claims, holder, [(n,) for n in names]))
            except CitychainError as exc:
                raise BatchRefused(exc, i, total) from None
        indexes = self._reserve(total) if self.status_list is not None else None
        issued = []
        for i, (claims, holder, paths) in enumerate(prepared):
            status = None
            if indexes is not None and self.status_list is not None:
                status = sd_jwt_status(self.status_list, indexes[i])
            try:
                issued.append(
                    issue_sd_jwt(
                        claims,
                        self.signer,
                        issuer=self.did,
                        vct=vct,
                        disclosable=paths,
                        holder_key=holder,
                        kid=self.verification_method,
                        iat=iat,
                        exp=exp,
                        status=status,
                    )
                )
            except CitychainError as exc:
                raise BatchRefused(exc, i, total) from None
        return issued


def _types(value: Any) -> list[Any]:
    """A credential's ``type`` as a list, or nothing when it is neither a string nor a list."""
    if isinstance(value, str):
        return [value]
    return value if isinstance(value, list) else []
