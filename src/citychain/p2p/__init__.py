"""Node-to-node transport: asyncio TCP, mutual TLS 1.3 with X.509 certificates from each
organisation's CA, length-prefixed frames on numbered channels, and a peer manager.

* :mod:`~citychain.p2p.certs` — organisation CAs and node certificates (which may name the
  node's signing key);
* :mod:`~citychain.p2p.tls` — TLS contexts and the identity check after the handshake;
* :mod:`~citychain.p2p.refusals` — TLS failures as refusals in plain words (the refusal,
  :class:`~citychain.errors.PeerRefused`, is in the one exceptions tree);
* :mod:`~citychain.p2p.frames` — frames and the Hello/NodeKeyProof/Refuse control messages;
* :mod:`~citychain.p2p.nodekey` — the proof, in the handshake, that a node holds the signing
  key its certificate names (a key in a hardware module, where a TLS key file cannot be);
* :mod:`~citychain.p2p.handshake` — opening a connection, from either end;
* :mod:`~citychain.p2p.connection` — one connection's reader, writer and send queue;
* :mod:`~citychain.p2p.switch` — :class:`Switch`, the peer manager consumers use.

Layering: this package imports only ``citychain.errors``, ``citychain.codec``,
``citychain.crypto`` and ``citychain.types`` (plus the standard library and ``cryptography``).
"""

from citychain.p2p.certs import NodeCertInfo as NodeCertInfo
from citychain.p2p.config import Limits as Limits
from citychain.p2p.config import PeerAddress as PeerAddress
from citychain.p2p.config import parse_peer_list as parse_peer_list
from citychain.p2p.switch import PeerInfo as PeerInfo
from citychain.p2p.switch import Switch as Switch

__all__ = [
    "Limits",
    "NodeCertInfo",
    "PeerAddress",
    "PeerInfo",
    "Switch",
    "parse_peer_list",
]
