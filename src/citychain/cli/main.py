"""The `citychain` command: keys, transactions, queries, status, node lifecycle, benchmarks,
and the commands of every registered platform service (``gov``; the token's ``tx transfer``,
``tx mint``, ``query balance``), each from its own folder under ``citychain/services/``.

Every command prints errors as ``error [code]: message`` and exits 1, never a traceback
(``CITYCHAIN_DEBUG=1`` shows one). ``--json`` gives machine-readable output. The node URL
comes from ``--node`` or ``$CITYCHAIN_NODE``; keys and the trusted genesis from ``--home`` or
``$CITYCHAIN_HOME`` (default ``~/.citychain``).

Errors have three sources, each printed as one line: a command's own refusal
(:class:`~citychain.errors.CitychainError`, printed by ``handles_errors`` in ``_output``), a
command line the parser refuses (an unknown option, a value of the wrong type: click's
``UsageError``, printed by :func:`main` as ``error [bad_arguments]: ...`` naming the command's
``--help``), and a prompt left without an answer (standard input closed, or Ctrl-C at the
prompt: ``Abort``). :func:`main` runs the click application in non-standalone mode so
that it, not click, prints those, and exits with the status a command asked for.
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
import warnings
from typing import Annotated, Any, cast

import typer
from rich.markup import escape

from citychain import __version__
from citychain.cli._output import command_name, err_console
from citychain.errors import ErrorCode


def _version(value: bool) -> None:
    if value:
        typer.echo(f"citychain {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """citychain: a permissioned, BFT-final ledger for city public services."""


#: The core's top-level commands (not a service's), each with the part of :func:`build` that
#: adds it: a command line that names one of them builds that part alone.
_CORE = {
    "keys": "keys",
    "net": "net",
    "status": "status",
    "consensus": "consensus",
    "evidence": "consensus",
    "init": "node",
    "start": "node",
    "node": "node",
    "bench": "bench",
}


def _add(app: typer.Typer, part: str) -> None:
    """Add one part of the command line to ``app``, importing its module only now."""
    if part == "keys":
        from citychain.cli.keys import keys_app

        app.add_typer(keys_app, name="keys")
    elif part == "net":
        from citychain.cli.net import net_app

        app.add_typer(net_app, name="net")
    elif part == "status":
        from citychain.cli.status import status

        app.command("status")(status)
    elif part == "consensus":
        from citychain.cli.consensus import consensus, evidence

        app.command("consensus")(consensus)
        app.command("evidence")(evidence)
    elif part == "node":
        from citychain.cli import node

        node.register(app)
    elif part == "bench":
        from citychain.cli import bench

        bench.register(app)
    else:
        raise ValueError(part)


@functools.cache
def build(only: str | None = None) -> typer.Typer:
    """The ``citychain`` application: every command, or (``only``, a key of :data:`_CORE`)
    the root with that one command or group.

    Why not always the whole: typer turns every command's signature into click parameters
    before it runs one (~0.2 s for the ~100 commands), and the modules of all of them take
    as long again to import. A node's ``start``, a ``net status`` pay that at every start
    (the test suite starts hundreds). What runs is the same function either way. Cached:
    services add their commands to the shared ``tx`` and ``query`` groups, which must
    happen once.
    """
    app = _new()
    if only is not None:
        _add(app, _CORE[only])
        return app
    from citychain import registry
    from citychain.cli.query import query_app
    from citychain.cli.tx import tx_app

    _add(app, "keys")
    app.add_typer(tx_app, name="tx")
    app.add_typer(query_app, name="query")
    _add(app, "net")
    # Each platform service's commands (``gov ...``; ``tx transfer``, ``query balance``...).
    for _service, module in registry.parts("cli"):
        module.install(app, {"tx": tx_app, "query": query_app})
    for part in ("status", "consensus", "node", "bench"):
        _add(app, part)
    return app


def _new() -> typer.Typer:
    """The root of the application, with no command yet."""
    app = typer.Typer(
        name="citychain",
        help="citychain: a permissioned, BFT-final ledger for city public services.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )
    app.callback()(_root)
    return app


def alone(whole: typer.Typer, name: str) -> typer.Typer:
    """``whole`` with only its top-level command or group ``name`` (a service's ``gov``,
    ``data``, ``tx`` ...), so that typer converts that one alone; ``whole`` itself when it
    has no such command (its error then lists every command)."""
    app = _new()
    app.registered_groups = [g for g in whole.registered_groups if g.name == name]
    app.registered_commands = [c for c in whole.registered_commands if c.name == name]
    return app if app.registered_groups or app.registered_commands else whole


def _for(args: list[str]) -> typer.Typer:
    """The application a command line runs in: see :func:`build` and :func:`alone`. Options
    before a command (``--version``, ``--help``) and no command at all take the whole."""
    first = args[0] if args else ""
    if first in _CORE:
        return build(first)
    if first and not first.startswith("-"):
        return alone(build(), first)
    return build()


def __getattr__(name: str) -> Any:
    """``app``: the whole application (tests run commands in it in process)."""
    if name == "app":
        return build()
    raise AttributeError(name)


def _click_class(name: str) -> type[Exception]:
    """click's exception class ``name``. typer re-exports ``BadParameter`` from the click it
    runs on (its own copy, ``typer._click``, in recent releases; the click package before),
    and ``UsageError`` and ``ClickException`` are its bases: found there, they are the
    classes the parser really raises, whichever typer is installed."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


