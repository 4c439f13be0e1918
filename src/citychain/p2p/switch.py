"""The peer manager: listens, dials the configured peers, keeps one connection per peer.

Theory of operation
-------------------
A :class:`Switch` owns a TLS listener and, for every configured peer, a *dial loop*: while
the peer is not connected it dials ``name@host:port`` with exponential backoff (plus jitter:
this is not consensus, nothing needs to be deterministic). Every connection, in or out, runs
the handshake of :mod:`citychain.p2p.handshake`; refusals are logged in plain words on both
sides and kept in ``PeerInfo.last_error``. When this node's certificate names its signing key,
the switch's ``node_signer`` (the validator key, in a file or a PKCS#11 module) signs the
node-key proof of every handshake (:mod:`citychain.p2p.nodekey`); a switch refuses to start
with a certificate naming a key that signer does not hold.

**One connection per peer.** Both nodes dial each other, so two connections can appear at
once. Both nodes apply the same rule and so keep the same one: the connection *dialled by the
node with the smaller name* wins; between two connections dialled by the same node, the newer
wins (the older is most likely dead: the peer restarted). The loser is closed with a Refuse
``duplicate`` frame, which is logged at debug level only. The peer stays connected throughout
(no disconnect/connect callbacks) and keeps its send queue. To make the race rare, the node
with the larger name waits one backoff interval before dialling, giving the other a head
start.

**Peers.** Each peer (configured, or an *unknown* node that connected to us with a valid
certificate from a genesis CA — allowed, and logged, since that is how a new node joins) has a
bounded send queue, counters, and its last error; see :mod:`citychain.p2p.connection` for the
reader/writer tasks and flow control. The organisation of a node name is remembered on its
first connection; a later certificate for the same name from another organisation is refused
(one organisation's CA cannot take over another organisation's node name). Only configured
peers are redialled.

**Trusted CAs follow the chain's organisation registry.** They start as the CAs of genesis;
when governance admits an organisation, replaces its CA or removes it, the node calls
:meth:`Switch.set_trusted_cas`. That builds a new trust store, new TLS contexts and a new
:class:`~citychain.p2p.handshake.Local`, which every handshake that starts afterwards uses,
and closes each established connection whose peer certificate no longer chains to a trusted
CA of its organisation, with a Refuse that says why. The listener needs no restart: it accepts
plain TCP sockets and each accepted connection begins TLS with the server context current at
that moment (:func:`~citychain.p2p.handshake.accept`), so replacing the context is enough. A
handshake that was already under way when the CAs changed is checked again against the new
ones before its connection is used.

**Threading.** Everything runs on one asyncio event loop. ``send``, ``broadcast`` and the
other methods must be called on that loop's thread; channel handlers and the
``on_peer_connected`` / ``on_peer_disconnected`` callbacks are called on it and must be quick.
An exception raised by a handler or callback is logged and does not affect the connection.
During :meth:`Switch.stop` the disconnect callback is not called.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography import x509

from citychain.crypto import Signer
from citychain.errors import ConfigError, ErrorCode, InvalidInput, KeystoreError, PeerRefused
from citychain.p2p.certs import (
    NodeCertInfo,
    ca_org_id,
    check_node_name,
    issuing_ca,
    node_cert_info,
    read_node_cert,
)
from citychain.p2p.config import Limits, PeerAddress, parse_peer_list
from citychain.p2p.connection import Connection, PeerStats, ReadLimits, SendQueue
from citychain.p2p.exporter import unavailable_reason as exporter_unavailable
from citychain.p2p.handshake import (
    Direction,
    Established,
    Local,
    accept,
    close_writer,
    dial,
    format_address,
    peer_cert_der,
    refuse_and_close,
)
from citychain.p2p.nodekey import GM_SUITE, check_gm_cert, check_signer, gm_cas_from, gm_cert_for
from citychain.p2p.tls import (
    TrustStore,
    check_still_trusted,
    client_context,
    server_context,
    when,
)

__all__ = ["Limits", "PeerAddress", "PeerInfo", "Switch", "parse_peer_list"]

log = logging.getLogger("citychain.p2p")

#: Inbound connections still in their handshake; more are closed at once.
MAX_PENDING_HANDSHAKES: Final = 64
#: The listener's accept queue (asyncio's default for a server), the connections accepted in
#: one turn of the loop, and how long the listener rests when the process has no descriptor.
LISTEN_BACKLOG: Final = 100
ACCEPT_PER_TURN: Final = 16
ACCEPT_RETRY_S: Final = 1.0
#: A log line that repeats within this window is logged at debug level.
REPEAT_WINDOW_S: Final = 60.0
#: A configured peer unreachable for this long is logged as a warning (before: info).
UNREACHABLE_WARN_S: Final = 30.0
#: A node whose own certificate expires sooner than this warns at start.
EXPIRY_WARNING: Final = timedelta(days=30)
#: The lowest and highest channel a consumer may use (0 is the transport's control channel).
MIN_CHANNEL: Final = 1
MAX_CHANNEL: Final = 255


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A snapshot of one peer, for status pages and tests."""

    name: str
    org_id: str | None  # None until it has connected once
    address: str | None  # configured "host:port", else the remote address last seen
    direction: Direction | None  # of the current (or last) connection
    connected: bool
    since_ms: int | None  # wall clock (ms since the epoch) of the last connect or disconnect
    msgs_sent: int
    bytes_sent: int  # whole frames, 5-byte header included
    msgs_received: int
    bytes_received: int
    dropped: int  # frames not sent: queue full, or still queued at a disconnect
    queued: int
    last_error: str | None  # plain words: "refused: wrong CA", "no such peer: connection refused"


