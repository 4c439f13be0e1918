"""`citychain keys ...`: create, list, show, export and import account keys.

Keys live in ``<home>/keys/<NAME>.json`` (``--dir`` to use another directory), encrypted
under a passphrase with argon2id + XSalsa20-Poly1305 (see :mod:`citychain.crypto.keystore`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from citychain.cli._keys_access import (
    check_name,
    key_info,
    key_path,
    keys_dir,
    load_signer,
    read_passphrase,
)
from citychain.cli._output import (
    HomeOpt,
    JsonOpt,
    PassFileOpt,
    bad,
    command_name,
    console,
    err_console,
    handles_errors,
    print_json,
)
from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, InvalidInput, KeystoreError

keys_app = typer.Typer(help="Manage account keys.", no_args_is_help=True)

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Keys directory \\[default: <home>/keys].", show_default=False),
]
KdfOpt = Annotated[
    str,
    typer.Option(
        "--kdf",
        help="Passphrase hardening: interactive (fast, for development), moderate, sensitive.",
    ),
]
NameArg = Annotated[str, typer.Argument(help="The key's name.")]


def _new_file(name: str, home: Path | None, directory: Path | None) -> Path:
    d = keys_dir(home, directory)
    path = d / f"{check_name(name)}.json"
    if path.exists():
        raise bad(f"a key named {name!r} already exists at {path}; choose another name")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _save(path: Path, signer: Signer, passphrase: str | None, kdf: str) -> None:
    from citychain.crypto.keystore import save_key, save_plaintext_key

    if passphrase is None:
        save_plaintext_key(path, signer)
    else:
        save_key(path, signer, passphrase, kdf_level=kdf)


def _describe(name: str, signer_or_path: Signer | Path, as_json: bool) -> None:
    if isinstance(signer_or_path, Signer):
        suite, public_key, address = (
            signer_or_path.suite.name,
            signer_or_path.public_key,
            signer_or_path.address,
        )
        path, encrypted = None, None
    else:
        info = key_info(signer_or_path)
        suite, public_key, address = info.suite, info.public_key, info.address
        path, encrypted = info.path, info.encrypted
    if as_json:
        doc: dict[str, str | bool | None] = {
            "name": name,
            "suite": suite,
            "address": address.hex(),
            "public_key": public_key.hex(),
        }
        if path is not None:
            doc |= {"file": str(path), "encrypted": encrypted}
        print_json(doc)
        return
    console.print(f"[bold]{escape(name)}[/]")
    console.print(f"  address     {address.hex()}")
    console.print(f"  public key  {public_key.hex()}  ({suite})")
    if path is not None:
        state = "encrypted" if encrypted else "[yellow]PLAINTEXT (development only)[/]"
        console.print(f"  file        {escape(str(path))}  ({state})")


@keys_app.command("new")
@handles_errors
def new(
    name: NameArg,
    directory: DirOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    kdf: KdfOpt = "moderate",
    insecure_plaintext: Annotated[
        bool,
        typer.Option("--insecure-plaintext", help="DEV ONLY: store the key unencrypted."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a new key and store it encrypted under a passphrase."""
    path = _new_file(name, home, directory)
    passphrase = (
        None
        if insecure_plaintext
        else read_passphrase(passphrase_file, f"New passphrase for key {name}", confirm=True)
    )
    signer = Signer.generate(ED25519)
    _save(path, signer, passphrase, kdf)
    if insecure_plaintext:
        err_console.print("[bold yellow]warning:[/] the key is stored UNENCRYPTED (dev only)")
    _describe(name, path, as_json)


