"""The double-sign guard: monotonic (height, round, step), identical re-sign, durable state,
refusal of unusable state files, and a real kill -9 right after a signature is returned."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from citychain.consensus.privval import FORMAT, PrivValidator, SignStep
from citychain.crypto import ED25519, CryptoSuite, Signer
from citychain.errors import (
    ConfigError,
    DoubleSignRefused,
    ErrorCode,
    InternalError,
    InvalidInput,
)

SECRET = bytes(range(32))
PROPOSAL, PREVOTE, PRECOMMIT = SignStep.PROPOSAL, SignStep.PREVOTE, SignStep.PRECOMMIT


class RandomizedSuite(CryptoSuite):
    """A toy randomised scheme (like SM2 or ECDSA): signing twice gives different bytes, so a
    test sees whether a signature was re-made or returned from the state file. Counts signs."""

    name = "test-randomized"
    public_key_size = 32
    signature_size = 64
    secret_size = 32
    hash_name = "sha256"

    def __init__(self) -> None:
        self.hash_new = hashlib.sha256
        self.sign_calls = 0

    def generate_secret(self) -> bytes:
        return os.urandom(32)

    def public_key(self, secret: bytes) -> bytes:
        return hashlib.sha256(b"pk" + secret).digest()

    def sign(self, secret: bytes, message: bytes) -> bytes:
        self.sign_calls += 1
        nonce = os.urandom(32)
        return nonce + hashlib.sha256(self.public_key(secret) + nonce + message).digest()

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return (
            len(signature) == 64
            and hashlib.sha256(public_key + signature[:32] + message).digest() == signature[32:]
        )

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()


def ed_signer() -> Signer:
    return Signer(ED25519, SECRET)


# --------------------------------------------------------------------------- the rules


def test_signs_in_order_and_verifies(tmp_path: Path) -> None:
    pv = PrivValidator(ed_signer(), tmp_path / "state.json")
    assert pv.last_signed() is None and pv.public_key == ed_signer().public_key
    for h, r, s in [(1, 0, PROPOSAL), (1, 0, PREVOTE), (1, 0, PRECOMMIT), (1, 1, PREVOTE),
                    (1, 3, PROPOSAL), (2, 0, PRECOMMIT), (9, 0, PROPOSAL)]:  # fmt: skip
        msg = b"vote %d/%d/%d" % (h, r, s)
        sig = pv.sign(h, r, s, msg)
        assert ED25519.verify(pv.public_key, msg, sig)
        assert pv.last_signed() == (h, r, int(s))


def test_identical_resign_returns_the_stored_signature(tmp_path: Path) -> None:
    suite = RandomizedSuite()
    signer = Signer(suite, SECRET)
    pv = PrivValidator(signer, tmp_path / "state.json")
    first = pv.sign(4, 1, PREVOTE, b"block A")
    assert pv.sign(4, 1, PREVOTE, b"block A") == first
    assert suite.sign_calls == 1
    again = PrivValidator(signer, tmp_path / "state.json")  # e.g. after a crash before the WAL
    assert again.sign(4, 1, PREVOTE, b"block A") == first
    assert suite.sign_calls == 1


def test_same_position_different_bytes_refused(tmp_path: Path) -> None:
    pv = PrivValidator(ed_signer(), tmp_path / "state.json")
    pv.sign(5, 2, PREVOTE, b"block A")
    with pytest.raises(DoubleSignRefused) as exc:
        pv.sign(5, 2, PREVOTE, b"block B")
    err = exc.value
    assert err.code == ErrorCode.DOUBLE_SIGN
    assert "refusing to sign prevote at height 5 round 2" in err.message
    assert "prevote at height 5 round 2 was already signed over different bytes" in err.message
    assert hashlib.sha256(b"block A").hexdigest()[:16] in err.message
    assert pv.last_signed() == (5, 2, int(PREVOTE))


@pytest.mark.parametrize(
    ("h", "r", "s"),
    [(5, 2, PROPOSAL), (5, 1, PRECOMMIT), (4, 9, PRECOMMIT), (1, 0, PROPOSAL)],
)
def test_earlier_position_refused(tmp_path: Path, h: int, r: int, s: SignStep) -> None:
    pv = PrivValidator(ed_signer(), tmp_path / "state.json")
    pv.sign(5, 2, PREVOTE, b"block A")
    with pytest.raises(DoubleSignRefused) as exc:
        pv.sign(h, r, s, b"block A")
    msg = exc.value.message
    assert f"refusing to sign {s.name.lower()} at height {h} round {r}" in msg
    assert "already signed prevote at height 5 round 2" in msg


@pytest.mark.parametrize(("h", "r", "s"), [(0, 0, 1), (-1, 0, 1), (1, -1, 1), (1, 0, 4), (1, 0, 0)])
def test_malformed_positions_refused(tmp_path: Path, h: int, r: int, s: int) -> None:
    pv = PrivValidator(ed_signer(), tmp_path / "state.json")
    with pytest.raises(InvalidInput) as exc:
        pv.sign(h, r, s, b"x")  # type: ignore[arg-type]
    assert exc.value.code == ErrorCode.BAD_ARGUMENTS
    assert pv.last_signed() is None and not (tmp_path / "state.json").exists()


# --------------------------------------------------------------------------- the state file


def test_state_persists_across_instances(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.json"
    with caplog.at_level(logging.WARNING):
        pv = PrivValidator(ed_signer(), path)
    assert "no signing state" in caplog.text and str(path) in caplog.text
    sig = pv.sign(7, 0, PRECOMMIT, b"commit")
    doc = json.loads(path.read_text())  # persisted before sign returned
    assert doc == {
        "format": FORMAT,
        "public_key": pv.public_key.hex(),
        "height": 7,
        "round": 0,
        "step": "precommit",
        "sign_bytes": b"commit".hex(),
        "signature": sig.hex(),
    }
    again = PrivValidator(ed_signer(), path)
    assert again.last_signed() == (7, 0, 3)
    with pytest.raises(DoubleSignRefused):
        again.sign(7, 0, PRECOMMIT, b"another commit")
    assert again.sign(8, 0, PROPOSAL, b"next") and not list(tmp_path.glob(".*.tmp"))


def test_state_is_durable_before_the_signature_is_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    pv = PrivValidator(ed_signer(), tmp_path / "state.json")

    def fsync(fd: int) -> None:
        kind = "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(f"replace {Path(src).name} -> {Path(dst).name}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    pv.sign(1, 0, PROPOSAL, b"p")
    events.append("returned")
    assert events == [
        "fsync file",
        "replace .state.json.tmp -> state.json",
        "fsync dir",
        "returned",
    ]


def _state(**changes: Any) -> dict[str, Any]:
    msg = b"m"
    doc: dict[str, Any] = {
        "format": FORMAT,
        "public_key": ed_signer().public_key.hex(),
        "height": 3,
        "round": 0,
        "step": "prevote",
        "sign_bytes": msg.hex(),
        "signature": ED25519.sign(SECRET, msg).hex(),
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


CORRUPT: list[tuple[str, bytes, str]] = [
    ("empty", b"", "not valid JSON"),
    ("truncated", json.dumps(_state()).encode()[:40], "not valid JSON"),
    ("binary", b"\xff\xfe\x00garbage", "not valid JSON"),
    ("array", b"[]", "must be an object"),
    ("missing key", json.dumps(_state(signature=None)).encode(), "must be an object"),
    ("extra key", json.dumps(_state(note="x")).encode(), "must be an object"),
    ("format", json.dumps(_state(format="v0")).encode(), "unknown format"),
    ("height type", json.dumps(_state(height="3")).encode(), "bad height"),
    ("height bool", json.dumps(_state(height=True)).encode(), "bad height"),
    ("round", json.dumps(_state(round=-1)).encode(), "bad height"),
    ("step", json.dumps(_state(step="vote")).encode(), "unknown step"),
    ("hex", json.dumps(_state(sign_bytes="zz")).encode(), "sign_bytes is not a hex"),
    ("hex type", json.dumps(_state(signature=12)).encode(), "signature is not a hex"),
    ("bad signature", json.dumps(_state(sign_bytes="6e")).encode(), "does not verify"),
    ("other key", json.dumps(_state(public_key="00" * 32)).encode(), "wrong file or wrong key"),
]


@pytest.mark.parametrize(
    ("content", "reason"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT]
)
def test_unusable_state_file_is_never_a_fresh_start(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        PrivValidator(ed_signer(), path)
    msg = exc.value.message
    assert exc.value.code == ErrorCode.BAD_CONFIG
    assert str(path) in msg and reason in msg
    assert "NOT treated as a fresh start" in msg and "Restore the file from a backup" in msg
    assert path.read_bytes() == content  # left for the operator


def test_good_handmade_state_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(_state()))
    assert PrivValidator(ed_signer(), path).last_signed() == (3, 0, 2)


def test_unreadable_state_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()  # reading a directory fails like a broken disk would
    with pytest.raises(ConfigError, match="cannot be read"):
        PrivValidator(ed_signer(), path)


def test_failed_persist_releases_nothing_and_stops_signing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    pv = PrivValidator(ed_signer(), path)
    pv.sign(1, 0, PREVOTE, b"a")

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(InternalError, match="could not persist"):
        pv.sign(1, 0, PRECOMMIT, b"a")
    monkeypatch.undo()
    with pytest.raises(InternalError, match="signs nothing more until restarted"):
        pv.sign(2, 0, PREVOTE, b"b")
    assert PrivValidator(ed_signer(), path).last_signed() == (1, 0, 2)


# --------------------------------------------------------------------------- model check


class SignerModel(RuleBasedStateMachine):
    """The guard against the obvious model: the last (position, bytes, signature)."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "state.json"
        self.suite = RandomizedSuite()
        self.signer = Signer(self.suite, SECRET)
        self.pv = PrivValidator(self.signer, self.path)
        self.last: tuple[tuple[int, int, int], bytes, bytes] | None = None

    @rule(
        h=st.integers(1, 3),
        r=st.integers(0, 2),
        s=st.sampled_from(SignStep),
        msg=st.sampled_from([b"", b"A", b"B"]),
    )
    def sign(self, h: int, r: int, s: SignStep, msg: bytes) -> None:
        position, calls = (h, r, int(s)), self.suite.sign_calls
        if self.last is None or position > self.last[0]:
            sig = self.pv.sign(h, r, s, msg)
            assert self.suite.verify(self.pv.public_key, msg, sig)
            assert self.suite.sign_calls == calls + 1
            self.last = (position, msg, sig)
        elif position == self.last[0] and msg == self.last[1]:
            assert self.pv.sign(h, r, s, msg) == self.last[2]
            assert self.suite.sign_calls == calls
        else:
            with pytest.raises(DoubleSignRefused):
                self.pv.sign(h, r, s, msg)
            assert self.suite.sign_calls == calls

    @rule()
    def restart(self) -> None:
        self.pv = PrivValidator(self.signer, self.path)

    @invariant()
    def remembers_the_last_signature(self) -> None:
        assert self.pv.last_signed() == (None if self.last is None else self.last[0])

    def teardown(self) -> None:
        self.tmp.cleanup()


