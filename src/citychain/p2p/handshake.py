"""Opening a connection: TCP, TLS 1.3, the certificate check, Hellos and node-key proofs.

Theory of operation
-------------------
:func:`accept` (for a connection a peer opened to us) and :func:`dial` (for one we open) run
the same steps from the two ends and return an :class:`Established` connection, or raise:

* :class:`PeerRefused` — one side refused the other; ``by_peer`` tells which. The caller logs
  :meth:`PeerRefused.log_line`. When the TLS session was up, the refusing side has already
  sent a Refuse frame, waited briefly for the peer to read it and close, then closed.
* :class:`OSError` (connection refused, reset, unreachable), :class:`EOFError` (closed during
  the handshake) or :class:`TimeoutError` (the whole exchange took longer than the handshake
  timeout).

Steps, acceptor (A) and dialler (D); each line is one step of :func:`accept` or :func:`dial`
(the comments there carry the same numbers), and every check refuses with a Refuse frame and
a close::

    #   acceptor (A)                       dialler (D)                      refused as
    --  ---------------------------------  -------------------------------  ------------------
    1   TCP accept, TLS 1.3 (OpenSSL: D's  TCP connect, TLS 1.3             silent close
        cert chains to a genesis CA?)
    2   check D's certificate                                               wrong_ca, expired,
                                                                            not_yet_valid, ...
    3   send Hello(nonce_A)  ----------->
    4                                      check A's certificate and name   wrong_ca, ...,
                                                                            unknown_peer
    5                                      read A's Hello, check it         wrong_chain,
                                                                            wrong_suite,
                                                                            wrong_genesis, ...
    6                       <------------  send Hello(nonce_D), Proof_D
    7   read D's Hello, check it                                            (as 5)
    8   read D's Proof, check it                                            node_key, gm_cert
    9   send Proof_A  ------------------>
    10                                     read A's Proof, check it         node_key, gm_cert

A Proof (:class:`~citychain.p2p.frames.NodeKeyProof`) is the sender's signature, by the node
key its certificate names, over the connection's binding: chain, genesis, both certificates'
SHA-256 and both nonces, and which side signed (:mod:`citychain.p2p.nodekey` says why that
defeats replay and relay without a TLS exporter, and what it does not give). A certificate
that names no node key sends an empty Proof and needs none. The dialler waits for the
acceptor's Proof, so it learns in the handshake whether the acceptor accepted it. On an
``sm2-sm3`` chain every certificate must name an SM2 node key, and a Proof also carries the
sender's SM2 node certificate, checked in steps 8 and 10 against the SM2 CA of the sender's
organisation (``gm_cert``, ``expired``, ``not_yet_valid``; see :mod:`citychain.p2p.nodekey`).

The acceptor speaks first. Under TLS 1.3 the dialler's handshake completes *before* the
acceptor has checked the dialler's certificate; if the acceptor's OpenSSL then refuses it,
the event loop (asyncio's and uvloop's alike) closes the connection without sending the
alert. Because the dialler waits for the acceptor's Hello, it has nothing in flight (unread
data at a closing socket turns into a TCP reset that could hide what happened), and a close
at that moment can only mean that refusal (or a peer going down at that instant): it is
reported as ``wrong_ca`` with words that say "most likely". Every other refusal, on either
side, travels as a Refuse frame.

On every failure path the writer is closed before the exception leaves this module. That
includes a cancellation (the switch stopping) that lands just as TLS comes up, before our code
has the connection: asyncio then closes it gracefully, with a close_notify and a wait for the
peer's that nothing would ever end, so the TCP socket would outlive the loop. The stream
protocol (:class:`_Stream`) keeps the transport TLS handed it, and that transport is aborted.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, cast

from citychain.crypto import Signer
from citychain.errors import PeerRefused, Unavailable
from citychain.p2p.certs import NodeCertInfo
from citychain.p2p.exporter import tls_exporter
from citychain.p2p.frames import (
    CONTROL_CHANNEL,
    DEFAULT_SUITE,
    PROTOCOL_VERSION,
    ControlMessage,
    Hello,
    NodeKeyProof,
    Refuse,
    control_frame,
    decode_control,
    read_frame,
)
from citychain.p2p.nodekey import (
    GM_SUITE,
    NONCE_BYTES,
    Binding,
    Role,
    check_gm_cert,
    check_proof,
    fingerprint,
    prove,
)
from citychain.p2p.refusals import explain_tls_error
from citychain.p2p.tls import TrustStore, check_peer_certificate

if TYPE_CHECKING:
    from citychain.crypto.sm2_certs import Sm2Cert

#: How long a refusing side waits for the peer to read its Refuse frame and close.
LINGER_S = 0.5
#: How long closing a connection may take before the transport is aborted.
CLOSE_TIMEOUT_S = 1.0
#: StreamReader buffer limit; reading pauses (TCP flow control) above twice this.
READ_LIMIT = 256 * 1024

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class Local:
    """Who we are, and what we check peers against."""

    chain_id: str
    genesis_hash: bytes
    node_name: str
    org_id: str
    trust: TrustStore
    #: Our own certificate, as read from its file (the one our TLS contexts present).
    cert: NodeCertInfo
    #: What signs our node-key proof; used when ``cert`` names a node key (it must be its key).
    signer: Signer | None = None
    #: The chain's crypto suite (genesis): a peer of another suite is refused by name.
    crypto_suite: str = DEFAULT_SUITE
    #: On an ``sm2-sm3`` chain: our SM2 node certificate (DER), sent with our proof, and the
    #: SM2 CA of each organisation, which peers' SM2 certificates must come from.
    gm_cert: bytes = b""
    gm_cas: Mapping[str, Sm2Cert] = field(default_factory=dict)

    def hello(self, nonce: bytes) -> Hello:
        return Hello(
            PROTOCOL_VERSION,
            self.chain_id,
            self.genesis_hash,
            self.node_name,
            self.org_id,
            nonce,
            self.crypto_suite,
        )

    def binding(
        self, peer: NodeCertInfo, *, ours: Role, own: bytes, theirs: bytes, exporter: bytes = b""
    ) -> Binding:
        """The binding of a connection to ``peer`` on which we are ``ours``, with our nonce
        ``own``, the peer's ``theirs`` and (GM chains) the TLS session's ``exporter``."""
        mine, its = fingerprint(self.cert), fingerprint(peer)
        if ours == "dialler":
            return Binding(self.chain_id, self.genesis_hash, mine, its, own, theirs, exporter)
        return Binding(self.chain_id, self.genesis_hash, its, mine, theirs, own, exporter)

    async def proof(self, binding: Binding, ours: Role) -> NodeKeyProof:
        signature = await prove(self.signer, self.cert.node_key, binding, ours)
        return NodeKeyProof(signature, self.gm_cert)

    @property
    def gm(self) -> bool:
        """Whether peers are authenticated by SM2 certificates (an ``sm2-sm3`` chain)."""
        return self.crypto_suite == GM_SUITE


@dataclass(frozen=True, slots=True)
class Established:
    """A connection that passed the handshake, ready for frames."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    cert: NodeCertInfo
    direction: Direction
    address: str  # the remote "host:port"
    #: The peer's SM2 node certificate (DER) on an ``sm2-sm3`` chain, as checked; else empty.
    gm_cert: bytes = b""


