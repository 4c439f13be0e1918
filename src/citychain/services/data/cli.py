"""``citychain data ...``: the data directory at the terminal, a thin shell over ``client.data``.

Every command calls the data SDK (:class:`~citychain.services.data.sdk.Data`): the
transactions are its helpers (each sends, waits for the commit and returns the contract's
result, or raises the receipt's code), the reads its queries and signed reads. A refusal
prints ``error [code]: message`` and exits 1 (``handles_errors``), never a traceback.

Three commands do more than one call, and say how:

* ``data import`` registers every dataset of a DCAT 3 JSON-LD file, one transaction each, so
  it cannot be all-or-nothing. It checks the whole file first, as the contract would: every
  record's fields (the SDK's builder), no code listed twice or already registered, the signer
  a member in good standing of every provider. One bad record refuses the file before anything
  is sent. If a transaction still fails halfway (the chain changed meanwhile), the command
  names the resources already registered and the one refused.
* ``data gc`` (an operator's command, on the machine of a node) collects the node's blob
  store. The referenced set is every version's manifest the chain anchors: all versions of
  every resource, retired ones included (a retired resource keeps its versions, and grants
  still allow their downloads), listed page by page from the chain (``search`` with
  ``retired``), never by reading the store's blobs. Blobs are not
  replicated between nodes, so only the referenced manifests this store holds are handed to
  :func:`~citychain.blobs.collect_garbage` (which stops at a referenced manifest it cannot
  read). The node's chain id must be the home's, so the set of one chain never collects the
  store of another.
* ``data private put`` hands the value to the node (a node of a listed organisation), which
  pushes it to the listed organisations' nodes, then anchors its salted hash on chain: the
  SDK's ``put_private`` does both (not the second when too few peers acknowledged the value:
  ``dissemination_failed``, see ``collection define --required-peers``). A value over 1 MiB
  is refused (``too_large``) before the key is opened or the node asked: a file by its size,
  stdin by reading one byte past the limit. ``data private get`` writes the bytes as they
  are (stdout or ``-o``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from citychain.cli._client import make_client, trust_from
from citychain.cli._keys_access import load_signer
from citychain.cli._output import (
    DEFAULT_NODE,
    HomeOpt,
    JsonOpt,
    NodeOpt,
    PassFileOpt,
    bad,
    console,
    err_console,
    handles_errors,
    parse_hex,
    print_json,
)
from citychain.cli.query import GenesisOpt
from citychain.cli.tx import KeyOpt
from citychain.crypto import Signer
from citychain.errors import CitychainError, ErrorCode, ExecutionFailure, InvalidInput, NotFound
from citychain.sdk import Client, keep_freed_memory
from citychain.services.data.sdk import Data, register_args
from citychain.services.data.shapes import (
    MAX_GRANT_MS,
    MAX_PAGE,
    RESOURCE_FIELDS,
    SHARING,
    import_catalogue,
)

data_app = typer.Typer(
    help="The data directory: catalogue, encrypted versions, access requests and grants.",
    no_args_is_help=True,
)

CodeArg = Annotated[str, typer.Argument(help="A resource code (信息资源代码), e.g. 101001/000123.")]
# Signed reads: the key is the reader, not a sender.
ReaderOpt = Annotated[
    str,
    typer.Option("--key", help="The reader: a key name in <home>/keys, or a key file's path."),
]


# -- shared ------------------------------------------------------------------------------------
@contextmanager
def _data(node: str) -> Iterator[Data]:
    with make_client(node) as client:
        yield Data(client)


def _signer(key: str, home: Path | None, passphrase_file: Path | None) -> Signer:
    return load_signer(key, home, passphrase_file=passphrase_file)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hex(value: Any) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


def _short(value: Any, n: int = 12) -> str:
    text = _hex(value)
    return text if len(text) <= n else text[:n] + "…"


#: ``30d``, ``12h``, ``90m``, ``45s``, ``2w``, or a sum of them (``1d12h``). Hand-written:
#: five units do not need a dependency (dateutil parses dates, not durations).
_DURATION = re.compile(r"(?:(\d+)([wdhms]))+")
_UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}


def parse_duration_ms(text: str, what: str) -> int:
    """Milliseconds of a duration such as ``30d``, ``12h``, ``1d12h``; ``bad_arguments``
    naming ``what`` otherwise."""
    compact = text.strip().replace(" ", "")
    if not compact or not _DURATION.fullmatch(compact):
        raise bad(f"{what} must be a duration such as 30d, 12h, 90m, 45s or 1d12h, got {text!r}")
    return sum(int(n) * _UNIT_MS[u] for n, u in re.findall(r"(\d+)([wdhms])", compact))


def parse_when_ms(text: str, what: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 date-time with a time zone (``Z`` or an
    offset), or a date alone (midnight UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is None and "T" not in text and " " not in text:
        moment = moment.replace(tzinfo=UTC)
    if moment is None or moment.tzinfo is None:
        raise bad(
            f"{what} must be a date-time with a time zone, e.g. 2027-01-31T18:00:00Z, or a "
            f"date (midnight UTC), got {text!r}"
        )
    return int(moment.timestamp() * 1000)


def _rows(title: str, cols: list[str], rows: list[list[str]], *, empty: str = "none") -> None:
    if not rows:
        console.print(f"{title}: {empty}")
        return
    table = Table(*cols, title=title, box=None, pad_edge=False, title_justify="left")
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    console.print(table)


def _pages(read: Callable[[int], list[dict[str, Any]]], key: str) -> list[dict[str, Any]]:
    """Every entry of a paged signed read (``read(after)``: one page of at most MAX_PAGE)."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = read(after)
        out.extend(page)
        if len(page) < MAX_PAGE:
            return out
        after = int(page[-1][key])


