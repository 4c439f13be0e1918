"""Issue 15 part 3: a copied node disk must not give away the validator key.

A plaintext passphrase file beside the key is refused unless node.toml says in words that
this is a test network; ``citychain init`` without a passphrase and ``net up`` say so (and
write a note beside the file); a real deployment's passphrase comes from a descriptor, stdin,
``$CITYCHAIN_PASSPHRASE`` or a systemd credential and is written nowhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nacl.pwhash import argon2id

from citychain.crypto import passphrase as sources
from citychain.errors import ConfigError, KeystoreError
from citychain.node import keys
from citychain.node.config import NodeConfig
from citychain.node.home import init_home
from citychain.node.testnet import generate_network
from citychain.types.genesis import Genesis

PHRASE = "this is a test network"


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYCHAIN_PASSPHRASE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setattr(keys, "_supplied", None)


def real_home(tmp_path: Path) -> Path:
    """A home made with the operator's passphrase: nothing secret in plain text."""
    home = tmp_path / "node"
    made = init_home(home, passphrase="operator words", kdf_level="interactive")
    assert made.passphrase_file is None
    assert not (home / "config" / "passphrase").exists()
    assert not made.config.keys.test_network
    return home


def test_a_non_demo_home_refuses_a_passphrase_file_beside_its_key(
    tmp_path: Path, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = real_home(tmp_path)
    leaked = home / "config" / "passphrase"
    leaked.write_text("operator words\n")
    # Even with the right passphrase given the proper way: the file is what a copy leaks.
    monkeypatch.setenv("CITYCHAIN_PASSPHRASE", "operator words")
    with pytest.raises(ConfigError) as refused:
        keys.load_validator_key(NodeConfig.load(home))
    message = refused.value.message
    assert "\n" not in message
    assert message.startswith(f"{leaked}: the key passphrase is stored in plain text")
    assert "--passphrase-fd N" in message and "$CITYCHAIN_PASSPHRASE" in message
    assert f'allow_plaintext_passphrase = "{PHRASE}"' in message
    assert str(home / "config" / "node.toml") in message


def test_the_words_of_a_test_network_let_the_file_be_read(tmp_path: Path, no_env: None) -> None:
    home = real_home(tmp_path)
    (home / "config" / "passphrase").write_text("operator words\n")
    toml = home / "config" / "node.toml"
    toml.write_text(
        toml.read_text().replace(
            'allow_plaintext_passphrase = ""', f'allow_plaintext_passphrase = "{PHRASE}"'
        )
    )
    config = NodeConfig.load(home)
    assert config.keys.test_network
    validators = Genesis.load(home / "config" / "genesis.json").validators
    assert keys.load_validator_key(config).public_key == validators[0].public_key


@pytest.mark.parametrize("words", ["yes", "true", "This is a test network", "test"])
def test_anything_but_the_words_is_refused(tmp_path: Path, words: str) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "node.toml").write_text(
        f'[keys]\nallow_plaintext_passphrase = "{words}"\n'
    )
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert f'[keys] allow_plaintext_passphrase must be "{PHRASE}"' in refused.value.message


def test_demo_init_and_net_up_say_where_they_write_it(tmp_path: Path) -> None:
    demo = init_home(tmp_path / "demo", kdf_level="interactive")
    assert demo.passphrase_file == tmp_path / "demo" / "config" / "passphrase"
    assert demo.config.keys.test_network
    assert NodeConfig.load(tmp_path / "demo").keys.test_network
    layout = generate_network(tmp_path / "net", validators=1, orgs=1, kdf_level="interactive")
    written = [demo.passphrase_file, layout.passphrase_file]
    written += [n.home / "config" / "passphrase" for n in layout.nodes]
    for path in written:
        note = path.with_name("passphrase.README").read_text()
        assert note.startswith("TEST NETWORK ONLY.")
        assert "$CITYCHAIN_PASSPHRASE" in note and "--passphrase-fd" in note
    for n in layout.nodes:
        assert NodeConfig.load(n.home).keys.test_network


def test_a_generated_passphrase_gets_a_fast_kdf_and_a_persons_words_a_slow_one(
    tmp_path: Path,
) -> None:
    """argon2id's cost protects a person's words; 192 random bits, written beside the keys
    anyway, need none of it (it was ~0.7 s of CPU and 256 MiB per key, at init and start)."""

    def costs(home: Path) -> set[tuple[int, int]]:
        files = [home / "config" / "node_key.json", *sorted((home / "keys").glob("*.json"))]
        assert len(files) >= 3
        return {
            (doc["kdf"]["opslimit"], doc["kdf"]["memlimit"])
            for doc in (json.loads(f.read_text()) for f in files)
        }

    init_home(tmp_path / "demo")
    assert costs(tmp_path / "demo") == {
        (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)
    }
    init_home(tmp_path / "real", passphrase="operator words")
    assert costs(tmp_path / "real") == {(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)}


def test_a_real_home_starts_from_the_environment_or_a_credential(
    tmp_path: Path, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = real_home(tmp_path)
    config = NodeConfig.load(home)
    with pytest.raises(KeystoreError) as none:
        keys.load_validator_key(config)
    assert "--passphrase-fd N" in none.value.message
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "citychain-passphrase").write_text("operator words")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    signer = keys.load_validator_key(config)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    monkeypatch.setenv("CITYCHAIN_PASSPHRASE", "operator words")
    assert keys.load_validator_key(config).public_key == signer.public_key


def test_a_passphrase_from_a_descriptor(tmp_path: Path, no_env: None) -> None:
    read, write = os.pipe()
    os.write(write, b"operator words\nrest is ignored")
    os.close(write)
    assert sources.read_fd(read, "--passphrase-fd 5") == "operator words"
    with pytest.raises(OSError):
        os.fstat(read)  # closed once read
    empty_r, empty_w = os.pipe()
    os.close(empty_w)
    with pytest.raises(KeystoreError) as empty:
        sources.read_fd(empty_r, "--passphrase-fd 7")
    assert empty.value.message == "--passphrase-fd 7: the passphrase is empty"
    home = real_home(tmp_path)
    keys.supply_passphrase("operator words", "--passphrase-fd 5")
    assert keys.load_validator_key(NodeConfig.load(home)).public_key


def test_the_pkcs11_pin_comes_from_the_environment_or_a_credential(tmp_path: Path) -> None:
    from citychain.crypto.pkcs11 import read_pin

    assert read_pin("MY_PIN", {"MY_PIN": "1234"}) == "1234"
    (tmp_path / "citychain-pkcs11-pin").write_text("5678\n")
    assert read_pin("MY_PIN", {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "5678"
    with pytest.raises(KeystoreError) as none:
        read_pin("MY_PIN", {})
    assert none.value.message == (
        "no PIN for the PKCS#11 token: set $MY_PIN or the systemd credential "
        "citychain-pkcs11-pin (the PIN is never read from node.toml)"
    )
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "node.toml").write_text('[keys]\nsigner = "pkcs11"\n')
    with pytest.raises(ConfigError) as half:
        NodeConfig.load(tmp_path)
    assert 'pkcs11_module must be set when signer = "pkcs11"' in half.value.message
