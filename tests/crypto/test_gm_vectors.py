"""Every GM vector in tests/vectors/gm/ (SM3, SM4, SM2), against the suite's own code paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.decrepit.ciphers import modes as old_modes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from citychain.crypto import get_suite
from citychain.crypto import sm4 as gm_sm4
from citychain.crypto.sm2 import SM2_SM3, Sm2Suite, sm3, verify_digest
from citychain.errors import ErrorCode, InvalidInput

VECTORS = Path(__file__).parent.parent / "vectors" / "gm"


def _load(name: str) -> list[dict[str, Any]]:
    doc = json.loads((VECTORS / f"{name}.json").read_text())
    entries: list[dict[str, Any]] = doc["vectors"]
    return entries


SM3 = _load("sm3")
SM4 = _load("sm4")
SM2 = _load("sm2")


def _h(v: str | None) -> bytes:
    return bytes.fromhex(v) if v else b""


def test_every_file_is_there() -> None:
    assert (len(SM3), len(SM4), len(SM2)) == (16, 28, 9)


@pytest.mark.parametrize("v", SM3, ids=lambda v: v["name"])
def test_sm3(v: dict[str, Any]) -> None:
    assert sm3(_h(v["msg_hex"])).hex() == v["digest_hex"]
    assert SM2_SM3.hash(_h(v["msg_hex"])).hex() == v["digest_hex"]


@pytest.mark.parametrize(
    "v", [v for v in SM4 if v["mode"] not in ("GCM", "CCM")], ids=lambda v: v["name"]
)
def test_sm4_block_modes(v: dict[str, Any]) -> None:
    key, iv = _h(v["key"]), _h(v["iv"])
    mode: Any = {
        "ECB": lambda: modes.ECB(),
        "ECB-iterated": lambda: modes.ECB(),
        "CBC": lambda: modes.CBC(iv),
        "OFB": lambda: old_modes.OFB(iv),
        "CFB128": lambda: old_modes.CFB(iv),
        "CTR": lambda: modes.CTR(iv),
    }[v["mode"]]
    data = _h(v["plaintext"])
    enc = Cipher(algorithms.SM4(key), mode()).encryptor()
    for _ in range(v["iterations"] or 1):
        data = enc.update(data)
    assert data.hex() == v["ciphertext"]
    if v["mode"] != "ECB-iterated":
        dec = Cipher(algorithms.SM4(key), mode()).decryptor()
        assert (dec.update(data) + dec.finalize()).hex() == v["plaintext"]


@pytest.mark.parametrize("v", [v for v in SM4 if v["mode"] == "GCM"], ids=lambda v: v["name"])
def test_sm4_gcm(v: dict[str, Any]) -> None:
    key, nonce, aad = _h(v["key"]), _h(v["nonce"]), _h(v["aad"])
    ct, tag = _h(v["ciphertext"]), _h(v["tag"])
    if not v["valid"]:
        with pytest.raises(InvalidInput) as err:
            gm_sm4.decrypt(key, nonce, ct, tag, aad)
        assert err.value.code is ErrorCode.TAMPERED
        return
    assert gm_sm4.decrypt(key, nonce, ct, tag, aad).hex() == (v["plaintext"] or "")
    body, full_tag = gm_sm4.encrypt(key, nonce, _h(v["plaintext"]), aad)
    assert body == ct and full_tag[: len(tag)] == tag
    if len(nonce) == gm_sm4.NONCE_SIZE and len(tag) == gm_sm4.TAG_SIZE:
        sealed = gm_sm4.seal(key, _h(v["plaintext"]), aad, nonce=nonce)
        assert sealed == nonce + ct + tag
        assert gm_sm4.open_(key, sealed, aad) == _h(v["plaintext"])


def test_sm4_ccm_is_not_used() -> None:
    # The chain never uses SM4-CCM and cryptography has none; the vectors stay for a later backend.
    assert [v for v in SM4 if v["mode"] == "CCM"]


@pytest.mark.parametrize("v", SM2, ids=lambda v: v["name"])
def test_sm2(v: dict[str, Any]) -> None:
    public_key, sig = _h(v["public_key_hex"]), _h(v["sig_raw_hex"])
    if v["private_key_hex"] and v["valid"]:
        assert SM2_SM3.public_key(_h(v["private_key_hex"])) == public_key
    assert verify_digest(public_key, _h(v["e_hex"]), sig) is v["valid"]
    if v["input"] != "message":
        return
    if v["id"]:
        suite = Sm2Suite(v["id"].encode())
        assert suite.verify(public_key, _h(v["msg_hex"]), sig) is v["valid"]
    # The wrong-ID negatives carry the Annex A signature, made under the default ID: the chain's
    # suite (ID 1234567812345678) accepts it, the same bytes under another ID are refused.
    expect = (
        v["valid"] if v["id"] == "1234567812345678" else v["name"].startswith("negative_wrong_id")
    )
    assert SM2_SM3.verify(public_key, _h(v["msg_hex"]), sig) is expect
    assert get_suite("sm2-sm3").verify(public_key, _h(v["msg_hex"]), sig) is expect


def test_sm2_der_form_of_a_valid_vector_is_refused() -> None:
    v = SM2[0]
    assert not SM2_SM3.verify(_h(v["public_key_hex"]), _h(v["msg_hex"]), _h(v["sig_der_hex"]))
