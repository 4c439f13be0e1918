"""Proof, inside the p2p handshake, that a node holds the signing key its certificate names.

Theory of operation
-------------------
A node's TLS key is a file (Python's :mod:`ssl` loads private keys only from files, and
Debian's OpenSSL 3.0 has no PKCS#11 provider), so a copy of a node's disk and passphrase
would let its holder connect to peers as that node. When the node's validator key lives in a
hardware security module, that is the one key a disk copy does not give away. So a node
certificate may name the node's signing key (:class:`~citychain.p2p.certs.NodeKey`, put there
by the organisation CA that issued it), and then every connection carries, after the Hellos, a
:class:`~citychain.p2p.frames.NodeKeyProof`: a signature *by that key* (made inside the module
when it is a :class:`~citychain.crypto.pkcs11.Pkcs11Signer`) over the connection's
:class:`Binding`::

    codec.encode([
        "citychain/p2p/node-key-proof/v1",        # domain separation: never a vote or a tx
        chain_id, genesis_hash,
        sha256(dialler's DER certificate), sha256(acceptor's DER certificate),
        dialler_nonce, acceptor_nonce,            # 32 random bytes each, from the two Hellos
        "dialler" | "acceptor",                   # which side signed
    ])

Both sides compute the same binding from what they saw on this connection: their own
certificate, the one the peer presented in the TLS handshake (whose CertificateVerify proved
the peer holds that certificate's TLS key), and the two nonces. A peer whose certificate names
a key must send a proof that verifies with it, else it is refused (``node_key``, "node key not
proven"); a certificate without the extension needs no proof (an empty one is sent), as
before the extension existed.

What it defeats, without a TLS exporter (Python's :mod:`ssl` has no
``export_keying_material``, so the signature cannot cover the TLS session's keys):

* **Replay.** The verifier's own fresh nonce is in what was signed, so a proof recorded on an
  earlier connection does not verify on this one.
* **Relay.** An attacker who holds node A's TLS key and certificate (the disk copy) but not
  its module connects to B as A, and needs A's module to sign a binding that names *B's*
  certificate and B's nonce. A signs only on its own connections, over the certificate that
  peer presented in TLS; to make A sign one naming B's certificate the attacker must present
  B's certificate to A and complete TLS with it, i.e. hold *B's* TLS key too. The direction
  stops a proof made as dialler from passing as acceptor (and the reverse) when two nodes
  dial each other at once.
* **Cross-chain or cross-protocol use.** The tag, chain id and genesis hash.

What it does not give: a true channel binding. The proof says "the holder of this node key
took part in a handshake between these two certificates with these nonces", not "this TLS
session's keys belong to that holder". Someone holding *both* nodes' TLS keys could sit in the
middle of a connection between them and forward the proof. The TLS handshake signature itself
is still made by the file key.

On an ``sm2-sm3`` chain: authentication by SM2 certificates
-----------------------------------------------------------
A GM network authenticates its nodes by SM2 certificates (GM certificates,
:mod:`citychain.crypto.sm2_certs`). The standard ways, TLS 1.3 with SM2 per RFC 8998 or TLCP
(GB/T 38636), are out of reach of the TLS stack here: Python's :mod:`ssl` runs the system
OpenSSL 3.0, whose TLS refuses an SM2 certificate outright ("ssl_set_cert: unknown
certificate type"), has no SM4 cipher suites, and checks SM2 certificate signatures under an
empty distinguishing ID. So the closest honest thing is built on the proof above:

* TLS 1.3 runs as on every chain, with the P-256 TLS certificates of the organisations' TLS
  CAs (``ca_cert`` in genesis): it encrypts and authenticates the channel's two TLS keys;
* every node certificate must name the node's SM2 key (an unnamed one is refused,
  ``node_key``), so the node-key proof is an SM2 signature, under the chain's distinguishing
  ID, over the binding of both TLS certificates and both fresh nonces **and the TLS session's
  exporter** (RFC 8446 7.5, read from OpenSSL by :mod:`citychain.p2p.exporter`, since Python's
  ssl does not offer it): a ninth item of the binding, so the proof belongs to this TLS
  session and cannot be relayed into another, even by someone holding both nodes' TLS keys;
* the proof frame carries the signer's SM2 node certificate, and the receiver checks it
  (:func:`check_gm_cert`): issued, under the GM/T 0009 ID, by the SM2 CA that the chain lists
  for the organisation the TLS certificate names (``gm_ca_cert``: genesis, then governance),
  valid now, for this node's name and URI, and for exactly the key that signed the proof.
  Anything else is refused in words: ``gm_cert`` (no certificate, another CA, another
  node or key), ``expired`` or ``not_yet_valid``.

So a peer is authenticated by its SM2 certificate: the SM2 key that certificate certifies
signed this TLS session's exporter. (On ``ed25519`` chains the binding stays the eight items
above, byte for byte; the exporter is read only where it is needed, because reading it relies
on CPython's and OpenSSL's layout, checked before use.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from citychain import codec
from citychain.crypto import Signer, get_suite
from citychain.errors import CitychainError, ConfigError, ErrorCode, InvalidInput, PeerRefused
from citychain.p2p.certs import NodeCertInfo, NodeKey, node_uri

if TYPE_CHECKING:
    from citychain.crypto.sm2_certs import Sm2Cert

#: The domain-separation tag that opens every signed binding.
PROOF_TAG: Final = "citychain/p2p/node-key-proof/v1"
#: Bytes of randomness each side puts in its Hello.
NONCE_BYTES: Final = 32

Role = Literal["dialler", "acceptor"]


@dataclass(frozen=True, slots=True)
class Binding:
    """What a node-key proof on one connection is bound to (see the module docstring)."""

    chain_id: str
    genesis_hash: bytes
    dialler_cert: bytes  # SHA-256 of the dialler's DER certificate
    acceptor_cert: bytes  # SHA-256 of the acceptor's DER certificate
    dialler_nonce: bytes
    acceptor_nonce: bytes
    #: On an ``sm2-sm3`` chain: the TLS session's exporter (:mod:`citychain.p2p.exporter`),
    #: a ninth item then; empty (and absent from the message) elsewhere.
    exporter: bytes = b""

    def message(self, signer: Role) -> bytes:
        """The bytes the ``signer`` side signs."""
        items: list[object] = [
            PROOF_TAG,
            self.chain_id,
            self.genesis_hash,
            self.dialler_cert,
            self.acceptor_cert,
            self.dialler_nonce,
            self.acceptor_nonce,
            signer,
        ]
        if self.exporter:
            items.append(self.exporter)
        return codec.encode(items)


def fingerprint(info: NodeCertInfo) -> bytes:
    """The certificate's SHA-256 (32 bytes) from what :mod:`citychain.p2p.certs` read."""
    return bytes.fromhex(info.fingerprint)


