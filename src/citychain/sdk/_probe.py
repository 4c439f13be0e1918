"""A quick look at a node that does not raise: :func:`probe_node`.

For tools that watch several nodes at once (``citychain net status``, a dashboard): every read
goes through a :class:`~citychain.sdk.Client` with a short timeout (default
:data:`PROBE_TIMEOUT`), and instead of an exception the answer is a :class:`NodeProbe`: the
node's status, health, consensus state, peers and latest block, each ``None`` when the node
could not give it. When the status itself cannot be read the node counts as down, and
:class:`ProbeFailure` says how, in a form a program can branch on: it could not be connected
to, it did not answer in time, it answered an HTTP error status, or its answer was not a
node's. The typed error the client raised rides along (:attr:`ProbeFailure.error`).

Nothing read here is verified (no proofs): it is the node's own account of itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from citychain.errors import CitychainError
from citychain.sdk._client import Client
from citychain.sdk._types import BlockInfo, NodeStatus

if TYPE_CHECKING:
    import httpx

    from citychain.sdk._watch import Watch

#: Seconds each request of :func:`probe_node` may take, by default.
PROBE_TIMEOUT = 2.0

T = TypeVar("T")

#: How a node's status could not be read: ``"cannot_connect"`` (refused, no route, unknown
#: host), ``"timeout"`` (no answer in time), ``"http_status"`` (it answered an error status
#: other than 404) or ``"unexpected"`` (a 404, an answer that is not a node's status, or a
#: connection broken mid-answer).
FailureKind = Literal["cannot_connect", "timeout", "http_status", "unexpected"]


@dataclass(frozen=True, slots=True)
class ProbeFailure:
    """Why :func:`probe_node` could not read a node's status."""

    kind: FailureKind
    #: The error the client raised (``Unavailable`` for the network, the node's own error...).
    error: CitychainError
    #: The HTTP status the node answered with; ``None`` when it did not answer.
    http_status: int | None = None
    #: For people, in one word: the network error's name (``ConnectError``, ``ReadTimeout``,
    #: ``RemoteProtocolError``), else the typed error's (``NotFound``, ``DecodeError``).
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NodeProbe:
    """What :func:`probe_node` saw of a node. ``status`` is ``None`` exactly when the node is
    down (``failure`` says why); the other reads are ``None`` when that one failed, or (the
    latest block) when the chain has no block yet."""

    url: str
    status: NodeStatus | None
    failure: ProbeFailure | None = None
    #: ``/health``: True if the node says it is healthy, False if it says not (or answered
    #: another error status), None if it did not answer.
    healthy: bool | None = None
    #: The node's consensus state (see :meth:`Client.consensus`).
    consensus: dict[str, Any] | None = None
    #: The node's p2p peers (see :meth:`Client.peers`).
    peers: list[dict[str, Any]] | None = None
    #: The block at the node's height, with its commit.
    latest_block: BlockInfo | None = None

    @property
    def up(self) -> bool:
        return self.status is not None


def probe_node(
    url: str,
    *,
    timeout: float = PROBE_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> NodeProbe:
    """Read a node's status, then (if it answered) its health, consensus state, peers and
    latest block, each request within ``timeout`` seconds; never raises a
    :class:`~citychain.errors.CitychainError` (see :class:`NodeProbe`). ``transport`` is as
    for :class:`~citychain.sdk.Client` (tests pass ``httpx.MockTransport``)."""
    from citychain.sdk._watch import Watch  # imports httpx: when a probe is made, as Client does

    wire = Watch(transport)
    with Client(url, timeout=timeout, transport=wire) as client:
        try:
            status = client.status()
        except CitychainError as exc:
            return NodeProbe(client.url, None, _failure(exc, wire))
        try:
            healthy: bool | None = client.health()[0]
        except CitychainError:  # as an answer's status alone says it, if there was an answer
            healthy = None if wire.status is None else wire.status == 200
        return NodeProbe(
            client.url,
            status,
            healthy=healthy,
            consensus=_maybe(client.consensus),
            peers=_maybe(client.peers),
            latest_block=_maybe(client.block) if status.height else None,
        )


def _maybe(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except CitychainError:
        return None


def _failure(exc: CitychainError, wire: Watch) -> ProbeFailure:
    import httpx

    if wire.status is not None:  # the node answered, but not with its status
        if wire.status not in (200, 404):
            return ProbeFailure("http_status", exc, wire.status, f"HTTP {wire.status}")
        return ProbeFailure("unexpected", exc, wire.status, type(exc).__name__)
    broken = wire.error
    if isinstance(broken, httpx.ConnectError):
        return ProbeFailure("cannot_connect", exc, None, type(broken).__name__)
    if isinstance(broken, httpx.TimeoutException):
        return ProbeFailure("timeout", exc, None, type(broken).__name__)
    return ProbeFailure("unexpected", exc, None, type(broken or exc).__name__)