class _Stream(asyncio.StreamReaderProtocol):
    """A stream protocol that keeps the transport it was given when TLS came up, so that a
    handshake cancelled before it could make its writer can still drop the connection."""

    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TLS transport is not registered as an
        # asyncio.Transport, though it is one in all but name.
        self.transport = cast(asyncio.Transport, transport)
        super().connection_made(transport)

    def drop(self) -> None:
        """Abort the connection at once, if TLS came up (else the loop dropped it already)."""
        if self.transport is not None:
            self.transport.abort()


def format_address(peername: object) -> str:
    """``host:port`` (``[v6]:port``) from a socket's peer name."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = str(peername[0]), peername[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peername)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close ``writer`` (TLS close_notify included), aborting it if that takes too long or
    the wait is cancelled; safe to call on a writer closing or closed already.

    ``close()`` is called only once: asyncio's TLS transport (3.11) drops its protocol on a
    second ``close()``, after which ``abort()`` does nothing and a TLS shutdown that never
    completes leaves the TCP transport open until the garbage collector finds it."""
    if not writer.transport.is_closing():
        writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise


async def refuse_and_close(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refusal: PeerRefused
) -> None:
    """Tell the peer why we close, give it a moment to read that, then close."""
    try:
        writer.write(control_frame(Refuse(refusal.reason_code, refusal.message)))
        async with asyncio.timeout(LINGER_S):
            await writer.drain()
            while await reader.read(READ_LIMIT):  # discard until the peer closes
                pass
    except (OSError, TimeoutError):
        pass
    finally:
        await close_writer(writer)


