"""Issue 13: on an sm2-sm3 network every PEM key at rest is SM4-CBC encrypted (PKCS#8 PBES2):
the nodes' TLS keys, the organisations' TLS CA keys and SM2 CA keys, from `net up`
(generate_network), `net add-org` (prepare_joining_org) and `citychain init` (init_home); an
Ed25519 network keeps AES-256-CBC. The keys still serve: `keys issue-cert` with the SM2 CA key,
node certificates from the TLS CA key."""

from __future__ import annotations

import random
import time
from pathlib import Path

from asn1crypto import keys as akeys  # type: ignore[import-untyped]
from asn1crypto import pem
from cli_helpers import run

from citychain.crypto import ED25519, SM2_SM3
from citychain.crypto.member_certs import verify_member_cert
from citychain.node.home import init_home
from citychain.node.testnet import NetworkLayout, generate_network
from citychain.p2p.certs import decrypt_key_pem, issue_node_cert

SM4_CBC = "1.2.156.10197.1.104.2"
AES_256_CBC = "2.16.840.1.101.3.4.1.42"


def cipher_oids(root: Path) -> dict[str, str]:
    """Every PEM private key under ``root``: its path -> the OID of its PBES2 cipher (read from
    the EncryptedPrivateKeyInfo, independently of citychain's code)."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.pem")):
        data = path.read_bytes()
        if b"PRIVATE KEY" not in data:
            continue
        kind, _, der = pem.unarmor(data)
        assert kind == "ENCRYPTED PRIVATE KEY", f"{path} is not encrypted"
        algorithm = akeys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
        assert algorithm["algorithm"].native == "pbes2"
        scheme = algorithm["parameters"]["encryption_scheme"]["algorithm"].dotted
        found[str(path.relative_to(root))] = scheme
    return found


def base_port() -> int:
    return random.randrange(20000, 32000, 10)


def test_a_gm_network_keeps_every_pem_key_under_sm4(tmp_path: Path) -> None:
    layout = generate_network(
        tmp_path / "gm", validators=2, orgs=2, base_port=base_port(), suite=SM2_SM3
    )
    r = run("net", "add-org", "org3", "--dir", str(layout.root))
    assert r.exit_code == 0, r.output
    oids = cipher_oids(layout.root)
    expected = {
        *(f"orgs/org{k}/{f}" for k in (1, 2, 3) for f in ("ca_key.pem", "gm_ca_key.pem")),
        *(f"node{i}/config/node_tls_key.pem" for i in (0, 1, 2)),
    }
    assert set(oids) == expected
    assert set(oids.values()) == {SM4_CBC}

    # The keys still serve: the TLS CA key issues a node certificate ...
    layout = NetworkLayout.load(layout.root)
    ca_key = decrypt_key_pem(layout.orgs[0].ca_key_file.read_bytes(), layout.passphrase)
    issue_node_cert(layout.orgs[0].ca_cert_file.read_bytes(), ca_key, "nodeX", "c", "org1")
    # ... and `keys issue-cert` certifies a member with the SM4-encrypted SM2 CA key.
    gm_ca = layout.orgs[0].gm_ca_cert_file
    out = tmp_path / "alice.cert.pem"
    r = run(
        "keys", "issue-cert", "alice", "--org", "org1", "--ca-cert", str(gm_ca),
        "--ca-key", str(gm_ca.with_name("gm_ca_key.pem")), "--home", str(layout.root),
        "--out", str(out),
        env={"CITYCHAIN_PASSPHRASE": layout.passphrase},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    info = verify_member_cert(
        out.read_bytes(), gm_ca.read_bytes(), org_id="org1", at_ms=int(time.time() * 1000)
    )
    assert info.roles == ("member",)


def test_an_ed25519_network_keeps_aes(tmp_path: Path) -> None:
    layout = generate_network(tmp_path / "ed", validators=1, orgs=1, base_port=base_port())
    oids = cipher_oids(layout.root)
    assert set(oids) == {"orgs/org1/ca_key.pem", "node0/config/node_tls_key.pem"}
    assert set(oids.values()) == {AES_256_CBC}


def test_init_of_a_gm_home_keeps_its_ca_keys_under_sm4(tmp_path: Path) -> None:
    init_home(tmp_path / "gm", suite=SM2_SM3, kdf_level="interactive", accounts=())
    assert cipher_oids(tmp_path / "gm") == {
        "orgs/org1/ca_key.pem": SM4_CBC,
        "orgs/org1/gm_ca_key.pem": SM4_CBC,
    }
    init_home(tmp_path / "ed", suite=ED25519, kdf_level="interactive", accounts=())
    assert cipher_oids(tmp_path / "ed") == {"orgs/org1/ca_key.pem": AES_256_CBC}
