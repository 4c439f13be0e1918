"""The node-key proof of the p2p handshake (issue 15.3): the certificate extension that names a
node's key, the binding a proof signs, and every way a proof is refused."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.errors import ConfigError, InvalidInput, PeerRefused
from citychain.p2p.certs import (
    NODE_KEY_OID,
    NodeCertInfo,
    NodeKey,
    generate_org_ca,
    issue_node_cert,
    read_node_cert,
)
from citychain.p2p.frames import (
    Hello,
    NodeKeyProof,
    control_frame,
    decode_control,
)
from citychain.p2p.nodekey import PROOF_TAG, Binding, check_proof, check_signer, prove

CHAIN = "city-test"
GENESIS = bytes(range(32))
WATER = generate_org_ca("water", "Water")
A_KEY = Signer.generate(ED25519)
OTHER_KEY = Signer.generate(ED25519)


def key_of(signer: Signer) -> NodeKey:
    return NodeKey(signer.suite.name, signer.public_key)


A_PEM = issue_node_cert(*WATER, "a", CHAIN, "water", node_key=key_of(A_KEY))[0]
A = read_node_cert(A_PEM)  # the node that proves
B = read_node_cert(issue_node_cert(*WATER, "b", CHAIN, "water")[0])  # names no key
FP_A, FP_B = bytes.fromhex(A.fingerprint), bytes.fromhex(B.fingerprint)
NONCE_A, NONCE_B = bytes([1]) * 32, bytes([2]) * 32
#: ``a`` dialled ``b``.
BINDING = Binding(CHAIN, GENESIS, FP_A, FP_B, NONCE_A, NONCE_B)


def signed(binding: Binding = BINDING, role: str = "dialler", by: Signer = A_KEY) -> bytes:
    return by.sign(binding.message(role))  # type: ignore[arg-type]


# -- the certificate extension --------------------------------------------------------------


def test_a_certificate_names_the_node_key_in_a_non_critical_extension() -> None:
    ext = x509.load_pem_x509_certificate(A_PEM).extensions.get_extension_for_oid(NODE_KEY_OID)
    assert not ext.critical  # other TLS stacks must not refuse the certificate for it
    assert A.node_key == key_of(A_KEY) and B.node_key is None
    assert str(A.node_key) == f"ed25519:{A_KEY.public_key.hex()[:16]}…"
    # DER: SEQUENCE { UTF8String "ed25519", OCTET STRING key }
    assert ext.value.value == b"\x30\x2b\x0c\x07ed25519\x04\x20" + A_KEY.public_key  # type: ignore[attr-defined]


@given(st.sampled_from([ED25519, SM2_SM3]), st.integers(0, 2**32))
@settings(max_examples=20, deadline=None)
def test_node_key_extension_round_trips(suite: object, seed: int) -> None:
    signer = Signer.generate(suite)  # type: ignore[arg-type]
    key = key_of(signer)
    assert NodeKey.decode(key.encode()) == key


@given(st.binary(max_size=120))
@settings(max_examples=300, deadline=None)
def test_any_bytes_decode_to_a_node_key_or_invalid_input(data: bytes) -> None:
    try:
        key = NodeKey.decode(data)
    except InvalidInput:
        return
    assert key.encode() == data  # only the one canonical form is accepted


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_a_damaged_extension_is_refused(data: st.DataObject) -> None:
    good = bytearray(key_of(A_KEY).encode())
    i = data.draw(st.integers(0, 10), label="byte")  # the DER header and suite name
    good[i] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(InvalidInput):
        NodeKey.decode(bytes(good))
    with pytest.raises(InvalidInput):
        NodeKey.decode(key_of(A_KEY).encode() + data.draw(st.binary(min_size=1, max_size=4)))


def test_wrong_suites_and_keys_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown crypto suite 'rsa'"):
        NodeKey.decode(NodeKey("rsa", bytes(32)).encode())
    with pytest.raises(InvalidInput):
        NodeKey.decode(NodeKey("ed25519", bytes(31)).encode())
    with pytest.raises(InvalidInput):  # issuing refuses a key it could not read back
        issue_node_cert(*WATER, "a", CHAIN, "water", node_key=NodeKey("ed25519", b"x"))


def test_a_certificate_with_a_malformed_node_key_is_not_a_node_certificate() -> None:
    pem = issue_node_cert(*WATER, "a", CHAIN, "water")[0]
    good = x509.load_pem_x509_certificate(pem)
    ca_key = serialization.load_pem_private_key(WATER[1], password=None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(good.subject)
        .issuer_name(good.issuer)
        .public_key(good.public_key())
        .serial_number(good.serial_number)
        .not_valid_before(good.not_valid_before_utc)
        .not_valid_after(good.not_valid_after_utc)
    )
    for ext in good.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    bad = builder.add_extension(x509.UnrecognizedExtension(NODE_KEY_OID, b"\x30\x00"), False)
    pem = bad.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="malformed node key extension"):
        read_node_cert(pem)


# -- the control messages ----------------------------------------------------------------------


@given(
    st.binary(max_size=96),
    st.builds(
        Hello,
        st.integers(0, 2**16),
        st.text(max_size=64),
        st.binary(max_size=32),
        st.text(max_size=64),
        st.text(max_size=64),
        st.binary(max_size=32),
    ),
)
@settings(max_examples=100, deadline=None)
def test_hello_and_proof_round_trip(signature: bytes, hello: Hello) -> None:
    for message in (NodeKeyProof(signature), hello):
        frame = control_frame(message)
        assert decode_control(frame[5:]) == message


def test_a_malformed_proof_is_a_protocol_refusal() -> None:
    for bad in (["proof"], ["proof", "text"], ["proof", b"", b""]):
        with pytest.raises(PeerRefused) as exc:
            decode_control(codec.encode(bad))
        assert exc.value.reason_code == "protocol"


# -- the binding and the proof ------------------------------------------------------------


def test_the_binding_is_tagged_and_names_everything() -> None:
    message = BINDING.message("dialler")
    assert codec.decode(message) == [
        PROOF_TAG,
        CHAIN,
        GENESIS,
        FP_A,
        FP_B,
        NONCE_A,
        NONCE_B,
        "dialler",
    ]
    der = x509.load_pem_x509_certificate(A_PEM).public_bytes(serialization.Encoding.DER)
    assert hashlib.sha256(der).digest() == FP_A


def test_a_good_proof_passes() -> None:
    check_proof(A, BINDING, "dialler", signed())
    check_proof(B, BINDING, "acceptor", b"")  # no key named: nothing to prove


def refused(peer: NodeCertInfo, binding: Binding, role: str, signature: bytes) -> PeerRefused:
    with pytest.raises(PeerRefused) as exc:
        check_proof(peer, binding, role, signature)  # type: ignore[arg-type]
    return exc.value


def test_a_proof_by_another_key_is_refused_in_words() -> None:
    exc = refused(A, BINDING, "dialler", signed(by=OTHER_KEY))
    assert exc.reason_code == "node_key" and exc.words == "node key not proven"
    assert exc.code == "unauthorized"
    assert exc.message.startswith(
        f"the proof of node key ed25519:{A_KEY.public_key.hex()[:16]}… from a does not verify "
        "for this connection: it was not signed by the key its certificate names"
    )
    assert exc.log_line("a at 127.0.0.1:1").startswith(
        "refused peer a at 127.0.0.1:1: node key not proven — the proof of node key"
    )
    exc.by_peer = True  # what the refused side logs on reading the Refuse frame
    assert exc.log_line("b at 127.0.0.1:2").startswith(
        "peer b at 127.0.0.1:2 refused our node key proof: node key not proven — "
    )


def test_no_proof_is_refused_in_words() -> None:
    exc = refused(A, BINDING, "dialler", b"")
    assert exc.reason_code == "node_key"
    assert "names node key ed25519:" in exc.message
    assert "but a sent no proof that it holds it" in exc.message


@pytest.mark.parametrize(
    "change",
    [
        {"dialler_nonce": bytes(32)},  # another dialler nonce
        {"acceptor_nonce": bytes(32)},  # the verifier's fresh nonce: a replayed proof
        {"dialler_cert": FP_B, "acceptor_cert": FP_A},  # the certificates swapped
        {"acceptor_cert": hashlib.sha256(b"another node").digest()},  # relayed to another
        {"chain_id": "other-chain"},
        {"genesis_hash": bytes(32)},
    ],
    ids=["dialler-nonce", "replay", "swapped-certs", "relay", "chain", "genesis"],
)
def test_a_proof_for_another_connection_is_refused(change: dict[str, object]) -> None:
    exc = refused(A, replace(BINDING, **change), "dialler", signed())  # type: ignore[arg-type]
    assert exc.reason_code == "node_key"
    assert "or it was made for another connection" in exc.message


def test_a_proof_made_as_dialler_does_not_pass_as_acceptor() -> None:
    assert refused(A, BINDING, "acceptor", signed(role="dialler")).reason_code == "node_key"


@given(st.integers(0, 63), st.integers(0, 7))
@settings(max_examples=64, deadline=None)
def test_a_flipped_bit_in_the_signature_is_refused(byte: int, bit: int) -> None:
    signature = bytearray(signed())
    signature[byte] ^= 1 << bit
    assert refused(A, BINDING, "dialler", bytes(signature)).reason_code == "node_key"


def test_a_proof_without_a_named_key_is_a_protocol_error() -> None:
    exc = refused(B, BINDING, "acceptor", b"\x01" * 64)
    assert exc.reason_code == "protocol"
    assert exc.message == "b sent a node key proof but its certificate names no node key"


def test_prove_signs_only_when_the_certificate_names_a_key() -> None:
    import asyncio

    assert asyncio.run(prove(A_KEY, None, BINDING, "dialler")) == b""
    assert asyncio.run(prove(None, A.node_key, BINDING, "dialler")) == b""
    proof = asyncio.run(prove(A_KEY, A.node_key, BINDING, "dialler"))
    check_proof(A, BINDING, "dialler", proof)


def test_a_node_must_hold_the_key_its_certificate_names() -> None:
    check_signer(None, None, "c.pem")
    check_signer(None, A_KEY, "c.pem")
    check_signer(A.node_key, A_KEY, "c.pem")
    with pytest.raises(ConfigError) as none:
        check_signer(A.node_key, None, "c.pem")
    assert none.value.message.startswith(
        f"node certificate c.pem names node key {A.node_key} but this node has no node signer"
    )
    with pytest.raises(ConfigError) as other:
        check_signer(A.node_key, OTHER_KEY, "c.pem")
    assert f"but this node has the key {key_of(OTHER_KEY)}" in other.value.message
