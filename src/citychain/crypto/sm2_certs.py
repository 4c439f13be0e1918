"""SM2 X.509 certificates ("GM certificates"): issued, parsed and verified here.

Theory of operation
-------------------
An ``sm2-sm3`` chain's organisations certify their nodes and members with SM2 keys, so their
certificates are signed with SM2-with-SM3 (OID 1.2.156.10197.1.501, GM/T 0015) and carry SM2
public keys as ``id-ecPublicKey`` on the named curve 1.2.156.10197.1.301, which is what
``openssl genpkey -algorithm SM2`` with ``openssl req`` makes. Nothing off the shelf does the
whole job, which is why this module builds and checks the certificates itself:

* ``cryptography`` parses such a certificate but can neither sign nor verify SM2 (and refuses
  the curve as a public key); no well-kept Python library signs SM2 X.509 certificates;
* OpenSSL 3.0's TLS refuses SM2 certificates (``ssl_set_cert: unknown certificate type``),
  and its X.509 verification checks SM2 signatures under an *empty* distinguishing ID unless
  told ``-vfyopt distid:1234567812345678``, so the standard ID that GM/T 0009 prescribes, and
  that every certificate here is signed under, would fail by default.

So the DER is built and read with ``asn1crypto`` (a pure-Python ASN.1 library, well kept and
already a node dependency through python-pkcs11), and the SM2 signature is made and checked by
:class:`citychain.crypto.sm2.Sm2Suite` (libcrypto 3 by ctypes) over the exact TBSCertificate
bytes, always under an explicit ID: ``1234567812345678`` by default (a parameter). Interop is
tested both ways with the OpenSSL CLI: what we issue verifies with ``openssl verify -vfyopt
distid:...``, and a CA and leaf made by ``openssl req``/``openssl x509 -req -sm3 -sigopt
distid:...`` verify here.

What :func:`parse_sm2_cert` accepts: one certificate, PEM or DER, at most
:data:`MAX_CERT_BYTES`, in canonical DER (the bytes must be what re-encoding the parsed
structure gives, so one certificate has one encoding and one fingerprint), signed with
SM2-with-SM3 (no parameters, the same algorithm inside and outside the TBS) for an SM2 point
on the curve, with a 64-byte range-checked ``r || s`` signature, a positive serial, at most one
CN and one O, no extension twice, and values nested at most 32 deep (checked by a loop before
asn1crypto, whose parser recurses, sees the bytes). A certificate of another suite (ECDSA,
Ed25519, RSA) is refused with ``wrong_suite``; bytes that are not a certificate with
``bad_arguments``.

What :func:`verify_sm2_cert` checks, in order, and the code of each refusal:

1. the issuing certificate is a CA (basicConstraints CA=true; keyCertSign if it has
   keyUsage): ``unauthorized``;
2. the certificate's issuer name is the CA's subject name, byte for byte: ``unauthorized``;
3. the CA's SM2 key signed the TBS bytes under the ID: ``unauthorized`` (a wrong CA, a
   tampered certificate and a wrong ID all look the same here; the message names the ID);
4. it is no CA certificate issued by a CA of pathLenConstraint 0 (unless it is that CA
   itself), and has no critical extension this module does not know: ``unauthorized``;
5. ``at_ms`` lies in its validity window, both ends included (RFC 5280 4.1.2.5; X.509 keeps
   whole seconds): ``not_yet_valid`` before it, ``expired`` after it.

(An unusable ``distid`` is ``bad_distid``; the refusals of parsing come first.)

It is *deterministic*, because it may run where a verdict must be the same on every node and
at every replay: the time is ``at_ms`` (a block time, given by the caller; never the wall
clock), the only trust anchor is the CA certificate handed in (no trust store, no revocation
fetch), and each refusal is :class:`~citychain.errors.InvalidInput` with a message naming the
one thing wrong. Parsing is done by ``asn1crypto``, so the nodes of a chain run the same version
of it. The CA's own validity window is not checked (as in :mod:`citychain.crypto.member_certs`:
whoever keeps the list of CAs decides whether a CA is trusted at a height).

Issued certificates: :func:`issue_sm2_ca` (self-signed ``CN=<org name> GM CA, O=<org id>``,
CA=true pathlen 0 and keyCertSign, cRLSign, both critical, SKI), :func:`issue_sm2_node_cert`
(``CN=<node>, O=<org>``, SAN URI ``citychain://<chain>/<node>``, digitalSignature and CA=false
critical, EKU clientAuth and serverAuth, SKI, AKI) and :func:`issue_sm2_member_cert` (the SM2
twin of :func:`citychain.crypto.member_certs.issue_member_cert`: ``CN=<name>, O=<org>``, one OU
per role, digitalSignature and CA=false critical, EKU clientAuth, SKI, AKI). Key identifiers
are SHA-1 of the subject public key (RFC 5280 4.2.1.2 method 1, as OpenSSL makes them; an
identifier, not a security function). Serial numbers are random, 159 bits.

**CA keys as PEM.** An SM2 CA's secret may be kept as PKCS#8 PEM, the format ``openssl genpkey
-algorithm SM2`` writes (``id-ecPublicKey`` on the SM2 curve), which ``cryptography`` cannot load
(it refuses the curve). :func:`sm2_private_key_pem` writes one, encrypted under a passphrase as
PBES2 (PBKDF2-HMAC-SHA256 with AES-256-CBC, the format ``openssl pkey -aes256`` writes, or with
SM4-CBC, what ``openssl pkcs8 -topk8 -v2 sm4-cbc`` writes and what an ``sm2-sm3`` network keeps;
``openssl pkey -passin`` opens both; 600,000 rounds by default, OWASP's figure, where those use
2,048), and :func:`sm2_secret_from_pem` reads it back, as well as OpenSSL's unencrypted PKCS#8
and SEC1 ``EC PRIVATE KEY`` forms. The encryption is :mod:`citychain.crypto.pkcs8`'s, shared
with the nodes' TLS keys.

This module imports ``asn1crypto``, a node dependency; nothing imports it when the SDK loads.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

# asn1crypto has no type hints: its values are typed Any here.
from asn1crypto import algos, core, pem  # type: ignore[import-untyped]
from asn1crypto import keys as akeys
from asn1crypto import x509 as ax

from citychain.crypto._der import PARSE_ERRORS, unarmor
from citychain.crypto._der import check_depth as _check_depth
from citychain.crypto.pkcs8 import (
    PBKDF2_ROUNDS,
    Pkcs8Cipher,
    check_cipher,
    decrypt_pkcs8,
    encrypt_pkcs8,
)
from citychain.crypto.sm2 import DEFAULT_DISTID, Sm2Suite, check_signature
from citychain.errors import ConfigError, ErrorCode, InvalidInput

__all__ = [
    "BACKDATE",
    "MAX_CERT_BYTES",
    "SM2_CURVE_OID",
    "SM2_WITH_SM3_OID",
    "Sm2Cert",
    "is_sm2_cert",
    "issue_sm2_ca",
    "issue_sm2_member_cert",
    "issue_sm2_node_cert",
    "parse_sm2_cert",
    "sm2_node_uri",
    "sm2_private_key_pem",
    "sm2_secret_from_pem",
    "verify_sm2_cert",
]

#: SM2 signature with SM3 (GM/T 0006, GB/T 33560).
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"
#: The SM2 recommended curve, as the named curve of an ``id-ecPublicKey`` key.
SM2_CURVE_OID = "1.2.156.10197.1.301"
#: Largest certificate (PEM or DER) accepted, as for member certificates.
MAX_CERT_BYTES = 16 * 1024
#: How far in the past a default validity window starts (clock differences between machines).
BACKDATE = timedelta(minutes=5)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_MAX_ATTR = 64
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_CHAIN_ID = 64
#: Extensions that may be critical (RFC 5280: refuse a certificate with any other critical one).
_KNOWN_CRITICAL = frozenset(
    {
        "2.5.29.19",  # basicConstraints
        "2.5.29.15",  # keyUsage
        "2.5.29.37",  # extendedKeyUsage
        "2.5.29.17",  # subjectAltName
    }
)
_SHORT = {
    "common_name": "CN",
    "organization_name": "O",
    "organizational_unit_name": "OU",
    "country_name": "C",
    "locality_name": "L",
    "state_or_province_name": "ST",
}


#: What a parse failure of asn1crypto (lazy, so failures surface on access) can raise.
@dataclass(frozen=True, slots=True)
class Sm2Cert:
    """What an SM2 certificate says, parsed (not verified: see :func:`verify_sm2_cert`)."""

    #: The certificate's DER encoding.
    der: bytes
    #: The subject's CN ("" if none) and O ("" if none).
    subject_cn: str
    subject_o: str
    #: The subject's OU values, in certificate order.
    subject_ous: tuple[str, ...]
    #: subjectAltName URIs, in certificate order.
    uris: tuple[str, ...]
    #: The subject's SM2 public key, 65 bytes ``04 || x || y``.
    public_key: bytes
    #: basicConstraints CA=true.
    is_ca: bool
    #: Validity window, milliseconds since the Unix epoch (inclusive at both ends).
    not_before_ms: int
    not_after_ms: int
    serial: int
    #: DER of the issuer and subject names (compared byte for byte).
    issuer_der_name: bytes
    subject_der_name: bytes
    #: SHA-256 of :attr:`der` (like every other certificate fingerprint of citychain).
    fingerprint: bytes
    #: The TBSCertificate bytes the signature covers, and the signature as 64 bytes r || s.
    tbs: bytes
    signature: bytes
    #: basicConstraints pathLenConstraint, if any.
    path_len: int | None
    #: keyUsage bit names (``digital_signature``, ``key_cert_sign``...), sorted; None if absent.
    key_usage: tuple[str, ...] | None
    #: extendedKeyUsage purposes (``client_auth``, ``server_auth`` or dotted OIDs); None if absent.
    ext_key_usage: tuple[str, ...] | None
    #: Subject and authority key identifiers, if present.
    ski: bytes | None
    aki: bytes | None
    #: Dotted OIDs of critical extensions this module does not know.
    unknown_critical: tuple[str, ...]

    @property
    def subject_text(self) -> str:
        """The subject as ``CN=..., O=..., OU=...`` (certificate order), for messages."""
        return _name_text(self.subject_der_name)

    @property
    def issuer_text(self) -> str:
        return _name_text(self.issuer_der_name)


# -- small helpers ----------------------------------------------------------------------------


def _bad(message: str, code: ErrorCode = ErrorCode.BAD_ARGUMENTS) -> InvalidInput:
    return InvalidInput(message, code)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MS


def _fmt_ms(at_ms: int) -> str:
    try:
        moment = _EPOCH + at_ms * _ONE_MS
    except OverflowError:
        return f"{at_ms} ms since the epoch"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def _name_text(name_der: bytes) -> str:
    try:
        name = ax.Name.load(name_der)
        parts = []
        for rdn in name.chosen:
            for atv in rdn:
                kind = atv["type"].native
                parts.append(f"{_SHORT.get(kind, kind)}={atv['value'].native}")
        return ", ".join(parts) or "(empty name)"
    except PARSE_ERRORS:  # pragma: no cover - names were parsed once already
        return "(unreadable name)"


def _key_id(public_key: bytes) -> bytes:
    # RFC 5280 4.2.1.2 method 1 (what OpenSSL makes): SHA-1 of the subjectPublicKey bits. An
    # identifier to find the issuer by, not a security function.
    return hashlib.sha1(public_key, usedforsecurity=False).digest()


def _suite(distid: bytes) -> Sm2Suite:
    try:
        return Sm2Suite(distid)
    except ConfigError as exc:
        raise InvalidInput(exc.message, ErrorCode.BAD_DISTID) from None


def _describe_spki(spki: akeys.PublicKeyInfo) -> str:
    algorithm = spki["algorithm"]["algorithm"].native
    if algorithm == "ec":
        params = spki["algorithm"]["parameters"]
        curve = params.chosen.native if params.name == "named" else "explicit parameters"
        return f"an EC key on curve {curve}"
    return f"a key of algorithm {algorithm}"


# -- parsing ----------------------------------------------------------------------------------


def _unarmor(data: bytes) -> bytes:
    return unarmor(data, "CERTIFICATE", "certificate", "a certificate", MAX_CERT_BYTES)


def _attributes(name: ax.Name) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for rdn in name.chosen:
        for atv in rdn:
            value = atv["value"].native
            if not isinstance(value, str):
                raise ValueError(f"name attribute {atv['type'].native} is not text")
            found.setdefault(atv["type"].native, []).append(value)
    return found


def _signature_name(algorithm: Any) -> str:
    native = str(algorithm["algorithm"].native)
    return {
        "sha256_ecdsa": "ecdsa-with-SHA256",
        "sha384_ecdsa": "ecdsa-with-SHA384",
        "sha512_ecdsa": "ecdsa-with-SHA512",
        "sha256_rsa": "sha256WithRSAEncryption",
        "ed25519": "Ed25519",
        "ed448": "Ed448",
    }.get(native, native)


def _extensions(tbs: ax.TbsCertificate) -> dict[str, Any]:
    out: dict[str, Any] = {"unknown_critical": []}
    seen: set[str] = set()
    for ext in tbs["extensions"]:
        oid = ext["extn_id"].dotted
        if oid in seen:
            raise ValueError(f"extension {oid} appears twice (RFC 5280 allows one)")
        seen.add(oid)
        critical = bool(ext["critical"].native)
        name = ext["extn_id"].native
        value = ext["extn_value"].parsed
        if name == "basic_constraints":
            out["is_ca"] = bool(value["ca"].native)
            out["path_len"] = value["path_len_constraint"].native
        elif name == "key_usage":
            out["key_usage"] = tuple(sorted(value.native))
        elif name == "extended_key_usage":
            out["ext_key_usage"] = tuple(value.native)
        elif name == "subject_alt_name":
            out["uris"] = tuple(
                bytes(g.chosen.contents).decode("ascii")
                for g in value
                if g.name == "uniform_resource_identifier"
            )
        elif name == "key_identifier":
            out["ski"] = bytes(value.native)
        elif name == "authority_key_identifier":
            ki = value["key_identifier"].native
            out["aki"] = bytes(ki) if ki is not None else None
        if critical and oid not in _KNOWN_CRITICAL:
            out["unknown_critical"].append(oid)
    return out


def _parse(der: bytes) -> Sm2Cert:
    _check_depth(der)
    cert = ax.Certificate.load(der, strict=True)
    if cert.dump(force=True) != der:
        raise ValueError("not in canonical DER (re-encoding it gives other bytes)")
    tbs = cert["tbs_certificate"]
    outer, inner = cert["signature_algorithm"], tbs["signature"]
    for algorithm in (outer, inner):
        if algorithm["algorithm"].dotted != SM2_WITH_SM3_OID:
            raise InvalidInput(
                f"signed with {_signature_name(algorithm)}, not SM2-with-SM3 "
                f"({SM2_WITH_SM3_OID}): a certificate of another crypto suite",
                ErrorCode.WRONG_SUITE,
            )
        if algorithm["parameters"].native is not None:
            raise ValueError("the SM2-with-SM3 algorithm identifier carries parameters")
    spki = tbs["subject_public_key_info"]
    params = spki["algorithm"]["parameters"]
    if (
        spki["algorithm"]["algorithm"].native != "ec"
        or params.name != "named"
        or params.chosen.dotted != SM2_CURVE_OID
    ):
        raise InvalidInput(
            f"the subject key is {_describe_spki(spki)}, not SM2 ({SM2_CURVE_OID}): "
            "a certificate of another crypto suite",
            ErrorCode.WRONG_SUITE,
        )
    public_key = bytes(spki["public_key"].native)
    suite = Sm2Suite()
    try:
        suite.check_public_key(public_key)
    except InvalidInput as exc:
        raise InvalidInput(f"subject key: {exc.message}", exc.code) from None

    sig_bits = cert["signature_value"]
    if sig_bits.unused_bits:  # pragma: no cover - the canonical DER check refuses them first
        raise ValueError("the signature BIT STRING has unused bits")
    sig = algos.DSASignature.load(bytes(sig_bits.native), strict=True)
    if sig.dump(force=True) != bytes(sig_bits.native):
        raise ValueError("the signature is not a DER SEQUENCE of two INTEGERs")
    r, s = sig["r"].native, sig["s"].native
    if not (0 < r < 2**256 and 0 < s < 2**256):
        raise InvalidInput("signature r or s is outside [1, n-1]", ErrorCode.SIGNATURE_OUT_OF_RANGE)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    try:
        check_signature(raw)
    except InvalidInput as exc:
        raise InvalidInput(f"signature: {exc.message}", exc.code) from None

    serial = tbs["serial_number"].native
    if serial <= 0:
        raise ValueError(f"serial number {serial} is not positive (RFC 5280)")
    subject = _attributes(tbs["subject"])
    for key, label in (("common_name", "CN"), ("organization_name", "O")):
        if len(subject.get(key, [])) > 1:
            raise ValueError(f"subject names {len(subject[key])} {label}s, at most one is taken")
    _attributes(tbs["issuer"])
    ext = _extensions(tbs)
    validity = tbs["validity"]
    return Sm2Cert(
        der=der,
        subject_cn=subject.get("common_name", [""])[0],
        subject_o=subject.get("organization_name", [""])[0],
        subject_ous=tuple(subject.get("organizational_unit_name", [])),
        uris=ext.get("uris", ()),
        public_key=public_key,
        is_ca=ext.get("is_ca", False),
        not_before_ms=_ms(validity["not_before"].native),
        not_after_ms=_ms(validity["not_after"].native),
        serial=serial,
        issuer_der_name=tbs["issuer"].dump(),
        subject_der_name=tbs["subject"].dump(),
        fingerprint=hashlib.sha256(der).digest(),
        tbs=tbs.dump(),
        signature=raw,
        path_len=ext.get("path_len"),
        key_usage=ext.get("key_usage"),
        ext_key_usage=ext.get("ext_key_usage"),
        ski=ext.get("ski"),
        aki=ext.get("aki"),
        unknown_critical=tuple(ext["unknown_critical"]),
    )


def parse_sm2_cert(data: bytes) -> Sm2Cert:
    """Parse one SM2 certificate, PEM or DER (see the module's theory of operation).

    :class:`InvalidInput`: ``too_large`` above :data:`MAX_CERT_BYTES`; ``bad_arguments`` for
    bytes that are not one canonical DER certificate; ``wrong_suite`` for a certificate of
    another suite (signature algorithm or key not SM2); ``point_not_on_curve``,
    ``bad_public_key``, ``signature_out_of_range`` for an unusable key or signature.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _bad(f"not a certificate: expected bytes, got {type(data).__name__}")
    der = _unarmor(bytes(data))
    try:
        return _parse(der)
    except InvalidInput:
        raise
    except PARSE_ERRORS as exc:
        raise _bad(f"not an SM2 certificate: {len(der)} bytes that are not one ({exc})") from None


def is_sm2_cert(data: bytes) -> bool:
    """Whether ``data`` (PEM or DER) is a certificate signed with SM2-with-SM3 or carrying an
    SM2 key: a cheap look that never raises, to pick the code path for a certificate."""
    try:
        der = _unarmor(bytes(data))
        _check_depth(der)
        cert = ax.Certificate.load(der)
        tbs = cert["tbs_certificate"]
        if cert["signature_algorithm"]["algorithm"].dotted == SM2_WITH_SM3_OID:
            return True
        params = tbs["subject_public_key_info"]["algorithm"]["parameters"]
        return bool(params.name == "named" and params.chosen.dotted == SM2_CURVE_OID)
    except (InvalidInput, *PARSE_ERRORS):
        return False


def _as_cert(value: bytes | Sm2Cert, owner: str) -> Sm2Cert:
    if isinstance(value, Sm2Cert):
        return value
    try:
        return parse_sm2_cert(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{owner}: {exc.message}", exc.code) from None


# -- verifying --------------------------------------------------------------------------------


def verify_sm2_cert(
    cert: bytes | Sm2Cert,
    ca: bytes | Sm2Cert,
    *,
    at_ms: int,
    distid: bytes = DEFAULT_DISTID,
) -> Sm2Cert:
    """Check that the CA certificate ``ca`` issued ``cert`` and that ``cert`` is valid at
    ``at_ms`` (milliseconds since the Unix epoch); the parsed ``cert``.

    Deterministic: never reads the clock; trusts only ``ca``. The checks and their codes are in
    the module's theory of operation. ``cert`` may be ``ca`` itself (a self-signed CA).
    """
    leaf = _as_cert(cert, "certificate")
    issuer = _as_cert(ca, "CA certificate")
    if not issuer.is_ca:
        raise _bad(
            f"CA certificate {issuer.subject_text!r} is not a CA (basicConstraints CA=false)",
            ErrorCode.UNAUTHORIZED,
        )
    if issuer.key_usage is not None and "key_cert_sign" not in issuer.key_usage:
        raise _bad(
            f"CA certificate {issuer.subject_text!r}: its keyUsage does not allow signing "
            "certificates (keyCertSign)",
            ErrorCode.UNAUTHORIZED,
        )
    if leaf.issuer_der_name != issuer.subject_der_name:
        raise _bad(
            f"certificate {leaf.subject_text!r} was issued by {leaf.issuer_text!r}, not by this "
            f"CA ({issuer.subject_text!r})",
            ErrorCode.UNAUTHORIZED,
        )
    if not _suite(distid).verify(issuer.public_key, leaf.tbs, leaf.signature):
        raise _bad(
            f"certificate {leaf.subject_text!r}: its SM2 signature does not verify with the "
            f"key of CA {issuer.subject_text!r} under the ID {distid.decode('latin-1')!r} "
            "(another CA, altered bytes or another ID)",
            ErrorCode.UNAUTHORIZED,
        )
    if leaf.is_ca and leaf.der != issuer.der and issuer.path_len == 0:
        raise _bad(
            f"certificate {leaf.subject_text!r} is a CA, and its issuer's pathLenConstraint 0 "
            "allows end-entity certificates only",
            ErrorCode.UNAUTHORIZED,
        )
    if leaf.unknown_critical:
        raise _bad(
            f"certificate {leaf.subject_text!r} has an unknown critical extension "
            f"{leaf.unknown_critical[0]}",
            ErrorCode.UNAUTHORIZED,
        )
    if at_ms < leaf.not_before_ms:
        raise _bad(
            f"certificate {leaf.subject_text!r} is not yet valid: valid from "
            f"{_fmt_ms(leaf.not_before_ms)}, the time checked is {_fmt_ms(at_ms)}",
            ErrorCode.NOT_YET_VALID,
        )
    if at_ms > leaf.not_after_ms:
        raise _bad(
            f"certificate {leaf.subject_text!r} expired at {_fmt_ms(leaf.not_after_ms)} "
            f"(the time checked is {_fmt_ms(at_ms)})",
            ErrorCode.EXPIRED,
        )
    return leaf


# -- issuing ----------------------------------------------------------------------------------


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise _bad(f"{what} must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC).replace(microsecond=0)


def _validity(
    not_before: datetime | None, not_after: datetime | None, valid_days: int
) -> tuple[datetime, datetime]:
    start = (
        _aware(not_before, "not_before")
        if not_before is not None
        else (datetime.now(UTC) - BACKDATE).replace(microsecond=0)
    )
    if not_after is not None:
        end = _aware(not_after, "not_after")
    else:
        if valid_days <= 0:
            raise _bad(f"valid_days must be positive, got {valid_days}")
        end = start + timedelta(days=valid_days)
    if end <= start:
        raise _bad(f"not_after ({end.isoformat()}) must be after not_before ({start.isoformat()})")
    if start.year < 1950 or end.year > 9999:  # pragma: no cover - datetime stops at 9999
        raise _bad("X.509 validity must lie between 1950 and 9999")
    return start, end


def _time(moment: datetime) -> ax.Time:
    # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    return ax.Time(name="utc_time" if moment.year < 2050 else "general_time", value=moment)


def _check_text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{what} must be text, got {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad(f"{what} {value!r} is not valid Unicode text") from None
    if not 0 < size <= _MAX_ATTR:
        raise _bad(f"{what} must be 1 to {_MAX_ATTR} bytes of UTF-8, got {value!r}")
    return value


def _name(cn: str, org: str, ous: Sequence[str] = ()) -> ax.Name:
    # One attribute per RDN, UTF8String, in the order CN, O, OU... (what cryptography writes
    # for the Ed25519 member certificates).
    def rdn(kind: str, value: str) -> ax.RelativeDistinguishedName:
        return ax.RelativeDistinguishedName(
            [
                ax.NameTypeAndValue(
                    {"type": kind, "value": ax.DirectoryString(name="utf8_string", value=value)}
                )
            ]
        )

    rdns = [rdn("common_name", cn), rdn("organization_name", org)]
    rdns += [rdn("organizational_unit_name", ou) for ou in ous]
    return ax.Name(name="", value=ax.RDNSequence(rdns))


def _serial(serial: int | None) -> int:
    if serial is None:
        while True:
            value = int.from_bytes(secrets.token_bytes(20), "big") >> 1
            if value:
                return value
    if not 0 < serial < 2**159:
        raise _bad(f"serial must be between 1 and 2**159 - 1, got {serial}")
    return serial


def _subject_key(public_key: bytes, what: str) -> bytes:
    if not isinstance(public_key, bytes):
        raise _bad(f"{what} must be bytes")
    if len(public_key) != 65:
        raise _bad(
            f"{what} is {len(public_key)} bytes; an SM2 public key is 65 (04 || x || y)"
            + (", a 32-byte key is of another suite (Ed25519)" if len(public_key) == 32 else ""),
            ErrorCode.WRONG_SUITE if len(public_key) == 32 else ErrorCode.BAD_PUBLIC_KEY,
        )
    try:
        Sm2Suite().check_public_key(public_key)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}", exc.code) from None
    return public_key


def _ext(extn_id: str, value: Any, *, critical: bool = False) -> ax.Extension:
    return ax.Extension({"extn_id": extn_id, "critical": critical, "extn_value": value})


def _key_usage(*bits: str) -> ax.KeyUsage:
    return ax.KeyUsage(set(bits))


def _sign(
    tbs: ax.TbsCertificate, secret: bytes, distid: bytes, *, expect_key: bytes | None = None
) -> bytes:
    suite = _suite(distid)
    if expect_key is not None and suite.public_key(secret) != expect_key:
        raise ConfigError("the CA secret key does not belong to the CA certificate")
    raw = suite.sign(secret, tbs.dump())
    signature = algos.DSASignature(
        {"r": int.from_bytes(raw[:32], "big"), "s": int.from_bytes(raw[32:], "big")}
    )
    cert = ax.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": SM2_WITH_SM3_OID},
            "signature_value": signature.dump(),
        }
    )
    return bytes(pem.armor("CERTIFICATE", cert.dump()))


def _tbs(
    *,
    serial: int,
    issuer: ax.Name,
    subject: ax.Name,
    public_key: bytes,
    start: datetime,
    end: datetime,
    extensions: list[ax.Extension],
) -> ax.TbsCertificate:
    return ax.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": {"algorithm": SM2_WITH_SM3_OID},
            "issuer": issuer,
            "validity": {"not_before": _time(start), "not_after": _time(end)},
            "subject": subject,
            "subject_public_key_info": {
                "algorithm": {
                    "algorithm": "ec",
                    "parameters": akeys.ECDomainParameters(name="named", value=SM2_CURVE_OID),
                },
                "public_key": public_key,
            },
            "extensions": extensions,
        }
    )


