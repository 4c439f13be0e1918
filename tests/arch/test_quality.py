"""The house rules that tools check: `mypy --strict` and ruff over the package and tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_mypy_strict_is_clean() -> None:
    proc = _run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean() -> None:
    proc = _run("ruff", "check", "src", "tests", "bench")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tests_read_nothing_outside_the_repository() -> None:
    """A user has only the clone: no test may read the shared folder beside the repository
    (copy what a test needs into tests/, with its licence and source)."""
    beside = "/".join(("..", "shared"))
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        if '"shared"' in text or beside in text or "'shared'" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"tests that read outside the repository: {offenders}"
