from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nodeproc import NodeProcess  # type: ignore[import-not-found]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    n = NodeProcess(tmp_path / "node")
    n.start()
    try:
        yield n
    finally:
        n.stop()
