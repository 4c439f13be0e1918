"""Organisation CAs and node certificates: round trips, fields, refusals, encrypted keys."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from citychain.errors import ConfigError, ErrorCode, InvalidInput, KeystoreError
from citychain.p2p.certs import (
    decrypt_key_pem,
    encrypt_key_pem,
    generate_org_ca,
    issue_node_cert,
    node_uri,
    read_node_cert,
)


@pytest.fixture(scope="module")
def ca() -> tuple[bytes, bytes]:
    return generate_org_ca("water", "Water Department")


def test_ca_is_a_self_signed_ca(ca: tuple[bytes, bytes]) -> None:
    cert = x509.load_pem_x509_certificate(ca[0])
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)


def test_node_cert_round_trip(ca: tuple[bytes, bytes]) -> None:
    cert_pem, key_pem = issue_node_cert(ca[0], ca[1], "node-1", "city chain/1", "water")
    info = read_node_cert(cert_pem)
    assert (info.node_name, info.org_id, info.chain_id) == ("node-1", "water", "city chain/1")
    assert info.not_before < datetime.now(UTC) < info.not_after
    assert info.not_after - info.not_before == timedelta(days=825)
    assert len(info.fingerprint) == 64

    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca[0]))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        node_uri("city chain/1", "node-1")
    ]
    assert node_uri("city chain/1", "node-1") == "citychain://city%20chain%2F1/node-1"
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert key.public_key() == cert.public_key()


def test_explicit_validity_window(ca: tuple[bytes, bytes]) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    end = datetime(2021, 1, 1, tzinfo=UTC)
    info = read_node_cert(
        issue_node_cert(ca[0], ca[1], "n", "c", "water", not_before=start, not_after=end)[0]
    )
    assert (info.not_before, info.not_after) == (start, end)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"node_name": "bad name"}, "node name"),
        ({"node_name": "a@b"}, "node name"),
        ({"chain_id": ""}, "chain id"),
        ({"org_id": "roads"}, "cannot issue a certificate for organisation 'roads'"),
        ({"not_after": datetime(2000, 1, 1, tzinfo=UTC)}, "must be after not_before"),
        ({"not_before": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_issue_refuses(ca: tuple[bytes, bytes], kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {"node_name": "n", "chain_id": "c", "org_id": "water"}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=words):
        issue_node_cert(ca[0], ca[1], **args)  # type: ignore[arg-type]


def test_issue_refuses_non_ca_and_mismatched_key(ca: tuple[bytes, bytes]) -> None:
    node_cert, node_key = issue_node_cert(ca[0], ca[1], "n", "c", "water")
    with pytest.raises(ConfigError, match="not a CA"):
        issue_node_cert(node_cert, node_key, "m", "c", "water")
    _, other_key = generate_org_ca("water", "Another")
    with pytest.raises(ConfigError, match="does not belong"):
        issue_node_cert(ca[0], other_key, "m", "c", "water")


def test_read_refuses_non_node_certificates(ca: tuple[bytes, bytes]) -> None:
    with pytest.raises(InvalidInput, match="citychain:// URI"):
        read_node_cert(ca[0])  # a CA has no chain binding
    with pytest.raises(InvalidInput, match="not a PEM certificate"):
        read_node_cert(b"garbage")


def test_encrypted_key_needs_the_passphrase(ca: tuple[bytes, bytes], tmp_path: Path) -> None:
    cert_pem, key_pem = issue_node_cert(ca[0], ca[1], "node-1", "c", "water")
    enc = encrypt_key_pem(key_pem, "sésame ouvre-toi")
    assert b"ENCRYPTED PRIVATE KEY" in enc and enc != key_pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(enc, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(enc, password=b"wrong")
    key = serialization.load_pem_private_key(enc, password="sésame ouvre-toi".encode())
    assert key.public_key() == x509.load_pem_x509_certificate(cert_pem).public_key()

    # ssl opens the same file with the same passphrase, and refuses a wrong one.
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(enc)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem", password="sésame ouvre-toi")
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem", password="wrong")

    assert decrypt_key_pem(enc, "sésame ouvre-toi") == key_pem
    with pytest.raises(KeystoreError) as err:
        decrypt_key_pem(enc, "wrong")
    assert err.value.code is ErrorCode.WRONG_PASSPHRASE
    with pytest.raises(InvalidInput, match="not encrypted"):
        decrypt_key_pem(key_pem, "x")
    with pytest.raises(InvalidInput, match="already encrypted"):
        encrypt_key_pem(enc, "again")
    with pytest.raises(InvalidInput, match="must not be empty"):
        encrypt_key_pem(key_pem, "")
