"""`citychain bench ...`: benchmarks against a running node."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `bench` command group to the top-level app."""
