"""TLS 1.3 contexts for mutual authentication, and the identity check after the handshake.

Theory of operation
-------------------
Each node holds one certificate from its organisation's CA (see :mod:`citychain.p2p.certs`)
and trusts the CA certificates of every organisation in the chain's organisation registry
(below, "genesis CA" means a CA of that registry; see the end of this docstring). Both
contexts are TLS 1.3 only; hostname checks are off (identity is not a DNS name here: it is
the node name in the certificate and the chain id in its ``citychain://`` URI). Every
connection is checked twice:

1. **In the handshake, by OpenSSL, on the accepting side**: the server context is
   ``CERT_REQUIRED``, so a dialler must present a certificate that chains to a genesis CA
   (every genesis CA is a trust anchor, root or not: ``VERIFY_X509_PARTIAL_CHAIN``).
2. **Right after the handshake, by us, on both sides** (:func:`check_peer_certificate`),
   before any frame is read: the certificate was issued directly by a genesis CA (signature
   checked), is not itself a CA, allows the TLS purpose (``serverAuth`` for a node we dialled,
   ``clientAuth`` for one that dialled us) and digital signatures; its validity dates and its
   CA's hold now; the CA speaks for the organisation the certificate names (a CA vouches for
   its own organisation's nodes only); and its URI names our chain. The caller then checks the
   node name against the one it dialled.

Two deliberate departures from "let OpenSSL refuse everything in the handshake", both so that
**both** sides can say in plain words why a connection was refused:

* **asyncio sends no TLS alert when a handshake fails.** Its SSL protocol (3.11, and main as of
  2025) closes the socket without flushing the alert OpenSSL wrote, so a node whose
  certificate is refused inside the handshake learns nothing. The dialler's context is
  therefore ``CERT_NONE`` (OpenSSL still checks the server's CertificateVerify signature, so the
  server proves it holds the certificate's key), and step 2 verifies the certificate; the
  dialler then sends the acceptor a Refuse frame saying why. The acceptor keeps OpenSSL's
  check (Python cannot request a client certificate without having OpenSSL verify it); a
  dialler it refuses sees the connection close right after its handshake completes, before
  the acceptor's Hello, and reports that as "most likely it does not trust our CA"
  (:mod:`citychain.p2p.handshake`). Real alerts, should a peer's stack send them, are
  translated by :func:`citychain.p2p.refusals.translate_alert`.
* **Validity dates are checked by us, not OpenSSL** (``X509_V_FLAG_NO_CHECK_TIME``). Python's
  :mod:`ssl` exposes neither the peer certificate nor a verify callback when verification
  fails, so the refusing side could not say *when* a certificate expired. With it in hand
  both sides read ``the certificate of n3 expired on 2025-01-31 00:00:00 UTC`` or ``... is not
  valid before ...; check the clocks of both machines``.

Node certificates must be issued *directly* by an organisation CA the chain lists.

**The trust store follows the organisation registry and can change at runtime.** It starts as
the CAs of genesis; on-chain governance may then admit an organisation, replace its CA or
remove it while the network runs. A :class:`TrustStore` and the contexts built from it never
change (OpenSSL can add to a context's trust anchors but never remove one): a change builds a
new store and new contexts for the handshakes that start afterwards
(:meth:`citychain.p2p.switch.Switch.set_trusted_cas`), and every established connection is
checked again with :func:`check_still_trusted`, which says in plain words whether the peer's
organisation was removed or its CA replaced.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from citychain.errors import ConfigError, ErrorCode, InvalidInput, KeystoreError, PeerRefused
from citychain.p2p.certs import (
    NodeCertInfo,
    ca_org_id,
    decrypt_key_pem,
    issuing_ca,
    load_ca,
    node_cert_info,
    passphrase_bytes,
)

#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME (x509_vfy.h): validity dates are checked by us.
X509_V_FLAG_NO_CHECK_TIME = 0x200000

Purpose = Literal["server", "client"]
_EKU = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}

log = logging.getLogger("citychain.p2p")


@dataclass(frozen=True, slots=True)
class TrustStore:
    """The organisation CAs of genesis, parsed once."""

    cas: tuple[x509.Certificate, ...]
    pem: str

    @classmethod
    def from_pems(cls, ca_pems: Sequence[bytes]) -> TrustStore:
        if not ca_pems:
            raise ConfigError("no organisation CA certificates given: the trust store is empty")
        cas = []
        for i, pem in enumerate(ca_pems):
            try:
                cas.append(load_ca(pem))
            except ConfigError as exc:
                raise ConfigError(f"organisation CA #{i + 1}: {exc.message}") from None
        text = "\n".join(p.decode("ascii", errors="replace").strip() for p in ca_pems) + "\n"
        return cls(tuple(cas), text)


def when(moment: datetime) -> str:
    """A date as operators read it in logs: ``2025-01-31 00:00:00 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _context(
    side: Purpose,
    cert_file: Path,
    key_file: Path,
    passphrase: str | None,
    trust: TrustStore,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if side == "server" else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    if side == "server":
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.verify_flags = (
            ctx.verify_flags | ssl.VERIFY_X509_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME
        )
        try:
            ctx.load_verify_locations(cadata=trust.pem)
        except ssl.SSLError as exc:
            raise ConfigError(f"organisation CA certificates cannot be loaded: {exc}") from None
    else:
        # Verified by check_peer_certificate before any frame is read (module docstring).
        ctx.verify_mode = ssl.CERT_NONE
    load_identity(ctx, cert_file, key_file, passphrase)
    return ctx


def load_identity(
    ctx: ssl.SSLContext, cert_file: Path, key_file: Path, passphrase: str | None
) -> None:
    """Load a node's certificate and key into ``ctx``, with plain-word errors.

    The key should be encrypted (:func:`~citychain.p2p.certs.encrypt_key_pem`); an unencrypted
    one is accepted with a warning (development). OpenSSL is always given the password through
    a callback: with ``password=None`` it would prompt on the terminal for an encrypted key.
    """
    try:
        key_pem = key_file.read_bytes()
        cert_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read node certificate or key: {exc}") from None
    encrypted = b"ENCRYPTED" in key_pem
    if encrypted:
        if passphrase is None:
            raise KeystoreError(
                f"node key {key_file} is encrypted: its passphrase is needed",
                ErrorCode.WRONG_PASSPHRASE,
            )
        try:  # AES or SM4 (an sm2-sm3 network's): decrypt_key_pem reads both
            decrypt_key_pem(key_pem, passphrase)
        except (KeystoreError, InvalidInput):
            raise KeystoreError(
                f"cannot decrypt node key {key_file}: wrong passphrase (or a corrupt file)",
                ErrorCode.WRONG_PASSPHRASE,
            ) from None
    else:
        log.warning("node key %s is not encrypted at rest; encrypt it with a passphrase", key_file)

    def password() -> bytes:
        if passphrase is None:  # unreachable for an encrypted key (refused above)
            raise KeystoreError(
                f"node key {key_file} needs a passphrase", ErrorCode.WRONG_PASSPHRASE
            )
        return passphrase_bytes(passphrase)

    try:
        ctx.load_cert_chain(cert_file, key_file, password=password)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(f"node key {key_file} does not belong to {cert_file}") from None
        raise ConfigError(
            f"cannot load node certificate {cert_file} with key {key_file}: {exc}"
        ) from None


def server_context(
    cert_file: Path, key_file: Path, passphrase: str | None, trust: TrustStore
) -> ssl.SSLContext:
    """The context for accepted connections: TLS 1.3, a client certificate required."""
    return _context("server", cert_file, key_file, passphrase, trust)


def client_context(
    cert_file: Path, key_file: Path, passphrase: str | None, trust: TrustStore
) -> ssl.SSLContext:
    """The context for dialled connections: TLS 1.3; see the module docstring on checks."""
    return _context("client", cert_file, key_file, passphrase, trust)


def check_peer_certificate(
    cert_der: bytes | None,
    *,
    purpose: Purpose,
    chain_id: str,
    local_name: str,
    trust: TrustStore,
    now: datetime,
) -> NodeCertInfo:
    """What the peer's certificate says, once it passes our checks; else :class:`PeerRefused`.

    ``purpose`` is the peer's role: ``"server"`` for a node we dialled, ``"client"`` for one
    that dialled us. See the module docstring for the list of checks.
    """
    if cert_der is None:
        raise PeerRefused("wrong_ca", "it presented no certificate")
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        info = node_cert_info(cert)
    except (ValueError, InvalidInput) as exc:
        detail = exc.message if isinstance(exc, InvalidInput) else str(exc)
        raise PeerRefused(
            "protocol", f"its certificate is not a citychain node certificate: {detail}"
        ) from None
    try:
        _check_issuer(cert, info, purpose, trust)
        _check_identity(cert, info, chain_id=chain_id, local_name=local_name, trust=trust, now=now)
    except PeerRefused as exc:
        exc.peer_name = info.node_name
        raise
    return info


def check_still_trusted(cert: x509.Certificate, trust: TrustStore) -> None:
    """Refuse (:class:`PeerRefused`, ``wrong_ca``) a node certificate ``trust`` no longer covers.

    For certificates that passed :func:`check_peer_certificate` under an earlier trust store
    (established connections, handshakes in progress, our own certificate) after the trusted
    CAs changed: the certificate must still be issued directly by a trusted CA of its own
    organisation. The words say whether the organisation's CA was removed or replaced.
    """
    try:
        info = node_cert_info(cert)
    except InvalidInput as exc:
        raise PeerRefused(
            "protocol", f"its certificate is not a citychain node certificate: {exc.message}"
        ) from None
    ca = issuing_ca(cert, list(trust.cas))
    if ca is not None and ca_org_id(ca) == info.org_id:
        return
    org = info.org_id
    if any(ca_org_id(c) == org for c in trust.cas):
        detail = (
            f"the CA of organisation {org!r} that issued the certificate of {info.node_name} is "
            f"no longer trusted by this chain (replaced by governance); {info.node_name} needs "
            f"a certificate from the organisation's new CA"
        )
    else:
        detail = (
            f"the CA of organisation {org!r} is no longer trusted by this chain (the "
            "organisation was removed by governance)"
        )
    raise PeerRefused("wrong_ca", detail, peer_name=info.node_name)


def _check_issuer(
    cert: x509.Certificate, info: NodeCertInfo, purpose: Purpose, trust: TrustStore
) -> None:
    who = f"the certificate of {info.node_name}"
    if issuing_ca(cert, list(trust.cas)) is None:
        raise PeerRefused("wrong_ca", f"{who} does not chain to any organisation CA of this chain")
    ext = cert.extensions
    try:
        if ext.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise PeerRefused("wrong_ca", f"{who} is a CA certificate, not a node certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        if not ext.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            raise PeerRefused("wrong_ca", f"{who} does not allow digital signatures")
    except x509.ExtensionNotFound:
        pass
    try:
        usages = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if _EKU[purpose] not in usages and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages:
        role = "TLS server" if purpose == "server" else "TLS client"
        raise PeerRefused("wrong_ca", f"{who} is not allowed for {role} use")


def _check_identity(
    cert: x509.Certificate,
    info: NodeCertInfo,
    *,
    chain_id: str,
    local_name: str,
    trust: TrustStore,
    now: datetime,
) -> None:
    who = f"the certificate of {info.node_name}"
    ca = issuing_ca(cert, list(trust.cas))
    if ca is None:
        raise PeerRefused("wrong_ca", f"{who} does not chain to any organisation CA of this chain")
    ca_org = ca_org_id(ca)
    if ca_org != info.org_id:
        raise PeerRefused(
            "wrong_ca",
            f"{who} claims organisation {info.org_id!r} but was issued by the CA of "
            f"organisation {ca_org!r}",
        )
    for subject, start, end in (
        (who, info.not_before, info.not_after),
        (
            f"the CA certificate of organisation {ca_org!r}",
            ca.not_valid_before_utc,
            ca.not_valid_after_utc,
        ),
    ):
        if now < start:
            raise PeerRefused(
                "not_yet_valid",
                f"{subject} is not valid before {when(start)} (it is now {when(now)}); "
                "check the clocks of both machines",
            )
        if now > end:
            raise PeerRefused("expired", f"{subject} expired on {when(end)}")
    if info.chain_id != chain_id:
        raise PeerRefused(
            "wrong_chain",
            f"{info.node_name} is on chain {info.chain_id!r}, "
            f"{local_name} is on chain {chain_id!r}",
        )
