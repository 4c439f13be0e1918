"""X.509 membership certificates for chain accounts ("certificate identity mode").

Theory of operation
-------------------
Every organisation has a certificate authority (the same CA that issues its nodes' TLS
certificates: ``CN=<org name> CA, O=<org id>``, ``basicConstraints CA=true``). In certificate
identity mode an account, whose identity on chain is an Ed25519 signing key, proves that it
belongs to an organisation by presenting a certificate that the organisation's CA issued *for
that very key*: the certificate's subject public key is the account's raw 32-byte Ed25519 key.
A transaction signature shows possession of the key; the certificate shows that the CA vouches
for the key. :func:`issue_member_cert` makes one::

    subject    CN=<member name>, O=<org id>, OU=<role>, OU=<role>, ...
    key        Ed25519 (the account key)
    keyUsage   digitalSignature (critical);  basicConstraints CA=false (critical)
    EKU        clientAuth

Roles follow Hyperledger Fabric's NodeOUs idea: a member's roles (``admin``, ``member``,
``auditor``, ...) are organisational-unit (``OU``) attributes of the subject, one per role, so
a CA states them when it issues the certificate and a policy can require "an admin of org1"
without any extra registry. :func:`verify_member_cert` reports them sorted and deduplicated, as
the set they are; a role is only ever granted, never implied by its absence.

:func:`verify_member_cert` runs inside transaction admission and execution, so its verdict must
be the same on every node, at every height, forever. That is why it is *deterministic*:

* the time it checks validity against is ``at_ms``, the block time everyone agrees on, never
  the wall clock of the node (which differs between nodes and when a block is replayed);
* it trusts exactly one CA certificate handed to it (the organisation's CA as registered on
  chain), with no system trust store, revocation fetch or other outside input;
* each refusal is :class:`~citychain.errors.InvalidInput`, the deterministic branch of the error
  tree, with ``unauthorized`` as code (``bad_arguments`` for bytes that are not a certificate,
  ``too_large`` for oversized input) and a message that names the one thing wrong.

Validity windows are inclusive at both ends (RFC 5280 section 4.1.2.5) and X.509 times have
whole-second precision, so a certificate is valid for ``not_before_ms <= at_ms <= not_after_ms``.
Whether the *CA* is still trusted at a height is the business of whoever keeps the list of
organisation CAs on chain; this module does not check the CA's own validity window.

**SM2 chains.** On an ``sm2-sm3`` chain the accounts hold SM2 keys and the organisations' CAs
are SM2 CAs, so a member certificate is an SM2 certificate: the same subject, extensions and
roles, signed with SM2-with-SM3 under the ID ``1234567812345678`` for the account's 65-byte
SM2 key (:func:`citychain.crypto.sm2_certs.issue_sm2_member_cert`). ``cryptography`` can read
but not verify those, so :func:`verify_member_cert` and :func:`check_org_ca` look at the
certificates first (:func:`~citychain.crypto.sm2_certs.is_sm2_cert`: SM2-with-SM3 signature or
SM2 key) and take an SM2 member certificate under an SM2 CA to
:func:`~citychain.crypto.sm2_certs.verify_sm2_cert`, then make the same member checks and
return the same :class:`MemberCertInfo`. A mix (an SM2 certificate under an ECDSA CA, an
ECDSA-signed certificate under an SM2 CA) is refused with ``wrong_suite``.

Parsing is done by the ``cryptography`` package, so all nodes of a chain must run the same
version of it (a new version may parse some malformed certificate differently). This module is
not re-exported from :mod:`citychain.crypto`: ``cryptography`` is a node dependency, and the SDK
must import without it.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
    SignatureAlgorithmOID,
)

from citychain.crypto.sm2 import DEFAULT_DISTID
from citychain.crypto.sm2_certs import Sm2Cert, is_sm2_cert, parse_sm2_cert, verify_sm2_cert
from citychain.errors import ConfigError, ErrorCode, InvalidInput

__all__ = [
    "BACKDATE",
    "MAX_CERT_BYTES",
    "MemberCertInfo",
    "cert_fingerprint",
    "issue_member_cert",
    "parse_member_cert",
    "verify_member_cert",
]

_T = TypeVar("_T")

#: How far in the past a default validity window starts (clock differences between machines).
BACKDATE = timedelta(minutes=5)
#: Largest certificate (PEM or DER) accepted; real member certificates are well under 2 KiB.
MAX_CERT_BYTES = 16 * 1024

#: X.520 upper bound (characters) for O and OU; CN is bounded in UTF-8 bytes by ``cryptography``.
_MAX_ATTR = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
#: Hashes a certificate signature may use (MD5 and SHA-1 signatures are forgeable).
_SIGNATURE_HASHES = ("sha256", "sha384", "sha512")
#: Length limits ``cryptography`` applies to name attributes (UTF-8 bytes); it only *warns* when
#: a parsed certificate breaks them, so we apply them ourselves to get the same verdict whatever
#: the process's warning filters are.
_ATTR_LIMITS = {
    NameOID.COMMON_NAME: (1, 64),
    NameOID.COUNTRY_NAME: (2, 2),
    NameOID.JURISDICTION_COUNTRY_NAME: (2, 2),
}
#: Readable names of signature algorithms, e.g. ``ecdsa-with-sha256``, ``ed25519``.
_SIG_NAMES = {
    oid: attr.strip("_").lower().replace("_", "-")
    for attr, oid in vars(SignatureAlgorithmOID).items()
    if isinstance(oid, ObjectIdentifier)
}
#: Critical extensions a member certificate may carry (RFC 5280: refuse any other critical one).
_KNOWN_CRITICAL = frozenset(
    {
        x509.BasicConstraints.oid,
        x509.KeyUsage.oid,
        x509.ExtendedKeyUsage.oid,
        x509.SubjectAlternativeName.oid,
    }
)


@dataclass(frozen=True, slots=True)
class MemberCertInfo:
    """What a verified member certificate says."""

    #: The subject's public key (the account key): raw 32-byte Ed25519, or on an SM2 chain the
    #: 65-byte SM2 point ``04 || x || y``.
    public_key: bytes
    #: The subject's ``O``: the organisation the member belongs to.
    org_id: str
    #: The subject's ``CN``: the member's name.
    name: str
    #: The subject's ``OU`` values, sorted and deduplicated.
    roles: tuple[str, ...]
    #: The certificate serial number.
    serial: int
    #: Validity window, milliseconds since the Unix epoch (inclusive at both ends).
    not_before_ms: int
    not_after_ms: int
    #: SHA-256 of the DER encoding of the issuing CA certificate.
    issuer_fingerprint: bytes


# -- errors and small helpers -----------------------------------------------------------------


def _bad_arg(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def _unauthorized(message: str) -> InvalidInput:
    return InvalidInput(f"member certificate: {message}", ErrorCode.UNAUTHORIZED)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MS


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_ms(at_ms: int) -> str:
    try:
        moment = _EPOCH + at_ms * _ONE_MS
    except OverflowError:
        return f"{at_ms} ms since the epoch"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _spki(key: object) -> bytes:
    if not isinstance(
        key,
        ec.EllipticCurvePublicKey
        | rsa.RSAPublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        raise ConfigError(f"unsupported CA key type {type(key).__name__}")
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_kind(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA ({key.curve.name})"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA ({key.key_size} bits)"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__.removesuffix("PublicKey") or "unknown"


def _text_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    values = []
    for attr in name.get_attributes_for_oid(oid):
        value = attr.value
        values.append(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    return values


def _quietly(read: Callable[[], _T]) -> _T:
    """``read()``, with an outcome that does not depend on the process's warning filters.

    ``cryptography`` *warns* (it does not raise) about some defects of a parsed certificate
    (a serial number that is not positive, a name attribute of invalid length). Under
    ``-W error`` that warning is an exception, otherwise it is printed and parsing goes on; a
    verdict must not depend on that, so after such an exception the read is repeated with
    warnings ignored, and the defects are refused by our own checks, the same way in both
    cases. (``catch_warnings`` is process-wide; it only runs on this rare path.)
    """
    try:
        return read()
    except Warning:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read()


def _read_name(cert: x509.Certificate, which: str, owner: str = "member certificate") -> x509.Name:
    """``cert.subject`` or ``cert.issuer``, refusing an attribute of invalid length."""

    def refuse(message: str) -> InvalidInput:
        return InvalidInput(
            f"{owner}: {which} name is malformed ({message})", ErrorCode.UNAUTHORIZED
        )

    try:
        name = _quietly(lambda: cert.subject if which == "subject" else cert.issuer)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    for attr in name:
        limits = _ATTR_LIMITS.get(attr.oid)
        if limits is None or not isinstance(attr.value, str):
            continue
        low, high = limits
        size = len(attr.value.encode("utf-8", "surrogatepass"))
        if not low <= size <= high:
            raise refuse(
                f"{attr.rfc4514_attribute_name} is {size} bytes; X.509 allows {low} to {high}"
            )
    return name


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    """The basicConstraints extension, if any. ``ValueError`` if the extensions are malformed."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


