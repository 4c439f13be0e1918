"""Port blocks for test networks are claimed across processes (tests/e2e/ports.py): a block
claimed by one network is never handed to another before it is given back, in this process
or in another worker, and a worker that dies gives its claims back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ports  # type: ignore[import-not-found]
from ports import PortBlocks  # type: ignore[import-not-found]

from citychain.node.testnet import PORT_STRIDE

HERE = Path(__file__).resolve().parent


def _blocks(b: PortBlocks, count: int) -> set[int]:
    return {b.base + PORT_STRIDE * i for i in range(count)}


def test_a_claimed_block_is_not_handed_out_again_until_released(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A narrow range (4 blocks) makes every pick collide unless claims are honoured.
    monkeypatch.setattr(ports, "PORT_LOW", 29000)
    monkeypatch.setattr(ports, "PORT_HIGH", 29000 + 4 * PORT_STRIDE + 1)
    first = PortBlocks(2)
    second = PortBlocks(2)
    assert not _blocks(first, 2) & _blocks(second, 2)
    try:
        PortBlocks(1, tries=50)
    except RuntimeError as e:
        assert "no free block" in str(e)
    else:
        raise AssertionError("a fifth block was handed out of four")
    first.release()
    first.release()  # idempotent
    again = PortBlocks(2)
    assert _blocks(again, 2) == _blocks(first, 2)
    second.release()
    again.release()


def test_a_claim_holds_across_processes_and_ends_with_its_process(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ports, "PORT_LOW", 29100)
    monkeypatch.setattr(ports, "PORT_HIGH", 29100 + 2 * PORT_STRIDE + 1)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ports;"
        "ports.PORT_LOW, ports.PORT_HIGH = 29100, 29121;"
        "b = ports.PortBlocks(2); print(b.base, flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(HERE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert int(child.stdout.readline()) == 29100
            try:
                PortBlocks(1, tries=20)
            except RuntimeError:
                pass
            else:
                raise AssertionError("a block another process holds was handed out")
        finally:
            child.kill()
    mine = PortBlocks(2)  # the dead worker's claims are gone
    assert mine.base == 29100
    mine.release()
