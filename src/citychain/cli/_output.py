"""What every user-facing command shares: options, output, errors, the node client.

Errors: a command never shows a traceback. A :class:`CitychainError` prints
``error [code]: message`` on stderr and exits 1; anything unexpected prints
``error [internal]: ...`` the same way (set ``CITYCHAIN_DEBUG=1`` to see the traceback).
``--json`` prints one JSON document on stdout (errors stay on stderr, with exit code 1).

Hints that name a command say it as the user can run it from here (:func:`command_name`):
after the README's install ``citychain`` is not on PATH, ``.venv/bin/citychain`` is. Messages
from the layers below the CLI name commands in backquotes (`` `citychain net up` ``);
:func:`fail` rewrites that prefix the same way.

Tables (:func:`fitted_table`) never cut a cell: when a terminal is too narrow for every column,
the least important columns are left out (the caller says which), and what is left folds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import click
import typer
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from citychain.errors import CitychainError, ErrorCode, InvalidInput
from citychain.sdk import check_node_url
from citychain.types.address import to_address
from citychain.types.tx import codec_to_json

# emoji=False: rich would print "did:key:z6Mk..." as "did🔑z6Mk..." (its :key: emoji code).
console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

DEFAULT_NODE = "http://127.0.0.1:26657"
DEFAULT_HOME = Path("~/.citychain")


def node_url(value: str) -> str:
    """``--node``: an http(s) URL of a node's API (the SDK's check), refused as a usage error
    otherwise."""
    try:
        return check_node_url(value)
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message) from None


NodeOpt = Annotated[
    str,
    typer.Option(
        "--node",
        envvar="CITYCHAIN_NODE",
        help="Node API URL.",
        show_default=True,
        callback=node_url,
    ),
]
_json_output = False


def _note_json(value: bool) -> bool:
    global _json_output
    _json_output = bool(value)
    return value


def json_output() -> bool:
    """Whether the running command was given ``--json`` (so shared code, such as the wait
    for a receipt, keeps stdout to the one JSON document without being told)."""
    return _json_output


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON.", callback=_note_json)
]
HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="CITYCHAIN_HOME",
        help="Home directory: keys in <home>/keys, trusted genesis in <home>/config. "
        "\\[default: ~/.citychain]",
        show_default=False,
    ),
]
PassFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File holding the key passphrase (else $CITYCHAIN_PASSPHRASE, else a prompt).",
    ),
]

P = ParamSpec("P")
R = TypeVar("R")


def home_dir(home: Path | None) -> Path:
    return (home if home is not None else DEFAULT_HOME).expanduser()


def _runnable(path: str) -> str:
    """``path`` as a person types it here: relative to the working directory when it lies
    under it (``./x`` for one right here, so no PATH lookup happens), else absolute."""
    full = Path(os.path.abspath(path))  # not resolve(): keep the symlinks the user went through
    here = Path.cwd()
    if here == Path(here.anchor) or not full.is_relative_to(here):
        return shlex.quote(str(full))
    rel = full.relative_to(here)
    text = str(rel)
    return shlex.quote(text if os.sep in text else f".{os.sep}{text}")


def command_name() -> str:
    """This program as a command the user can run from the working directory: ``citychain``
    only if that is on PATH and is this very script; else the script's path as invoked
    (``.venv/bin/citychain``); under ``python -m citychain.cli.main``, that."""
    argv0 = sys.argv[0] if sys.argv else ""
    script: str | None = None
    if argv0 and Path(argv0).name == "citychain" and Path(argv0).is_file():
        script = argv0
    elif not argv0.endswith(os.path.join("citychain", "cli", "main.py")):
        # Embedded (a test runner, another program): the script installed beside this Python.
        beside = Path(sys.executable).parent / "citychain"
        script = str(beside) if beside.is_file() else None
    if script is None:
        return f"{_runnable(sys.executable)} -m citychain.cli.main"
    on_path = shutil.which("citychain")
    try:
        if on_path is not None and os.path.samefile(on_path, script):
            return "citychain"
    except OSError:
        pass
    return _runnable(script)


def fail(exc: CitychainError) -> typer.Exit:
    message = exc.message.replace("`citychain ", f"`{command_name()} ")
    err_console.print(f"[bold red]error[/] \\[{exc.code.value}]: {escape(message)}")
    return typer.Exit(1)


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a command so that no error escapes as a traceback."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CitychainError as exc:
            raise fail(exc) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, typer.Exit, typer.Abort):
            raise  # usage errors and exits: click prints and exits as usual
        except KeyboardInterrupt:
            raise
        except BrokenPipeError:
            # Whoever read the output went away (`citychain query events --json | head`):
            # stop quietly with status 1, as rich's console does for what it prints (and as
            # Python's documentation advises), pointing stdout at /dev/null so that the
            # interpreter's last flush cannot fail too.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as exc:
            if os.environ.get("CITYCHAIN_DEBUG"):
                raise
            raise fail(
                CitychainError(
                    f"unexpected {type(exc).__name__}: {exc} (set CITYCHAIN_DEBUG=1 for details)",
                    ErrorCode.INTERNAL,
                )
            ) from None

    return run


def print_json(value: Any) -> None:
    """One JSON document on stdout; bytes as ``{"hex": ...}``, big integers exact."""
    typer.echo(json.dumps(codec_to_json(value), indent=2, ensure_ascii=False))


def bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


_HEX = re.compile(r"(?:0x)?((?:[0-9a-fA-F]{2})*)")


def parse_hex(text: str, what: str, size: int | None = None) -> bytes:
    m = _HEX.fullmatch(text.strip())
    if m is None or not m.group(1):
        raise bad(f"{what} must be hex digits (an even number of 0-9, a-f), got {text!r:.80}")
    data = bytes.fromhex(m.group(1))
    if size is not None and len(data) != size:
        raise bad(f"{what} must be {size} bytes ({2 * size} hex digits), got {len(data)} bytes")
    return data


def parse_address(text: str, what: str = "address") -> bytes:
    """An address typed by a person (40 hex digits, 0x optional): the SDK's own coercion."""
    return to_address(text, what)


