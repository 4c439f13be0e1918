"""Where a node's key passphrase comes from, and the one place it may be written down.

A passphrase that sits in a file beside the encrypted key protects nothing: whoever copies the
disk has both. So a node takes its passphrase, in this order, from

1. ``--passphrase-fd N`` or ``--passphrase-stdin`` of ``citychain start`` (read once, at start,
   by the command: :func:`read_fd`);
2. the environment variable ``CITYCHAIN_PASSPHRASE`` (:data:`ENV`);
3. a systemd credential, ``$CREDENTIALS_DIRECTORY/citychain-passphrase`` (:data:`CREDENTIAL`:
   ``LoadCredential=`` or ``LoadCredentialEncrypted=`` in the unit; systemd keeps it on a
   private tmpfs);
4. only on a test network: the passphrase file beside the key (``config/passphrase``), which
   ``citychain net up`` and ``citychain init`` (without a passphrase of yours) write so that
   their nodes start unattended.

citychain never writes the passphrase anywhere but in case 4. A node whose home has such a
file refuses to start (:func:`refuse_plaintext_file`) unless node.toml says, in words, that
this is a test network: ``[keys] allow_plaintext_passphrase = "this is a test network"``
(:data:`TEST_NETWORK_PHRASE`); those two commands write that line too, and it is what marks a
home as a demo/test home. A real deployment deletes the file and uses 1-3.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from citychain.errors import ConfigError, ErrorCode, InvalidInput, KeystoreError

#: The words that allow a plaintext passphrase file beside the key (test networks only).
TEST_NETWORK_PHRASE: Final = "this is a test network"
#: The environment variable holding the passphrase.
ENV: Final = "CITYCHAIN_PASSPHRASE"
#: The systemd credential's name (a file in ``$CREDENTIALS_DIRECTORY``).
CREDENTIAL: Final = "citychain-passphrase"
#: The note written next to a plaintext passphrase file, as ``<file>.README``.
FILE_NOTE: Final = """\
TEST NETWORK ONLY.

The file next to this one holds, in plain text, the passphrase that encrypts this test
network's keys, so that its nodes start unattended. Anyone who copies it can unlock every key
it protects. citychain writes it only for a local demo or test network (`citychain net up`,
`citychain init` without a passphrase of yours), and node.toml says so in words:
[keys] allow_plaintext_passphrase = "this is a test network".

A real deployment never keeps the passphrase on the node's disk: give it with
$CITYCHAIN_PASSPHRASE, `citychain start --passphrase-fd N` or `--passphrase-stdin`, or the
systemd credential citychain-passphrase, or keep the validator key in a hardware security
module ([keys] signer = "pkcs11"). See README.md, section Keys.
"""
#: Longest passphrase read from a descriptor, stdin or a credential.
MAX_BYTES: Final = 64 * 1024


def _text(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeystoreError(
            f"{where}: the passphrase is not UTF-8", ErrorCode.WRONG_PASSPHRASE
        ) from None
    text = text.rstrip("\r\n")
    if not text:
        raise KeystoreError(f"{where}: the passphrase is empty", ErrorCode.WRONG_PASSPHRASE)
    return text


def read_fd(fd: int, where: str) -> str:
    """The passphrase written to descriptor ``fd`` (up to EOF or a newline), which is closed.

    ``where`` names the descriptor in messages (``--passphrase-fd 3``, ``stdin``)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= MAX_BYTES:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if b"\n" in chunk:
                break
    except OSError as exc:
        raise KeystoreError(
            f"{where}: cannot read the passphrase ({exc.strerror})", ErrorCode.WRONG_PASSPHRASE
        ) from None
    finally:
        if fd > 2:
            with contextlib.suppress(OSError):
                os.close(fd)
    data = b"".join(chunks)
    if size > MAX_BYTES:
        raise KeystoreError(
            f"{where}: the passphrase is longer than {MAX_BYTES} bytes", ErrorCode.WRONG_PASSPHRASE
        )
    return _text(data.split(b"\n", 1)[0], where)