def check_signer(named: NodeKey | None, signer: Signer | None, cert_file: str) -> None:
    """Refuse (:class:`~citychain.errors.ConfigError`) a node whose certificate names a key it
    does not hold: it could not prove it, and every peer would refuse it."""
    if named is None:
        return
    held = None if signer is None else NodeKey(signer.suite.name, signer.public_key)
    if held != named:
        has = "no node signer" if held is None else f"the key {held}"
        raise ConfigError(
            f"node certificate {cert_file} names node key {named} but this node has {has}: "
            "peers would refuse its connections; use the certificate issued for this node's "
            "validator key"
        )


async def prove(
    signer: Signer | None, named: NodeKey | None, binding: Binding, role: Role
) -> bytes:
    """Our proof for ``binding``: a signature when our certificate names a key, else empty.

    The signature is made on a worker thread: a hardware module may take milliseconds.
    A module that fails to sign is :class:`PeerRefused` (``node_key``) on our side only.
    """
    if named is None or signer is None:
        return b""
    try:
        return await asyncio.to_thread(signer.sign, binding.message(role))
    except CitychainError as exc:
        raise PeerRefused(
            "node_key", f"this node could not sign its node key proof: {exc.message}"
        ) from None


def check_proof(peer: NodeCertInfo, binding: Binding, role: Role, signature: bytes) -> None:
    """Refuse (:class:`PeerRefused`) a proof from the ``role`` side that does not show the
    peer holds the key its certificate names."""
    name, key = peer.node_name, peer.node_key
    if key is None:
        if signature:
            raise PeerRefused(
                "protocol", f"{name} sent a node key proof but its certificate names no node key"
            )
        return
    if not signature:
        raise PeerRefused(
            "node_key",
            f"the certificate of {name} names node key {key} but {name} sent no proof that it "
            "holds it (its TLS key and certificate without that key, e.g. a copy of its disk "
            "without its hardware module?)",
        )
    try:
        suite = get_suite(key.suite)
    except InvalidInput:  # pragma: no cover (NodeKey.decode checked the suite)
        raise PeerRefused("node_key", f"{name}'s node key suite {key.suite!r} is unknown") from None
    if not suite.verify(key.public_key, binding.message(role), signature):
        raise PeerRefused(
            "node_key",
            f"the proof of node key {key} from {name} does not verify for this connection: it "
            "was not signed by the key its certificate names (its TLS key and certificate "
            "without that key, e.g. a copy of its disk without its hardware module?), or it "
            "was made for another connection",
        )


