"""The blocking client's HTTP transport: httpx's own, with reads that grow while a long body
streams in.

Theory of operation
-------------------
httpcore reads a response 64 KiB at a time (``HTTP11Connection.READ_NUM_BYTES``), and each
read costs a ``recv`` into a new ``bytes`` and h11's buffer append and extract. A data
download of 256 MiB is 4,096 such reads: py-spy showed them as two thirds of the client's
CPU (0.66 of 0.93 s), more than the AES-GCM and SHA-256 over the same bytes. Read 1 MiB at a
time, the client's CPU a download halved and the download to memory went from ~300 to
~500 MiB/s (``bench/RESULTS.md``, 2026-12-07).

The stream below asks its socket for more than httpcore asks when the last read came back
full (the sender has more ready than was taken): the size doubles, up to :data:`MAX_READ`;
a short read (the end of an answer, a small answer, a TLS record) sets it back to what
httpcore asks. So a small answer allocates no more than before, and only a body that keeps
the socket full reads in large pieces. h11 takes whatever it is given at once, and HTTP/1.1
without pipelining sends nothing after an answer until the next request, so a larger read
never takes bytes of another answer.

httpx has no parameter for this: its ``HTTPTransport`` builds an httpcore ``ConnectionPool``
with httpcore's default network backend. :func:`growing_transport` builds that transport with
the arguments ``httpx.Client`` gives it by default, then wraps its pool's backend (httpx's
``_pool`` and httpcore's ``_network_backend``: two private names, which
``tests/sdk/test_transport.py`` pins, rather than a transport of our own).
"""

from __future__ import annotations

import typing

import httpcore
import httpx

#: The largest read once a body keeps the socket full (4 MiB was no faster, and its
#: allocations cost more system time).
MAX_READ: typing.Final = 1 << 20


class _GrowingStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._size = 0  # the next read's size when larger than httpcore's

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        ask = max(max_bytes, self._size)
        data = self._inner.read(ask, timeout)
        self._size = min(2 * ask, MAX_READ) if len(data) == ask else 0
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _GrowingStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _GrowingBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _GrowingStream(inner)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _GrowingStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def growing_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's default transport (as ``httpx.Client(limits=limits)`` makes it), whose
    connections read in growing pieces (see the module's docstring)."""
    transport = httpx.HTTPTransport(limits=limits)
    pool = transport._pool
    pool._network_backend = _GrowingBackend(pool._network_backend)
    return transport
