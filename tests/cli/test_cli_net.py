"""`citychain net` and the local network generator (citychain.node.testnet)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ports import free_base_port  # type: ignore[import-not-found]

from citychain.crypto.keystore import load_key
from citychain.errors import ConfigError
from citychain.node.config import NodeConfig
from citychain.node.home import DEMO_BALANCE
from citychain.node.processes import ProcessRef, find_node_processes, read_pids, stop_processes
from citychain.node.testnet import NetworkLayout, generate_network
from citychain.p2p.certs import read_node_cert
from citychain.types.genesis import ChainParams, Genesis

PASSPHRASE = "local net words"


def free_base(validators: int) -> int:
    """A base port whose node ports are claimed for this test run (tests/e2e/ports.py) and
    free now (nothing listens: nodes show as down)."""
    return int(free_base_port(validators))


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(scope="module")
def net4(tmp_path_factory: pytest.TempPathFactory) -> NetworkLayout:
    """4 validators of 2 organisations, generated once for the read-only checks."""
    out = tmp_path_factory.mktemp("net4") / "net"
    return generate_network(out, base_port=free_base(4), passphrase=PASSPHRASE)


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[NetworkLayout]:
    """A generated network nobody started; any node a test starts is stopped afterwards."""
    layout = generate_network(tmp_path / "net", validators=1, orgs=1, base_port=free_base(1))
    try:
        yield layout
    finally:
        stop_processes([*read_pids(layout), *find_node_processes(layout)], grace=10)


# -- generation -----------------------------------------------------------------------------
def test_layout_files_and_modes(net4: NetworkLayout) -> None:
    root = net4.root
    assert NetworkLayout.load(root) == net4
    assert json.loads((root / "network.json").read_text())["chain_id"] == "citychain-local"
    assert [n.name for n in net4.nodes] == ["node0", "node1", "node2", "node3"]
    assert [n.org for n in net4.nodes] == ["org1", "org2", "org1", "org2"]
    assert [(o.id, o.nodes) for o in net4.orgs] == [
        ("org1", ("node0", "node2")),
        ("org2", ("node1", "node3")),
    ]
    secrets = [net4.passphrase_file, net4.keys_dir / "alice.json", net4.keys_dir / "bob.json"]
    for org in net4.orgs:
        assert mode(org.ca_cert_file) & 0o077  # a certificate is public
        secrets.append(org.ca_key_file)
        assert b"ENCRYPTED PRIVATE KEY" in org.ca_key_file.read_bytes()
    for n in net4.nodes:
        config = n.home / "config"
        for name in ("node.toml", "genesis.json", "node_cert.pem"):
            assert (config / name).is_file()
        secrets += [config / "passphrase", config / "node_key.json", config / "node_tls_key.pem"]
        assert b"ENCRYPTED PRIVATE KEY" in (config / "node_tls_key.pem").read_bytes()
    for path in secrets:
        assert mode(path) == 0o600, path
        if path.name == "passphrase":
            assert path.read_text().strip() == PASSPHRASE


def test_every_node_config_loads_with_its_ports_and_peers(net4: NetworkLayout) -> None:
    base = net4.nodes[0].p2p_port
    for n in net4.nodes:
        c = NodeConfig.load(n.home)
        assert c.node.name == n.name
        assert (c.api.host, c.api.port) == ("127.0.0.1", base + 10 * n.index + 1)
        assert (c.p2p.listen_host, c.p2p.listen_port) == ("127.0.0.1", base + 10 * n.index)
        assert n.api_url == f"http://127.0.0.1:{c.api.port}" and n.p2p_port == c.p2p.listen_port
        assert c.p2p.org_id == n.org
        assert c.path(c.p2p.cert_file) == n.home / "config" / "node_cert.pem"
        assert c.path(c.p2p.tls_key_file) == n.home / "config" / "node_tls_key.pem"
        peers = c.p2p.persistent_peers.split(",")
        assert peers == [f"{m.name}@127.0.0.1:{m.p2p_port}" for m in net4.nodes if m != n]
        assert not any(p.startswith(f"{n.name}@") for p in peers)


def test_genesis_is_identical_and_lists_validators_orgs_and_accounts(
    net4: NetworkLayout,
) -> None:
    texts = {(n.home / "config" / "genesis.json").read_bytes() for n in net4.nodes}
    texts.add(net4.genesis_file.read_bytes())
    assert len(texts) == 1
    g = Genesis.load(net4.genesis_file)
    assert g.chain_id == net4.chain_id
    assert [(v.name, v.power) for v in g.validators] == [(f"node{i}", 10) for i in range(4)]
    assert [(o.id, o.name) for o in g.organisations] == [
        ("org1", "Organisation 1"),
        ("org2", "Organisation 2"),
    ]
    assert g.params == ChainParams()
    for n, v in zip(net4.nodes, g.validators, strict=True):
        key = load_key(n.home / "config" / "node_key.json", PASSPHRASE)
        assert key.public_key == v.public_key
        assert n.validator_public_key == v.public_key.hex()
    alice = load_key(net4.keys_dir / "alice.json", PASSPHRASE)
    bob = load_key(net4.keys_dir / "bob.json", PASSPHRASE)
    token = g.contracts["token"]
    assert token["issuers"] == [{"hex": alice.address.hex()}]
    assert token["balances"] == {
        alice.address.hex(): DEMO_BALANCE,
        bob.address.hex(): DEMO_BALANCE,
    }
    # Governance: registered-key mode, one admin key per organisation, the demo accounts
    # members of the organisations round-robin, each validator tied to its organisation.
    assert g.identity_mode == "key"
    for org in g.organisations:
        admin = load_key(net4.keys_dir / f"{org.id}-admin.json", PASSPHRASE)
        assert org.admins == (admin.public_key,)
    members = {m.public_key: o.id for o in g.organisations for m in o.members}
    assert members == {alice.public_key: "org1", bob.public_key: "org2"}
    assert [org for _, org in g.validator_orgs] == ["org1", "org2", "org1", "org2"]


def test_add_org_prepares_a_node_that_trusts_its_own_ca_until_admitted(
    stopped: NetworkLayout,
) -> None:
    r = run("net", "add-org", "org3", "--name", "Parks Department", "--dir", str(stopped.root))
    assert r.exit_code == 0, r.output
    assert "gov propose add_org" in r.output and "add_validator" in r.output
    layout = NetworkLayout.load(stopped.root)
    org3 = next(o for o in layout.orgs if o.id == "org3")
    node = layout.node(org3.nodes[0])
    assert node.index == len(stopped.nodes) and node.org == "org3"
    config = NodeConfig.load(node.home)
    assert config.p2p.org_id == "org3"
    assert config.path(config.p2p.ca_cert_file).read_bytes() == org3.ca_cert_file.read_bytes()
    assert read_node_cert((node.home / config.p2p.cert_file).read_bytes()).org_id == "org3"
    load_key(org3.admin_key_file, stopped.passphrase)
    # the chain itself is unchanged: genesis does not know org3
    assert "org3" not in {
        o.id for o in Genesis.load(node.home / "config" / "genesis.json").organisations
    }
    again = run("net", "add-org", "org3", "--dir", str(stopped.root))
    assert again.exit_code == 1 and "already has organisation 'org3'" in again.output


def test_a_gm_network_gives_every_organisation_an_sm2_ca_and_every_node_an_sm2_certificate(
    tmp_path: Path,
) -> None:
    """net up --crypto sm2's layout, and net add-org on it: SM2 CAs in genesis (and for the
    joining organisation in its node's config until admitted), SM2 node certificates for each
    node's own key from its organisation's SM2 CA, the CA key as encrypted PKCS#8."""
    from citychain.crypto import SM2_SM3
    from citychain.crypto.sm2_certs import sm2_secret_from_pem, verify_sm2_cert

    layout = generate_network(
        tmp_path / "gm", validators=2, orgs=2, base_port=free_base(3), suite=SM2_SM3
    )
    g = Genesis.load(layout.genesis_file)
    assert g.crypto_params == {"distid": "1234567812345678"}
    now = int(time.time() * 1000)
    for node in layout.nodes:
        org = next(o for o in g.organisations if o.id == node.org)
        config = NodeConfig.load(node.home)
        cert = verify_sm2_cert(
            (node.home / config.p2p.gm_cert_file).read_bytes(), org.gm_ca_cert.encode(), at_ms=now
        )
        assert (cert.subject_cn, cert.subject_o) == (node.name, node.org)
        assert cert.public_key.hex() == node.validator_public_key
    org1 = layout.orgs[0]
    ca_key = sm2_secret_from_pem(
        org1.gm_ca_cert_file.with_name("gm_ca_key.pem").read_bytes(), layout.passphrase
    )
    assert (
        SM2_SM3.public_key(ca_key)
        == verify_sm2_cert(
            org1.gm_ca_cert_file.read_bytes(), org1.gm_ca_cert_file.read_bytes(), at_ms=now
        ).public_key
    )
    r = run("net", "add-org", "org3", "--dir", str(layout.root))
    assert r.exit_code == 0, r.output
    assert "--gm-ca-cert" in r.output
    joined = NetworkLayout.load(layout.root)
    org3 = next(o for o in joined.orgs if o.id == "org3")
    node = joined.node(org3.nodes[0])
    config = NodeConfig.load(node.home)
    own_ca = config.path(config.p2p.gm_ca_cert_file).read_bytes()
    assert own_ca == org3.gm_ca_cert_file.read_bytes()
    cert = verify_sm2_cert((node.home / config.p2p.gm_cert_file).read_bytes(), own_ca, at_ms=now)
    assert cert.public_key.hex() == node.validator_public_key and cert.subject_o == "org3"


