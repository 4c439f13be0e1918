"""Suite-wide: the order tests are handed to the xdist workers in."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests (real networks, crashes, README runs) first, each module's order kept.

    The workers take tests in collection order, where the end-to-end folders sit in the
    middle of the alphabet: a run ended with one worker alone on the last networks for
    minutes. Started first, the long tests overlap each other and the short ones fill in
    behind them.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
