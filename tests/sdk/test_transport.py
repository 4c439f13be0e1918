"""The blocking client's transport reads a long body in growing pieces (``citychain.sdk.
_transport``): the sizes it asks its socket for, a real body over a real socket, and the two
private names of httpx and httpcore it relies on."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest

from citychain.crypto import ED25519, Signer
from citychain.sdk import AsyncClient, Client
from citychain.sdk._transport import MAX_READ, _GrowingBackend, _GrowingStream, growing_transport

KIB = 1024
HTTPCORE_READ = 64 * KIB  # what httpcore asks for (HTTP11Connection.READ_NUM_BYTES)


class _Socket(httpcore.NetworkStream):
    """A socket with ``ready`` bytes waiting at each read (one entry a read)."""

    def __init__(self, ready: list[int]) -> None:
        self.ready, self.asked = ready, []  # type: list[int]

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.asked.append(max_bytes)
        return bytes(min(max_bytes, self.ready.pop(0)))


def test_reads_double_while_full_and_fall_back_at_a_short_read() -> None:
    full = 1 << 30
    sock = _Socket([full] * 7 + [100, 10, full, full])
    stream = _GrowingStream(sock)
    got = [len(stream.read(HTTPCORE_READ)) for _ in range(11)]
    k = HTTPCORE_READ
    assert sock.asked == [
        k,
        2 * k,
        4 * k,
        8 * k,
        MAX_READ,
        MAX_READ,
        MAX_READ,
        MAX_READ,
        k,
        k,
        2 * k,
    ]
    assert got == [*sock.asked[:7], 100, 10, k, 2 * k]
    assert 16 * k == MAX_READ


def test_a_read_larger_than_asked_is_never_smaller_than_httpcores() -> None:
    sock = _Socket([1 << 30, 1 << 30])
    stream = _GrowingStream(sock)
    stream.read(HTTPCORE_READ)
    stream.read(4 * MAX_READ)  # a caller asking for more than the grown size gets its own
    assert sock.asked == [HTTPCORE_READ, 4 * MAX_READ]


BODY = bytes(range(256)) * (32 * KIB)  # 8 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the next answer comes on the same connection

    def do_PUT(self) -> None:
        got = self.rfile.read(int(self.headers["Content-Length"]))
        answer = str(len(got)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_PUT

    def do_GET(self) -> None:
        body = BODY if self.path == "/big" else b"small answer"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_a_long_body_arrives_whole_then_a_small_one_on_the_same_connection(server: str) -> None:
    """Over a real socket, through the growing stream. (How large the reads grow depends on
    the kernel's receive window at that instant, so the sizes are the table test's above.)"""
    with httpx.Client(base_url=server, transport=growing_transport(httpx.Limits())) as http:
        with http.stream("GET", "/big") as r:
            assert isinstance(r.extensions["network_stream"], _GrowingStream)
            time.sleep(0.1)
            pieces = list(r.iter_raw())
        assert b"".join(pieces) == BODY and max(map(len, pieces)) <= MAX_READ
        # The same connection: the next answer is read whole, nothing of the last one in it.
        assert http.get("/small").content == b"small answer"
        assert http.get("/big").content == BODY


def test_the_sdk_client_uses_it_and_a_given_transport_is_kept() -> None:
    """Pins httpx's ``HTTPTransport._pool`` and httpcore's ``_network_backend``, the two
    private names ``growing_transport`` sets (a new httpx or httpcore that renames them
    fails here, not in a user's download)."""
    client = Client("http://127.0.0.1:9")
    transport = client._http._transport
    assert isinstance(transport, httpx.HTTPTransport)
    assert isinstance(transport._pool._network_backend, _GrowingBackend)
    client.close()
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    assert Client("http://127.0.0.1:9", transport=mock)._http._transport is mock


@contextlib.contextmanager
def _garbage() -> Iterator[list[str]]:
    """The names of the types the cyclic collector finds garbage among what the block made
    (the collector otherwise off, so only what the block left in cycles is counted)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[str] = []
    try:
        yield found
        gc.collect()
        found.extend(sorted({type(o).__name__ for o in gc.garbage}))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_body_sent_is_freed_with_its_answer_not_left_to_the_collector(server: str) -> None:
    """httpx's response and its stream refer to each other; through that cycle a response
    kept its request and the request its body (a data upload's 4 MiB chunks lived until the
    collector ran: the 1 GiB upload's client peaked at ~190 MiB instead of ~95). The SDK's
    requests, signed and not, blocking and awaited, leave no such cycle behind."""
    signer = Signer.generate(ED25519)
    body = bytes(4 << 20)
    with Client(server) as client:
        client._signed(None, "GET", "/small")  # the connection made, outside the count
        with _garbage() as left:
            put = client._signed(signer, "PUT", "/chunk", content=body, digest=False)
            assert put.content == str(len(body)).encode()
            del put
            posted = client._post_bytes("/txs", body, "application/cbor")
            assert posted == len(body)
        assert not {"Request", "Response", "ByteStream"} & set(left), left

    async def awaited() -> list[str]:
        async with AsyncClient(server) as client:
            await client._signed(None, "GET", "/small")
            with _garbage() as left:
                put = await client._signed(signer, "PUT", "/chunk", content=body, digest=False)
                assert put.content == str(len(body)).encode()
                del put
                assert await client._post_bytes("/txs", body, "application/cbor") == len(body)
            return left

    left = asyncio.run(awaited())
    assert not {"Request", "Response", "ByteStream"} & set(left), left


def _self_signed(tmp: Any) -> tuple[str, str]:
    """A certificate for ``localhost`` and its key, as PEM files under ``tmp``."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_a_tls_connection_is_a_growing_stream_too(tmp_path: Any) -> None:
    """Behind a TLS proxy (``https://``), httpcore upgrades the connection with
    ``start_tls``: the stream it gets back still grows its reads (a TLS record is at most
    16 KiB, so a read comes back short and the size stays httpcore's), and reads it whole."""
    import socket
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)
            tls.sendall(BODY[: 1 << 20])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client_ctx = ssl.create_default_context(cafile=cert)
    plain = _GrowingBackend(httpcore.SyncBackend()).connect_tcp("127.0.0.1", port, timeout=10)
    stream = plain.start_tls(client_ctx, server_hostname="localhost", timeout=10)
    assert isinstance(stream, _GrowingStream)
    assert stream.get_extra_info("ssl_object") is not None
    stream.write(b"hello", timeout=10)
    got = b""
    while len(got) < 1 << 20:
        piece = stream.read(HTTPCORE_READ, timeout=10)
        assert 0 < len(piece) <= HTTPCORE_READ
        got += piece
    assert got == BODY[: 1 << 20]
    stream.close()
    t.join(timeout=10)
    listener.close()