def from_environment(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(passphrase, where it came from) from ``CITYCHAIN_PASSPHRASE`` or the systemd
    credential, or None when neither is set."""
    environ: Mapping[str, str] = os.environ if env is None else env
    value = environ.get(ENV)
    if value:
        return value, f"${ENV}"
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        path = Path(directory) / CREDENTIAL
        try:
            data = path.read_bytes()[: MAX_BYTES + 1]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeystoreError(
                f"{path}: cannot read the credential ({exc.strerror})", ErrorCode.WRONG_PASSPHRASE
            ) from None
        return _text(data, str(path)), f"systemd credential {CREDENTIAL}"
    return None


def read_plaintext_file(path: Path) -> str | None:
    """The passphrase in a test network's passphrase file, or None if there is none."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeystoreError(
            f"{path}: cannot read the passphrase file ({exc})", ErrorCode.WRONG_PASSPHRASE
        ) from None
    return text or None


def note_path(passphrase_file: Path) -> Path:
    """Where the note that says "test network only" sits next to ``passphrase_file``."""
    return passphrase_file.with_name(passphrase_file.name + ".README")


def write_note(passphrase_file: Path) -> None:
    """Write the "test network only" note next to a plaintext passphrase file."""
    note_path(passphrase_file).write_text(FILE_NOTE, encoding="utf-8")


def refuse_plaintext_file(path: Path, config_file: Path) -> ConfigError:
    """The one-line refusal to start a node whose home keeps its passphrase in plain text."""
    return ConfigError(
        f"{path}: the key passphrase is stored in plain text beside the validator key, so a "
        "copy of this disk gives the key away; delete the file and give the passphrase with "
        f"${ENV}, --passphrase-fd N, --passphrase-stdin or the systemd credential "
        f"{CREDENTIAL} (README: Keys), or, only if this is a test network, set "
        f'[keys] allow_plaintext_passphrase = "{TEST_NETWORK_PHRASE}" in {config_file}'
    )


#: zxcvbn's score a passphrase must reach to protect a file that leaves its machine: 4, "very
#: unguessable" (10^10 guesses or more), zxcvbn's mark for a file attacked offline through a
#: slow hash. Through a key file's 210,000 PBKDF2-SHA-512 iterations one GPU tries some
#: thousands a second: weeks for 10^10, hours for the 10^8 of a score of 3.
MIN_SCORE: Final = 4


def judge(passphrase: str, what: str) -> None:
    """Refuse (``weak_passphrase``) a new passphrase for ``what`` that is too easy to guess:
    zxcvbn's estimate (dictionaries of common passwords, words and names, keyboard patterns,
    dates, repeats and l33t spellings) below :data:`MIN_SCORE`, with its advice. zxcvbn rather
    than a rule of lengths and character classes, which passes ``Password1!`` and refuses a
    long sentence; loaded only here, when a passphrase is chosen."""
    from zxcvbn import zxcvbn  # ~50 ms to load its dictionaries: not at import

    # zxcvbn scores the first 100 characters (its own cap); a longer one is long enough.
    found = zxcvbn(passphrase[:100])
    score = int(found["score"])
    if score >= MIN_SCORE:
        return
    feedback = found.get("feedback") or {}
    advice = [str(feedback.get("warning") or ""), *map(str, feedback.get("suggestions") or [])]
    words = " ".join(a.rstrip(".") + "." for a in advice if a) or "Add uncommon words."
    raise InvalidInput(
        f"the passphrase for {what} is too easy to guess: about "
        f"10^{float(found['guesses_log10']):.0f} guesses (zxcvbn score {score} of 4), where "
        f"10^10 or more are needed (score {MIN_SCORE}). {words} A sentence of four or five "
        "uncommon words, or a dozen characters of one in Chinese, is enough.",
        ErrorCode.WEAK_PASSPHRASE,
    )
