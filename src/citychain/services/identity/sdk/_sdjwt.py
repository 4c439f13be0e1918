"""SD-JWT (RFC 9901) verifiable credentials with Ed25519 (JWS ``alg: EdDSA``), for
credentials citizens hold and disclose piece by piece.

Issuance: every claim path named in ``disclosable`` becomes a Disclosure
``base64url(JSON [salt, name, value])`` (``[salt, value]`` for an array element) whose
SHA-256 digest replaces it: in the object's ``_sd`` list (sorted, so their order says
nothing) or as ``{"...": digest}`` in the array. Nested disclosable claims are processed
first, so a disclosable object may hold disclosable members (recursive disclosure). The
issuer-signed JWT carries ``iss``, ``vct``, ``iat``/``nbf``/``exp`` as given, ``cnf.jwk`` (the
holder's key) and ``_sd_alg: sha-256``; its header is ``{"alg": "EdDSA", "typ": "dc+sd-jwt",
"kid": <verification method>}``.

Status: an SD-JWT VC may carry the SD-JWT VC ``status`` claim (never disclosable, so every
presentation shows it): ``{"status_list": {"idx": <entry>, "uri": <status list>}}``
(:func:`sd_jwt_status`), where the list is a citychain status list's id
(``<issuer DID>/status/<name>``). A citychain verifier reads that entry's bit on chain and
refuses a revoked or suspended credential as it does a VC 2.0 one. A verifier outside the
chain fetches the list's IETF Status List Token from that URI (the issuer publishes it with
each change; see :mod:`._tokens`) and reads the entry there.

Presentation: the holder keeps the disclosures of the chosen claims (a nested claim brings
its parents) and appends a Key Binding JWT (``typ: kb+jwt``) signed by the ``cnf`` key over
``iat``, ``aud`` (the verifier), ``nonce`` (the verifier's challenge) and ``sd_hash``, the
digest of everything before it, so no disclosure can be dropped, added or changed afterwards.

Verification refuses: ``tampered`` (the issuer's signature), ``wrong_key`` /
``key_not_authorized`` (``kid`` not the issuer's assertion key), ``disclosure_invalid`` (a
disclosure whose digest the issuer did not sign, one used twice, a malformed one, or a set
that differs from the one the holder bound), ``key_binding_invalid``, ``wrong_challenge``
(nonce), ``wrong_domain`` (aud), ``credential_expired`` / ``not_yet_valid`` (exp / nbf
against ``now``). Salts come from ``secrets`` unless a ``salt`` function is given.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity.sdk._di import Signer, _ed25519_ok
from citychain.services.identity.sdk._methods import Resolver, dereference
from citychain.services.identity.shapes._jose import b64url, json_segment, jws_parts, unb64url

Path = tuple[str | int, ...]
TYP = "dc+sd-jwt"
KB_TYP = "kb+jwt"
_RESERVED = {"_sd", "...", "_sd_alg"}


_b64 = b64url
_unb64 = unb64url
_json_of = json_segment


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def sdjwt_digest(disclosure: str) -> str:
    """The SHA-256 digest of a disclosure, as it appears in ``_sd`` or ``...``."""
    return _b64(hashlib.sha256(disclosure.encode("ascii")).digest())


def _sign_jwt(header: Mapping[str, Any], payload: Mapping[str, Any], signer: Signer) -> str:
    signing_input = _b64(_json(header)) + "." + _b64(_json(payload))
    return signing_input + "." + _b64(signer.sign(signing_input.encode("ascii")))


def _parse_jwt(
    jwt: str, what: str, code: ErrorCode
) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        return jws_parts(jwt)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{what} is not a compact JWS: {e}", code) from None


def assertion_key(
    header: Mapping[str, Any], payload: Mapping[str, Any], resolver: Resolver | None
) -> bytes:
    """The public key of a JWT's ``kid``, dereferenced through ``resolver``: a verification
    method in the ``assertionMethod`` of the DID in ``iss`` (``wrong_key`` if another DID's)."""
    method = dereference(header.get("kid"), resolver, "assertionMethod")
    if method.controller != payload.get("iss"):
        raise InvalidInput(
            f"kid {method.id[:120]!r} is not a key of the issuer {str(payload.get('iss'))[:80]!r}",
            ErrorCode.WRONG_KEY,
        )
    return method.public_key


def public_jwk(public_key: bytes) -> dict[str, str]:
    """The JWK (RFC 8037 ``OKP``) of an Ed25519 public key: what ``cnf.jwk`` holds."""
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(public_key)}