def issue_sm2_ca(
    org_id: str,
    org_name: str,
    secret: bytes,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    valid_days: int = 3650,
    serial: int | None = None,
    distid: bytes = DEFAULT_DISTID,
) -> bytes:
    """PEM of a self-signed SM2 CA for organisation ``org_id``, keyed by the 32-byte SM2
    ``secret``: ``CN=<org_name> GM CA, O=<org_id>``; basicConstraints CA=true, pathlen 0 and
    keyUsage keyCertSign, cRLSign (both critical); SKI. The window starts at ``not_before``
    (default: now minus :data:`BACKDATE`) and ends at ``not_after`` (default: ``valid_days``
    later). ``bad_arguments`` for unusable arguments."""
    _check_text(org_id, "organisation id")
    _check_text(f"{org_name} GM CA", "CA name (organisation name + ' GM CA')")
    suite = _suite(distid)
    public_key = suite.public_key(secret)
    start, end = _validity(not_before, not_after, valid_days)
    name = _name(f"{org_name} GM CA", org_id)
    tbs = _tbs(
        serial=_serial(serial),
        issuer=name,
        subject=name,
        public_key=public_key,
        start=start,
        end=end,
        extensions=[
            _ext("basic_constraints", {"ca": True, "path_len_constraint": 0}, critical=True),
            _ext("key_usage", _key_usage("key_cert_sign", "crl_sign"), critical=True),
            _ext("key_identifier", _key_id(public_key)),
        ],
    )
    return _sign(tbs, secret, distid)


