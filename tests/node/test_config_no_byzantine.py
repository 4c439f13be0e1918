"""No configuration a user can write turns a validator into a double signer: the behaviour
lives in a test subclass (tests/e2e/byzantine.py), and node.toml refuses the old key."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain.errors import ConfigError
from citychain.node.config import NodeConfig


@pytest.mark.parametrize("value", ['"double_sign"', '""', "true"])
def test_the_byzantine_key_is_refused_as_unknown(tmp_path: Path, value: str) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "node.toml").write_text(f"[consensus]\nbyzantine = {value}\n")
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert "unknown key 'byzantine' in [consensus]" in refused.value.message
