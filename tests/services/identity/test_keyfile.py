"""A holder's key file (``export_key``, ``import_key``, ``Wallet.export_key``, ``citychain
wallet export-key|import-key``): a standard JWE (PBES2-HS512+A256KW, A256GCM) that an
independent JOSE library (jwcrypto) opens, and that opens what jwcrypto makes; a wrong
passphrase, a changed byte and what is no key file are each refused with their code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwcrypto.jwa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwe import JWE
from jwcrypto.jwk import JWK

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
from nodeproc import CLI  # type: ignore[import-not-found]

from citychain.crypto import ED25519, Signer, get_suite
from citychain.errors import ErrorCode, InvalidInput, KeystoreError
from citychain.services.identity.sdk import Wallet, export_key, import_key
from citychain.services.identity.sdk._keyfile import DEFAULT_ITERATIONS, MIN_ITERATIONS
from citychain.services.identity.shapes import did_key
from citychain.services.identity.shapes._jose import b64url, unb64url


@pytest.fixture(autouse=True)
def jwcrypto_reads_our_iterations(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # jwcrypto refuses p2c over 16,384 by default (its guard against slow files); ours is
    # OWASP's 210,000 for PBKDF2-HMAC-SHA-512.
    monkeypatch.setattr(jwcrypto.jwa, "default_max_pbkdf2_iterations", DEFAULT_ITERATIONS)
    yield


def test_jwcrypto_opens_what_citychain_exports() -> None:
    signer = Signer(ED25519, bytes(range(32)))
    token = export_key(signer, "correct horse battery staple")
    header = json.loads(unb64url(token.split(".")[0]))
    assert header["alg"] == "PBES2-HS512+A256KW" and header["enc"] == "A256GCM"
    assert header["cty"] == "jwk+json" and header["p2c"] == DEFAULT_ITERATIONS
    assert len(unb64url(header["p2s"])) == 16
    jwe = JWE()
    jwe.deserialize(token, key=JWK.from_password("correct horse battery staple"))
    jwk = json.loads(jwe.payload)
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert unb64url(jwk["d"]) == signer.secret and unb64url(jwk["x"]) == signer.public_key
    assert jwk["kid"] == did_key(signer.public_key)
    # and the private JWK is one jwcrypto reads as that Ed25519 key
    assert JWK(**jwk).export_public(as_dict=True)["x"] == b64url(signer.public_key)
    # two exports of one key share nothing but the algorithm names
    again = export_key(signer, "correct horse battery staple").split(".")
    assert all(a != b for a, b in zip(token.split("."), again, strict=True))


def test_citychain_opens_what_jwcrypto_makes() -> None:
    signer = Signer(ED25519, b"\x42" * 32)
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(signer.public_key),
        "d": b64url(signer.secret),
    }
    header = {"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": 2_000}
    jwe = JWE(json.dumps(jwk).encode(), json.dumps(header))
    jwe.add_recipient(JWK.from_password("another passphrase"))
    opened = import_key(jwe.serialize(compact=True), "another passphrase")
    assert opened.secret == signer.secret


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), passphrase=st.text(min_size=1, max_size=40))
def test_export_then_import_is_the_same_key(seed: bytes, passphrase: str) -> None:
    signer = Signer(ED25519, seed)
    passphrase = "heron quartz lantern maple " + passphrase  # any text after a strong start
    token = export_key(signer, passphrase, iterations=MIN_ITERATIONS)
    assert import_key(token, passphrase).secret == seed


RIGHT = "the right passphrase for this file"


def test_a_wrong_passphrase_or_a_changed_byte_is_refused() -> None:
    token = export_key(Signer(ED25519, b"\x07" * 32), RIGHT, iterations=MIN_ITERATIONS)
    with pytest.raises(KeystoreError) as wrong:
        import_key(token, "wrong")
    assert wrong.value.code == ErrorCode.WRONG_PASSPHRASE
    parts = token.split(".")
    for i in range(1, 5):  # the wrapped key, IV, ciphertext, tag: each bit matters
        raw = bytearray(unb64url(parts[i]))
        raw[len(raw) // 2] ^= 0x01
        bent = ".".join([*parts[:i], b64url(bytes(raw)), *parts[i + 1 :]])
        with pytest.raises(KeystoreError) as err:
            import_key(bent, RIGHT)
        assert err.value.code in (ErrorCode.WRONG_PASSPHRASE, ErrorCode.BAD_KEYSTORE), i
    # the protected header is the cipher's additional data: a changed p2s fails it too
    header = json.loads(unb64url(parts[0]))
    header["p2s"] = b64url(os.urandom(16))
    bent = ".".join([b64url(json.dumps(header).encode()), *parts[1:]])
    with pytest.raises(KeystoreError) as err:
        import_key(bent, RIGHT)
    assert err.value.code == ErrorCode.WRONG_PASSPHRASE


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not a key", "five base64url parts"),
        ("a.b.c.d.e", "not base64url"),
        (".".join([b64url(b'{"alg":"dir","enc":"A256GCM","p2s":"AAAAAAAAAAA"}')] + ["AA"] * 4),
         "PBES2-HS512+A256KW"),
        (".".join([b64url(b'{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","p2s":"AAAAAAAAAAA",'
                          b'"p2c":999999999}')] + ["AA"] * 4), "p2c must be"),
        ("x" * 20_000, "at most"),
    ],
)  # fmt: skip
def test_what_is_no_key_file_is_refused_in_words(text: str, fragment: str) -> None:
    with pytest.raises(KeystoreError) as err:
        import_key(text, "p")
    assert err.value.code == ErrorCode.BAD_KEYSTORE
    assert fragment in err.value.message and err.value.message.startswith("not a key file")


def test_only_ed25519_keys_and_a_passphrase() -> None:
    sm2 = get_suite("sm2-sm3")
    with pytest.raises(InvalidInput, match="WebCrypto has no SM2"):
        export_key(Signer(sm2, sm2.generate_secret()), "p")
    with pytest.raises(InvalidInput, match="needs a passphrase"):
        export_key(Signer(ED25519, b"\x01" * 32), "")


@pytest.mark.parametrize(
    "weak", ["p", "password123", "Summer2026!", "qwertyuiop", "phone pass", "城市链的密码很好"]
)
def test_a_passphrase_easy_to_guess_is_refused_with_advice(weak: str) -> None:
    """The file leaves the machine, so its passphrase meets offline guessing: one that
    zxcvbn finds guessable in under 10^10 tries is refused, saying how guessable and what
    would do; nothing is written. A sentence of uncommon words passes."""
    with pytest.raises(InvalidInput) as err:
        export_key(Signer(ED25519, b"\x01" * 32), weak)
    assert err.value.code == ErrorCode.WEAK_PASSPHRASE
    assert "too easy to guess" in err.value.message and "10^10" in err.value.message
    assert len(weak) < 3 or weak not in err.value.message  # never echoed
    export_key(Signer(ED25519, b"\x01" * 32), "herons nest under the old stone bridge")


def test_the_wallet_and_the_cli_export_and_import_a_key(tmp_path: Path) -> None:
    w = Wallet.create(tmp_path / "w.json", "wallet pass", kdf_level="interactive")
    did = w.new_key("default")
    env = {
        **os.environ,
        "CITYCHAIN_WALLET": str(tmp_path / "w.json"),
        "CITYCHAIN_WALLET_PASSPHRASE": "wallet pass",
        "CITYCHAIN_KEY_FILE_PASSPHRASE": "a phone passphrase",
        "CITYCHAIN_PASSPHRASE": "the node's: never the key file's",
    }
    r = subprocess.run(
        [*CLI, "wallet", "export-key", "-o", str(tmp_path / "me.jwe")],
        env={**env, "CITYCHAIN_KEY_FILE_PASSPHRASE": "letmein1"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode != 0 and "weak_passphrase" in r.stderr, r.stderr
    assert "too easy to guess" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "me.jwe").exists()  # nothing written
    r = subprocess.run(
        [*CLI, "wallet", "export-key", "-o", str(tmp_path / "me.jwe")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert did in r.stdout and "mode 0600" in r.stdout
    assert (tmp_path / "me.jwe").stat().st_mode & 0o777 == 0o600
    assert import_key((tmp_path / "me.jwe").read_text(), "a phone passphrase").secret == (
        w.signer().secret
    )
    # A second wallet takes the key in under a name of its own.
    Wallet.create(tmp_path / "w2.json", "wallet pass", kdf_level="interactive")
    env2 = {**env, "CITYCHAIN_WALLET": str(tmp_path / "w2.json")}
    r = subprocess.run(
        [*CLI, "wallet", "import-key", "phone", str(tmp_path / "me.jwe")],
        env=env2, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and did in r.stdout, r.stderr
    assert Wallet.open(tmp_path / "w2.json", "wallet pass").keys() == {"phone": did}
    r = subprocess.run(
        [*CLI, "wallet", "import-key", "again", str(tmp_path / "me.jwe")],
        env={**env2, "CITYCHAIN_KEY_FILE_PASSPHRASE": "wrong"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode != 0 and "wrong_passphrase" in r.stderr and "Traceback" not in r.stderr
