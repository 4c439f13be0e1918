"""Frames on the wire, and the control messages (Hello, NodeKeyProof, Refuse).

Theory of operation
-------------------
Inside TLS, a connection carries frames::

    +-----------------------+------------+------------------+
    | length (4 bytes, BE)  | channel (1)| payload (length) |
    +-----------------------+------------+------------------+

``length`` counts the payload only (the 5-byte header is fixed). The reader checks ``length``
against its limit *before* reading the payload, so a peer cannot make a node buffer more than
``max_message_bytes`` for one frame; an oversize frame ends the connection with ``message of
N bytes exceeds limit M``.

Channel 0 is the control channel of the transport itself; channels 1..255 belong to the
consumers (consensus, mempool, sync, ...). A control payload is canonical CBOR (see
:mod:`citychain.codec`), a list whose first item names the message:

* ``["hello", protocol_version, chain_id, genesis_hash, node_name, org_id, nonce]`` — the
  first frame each side sends after the TLS handshake; ``nonce`` is 32 fresh random bytes.
  The acceptor sends its Hello first and the dialler answers, so the dialler never has data
  in flight when the acceptor refuses its certificate (unread data at a closing socket turns
  into a TCP reset that can destroy the refusal before the other side reads it). A protocol
  version 1 Hello (no nonce) still decodes, so that it is refused as the wrong version, in
  words, not as a malformed message. A node of a chain on another crypto suite than
  ``ed25519`` appends the suite's name as an eighth item (an Ed25519 hello is unchanged), so
  that a peer of the other suite is refused as such (``wrong_suite``), in words.
* ``["proof", signature]`` — the node-key proof (:mod:`citychain.p2p.nodekey`), sent by the
  dialler right after its Hello and by the acceptor once it has checked the dialler's;
  ``signature`` is empty when the sender's certificate names no node key.
* ``["refuse", reason_code, message]`` — sent instead of (or after) a Hello, just before
  closing; the receiver logs the reason. See :mod:`citychain.p2p.refusals`.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Final

from citychain import codec
from citychain.errors import REFUSAL_REASONS, DecodeError, PeerRefused

HEADER: Final = struct.Struct(">IB")
#: The suite a hello without one names (every hello before suites were sent).
DEFAULT_SUITE: Final = "ed25519"
CONTROL_CHANNEL: Final = 0
PROTOCOL_VERSION: Final = 2  # 2: the Hello's nonce and the node-key proof
#: Control messages are small; anything larger is a protocol error.
MAX_CONTROL_BYTES: Final = 4096
#: A Refuse message's text is cut to this many characters.
MAX_REFUSE_TEXT: Final = 1000


def header(channel: int, length: int) -> bytes:
    """The 5-byte frame header for a payload of ``length`` bytes on ``channel``."""
    return HEADER.pack(length, channel)


async def read_frame(reader: asyncio.StreamReader, max_payload: int) -> tuple[int, bytes]:
    """Read one frame: (channel, payload).

    Raises :class:`PeerRefused` (``protocol``) for an oversize frame, before reading its body;
    :class:`asyncio.IncompleteReadError` at end of stream.
    """
    length, channel = HEADER.unpack(await reader.readexactly(HEADER.size))
    limit = MAX_CONTROL_BYTES if channel == CONTROL_CHANNEL else max_payload
    if length > limit:
        raise PeerRefused("protocol", f"message of {length} bytes exceeds limit {limit}")
    payload = await reader.readexactly(length) if length else b""
    return channel, payload


#: A frame whose body still lacks more than this many bytes is gathered as a list of the reads
#: that bring it and joined once when complete (:class:`FrameDecoder`).
GATHER_BYTES: Final = 64 * 1024


class FrameDecoder:
    """Splits a byte stream into frames, many per read (the connection's hot path).

    :meth:`feed` returns the complete frames so far. An oversize length stops decoding at that
    frame, before its body arrives: :attr:`refusal` is then set, and the caller delivers the
    frames before it and closes the connection.

    Small frames are cut from one growing buffer. A large one (a block of up to 16 MiB, in
    reads of 64-256 KiB) is not: growing a ``bytearray`` that far copies it over and over
    (glibc's ``realloc`` moves large blocks: ~8 ms for 4 MiB, ~31 ms for 16 MiB), so once a
    header announces more than :data:`GATHER_BYTES` still to come, the reads of its body are
    kept as they come and joined once (~0.5 ms and ~2.5 ms; bench/RESULTS.md).
    """

    def __init__(self, max_payload: int) -> None:
        self._max = max_payload
        self._buf = bytearray()
        self.refusal: PeerRefused | None = None
        # The large frame being gathered: its channel, the pieces so far, the bytes it lacks.
        self._channel = 0
        self._parts: list[bytes] = []
        self._want = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self.refusal is not None:
            return []
        frames: list[tuple[int, bytes]] = []
        if self._want:
            piece = data[: self._want]  # all of ``data`` (no copy) unless the frame ends in it
            self._parts.append(piece)
            self._want -= len(piece)
            if self._want:
                return frames
            frames.append((self._channel, b"".join(self._parts)))
            self._parts = []
            data = data[len(piece) :]
            if not data:
                return frames
        buf = self._buf
        buf += data
        pos, size, unpack = 0, len(buf), HEADER.unpack_from
        while size - pos >= HEADER.size:
            length, channel = unpack(buf, pos)
            limit = MAX_CONTROL_BYTES if channel == CONTROL_CHANNEL else self._max
            if length > limit:
                self.refusal = PeerRefused(
                    "protocol", f"message of {length} bytes exceeds limit {limit}"
                )
                break
            end = pos + HEADER.size + length
            if end > size:
                if end - size > GATHER_BYTES:
                    self._channel = channel
                    self._parts = [bytes(buf[pos + HEADER.size : size])]
                    self._want = end - size
                    pos = size
                break
            frames.append((channel, bytes(buf[pos + HEADER.size : end])))
            pos = end
        if pos:
            del buf[:pos]
        return frames


@dataclass(frozen=True, slots=True)
class Hello:
    """What each side says about itself right after the handshake."""

    protocol_version: int
    chain_id: str
    genesis_hash: bytes
    node_name: str
    org_id: str
    nonce: bytes
    #: The chain's crypto suite. Sent as an eighth item only when it is not ``ed25519``, so an
    #: Ed25519 node's hello is the very bytes it always was; a seven-item hello means Ed25519.
    crypto_suite: str = DEFAULT_SUITE

    def encode(self) -> bytes:
        items: list[object] = [
            "hello",
            self.protocol_version,
            self.chain_id,
            self.genesis_hash,
            self.node_name,
            self.org_id,
            self.nonce,
        ]
        if self.crypto_suite != DEFAULT_SUITE:
            items.append(self.crypto_suite)
        return codec.encode(items)


@dataclass(frozen=True, slots=True)
class NodeKeyProof:
    """The sender's signature over the connection's binding, or empty (no node key named).
    On an ``sm2-sm3`` chain it also carries the sender's SM2 certificate (DER), which
    certifies the key that signed (:mod:`citychain.p2p.nodekey`); a third item only then, so
    an Ed25519 node's proof is the bytes it always was."""

    signature: bytes
    gm_cert: bytes = b""

    def encode(self) -> bytes:
        if self.gm_cert:
            return codec.encode(["proof", self.signature, self.gm_cert])
        return codec.encode(["proof", self.signature])


@dataclass(frozen=True, slots=True)
class Refuse:
    """Why the sender is closing the connection."""

    reason_code: str
    message: str

    def encode(self) -> bytes:
        return codec.encode(["refuse", self.reason_code, self.message[:MAX_REFUSE_TEXT]])

    def as_error(self) -> PeerRefused:
        """The refusal as the receiver sees it (``by_peer=True``)."""
        return PeerRefused(self.reason_code, self.message, by_peer=True)


ControlMessage = Hello | NodeKeyProof | Refuse


def control_frame(message: ControlMessage) -> bytes:
    """A whole control frame (header and payload) carrying ``message``."""
    payload = message.encode()
    return header(CONTROL_CHANNEL, len(payload)) + payload


def decode_control(payload: bytes) -> ControlMessage:
    """Parse a control payload; anything malformed is :class:`PeerRefused` (``protocol``)."""
    try:
        value = codec.decode(payload, max_size=MAX_CONTROL_BYTES)
    except DecodeError as exc:
        raise PeerRefused("protocol", f"malformed control message: {exc.message}") from None
    match value:
        case ["hello", int(v), str(chain), bytes(genesis), str(name), str(org), bytes(nonce)]:
            return Hello(v, chain, genesis, name, org, nonce)
        case [
            "hello",
            int(v),
            str(chain),
            bytes(genesis),
            str(name),
            str(org),
            bytes(nonce),
            str(suite),
        ] if suite != DEFAULT_SUITE and 0 < len(suite) <= 64:
            return Hello(v, chain, genesis, name, org, nonce, _printable(suite))
        case ["hello", 1, str(chain), bytes(genesis), str(name), str(org)]:
            return Hello(1, chain, genesis, name, org, b"")  # refused as version 1, in words
        case ["proof", bytes(signature)]:
            return NodeKeyProof(signature)
        case ["proof", bytes(signature), bytes(gm_cert)] if gm_cert:
            return NodeKeyProof(signature, gm_cert)
        case ["refuse", str(reason), str(text)] if reason in REFUSAL_REASONS:
            return Refuse(reason, _printable(text))
        case ["refuse", str(reason), str(text)]:
            return Refuse("protocol", _printable(f"{reason}: {text}"))
    raise PeerRefused("protocol", "malformed control message: not a hello, proof or refuse")


def _printable(text: str) -> str:
    """The peer's words, cut short and without control characters (they go into our logs)."""
    return "".join(c if c.isprintable() else "?" for c in text[:MAX_REFUSE_TEXT])
