"""`citychain status | tx | query` against the API of the fake node on a local port."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cli_helpers import PASSPHRASE, run
from fake_node import CHAIN_ID, FakeNode, balance_key, seeded_signer

from citychain.crypto import Signer
from citychain.types import DuplicateVoteEvidence, Vote, VoteType

ENV = {"CITYCHAIN_PASSPHRASE": PASSPHRASE}


def tx(*args: str) -> Any:
    return run("tx", *args, "--key", "alice", env=ENV)


def write_genesis(path: Path, signers: list[Signer]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "chain_id": CHAIN_ID,
                "genesis_time": 0,
                "crypto_suite": "ed25519",
                "validators": [
                    {"name": f"v{i}", "public_key": s.public_key.hex(), "power": 10}
                    for i, s in enumerate(signers)
                ],
            }
        )
    )
    return path


def test_status(served: str, node: FakeNode) -> None:
    r = run("status")
    assert r.exit_code == 0, r.output
    assert CHAIN_ID in r.stdout and "height" in r.stdout and "ok" in r.stdout
    doc = json.loads(run("status", "--json").stdout)
    assert doc["chain_id"] == CHAIN_ID and doc["height"] == 0 and doc["healthy"] is True
    assert doc["validators_hash"] == {"hex": node.validator_set.hash.hex()}


def test_transfer_waits_and_shows_the_receipt(
    served: str, alice_key: Path, node: FakeNode, bob: Signer
) -> None:
    r = tx("transfer", "--to", bob.address.hex(), "--amount", "25")
    assert r.exit_code == 0, r.output
    assert "ok in block 1" in r.stdout
    assert "token.transfer" in r.stdout and "amount=25" in r.stdout
    assert node.latest_height() == 1


def test_transfer_json_and_no_wait(served: str, alice_key: Path, bob: Signer) -> None:
    r = tx("transfer", "--to", "0x" + bob.address.hex(), "--amount", "1", "--json")
    doc = json.loads(r.stdout)
    assert doc["status"] == "committed" and doc["height"] == 1 and doc["index"] == 0
    assert doc["receipt"]["code"] == "ok"
    r = tx("transfer", "--to", bob.address.hex(), "--amount", "1", "--no-wait", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "pending"


def test_a_failed_transaction_exits_1_with_its_code(
    served: str, alice_key: Path, bob: Signer
) -> None:
    r = tx("transfer", "--to", bob.address.hex(), "--amount", "5000")
    assert r.exit_code == 1
    assert "failed [insufficient_funds]" in r.stdout
    assert r.stderr.startswith("error [insufficient_funds]: ")
    assert "committed in block 1 but failed" in r.stderr


def test_mint_and_send_with_json_args(served: str, alice_key: Path, bob: Signer) -> None:
    assert tx("mint", "--to", bob.address.hex(), "--amount", "7").exit_code == 0
    args = json.dumps({"to": {"hex": bob.address.hex()}, "amount": 3})
    r = tx("send", "token", "transfer", "--args", args, "--json")
    assert r.exit_code == 0, r.output
    events = json.loads(r.stdout)["receipt"]["events"]
    assert events[0]["attributes"]["to"] == {"hex": bob.address.hex()}
    doc = json.loads(run("query", "balance", bob.address.hex(), "--json").stdout)
    assert doc["balance"] == 10 and doc["verified"] is True


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["transfer", "--to", "zz", "--amount", "1"], "address must be hex digits"),
        (["transfer", "--to", "abcd", "--amount", "1"], "address must be 20 bytes"),
        (["send", "token", "transfer", "--args", "{oops"], "--args is not valid JSON"),
        (["send", "token", "transfer", "--args", "[1]"], "--args must be a JSON object"),
        (["send", "token", "transfer", "--args", '{"a": 1.5}'], "floats"),
    ],
)
def test_bad_tx_arguments(served: str, alice_key: Path, args: list[str], fragment: str) -> None:
    r = tx(*args)
    assert r.exit_code == 1
    assert r.stderr.startswith("error [bad_arguments]: ") and fragment in r.stderr


def test_unknown_key_and_wrong_passphrase(served: str, alice_key: Path, bob: Signer) -> None:
    r = run("tx", "transfer", "--to", bob.address.hex(), "--amount", "1", "--key", "zed", env=ENV)
    assert r.exit_code == 1 and r.stderr.startswith("error [not_found]: no key named 'zed'")
    r = run(
        "tx",
        "transfer",
        "--to",
        bob.address.hex(),
        "--amount",
        "1",
        "--key",
        "alice",
        env={"CITYCHAIN_PASSPHRASE": "wrong"},
    )
    assert r.exit_code == 1 and r.stderr.startswith("error [wrong_passphrase]")


def test_query_balance_is_proven(served: str, alice_key: Path, alice: Signer, bob: Signer) -> None:
    tx("transfer", "--to", bob.address.hex(), "--amount", "25")
    r = run("query", "balance", bob.address.hex())
    assert r.exit_code == 0, r.output
    assert f"balance of {bob.address.hex()}: 25 at height 1" in r.stdout
    assert "proof verified against header 1 signed by 3/3 validators (power 30/30)" in r.stdout
    assert "trust on first use" in r.stdout
    r = run("query", "balance", bob.address.hex(), "--no-verify")
    assert "25" in r.stdout and "not verified" in r.stdout
    r = run("query", "balance", seeded_signer(999).address.hex(), "--json")
    doc = json.loads(r.stdout)
    assert doc["balance"] == 0 and doc["exists"] is False and doc["verified"] is True


def test_a_genesis_file_is_the_trust_anchor(
    served: str, alice_key: Path, node: FakeNode, bob: Signer, isolated_env: Path, tmp_path: Path
) -> None:
    tx("transfer", "--to", bob.address.hex(), "--amount", "25")
    # <home>/config/genesis.json (as `citychain init` writes it) is used when present.
    write_genesis(isolated_env / "config" / "genesis.json", node.validator_keys)
    r = run("query", "balance", bob.address.hex())
    assert r.exit_code == 0, r.output
    assert "validator set from genesis" in r.stdout
    # A genesis naming other validators: the node's answers are refused.
    other = write_genesis(tmp_path / "other.json", [seeded_signer(90), seeded_signer(91)])
    r = run("query", "balance", bob.address.hex(), "--genesis", str(other))
    assert r.exit_code == 1
    assert r.stderr.startswith("error [bad_proof]: ") and "does not trust" in r.stderr


def test_a_forged_commit_is_reported(
    served: str, alice_key: Path, node: FakeNode, bob: Signer
) -> None:
    node.commit_signers = node.validator_keys[:2]
    tx("transfer", "--to", bob.address.hex(), "--amount", "25")
    r = run("query", "balance", bob.address.hex())
    assert r.exit_code == 1
    assert "error [bad_proof]: header 1 is not final: commit has 20 of 30 power" in r.stderr


def test_query_state(served: str, alice_key: Path, alice: Signer, bob: Signer) -> None:
    tx("transfer", "--to", bob.address.hex(), "--amount", "25")
    key = balance_key(alice.address).hex()
    r = run("query", "state", key)
    assert r.exit_code == 0, r.output
    assert cbor2.dumps(975).hex() in r.stdout and "= 975" in r.stdout
    assert "proof verified against header 1" in r.stdout
    doc = json.loads(run("query", "state", key, "--height", "1", "--json").stdout)
    assert doc["decoded"] == 975 and doc["height"] == 1
    r = run("query", "state", b"nothing here".hex())
    assert "absent" in r.stdout and "proof verified" in r.stdout
    r = run("query", "state", key, "--height", "9")
    assert r.exit_code == 1 and r.stderr.startswith("error [height_not_committed]")
    r = run("query", "state", "xyz")
    assert r.exit_code == 1 and r.stderr.startswith("error [bad_arguments]: state key")


def test_query_tx_block_contract_account(
    served: str, alice_key: Path, alice: Signer, bob: Signer
) -> None:
    doc = json.loads(tx("transfer", "--to", bob.address.hex(), "--amount", "2", "--json").stdout)
    h = doc["hash"]["hex"]
    r = run("query", "tx", h)
    assert r.exit_code == 0 and "committed" in r.stdout and "token.transfer" in r.stdout
    assert json.loads(run("query", "tx", h, "--json").stdout)["receipt"]["code"] == "ok"
    r = run("query", "tx", "ab" * 32)
    assert r.exit_code == 1 and r.stderr.startswith("error [not_found]")
    r = run("query", "block")
    assert r.exit_code == 0 and h in r.stdout
    assert json.loads(run("query", "block", "1", "--json").stdout)["height"] == 1
    r = run("query", "block", "5")
    assert r.exit_code == 1 and r.stderr.startswith("error [height_not_committed]")
    args = json.dumps({"owner": {"hex": bob.address.hex()}})
    assert run("query", "contract", "token", "balance", "--args", args).stdout.strip() == "2"
    r = run("query", "contract", "nope", "balance")
    assert r.exit_code == 1 and r.stderr.startswith("error [unknown_contract]")
    doc = json.loads(run("query", "account", alice.address.hex(), "--json").stdout)
    assert (doc["nonce"], doc["pending_nonce"]) == (1, 1)


def test_a_private_call_is_shown_whole_only_to_a_signed_read_that_may_see_it(
    served: str, alice_key: Path, node: FakeNode, bob: Signer
) -> None:
    """The fake node plays token transfers as a private call (a contract's private_methods):
    the sender's own ``tx`` command still shows its receipt, ``query`` shows the call only by
    contract and method, and whole with ``--key`` of its sender."""
    node.private_calls.add(("token", "transfer"))
    r = tx("transfer", "--to", bob.address.hex(), "--amount", "3", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["receipt"]["code"] == "ok"
    h = doc["hash"]["hex"]
    r = run("query", "tx", h)
    assert r.exit_code == 0 and "token.transfer" in r.stdout and "withheld" in r.stdout
    assert bob.address.hex() not in r.stdout
    anon = json.loads(run("query", "tx", h, "--json").stdout)
    assert anon["tx"]["withheld"] is True and anon["receipt"] is None
    r = run("query", "block", "1")
    assert r.exit_code == 0 and "withheld" in r.stdout and h in r.stdout
    signed = run("query", "tx", h, "--json", "--key", "alice", env=ENV)
    assert signed.exit_code == 0, signed.output
    assert json.loads(signed.stdout)["tx"]["args"]["amount"] == 3
    whole = json.loads(run("query", "block", "1", "--json", "--key", "alice", env=ENV).stdout)
    assert whole["txs"][0]["args"]["to"] == {"hex": bob.address.hex()}


def test_no_node_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYCHAIN_NODE", "http://127.0.0.1:9")
    for args in (["status"], ["query", "block"], ["query", "balance", "00" * 20]):
        r = run(*args)
        assert r.exit_code == 1
        assert r.stderr.startswith("error [unavailable]: cannot reach node at http://127.0.0.1:9")


def test_node_flag_beats_the_environment(served: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYCHAIN_NODE", "http://127.0.0.1:9")
    assert run("status", "--node", served).exit_code == 0


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("citychain ")
    r = run("--help")
    for group in ("keys", "tx", "query", "status", "init", "start", "bench"):
        assert group in r.stdout


def test_consensus_shows_what_the_node_waits_for_and_who_voted(served: str) -> None:
    r = run("consensus")
    assert r.exit_code == 0, r.output
    assert "prevotes: 10 of 40 power, need 27" in r.stdout
    assert "v0" in r.stdout and "absent: v2" in r.stdout and "offline: v2" in r.stdout
    doc = json.loads(run("consensus", "--json").stdout)
    assert doc["step"] == "prevote" and doc["details"]["quorum_power"] == 27
    assert doc["peers"][0]["name"] == "fake1"


def test_evidence_lists_double_signing(served: str, node: FakeNode) -> None:
    r = run("evidence")
    assert r.exit_code == 0 and "no evidence" in r.stdout
    v = node.validator_keys[1]
    votes = []
    for block in (b"\x01" * 32, b""):
        unsigned = Vote(VoteType.PRECOMMIT, 3, 0, block, v.public_key, b"")
        votes.append(
            Vote(
                VoteType.PRECOMMIT, 3, 0, block, v.public_key, v.sign(unsigned.sign_bytes(CHAIN_ID))
            )
        )
    ev = DuplicateVoteEvidence.of(CHAIN_ID, votes[0], votes[1])
    node.pending_evidence_list.append(ev)
    r = run("evidence")
    assert r.exit_code == 0, r.output
    assert "pending" in r.stdout and v.public_key.hex()[:16] in r.stdout and "precommit" in r.stdout
    doc = json.loads(run("evidence", "--json").stdout)
    assert doc["pending"][0]["hash"] == ev.hash.hex()


def test_query_events_from_a_height_as_lines_and_json(
    served: str, alice_key: Path, alice: Signer, bob: Signer
) -> None:
    """An operator reads what the chain did from a block on: the past events read back, one
    a line (or a JSON object a line), stopping after --count; a bad height is refused with
    its code."""
    hashes = [
        json.loads(tx("transfer", "--to", bob.address.hex(), "--amount", a, "--json").stdout)[
            "hash"
        ]["hex"]
        for a in ("2", "3")
    ]
    first = json.loads(run("query", "tx", hashes[0], "--json").stdout)["height"]
    r = run("query", "events", "--contract", "token", "--from-height", str(first), "--count", "2")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all("token.transfer" in x for x in lines)
    assert lines[0].startswith(f"block {first} tx 0 {hashes[0][:16]}") and "amount=2" in lines[0]
    r = run(
        "query", "events", "--type", "transfer", "--from-height", str(first), "--count", "2",
        "--json",
    )  # fmt: skip
    got = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [g["tx_hash"] for g in got] == hashes
    assert [g["event"]["attributes"]["amount"] for g in got] == [2, 3]
    r = run("query", "events", "--from-height", "99")
    assert r.exit_code == 1 and r.stderr.startswith("error [height_not_committed]")
    assert "from_height 99" in r.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_query_events_into_a_reader_that_stops_ends_quietly(
    served: str, alice_key: Path, bob: Signer, as_json: bool
) -> None:
    """`citychain query events | head -1`: when the reader goes, the command stops with
    status 1 and says nothing (no error, no traceback), lines or JSON lines alike."""
    tx("transfer", "--to", bob.address.hex(), "--amount", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "citychain.cli.main", "query", "events", "--from-height", "1"]
        + (["--json"] if as_json else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"CITYCHAIN_NODE": served, "PATH": "/usr/bin:/bin", "HOME": str(alice_key.parent)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert "transfer" in proc.stdout.readline().decode()
        proc.stdout.close()  # the reader goes, as `head -1` does after its line
        for amount in ("2", "3"):  # more events: the command writes into the closed pipe
            tx("transfer", "--to", bob.address.hex(), "--amount", amount)
        rc = proc.wait(timeout=60)
        err = proc.stderr.read()
        assert (rc, err) == (1, b"")
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def test_query_events_stopped_with_ctrl_c_says_where_to_go_on(
    served: str, node: FakeNode, alice_key: Path, bob: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator following a rare event (mints) stops with Ctrl-C: stderr names the height
    to go on from, past the blocks that had no mint, and nothing else is said."""
    import signal
    import time

    from citychain.api.routes import events as events_route

    monkeypatch.setattr(events_route, "PROGRESS_EVERY", 0.05)
    streams = len(node.streams)
    # Ctrl-C as a terminal sends it: a suite run in the background (CI) starts its processes
    # with SIGINT ignored, which Python then leaves ignored, so the child restores it first.
    main = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['citychain', 'query', 'events', '--type', 'mint']; "
        "runpy.run_module('citychain.cli.main', run_name='__main__')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", main],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"CITYCHAIN_NODE": served, "PATH": "/usr/bin:/bin", "HOME": str(alice_key.parent)},
    )
    try:
        deadline = time.monotonic() + 30
        while len(node.streams) == streams:  # subscribed
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        sent = json.loads(
            tx("transfer", "--to", bob.address.hex(), "--amount", "1", "--json").stdout
        )
        height = json.loads(run("query", "tx", sent["hash"]["hex"], "--json").stdout)["height"]
        time.sleep(1)  # the node says how far the stream got
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # and close its pipes
    text = err.decode()
    assert f"up to block {height} was printed; go on with --from-height {height + 1}" in text
    assert "Traceback" not in text
