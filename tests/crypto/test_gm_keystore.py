"""Keystores of the sm2-sm3 suite: sealed with SM4-GCM, wrong passphrases refused by code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.crypto.keystore import export_key, import_key, load_key, save_key
from citychain.errors import ErrorCode, KeystoreError

PASS = "正确的马电池订书钉 correct horse"
SIGNER = Signer(
    SM2_SM3, bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
)


@pytest.fixture(scope="module")
def text() -> str:
    return export_key(SIGNER, PASS, kdf_level="interactive")


def test_sm2_keys_are_sealed_with_sm4_gcm(text: str) -> None:
    doc = json.loads(text)
    assert doc["suite"] == "sm2-sm3"
    assert doc["cipher"]["name"] == "sm4-gcm"
    assert len(bytes.fromhex(doc["cipher"]["nonce"])) == 12
    assert doc["kdf"]["name"] == "argon2id"
    assert SIGNER.secret.hex() not in text


def test_round_trip(text: str, tmp_path: Path) -> None:
    back = import_key(text, PASS)
    assert back.suite is SM2_SM3 and back.secret == SIGNER.secret
    path = tmp_path / "k.json"
    save_key(path, SIGNER, PASS, kdf_level="interactive")
    assert load_key(path, PASS).public_key == SIGNER.public_key


def test_a_wrong_passphrase_is_refused(text: str) -> None:
    with pytest.raises(KeystoreError) as err:
        import_key(text, PASS + "!")
    assert err.value.code is ErrorCode.WRONG_PASSPHRASE
    assert "wrong passphrase" in err.value.message


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_an_edited_ciphertext_or_nonce_is_refused(text: str, field: str) -> None:
    doc = json.loads(text)
    raw = bytearray(bytes.fromhex(doc["cipher"][field]))
    raw[0] ^= 1
    doc["cipher"][field] = raw.hex()
    with pytest.raises(KeystoreError) as err:
        import_key(json.dumps(doc), PASS)
    assert err.value.code is ErrorCode.WRONG_PASSPHRASE


def test_the_cipher_cannot_be_swapped(text: str) -> None:
    doc = json.loads(text)
    doc["cipher"]["name"] = "xsalsa20-poly1305"
    with pytest.raises(KeystoreError) as err:
        import_key(json.dumps(doc), PASS)
    assert err.value.code is ErrorCode.BAD_KEYSTORE
    ed = json.loads(export_key(Signer(ED25519, bytes(32)), PASS, kdf_level="interactive"))
    ed["cipher"]["name"] = "sm4-gcm"
    with pytest.raises(KeystoreError) as err:
        import_key(json.dumps(ed), PASS)
    assert err.value.code is ErrorCode.BAD_KEYSTORE


def test_a_swapped_public_key_is_refused(text: str) -> None:
    doc = json.loads(text)
    doc["public_key"] = Signer.generate(SM2_SM3).public_key.hex()
    with pytest.raises(KeystoreError) as err:
        import_key(json.dumps(doc), PASS)
    assert err.value.code is ErrorCode.BAD_KEYSTORE