@dataclass(slots=True, eq=False)
class _Peer:
    name: str
    configured: PeerAddress | None
    queue: SendQueue
    stats: PeerStats = field(default_factory=PeerStats)
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while not connected
    conn: Connection | None = None
    org_id: str | None = None
    address: str | None = None
    direction: Direction | None = None
    since_ms: int | None = None
    connected_at: float = 0.0
    last_lifetime_s: float = 0.0
    failing_since: float | None = None  # monotonic time of the first failed dial in a row
    last_error: str | None = None
    cert: x509.Certificate | None = None  # the peer certificate of ``conn``
    #: The SM2 node certificate (DER) the peer of ``conn`` proved itself with (GM chains).
    gm_cert: bytes = b""
    #: ``conn`` is being closed because the trusted CAs no longer cover it: drop its frames.
    untrusted: bool = False

    def __post_init__(self) -> None:
        self.idle.set()
        if self.configured is not None:
            self.address = str(self.configured).partition("@")[2]


@dataclass(frozen=True, slots=True)
class _Identity:
    """What the TLS contexts are built from, kept to rebuild them when the trusted CAs change.

    The passphrase stays out of ``repr`` (and so out of any log line that shows this object).
    """

    chain_id: str
    node_name: str
    org_id: str
    cert_file: Path
    key_file: Path
    passphrase: str | None = field(repr=False)

    def read_cert(self) -> x509.Certificate:
        """Our certificate as its file holds it now, checked against who we are."""
        return _read_own_certificate(self.cert_file, self.chain_id, self.node_name, self.org_id)

    def contexts(self, trust: TrustStore) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        """(server context, client context) trusting ``trust``."""
        return (
            server_context(self.cert_file, self.key_file, self.passphrase, trust),
            client_context(self.cert_file, self.key_file, self.passphrase, trust),
        )


class _Repeats:
    """Decides whether a log line is new (WARNING) or a repeat within the window (DEBUG)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, ...], float] = {}

    def level(self, *key: str, new: int = logging.WARNING) -> int:
        now = time.monotonic()
        if len(self._seen) > 1024:
            self._seen = {k: t for k, t in self._seen.items() if now - t < REPEAT_WINDOW_S}
        last = self._seen.get(key)
        if last is not None and now - last < REPEAT_WINDOW_S:
            return logging.DEBUG
        self._seen[key] = now
        return new


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _unreachable_words(exc: BaseException, address: str, timeout_ms: int) -> tuple[str, str]:
    """(last_error, log detail) for a dial that never reached a peer's Hello."""
    if isinstance(exc, ConnectionRefusedError):
        return (
            "no such peer: connection refused",
            f"no such peer — nothing listens at {address} (connection refused)",
        )
    if isinstance(exc, TimeoutError):
        return "no answer", f"no handshake from {address} within {timeout_ms} ms"
    if isinstance(exc, EOFError):
        return "closed during the handshake", str(exc)
    if isinstance(exc, OSError):
        words = exc.strerror or str(exc) or type(exc).__name__
        return f"no such peer: {words}", f"no such peer — cannot reach {address} ({words})"
    return "dial failed", str(exc)


def _set_keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive, so a peer machine that vanished is noticed within about a minute."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass


