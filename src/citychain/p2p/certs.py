"""X.509 certificates for nodes: one CA per organisation, one certificate per node.

Theory of operation
-------------------
Every organisation in genesis runs its own certificate authority (:func:`generate_org_ca`): a
self-signed certificate with ``basicConstraints CA=true, pathlen=0`` and ``keyCertSign``. Its
subject is ``CN=<org name> CA, O=<org id>``. Genesis lists the PEM of every organisation's CA;
together they are the trust store of the network.

A node certificate (:func:`issue_node_cert`) is signed by its organisation's CA and says::

    subject    CN=<node name>, O=<org id>
    SAN        URI citychain://<chain id>/<node name>     (binds the certificate to one chain)
               DNS localhost, IP 127.0.0.1
    EKU        clientAuth, serverAuth                      (every node both dials and listens)
    keyUsage   digitalSignature;  basicConstraints CA=false
    node key   (optional, non-critical) the node's signing key: suite and public key

The chain id and node name in the URI are percent-encoded, so any chain id genesis allows
(1..64 characters of text) fits. Node names are restricted to ``[A-Za-z0-9._-]`` (1..64,
starting with a letter or digit) because they also appear in peer lists (``name@host:port``)
and log lines. The issuing CA's ``O`` must equal the node's ``org_id``: a CA only vouches for
its own organisation's nodes (the transport checks the same thing on every connection).

Keys are ECDSA P-256. TLS 1.3 makes ``ecdsa_secp256r1_sha256`` mandatory to implement, so
every OpenSSL 3 build (and Python's ``ssl`` on top of it) handshakes with it; Ed25519
certificates also work with OpenSSL 3 but are not universally accepted by other TLS stacks
that operators may point at a node (monitoring probes, proxies).

**The node key.** The certificate may also name the node's own signing key (its validator
key: in a key file, or inside a hardware security module through PKCS#11), in a non-critical
extension under :data:`NODE_KEY_OID`. Its value is the DER of ``SEQUENCE { suite UTF8String,
publicKey OCTET STRING }`` (``"ed25519"`` and 32 bytes today). When a peer's certificate names
a key, the handshake requires a signature by that key over the connection
(:mod:`citychain.p2p.nodekey`), so holding the node's TLS key file is not enough to connect as
the node. Non-critical, because other TLS stacks (and OpenSSL's own chain check on the
accepting side) must not refuse a certificate for an extension they do not know. citychain has
no IANA enterprise number, so the OID is one of the UUID-derived OIDs of ITU-T X.667
(``2.25.<a random UUID as an integer>``), unique without registration.

Validity windows default to start five minutes in the past, which absorbs small clock
differences between the machine that issues a certificate and the nodes that check it.

Private keys leave this module as unencrypted PKCS#8 PEM; :func:`encrypt_key_pem` turns one
into encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256 with AES-256-CBC by ``BestAvailableEncryption``,
or with SM4-CBC on an ``sm2-sm3`` network, by :mod:`citychain.crypto.pkcs8`),
which is what a node keeps on disk and what ``ssl.SSLContext.load_cert_chain(..., password=)``
opens. Passphrases are normalised to Unicode NFC and encoded as UTF-8 (:func:`passphrase_bytes`),
the same rule as the Ed25519 keystore, so the same words typed on any system open the file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from citychain.crypto import get_suite
from citychain.crypto.pkcs8 import Pkcs8Cipher, check_cipher, decrypt_pkcs8, encrypt_pkcs8
from citychain.errors import ConfigError, InvalidInput

#: The URI scheme of the SAN that binds a node certificate to a chain.
URI_SCHEME = "citychain"
#: How far in the past a default validity window starts (clock differences between machines).
BACKDATE = timedelta(minutes=5)

#: The certificate extension naming the node's signing key (see the module docstring).
NODE_KEY_OID = x509.ObjectIdentifier("2.25.59918486190847426735991965064775407738")

_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_CHAIN_ID = 64


@dataclass(frozen=True, slots=True)
class NodeCertInfo:
    """What a node certificate says. Datetimes are timezone-aware UTC."""

    node_name: str
    org_id: str
    chain_id: str
    not_before: datetime
    not_after: datetime
    #: SHA-256 of the DER certificate, lowercase hex.
    fingerprint: str
    #: The node's signing key, if the certificate names one (its CA vouches for it).
    node_key: NodeKey | None = None


@dataclass(frozen=True, slots=True)
class NodeKey:
    """A node's signing key as its certificate names it: suite name and public key."""

    suite: str
    public_key: bytes

    def __str__(self) -> str:
        return f"{self.suite}:{self.public_key.hex()[:16]}…"

    def encode(self) -> bytes:
        """The extension value: DER ``SEQUENCE { UTF8String suite, OCTET STRING key }``."""
        body = _der(0x0C, self.suite.encode("utf-8")) + _der(0x04, self.public_key)
        return _der(0x30, body)

    @classmethod
    def decode(cls, data: bytes) -> NodeKey:
        """Parse :meth:`encode`'s output strictly (DER, short lengths, nothing after it);
        the suite must be known and the key well formed for it. Else :class:`InvalidInput`."""
        body = _der_take(data, 0x30, whole=True)
        suite_len = _der_len(body, 0x0C)
        suite_raw, rest = body[2 : 2 + suite_len], body[2 + suite_len :]
        key = _der_take(rest, 0x04, whole=True)
        try:
            suite = suite_raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the node key's suite name is not UTF-8") from None
        get_suite(suite).check_public_key(key)
        return cls(suite, key)


