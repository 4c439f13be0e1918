"""SM2 X.509 certificates: issued and verified here, and interop with the OpenSSL 3 CLI both ways.

The OpenSSL CLI is the independent implementation: what we issue must pass ``openssl verify
-vfyopt distid:1234567812345678``, and a CA and leaf it made (``-sm3 -sigopt distid:...``) must
pass :func:`verify_sm2_cert`; a leaf it signed under another ID must not.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import pem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain.crypto import ED25519, Signer
from citychain.crypto.member_certs import issue_member_cert
from citychain.crypto.sm2 import DEFAULT_DISTID, SM2_SM3, P
from citychain.crypto.sm2_certs import (
    MAX_CERT_BYTES,
    Sm2Cert,
    _ext,
    _name,
    _sign,
    _tbs,
    is_sm2_cert,
    issue_sm2_ca,
    issue_sm2_member_cert,
    issue_sm2_node_cert,
    parse_sm2_cert,
    sm2_node_uri,
    verify_sm2_cert,
)
from citychain.errors import ConfigError, ErrorCode, InvalidInput
from citychain.p2p.certs import generate_org_ca, node_uri

NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2025, 1, 31, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DISTID = DEFAULT_DISTID.decode()

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


AT = ms(datetime(2025, 1, 15, 12, tzinfo=UTC))
CA_SECRET = SM2_SM3.generate_secret()
CA_PEM = issue_sm2_ca("org1", "Org One", CA_SECRET, not_before=NOT_BEFORE, not_after=NOT_AFTER)
NODE_SECRET = SM2_SM3.generate_secret()
NODE_KEY = SM2_SM3.public_key(NODE_SECRET)
NODE_PEM = issue_sm2_node_cert(
    CA_PEM,
    CA_SECRET,
    NODE_KEY,
    node_name="n1",
    chain_id="city chain/1",
    org_id="org1",
    not_before=NOT_BEFORE,
    not_after=NOT_AFTER,
)
MEMBER_PEM = issue_sm2_member_cert(
    CA_PEM,
    CA_SECRET,
    NODE_KEY,
    name="alice",
    org_id="org1",
    roles=["member", "admin", "member"],
    not_before=NOT_BEFORE,
    not_after=NOT_AFTER,
)


def der(pem_bytes: bytes) -> bytes:
    return bytes(pem.unarmor(pem_bytes)[2])


def expect(code: ErrorCode, call: object, *args: object, **kwargs: object) -> InvalidInput:
    assert callable(call)
    with pytest.raises(InvalidInput) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


def openssl(tmp: Path, *args: str) -> str:
    done = subprocess.run(
        ["openssl", *args], cwd=tmp, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- what we issue --------------------------------------------------------------------------------


def test_issued_certificates_say_what_they_should() -> None:
    ca = verify_sm2_cert(CA_PEM, CA_PEM, at_ms=AT)  # self-signed
    assert (ca.subject_cn, ca.subject_o, ca.is_ca, ca.path_len) == (
        "Org One GM CA",
        "org1",
        True,
        0,
    )
    assert ca.key_usage == ("crl_sign", "key_cert_sign")
    assert ca.public_key == SM2_SM3.public_key(CA_SECRET) and ca.ski is not None
    assert ca.not_before_ms == ms(NOT_BEFORE) and ca.not_after_ms == ms(NOT_AFTER)

    node = verify_sm2_cert(NODE_PEM, CA_PEM, at_ms=AT)
    assert (node.subject_cn, node.subject_o, node.is_ca) == ("n1", "org1", False)
    assert node.uris == (node_uri("city chain/1", "n1"),) == (sm2_node_uri("city chain/1", "n1"),)
    assert node.public_key == NODE_KEY and len(node.signature) == 64
    assert node.key_usage == ("digital_signature",)
    assert node.ext_key_usage == ("client_auth", "server_auth")
    assert node.aki == ca.ski and node.issuer_der_name == ca.subject_der_name

    member = verify_sm2_cert(parse_sm2_cert(der(MEMBER_PEM)), parse_sm2_cert(CA_PEM), at_ms=AT)
    assert member.subject_ous == ("admin", "member") and member.ext_key_usage == ("client_auth",)
    assert member.subject_text == "CN=alice, O=org1, OU=admin, OU=member"
    assert (
        isinstance(member, Sm2Cert) and member.fingerprint == parse_sm2_cert(MEMBER_PEM).fingerprint
    )
    assert 0 < member.serial < 2**159 and is_sm2_cert(MEMBER_PEM) and is_sm2_cert(der(CA_PEM))


def test_validity_bounds_are_inclusive() -> None:
    verify_sm2_cert(NODE_PEM, CA_PEM, at_ms=ms(NOT_BEFORE))
    verify_sm2_cert(NODE_PEM, CA_PEM, at_ms=ms(NOT_AFTER))
    e = expect(ErrorCode.NOT_YET_VALID, verify_sm2_cert, NODE_PEM, CA_PEM, at_ms=ms(NOT_BEFORE) - 1)
    assert "not yet valid" in e.message and "2025-01-01 00:00:00.000 UTC" in e.message
    e = expect(ErrorCode.EXPIRED, verify_sm2_cert, NODE_PEM, CA_PEM, at_ms=ms(NOT_AFTER) + 1)
    assert "expired at 2025-01-31 00:00:00.000 UTC" in e.message


@needs_openssl
def test_openssl_verifies_what_we_issue(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(CA_PEM)
    for name, cert in (("node.pem", NODE_PEM), ("member.pem", MEMBER_PEM)):
        (tmp_path / name).write_bytes(cert)
    now = datetime.now(UTC)
    ca = issue_sm2_ca("org1", "Org One", CA_SECRET, not_before=now - timedelta(days=1))
    current = issue_sm2_member_cert(
        ca, CA_SECRET, NODE_KEY, name="bob", org_id="org1", roles=["member"]
    )
    (tmp_path / "ca_now.pem").write_bytes(ca)
    (tmp_path / "bob.pem").write_bytes(current)
    out = openssl(
        tmp_path, "verify", "-vfyopt", f"distid:{DISTID}", "-CAfile", "ca_now.pem", "bob.pem"
    )
    assert "bob.pem: OK" in out
    # The 2025 certificates: verified at a time inside their window.
    out = openssl(
        tmp_path, "verify", "-attime", str(AT // 1000), "-vfyopt", f"distid:{DISTID}",
        "-CAfile", "ca.pem", "node.pem", "member.pem",
    )  # fmt: skip
    assert "node.pem: OK" in out and "member.pem: OK" in out
    text = openssl(tmp_path, "x509", "-in", "node.pem", "-text", "-noout")
    assert text.count("Signature Algorithm: SM2-with-SM3") == 2
    assert "ASN1 OID: SM2" in text and "URI:citychain://city%20chain%2F1/n1" in text
    assert "CA:FALSE" in text and "Digital Signature" in text
    ca_text = openssl(tmp_path, "x509", "-in", "ca.pem", "-text", "-noout")
    assert "CA:TRUE, pathlen:0" in ca_text and "Certificate Sign, CRL Sign" in ca_text
    # Without the ID, OpenSSL 3.0 checks under an empty one and fails: the ID matters.
    done = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca_now.pem", "bob.pem"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode != 0


@needs_openssl
def test_we_verify_what_openssl_issues(tmp_path: Path) -> None:
    o = lambda *a: openssl(tmp_path, *a)  # noqa: E731
    o("genpkey", "-algorithm", "SM2", "-out", "ca.key")
    o("genpkey", "-algorithm", "SM2", "-out", "leaf.key")
    o(
        "req", "-x509", "-new", "-key", "ca.key", "-sm3", "-sigopt", f"distid:{DISTID}",
        "-subj", "/CN=Other GM CA/O=org2", "-days", "30", "-out", "ca.pem",
    )  # fmt: skip
    o("req", "-new", "-key", "leaf.key", "-subj", "/CN=carol/O=org2/OU=member", "-out", "leaf.csr")
    (tmp_path / "ext.cnf").write_text(
        "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n"
        "subjectAltName=URI:citychain://c/carol\n"
    )
    sign = ("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "10")
    o(*sign, "-sm3", "-sigopt", f"distid:{DISTID}", "-extfile", "ext.cnf", "-out", "leaf.pem")
    o(*sign, "-sm3", "-sigopt", "distid:another-id", "-out", "other_id.pem")
    o(*sign, "-sm3", "-out", "empty_id.pem")  # OpenSSL 3.0 signs under an empty ID
    o("req", "-new", "-key", "leaf.key", "-subj", "/CN=dave/O=org2", "-out", "dave.csr")
    (tmp_path / "crit.cnf").write_text("1.2.3.4=critical,DER:05:00\n")
    o(
        "x509", "-req", "-in", "dave.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "10",
        "-sm3", "-sigopt", f"distid:{DISTID}", "-extfile", "crit.cnf", "-out", "crit.pem",
    )  # fmt: skip
    now = ms(datetime.now(UTC))
    read = lambda name: (tmp_path / name).read_bytes()  # noqa: E731
    ca = verify_sm2_cert(read("ca.pem"), read("ca.pem"), at_ms=now)
    assert ca.is_ca and ca.subject_text == "CN=Other GM CA, O=org2"
    leaf = verify_sm2_cert(read("leaf.pem"), read("ca.pem"), at_ms=now)
    assert (leaf.subject_cn, leaf.subject_o, leaf.subject_ous) == ("carol", "org2", ("member",))
    assert leaf.uris == ("citychain://c/carol",)
    o("pkey", "-in", "leaf.key", "-pubout", "-outform", "DER", "-out", "leaf.pub")
    assert leaf.public_key == read("leaf.pub")[-65:]
    for name in ("other_id.pem", "empty_id.pem"):
        e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, read(name), read("ca.pem"), at_ms=now)
        assert "does not verify" in e.message and DISTID in e.message
    # ... and under the ID it was signed with, it verifies: the ID is what differs.
    verify_sm2_cert(read("other_id.pem"), read("ca.pem"), at_ms=now, distid=b"another-id")
    e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, read("crit.pem"), read("ca.pem"), at_ms=now)
    assert "unknown critical extension 1.2.3.4" in e.message


# -- refusals -------------------------------------------------------------------------------------


def test_another_ca_is_refused() -> None:
    other_secret = SM2_SM3.generate_secret()
    other = issue_sm2_ca("org1", "Org One", other_secret, not_before=NOT_BEFORE)
    # Same subject name, another key: only the signature tells them apart.
    e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, NODE_PEM, other, at_ms=AT)
    assert "does not verify with the key of CA 'CN=Org One GM CA, O=org1'" in e.message
    org2 = issue_sm2_ca("org2", "Org Two", other_secret, not_before=NOT_BEFORE)
    e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, NODE_PEM, org2, at_ms=AT)
    assert "issued by 'CN=Org One GM CA, O=org1', not by this CA" in e.message


def test_an_issuer_that_is_no_ca_is_refused() -> None:
    # NODE_PEM as "CA" of a certificate it signed itself: CA=false.
    forged = issue_sm2_member_cert(
        CA_PEM, CA_SECRET, NODE_KEY, name="n1", org_id="org1", roles=["x"], not_before=NOT_BEFORE
    )
    e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, forged, NODE_PEM, at_ms=AT)
    assert "is not a CA (basicConstraints CA=false)" in e.message
    with pytest.raises(ConfigError, match="not a CA"):
        issue_sm2_member_cert(NODE_PEM, NODE_SECRET, NODE_KEY, name="x", org_id="org1", roles=[])


def test_flipped_signature_and_tbs_bytes_are_refused() -> None:
    cert = parse_sm2_cert(NODE_PEM)
    raw = cert.der
    sig_at = len(raw) - 3  # inside s
    flipped = raw[:sig_at] + bytes([raw[sig_at] ^ 0x01]) + raw[sig_at + 1 :]
    e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, flipped, CA_PEM, at_ms=AT)
    assert "does not verify" in e.message
    cn_at = raw.index(b"n1", raw.index(b"Org One GM CA") + 20)  # the subject CN, inside the TBS
    renamed = raw[:cn_at] + b"n2" + raw[cn_at + 2 :]
    assert parse_sm2_cert(renamed).subject_cn == "n2"
    expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, renamed, CA_PEM, at_ms=AT)


def test_another_id_is_refused() -> None:
    cert = issue_sm2_member_cert(
        CA_PEM, CA_SECRET, NODE_KEY, name="a", org_id="org1", roles=[], not_before=NOT_BEFORE,
        distid=b"ALICE123@YAHOO.COM",
    )  # fmt: skip
    e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, cert, CA_PEM, at_ms=AT)
    assert "under the ID '1234567812345678'" in e.message
    verify_sm2_cert(cert, CA_PEM, at_ms=AT, distid=b"ALICE123@YAHOO.COM")
    expect(ErrorCode.BAD_DISTID, verify_sm2_cert, cert, CA_PEM, at_ms=AT, distid=b"")


def _custom(public_key: bytes, extensions: list[object], *, name: str = "x") -> bytes:
    ca = parse_sm2_cert(CA_PEM)
    from asn1crypto import x509 as ax

    tbs = _tbs(
        serial=7,
        issuer=ax.Name.load(ca.subject_der_name),
        subject=_name(name, "org1"),
        public_key=public_key,
        start=NOT_BEFORE,
        end=NOT_AFTER,
        extensions=extensions,  # type: ignore[arg-type]
    )
    return _sign(tbs, CA_SECRET, DEFAULT_DISTID)


def test_a_point_not_on_the_curve_is_refused() -> None:
    x, y = int.from_bytes(NODE_KEY[1:33], "big"), int.from_bytes(NODE_KEY[33:], "big")
    off = b"\x04" + x.to_bytes(32, "big") + ((y + 1) % P).to_bytes(32, "big")
    e = expect(ErrorCode.POINT_NOT_ON_CURVE, parse_sm2_cert, _custom(off, []))
    assert e.message.startswith("subject key:")
    expect(ErrorCode.POINT_NOT_ON_CURVE, verify_sm2_cert, _custom(off, []), CA_PEM, at_ms=AT)
    with pytest.raises(InvalidInput) as info:
        issue_sm2_node_cert(CA_PEM, CA_SECRET, off, node_name="n", chain_id="c", org_id="org1")
    assert info.value.code == ErrorCode.POINT_NOT_ON_CURVE
    plain = _custom(NODE_KEY, [])
    assert verify_sm2_cert(plain, CA_PEM, at_ms=AT).is_ca is False  # the helper itself is sound


def test_an_unknown_critical_extension_is_refused() -> None:
    odd = _ext("2.25.1234", b"\x05\x00", critical=True)
    e = expect(ErrorCode.UNAUTHORIZED, verify_sm2_cert, _custom(NODE_KEY, [odd]), CA_PEM, at_ms=AT)
    assert "unknown critical extension 2.25.1234" in e.message
    mild = _ext("2.25.1234", b"\x05\x00", critical=False)
    verify_sm2_cert(_custom(NODE_KEY, [mild]), CA_PEM, at_ms=AT)
    twice = [_ext("key_identifier", b"1"), _ext("key_identifier", b"2")]
    e = expect(ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, _custom(NODE_KEY, twice))
    assert "appears twice" in e.message


def test_certificates_of_the_other_suite_are_refused() -> None:
    ecdsa_ca, ecdsa_key = generate_org_ca("org1", "Org One")
    ed = Signer.generate(ED25519)
    ed_cert = issue_member_cert(
        ecdsa_ca, ecdsa_key, ed.public_key, name="e", org_id="org1", roles=[]
    )
    for cert in (ecdsa_ca, ed_cert):
        e = expect(ErrorCode.WRONG_SUITE, parse_sm2_cert, cert)
        assert "not SM2-with-SM3" in e.message and "ecdsa-with-SHA256" in e.message
        expect(ErrorCode.WRONG_SUITE, verify_sm2_cert, cert, CA_PEM, at_ms=AT)
        expect(ErrorCode.WRONG_SUITE, verify_sm2_cert, NODE_PEM, cert, at_ms=AT)
        assert not is_sm2_cert(cert)
    # An SM2-signed certificate for an Ed25519 or P-256 key is refused for its key.
    from asn1crypto import keys as akeys

    ed_spki = _custom(NODE_KEY, [])  # then swap the key info for an Ed25519 one
    cert = parse_sm2_cert(ed_spki)
    from asn1crypto import x509 as ax

    tbs = ax.TbsCertificate.load(cert.tbs).copy()
    tbs["subject_public_key_info"] = akeys.PublicKeyInfo(
        {"algorithm": {"algorithm": "ed25519"}, "public_key": ed.public_key}
    )
    ed_key_cert = _sign(tbs, CA_SECRET, DEFAULT_DISTID)
    e = expect(ErrorCode.WRONG_SUITE, parse_sm2_cert, ed_key_cert)
    assert "the subject key is a key of algorithm ed25519, not SM2" in e.message
    assert is_sm2_cert(ed_key_cert)  # SM2-signed: it takes the SM2 path, and is refused there
    e = expect(ErrorCode.WRONG_SUITE, issue_sm2_member_cert, CA_PEM, CA_SECRET, ed.public_key,
               name="e", org_id="org1", roles=[])  # fmt: skip
    assert "another suite" in e.message


def test_garbage_and_oversized_input_are_refused() -> None:
    expect(ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, b"")
    expect(ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, b"\x30\x03\x02\x01\x01")
    expect(ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, b"hello, world")
    expect(ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, der(NODE_PEM) + b"\x00")  # trailing bytes
    expect(ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, NODE_PEM + CA_PEM)  # two certificates
    expect(
        ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, NODE_PEM.replace(b"CERTIFICATE", b"PRIVATE KEY")
    )
    e = expect(ErrorCode.TOO_LARGE, parse_sm2_cert, b"\x30" * (MAX_CERT_BYTES + 1))
    assert str(MAX_CERT_BYTES) in e.message
    e = expect(ErrorCode.BAD_ARGUMENTS, verify_sm2_cert, b"junk", CA_PEM, at_ms=AT)
    assert e.message.startswith("certificate: not")
    e = expect(ErrorCode.BAD_ARGUMENTS, verify_sm2_cert, NODE_PEM, b"junk", at_ms=AT)
    assert e.message.startswith("CA certificate: not")
    assert not is_sm2_cert(b"junk")


def test_deeply_nested_input_is_refused_before_it_is_parsed() -> None:
    """asn1crypto parses recursively, and where Python's recursion limit stops it depends on the
    caller's stack: nesting beyond 32 levels is refused first, the same way at any depth."""
    from asn1crypto import core
    from asn1crypto import x509 as ax

    inner = b"\x05\x00"
    for _ in range(40):
        inner = (
            b"\x30" + bytes([len(inner)]) + inner
            if len(inner) < 128
            else (b"\x30\x81" + bytes([len(inner)]) + inner)
        )
    value = core.Any.load(inner)
    odd = ax.Name(
        name="",
        value=ax.RDNSequence(
            [
                ax.RelativeDistinguishedName(
                    [ax.NameTypeAndValue({"type": "1.2.3.4", "value": value})]
                )
            ]
        ),
    )
    ca = parse_sm2_cert(CA_PEM)
    tbs = _tbs(
        serial=9, issuer=ax.Name.load(ca.subject_der_name), subject=odd, public_key=NODE_KEY,
        start=NOT_BEFORE, end=NOT_AFTER, extensions=[],
    )  # fmt: skip
    e = expect(ErrorCode.BAD_ARGUMENTS, parse_sm2_cert, _sign(tbs, CA_SECRET, DEFAULT_DISTID))
    assert "nest 46 deep; at most 32" in e.message


