"""The API stays split by subject: no function in ``citychain.api`` grows long.

``create_app`` once held every route as a closure (~800 lines). Routes now live in
``citychain.api.routes`` as ``APIRouter`` modules and ``create_app`` only builds the app;
this keeps it that way, objectively: any function (nested ones included) longer than
``MAX_LINES`` fails, naming where it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import citychain.api

API = Path(citychain.api.__file__).resolve().parent
MAX_LINES = 80


def _long_functions(root: Path, limit: int) -> list[str]:
    long = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(root.parent)
                    long.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return long


def test_no_function_in_the_api_is_longer_than_80_lines() -> None:
    long = _long_functions(API, MAX_LINES)
    assert not long, f"split these (routes go in citychain/api/routes/): {long}"


def test_the_length_guard_reports_a_function_one_line_too_long(tmp_path: Path) -> None:
    """The guard can fail: a function of 81 lines is reported, one of 80 is not."""
    body = "\n".join(f"    x{i} = {i}" for i in range(79))
    (tmp_path / "ok.py").write_text(f"def ok():\n{body}\n", encoding="utf-8")
    (tmp_path / "big.py").write_text(f"def big():\n{body}\n    y = 0\n", encoding="utf-8")
    found = _long_functions(tmp_path, MAX_LINES)
    assert len(found) == 1 and " big (81 lines)" in found[0]
