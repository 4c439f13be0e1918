"""``citychain vc status ...`` and ``vc revoke / suspend / reinstate`` against a real node:
an issuer's clerk, with no Python, registers its lists, suspends, reinstates and revokes a
licence (and an SD-JWT) from its file; every change is seen by the node's verifier and by a
verifier outside the chain reading the published list; refusals in words."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodeproc import NodeProcess, cli, running_demo  # type: ignore[import-not-found]
from vc_fixtures import licence_subject  # type: ignore[import-not-found]

from citychain.crypto import ED25519, Signer
from citychain.sdk import Client
from citychain.services.identity.sdk import (
    credential_from_template,
    issue_credential,
    issue_sd_jwt,
    present_sd_jwt,
    sd_jwt_status,
    status_entries,
    status_entry,
)
from citychain.services.identity.shapes import did_key

pytestmark = pytest.mark.slow
TYPE = "BusinessLicenceCredential"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with running_demo(tmp_path_factory.mktemp("status-cli") / "node") as n:
        yield n


def run(node: NodeProcess, *args: str) -> tuple[int, str, str]:
    env = {"CITYCHAIN_HOME": str(node.home), "CITYCHAIN_PASSPHRASE": node.passphrase}
    r = cli(*args, "--node", node.url, env=env)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout, r.stderr


def ok(node: NodeProcess, *args: str) -> str:
    code, out, err = run(node, *args)
    assert code == 0, err
    return out


def verdict(node: NodeProcess, vc: Any) -> str:
    r = httpx.post(f"{node.url}/credentials/verify", json={"verifiableCredential": vc}, timeout=30)
    return "valid" if r.status_code == 200 else str(r.json()["code"])


def bit(node: NodeProcess, list_id: str, index: int) -> bool:
    """The entry as a verifier outside the chain reads it: the list the issuer published."""
    r = httpx.get(f"{node.url}/1.0/identifiers/{list_id}", timeout=30)
    assert r.status_code == 200, r.text
    encoded = r.json()["credentialSubject"]["encodedList"][1:]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def test_a_clerk_suspends_reinstates_and_revokes_from_the_command_line(
    node: NodeProcess, tmp_path: Path
) -> None:
    did = json.loads(ok(node, "did", "create", "--key", "alice", "--json"))["did"]
    with Client(node.url) as c:
        c.send(node.signer("org1-admin"), "identity", "trust_issuer",
               {"issuer": did, "type": TYPE, "name": "Gulou Market Bureau"})  # fmt: skip
    register = ("vc", "status", "register", "--did", did, "--key", "alice", "--json")
    rev = json.loads(ok(node, *register, "licences"))["list_id"]
    hold = json.loads(ok(node, *register, "holds", "--purpose", "suspension"))["list_id"]
    assert (rev, hold) == (f"{did}/status/licences", f"{did}/status/holds")
    assert not bit(node, rev, 5)  # published empty at registration

    alice = node.signer("alice")
    licence = issue_credential(
        credential_from_template(
            "business-licence", issuer=did, subject=licence_subject(),
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            credential_status=[status_entry(rev, 5), status_entry(hold, 9, "suspension")],
        ),
        alice, f"{did}#key-1",
    )  # fmt: skip
    path = tmp_path / "licence.json"
    path.write_text(json.dumps(licence))
    assert verdict(node, licence) == "valid"

    assert "set entry 9 of" in ok(node, "vc", "suspend", str(path), "--key", "alice")
    assert verdict(node, licence) == "credential_suspended" and bit(node, hold, 9)
    assert "cleared entry 9" in ok(node, "vc", "reinstate", str(path), "--key", "alice")
    assert verdict(node, licence) == "valid" and not bit(node, hold, 9)
    shown = json.loads(ok(node, "vc", "status", "show", hold, "--json"))
    assert (shown["changes"], shown["published_changes"], shown["published_current"]) == (
        2,
        2,
        True,
    )
    # Both forms are published with each change: the SD-JWT verifiers' token too.
    assert (shown["token_changes"], shown["token_current"]) == (2, True)

    # Revoked without publishing: the chain says so at once; outside, the list is not served
    # stale; the clerk publishes it.
    ok(node, "vc", "revoke", str(path), "--key", "alice", "--no-publish")
    assert verdict(node, licence) == "credential_revoked"
    assert httpx.get(f"{node.url}/1.0/identifiers/{rev}", timeout=30).status_code == 404
    stale = ok(node, "vc", "status", "show", rev)
    assert "credential published at change 0 (stale" in stale
    assert "token published at change 0 (stale" in stale
    assert "published" in ok(node, "vc", "status", "publish", rev, "--key", "alice")
    token = httpx.get(
        f"{node.url}/1.0/identifiers/{rev}",
        headers={"Accept": "application/statuslist+jwt"},
        timeout=30,
    )
    assert token.status_code == 200 and token.text.count(".") == 2
    assert bit(node, rev, 5)

    # A citizen-held SD-JWT, revoked from its text.
    sd_jwt = issue_sd_jwt(
        {"legalName": "Gulou Bakery Co."}, alice, issuer=did, vct=TYPE,
        disclosable=[("legalName",)], holder_key=None, kid=f"{did}#key-1",
        status=sd_jwt_status(rev, 6),
    )  # fmt: skip
    (tmp_path / "licence.sd-jwt").write_text(sd_jwt)
    assert verdict(node, sd_jwt) == "valid"
    # Published as the token only, cached for a minute: what SD-JWT verifiers read.
    ok(node, "vc", "revoke", str(tmp_path / "licence.sd-jwt"), "--key", "alice",
       "--form", "token", "--ttl", "60")  # fmt: skip
    assert verdict(node, sd_jwt) == "credential_revoked"
    r = httpx.get(f"{node.url}/1.0/identifiers/{rev}", timeout=30,
                  headers={"Accept": "application/statuslist+jwt"})  # fmt: skip
    claims = json.loads(base64.urlsafe_b64decode(r.text.split(".")[1] + "=="))
    assert claims["ttl"] == 60
    shown = json.loads(ok(node, "vc", "status", "show", rev, "--json"))
    assert (shown["token_current"], shown["published_current"]) == (True, False)
    code, _, err = run(node, "vc", "status", "publish", rev, "--key", "alice", "--form", "pdf")
    assert code == 1 and "error [bad_arguments]" in err and "'pdf'" in err
    ok(node, "vc", "status", "publish", rev, "--key", "alice", "--form", "credential")
    assert bit(node, rev, 6)

    # SD-JWTs issued from the command line: two citizens' licences, all or nothing, each
    # bound to its holder's did:key and given its own entry of the revocation list.
    holders = [Signer.generate(ED25519) for _ in range(2)]
    subjects = tmp_path / "citizens.jsonl"
    subjects.write_text(
        "\n".join(
            json.dumps({"id": did_key(h.public_key), "legalName": f"Shop {i}", "district": "Gulou"})
            for i, h in enumerate(holders)
        )
    )
    counter = tmp_path / "licences.counter"
    issue = ("vc", "issue", str(subjects), "--format", "sd-jwt", "--template",
             "business-licence", "--disclose", "legalName", "--key", "alice", "--did", did,
             "--status-list", rev, "--counter", str(counter))  # fmt: skip
    ok(node, *issue, "-o", str(tmp_path / "citizens.json"))
    tokens = json.loads((tmp_path / "citizens.json").read_text())
    assert len(tokens) == 2 and all(verdict(node, t) == "valid" for t in tokens)
    entries = [status_entries(t)[0] for t in tokens]
    assert {e[0] for e in entries} == {rev} and entries[0][1] != entries[1][1]
    shown = present_sd_jwt(tokens[1], [("legalName",)], holder=holders[1], nonce="n-1",
                           aud="https://bank.example", iat=int(time.time()))  # fmt: skip
    r = httpx.post(f"{node.url}/presentations/verify", timeout=30, json={
        "verifiablePresentation": shown,
        "options": {"challenge": "n-1", "domain": "https://bank.example"}})  # fmt: skip
    assert r.status_code == 200 and "keyBinding" in r.json()["checks"], r.text
    (tmp_path / "one.sd-jwt").write_text(tokens[1])
    ok(node, "vc", "revoke", str(tmp_path / "one.sd-jwt"), "--key", "alice")
    assert [verdict(node, t) for t in tokens] == ["valid", "credential_revoked"]
    subjects.write_text(json.dumps({"id": did, "legalName": "Not a citizen's key"}))
    code, _, err = run(node, *issue, "-o", str(tmp_path / "none.json"))
    assert code == 1 and "is the holder's did:key" in err and not (tmp_path / "none.json").exists()

    # Refusals, in words.
    code, _, err = run(node, "vc", "revoke", str(path), "--key", "alice")
    assert code == 1 and "error [bad_arguments]" in err and "already set" in err
    code, _, err = run(node, "vc", "suspend", str(path), "--key", "bob")
    assert code == 1 and "error [not_controller]" in err
    plain = {k: v for k, v in licence.items() if k != "credentialStatus"}
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    code, _, err = run(node, "vc", "revoke", str(tmp_path / "plain.json"), "--key", "alice")
    assert code == 1 and "names no revocation status entry" in err
    code, _, err = run(node, "vc", "status", "show", f"{did}/status/none")
    assert code == 1 and "error [status_list_not_found]" in err
