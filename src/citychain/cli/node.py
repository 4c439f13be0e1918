"""`citychain init`, `citychain start`, `citychain node replay`: node lifecycle commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the node lifecycle commands to the top-level app."""