class _Bar:
    """A rich progress bar of bytes (done, rate, time left) on stderr; nothing with ``--json``
    or when stderr is no terminal."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and err_console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None)
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total or None)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


# -- the catalogue -----------------------------------------------------------------------------
def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise bad(f"{what} {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"{what} {path}: not JSON ({exc})") from None


def _data_item(text: str) -> dict[str, str]:
    name, sep, dtype = text.rpartition(":")
    if not sep or not name:
        raise bad(f"--data-item must be NAME:TYPE, e.g. born:date, got {text!r}")
    return {"name": name, "type": dtype}


FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        help="The resource's fields as a JSON object (code, title, provider, sharing, ...); "
        "the options below override them.",
    ),
]
FieldCodeOpt = Annotated[str | None, typer.Option("--code", help="The resource code.")]
TitleOpt = Annotated[str | None, typer.Option("--title", help="信息资源名称.")]
DescriptionOpt = Annotated[str | None, typer.Option("--description", help="信息资源摘要.")]
ProviderOpt = Annotated[
    str | None, typer.Option("--provider", help="The providing organisation's id.")
]
ThemeOpt = Annotated[
    list[str] | None, typer.Option("--theme", help="A theme (label or IRI); repeat for several.")
]
KeywordOpt = Annotated[
    list[str] | None, typer.Option("--keyword", help="A keyword; repeat for several.")
]
DataItemOpt = Annotated[
    list[str] | None,
    typer.Option("--data-item", help="信息项 as NAME:TYPE (e.g. born:date); repeat."),
]
SharingOpt = Annotated[
    str | None, typer.Option("--sharing", help="unconditional, conditional or none.")
]
ConditionOpt = Annotated[
    str | None, typer.Option("--sharing-condition", help="共享条件 (conditional sharing).")
]
OpenClassOpt = Annotated[
    str | None, typer.Option("--open-class", help="open, conditional or closed.")
]
CycleOpt = Annotated[
    str | None, typer.Option("--update-cycle", help="daily, monthly, irregular, ...")
]
MediaOpt = Annotated[str | None, typer.Option("--media-type", help="e.g. text/csv.")]
LicenseOpt = Annotated[str | None, typer.Option("--license", help="The licence's IRI.")]
SeriesOpt = Annotated[str | None, typer.Option("--series", help="A dataset series id.")]
ApproverOpt = Annotated[
    list[str] | None,
    typer.Option("--approver", help="An approver's address (hex; conditional); repeat."),
]


def _fields(file: Path | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """The resource's fields: the file's, then each option given."""
    fields: dict[str, Any] = {}
    if file is not None:
        raw = _read_json(file, "--file")
        if not isinstance(raw, dict):
            raise bad(f"--file {file}: a resource is a JSON object of its fields")
        fields.update(raw)
    for name, value in given.items():
        if value is not None and value != []:
            fields[name] = value
    return fields


def _register_or_update(update: bool, **kw: Any) -> None:
    given = {
        "code": kw["code"],
        "title": kw["title"],
        "description": kw["description"],
        "provider": kw["provider"],
        "themes": kw["theme"],
        "keywords": kw["keyword"],
        "data_items": [_data_item(t) for t in kw["data_item"] or []],
        "sharing": kw["sharing"],
        "sharing_condition": kw["sharing_condition"],
        "open_class": kw["open_class"],
        "update_cycle": kw["update_cycle"],
        "media_type": kw["media_type"],
        "license": kw["license"],
        "series": kw["series"],
        "approvers": kw["approver"],
    }
    fields = _fields(kw["file"], given)
    signer = _signer(kw["key"], kw["home"], kw["passphrase_file"])
    with _data(kw["node"]) as data:
        if update:
            if "code" not in fields:
                raise bad("name the resource with --code (or a code in --file)")
            current = data.resource(str(fields["code"]))
            fields = {**{k: current[k] for k in RESOURCE_FIELDS}, **fields}
            args = register_args(**fields)
            revision = data.update_resource(signer, **args)
            result: dict[str, Any] = {"code": args["code"], "revision": revision}
            headline = f"updated [bold]{escape(args['code'])}[/] (revision {revision})"
        else:
            args = register_args(**fields)
            code = data.register_resource(signer, **args)
            result = {"code": code}
            headline = f"registered [bold]{escape(code)}[/]"
    if kw["as_json"]:
        print_json(result)
    else:
        console.print(headline)


def _resource_record(
    ctx: typer.Context,
    key: KeyOpt,
    file: FileOpt = None,
    code: FieldCodeOpt = None,
    title: TitleOpt = None,
    description: DescriptionOpt = None,
    provider: ProviderOpt = None,
    theme: ThemeOpt = None,
    keyword: KeywordOpt = None,
    data_item: DataItemOpt = None,
    sharing: SharingOpt = None,
    sharing_condition: ConditionOpt = None,
    open_class: OpenClassOpt = None,
    update_cycle: CycleOpt = None,
    media_type: MediaOpt = None,
    license: LicenseOpt = None,
    series: SeriesOpt = None,
    approver: ApproverOpt = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    # `data register` and `data update` take the same options: one function serves both, told
    # apart by the name it was called under.
    fields = {k: v for k, v in locals().items() if k != "ctx"}
    _register_or_update(ctx.info_name == "update", **fields)


data_app.command(
    "register",
    help="Register a resource (KEY: a member of its provider): fields from --file and options.",
)(handles_errors(_resource_record))
data_app.command(
    "update",
    help="Change a resource's record.\n\nThe current record, with --file's fields and the "
    "options given over it (a list option replaces the whole list).",
)(handles_errors(_resource_record))


@data_app.command("retire")
@handles_errors
def retire(
    code: CodeArg,
    key: KeyOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why it is retired.")],
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retire a resource (its history, versions and grants stay).

    It leaves the search and takes no new versions or requests."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        revision = data.retire_resource(signer, code, reason)
    if as_json:
        print_json({"code": code, "revision": revision})
    else:
        console.print(f"retired [bold]{escape(code)}[/] (revision {revision})")


def _check_import(
    data: Data, client_query: Callable[..., Any], signer: Signer, doc: Any
) -> list[dict[str, Any]]:
    """The register args of every dataset of ``doc``, each checked as the contract would
    check it, or the first refusal (nothing sent)."""
    records = import_catalogue(doc)
    if not records:
        raise InvalidInput("the catalogue lists no dataset", ErrorCode.INVALID_CATALOGUE)
    member = client_query("gov", "member", address=signer.address)
    out = []
    for r in records:
        code = r["code"]
        try:
            args = register_args(**{k: r[k] for k in RESOURCE_FIELDS if k in r})
        except InvalidInput as exc:
            raise InvalidInput(f"dataset {code!r}: {exc.message}", exc.code) from None
        if member is None or member.get("standing") != "ok" or member["org"] != args["provider"]:
            what = f"a member of {member['org']!r}" if member else "no member"
            raise ExecutionFailure(
                f"dataset {code!r}: only a member of organisation {args['provider']!r} may "
                f"register it; {signer.address.hex()} is {what} in good standing",
                ErrorCode.NOT_PROVIDER,
            )
        try:
            data.resource(code)
        except NotFound:
            pass
        else:
            raise ExecutionFailure(
                f"dataset {code!r}: resource {code} is already registered", ErrorCode.DUPLICATE
            )
        out.append(args)
    return out


@data_app.command("import")
@handles_errors
def import_(
    file: Annotated[Path, typer.Argument(help="A DCAT 3 JSON-LD catalogue (.jsonld).")],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register every dataset of a DCAT 3 JSON-LD catalogue with KEY.

    The whole file is checked first (fields, codes not yet registered, KEY a member of each
    provider): one bad record refuses it before anything is sent. One transaction per
    dataset."""
    doc = _read_json(file, "catalogue")
    signer = _signer(key, home, passphrase_file)
    with make_client(node) as client:
        data = Data(client)
        records = _check_import(data, client.query, signer, doc)
        done: list[str] = []
        for args in records:
            try:
                done.append(data.register_resource(signer, **args))
            except CitychainError as exc:
                so_far = ", ".join(done) if done else "none"
                raise type(exc)(
                    f"dataset {args['code']!r}: {exc.message} (registered before it: {so_far}; "
                    f"not sent: the {len(records) - len(done) - 1} after it)",
                    exc.code,
                ) from None
            if not as_json:
                console.print(f"registered [bold]{escape(done[-1])}[/]")
    if as_json:
        print_json({"registered": done})
    else:
        console.print(f"{len(done)} resource(s) registered from {escape(str(file))}")


