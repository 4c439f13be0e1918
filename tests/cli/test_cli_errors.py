"""Bad input to the `citychain` script, run as a user runs it (a subprocess): every refusal is
one line ``error [code]: message`` on stderr with exit status 1, never a traceback.

The cases are the ones a person meets first: a mistyped or unreachable ``--node``, malformed
JSON, a key that is not there, a wrong passphrase, a broken genesis or config file, a command
line the parser refuses, and a passphrase prompt with nothing to read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "citychain.cli.main"]
#: How the hints name this program run as CLI from the tests' working directory.
_EXE = Path(os.path.abspath(sys.executable))
RUN_AS = (
    f"{_EXE.relative_to(Path.cwd()) if _EXE.is_relative_to(Path.cwd()) else _EXE}"
    " -m citychain.cli.main"
)
ZERO = "00" * 20


def citychain(
    *args: str, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full, stdin=stdin, timeout=120
    )


def one_error_line(r: subprocess.CompletedProcess[str], code: str, words: str) -> str:
    """``r`` failed with exit status 1 and said exactly one line ``error [code]: ...``."""
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error [{code}]: "), lines[0]
    assert words in lines[0], lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node home made by `citychain init` (keys encrypted with a known passphrase)."""
    root = tmp_path_factory.mktemp("cli-errors")
    pw = root / "pw"
    pw.write_text("the right passphrase\n")
    made = citychain("init", "--home", str(root / "node"), "--passphrase-file", str(pw))
    assert made.returncode == 0, made.stderr
    return root / "node"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("notaurl", "'notaurl' is not the http:// or https:// URL of a node's API"),
        ("ftp://x", "'ftp://x' is not the http:// or https:// URL"),
        ("http://[::1", "'http://[::1' is not a URL"),
    ],
)
def test_a_node_url_that_is_not_one(url: str, words: str) -> None:
    line = one_error_line(citychain("status", "--node", url), "bad_arguments", words)
    assert line.endswith(f"(see `{RUN_AS} status --help`)")
    # the same from the environment
    one_error_line(citychain("status", env={"CITYCHAIN_NODE": url}), "bad_arguments", words)


def test_an_unreachable_node(home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    one_error_line(citychain("status", "--node", url), "unavailable", f"cannot reach node at {url}")
    one_error_line(citychain("gov", "orgs", "--node", url), "unavailable", url)
    env = {"CITYCHAIN_HOME": str(home), "CITYCHAIN_PASSPHRASE": "the right passphrase"}
    one_error_line(
        citychain("bench", "transfers", "--key", "alice", "--node", url, env=env),
        "unavailable",
        f"cannot reach node at {url}",
    )


def test_malformed_json_arguments(home: Path) -> None:
    env = {"CITYCHAIN_HOME": str(home), "CITYCHAIN_PASSPHRASE": "the right passphrase"}
    one_error_line(
        citychain("tx", "send", "token", "transfer", "--args", "{bad", "--key", "alice", env=env),
        "bad_arguments",
        "--args is not valid JSON",
    )
    one_error_line(
        citychain("query", "contract", "token", "balance", "--args", "[1]", env=env),
        "bad_arguments",
        "--args must be a JSON object",
    )
    one_error_line(
        citychain("gov", "propose", "add_org", "--params-json", "{", "--key", "x", env=env),
        "bad_arguments",
        "--params-json is not valid JSON",
    )


def test_a_missing_key_and_a_wrong_passphrase(home: Path, tmp_path: Path) -> None:
    transfer = ("tx", "transfer", "--to", ZERO, "--amount", "1", "--node", "http://127.0.0.1:1")
    env = {"CITYCHAIN_HOME": str(home), "CITYCHAIN_PASSPHRASE": "the right passphrase"}
    one_error_line(
        citychain(*transfer, "--key", "nobody", env=env), "not_found", "no key named 'nobody'"
    )
    one_error_line(
        citychain(*transfer, "--key", str(tmp_path / "gone.json"), env=env),
        "not_found",
        "gone.json",
    )
    wrong = {**env, "CITYCHAIN_PASSPHRASE": "a wrong one"}
    one_error_line(
        citychain(*transfer, "--key", "alice", env=wrong), "wrong_passphrase", "wrong passphrase"
    )
    one_error_line(
        citychain(*transfer, "--key", "alice", "--passphrase-file", str(tmp_path / "no"), env=env),
        "wrong_passphrase",
        "cannot read passphrase file",
    )


def test_a_broken_genesis_or_config_file(home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "config").mkdir(parents=True)
    for name in ("node.toml", "node_key.json"):
        (broken / "config" / name).write_bytes((home / "config" / name).read_bytes())
    (broken / "config" / "genesis.json").write_text("{not json")
    env = {"CITYCHAIN_PASSPHRASE": "the right passphrase"}
    start = ("start", "--home", str(broken), "--port", str(free_port()))
    one_error_line(citychain(*start, env=env), "bad_config", "genesis.json: not valid JSON")
    genesis = (home / "config" / "genesis.json").read_bytes()
    (broken / "config" / "genesis.json").write_bytes(genesis)
    toml = (home / "config" / "node.toml").read_text()
    (broken / "config" / "node.toml").write_text(toml.replace("[api]", "[api]\nportt = 1"))
    one_error_line(citychain(*start, env=env), "bad_config", "unknown key 'portt' in [api]")
    (broken / "config" / "node.toml").write_text("[api\n")
    one_error_line(citychain(*start, env=env), "bad_config", "node.toml: not valid TOML")
    one_error_line(
        citychain("start", "--home", str(tmp_path / "nothing-here"), env=env),
        "bad_config",
        "no node config",
    )
    one_error_line(
        citychain("init", "--home", str(tmp_path / "new"), "--passphrase-file", "/nonexistent"),
        "wrong_passphrase",
        "cannot read passphrase file /nonexistent",
    )


def test_a_command_line_the_parser_refuses() -> None:
    line = one_error_line(
        citychain("tx", "transfer", "--key", "a", "--to", ZERO, "--amount", "-5"),
        "bad_arguments",
        "Invalid value for '--amount'",
    )
    assert line.endswith(f"(see `{RUN_AS} tx transfer --help`)")
    one_error_line(citychain("no-such-command"), "bad_arguments", "No such command")
    one_error_line(
        citychain("query", "balance", ZERO, "--no-such-option"),
        "bad_arguments",
        "No such option: --no-such-option",
    )
    one_error_line(citychain("gov", "vote"), "bad_arguments", "Missing argument")


def test_a_passphrase_prompt_with_nothing_to_read(home: Path) -> None:
    r = citychain(
        "tx",
        "transfer",
        "--key",
        "alice",
        "--to",
        ZERO,
        "--amount",
        "1",
        env={"CITYCHAIN_HOME": str(home)},
    )
    assert "Traceback" not in r.stdout + r.stderr and "GetPassWarning" not in r.stderr
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1].strip()
    assert last.startswith("error [unavailable]: aborted: a prompt got no answer"), r.stderr
    assert "CITYCHAIN_PASSPHRASE" in last


def test_help_and_version_still_exit_0() -> None:
    assert citychain("--version").returncode == 0
    shown = citychain("gov", "--help")
    assert shown.returncode == 0 and "propose" in shown.stdout