def _der(tag: int, content: bytes) -> bytes:
    if len(content) > 127:
        raise InvalidInput(f"node key field of {len(content)} bytes is too long (at most 127)")
    return bytes((tag, len(content))) + content


def _der_len(data: bytes, tag: int) -> int:
    """The short-form length of the TLV at the start of ``data``, checked against its size."""
    if len(data) < 2 or data[0] != tag:
        raise InvalidInput(f"malformed node key extension: expected DER tag {tag:#04x}")
    length = data[1]
    if length > 127 or 2 + length > len(data):
        raise InvalidInput("malformed node key extension: bad DER length")
    return length


def _der_take(data: bytes, tag: int, *, whole: bool) -> bytes:
    length = _der_len(data, tag)
    if whole and 2 + length != len(data):
        raise InvalidInput("malformed node key extension: trailing bytes")
    return data[2 : 2 + length]


def check_node_name(name: str) -> str:
    """Return ``name`` if it is a valid node name, else raise :class:`InvalidInput`."""
    if not _NODE_NAME.fullmatch(name):
        raise InvalidInput(
            f"node name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _check_chain_id(chain_id: str) -> None:
    if not 0 < len(chain_id) <= _MAX_CHAIN_ID:
        raise InvalidInput(f"chain id must be 1 to {_MAX_CHAIN_ID} characters, got {chain_id!r}")


def _check_org_id(org_id: str) -> None:
    if not 0 < len(org_id) <= 64:  # X.520 upper bound for O is 64 characters
        raise InvalidInput(f"organisation id must be 1 to 64 characters, got {org_id!r}")


def node_uri(chain_id: str, node_name: str) -> str:
    """The SAN URI that binds ``node_name`` to ``chain_id``: ``citychain://<chain>/<node>``."""
    return f"{URI_SCHEME}://{quote(chain_id, safe='')}/{quote(node_name, safe='')}"


def passphrase_bytes(passphrase: str) -> bytes:
    """The bytes a key-file passphrase stands for: Unicode NFC, then UTF-8."""
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _validity(
    not_before: datetime | None, not_after: datetime | None, valid_days: int
) -> tuple[datetime, datetime]:
    start = (
        _aware(not_before, "not_before") if not_before is not None else datetime.now(UTC) - BACKDATE
    )
    if not_after is not None:
        end = _aware(not_after, "not_after")
    else:
        if valid_days <= 0:
            raise InvalidInput(f"valid_days must be positive, got {valid_days}")
        end = start + timedelta(days=valid_days)
    if end <= start:
        raise InvalidInput(
            f"not_after ({end.isoformat()}) must be after not_before ({start.isoformat()})"
        )
    return start, end


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(f"{what} must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    if len(attrs) != 1:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else None


def generate_org_ca(
    org_id: str,
    org_name: str,
    *,
    valid_days: int = 3650,
    not_before: datetime | None = None,
) -> tuple[bytes, bytes]:
    """(ca_cert_pem, ca_key_pem) — a self-signed CA for one organisation.

    ``basicConstraints CA=true, pathlen=0`` and ``keyCertSign``: it signs node certificates
    directly, never intermediate CAs. The key PEM is unencrypted PKCS#8.
    """
    _check_org_id(org_id)
    if not org_name:
        raise InvalidInput("organisation name must not be empty")
    start, end = _validity(not_before, None, valid_days)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org_name} CA"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def load_ca(ca_cert_pem: bytes) -> x509.Certificate:
    """Parse an organisation CA certificate, refusing one that is not a CA."""
    try:
        cert = x509.load_pem_x509_certificate(ca_cert_pem)
    except ValueError as exc:
        raise ConfigError(f"not a PEM certificate: {exc}") from None
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise ConfigError(
            f"certificate {cert.subject.rfc4514_string()} is not a CA (basicConstraints CA=false)"
        )
    return cert


def ca_org_id(ca: x509.Certificate) -> str | None:
    """The organisation id (``O``) a CA certificate speaks for, if it names exactly one."""
    return _name_attr(ca.subject, NameOID.ORGANIZATION_NAME)


def issue_node_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    node_name: str,
    chain_id: str,
    org_id: str,
    *,
    valid_days: int = 825,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    node_key: NodeKey | None = None,
) -> tuple[bytes, bytes]:
    """(cert_pem, key_pem) for a node, signed by its organisation's CA.

    ``CN=node_name, O=org_id``; SAN URI ``citychain://<chain_id>/<node_name>``, DNS
    ``localhost``, IP ``127.0.0.1``; EKU clientAuth + serverAuth; and, when ``node_key`` is
    given, the node-key extension naming it (peers then require the node to prove it holds
    that key on every connection). ``not_after`` wins over ``valid_days`` when given (tests
    use it to make expired certificates). The key PEM is unencrypted PKCS#8: pass it through
    :func:`encrypt_key_pem` before writing it to disk.
    """
    check_node_name(node_name)
    _check_chain_id(chain_id)
    _check_org_id(org_id)
    ca = load_ca(ca_cert_pem)
    try:
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"CA key is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError("CA key must be an ECDSA key (made by generate_org_ca)")
    if ca_key.public_key() != ca.public_key():
        raise ConfigError("CA key does not belong to the CA certificate")
    ca_org = ca_org_id(ca)
    if ca_org != org_id:
        raise InvalidInput(
            f"the CA of organisation {ca_org!r} cannot issue a certificate for organisation "
            f"{org_id!r}"
        )
    start, end = _validity(not_before, not_after, valid_days)
    node_key_value = None if node_key is None else NodeKey.decode(node_key.encode())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, node_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
        ]
    )
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(node_uri(chain_id, node_name)),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        ]
    )
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
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
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    if node_key_value is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(NODE_KEY_OID, node_key_value.encode()), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


