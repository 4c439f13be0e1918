"""The TLS 1.3 exporter of live connections (RFC 8446 7.5), read from OpenSSL by ctypes, and
node-key proofs bound to it on GM chains: a proof made in one TLS session does not verify in
another, even between the same two certificates and nonces (a relay by someone holding both
nodes' TLS keys)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
from p2p_net import Pki, make_switch

from citychain import codec
from citychain.crypto import SM2_SM3, Signer
from citychain.errors import ConfigError, PeerRefused, Unavailable
from citychain.p2p import exporter as exporter_mod
from citychain.p2p.certs import NodeKey, read_node_cert
from citychain.p2p.exporter import EXPORTER_BYTES, tls_exporter
from citychain.p2p.nodekey import PROOF_TAG, Binding, check_proof
from citychain.p2p.tls import TrustStore, client_context, server_context


def _contexts(pki: Pki) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from p2p_net import PASSPHRASE

    trust = TrustStore.from_pems(pki.genesis_cas("water", "roads"))
    s_cert, s_key = pki.node("a", "water")
    c_cert, c_key = pki.node("b", "roads")
    return (
        server_context(s_cert, s_key, PASSPHRASE, trust),
        client_context(c_cert, c_key, PASSPHRASE, trust),
    )


async def _closed(w: asyncio.StreamWriter) -> None:
    """Close a TLS stream and wait until it is: one left closing when ``asyncio.run`` ended
    its loop was collected later, in another test, as an unclosed transport (a red CI run)."""
    w.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await w.wait_closed()


async def _exporters(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[bytes, bytes]:
    """(server's, client's) exporter of one fresh TLS 1.3 connection between the contexts."""
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        got.set_result(tls_exporter(w.get_extra_info("ssl_object"), server))
        await _closed(w)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server)
    port = srv.sockets[0].getsockname()[1]
    _, w = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="a")
    mine = tls_exporter(w.get_extra_info("ssl_object"), client)
    theirs = await asyncio.wait_for(got, 5)
    await _closed(w)
    srv.close()
    await srv.wait_closed()
    return theirs, mine


def test_both_ends_of_a_session_read_the_same_exporter_and_another_session_another(
    tmp_path: Path,
) -> None:
    assert exporter_mod.unavailable_reason() is None  # CPython 3.11 on Debian's OpenSSL 3
    server, client = _contexts(Pki(tmp_path))

    async def main() -> None:
        s1, c1 = await _exporters(server, client)
        s2, c2 = await _exporters(server, client)
        assert s1 == c1 and s2 == c2 and len(s1) == EXPORTER_BYTES
        assert s1 != s2  # the same certificates, another session: another exporter

    asyncio.run(main())


def test_the_exporter_is_refused_for_a_mismatched_context_or_no_session(tmp_path: Path) -> None:
    server, client = _contexts(Pki(tmp_path))
    other = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    async def main() -> None:
        async def close_it(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _closed(w)

        srv = await asyncio.start_server(close_it, "127.0.0.1", 0, ssl=server)
        port = srv.sockets[0].getsockname()[1]
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="a")
        with pytest.raises(Unavailable, match="not where it was expected"):
            tls_exporter(w.get_extra_info("ssl_object"), other)
        await _closed(w)
        srv.close()
        await srv.wait_closed()

    asyncio.run(main())
    with pytest.raises(Unavailable, match="no OpenSSL session"):
        tls_exporter(object(), client)  # type: ignore[arg-type]


def test_a_gm_node_refuses_to_start_where_the_exporter_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = Pki(tmp_path)
    gm = pki.gm_node("x", "roads")
    monkeypatch.setattr(exporter_mod, "_libssl", lambda: "the interpreter is PyPy 7.3")
    with pytest.raises(ConfigError, match=r"bound to the TLS session's exporter.*PyPy"):
        make_switch(pki, "x", "roads", **gm.switch_args())
    with pytest.raises(Unavailable, match="PyPy"):
        tls_exporter(object(), ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))  # type: ignore[arg-type]


def test_a_gm_proof_names_the_exporter_and_does_not_verify_in_another_session(
    tmp_path: Path,
) -> None:
    pki = Pki(tmp_path)
    signer = Signer.generate(SM2_SM3)
    cert = read_node_cert(
        pki.node("a", "water", node_key=NodeKey("sm2-sm3", signer.public_key))[0].read_bytes()
    )
    fp = bytes.fromhex(cert.fingerprint)
    session, other = hashlib.sha256(b"one").digest(), hashlib.sha256(b"two").digest()
    binding = Binding("c", bytes(32), fp, bytes(32), b"\1" * 32, b"\2" * 32, session)
    assert codec.decode(binding.message("dialler"))[0] == PROOF_TAG
    assert codec.decode(binding.message("dialler"))[-1] == session
    assert codec.decode(replace(binding, exporter=b"").message("dialler"))[-1] == "dialler"
    proof = signer.sign(binding.message("dialler"))
    check_proof(cert, binding, "dialler", proof)
    with pytest.raises(PeerRefused, match="made for another connection"):
        check_proof(cert, replace(binding, exporter=other), "dialler", proof)