@keys_app.command("show")
@handles_errors
def show(
    name: NameArg,
    directory: DirOpt = None,
    home: HomeOpt = None,
    unlock: Annotated[
        bool,
        typer.Option("--unlock", help="Decrypt the key to check its passphrase and integrity."),
    ] = False,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A key's address and public key (no passphrase needed unless --unlock)."""
    path = key_path(name, home, directory)
    if unlock:
        load_signer(str(path), passphrase_file=passphrase_file)
    _describe(name, path, as_json)
    if unlock and not as_json:
        console.print("  [green]unlocked[/]: the passphrase is right and the file is intact")


@keys_app.command("list")
@handles_errors
def list_(directory: DirOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Every key in the keys directory."""
    d = keys_dir(home, directory)
    rows = []
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            info = key_info(path)
        except KeystoreError:
            continue  # not a key file
        rows.append((path.stem, info))
    if as_json:
        print_json(
            [
                {
                    "name": n,
                    "address": i.address.hex(),
                    "public_key": i.public_key.hex(),
                    "suite": i.suite,
                    "encrypted": i.encrypted,
                    "file": str(i.path),
                }
                for n, i in rows
            ]
        )
        return
    if not rows:
        console.print(
            f"no keys in {escape(str(d))} (create one: {escape(command_name())} keys new NAME)"
        )
        return
    table = Table("name", "address", "suite", "stored", box=None, pad_edge=False)
    for n, i in rows:
        stored = "encrypted" if i.encrypted else "[yellow]plaintext[/]"
        table.add_row(escape(n), i.address.hex(), i.suite, stored)
    console.print(table)


@keys_app.command("export")
@handles_errors
def export(
    name: NameArg,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (mode 0600), not stdout.")
    ] = None,
    directory: DirOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    kdf: KdfOpt = "moderate",
) -> None:
    """Print the key as an encrypted keystore document (unlocked and re-encrypted under the
    same passphrase, so the passphrase is checked)."""
    from citychain.crypto.keystore import export_key, load_key, save_key

    path = key_path(name, home, directory)
    info = key_info(path)
    passphrase = read_passphrase(
        passphrase_file,
        f"Passphrase for key {name}" if info.encrypted else f"New passphrase to export {name}",
        confirm=not info.encrypted,
    )
    signer = load_key(path, passphrase if info.encrypted else "", allow_plaintext=True)
    if out is not None:
        if out.exists():
            raise bad(f"{out} already exists; not overwriting it")
        save_key(out, signer, passphrase, kdf_level=kdf)
        err_console.print(f"exported {escape(name)} to {escape(str(out))}")
    else:
        typer.echo(export_key(signer, passphrase, kdf_level=kdf), nl=False)


@keys_app.command("import")
@handles_errors
def import_(
    name: NameArg,
    file: Annotated[Path, typer.Argument(help="A keystore document (from keys export).")],
    directory: DirOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    kdf: KdfOpt = "moderate",
    as_json: JsonOpt = False,
) -> None:
    """Store an exported key under NAME (it is unlocked first, so a wrong passphrase or a
    damaged file is refused)."""
    from citychain.crypto.keystore import import_key

    path = _new_file(name, home, directory)
    try:
        text = file.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"cannot read {file}: {exc}") from None
    info = key_info(file)
    passphrase = read_passphrase(
        passphrase_file,
        f"Passphrase of {file.name}" if info.encrypted else f"New passphrase for key {name}",
        confirm=not info.encrypted,
    )
    signer = import_key(text, passphrase if info.encrypted else "", allow_plaintext=True)
    _save(path, signer, passphrase, kdf)
    _describe(name, path, as_json)


@keys_app.command("issue-cert")
@handles_errors
def issue_cert(
    name: NameArg,
    org: Annotated[str, typer.Option(help="The organisation whose CA issues it.")],
    ca_cert: Annotated[Path, typer.Option(help="The organisation's CA certificate (PEM).")],
    ca_key: Annotated[
        Path, typer.Option(help="The CA's private key (PEM; encrypted with the passphrase).")
    ],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles (the certificate's OU values).")
    ] = "member",
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the certificate [default: keys/NAME.cert.pem]."),
    ] = None,
    valid_days: Annotated[int, typer.Option(help="Days the certificate is valid.")] = 365,
    directory: DirOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Issue a member certificate for key NAME (certificate identity mode); its holder then
    enrols with `citychain gov enroll --cert FILE --key NAME`. An SM2 CA (an sm2-sm3 chain's)
    issues an SM2 certificate for an sm2-sm3 key; its key may be a PEM (as openssl writes it)
    or a citychain key file."""
    from citychain.crypto.member_certs import issue_member_cert
    from citychain.crypto.sm2_certs import is_sm2_cert, issue_sm2_member_cert
    from citychain.p2p.certs import decrypt_key_pem

    path = key_path(name, home, directory)
    info = key_info(path)
    try:
        ca_pem = ca_cert.expanduser().read_bytes()
        key_pem = ca_key.expanduser().read_bytes()
    except OSError as exc:
        raise bad(f"cannot read {exc.filename}: {exc.strerror}") from None
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    sm2_ca = is_sm2_cert(ca_pem)
    if (info.suite == "sm2-sm3") != sm2_ca:
        raise InvalidInput(
            f"key {name} is an {info.suite} key and {ca_cert} is "
            f"{'an SM2' if sm2_ca else 'not an SM2'} CA: an sm2-sm3 chain's keys are certified "
            "by its organisations' SM2 CAs, an ed25519 chain's by their ECDSA CAs",
            ErrorCode.WRONG_SUITE,
        )
    if sm2_ca:
        cert = issue_sm2_member_cert(
            ca_pem,
            _sm2_ca_secret(ca_key, key_pem, passphrase_file),
            info.public_key,
            name=name,
            org_id=org,
            roles=role_list,
            valid_days=valid_days,
        )
    else:
        if b"ENCRYPTED" in key_pem:
            passphrase = read_passphrase(passphrase_file, "Passphrase of the CA key")
            key_pem = decrypt_key_pem(key_pem, passphrase)
        cert = issue_member_cert(
            ca_pem,
            key_pem,
            info.public_key,
            name=name,
            org_id=org,
            roles=role_list,
            valid_days=valid_days,
        )
    target = out or path.with_name(f"{name}.cert.pem")
    target.write_bytes(cert)
    console.print(
        f"[green]issued[/] a certificate for {escape(name)} ({', '.join(role_list)} of "
        f"{escape(org)}): {target}"
    )


def _sm2_ca_secret(ca_key: Path, key_bytes: bytes, passphrase_file: Path | None) -> bytes:
    """The SM2 CA's secret, from a citychain key file (JSON) or a PEM private key."""
    from citychain.crypto.sm2_certs import sm2_secret_from_pem

    if key_bytes.lstrip().startswith(b"{"):
        signer = load_signer(str(ca_key.expanduser().absolute()), passphrase_file=passphrase_file)
        if signer.suite.name != "sm2-sm3":
            raise InvalidInput(
                f"{ca_key} is an {signer.suite.name} key, not the SM2 key of an SM2 CA",
                ErrorCode.WRONG_SUITE,
            )
        return signer.secret
    passphrase = (
        read_passphrase(passphrase_file, "Passphrase of the CA key")
        if b"ENCRYPTED" in key_bytes
        else None
    )
    return sm2_secret_from_pem(key_bytes, passphrase)