def _jwk_key(jwk: Any) -> bytes:
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidInput("cnf.jwk must be an Ed25519 OKP key", ErrorCode.KEY_BINDING_INVALID)
    try:
        key = _unb64(str(jwk.get("x")))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InvalidInput("cnf.jwk.x is not a 32-byte key", ErrorCode.KEY_BINDING_INVALID)
    return key


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One disclosure: its encoded form, salt, claim name (None for an array element) and
    value, and where the claim sits in the credential."""

    encoded: str
    salt: str
    name: str | None
    value: Any
    path: Path

    @property
    def digest(self) -> str:
        return sdjwt_digest(self.encoded)


def _encode_disclosure(salt: str, name: str | None, value: Any) -> str:
    parts = [salt, value] if name is None else [salt, name, value]
    return _b64(json.dumps(parts, ensure_ascii=False).encode())


def _new_salt() -> str:
    return _b64(secrets.token_bytes(16))


def sd_jwt_status(list_id: str, index: int) -> dict[str, Any]:
    """The ``status`` claim pointing at entry ``index`` of the status list ``list_id``."""
    status = {"status_list": {"idx": index, "uri": list_id}}
    check_sd_jwt_status(status)
    return status


def check_sd_jwt_status(status: Any) -> tuple[str, int]:
    """``(list id, index)`` of a ``status`` claim; ``invalid_credential`` if malformed."""
    ref = status.get("status_list") if isinstance(status, Mapping) else None
    idx = ref.get("idx") if isinstance(ref, Mapping) else None
    uri = ref.get("uri") if isinstance(ref, Mapping) else None
    if type(idx) is not int or not 0 <= idx < 2**32 or not isinstance(uri, str) or not uri:
        raise InvalidInput(
            'the status claim must be {"status_list": {"idx": <entry, 0 or more>, "uri": '
            "<status list>}}",
            ErrorCode.INVALID_CREDENTIAL,
        )
    return uri, idx


def issue_sd_jwt(
    claims: Mapping[str, Any],
    signer: Signer,
    *,
    issuer: str,
    vct: str,
    disclosable: Collection[Path],
    holder_key: bytes | None,
    kid: str | None = None,
    iat: int | None = None,
    nbf: int | None = None,
    exp: int | None = None,
    status: Mapping[str, Any] | None = None,
    salt: Callable[[], str] = _new_salt,
    decoys: int = 0,
) -> str:
    """An SD-JWT VC ``<issuer-jwt>~<disclosure>~...~`` over ``claims``.

    ``disclosable``: the paths of the claims a holder may disclose one by one, e.g.
    ``("age_over_18",)``, ``("address", "locality")``, ``("nationalities", 0)``. Times are
    NumericDates given by the caller (never read from the clock). ``holder_key`` (Ed25519)
    goes into ``cnf`` so that presentations need the holder's key binding. ``decoys`` adds
    that many digests of nothing to the top-level ``_sd`` (RFC 9901 §4.2.5), so the number of
    disclosable claims is hidden too. ``status``: the ``status`` claim
    (:func:`sd_jwt_status`), so the issuer can revoke or suspend the credential.
    """
    wanted = {tuple(p) for p in disclosable}
    disclosures: list[str] = []
    found: set[Path] = set()

    def walk(node: Any, path: Path) -> Any:
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            sd: list[str] = []
            for key, value in node.items():
                if key in _RESERVED:
                    raise InvalidInput(f"claim name {key!r} is reserved", ErrorCode.BAD_ARGUMENTS)
                inner = walk(value, (*path, key))
                if (*path, key) in wanted:
                    found.add((*path, key))
                    d = _encode_disclosure(salt(), key, inner)
                    disclosures.append(d)
                    sd.append(sdjwt_digest(d))
                else:
                    out[key] = inner
            if sd:
                out["_sd"] = sorted(sd)
            return out
        if isinstance(node, list):
            items: list[Any] = []
            for i, value in enumerate(node):
                inner = walk(value, (*path, i))
                if (*path, i) in wanted:
                    found.add((*path, i))
                    d = _encode_disclosure(salt(), None, inner)
                    disclosures.append(d)
                    items.append({"...": sdjwt_digest(d)})
                else:
                    items.append(inner)
            return items
        return copy.deepcopy(node)

    body = walk(claims, ())
    if decoys:
        body["_sd"] = sorted(
            [
                *body.get("_sd", []),
                *(_b64(hashlib.sha256(salt().encode()).digest()) for _ in range(decoys)),
            ]
        )
    missing = wanted - found
    if missing:
        raise InvalidInput(
            f"no such claims to make disclosable: {sorted(map(str, missing))}",
            ErrorCode.BAD_ARGUMENTS,
        )
    for key in ("iss", "vct", "cnf", "iat", "nbf", "exp", "status"):
        if key in body:
            raise InvalidInput(
                f"{key!r} is set by the issuer, not a claim", ErrorCode.BAD_ARGUMENTS
            )
    payload: dict[str, Any] = {"iss": issuer, "vct": vct}
    for key, value in (("iat", iat), ("nbf", nbf), ("exp", exp)):
        if value is not None:
            payload[key] = value
    if holder_key is not None:
        payload["cnf"] = {"jwk": public_jwk(holder_key)}
    if status is not None:
        try:
            check_sd_jwt_status(status)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, ErrorCode.BAD_ARGUMENTS) from None
        payload["status"] = copy.deepcopy(dict(status))
    payload.update(body)
    payload["_sd_alg"] = "sha-256"
    header: dict[str, Any] = {"alg": "EdDSA", "typ": TYP}
    if kid is not None:
        header["kid"] = kid
    jwt = _sign_jwt(header, payload, signer)
    return "~".join([jwt, *disclosures]) + "~"


def _split(sd_jwt: str) -> tuple[str, list[str], str | None]:
    if not isinstance(sd_jwt, str) or "~" not in sd_jwt:
        raise InvalidInput(
            "not an SD-JWT (<jwt>~<disclosures>~[kb-jwt])", ErrorCode.INVALID_CREDENTIAL
        )
    if not sd_jwt.isascii():
        raise InvalidInput(
            "not an SD-JWT: it holds a character that is not ASCII (its parts are base64url, "
            "'.' and '~')",
            ErrorCode.INVALID_CREDENTIAL,
        )
    parts = sd_jwt.split("~")
    kb = parts[-1] or None
    return parts[0], parts[1:-1], kb


def _decode_disclosure(encoded: str) -> tuple[str, str | None, Any]:
    try:
        parts = _json_of(encoded)
    except (ValueError, UnicodeDecodeError):
        parts = None
    if not isinstance(parts, list) or len(parts) not in (2, 3) or not isinstance(parts[0], str):
        raise InvalidInput(f"malformed disclosure {encoded[:40]!r}", ErrorCode.DISCLOSURE_INVALID)
    if len(parts) == 3:
        if not isinstance(parts[1], str) or parts[1] in _RESERVED:
            raise InvalidInput(
                f"disclosure {encoded[:40]!r} names no valid claim", ErrorCode.DISCLOSURE_INVALID
            )
        return parts[0], parts[1], parts[2]
    return parts[0], None, parts[1]


def _process(
    payload: Mapping[str, Any], encoded: list[str]
) -> tuple[dict[str, Any], list[Disclosure]]:
    """RFC 9901 §7.1 steps 3-5: the claims with the given disclosures put back; every
    disclosure must be referenced exactly once by a digest the issuer signed."""
    by_digest: dict[str, tuple[str, tuple[str, str | None, Any]]] = {}
    for e in encoded:
        d = sdjwt_digest(e)
        if d in by_digest:
            raise InvalidInput("a disclosure appears twice", ErrorCode.DISCLOSURE_INVALID)
        by_digest[d] = (e, _decode_disclosure(e))
    used: set[str] = set()
    seen_digests: set[str] = set()
    out_disclosures: list[Disclosure] = []

    def claim(d: str) -> tuple[str, tuple[str, str | None, Any]] | None:
        if not isinstance(d, str):
            raise InvalidInput("a digest is not a string", ErrorCode.DISCLOSURE_INVALID)
        if d in seen_digests:
            raise InvalidInput("a digest appears twice in the SD-JWT", ErrorCode.DISCLOSURE_INVALID)
        seen_digests.add(d)
        if d in by_digest:
            used.add(d)
            return by_digest[d]
        return None

    # Parsed JSON: dicts and lists (an isinstance of an ABC such as Mapping costs ~10x more,
    # and this runs for every node of the credential).
    def walk(node: Any, path: Path) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if (key in ("_sd", "_sd_alg") and path == ()) or key == "_sd":
                    continue
                out[key] = walk(value, (*path, key))
            sd = node.get("_sd", [])
            if not isinstance(sd, list):
                raise InvalidInput("_sd is not a list", ErrorCode.DISCLOSURE_INVALID)
            for d in sd:
                hit = claim(d)
                if hit is None:
                    continue  # undisclosed (or a decoy)
                enc, (s, name, value) = hit
                if name is None:
                    raise InvalidInput(
                        "an array-element disclosure in an object's _sd",
                        ErrorCode.DISCLOSURE_INVALID,
                    )
                if name in out:
                    raise InvalidInput(
                        f"disclosure overwrites claim {name!r}", ErrorCode.DISCLOSURE_INVALID
                    )
                out[name] = walk(value, (*path, name))
                out_disclosures.append(Disclosure(enc, s, name, value, (*path, name)))
            return out
        if isinstance(node, list):
            items: list[Any] = []
            for i, value in enumerate(node):
                if isinstance(value, dict) and len(value) == 1 and "..." in value:
                    hit = claim(value["..."])
                    if hit is None:
                        continue
                    enc, (s, name, inner) = hit
                    if name is not None:
                        raise InvalidInput(
                            "an object-property disclosure in an array",
                            ErrorCode.DISCLOSURE_INVALID,
                        )
                    items.append(walk(inner, (*path, i)))
                    out_disclosures.append(Disclosure(enc, s, None, inner, (*path, i)))
                else:
                    items.append(walk(value, (*path, i)))
            return items
        return node

    claims = walk(payload, ())
    unused = set(by_digest) - used
    if unused:
        raise InvalidInput(
            f"{len(unused)} disclosure(s) not signed by the issuer (changed or foreign)",
            ErrorCode.DISCLOSURE_INVALID,
        )
    return claims, out_disclosures


def disclosures(sd_jwt: str) -> list[Disclosure]:
    """The disclosures of an SD-JWT with the path of each claim (for a holder choosing what to
    show); the issuer's signature is not checked here."""
    jwt, encoded, _ = _split(sd_jwt)
    _, payload, _, _ = _parse_jwt(jwt, "the issuer-signed JWT", ErrorCode.INVALID_CREDENTIAL)
    return _process(payload, encoded)[1]