def peer_cert_der(writer: asyncio.StreamWriter) -> bytes | None:
    """The DER certificate the peer presented on a TLS connection, if any."""
    ssl_object = writer.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return ssl_object.getpeercert(binary_form=True)


def check_hello(hello: Hello, cert: NodeCertInfo, local: Local) -> None:
    """Refuse a Hello that does not match us or the certificate it came with."""
    name = cert.node_name
    if hello.protocol_version != PROTOCOL_VERSION:
        raise PeerRefused(
            "protocol",
            f"{name} speaks protocol version {hello.protocol_version}, {local.node_name} speaks "
            f"{PROTOCOL_VERSION}",
        )
    if hello.chain_id != local.chain_id:
        raise PeerRefused(
            "wrong_chain",
            f"{name} is on chain {hello.chain_id!r}, {local.node_name} is on chain "
            f"{local.chain_id!r}",
        )
    if hello.crypto_suite != local.crypto_suite:
        # Before the genesis check, which would refuse too (genesis names the suite), because
        # this says why: one network runs one suite, and neither side could check the other's
        # signatures, blocks or proofs.
        raise PeerRefused(
            "wrong_suite",
            f"{name} runs the {hello.crypto_suite} crypto suite, {local.node_name} runs "
            f"{local.crypto_suite}; a network runs the one suite its genesis names, so the "
            "two nodes were set up from different genesis files",
        )
    if hello.genesis_hash != local.genesis_hash:
        raise PeerRefused(
            "wrong_genesis",
            f"{name} has genesis hash {hello.genesis_hash.hex()[:16]}…, {local.node_name} has "
            f"{local.genesis_hash.hex()[:16]}…; the two nodes were set up from different "
            "genesis files",
        )
    if (hello.node_name, hello.org_id) != (cert.node_name, cert.org_id):
        raise PeerRefused(
            "protocol",
            f"the hello says node {hello.node_name!r} of organisation {hello.org_id!r} but "
            f"the certificate says node {cert.node_name!r} of {cert.org_id!r}",
        )
    if name == local.node_name:
        raise PeerRefused("unknown_peer", f"the peer has our own name {name!r}")
    if len(hello.nonce) != NONCE_BYTES:
        raise PeerRefused(
            "protocol", f"{name}'s hello carries a nonce of {len(hello.nonce)} bytes, not 32"
        )


#: What a dialler concludes when the acceptor closes between the handshake and its Hello.
SILENT_CLOSE = (
    "it closed the connection right after the TLS handshake without saying why: most likely it "
    "does not trust our CA (our certificate does not chain to any organisation CA its chain "
    "lists: not admitted yet, or removed by governance; asyncio sends no TLS alert)"
)


