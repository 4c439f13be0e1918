"""Benchmarks operators run against their own deployment (`citychain bench ...`).

Each prints one line ``bench <name>: <value> <unit> (ceiling <value> <unit>, ratio <r>)``
where the ceiling is measured on the same machine in the same run, so figures compare across
machines.

The load itself (:mod:`.transfers`, :mod:`.latency`) goes over httpx directly, not through
the SDK's client: pre-signed transactions are posted as raw CBOR batches and committed blocks
followed as plain JSON, so the client side spends no time parsing and checking answers while
it is being measured. Its network errors leave this package as the SDK's would, typed
(:func:`node_errors`); the CLI reads the chain id and the admin's organisation with the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from citychain.errors import Unavailable


def result_line(name: str, value: float, unit: str, ceiling: float, ceiling_unit: str) -> str:
    ratio = value / ceiling if ceiling else 0.0
    return (
        f"bench {name}: {value:,.0f} {unit} "
        f"(ceiling {ceiling:,.0f} {ceiling_unit}, ratio {ratio:.3f})"
    )


@contextmanager
def node_errors(url: str) -> Iterator[None]:
    """An HTTP failure of the benchmark's load (refused, timed out, an error status) as
    :class:`~citychain.errors.Unavailable` ``cannot reach node at <url>: ...``."""
    import httpx

    try:
        yield
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach node at {url}: {exc}") from None
