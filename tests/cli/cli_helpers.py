"""Shared by the CLI tests."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from citychain.cli.main import app

PASSPHRASE = "correct horse battery staple"
_runner = CliRunner()


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    """Invoke `citychain ARGS`; no output of any command may contain a traceback."""
    result = _runner.invoke(app, list(args), input=input, env=env)
    assert "Traceback" not in result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command raised {result.exception!r}")
    return result
