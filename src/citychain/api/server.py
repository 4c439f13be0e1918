"""Running a node with its API in one process (what `citychain start` does).

Theory of operation: starting and stopping
------------------------------------------
A start refuses, in this order and before it creates or opens anything a retry would trip
over, each with one :class:`~citychain.errors.CitychainError` the CLI prints as one line:

1. a home a live node already runs on (its pid file; see :mod:`citychain.node.home`):
   ``home_in_use``, naming that node's pid;
2. an API port another program holds: ``port_in_use``. The socket is bound here, before
   the database is opened, and handed to uvicorn, so nothing can take the port between the
   check and its use (uvicorn's own bind would end the process with a traceback instead);
3. a p2p port another program holds: ``port_in_use``, from a probe bind (the switch binds
   the port again when consensus starts; if it still fails then, the node stops cleanly and
   the start ends with the switch's error);
4. only then does ``--demo`` create the home, and :class:`~citychain.node.Node` open the
   database: a database another process has locked is refused as ``home_in_use`` too.

Once the database is open the pid file records this process. Whatever ends the node (a
signal, an error of consensus), the pid file is removed, the database closed and the API
socket released, in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import importlib.metadata
import logging
import signal
import socket
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import uvicorn
from prometheus_client import CollectorRegistry, Gauge

import citychain
from citychain.api._httpsig import SignatureVerifier
from citychain.api._httpsig import install as install_verifier
from citychain.api.app import create_app
from citychain.api.limits import (
    Acceptor,
    ConnectionSlots,
    GuardedListener,
    Refusals,
    RequestLimits,
    SubscriberSlots,
    descriptor_budget,
    guarded_protocol,
)
from citychain.api.node_service import NodeServiceAdapter
from citychain.api.service import NodeService
from citychain.errors import ConfigError, ErrorCode, InternalError, Unavailable
from citychain.node import Node
from citychain.node.config import ApiConfig, NodeConfig
from citychain.node.home import check_home_free, remove_pid_file, write_pid_file
from citychain.sdk import keep_freed_memory

log = logging.getLogger(__name__)

#: Where each port is chosen, for the refusal's words.
API_PORT_HINT = "--port or [api] port in node.toml"
P2P_PORT_HINT = "[p2p] listen_port in node.toml"
#: The API socket's accept queue, and the connections asyncio accepts per turn of the loop
#: (one number: asyncio listens again with the backlog uvicorn passes it when serving
#: starts). Kept short so a turn stays short; a burst past it while the loop is busy waits
#: for TCP to send its SYN again (1 s).
API_BACKLOG = 256


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising SIGTERM/SIGINT after a graceful shutdown: a node
    stopped by a signal has closed its database cleanly and exits with status 0; and serving
    a :class:`GuardedListener` through an :class:`Acceptor`, so the connection cap holds on
    uvloop too (see :mod:`citychain.api.limits`)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        listeners = [s for s in sockets or () if isinstance(s, GuardedListener)]
        if not listeners or len(listeners) != len(sockets or ()):
            raise InternalError("the node's API is served from guarded listeners only")
        # What uvicorn's own startup does for sockets it is given, with the Acceptor in place
        # of loop.create_server (lifespan is "off" here, but kept as uvicorn keeps it).
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise Unavailable("the API's lifespan startup failed")
        config = self.config

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        acceptors = [Acceptor(s, create_protocol, backlog=config.backlog) for s in listeners]
        # uvicorn calls only close() and wait_closed() on what it keeps here.
        self.servers = cast("list[asyncio.base_events.Server]", acceptors)
        self.started = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


#: One refusal counter per metrics registry (a registry takes each metric name once).
_REFUSALS: weakref.WeakKeyDictionary[CollectorRegistry, Refusals] = weakref.WeakKeyDictionary()


def _refusals(registry: CollectorRegistry) -> Refusals:
    if registry not in _REFUSALS:
        _REFUSALS[registry] = Refusals(registry)
    return _REFUSALS[registry]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_port(host: str, port: int, what: str, hint: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` as a server binds it (``SO_REUSEADDR``, so a
    connection of a previous run in TIME_WAIT does not block it). Another program's socket
    on the port is refused as ``port_in_use``; any other failure (an address not of this
    machine, a privileged port) as ``bad_config``; both say where the port is chosen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY on a connection only when its
    # socket says TCP. Without it, an answer written in two pieces (headers, then body)
    # waited for the client's delayed ACK: 44 ms for every keep-alive request (measured).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = _address(host, port)
        if exc.errno == errno.EADDRINUSE:
            raise Unavailable(
                f"the {what} port {where} is in use by another program; choose another with {hint}",
                ErrorCode.PORT_IN_USE,
            ) from None
        raise ConfigError(
            f"cannot listen on the {what} address {where} ({exc.strerror or exc}); choose "
            f"another with {hint}"
        ) from None
    return sock


def bind_api(host: str, port: int) -> socket.socket:
    """The API's listening socket (listening at once: the port is this node's from now)."""
    sock = bind_port(host, port, "API", API_PORT_HINT)
    sock.listen(API_BACKLOG)
    return sock


def uvicorn_config(app: Any, api: ApiConfig, http: Any = "auto") -> uvicorn.Config:
    """How uvicorn serves the API for ``[api]``. ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed only from ``trusted_proxies`` (uvicorn's own default
    believes them from 127.0.0.1, so any local process could pose as another client address
    for the per-address limits, or as https); a node behind a proxy names it there."""
    trusted = api.proxies()
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=http,
        ws="websockets-sansio",
        ws_max_size=1024 * 1024,
        # Seconds; uvicorn hands it to call_later, which takes fractions too.
        timeout_keep_alive=api.keepalive_timeout_ms / 1000,  # type: ignore[arg-type]
        backlog=API_BACKLOG,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) or None,
    )


def freeze_startup_heap(registry: CollectorRegistry) -> int:
    """Tell the garbage collector that what the node built to start stays for good (its
    stores, the state's page cache, the app's routes): ``gc.collect()`` then ``gc.freeze()``;
    the number of objects frozen, also the gauge ``citychain_gc_frozen_objects``.

    Why: a full collection walks every container it tracks, and the state's page cache is one
    container of ``[state] cache_pages`` entries. With ten million accounts (a million pages
    cached) each full collection took 150-180 ms against 25-30 ms with a million, about one
    a block (``bench_scale.py``, timed with ``gc.callbacks``); with the cache frozen, 9-15 ms
    at both sizes. Objects made later are collected as before; a cycle that becomes garbage
    among the frozen ones is never freed, which is why this runs once, after startup, in the
    node's own process (``citychain start``), never in a library call."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    Gauge(
        "citychain_gc_frozen_objects",
        "Objects the node built at startup, frozen out of the garbage collector's scans",
        registry=registry,
    ).set(frozen)
    return frozen


