"""``citychain data ...`` against one real node (a subprocess on a free port), driven in process
by typer's CliRunner: the catalogue in and out (register, a DCAT import refused whole before
anything is sent, import, export), a file uploaded in several chunks by a department of org1
and downloaded by one of org2 under a grant, verify (anchored and not), the audit trail refused
to a non-provider and shown to the provider, the citizen's view, the operator's gc, and a
private data collection (define, put from a file and from stdin, get to a file and to stdout,
meta, show, and the refusals: outside the collection, no such collection, too large).

The node's home is made here rather than by ``start --demo``: the demo chain has one
organisation, and the grant must cross two. It is ``init_home``'s (fast key derivation) with
an ``org2`` added to genesis before the first start, whose member is ``carol``, and the node
made org1's (private values are held only by a node of a listed organisation)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from playwright.sync_api import expect
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nodeproc import NodeProcess, free_port  # type: ignore[import-not-found]

import browser  # type: ignore[import-not-found]
from citychain.blobs import read_manifest
from citychain.cli.main import app
from citychain.crypto import ED25519, Signer
from citychain.crypto.envelope import wrap_key
from citychain.crypto.keystore import save_key
from citychain.node.config import NodeConfig, P2PSettings
from citychain.node.home import InitResult, init_home
from citychain.node.testnet import node_key_of
from citychain.p2p.certs import decrypt_key_pem, encrypt_key_pem, generate_org_ca, issue_node_cert
from citychain.sdk import Client, keep_freed_memory
from citychain.services.data import cli as data_cli
from citychain.services.data.sdk import DATA_GAS_LIMIT, _transfer, request_args
from citychain.services.data.shapes import export_catalogue, import_catalogue, subject_tag
from citychain.services.identity.sdk import Wallet
from citychain.services.identity.shapes import did_key
from citychain.types.genesis import Member, Organisation

pytestmark = pytest.mark.slow

CODE = "101001/000001"
OTHER = "301002005/7"
_runner = CliRunner()


@dataclasses.dataclass
class Env:
    node: NodeProcess
    env: dict[str, str]
    carol: Signer


@contextlib.contextmanager
def _node(home: Path) -> Iterator[Env]:
    """A node of org1 on a chain of two organisations, carol a member of org2."""
    made = init_home(home, kdf_level="interactive", chain_id="data-cli")
    passphrase = (home / "config" / "passphrase").read_text().strip()
    carol = Signer.generate(ED25519)
    save_key(home / "keys" / "carol.json", carol, passphrase, kdf_level="interactive")
    ca_cert, _ = generate_org_ca("org2", "Organisation 2")
    org2 = Organisation(
        "org2",
        "Organisation 2",
        ca_cert.decode(),
        admins=(Signer.generate(ED25519).public_key,),
        members=(Member(carol.public_key, ("member",)),),
    )
    genesis = dataclasses.replace(
        made.genesis,
        organisations=(*made.genesis.organisations, org2),
        params=dataclasses.replace(made.genesis.params, block_interval_ms=20),
    )
    genesis.save(home / "config" / "genesis.json")
    _join_org1(made, passphrase)
    node = NodeProcess(home)
    node.start(demo=False)
    env = {
        "CITYCHAIN_HOME": str(home),
        "CITYCHAIN_PASSPHRASE": passphrase,
        "CITYCHAIN_NODE": node.url,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    try:
        yield Env(node, env, carol)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The node this module's tests share (each uses resources of its own)."""
    with _node(tmp_path_factory.mktemp("data-cli") / "node") as env:
        yield env


def _join_org1(made: InitResult, passphrase: str) -> None:
    """Make the node org1's (``[p2p] org_id`` and a node certificate from org1's CA): only a
    node of a listed organisation holds private values, and ``init_home``'s solo node has no
    organisation. It then runs the BFT engine alone (one validator, no peers)."""
    home = made.config.home
    ca_dir = home / "orgs" / "org1"
    ca_key = decrypt_key_pem((ca_dir / "ca_key.pem").read_bytes(), passphrase)
    p2p = P2PSettings(listen_port=free_port(), org_id="org1")
    cert, tls_key = issue_node_cert(
        (ca_dir / "ca_cert.pem").read_bytes(), ca_key, "node0", made.genesis.chain_id, "org1",
        node_key=node_key_of(made.validator),
    )  # fmt: skip
    (home / p2p.cert_file).write_bytes(cert)
    (home / p2p.tls_key_file).write_bytes(encrypt_key_pem(tls_key, passphrase))
    dataclasses.replace(made.config, p2p=p2p).save()


def run(net: Env, *args: str) -> Any:
    result = _runner.invoke(app, ["data", *args], env=net.env)
    assert "Traceback" not in result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command raised {result.exception!r}: {result.output}")
    return result


