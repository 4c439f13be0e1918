"""What `citychain bench transfers | latency` asks the node before the load, through the SDK:
the chain id, and the organisation of the admin key that registers the benchmark's accounts
(refused in words when the key is no member); a node that cannot be reached is said so."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_helpers import PASSPHRASE
from fake_node import CHAIN_ID, FakeNode

from citychain.cli import bench
from citychain.crypto import Signer
from citychain.crypto.keystore import save_key


@pytest.fixture
def keys(isolated_env: Path, alice_key: Path, bob: Signer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """alice (an admin of org1 on the node below) and bob (no member), in <home>/keys."""
    save_key(isolated_env / "keys" / "bob.json", bob, PASSPHRASE, kdf_level="interactive")
    monkeypatch.setenv("CITYCHAIN_PASSPHRASE", PASSPHRASE)
    return isolated_env


@pytest.fixture
def members(node: FakeNode, alice: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake node answers the gov contract's ``member`` query: alice is in org1."""
    token_query = node.query

    async def query(contract: str, method: str, args: Mapping[str, Any]) -> Any:
        if (contract, method) != ("gov", "member"):
            return await token_query(contract, method, args)
        if args["address"] != alice.address:
            return None
        return {
            "address": alice.address,
            "org": "org1",
            "roles": ["admin"],
            "public_key": alice.public_key,
            "serial": 0,
            "ca_fp": b"",
            "not_after": 0,
            "revoked": False,
            "standing": "ok",
        }

    monkeypatch.setattr(node, "query", query)


def _setup(url: str, home: Path, admin_key: str) -> tuple[Signer, str, tuple[Signer, str] | None]:
    async def run(
        issuer: Signer, chain_id: str, admin: tuple[Signer, str] | None
    ) -> tuple[Signer, str, tuple[Signer, str] | None]:
        return issuer, chain_id, admin

    return bench._load_run(url, "alice", home, admin_key, run)


def test_the_chain_id_and_the_admins_organisation(
    served: str, keys: Path, members: None, alice: Signer
) -> None:
    issuer, chain_id, admin = _setup(served, keys, "alice")
    assert issuer.address == alice.address and chain_id == CHAIN_ID
    assert admin is not None and admin[0].address == alice.address and admin[1] == "org1"
    assert _setup(served, keys, "")[2] is None  # an open chain: no admin


def test_an_admin_key_that_is_no_member(
    served: str, keys: Path, members: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info:
        _setup(served, keys, "bob")
    assert info.value.exit_code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "error [not_member]: the admin key bob is not a member of any organisation on this "
        "chain (pass --admin-key '' for an open chain)"
    ) in err


def test_an_unreachable_node(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://127.0.0.1:1"
    with pytest.raises(typer.Exit):
        _setup(url, keys, "alice")
    assert f"error [unavailable]: cannot reach node at {url}" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["transfers", "latency"])
def test_the_loads_network_errors_are_typed(
    which: str, alice: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark library talks httpx itself (for speed); what fails on the network leaves
    it as Unavailable, which the command prints as one error line."""
    import asyncio

    from citychain.bench import latency, transfers
    from citychain.errors import Unavailable

    for module in (transfers, latency):
        monkeypatch.setattr(module, "verifications_per_second", lambda suite: 1.0)
    url = "http://127.0.0.1:1"
    run = (
        transfers.run_transfers(url, alice, chain_id=CHAIN_ID, senders=1, log=lambda m: None)
        if which == "transfers"
        else latency.run_latency(
            [url], alice, chain_id=CHAIN_ID, rate=1, duration=1, senders=1, log=lambda m: None
        )
    )
    with pytest.raises(Unavailable) as info:
        asyncio.run(run)
    assert info.value.message.startswith(f"cannot reach node at {url}: ")