class Switch:
    """Connections to the other nodes of one chain; see the module docstring."""

    def __init__(
        self,
        *,
        chain_id: str,
        genesis_hash: bytes,
        node_name: str,
        org_id: str,
        cert_file: Path,
        key_file: Path,
        key_passphrase: str | None,
        ca_pems: Sequence[bytes],
        listen_host: str,
        listen_port: int,
        peers: Sequence[PeerAddress],
        limits: Limits = Limits(),  # noqa: B008 (frozen, so sharing the default is safe)
        node_signer: Signer | None = None,
        crypto_suite: str = "ed25519",
        gm_cert_pem: bytes | None = None,
        gm_ca_pems: Mapping[str, bytes] | None = None,
    ) -> None:
        """``node_signer`` signs this node's node-key proofs; it must hold the key that
        ``cert_file`` names, if it names one (:mod:`citychain.p2p.nodekey`). ``crypto_suite``
        is the chain's (genesis): its name goes in the hello, and a peer that names another
        is refused (``wrong_suite``). On an ``sm2-sm3`` chain ``gm_cert_pem`` is this node's
        SM2 certificate (for ``node_signer``'s key, which ``cert_file`` must name) and
        ``gm_ca_pems`` each organisation's SM2 CA: peers are authenticated by theirs."""
        try:
            check_node_name(node_name)
        except InvalidInput as exc:
            raise ConfigError(exc.message) from None
        if not genesis_hash:
            raise ConfigError("the genesis hash must not be empty")
        if not 0 <= listen_port < 65536:
            raise ConfigError(f"listen port {listen_port} is not in 0..65535")
        trust = TrustStore.from_pems(ca_pems)
        self._identity = _Identity(chain_id, node_name, org_id, cert_file, key_file, key_passphrase)
        self._own_cert = self._identity.read_cert()
        self._own = node_cert_info(self._own_cert)
        if issuing_ca(self._own_cert, list(trust.cas)) is None:
            raise ConfigError(
                f"node certificate {cert_file} was not issued by any organisation CA of this chain"
            )
        check_signer(self._own.node_key, node_signer, str(cert_file))
        gm_cert, gm_cas = b"", {}
        if crypto_suite == GM_SUITE:
            if self._own.node_key is None or gm_cert_pem is None:
                raise ConfigError(
                    f"on an {GM_SUITE} chain a node needs a certificate naming its SM2 node key "
                    f"({cert_file}) and an SM2 certificate for that key ([p2p] gm_cert_file): "
                    "peers authenticate it by them"
                )
            gm_cert = gm_cert_for(gm_cert_pem, node_signer)
            if (why := exporter_unavailable()) is not None:
                raise ConfigError(
                    f"on an {GM_SUITE} chain each node-key proof is bound to the TLS session's "
                    f"exporter, which this process cannot read: {why} (CPython 3.11 or 3.12 "
                    "with the OpenSSL 3 its ssl module links, as on Debian 12)"
                )
            gm_cas = gm_cas_from(gm_ca_pems or {})
        self._server_ctx, self._client_ctx = self._identity.contexts(trust)
        #: The CAs the two contexts trust (they lag ``_local.trust`` if a rebuild failed).
        self._ctx_cas = frozenset(trust.cas)
        self._local = Local(
            chain_id,
            bytes(genesis_hash),
            node_name,
            org_id,
            trust,
            self._own,
            node_signer,
            crypto_suite,
            gm_cert,
            gm_cas,
        )
        self._limits = limits
        self._read_limits = ReadLimits(
            limits.max_message_bytes, limits.recv_bytes_per_s, limits.recv_msgs_per_s
        )
        self._listen_host = listen_host
        self._listen_port = listen_port
        #: Records carry ``p2p_node`` (our node name): several nodes may share a process.
        self._log = logging.LoggerAdapter(log, {"p2p_node": node_name})
        self._peers: dict[str, _Peer] = {}
        for address in peers:
            if address.name == node_name:
                self._log.info("peer list names this node (%s) itself; not dialling it", node_name)
                continue
            if address.name in self._peers:
                raise ConfigError(f"peer {address.name!r} is listed twice in the peer list")
            self._peers[address.name] = _Peer(address.name, address, SendQueue(limits.send_queue))
        self._handlers: dict[int, Callable[[str, bytes], None]] = {}
        self.on_peer_connected: Callable[[str], None] | None = None
        self.on_peer_disconnected: Callable[[str, str], None] | None = None
        #: The listening socket, read by :meth:`_on_acceptable` (our own accept: see there).
        self._listener: socket.socket | None = None
        self._accept_retry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._stopped = False
        self._pending_inbound = 0
        self._repeats = _Repeats()

    # -- consumer API -------------------------------------------------------------------

    def add_channel(self, channel: int, handler: Callable[[str, bytes], None]) -> None:
        """Call ``handler(peer_name, payload)`` for every frame received on ``channel``."""
        _check_channel(channel)
        if channel in self._handlers:
            raise InvalidInput(f"channel {channel} already has a handler")
        self._handlers[channel] = handler

    @property
    def listen_port(self) -> int:
        """The port actually listened on (the configured one until :meth:`start`)."""
        if self._listener is not None:
            port: int = self._listener.getsockname()[1]
            return port
        return self._listen_port

    def send(self, peer: str, channel: int, payload: bytes) -> bool:
        """Queue ``payload`` for ``peer``. ``False`` if not connected or its queue is full."""
        _check_channel(channel)
        self._check_size(payload)
        state = self._peers.get(peer)
        if state is None or state.conn is None:
            return False
        return self._queue(state, channel, payload)

    def broadcast(self, channel: int, payload: bytes, *, exclude: str | None = None) -> int:
        """Queue ``payload`` for every connected peer but ``exclude``; return how many took it."""
        _check_channel(channel)
        self._check_size(payload)
        return sum(
            self._queue(state, channel, payload)
            for state in self._peers.values()
            if state.conn is not None and state.name != exclude
        )

    def connected(self) -> list[str]:
        """Names of the connected peers, sorted."""
        return sorted(name for name, state in self._peers.items() if state.conn is not None)

    def peers(self) -> list[PeerInfo]:
        """Every configured peer, and every unknown node that has connected, sorted by name."""
        return [
            PeerInfo(
                name=s.name,
                org_id=s.org_id,
                address=s.address,
                direction=s.direction,
                connected=s.conn is not None,
                since_ms=s.since_ms,
                msgs_sent=s.stats.msgs_sent,
                bytes_sent=s.stats.bytes_sent,
                msgs_received=s.stats.msgs_received,
                bytes_received=s.stats.bytes_received,
                dropped=s.stats.dropped,
                queued=len(s.queue),
                last_error=s.last_error,
            )
            for s in sorted(self._peers.values(), key=lambda s: s.name)
        ]

    def set_trusted_gm_cas(self, gm_ca_pems: Mapping[str, bytes]) -> None:
        """On an ``sm2-sm3`` chain: the SM2 CA of each organisation from now on (governance
        changed them); the handshakes that start afterwards check peers against them.
        :class:`ConfigError` (and nothing changes) if one is not an SM2 CA of its
        organisation."""
        if not self._local.gm:
            return
        cas = gm_cas_from(gm_ca_pems)
        if cas.keys() != self._local.gm_cas.keys() or any(
            c.der != self._local.gm_cas[o].der for o, c in cas.items()
        ):
            self._local = replace(self._local, gm_cas=cas)
            self._log.info("organisation SM2 CAs now: %s", ", ".join(sorted(cas)) or "none")
            # Connections made under the old CAs are checked again, as for the TLS CAs.
            for state in self._peers.values():
                conn = state.conn
                if conn is None or state.untrusted:
                    continue
                info = node_cert_info(state.cert) if state.cert is not None else None
                refusal = (
                    self._gm_refusal(info, state.gm_cert)
                    if info is not None
                    else PeerRefused("gm_cert", "its certificate cannot be checked again")
                )
                if refusal is not None:
                    self._close_refused(state, conn, refusal)

    def _gm_refusal(self, cert: NodeCertInfo, gm_cert: bytes) -> PeerRefused | None:
        """Why the current SM2 CAs refuse a peer's SM2 certificate (GM chains), or None."""
        local = self._local
        if not local.gm:
            return None
        try:
            check_gm_cert(
                cert, gm_cert, chain_id=local.chain_id, gm_cas=local.gm_cas, now_ms=_now_ms()
            )
        except PeerRefused as exc:
            return exc
        return None

    def set_trusted_cas(self, ca_pems: Sequence[bytes]) -> None:
        """Trust exactly the organisation CAs ``ca_pems`` from now on (on the loop's thread).

        For on-chain governance: the node calls this with the CA of every organisation in the
        registry after a vote admits an organisation, replaces its CA or removes it. Nothing
        happens if the set (order and repeats aside) is the one already trusted. Otherwise
        every handshake that starts afterwards uses a new trust store and new TLS contexts
        (built from the same certificate and key files as at construction), and every
        established connection whose peer certificate is no longer issued by a trusted CA of
        its organisation is closed with a ``wrong_ca`` refusal saying so (logged, and sent to
        the peer, like any refusal). If our own certificate no longer chains to the new CAs,
        an error is logged and the node keeps running: the operator must renew it.

        Raises :class:`ConfigError` (and nothing changes) if a CA cannot be parsed or the set
        is empty. If the contexts cannot be rebuilt (the certificate or key files became
        unreadable), an error is logged and the old contexts stay in use; the new CAs still
        apply, because every connection is also checked against them after its handshake
        (:mod:`citychain.p2p.tls`), and the next call tries the rebuild again.
        """
        trust = TrustStore.from_pems(ca_pems)
        wanted = frozenset(trust.cas)
        old = self._local.trust
        if wanted == frozenset(old.cas) and wanted == self._ctx_cas:
            return
        if wanted != self._ctx_cas:
            self._rebuild_contexts(trust)
        if wanted != frozenset(old.cas):
            self._local = replace(self._local, trust=trust)
            self._log.info(
                "trusted organisation CAs changed: %s; now trusting %s",
                _trust_change(old, trust),
                _org_names(trust.cas),
            )
            self._close_untrusted(trust)
        try:
            check_still_trusted(self._own_cert, trust)
        except PeerRefused as exc:
            self._log.error(
                "our certificate (node %s of organisation %s) does not chain to the "
                "organisation CAs this chain now trusts: %s. Every peer will refuse it; install "
                "a certificate from the organisation's current CA and restart this node",
                self._local.node_name,
                self._local.org_id,
                exc.message,
            )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, then keep dialling every configured peer."""
        if self._running or self._stopped:
            raise InvalidInput("a Switch is started once")
        self._check_own_dates()
        family = socket.AF_INET6 if ":" in self._listen_host else socket.AF_INET
        try:
            self._listener = socket.create_server(
                (self._listen_host, self._listen_port), family=family, backlog=LISTEN_BACKLOG
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self._listen_host}:{self._listen_port}: {exc.strerror or exc}"
            ) from None
        self._listener.setblocking(False)
        asyncio.get_running_loop().add_reader(self._listener.fileno(), self._on_acceptable)
        self._running = True
        for state in self._peers.values():
            self._spawn(self._dial_loop(state), f"p2p-dial-{state.name}")
        self._log.info(
            "node %s of organisation %s listening on %s:%d for chain %r; %d peers configured",
            self._local.node_name,
            self._local.org_id,
            self._listen_host,
            self.listen_port,
            self._local.chain_id,
            len(self._peers),
        )

    async def stop(self, *, drain_s: float = 1.0) -> None:
        """Close the listener and every connection; cancel every task.

        Frames already queued to connected peers get up to ``drain_s`` seconds to leave
        first (transactions a client was told were accepted, the last votes).
        """
        if self._stopped:
            return
        self._stopped = True
        self._running = False
        loop = asyncio.get_running_loop()
        if self._listener is not None:  # stop accepting first
            if self._accept_retry is not None:
                self._accept_retry.cancel()
                self._accept_retry = None
            else:
                loop.remove_reader(self._listener.fileno())
            self._listener.close()
        deadline = loop.time() + drain_s
        while loop.time() < deadline and any(
            p.conn is not None and len(p.queue) for p in self._peers.values()
        ):
            await asyncio.sleep(0.01)
        while True:
            tasks = list(self._tasks)
            conns = [s.conn for s in self._peers.values() if s.conn is not None]
            if not tasks and not conns:
                break
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
            await asyncio.gather(*(c.close("node stopping") for c in conns))
        self._log.info("node %s stopped its transport", self._local.node_name)

    # -- internals ----------------------------------------------------------------------

    def _rebuild_contexts(self, trust: TrustStore) -> None:
        """New TLS contexts for ``trust``; on failure, log and keep the old ones.

        A context in use is never changed: OpenSSL can add trust anchors to a context but not
        remove them, so a new one is built and installed; the listener picks it up for the
        next connection it accepts (module docstring).
        """
        try:
            own = self._identity.read_cert()
            server_ctx, client_ctx = self._identity.contexts(trust)
        except (ConfigError, KeystoreError) as exc:
            self._log.error(
                "cannot rebuild the TLS contexts for the new organisation CAs: %s; the old "
                "contexts stay in use (peers are still checked against the new CAs after the "
                "handshake, but nodes of newly admitted organisations cannot connect to us)",
                exc.message,
            )
            return
        self._server_ctx, self._client_ctx = server_ctx, client_ctx
        self._ctx_cas = frozenset(trust.cas)
        self._own_cert, self._own = own, node_cert_info(own)

    def _close_untrusted(self, trust: TrustStore) -> None:
        """Close every connection whose peer certificate ``trust`` no longer covers."""
        for state in self._peers.values():
            conn = state.conn
            if conn is None:
                continue
            refusal = _untrusted(state.cert, trust)
            if refusal is not None:
                self._close_refused(state, conn, refusal)

    def _close_refused(self, state: _Peer, conn: Connection, refusal: PeerRefused) -> None:
        """Close ``conn`` of ``state`` with ``refusal`` (the trusted CAs changed under it)."""
        refusal.peer_name = state.name
        state.untrusted = True  # its frames are dropped from now on
        self._spawn(
            conn.close(f"{refusal.words}: {refusal.message}", refusal),
            f"p2p-close-{state.name}",
            on_cancel=conn.abort,
        )

    def _spawn(
        self,
        coro: Coroutine[Any, Any, None],
        name: str,
        *,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        """Run ``coro`` as a task of ours (stop() cancels it).

        ``on_cancel`` drops the connection the task was to handshake or close: stop() may
        cancel a task before its first step, when none of its ``finally`` clauses can run, and
        nothing else would ever close that socket. A transport's ``abort`` is called even if
        it is closing already: a TLS shutdown the peer began keeps the socket open until it
        ends (see ``Connection.close``); a lost connection ignores it.
        """
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if on_cancel is not None:
            task.add_done_callback(lambda t: on_cancel() if t.cancelled() else None)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("p2p task %s failed", task.get_name(), exc_info=task.exception())

    def _check_size(self, payload: bytes) -> None:
        if len(payload) > self._limits.max_message_bytes:
            raise InvalidInput(
                f"message of {len(payload)} bytes exceeds limit {self._limits.max_message_bytes}",
                ErrorCode.TOO_LARGE,
            )

    def _queue(self, state: _Peer, channel: int, payload: bytes) -> bool:
        if state.queue.put(channel, payload):
            return True
        state.stats.dropped += 1
        level = self._repeats.level("queue-full", state.name)
        self._log.log(
            level,
            "send queue to peer %s is full (%d frames): dropping messages; the peer is slow",
            state.name,
            state.queue.capacity,
        )
        return False

    def _deliver(self, peer: str, channel: int, payload: bytes) -> None:
        state = self._peers.get(peer)
        if state is not None and state.untrusted:
            return  # its connection is closing: its organisation's CA is no longer trusted
        handler = self._handlers.get(channel)
        if handler is None:
            self._log.debug("dropped a frame on channel %d from %s: no handler", channel, peer)
            return
        try:
            handler(peer, payload)
        except Exception:
            self._log.exception(
                "the handler of channel %d failed on a frame from %s", channel, peer
            )

    def _callback(self, fn: Callable[..., None] | None, *args: str) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            self._log.exception("a peer callback failed")

    def _check_own_dates(self) -> None:
        now = datetime.now(UTC)
        own = self._own
        if now > own.not_after:
            self._log.error(
                "our certificate (node %s) expired on %s: every peer will refuse it; "
                "issue a new one",
                own.node_name,
                when(own.not_after),
            )
        elif now < own.not_before:
            self._log.error(
                "our certificate (node %s) is not valid before %s, and it is now %s: "
                "check this machine's clock",
                own.node_name,
                when(own.not_before),
                when(now),
            )
        elif own.not_after - now < EXPIRY_WARNING:
            self._log.warning(
                "our certificate (node %s) expires on %s, in %d days: issue a new one",
                own.node_name,
                when(own.not_after),
                (own.not_after - now).days,
            )

    def _log_refusal(self, refusal: PeerRefused, peer: str, *key: str) -> None:
        level = self._repeats.level("refusal", refusal.reason_code, *key)
        if refusal.reason_code == "duplicate":
            level = logging.DEBUG
        self._log.log(level, "%s", refusal.log_line(peer))

    def _on_acceptable(self) -> None:
        """Accept what waits on the listener, up to :data:`ACCEPT_PER_TURN` a turn.

        Our own accept, not ``asyncio.start_server``: a server's stream reads a connection
        before our code has it, and bytes read before TLS begins never reach TLS. uvloop reads
        a connection in the turn it accepts it, so on a busy machine the dialler's ClientHello
        was read early and the handshake hung until its timeout (found by
        tests/e2e/test_e2e_faults.py under load). Here the socket goes to
        :func:`~citychain.p2p.handshake.accept` unread, which begins TLS with it."""
        assert self._listener is not None
        for _ in range(ACCEPT_PER_TURN):
            try:
                conn, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the dialler gave up while it waited in the backlog
            except OSError as exc:  # out of descriptors (EMFILE, ENFILE, ...): rest, not spin
                self._log.warning(
                    "cannot accept a p2p connection (%s); the listener rests %g s",
                    exc.strerror or exc,
                    ACCEPT_RETRY_S,
                )
                loop = asyncio.get_running_loop()
                loop.remove_reader(self._listener.fileno())
                self._accept_retry = loop.call_later(ACCEPT_RETRY_S, self._resume_accepting)
                return
            self._on_inbound(conn, peer)

    def _resume_accepting(self) -> None:
        self._accept_retry = None
        if self._running and self._listener is not None:
            asyncio.get_running_loop().add_reader(self._listener.fileno(), self._on_acceptable)

    def _on_inbound(self, conn: socket.socket, peer: Any) -> None:
        address = format_address(peer)
        host = str(peer[0]) if isinstance(peer, tuple) else address
        if not self._running or self._pending_inbound >= MAX_PENDING_HANDSHAKES:
            self._log.log(
                self._repeats.level("busy", host),
                "closed a connection from %s at once: too many handshakes in progress",
                address,
            )
            conn.close()
            return
        conn.setblocking(False)
        self._pending_inbound += 1
        self._spawn(
            self._accept(conn, address, host), f"p2p-accept-{address}", on_cancel=conn.close
        )

    async def _accept(self, conn: socket.socket, address: str, host: str) -> None:
        local = self._local
        try:
            est = await accept(
                conn,
                context=self._server_ctx,
                local=local,
                timeout_s=self._limits.handshake_timeout_ms / 1000,
            )
        except PeerRefused as exc:
            who = f"{exc.peer_name} at {address}" if exc.peer_name else f"at {address}"
            known = self._peers.get(exc.peer_name or "")
            if known is not None and known.conn is None:
                known.last_error = exc.short()
            self._log_refusal(exc, who, host, exc.peer_name or "")
            return
        except (OSError, EOFError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                detail = f"no handshake within {self._limits.handshake_timeout_ms} ms"
            elif isinstance(exc, OSError):
                detail = exc.strerror or type(exc).__name__
            else:
                detail = str(exc)
            self._log.log(
                self._repeats.level("inbound-failed", host, new=logging.INFO),
                "a connection from %s failed during the handshake: %s",
                address,
                detail,
            )
            return
        finally:
            self._pending_inbound -= 1
        self._register(est, local)

    async def _dial_loop(self, state: _Peer) -> None:
        assert state.configured is not None
        target = state.configured
        min_s = self._limits.dial_backoff_min_ms / 1000
        max_s = self._limits.dial_backoff_max_ms / 1000
        backoff = min_s
        head_start = self._local.node_name < state.name  # we are the preferred dialler
        while True:
            await state.idle.wait()
            if state.last_lifetime_s > max_s:
                backoff = min_s
            if not head_start:
                # Jitter spreads redials of many nodes; not security-relevant.
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311
                if not state.idle.is_set():
                    continue
            head_start = False
            local = self._local
            try:
                est = await dial(
                    target.name,
                    target.host,
                    target.port,
                    context=self._client_ctx,
                    local=local,
                    timeout_s=self._limits.handshake_timeout_ms / 1000,
                )
            except PeerRefused as exc:
                state.last_error = exc.short()
                self._log_refusal(exc, f"{target.name} at {state.address}", target.name)
                backoff = min(backoff * 2, max_s)
                continue
            except (OSError, EOFError, TimeoutError) as exc:
                short, detail = _unreachable_words(
                    exc, state.address or "?", self._limits.handshake_timeout_ms
                )
                state.last_error = short
                now = time.monotonic()
                state.failing_since = state.failing_since or now
                # A peer that is down at start-up is normal (nodes start one by one): say so
                # at info level, and warn once it has been unreachable for a while.
                late = now - state.failing_since >= UNREACHABLE_WARN_S
                level = self._repeats.level(
                    "dial",
                    target.name,
                    short,
                    str(late),
                    new=logging.WARNING if late else logging.INFO,
                )
                self._log.log(level, "cannot connect to peer %s: %s", target.name, detail)
                backoff = min(backoff * 2, max_s)
                continue
            state.failing_since = None
            if not self._register(est, local):
                backoff = min(backoff * 2, max_s)

    def _register(self, est: Established, local: Local) -> bool:
        """Adopt a handshaken connection, or close it. ``True`` if it is now in use.

        ``local`` is what the handshake checked the peer against; if the trusted CAs changed
        since, the peer certificate is checked again against the current ones.
        """
        name, org = est.cert.node_name, est.cert.org_id
        if not self._running:
            self._spawn(
                _close_est(est, None), f"p2p-close-{name}", on_cancel=est.writer.transport.abort
            )
            return False
        cert = _peer_x509(est)
        if local is not self._local:
            refusal = _untrusted(cert, self._local.trust) or self._gm_refusal(est.cert, est.gm_cert)
            if refusal is not None:
                refusal.peer_name = name
                self._log_refusal(refusal, f"{name} at {est.address}", name)
                known = self._peers.get(name)
                if known is not None and known.conn is None:
                    known.last_error = refusal.short()
                self._spawn(
                    _close_est(est, refusal),
                    f"p2p-close-{name}",
                    on_cancel=est.writer.transport.abort,
                )
                return False
        state = self._peers.get(name)
        if state is None:
            state = _Peer(name, None, SendQueue(self._limits.send_queue))
            self._peers[name] = state
            self._log.info(
                "accepted node %s of organisation %s from %s, which is not in our peer list "
                "(a new node joining?)",
                name,
                org,
                est.address,
            )
        if state.org_id is not None and state.org_id != org:
            refusal = PeerRefused(
                "unknown_peer",
                f"node {name} belongs to organisation {state.org_id!r}, but this certificate "
                f"is from organisation {org!r}",
            )
            self._log_refusal(refusal, f"{name} at {est.address}", name, org)
            state.last_error = refusal.short()
            self._spawn(
                _close_est(est, refusal), f"p2p-close-{name}", on_cancel=est.writer.transport.abort
            )
            return False
        conn = Connection(
            est,
            queue=state.queue,
            stats=state.stats,
            limits=self._read_limits,
            deliver=self._deliver,
            on_closed=self._on_closed,
        )
        _set_keepalive(est.writer)
        old = state.conn
        if old is not None:
            # An old connection being closed for its CA never wins over one that passed.
            keep_new = state.untrusted or self._prefer(conn, old)
            loser, winner = (old, conn) if keep_new else (conn, old)
            refusal = PeerRefused(
                "duplicate",
                f"{self._local.node_name} and {name} are already connected; keeping the "
                f"connection dialled by {self._dialler(winner)}",
            )
            self._log.debug("closing %s: %s", loser.describe(), refusal.message)
            if not keep_new:
                self._spawn(
                    _close_est(est, refusal),
                    f"p2p-close-{name}",
                    on_cancel=est.writer.transport.abort,
                )
                return False
            state.conn = conn  # before closing the old one, so its on_closed is ignored
            state.cert, state.untrusted, state.gm_cert = cert, False, est.gm_cert
            state.direction, state.address = conn.direction, self._address_of(state, conn)
            conn.start()
            self._spawn(
                old.close("duplicate connection", refusal),
                f"p2p-close-{name}",
                on_cancel=old.abort,
            )
            return True
        state.conn = conn
        state.cert, state.untrusted, state.gm_cert = cert, False, est.gm_cert
        state.org_id = org
        state.direction, state.address = conn.direction, self._address_of(state, conn)
        state.since_ms = _now_ms()
        state.connected_at = time.monotonic()
        state.idle.clear()
        conn.start()
        self._log.info("connected to peer %s, organisation %s", conn.describe(), org)
        self._callback(self.on_peer_connected, name)
        return True

    def _address_of(self, state: _Peer, conn: Connection) -> str:
        if state.configured is not None:
            return str(state.configured).partition("@")[2]
        return conn.address

    def _dialler(self, conn: Connection) -> str:
        return self._local.node_name if conn.direction == "out" else conn.name

    def _prefer(self, new: Connection, old: Connection) -> bool:
        """Whether ``new`` should replace ``old`` (see "One connection per peer")."""
        preferred = min(self._local.node_name, new.name)
        new_ok = self._dialler(new) == preferred
        old_ok = self._dialler(old) == preferred
        return new_ok or not old_ok

    def _on_closed(self, conn: Connection, reason: str, refusal: PeerRefused | None) -> None:
        if refusal is not None and self._running:
            self._log_refusal(refusal, conn.describe(), conn.name)
        state = self._peers.get(conn.name)
        if state is None or state.conn is not conn:
            return  # a duplicate that lost, or a connection never adopted
        state.conn = None
        state.cert, state.untrusted = None, False
        state.stats.dropped += state.queue.clear()
        state.last_error = refusal.short() if refusal is not None else reason
        state.since_ms = _now_ms()
        state.last_lifetime_s = time.monotonic() - state.connected_at
        state.idle.set()
        if not self._running:
            return
        self._log.info("disconnected from peer %s: %s", conn.describe(), reason)
        self._callback(self.on_peer_disconnected, conn.name, reason)


def _check_channel(channel: int) -> None:
    if not MIN_CHANNEL <= channel <= MAX_CHANNEL:
        raise InvalidInput(
            f"channel {channel} is not in {MIN_CHANNEL}..{MAX_CHANNEL} (0 is the transport's own)"
        )


async def _close_est(est: Established, refusal: PeerRefused | None) -> None:
    if refusal is None:
        await close_writer(est.writer)
    else:
        await refuse_and_close(est.reader, est.writer, refusal)


def _peer_x509(est: Established) -> x509.Certificate | None:
    """The certificate the peer of ``est`` presented (checked in the handshake)."""
    der = peer_cert_der(est.writer)
    if der is None:
        return None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _untrusted(cert: x509.Certificate | None, trust: TrustStore) -> PeerRefused | None:
    """Why ``trust`` no longer covers a peer certificate, or ``None`` if it does."""
    if cert is None:
        return PeerRefused("wrong_ca", "its certificate cannot be checked against the new CAs")
    try:
        check_still_trusted(cert, trust)
    except PeerRefused as exc:
        return exc
    return None


def _read_own_certificate(
    cert_file: Path, chain_id: str, node_name: str, org_id: str
) -> x509.Certificate:
    """Our certificate, refused (:class:`ConfigError`) if it is not for this node and chain."""
    try:
        pem = cert_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read node certificate {cert_file}: {exc.strerror}") from None
    try:
        info = read_node_cert(pem)
        cert = x509.load_pem_x509_certificate(pem)
    except (InvalidInput, ValueError) as exc:
        raise ConfigError(f"node certificate {cert_file}: {exc}") from None
    for what, have, want in (
        ("node", info.node_name, node_name),
        ("organisation", info.org_id, org_id),
        ("chain", info.chain_id, chain_id),
    ):
        if have != want:
            raise ConfigError(
                f"node certificate {cert_file} is for {what} {have!r}, but this node's {what} "
                f"is {want!r}"
            )
    return cert


def _org_names(cas: Sequence[x509.Certificate]) -> str:
    """``'roads', 'water'``: the organisations the CAs speak for, for log lines."""
    names = sorted({ca_org_id(ca) or ca.subject.rfc4514_string() for ca in cas})
    return ", ".join(repr(n) for n in names) or "none"


def _trust_change(old: TrustStore, new: TrustStore) -> str:
    """What changed between two trust stores, in words: admitted, replaced, removed."""
    old_set, new_set = set(old.cas), set(new.cas)
    gone = [ca for ca in old.cas if ca not in new_set]
    came = [ca for ca in new.cas if ca not in old_set]
    gone_orgs = {ca_org_id(ca) for ca in gone}
    came_orgs = {ca_org_id(ca) for ca in came}
    parts = [
        f"{verb} {_org_names(cas)}"
        for verb, cas in (
            ("admitted", [ca for ca in came if ca_org_id(ca) not in gone_orgs]),
            ("replaced the CA of", [ca for ca in came if ca_org_id(ca) in gone_orgs]),
            ("removed", [ca for ca in gone if ca_org_id(ca) not in came_orgs]),
        )
        if cas
    ]
    return "; ".join(parts)
