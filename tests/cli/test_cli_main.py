"""A command line runs in an application of its command alone (see ``citychain.cli.main``'s
``build`` and ``alone``): the same help, the same commands; for the core's commands, no
service's command line imported."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from citychain.cli.main import _CORE, _for, build

_runner = CliRunner()


def _help(app: object, *args: str) -> str:
    result = _runner.invoke(app, [*args, "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return result.output


_NAMES = sorted(get_command(build()).list_commands(None))  # type: ignore[attr-defined, arg-type]


@pytest.mark.parametrize("name", _NAMES)
def test_a_command_alone_has_the_whole_applications_help(name: str) -> None:
    """Each top-level command or group (the core's and every service's) runs in an
    application of itself alone, with the same help as in the whole."""
    app = _for([name, "--help"])
    assert app is not build() and _help(app, name) == _help(build(), name)


@pytest.mark.parametrize("args", [[], ["--help"], ["--version"], ["no-such-command"]])
def test_no_command_or_an_unknown_one_runs_in_the_whole_application(args: list[str]) -> None:
    assert _for(args) is build()


def test_each_part_holds_its_commands_and_the_whole_holds_every_part() -> None:
    whole = get_command(build())
    names = list(whole.list_commands(None))  # type: ignore[attr-defined, arg-type]
    for name, part in _CORE.items():
        alone = get_command(build(name))
        listed = set(alone.list_commands(None))  # type: ignore[attr-defined, arg-type]
        assert name in listed and listed == {n for n, p in _CORE.items() if p == part}
    assert set(_CORE) <= set(names) and {"tx", "query", "gov", "data", "did"} <= set(names)
    # The help's order (commands, then groups as added): keys, tx, query, net, the services'.
    assert names[:5] == ["status", "consensus", "evidence", "init", "start"]
    assert names[5:9] == ["keys", "tx", "query", "net"] and names[-2:] == ["node", "bench"]


def test_a_node_start_imports_no_service_command_line() -> None:
    """What makes ``citychain start`` and ``net status`` quicker to start than ``--help``: the
    services' command lines (and the benchmarks) are not imported for them."""
    code = (
        "import sys; from citychain.cli.main import build; build('net'); "
        "print(sorted(m for m in sys.modules if m.endswith('.cli') or m == 'citychain.cli.bench'"
        " or m.startswith('citychain.services.') and m.endswith('cli')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['citychain.cli']"