def ok_json(net: Env, *args: str) -> Any:
    r = run(net, *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def resource(code: str, **over: Any) -> dict[str, Any]:
    return {
        "code": code,
        "title": f"Dataset {code}",
        "provider": "org1",
        "sharing": "unconditional",
        "themes": ["population"],
        "keywords": ["residents"],
        **over,
    }


def test_catalogue_then_a_version_then_what_gc_keeps(tmp_path: Path) -> None:
    """One story on one node, in order (as separate tests, pytest-xdist's load balancing
    could run its steps on two workers, each with a node of its own): the catalogue, then a
    version of one of its resources shared across organisations, then what gc keeps of both.
    A node of its own, not the module's: the story counts everything in the catalogue and
    the blob store, which the other tests' resources would change, or not, depending on the
    order the tests run in."""
    with _node(tmp_path / "node") as net:
        for step in (
            _catalogue_register_import_export,
            _upload_grant_download_verify_audit,
            _gc_keeps_referenced_and_retired_versions,
        ):
            (where := tmp_path / step.__name__.strip("_")).mkdir()
            step(net, where)


def _catalogue_register_import_export(net: Env, tmp_path: Path) -> None:
    spec = tmp_path / "resource.json"
    spec.write_text(json.dumps(resource(CODE, title="from the file")))
    out = ok_json(
        net, "register", "--key", "alice", "--file", str(spec), "--title", "常住人口",
        "--data-item", "born:date",
    )  # fmt: skip
    assert out == {"code": CODE}
    shown = ok_json(net, "show", CODE)
    assert shown["title"] == "常住人口" and shown["data_items"] == [
        {"name": "born", "type": "date"}
    ]
    assert ok_json(net, "update", "--key", "alice", "--code", CODE, "--keyword", "census") == {
        "code": CODE,
        "revision": 2,
    }
    assert [r["op"] for r in ok_json(net, "history", CODE)] == ["register", "update"]

    # A file with one bad dataset (and one already registered) is refused whole.
    good = [resource("101001/000010"), resource("101001/000011")]
    bad_doc = export_catalogue([*good, resource("101001/000012")])
    bad_doc["dataset"][2]["accessRights"] = "cgdr:sometimes"
    (tmp_path / "bad.jsonld").write_text(json.dumps(bad_doc))
    r = run(net, "import", str(tmp_path / "bad.jsonld"), "--key", "alice")
    assert r.exit_code == 1 and "error [invalid_catalogue]" in r.output, r.output
    (tmp_path / "dup.jsonld").write_text(json.dumps(export_catalogue([*good, resource(CODE)])))
    r = run(net, "import", str(tmp_path / "dup.jsonld"), "--key", "alice")
    assert r.exit_code == 1 and "error [duplicate]" in r.output and CODE in r.output
    (tmp_path / "theirs.jsonld").write_text(
        json.dumps(export_catalogue([resource("101001/000013", provider="org2")]))
    )
    r = run(net, "import", str(tmp_path / "theirs.jsonld"), "--key", "alice")
    assert r.exit_code == 1 and "error [not_provider]" in r.output
    assert [x["code"] for x in ok_json(net, "search")] == [CODE]  # nothing was sent

    (tmp_path / "good.jsonld").write_text(json.dumps(export_catalogue(good)))
    assert ok_json(net, "import", str(tmp_path / "good.jsonld"), "--key", "alice") == {
        "registered": ["101001/000010", "101001/000011"]
    }
    assert [x["code"] for x in ok_json(net, "search", "--keyword", "census")] == [CODE]

    r = run(net, "export", "-o", str(tmp_path / "out.jsonld"))
    assert r.exit_code == 0, r.output
    back = import_catalogue(json.loads((tmp_path / "out.jsonld").read_text()))
    assert [x["code"] for x in back] == [CODE, "101001/000010", "101001/000011"]
    assert back[0]["title"] == "常住人口" and back[0]["keywords"] == ["census"]


def _upload_grant_download_verify_audit(net: Env, tmp_path: Path) -> None:
    bob = net.node.signer("bob")
    citizen = did_key(bob.public_key)  # bob's did:key stands for a citizen here
    payload = os.urandom(5000)
    src = tmp_path / "population.csv"
    src.write_bytes(payload)
    with mock.patch.object(data_cli, "keep_freed_memory", wraps=keep_freed_memory) as kept:
        up = ok_json(
            net, "upload", CODE, str(src), "--key", "alice", "--chunk-size", "1024",
            "--subject", citizen,
        )  # fmt: skip
    assert kept.call_count == 1  # the CLI's transfers reuse their 4 MiB blocks
    assert up["version"] == 1 and up["plain_size"] == 5000
    versions = ok_json(net, "versions", CODE)
    assert versions[0]["manifest_id"] == up["manifest_id"] and versions[0]["subjects"] == 1

    # The node's own DCAT export (GET /v1/data/catalogue), with that version in it: the route
    # once passed the contract's bookkeeping (revision, retired, latest) to the exporter,
    # which refused every catalogue that was not empty.
    r = httpx.get(net.node.url + "/v1/data/catalogue", timeout=30)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [x["code"] for x in import_catalogue(doc)] == [CODE, "101001/000010", "101001/000011"]
    (ds,) = [d for d in doc["dataset"] if d["identifier"] == CODE]
    assert ds["hasCurrentVersion"].endswith("/v1") and len(ds["hasVersion"]) == 1
    assert '"byteSize":"5000"' in r.text.replace(" ", "")
    # its accessURL is the node's download route: it asks an unsigned caller to sign
    (version,) = ds["hasVersion"]
    (dist,) = version["distribution"]
    assert dist["accessURL"].startswith(net.node.url + "/v1/data/resources/")
    unsigned = httpx.get(dist["accessURL"], params={"access": 1}, timeout=30)
    assert unsigned.status_code == 401, unsigned.text
    assert unsigned.json()["code"] == "signature_missing"

    # carol, of org2, asks; unconditional sharing grants at once; alice wraps the key.
    got = ok_json(net, "request", CODE, "--key", "carol", "--purpose", "benefits check",
                  "--period", "30d")  # fmt: skip
    assert got["state"] == "granted"
    grant = got["grant"]
    r = run(net, "download", CODE, "1", "--key", "carol", "--grant", str(grant), "-o", "x")
    assert r.exit_code == 1 and "error [no_grant]" in r.output  # no key wrapped for her yet
    assert ok_json(net, "grant-keys", CODE, "--key", "alice")["grants"] == [grant]
    dest = tmp_path / "copy.csv"
    with mock.patch.object(data_cli, "keep_freed_memory", wraps=keep_freed_memory) as kept:
        down = ok_json(net, "download", CODE, "1", "--key", "carol", "--grant", str(grant),
                       "-o", str(dest))  # fmt: skip
    assert kept.call_count == 1
    assert dest.read_bytes() == payload and down["plain_hash"] == up["plain_hash"]

    r = run(net, "verify", str(dest))
    assert r.exit_code == 0, r.output
    assert f"{CODE} version 1" in r.output and "proof verified against header" in r.output
    assert "signed by 10 of 10 power" in r.output and "UTC" in r.output
    (tmp_path / "changed.csv").write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    r = run(net, "verify", str(tmp_path / "changed.csv"))
    assert r.exit_code == 1 and "error [not_found]" in r.output
    assert "anchored nowhere" in r.output

    r = run(net, "audit", CODE, "--key", "carol")
    assert r.exit_code == 1 and "error [not_authorized]" in r.output  # the API's 403
    assert "only the provider or an auditor" in r.output, r.output
    trail = ok_json(net, "audit", CODE, "--key", "alice")
    assert [e["action"] for e in trail] == ["request", "granted", "download"]
    r = run(net, "audit", CODE, "--key", "alice")
    assert r.exit_code == 0 and "download" in r.output and "org2" in r.output

    assert [g["id"] for g in ok_json(net, "grants", CODE, "--key", "alice")] == [grant]
    assert ok_json(net, "grant", str(grant), "--key", "carol")["state"] == "active"
    _a_damaged_copy_or_a_wrong_key(net, tmp_path, grant, payload)
    r = run(net, "accesses", "--key", "bob")
    assert r.exit_code == 0, r.output
    assert "org2" in r.output and "download" in r.output and "benefits check" in r.output

    r = run(net, "revoke", str(grant), "--key", "alice", "--reason", "check done")
    assert r.exit_code == 0, r.output
    r = run(net, "download", CODE, "1", "--key", "carol", "--grant", str(grant), "-o", "x")
    assert r.exit_code == 1 and "error [grant_revoked]" in r.output


def _a_damaged_copy_or_a_wrong_key(net: Env, tmp_path: Path, grant: int, payload: bytes) -> None:
    """What the grantee is told when the node's copy of the version is damaged, or the key
    wrapped for it is not the version's, and what the audit trail keeps of each attempt."""
    store = NodeConfig.load(net.node.home).open_blob_store("sha256")
    (version,) = ok_json(net, "versions", CODE)
    chunks = read_manifest(store, bytes.fromhex(version["manifest_id"]["hex"])).chunks
    assert len(chunks) == 5
    good = store.get(chunks[2])
    trail = len(ok_json(net, "audit", CODE, "--key", "alice"))
    dest = tmp_path / "again.csv"

    def download() -> Any:
        return run(net, "download", CODE, "1", "--key", "carol", "--grant", str(grant),
                   "-o", str(dest))  # fmt: skip

    # A chunk missing from the store: refused before any access is recorded.
    assert store.delete(chunks[2])
    r = download()
    assert r.exit_code == 1 and "error [chunk_missing]" in r.output, r.output
    assert "(the first is chunk 2)" in r.output and "not copied between nodes" in r.output
    assert not dest.exists()
    assert len(ok_json(net, "audit", CODE, "--key", "alice")) == trail  # no phantom download

    # A chunk the disk altered: found as it is read, after the 200. The transfer is cut short
    # of its Content-Length, nothing is written, the node's log says which chunk in one line
    # (no traceback), and the chunk is set aside, so asking again says it is missing.
    store.put(chunks[2], good)
    (path,) = (net.node.home / "data" / "blobs").rglob(chunks[2].hex())
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    tracebacks = net.node.log.read_text().count("Traceback")
    r = download()
    assert r.exit_code == 1 and "error [unavailable]" in r.output, r.output
    assert "the node cut the download after" in r.output and "its log says" in r.output
    assert not dest.exists()
    log = net.node.log.read_text()
    assert f"cut short: [chunk_corrupt] the stored chunk {chunks[2].hex()}" in log
    assert log.count("Traceback") == tracebacks
    assert len(ok_json(net, "audit", CODE, "--key", "alice")) == trail + 1  # it did ask
    r = download()
    assert r.exit_code == 1 and "error [chunk_missing]" in r.output, r.output

    # Restored (as from a replica), the download goes through again.
    store.put(chunks[2], good)
    assert ok_json(net, "download", CODE, "1", "--key", "carol", "--grant", str(grant),
                   "-o", str(dest))["plain_size"] == len(payload)  # fmt: skip
    assert dest.read_bytes() == payload
    dest.unlink()

    # The wrong key: a data key wrapped for someone else, then a wrong data key wrapped for
    # carol. Neither opens; the first is refused before any access is recorded.
    alice = net.node.signer("alice")
    with Client(net.node.url) as c:
        context = _transfer.context_of(c.status().chain_id, CODE)
        stranger = _transfer.encryption_keypair(Signer.generate(ED25519))[1]
        c.data.wrap_key(alice, CODE, 1, net.carol.address,
                        wrap_key(os.urandom(32), stranger, "aes-256-gcm", context))  # fmt: skip
        trail = len(ok_json(net, "audit", CODE, "--key", "alice"))
        r = download()
        assert r.exit_code == 1 and "error [key_unwrap_failed]" in r.output, r.output
        assert "wrapped for another key" in r.output
        assert len(ok_json(net, "audit", CODE, "--key", "alice")) == trail
        carol_x = _transfer.encryption_keypair(net.carol)[1]
        c.data.wrap_key(alice, CODE, 1, net.carol.address,
                        wrap_key(os.urandom(32), carol_x, "aes-256-gcm", context))  # fmt: skip
        r = download()
        assert r.exit_code == 1 and "error [chunk_tampered]" in r.output, r.output
        assert "chunk 0" in r.output and "not the one it was sealed with" in r.output
        assert not dest.exists()
    # The provider wraps the right key again.
    assert ok_json(net, "grant-keys", CODE, "--key", "alice")["grants"] == [grant]


def _gc_keeps_referenced_and_retired_versions(net: Env, tmp_path: Path) -> None:
    assert ok_json(net, "register", "--key", "alice", "--file", _spec(tmp_path, OTHER))
    src = tmp_path / "old.bin"
    src.write_bytes(os.urandom(3000))
    up = ok_json(net, "upload", OTHER, str(src), "--key", "alice", "--chunk-size", "1024")
    assert ok_json(net, "retire", OTHER, "--key", "alice", "--reason", "superseded")
    store = NodeConfig.load(net.node.home).open_blob_store("sha256")
    stray = os.urandom(2000)
    stray_id = hashlib.sha256(stray).digest()
    store.put(stray_id, stray)
    before = {i.chunk_id for i in store.ids()}

    dry = ok_json(net, "gc", "--home", str(net.node.home), "--grace", "0s", "--dry-run")
    assert dry["deleted"] == 1 and {i.chunk_id for i in store.ids()} == before
    young = ok_json(net, "gc", "--home", str(net.node.home))  # the default grace: 1h
    assert young["deleted"] == 0 and young["kept_young"] == 1
    done = ok_json(net, "gc", "--home", str(net.node.home), "--grace", "0s")
    assert done["deleted"] == 1 and done["referenced_manifests"] == 2
    assert {i.chunk_id for i in store.ids()} == before - {stray_id}
    manifest = bytes.fromhex(up["manifest_id"]["hex"])
    assert store.has(manifest)  # the retired resource's version is still referenced

    # A version whose manifest this store lacks (uploaded through another node: blobs are
    # not replicated) does not stop the collection; chunks of it here are leftovers.
    store.delete(manifest)
    elsewhere = ok_json(net, "gc", "--home", str(net.node.home), "--grace", "0s")
    assert elsewhere["deleted"] == 3  # its chunks: 3000 bytes in chunks of 1 KiB
    assert elsewhere["referenced_manifests"] == 1  # the live resource's version
    assert elsewhere["referenced_elsewhere"] == 1  # the retired one's, listed from the chain
    (live,) = ok_json(net, "versions", CODE)
    store.delete(bytes.fromhex(live["manifest_id"]["hex"]))
    elsewhere = ok_json(net, "gc", "--home", str(net.node.home), "--grace", "0s")
    assert elsewhere["referenced_elsewhere"] == 2 and elsewhere["deleted"] == 5
    assert list(store.ids()) == []

    r = run(net, "gc", "--home", str(tmp_path), "--grace", "0s")
    assert r.exit_code == 1 and "error [bad_arguments]" in r.output
    r = run(net, "gc", "--home", str(net.node.home), "--grace", "soon")
    assert r.exit_code == 1 and "30d" in r.output


def _spec(tmp_path: Path, code: str) -> str:
    path = tmp_path / f"{code.replace('/', '_')}.json"
    path.write_text(json.dumps(resource(code)))
    return str(path)


def test_a_citizen_sees_on_a_phone_who_accessed_records_about_them(
    net: Env, tmp_path: Path
) -> None:
    """``GET /my-data`` in a real headless Chromium at a phone's size: the citizen chooses
    the key file their wallet exported and types its passphrase; the page opens it with
    WebCrypto, signs its own reads (RFC 9421) and lists exactly the accesses made, with the
    department's name and the stated purpose. A wrong passphrase, a file that is no key and a
    person no record is about are each told so in words."""
    code = "101007/000001"
    alice = net.node.signer("alice")
    wallet = Wallet.create(tmp_path / "wallet.json", "wallet pass", kdf_level="interactive")
    citizen = wallet.new_key("default")
    (tmp_path / "checkups.csv").write_bytes(b"resident,bmi\nR-1,22.5\n")
    with Client(net.node.url) as c:
        c.data.register_resource(alice, **resource(code, title="Health check results"))
        c.data.upload(alice, code, tmp_path / "checkups.csv", subjects=[citizen])
        got = c.data.request_access(net.carol, code, "bus stops near clinics", period=86_400_000)
        c.data.grant_keys(alice, code)
        c.data.download(net.carol, code, 1, tmp_path / "got.csv", grant=got["grant"],
                        purpose="route planning 2027")  # fmt: skip
        expected = [(e["action"], e["org"], e["purpose"]) for e in
                    c.data.accesses(wallet.signer("default"))]  # fmt: skip
    # A department's request names the resource, not the person: the download is the access.
    assert expected == [("download", "org2", "route planning 2027")]

    key_file = tmp_path / "citizen.jwe"
    key_file.write_text(wallet.export_key("phone passphrase"))
    nobody = Wallet.create(tmp_path / "nobody.json", "p", kdf_level="interactive")
    nobody.new_key("default")
    (tmp_path / "nobody.jwe").write_text(nobody.export_key("nobody else has this phrase"))
    (tmp_path / "notes.txt").write_text("not a key")

    def sign_in(page: Any, path: Path, passphrase: str) -> str:
        page.locator("#status").evaluate("p => { p.textContent = '' }")
        page.set_input_files("#keyfile", str(path))
        page.fill("#passphrase", passphrase)
        page.click("#show")
        status = page.locator("#status")
        expect(status).not_to_have_text(re.compile(r"^$|…$"), timeout=30_000)
        return str(status.inner_text())

    # The page holds a person's key: locked down like every page of the node.
    r = httpx.get(net.node.url + "/my-data")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    dom = browser.dump_dom(net.node.url + "/my-data")
    assert "Who looked at my records" in dom and browser.foreign_hosts(dom, net.node.url) == set()
    for asset in browser.loaded_urls(dom, net.node.url):
        assert httpx.get(asset).status_code == 200, asset
    with browser.page() as page:
        page.goto(net.node.url + "/my-data")
        assert "Wrong passphrase" in sign_in(page, key_file, "not it")
        assert "not a key file" in sign_in(page, tmp_path / "notes.txt", "x")
        assert sign_in(page, tmp_path / "nobody.jwe", "nobody else has this phrase") == (
            "No one has accessed records about you."
        )
        assert sign_in(page, key_file, "phone passphrase") == (
            "1 access to records about you, oldest first."
        )
        assert page.locator("#who").inner_text() == f"Signed in as {citizen}"
        rows = page.locator("#accesses tbody tr")
        assert [r.get_attribute("data-action") for r in rows.all()] == [a for a, _, _ in expected]
        download = rows.nth(0).inner_text()
        assert "Organisation 2 (org2)" in download and "downloaded it" in download
        # On a phone each access is a card of labelled lines, not five narrow columns.
        assert not page.locator("#accesses thead").is_visible()
        assert [td.get_attribute("data-label") for td in rows.nth(0).locator("td").all()] == [
            "When", "Department", "What", "Data", "Stated purpose",
        ]  # fmt: skip
        assert page.evaluate("document.documentElement.scrollWidth <= 390")
        assert "route planning 2027" in download and f"Health check results ({code})" in download
        assert page.locator("#records li span").all_inner_texts() == [
            f"Health check results ({code})"
        ]


def test_a_citizen_asks_on_a_phone_for_a_copy_of_records_about_them(
    net: Env, tmp_path: Path
) -> None:
    """From ``/my-data`` the citizen asks for a copy of what a resource holds about them: the
    page builds the ``request_access`` transaction the SDK would build (the same bytes, so the
    same hash), signs it in the browser and reads its receipt. A conditional resource leaves it
    pending for the provider's approver, an unconditional one grants it at once; both show in
    the citizen's list, and the approver's decision shows there after. A request with no
    purpose is told so before anything is sent. Then the citizen downloads a granted copy on
    the phone: refused in words while no key is wrapped for them (and no access recorded),
    then opened in the page once the provider wraps it, saved with the bytes uploaded, and
    listed as their download."""
    housing, vaccines = "101008/000001", "101009/000001"
    alice = net.node.signer("alice")
    wallet = Wallet.create(tmp_path / "wallet.json", "wallet pass", kdf_level="interactive")
    citizen = wallet.new_key("default")
    me = wallet.signer("default")
    (tmp_path / "rows.csv").write_bytes(b"resident,item\nR-2,x\n")
    with Client(net.node.url) as c:
        c.data.register_resource(
            alice, **resource(housing, title="Housing subsidy files", sharing="conditional",
                              sharing_condition="the person's own file", approvers=[alice.address])
        )  # fmt: skip
        c.data.register_resource(alice, **resource(vaccines, title="Vaccination records"))
        for code in (housing, vaccines):
            c.data.upload(alice, code, tmp_path / "rows.csv", subjects=[citizen])
    (tmp_path / "citizen.jwe").write_text(wallet.export_key("phone passphrase"))

    def sign_in(page: Any) -> None:
        page.set_input_files("#keyfile", str(tmp_path / "citizen.jwe"))
        page.fill("#passphrase", "phone passphrase")
        page.click("#show")
        expect(page.locator("#status")).to_have_text(
            re.compile(r"oldest first|No one"), timeout=30_000
        )

    def said(text: str, pattern: str) -> int:
        """The number in ``text``, which must say ``pattern`` (one group) and nothing else."""
        m = re.fullmatch(pattern, text)
        assert m, text
        return int(m.group(1))

    def ask(page: Any, code: str, purpose: str, days: str = "30") -> str:
        page.locator(f"#records li[data-code='{code}'] button.ask").click()
        page.fill("#purpose", purpose)
        page.select_option("#period", days)
        page.click("#send")
        asked = page.locator("#asked")
        expect(asked).not_to_have_text(re.compile(r"^$|…$"), timeout=60_000)
        return str(asked.inner_text())

    with browser.page() as page:
        page.goto(net.node.url + "/my-data")
        sign_in(page)
        assert page.locator("#records li span").all_inner_texts() == [
            f"Housing subsidy files ({housing})",
            f"Vaccination records ({vaccines})",
        ]
        # The form's own check: nothing is signed or sent without a purpose.
        assert ask(page, housing, "   ") == "Say what you need the records for."
        pending = ask(page, housing, "my housing file, for a court case", days="7")
        rid = said(
            pending,
            rf"Sent: request (\d+) for Housing subsidy files \({housing}\) waits for the "
            r"decision of Organisation 1\. It shows in the list above once decided\.",
        )
        granted = ask(page, vaccines, "travel abroad")
        grant = said(
            granted,
            rf"Granted: request \d+ for Vaccination records \({vaccines}\) gave you access "
            r"\(grant (\d+)\)\. Download your copy below once the department has wrapped its "
            r"key for you\.",
        )
        rows = page.locator("#accesses tbody tr")
        assert [r.get_attribute("data-action") for r in rows.all()] == [
            "request", "request", "granted",
        ]  # fmt: skip
        assert "you" in rows.nth(0).inner_text() and "for a court case" in rows.nth(0).inner_text()

    with Client(net.node.url) as c:
        req = c.data.request(alice, rid)
        assert req["state"] == "pending" and req["purpose"] == "my housing file, for a court case"
        assert req["subject"] == subject_tag(citizen) and req["requester"] == me.address
        # The page's bytes are the SDK's: the transaction the SDK builds for the same call
        # (its first nonce) has the hash the node committed.
        built = c.build_tx(
            me, "data", "request_access",
            request_args(housing, "my housing file, for a court case", period=7 * 86_400_000,
                         subject=citizen),
            nonce=0, gas_limit=DATA_GAS_LIMIT,
        )  # fmt: skip
        assert c.tx(built.hash, signer=me).status == "committed"
        assert c.data.grant(me, grant)["code"] == vaccines
        h_grant = c.data.decide(alice, rid, True)["grant"]

    def fetch_copy(page: Any, grant: int) -> str:
        page.locator(f"#copies li[data-grant='{grant}'] button").click()
        asked = page.locator("#asked")
        expect(asked).not_to_have_text(re.compile(r"^$|…$"), timeout=60_000)
        return str(asked.inner_text())

    def actions(page: Any) -> list[str | None]:
        return [r.get_attribute("data-action") for r in page.locator("#accesses tbody tr").all()]

    with browser.page() as page:
        page.goto(net.node.url + "/my-data")
        sign_in(page)
        assert actions(page) == ["request", "request", "granted", "granted"]
        assert page.locator("#copies li span").all_inner_texts() == [
            f"Vaccination records ({vaccines}), grant {grant}",
            f"Housing subsidy files ({housing}), grant {h_grant}",
        ]
        # No key is wrapped for the citizen yet: said so, and nothing recorded on chain.
        refused = fetch_copy(page, grant)
        assert refused.startswith("The node refused: ") and "key" in refused, refused
        assert not page.locator("#save").is_visible()
        # The refusal names an address (40 hex digits): it wraps instead of widening the page
        # past the phone's screen, which would move every button under the citizen's thumb.
        assert page.evaluate("document.documentElement.scrollWidth <= 390")
        with Client(net.node.url) as c:
            assert c.data.grant_keys(alice, vaccines) == [grant]
        ready = fetch_copy(page, grant)
        assert ready == (
            f"Your copy of Vaccination records ({vaccines}) (version 1, "
            f"{(tmp_path / 'rows.csv').stat().st_size} bytes) is ready, checked against the hash "
            "the chain anchored."
        )
        with page.expect_download() as saved:
            page.click("#save")
        assert saved.value.suggested_filename == "records-101009-000001-v1"
        assert Path(saved.value.path()).read_bytes() == (tmp_path / "rows.csv").read_bytes()
        assert actions(page) == ["request", "request", "granted", "granted", "download"]
        # A phone passed on: the next sign-in (here a failed one) leaves nothing of the last.
        page.fill("#passphrase", "someone else's try")
        page.click("#show")
        expect(page.locator("#status")).to_have_text(re.compile("Wrong passphrase"), timeout=30_000)
        assert page.locator("#copies li").count() == 0 and not page.locator("#save").is_visible()
        assert page.locator("#save").get_attribute("href") is None
        sign_in(page)
        with Client(net.node.url) as c:
            c.data.revoke(alice, grant, "issued in error")
        revoked = fetch_copy(page, grant)
        assert revoked == f"The node refused: grant {grant} was revoked: issued in error"
        assert page.evaluate("document.documentElement.scrollWidth <= 390")
    with Client(net.node.url) as c:
        (mine,) = [e for e in c.data.accesses(me) if e["action"] == "download"]
        assert mine["code"] == vaccines and mine["org"] == "" and mine["grant"] == grant


def test_durations_and_dates_typed_by_people() -> None:
    from citychain.errors import InvalidInput
    from citychain.services.data.cli import parse_duration_ms, parse_when_ms

    assert parse_duration_ms("30d", "--period") == 30 * 86_400_000
    assert parse_duration_ms("1d12h", "--period") == 36 * 3_600_000
    assert parse_duration_ms("90s", "--grace") == 90_000
    assert parse_when_ms("2026-01-01T00:00:00Z", "--until") == 1_767_225_600_000
    assert parse_when_ms("2026-01-01", "--until") == 1_767_225_600_000
    for bad, parse in (("soon", parse_duration_ms), ("12", parse_duration_ms),
                       ("2026-01-01T00:00:00", parse_when_ms)):  # fmt: skip
        with pytest.raises(InvalidInput) as info:
            parse(bad, "--x")
        assert "--x" in info.value.message


def test_conditional_request_decided_by_an_approver(net: Env, tmp_path: Path) -> None:
    code = "201001/000042"
    alice = net.node.signer("alice")
    created = ok_json(
        net, "register", "--key", "alice", "--code", code, "--title", "Social security",
        "--provider", "org1", "--sharing", "conditional", "--sharing-condition", "checks only",
        "--approver", alice.address.hex(),
    )  # fmt: skip
    assert created == {"code": code}
    r = run(net, "request", code, "--key", "carol", "--purpose", "p")
    assert r.exit_code == 1 and "--period" in r.output  # neither --period nor --until
    pending = ok_json(
        net, "request", code, "--key", "carol", "--purpose", "audit of benefits",
        "--until", "2030-01-01T00:00:00Z", "--legal-basis", "Art. 5",
    )  # fmt: skip
    assert pending["state"] == "pending" and pending["grant"] == 0
    rid = str(pending["request"])
    r = run(net, "decide", rid, "--key", "alice", "--refuse")
    assert r.exit_code == 1 and "error [bad_arguments]" in r.output and "reason" in r.output
    r = run(net, "decide", rid, "--key", "carol", "--approve")
    assert r.exit_code == 1 and "error [not_approver]" in r.output
    decided = ok_json(net, "decide", rid, "--key", "alice", "--approve")
    assert decided["state"] == "granted" and decided["grant"] > 0
    (req,) = ok_json(net, "requests", code, "--key", "alice")
    assert req["state"] == "granted" and req["legal_basis"] == "Art. 5"
    assert ok_json(net, "grant", str(decided["grant"]), "--key", "carol")["until"] == (
        1_893_456_000_000
    )


def test_private_collection_define_put_get_meta(net: Env, tmp_path: Path) -> None:
    out = ok_json(net, "collection", "define", "cases", "--org", "org1", "--org", "org2",
                  "--block-to-live", "1000", "--key", "alice")  # fmt: skip
    assert (out["name"], out["orgs"], out["block_to_live"], out["member_only_read"]) == (
        "cases", ["org1", "org2"], 1000, True,
    )  # fmt: skip
    r = run(net, "collection", "show", "cases")
    assert r.exit_code == 0 and "org1, org2" in r.output and "1000 blocks" in r.output, r.output
    value = bytes(range(256)) * 3 + b"\r\n\x00\xff"  # binary: every byte, CR LF, NUL
    src = tmp_path / "v.bin"
    src.write_bytes(value)
    put = ok_json(net, "private", "put", "cases", "case-1", str(src), "--key", "alice")
    assert put["version"] == 1 and put["size"] == len(value)
    assert put["purge_height"] > 1000 and put["pushed_to"] == 0  # the only node
    piped = b"\x00from stdin\xff\n"
    r = _runner.invoke(app, ["data", "private", "put", "cases", "case-1", "-", "--key", "carol"],
                       env=net.env, input=piped)  # fmt: skip
    assert r.exit_code == 0 and "version 2" in r.output and "pushed to" in r.output, r.output

    dest = tmp_path / "got.bin"
    got = ok_json(net, "private", "get", "cases", "case-1", "--version", "1", "-o", str(dest),
                  "--key", "carol")  # fmt: skip
    assert dest.read_bytes() == value and got["size"] == len(value)
    r = run(net, "private", "get", "cases", "case-1", "--key", "alice")
    assert r.exit_code == 0 and r.stdout_bytes == piped  # stdout: the bytes, nothing else
    meta = ok_json(net, "private", "meta", "cases", "case-1", "--version", "1")
    assert meta["hash"] == put["hash"] and (meta["size"], meta["latest"]) == (len(value), 2)
    assert not meta["purged"] and "value" not in meta
    r = run(net, "private", "meta", "cases", "case-1")
    assert r.exit_code == 0 and "version 2 of 2" in r.output and "held" in r.output, r.output

    # org2's carol is outside a collection of org1 alone: she may neither define, put nor get.
    r = run(net, "collection", "define", "theirs", "--org", "org1", "--key", "carol")
    assert r.exit_code == 1 and "error [not_in_collection]" in r.output, r.output
    assert ok_json(net, "collection", "define", "only1", "--org", "org1", "--public-read",
                   "--key", "alice")["member_only_read"] is False  # fmt: skip
    r = run(net, "private", "put", "only1", "k", str(src), "--key", "carol")
    assert r.exit_code == 1 and "error [not_in_collection]" in r.output, r.output
    for args in (("collection", "show", "nope"), ("private", "meta", "nope", "k"),
                 ("private", "put", "nope", "k", str(src), "--key", "alice")):  # fmt: skip
        r = run(net, *args)
        assert r.exit_code == 1 and "error [collection_not_found]" in r.output, (args, r.output)

    # required_peers: this lone node has no peer to acknowledge a value, so a put is refused
    # and nothing is anchored; counts the contract would refuse are refused before sending.
    safe = ok_json(net, "collection", "define", "safe", "--org", "org1", "--org", "org2",
                   "--required-peers", "1", "--max-peers", "2", "--key", "alice")  # fmt: skip
    assert (safe["required_peers"], safe["max_peers"]) == (1, 2)
    r = run(net, "collection", "show", "safe")
    assert "at most 2 peer(s), 1 must acknowledge" in r.output, r.output
    r = run(net, "private", "put", "safe", "k", str(src), "--key", "alice")
    assert r.exit_code == 1 and "error [dissemination_failed]" in r.output, r.output
    assert "requires 1 peer(s)" in r.output, r.output
    r = run(net, "private", "meta", "safe", "k")
    assert r.exit_code == 1 and "error [resource_not_found]" in r.output, r.output
    r = run(net, "collection", "define", "x", "--org", "org1", "--required-peers", "3",
            "--max-peers", "2", "--key", "alice")  # fmt: skip
    assert r.exit_code == 1 and "error [bad_arguments]" in r.output, r.output

    # Over 1 MiB: refused before the key is opened or the node asked (it is unreachable here).
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(1024 * 1024 + 1))
    for source, given in ((str(big), None), ("-", bytes(1024 * 1024 + 1))):
        r = _runner.invoke(app, ["data", "private", "put", "cases", "big", source, "--key",
                                 "nobody", "--node", "http://127.0.0.1:9"],
                           env=net.env, input=given)  # fmt: skip
        assert r.exit_code == 1 and "error [too_large]" in r.output, r.output
    r = run(net, "private", "meta", "cases", "big")
    assert r.exit_code == 1 and "error [resource_not_found]" in r.output
    r = run(net, "private", "get", "cases", "case-1", "--key", "alice", "--json")
    assert r.exit_code == 1 and "error [bad_arguments]" in r.output
