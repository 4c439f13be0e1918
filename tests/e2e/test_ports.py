"""Port blocks for test networks are claimed across processes (tests/e2e/ports.py): a block
claimed by one network is never handed to another before it is given back, in this process
or in another worker, and a worker that dies gives its claims back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ports  # type: ignore[import-not-found]
import pytest
from ports import PortBlocks  # type: ignore[import-not-found]

from citychain.node.testnet import PORT_STRIDE

HERE = Path(__file__).resolve().parent


def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, low: int, blocks: int) -> None:
    """Claims in a lock directory of this test's own, in a narrow range below the one test
    networks use (PORT_LOW), so no other worker's network holds a block of it."""
    assert low + blocks * PORT_STRIDE < ports.PORT_LOW
    monkeypatch.setattr(ports, "LOCK_DIR", tmp_path / "locks")
    monkeypatch.setattr(ports, "PORT_LOW", low)
    monkeypatch.setattr(ports, "PORT_HIGH", low + blocks * PORT_STRIDE + 1)


def test_a_claimed_block_is_not_handed_out_again_until_released(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A narrow range (4 blocks) makes every pick collide unless claims are honoured. Single
    # blocks: with claims of two, a first pick of the middle pair left no pair for a second
    # claim, a red CI run one time in three.
    _isolated(monkeypatch, tmp_path, 19000, 4)
    held = [PortBlocks(1) for _ in range(4)]
    assert sorted(b.base for b in held) == [19000 + PORT_STRIDE * i for i in range(4)]
    try:
        PortBlocks(1, tries=50)
    except RuntimeError as e:
        assert "no free block" in str(e)
    else:
        raise AssertionError("a fifth block was handed out of four")
    held[1].release()
    held[1].release()  # idempotent
    again = PortBlocks(1)
    assert again.base == held[1].base
    for b in [again, *held]:
        b.release()


def test_a_claim_holds_across_processes_and_ends_with_its_process(
    monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _isolated(monkeypatch, tmp_path, 19100, 2)
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import ports;"
        "ports.PORT_LOW, ports.PORT_HIGH = 19100, 19121; ports.LOCK_DIR = Path(sys.argv[2]);"
        "b = ports.PortBlocks(2); print(b.base, flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(HERE), str(tmp_path / "locks")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert int(child.stdout.readline()) == 19100
            try:
                PortBlocks(1, tries=20)
            except RuntimeError:
                pass
            else:
                raise AssertionError("a block another process holds was handed out")
        finally:
            child.kill()
    mine = PortBlocks(2)  # the dead worker's claims are gone
    assert mine.base == 19100
    mine.release()
