"""node.toml ``[p2p] private_ack_timeout_ms``: how long a private-collection write waits for
its ``required_peers`` acknowledgements; the node takes it, bad values are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain.crypto import ED25519, Signer
from citychain.errors import ConfigError
from citychain.node import Node, NodeConfig
from citychain.types import Validator
from citychain.types.genesis import Genesis


def write(home: Path, text: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "node.toml").write_text(text)


def test_the_default_is_5_s_and_the_node_waits_what_the_file_says(tmp_path: Path) -> None:
    write(tmp_path / "a", "[p2p]\n")
    assert NodeConfig.load(tmp_path / "a").p2p.private_ack_timeout_ms == 5_000
    home = tmp_path / "b"
    write(home, "[p2p]\nprivate_ack_timeout_ms = 12500\n")
    val = Signer(ED25519, b"\x01" * 32)
    Genesis("svc", 1, "ed25519", (Validator(val.public_key, 1, "v"),)).save(
        home / "config" / "genesis.json"
    )
    node = Node(NodeConfig.load(home), signer=val)
    try:
        assert node.private.ack_timeout == 12.5
    finally:
        node.close()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0", "[p2p] private_ack_timeout_ms must be 1 to 60,000"),
        ("60001", "[p2p] private_ack_timeout_ms must be 1 to 60,000"),
        ("-5", "[p2p] private_ack_timeout_ms must be a whole number, 0 or more"),
        ('"5s"', "[p2p] private_ack_timeout_ms must be a whole number, 0 or more"),
    ],
)
def test_bad_values_are_refused_by_name(tmp_path: Path, value: str, words: str) -> None:
    write(tmp_path, f"[p2p]\nprivate_ack_timeout_ms = {value}\n")
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert words in refused.value.message and "node.toml" in refused.value.message
