"""Finding and unlocking key files for commands (`keys`, `tx`, `bench`).

A key is named by a NAME (its file is ``<keys dir>/<NAME>.json``, the keys dir being
``--dir``, else ``<home>/keys``) or by a path to a key file. The passphrase comes from
``--passphrase-file``, else ``$CITYCHAIN_PASSPHRASE``, else a prompt. Development keys stored
in plaintext are accepted with a warning (the keystore logs one each time).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import typer

from citychain.cli._output import bad, home_dir
from citychain.crypto import Signer, get_suite
from citychain.errors import ErrorCode, InvalidInput, KeystoreError, NotFound

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def keys_dir(home: Path | None, directory: Path | None = None) -> Path:
    return (directory if directory is not None else home_dir(home) / "keys").expanduser()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.endswith(".json"):
        raise bad(
            f"key name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, without .json)"
        )
    return name


def key_path(name_or_path: str, home: Path | None, directory: Path | None = None) -> Path:
    """The file of a named key, or ``name_or_path`` itself if it names a file."""
    as_path = Path(name_or_path).expanduser()
    if os.sep in name_or_path or name_or_path.endswith(".json"):
        if not as_path.is_file():
            raise NotFound(f"no key file at {as_path}")
        return as_path
    path = keys_dir(home, directory) / f"{check_name(name_or_path)}.json"
    if not path.is_file():
        raise NotFound(
            f"no key named {name_or_path!r} in {path.parent} (see `citychain keys list`)"
        )
    return path


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a key file's header says (not authenticated until the key is unlocked)."""

    path: Path
    suite: str
    public_key: bytes
    encrypted: bool

    @property
    def address(self) -> bytes:
        return get_suite(self.suite).address(self.public_key)


def key_info(path: Path) -> KeyInfo:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        suite, public_key, kind = doc["suite"], bytes.fromhex(doc["public_key"]), doc["type"]
        if not isinstance(suite, str) or kind not in ("encrypted", "plaintext"):
            raise ValueError("unknown suite or type")
        get_suite(suite)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
        raise KeystoreError(f"{path} is not a citychain key file ({exc})") from None
    return KeyInfo(path, suite, public_key, kind == "encrypted")


def read_passphrase(passphrase_file: Path | None, prompt: str, *, confirm: bool = False) -> str:
    if passphrase_file is not None:
        try:
            text = passphrase_file.expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KeystoreError(
                f"cannot read passphrase file {passphrase_file}: {exc.strerror}",
                ErrorCode.WRONG_PASSPHRASE,
            ) from None
        if not text:
            raise KeystoreError(
                f"passphrase file {passphrase_file} is empty", ErrorCode.WRONG_PASSPHRASE
            )
        return text
    env = os.environ.get("CITYCHAIN_PASSPHRASE")
    if env:
        return env
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


def load_signer(
    name_or_path: str,
    home: Path | None = None,
    *,
    passphrase_file: Path | None = None,
    directory: Path | None = None,
) -> Signer:
    """Unlock a key by name or path (prompting for its passphrase only if it is encrypted)."""
    from citychain.crypto.keystore import load_key

    path = key_path(name_or_path, home, directory)
    info = key_info(path)
    passphrase = (
        read_passphrase(passphrase_file, f"Passphrase for key {path.stem}")
        if info.encrypted
        else ""
    )
    return load_key(path, passphrase, allow_plaintext=True)
