"""`citychain keys ...`: keys are created encrypted, listed, shown, exported and imported;
every mistake is one line ``error [code]: message`` with exit code 1."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from cli_helpers import PASSPHRASE, run

from citychain.crypto import ED25519, Signer
from citychain.crypto.keystore import import_key, load_key, save_plaintext_key

FAST = ["--kdf", "interactive"]


def new_key(name: str, *extra: str) -> dict[str, object]:
    r = run("keys", "new", name, *FAST, "--json", *extra, env={"CITYCHAIN_PASSPHRASE": PASSPHRASE})
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_new_key_is_encrypted_private_and_usable(isolated_env: Path) -> None:
    made = new_key("alice")
    path = isolated_env / "keys" / "alice.json"
    assert made["file"] == str(path) and made["encrypted"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["type"] == "encrypted" and "secret" not in doc
    signer = load_key(path, PASSPHRASE)
    assert made["address"] == signer.address.hex()
    assert made["public_key"] == signer.public_key.hex()


def test_passphrase_prompt_asks_twice(isolated_env: Path) -> None:
    r = run("keys", "new", "carol", *FAST, input="s3cret\ns3cret\n")
    assert r.exit_code == 0, r.output
    load_key(isolated_env / "keys" / "carol.json", "s3cret")
    r = run("keys", "new", "dave", *FAST, input="one\ntwo\none\none\n")
    assert r.exit_code == 0
    assert "do not match" in r.output


def test_passphrase_file(tmp_path: Path, isolated_env: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    r = run("keys", "new", "erin", *FAST, "--passphrase-file", str(pw))
    assert r.exit_code == 0, r.output
    load_key(isolated_env / "keys" / "erin.json", "from-a-file")
    r = run("keys", "new", "frank", *FAST, "--passphrase-file", str(tmp_path / "missing"))
    assert r.exit_code == 1
    assert "error [wrong_passphrase]: cannot read passphrase file" in r.stderr


def test_dir_overrides_home(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    new_key("gus", "--dir", str(other))
    assert (other / "gus.json").is_file()
    r = run("keys", "list", "--dir", str(other), "--json")
    assert [k["name"] for k in json.loads(r.stdout)] == ["gus"]


def test_list_and_show(isolated_env: Path) -> None:
    assert "no keys in" in run("keys", "list").stdout
    a = new_key("alice")
    b = new_key("bob")
    listed = json.loads(run("keys", "list", "--json").stdout)
    assert [(k["name"], k["address"]) for k in listed] == [
        ("alice", a["address"]),
        ("bob", b["address"]),
    ]
    table = run("keys", "list").stdout
    assert "alice" in table and str(a["address"]) in table and "encrypted" in table
    shown = run("keys", "show", "bob")
    assert shown.exit_code == 0 and str(b["address"]) in shown.stdout
    unlocked = run("keys", "show", "bob", "--unlock", env={"CITYCHAIN_PASSPHRASE": PASSPHRASE})
    assert unlocked.exit_code == 0 and "unlocked" in unlocked.stdout


def test_wrong_passphrase_is_one_clear_line(isolated_env: Path) -> None:
    new_key("alice")
    r = run("keys", "show", "alice", "--unlock", env={"CITYCHAIN_PASSPHRASE": "wrong"})
    assert r.exit_code == 1
    assert r.stderr.startswith("error [wrong_passphrase]: ")
    assert r.stdout == ""


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["keys", "show", "nobody"], "not_found", "no key named 'nobody'"),
        (["keys", "new", "../escape"], "bad_arguments", "key name '../escape'"),
        (["keys", "new", "a b"], "bad_arguments", "key name"),
        (["keys", "new", "x.json"], "bad_arguments", "without .json"),
        (["keys", "export", "nobody"], "not_found", "no key named"),
        (["keys", "new", "k", "--kdf", "extreme"], "bad_arguments", "unknown kdf_level"),
    ],
)
def test_mistakes(args: list[str], code: str, fragment: str) -> None:
    r = run(*args, env={"CITYCHAIN_PASSPHRASE": PASSPHRASE})
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error [{code}]: ")
    assert fragment in r.stderr


def test_a_name_is_never_overwritten(isolated_env: Path) -> None:
    first = new_key("alice")
    r = run("keys", "new", "alice", *FAST, env={"CITYCHAIN_PASSPHRASE": PASSPHRASE})
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert json.loads(run("keys", "show", "alice", "--json").stdout)["address"] == first["address"]


def test_export_then_import_gives_the_same_key(isolated_env: Path, tmp_path: Path) -> None:
    made = new_key("alice")
    env = {"CITYCHAIN_PASSPHRASE": PASSPHRASE}
    r = run("keys", "export", "alice", *FAST, env=env)
    assert r.exit_code == 0, r.output
    exported = r.stdout
    assert import_key(exported, PASSPHRASE).address.hex() == made["address"]
    assert "secret" not in json.loads(exported)

    file = tmp_path / "alice.export.json"
    r = run("keys", "export", "alice", *FAST, "--out", str(file), env=env)
    assert r.exit_code == 0 and stat.S_IMODE(file.stat().st_mode) == 0o600
    r = run("keys", "export", "alice", *FAST, "--out", str(file), env=env)
    assert r.exit_code == 1 and "already exists" in r.stderr

    r = run("keys", "import", "alice2", str(file), *FAST, "--json", env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["address"] == made["address"]
    assert (
        load_key(isolated_env / "keys" / "alice2.json", PASSPHRASE).address.hex() == made["address"]
    )


def test_import_refuses_wrong_passphrase_and_junk(tmp_path: Path, isolated_env: Path) -> None:
    new_key("alice")
    exported = run(
        "keys", "export", "alice", *FAST, env={"CITYCHAIN_PASSPHRASE": PASSPHRASE}
    ).stdout
    file = tmp_path / "k.json"
    file.write_text(exported)
    r = run("keys", "import", "copy", str(file), env={"CITYCHAIN_PASSPHRASE": "nope"})
    assert r.exit_code == 1 and r.stderr.startswith("error [wrong_passphrase]")
    assert not (isolated_env / "keys" / "copy.json").exists()
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    r = run("keys", "import", "junk", str(junk), env={"CITYCHAIN_PASSPHRASE": PASSPHRASE})
    assert r.exit_code == 1 and r.stderr.startswith("error [bad_keystore]")
    r = run("keys", "import", "gone", str(tmp_path / "missing.json"))
    assert r.exit_code == 1 and r.stderr.startswith("error [bad_keystore]: cannot read")


def test_plaintext_keys_are_marked_and_warned_about(isolated_env: Path) -> None:
    r = run("keys", "new", "dev", "--insecure-plaintext", "--json")
    assert r.exit_code == 0, r.output
    assert "UNENCRYPTED" in r.stderr
    assert json.loads(r.stdout)["encrypted"] is False
    assert "plaintext" in run("keys", "list").stdout
    # A plaintext key imported is stored encrypted under the passphrase given.
    src = isolated_env / "dev.json"
    signer = Signer.generate(ED25519)
    save_plaintext_key(src, signer)
    r = run("keys", "import", "hardened", str(src), *FAST, env={"CITYCHAIN_PASSPHRASE": PASSPHRASE})
    assert r.exit_code == 0, r.output
    stored = isolated_env / "keys" / "hardened.json"
    assert json.loads(stored.read_text())["type"] == "encrypted"
    assert load_key(stored, PASSPHRASE).address == signer.address


def test_issue_cert_makes_a_member_certificate_the_chain_accepts(
    isolated_env: Path, tmp_path: Path
) -> None:
    from citychain.crypto.member_certs import verify_member_cert
    from citychain.p2p.certs import encrypt_key_pem, generate_org_ca

    made = new_key("carol")
    ca_cert, ca_key = generate_org_ca("org1", "Organisation 1")
    (tmp_path / "ca.pem").write_bytes(ca_cert)
    (tmp_path / "ca_key.pem").write_bytes(encrypt_key_pem(ca_key, PASSPHRASE))
    r = run(
        "keys",
        "issue-cert",
        "carol",
        "--org",
        "org1",
        "--ca-cert",
        str(tmp_path / "ca.pem"),
        "--ca-key",
        str(tmp_path / "ca_key.pem"),
        "--roles",
        "member,auditor",
        env={"CITYCHAIN_PASSPHRASE": PASSPHRASE},
    )
    assert r.exit_code == 0, r.output
    cert = (isolated_env / "keys" / "carol.cert.pem").read_bytes()
    info = verify_member_cert(cert, ca_cert, org_id="org1", at_ms=int(time.time() * 1000))
    assert info.public_key.hex() == made["public_key"]
    assert info.roles == ("auditor", "member") and info.org_id == "org1"
    wrong = run(
        "keys",
        "issue-cert",
        "carol",
        "--org",
        "org2",
        "--ca-cert",
        str(tmp_path / "ca.pem"),
        "--ca-key",
        str(tmp_path / "nowhere.pem"),
    )
    assert wrong.exit_code == 1 and "cannot read" in wrong.output
