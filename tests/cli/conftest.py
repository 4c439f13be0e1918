"""CLI fixtures: an isolated home and environment, and the API over the fake node served on a
local port (tests/api/fake_node.py), which the commands reach through --node / CITYCHAIN_NODE."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
# tests/e2e/ports.py: port blocks claimed across test workers
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from cli_helpers import PASSPHRASE
from fake_node import FakeNode, seeded_signer, serving

from citychain.api import create_app
from citychain.crypto import Signer
from citychain.crypto.keystore import save_key


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CITYCHAIN_* setting of the machine running the tests leaks in."""
    for name in (
        "CITYCHAIN_HOME",
        "CITYCHAIN_NODE",
        "CITYCHAIN_PASSPHRASE",
        "CITYCHAIN_GENESIS",
        "CITYCHAIN_DEBUG",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CITYCHAIN_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return home


@pytest.fixture
def alice() -> Signer:
    return seeded_signer(200)


@pytest.fixture
def bob() -> Signer:
    return seeded_signer(201)


@pytest.fixture
def alice_key(isolated_env: Path, alice: Signer) -> Path:
    """alice's key stored encrypted in <home>/keys (fast KDF level: tests only)."""
    keys = isolated_env / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    path = keys / "alice.json"
    save_key(path, alice, PASSPHRASE, kdf_level="interactive")
    return path


@pytest.fixture
def node(alice: Signer) -> FakeNode:
    return FakeNode(genesis_balances={alice.address: 1_000})


@pytest.fixture
def served(node: FakeNode, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serving(create_app(node)) as url:
        monkeypatch.setenv("CITYCHAIN_NODE", url)
        yield url