#: PBKDF2 rounds of an SM4-encrypted key file: 2,048, what ``BestAvailableEncryption`` gives
#: the AES ones (and OpenSSL's default), so a node loads either at the same cost at every start.
SM4_KEY_ROUNDS = 2048


def encrypt_key_pem(
    key_pem: bytes, passphrase: str, *, cipher: Pkcs8Cipher = "aes-256-cbc"
) -> bytes:
    """Encrypt an unencrypted PEM private key as PKCS#8 under ``passphrase``, with ``cipher``:
    ``aes-256-cbc`` (``BestAvailableEncryption``) or ``sm4-cbc`` (an ``sm2-sm3`` network's,
    :func:`citychain.crypto.pkcs8.encrypt_pkcs8`); another is ``bad_arguments``.

    The result opens with ``ssl.SSLContext.load_cert_chain(cert, key, password=passphrase)``.
    """
    cipher = check_cipher(cipher)
    if not passphrase:
        raise InvalidInput("the passphrase must not be empty")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise InvalidInput("the key is already encrypted") from None
    except ValueError as exc:
        raise InvalidInput(f"not a PEM private key: {exc}") from None
    if cipher == "sm4-cbc":
        plain = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return encrypt_pkcs8(plain, passphrase, cipher=cipher, rounds=SM4_KEY_ROUNDS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase_bytes(passphrase)),
    )


