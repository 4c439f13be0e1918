"""The layers of the design brief, enforced: every import points down (or stays in its layer).

A shortcut that breaks this (the API reaching into RocksDB, a contract importing the node)
fails here with the offending module and import named.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "citychain"

#: Top-level part of the package -> its layer (higher may import lower, never the reverse).
LAYER = {
    "__init__": 0,
    "errors": 0,
    "codec": 0,
    "crypto": 0,
    "proof": 0,
    "types": 0,
    "sdk": 1,
    "store": 1,
    "state": 2,
    "execution": 3,
    "contracts": 3,
    "chain": 4,
    "mempool": 4,
    "p2p": 4,
    "consensus": 5,
    "sync": 5,
    "node": 6,
    "api": 7,
    "bench": 7,
    "cli": 8,
}
#: The SDK must install without the node: it may use only these parts of the package.
SDK_ALLOWED = {"__init__", "errors", "codec", "crypto", "proof", "types", "sdk"}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str]]:
    found = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found.extend((module, t) for t in targets if t.split(".")[0] == "citychain")
    return found


def test_every_part_has_a_layer() -> None:
    parts = {
        p.stem if p.is_file() else p.name
        for p in SRC.iterdir()
        if not p.name.startswith(("_", "."))
    }
    parts = {p for p in parts if p not in {"py"}} - {"py.typed"}
    missing = sorted(p for p in parts if p not in LAYER and p != "py")
    assert not missing, f"add these parts to LAYER: {missing}"


def test_imports_point_down() -> None:
    bad = []
    for module, target in _imports():
        src, dst = _part(module), _part(target)
        if src == dst:
            continue
        if LAYER[dst] > LAYER[src]:
            bad.append(f"{module} imports {target} (layer {LAYER[src]} -> {LAYER[dst]})")
        if src == "sdk" and dst not in SDK_ALLOWED:
            bad.append(f"{module} imports {target}: the SDK may not depend on {dst}")
    assert not bad, "imports that point up:\n" + "\n".join(bad)


def test_sdk_imports_without_node_dependencies() -> None:
    code = (
        "import sys, citychain.sdk, citychain.proof.ics23;"
        "heavy = {'fastapi','rocksdict','typer','rich','starlette','uvicorn','prometheus_client',"
        "'cryptography','orjson'};"
        "loaded = sorted(heavy & {m.split('.')[0] for m in sys.modules});"
        "print(','.join(loaded)); sys.exit(1 if loaded else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (
        f"citychain.sdk pulled in node dependencies: {proc.stdout} {proc.stderr}"
    )