def parse_args_json(text: str | None) -> dict[str, Any]:
    """Contract arguments from JSON; byte strings as ``{"hex": "..."}``."""
    from citychain import codec
    from citychain.errors import DecodeError
    from citychain.types.tx import json_to_codec

    if not text:
        return {}
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise bad(f"--args is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise bad('--args must be a JSON object, e.g. \'{"to": {"hex": "..."}, "amount": 5}\'')
    try:
        args = json_to_codec(raw)
        codec.check_value(args)
    except (DecodeError, RecursionError) as exc:
        message = exc.message if isinstance(exc, DecodeError) else "nested too deeply"
        raise bad(f"--args: {message}") from None
    assert isinstance(args, dict)
    return args


def show_value(value: Any) -> str:
    """A canonical value for people: bytes as 0x-hex, the rest as JSON."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return json.dumps(codec_to_json(value), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Col:
    """A column of :func:`fitted_table`: columns with the lowest ``keep`` are left out first
    when the terminal is narrow; ``keep=None`` never (a name, a height)."""

    header: str
    keep: int | None = None
    justify: JustifyMethod = "left"


def fitted_table(
    cols: Sequence[Col],
    rows: Sequence[Sequence[str]],
    *,
    width: int,
    **table_options: Any,
) -> tuple[Table, list[str]]:
    """A table of ``rows`` (rich markup) as wide as its cells need, within ``width``: while
    it is wider, the column with the lowest ``keep`` is left out. Returns the table and the
    headers left out, for the caller to say so. Cells fold rather than being cut."""
    shown = list(range(len(cols)))

    def build(which: list[int]) -> Table:
        t = Table(**table_options)
        for i in which:
            c = cols[i]
            t.add_column(c.header, justify=c.justify, overflow="fold")
        for row in rows:
            t.add_row(*(row[i] for i in which))
        return t

    measure = Console(width=10_000, color_system=None)
    while True:
        table = build(shown)
        natural = Measurement.get(measure, measure.options, table).maximum
        droppable = [i for i in shown if cols[i].keep is not None]
        if natural <= width or not droppable:
            break
        shown.remove(min(droppable, key=lambda i: (cols[i].keep or 0, -i)))
    left_out = [c.header for i, c in enumerate(cols) if i not in shown]
    return table, left_out