def present_sd_jwt(
    sd_jwt: str,
    disclose: Collection[Path],
    *,
    holder: Signer | None,
    nonce: str,
    aud: str,
    iat: int,
) -> str:
    """The holder's presentation: the disclosures of the ``disclose`` paths (and of their
    parents), then a Key Binding JWT over ``nonce``, ``aud``, ``iat`` and ``sd_hash``."""
    jwt, _, _ = _split(sd_jwt)
    chosen = [tuple(p) for p in disclose]
    keep = [
        d.encoded for d in disclosures(sd_jwt) if any(p[: len(d.path)] == d.path for p in chosen)
    ]
    presented = "~".join([jwt, *keep]) + "~"
    if holder is None:
        return presented
    sd_hash = _b64(hashlib.sha256(presented.encode("ascii")).digest())
    kb = _sign_jwt(
        {"alg": "EdDSA", "typ": KB_TYP},
        {"iat": iat, "aud": aud, "nonce": nonce, "sd_hash": sd_hash},
        holder,
    )
    return presented + kb


@dataclass(frozen=True, slots=True)
class VerifiedSdJwt:
    """What a verifier learns: the disclosed claims (with ``iss``, ``vct``, ``cnf`` ...), the
    issuer-signed header, and the disclosures."""

    claims: dict[str, Any]
    header: dict[str, Any]
    disclosures: tuple[Disclosure, ...]