# -- parsing ----------------------------------------------------------------------------------


def parse_member_cert(cert: bytes) -> x509.Certificate:
    """Parse one X.509 certificate given as PEM or DER bytes.

    Raises :class:`InvalidInput` with ``bad_arguments`` if the bytes are neither (or are PEM
    holding more or fewer than one certificate), ``too_large`` above :data:`MAX_CERT_BYTES`.
    """
    if len(cert) > MAX_CERT_BYTES:
        raise InvalidInput(
            f"certificate is {len(cert)} bytes; at most {MAX_CERT_BYTES} are accepted",
            ErrorCode.TOO_LARGE,
        )
    if not cert:
        raise _bad_arg("not a certificate: no bytes given (expected PEM or DER X.509)")
    if b"-----BEGIN" in cert:
        try:
            found = _quietly(lambda: x509.load_pem_x509_certificates(cert))
        except ValueError as exc:
            raise _bad_arg(
                f"not a certificate: PEM without a valid CERTIFICATE block ({exc})"
            ) from None
        if len(found) != 1:
            raise _bad_arg(f"not a certificate: PEM holds {len(found)} certificates, expected 1")
        parsed = found[0]
    else:
        try:
            parsed = _quietly(lambda: x509.load_der_x509_certificate(cert))
        except ValueError as exc:
            raise _bad_arg(
                f"not a certificate: {len(cert)} bytes that are neither PEM nor DER X.509 ({exc})"
            ) from None
    serial = _quietly(lambda: parsed.serial_number)
    if serial <= 0:
        raise _bad_arg(
            f"not a valid certificate: serial number {serial} is not positive (RFC 5280)"
        )
    return parsed


