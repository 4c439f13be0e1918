"""``citychain did ...``: create, resolve, change and deactivate DIDs; a shell over the SDK.

Transactions go through the CLI's one sending path (:func:`citychain.cli.tx.send_tx`: sign,
submit, wait, report, ``--json``, ``--no-wait``); reads through the identity SDK's
:class:`~citychain.services.identity.sdk._dids.Dids`, proven by default against the trusted
genesis (``--no-verify`` asks the node's query instead).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from citychain.cli._client import make_client, trust_from
from citychain.cli._keys_access import key_info, key_path
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
from citychain.sdk import DEFAULT_COMMIT_TIMEOUT
from citychain.services.identity.sdk._bundle import bundle_bytes, make_bundle, verify_bundle
from citychain.services.identity.sdk._dids import DID_GAS_LIMIT, Dids
from citychain.services.identity.shapes import (
    DID_CONTEXT,
    NAME,
    did_key,
    multikey_encode,
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
    issue (assertionMethod) and change the DID (capabilityInvocation)."""
    return {
        "@context": list(DID_CONTEXT),
        "verificationMethod": [
            {"id": "#key-1", "type": "Multikey", "publicKeyMultibase": multikey_encode(public_key)}
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
    help="Verifiable credentials: offline proof bundles (verify online with POST "
    "/credentials/verify or the page /verify).",
    no_args_is_help=True,
)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise bad(f"cannot read {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise bad(f"{what} {path} is not JSON: {exc}") from None


@vc_app.command("bundle")
@handles_errors
def vc_bundle(
    credential: Annotated[Path, typer.Argument(help="The credential (JSON), as issued.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the bundle.")],
    node: NodeOpt = DEFAULT_NODE,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write the offline proof bundle of CREDENTIAL: it with the chain's proven records that
    vouch for it, the signed header and what a light client anchored at genesis needs to
    reach it, checkable later with no network."""
    vc = _read_json(credential, "credential")
    if not isinstance(vc, dict):
        raise bad(f"credential {credential} is not a JSON object")
    trust = trust_from(genesis, home)
    with make_client(node, trust) as client:
        data = bundle_bytes(make_bundle(client, vc, trust=trust.validators))
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise bad(f"cannot write {out}: {exc.strerror}") from None
    console.print(f"wrote {out} ({len(data):,} bytes)")


@vc_app.command("verify")
@handles_errors
def vc_verify(
    bundle: Annotated[Path, typer.Argument(help="The offline proof bundle (JSON).")],
    offline: Annotated[
        bool, typer.Option("--offline", help="Check the bundle with no network (required).")
    ] = False,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify an offline proof bundle against the chain's genesis (its chain id and
    validator set), with no network: exit 0 and who issued it, or the reason in words."""
    if not offline:
        raise bad(
            "only --offline is done here; to check a credential online, POST it to a node's "
            "/credentials/verify or open the node's /verify page"
        )
    trust = trust_from(genesis, home)
    if trust.chain_id is None or trust.validators is None:
        raise bad(
            "an offline check needs the chain's genesis: pass --genesis FILE (or a --home "
            "whose config/genesis.json is the chain's)"
        )
    try:
        data = bundle.read_bytes()
    except OSError as exc:
        raise bad(f"cannot read bundle {bundle}: {exc.strerror}") from None
    verdict = verify_bundle(
        data, chain_id=trust.chain_id, validators=trust.validators, now=datetime.now(UTC)
    )
    if as_json:
        print_json(
            {
                "verified": True,
                "issuer": verdict.issuer,
                "issuerName": verdict.issuer_name,
                "credentialType": verdict.credential_type,
                "height": verdict.height,
                "asOf": xsd_datetime(verdict.time),
            }
        )
        return
    console.print(
        f"valid: a {verdict.credential_type} issued by {verdict.issuer_name} "
        f"({verdict.issuer}), not revoked or suspended as of block {verdict.height} "
        f"({xsd_datetime(verdict.time)}); checked offline against {trust.source}"
    )


def install(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``citychain did ...`` and ``citychain vc ...`` to the CLI."""
    app.add_typer(did_app, name="did")
    app.add_typer(vc_app, name="vc")
