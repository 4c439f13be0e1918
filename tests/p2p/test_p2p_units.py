"""Pieces of the transport without sockets: words, parsing, frames, buckets, checks, config."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from p2p_net import CHAIN, PASSPHRASE, Pki, make_switch

from citychain import codec
from citychain.errors import ConfigError, ErrorCode, KeystoreError, PeerRefused
from citychain.p2p.certs import generate_org_ca, issue_node_cert, node_uri
from citychain.p2p.config import Limits, PeerAddress, parse_peer_list
from citychain.p2p.connection import SendQueue
from citychain.p2p.frames import (
    GATHER_BYTES,
    HEADER,
    MAX_CONTROL_BYTES,
    FrameDecoder,
    Hello,
    Refuse,
    control_frame,
    decode_control,
    header,
    read_frame,
)
from citychain.p2p.handshake import CLOSE_TIMEOUT_S, accept, close_writer, dial
from citychain.p2p.ratelimit import TokenBucket
from citychain.p2p.refusals import ALERTS, explain_tls_error, translate_alert
from citychain.p2p.tls import TrustStore, check_peer_certificate

# -- refusals in plain words --------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "reason", "words"),
    [
        ("tlsv1 alert unknown ca", "wrong_ca", "it does not trust our CA"),
        ("TLSV1_ALERT_UNKNOWN_CA", "wrong_ca", "it does not trust our CA"),
        ("sslv3 alert certificate expired", "expired", "it says our certificate has expired"),
        ("SSLV3_ALERT_BAD_CERTIFICATE", "wrong_ca", "it says our certificate is bad"),
        ("tlsv13 alert certificate required", "wrong_ca", "needs a client certificate"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "protocol", "it does not speak TLS 1.3"),
        ("sslv3 alert handshake failure (_ssl.c:1006)", "protocol", "we share no TLS parameters"),
        ("tlsv1 alert no application protocol", "protocol", "'no application protocol'"),
    ],
)
def test_translate_alert(alert: str, reason: str, words: str) -> None:
    got_reason, got_words = translate_alert(alert)
    assert got_reason == reason
    assert words in got_words


def test_every_alert_maps_to_a_known_reason() -> None:
    for reason, words in ALERTS.values():
        PeerRefused(reason, words)  # raises on an unknown reason


def test_explain_tls_error() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_code = 20
    verify.verify_message = "unable to get local issuer certificate"
    ours = explain_tls_error(verify)
    assert (ours.reason_code, ours.by_peer) == ("wrong_ca", False)
    assert "does not chain to any organisation CA of this chain" in ours.message
    assert "unable to get local issuer certificate" in ours.message

    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    alert.reason = "TLSV1_ALERT_UNKNOWN_CA"
    theirs = explain_tls_error(alert)
    assert (theirs.reason_code, theirs.by_peer) == ("wrong_ca", True)
    assert theirs.log_line("hub at 127.0.0.1:1") == (
        "peer hub at 127.0.0.1:1 refused our certificate: wrong CA — it does not trust our CA"
    )
    assert theirs.short() == "refused by peer: wrong CA"


def test_peer_refused() -> None:
    exc = PeerRefused("expired", "the certificate of n3 expired on 2020-01-31 00:00:00 UTC")
    assert exc.code is ErrorCode.EXPIRED and exc.words == "expired"
    assert exc.log_line("n3 at 10.0.0.3:26656").startswith("refused peer n3 at 10.0.0.3:26656: ")
    assert exc.short() == "refused: expired"
    assert PeerRefused("not_yet_valid", "x").words == "clock skew / not yet valid"
    assert PeerRefused("wrong_chain", "x").code is ErrorCode.WRONG_CHAIN
    with pytest.raises(ValueError, match="unknown refusal reason"):
        PeerRefused("because", "x")


# -- peer addresses and limits --------------------------------------------------------------


def test_peer_address_parse() -> None:
    assert PeerAddress.parse(" n1@10.0.0.1:26656 ") == PeerAddress("n1", "10.0.0.1", 26656)
    assert PeerAddress.parse("n-2.x@node2.city.example:1") == PeerAddress(
        "n-2.x", "node2.city.example", 1
    )
    v6 = PeerAddress.parse("n3@[::1]:7")
    assert v6 == PeerAddress("n3", "::1", 7) and str(v6) == "n3@[::1]:7"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("10.0.0.1:26656", "no '@'"),
        ("@10.0.0.1:26656", "node name"),
        ("bad name@h:1", "node name"),
        ("n1@10.0.0.1", "no host:port"),
        ("n1@:26656", "no host:port"),
        ("n1@h:0", "port '0'"),
        ("n1@h:65536", "port '65536'"),
        ("n1@h:http", "port 'http'"),
        ("n1@::1:5", "in brackets"),
        ("n1@[::1:5", "must be written [address]"),
    ],
)
def test_peer_address_parse_errors_name_the_entry(entry: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        PeerAddress.parse(entry)
    assert repr(entry.strip()) in err.value.message
    assert why in err.value.message


def test_parse_peer_list() -> None:
    assert parse_peer_list("") == []
    assert parse_peer_list(" , ") == []
    assert parse_peer_list("a@h:1, b@h:2") == [PeerAddress("a", "h", 1), PeerAddress("b", "h", 2)]
    with pytest.raises(ConfigError, match="peer 'b@h2': no host:port"):
        parse_peer_list("a@h:1,b@h2")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_peer_list("a@h:1,a@h:2")


def test_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match="send_queue must be a positive integer"):
        Limits(send_queue=0)
    with pytest.raises(ConfigError, match="below 4 GiB"):
        Limits(max_message_bytes=2**32)
    with pytest.raises(ConfigError, match="dial_backoff_max_ms"):
        Limits(dial_backoff_min_ms=10, dial_backoff_max_ms=5)


# -- frames ---------------------------------------------------------------------------------


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


def test_frames_round_trip() -> None:
    async def main() -> None:
        reader = _reader(
            header(9, 3) + b"abc" + header(1, 0) + control_frame(Refuse("duplicate", "d"))
        )
        assert await read_frame(reader, 10) == (9, b"abc")
        assert await read_frame(reader, 10) == (1, b"")
        channel, payload = await read_frame(reader, 10)
        assert channel == 0 and decode_control(payload) == Refuse("duplicate", "d")
        with pytest.raises(asyncio.IncompleteReadError):
            await read_frame(reader, 10)

    asyncio.run(main())


def test_oversize_frame_is_refused_before_its_body() -> None:
    async def main() -> None:
        # Only the header is there: a reader that waited for the body would hang.
        reader = _reader(HEADER.pack(5_000_000, 3), eof=False)
        async with asyncio.timeout(1):
            with pytest.raises(PeerRefused, match="message of 5000000 bytes exceeds limit 4096"):
                await read_frame(reader, 4096)
        control = _reader(HEADER.pack(MAX_CONTROL_BYTES + 1, 0), eof=False)
        with pytest.raises(PeerRefused, match="exceeds limit 4096"):
            await read_frame(control, 10**6)

    asyncio.run(main())


def test_frame_decoder_splits_a_stream() -> None:
    stream = header(1, 3) + b"abc" + header(2, 0) + header(255, 4) + b"wxyz"
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder(10)
        frames = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert frames == [(1, b"abc"), (2, b""), (255, b"wxyz")], cut
        assert decoder.refusal is None
    one_by_one = FrameDecoder(10)
    got = [f for i in range(len(stream)) for f in one_by_one.feed(stream[i : i + 1])]
    assert got == [(1, b"abc"), (2, b""), (255, b"wxyz")]


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(
        st.one_of(st.integers(0, 300), st.integers(GATHER_BYTES - 8, 3 * GATHER_BYTES)),
        min_size=1,
        max_size=6,
    ),
    cuts=st.lists(st.integers(0, 1 << 20), max_size=12),
)
def test_frame_decoder_gives_every_frame_whole_however_the_stream_is_cut(
    sizes: list[int], cuts: list[int]
) -> None:
    """Small frames and large ones (gathered piece by piece) alike: the frames come out
    whole and in order wherever the reads begin and end."""
    sent = [(1 + i % 255, bytes([i % 251]) * n + n.to_bytes(4, "big")) for i, n in enumerate(sizes)]
    stream = b"".join(header(c, len(p)) + p for c, p in sent)
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder(4 * GATHER_BYTES)
    got = [f for a, b in itertools.pairwise(bounds) for f in decoder.feed(stream[a:b])]
    assert got == sent
    assert decoder.refusal is None


def test_a_large_frame_and_the_small_one_after_it_come_out_whole() -> None:
    """A 4 MiB frame in 64 KiB reads comes out whole, so does the frame after it in its last
    read, and the decoder keeps nothing of either (the speed is in ``bench/RESULTS.md``)."""
    body = bytes(range(256)) * (4 * 4096)
    stream = header(7, len(body)) + body + header(8, 2) + b"ok"
    decoder = FrameDecoder(8 << 20)
    reads = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    got = [f for r in reads for f in decoder.feed(r)]
    assert got == [(7, body), (8, b"ok")]
    assert decoder._parts == [] and decoder._want == 0 and not decoder._buf


def test_frame_decoder_refuses_oversize_from_the_header_alone() -> None:
    decoder = FrameDecoder(10)
    frames = decoder.feed(header(1, 2) + b"ok" + HEADER.pack(11, 1))
    assert frames == [(1, b"ok")]  # what came before is still delivered
    assert decoder.refusal is not None
    assert decoder.refusal.message == "message of 11 bytes exceeds limit 10"
    assert decoder.feed(b"x" * 11) == []
    control = FrameDecoder(10**6)
    control.feed(HEADER.pack(MAX_CONTROL_BYTES + 1, 0))
    assert control.refusal is not None


def test_control_messages() -> None:
    hello = Hello(2, CHAIN, bytes(32), "n1", "water", bytes(range(32)))
    assert decode_control(hello.encode()) == hello
    # A version-1 hello (no nonce) still decodes, so it is refused as version 1 in words.
    old = codec.encode(["hello", 1, CHAIN, bytes(32), "n1", "water"])
    assert decode_control(old) == Hello(1, CHAIN, bytes(32), "n1", "water", b"")
    refuse = Refuse("wrong_genesis", "bad\nline\x1b[31m" + "x" * 2000)
    got = decode_control(refuse.encode())
    assert isinstance(got, Refuse) and got.reason_code == "wrong_genesis"
    assert "\n" not in got.message and "\x1b" not in got.message and len(got.message) == 1000
    with pytest.raises(PeerRefused, match="malformed control message"):
        decode_control(b"\xff")
    with pytest.raises(PeerRefused, match="not a hello, proof or refuse"):
        decode_control(codec.encode(["ping", 1]))


def test_a_hello_names_its_suite_only_when_it_is_not_ed25519() -> None:
    nonce = bytes(range(32))
    ed = Hello(2, CHAIN, bytes(32), "n1", "water", nonce)
    # an Ed25519 node's hello is the seven items it always was
    assert ed.encode() == codec.encode(["hello", 2, CHAIN, bytes(32), "n1", "water", nonce])
    assert decode_control(ed.encode()).crypto_suite == "ed25519"  # type: ignore[union-attr]
    gm = Hello(2, CHAIN, bytes(32), "n1", "water", nonce, "sm2-sm3")
    assert codec.decode(gm.encode())[-1] == "sm2-sm3"
    assert decode_control(gm.encode()) == gm
    # the default spelled out is not canonical, and a suite name is bounded
    for bad in ("ed25519", "", "x" * 65):
        raw = codec.encode(["hello", 2, CHAIN, bytes(32), "n1", "water", nonce, bad])
        with pytest.raises(PeerRefused, match="not a hello"):
            decode_control(raw)


def test_send_queue_is_bounded_and_batches() -> None:
    async def main() -> None:
        queue = SendQueue(3)
        assert queue.put(1, b"a" * 10) and queue.put(1, b"b" * 10) and queue.put(1, b"c" * 100)
        assert not queue.put(1, b"d")  # full
        assert len(queue) == 3
        assert await queue.take_batch(25) == [(1, b"a" * 10), (1, b"b" * 10)]
        assert await queue.take_batch(25) == [(1, b"c" * 100)]  # one frame even if larger
        assert queue.put(1, b"e") and queue.clear() == 1 and len(queue) == 0
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await queue.take_batch(25)  # waits while empty

    asyncio.run(main())


# -- token bucket ---------------------------------------------------------------------------


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(100, clock=lambda: now[0])
    assert bucket.take(100) == 0.0  # the burst
    assert bucket.take(50) == pytest.approx(0.5)  # in debt: wait half a second
    now[0] = 0.5
    assert bucket.take(0) == 0.0
    assert bucket.take(1000) == pytest.approx(10.0)  # a frame larger than the burst still passes
    now[0] = 100.0
    assert bucket.take(100) == 0.0  # refilled, capped at the burst
    assert bucket.take(1) > 0


# -- the certificate check after the handshake ---------------------------------------------


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _check(
    cert_pem: bytes, cas: list[bytes], *, purpose: str = "server", now: datetime | None = None
) -> None:
    check_peer_certificate(
        _der(cert_pem),
        purpose=purpose,  # type: ignore[arg-type]
        chain_id=CHAIN,
        local_name="me",
        trust=TrustStore.from_pems(cas),
        now=now or datetime.now(UTC),
    )


def _forge(
    ca: tuple[bytes, bytes],
    *,
    org: str,
    eku: list[x509.ObjectIdentifier] | None,
    ca_flag: bool = False,
) -> bytes:
    """A node certificate signed by ``ca`` with whatever we like in it."""
    ca_cert = x509.load_pem_x509_certificate(ca[0])
    ca_key = serialization.load_pem_private_key(ca[1], password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "n9"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(node_uri(CHAIN, "n9"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_peer_certificate_checks() -> None:
    water, roads = generate_org_ca("water", "Water"), generate_org_ca("roads", "Roads")
    cas = [water[0], roads[0]]
    good = issue_node_cert(water[0], water[1], "n1", CHAIN, "water")[0]
    _check(good, cas)
    _check(good, cas, purpose="client")

    with pytest.raises(PeerRefused, match="does not chain to any organisation CA") as err:
        _check(good, [roads[0]])
    assert err.value.reason_code == "wrong_ca" and err.value.peer_name == "n1"

    # Same subject as the water CA, another key: the name matches, the signature does not.
    impostor = generate_org_ca("water", "Water")
    with pytest.raises(PeerRefused, match="does not chain"):
        _check(good, [impostor[0], roads[0]])

    # The water CA signs a certificate claiming to be a node of roads.
    with pytest.raises(PeerRefused, match="claims organisation 'roads' but was issued by the CA"):
        _check(_forge(water, org="roads", eku=None), cas)
    # No EKU at all is allowed (as OpenSSL allows it); the wrong one is not.
    _check(_forge(water, org="water", eku=None), cas)
    client_only = _forge(water, org="water", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    _check(client_only, cas, purpose="client")
    with pytest.raises(PeerRefused, match="not allowed for TLS server use"):
        _check(client_only, cas, purpose="server")
    with pytest.raises(PeerRefused, match="is a CA certificate"):
        _check(_forge(water, org="water", eku=None, ca_flag=True), cas)

    later = datetime.now(UTC) + timedelta(days=900)
    with pytest.raises(PeerRefused, match="the certificate of n1 expired on") as err:
        _check(good, cas, now=later)
    assert err.value.reason_code == "expired"
    with pytest.raises(PeerRefused, match=r"not valid before .* check the clocks") as err:
        _check(good, cas, now=datetime(2001, 1, 1, tzinfo=UTC))
    assert err.value.reason_code == "not_yet_valid"

    short_ca = generate_org_ca("water", "Water", valid_days=1)
    node = issue_node_cert(short_ca[0], short_ca[1], "n1", CHAIN, "water", valid_days=30)[0]
    with pytest.raises(PeerRefused, match="the CA certificate of organisation 'water' expired"):
        _check(node, [short_ca[0]], now=datetime.now(UTC) + timedelta(days=2))

    other_chain = issue_node_cert(water[0], water[1], "n1", "elsewhere", "water")[0]
    with pytest.raises(PeerRefused, match="n1 is on chain 'elsewhere', me is on chain") as err:
        _check(other_chain, cas)
    assert err.value.reason_code == "wrong_chain"

    with pytest.raises(PeerRefused, match="presented no certificate"):
        check_peer_certificate(
            None,
            purpose="client",
            chain_id=CHAIN,
            local_name="me",
            trust=TrustStore.from_pems(cas),
            now=datetime.now(UTC),
        )


# -- switch configuration -------------------------------------------------------------------


def test_switch_refuses_bad_configuration(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    files = pki.node("n1", "water")
    with pytest.raises(ConfigError, match="is for node 'n1', but this node's node is 'n2'"):
        make_switch(pki, "n2", "water", files=files)
    with pytest.raises(ConfigError, match="is for chain 'city-test'"):
        make_switch(pki, "n1", "water", files=files, chain="other")
    with pytest.raises(ConfigError, match="not issued by any organisation CA of this chain"):
        make_switch(pki, "n1", "water", files=files, cas=pki.genesis_cas("roads"))
    with pytest.raises(ConfigError, match="trust store is empty"):
        make_switch(pki, "n1", "water", files=files, cas=[])
    with pytest.raises(ConfigError, match="listed twice"):
        make_switch(
            pki,
            "n1",
            "water",
            files=files,
            peers=[PeerAddress("n2", "h", 1), PeerAddress("n2", "h", 2)],
        )
    with pytest.raises(ConfigError, match="not a CA"):
        make_switch(pki, "n1", "water", files=files, cas=[files[0].read_bytes()])


def test_switch_key_passphrase(tmp_path: Path) -> None:
    from citychain.p2p.switch import Switch

    pki = Pki(tmp_path)
    cert_file, key_file = pki.node("n1", "water")

    def switch(passphrase: str | None, key: Path = key_file) -> Switch:
        return Switch(
            chain_id=CHAIN,
            genesis_hash=bytes(32),
            node_name="n1",
            org_id="water",
            cert_file=cert_file,
            key_file=key,
            key_passphrase=passphrase,
            ca_pems=pki.genesis_cas("water"),
            listen_host="127.0.0.1",
            listen_port=0,
            peers=[],
        )

    switch(PASSPHRASE)
    with pytest.raises(KeystoreError) as err:
        switch("wrong")
    assert err.value.code is ErrorCode.WRONG_PASSPHRASE
    with pytest.raises(KeystoreError, match="its passphrase is needed"):
        switch(None)  # never an OpenSSL prompt on the terminal
    with pytest.raises(ConfigError, match="cannot read"):
        switch(PASSPHRASE, tmp_path / "missing.key")


# -- closing ------------------------------------------------------------------------------


def _tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server and a client TLS context for the closing tests (no node checks)."""
    cert_pem, key_pem = generate_org_ca("t", "T")
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


