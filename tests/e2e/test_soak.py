"""The short form of the soak run (bench/soak.py): a 4-validator network under load while
validators are killed and restarted, cut off through the proxy and paused; then every node must
hold the same blocks, headers, roots, receipts and nonces, and no committed transaction may be
missing from any node."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def _soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("citychain_bench_soak", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_short_soak_no_fork_no_loss(tmp_path: Path) -> None:
    out = io.StringIO()
    result = _soak().run(
        validators=4,
        seed=15,
        cycles=3,
        partitions=1,
        pauses=1,
        workdir=tmp_path,
        out=out,
        receipts=40,
    )
    text = out.getvalue()
    assert result.cycles == 3 and result.partitions >= 1 and result.pauses >= 1, text
    assert result.blocks > 0 and result.txs > 0, text
    assert " 0 forks, 0 lost, seed 15" in text, text
    assert result.ok, text