def _parse_as(data: bytes, owner: str) -> x509.Certificate:
    try:
        return parse_member_cert(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{owner}: {exc.message}", exc.code) from None


def cert_fingerprint(cert: bytes) -> bytes:
    """SHA-256 of the certificate's DER encoding (the same for its PEM and DER forms)."""
    return hashlib.sha256(_der(parse_member_cert(cert))).digest()


# -- issuing ----------------------------------------------------------------------------------


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise _bad_arg(f"{what} must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC)


def _validity(
    not_before: datetime | None, not_after: datetime | None, valid_days: int
) -> tuple[datetime, datetime]:
    if not_before is not None:
        start = _aware(not_before, "not_before")
    else:
        start = datetime.now(UTC) - BACKDATE
    if not_after is not None:
        end = _aware(not_after, "not_after")
    else:
        if valid_days <= 0:
            raise _bad_arg(f"valid_days must be positive, got {valid_days}")
        end = start + timedelta(days=valid_days)
    if end <= start:
        raise _bad_arg(
            f"not_after ({end.isoformat()}) must be after not_before ({start.isoformat()})"
        )
    return start, end


def _check_text(value: str, what: str, *, utf8_limit: bool = False) -> str:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad_arg(f"{what} {value!r} is not valid Unicode text") from None
    size, unit = (len(encoded), "bytes of UTF-8") if utf8_limit else (len(value), "characters")
    if not 0 < size <= _MAX_ATTR:
        raise _bad_arg(f"{what} must be 1 to {_MAX_ATTR} {unit}, got {value!r}")
    return value


def _canonical_roles(roles: Sequence[str]) -> tuple[str, ...]:
    if isinstance(roles, str):
        raise _bad_arg(f"roles must be a sequence of role names, not the string {roles!r}")
    return tuple(sorted({_check_text(role, "role") for role in roles}))


def _load_ca_for_issuing(ca_cert_pem: bytes, ca_key_pem: bytes) -> tuple[x509.Certificate, object]:
    try:
        ca = x509.load_pem_x509_certificate(ca_cert_pem)
    except ValueError as exc:
        raise ConfigError(f"CA certificate is not a PEM certificate: {exc}") from None
    try:
        bc = _basic_constraints(ca)
    except ValueError as exc:
        raise ConfigError(f"CA certificate has malformed extensions: {exc}") from None
    if bc is None or not bc.ca:
        raise ConfigError(
            f"certificate {ca.subject.rfc4514_string()} is not a CA (basicConstraints CA=false)"
        )
    try:
        key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except TypeError:
        raise ConfigError("CA key is encrypted: decrypt it before issuing certificates") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"CA key is not a PEM private key: {exc}") from None
    if _spki(key.public_key()) != _spki(ca.public_key()):
        raise ConfigError("CA key does not belong to the CA certificate")
    return ca, key


def issue_member_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    public_key: bytes,
    *,
    name: str,
    org_id: str,
    roles: Sequence[str],
    valid_days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    serial: int | None = None,
) -> bytes:
    """A PEM certificate for the raw Ed25519 account key ``public_key``, signed by the org CA.

    ``CN=name, O=org_id`` and one ``OU`` per role (sorted, duplicates dropped); keyUsage
    digitalSignature, basicConstraints CA=false (both critical), EKU clientAuth. ``ca_key_pem``
    is the CA's unencrypted PEM private key (ECDSA, Ed25519, Ed448 or RSA). The validity window
    starts at ``not_before`` (default: now minus :data:`BACKDATE`) and ends at ``not_after``,
    which wins over ``valid_days`` when given. Datetimes must be timezone-aware; X.509 keeps
    whole seconds. ``serial`` defaults to a random 159-bit number.

    Bad arguments raise :class:`InvalidInput` (``bad_arguments``); an unusable CA certificate or
    key raises :class:`~citychain.errors.ConfigError`.
    """
    _check_text(name, "member name", utf8_limit=True)
    _check_text(org_id, "organisation id")
    role_names = _canonical_roles(roles)
    try:
        subject_key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        raise InvalidInput(
            f"an Ed25519 public key is 32 raw bytes, got {len(public_key)}",
            ErrorCode.BAD_PUBLIC_KEY,
        ) from None
    if serial is None:
        serial = x509.random_serial_number()
    elif not 0 < serial < 2**159:
        raise _bad_arg(f"serial must be between 1 and 2**159 - 1, got {serial}")
    start, end = _validity(not_before, not_after, valid_days)

    ca, ca_key = _load_ca_for_issuing(ca_cert_pem, ca_key_pem)
    ca_org = _text_values(ca.subject, NameOID.ORGANIZATION_NAME)
    if ca_org != [org_id]:
        raise _bad_arg(
            f"the CA of organisation {', '.join(ca_org) or '(none)'} cannot issue a certificate "
            f"for organisation {org_id!r}"
        )

    algorithm: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None
    if isinstance(ca_key, ec.EllipticCurvePrivateKey):
        signing_key: (
            ec.EllipticCurvePrivateKey
            | rsa.RSAPrivateKey
            | ed25519.Ed25519PrivateKey
            | ed448.Ed448PrivateKey
        ) = ca_key
        # The hash that matches the curve's strength (RFC 5758 section 3.2).
        if isinstance(ca_key.curve, ec.SECP521R1):
            algorithm = hashes.SHA512()
        elif isinstance(ca_key.curve, ec.SECP384R1):
            algorithm = hashes.SHA384()
        else:
            algorithm = hashes.SHA256()
    elif isinstance(ca_key, rsa.RSAPrivateKey):
        signing_key, algorithm = ca_key, hashes.SHA256()
    elif isinstance(ca_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        signing_key, algorithm = ca_key, None
    else:  # pragma: no cover - _load_ca_for_issuing refused other key types already
        raise ConfigError(f"unsupported CA key type {type(ca_key).__name__}")

    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
            *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, r) for r in role_names),
        ]
    )
    try:
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(subject_key)
        .serial_number(serial)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
        .add_extension(aki, critical=False)
    )
    try:
        builder = builder.not_valid_before(start).not_valid_after(end)
    except ValueError as exc:  # before 1950, which X.509 cannot encode
        raise _bad_arg(f"validity window cannot be encoded: {exc}") from None
    cert = builder.sign(signing_key, algorithm)
    return cert.public_bytes(serialization.Encoding.PEM)


