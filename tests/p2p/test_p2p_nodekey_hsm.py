"""Issue 15.3: a node whose key is in a PKCS#11 module (SoftHSM2, a fresh token in a temp dir)
proves it on every p2p connection, and a copy of its disk is not enough to connect as it.

Node ``a`` keeps its validator key in the module; its certificate names that key. Node ``b``
keeps its key in a file and its certificate names it too. They connect, whichever dials.
Then a thief holding ``a``'s TLS key file, passphrase and certificate, but not the module,
tries to connect to ``b`` as ``a``: citychain itself refuses to start that way, and a client
changed to skip the check is refused by ``b`` with ``node_key`` ("node key not proven"), in
the same words on both sides, whichever side dials. Last, ``citychain net add-org --signer
pkcs11`` makes a joining node's key in the module and a certificate that names it.

SoftHSM2 is not optional: without it these tests fail and say to run scripts/test.sh.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from p2p_net import (
    Inbox,
    Pki,
    addr,
    eventually,
    free_ports,
    lines,
    make_switch,
    run,
    stop_all,
)

from citychain.crypto import ED25519, Signer
from citychain.crypto.pkcs11 import Pkcs11Signer, generate_key, open_signer
from citychain.errors import ConfigError
from citychain.p2p import switch as switch_module
from citychain.p2p.certs import NodeKey
from citychain.p2p.switch import Switch

PIN = "4321"
MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
INIT_TOKEN = ("softhsm2-util", "--init-token", "--free")
NEED = "SoftHSM2 is not installed: run scripts/test.sh (it installs Debian's softhsm2)"


def softhsm_module() -> str:
    if shutil.which("softhsm2-util") is None:
        pytest.fail(NEED)
    for path in MODULES:
        if Path(path).exists():
            return path
    pytest.fail(NEED)


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Signer]:
    """Node a's validator key, made inside a fresh SoftHSM2 token."""
    module = softhsm_module()
    root = tmp_path_factory.mktemp("hsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    for label in ("p2p", "join"):  # a and the joining node (one login per token)
        made = subprocess.run(
            [*INIT_TOKEN, "--label", label, "--pin", PIN, "--so-pin", "87654321"],
            capture_output=True,
            text=True,
            env={**os.environ, "SOFTHSM2_CONF": str(conf)},
            check=False,
        )
        assert made.returncode == 0, made.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        # SoftHSM2 reads its configuration when the library is initialised, once per process:
        # start it again on our token, and leave it finalised for the next test module.
        pkcs11.lib(module).reinitialize()
        generate_key(module, "p2p", "node-a", PIN)
        signer = open_signer(module, "p2p", "node-a", PIN)
        try:
            yield signer
        finally:
            signer.close()
            pkcs11.lib(module).finalize()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def key_of(signer: Signer) -> NodeKey:
    return NodeKey(signer.suite.name, signer.public_key)


B_KEY = Signer.generate(ED25519)


def test_a_node_whose_key_is_in_the_module_connects(pki: Pki, hsm: Pkcs11Signer) -> None:
    a_files = pki.node("a", "water", node_key=key_of(hsm))
    b_files = pki.node("b", "roads", node_key=key_of(B_KEY))

    async def main(a_dials: bool) -> None:
        a_port, b_port = free_ports(2)
        a = make_switch(
            pki,
            "a",
            "water",
            port=a_port,
            files=a_files,
            node_signer=hsm,
            peers=[addr("b", b_port)] if a_dials else [],
        )
        b = make_switch(
            pki,
            "b",
            "roads",
            port=b_port,
            files=b_files,
            node_signer=B_KEY,
            peers=[] if a_dials else [addr("a", a_port)],
        )
        inbox = Inbox().attach(b, 7)
        try:
            await a.start()
            await b.start()
            await eventually(lambda: a.connected() == ["b"] and b.connected() == ["a"])
            assert a.send("b", 7, b"signed in the module")
            await eventually(lambda: inbox.got == [("a", 7, b"signed in the module")])
            assert a.peers()[0].direction == ("out" if a_dials else "in")
        finally:
            await stop_all(a, b)

    run(main(a_dials=True))
    run(main(a_dials=False))


def _thief(pki: Pki, port: int, files: tuple[Path, Path], b_port: int) -> Switch:
    return make_switch(pki, "a", "water", port=port, files=files, peers=[addr("b", b_port)])


@pytest.mark.parametrize("holds", ["nothing", "a software key"])
def test_a_copy_of_the_tls_key_without_the_module_is_refused(
    pki: Pki,
    hsm: Pkcs11Signer,
    holds: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")
    a_files = pki.node("a", "water", node_key=key_of(hsm))  # a's disk: cert, TLS key file
    b_files = pki.node("b", "roads", node_key=key_of(B_KEY))
    thief_port, b_port = free_ports(2)
    # citychain itself will not run a node whose certificate names a key it does not hold.
    with pytest.raises(ConfigError) as refused:
        _thief(pki, thief_port, a_files, b_port)
    assert f"names node key {key_of(hsm)} but this node has no node signer" in (
        refused.value.message
    )
    # A client changed to skip that check sends no proof, or one signed by another key.
    monkeypatch.setattr(switch_module, "check_signer", lambda *args: None)
    thief = make_switch(
        pki,
        "a",
        "water",
        port=thief_port,
        files=a_files,
        peers=[addr("b", b_port)],
        node_signer=None if holds == "nothing" else Signer.generate(ED25519),
    )
    b = make_switch(
        pki,
        "b",
        "roads",
        port=b_port,
        files=b_files,
        node_signer=B_KEY,
        peers=[addr("a", thief_port)],
    )
    detail = (
        "sent no proof that it holds it"
        if holds == "nothing"
        else "does not verify for this connection"
    )

    def said(node: str, start: str) -> list[str]:
        return [
            m
            for m in lines(caplog, node, logging.WARNING)
            if m.startswith(start) and "node key not proven" in m and detail in m
        ]

    async def main() -> None:
        try:
            await thief.start()
            await b.start()
            # b refuses a both as acceptor (the thief dialled) and as dialler (b dialled).
            as_dialler = f"refused peer a at 127.0.0.1:{thief_port}: "
            await eventually(
                lambda: (
                    any(m.startswith(as_dialler) for m in said("b", "refused peer a"))
                    and any(not m.startswith(as_dialler) for m in said("b", "refused peer a"))
                    and said("a", "peer b at 127.0.0.1:") != []
                ),
                timeout=10,
            )
            assert b.connected() == []
        finally:
            await stop_all(thief, b)

    run(main())
    b_says = said("b", "refused peer a at 127.0.0.1:")
    assert all(": node key not proven — " in m for m in b_says), b_says
    assert f"node key {key_of(hsm)}" in b_says[0]
    thief_hears = said("a", "peer b at 127.0.0.1:")
    assert "refused our node key proof: node key not proven — " in thief_hears[0], thief_hears
    assert b.peers()[0].last_error == "refused: node key not proven"


def test_a_joining_node_gets_its_key_made_in_the_module_and_named_in_its_certificate(
    tmp_path: Path, hsm: Pkcs11Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`citychain net add-org --signer pkcs11`: the way to bring a node whose key is in a
    module into a network (its organisation's CA names that key in its certificate)."""
    from typer.testing import CliRunner

    from citychain.cli.main import app
    from citychain.node.config import NodeConfig
    from citychain.node.keys import load_validator_key
    from citychain.node.testnet import NetworkLayout, generate_network
    from citychain.p2p.certs import read_node_cert
    from citychain.p2p.nodekey import check_signer

    net = generate_network(tmp_path / "net", validators=1, orgs=1, base_port=free_ports(1)[0])
    monkeypatch.setenv("CITYCHAIN_PKCS11_PIN", PIN)
    args = ["net", "add-org", "org9", "--dir", str(net.root), "--signer", "pkcs11"]
    args += ["--pkcs11-module", softhsm_module()]
    args += ["--pkcs11-token", "join", "--pkcs11-key", "node-org9"]
    made = CliRunner().invoke(app, args)
    assert made.exit_code == 0, made.output
    assert "inside the PKCS#11 token 'join'" in made.output
    node = NetworkLayout.load(net.root).node("node1")
    assert not (node.home / "config" / "node_key.json").exists()  # the key is in the token only
    config = NodeConfig.load(node.home)
    assert config.keys.signer == "pkcs11" and config.keys.pkcs11_key_label == "node-org9"
    named = read_node_cert((node.home / config.p2p.cert_file).read_bytes()).node_key
    assert named is not None and named.public_key.hex() == node.validator_public_key
    assert f"--public-key {node.validator_public_key}" in made.output
    signer = load_validator_key(config)  # what the node opens at start: the module's key
    assert isinstance(signer, Pkcs11Signer)
    try:
        check_signer(named, signer, "node_cert.pem")  # so its switch starts and proves it
    finally:
        signer.close()