def test_certificates_chain_to_their_organisations_ca(net4: NetworkLayout) -> None:
    g = Genesis.load(net4.genesis_file)
    cas = {o.id: x509.load_pem_x509_certificate(o.ca_cert.encode()) for o in g.organisations}
    for org in net4.orgs:
        assert org.ca_cert_file.read_text() == next(
            o.ca_cert for o in g.organisations if o.id == org.id
        )
        ca_key = serialization.load_pem_private_key(
            org.ca_key_file.read_bytes(), password=PASSPHRASE.encode()
        )
        assert ca_key.public_key() == cas[org.id].public_key()
    for n in net4.nodes:
        pem = (n.home / "config" / "node_cert.pem").read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        cert.verify_directly_issued_by(cas[n.org])  # raises if the signature does not check
        other = next(o for o in cas if o != n.org)
        with pytest.raises(ValueError):
            cert.verify_directly_issued_by(cas[other])  # issuer name differs
        info = read_node_cert(pem)
        assert (info.node_name, info.org_id, info.chain_id) == (n.name, n.org, net4.chain_id)
        # What the transport does with them: the encrypted TLS key opens with the passphrase.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_cert_chain(
            n.home / "config" / "node_cert.pem",
            n.home / "config" / "node_tls_key.pem",
            password=PASSPHRASE,
        )


