"""Encrypted key files: round trips, refusals with precise codes, file modes, plaintext keys."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nacl.pwhash.argon2id as argon2id
import pytest

from citychain.crypto import ED25519, Ed25519Suite, Signer, register_suite
from citychain.crypto.keystore import (
    export_key,
    import_key,
    load_key,
    save_key,
    save_plaintext_key,
)
from citychain.errors import ErrorCode, InvalidInput, KeystoreError, NotFound

PASS = "correct horse battery staple"
SIGNER = Signer(ED25519, bytes(range(32)))
OTHER = Signer(ED25519, bytes(range(1, 33)))


@pytest.fixture(scope="module")
def exported() -> str:
    """One encrypted keystore (interactive KDF), shared: each derivation costs ~0.1 s."""
    return export_key(SIGNER, PASS, kdf_level="interactive")


def edit(text: str, change: Callable[[dict[str, Any]], None]) -> str:
    doc = json.loads(text)
    change(doc)
    return json.dumps(doc)


def refused(text: str, code: ErrorCode, match: str, passphrase: str = PASS) -> None:
    with pytest.raises(KeystoreError, match=match) as info:
        import_key(text, passphrase)
    assert info.value.code == code


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- round trips --------------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "key.json"
    save_key(path, SIGNER, PASS, kdf_level="interactive")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key(path, PASS)
    assert loaded.secret == SIGNER.secret and loaded.suite is ED25519
    assert loaded.public_key == SIGNER.public_key
    text = path.read_text()
    assert SIGNER.secret.hex() not in text
    doc = json.loads(text)
    assert doc["version"] == 1 and doc["suite"] == "ed25519" and doc["type"] == "encrypted"
    assert doc["public_key"] == SIGNER.public_key.hex()
    assert doc["kdf"]["name"] == "argon2id" and doc["cipher"]["name"] == "xsalsa20-poly1305"
    assert doc["kdf"]["opslimit"] == argon2id.OPSLIMIT_INTERACTIVE
    assert doc["kdf"]["memlimit"] == argon2id.MEMLIMIT_INTERACTIVE
    assert [p.name for p in tmp_path.iterdir()] == ["key.json"]  # no temporary file left


def test_save_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    save_key(path, OTHER, PASS, kdf_level="interactive")
    save_key(path, SIGNER, PASS, kdf_level="interactive")
    assert load_key(path, PASS).secret == SIGNER.secret
    assert [p.name for p in tmp_path.iterdir()] == ["key.json"]


def test_export_import_round_trip_and_fresh_randomness(exported: str) -> None:
    assert import_key(exported, PASS).secret == SIGNER.secret
    again = json.loads(export_key(SIGNER, PASS, kdf_level="interactive"))
    first = json.loads(exported)
    assert again["kdf"]["salt"] != first["kdf"]["salt"]
    assert again["cipher"]["nonce"] != first["cipher"]["nonce"]


def test_default_kdf_level_is_moderate() -> None:
    doc = json.loads(export_key(SIGNER, PASS))
    assert doc["kdf"]["opslimit"] == argon2id.OPSLIMIT_MODERATE
    assert doc["kdf"]["memlimit"] == argon2id.MEMLIMIT_MODERATE


def test_passphrase_is_unicode_normalised() -> None:
    composed, decomposed = "caf\u00e9 \u00fcber", "cafe\u0301 u\u0308ber"
    assert composed != decomposed
    text = export_key(SIGNER, composed, kdf_level="interactive")
    assert import_key(text, decomposed).secret == SIGNER.secret


def test_export_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidInput, match="unknown kdf_level 'fast'") as info:
        export_key(SIGNER, PASS, kdf_level="fast")
    assert info.value.code == ErrorCode.BAD_ARGUMENTS
    with pytest.raises(InvalidInput, match="non-empty") as info:
        export_key(SIGNER, "")
    assert info.value.code == ErrorCode.BAD_ARGUMENTS


# -- refusals -----------------------------------------------------------------------------------
def test_wrong_passphrase(exported: str) -> None:
    refused(exported, ErrorCode.WRONG_PASSPHRASE, "wrong passphrase", passphrase="guess")
    refused(exported, ErrorCode.WRONG_PASSPHRASE, "wrong passphrase", passphrase="")


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_tampered_cipher_fields_fail_authentication(exported: str, field: str) -> None:
    def flip(doc: dict[str, Any]) -> None:
        raw = bytearray.fromhex(doc["cipher"][field])
        raw[len(raw) // 2] ^= 1
        doc["cipher"][field] = raw.hex()

    refused(edit(exported, flip), ErrorCode.WRONG_PASSPHRASE, "modified")


def test_tampered_salt_fails_authentication(exported: str) -> None:
    def flip(doc: dict[str, Any]) -> None:
        doc["kdf"]["salt"] = ("00" if doc["kdf"]["salt"][:2] != "00" else "01") + doc["kdf"][
            "salt"
        ][2:]

    refused(edit(exported, flip), ErrorCode.WRONG_PASSPHRASE, "modified")


def test_tampered_public_key_is_refused(exported: str) -> None:
    def swap(doc: dict[str, Any]) -> None:
        doc["public_key"] = OTHER.public_key.hex()

    refused(edit(exported, swap), ErrorCode.BAD_KEYSTORE, "public key does not match")


def test_tampered_suite_is_refused(exported: str) -> None:
    class Twin(Ed25519Suite):
        name = "ed25519-keystore-test-twin"

    register_suite(Twin())

    def to_twin(doc: dict[str, Any]) -> None:
        doc["suite"] = Twin.name

    def to_unknown(doc: dict[str, Any]) -> None:
        doc["suite"] = "rot13"

    refused(edit(exported, to_twin), ErrorCode.BAD_KEYSTORE, "header says suite")
    refused(edit(exported, to_unknown), ErrorCode.BAD_KEYSTORE, "unknown crypto suite 'rot13'")


def test_truncated_ciphertext(exported: str) -> None:
    def cut(doc: dict[str, Any]) -> None:
        doc["cipher"]["ciphertext"] = doc["cipher"]["ciphertext"][:20]

    def cut_some(doc: dict[str, Any]) -> None:
        doc["cipher"]["ciphertext"] = doc["cipher"]["ciphertext"][:-2]

    refused(edit(exported, cut), ErrorCode.BAD_KEYSTORE, "'cipher.ciphertext' is truncated")
    refused(edit(exported, cut_some), ErrorCode.WRONG_PASSPHRASE, "modified")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(version=2), "unknown keystore version 2"),
        (lambda d: d.update(version="1"), "'version' must be an integer"),
        (lambda d: d.update(version=True), "'version' must be an integer"),
        (lambda d: d.pop("cipher"), "missing field 'cipher'"),
        (lambda d: d.update(type="sealed"), "unknown key file type 'sealed'"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d["kdf"].update(name="scrypt"), "unsupported kdf 'scrypt'"),
        (lambda d: d["cipher"].update(name="aes"), "unsupported cipher 'aes'"),
        (lambda d: d["kdf"].update(memlimit=2**42), "kdf.memlimit .* outside the accepted"),
        (lambda d: d["kdf"].update(opslimit=0), "kdf.opslimit 0 is outside the accepted"),
        (lambda d: d["kdf"].update(opslimit=2.0), "'kdf.opslimit' must be an integer"),
        (lambda d: d["kdf"].update(salt="zz"), "'kdf.salt' is not a hex string"),
        (lambda d: d["kdf"].update(salt="00" * 8), "'kdf.salt' must be 16 bytes, got 8"),
        (lambda d: d.update(public_key="ab" * 31), "'public_key' must be 32 bytes, got 31"),
        (lambda d: d.update(cipher=[]), "'cipher' must be a JSON object"),
    ],
)
def test_corrupt_fields_are_named(
    exported: str, change: Callable[[dict[str, Any]], Any], match: str
) -> None:
    refused(edit(exported, change), ErrorCode.BAD_KEYSTORE, match)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not valid JSON"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("[" * 100_000, "not valid JSON|larger than"),
        ("null", "JSON object"),
        ("{}", "missing field 'version'"),
    ],
)
def test_garbage_is_a_bad_keystore(text: str, match: str) -> None:
    refused(text, ErrorCode.BAD_KEYSTORE, match)


def test_truncated_file(tmp_path: Path, exported: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(exported[: len(exported) // 2])
    with pytest.raises(KeystoreError, match="not valid JSON") as info:
        load_key(path, PASS)
    assert info.value.code == ErrorCode.BAD_KEYSTORE


def test_unreadable_contents(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(KeystoreError, match="not UTF-8") as info:
        load_key(path, PASS)
    assert info.value.code == ErrorCode.BAD_KEYSTORE
    path.write_bytes(b" " * 70_000)
    with pytest.raises(KeystoreError, match="larger than") as info:
        load_key(path, PASS)
    assert info.value.code == ErrorCode.BAD_KEYSTORE


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no key file"):
        load_key(tmp_path / "nope.json", PASS)


def test_group_readable_file_loads_with_a_warning(
    tmp_path: Path, exported: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "key.json"
    path.write_text(exported)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="citychain.crypto.keystore"):
        assert load_key(path, PASS).secret == SIGNER.secret
    assert "chmod 600" in caplog.text


# -- plaintext keys -----------------------------------------------------------------------------
def test_plaintext_key_is_refused_unless_allowed(
    tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "dev.json"
    save_plaintext_key(path, SIGNER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["type"] == "plaintext"
    with pytest.raises(KeystoreError, match="unencrypted key") as info:
        load_key(path, PASS)
    assert info.value.code == ErrorCode.PLAINTEXT_KEY
    with caplog.at_level(logging.WARNING, logger="citychain.crypto.keystore"):
        loaded = load_key(path, "", allow_plaintext=True)
    assert loaded.secret == SIGNER.secret
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "UNENCRYPTED" in warnings[0].getMessage()


def test_plaintext_key_with_a_mismatched_public_key(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    save_plaintext_key(path, SIGNER)
    path.write_text(edit(path.read_text(), lambda d: d.update(public_key=OTHER.public_key.hex())))
    with pytest.raises(KeystoreError, match="does not match the public key") as info:
        load_key(path, "", allow_plaintext=True)
    assert info.value.code == ErrorCode.BAD_KEYSTORE


def test_encrypted_key_loads_even_when_plaintext_is_allowed(exported: str) -> None:
    assert import_key(exported, PASS, allow_plaintext=True).secret == SIGNER.secret
