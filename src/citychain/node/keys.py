"""The node's validator key and passphrase at start: where they may come from (README: Keys).

``[keys] signer = "file"`` (the default) unlocks ``[node] key_file`` with the passphrase;
``"pkcs11"`` opens the key inside a hardware security module (:mod:`citychain.crypto.pkcs11`)
with the PIN from the environment or a systemd credential. The passphrase (also needed for
the p2p TLS key, which Python's ``ssl`` module can only load from a file) comes from, in
order: what ``citychain start --passphrase-fd N`` / ``--passphrase-stdin`` read
(:func:`supply_passphrase`), ``$CITYCHAIN_PASSPHRASE``, the systemd credential
``citychain-passphrase``, and, on a test network only, the plaintext file beside the key.

Before any of that, :func:`check_no_plaintext_passphrase` refuses a home that keeps its
passphrase in a file beside the key unless node.toml says in words that this is a test
network (``[keys] allow_plaintext_passphrase = "this is a test network"``, which ``citychain
net up`` and ``citychain init`` without a passphrase write).
"""

from __future__ import annotations

import logging
from pathlib import Path

from citychain.crypto import Signer
from citychain.crypto import passphrase as sources
from citychain.crypto.keystore import load_key
from citychain.errors import ConfigError, ErrorCode, KeystoreError
from citychain.node.config import NodeConfig

log = logging.getLogger(__name__)

_supplied: tuple[str, str] | None = None


def supply_passphrase(passphrase: str, where: str) -> None:
    """Give this process's node the passphrase read by the command (``--passphrase-fd``)."""
    global _supplied
    _supplied = (passphrase, where)


def plaintext_passphrase_files(config: NodeConfig) -> list[Path]:
    """The plaintext passphrase files in ``config``'s home: ``[node] passphrase_file`` and a
    ``passphrase`` file beside the key file, those that exist."""
    candidates = [
        config.path(config.node.passphrase_file),
        config.path(config.node.key_file).parent / "passphrase",
    ]
    found: list[Path] = []
    for path in candidates:
        if path.exists() and path not in found:
            found.append(path)
    return found


def check_no_plaintext_passphrase(config: NodeConfig) -> None:
    """Refuse (``bad_config``, one line) a passphrase file beside the key on a home that is
    not marked, in words, as a test network's."""
    if config.keys.test_network:
        return
    for path in plaintext_passphrase_files(config):
        raise sources.refuse_plaintext_file(path, config.config_file)


def _find_passphrase(config: NodeConfig) -> tuple[str, str] | None:
    if _supplied is not None:
        return _supplied
    found = sources.from_environment()
    if found is not None:
        return found
    if config.keys.test_network:
        path = config.path(config.node.passphrase_file)
        text = sources.read_plaintext_file(path)
        if text is not None:
            return text, f"{path} (a test network's plaintext file)"
    return None


def read_passphrase(config: NodeConfig) -> str | None:
    """The node's passphrase from the first source that has one, or None."""
    found = _find_passphrase(config)
    return None if found is None else found[0]


def load_validator_key(config: NodeConfig) -> Signer:
    """The validator's signer, from its key file or its PKCS#11 module."""
    check_no_plaintext_passphrase(config)
    keys = config.keys
    if keys.signer == "pkcs11":
        from citychain.crypto.pkcs11 import open_signer, read_pin

        signer = open_signer(
            keys.pkcs11_module,
            keys.pkcs11_token_label,
            keys.pkcs11_key_label,
            read_pin(keys.pkcs11_pin_env),
        )
        log.debug("validator key: %s, signing inside the module", signer.where)
        return signer
    key_path = config.path(config.node.key_file)
    if not key_path.exists():
        raise ConfigError(f"{key_path}: validator key file not found")
    found = _find_passphrase(config)
    passphrase = found[0] if found is not None else ""
    if found is not None:
        log.debug("validator key %s: passphrase from %s", key_path, found[1])
    if not passphrase and not config.node.allow_plaintext_key:
        raise KeystoreError(
            f"no passphrase for {key_path}: set ${sources.ENV}, start with --passphrase-fd N "
            f"or --passphrase-stdin, or give the systemd credential {sources.CREDENTIAL} "
            "(README: Keys)",
            ErrorCode.WRONG_PASSPHRASE,
        )
    return load_key(key_path, passphrase, allow_plaintext=config.node.allow_plaintext_key)
