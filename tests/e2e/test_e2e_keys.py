"""Issue 15 part 3: validator keys a copied disk does not give away.

* A node on a non-demo home refuses to start with a plaintext passphrase file beside its key
  (one line naming the file and the way out); it starts once the passphrase comes from stdin,
  or once node.toml says in words that this is a test network.
* A validator key inside a PKCS#11 module (SoftHSM2 from Debian, a fresh token in a temp dir):
  it signs votes through the private validator (double-sign protection in front of the
  module) that verify with its public key, and a node whose ``[keys] signer = "pkcs11"``
  produces blocks with it.

SoftHSM2 is not optional: without it these tests fail and say to run scripts/test.sh.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nodeproc import cli, free_port  # type: ignore[import-not-found]

from citychain.consensus.privval import PrivValidator, SignStep
from citychain.crypto import ED25519
from citychain.crypto.pkcs11 import Pkcs11Signer, generate_key, open_signer
from citychain.errors import CitychainError, ConfigError, DoubleSignRefused, KeystoreError
from citychain.node.config import KeysSettings, NodeConfig
from citychain.node.home import init_home
from citychain.node.node import Node
from citychain.types.genesis import Genesis
from citychain.types.vote import VoteType, vote_signing_bytes

CLI = [sys.executable, "-m", "citychain.cli.main"]
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


def new_token(root: Path, label: str) -> dict[str, str]:
    """A fresh SoftHSM2 token directory under ``root``; the environment that finds it."""
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {"SOFTHSM2_CONF": str(conf)}
    made = subprocess.run(
        [*INIT_TOKEN, "--label", label, "--pin", PIN, "--so-pin", "87654321"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return env


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The label of a fresh token this process's PKCS#11 library sees (SoftHSM2 reads its
    configuration once, when the library is first initialised)."""
    module = softhsm_module()
    env = new_token(tmp_path_factory.mktemp("hsm"), "validators")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", env["SOFTHSM2_CONF"])
        yield module


def test_a_vote_signed_inside_the_module_verifies(token: str, tmp_path: Path) -> None:
    module = token
    public_key = generate_key(module, "validators", "val-1", PIN)
    signer = open_signer(module, "validators", "val-1", PIN)
    assert isinstance(signer, Pkcs11Signer) and signer.secret == b""
    assert signer.public_key == public_key and len(public_key) == 32
    privval = PrivValidator(signer, tmp_path / "privval_state.json")
    vote = vote_signing_bytes("hsm-chain", VoteType.PREVOTE, 5, 0, bytes(range(32)))
    signature = privval.sign(5, 0, SignStep.PREVOTE, vote)
    assert ED25519.verify(public_key, vote, signature)
    assert not ED25519.verify(public_key, vote + b"x", signature)
    # The double-sign protection stands in front of the module.
    other = vote_signing_bytes("hsm-chain", VoteType.PREVOTE, 5, 0, bytes(32))
    with pytest.raises(DoubleSignRefused):
        privval.sign(5, 0, SignStep.PREVOTE, other)
    # Restarted on its state file, it still knows what it signed.
    again = PrivValidator(signer, tmp_path / "privval_state.json")
    assert again.last_signed() == (5, 0, int(SignStep.PREVOTE))
    signer.close()


def test_the_module_refuses_in_words(token: str) -> None:
    module = token
    generate_key(module, "validators", "val-2", PIN)
    with pytest.raises(KeystoreError) as pin:
        open_signer(module, "validators", "val-2", "0000")
    assert pin.value.message.endswith("wrong PIN for token 'validators'")
    with pytest.raises(ConfigError) as label:
        open_signer(module, "validators", "no-such-key", PIN)
    assert "no Ed25519 private key labelled 'no-such-key'" in label.value.message
    with pytest.raises(ConfigError) as missing:
        open_signer(module, "no-such-token", "val-2", PIN)
    assert "has no token labelled 'no-such-token'" in missing.value.message
    with pytest.raises(ConfigError) as twice:
        generate_key(module, "validators", "val-2", PIN)
    assert "already holds a key labelled 'val-2'" in twice.value.message