def verify_sd_jwt(
    presentation: str,
    *,
    now: int,
    nonce: str | None,
    aud: str | None,
    resolver: Resolver | None = None,
    issuer_key: bytes | None = None,
    require_key_binding: bool = True,
    max_kb_age: int | None = 300,
) -> VerifiedSdJwt:
    """Verify an SD-JWT (+KB) at ``now`` (NumericDate seconds, given by the caller).

    The issuer's key is ``issuer_key`` if given, else the header's ``kid`` dereferenced
    through ``resolver``: it must be in the ``assertionMethod`` of the DID in ``iss``.
    ``max_kb_age``: how old (seconds) the KB-JWT's ``iat`` may be; None to not check it.
    """
    jwt, encoded, kb = _split(presentation)
    header, payload, signing_input, signature = _parse_jwt(
        jwt, "the issuer-signed JWT", ErrorCode.INVALID_CREDENTIAL
    )
    if header.get("alg") != "EdDSA":
        raise InvalidInput(
            f"alg must be EdDSA (Ed25519), got {header.get('alg')!r}", ErrorCode.INVALID_CREDENTIAL
        )
    if issuer_key is None:
        issuer_key = assertion_key(header, payload, resolver)
    if not _ed25519_ok(issuer_key, signing_input, signature):
        raise InvalidInput(
            "the issuer's signature does not verify: the SD-JWT was changed or "
            "another key signed it",
            ErrorCode.TAMPERED,
        )
    if payload.get("_sd_alg", "sha-256") != "sha-256":
        raise InvalidInput("only _sd_alg sha-256 is taken", ErrorCode.INVALID_CREDENTIAL)
    claims, found = _process(payload, encoded)
    exp, nbf = payload.get("exp"), payload.get("nbf")
    for key, value in (("exp", exp), ("nbf", nbf)):
        if value is not None and type(value) is not int:
            raise InvalidInput(
                f"{key} must be an integer NumericDate", ErrorCode.INVALID_CREDENTIAL
            )
    if exp is not None and now >= exp:
        raise InvalidInput(f"expired: exp is {exp}, now is {now}", ErrorCode.CREDENTIAL_EXPIRED)
    if "status" in payload:
        check_sd_jwt_status(payload["status"])
    if nbf is not None and now < nbf:
        raise InvalidInput(f"not valid before nbf {nbf}, now is {now}", ErrorCode.NOT_YET_VALID)
    if kb is None:
        if require_key_binding:
            raise InvalidInput(
                "no Key Binding JWT: the holder did not bind this presentation",
                ErrorCode.KEY_BINDING_INVALID,
            )
        return VerifiedSdJwt(claims, header, tuple(found))
    cnf = payload.get("cnf")
    holder_key = _jwk_key(cnf.get("jwk") if isinstance(cnf, Mapping) else None)
    kb_header, kb_payload, kb_input, kb_sig = _parse_jwt(
        kb, "the Key Binding JWT", ErrorCode.KEY_BINDING_INVALID
    )
    if kb_header.get("typ") != KB_TYP or kb_header.get("alg") != "EdDSA":
        raise InvalidInput(
            "the KB-JWT header must be {alg: EdDSA, typ: kb+jwt}", ErrorCode.KEY_BINDING_INVALID
        )
    if not _ed25519_ok(holder_key, kb_input, kb_sig):
        raise InvalidInput(
            "the KB-JWT is not signed by the holder's key (cnf)", ErrorCode.KEY_BINDING_INVALID
        )
    presented = presentation[: len(presentation) - len(kb)]
    if kb_payload.get("sd_hash") != _b64(hashlib.sha256(presented.encode("ascii")).digest()):
        raise InvalidInput(
            "the disclosures are not the ones the holder bound (sd_hash): one was dropped, "
            "added or changed",
            ErrorCode.DISCLOSURE_INVALID,
        )
    if nonce is not None and kb_payload.get("nonce") != nonce:
        raise InvalidInput("the KB-JWT nonce is not the challenge given", ErrorCode.WRONG_CHALLENGE)
    if aud is not None and kb_payload.get("aud") != aud:
        raise InvalidInput(
            f"the KB-JWT is for {str(kb_payload.get('aud'))[:80]!r}, not {aud[:80]!r}",
            ErrorCode.WRONG_DOMAIN,
        )
    kb_iat = kb_payload.get("iat")
    if type(kb_iat) is not int:
        raise InvalidInput("the KB-JWT has no integer iat", ErrorCode.KEY_BINDING_INVALID)
    if max_kb_age is not None and not now - max_kb_age <= kb_iat <= now + 60:
        raise InvalidInput(
            f"the KB-JWT iat {kb_iat} is not within {max_kb_age} s of now",
            ErrorCode.KEY_BINDING_INVALID,
        )
    return VerifiedSdJwt(claims, header, tuple(found))
