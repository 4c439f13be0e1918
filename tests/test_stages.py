"""The stage clock: stages nest without counting time twice, and threads do not mix."""

from __future__ import annotations

import threading
import time

from citychain.stages import STAGES, StageClock


def test_an_inner_stage_is_not_counted_again_in_the_outer_one() -> None:
    clock = StageClock()
    with clock.measure("proposal", 10):
        time.sleep(0.02)
        with clock.measure("execution", 10):
            time.sleep(0.05)
            with clock.measure("verify_execution", 10):
                time.sleep(0.03)
    got = clock.snapshot()
    ms = {s: got[s][0] / 1e6 for s in STAGES}
    assert 18 <= ms["proposal"] < 45, ms
    assert 48 <= ms["execution"] < 75, ms
    assert 28 <= ms["verify_execution"] < 55, ms
    assert got["proposal"][1] == got["execution"][1] == 10
    assert list(got) == list(STAGES)


def test_stages_on_other_threads_do_not_nest_into_this_one() -> None:
    clock = StageClock()

    def admit() -> None:
        with clock.measure("admission", 5):
            time.sleep(0.04)

    with clock.measure("mempool", 1):
        t = threading.Thread(target=admit)
        t.start()
        t.join()
    got = clock.snapshot()
    # the other thread's admission ran inside this thread's mempool stage, but is not
    # subtracted from it: only stages of the same thread nest
    assert got["mempool"][0] >= 35e6 and got["admission"][0] >= 35e6
    assert got["admission"][1] == 5


def test_a_stage_that_raises_still_counts() -> None:
    clock = StageClock()
    try:
        with clock.measure("commit", 3):
            raise OSError("disk")
    except OSError:
        pass
    assert clock.snapshot()["commit"][1] == 3