@contextmanager
def _silent_tls_peer(handshake: Callable[[socket.socket], ssl.SSLSocket]) -> Iterator[int]:
    """A listener on a free port, and a thread that runs ``handshake(listener)`` (TLS as the
    server or the client) and then holds the connection without reading it again: a peer that
    never answers close_notify. Yields the port; the test's side takes the other end."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[ssl.SSLSocket] = []
    done = threading.Event()

    def peer() -> None:
        # A test's side may drop the connection the instant its own TLS is up, before this
        # end has read the last handshake message: then this end's handshake fails, which
        # is the test's business, not this thread's.
        with contextlib.suppress(ssl.SSLError, OSError):
            held.append(handshake(listener))
        done.wait(10)

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        for s in held:
            s.close()
        listener.close()


def test_a_writer_closed_twice_is_still_aborted_when_its_tls_shutdown_hangs(
    tmp_path: Path,
) -> None:
    """A peer that never answers our close_notify must not keep the connection open: once
    ``close_writer``'s wait runs out, the TCP socket is closed, even where the writer had been
    closed once already (asyncio's TLS transport forgets its protocol on a second ``close()``,
    after which ``abort()`` does nothing)."""
    server, client = _tls_pair(tmp_path)

    def handshake(listener: socket.socket) -> ssl.SSLSocket:
        return server.wrap_socket(listener.accept()[0], server_side=True)

    async def main(port: int) -> None:
        loop = asyncio.get_running_loop()
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, ssl_shutdown_timeout=30
        )
        raw = writer.transport.get_extra_info("socket")
        writer.close()  # the TLS shutdown starts and waits for the peer's close_notify
        t0 = loop.time()
        await close_writer(writer)
        assert loop.time() - t0 < CLOSE_TIMEOUT_S + 1
        for _ in range(100):  # the abort closes the socket within a few turns
            if raw.fileno() == -1:
                break
            await asyncio.sleep(0.01)
        assert raw.fileno() == -1, "the TCP socket is still open after close_writer"

    with _silent_tls_peer(handshake) as port:
        asyncio.run(main(port))


def _cancel_when_tls_is_up(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.Task[Any]]:
    """Cancel the task put in the returned list at the instant its TLS handshake completes,
    before it has resumed: the window in which ``stop()`` can cancel a handshake whose
    connection asyncio then closes gracefully (close_notify, then a wait for the peer's)."""
    tasks: list[asyncio.Task[Any]] = []
    made = asyncio.StreamReaderProtocol.connection_made

    def connection_made(self: asyncio.StreamReaderProtocol, transport: Any) -> None:
        made(self, transport)
        tasks[0].cancel()

    monkeypatch.setattr(asyncio.StreamReaderProtocol, "connection_made", connection_made)
    return tasks


def _resource_warnings_after(run: Callable[[], None]) -> list[str]:
    """``run()`` (which runs and closes its own loop), then collect: the ResourceWarnings of
    what it left open ("unclosed transport ...")."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
@pytest.mark.parametrize("side", ["accept", "dial"])
def test_a_handshake_cancelled_as_its_tls_comes_up_leaves_no_socket_open(
    side: str, loop_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The switch stops (cancelling every handshake) just as one's TLS handshake completes,
    with a peer that never answers close_notify: that connection must be dropped at once, not
    left in a TLS shutdown that outlives the loop (found as "unclosed transport" in CI). On
    both loops: a node runs on uvloop, the in-process tests on asyncio's."""
    server, client = _tls_pair(tmp_path)
    tasks = _cancel_when_tls_is_up(monkeypatch)
    # accept(): the silent peer dials us, the test accepts on a listener of its own;
    # dial(): the silent peer accepts on its listener.
    ours = socket.create_server(("127.0.0.1", 0))

    def handshake(listener: socket.socket) -> ssl.SSLSocket:
        if side == "accept":
            return client.wrap_socket(socket.create_connection(ours.getsockname()))
        return server.wrap_socket(listener.accept()[0], server_side=True)

    local: Any = None  # never reached: the handshake is cancelled before its first frame

    async def main(port: int) -> None:
        loop = asyncio.get_running_loop()
        if side == "accept":
            ours.setblocking(False)
            sock, _ = await loop.sock_accept(ours)
            tasks.append(
                asyncio.create_task(accept(sock, context=server, local=local, timeout_s=5))
            )
        else:
            tasks.append(
                asyncio.create_task(
                    dial("t", "127.0.0.1", port, context=client, local=local, timeout_s=5)
                )
            )
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        await asyncio.sleep(0.05)  # a few turns: an abort closes the socket in the next one
        if side == "accept":
            assert sock.fileno() == -1, "the accepted socket is still open"

    def run(port: int) -> None:
        factory = uvloop.new_event_loop if loop_name == "uvloop" else asyncio.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main(port))

    with ours, _silent_tls_peer(handshake) as port:
        leaks = _resource_warnings_after(lambda: run(port))
    assert not leaks, leaks