def test_a_node_closes_the_session_of_the_key_it_opened(
    token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that stops, or fails to start, logs out of the token session its validator key
    holds: the token can be opened again in the same process (PKCS#11 keeps one login per
    process: a second one is refused while the first stands). A key the node was given stays
    its caller's."""
    module = token
    generate_key(module, "validators", "val-node", PIN)
    keys = KeysSettings(
        signer="pkcs11",
        pkcs11_module=module,
        pkcs11_token_label="validators",
        pkcs11_key_label="val-node",
    )
    given = open_signer(module, "validators", "val-node", PIN)
    home = tmp_path / "node"
    init_home(home, kdf_level="interactive", validator=given, keys=keys)
    # Given a key, the node leaves it open.
    lent = Node(NodeConfig.load(home), signer=given)
    lent.close()
    assert ED25519.verify(given.public_key, b"still mine", given.sign(b"still mine"))
    with pytest.raises(ConfigError, match="UserAlreadyLoggedIn"):
        open_signer(module, "validators", "val-node", PIN)
    given.close()

    monkeypatch.setenv(keys.pkcs11_pin_env, PIN)
    node = Node(NodeConfig.load(home))
    assert isinstance(node.signer, Pkcs11Signer)
    node.signer.sign(b"while it runs")
    node.close()
    with pytest.raises(KeystoreError, match="refused to sign"):
        node.signer.sign(b"after it stopped")
    open_signer(module, "validators", "val-node", PIN).close()  # the login is free again

    # A start that fails after the key is open (here: its database cannot be opened).
    (NodeConfig.load(home).data_dir / "CURRENT").write_bytes(b"not a manifest name\n")
    with pytest.raises(CitychainError, match="cannot open database"):
        Node(NodeConfig.load(home))
    open_signer(module, "validators", "val-node", PIN).close()


# -- real node processes ---------------------------------------------------------------------


def start(
    home: Path, port: int, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.Popen[bytes]:
    args = [*CLI, "start", "--home", str(home), "--port", str(port)]
    if stdin is not None:
        args.append("--passphrase-stdin")
    log = open(home / "node.log", "ab")  # noqa: SIM115 (the child writes it)
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    log.close()
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    return proc


def wait_height(proc: subprocess.Popen[bytes], home: Path, port: int, height: int) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"node exited {proc.returncode}:\n{(home / 'node.log').read_text()}"
            )
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).json()
            if int(status["height"]) >= height:
                return status  # type: ignore[no-any-return]
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no height {height} in 30 s:\n{(home / 'node.log').read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def clean_env() -> dict[str, str]:
    return {"CITYCHAIN_PASSPHRASE": "", "CREDENTIALS_DIRECTORY": "", "NO_COLOR": "1"}


@pytest.mark.slow
def test_a_node_refuses_a_plaintext_passphrase_unless_told_it_is_a_test(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, passphrase="operator words", kdf_level="interactive")
    leaked = home / "config" / "passphrase"
    leaked.write_text("operator words\n")
    port = free_port()
    refused = cli("start", "--home", str(home), "--port", str(port), env=clean_env())
    assert refused.returncode == 1, refused
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(f"error [bad_config]: {leaked}: the key passphrase is stored in ")
    assert 'allow_plaintext_passphrase = "this is a test network"' in lines[0]
    assert not (home / "data").exists()  # nothing opened

    # The real way: no file on disk, the passphrase through stdin.
    leaked.unlink()
    node = start(home, port, clean_env(), stdin=b"operator words\n")
    try:
        wait_height(node, home, port, 1)
    finally:
        stop(node)
    assert node.returncode == 0

    # A test network, said in words, may keep the file.
    leaked.write_text("operator words\n")
    toml = home / "config" / "node.toml"
    toml.write_text(
        toml.read_text().replace(
            'allow_plaintext_passphrase = ""',
            'allow_plaintext_passphrase = "this is a test network"',
        )
    )
    node = start(home, port, clean_env())
    try:
        wait_height(node, home, port, 1)
    finally:
        stop(node)
    assert node.returncode == 0


@pytest.mark.slow
def test_a_node_with_its_key_in_softhsm_produces_blocks(tmp_path: Path) -> None:
    module = softhsm_module()
    env = {**new_token(tmp_path / "hsm", "node-token"), "CITYCHAIN_PKCS11_PIN": PIN}
    env.update(clean_env())
    home = tmp_path / "node"
    made = cli(
        "init",
        "--home",
        str(home),
        "--signer",
        "pkcs11",
        "--pkcs11-module",
        module,
        "--pkcs11-token",
        "node-token",
        "--pkcs11-key",
        "validator",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    assert not (home / "config" / "node_key.json").exists()  # the key is in the token only
    toml_file = home / "config" / "node.toml"
    toml = toml_file.read_text()
    assert 'signer = "pkcs11"' in toml and PIN not in toml
    # A block every block interval, not one per 10 s of idling.
    toml_file.write_text(
        toml.replace("empty_blocks_interval_ms = 10000", "empty_blocks_interval_ms = 0")
    )
    genesis = Genesis.load(home / "config" / "genesis.json")
    port = free_port()
    node = start(home, port, env)
    try:
        status = wait_height(node, home, port, 3)
        assert status["public_key"] == genesis.validators[0].public_key.hex()
        block = httpx.get(f"http://127.0.0.1:{port}/v1/blocks/2", timeout=5)
        assert block.status_code == 200
    finally:
        stop(node)
    assert node.returncode == 0
    # Without the PIN the node does not start, and says why.
    no_pin = cli(
        "start", "--home", str(home), "--port", str(port), env={**env, "CITYCHAIN_PKCS11_PIN": ""}
    )
    assert no_pin.returncode == 1
    assert no_pin.stderr.strip().startswith(
        "error [wrong_passphrase]: no PIN for the PKCS#11 token: set $CITYCHAIN_PKCS11_PIN"
    )
