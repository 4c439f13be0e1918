"""Status List Tokens (IETF Token Status List, draft-ietf-oauth-status-list, JWT format):
the signed list an SD-JWT VC's ``status.status_list.uri`` names, issued and read.

An issuer signs one token a list (:func:`status_list_token`): header ``{"alg": "EdDSA",
"typ": "statuslist+jwt", "kid": <verification method>}``, claims ``iss`` (the issuer's DID),
``sub`` (the list's id, which every SD-JWT VC of the list names as its ``uri``), ``iat``,
``exp`` and ``ttl`` as given, and ``status_list: {bits, lst}`` in the layout of
:mod:`citychain.services.identity.shapes._token_status` (a revocation list 1 bit an entry, a
suspension list 2). The chain keeps it once its bits are the list's, and every node serves it
at ``GET /1.0/identifiers/<list id>`` with ``Accept: application/statuslist+jwt``.

A verifier (:func:`verify_status_list_token`) follows the draft's validation rules (§8.3):
the signature by a key that the list's issuer (the credential's: a token signed by anyone
else speaks for nothing) lists under ``assertionMethod`` (or ``issuer_key``),
``sub`` equal to the credential's ``uri``, ``exp`` not passed at ``now`` (given by the
caller), a ``bits`` of 1, 2, 4 or 8, and an index inside the list. It refuses with the codes
of the SDK's other verifiers: ``invalid_credential``, ``tampered``, ``wrong_key``,
``credential_expired``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from citychain.errors import CitychainError, ErrorCode, InvalidInput
from citychain.services.identity.sdk._di import Signer, _ed25519_ok
from citychain.services.identity.sdk._methods import Resolver
from citychain.services.identity.sdk._sdjwt import _parse_jwt, _sign_jwt, assertion_key
from citychain.services.identity.sdk._status import StatusList
from citychain.services.identity.shapes import MAX_STATUS_LIST_BITS, split_status_list_id
from citychain.services.identity.shapes._token_status import (
    STATUS_LIST_JWT,
    STATUS_LIST_JWT_MEDIA,
    TOKEN_STATUS_BITS,
    TOKEN_STATUS_NAMES,
    token_list_bytes,
    token_list_lst,
    token_status_array,
    token_status_value,
)

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "STATUS_LIST_JWT_MEDIA",
    "TokenStatusList",
    "status_list_token",
    "verify_status_list_token",
]
#: How long a verifier may cache a token before fetching it again, by default (``ttl``).
DEFAULT_TOKEN_TTL = 300


def status_list_token(
    list_id: str,
    status_list: StatusList,
    purpose: str,
    key: Signer,
    kid: str,
    *,
    iat: int,
    exp: int | None = None,
    ttl: int | None = DEFAULT_TOKEN_TTL,
) -> str:
    """The Status List Token of ``status_list`` (the chain list ``list_id`` of ``purpose``),
    signed by ``key`` as ``kid``: a compact JWS. Times are NumericDates given by the caller."""
    if purpose not in TOKEN_STATUS_BITS:
        raise InvalidInput(
            f"a {purpose!r} list has no Token Status List form", ErrorCode.BAD_ARGUMENTS
        )
    issuer, _ = split_status_list_id(list_id)
    claims: dict[str, Any] = {"iss": issuer, "sub": list_id, "iat": iat}
    if exp is not None:
        claims["exp"] = exp
    if ttl is not None:
        claims["ttl"] = ttl
    array = token_status_array(status_list.bits, purpose)
    claims["status_list"] = {"bits": TOKEN_STATUS_BITS[purpose], "lst": token_list_lst(array)}
    return _sign_jwt({"alg": "EdDSA", "typ": STATUS_LIST_JWT, "kid": kid}, claims, key)


@dataclass(frozen=True, slots=True)
class TokenStatusList:
    """A verified Status List Token: its claims and the list's byte array."""

    claims: dict[str, Any]
    bits: int
    array: bytes

    def status(self, index: int) -> int:
        """The status value of entry ``index`` (0 VALID, 1 INVALID, 2 SUSPENDED, ...); an
        index outside the list is refused (draft §8.3: no statement can be made)."""
        if type(index) is not int or not 0 <= index < len(self.array) * 8 // self.bits:
            raise _invalid(f"index {index!r} is outside the status list")
        return token_status_value(self.array, self.bits, index)

    def status_name(self, index: int) -> str:
        value = self.status(index)
        return TOKEN_STATUS_NAMES.get(value, f"0x{value:02x}")


def _list_issuer(uri: str) -> str | None:
    """The issuer a citychain status list id names (``<did>/status/<name>``); None for any
    other URI, whose issuer the caller must name."""
    try:
        return split_status_list_id(uri)[0]
    except CitychainError:
        return None


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.INVALID_CREDENTIAL)


def verify_status_list_token(
    token: str,
    *,
    uri: str,
    now: int,
    resolver: Resolver | None = None,
    issuer_key: bytes | None = None,
    issuer: str | None = None,
) -> TokenStatusList:
    """Verify a Status List Token fetched for a credential whose status names ``uri``, at
    ``now`` (NumericDate seconds); see the module for the checks. The token must be signed
    by ``issuer`` (the credential's issuer; for a citychain list id, by default, the DID the
    id begins with), with a key of its ``assertionMethod``; or by ``issuer_key``."""
    header, claims, signing_input, signature = _parse_jwt(
        token, "the Status List Token", ErrorCode.INVALID_CREDENTIAL
    )
    if header.get("typ") != STATUS_LIST_JWT:
        raise _invalid(f"the token's typ is {header.get('typ')!r}, not {STATUS_LIST_JWT!r}")
    if header.get("alg") != "EdDSA":
        raise _invalid(f"alg must be EdDSA (Ed25519), got {header.get('alg')!r}")
    if issuer_key is None:
        list_issuer = issuer if issuer is not None else _list_issuer(uri)
        if list_issuer is not None and claims.get("iss") != list_issuer:
            raise InvalidInput(
                f"the token is issued by {str(claims.get('iss'))[:80]!r}, but the list's "
                f"issuer is {list_issuer[:80]!r}: only it speaks for its credentials",
                ErrorCode.WRONG_KEY,
            )
        issuer_key = assertion_key(header, claims, resolver)
    if not _ed25519_ok(issuer_key, signing_input, signature):
        raise InvalidInput(
            "the Status List Token's signature does not verify: it was changed or another "
            "key signed it",
            ErrorCode.TAMPERED,
        )
    if claims.get("sub") != uri:
        raise _invalid(f"the token's sub is {str(claims.get('sub'))[:120]!r}, not {uri!r}")
    iat, exp = claims.get("iat"), claims.get("exp")
    if type(iat) is not int:
        raise _invalid("the token's iat is not an integer NumericDate")
    if exp is not None and (type(exp) is not int or now >= exp):
        raise InvalidInput(
            f"the Status List Token expired: exp is {exp}, now is {now}",
            ErrorCode.CREDENTIAL_EXPIRED,
        )
    status_list = claims.get("status_list")
    if not isinstance(status_list, Mapping):
        raise _invalid("the token has no status_list object")
    bits = status_list.get("bits")
    if type(bits) is not int or bits not in (1, 2, 4, 8):
        raise _invalid(f"the token's status_list.bits is {str(bits)[:20]}, not 1, 2, 4 or 8")
    try:
        array = token_list_bytes(status_list.get("lst"), MAX_STATUS_LIST_BITS * bits // 8)
    except ValueError as exc:
        raise _invalid(f"the token's status_list.lst is {exc}") from None
    return TokenStatusList(claims, bits, array)