def test_bad_issuing_arguments() -> None:
    expect(ErrorCode.BAD_ARGUMENTS, issue_sm2_node_cert, CA_PEM, CA_SECRET, NODE_KEY,
           node_name="n1", chain_id="c", org_id="org2")  # fmt: skip
    expect(ErrorCode.BAD_ARGUMENTS, issue_sm2_node_cert, CA_PEM, CA_SECRET, NODE_KEY,
           node_name="bad name", chain_id="c", org_id="org1")  # fmt: skip
    expect(ErrorCode.BAD_ARGUMENTS, issue_sm2_ca, "org1", "O", CA_SECRET,
           not_before=datetime(2025, 1, 1))  # fmt: skip
    with pytest.raises(ConfigError, match="does not belong"):
        issue_sm2_member_cert(CA_PEM, NODE_SECRET, NODE_KEY, name="a", org_id="org1", roles=[])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_byte_flip_is_refused(data: st.DataObject) -> None:
    raw = der(MEMBER_PEM)
    at = data.draw(st.integers(0, len(raw) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = raw[:at] + bytes([raw[at] ^ flip]) + raw[at + 1 :]
    try:
        cert = parse_sm2_cert(changed)
    except InvalidInput:
        return
    with pytest.raises(InvalidInput):
        verify_sm2_cert(cert, CA_PEM, at_ms=AT)


# -- CA keys as PEM -------------------------------------------------------------------------------


@needs_openssl
def test_key_pems_interoperate_with_openssl(tmp_path: Path) -> None:
    from citychain.crypto.sm2_certs import sm2_private_key_pem, sm2_secret_from_pem
    from citychain.errors import KeystoreError

    (tmp_path / "plain.pem").write_bytes(sm2_private_key_pem(CA_SECRET))
    (tmp_path / "enc.pem").write_bytes(sm2_private_key_pem(CA_SECRET, "pässwort"))
    for name, extra in (("plain.pem", ()), ("enc.pem", ("-passin", "pass:pässwort"))):
        openssl(tmp_path, "pkey", "-in", name, *extra, "-pubout", "-outform", "DER", "-out", "p")
        assert (tmp_path / "p").read_bytes()[-65:] == SM2_SM3.public_key(CA_SECRET)
    # NFC: the same words typed as a decomposed ä open it too.
    assert (
        sm2_secret_from_pem(
            sm2_private_key_pem(CA_SECRET, "pa\u0308sswort", rounds=2048), "pässwort"
        )
        == CA_SECRET
    )
    openssl(tmp_path, "genpkey", "-algorithm", "SM2", "-out", "o.pem")
    openssl(
        tmp_path, "pkey", "-in", "o.pem", "-aes256", "-passout", "pass:xyz", "-out", "o_enc.pem"
    )
    openssl(tmp_path, "ec", "-in", "o.pem", "-out", "o_sec1.pem")
    read = lambda name: (tmp_path / name).read_bytes()  # noqa: E731
    secret = sm2_secret_from_pem(read("o.pem"))
    assert (
        sm2_secret_from_pem(read("o_enc.pem"), "xyz")
        == secret
        == sm2_secret_from_pem(read("o_sec1.pem"))
    )
    with pytest.raises(KeystoreError) as info:
        sm2_secret_from_pem(read("o_enc.pem"), "abc")
    assert info.value.code == ErrorCode.WRONG_PASSPHRASE
    e = expect(ErrorCode.BAD_ARGUMENTS, sm2_secret_from_pem, read("o_enc.pem"))
    assert "a passphrase is needed" in e.message
    openssl(
        tmp_path,
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "p256.pem",
    )
    e = expect(ErrorCode.WRONG_SUITE, sm2_secret_from_pem, read("p256.pem"))
    assert "prime256v1" in e.message or "secp256r1" in e.message
    _, ecdsa_key = generate_org_ca("org1", "Org One")
    expect(ErrorCode.WRONG_SUITE, sm2_secret_from_pem, ecdsa_key)
    expect(ErrorCode.BAD_ARGUMENTS, sm2_secret_from_pem, CA_PEM)
    expect(ErrorCode.BAD_ARGUMENTS, sm2_secret_from_pem, b"junk")


# -- certificate identity mode on SM2 chains ------------------------------------------------------


def test_member_certificates_of_an_sm2_chain() -> None:
    from citychain.crypto.member_certs import check_org_ca, verify_member_cert

    info = verify_member_cert(MEMBER_PEM, CA_PEM, org_id="org1", at_ms=AT)
    assert info.public_key == NODE_KEY and info.roles == ("admin", "member")
    assert (info.org_id, info.name) == ("org1", "alice")
    assert (
        info.issuer_fingerprint
        == parse_sm2_cert(CA_PEM).fingerprint
        == check_org_ca(CA_PEM, "org1")
    )
    assert (info.not_before_ms, info.not_after_ms) == (ms(NOT_BEFORE), ms(NOT_AFTER))
    assert verify_member_cert(der(MEMBER_PEM), der(CA_PEM), org_id="org1", at_ms=AT) == info

    def no(
        code: ErrorCode,
        words: str,
        cert: bytes,
        ca: bytes = CA_PEM,
        org: str = "org1",
        at: int = AT,
    ) -> None:
        e = expect(code, verify_member_cert, cert, ca, org_id=org, at_ms=at)
        assert words in e.message, e.message

    U = ErrorCode.UNAUTHORIZED
    no(U, "expired at", MEMBER_PEM, at=ms(NOT_AFTER) + 1)  # member mode: unauthorized, as ever
    no(U, "not yet valid", MEMBER_PEM, at=ms(NOT_BEFORE) - 1)
    no(
        U,
        "the CA speaks for 'org1' (subject O), not for organisation 'org2'",
        MEMBER_PEM,
        org="org2",
    )
    other = issue_sm2_ca("org1", "Org One", NODE_SECRET, not_before=NOT_BEFORE)
    no(U, "does not verify with the key of CA", MEMBER_PEM, ca=other)
    no(U, "CA certificate: not a CA", MEMBER_PEM, ca=NODE_PEM)
    no(U, "it is a CA certificate", CA_PEM)
    no(ErrorCode.BAD_ARGUMENTS, "member certificate: not a certificate", b"junk")
    no(ErrorCode.BAD_ARGUMENTS, "CA certificate: not a certificate", MEMBER_PEM, ca=b"junk")
    # Mixes of suites, either way round.
    ecdsa_ca, ecdsa_key = generate_org_ca("org1", "Org One")
    ed = Signer.generate(ED25519)
    ed_cert = issue_member_cert(
        ecdsa_ca, ecdsa_key, ed.public_key, name="e", org_id="org1", roles=[]
    )
    no(
        ErrorCode.WRONG_SUITE,
        "the member certificate is an SM2 certificate",
        MEMBER_PEM,
        ca=ecdsa_ca,
    )
    no(ErrorCode.WRONG_SUITE, "the CA certificate is an SM2 certificate", ed_cert, ca=CA_PEM)
    assert (
        verify_member_cert(ed_cert, ecdsa_ca, org_id="org1", at_ms=ms(datetime.now(UTC))).public_key
        == ed.public_key
    )
    expect(ErrorCode.UNAUTHORIZED, check_org_ca, CA_PEM, "org2")
    expect(ErrorCode.UNAUTHORIZED, check_org_ca, NODE_PEM, "org1")


def test_the_gov_contract_reads_an_sm2_member_certificate() -> None:
    """gov.enroll reads the subject's O and notBefore with cryptography before it verifies:
    cryptography must parse an SM2 certificate (it cannot verify one)."""
    from cryptography.x509.oid import NameOID

    from citychain.crypto.member_certs import parse_member_cert

    parsed = parse_member_cert(MEMBER_PEM)
    assert parsed.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "org1"
    assert parsed.not_valid_before_utc == NOT_BEFORE


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_bytes_are_refused_by_name(data: st.DataObject) -> None:
    """Random bytes, cut or spliced certificates: a named refusal (or a certificate that does not
    verify), never another exception."""
    raw = der(NODE_PEM)
    a = data.draw(st.integers(0, len(raw)))
    b = data.draw(st.integers(a, len(raw)))
    blob = data.draw(
        st.one_of(
            st.binary(max_size=300),
            st.just(raw[:a]),  # cut short
            st.binary(max_size=8).map(lambda junk: raw[:a] + junk + raw[b:]),  # spliced
        )
    )
    try:
        cert = parse_sm2_cert(blob)
    except InvalidInput as exc:
        assert exc.code in {
            ErrorCode.BAD_ARGUMENTS, ErrorCode.WRONG_SUITE, ErrorCode.POINT_NOT_ON_CURVE,
            ErrorCode.BAD_PUBLIC_KEY, ErrorCode.SIGNATURE_OUT_OF_RANGE,
        }, exc  # fmt: skip
        return
    if cert.der != raw:  # another certificate that parses: it never verifies
        with pytest.raises(InvalidInput):
            verify_sm2_cert(cert, CA_PEM, at_ms=AT)