def _log_compiled() -> None:
    """Say which of the modules an install compiles (:data:`citychain.COMPILED`, and the C
    of :data:`citychain.NATIVE`) this node runs compiled, and warn of one older than its
    source: that code is not what the source says, and a node should not compute state with
    it."""
    states = citychain.compiled()
    short = {name: name.removeprefix("citychain.") for name in states}
    stale = [short[n] for n, s in states.items() if s == "stale"]
    source = [short[n] for n, s in states.items() if s == "source"]
    if stale:
        log.warning(
            "compiled modules older than their sources (edited after the install): %s; this "
            "node runs the old code: install again (pip install -e .)",
            ", ".join(stale),
        )
    if source:
        log.info(
            "running the Python sources of %s (no C compiler at install, or CITYCHAIN_PURE=1): "
            "correct, and slower (README, Compiled modules)",
            ", ".join(source),
        )
    elif not stale:
        log.info("compiled modules (mypyc, and C): %s", ", ".join(short.values()))


async def serve(
    node: Node,
    *,
    sock: socket.socket,
    max_body_bytes: int,
    announce: Callable[[str], object] = print,
    api: ApiConfig | None = None,
) -> None:
    """Serve the API on ``sock`` and run consensus until SIGINT/SIGTERM; then stop cleanly.
    An error that stops consensus stops the API too and is raised once both stopped.

    What clients may hold is bounded by ``api`` (the node's ``[api]`` section by default):
    the connection cap is sized from the open-files limit so that consensus, storage and p2p
    keep ``fd_reserve`` descriptors whatever the API's load, and it is enforced on the
    listening socket itself, where descriptors are created (see :mod:`citychain.api.limits`
    for why there and not in uvicorn or ASGI). The listening socket's descriptor is taken
    over (``sock`` is left detached) and closed when the API stops."""
    api = api if api is not None else node.config.api
    refusals = _refusals(node.metrics_registry)
    cap, words = descriptor_budget(api, db_files=node.database_files)
    log.info("%s", words)
    _log_compiled()
    listener = GuardedListener.adopt(
        sock, ConnectionSlots(cap, api.max_connections_per_address), refusals
    )
    app = create_app(
        NodeServiceAdapter(node),
        max_body_bytes=max_body_bytes,
        blobs=node.config.open_blob_store(node.suite.hash_name),
    )
    app.state.subscribers = SubscriberSlots.of(api, refusals)
    app.state.private_data = node.private  # private collections' values (services/data)
    install_verifier(app, SignatureVerifier(origin=api.public_origin or None))
    host, port = listener.getsockname()[:2]
    request_limits = RequestLimits(
        header_timeout_s=api.header_timeout_ms / 1000,
        body_timeout_s=api.body_timeout_ms / 1000,
        max_url_bytes=api.max_url_bytes,
        max_header_bytes=api.max_header_bytes,
    )
    protocol = guarded_protocol(request_limits, refusals, app.state.kept)
    server = _Server(uvicorn_config(app, api, protocol))
    node_task = asyncio.create_task(node.run(), name="consensus")
    serve_task = asyncio.create_task(server.serve(sockets=[listener]), name="api")
    while not server.started and not serve_task.done():
        await asyncio.sleep(0.02)
    if server.started:
        url = f"http://{_address(host, port)}"
        announce(
            f"citychain node {node.config.node.name} on chain {node.chain_id}, height {node.height}"
        )
        announce(f"API: {url}  (docs: {url}/docs)")
        freeze_startup_heap(node.metrics_registry)
    jobs = [
        asyncio.create_task(_background(job, app.state.service), name=job.__qualname__)
        for job in app.state.background
    ]
    done, _ = await asyncio.wait({node_task, serve_task}, return_when=asyncio.FIRST_COMPLETED)
    if node_task in done and node_task.exception() is not None:
        log.error("consensus stopped: %s", node_task.exception())
        server.should_exit = True
    await serve_task
    for task in jobs:
        task.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
    node.stop()
    await node_task  # raises the error that stopped consensus, if one did