def _issuing_ca(ca_pem: bytes, org_id: str) -> Sm2Cert:
    try:
        ca = parse_sm2_cert(ca_pem)
    except InvalidInput as exc:
        raise ConfigError(f"CA certificate: {exc.message}", exc.code) from None
    if not ca.is_ca:
        raise ConfigError(f"certificate {ca.subject_text} is not a CA (basicConstraints CA=false)")
    if ca.subject_o != org_id:
        raise _bad(
            f"the CA of organisation {ca.subject_o or '(none)'!r} cannot issue a certificate "
            f"for organisation {org_id!r}"
        )
    return ca


def _leaf(
    ca_pem: bytes,
    ca_secret: bytes,
    subject_key: bytes,
    subject: ax.Name,
    org_id: str,
    extensions: list[ax.Extension],
    *,
    not_before: datetime | None,
    not_after: datetime | None,
    valid_days: int,
    serial: int | None,
    distid: bytes,
) -> bytes:
    ca = _issuing_ca(ca_pem, org_id)
    start, end = _validity(not_before, not_after, valid_days)
    tbs = _tbs(
        serial=_serial(serial),
        issuer=ax.Name.load(ca.subject_der_name),
        subject=subject,
        public_key=subject_key,
        start=start,
        end=end,
        extensions=[
            _ext("basic_constraints", {"ca": False}, critical=True),
            _ext("key_usage", _key_usage("digital_signature"), critical=True),
            *extensions,
            _ext("key_identifier", _key_id(subject_key)),
            _ext(
                "authority_key_identifier",
                {"key_identifier": ca.ski or _key_id(ca.public_key)},
            ),
        ],
    )
    return _sign(tbs, ca_secret, distid, expect_key=ca.public_key)