# -- verifying --------------------------------------------------------------------------------


def _check_signature(cert: x509.Certificate, ca: x509.Certificate) -> None:
    """Raise unless ``ca``'s public key made ``cert``'s signature."""
    oid = cert.signature_algorithm_oid
    alg_name = _SIG_NAMES.get(oid, oid.dotted_string)
    try:
        params = cert.signature_algorithm_parameters
        digest = cert.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        raise _unauthorized(f"signature algorithm {alg_name} is not supported") from None
    if digest is not None and digest.name not in _SIGNATURE_HASHES:
        raise _unauthorized(
            f"signature uses {digest.name.upper()}, which is not accepted (SHA-256 or stronger)"
        )
    try:
        ca_key = ca.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise _unauthorized(f"the CA's key cannot be used ({exc})") from None
    mismatch = _unauthorized(
        f"not signed by this CA: signature algorithm {alg_name} does not fit the CA's "
        f"{_key_kind(ca_key)} key"
    )
    data, signature = cert.tbs_certificate_bytes, cert.signature
    try:
        if isinstance(ca_key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                raise mismatch
            ca_key.verify(signature, data, params)
        elif isinstance(ca_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            if params is not None or digest is not None:
                raise mismatch
            expected = (
                SignatureAlgorithmOID.ED25519
                if isinstance(ca_key, ed25519.Ed25519PublicKey)
                else SignatureAlgorithmOID.ED448
            )
            if oid != expected:
                raise mismatch
            ca_key.verify(signature, data)
        elif isinstance(ca_key, rsa.RSAPublicKey):
            if not isinstance(params, padding.PKCS1v15 | padding.PSS) or digest is None:
                raise mismatch
            ca_key.verify(signature, data, params, digest)
        else:
            raise _unauthorized(f"the CA's {_key_kind(ca_key)} key is not supported")
    except InvalidSignature:
        raise _unauthorized(
            "not signed by this CA (the signature does not verify with the CA's public key)"
        ) from None


def _check_ca(ca: x509.Certificate, org_id: str) -> None:
    def refuse(message: str) -> InvalidInput:
        return InvalidInput(f"CA certificate: {message}", ErrorCode.UNAUTHORIZED)

    try:
        bc = _basic_constraints(ca)
        usage_ext = ca.extensions.get_extension_for_oid(x509.KeyUsage.oid)
    except x509.ExtensionNotFound:
        usage_ext = None
    except ValueError as exc:  # duplicate or undecodable extensions
        raise refuse(f"malformed extensions ({exc})") from None
    if bc is None or not bc.ca:
        raise refuse("not a CA (basicConstraints CA=false)")
    usage = usage_ext.value if usage_ext is not None else None
    if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
        raise refuse("its keyUsage does not allow signing certificates (keyCertSign)")
    ca_org = _text_values(_read_name(ca, "subject", "CA certificate"), NameOID.ORGANIZATION_NAME)
    if ca_org != [org_id]:
        shown = ", ".join(repr(o) for o in ca_org) or "no organisation"
        raise refuse(f"the CA speaks for {shown} (subject O), not for organisation {org_id!r}")


def check_org_ca(ca_cert: bytes, org_id: str) -> bytes:
    """Check that ``ca_cert`` (PEM or DER) is a CA certificate that speaks for organisation
    ``org_id`` (the checks :func:`verify_member_cert` makes of the CA); its SHA-256
    fingerprint. InvalidInput (BAD_ARGUMENTS: not a certificate; UNAUTHORIZED: not such a CA)
    otherwise. An SM2 CA is read as one (:mod:`citychain.crypto.sm2_certs`)."""
    if is_sm2_cert(ca_cert):
        sm2_ca = _parse_sm2_as(ca_cert, "CA certificate")
        _check_sm2_ca(sm2_ca, org_id)
        return sm2_ca.fingerprint
    ca = _parse_as(ca_cert, "CA certificate")
    _check_ca(ca, org_id)
    return hashlib.sha256(_der(ca)).digest()


def _check_extensions(cert: x509.Certificate) -> None:
    try:
        extensions = list(cert.extensions)
    except ValueError as exc:  # duplicate or undecodable extensions
        raise _unauthorized(f"malformed extensions ({exc})") from None
    for ext in extensions:
        if ext.critical and ext.oid not in _KNOWN_CRITICAL:
            raise _unauthorized(f"unknown critical extension {ext.oid.dotted_string}")
        if isinstance(ext.value, x509.BasicConstraints) and ext.value.ca:
            raise _unauthorized(
                "it is a CA certificate (basicConstraints CA=true), not a member certificate"
            )
        if isinstance(ext.value, x509.KeyUsage) and not ext.value.digital_signature:
            raise _unauthorized("its keyUsage does not allow digitalSignature")


def verify_member_cert(
    cert: bytes,
    ca_cert_pem: bytes,
    *,
    org_id: str,
    at_ms: int,
    distid: bytes = DEFAULT_DISTID,
) -> MemberCertInfo:
    """Check that ``cert`` is a member certificate of ``org_id`` issued by ``ca_cert_pem``, valid
    at block time ``at_ms`` (milliseconds since the Unix epoch), and return what it says.

    Deterministic: no wall clock, no outside trust. Both certificates may be PEM or DER. Every
    refusal is :class:`InvalidInput` with code ``unauthorized`` and a message naming the fault,
    except bytes that are not a certificate (``bad_arguments``) or are too large
    (``too_large``). The checks, in order: the CA certificate is a CA of ``org_id``; the issuer
    name is the CA's subject; the CA's key made the signature (ECDSA, Ed25519, Ed448 or RSA CA,
    SHA-256 or stronger); the certificate is not a CA, knows all its critical extensions and,
    if it has keyUsage, allows digitalSignature; its key is Ed25519; its subject names exactly
    one O, equal to ``org_id``, and exactly one CN; ``at_ms`` lies in its validity window.

    SM2 certificates (an ``sm2-sm3`` chain's) are checked the same way, with the SM2 signature
    verified under ``distid``; a mix of an SM2 certificate and a CA of another suite, either
    way round, is refused with ``wrong_suite``.
    """
    member_sm2, ca_sm2 = is_sm2_cert(cert), is_sm2_cert(ca_cert_pem)
    if member_sm2 != ca_sm2:
        # The other one must be a certificate at all (else it is refused as bytes that are not).
        if member_sm2:
            _parse_as(ca_cert_pem, "CA certificate")
        else:
            _parse_as(cert, "member certificate")
        which = "the member certificate" if member_sm2 else "the CA certificate"
        raise InvalidInput(
            f"member certificate: {which} is an SM2 certificate and the other is not; a member "
            "certificate and its CA are of one crypto suite",
            ErrorCode.WRONG_SUITE,
        )
    if member_sm2:
        return _verify_sm2_member(cert, ca_cert_pem, org_id, at_ms, distid)
    member = _parse_as(cert, "member certificate")
    ca = _parse_as(ca_cert_pem, "CA certificate")
    _check_ca(ca, org_id)

    issuer = _read_name(member, "issuer")
    ca_subject = _read_name(ca, "subject", "CA certificate")
    if issuer != ca_subject:
        raise _unauthorized(
            f"issued by {issuer.rfc4514_string()!r}, not by this CA "
            f"({ca_subject.rfc4514_string()!r})"
        )
    _check_signature(member, ca)
    _check_extensions(member)

    try:
        subject_key = member.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise _unauthorized(f"subject key is not Ed25519 (unreadable key: {exc})") from None
    if not isinstance(subject_key, ed25519.Ed25519PublicKey):
        raise _unauthorized(f"subject key is {_key_kind(subject_key)}, not Ed25519")

    subject = _read_name(member, "subject")
    orgs = _text_values(subject, NameOID.ORGANIZATION_NAME)
    if not orgs:
        raise _unauthorized("subject has no O (organisation)")
    if len(orgs) > 1:
        raise _unauthorized(f"subject names {len(orgs)} organisations (O), expected exactly one")
    if orgs[0] != org_id:
        raise _unauthorized(f"subject is in organisation {orgs[0]!r}, not {org_id!r}")
    names = _text_values(subject, NameOID.COMMON_NAME)
    if not names:
        raise _unauthorized("subject has no CN (member name)")
    if len(names) > 1:
        raise _unauthorized(f"subject names {len(names)} CNs, expected exactly one")

    not_before, not_after = member.not_valid_before_utc, member.not_valid_after_utc
    not_before_ms, not_after_ms = _ms(not_before), _ms(not_after)
    if at_ms < not_before_ms:
        raise _unauthorized(
            f"not yet valid: valid from {_fmt(not_before)}, block time is {_fmt_ms(at_ms)}"
        )
    if at_ms > not_after_ms:
        raise _unauthorized(f"expired on {_fmt(not_after)} (block time is {_fmt_ms(at_ms)})")

    return MemberCertInfo(
        public_key=subject_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ),
        org_id=orgs[0],
        name=names[0],
        roles=tuple(sorted(set(_text_values(subject, NameOID.ORGANIZATIONAL_UNIT_NAME)))),
        serial=member.serial_number,
        not_before_ms=not_before_ms,
        not_after_ms=not_after_ms,
        issuer_fingerprint=hashlib.sha256(_der(ca)).digest(),
    )


# -- SM2 (an sm2-sm3 chain's certificates) ----------------------------------------------------

#: Codes an SM2 refusal keeps in certificate identity mode; every other one is ``unauthorized``,
#: as for the other suites.
_KEPT_CODES = frozenset({ErrorCode.BAD_ARGUMENTS, ErrorCode.TOO_LARGE, ErrorCode.WRONG_SUITE})


def _member_code(exc: InvalidInput) -> ErrorCode:
    return exc.code if exc.code in _KEPT_CODES else ErrorCode.UNAUTHORIZED


def _parse_sm2_as(data: bytes, owner: str) -> Sm2Cert:
    try:
        return parse_sm2_cert(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{owner}: {exc.message}", _member_code(exc)) from None


def _check_sm2_ca(ca: Sm2Cert, org_id: str) -> None:
    def refuse(message: str) -> InvalidInput:
        return InvalidInput(f"CA certificate: {message}", ErrorCode.UNAUTHORIZED)

    if not ca.is_ca:
        raise refuse("not a CA (basicConstraints CA=false)")
    if ca.key_usage is not None and "key_cert_sign" not in ca.key_usage:
        raise refuse("its keyUsage does not allow signing certificates (keyCertSign)")
    if ca.subject_o != org_id:
        shown = repr(ca.subject_o) if ca.subject_o else "no organisation"
        raise refuse(f"the CA speaks for {shown} (subject O), not for organisation {org_id!r}")


def _verify_sm2_member(
    cert: bytes, ca_cert: bytes, org_id: str, at_ms: int, distid: bytes
) -> MemberCertInfo:
    ca = _parse_sm2_as(ca_cert, "CA certificate")
    member = _parse_sm2_as(cert, "member certificate")
    _check_sm2_ca(ca, org_id)
    try:
        verify_sm2_cert(member, ca, at_ms=at_ms, distid=distid)
    except InvalidInput as exc:
        raise InvalidInput(f"member certificate: {exc.message}", _member_code(exc)) from None
    if member.is_ca:
        raise _unauthorized(
            "it is a CA certificate (basicConstraints CA=true), not a member certificate"
        )
    if member.key_usage is not None and "digital_signature" not in member.key_usage:
        raise _unauthorized("its keyUsage does not allow digitalSignature")
    if not member.subject_o:
        raise _unauthorized("subject has no O (organisation)")
    if member.subject_o != org_id:
        raise _unauthorized(f"subject is in organisation {member.subject_o!r}, not {org_id!r}")
    if not member.subject_cn:
        raise _unauthorized("subject has no CN (member name)")
    return MemberCertInfo(
        public_key=member.public_key,
        org_id=member.subject_o,
        name=member.subject_cn,
        roles=tuple(sorted(set(member.subject_ous))),
        serial=member.serial,
        not_before_ms=member.not_before_ms,
        not_after_ms=member.not_after_ms,
        issuer_fingerprint=ca.fingerprint,
    )