async def _background(job: Callable[[NodeService], Awaitable[None]], service: NodeService) -> None:
    """A service's background job, for the server's life: an error is logged, not raised
    (what the job keeps up is an aid to the routes, which answer without it)."""
    try:
        await job(service)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background job %s stopped", job.__qualname__)


def event_loop(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The name and factory of the event loop ``[node] event_loop`` asks for: uvloop for
    ``"uvloop"``, and for ``"auto"`` where it is installed; else asyncio's own. uvloop asked
    for by name and missing refuses the start (``bad_config``)."""
    if choice != "asyncio":
        try:
            # optional: uvicorn[standard] brings it, except on Windows
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError(
                    '[node] event_loop = "uvloop", but uvloop is not installed '
                    '(pip install uvloop, or choose "auto" or "asyncio")'
                ) from None
        else:
            return f"uvloop {importlib.metadata.version('uvloop')}", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


def run_node(
    home: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    announce: Callable[[str], object] = print,
    create: Callable[[], object] | None = None,
) -> None:
    """Run the node of ``home`` until a signal stops it (see the module docstring for the
    order of the checks). ``create`` makes the home when it has no genesis yet
    (``citychain start --demo``); it runs only once the ports are known to be free."""
    fresh = create is not None and not (home / "config" / "genesis.json").exists()
    config = None if fresh else NodeConfig.load(home)
    check_home_free(home)
    kept = keep_freed_memory()  # before RocksDB opens, so its buffers are kept too
    api = config.api if config is not None else ApiConfig()
    sock = bind_api(host or api.host, port if port is not None else api.port)
    try:
        if config is None:
            assert create is not None
            create()
            config = NodeConfig.load(home)
        p2p = config.p2p
        if p2p.org_id:
            if p2p.listen_port == sock.getsockname()[1]:
                raise ConfigError(
                    f"{config.config_file}: [p2p] listen_port {p2p.listen_port} is the API "
                    "port too; give each its own"
                )
            bind_port(p2p.listen_host, p2p.listen_port, "p2p", P2P_PORT_HINT).close()
        node = Node(config)
        try:
            write_pid_file(home)
            name, new_loop = event_loop(config.node.event_loop)
            log.info("event loop: %s", name)
            if kept:  # said once the node is sure to start: a refusal stays one line
                log.info("allocator: freed blocks kept for the next request (keep_freed_memory)")
            try:
                with asyncio.Runner(loop_factory=new_loop) as runner:
                    runner.run(
                        serve(
                            node,
                            sock=sock,
                            max_body_bytes=config.api.max_body_bytes,
                            announce=announce,
                            api=config.api,
                        )
                    )
            finally:
                remove_pid_file(home)
        finally:
            node.close()
    finally:
        sock.close()