_UsageError = _click_class("UsageError")
_ClickException = _click_class("ClickException")


def _error(code: ErrorCode, message: str) -> None:
    err_console.print(f"[bold red]error[/] \\[{code.value}]: {escape(message)}")


def _one_line(exc: Exception) -> str:
    return " ".join(cast(Any, exc).format_message().split())


def _usage(exc: Exception) -> str:
    """One line for a command line the parser refused, naming where the help is."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "citychain"
    # As the user can run it here (`.venv/bin/citychain ...`), not the bare program name.
    where = command_name() + where.removeprefix("citychain")
    return f"{_one_line(exc).rstrip('.')} (see `{where} --help`)"


def main() -> None:
    """Entry point of the ``citychain`` script: see the module docstring for the errors."""
    # Prompting without a terminal, getpass warns with its own source line, which reads like
    # a traceback; its one-line "Password input may be echoed" says the same.
    warnings.filterwarnings("ignore", category=getpass.GetPassWarning)
    try:
        # Non-standalone: click returns the exit status a command raised (typer.Exit) or
        # the command's return value (None from every command), and leaves usage errors
        # and aborted prompts to this function.
        # (``prog_name``: usage lines say `citychain ...` also under `python -m`.)
        status = _for(sys.argv[1:])(standalone_mode=False, prog_name="citychain")
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `citychain tx`: the group's help
            # Imported here: it loads rich's Markdown and traceback renderers (~0.1 s of every
            # command's start), which no command that runs needs.
            from typer import rich_utils

            rich_utils.rich_format_error(cast(Any, exc))
            sys.exit(2)
        _error(ErrorCode.BAD_ARGUMENTS, _usage(exc))
        sys.exit(1)
    except _ClickException as exc:  # e.g. a file argument that cannot be opened
        _error(ErrorCode.BAD_ARGUMENTS, _one_line(exc))
        sys.exit(1)
    except typer.Abort:
        _error(
            ErrorCode.UNAVAILABLE,
            "aborted: a prompt got no answer (standard input is closed, or Ctrl-C); give the "
            "passphrase with --passphrase-file or $CITYCHAIN_PASSPHRASE to run without one",
        )
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a command without its own handler; never show a traceback
        if os.environ.get("CITYCHAIN_DEBUG"):
            raise
        _error(
            ErrorCode.INTERNAL,
            f"unexpected {type(exc).__name__}: {exc} (set CITYCHAIN_DEBUG=1 for details)",
        )
        sys.exit(1)
    sys.exit(status if type(status) is int else 0)


if __name__ == "__main__":
    main()
