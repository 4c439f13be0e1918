"""A local multi-validator network of real node processes for end-to-end tests.

:class:`LocalNet` generates a network with :func:`citychain.node.testnet.generate_network` in a
temporary directory and runs each node exactly as ``citychain net up`` does
(:func:`~citychain.node.processes.spawn_node`: ``citychain start --home <node home>``, output in
``<home>/node.log``). With ``proxy=True`` every link between two nodes runs through a
:class:`~faultproxy.FaultProxy`, so a test can partition the network (``net.proxy``).

Ports: each network claims a block of ports below the kernel's ephemeral range (where the
proxy's own ports come from) for its life, spare nodes' included (:mod:`ports`: a claim holds
across parallel test workers, so no other network is given them before its nodes bind them).
It writes ``pids.json`` like ``net up``, so ``citychain net status --dir
<net.layout.root>`` shows a running test network while debugging.

Use it as a context manager (every process is stopped, SIGTERM then SIGKILL, and the proxy
closed on exit), or in a fixture::

    @pytest.fixture
    def net(tmp_path: Path) -> Iterator[LocalNet]:
        yield from local_net(tmp_path, validators=4, proxy=True)
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from faultproxy import FaultProxy  # type: ignore[import-not-found]
from nodeproc import load_key_once  # type: ignore[import-not-found]
from ports import PortBlocks  # type: ignore[import-not-found]

from citychain.crypto import ED25519, CryptoSuite, Signer
from citychain.node.config import ConsensusSettings, NodeConfig
from citychain.node.processes import (
    ProcessRef,
    log_tail,
    spawn_node,
    stop_processes,
    wait_until_up,
    write_pids,
)
from citychain.node.testnet import (
    PORT_STRIDE,
    NetNode,
    NetOrg,
    NetworkLayout,
    generate_network,
    prepare_joining_org,
)
from citychain.types.genesis import ChainParams

#: Shorter Tendermint timeouts than the defaults: faster rounds when a proposer is down.
FAST_PARAMS = ChainParams(
    block_interval_ms=100,
    timeout_propose_ms=1000,
    timeout_prevote_ms=500,
    timeout_precommit_ms=500,
    timeout_delta_ms=250,
)
#: An idle network (no transaction waiting) makes one empty block per
#: ``empty_blocks_interval_ms`` (node.toml ``[consensus]``; 10 s by default). Tests that wait
#: for heights on a chain they send nothing to (a validator change two heights later, a node
#: catching up N blocks) pass this, so such a wait takes seconds, not minutes; 0 makes a
#: block every block interval, without waiting for transactions at all.
IDLE_BLOCK_MS = 200


class LocalNet:
    """``validators`` real node processes run by ``orgs`` organisations, in ``tmp / "net"``."""

    def __init__(
        self,
        tmp: Path,
        *,
        validators: int = 4,
        orgs: int = 2,
        proxy: bool = False,
        params: ChainParams | None = None,
        chain_id: str = "citychain-e2e",
        accounts: tuple[str, ...] = ("alice", "bob"),
        identity_mode: str = "key",
        spare_nodes: int = 0,
        empty_blocks_interval_ms: int | None = None,
        create_empty_blocks: bool = True,
        delay: float = 0.0,
        suite: CryptoSuite = ED25519,
    ) -> None:
        """``empty_blocks_interval_ms`` and ``create_empty_blocks`` go to every node's
        ``[consensus]``; ``None`` keeps the node default (see :data:`IDLE_BLOCK_MS`).
        ``delay`` (seconds, one way) makes every link of the proxy that slow (with ``proxy``).
        ``suite`` is the chain's crypto suite (``SM2_SM3``: a GM network, as ``citychain net
        up --crypto sm2`` makes)."""
        if delay and not proxy:
            raise ValueError("a link delay needs proxy=True")
        # Spare port blocks for nodes that join later (prepare_joining_org).
        self._ports = PortBlocks(validators + spare_nodes)
        base = self._ports.base
        self.proxy: FaultProxy | None = None
        try:
            if proxy:
                self.proxy = FaultProxy(
                    {i: base + PORT_STRIDE * i for i in range(validators)}, delay=delay
                ).start()
            self.layout: NetworkLayout = generate_network(
                tmp / "net",
                validators=validators,
                orgs=orgs,
                chain_id=chain_id,
                base_port=base,
                accounts=accounts,
                params=params,
                peer_address=self._via_proxy if self.proxy is not None else None,
                identity_mode=identity_mode,
                suite=suite,
                consensus=dataclasses.replace(
                    ConsensusSettings(create_empty_blocks=create_empty_blocks),
                    **(
                        {}
                        if empty_blocks_interval_ms is None
                        else {"empty_blocks_interval_ms": empty_blocks_interval_ms}
                    ),
                ),
            )
        except BaseException:
            if self.proxy is not None:
                self.proxy.stop()
            self._ports.release()
            raise
        self.procs: dict[int, ProcessRef] = {}

    def _via_proxy(self, i: int, j: int) -> tuple[str, int]:
        assert self.proxy is not None
        return "127.0.0.1", self.proxy.port_for(i, j)

    @property
    def size(self) -> int:
        return len(self.layout.nodes)

    @property
    def passphrase(self) -> str:
        return self.layout.passphrase

    def signer(self, account: str) -> Signer:
        return load_key_once(self.layout.keys_dir / f"{account}.json", self.passphrase)

    def register(self, accounts: Iterable[Signer], org: str = "org1", node: int = 0) -> None:
        """Register ``accounts`` as members of ``org`` (signed by its admin) and wait until
        they are committed: the generated chain runs in registered-key identity mode."""
        from citychain.sdk import Client
        from citychain.types import Transaction

        admin = self.signer(f"{org}-admin")
        with Client(self.api(node)) as c:
            chain_id = c.status().chain_id
            nonce = c.account(admin.address).pending_nonce
            txs = [
                Transaction.create(
                    admin,
                    chain_id=chain_id,
                    nonce=nonce + k,
                    contract="gov",
                    method="register_member",
                    args={"public_key": a.public_key, "org": org, "roles": ["member"]},
                )
                for k, a in enumerate(accounts)
            ]
            for i in range(0, len(txs), 200):
                results = c.submit_batch(txs[i : i + 200])
                assert all(r.ok for r in results), results
                for t in txs[i : i + 200]:
                    receipt = c.wait_for_commit(t.hash, timeout=60)
                    assert receipt.ok, receipt

    def add_joining_org(self, org_id: str) -> tuple[NetOrg, NetNode]:
        """A new organisation (CA, admin key) with one node, not on the chain yet; the node
        is ``self.size - 1`` afterwards (start it with :meth:`start`)."""
        self.layout, org, node = prepare_joining_org(self.layout, org_id)
        return org, node

    # -- processes ----------------------------------------------------------------------------
    def start(self, i: int, *, wait: bool = True, timeout: float = 60) -> None:
        """Start node ``i``; with ``wait``, return once its API answers."""
        self.start_many([i], wait=wait, timeout=timeout)

    def start_all(self, *, wait: bool = True, timeout: float = 60) -> None:
        self.start_many(range(self.size), wait=wait, timeout=timeout)

    def start_many(self, nodes: Iterable[int], *, wait: bool = True, timeout: float = 60) -> None:
        started: dict[str, ProcessRef] = {}
        for i in nodes:
            if self.running(i):
                raise RuntimeError(f"node{i} is already running (pid {self.procs[i].pid})")
            self.procs[i] = started[self.layout.nodes[i].name] = spawn_node(self.layout.nodes[i])
        write_pids(self.layout, self.procs.values())
        if not wait:
            return
        failures = wait_until_up(self.layout, started, timeout=timeout)
        if failures:
            raise RuntimeError(
                "\n\n".join(f"{f.name} did not come up: {f.reason}\n{f.log_tail}" for f in failures)
            )

    def running(self, i: int) -> bool:
        p = self.procs.get(i)
        return p is not None and p.alive()

    def kill(self, i: int) -> int | None:
        """SIGKILL node ``i`` and wait for it; its exit status (negative: the signal)."""
        p = self.procs[i]
        p.signal(signal.SIGKILL)
        if not p.wait(10):
            raise RuntimeError(f"node{i} (pid {p.pid}) survived SIGKILL for 10 s")
        return p.returncode

    def stop(self, i: int, timeout: float = 20) -> int | None:
        """SIGTERM node ``i`` and wait up to ``timeout`` s for a clean exit (then SIGKILL and
        fail: a node must stop cleanly). Its exit status."""
        self.procs[i].signal(signal.SIGTERM)
        return self._exited(i, timeout)

    def _exited(self, i: int, timeout: float) -> int | None:
        """Wait for node ``i``, signalled to stop, to exit (SIGKILL and fail after ``timeout``)."""
        p = self.procs[i]
        if not p.wait(timeout):
            self.kill(i)
            raise AssertionError(
                f"node{i} did not stop within {timeout} s of SIGTERM:\n{log_tail(self.log_file(i))}"
            )
        return p.returncode

    def stop_many(self, nodes: Iterable[int], timeout: float = 20) -> None:
        """SIGTERM each of ``nodes`` at once, then wait for each to exit cleanly (as
        :meth:`stop`): a restart of the network costs one node's stop, not one per node."""
        nodes = list(nodes)
        for i in nodes:
            self.procs[i].signal(signal.SIGTERM)
        for i in nodes:
            self._exited(i, timeout)

    def restart(self, i: int, *, timeout: float = 60) -> None:
        if self.running(i):
            self.stop(i)
        self.start(i, timeout=timeout)

    def configure(self, i: int, section: str, **values: Any) -> None:
        """Change settings of ``[section]`` in node ``i``'s node.toml (takes effect at its next
        start), e.g. ``net.configure(3, "consensus", sync_window=8)``."""
        home = self.layout.nodes[i].home
        config = NodeConfig.load(home)
        changed = dataclasses.replace(getattr(config, section), **values)
        dataclasses.replace(config, **{section: changed}).save()
        NodeConfig.load(home)  # what we wrote is what the node accepts

    def close(self) -> None:
        """Stop every process (SIGTERM, SIGKILL after 5 s) and the proxy; give the ports
        back."""
        try:
            stop_processes(self.procs.values(), grace=5.0)
        finally:
            try:
                if self.proxy is not None:
                    self.proxy.stop()
            finally:
                self._ports.release()

    def __enter__(self) -> LocalNet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- observing ----------------------------------------------------------------------------
    def api(self, i: int) -> str:
        """Node ``i``'s API base URL."""
        return self.layout.nodes[i].api_url

    def log_file(self, i: int) -> Path:
        return self.layout.nodes[i].log_file

    def log(self, i: int) -> str:
        try:
            return self.log_file(i).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def get(self, i: int, path: str, timeout: float = 5) -> Any:
        """``GET <api(i)><path>`` as JSON (raises for an HTTP error)."""
        r = httpx.get(f"{self.api(i)}{path}", timeout=timeout)
        r.raise_for_status()
        return r.json()

    def height(self, i: int) -> int | None:
        """Node ``i``'s committed height, or ``None`` if its API does not answer."""
        try:
            return int(self.get(i, "/v1/status", timeout=2)["height"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def heights(self, nodes: Iterable[int] | None = None) -> dict[int, int | None]:
        return {i: self.height(i) for i in (range(self.size) if nodes is None else nodes)}

    def wait_height(
        self, height: int, nodes: Iterable[int] | None = None, timeout: float = 60
    ) -> dict[int, int | None]:
        """Wait until every node of ``nodes`` (default: all) has committed ``height``;
        fails with every node's height and the logs of the ones behind."""
        which = list(range(self.size) if nodes is None else nodes)
        deadline = time.monotonic() + timeout
        while True:
            hs = self.heights(which)
            behind = [i for i, h in hs.items() if h is None or h < height]
            if not behind:
                return hs
            if time.monotonic() >= deadline:
                logs = "\n\n".join(
                    f"--- node{i} ({'running' if self.running(i) else 'not running'}) ---\n"
                    f"{log_tail(self.log_file(i), 30)}"
                    for i in behind
                )
                raise AssertionError(
                    f"height {height} not reached within {timeout} s; heights {hs}\n{logs}"
                )
            time.sleep(0.2)


def local_net(tmp: Path, **kwargs: Any) -> Iterator[LocalNet]:
    """For a pytest fixture: a started :class:`LocalNet`, closed afterwards."""
    with LocalNet(tmp, **kwargs) as net:
        net.start_all()
        yield net