#: The suite whose chains authenticate nodes by SM2 certificates.
GM_SUITE: Final = "sm2-sm3"


def check_gm_cert(
    peer: NodeCertInfo,
    gm_cert: bytes,
    *,
    chain_id: str,
    gm_cas: Mapping[str, Sm2Cert],
    now_ms: int,
) -> None:
    """Refuse (:class:`PeerRefused`) a peer of an ``sm2-sm3`` chain unless ``gm_cert`` is an
    SM2 certificate from the SM2 CA of the peer's organisation (``gm_cas``: organisation id ->
    its CA, as the chain lists them), valid at ``now_ms``, for the peer's node name and URI and
    for the node key its TLS certificate names, whose proof :func:`check_proof` has checked.
    See "On an sm2-sm3 chain" in the module docstring."""
    from citychain.crypto.sm2_certs import parse_sm2_cert, verify_sm2_cert

    name, org = peer.node_name, peer.org_id
    if peer.node_key is None or peer.node_key.suite != GM_SUITE:
        raise PeerRefused(
            "node_key",
            f"the certificate of {name} names no SM2 node key; on an {GM_SUITE} chain every "
            "node certificate names the node's SM2 key, which signs each connection",
        )
    if not gm_cert:
        raise PeerRefused(
            "gm_cert",
            f"{name} sent no SM2 certificate; on an {GM_SUITE} chain every node is "
            "authenticated by the SM2 certificate its organisation's SM2 CA issued it "
            "([p2p] gm_cert_file)",
        )
    ca = gm_cas.get(org)
    if ca is None:
        raise PeerRefused(
            "gm_cert",
            f"organisation {org!r} of {name} has no SM2 CA on this chain (gm_cert_file's "
            "issuer must be the gm_ca_cert that genesis or governance lists for it)",
        )
    try:
        cert = verify_sm2_cert(parse_sm2_cert(gm_cert), ca, at_ms=now_ms)
    except InvalidInput as exc:
        reason = {ErrorCode.EXPIRED: "expired", ErrorCode.NOT_YET_VALID: "not_yet_valid"}.get(
            exc.code, "gm_cert"
        )
        raise PeerRefused(
            reason, f"the SM2 certificate of {name} (organisation {org}): {exc.message}"
        ) from None
    uri = node_uri(chain_id, name)
    if cert.subject_cn != name or cert.subject_o != org or uri not in cert.uris:
        raise PeerRefused(
            "gm_cert",
            f"the SM2 certificate {name} sent is for node {cert.subject_cn!r} of organisation "
            f"{cert.subject_o!r} ({', '.join(cert.uris) or 'no URI'}), not {name} of {org} "
            f"({uri})",
        )
    if cert.public_key != peer.node_key.public_key:
        raise PeerRefused(
            "gm_cert",
            f"the SM2 certificate of {name} certifies another key than the node key its TLS "
            "certificate names and that signed this connection",
        )


def gm_cas_from(pems: Mapping[str, bytes]) -> dict[str, Sm2Cert]:
    """Organisation id -> its SM2 CA, parsed (:class:`ConfigError` naming the organisation
    for one that is not an SM2 CA of that organisation)."""
    from citychain.crypto.sm2_certs import parse_sm2_cert

    out: dict[str, Sm2Cert] = {}
    for org, pem in sorted(pems.items()):
        try:
            ca = parse_sm2_cert(pem)
        except InvalidInput as exc:
            raise ConfigError(f"the SM2 CA of organisation {org!r}: {exc.message}") from None
        if not ca.is_ca or ca.subject_o != org:
            raise ConfigError(
                f"the SM2 CA of organisation {org!r} is not a CA certificate of that "
                f"organisation (O={ca.subject_o!r})"
            )
        out[org] = ca
    return out


def gm_cert_for(cert_pem: bytes, signer: Signer | None) -> bytes:
    """Our SM2 certificate's DER, after checking it certifies the key that signs our proofs
    (:class:`ConfigError` otherwise: every peer would refuse us)."""
    from citychain.crypto.sm2_certs import parse_sm2_cert

    try:
        cert = parse_sm2_cert(cert_pem)
    except InvalidInput as exc:
        raise ConfigError(f"the node's SM2 certificate: {exc.message}") from None
    if signer is None or signer.suite.name != GM_SUITE or cert.public_key != signer.public_key:
        raise ConfigError(
            "the node's SM2 certificate ([p2p] gm_cert_file) is not for this node's key: peers "
            "would refuse its connections; use the certificate its organisation's SM2 CA "
            "issued for its validator key"
        )
    return cert.der
