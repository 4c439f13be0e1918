"""Running a node with its API in one process (what `citychain start` does)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from citychain.api.app import create_app
from citychain.api.node_service import NodeServiceAdapter
from citychain.node import Node
from citychain.node.config import NodeConfig

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising SIGTERM/SIGINT after a graceful shutdown: a node
    stopped by a signal has closed its database cleanly and exits with status 0."""

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


async def serve(
    node: Node,
    *,
    host: str,
    port: int,
    max_body_bytes: int,
    announce: Callable[[str], object] = print,
) -> None:
    """Serve the API and run consensus until SIGINT/SIGTERM; then stop cleanly."""
    app = create_app(NodeServiceAdapter(node), max_body_bytes=max_body_bytes)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        ws_max_size=1024 * 1024,
    )
    server = _Server(config)
    node_task = asyncio.create_task(node.run(), name="consensus")
    serve_task = asyncio.create_task(server.serve(), name="api")
    while not server.started and not serve_task.done():
        await asyncio.sleep(0.02)
    if server.started:
        announce(
            f"citychain node {node.config.node.name} on chain {node.chain_id}, height {node.height}"
        )
        announce(f"API: http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    done, _ = await asyncio.wait({node_task, serve_task}, return_when=asyncio.FIRST_COMPLETED)
    if node_task in done and node_task.exception() is not None:
        log.error("consensus stopped: %s", node_task.exception())
        server.should_exit = True
    await serve_task
    node.stop()
    await node_task


def run_node(
    home: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    announce: Callable[[str], object] = print,
) -> None:
    config = NodeConfig.load(home)
    node = Node(config)
    try:
        asyncio.run(
            serve(
                node,
                host=host or config.api.host,
                port=port if port is not None else config.api.port,
                max_body_bytes=config.api.max_body_bytes,
                announce=announce,
            )
        )
    finally:
        node.close()