async def _read_control(reader: asyncio.StreamReader, *, first: bool) -> ControlMessage:
    """The peer's next control message; a Refuse or TLS alert becomes :class:`PeerRefused`.

    A dialler reads A's Hello first (``first=True``): the acceptor's OpenSSL refuses a
    dialler's certificate only after the dialler's handshake has completed, and then closes
    without a word (no alert, see :mod:`citychain.p2p.tls`), so an immediate close means
    exactly that, most likely.
    """
    try:
        channel, payload = await read_frame(reader, 0)
    except (asyncio.IncompleteReadError, ConnectionResetError, ssl.SSLEOFError):
        if first:
            raise PeerRefused("wrong_ca", SILENT_CLOSE, by_peer=True) from None
        raise EOFError("the peer closed the connection during the handshake") from None
    except ssl.SSLError as exc:
        raise explain_tls_error(exc) from None
    if channel != CONTROL_CHANNEL:
        raise PeerRefused("protocol", f"expected a handshake message, got a frame on {channel}")
    message = decode_control(payload)
    if isinstance(message, Refuse):
        raise message.as_error()
    return message


async def _checked(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    local: Local,
    expected: str | None,
    address: str,
) -> NodeCertInfo:
    """The peer certificate, checked; refuses (Refuse frame, close) and raises on failure."""
    try:
        cert = check_peer_certificate(
            peer_cert_der(writer),
            purpose="client" if expected is None else "server",
            chain_id=local.chain_id,
            local_name=local.node_name,
            trust=local.trust,
            now=datetime.now(UTC),
        )
        if expected is not None and cert.node_name != expected:
            raise PeerRefused(
                "unknown_peer",
                f"{local.node_name} dialled {expected} at {address} but the certificate there "
                f"says {cert.node_name}",
            )
    except PeerRefused as exc:
        if exc.peer_name is None and expected is not None:
            exc.peer_name = expected
        await refuse_and_close(reader, writer, exc)
        raise
    return cert


async def _hello_from(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    cert: NodeCertInfo,
    local: Local,
    *,
    dialler: bool,
) -> Hello:
    """Read the peer's Hello and check it; refuse (Refuse frame, close) on a mismatch."""
    try:
        hello = await _read_control(reader, first=dialler)
        if not isinstance(hello, Hello):
            raise PeerRefused("protocol", "expected a hello, got a node key proof")
        check_hello(hello, cert, local)
    except PeerRefused as exc:
        exc.peer_name = cert.node_name
        if not exc.by_peer:  # a malformed or mismatched hello: tell the peer
            await refuse_and_close(reader, writer, exc)
        raise
    return hello


async def _proof_from(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    cert: NodeCertInfo,
    binding: Binding,
    role: Role,
    local: Local,
) -> bytes:
    """Read the peer's node-key proof (it is ``role``) and check it, and on an ``sm2-sm3``
    chain the SM2 certificate that comes with it (returned); refuse on failure."""
    try:
        proof = await _read_control(reader, first=False)
        if not isinstance(proof, NodeKeyProof):
            raise PeerRefused("protocol", "expected a node key proof, got a second hello")
        check_proof(cert, binding, role, proof.signature)
        if local.gm:
            check_gm_cert(
                cert,
                proof.gm_cert,
                chain_id=local.chain_id,
                gm_cas=local.gm_cas,
                now_ms=time.time_ns() // 1_000_000,
            )
        elif proof.gm_cert:
            raise PeerRefused(
                "protocol",
                f"{cert.node_name} sent an SM2 certificate on a {local.crypto_suite} chain",
            )
    except PeerRefused as exc:
        exc.peer_name = cert.node_name
        if not exc.by_peer:
            await refuse_and_close(reader, writer, exc)
        raise
    return proof.gm_cert


async def _exporter(writer: asyncio.StreamWriter, context: ssl.SSLContext, local: Local) -> bytes:
    """The TLS session's exporter on an ``sm2-sm3`` chain (empty elsewhere). If it cannot be
    read, this side gives up the connection and tells the peer nothing (not its fault)."""
    if not local.gm:
        return b""
    try:
        return tls_exporter(writer.get_extra_info("ssl_object"), context)
    except Unavailable as exc:
        await close_writer(writer)
        raise PeerRefused(
            "protocol",
            f"this node could not read the TLS exporter of the connection: {exc.message}",
        ) from None


