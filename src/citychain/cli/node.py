"""`citychain init`, `citychain start`, `citychain node replay`: node lifecycle commands."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from citychain.cli._keys_access import read_passphrase
from citychain.cli._output import fail
from citychain.errors import CitychainError, ConfigError

if TYPE_CHECKING:
    from citychain.crypto import CryptoSuite, Signer
    from citychain.node.config import KeysSettings

console = Console(stderr=False, emoji=False)
err_console = Console(stderr=True, emoji=False)

DEFAULT_HOME = Path(os.environ.get("CITYCHAIN_NODE_HOME", ".citychain/node"))

HomeOpt = Annotated[
    Path,
    typer.Option(
        "--home", help="Node home directory (config, keys, data).", envvar="CITYCHAIN_NODE_HOME"
    ),
]


_fail = fail  # errors print as everywhere else: code and message, markup escaped

PassphraseFdOpt = Annotated[
    int | None,
    typer.Option(
        "--passphrase-fd",
        metavar="N",
        help="Read the key passphrase from open file descriptor N (to a newline or EOF).",
    ),
]


def _passphrase_from(fd: int | None, stdin: bool) -> tuple[str, str] | None:
    """The passphrase given with --passphrase-fd N or --passphrase-stdin, if either was."""
    from citychain.crypto.passphrase import read_fd
    from citychain.errors import ErrorCode, InvalidInput

    if fd is not None and stdin:
        raise InvalidInput(
            "give the passphrase with --passphrase-fd or --passphrase-stdin, not both",
            ErrorCode.BAD_ARGUMENTS,
        )
    if fd is not None:
        return read_fd(fd, f"--passphrase-fd {fd}"), f"--passphrase-fd {fd}"
    if stdin:
        if os.isatty(0):  # a person at a terminal: ask without echoing
            typed: str = typer.prompt("Key passphrase", hide_input=True)
            return typed, "stdin"
        return read_fd(0, "stdin"), "stdin"
    return None


def init(
    home: HomeOpt = DEFAULT_HOME,
    chain_id: Annotated[
        str, typer.Option(help="Chain id written into genesis.")
    ] = "citychain-demo",
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the passphrase that encrypts the keys (else one is generated)."
        ),
    ] = None,
    insecure_plaintext_key: Annotated[
        bool, typer.Option(help="DEV ONLY: store keys unencrypted (a warning is logged at start).")
    ] = False,
    port: Annotated[int, typer.Option(help="API port.")] = 26657,
    passphrase_fd: PassphraseFdOpt = None,
    passphrase_stdin: Annotated[
        bool,
        typer.Option("--passphrase-stdin", help="Read the key passphrase from standard input."),
    ] = False,
    signer: Annotated[
        str,
        typer.Option(
            help='Where the validator key lives: "file" (encrypted key file) or "pkcs11" '
            "(made inside a hardware security module; PIN from $CITYCHAIN_PKCS11_PIN)."
        ),
    ] = "file",
    pkcs11_module: Annotated[
        str, typer.Option(help="PKCS#11 module (shared library) for --signer pkcs11.")
    ] = "",
    pkcs11_token: Annotated[str, typer.Option(help="Token label for --signer pkcs11.")] = "",
    pkcs11_key: Annotated[
        str, typer.Option(help="Key label for --signer pkcs11 (made if the token lacks it).")
    ] = "citychain-validator",
    crypto: CryptoOpt = "ed25519",
) -> None:
    """Create a node home: validator key, demo accounts (alice, bob), genesis and config.

    Without a passphrase (--passphrase-file, --passphrase-fd, --passphrase-stdin) this is a
    demo/test home: a random passphrase is written in plain text beside the keys and node.toml
    marks the home as a test network's. With one, it is written nowhere: start the node with
    it (README: Keys)."""
    from citychain.node.home import init_home

    try:
        given = _passphrase_from(passphrase_fd, passphrase_stdin)
        passphrase = (
            given[0]
            if given is not None
            else read_passphrase(passphrase_file, "")
            if passphrase_file
            else None
        )
        validator, keys = init_signer(signer, pkcs11_module, pkcs11_token, pkcs11_key)
        result = init_home(
            home,
            chain_id=chain_id,
            passphrase=passphrase,
            plaintext_key=insecure_plaintext_key,
            api_port=port,
            validator=validator,
            keys=keys,
            suite=suite_named(crypto),
        )
    except CitychainError as exc:
        raise _fail(exc) from None
    console.print(f"[green]initialised[/] {home} for chain [bold]{chain_id}[/]")
    console.print(f"  validator  {result.validator.public_key.hex()}")
    for name, s in result.accounts.items():
        console.print(
            f"  account    {name:<6} {s.address.hex()}  (key: {home / 'keys' / name}.json)"
        )
    if result.passphrase_file:
        console.print(
            f"  passphrase {result.passphrase_file} (mode 0600; TEST NETWORK ONLY: for a real "
            "deployment give a passphrase, see README: Keys)"
        )
    if validator is not None:
        console.print(f"  key        inside the PKCS#11 token {pkcs11_token!r}, {pkcs11_key!r}")
    if insecure_plaintext_key:
        console.print("[bold yellow]warning:[/] keys are stored in plaintext (dev only)")


#: Short names the CLI takes for the crypto suites (``--crypto sm2``).
SUITE_ALIASES = {"sm2": "sm2-sm3"}

CryptoOpt = Annotated[
    str,
    typer.Option(
        "--crypto",
        help='The chain\'s crypto suite, written in genesis: "ed25519" (default) or "sm2" '
        "(sm2-sm3: SM2 signatures, SM3 for every hash of the chain).",
    ),
]


def suite_named(name: str) -> CryptoSuite:
    """The suite ``--crypto`` names (``sm2`` is ``sm2-sm3``); ``bad_config`` if unknown."""
    from citychain.crypto import get_suite

    return get_suite(SUITE_ALIASES.get(name, name))


def init_signer(
    signer: str, module: str, token: str, key: str
) -> tuple[Signer | None, KeysSettings | None]:
    """For --signer pkcs11: the key in the token (made there if missing) and its [keys]."""
    from citychain.errors import ErrorCode, InvalidInput

    if signer == "file":
        return None, None
    if signer != "pkcs11":
        raise InvalidInput(
            f'--signer must be "file" or "pkcs11", got {signer!r}', ErrorCode.BAD_ARGUMENTS
        )
    if not module or not token or not key:
        raise InvalidInput(
            "--signer pkcs11 needs --pkcs11-module, --pkcs11-token and --pkcs11-key",
            ErrorCode.BAD_ARGUMENTS,
        )
    from citychain.crypto.pkcs11 import generate_key, open_signer, read_pin
    from citychain.node.config import KeysSettings

    keys = KeysSettings(
        signer="pkcs11", pkcs11_module=module, pkcs11_token_label=token, pkcs11_key_label=key
    )
    pin = read_pin(keys.pkcs11_pin_env)
    try:
        return open_signer(module, token, key, pin), keys
    except ConfigError as exc:
        if "no Ed25519" not in exc.message:
            raise
    generate_key(module, token, key, pin)
    return open_signer(module, token, key, pin), keys


def start(
    home: HomeOpt = DEFAULT_HOME,
    demo: Annotated[
        bool,
        typer.Option(
            help="Initialise the home first if it is empty (single validator, demo accounts)."
        ),
    ] = False,
    port: Annotated[int | None, typer.Option(help="Override the API port.")] = None,
    host: Annotated[str | None, typer.Option(help="Override the API listen address.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    passphrase_fd: PassphraseFdOpt = None,
    passphrase_stdin: Annotated[
        bool,
        typer.Option("--passphrase-stdin", help="Read the key passphrase from standard input."),
    ] = False,
) -> None:
    """Start a node and its REST/WebSocket API (stop with Ctrl-C).

    The key passphrase comes from --passphrase-fd N, --passphrase-stdin, $CITYCHAIN_PASSPHRASE
    or the systemd credential citychain-passphrase; a plaintext passphrase file beside the key
    is read only on a test network (README: Keys)."""
    from citychain.api.server import run_node
    from citychain.node.home import init_home
    from citychain.node.keys import supply_passphrase

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def create_demo() -> None:
        init_home(home, kdf_level="interactive")
        console.print(f"[green]initialised a demo node[/] in {home}")

    try:
        given = _passphrase_from(passphrase_fd, passphrase_stdin)
        if given is not None:
            supply_passphrase(*given)
        # The demo home is created only once the home and ports are known to be free.
        run_node(
            home,
            host=host,
            port=port,
            announce=console.print,
            create=create_demo if demo else None,
        )
    except CitychainError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        pass


node_app = typer.Typer(help="Node maintenance.", no_args_is_help=True)


@node_app.command("replay")
def replay_cmd(home: HomeOpt = DEFAULT_HOME) -> None:
    """Re-execute every block from genesis into a fresh state and check every state root."""
    from citychain.node.replay import replay

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replaying blocks", total=None)

        def progress(height: int, target: int) -> None:
            bar.update(task, completed=height, total=target)

        try:
            report = replay(home, progress=progress)
        except CitychainError as exc:
            raise _fail(exc) from None
    console.print(
        f"[green]replay ok[/]: {report.height} blocks, {report.transactions} transactions, "
        f"every state root reproduced; final state root {report.state_root.hex()}"
    )


def register(app: typer.Typer) -> None:
    """Add the node lifecycle commands to the top-level app."""
    app.command("init")(init)
    app.command("start")(start)
    app.add_typer(node_app, name="node")
