"""`citychain keys issue-cert` on an sm2-sm3 chain: an SM2 CA issues an SM2 member certificate
for an SM2 account key (the CA key as an encrypted PEM or a citychain key file); a key and a CA
of different suites are refused with `wrong_suite`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cli_helpers import PASSPHRASE, run

from citychain.crypto import ED25519, Signer
from citychain.crypto.keystore import save_key
from citychain.crypto.member_certs import verify_member_cert
from citychain.crypto.sm2 import SM2_SM3
from citychain.crypto.sm2_certs import issue_sm2_ca, parse_sm2_cert, sm2_private_key_pem
from citychain.p2p.certs import generate_org_ca

ENV = {"CITYCHAIN_PASSPHRASE": PASSPHRASE}


def issue(name: str, ca: Path, key: Path, *extra: str) -> Any:
    return run(
        "keys", "issue-cert", name, "--org", "org1", "--ca-cert", str(ca), "--ca-key", str(key),
        *extra, env=ENV,
    )  # fmt: skip


def test_an_sm2_ca_issues_sm2_member_certificates(isolated_env: Path, tmp_path: Path) -> None:
    keys = isolated_env / "keys"
    keys.mkdir(parents=True)
    carol = Signer.generate(SM2_SM3)
    save_key(keys / "carol.json", carol, PASSPHRASE, kdf_level="interactive")
    ca_secret = SM2_SM3.generate_secret()
    ca_pem = issue_sm2_ca("org1", "Organisation 1", ca_secret)
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "ca_key.pem").write_bytes(sm2_private_key_pem(ca_secret, PASSPHRASE, rounds=2048))
    save_key(
        tmp_path / "ca_key.json", Signer(SM2_SM3, ca_secret), PASSPHRASE, kdf_level="interactive"
    )
    now = int(time.time() * 1000)

    r = issue("carol", tmp_path / "ca.pem", tmp_path / "ca_key.pem", "--roles", "member,auditor")
    assert r.exit_code == 0, r.output
    cert = (keys / "carol.cert.pem").read_bytes()
    info = verify_member_cert(cert, ca_pem, org_id="org1", at_ms=now)
    assert info.public_key == carol.public_key and info.roles == ("auditor", "member")
    assert parse_sm2_cert(cert).ext_key_usage == ("client_auth",)

    out = tmp_path / "from_keystore.pem"
    r = issue("carol", tmp_path / "ca.pem", tmp_path / "ca_key.json", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert verify_member_cert(out.read_bytes(), ca_pem, org_id="org1", at_ms=now).roles == (
        "member",
    )

    # Mixes of suites: an Ed25519 key under the SM2 CA, the SM2 key under an ECDSA CA.
    save_key(keys / "dave.json", Signer.generate(ED25519), PASSPHRASE, kdf_level="interactive")
    r = issue("dave", tmp_path / "ca.pem", tmp_path / "ca_key.pem")
    assert r.exit_code == 1
    assert "error [wrong_suite]: key dave is an ed25519 key" in r.stderr
    ecdsa_ca, ecdsa_key = generate_org_ca("org1", "Organisation 1")
    (tmp_path / "ecdsa.pem").write_bytes(ecdsa_ca)
    (tmp_path / "ecdsa_key.pem").write_bytes(ecdsa_key)
    r = issue("carol", tmp_path / "ecdsa.pem", tmp_path / "ecdsa_key.pem")
    assert r.exit_code == 1
    assert "error [wrong_suite]: key carol is an sm2-sm3 key" in r.stderr
    # The SM2 CA's certificate with the ECDSA CA's key: the key is of the other suite.
    r = issue("carol", tmp_path / "ca.pem", tmp_path / "ecdsa_key.pem")
    assert r.exit_code == 1 and "error [wrong_suite]" in r.stderr
