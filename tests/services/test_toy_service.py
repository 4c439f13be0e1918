"""Adding a platform service touches its own folder and one line of the registry, nothing else.

The test copies the package, drops the ``toy`` service (``tests/services/toy/``: shapes, a
contract, an SDK helper, a router and a command) into ``citychain/services/toy/``, adds its
line to ``citychain/registry.py``, checks that this is the whole difference from the package
under test, then starts a real node from the copy and reaches the service from every edge:
a transaction through ``client.toy``, a read through the SDK, the service's own API route
(and ``/openapi.json``), and its CLI command.
"""

from __future__ import annotations

import difflib
import filecmp
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src" / "citychain"
TOY = Path(__file__).resolve().parent / "toy"
REGISTRY_LINE = '    "citychain.services.token",\n'

CLIENT_SCRIPT = """
import sys
from pathlib import Path
from citychain.crypto.keystore import load_key
from citychain.sdk import Client

home, url = Path(sys.argv[1]), sys.argv[2]
alice = load_key(home / "keys" / "alice.json", (home / "config" / "passphrase").read_text().strip())
with Client(url) as client:
    assert {"gov", "token", "toy"} <= set(client.services), sorted(client.services)
    receipt = client.toy.write(alice, "hello from the toy")
    assert receipt.ok, receipt
    print("read:", client.toy.read(alice.address))
    print("address:", alice.address.hex())
"""


def _copy_with_toy(root: Path) -> Path:
    package = root / "citychain"
    shutil.copytree(SRC, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(TOY, package / "services" / "toy", ignore=shutil.ignore_patterns("__pycache__"))
    registry = package / "registry.py"
    text = registry.read_text()
    assert text.count(REGISTRY_LINE) == 1
    toy_line = '    "citychain.services.toy",\n'
    registry.write_text(text.replace(REGISTRY_LINE, REGISTRY_LINE + toy_line))
    return package


def _differences(a: Path, b: Path, rel: Path = Path()) -> list[str]:
    """Paths that differ between two trees (added, removed or changed), relative to them."""
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    found = [str(rel / n) for n in cmp.left_only + cmp.right_only]
    found += [
        str(rel / n)
        for n in cmp.common_files
        if (a / n).read_bytes() != (b / n).read_bytes()  # content, not stat
    ]
    for sub in cmp.common_dirs:
        found += _differences(a / sub, b / sub, rel / sub)
    return sorted(found)


@pytest.fixture(scope="module")
def toy_node(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[str, str], str]]:
    root = tmp_path_factory.mktemp("toy")
    package = _copy_with_toy(root / "src")
    env = {**os.environ, "PYTHONPATH": str(package.parent), "COLUMNS": "200", "NO_COLOR": "1"}
    home = root / "node"
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = (root / "node.log").open("wb")
    cmd = [sys.executable, "-m", "citychain.cli.main", "start", "--demo"]
    proc = subprocess.Popen(
        [*cmd, "--home", str(home), "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (root / "node.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (root / "node.log").read_text()
            time.sleep(0.1)
        yield home, env, url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_the_copy_differs_by_the_folder_and_one_registry_line(tmp_path: Path) -> None:
    package = _copy_with_toy(tmp_path)
    changed = _differences(SRC, package)
    toy = sorted(f"services/toy/{p.name}" for p in TOY.glob("*.py"))
    assert changed == sorted(["registry.py", "services/toy"]), changed
    assert toy  # the folder holds the five roles and its __init__
    assert {Path(t).stem for t in toy} == {"__init__", "shapes", "contract", "sdk", "router", "cli"}
    before = (SRC / "registry.py").read_text().splitlines()
    after = (package / "registry.py").read_text().splitlines()
    diff = [
        line
        for line in difflib.unified_diff(before, after, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == ['+    "citychain.services.toy",']


def test_the_node_sdk_api_and_cli_find_the_new_service(
    toy_node: tuple[Path, dict[str, str], str],
) -> None:
    home, env, url = toy_node
    run = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, str(home), url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "read: hello from the toy" in run.stdout
    address = run.stdout.split("address:")[1].strip()

    # the service's own route, served by the node and documented in /openapi.json
    answer = httpx.get(f"{url}/v1/toy/notes/{address}", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"note": "hello from the toy"}
    assert "/v1/toy/notes/{address}" in httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    # the core and the other services are all still there
    assert httpx.get(f"{url}/v1/gov/orgs", timeout=10).status_code == 200

    # the service's command, beside the others
    cli = [sys.executable, "-m", "citychain.cli.main"]
    shown = subprocess.run(
        [*cli, "toy", "read", address, "--node", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "note: hello from the toy" in shown.stdout
    helped = subprocess.run(
        [*cli, "--help"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert " toy " in helped.stdout and " gov " in helped.stdout
