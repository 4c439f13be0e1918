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

from citychain.crypto import SM2_SM3, Signer
from citychain.crypto.sm2_certs import issue_sm2_ca, issue_sm2_node_cert
from citychain.p2p.certs import NodeKey, encrypt_key_pem, generate_org_ca, issue_node_cert
from citychain.p2p.config import Limits, PeerAddress
from citychain.p2p.switch import Switch

CHAIN = "city-test"
GENESIS = bytes(range(32))
PASSPHRASE = "node passphrase"
FAST = Limits(dial_backoff_min_ms=20, dial_backoff_max_ms=200, handshake_timeout_ms=3000)

T = TypeVar("T")


@dataclass
class GmNode:
    """What a node of an ``sm2-sm3`` chain brings to its switch: TLS files naming its SM2 node
    key, the key, and its SM2 certificate."""

    files: tuple[Path, Path]
    signer: Signer
    gm_cert: bytes

    def switch_args(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "node_signer": self.signer,
            "crypto_suite": "sm2-sm3",
            "gm_cert_pem": self.gm_cert,
        }


@dataclass
class Pki:
    """Organisation CAs and node certificates written to ``root`` (and, for GM networks,
    organisation SM2 CAs and SM2 node certificates)."""

    root: Path
    cas: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    gm_cas: dict[str, tuple[bytes, Signer]] = field(default_factory=dict)

    def gm_ca(self, org: str) -> tuple[bytes, Signer]:
        if org not in self.gm_cas:
            key = Signer.generate(SM2_SM3)
            self.gm_cas[org] = (issue_sm2_ca(org, f"Organisation {org}", key.secret), key)
        return self.gm_cas[org]

    def gm_ca_pems(self, *orgs: str) -> dict[str, bytes]:
        return {org: self.gm_ca(org)[0] for org in orgs}

    def gm_node(
        self,
        name: str,
        org: str,
        *,
        gm_org: str | None = None,
        cert_name: str | None = None,
        cert_key: bytes | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> GmNode:
        """A GM node ``name`` of ``org``: its SM2 certificate from ``gm_org``'s SM2 CA (default
        ``org``'s), for ``cert_name`` and ``cert_key`` (default its own name and key)."""
        signer = Signer.generate(SM2_SM3)
        files = self.node(name, org, node_key=NodeKey("sm2-sm3", signer.public_key), tag="-gm")
        ca_pem, ca_key = self.gm_ca(gm_org or org)
        gm_cert = issue_sm2_node_cert(
            ca_pem,
            ca_key.secret,
            cert_key or signer.public_key,
            node_name=cert_name or name,
            chain_id=CHAIN,
            org_id=gm_org or org,
            not_before=not_before,
            not_after=not_after,
        )
        return GmNode(files, signer, gm_cert)

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
    gm_cert_pem: bytes | None = None,
    gm_ca_pems: dict[str, bytes] | None = None,
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
        gm_cert_pem=gm_cert_pem,
        gm_ca_pems=gm_ca_pems
        if gm_ca_pems is not None or crypto_suite != "sm2-sm3"
        else pki.gm_ca_pems("water", "roads"),
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
