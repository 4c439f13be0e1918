"""What `citychain consensus` and `citychain net status` say about the validators, tables at
narrow and wide terminals, and commands printed as the user can run them (``command_name``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run
from fake_node import FakeNode
from rich.console import Console

from citychain.cli._output import Col, command_name, fitted_table
from citychain.cli.net import NodeReport, render_status

CLI = [sys.executable, "-m", "citychain.cli.main"]


# -- citychain consensus ----------------------------------------------------------------------
def test_consensus_tells_late_from_absent_and_offline(served: str) -> None:
    r = run("consensus")
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "signed by 1 of 3; late (precommit after the decision; fine): v1; absent: v2" in out
    assert "validators offline: v2" in out
    assert "v2: not connected; last vote heard at height 1, 41 s ago" in out
    split = [ln.split() for ln in r.stdout.splitlines()]
    rows = {cells[0]: cells for cells in split if cells[:1] in (["v0"], ["v1"], ["v2"])}
    assert rows["v1"][1:2] == ["ok"] and "late" in rows["v1"]
    assert rows["v2"][1:2] == ["offline"] and "absent" in rows["v2"]


def test_consensus_of_a_node_without_per_validator_diagnostics(
    served: str, node: FakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = node.consensus()

    def old() -> dict[str, Any]:
        details = {
            k: v for k, v in full["details"].items() if k not in ("validators", "last_commit")
        }
        return {**full, "details": details}

    monkeypatch.setattr(node, "consensus", old)
    r = run("consensus")
    assert r.exit_code == 0, r.output
    assert "round 0, not in the commit: v1, v2" in r.stdout
    assert "offline" not in r.stdout


@pytest.mark.parametrize("columns", [80, 200])
def test_consensus_fits_the_terminal_without_cutting_a_name(served: str, columns: int) -> None:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    r = subprocess.run(
        [*CLI, "consensus", "--node", served], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "…" not in r.stdout and max(map(len, lines)) <= columns, r.stdout
    for name in ("v0", "v1", "v2"):
        assert any(ln.split()[:1] == [name] for ln in lines), r.stdout


# -- citychain net status -------------------------------------------------------------------
NAMES = ["parks-department-node-0", "parks-department-node-1", "water-utility-node-22"]


def view(observer: int, offline: int | None, late: int | None) -> tuple[list[Any], Any]:
    vals = [
        {
            "name": n,
            "state": "this node" if i == observer else "offline" if i == offline else "ok",
            "height": None if i == offline else 812,
        }
        for i, n in enumerate(NAMES)
    ]
    lc = {"height": 812, "round": 0, "late": [NAMES[late]] if late is not None else []}
    return vals, lc


def reports(offline: int | None = None) -> list[NodeReport]:
    out = []
    for i, name in enumerate(NAMES):
        if i == offline:
            out.append(
                NodeReport(
                    name, "water", "http://x", 4_194_301, "not running", reason="connection refused"
                )
            )
            continue
        vals, lc = view(i, offline, late=(i + 1) % 3 if offline is None else None)
        out.append(
            NodeReport(
                name,
                "parks" if i < 2 else "water",
                "http://x",
                4_194_300 + i,
                "running",
                up=True,
                healthy=True,
                height=812,
                latest_block_hash="ab" * 32,
                consensus={
                    "engine": "tendermint",
                    "height": 813,
                    "round": 0,
                    "step": "decided",
                    "waiting_for": "block 812 committed; starting height 813 in 0.3 s",
                },
                peers=2,
                peers_known=2,
                commit_signatures=2,
                validators=vals,
                last_commit=lc,
            )
        )
    return out


def rendered(width: int, rs: list[NodeReport]) -> str:
    # As the CLI's console: a long line is left to the terminal to wrap, not broken.
    console = Console(
        width=width, record=True, color_system=None, file=io.StringIO(), soft_wrap=True
    )
    render_status(rs, "citychain-local", Path("/tmp/net"), console)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 200])
def test_net_status_never_cuts_a_node_name_or_a_height(width: int) -> None:
    text = rendered(width, reports(offline=2))
    lines = text.splitlines()
    table = [ln for ln in lines if ln.startswith(" ")]  # the lines below it start at 0
    header = next(ln for ln in table if ln.split()[:1] == ["node"])
    rows = {ln.split()[0]: ln for ln in table if ln.split()[:1] in ([n] for n in NAMES)}
    assert "…" not in text and max(len(ln) for ln in [header, *rows.values()]) <= width, text
    assert sorted(rows) == sorted(NAMES)  # whole names, one row each
    assert "812" in rows[NAMES[0]].split() and "812" in rows[NAMES[1]].split()
    assert "4194301 dead" in rows[NAMES[2]] or "pid" not in header
    assert f"{NAMES[2]} offline according to {NAMES[0]}, {NAMES[1]}" in text
    assert f"{NAMES[2]} down: connection refused" in text
    if width == 80:
        assert "(left out at this width:" in text
        assert f"{NAMES[0]} waiting for: block 812 committed; starting height 813 in 0.3 s" in text
    else:
        header = next(ln for ln in lines if ln.split()[:1] == ["node"])
        assert "waiting for" in header and "left out" not in text


def test_net_status_of_a_healthy_network_names_who_was_late() -> None:
    text = " ".join(rendered(200, reports()).split())
    assert "validators: all 3 online and keeping up, as every node sees it" in text
    assert (
        f"late for the last commit (precommit after the decision; fine): {NAMES[1]} at "
        f"{NAMES[0]}; {NAMES[2]} at {NAMES[1]}; {NAMES[0]} at {NAMES[2]}"
    ) in text


# -- shared helpers -------------------------------------------------------------------------
def test_fitted_table_leaves_out_the_least_important_columns_first() -> None:
    cols = [Col("name"), Col("a", keep=2), Col("b", keep=1), Col("c", keep=3)]
    rows = [["a-very-long-node-name", "x" * 20, "y" * 20, "z" * 20]]
    _, out = fitted_table(cols, rows, width=200)
    assert out == []
    _, out = fitted_table(cols, rows, width=75)  # 21 + 3 * 20 and the rules do not fit
    assert out == ["b"]
    _, out = fitted_table(cols, rows, width=10)  # the name stays, whatever the width
    assert out == ["a", "b", "c"]


def test_command_name_is_what_the_user_can_run_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "my venv" / "bin"
    bindir.mkdir(parents=True)
    script = bindir / "citychain"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    # Run by a relative path: that path, as typed (not on PATH after the README's install).
    monkeypatch.setattr(sys, "argv", ["my venv/bin/citychain", "net", "up"])
    assert command_name() == "'my venv/bin/citychain'"  # quoted for a shell
    # By an absolute path under the working directory: relative to it.
    monkeypatch.setattr(sys, "argv", [str(script)])
    assert command_name() == "'my venv/bin/citychain'"
    # From elsewhere: the absolute path.
    other = tmp_path / "elsewhere with space"
    other.mkdir()
    monkeypatch.chdir(other)
    assert command_name() == f"'{script}'"
    # On PATH, and PATH's citychain is this very script: the bare name.
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    assert command_name() == "citychain"
    # PATH's citychain is another program: not the bare name.
    elsewhere = tmp_path / "other-bin"
    elsewhere.mkdir()
    (elsewhere / "citychain").write_text("#!/bin/sh\n")
    (elsewhere / "citychain").chmod(0o755)
    monkeypatch.setenv("PATH", f"{elsewhere}:{bindir}")
    assert command_name() == f"'{script}'"
    # python -m citychain.cli.main: the same again.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(Path("src/citychain/cli/main.py").resolve())])
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    assert command_name() == "'my venv/bin/python' -m citychain.cli.main"


def test_errors_from_below_name_commands_as_the_user_can_run_them(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env["PATH"] = "/usr/bin:/bin"
    r = subprocess.run(
        [*CLI, "net", "status", "--dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 1
    assert f"create one with `{sys.executable} -m citychain.cli.main net up`" in r.stderr, r.stderr