async def _own_proof(
    writer: asyncio.StreamWriter, local: Local, binding: Binding, ours: Role
) -> NodeKeyProof:
    """Our proof; if our own signer fails, the peer is told nothing (it is not its fault)."""
    try:
        return await local.proof(binding, ours)
    except PeerRefused:
        await close_writer(writer)
        raise


async def accept(
    sock: socket.socket,
    *,
    context: ssl.SSLContext,
    local: Local,
    timeout_s: float,
) -> Established:
    """Run the acceptor's side of the handshake on a freshly accepted TCP socket, unread.

    TLS begins with the connection (``connect_accepted_socket(ssl=...)``), not by upgrading a
    plain stream (``StreamWriter.start_tls``): bytes a stream has read before its upgrade stay
    in its buffer and never reach TLS, so a ClientHello read early hangs the handshake (uvloop
    reads a connection in the turn it accepts it). Closes ``sock`` on every failure."""
    loop = asyncio.get_running_loop()
    try:
        address = format_address(sock.getpeername())
    except OSError:
        address = "an unknown address"  # the dialler is gone already; the read below says so
    reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
    protocol = _Stream(reader, loop=loop)
    writer: asyncio.StreamWriter | None = None
    done = False
    try:
        async with asyncio.timeout(timeout_s):
            try:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=context,
                    ssl_handshake_timeout=timeout_s,
                    ssl_shutdown_timeout=CLOSE_TIMEOUT_S,
                )
            except ssl.SSLError as exc:  # 1
                raise explain_tls_error(exc) from None
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            cert = await _checked(reader, writer, local, None, address)  # 2
            nonce = secrets.token_bytes(NONCE_BYTES)
            writer.write(control_frame(local.hello(nonce)))  # 3
            hello = await _hello_from(reader, writer, cert, local, dialler=False)  # 7
            exporter = await _exporter(writer, context, local)
            binding = local.binding(
                cert, ours="acceptor", own=nonce, theirs=hello.nonce, exporter=exporter
            )
            gm_cert = await _proof_from(reader, writer, cert, binding, "dialler", local)  # 8
            writer.write(control_frame(await _own_proof(writer, local, binding, "acceptor")))  # 9
            await writer.drain()
        done = True
        return Established(reader, writer, cert, "in", address, gm_cert)
    finally:
        if not done:
            if writer is not None:
                await close_writer(writer)
            else:
                protocol.drop()
                sock.close()  # where a transport took it, it closes the socket again: harmless


async def dial(
    name: str,
    host: str,
    port: int,
    *,
    context: ssl.SSLContext,
    local: Local,
    timeout_s: float,
) -> Established:
    """Run the dialler's side of the handshake to the node ``name`` at ``host:port``."""
    address = format_address((host, port))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
    protocol = _Stream(reader, loop=loop)
    try:
        async with asyncio.timeout_at(deadline):
            transport, _ = await loop.create_connection(
                lambda: protocol,
                host,
                port,
                ssl=context,
                ssl_handshake_timeout=timeout_s,
                ssl_shutdown_timeout=CLOSE_TIMEOUT_S,
            )
    except ssl.SSLError as exc:
        raise explain_tls_error(exc) from None
    except BaseException:
        protocol.drop()  # cancelled as TLS came up: see the module docstring
        raise
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    done = False
    try:
        async with asyncio.timeout_at(deadline):
            cert = await _checked(reader, writer, local, name, address)  # 4
            hello = await _hello_from(reader, writer, cert, local, dialler=True)  # 5
            nonce = secrets.token_bytes(NONCE_BYTES)
            exporter = await _exporter(writer, context, local)
            binding = local.binding(
                cert, ours="dialler", own=nonce, theirs=hello.nonce, exporter=exporter
            )
            proof = await _own_proof(writer, local, binding, "dialler")
            writer.write(control_frame(local.hello(nonce)) + control_frame(proof))  # 6
            await writer.drain()
            gm_cert = await _proof_from(reader, writer, cert, binding, "acceptor", local)  # 10
        done = True
        return Established(reader, writer, cert, "out", address, gm_cert)
    finally:
        if not done:
            await close_writer(writer)