def sm2_node_uri(chain_id: str, node_name: str) -> str:
    """``citychain://<chain>/<node>``: the same URI as :func:`citychain.p2p.certs.node_uri`
    (the crypto layer sits below p2p, so it cannot import it; a test holds the two equal)."""
    return f"citychain://{quote(chain_id, safe='')}/{quote(node_name, safe='')}"


def issue_sm2_node_cert(
    ca_pem: bytes,
    ca_secret: bytes,
    node_public_key: bytes,
    *,
    node_name: str,
    chain_id: str,
    org_id: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    valid_days: int = 365,
    serial: int | None = None,
    distid: bytes = DEFAULT_DISTID,
) -> bytes:
    """PEM of an SM2 node certificate for the 65-byte ``node_public_key``, signed by the SM2 CA
    ``ca_pem`` with its secret ``ca_secret``: ``CN=<node_name>, O=<org_id>``, SAN URI
    :func:`sm2_node_uri`, keyUsage digitalSignature and basicConstraints CA=false (critical),
    EKU clientAuth and serverAuth, SKI, AKI. The CA's O must be ``org_id``."""
    if not isinstance(node_name, str) or not _NODE_NAME.fullmatch(node_name):
        raise _bad(
            f"node name {node_name!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if not isinstance(chain_id, str) or not 0 < len(chain_id) <= _MAX_CHAIN_ID:
        raise _bad(f"chain id must be 1 to {_MAX_CHAIN_ID} characters, got {chain_id!r}")
    _check_text(org_id, "organisation id")
    key = _subject_key(node_public_key, "node public key")
    uri = ax.GeneralName(
        name="uniform_resource_identifier", value=sm2_node_uri(chain_id, node_name)
    )
    return _leaf(
        ca_pem,
        ca_secret,
        key,
        _name(node_name, org_id),
        org_id,
        [
            _ext("extended_key_usage", ["client_auth", "server_auth"]),
            _ext("subject_alt_name", [uri]),
        ],
        not_before=not_before,
        not_after=not_after,
        valid_days=valid_days,
        serial=serial,
        distid=distid,
    )


def issue_sm2_member_cert(
    ca_pem: bytes,
    ca_secret: bytes,
    member_public_key: bytes,
    *,
    name: str,
    org_id: str,
    roles: Sequence[str],
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    valid_days: int = 365,
    serial: int | None = None,
    distid: bytes = DEFAULT_DISTID,
) -> bytes:
    """PEM of an SM2 member certificate (certificate identity mode) for the account key
    ``member_public_key``, the twin of :func:`citychain.crypto.member_certs.issue_member_cert`:
    ``CN=<name>, O=<org_id>`` and one ``OU`` per role (sorted, duplicates dropped); keyUsage
    digitalSignature and basicConstraints CA=false (critical), EKU clientAuth, SKI, AKI."""
    _check_text(name, "member name")
    _check_text(org_id, "organisation id")
    if isinstance(roles, str):
        raise _bad(f"roles must be a sequence of role names, not the string {roles!r}")
    role_names = tuple(sorted({_check_text(role, "role") for role in roles}))
    key = _subject_key(member_public_key, "member public key")
    return _leaf(
        ca_pem,
        ca_secret,
        key,
        _name(name, org_id, role_names),
        org_id,
        [_ext("extended_key_usage", ["client_auth"])],
        not_before=not_before,
        not_after=not_after,
        valid_days=valid_days,
        serial=serial,
        distid=distid,
    )


# -- CA keys as PEM ---------------------------------------------------------------------------


def _pkcs8(secret: bytes) -> bytes:
    # PrivateKeyInfo { 0, ecPublicKey + SM2 curve, ECPrivateKey { 1, d, [1] public key } }, as
    # OpenSSL writes it. Assembled from its parts: asn1crypto's PrivateKeyInfo wants a key size
    # registered for the curve, which would mean changing its process-wide curve table.
    public_key = Sm2Suite().public_key(secret)  # checks the secret's range
    sec1 = akeys.ECPrivateKey(
        {
            "version": "ecPrivkeyVer1",
            "private_key": int.from_bytes(secret, "big"),
            "public_key": public_key,
        }
    )
    sec1.set_key_size(32)  # d is always 32 bytes, leading zeros kept (SEC 1 C.4)
    algorithm = akeys.PrivateKeyAlgorithm(
        {
            "algorithm": "ec",
            "parameters": akeys.ECDomainParameters(name="named", value=SM2_CURVE_OID),
        }
    )
    body = core.Integer(0).dump() + algorithm.dump() + core.OctetString(sec1.dump()).dump()
    return bytes(core.Sequence(contents=body).dump())


def sm2_private_key_pem(
    secret: bytes,
    passphrase: str | None = None,
    *,
    rounds: int = PBKDF2_ROUNDS,
    cipher: Pkcs8Cipher = "aes-256-cbc",
) -> bytes:
    """The SM2 secret ``secret`` as PKCS#8 PEM (OpenSSL's form), encrypted under
    ``passphrase`` when one is given (PBES2 with ``cipher``, ``aes-256-cbc`` or ``sm4-cbc``:
    :func:`citychain.crypto.pkcs8.encrypt_pkcs8`). ``rounds`` of PBKDF2: the default costs
    ~0.3 s here; OpenSSL's own default is 2,048."""
    cipher = check_cipher(cipher)
    plain = _pkcs8(secret)
    if passphrase is None:
        return bytes(pem.armor("PRIVATE KEY", plain))
    if not passphrase:
        raise _bad("the passphrase for an SM2 key PEM is empty")
    return encrypt_pkcs8(plain, passphrase, cipher=cipher, rounds=rounds)


def _sec1_secret(sec1: Any, *, curve_required: bool) -> bytes:
    params = sec1["parameters"]
    if params.native is None:
        if curve_required:
            raise ValueError("the EC private key names no curve")
    elif params.name != "named" or params.chosen.dotted != SM2_CURVE_OID:
        raise InvalidInput(
            f"the private key is on curve {params.chosen.native}, not SM2 ({SM2_CURVE_OID})",
            ErrorCode.WRONG_SUITE,
        )
    d = sec1["private_key"].native
    if not isinstance(d, int) or d.bit_length() > 256:
        raise ValueError("the private scalar is not a 32-byte integer")
    secret = d.to_bytes(32, "big")
    public_key = Sm2Suite().public_key(secret)  # bad_arguments when d is out of range
    stated = sec1["public_key"].native
    if stated is not None and bytes(stated) != public_key:
        raise ValueError("the public key in the file does not belong to its secret")
    return secret


def sm2_secret_from_pem(data: bytes, passphrase: str | None = None) -> bytes:
    """The 32-byte secret of an SM2 private key PEM: PKCS#8 (``PRIVATE KEY``, or ``ENCRYPTED
    PRIVATE KEY`` with ``passphrase``) or SEC1 (``EC PRIVATE KEY``, or ``SM2 PRIVATE KEY`` as
    ``openssl ec`` names it) on the SM2 curve.

    :class:`InvalidInput`: ``bad_arguments`` (not such a PEM, or encrypted without a
    passphrase), ``wrong_suite`` (a key of another algorithm or curve), ``too_large``;
    :class:`~citychain.errors.KeystoreError` ``wrong_passphrase``.
    """
    if len(data) > MAX_CERT_BYTES:
        raise _bad(f"key PEM is {len(data)} bytes; at most {MAX_CERT_BYTES}", ErrorCode.TOO_LARGE)
    try:
        kind, _, der = pem.unarmor(bytes(data))
        der = bytes(der)
        _check_depth(der)
        if kind == "ENCRYPTED PRIVATE KEY":
            if passphrase is None:
                raise _bad("the SM2 key PEM is encrypted: a passphrase is needed")
            der, kind = decrypt_pkcs8(der, passphrase), "PRIVATE KEY"
        if kind in ("EC PRIVATE KEY", "SM2 PRIVATE KEY"):  # SEC1 (openssl ec names it SM2)
            return _sec1_secret(akeys.ECPrivateKey.load(der, strict=True), curve_required=True)
        if kind != "PRIVATE KEY":
            raise _bad(f"not an SM2 private key: a PEM {kind} block")
        info = akeys.PrivateKeyInfo.load(der, strict=True)
        algorithm = info["private_key_algorithm"]
        params = algorithm["parameters"]
        if (
            algorithm["algorithm"].native != "ec"
            or params.name != "named"
            or params.chosen.dotted != SM2_CURVE_OID
        ):
            shown = algorithm["algorithm"].native
            if shown == "ec" and params.name == "named":
                shown = f"ec on curve {params.chosen.native}"
            raise InvalidInput(
                f"the private key is {shown}, not SM2 (ec on {SM2_CURVE_OID})",
                ErrorCode.WRONG_SUITE,
            )
        return _sec1_secret(info["private_key"].parsed, curve_required=False)
    except InvalidInput:
        raise
    except PARSE_ERRORS as exc:
        raise _bad(f"not an SM2 private key PEM ({exc})") from None
