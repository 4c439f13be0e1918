"""The CLI reaches nodes only through the SDK: no module under citychain/cli imports an HTTP
client of its own (so errors, timeouts and answers are checked and worded one way, the SDK's).

A module that still does raw HTTP is named in :data:`RAW_HTTP`, to move onto the SDK; an
entry that is no longer needed fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "src" / "citychain" / "cli"

#: HTTP client libraries (top-level module names, or a dotted module of the standard library).
HTTP_CLIENTS = ("httpx", "requests", "aiohttp", "urllib3", "urllib.request", "http.client")

#: cli modules that still import an HTTP client: to move onto the SDK.
RAW_HTTP = {
    "bench.py",  # to move onto the SDK: reads /v1/status and /v1/gov/members with httpx.get
    "net.py",  # to move onto the SDK: probes every node's /v1/status, /v1/consensus, peers
    "_output.py",  # to move onto the SDK: checks a --node value with httpx.URL (no request)
}


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


def test_cli_modules_import_no_http_client() -> None:
    offenders = {
        p.name: hits
        for p in sorted(CLI.rglob("*.py"))
        if p.name not in RAW_HTTP and (hits := _http_imports(p))
    }
    assert offenders == {}, (
        "these cli modules talk HTTP themselves; use the SDK (citychain.sdk.Client) instead: "
        f"{offenders}"
    )


def test_the_gov_commands_are_a_shell_over_the_sdk() -> None:
    assert "gov.py" not in RAW_HTTP
    assert _http_imports(CLI.parent / "services" / "gov" / "cli.py") == []


def test_every_allowed_module_still_needs_its_entry() -> None:
    stale = sorted(n for n in RAW_HTTP if not (CLI / n).exists() or not _http_imports(CLI / n))
    assert stale == [], f"no longer import an HTTP client; remove them from RAW_HTTP: {stale}"


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import httpx\n    from urllib.request import urlopen\n")
    assert _http_imports(sample) == ["line 2: import httpx", "line 3: import urllib.request"]
