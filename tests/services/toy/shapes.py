"""The toy service's shapes: its name and the longest note it keeps."""

from __future__ import annotations

NAME = "toy"
MAX_NOTE = 64
