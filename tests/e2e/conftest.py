from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nodeproc import NodeProcess, running_demo  # type: ignore[import-not-found]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    with running_demo(tmp_path / "node") as n:
        yield n