def decrypt_key_pem(key_pem: bytes, passphrase: str) -> bytes:
    """The unencrypted PKCS#8 PEM of a key made by :func:`encrypt_key_pem` (e.g. a CA key kept
    encrypted on disk, to pass to :func:`issue_node_cert`), AES or SM4. A wrong passphrase is
    :class:`KeystoreError` (``wrong_passphrase``)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=passphrase_bytes(passphrase))
    except TypeError:
        raise InvalidInput("the key is not encrypted") from None
    except ValueError:
        # cryptography reads no SM4 and says the same ValueError for a wrong passphrase: the
        # PBES2 helper reads both ciphers and tells the two apart (KeystoreError
        # wrong_passphrase), or names the cipher or structure it does not read (InvalidInput).
        plain = decrypt_pkcs8(key_pem, passphrase)
        try:
            key = serialization.load_der_private_key(plain, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidInput(f"the decrypted key cannot be used here: {exc}") from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def read_node_cert(cert_pem: bytes) -> NodeCertInfo:
    """What a PEM node certificate says. Raises :class:`InvalidInput` if it is not one of ours."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise InvalidInput(f"not a PEM certificate: {exc}") from None
    return node_cert_info(cert)


def read_node_cert_der(cert_der: bytes) -> NodeCertInfo:
    """Like :func:`read_node_cert` for DER bytes (what a TLS peer presents)."""
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError as exc:
        raise InvalidInput(f"not a DER certificate: {exc}") from None
    return node_cert_info(cert)


def node_cert_info(cert: x509.Certificate) -> NodeCertInfo:
    """What a parsed node certificate says; see :func:`read_node_cert`."""
    where = f"certificate {cert.subject.rfc4514_string()}"
    cn = _name_attr(cert.subject, NameOID.COMMON_NAME)
    org = _name_attr(cert.subject, NameOID.ORGANIZATION_NAME)
    if cn is None or org is None:
        raise InvalidInput(f"{where} must name exactly one CN (node) and one O (organisation)")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidInput(f"{where} has no subjectAltName with a citychain:// URI") from None
    uris = [
        u
        for u in san.get_values_for_type(x509.UniformResourceIdentifier)
        if u.startswith(f"{URI_SCHEME}://")
    ]
    if len(uris) != 1:
        raise InvalidInput(f"{where} must carry exactly one citychain:// URI, has {len(uris)}")
    parts = urlsplit(uris[0])
    path = parts.path.removeprefix("/")
    if not parts.netloc or not path or "/" in path:
        raise InvalidInput(f"{where}: malformed chain binding {uris[0]!r}")
    chain_id, uri_node = unquote(parts.netloc), unquote(path)
    if uri_node != cn:
        raise InvalidInput(f"{where}: URI names node {uri_node!r} but CN is {cn!r}")
    try:
        named = cert.extensions.get_extension_for_oid(NODE_KEY_OID).value
    except x509.ExtensionNotFound:
        node_key = None
    else:
        if not isinstance(named, x509.UnrecognizedExtension):  # pragma: no cover (ours)
            raise InvalidInput(f"{where}: unreadable node key extension")
        try:
            node_key = NodeKey.decode(named.value)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None
    return NodeCertInfo(
        node_name=cn,
        org_id=org,
        chain_id=chain_id,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        node_key=node_key,
    )


def issuing_ca(cert: x509.Certificate, cas: list[x509.Certificate]) -> x509.Certificate | None:
    """The CA among ``cas`` that signed ``cert`` directly, or ``None``."""
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None
