"""The modules an install compiles with mypyc (``setup.py``, :data:`citychain.COMPILED`).

The suite runs whatever the install built: the extensions where a C compiler was present (as
on CI), so every test of the codec and the state tree holds them to the same behaviour the
sources have. These tests make sure that really happened, that the sources, which run where
there is no compiler, still pass the codec's and the tree's tests, and that the switch to the
sources and the staleness check do what the README says.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import citychain
from citychain.crypto import ED25519

ROOT = Path(__file__).resolve().parents[1]


def _states(**env: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", "import citychain, json; print(json.dumps(citychain.compiled()))"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("listing", ["COMPILED", "NATIVE"])
def test_the_build_compiles_the_modules_the_package_names(listing: str) -> None:
    """``setup.py`` lists paths, ``citychain.COMPILED`` (and ``NATIVE``, the C) module names:
    a module added to one only would be compiled but never checked, or checked but never
    compiled."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    paths = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == listing for t in node.targets)
    )
    names = tuple(".".join(Path(p).relative_to("src").with_suffix("").parts) for p in paths)
    assert names == getattr(citychain, listing)
    assert all((ROOT / p).is_file() for p in paths)


def test_no_compiled_module_is_older_than_its_source() -> None:
    stale = [name for name, state in citychain.compiled().items() if state == "stale"]
    assert not stale, (
        f"{stale} were compiled before their sources last changed: the tests would run the "
        "old code; install again (pip install -e '.[dev]')"
    )


@pytest.mark.skipif(
    os.environ.get("CITYCHAIN_PURE") == "1"
    or shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None
    or not Path(sysconfig.get_paths()["include"], "Python.h").exists(),
    reason="no C compiler or Python headers here, or CITYCHAIN_PURE=1: the sources run",
)
def test_the_install_compiled_every_module_where_a_compiler_is() -> None:
    assert set(citychain.compiled().values()) == {"compiled"}
    assert set(citychain.compiled()) == {*citychain.COMPILED, *citychain.NATIVE}
    # Built is not enough: the Ed25519 suite must really hand its batches to the C loop
    # (it needs libsodium's function from PyNaCl's library; a changed PyNaCl fails here).
    assert ED25519.native_batch


def test_citychain_pure_runs_the_sources() -> None:
    expected = dict.fromkeys((*citychain.COMPILED, *citychain.NATIVE), "source")
    assert _states(CITYCHAIN_PURE="1") == expected
    out = subprocess.run(
        [sys.executable, "-c", "from citychain.crypto import ED25519; print(ED25519.native_batch)"],
        env={**os.environ, "CITYCHAIN_PURE": "1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_the_sources_pass_the_codec_and_tree_tests() -> None:
    """Where an install compiled nothing, the sources run: they must pass what the
    extensions pass (the rest of the suite runs the extensions). The codec's properties get
    a tenth of their examples here (``CITYCHAIN_PURE=1``, tests/codec/test_codec.py): most of
    their time is Hypothesis drawing values, the same for either build."""
    files = [
        "tests/codec/test_codec.py",
        "tests/codec/test_hostile_cbor.py",
        "tests/state/test_state_tree.py",
        "tests/state/test_state_model.py",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *files],
        cwd=ROOT,
        env={**os.environ, "CITYCHAIN_PURE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
