"""``get_state`` accepts only what the node proves: value -> proof -> state root -> header ->
commit -> trusted validators. Each test breaks one link, as a lying node or a man in the
middle would, and expects a ProofError naming it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cbor2
import httpx
import pytest
from sdk_helpers import URL, FakeNode, balance_key, bridge, seeded_signer

from citychain.api import create_app
from citychain.crypto import Signer
from citychain.errors import DecodeError, ErrorCode, ProofError
from citychain.sdk import Client
from citychain.types import Header, Validator, ValidatorSet


def _fund(client: Client, alice: Signer, bob: Signer) -> None:
    client.send(alice, "token", "transfer", {"to": bob.address, "amount": 25})
    client.send(alice, "token", "mint", {"to": alice.address, "amount": 5})


def test_a_value_verifies(client: Client, alice: Signer, bob: Signer) -> None:
    _fund(client, alice, bob)
    got = client.get_state(balance_key(bob.address))
    assert got.verified and got.exists
    assert got.decode() == 25
    assert got.height == 2 and got.header.height == 2
    assert (got.signed_power, got.total_power, got.signers, got.validators) == (30, 30, 3, 3)
    assert client.trusted_validators is not None


def test_an_absence_verifies(client: Client, alice: Signer, bob: Signer) -> None:
    _fund(client, alice, bob)
    got = client.get_state(balance_key(seeded_signer(999).address))
    assert got.verified and not got.exists and got.value is None and got.decode() is None


def test_an_older_height_verifies_against_its_own_header(
    client: Client, alice: Signer, bob: Signer
) -> None:
    _fund(client, alice, bob)
    got = client.get_state(balance_key(alice.address), height=1)
    assert got.height == 1 and got.decode() == 975


def test_without_verify_nothing_is_checked(client: Client, alice: Signer, bob: Signer) -> None:
    _fund(client, alice, bob)
    got = client.get_state(balance_key(bob.address), verify=False)
    assert not got.verified and got.decode() == 25


# -- a node (or a man in the middle) rewriting state answers ------------------------------------


def _lying_client(node: FakeNode, edit: Callable[[dict[str, Any]], None]) -> Client:
    def rewrite(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        if not request.url.path.startswith("/v1/state/") or answer.status_code != 200:
            return answer
        body = answer.json()
        edit(body)
        return httpx.Response(200, json=body)

    return Client(URL, transport=bridge(create_app(node), rewrite))


def _rehash(header: dict[str, Any]) -> None:
    """Keep the header self-consistent, so only the signatures can catch the change."""
    h = Header(
        chain_id=header["chain_id"],
        height=header["height"],
        time=header["time"],
        prev_hash=bytes.fromhex(header["prev_hash"]),
        tx_root=bytes.fromhex(header["tx_root"]),
        results_root=bytes.fromhex(header["results_root"]),
        state_root=bytes.fromhex(header["state_root"]),
        validators_hash=bytes.fromhex(header["validators_hash"]),
        proposer=bytes.fromhex(header["proposer"]),
        version=header["version"],
    )
    header["hash"] = h.hash.hex()


def _tamper_value(body: dict[str, Any]) -> None:
    body["value"] = cbor2.dumps(10**9).hex()


def _claim_absent(body: dict[str, Any]) -> None:
    body["value"] = None


def _tamper_state_root(body: dict[str, Any]) -> None:
    body["header"]["state_root"] = "11" * 32
    _rehash(body["header"])


def _tamper_time(body: dict[str, Any]) -> None:
    body["header"]["time"] += 1
    _rehash(body["header"])


def _drop_signatures(body: dict[str, Any]) -> None:
    body["commit"]["signatures"] = body["commit"]["signatures"][:1]


def _duplicate_signature(body: dict[str, Any]) -> None:
    sigs = body["commit"]["signatures"]
    body["commit"]["signatures"] = [sigs[0], sigs[0], sigs[1]]


def _corrupt_signature(body: dict[str, Any]) -> None:
    sig = body["commit"]["signatures"][0]
    sig["signature"] = "00" * 64


def _other_height(body: dict[str, Any]) -> None:
    body["height"] = 1


def _proof_for_another_key(body: dict[str, Any]) -> None:
    proof = bytearray(bytes.fromhex(body["proof"]))
    i = proof.find(b"c/token/bal/")
    proof[i + len(b"c/token/bal/")] ^= 1
    body["proof"] = proof.hex()


def _garbage_proof(body: dict[str, Any]) -> None:
    body["proof"] = "ff" * 20


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_tamper_value, "does not check against the state root"),
        (_claim_absent, "proof of the absence"),
        (_tamper_state_root, "is not final: commit is for a different block"),
        (_tamper_time, "is not final: commit is for a different block"),
        (_drop_signatures, "is not final: commit has 10 of 30 power; needs more than 2/3"),
        (_duplicate_signature, "signed the commit twice"),
        (_corrupt_signature, "a commit signature does not verify"),
        (_other_height, "asked for height 2, got 1"),
        (_proof_for_another_key, "does not check against the state root"),
        (_garbage_proof, "does not check against the state root"),
    ],
)
def test_tampered_answers_are_refused(
    node: FakeNode,
    alice: Signer,
    bob: Signer,
    edit: Callable[[dict[str, Any]], None],
    fragment: str,
) -> None:
    with Client(URL, transport=bridge(create_app(node))) as honest:
        _fund(honest, alice, bob)
    with _lying_client(node, edit) as c, pytest.raises((ProofError, DecodeError)) as info:
        c.get_state(balance_key(bob.address), height=2)
    assert fragment in info.value.message
    if isinstance(info.value, ProofError):
        assert info.value.code == ErrorCode.BAD_PROOF


# -- commits made by the wrong signers ------------------------------------------------------------


def test_a_commit_by_non_validators_is_refused(
    client: Client, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    node.commit_signers = [seeded_signer(50), seeded_signer(51), seeded_signer(52)]
    _fund(client, alice, bob)
    with pytest.raises(ProofError, match="commit signed by a non-validator"):
        client.get_state(balance_key(bob.address))


def test_two_thirds_exactly_is_not_enough(
    client: Client, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    node.commit_signers = node.validator_keys[:2]  # 20 of 30: not MORE than 2/3
    _fund(client, alice, bob)
    with pytest.raises(ProofError, match="commit has 20 of 30 power"):
        client.get_state(balance_key(bob.address))


def test_a_validator_set_the_client_does_not_trust_is_refused(
    node: FakeNode, alice: Signer, bob: Signer
) -> None:
    # The client was given the real set; the node's blocks are signed by another set that it
    # also reports as its own (a node making up a chain of its own).
    trusted = node.validator_set
    impostors = [seeded_signer(60), seeded_signer(61), seeded_signer(62)]
    node.validator_keys = impostors
    node.commit_signers = impostors
    node.validator_set = ValidatorSet(Validator(s.public_key, 10) for s in impostors)
    with Client(URL, validators=trusted, transport=bridge(create_app(node))) as c:
        _fund(c, alice, bob)
        with pytest.raises(ProofError, match="validator set this client does not trust"):
            c.get_state(balance_key(bob.address))


def test_the_first_validator_set_seen_is_kept(node: FakeNode, alice: Signer, bob: Signer) -> None:
    with Client(URL, transport=bridge(create_app(node))) as c:
        _fund(c, alice, bob)
        c.get_state(balance_key(bob.address))
        first = c.trusted_validators
        impostors = [seeded_signer(70)]
        node.validator_set = ValidatorSet(Validator(s.public_key, 10) for s in impostors)
        node.validator_keys = node.commit_signers = impostors
        c.send(alice, "token", "mint", {"to": alice.address, "amount": 1})
        with pytest.raises(ProofError, match="does not trust"):
            c.get_state(balance_key(bob.address))
        assert c.trusted_validators is first


def test_an_answer_for_another_key_is_refused(node: FakeNode, alice: Signer, bob: Signer) -> None:
    def other_key(body: dict[str, Any]) -> None:
        body["key"] = balance_key(alice.address).hex()

    with Client(URL, transport=bridge(create_app(node))) as honest:
        _fund(honest, alice, bob)
    with _lying_client(node, other_key) as c, pytest.raises(DecodeError, match="asked for key"):
        c.get_state(balance_key(bob.address))


def test_state_errors_keep_their_codes(client: Client, node: FakeNode, alice: Signer) -> None:
    from citychain.errors import NotFound

    with pytest.raises(NotFound) as info:
        client.get_state(balance_key(alice.address))
    assert info.value.code == ErrorCode.HEIGHT_NOT_COMMITTED
    _fund(client, alice, seeded_signer(3))
    node.pruned_below = 2
    with pytest.raises(NotFound) as info:
        client.get_state(balance_key(alice.address), height=1)
    assert info.value.code == ErrorCode.HEIGHT_PRUNED


def test_a_json_answer_missing_fields_is_a_clear_error(node: FakeNode, alice: Signer) -> None:
    with Client(URL, transport=bridge(create_app(node))) as honest:
        honest.send(alice, "token", "mint", {"to": alice.address, "amount": 1})

    def drop_commit(body: dict[str, Any]) -> None:
        del body["commit"]

    with _lying_client(node, drop_commit) as c, pytest.raises(DecodeError) as info:
        c.get_state(balance_key(alice.address))
    assert "unexpected answer from the node: state answer" in info.value.message
    assert json.dumps(info.value.to_dict())  # serialisable for the CLI's --json
