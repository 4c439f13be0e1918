"""Encrypted PKCS#8 key files with SM4-CBC or AES-256-CBC (citychain.crypto.pkcs8), and the
callers that write and read them: interop with the OpenSSL CLI both ways, Python's ssl loading
an SM4-encrypted TLS key, the refusals (wrong passphrase, unknown cipher)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from asn1crypto import keys as akeys  # type: ignore[import-untyped]
from asn1crypto import pem
from cryptography.hazmat.primitives import serialization

from citychain.crypto.pkcs8 import cipher_for_suite, decrypt_pkcs8, encrypt_pkcs8
from citychain.crypto.sm2 import SM2_SM3
from citychain.crypto.sm2_certs import sm2_private_key_pem, sm2_secret_from_pem
from citychain.errors import ErrorCode, InvalidInput, KeystoreError
from citychain.p2p.certs import decrypt_key_pem, encrypt_key_pem, generate_org_ca, issue_node_cert
from citychain.p2p.tls import load_identity

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

PASS = "pässwort sm4"
SM4_OID = "1.2.156.10197.1.104.2"
AES256_OID = "2.16.840.1.101.3.4.1.42"


def scheme_oid(key_pem: bytes) -> str:
    """The encryption scheme OID of an ENCRYPTED PRIVATE KEY, read independently of the code
    under test."""
    kind, _, der = pem.unarmor(key_pem)
    assert kind == "ENCRYPTED PRIVATE KEY"
    info = akeys.EncryptedPrivateKeyInfo.load(der)
    assert info["encryption_algorithm"]["algorithm"].native == "pbes2"
    return str(info["encryption_algorithm"]["parameters"]["encryption_scheme"]["algorithm"].dotted)


def openssl(*args: str, data: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def p256_pkcs8_der() -> bytes:
    _, key_pem = generate_org_ca("org1", "Organisation 1")
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_openssl_reads_what_we_write_with_sm4_and_aes(tmp_path: Path) -> None:
    plain = p256_pkcs8_der()
    sm2_secret = SM2_SM3.generate_secret()
    files = {
        "p256_sm4": encrypt_pkcs8(plain, PASS, cipher="sm4-cbc", rounds=2048),
        "p256_aes": encrypt_pkcs8(plain, PASS, cipher="aes-256-cbc", rounds=2048),
        "sm2_sm4": sm2_private_key_pem(sm2_secret, PASS, rounds=2048, cipher="sm4-cbc"),
    }
    assert scheme_oid(files["p256_sm4"]) == SM4_OID == scheme_oid(files["sm2_sm4"])
    assert scheme_oid(files["p256_aes"]) == AES256_OID
    plains = {"p256": pem.armor("PRIVATE KEY", plain), "sm2": sm2_private_key_pem(sm2_secret)}
    for name, data in files.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
        (tmp_path / "plain.pem").write_bytes(plains[name[:4].rstrip("_")])
        # OpenSSL's DER of the key from our encrypted file is its DER of the plain key.
        out = openssl(
            "pkey",
            "-in",
            str(tmp_path / f"{name}.pem"),
            "-passin",
            f"pass:{PASS}",
            "-outform",
            "DER",
        )
        assert out == openssl("pkey", "-in", str(tmp_path / "plain.pem"), "-outform", "DER")
        # ... and refuses a wrong passphrase.
        proc = subprocess.run(
            ["openssl", "pkey", "-in", str(tmp_path / f"{name}.pem"), "-passin", "pass:wrong"],
            capture_output=True,
            timeout=30,
        )
        assert proc.returncode != 0
        # We read our own files back.
        assert decrypt_pkcs8(data, PASS) == pem.unarmor(plains[name[:4].rstrip("_")])[2]


def test_we_read_what_openssl_writes_with_sm4(tmp_path: Path) -> None:
    openssl("genpkey", "-algorithm", "SM2", "-out", str(tmp_path / "sm2.pem"))
    openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        str(tmp_path / "p256.pem"),
    )
    for name, prf in (("sm2", "hmacWithSHA256"), ("p256", "hmacWithSHA512")):
        enc = openssl(
            "pkcs8",
            "-topk8",
            "-v2",
            "sm4-cbc",
            "-v2prf",
            prf,
            "-in",
            str(tmp_path / f"{name}.pem"),
            "-passout",
            f"pass:{PASS}",
        )
        assert scheme_oid(enc) == SM4_OID
        plain = openssl(
            "pkcs8", "-topk8", "-nocrypt", "-in", str(tmp_path / f"{name}.pem"), "-outform", "DER"
        )
        assert decrypt_pkcs8(enc, PASS) == plain
        if name == "sm2":
            assert sm2_secret_from_pem(enc, PASS) == sm2_secret_from_pem(
                (tmp_path / "sm2.pem").read_bytes()
            )
        else:
            assert decrypt_key_pem(enc, PASS) == pem.armor("PRIVATE KEY", plain)


def test_python_ssl_loads_an_sm4_encrypted_tls_key(tmp_path: Path) -> None:
    ca_cert, ca_key = generate_org_ca("org1", "Organisation 1")
    # The CA key itself, SM4-encrypted, still issues node certificates once decrypted.
    enc_ca = encrypt_key_pem(ca_key, PASS, cipher="sm4-cbc")
    assert scheme_oid(enc_ca) == SM4_OID
    cert, tls_key = issue_node_cert(ca_cert, decrypt_key_pem(enc_ca, PASS), "node0", "c", "org1")
    enc = encrypt_key_pem(tls_key, PASS, cipher="sm4-cbc")
    assert scheme_oid(enc) == SM4_OID and decrypt_key_pem(enc, PASS) == tls_key
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(enc)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem", password=PASS)
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem", password="wrong")
    # The node's own loader (which checks the passphrase first, in words).
    load_identity(
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), tmp_path / "cert.pem", tmp_path / "key.pem", PASS
    )
    with pytest.raises(KeystoreError) as err:
        load_identity(
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
            tmp_path / "cert.pem",
            tmp_path / "key.pem",
            "wrong",
        )
    assert err.value.code is ErrorCode.WRONG_PASSPHRASE and "key.pem" in err.value.message


def test_refusals() -> None:
    plain = p256_pkcs8_der()
    enc = encrypt_pkcs8(plain, PASS, cipher="sm4-cbc", rounds=2048)
    sm2_enc = sm2_private_key_pem(SM2_SM3.generate_secret(), PASS, rounds=2048, cipher="sm4-cbc")
    for call in (
        lambda: decrypt_pkcs8(enc, "wrong"),
        lambda: decrypt_key_pem(enc, "wrong"),
        lambda: sm2_secret_from_pem(sm2_enc, "wrong"),
    ):
        with pytest.raises(KeystoreError) as err:
            call()
        assert err.value.code is ErrorCode.WRONG_PASSPHRASE

    # Ciphers not written: named, bad_arguments.
    for call in (
        lambda: encrypt_pkcs8(plain, PASS, cipher="des-cbc", rounds=2048),  # type: ignore[arg-type]
        lambda: encrypt_key_pem(decrypt_key_pem(enc, PASS), PASS, cipher="rc4"),  # type: ignore[arg-type]
        lambda: sm2_private_key_pem(SM2_SM3.generate_secret(), PASS, cipher="aes-128-cbc"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInput, match="unknown key file cipher") as bad:
            call()
        assert bad.value.code is ErrorCode.BAD_ARGUMENTS
    # A cipher not read: the file names it (an OID of SM4's length, one arc changed).
    kind, _, der = pem.unarmor(enc)
    sm4_oid_der = bytes.fromhex("06082a811ccf55016802")
    assert der.count(sm4_oid_der) == 1
    other = pem.armor(kind, der.replace(sm4_oid_der, sm4_oid_der[:-1] + b"\x09"))
    for call in (lambda: decrypt_pkcs8(other, PASS), lambda: decrypt_key_pem(other, PASS)):
        with pytest.raises(InvalidInput, match=r"1\.2\.156\.10197\.1\.104\.9") as bad:
            call()
        assert bad.value.code is ErrorCode.BAD_ARGUMENTS

    with pytest.raises(InvalidInput, match="empty"):
        encrypt_pkcs8(plain, "", cipher="sm4-cbc")
    with pytest.raises(InvalidInput, match="rounds"):
        encrypt_pkcs8(plain, PASS, cipher="sm4-cbc", rounds=0)
    with pytest.raises(InvalidInput, match="not a PKCS#8"):
        encrypt_pkcs8(b"\x30\x03\x02\x01\x00", PASS, cipher="sm4-cbc", rounds=2048)
    with pytest.raises(InvalidInput, match="a PEM PRIVATE KEY block"):
        decrypt_pkcs8(pem.armor("PRIVATE KEY", plain), PASS)
    with pytest.raises(InvalidInput) as big:
        decrypt_pkcs8(b"\x30" * 20_000, PASS)
    assert big.value.code is ErrorCode.TOO_LARGE
    nested = b"\x30\x80" * 40  # deeper than any key file, refused before asn1crypto recurses
    with pytest.raises(InvalidInput, match="nest"):
        decrypt_pkcs8(nested, PASS)


def test_the_suite_decides_the_cipher() -> None:
    assert cipher_for_suite("sm2-sm3") == "sm4-cbc"
    assert cipher_for_suite("ed25519") == "aes-256-cbc"
