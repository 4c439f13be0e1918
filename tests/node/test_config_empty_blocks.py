"""node.toml ``[consensus] create_empty_blocks`` and ``empty_blocks_interval_ms``: defaults,
what ``init`` and ``net up`` write, refusals in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain.consensus.interface import EmptyBlocks
from citychain.errors import ConfigError
from citychain.node.config import ConsensusSettings, NodeConfig
from citychain.node.testnet import generate_network


def write(home: Path, text: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "node.toml").write_text(text)


def test_default_is_one_empty_block_per_10_s_while_idle(tmp_path: Path) -> None:
    write(tmp_path, "[consensus]\n")
    c = NodeConfig.load(tmp_path).consensus
    assert (c.create_empty_blocks, c.empty_blocks_interval_ms) == (True, 10_000)
    e = EmptyBlocks(c.create_empty_blocks, c.empty_blocks_interval_ms)
    assert e.waits and e.due_ms(1_000) == 11_000


@pytest.mark.parametrize(
    ("text", "waits", "due"),
    [
        ("create_empty_blocks = true\nempty_blocks_interval_ms = 0", False, 0),
        ("create_empty_blocks = true\nempty_blocks_interval_ms = 2000", True, 2_000),
        ("create_empty_blocks = false", True, None),
        ("create_empty_blocks = false\nempty_blocks_interval_ms = 2000", True, None),
    ],
)
def test_the_settings_and_what_they_mean(
    tmp_path: Path, text: str, waits: bool, due: int | None
) -> None:
    write(tmp_path, f"[consensus]\n{text}\n")
    c = NodeConfig.load(tmp_path).consensus
    e = EmptyBlocks(c.create_empty_blocks, c.empty_blocks_interval_ms)
    assert e.waits is waits
    assert e.due_ms(0) == due


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('create_empty_blocks = "no"', "[consensus] create_empty_blocks must be true or false"),
        (
            "empty_blocks_interval_ms = -1",
            "[consensus] empty_blocks_interval_ms must be a whole number, 0 or more",
        ),
        (
            "empty_blocks_interval_ms = 1.5",
            "[consensus] empty_blocks_interval_ms must be a whole number, 0 or more",
        ),
        ("create_empty_block = false", "unknown key 'create_empty_block' in [consensus]"),
    ],
)
def test_bad_values_and_unknown_keys_are_refused_by_name(
    tmp_path: Path, text: str, words: str
) -> None:
    write(tmp_path, f"[consensus]\n{text}\n")
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert words in refused.value.message
    assert "node.toml" in refused.value.message


def test_written_configs_carry_the_keys(tmp_path: Path) -> None:
    NodeConfig(home=tmp_path / "a").save()
    text = (tmp_path / "a" / "config" / "node.toml").read_text()
    assert "create_empty_blocks = true\nempty_blocks_interval_ms = 10000\n" in text
    # A generated network writes what it is given to every node.
    layout = generate_network(
        tmp_path / "net",
        validators=2,
        orgs=1,
        base_port=29000,
        kdf_level="interactive",
        consensus=ConsensusSettings(create_empty_blocks=False, empty_blocks_interval_ms=500),
    )
    for n in layout.nodes:
        c = NodeConfig.load(n.home).consensus
        assert (c.create_empty_blocks, c.empty_blocks_interval_ms) == (False, 500)


def test_idle_words() -> None:
    assert EmptyBlocks.describe_idle(1_000, 11_000) == (
        "transactions (idle); next empty block in 10 s"
    )
    assert EmptyBlocks.describe_idle(1_000, 1_500) == (
        "transactions (idle); next empty block in 1 s"
    )
    assert EmptyBlocks.describe_idle(2_000, 1_500) == (
        "transactions (idle); next empty block in 0 s"
    )
    assert EmptyBlocks.describe_idle(0, None) == ("transactions (idle; empty blocks are off)")
    with pytest.raises(ValueError):
        EmptyBlocks(True, -5)
