"""The validator's signer for consensus messages: it never signs two conflicting messages.

Theory of operation
-------------------
Every proposal and vote this node sends is signed here, at a position (height, round,
step), steps ordered PROPOSAL < PREVOTE < PRECOMMIT. Following CometBFT (``privval/file.go``,
``spec/consensus/signing.md``), :meth:`PrivValidator.sign` compares the position with the last
one it signed, lexicographically:

* later: sign, and persist (height, round, step, sign bytes, signature) *atomically and
  durably before the signature is returned* (temp file, fsync, ``os.replace``, fsync of the
  directory; CometBFT's state file once lacked the fsync, tendermint#10108). A crash at any
  instant therefore leaves either the old state, with the signature never released, or the new;
* equal, with identical sign bytes: return the stored signature without signing again. A node
  that crashed after signing but before its WAL write replays the height and asks again; it
  must get the same message back rather than halt (tendermint#247/#249, #3089). With a
  randomised scheme (SM2) a fresh signature would even be a different message;
* equal with different bytes, or earlier: :class:`DoubleSignRefused` (code ``double_sign``).
  Signing it could equivocate, which is what a Byzantine validator does.

The signer may hold its key in memory (a key file unlocked at start) or never see it: a
:class:`~citychain.crypto.pkcs11.Pkcs11Signer` (``[keys] signer = "pkcs11"``) asks a hardware
security module to sign. The checks and the durable record above happen here, in front of
either, so a module is only ever asked for a signature this validator may give; if the module
refuses or fails, the error is raised before anything is recorded and nothing is released.

The state file is JSON, so an operator can read it with ``cat`` when a refusal needs
explaining or a validator is moved between machines (the classic way to double-sign is to
move the key and not this file). It is not secret: no key in it, only what was last signed::

    {"format": "citychain/privval-state/1", "public_key": "<hex>", "height": 12, "round": 0,
     "step": "prevote", "sign_bytes": "<hex>", "signature": "<hex>"}

A missing file means a validator that has never signed (logged as a WARNING, since a moved
validator also looks like this). A file that exists but cannot be read, parsed, belongs to a
different key, or carries a signature that does not verify is *never* taken as a fresh
start: :class:`ConfigError` tells the operator what to do. If persisting fails, the signer
refuses every later request (:class:`InternalError`) until restarted: the disk is failing,
and the state on it is no longer known.

Signing is serialised by a lock, so the check and the persist are one step even if the
driver signs from several threads. Only one process may use a state file at a time. This
module takes no file lock (an instance has no close); a second node process on the same home
directory is stopped by the WAL's lock (:mod:`citychain.consensus.wal`), and a second machine
with the same key by nothing local at all: never run one key twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Final

from citychain.consensus._durable import fsync_dir as _fsync_dir
from citychain.crypto import Signer
from citychain.errors import (
    ConfigError,
    DoubleSignRefused,
    ErrorCode,
    InternalError,
    InvalidInput,
)

log = logging.getLogger(__name__)

FORMAT: Final = "citychain/privval-state/1"
_KEYS: Final = frozenset(
    {"format", "public_key", "height", "round", "step", "sign_bytes", "signature"}
)
_MAX_STATE_BYTES: Final = 16 * 1024 * 1024


class SignStep(IntEnum):
    """The step of a signed consensus message, in the order a round visits them."""

    PROPOSAL = 1
    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True, slots=True)
class _LastSign:
    height: int
    round: int
    step: SignStep
    sign_bytes: bytes
    signature: bytes

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))

    def describe(self) -> str:
        return f"{self.step.name.lower()} at height {self.height} round {self.round}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _check_position(height: int, round_: int, step: int) -> SignStep:
    if type(height) is not int or height < 1:
        raise InvalidInput(
            f"height must be an integer >= 1, got {height!r}", ErrorCode.BAD_ARGUMENTS
        )
    if type(round_) is not int or round_ < 0:
        raise InvalidInput(
            f"round must be an integer >= 0, got {round_!r}", ErrorCode.BAD_ARGUMENTS
        )
    try:
        return SignStep(step)
    except ValueError:
        raise InvalidInput(
            f"step must be one of {[int(s) for s in SignStep]}, got {step!r}",
            ErrorCode.BAD_ARGUMENTS,
        ) from None


class PrivValidator:
    """Signs consensus messages with ``signer``, remembering the last one in ``state_file``."""

    def __init__(self, signer: Signer, state_file: Path) -> None:
        self._signer = signer
        self._public_key = signer.public_key
        self._path = Path(state_file)
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._last = self._load()

    @property
    def public_key(self) -> bytes:
        return self._public_key

    @property
    def state_file(self) -> Path:
        return self._path

    def last_signed(self) -> tuple[int, int, int] | None:
        """(height, round, step) of the last message signed, or None if never signed."""
        last = self._last
        return None if last is None else last.position

    def sign(self, height: int, round_: int, step: SignStep, sign_bytes: bytes) -> bytes:
        """The signature of ``sign_bytes`` at (height, round, step), durably recorded first.

        Raises :class:`DoubleSignRefused` if that could contradict an earlier signature,
        :class:`InvalidInput` for a malformed position, :class:`InternalError` if the state
        cannot be persisted (the signature is then not released).
        """
        checked_step = _check_position(height, round_, step)
        message = bytes(sign_bytes)
        position = (height, round_, int(checked_step))
        attempt = f"{checked_step.name.lower()} at height {height} round {round_}"
        with self._lock:
            if self._broken is not None:
                raise InternalError(self._broken)
            last = self._last
            if last is not None:
                if position == last.position:
                    if message == last.sign_bytes:
                        return last.signature
                    raise self._refuse(
                        attempt,
                        f"{last.describe()} was already signed over different bytes "
                        f"(sha256 {_digest(last.sign_bytes)}…, now {_digest(message)}…); "
                        "two messages for one height, round and step are equivocation",
                    )
                if position < last.position:
                    raise self._refuse(
                        attempt,
                        f"this validator already signed {last.describe()}, which comes later; "
                        "signing an earlier step could contradict what it sent",
                    )
            signature = self._signer.sign(message)
            new = _LastSign(height, round_, checked_step, message, signature)
            try:
                self._persist(new)
            except OSError as exc:
                self._broken = (
                    f"could not persist the signing state to {self._path} ({exc}); this "
                    "validator signs nothing more until restarted, because the state on disk "
                    "is no longer known. Check the disk, then restart the node."
                )
                raise InternalError(self._broken) from exc
            self._last = new
            return signature

    def __repr__(self) -> str:
        return f"PrivValidator({self._public_key.hex()}, last_signed={self.last_signed()})"

    # ----------------------------------------------------------------------------- internals

    def _refuse(self, attempt: str, why: str) -> DoubleSignRefused:
        return DoubleSignRefused(f"refusing to sign {attempt}: {why} (state file {self._path})")

    def _persist(self, state: _LastSign) -> None:
        doc = {
            "format": FORMAT,
            "public_key": self._public_key.hex(),
            "height": state.height,
            "round": state.round,
            "step": state.step.name.lower(),
            "sign_bytes": state.sign_bytes.hex(),
            "signature": state.signature.hex(),
        }
        data = (json.dumps(doc, indent=2) + "\n").encode()
        tmp = self._path.with_name(f".{self._path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with memoryview(data) as view:
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        _fsync_dir(self._path.parent)

    def _load(self) -> _LastSign | None:
        path = self._path
        try:
            with open(path, "rb") as f:
                raw = f.read(_MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            log.warning(
                "no signing state at %s: starting as a validator that has never signed. If "
                "this key has signed before (on another machine, or with another home "
                "directory), stop now and bring its state file here.",
                path,
            )
            return None
        except OSError as exc:
            raise self._unusable(f"it cannot be read ({exc})") from exc
        if len(raw) > _MAX_STATE_BYTES:
            raise self._unusable(f"it is larger than {_MAX_STATE_BYTES} bytes")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._unusable(f"it is not valid JSON ({exc})") from None
        state = self._from_doc(doc)
        if not self._signer.suite.verify(self._public_key, state.sign_bytes, state.signature):
            raise self._unusable("its signature does not verify over its sign_bytes")
        return state

    def _from_doc(self, doc: Any) -> _LastSign:
        if not isinstance(doc, dict) or set(doc) != _KEYS:
            found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
            raise self._unusable(f"it must be an object with keys {sorted(_KEYS)}, got {found}")
        if doc["format"] != FORMAT:
            raise self._unusable(f"unknown format {doc['format']!r} (expected {FORMAT!r})")
        public_key = self._hex(doc, "public_key")
        if public_key != self._public_key:
            raise self._unusable(
                f"it records signatures of key {public_key.hex()}, but this validator's key is "
                f"{self._public_key.hex()}: wrong file or wrong key"
            )
        height, round_ = doc["height"], doc["round"]
        if type(height) is not int or height < 1 or type(round_) is not int or round_ < 0:
            raise self._unusable(f"bad height {height!r} or round {round_!r}")
        steps = {s.name.lower(): s for s in SignStep}
        if doc["step"] not in steps:
            raise self._unusable(f"unknown step {doc['step']!r} (one of {sorted(steps)})")
        return _LastSign(
            height,
            round_,
            steps[doc["step"]],
            self._hex(doc, "sign_bytes"),
            self._hex(doc, "signature"),
        )

    def _hex(self, doc: dict[str, Any], key: str) -> bytes:
        value = doc[key]
        try:
            if not isinstance(value, str):
                raise ValueError(f"a {type(value).__name__}")
            return bytes.fromhex(value)
        except ValueError as exc:
            raise self._unusable(f"{key} is not a hex string ({exc})") from None

    def _unusable(self, why: str) -> ConfigError:
        return ConfigError(
            f"the validator signing state {self._path} is unusable: {why}. It is NOT treated as "
            "a fresh start: a validator that forgets what it signed can double-sign. Restore "
            "the file from a backup. Only if you are certain that no process holding this key "
            "has signed at the chain's current height or above (all of them stopped, and the "
            "chain past the last height this validator voted at) may you move the file aside "
            "and restart."
        )
