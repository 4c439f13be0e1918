"""``citychain did ...``: create, resolve, change and deactivate DIDs; a shell over the SDK.

Transactions go through the CLI's one sending path (:func:`citychain.cli.tx.send_tx`: sign,
submit, wait, report, ``--json``, ``--no-wait``); reads through the identity SDK's
:class:`~citychain.services.identity.sdk._dids.Dids`, proven by default against the trusted
genesis (``--no-verify`` asks the node's query instead).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from citychain.cli._client import make_client, trust_from
from citychain.cli._keys_access import key_info, key_path, load_signer, read_passphrase
from citychain.cli._output import (
    DEFAULT_NODE,
    HomeOpt,
    JsonOpt,
    NodeOpt,
    PassFileOpt,
    bad,
    console,
    handles_errors,
    print_json,
)
from citychain.cli.query import GenesisOpt, VerifyOpt
from citychain.cli.tx import KeyOpt, NoWaitOpt, TimeoutOpt, report, send_tx
from citychain.crypto.keystore import write_private
from citychain.errors import BatchRefused, CitychainError, ErrorCode
from citychain.sdk import DEFAULT_COMMIT_TIMEOUT
from citychain.services.identity.sdk import (
    EDDSA_JCS_2022,
    TEMPLATES,
    Identity,
    Issuer,
    Wallet,
    credential_from_template,
    status_entries,
)
from citychain.services.identity.sdk._bundle import (
    bundle_bytes,
    is_bundle,
    make_bundle,
    verify_bundle,
)
from citychain.services.identity.sdk._di import xsd_datetime as xsd_datetime_parse
from citychain.services.identity.sdk._dids import DID_GAS_LIMIT, Dids
from citychain.services.identity.sdk._lists import FORMATS
from citychain.services.identity.sdk._tokens import DEFAULT_TOKEN_TTL
from citychain.services.identity.shapes import (
    DID_CONTEXT,
    NAME,
    did_key,
    method_key_encode,
    split_status_list_id,
    xsd_datetime,
)

did_app = typer.Typer(
    help="Decentralised identifiers: did:citychain on this chain, did:key anywhere.",
    no_args_is_help=True,
)

DidArg = Annotated[str, typer.Argument(help="The DID, e.g. did:citychain:4Kb...")]
DocumentOpt = Annotated[
    Path | None,
    typer.Option(
        "--document",
        help="A DID document (JSON; relative ids such as #key-1). Default: the key's own "
        "Multikey in authentication, assertionMethod and capabilityInvocation.",
    ),
]


def own_document(public_key: bytes) -> dict[str, Any]:
    """The document a new DID gets by default: the signing key, as #key-1, may authenticate,
    issue (assertionMethod) and change the DID (capabilityInvocation). An SM2 key (an
    ``sm2-sm3`` chain's) is written as an ``sm2-pub`` Multikey; it controls the DID, but
    credentials are signed with Ed25519 (``eddsa-*-2022``), so an issuer on such a chain adds
    an Ed25519 key to ``assertionMethod``."""
    return {
        "@context": list(DID_CONTEXT),
        "verificationMethod": [
            {
                "id": "#key-1",
                "type": "Multikey",
                "publicKeyMultibase": method_key_encode(public_key),
            }
        ],
        "authentication": ["#key-1"],
        "assertionMethod": ["#key-1"],
        "capabilityInvocation": ["#key-1"],
    }


def _read_document(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise bad(f"--document {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"--document {path}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise bad(f"--document {path}: a DID document is a JSON object")
    return doc


def _send(method: str, args: dict[str, Any], **kw: Any) -> Any:
    return send_tx(contract=NAME, method=method, args=args, gas_limit=DID_GAS_LIMIT, **kw)


@did_app.command("create")
@handles_errors
def create(
    key: KeyOpt,
    document: DocumentOpt = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Create a did:citychain controlled by KEY; prints the new DID."""
    # the public key from the key file, unlocked only once (by the send)
    public_key = key_info(key_path(key, home)).public_key
    doc = _read_document(document) if document else own_document(public_key)
    sent = _send(
        "create_did",
        {"document": doc},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        no_wait=no_wait,
        timeout=timeout,
    )
    did = sent.receipt.result if sent.receipt is not None and sent.receipt.ok else None
    report(sent, as_json, extra={"did": did}, headline=f"created [bold]{did}[/]")


@did_app.command("update")
@handles_errors
def update(
    did: DidArg,
    key: KeyOpt,
    document: Annotated[Path, typer.Option("--document", help="The new DID document (JSON).")],
    version_id: Annotated[
        int | None,
        typer.Option("--version-id", min=1, help="Refuse unless this is still the latest."),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Replace DID's document (rotate keys, change services, controllers, relationships)."""
    args: dict[str, Any] = {"did": did, "document": _read_document(document)}
    if version_id is not None:
        args["version_id"] = version_id
    sent = _send(
        "update_did",
        args,
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        no_wait=no_wait,
        timeout=timeout,
    )
    report(sent, as_json, headline=f"updated {did}")


@did_app.command("deactivate")
@handles_errors
def deactivate(
    did: DidArg,
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Deactivate DID for good (it resolves afterwards, marked deactivated)."""
    sent = _send(
        "deactivate_did",
        {"did": did},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        no_wait=no_wait,
        timeout=timeout,
    )
    report(sent, as_json, headline=f"deactivated {did}")


@did_app.command("resolve")
@handles_errors
def resolve(
    did: DidArg,
    version_id: Annotated[
        int | None, typer.Option("--version-id", min=1, help="A past version.")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    verify: VerifyOpt = True,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """DID's document and metadata, proven from state (or as the node says: --no-verify)."""
    trust = trust_from(genesis, home)
    with make_client(node, trust) as client:
        dids = Dids(client)
        if verify:
            proven = dids.resolve_proven(did, version_id=version_id)
            doc, meta = proven.document, proven.metadata
            how = f"proven at height {proven.height} against {trust.source}"
        else:
            answer = dids.resolve(did, version_id=version_id)
            doc, meta = answer["didDocument"], answer["didDocumentMetadata"]
            how = "as the node says (not proven)"
    if as_json:
        print_json({"didDocument": doc, "didDocumentMetadata": meta, "proven": verify})
        return
    console.print_json(json.dumps(doc))
    console.print(", ".join(f"{k} {v}" for k, v in meta.items()))
    console.print(how)


@did_app.command("history")
@handles_errors
def history(did: DidArg, node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """How each version of DID came to be: operation, time, height, transaction, key."""
    with make_client(node) as client:
        rows = Dids(client).history(did)
    if as_json:
        print_json({"did": did, "versions": rows})
        return
    for r in rows:
        console.print(
            f"version {r['versionId']}  {r['operation']:<10} {r['time']}  height {r['height']}"
            f"  by {r['signer']}"
        )


@did_app.command("key")
@handles_errors
def key_did(key: KeyOpt, home: HomeOpt = None, passphrase_file: PassFileOpt = None) -> None:
    """The did:key of KEY (resolved by anyone, with no chain)."""
    del passphrase_file  # a public key needs no passphrase
    console.print(did_key(key_info(key_path(key, home)).public_key))


vc_app = typer.Typer(
    help="Verifiable credentials: issue (one or a batch of 10,000), serve the VC-API issuer, "
    "revoke, suspend and reinstate, status lists, offline proof bundles (verify online with "
    "POST /credentials/verify or the page /verify).",
    no_args_is_help=True,
)


def _write(out: Path, data: bytes) -> None:
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise bad(f"cannot write {out}: {exc.strerror}") from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise bad(f"cannot read {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise bad(f"{what} {path} is not JSON: {exc}") from None


def _credential_or_bundle(path: Path) -> tuple[Any, bytes | None]:
    """A credential file's credential (a VC's JSON, or an SD-JWT's text) and None; or, for an
    offline proof bundle, None and the file's exact bytes (what a bundle's check reads)."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"cannot read {path}: {exc}") from None
    if not text.startswith("{"):
        return text, None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise bad(f"credential {path} is not JSON: {exc}") from None
    return (None, data) if is_bundle(value) else (value, None)


def _read_credential(path: Path) -> Any:
    """A credential file: a VC's JSON, or an SD-JWT's text."""
    credential, bundle = _credential_or_bundle(path)
    if bundle is not None:
        raise bad(
            f"{path} is an offline proof bundle, not a credential: check it with "
            "`citychain vc verify` (by a node, or --offline)"
        )
    return credential


def _verify_online(path: Path, node: str, as_json: bool) -> None:
    credential, bundle = _credential_or_bundle(path)
    if bundle is not None:
        _verify_bundle_online(bundle, node, as_json)
        return
    with make_client(node) as client:
        answer = Identity(client).verify_online(credential)
    if as_json:
        print_json(answer)
        return
    console.print(
        f"valid: a {answer.get('credentialType')} issued by {answer.get('issuerName')} "
        f"({answer.get('issuer')}), not revoked or suspended; checked by {node}"
    )


def _verify_bundle_online(bundle: bytes, node: str, as_json: bool) -> None:
    """A bundle checked by a node: what it proves as of its block, then whether the credential
    in it holds today (the verdict, and the exit status, are today's)."""
    with make_client(node) as client:
        identity = Identity(client)
        then = identity.verify_bundle_online(bundle)
        if not as_json:
            console.print(
                f"the bundle holds: valid as of block {then['height']} ({then['asOf']}); "
                f"checked by {node}"
            )
        now = identity.verify_online(json.loads(bundle)["credential"])
    if as_json:
        print_json({"bundle": then, "now": now})
        return
    console.print(
        f"valid today: a {now.get('credentialType')} issued by {now.get('issuerName')} "
        f"({now.get('issuer')}), not revoked or suspended; checked by {node}"
    )


@vc_app.command("bundle")
@handles_errors
def vc_bundle(
    credential: Annotated[
        Path,
        typer.Argument(
            help="The credential as issued: a VC (JSON) or an SD-JWT VC (its text, with the "
            "disclosures to keep, no key binding)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the bundle.")],
    node: NodeOpt = DEFAULT_NODE,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write the offline proof bundle of CREDENTIAL: it with the chain's proven records that
    vouch for it, the signed header and what a light client anchored at genesis needs to
    reach it, checkable later with no network."""
    vc = _read_credential(credential)
    if not isinstance(vc, (dict, str)):
        raise bad(f"credential {credential} is not a JSON object or an SD-JWT")
    trust = trust_from(genesis, home)
    with make_client(node, trust) as client:
        # the genesis's suite (an SM2 chain's ID with it), else the one the node's status names
        data = bundle_bytes(make_bundle(client, vc, trust=trust.validators, suite=trust.suite))
    _write(out, data)
    console.print(f"wrote {out} ({len(data):,} bytes)")


@vc_app.command("verify")
@handles_errors
def vc_verify(
    file: Annotated[
        Path,
        typer.Argument(
            help="A credential (VC JSON or SD-JWT text) or an offline proof bundle, checked by "
            "a node; with --offline, a proof bundle with no network."
        ),
    ],
    offline: Annotated[
        bool, typer.Option("--offline", help="Check a proof bundle with no network.")
    ] = False,
    node: NodeOpt = DEFAULT_NODE,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a credential: online, by a node (its proof, dates and schema, the register of
    trusted issuers and the status list on chain; a bundle's proofs as of its block, then its
    credential today); or, with --offline, a proof bundle against the chain's genesis with no
    network. Exit 0 and who issued it, or the reason in words."""
    if not offline:
        _verify_online(file, node, as_json)
        return
    bundle = file
    trust = trust_from(genesis, home)
    if trust.chain_id is None or trust.validators is None or trust.suite is None:
        raise bad(
            "an offline check needs the chain's genesis: pass --genesis FILE (or a --home "
            "whose config/genesis.json is the chain's)"
        )
    try:
        data = bundle.read_bytes()
    except OSError as exc:
        raise bad(f"cannot read bundle {bundle}: {exc.strerror}") from None
    verdict = verify_bundle(
        data,
        chain_id=trust.chain_id,
        validators=trust.validators,
        suite=trust.suite,  # the trusted chain's, never the bundle's word
        now=datetime.now(UTC),
    )
    if as_json:
        print_json(verdict.to_json())
        return
    console.print(
        f"valid: a {verdict.credential_type} issued by {verdict.issuer_name} "
        f"({verdict.issuer}), not revoked or suspended as of block {verdict.height} "
        f"({xsd_datetime(verdict.time)}); checked offline against {trust.source}"
    )


DidOpt = Annotated[str, typer.Option("--did", help="The issuer's DID (its key signs).")]
KeyIdOpt = Annotated[
    str, typer.Option("--key-id", help="The verification method's fragment in the DID document.")
]
SuiteOpt = Annotated[
    str, typer.Option("--cryptosuite", help="eddsa-jcs-2022 (default) or eddsa-rdfc-2022.")
]
StatusListOpt = Annotated[
    str | None,
    typer.Option("--status-list", help="Give each credential an entry in this status list."),
]
CounterOpt = Annotated[
    Path | None,
    typer.Option(
        "--counter",
        help="The status list's allocation counter and its index permutation key (a file, "
        "kept for the list's life; default: <status list id>.counter in the current directory).",
    ),
]
TokenFileOpt = Annotated[
    Path,
    typer.Option(
        "--token-file", help="A file holding the bearer token callers must send (16+ chars)."
    ),
]
HostOpt = Annotated[str, typer.Option("--host", help="Where to listen.")]
PortOpt = Annotated[int, typer.Option("--port", help="The port to listen on.")]


def _issuer(
    key: str,
    did: str,
    key_id: str,
    node: str,
    home: Path | None,
    passphrase_file: Path | None,
    status_list: str | None,
    counter: Path | None,
) -> Issuer:
    """The issuing state the SDK keeps: the unlocked key, the node's register as the
    accreditation check, and the status list with its counter file."""
    signer = load_signer(key, home, passphrase_file=passphrase_file)
    client = make_client(node)
    size, purpose = 131_072, "revocation"
    if status_list is not None:
        head = client.query(NAME, "status_list", list_id=status_list)
        size, purpose = int(head["size"]), str(head["purpose"])
        counter = counter or Path(f"{status_list.rsplit('/', 1)[-1]}.counter")

    def trusted(issuer: str, ctype: str) -> bool:
        return bool(client.query(NAME, "is_trusted", issuer=issuer, type=ctype))

    return Issuer(
        signer,
        f"{did}#{key_id}",
        trusted=trusted,
        status_list=status_list,
        status_size=size,
        counter_file=counter,
        status_purpose=purpose,
    )


TemplateOpt = Annotated[
    str | None,
    typer.Option(
        "--template",
        help="Build each credential from this template (business-licence, "
        "professional-qualification, residence-permit, property-certificate): the file then "
        "holds subjects, a JSON list or one JSON object a line.",
    ),
]
DateOpt = Annotated[
    str | None, typer.Option(help="With --template: a dateTime such as 2026-01-01T00:00:00Z.")
]


def _read_batch(path: Path) -> tuple[list[Any], bool]:
    """The items of a batch file (a JSON list, one JSON object, or JSON Lines) and whether
    it held a single object."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"cannot read {path}: {exc}") from None
    try:
        if text.startswith("["):
            return json.loads(text), False
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1:
            return [json.loads(line) for line in lines], False
        return [json.loads(text)], True
    except ValueError as exc:
        raise bad(f"{path} is not JSON or JSON Lines: {exc}") from None


def _from_template(
    subjects: list[Any], template: str, did: str, valid_from: str | None, valid_until: str | None
) -> list[dict[str, Any]]:
    if valid_from is None:
        raise bad("--template needs --valid-from (when the credentials take effect)")
    start = xsd_datetime_parse(valid_from, "--valid-from")
    end = xsd_datetime_parse(valid_until, "--valid-until") if valid_until else None
    built = []
    for i, subject in enumerate(subjects):
        try:
            if not isinstance(subject, dict):
                raise bad("a subject is a JSON object")
            built.append(
                credential_from_template(
                    template, issuer=did, subject=subject, valid_from=start, valid_until=end
                )
            )
        except CitychainError as exc:
            raise BatchRefused(exc, i, len(subjects)) from None
    return built


@vc_app.command("issue")
@handles_errors
def vc_issue(
    credentials: Annotated[
        Path,
        typer.Argument(
            help="Unsigned credentials (or, with --template, subjects): one JSON object, a "
            "JSON list, or JSON Lines."
        ),
    ],
    key: KeyOpt,
    did: DidOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write what was issued.")],
    template: TemplateOpt = None,
    valid_from: DateOpt = None,
    valid_until: DateOpt = None,
    key_id: KeyIdOpt = "key-1",
    cryptosuite: SuiteOpt = EDDSA_JCS_2022,
    status_list: StatusListOpt = None,
    counter: CounterOpt = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    form: Annotated[
        str,
        typer.Option(
            "--format",
            help="vc (VC 2.0 with a Data Integrity proof) or sd-jwt (SD-JWT VC for a citizen "
            "to hold: CREDENTIALS are then subjects, each claim disclosable, id the holder's "
            "did:key).",
        ),
    ] = "vc",
    vct: Annotated[
        str | None,
        typer.Option("--vct", help="sd-jwt: the credential type (default: the template's)."),
    ] = None,
    disclose: Annotated[
        str | None,
        typer.Option(
            "--disclose", help="sd-jwt: the claims made disclosable, comma-separated (all)."
        ),
    ] = None,
) -> None:
    """Sign CREDENTIALS (up to 10,000) as DID, every one or none: the chain's register must
    trust DID for each type; one refused item refuses them all and names it."""
    items, single = _read_batch(credentials)
    if form not in ("vc", "sd-jwt"):
        raise bad(f"--format is vc or sd-jwt, not {form!r}")
    issuer = _issuer(key, did, key_id, node, home, passphrase_file, status_list, counter)
    if form == "sd-jwt":
        known = TEMPLATES.get(template) if template is not None else None
        if template is not None and known is None:
            raise bad(f"--template {template!r} is none of {', '.join(sorted(TEMPLATES))}")
        ctype = vct or (known.credential_type if known is not None else None)
        if ctype is None:
            raise bad("--format sd-jwt needs --vct (the credential type) or --template")
        now = datetime.now(UTC)
        start = xsd_datetime_parse(valid_from, "--valid-from") if valid_from else now
        end = xsd_datetime_parse(valid_until, "--valid-until") if valid_until else None
        names = [n.strip() for n in disclose.split(",") if n.strip()] if disclose else None
        tokens = issuer.issue_sd_jwt(
            items,
            ctype,
            iat=int(start.timestamp()),
            exp=int(end.timestamp()) if end is not None else None,
            disclose=names,
        )
        text = tokens[0] + "\n" if single else json.dumps(tokens, indent=1) + "\n"
        _write(out, text.encode())
        console.print(f"issued {len(tokens):,} SD-JWT VC(s) of {ctype} as {did}; wrote {out}")
        return
    if template is not None:
        items = _from_template(items, template, did, valid_from, valid_until)
    issued = issuer.issue(items, cryptosuite)
    _write(out, (json.dumps(issued[0] if single else issued, indent=1) + "\n").encode())
    console.print(f"issued {len(issued):,} credential(s) as {did}; wrote {out}")


@vc_app.command("serve")
@handles_errors
def vc_serve(
    key: KeyOpt,
    did: DidOpt,
    token_file: TokenFileOpt,
    key_id: KeyIdOpt = "key-1",
    status_list: StatusListOpt = None,
    counter: CounterOpt = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8700,
) -> None:
    """Serve the W3C VC-API issuer (POST /credentials/issue, /credentials/issue/batch) for
    DID, where its key is: a validator never holds an issuer's key."""
    from citychain.services.identity.router._agent import agent_app  # the web stack, on use

    issuer = _issuer(key, did, key_id, node, home, passphrase_file, status_list, counter)
    _serve(agent_app(token=_token(token_file), issuer=issuer), host, port, f"issuer {did}")


# -- status lists: register, show, publish; revoke, suspend, reinstate a credential --------
status_app = typer.Typer(
    help="An issuer's status lists on chain: register one, show it, and publish the list "
    "signed by the issuer for verifiers outside the chain (GET /1.0/identifiers/<list id>).",
    no_args_is_help=True,
)
vc_app.add_typer(status_app, name="status")
ListArg = Annotated[str, typer.Argument(help="The status list's id, <issuer DID>/status/<name>.")]
NoPublishOpt = Annotated[
    bool,
    typer.Option(
        "--no-publish",
        help="Change the chain's bits only; do not publish the list signed by the issuer "
        "(verifiers outside the chain are then told the list changed since).",
    ),
]


FormOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--form",
        help="What to publish: 'credential' (the BitstringStatusListCredential, for VC "
        "verifiers) and/or 'token' (the IETF Status List Token, for SD-JWT VC verifiers); "
        "repeat for both, the default.",
    ),
]
TtlOpt = Annotated[
    int,
    typer.Option("--ttl", help="Seconds a verifier may cache the published token.", min=1),
]


def _forms(form: list[str] | None) -> tuple[str, ...]:
    return tuple(form) if form else FORMATS


@status_app.command("register")
@handles_errors
def status_register(
    name: Annotated[str, typer.Argument(help="The list's name (letters, digits, . _ -).")],
    key: KeyOpt,
    did: DidOpt,
    purpose: Annotated[
        str,
        typer.Option("--purpose", help="revocation (final) or suspension (can be lifted)."),
    ] = "revocation",
    size: Annotated[int, typer.Option("--size", help="Entries, from 131072.")] = 131_072,
    key_id: KeyIdOpt = "key-1",
    no_publish: NoPublishOpt = False,
    form: FormOpt = None,
    ttl: TtlOpt = DEFAULT_TOKEN_TTL,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register status list NAME of DID (whose key KEY controls), and publish it empty."""
    signer = load_signer(key, home, passphrase_file=passphrase_file)
    with make_client(node) as client:
        lists = Identity(client).status_lists
        list_id = lists.register(signer, did, name, purpose, size=size)
        if not no_publish:
            lists.publish(signer, list_id, f"{did}#{key_id}", formats=_forms(form), ttl=ttl)
    if as_json:
        print_json({"list_id": list_id, "published": not no_publish})
        return
    console.print(f"registered {list_id} ({purpose}, {size:,} entries)")


@status_app.command("show")
@handles_errors
def status_show(list_id: ListArg, node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """The list's purpose, size, changes and hash on chain, and its published credential and
    Status List Token."""
    with make_client(node) as client:
        head = client.query(NAME, "status_list", list_id=list_id)
        lists = Identity(client).status_lists
        credential = _if_published(lists.published, list_id)
        token = _if_published(lists.published_token, list_id)
    shown = {
        "list_id": list_id,
        "issuer": head["issuer"],
        "purpose": head["purpose"],
        "size": head["size"],
        "changes": head["changes"],
        "hash": bytes(head["hash"]).hex(),
        "published_changes": None if credential is None else credential["changes"],
        "published_current": None if credential is None else credential["current"],
        "token_changes": None if token is None else token["changes"],
        "token_current": None if token is None else token["current"],
    }
    if as_json:
        print_json(shown)
        return

    def state(what: str, published: dict[str, Any] | None) -> str:
        if published is None:
            return f"{what} never published"
        stale = "" if published["current"] else " (stale: publish it again)"
        return f"{what} published at change {published['changes']}{stale}"

    console.print(
        f"{list_id}: {head['purpose']}, {head['size']:,} entries, {head['changes']} change(s); "
        f"{state('credential', credential)}; {state('token', token)}"
    )


def _if_published(read: Callable[[str], dict[str, Any]], list_id: str) -> dict[str, Any] | None:
    try:
        return read(list_id)
    except CitychainError as exc:
        if exc.code != ErrorCode.STATUS_LIST_NOT_FOUND:
            raise
        return None


@status_app.command("publish")
@handles_errors
def status_publish(
    list_id: ListArg,
    key: KeyOpt,
    key_id: KeyIdOpt = "key-1",
    form: FormOpt = None,
    ttl: TtlOpt = DEFAULT_TOKEN_TTL,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Publish the list as its bits are now, signed by its issuer's key KEY."""
    signer = load_signer(key, home, passphrase_file=passphrase_file)
    issuer, _ = split_status_list_id(list_id)
    with make_client(node) as client:
        changes = Identity(client).status_lists.publish(
            signer, list_id, f"{issuer}#{key_id}", formats=_forms(form), ttl=ttl
        )
    console.print(f"published {list_id} at change {changes}")


def _change_status(
    credential: Path,
    want: str,
    clear: bool,
    key: str,
    key_id: str,
    no_publish: bool,
    forms: tuple[str, ...],
    ttl: int,
    node: str,
    home: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Set (or clear) the entry of ``credential`` in its ``want`` list (revocation or
    suspension), publishing the list after the change in ``forms`` unless ``no_publish``."""
    vc = _read_credential(credential)
    signer = load_signer(key, home, passphrase_file=passphrase_file)
    with make_client(node) as client:
        for list_id, index, purpose in status_entries(vc):
            if purpose is None:  # an SD-JWT's status claim: its list's purpose
                purpose = client.query(NAME, "status_list", list_id=list_id)["purpose"]
            if purpose != want:
                continue
            issuer, _ = split_status_list_id(list_id)
            seq = Identity(client).status_lists.change(
                signer,
                list_id,
                set=[] if clear else [index],
                clear=[index] if clear else [],
                publish=None if no_publish else f"{issuer}#{key_id}",
                formats=forms,
                ttl=ttl,
            )
            done = "cleared" if clear else "set"
            console.print(
                f"{done} entry {index} of {list_id} (change {seq})"
                + ("" if no_publish else "; published the list")
            )
            return
    raise bad(f"{credential} names no {want} status entry: nothing to change")


def _status_command(name: str, want: str, clear: bool, summary: str) -> None:
    """``citychain vc <name> CREDENTIAL``: set (or clear) its entry in its ``want`` list."""

    @vc_app.command(name, help=summary)
    @handles_errors
    def change(
        credential: Annotated[Path, typer.Argument(help="The credential (VC JSON or SD-JWT).")],
        key: KeyOpt,
        key_id: KeyIdOpt = "key-1",
        no_publish: NoPublishOpt = False,
        form: FormOpt = None,
        ttl: TtlOpt = DEFAULT_TOKEN_TTL,
        node: NodeOpt = DEFAULT_NODE,
        home: HomeOpt = None,
        passphrase_file: PassFileOpt = None,
    ) -> None:
        _change_status(credential, want, clear, key, key_id, no_publish, _forms(form), ttl,
                       node, home, passphrase_file)  # fmt: skip

    change.__name__ = f"vc_{name}"


_status_command(
    "revoke",
    "revocation",
    False,
    "Revoke CREDENTIAL for good: set its entry in its revocation list (signed by KEY, a "
    "controller of the issuer), and publish the list.",
)
_status_command(
    "suspend",
    "suspension",
    False,
    "Suspend CREDENTIAL: set its entry in its suspension list (vc reinstate lifts it).",
)
_status_command(
    "reinstate",
    "suspension",
    True,
    "Lift CREDENTIAL's suspension: clear its entry in its suspension list.",
)


def _token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise bad(f"cannot read the token file {path}: {exc.strerror}") from None


def _serve(app: Any, host: str, port: int, what: str) -> None:
    import uvicorn  # only a serving command loads the web server

    console.print(f"serving the {what} on http://{host}:{port} (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


# -- the holder's wallet ------------------------------------------------------------------------
wallet_app = typer.Typer(
    help="A holder's wallet: keys (did:key) and credentials in one encrypted file; present "
    "them, disclosing only chosen claims.",
    no_args_is_help=True,
)
WalletOpt = Annotated[
    Path | None,
    typer.Option(
        "--wallet",
        envvar="CITYCHAIN_WALLET",
        help="The wallet file (default: ~/.citychain/wallet.json).",
    ),
]
WalletKeyOpt = Annotated[str, typer.Option("--key", help="The wallet key to use.")]


def _wallet_path(wallet: Path | None) -> Path:
    return wallet if wallet is not None else Path.home() / ".citychain" / "wallet.json"


def _wallet_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    env = os.environ.get("CITYCHAIN_WALLET_PASSPHRASE")
    if env and passphrase_file is None:
        return env
    return read_passphrase(passphrase_file, "Wallet passphrase", confirm=confirm)


def _open(wallet: Path | None, passphrase_file: Path | None) -> Wallet:
    return Wallet.open(_wallet_path(wallet), _wallet_passphrase(passphrase_file))


@wallet_app.command("init")
@handles_errors
def wallet_init(
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
    kdf: Annotated[
        str, typer.Option("--kdf", help="moderate (default), interactive or sensitive.")
    ] = "moderate",
) -> None:
    """Create an empty wallet, with a first key named "default"; prints its did:key."""
    path = _wallet_path(wallet)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = Wallet.create(path, _wallet_passphrase(passphrase_file, confirm=True), kdf_level=kdf)
    did = w.new_key("default")
    console.print(f'created {path}; your key "default" is {did}')


@wallet_app.command("key")
@handles_errors
def wallet_key(
    name: Annotated[str | None, typer.Argument(help="Make a new key by this name.")] = None,
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the wallet's keys and their did:key, or make a new one NAME."""
    w = _open(wallet, passphrase_file)
    if name is not None:
        w.new_key(name)
    keys = w.keys()
    if as_json:
        print_json(keys)
        return
    for k, did in keys.items():
        console.print(f"{k}\t{did}", soft_wrap=True)


KeyFilePassOpt = Annotated[
    Path | None,
    typer.Option(
        "--file-passphrase-file",
        help="A file holding the key file's own passphrase (else $CITYCHAIN_KEY_FILE_PASSPHRASE, "
        "else a prompt). Not the wallet's: the phone asks for this one.",
    ),
]


def _key_file_passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is not None:
        return read_passphrase(path, "Key file passphrase")
    env = os.environ.get("CITYCHAIN_KEY_FILE_PASSPHRASE")
    if env:
        return env
    # Never $CITYCHAIN_PASSPHRASE (read_passphrase's fallback): that is the node's keys'.
    value: str = typer.prompt("Key file passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


@wallet_app.command("export-key")
@handles_errors
def wallet_export_key(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the key file.")],
    name: Annotated[str, typer.Argument(help="The wallet key to export.")] = "default",
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
    file_passphrase_file: KeyFilePassOpt = None,
) -> None:
    """Write key NAME as a key file a phone's browser opens (a JWE under its own passphrase):
    with it a citizen signs in to a node's /my-data page and sees who accessed records about
    them. Whoever has the file and its passphrase has the key, so a passphrase easy to guess
    is refused (weak_passphrase): use a sentence of four or five uncommon words."""
    w = _open(wallet, passphrase_file)
    token = w.export_key(_key_file_passphrase(file_passphrase_file, confirm=True), name)
    try:
        write_private(out, token + "\n")
    except OSError as exc:
        raise bad(f"cannot write {out}: {exc.strerror}") from None
    console.print(f"wrote {out}: key {name!r} ({w.keys()[name]}), mode 0600", soft_wrap=True)


@wallet_app.command("import-key")
@handles_errors
def wallet_import_key(
    name: Annotated[str, typer.Argument(help="The name to give the key in the wallet.")],
    key_file: Annotated[Path, typer.Argument(help="A key file made by wallet export-key.")],
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
    file_passphrase_file: KeyFilePassOpt = None,
) -> None:
    """Add the key in KEY_FILE to the wallet as NAME; prints its did:key."""
    try:
        text = key_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"cannot read {key_file}: {exc}") from None
    w = _open(wallet, passphrase_file)
    did = w.import_key(name, text, _key_file_passphrase(file_passphrase_file, confirm=False))
    console.print(did, soft_wrap=True)


@wallet_app.command("add")
@handles_errors
def wallet_add(
    credential: Annotated[Path, typer.Argument(help="A credential: VC JSON or an SD-JWT text.")],
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Store an issued credential; prints its id in the wallet."""
    console.print(_open(wallet, passphrase_file).add(_read_credential(credential)))


@wallet_app.command("list")
@handles_errors
def wallet_list(
    wallet: WalletOpt = None, passphrase_file: PassFileOpt = None, as_json: JsonOpt = False
) -> None:
    """The stored credentials: id, format, types and issuer."""
    found = _open(wallet, passphrase_file).credentials()
    if as_json:
        print_json([c.to_json() for c in found])
        return
    if not found:
        console.print("the wallet holds no credentials")
    for c in found:
        console.print(
            f"{c.id}  {c.format:6}  {', '.join(c.types)}  from {c.issuer}", soft_wrap=True
        )


@wallet_app.command("show")
@handles_errors
def wallet_show(
    credential_id: Annotated[str, typer.Argument(help="The credential's id in the wallet.")],
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Print a stored credential (an SD-JWT with the claims you may choose to disclose)."""
    w = _open(wallet, passphrase_file)
    value = w.get(credential_id)
    if isinstance(value, str):
        print_json(
            {
                "sdJwt": value,
                "disclosable": ["/".join(map(str, d.path)) for d in w.disclosures(credential_id)],
            }
        )
    else:
        print_json(value)


@wallet_app.command("remove")
@handles_errors
def wallet_remove(
    credential_id: Annotated[str, typer.Argument(help="The credential's id in the wallet.")],
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Forget a stored credential."""
    _open(wallet, passphrase_file).remove(credential_id)
    console.print(f"removed {credential_id}")


@wallet_app.command("present")
@handles_errors
def wallet_present(
    credential_ids: Annotated[list[str], typer.Argument(help="The credentials to present.")],
    challenge: Annotated[
        str, typer.Option("--challenge", help="The verifier's challenge (an SD-JWT's nonce).")
    ],
    domain: Annotated[str, typer.Option("--domain", help="Who it is for (an SD-JWT's audience).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the presentation.")],
    disclose: Annotated[
        list[str] | None,
        typer.Option("--disclose", help="For an SD-JWT: a claim to show (repeat; a/b nests)."),
    ] = None,
    key: WalletKeyOpt = "default",
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Make a presentation for a verifier: VC credentials in a verifiable presentation signed
    over CHALLENGE and DOMAIN; or one SD-JWT with only the --disclose claims, key-bound."""
    w = _open(wallet, passphrase_file)
    first = w.get(credential_ids[0])
    if isinstance(first, str):
        if len(credential_ids) != 1:
            raise bad("an SD-JWT is presented on its own: name one credential")
        paths = [tuple(int(p) if p.isdigit() else p for p in d.split("/")) for d in disclose or []]
        text = w.present_sd_jwt(
            credential_ids[0],
            paths,
            nonce=challenge,
            audience=domain,
            now=int(datetime.now(UTC).timestamp()),
            key=key,
        )
    else:
        if disclose:
            raise bad("--disclose is for SD-JWT credentials; a VC 2.0 credential is shown whole")
        vp = w.present(credential_ids, challenge=challenge, domain=domain, key=key)
        text = json.dumps(vp, indent=1)
    _write(out, (text + "\n").encode())
    console.print(f"wrote {out}")


@wallet_app.command("serve")
@handles_errors
def wallet_serve(
    token_file: TokenFileOpt,
    wallet: WalletOpt = None,
    passphrase_file: PassFileOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8701,
) -> None:
    """Serve the wallet over the W3C VC-API holder routes (GET/POST /credentials, GET/DELETE
    /credentials/{id}, POST /presentations, POST /presentations/sd-jwt) to a holder's app."""
    from citychain.services.identity.router._agent import agent_app  # the web stack, on use

    w = _open(wallet, passphrase_file)
    _serve(agent_app(token=_token(token_file), wallet=w), host, port, f"wallet {w.path}")


def install(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``citychain did ...``, ``citychain vc ...`` and ``citychain wallet ...``."""
    app.add_typer(did_app, name="did")
    app.add_typer(vc_app, name="vc")
    app.add_typer(wallet_app, name="wallet")
