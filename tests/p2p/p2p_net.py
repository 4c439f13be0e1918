"""Helpers for transport tests: a small PKI on disk, switches on 127.0.0.1, waiting."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from citychain.crypto import Signer
from citychain.p2p.certs import NodeKey, encrypt_key_pem, generate_org_ca, issue_node_cert
from citychain.p2p.config import Limits, PeerAddress
from citychain.p2p.switch import Switch

CHAIN = "city-test"
GENESIS = bytes(range(32))
PASSPHRASE = "node passphrase"
FAST = Limits(dial_backoff_min_ms=20, dial_backoff_max_ms=200, handshake_timeout_ms=3000)

T = TypeVar("T")


@dataclass
class Pki:
    """Organisation CAs and node certificates written to ``root``."""

    root: Path
    cas: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)

    def ca(self, org: str) -> tuple[bytes, bytes]:
        if org not in self.cas:
            self.cas[org] = generate_org_ca(org, f"Organisation {org}")
        return self.cas[org]

    def node(
        self,
        name: str,
        org: str,
        *,
        chain: str = CHAIN,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        tag: str = "",
        node_key: NodeKey | None = None,
    ) -> tuple[Path, Path]:
        """(cert file, encrypted key file) for ``name`` of ``org``; the certificate names
        ``node_key`` if given."""
        ca_cert, ca_key = self.ca(org)
        cert, key = issue_node_cert(
            ca_cert,
            ca_key,
            name,
            chain,
            org,
            not_before=not_before,
            not_after=not_after,
            node_key=node_key,
        )
        cert_file = self.root / f"{name}{tag}.crt"
        key_file = self.root / f"{name}{tag}.key"
        cert_file.write_bytes(cert)
        key_file.write_bytes(encrypt_key_pem(key, PASSPHRASE))
        return cert_file, key_file

    def genesis_cas(self, *orgs: str) -> list[bytes]:
        return [self.ca(org)[0] for org in orgs]


def free_ports(n: int) -> list[int]:
    """Ports free right now on 127.0.0.1 (for nodes that must know each other's port)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def make_switch(
    pki: Pki,
    name: str,
    org: str,
    *,
    peers: Sequence[PeerAddress] = (),
    port: int = 0,
    cas: Sequence[bytes] | None = None,
    files: tuple[Path, Path] | None = None,
    chain: str = CHAIN,
    genesis: bytes = GENESIS,
    limits: Limits = FAST,
    node_signer: Signer | None = None,
    crypto_suite: str = "ed25519",
) -> Switch:
    cert_file, key_file = files if files is not None else pki.node(name, org, chain=chain)
    return Switch(
        chain_id=chain,
        genesis_hash=genesis,
        node_name=name,
        org_id=org,
        cert_file=cert_file,
        key_file=key_file,
        key_passphrase=PASSPHRASE,
        ca_pems=cas if cas is not None else pki.genesis_cas("water", "roads"),
        listen_host="127.0.0.1",
        listen_port=port,
        peers=peers,
        limits=limits,
        node_signer=node_signer,
        crypto_suite=crypto_suite,
    )


def addr(name: str, sw: Switch | int) -> PeerAddress:
    port = sw if isinstance(sw, int) else sw.listen_port
    return PeerAddress(name, "127.0.0.1", port)


async def eventually(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.01)


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run a test coroutine on a fresh loop, with an overall deadline."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def stop_all(*switches: Switch) -> None:
    await asyncio.gather(*(s.stop() for s in switches))


def lines(caplog: pytest.LogCaptureFixture, node: str, level: int = logging.DEBUG) -> list[str]:
    """Messages the p2p logger wrote for ``node`` (records carry ``p2p_node``)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "citychain.p2p" and getattr(r, "p2p_node", None) == node and r.levelno >= level
    ]


@dataclass
class Inbox:
    """Collects frames delivered to one switch."""

    got: list[tuple[str, int, bytes]] = field(default_factory=list)

    def handler(self, channel: int) -> Callable[[str, bytes], None]:
        def on_frame(peer: str, payload: bytes) -> None:
            self.got.append((peer, channel, payload))

        return on_frame

    def attach(self, sw: Switch, *channels: int) -> Inbox:
        for ch in channels:
            sw.add_channel(ch, self.handler(ch))
        return self
