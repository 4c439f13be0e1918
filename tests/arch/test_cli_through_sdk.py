"""The CLI reaches nodes only through the SDK: no module under citychain/cli, and no platform
service's commands (``citychain/services/<name>/cli.py``, or a ``cli/`` package there), import
an HTTP client of their own (so errors, timeouts and answers are checked and worded one way,
the SDK's).

A module that still does raw HTTP would be named in :data:`RAW_HTTP`, to move onto the SDK;
an entry that is no longer needed fails too, so the list only shrinks. It is empty: what the
commands needed of their own (a short-timeout probe of a node, the check of a ``--node``
URL) is the SDK's now (:func:`citychain.sdk.probe_node`, :func:`citychain.sdk.check_node_url`).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "citychain"
CLI = SRC / "cli"
SERVICES = SRC / "services"

#: HTTP client libraries (top-level module names, or a dotted module of the standard library).
HTTP_CLIENTS = ("httpx", "requests", "aiohttp", "urllib3", "urllib.request", "http.client")

#: Command modules (paths relative to citychain/) that still import an HTTP client: to move
#: onto the SDK. Only ever shrinks.
RAW_HTTP: frozenset[str] = frozenset()


def _http_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if any(name == c or name.startswith(c + ".") for c in HTTP_CLIENTS):
                found.append(f"line {node.lineno}: import {name}")
    return found


def _service_commands(services: Path = SERVICES) -> list[Path]:
    """Every service's commands: ``<services>/<name>/cli.py`` and any ``<name>/cli/``
    package; none while there is no services folder."""
    if not services.is_dir():
        return []
    return sorted([*services.glob("*/cli.py"), *services.glob("*/cli/**/*.py")])


def _command_modules() -> list[Path]:
    return [*sorted(CLI.rglob("*.py")), *_service_commands()]


def _name(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def _offenders(paths: list[Path]) -> dict[str, list[str]]:
    return {
        _name(p): hits for p in paths if _name(p) not in RAW_HTTP and (hits := _http_imports(p))
    }


def test_cli_modules_import_no_http_client() -> None:
    scanned = sorted(CLI.rglob("*.py"))
    assert CLI / "main.py" in scanned and CLI / "net.py" in scanned, "cli/ was not scanned"
    offenders = _offenders(scanned)
    assert offenders == {}, (
        "these cli modules talk HTTP themselves; use the SDK (citychain.sdk.Client) instead: "
        f"{offenders}"
    )


def test_service_commands_import_no_http_client() -> None:
    """Holds with or without a services folder; never vacuously: cli/ is scanned too."""
    scanned = _command_modules()
    assert CLI / "main.py" in scanned, "cli/ was not scanned"
    assert set(scanned) >= set(SERVICES.glob("*/cli.py"))  # none if there is no folder yet
    offenders = _offenders(scanned)
    assert offenders == {}, (
        "these commands talk HTTP themselves; use the SDK (citychain.sdk.Client) instead: "
        f"{offenders}"
    )


def test_every_allowed_module_still_needs_its_entry() -> None:
    stale = sorted(n for n in RAW_HTTP if not (SRC / n).exists() or not _http_imports(SRC / n))
    assert stale == [], f"no longer import an HTTP client; remove them from RAW_HTTP: {stale}"


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import httpx\n    from urllib.request import urlopen\n")
    assert _http_imports(sample) == ["line 2: import httpx", "line 3: import urllib.request"]


def test_the_check_finds_every_service_command(tmp_path: Path) -> None:
    """On a sample tree: a service's cli.py and cli/ package are scanned, its other parts
    not; no services folder scans nothing (and fails nothing)."""
    assert _service_commands(tmp_path / "services") == []
    services = tmp_path / "services"
    for rel in ("toy/cli.py", "box/cli/__init__.py", "box/cli/more.py", "toy/sdk.py"):
        (services / rel).parent.mkdir(parents=True, exist_ok=True)
        (services / rel).write_text("import httpx\n")
    assert [p.relative_to(services).as_posix() for p in _service_commands(services)] == [
        "box/cli/__init__.py",
        "box/cli/more.py",
        "toy/cli.py",
    ]
    assert _http_imports(services / "toy" / "cli.py") == ["line 1: import httpx"]
