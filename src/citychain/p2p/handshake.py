"""Opening a connection: TCP, TLS 1.3, the certificate check, and the Hello exchange.

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

Steps, acceptor (A) and dialler (D)::

    D: TCP connect ─────────────► A: TCP accept
    D ◄─────── TLS 1.3 handshake, both certificates ───────► A
               (A's OpenSSL: does D's certificate chain to a genesis CA?)
    A: check D's certificate (tls.check_peer_certificate)  → Refuse + close on failure
    A: send Hello ─────────────────────────────────────────► D
    D: check A's certificate, and that it names the node D dialled → Refuse + close
    D: read A's Hello (or Refuse, or a silent close), check it → Refuse + close
    D: send Hello ──────────────────────────────────────────► A
    A: read D's Hello (or Refuse), check it                → Refuse + close

The acceptor speaks first. Under TLS 1.3 the dialler's handshake completes *before* the
acceptor has checked the dialler's certificate; if the acceptor's OpenSSL then refuses it,
asyncio closes the connection without sending the alert. Because the dialler waits for the
acceptor's Hello, it has nothing in flight (unread data at a closing socket turns into a TCP
reset that could hide what happened), and a close at that moment can only mean that refusal
(or a peer going down at that instant): it is reported as ``wrong_ca`` with words that say
"most likely". Every other refusal, on either side, travels as a Refuse frame.

On every failure path the writer is closed before the exception leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from citychain.errors import PeerRefused
from citychain.p2p.certs import NodeCertInfo
from citychain.p2p.frames import (
    CONTROL_CHANNEL,
    PROTOCOL_VERSION,
    Hello,
    Refuse,
    control_frame,
    decode_control,
    read_frame,
)
from citychain.p2p.refusals import explain_tls_error
from citychain.p2p.tls import TrustStore, check_peer_certificate

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

    def hello(self) -> Hello:
        return Hello(
            PROTOCOL_VERSION, self.chain_id, self.genesis_hash, self.node_name, self.org_id
        )


@dataclass(frozen=True, slots=True)
class Established:
    """A connection that passed the handshake, ready for frames."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    cert: NodeCertInfo
    direction: Direction
    address: str  # the remote "host:port"


def format_address(peername: object) -> str:
    """``host:port`` (``[v6]:port``) from a socket's peer name."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = str(peername[0]), peername[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peername)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close ``writer`` (TLS close_notify included), aborting it if that takes too long."""
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


#: What a dialler concludes when the acceptor closes between the handshake and its Hello.
SILENT_CLOSE = (
    "it closed the connection right after the TLS handshake without saying why: most likely it "
    "does not trust our CA (our certificate does not chain to any organisation CA its chain "
    "lists: not admitted yet, or removed by governance; asyncio sends no TLS alert)"
)


async def _read_hello(reader: asyncio.StreamReader, *, dialler: bool) -> Hello:
    """The peer's first frame as a Hello; a Refuse or TLS alert becomes :class:`PeerRefused`.

    A dialler reads first: the acceptor's OpenSSL refuses a dialler's certificate only after
    the dialler's handshake has completed, and then closes without a word (no alert, see
    :mod:`citychain.p2p.tls`), so an immediate close means exactly that, most likely.
    """
    try:
        channel, payload = await read_frame(reader, 0)
    except (asyncio.IncompleteReadError, ConnectionResetError, ssl.SSLEOFError):
        if dialler:
            raise PeerRefused("wrong_ca", SILENT_CLOSE, by_peer=True) from None
        raise EOFError("the peer closed the connection during the handshake") from None
    except ssl.SSLError as exc:
        raise explain_tls_error(exc) from None
    if channel != CONTROL_CHANNEL:
        raise PeerRefused("protocol", f"expected a hello, got a frame on channel {channel}")
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
) -> None:
    """Read the peer's Hello and check it; refuse (Refuse frame, close) on a mismatch."""
    try:
        hello = await _read_hello(reader, dialler=dialler)
    except PeerRefused as exc:
        exc.peer_name = cert.node_name
        if not exc.by_peer:  # a malformed hello: tell the peer
            await refuse_and_close(reader, writer, exc)
        raise
    try:
        check_hello(hello, cert, local)
    except PeerRefused as exc:
        exc.peer_name = cert.node_name
        await refuse_and_close(reader, writer, exc)
        raise


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    context: ssl.SSLContext,
    local: Local,
    timeout_s: float,
) -> Established:
    """Run the acceptor's side of the handshake on a fresh inbound TCP connection."""
    address = format_address(writer.get_extra_info("peername"))
    done = False
    try:
        async with asyncio.timeout(timeout_s):
            try:
                await writer.start_tls(context, ssl_handshake_timeout=timeout_s)
            except ssl.SSLError as exc:
                raise explain_tls_error(exc) from None
            cert = await _checked(reader, writer, local, None, address)
            writer.write(control_frame(local.hello()))
            await _hello_from(reader, writer, cert, local, dialler=False)
        done = True
        return Established(reader, writer, cert, "in", address)
    finally:
        if not done:
            await _close_quietly(writer)


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
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with asyncio.timeout_at(deadline):
        try:
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=context,
                ssl_handshake_timeout=timeout_s,
                ssl_shutdown_timeout=CLOSE_TIMEOUT_S,
                limit=READ_LIMIT,
            )
        except ssl.SSLError as exc:
            raise explain_tls_error(exc) from None
    done = False
    try:
        async with asyncio.timeout_at(deadline):
            cert = await _checked(reader, writer, local, name, address)
            await _hello_from(reader, writer, cert, local, dialler=True)
            writer.write(control_frame(local.hello()))
            await writer.drain()
        done = True
        return Established(reader, writer, cert, "out", address)
    finally:
        if not done:
            await _close_quietly(writer)


async def _close_quietly(writer: asyncio.StreamWriter) -> None:
    if writer.transport.is_closing():
        # Already closed (e.g. by refuse_and_close); make sure nothing lingers.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await writer.wait_closed()
        return
    await close_writer(writer)
