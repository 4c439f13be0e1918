"""Real node processes for end-to-end tests: `citychain init` and `citychain start` as
subprocesses on a free loopback port, killed with SIGKILL or stopped with SIGTERM."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from citychain.crypto import Signer
from citychain.crypto.keystore import load_key

CLI = [sys.executable, "-m", "citychain.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )


@functools.cache
def _load_key(path: Path, version: tuple[int, int, int], passphrase: str) -> Signer:
    return load_key(path, passphrase)


def load_key_once(path: Path, passphrase: str) -> Signer:
    """``load_key``, remembered while the file stays as it is (same inode, size and mtime: a
    key saved again is read again): every load derives the keystore's key with argon2id
    (~0.1 s of CPU), and the suite's tests ask for the same keys many times."""
    st = path.stat()
    return _load_key(path, (st.st_ino, st.st_size, st.st_mtime_ns), passphrase)


class NodeProcess:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "node.log"

    @property
    def passphrase(self) -> str:
        return (self.home / "config" / "passphrase").read_text().strip()

    def signer(self, name: str) -> Signer:
        return load_key_once(self.home / "keys" / f"{name}.json", self.passphrase)

    def start(self, *, demo: bool = True, timeout: float = 60) -> None:
        args = [*CLI, "start", "--home", str(self.home), "--port", str(self.port)]
        if demo:
            args.append("--demo")
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"node exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node did not become healthy:\n{self.log.read_text()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def height(self) -> int:
        return int(httpx.get(f"{self.url}/v1/status", timeout=5).json()["height"])


@contextmanager
def running_demo(home: Path) -> Iterator[NodeProcess]:
    """A demo node at ``home``, started, and stopped when the block ends: a fixture's body."""
    node = NodeProcess(home)
    node.start()
    try:
        yield node
    finally:
        node.stop()