TestSignerModel = SignerModel.TestCase
TestSignerModel.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- kill -9

CHILD = r"""
import sys
import time
from pathlib import Path

from citychain.consensus.privval import PrivValidator, SignStep
from citychain.crypto import ED25519, Signer

pv = PrivValidator(Signer(ED25519, bytes(range(32))), Path(sys.argv[1]))
last = pv.last_signed()
h = 1 if last is None else last[0] + 1
while True:
    sig = pv.sign(h, 0, SignStep.PREVOTE, b"block A at %d" % h)
    sys.stdout.write(f"{h} {sig.hex()}\n")
    sys.stdout.flush()
    if sys.argv[2] == "once":
        time.sleep(600)  # killed long before
    h += 1
"""


def run_and_kill(path: Path, mode: str, lines: int) -> list[tuple[int, bytes]]:
    """Run the child, read ``lines`` signatures, SIGKILL it at once; the (height, sig) read."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    got: list[tuple[int, bytes]] = []
    try:
        for _ in range(lines):
            line = proc.stdout.readline().decode()
            assert line, "the child died"
            h, sig = line.split()
            got.append((int(h), bytes.fromhex(sig)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return got


@pytest.mark.slow
def test_sigkill_right_after_sign_returns(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    [(h, sig)] = run_and_kill(path, "once", 1)
    pv = PrivValidator(ed_signer(), path)
    assert pv.last_signed() == (h, 0, int(PREVOTE))
    with pytest.raises(DoubleSignRefused):
        pv.sign(h, 0, PREVOTE, b"block B at %d" % h)
    assert pv.sign(h, 0, PREVOTE, b"block A at %d" % h) == sig  # replay re-signs, no halt


@pytest.mark.slow
def test_sigkill_at_random_instants_while_signing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rng = random.Random(7)
    for _ in range(5):
        got = run_and_kill(path, "loop", rng.randint(1, 40))
        last_h, last_sig = got[-1]
        pv = PrivValidator(ed_signer(), path)  # the file is never half-written
        signed = pv.last_signed()
        assert signed is not None and signed[0] >= last_h  # it may have signed one more
        for h, _ in got[-3:]:
            with pytest.raises(DoubleSignRefused):
                pv.sign(h, 0, PREVOTE, b"block B at %d" % h)
        if signed[0] == last_h:
            assert pv.sign(last_h, 0, PREVOTE, b"block A at %d" % last_h) == last_sig