@data_app.command("export")
@handles_errors
def export(
    out: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
) -> None:
    """The node's live catalogue as one DCAT 3 JSON-LD document."""
    from citychain.crypto import get_suite

    with make_client(node) as client:
        suite = client.status().crypto_suite
        base = node.rstrip("/")
        doc = Data(client).catalogue(
            base=base, endpoint=f"{base}/v1/data", hash_name=get_suite(suite).hash_name
        )
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise bad(f"-o {out}: {exc.strerror}") from None
    err_console.print(f"wrote {len(doc.get('dataset', []))} dataset(s) to {escape(str(out))}")


@data_app.command("search")
@handles_errors
def search(
    provider: Annotated[str | None, typer.Option("--provider", help="Organisation id.")] = None,
    theme: Annotated[str | None, typer.Option("--theme", help="A theme.")] = None,
    keyword: Annotated[str | None, typer.Option("--keyword", help="A keyword.")] = None,
    sharing: Annotated[str | None, typer.Option("--sharing", help=f"{', '.join(SHARING)}.")] = None,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """Live resources matching every filter given, in code order."""
    with _data(node) as data:
        found = list(
            data.search_all(provider=provider, theme=theme, keyword=keyword, sharing=sharing)
        )
    if as_json:
        print_json(found)
        return
    _rows(
        "resources",
        ["code", "title", "provider", "sharing", "versions", "themes"],
        [
            [
                r["code"],
                r["title"],
                r["provider"],
                r["sharing"],
                str(r["versions"]),
                ", ".join(r["themes"]),
            ]
            for r in found
        ],
        empty="none found",
    )


@data_app.command("show")
@handles_errors
def show(code: CodeArg, node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """A resource's current record, revision, versions and latest version."""
    with _data(node) as data:
        r = data.resource(code)
    if as_json:
        print_json(r)
        return
    state = "[red]retired[/]" if r["retired"] else "live"
    console.print(f"[bold]{escape(r['code'])}[/] {escape(r['title'])} ({state})")
    for name in RESOURCE_FIELDS:
        if name in ("code", "title"):
            continue
        value = r[name]
        if name == "approvers":
            value = [a.hex() for a in value]
        if name == "data_items":
            value = [f"{i['name']}:{i['type']}" for i in value]
        if isinstance(value, list):
            value = ", ".join(value)
        if value:
            console.print(f"  {name:<18} {escape(str(value))}")
    console.print(f"  {'revision':<18} {r['revision']}")
    console.print(f"  {'issued':<18} {_when(r['issued'])}")
    console.print(f"  {'modified':<18} {_when(r['modified'])}")
    latest = r.get("latest")
    if latest:
        console.print(
            f"  {'latest version':<18} {latest['version']} ({latest['plain_size']} bytes, "
            f"anchored at height {latest['height']}, {_when(latest['time'])})"
        )
    else:
        console.print(f"  {'versions':<18} none yet")


@data_app.command("history")
@handles_errors
def history(code: CodeArg, node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """Every revision of a resource's record, oldest first."""
    with _data(node) as data:
        revisions: list[dict[str, Any]] = []
        while True:
            page = data.history(code, after=len(revisions), limit=MAX_PAGE)
            revisions.extend(page)
            if len(page) < MAX_PAGE:
                break
    if as_json:
        print_json(revisions)
        return
    _rows(
        f"history of {code}",
        ["revision", "op", "when", "height", "by", "tx"],
        [
            [
                str(i),
                str(r.get("op", "")),
                _when(r["time"]),
                str(r["height"]),
                _short(r.get("by", b"")),
                _short(r.get("tx", b"")),
            ]
            for i, r in enumerate(revisions, 1)
        ],
    )


@data_app.command("versions")
@handles_errors
def versions(code: CodeArg, node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """A resource's versions: manifest id, hashes, sizes, the anchoring block."""
    with _data(node) as data:
        found = list(data.versions_all(code))
    if as_json:
        print_json(found)
        return
    _rows(
        f"versions of {code}",
        ["version", "anchored", "height", "bytes", "plain hash", "manifest", "subjects"],
        [
            [
                str(v["version"]),
                _when(v["time"]),
                str(v["height"]),
                str(v["plain_size"]),
                _short(v["plain_hash"], 16),
                _short(v["manifest_id"], 16),
                str(v["subjects"]),
            ]
            for v in found
        ],
    )


# -- data in and out ---------------------------------------------------------------------------
@data_app.command("upload")
@handles_errors
def upload(
    code: CodeArg,
    file: Annotated[Path, typer.Argument(help="The file to seal, upload and anchor.")],
    key: KeyOpt,
    subject: Annotated[
        list[str] | None,
        typer.Option("--subject", help="A DID its records are about (kept as a tag); repeat."),
    ] = None,
    reader: Annotated[
        list[str] | None,
        typer.Option(
            "--reader",
            metavar="PUBLIC_KEY_HEX",
            help="An Ed25519 public key to wrap the data key for besides KEY's; repeat.",
        ),
    ] = None,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", min=1, help="Plaintext bytes per chunk.")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt FILE here, upload its chunks and anchor it as CODE's next version.

    Only ciphertext leaves this machine. An upload cut short resumes when run again (the
    SDK keeps the data key, wrapped for KEY, beside the file until the version is anchored)."""
    if not file.is_file():
        raise bad(f"no file at {file}")
    readers = [parse_hex(r, "--reader", 32) for r in reader or []]
    signer = _signer(key, home, passphrase_file)
    keep_freed_memory()  # this process moves the file in 4 MiB blocks (see the function)
    with _data(node) as data, _Bar(f"uploading {file.name}", not as_json) as bar:
        up = data.upload(
            signer,
            code,
            file,
            readers=readers,
            subjects=list(subject or []),
            chunk_size=chunk_size,
            progress=bar,
        )
    result = {
        "code": up.code,
        "version": up.version,
        "manifest_id": up.manifest_id,
        "plain_hash": up.plain_hash,
        "cipher_hash": up.cipher_hash,
        "plain_size": up.plain_size,
        "cipher_size": up.cipher_size,
    }
    if as_json:
        print_json(result)
        return
    console.print(f"anchored [bold]{escape(up.code)}[/] version [bold]{up.version}[/]")
    console.print(f"  manifest id  {up.manifest_id.hex()}")
    console.print(f"  plain hash   {up.plain_hash.hex()} ({up.plain_size} bytes)")
    console.print(f"  cipher hash  {up.cipher_hash.hex()} ({up.cipher_size} bytes)")


@data_app.command("download")
@handles_errors
def download(
    code: CodeArg,
    version: Annotated[int, typer.Argument(min=1, help="The version number.")],
    key: KeyOpt,
    grant: Annotated[int, typer.Option("--grant", min=1, help="The grant it is taken under.")],
    out: Annotated[Path, typer.Option("-o", "--output", help="Where to write the file.")],
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="This download's purpose (default: the grant's)."),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a version under a grant, decrypted and verified.

    The access is recorded on chain first (which checks the grant); the file is written only
    once whole and verified."""
    signer = _signer(key, home, passphrase_file)
    keep_freed_memory()  # as for an upload
    with _data(node) as data, _Bar(f"downloading {code} v{version}", not as_json) as bar:
        manifest = data.download(
            signer, code, version, out, grant=grant, purpose=purpose, progress=bar
        )
    if as_json:
        print_json(
            {
                "code": code,
                "version": version,
                "file": str(out),
                "plain_hash": manifest.plain_hash,
                "plain_size": manifest.plain_size,
                "manifest_id": manifest.id,
            }
        )
        return
    console.print(
        f"wrote {escape(str(out))}: {code} version {version}, {manifest.plain_size} bytes, "
        f"plain hash {manifest.plain_hash.hex()} verified"
    )


@data_app.command("verify")
@handles_errors
def verify(
    file: Annotated[Path, typer.Argument(help="Any file: is it a version the chain anchors?")],
    node: NodeOpt = DEFAULT_NODE,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where the chain anchors this file (no key needed); exit 1 if nowhere.

    Prints the resource and version, the anchoring block, the provider's transaction and the
    state proof checked against the trusted validators."""
    if not file.is_file():
        raise bad(f"no file at {file}")
    trust = trust_from(genesis, home)
    with make_client(node, trust) as client:
        anchors = Data(client).verify(file)
    if not anchors:
        raise NotFound(
            f"{file} is anchored nowhere on this chain: no version of any resource has this "
            "file's hash (a changed byte changes the hash)",
            ErrorCode.NOT_FOUND,
        )
    if as_json:
        print_json(
            [
                {
                    "code": a.code,
                    "version": a.version,
                    "plain_hash": a.plain_hash,
                    "plain_size": a.plain_size,
                    "height": a.anchored_height,
                    "time": a.anchored_time,
                    "tx": a.provider_tx,
                    "proof": {
                        "height": a.proof_height,
                        "verified": a.verified,
                        "signed_power": a.signed_power,
                        "total_power": a.total_power,
                        "trust": trust.source,
                    },
                }
                for a in anchors
            ]
        )
        return
    for a in anchors:
        console.print(f"[green]anchored[/]: [bold]{escape(a.code)}[/] version {a.version}")
        console.print(
            f"  block {a.anchored_height} at {_when(a.anchored_time)}, "
            f"{a.plain_size} bytes, hash {a.plain_hash.hex()}"
        )
        console.print(f"  provider's transaction {a.provider_tx.hex()}")
        if a.verified:
            console.print(
                f"  proof verified against header at height {a.proof_height} (signed by "
                f"{a.signed_power} of {a.total_power} power; trusted set: {escape(trust.source)})"
            )
        else:
            console.print(f"  [yellow]proof not verified[/] (state at height {a.proof_height})")


# -- requests and grants -----------------------------------------------------------------------
@data_app.command("request")
@handles_errors
def request(
    code: CodeArg,
    key: KeyOpt,
    purpose: Annotated[str, typer.Option("--purpose", help="What the data is for.")],
    period: Annotated[
        str | None,
        typer.Option("--period", help="How long, from the block that takes it: 30d, 12h..."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Until when: a date-time, e.g. 2027-01-31T18:00:00Z."),
    ] = None,
    legal_basis: Annotated[
        str | None, typer.Option("--legal-basis", help="The law or rule that allows it.")
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="The DID the request is about (a citizen: their own)."),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask for access to a resource.

    Granted at once if it is shared unconditionally, refused if not shared, else pending for
    an approver."""
    if (period is None) == (until is None):
        raise bad("give the access period as --period (e.g. 30d) or --until (a date-time)")
    kw: dict[str, Any] = {}
    if period is not None:
        ms = parse_duration_ms(period, "--period")
        if not 0 < ms <= MAX_GRANT_MS:
            raise bad(f"--period must be more than 0 and at most {MAX_GRANT_MS // 86_400_000}d")
        kw["period"] = ms
    else:
        assert until is not None
        kw["until"] = parse_when_ms(until, "--until")
    if legal_basis:
        kw["legal_basis"] = legal_basis
    if subject is not None:
        kw["subject"] = subject
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        result = data.request_access(signer, code, purpose, **kw)
    if as_json:
        print_json(result)
        return
    line = f"request [bold]{result['request']}[/] on {escape(code)}: {result['state']}"
    if result["grant"]:
        line += f", grant [bold]{result['grant']}[/]"
    console.print(line)


@data_app.command("decide")
@handles_errors
def decide(
    request_id: Annotated[int, typer.Argument(metavar="REQUEST", min=1, help="The request id.")],
    key: KeyOpt,
    approve: Annotated[bool, typer.Option("--approve", help="Grant it.")] = False,
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse it (needs --reason).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An approver decides a pending request on a conditionally shared resource."""
    if approve == refuse:
        raise bad("give one of --approve or --refuse")
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        result = data.decide(signer, request_id, approve, reason)
    if as_json:
        print_json(result)
        return
    line = f"request [bold]{result['request']}[/]: {result['state']}"
    if result["grant"]:
        line += f", grant [bold]{result['grant']}[/]"
    console.print(line)


@data_app.command("grant-keys")
@handles_errors
def grant_keys(
    code: CodeArg,
    key: KeyOpt,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Default: the latest version.")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The provider wraps a version's data key for every active grantee."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        done = data.grant_keys(signer, code, version)
    if as_json:
        print_json({"code": code, "version": version, "grants": done})
    elif done:
        console.print(f"wrapped the data key for grant(s) {', '.join(map(str, done))}")
    else:
        console.print("no active grant without its key: nothing to wrap")


@data_app.command("revoke")
@handles_errors
def revoke(
    grant_id: Annotated[int, typer.Argument(metavar="GRANT", min=1, help="The grant id.")],
    key: KeyOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a grant (the provider): no download under it from the next block on."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        data.revoke(signer, grant_id, reason)
    if as_json:
        print_json({"grant": grant_id, "state": "revoked"})
    else:
        console.print(f"revoked grant [bold]{grant_id}[/]")


# -- signed reads ------------------------------------------------------------------------------
def _grant_rows(grants: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            str(g["id"]),
            g["state"],
            g["org"] or "(citizen)",
            _short(g["grantee"]),
            g["purpose"],
            _when(g["until"]),
        ]
        for g in grants
    ]


_GRANT_COLS = ["grant", "state", "org", "grantee", "purpose", "until"]


@data_app.command("grants")
@handles_errors
def grants(
    code: CodeArg,
    key: ReaderOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A resource's grants with their state now (its provider or an auditor)."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        found = _pages(lambda after: data.grants(signer, code, after=after), "id")
    if as_json:
        print_json(found)
    else:
        _rows(f"grants on {code}", _GRANT_COLS, _grant_rows(found))


@data_app.command("requests")
@handles_errors
def requests(
    code: CodeArg,
    key: ReaderOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A resource's access requests (its provider or an auditor)."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        found = _pages(lambda after: data.requests(signer, code, after=after), "id")
    if as_json:
        print_json(found)
        return
    _rows(
        f"requests on {code}",
        ["request", "state", "org", "requester", "purpose", "when", "grant"],
        [
            [
                str(r["id"]),
                r["state"],
                r["org"] or "(citizen)",
                _short(r["requester"]),
                r["purpose"],
                _when(r["time"]),
                str(r["grant"] or ""),
            ]
            for r in found
        ],
    )


@data_app.command("audit")
@handles_errors
def audit(
    code: CodeArg,
    key: ReaderOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A resource's audit trail, oldest first (its provider or an auditor)."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        found = _pages(lambda after: data.audit(signer, code, after=after), "seq")
    if as_json:
        print_json(found)
        return
    _rows(
        f"audit trail of {code}",
        ["seq", "when", "action", "org", "by", "version", "purpose"],
        [
            [
                str(e["seq"]),
                _when(e["time"]),
                e["action"],
                e.get("org") or "(citizen)",
                _short(e["by"]),
                str(e.get("version", "")),
                e.get("purpose", ""),
            ]
            for e in found
        ],
    )


@data_app.command("grant")
@handles_errors
def grant(
    grant_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The grant id.")],
    key: ReaderOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One grant with its state now (its grantee, the provider or an auditor)."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        g = data.grant(signer, grant_id)
    if as_json:
        print_json(g)
    else:
        _rows(f"grant {grant_id} on {g['code']}", _GRANT_COLS, _grant_rows([g]))


@data_app.command("accesses")
@handles_errors
def accesses(
    key: ReaderOpt,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="A DID (default: KEY's own did:key, the citizen's view)."),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The citizen's view: who accessed records about you, when, and for what purpose."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        found = data.accesses(signer, subject)
    if as_json:
        print_json(found)
        return
    _rows(
        "accesses to records about " + (subject or "you"),
        ["when", "department", "resource", "action", "purpose"],
        [
            [
                _when(e["time"]),
                e.get("org") or "(citizen)",
                f"{e['code']} {e.get('title', '')}".strip()
                + (f" v{e['version']}" if e.get("version") else ""),
                e["action"],
                e.get("purpose", ""),
            ]
            for e in found
        ],
        empty="nobody has accessed records about this subject",
    )


# -- private data collections ------------------------------------------------------------------
collection_app = typer.Typer(
    help="Private data collections: which organisations' nodes hold the values.",
    no_args_is_help=True,
)
private_app = typer.Typer(
    help="Private values: held by the collection's organisations' nodes, their hashes on chain.",
    no_args_is_help=True,
)
data_app.add_typer(collection_app, name="collection")
data_app.add_typer(private_app, name="private")

CollectionArg = Annotated[str, typer.Argument(metavar="COLLECTION", help="The collection's name.")]
ItemKeyArg = Annotated[
    str,
    typer.Argument(
        metavar="KEY", help="The item's key (on chain in the clear: never personal data)."
    ),
]
ItemVersionOpt = Annotated[
    int | None, typer.Option("--version", min=1, help="Default: the latest version.")
]


def _read_value(source: str) -> bytes:
    """The value to put: FILE's bytes, or stdin's with ``-``. Refused (``too_large``) past
    :data:`~citychain.types.private_data.MAX_ITEM_BYTES` before anything is sent (or a file
    read): a file by its size, stdin by reading one byte more than the limit."""
    from citychain.types.private_data import MAX_ITEM_BYTES

    if source == "-":
        value = sys.stdin.buffer.read(MAX_ITEM_BYTES + 1)
        what, size = "stdin", len(value)
    else:
        path = Path(source)
        if not path.is_file():
            raise bad(f"no file at {path}")
        try:
            size = path.stat().st_size
            value = path.read_bytes() if size <= MAX_ITEM_BYTES else b""
        except OSError as exc:
            raise bad(f"{path}: {exc.strerror}") from None
        what = str(path)
    if size > MAX_ITEM_BYTES:
        raise InvalidInput(
            f"{what}: a private value is at most {MAX_ITEM_BYTES} bytes (1 MiB), this one is "
            "larger; nothing was sent (a large file is for `citychain data upload`)",
            ErrorCode.TOO_LARGE,
        )
    return value


@collection_app.command("define")
@handles_errors
def collection_define(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The collection's name.")],
    key: KeyOpt,
    org: Annotated[
        list[str],
        typer.Option(
            "--org", help="An organisation whose nodes hold the values (KEY's among them); repeat."
        ),
    ],
    block_to_live: Annotated[
        int,
        typer.Option(
            "--block-to-live", min=0, help="Blocks a value is kept after its put (0: kept)."
        ),
    ] = 0,
    public_read: Annotated[
        bool,
        typer.Option(
            "--public-read",
            help="Members of any organisation may read the values (default: only the listed).",
        ),
    ] = False,
    required_peers: Annotated[
        int,
        typer.Option(
            "--required-peers",
            min=0,
            max=64,
            help="Peers that must acknowledge storing a value before the node that takes it "
            "answers (Fabric's requiredPeerCount; else dissemination_failed, not anchored).",
        ),
    ] = 0,
    max_peers: Annotated[
        int,
        typer.Option(
            "--max-peers",
            min=0,
            max=64,
            help="Most peers a value is pushed to, other organisations' first (0: all "
            "listed; the rest pull it later). Fabric's maxPeerCount.",
        ),
    ] = 0,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Define a private data collection (KEY: a member of one of the --org).

    A definition never changes: to change the organisations, define another collection."""
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        defined = data.define_collection(
            signer,
            name,
            org,
            block_to_live=block_to_live,
            member_only_read=not public_read,
            required_peers=required_peers,
            max_peers=max_peers,
        )
        c = data.collection(defined)
    if as_json:
        print_json(c)
    else:
        console.print(f"defined collection [bold]{escape(defined)}[/]")
        _print_collection(c)


def _print_collection(c: Mapping[str, Any]) -> None:
    btl = int(c["block_to_live"])
    console.print(f"  {'organisations':<14} {escape(', '.join(c['orgs']))}")
    console.print(
        f"  {'block to live':<14} "
        + (f"{btl} blocks after each put" if btl else "0 (values are kept)")
    )
    readers = "members of the listed organisations" if c["member_only_read"] else "any member"
    console.print(f"  {'readers':<14} {readers}")
    required, most = int(c.get("required_peers", 0)), int(c.get("max_peers", 0))
    console.print(
        f"  {'pushed to':<14} "
        + (f"at most {most} peer(s)" if most else "every listed peer")
        + (f", {required} must acknowledge" if required else ", none must acknowledge")
    )
    console.print(f"  {'defined at':<14} height {c['height']} by {_hex(c['by'])}")


@collection_app.command("show")
@handles_errors
def collection_show(
    name: CollectionArg, node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False
) -> None:
    """A collection's definition: organisations, block to live, who may read."""
    with _data(node) as data:
        c = data.collection(name)
    if as_json:
        print_json(c)
    else:
        console.print(f"collection [bold]{escape(str(c['name']))}[/]")
        _print_collection(c)


@private_app.command("put")
@handles_errors
def private_put(
    collection: CollectionArg,
    item: ItemKeyArg,
    source: Annotated[str, typer.Argument(metavar="(FILE | -)", help="The value: a file, or -.")],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a value (at most 1 MiB; - reads stdin) as the item's next version.

    The node (of a listed organisation) keeps it and pushes it to the listed organisations'
    nodes only; the chain gets its salted hash."""
    value = _read_value(source)
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        result = data.put_private(signer, collection, item, value)
    if as_json:
        print_json({"collection": collection, "key": item, "size": len(value), **result})
        return
    purge = int(result["purge_height"])
    console.print(
        f"put [bold]{escape(collection)}/{escape(item)}[/] version [bold]{result['version']}[/]"
        f" ({len(value)} bytes)"
    )
    console.print(f"  hash          {result['hash'].hex()}")
    console.print(f"  purge height  {purge if purge else 'never'}")
    console.print(
        f"  pushed to     {result['pushed_to']} node(s), {result.get('acks', 0)} acknowledged"
    )


@private_app.command("get")
@handles_errors
def private_get(
    collection: CollectionArg,
    item: ItemKeyArg,
    key: ReaderOpt,
    version: ItemVersionOpt = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A value, checked by the node against its hash on chain (KEY: a reader).

    The bytes as they are on stdout, or in -o FILE."""
    if as_json and out is None:
        raise bad("--json needs -o FILE: without it stdout carries the value itself")
    signer = _signer(key, home, passphrase_file)
    with _data(node) as data:
        value = data.get_private(signer, collection, item, version=version)
    if out is None:
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
        return
    try:
        out.write_bytes(value)
    except OSError as exc:
        raise bad(f"-o {out}: {exc.strerror}") from None
    if as_json:
        print_json(
            {"collection": collection, "key": item, "version": version, "file": str(out),
             "size": len(value)}
        )  # fmt: skip
    else:
        console.print(f"wrote {escape(str(out))}: {len(value)} bytes")


@private_app.command("meta")
@handles_errors
def private_meta(
    collection: CollectionArg,
    item: ItemKeyArg,
    version: ItemVersionOpt = None,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """An item's metadata on chain (public): hash, size, heights, purged; never its value."""
    with _data(node) as data:
        m = data.private_item(collection, item, version)
    if as_json:
        print_json(m)
        return
    purge = int(m["purge_height"])
    state = "[red]purged[/]" if m["purged"] else "held"
    console.print(
        f"[bold]{escape(collection)}/{escape(item)}[/] version {m['version']} of {m['latest']}"
        f" ({state})"
    )
    console.print(f"  {'hash':<13} {_hex(m['hash'])}")
    console.print(f"  {'size':<13} {m['size']} bytes")
    console.print(f"  {'put at':<13} height {m['height']} by {_hex(m['by'])}")
    console.print(f"  {'purge height':<13} {purge if purge else 'never'}")
    console.print(f"  {'transaction':<13} {_hex(m['tx'])}")


# -- the operator's garbage collection ---------------------------------------------------------
def referenced_manifests(client: Client) -> set[bytes]:
    """Every manifest id the chain anchors: all versions of every resource, retired ones
    included (their grants still allow downloads)."""
    data = Data(client)
    return {
        v["manifest_id"]
        for r in data.search_all(retired=True)
        for v in data.versions_all(r["code"])
    }


@data_app.command("gc")
@handles_errors
def gc(
    home: Annotated[
        Path, typer.Option("--home", help="The node's home (its node.toml names the store).")
    ],
    grace: Annotated[
        str,
        typer.Option("--grace", help="Keep unreferenced blobs younger than this (1h, 30m...)."),
    ] = "1h",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """Delete the blobs of a node's store that no version on chain references.

    Manifests and chunks of uploads never anchored go once older than --grace; retired
    resources' versions stay. Run it on the node's machine, with --node its API."""
    from citychain.blobs import collect_garbage
    from citychain.crypto import get_suite
    from citychain.node.config import NodeConfig
    from citychain.types.genesis import Genesis

    grace_ms = parse_duration_ms(grace, "--grace") if grace.strip() not in ("0", "") else 0
    home = home.expanduser()
    genesis_path = home / "config" / "genesis.json"
    if not genesis_path.is_file():
        raise bad(f"--home {home}: no node home here (no config/genesis.json)")
    genesis = Genesis.load(genesis_path)
    store = NodeConfig.load(home).open_blob_store(get_suite(genesis.crypto_suite).hash_name)
    with make_client(node) as client:
        chain_id = client.status().chain_id
        if chain_id != genesis.chain_id:
            raise InvalidInput(
                f"--node serves chain {chain_id!r} but the home at {home} is chain "
                f"{genesis.chain_id!r}: its references would not be this store's",
                ErrorCode.WRONG_CHAIN,
            )
        live = referenced_manifests(client)
    # Blobs are not replicated: a version uploaded through another node has its manifest in
    # that node's store, not this one (its chunks here, if any, are of an upload cut short).
    here = sorted(m for m in live if store.has(m))
    report = collect_garbage(store, here, grace_ms / 1000, dry_run=dry_run)
    result = {
        "referenced_manifests": report.referenced_manifests,
        "kept_referenced": report.kept_referenced,
        "kept_young": report.kept_young,
        "deleted": report.deleted,
        "deleted_bytes": report.deleted_bytes,
        "referenced_elsewhere": len(live) - len(here),
        "dry_run": dry_run,
    }
    if as_json:
        print_json(result)
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {report.deleted} blob(s), {report.deleted_bytes} bytes; kept "
        f"{report.kept_referenced} referenced by {report.referenced_manifests} manifest(s) and "
        f"{report.kept_young} younger than {grace}"
        + (
            f"; {len(live) - len(here)} version(s) are stored on other nodes"
            if len(live) > len(here)
            else ""
        )
    )


def install(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``citychain data ...``."""
    app.add_typer(data_app, name="data")


__all__ = ["data_app", "install", "parse_duration_ms", "parse_when_ms", "referenced_manifests"]