def test_random_passphrase_params_and_peer_routing(tmp_path: Path) -> None:
    params = ChainParams(timeout_propose_ms=700)
    layout = generate_network(
        tmp_path / "net",
        validators=3,
        orgs=3,
        chain_id="routed",
        base_port=30000,
        accounts=("carol",),
        params=params,
        peer_address=lambda i, j: ("127.0.0.1", 40000 + 10 * i + j),
    )
    passphrase = layout.passphrase
    assert len(passphrase) >= 24
    for n in layout.nodes:
        assert (n.home / "config" / "passphrase").read_text().strip() == passphrase
        peers = NodeConfig.load(n.home).p2p.persistent_peers.split(",")
        i = n.index
        assert peers == [f"node{j}@127.0.0.1:{40000 + 10 * i + j}" for j in range(3) if j != i]
    g = Genesis.load(layout.genesis_file)
    assert g.params == params and g.chain_id == "routed" and len(g.organisations) == 3
    assert layout.accounts == ("carol",)
    load_key(layout.keys_dir / "carol.json", passphrase)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validators": 0}, "at least one validator"),
        ({"orgs": 0}, "at least one organisation"),
        ({"validators": 2, "orgs": 3}, "3 organisations but only 2 validators"),
        ({"base_port": 80}, "ports 80..111 are out of range"),
        ({"base_port": 65510}, "ports 65510..65541 are out of range"),
        ({"chain_id": ""}, "chain id must be 1 to 64"),
        ({"accounts": ("alice", "alice")}, "different from each other"),
        ({"accounts": ("../x",)}, "account name '../x'"),
        ({"passphrase": ""}, "must not be empty"),
        ({"kdf_level": "fast"}, "unknown kdf_level"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_network(tmp_path / "net", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "net").exists()
    assert list(tmp_path.iterdir()) == []  # no staging directory left behind


def test_an_occupied_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "net"
    generate_network(out, validators=1, orgs=1)
    with pytest.raises(ConfigError, match="already holds a network"):
        generate_network(out, validators=1, orgs=1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not empty and holds no network"):
        generate_network(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate_network(empty, validators=1, orgs=1).root == empty.resolve()


# -- the commands -----------------------------------------------------------------------------
def test_up_refuses_bad_arguments_in_plain_words(tmp_path: Path) -> None:
    out = tmp_path / "net"
    r = run("net", "up", "--dir", str(out), "--validators", "2", "--orgs", "3")
    assert r.exit_code == 1
    assert "error [bad_config]: every organisation needs at least one validator" in r.output
    r = run("net", "up", "--dir", str(out), "--base-port", "70000")
    assert r.exit_code == 1 and "out of range" in r.output
    assert not out.exists()


def test_status_of_a_network_that_is_not_running(net4: NetworkLayout) -> None:
    r = run("net", "status", "--dir", str(net4.root))
    assert r.exit_code == 0, r.output  # the report is the result, whatever the nodes do
    for n in net4.nodes:
        assert f"{n.name} down: connection refused" in r.stdout
    assert "4 of 4 node(s) down" in r.stdout
    doc = json.loads(run("net", "status", "--dir", str(net4.root), "--json").stdout)
    assert doc["chain_id"] == net4.chain_id and doc["validators"] == 4
    assert [(n["name"], n["up"], n["process"]) for n in doc["nodes"]] == [
        (f"node{i}", False, "not started") for i in range(4)
    ]
    assert all(n["reason"] == "connection refused" for n in doc["nodes"])


def test_status_and_down_without_a_network(tmp_path: Path) -> None:
    r = run("net", "status", "--dir", str(tmp_path / "none"))
    assert r.exit_code == 1
    assert "error [bad_config]: no network in" in r.output and "citychain net up" in r.output
    for _ in range(2):
        r = run("net", "down", "--dir", str(tmp_path / "none"))
        assert r.exit_code == 0 and "nothing to stop" in r.stdout


def test_down_is_idempotent_and_clean_deletes(stopped: NetworkLayout) -> None:
    for _ in range(2):
        r = run("net", "down", "--dir", str(stopped.root))
        assert r.exit_code == 0 and "is running" in r.stdout
    stopped.pids_file.write_text(json.dumps({"node0": {"pid": 2**22 + 7, "home": "node0"}}))
    r = run("net", "down", "--dir", str(stopped.root))  # a stale pid is not signalled
    assert r.exit_code == 0 and "is running" in r.stdout
    assert not stopped.pids_file.exists()
    r = run("net", "down", "--dir", str(stopped.root), "--clean")
    assert r.exit_code == 0 and "deleted" in r.stdout
    assert not stopped.root.exists()


def test_a_reused_pid_is_never_signalled(stopped: NetworkLayout) -> None:
    me = ProcessRef("node0", os.getpid(), stopped.nodes[0].home)  # alive, but not a node
    assert not me.alive()
    assert stop_processes([me], grace=0.1) == {"node0": "not running"}


def test_up_refuses_ports_in_use(stopped: NetworkLayout) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", stopped.nodes[0].api_port))
        s.listen()
        r = run("net", "up", "--dir", str(stopped.root))
    assert r.exit_code == 1
    assert f"ports already in use by another program: {stopped.nodes[0].api_port}" in r.output
    assert not stopped.pids_file.exists()


@pytest.mark.slow
def test_up_names_a_node_that_does_not_come_up(stopped: NetworkLayout) -> None:
    toml = stopped.nodes[0].home / "config" / "node.toml"
    toml.write_text(toml.read_text() + "\n[nonsense]\n")
    r = run("net", "up", "--dir", str(stopped.root), "--timeout", "30")
    assert r.exit_code == 1
    assert "node0 did not come up: exited with code 1" in r.output
    assert "unknown section" in r.output  # the tail of its log
    assert "error [unavailable]: 1 of 1 node(s) did not come up (node0)" in r.output


@pytest.mark.slow
def test_up_status_down_with_a_real_node(stopped: NetworkLayout) -> None:
    """One validator, one organisation: a network that runs without peers."""
    d = str(stopped.root)
    r = run("net", "up", "--dir", d, "--validators", "3")
    assert r.exit_code == 0, r.output
    assert "--validators only shape a new network" in r.stdout
    assert "node0" in r.stdout and stopped.nodes[0].api_url in r.stdout
    assert "citychain net status" in r.stdout and "citychain net down" in r.stdout
    [proc] = read_pids(stopped)
    assert proc.alive() and str(proc.pid) in r.stdout

    r = run("net", "up", "--dir", d)
    assert r.exit_code == 0 and "already running: node0" in r.stdout
    assert [p.pid for p in read_pids(stopped)] == [proc.pid]

    doc = json.loads(run("net", "status", "--dir", d, "--json").stdout)
    [node] = doc["nodes"]
    assert node["up"] is True and node["process"] == "running" and node["pid"] == proc.pid
    assert isinstance(node["height"], int)
    r = run("net", "status", "--dir", d)
    assert r.exit_code == 0 and "node0" in r.stdout and "node(s) down" not in r.stdout

    r = run("net", "down", "--dir", d)
    assert r.exit_code == 0 and "node0    stopped" in r.stdout
    assert not proc.alive()
    assert not stopped.pids_file.exists()

    before = Genesis.load(stopped.genesis_file)
    base = str(free_base(1))
    r = run(
        "net", "up", "--dir", d, "--fresh", "--orgs", "1", "--validators", "1", "--base-port", base
    )
    try:
        assert r.exit_code == 0, r.output
        assert "deleted the old network" in r.stdout
        assert Genesis.load(stopped.genesis_file).validators != before.validators
    finally:
        assert run("net", "down", "--dir", d, "--clean").exit_code == 0
