"""Making a directory entry durable: a created, renamed or deleted file survives power loss
only once its directory is fsynced too (the WAL's segments, the signer's state file)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
