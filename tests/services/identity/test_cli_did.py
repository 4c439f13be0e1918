"""``citychain did ...`` against a real node: create with the key's own document, resolve
proven and unproven, history, rotate a key, refusals in words, deactivate."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
from nodeproc import NodeProcess, cli, running_demo  # type: ignore[import-not-found]

from citychain.services.identity.shapes import did_key, multikey_encode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with running_demo(tmp_path_factory.mktemp("did-cli") / "node") as n:
        yield n


def run(node: NodeProcess, *args: str) -> tuple[int, str, str]:
    env = {"CITYCHAIN_HOME": str(node.home), "CITYCHAIN_PASSPHRASE": node.passphrase}
    r = cli(*args, "--node", node.url, env=env) if args[1] != "key" else cli(*args, env=env)
    return r.returncode, r.stdout, r.stderr


def test_create_resolve_rotate_and_deactivate(node: NodeProcess, tmp_path: Path) -> None:
    code, out, err = run(node, "did", "create", "--key", "alice", "--json")
    assert code == 0, err
    did = json.loads(out)["did"]
    assert did.startswith("did:citychain:")

    code, out, err = run(node, "did", "resolve", did, "--json")
    assert code == 0, err
    proven = json.loads(out)
    assert proven["proven"] is True
    alice = node.signer("alice")
    vm = proven["didDocument"]["verificationMethod"][0]
    assert vm["publicKeyMultibase"] == multikey_encode(alice.public_key)
    assert proven["didDocumentMetadata"]["versionId"] == "1"

    code, out, _ = run(node, "did", "resolve", did, "--no-verify", "--json")
    assert code == 0 and json.loads(out)["didDocument"] == proven["didDocument"]

    # bob may not change alice's DID: refused in words, nothing committed
    doc = tmp_path / "doc.json"
    bob = node.signer("bob")
    doc.write_text(
        json.dumps(
            {
                "verificationMethod": [
                    {
                        "id": "#key-2",
                        "type": "Multikey",
                        "publicKeyMultibase": multikey_encode(bob.public_key),
                    }
                ],
                "assertionMethod": ["#key-2"],
                "capabilityInvocation": ["#key-2"],
            }
        )
    )
    code, _, err = run(node, "did", "update", did, "--key", "bob", "--document", str(doc))
    assert code == 1 and "error [not_controller]" in err and "Traceback" not in err

    # alice hands the DID to bob's key (a rotation), then alice's key is refused
    code, out, err = run(node, "did", "update", did, "--key", "alice", "--document", str(doc))
    assert code == 0, err
    code, _, err = run(node, "did", "deactivate", did, "--key", "alice")
    assert code == 1 and "error [key_rotated]" in err

    code, out, err = run(node, "did", "resolve", did, "--version-id", "1", "--json")
    assert code == 0 and json.loads(out)["didDocumentMetadata"]["nextVersionId"] == "2"

    code, _, err = run(node, "did", "deactivate", did, "--key", "bob")
    assert code == 0, err
    code, out, _ = run(node, "did", "resolve", did, "--json")
    assert json.loads(out)["didDocumentMetadata"]["deactivated"] is True

    code, out, _ = run(node, "did", "history", did, "--json")
    ops = [v["operation"] for v in json.loads(out)["versions"]]
    assert ops == ["create", "update", "deactivate"]


def test_unknown_and_malformed_dids_are_refused_in_words(node: NodeProcess) -> None:
    code, _, err = run(node, "did", "resolve", "did:citychain:11111111111111111")
    assert code == 1 and "error [" in err and "Traceback" not in err
    code, _, err = run(node, "did", "resolve", "not-a-did")
    assert code == 1 and "error [bad_arguments]" in err


def test_the_did_key_of_a_key(node: NodeProcess) -> None:
    code, out, err = run(node, "did", "key", "--key", "alice")
    assert code == 0, err
    assert out.strip() == did_key(node.signer("alice").public_key)
