"""The one layer table of citychain, enforced: every import points down, none goes round in a
circle, and every platform service keeps its parts apart.

This table is the truth; ``README.md`` ("Code layout") and ``src/citychain/__init__.py`` draw
it, and a test below checks that they name the same parts in the same order.

A *part* is a top-level package or module of ``citychain`` (``consensus``, ``errors``...) or,
inside ``citychain/services/<name>/``, one role of one service (``services.gov.contract``):
a service's roles sit at different heights, next to the node parts they use. A part may import
a part of a lower row; within its own row only the pairs of :data:`SAME_ROW`; never upward.
An import under ``if TYPE_CHECKING:`` is held to the same rules (it never runs, so only the
circle check leaves it out).

A shortcut that breaks this (the API reaching into RocksDB, a contract importing the node, a
service's contract importing its CLI) fails here with the offending module and import named.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "citychain"

#: The layer table, top row first. ``<svc>.<role>`` stands for that role of every service.
ROWS: tuple[tuple[str, ...], ...] = (
    ("cli", "<svc>.cli"),  # people at the terminal
    ("api", "bench", "<svc>.router"),  # programs over HTTP; the benchmark library
    ("node",),  # wires a node together; config; lifecycle
    ("consensus",),  # ordering transactions into blocks (Tendermint)
    ("sync",),  # catching up block by block
    ("chain", "mempool", "p2p"),  # committing blocks; waiting transactions; peers
    ("<svc>.contract",),  # the services' system contracts
    ("execution",),  # running transactions against state
    ("state",),  # authenticated state (sparse Merkle tree)
    ("store", "blobs"),  # blocks, indexes and versions on RocksDB; off-chain blobs
    ("<svc>.sdk",),  # the services' client helpers
    ("sdk",),  # the client: talk to a node, verify what it says
    ("<svc>.shapes",),  # the services' pure data shapes
    ("types",),  # pure data with one canonical encoding each
    ("proof", "crypto"),  # ICS-23 and Merkle proofs; keys, signatures, hashes
    ("codec",),  # canonical CBOR
    (
        "errors",
        "registry",
        "services",
        "stages",
        "__init__",
    ),  # exceptions; the services' registry; stage clock
)
ROLES = ("shapes", "contract", "sdk", "router", "cli")

#: Imports allowed between different parts of one row: (importer, imported).
SAME_ROW = {
    ("<svc>.cli", "cli"),  # a service's commands use the CLI's options and output
    ("<svc>.router", "api"),  # a service's routes use the API's dependencies and models
}
#: The SDK installs without the node: what it (and every service's SDK part) may import.
SDK_ALLOWED = {"__init__", "errors", "codec", "crypto", "proof", "types", "registry", "sdk"}


def _row_of(part: str) -> int:
    key = part
    if part.startswith("services.") and part != "services":
        key = "<svc>." + part.split(".")[2]
    for index, row in enumerate(ROWS):
        if key in row:
            return len(ROWS) - index  # higher number = higher row
    raise KeyError(part)


def _generic(part: str) -> str:
    if part.startswith("services.") and part.count(".") == 2:
        return "<svc>." + part.split(".")[2]
    return part


def part_of(module: str) -> str:
    """The part a dotted module (``citychain.x.y``) belongs to."""
    names = module.split(".")[1:]
    if not names:
        return "__init__"
    if names[0] == "services" and len(names) >= 3:
        return f"services.{names[1]}.{names[2]}"
    if names[0] == "services" and len(names) == 2:
        return f"services.{names[1]}"  # a service's own __init__: must import nothing
    return names[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _typing_blocks(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        lines.add(sub.lineno)
    return lines


def imports() -> list[tuple[str, str, bool]]:
    """Every ``citychain`` import in the package: (importer, imported, typing only)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing = _typing_blocks(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from citychain import codec` imports the module codec
                names = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in names if _is_module(t)] or [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found.extend(
                (module, t, node.lineno in typing)
                for t in targets
                if t.split(".")[0] == "citychain"
            )
    return found


def _is_module(dotted: str) -> bool:
    path = SRC.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _services() -> list[str]:
    return sorted(
        p.name for p in (SRC / "services").iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )


# -- the table covers the package ------------------------------------------------------------


def test_every_part_has_a_row() -> None:
    parts = {part_of(_module_name(p)) for p in SRC.rglob("*.py")}
    missing = []
    for part in sorted(parts):
        if part.startswith("services.") and part.count(".") == 1:
            continue  # a service's __init__ (checked below)
        try:
            _row_of(part)
        except KeyError:
            missing.append(part)
    assert not missing, (
        f"add these parts to ROWS (or name the service module by its role): {missing}"
    )


def test_every_service_module_plays_a_role() -> None:
    """Inside ``services/<name>/`` a module is one of the roles (a package of that name may
    hold private modules), so the table places it."""
    bad = []
    for service in _services():
        for path in sorted((SRC / "services" / service).iterdir()):
            if path.name in ("__init__.py", "__pycache__"):
                continue
            role = path.stem if path.suffix == ".py" else path.name
            if role not in ROLES:
                bad.append(f"services/{service}/{path.name}")
    assert not bad, f"name each service module by its role {ROLES}: {bad}"


# -- imports point down ------------------------------------------------------------------------


def test_imports_point_down() -> None:
    bad = []
    for module, target, _typing in imports():
        src, dst = part_of(module), part_of(target)
        if src == dst:
            continue
        if src.startswith("services.") and src.count(".") == 1:
            bad.append(f"{module} imports {target}: a service's __init__ imports nothing")
            continue
        if dst.startswith("services.") and dst.count(".") == 1:
            continue  # a service's empty __init__, imported on the way to one of its parts
        s, d = _row_of(src), _row_of(dst)
        if d > s:
            bad.append(f"{module} imports {target}: row {s} -> row {d} points up")
        elif d == s and (_generic(src), _generic(dst)) not in SAME_ROW:
            bad.append(f"{module} imports {target}: same row, not in SAME_ROW")
    assert not bad, "imports against the layer table:\n" + "\n".join(bad)


def test_no_circles_between_parts() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, target, typing in imports():
        src, dst = part_of(module), part_of(target)
        if src != dst and not typing:
            graph[src].add(dst)
    circles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not circles, "import circles between parts:\n" + "\n".join(circles)


# -- each service keeps its parts apart --------------------------------------------------------


def test_each_service_keeps_its_parts_apart() -> None:
    """A contract never imports the router, the CLI or the SDK part; the SDK part never the
    contract; shapes only the base. A service reaches another only through its shapes."""
    bad = []
    for module, target, _typing in imports():
        src, dst = part_of(module), part_of(target)
        if not src.startswith("services.") or src.count(".") != 2:
            continue
        _, svc, role = src.split(".")
        if dst.startswith("services.") and dst.count(".") == 2:
            _, other, other_role = dst.split(".")
            if other != svc and other_role != "shapes":
                bad.append(f"{module} imports {target}: another service, not its shapes")
            if other == svc and role == "contract" and other_role in ("router", "cli", "sdk"):
                bad.append(f"{module} imports {target}: the contract imports its {other_role}")
            if other == svc and role == "sdk" and other_role == "contract":
                bad.append(f"{module} imports {target}: the SDK part imports the contract")
        if role == "sdk" and not dst.startswith("services.") and dst not in SDK_ALLOWED:
            bad.append(f"{module} imports {target}: an SDK part may not depend on {dst}")
    assert not bad, "\n".join(bad)


def test_the_sdk_imports_only_what_installs_without_the_node() -> None:
    bad = []
    for module, target, _typing in imports():
        src, dst = part_of(module), part_of(target)
        if src != "sdk":
            continue
        if dst not in SDK_ALLOWED and not (dst.startswith("services.") and dst.endswith(".sdk")):
            bad.append(f"{module} imports {target}: the SDK may not depend on {dst}")
    assert not bad, "\n".join(bad)


def test_sdk_imports_without_node_dependencies() -> None:
    code = (
        "import sys, citychain.sdk, citychain.proof.ics23;"
        "from citychain.sdk import Client, Gov, build_params, balance_key;"
        "c = Client(); c.gov, c.token;"
        "heavy = {'fastapi','rocksdict','typer','rich','starlette','uvicorn','prometheus_client',"
        "'cryptography','orjson'};"
        # httpx imports its own command line (click, rich) when they are installed
        "heavy -= {'rich'} if 'httpx._main' in sys.modules else set();"
        "loaded = sorted(heavy & {m.split('.')[0] for m in sys.modules});"
        "contracts = sorted(m for m in sys.modules if m.endswith('.contract'));"
        "print(','.join(loaded + contracts)); sys.exit(1 if loaded or contracts else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (
        f"citychain.sdk pulled in node dependencies: {proc.stdout} {proc.stderr}"
    )


def test_the_api_loads_no_rocksdb() -> None:
    code = (
        "import sys, citychain.api, citychain.api.app;"
        "sys.exit(1 if 'rocksdict' in sys.modules else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# -- the pictures agree with the table ---------------------------------------------------------


def test_the_readme_and_the_package_docstring_draw_this_table() -> None:
    """Both drawings list the rows top to bottom with the same parts, and name every service
    role and every core part."""
    for path in (ROOT / "README.md", SRC / "__init__.py"):
        text = path.read_text(encoding="utf-8")
        start = text.index("LAYERS")
        drawing = text[start : text.index("```" if path.suffix == ".md" else '"""', start)]
        lines = [ln for ln in drawing.splitlines() if "|" in ln]
        drawn = [tuple(c.rstrip("/") for c in ln.split("|")[0].split()) for ln in lines]
        expected = [
            tuple(
                p.replace("<svc>.", "services/*/") for p in row if p not in ("__init__", "services")
            )
            for row in ROWS
        ]
        assert drawn == expected, f"{path.name}'s layer drawing differs from ROWS"


def test_the_node_s_parts_find_services_only_through_the_registry() -> None:
    """No part outside ``services/`` imports a service (not even its shapes or SDK part, not
    even for typing): the node, the API, the CLI and the SDK ask ``citychain.registry``, so a
    service is added or removed by its folder and its registry line alone."""
    bad = [
        f"{module} imports {target}"
        for module, target, _typing in imports()
        if not module.startswith("citychain.services.") and target.startswith("citychain.services.")
    ]
    assert not bad, "\n".join(bad)
