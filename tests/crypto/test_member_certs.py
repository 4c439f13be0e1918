"""Member certificates: an org CA vouches for an account's Ed25519 key (certificate identity)."""

from __future__ import annotations

import hashlib
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain.crypto import ED25519, Signer
from citychain.crypto.member_certs import (
    BACKDATE,
    MAX_CERT_BYTES,
    MemberCertInfo,
    cert_fingerprint,
    issue_member_cert,
    parse_member_cert,
    verify_member_cert,
)
from citychain.errors import ConfigError, ErrorCode, InvalidInput
from citychain.p2p.certs import encrypt_key_pem, generate_org_ca

NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2025, 1, 31, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


AT = ms(datetime(2025, 1, 15, 12, tzinfo=UTC))

CA1 = generate_org_ca("org1", "Org One")
CA1_TWIN = generate_org_ca("org1", "Org One")  # same name and org, different key
CA1_OTHER_NAME = generate_org_ca("org1", "Org One Bis")
CA2 = generate_org_ca("org2", "Org Two")


def account_key() -> bytes:
    return Signer.generate(ED25519).public_key


def issue(
    ca: tuple[bytes, bytes] = CA1,
    public_key: bytes | None = None,
    *,
    name: str = "alice",
    org_id: str = "org1",
    roles: tuple[str, ...] = ("member",),
    serial: int | None = None,
) -> bytes:
    return issue_member_cert(
        ca[0],
        ca[1],
        public_key if public_key is not None else account_key(),
        name=name,
        org_id=org_id,
        roles=roles,
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        serial=serial,
    )


def refused(cert: bytes, ca_pem: bytes = CA1[0], *, org_id: str = "org1", at_ms: int = AT) -> str:
    """The message of the refusal; asserts the code is ``unauthorized``."""
    with pytest.raises(InvalidInput) as info:
        verify_member_cert(cert, ca_pem, org_id=org_id, at_ms=at_ms)
    assert info.value.code is ErrorCode.UNAUTHORIZED, info.value
    return info.value.message


def to_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def build(
    *,
    subject: list[x509.NameAttribute[str]],
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | None = None,
    ca: tuple[bytes, bytes] = CA1,
    issuer: x509.Name | None = None,
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """A certificate made by hand, signed by ``ca``, for what ``issue_member_cert`` won't make."""
    ca_cert = x509.load_pem_x509_certificate(ca[0])
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(issuer if issuer is not None else ca_cert.subject)
        .public_key(public_key or ed25519.Ed25519PrivateKey.generate().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    cert = builder.sign(load_key(ca[1]), algorithm or hashes.SHA256())  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM)


def member_subject(name: str = "alice", org_id: str = "org1") -> list[x509.NameAttribute[str]]:
    return [
        x509.NameAttribute(NameOID.COMMON_NAME, name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
    ]


def make_ca(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, org_id: str) -> tuple[bytes, bytes]:
    """A CA with an RSA or Ed25519 key (``generate_org_ca`` makes ECDSA ones)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org_id} CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_id),
        ]
    )
    algorithm = hashes.SHA256() if isinstance(key, rsa.RSAPrivateKey) else None
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE - timedelta(days=1))
        .not_valid_after(NOT_AFTER + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, algorithm)
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# -- round trip ----------------------------------------------------------------------------------


def test_issue_then_verify_round_trip() -> None:
    key = account_key()
    pem = issue(public_key=key, roles=("member", "auditor", "member"), serial=12345)
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    info = verify_member_cert(pem, CA1[0], org_id="org1", at_ms=AT)
    assert info == MemberCertInfo(
        public_key=key,
        org_id="org1",
        name="alice",
        roles=("auditor", "member"),
        serial=12345,
        not_before_ms=ms(NOT_BEFORE),
        not_after_ms=ms(NOT_AFTER),
        issuer_fingerprint=hashlib.sha256(to_der(CA1[0])).digest(),
    )
    assert info.issuer_fingerprint == cert_fingerprint(CA1[0])


def test_issued_certificate_says_what_the_scheme_says() -> None:
    cert = parse_member_cert(issue(roles=("admin", "member")))
    subject = cert.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["alice"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["org1"]
    ous = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert ous == ["admin", "member"]  # one OU per role
    assert cert.issuer == x509.load_pem_x509_certificate(CA1[0]).subject
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(cert.public_key(), ed25519.Ed25519PublicKey)


def test_roles_may_be_empty() -> None:
    info = verify_member_cert(issue(roles=()), CA1[0], org_id="org1", at_ms=AT)
    assert info.roles == ()


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30).filter(
    lambda s: len(s.encode()) <= 64
)
roles = st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, org_id=names, role_list=roles, seed=st.binary(min_size=32, max_size=32))
def test_round_trip_any_name_org_and_roles(
    name: str, org_id: str, role_list: list[str], seed: bytes
) -> None:
    ca = generate_org_ca(org_id, "Some Org")
    key = ED25519.public_key(seed)
    pem = issue(ca, key, name=name, org_id=org_id, roles=tuple(role_list))
    info = verify_member_cert(pem, ca[0], org_id=org_id, at_ms=AT)
    assert (info.public_key, info.name, info.org_id) == (key, name, org_id)
    assert info.roles == tuple(sorted(set(role_list)))


def test_pem_and_der_are_both_accepted() -> None:
    pem = issue()
    der = to_der(pem)
    from_pem = verify_member_cert(pem, CA1[0], org_id="org1", at_ms=AT)
    assert verify_member_cert(der, CA1[0], org_id="org1", at_ms=AT) == from_pem
    assert verify_member_cert(der, to_der(CA1[0]), org_id="org1", at_ms=AT) == from_pem
    assert parse_member_cert(pem) == parse_member_cert(der)
    assert cert_fingerprint(pem) == cert_fingerprint(der) == hashlib.sha256(der).digest()


def test_default_validity_starts_five_minutes_back() -> None:
    before = datetime.now(UTC)
    pem = issue_member_cert(
        CA1[0], CA1[1], account_key(), name="bob", org_id="org1", roles=["member"], valid_days=10
    )
    info = verify_member_cert(pem, CA1[0], org_id="org1", at_ms=ms(before))
    start = ms(before - BACKDATE)
    assert start - 2000 <= info.not_before_ms <= start + 2000
    assert info.not_after_ms - info.not_before_ms == 10 * 24 * 3600 * 1000


@pytest.mark.parametrize(
    "ca_key",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate(),
    ],
    ids=["rsa", "ed25519"],
)
def test_rsa_and_ed25519_cas_issue_and_verify(
    ca_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
) -> None:
    ca = make_ca(ca_key, "org3")
    pem = issue(ca, org_id="org3")
    assert verify_member_cert(pem, ca[0], org_id="org3", at_ms=AT).org_id == "org3"
    # A byte of the signature changed (the signature is the tail of the DER).
    der = bytearray(to_der(pem))
    der[-1] ^= 0x01
    assert "not signed by this CA" in refused(bytes(der), ca[0], org_id="org3")
    # This CA's name, but signed by an ECDSA key: the algorithm does not fit the CA's key.
    forged = build(
        subject=member_subject(org_id="org3"),
        issuer=x509.load_pem_x509_certificate(ca[0]).subject,
        ca=CA1,
    )
    message = refused(forged, ca[0], org_id="org3")
    assert "not signed by this CA: signature algorithm ecdsa-with-sha256 does not fit" in message


# -- refusals --------------------------------------------------------------------------------------


def test_validity_window_is_inclusive_and_checked_at_block_time() -> None:
    pem = issue()
    for at in (ms(NOT_BEFORE), ms(NOT_AFTER)):
        verify_member_cert(pem, CA1[0], org_id="org1", at_ms=at)
    assert refused(pem, at_ms=ms(NOT_AFTER) + 1) == (
        "member certificate: expired on 2025-01-31 00:00:00 UTC "
        "(block time is 2025-01-31 00:00:00.001 UTC)"
    )
    assert refused(pem, at_ms=ms(NOT_BEFORE) - 1) == (
        "member certificate: not yet valid: valid from 2025-01-01 00:00:00 UTC, "
        "block time is 2024-12-31 23:59:59.999 UTC"
    )


def test_signed_by_another_ca_of_the_same_name() -> None:
    pem = issue(CA1_TWIN)
    assert refused(pem) == (
        "member certificate: not signed by this CA "
        "(the signature does not verify with the CA's public key)"
    )


def test_issued_under_another_ca_name() -> None:
    message = refused(issue(CA1_OTHER_NAME))
    assert (
        "issued by 'O=org1,CN=Org One Bis CA', not by this CA ('O=org1,CN=Org One CA')" in message
    )


def test_issuer_name_of_this_ca_but_wrong_issuer_field() -> None:
    other = x509.load_pem_x509_certificate(CA2[0]).subject
    message = refused(build(subject=member_subject(), issuer=other))
    assert message.startswith("member certificate: issued by 'O=org2,CN=Org Two CA'")


def test_ca_of_another_organisation() -> None:
    pem = issue(CA2, org_id="org2")
    assert verify_member_cert(pem, CA2[0], org_id="org2", at_ms=AT).org_id == "org2"
    # The org2 CA cannot vouch for org1 members, whatever the certificate says.
    with pytest.raises(InvalidInput) as info:
        verify_member_cert(pem, CA2[0], org_id="org1", at_ms=AT)
    assert info.value.code is ErrorCode.UNAUTHORIZED
    assert info.value.message == (
        "CA certificate: the CA speaks for 'org2' (subject O), not for organisation 'org1'"
    )
    # Checked against org1's CA, it was not issued by it.
    assert "not by this CA" in refused(pem, CA1[0])


def test_subject_of_another_organisation_signed_by_this_ca() -> None:
    pem = build(subject=member_subject(org_id="org2"))
    assert refused(pem) == "member certificate: subject is in organisation 'org2', not 'org1'"


def test_issuing_for_another_organisation_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        issue(CA2, org_id="org1")
    assert info.value.code is ErrorCode.BAD_ARGUMENTS
    assert "organisation org2 cannot issue" in info.value.message


def test_subject_key_not_ed25519() -> None:
    ecdsa_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = build(
        subject=member_subject(),
        public_key=ecdsa_key,
        extensions=((x509.BasicConstraints(ca=False, path_length=None), True),),
    )
    assert refused(pem) == "member certificate: subject key is ECDSA (secp256r1), not Ed25519"


def test_ca_certificate_presented_as_member_certificate() -> None:
    message = refused(CA1[0])
    assert message == (
        "member certificate: it is a CA certificate (basicConstraints CA=true), "
        "not a member certificate"
    )


def test_member_certificate_given_as_the_ca() -> None:
    pem = issue()
    with pytest.raises(InvalidInput) as info:
        verify_member_cert(pem, pem, org_id="org1", at_ms=AT)
    assert info.value.code is ErrorCode.UNAUTHORIZED
    assert info.value.message == "CA certificate: not a CA (basicConstraints CA=false)"


def test_no_common_name() -> None:
    pem = build(subject=[x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org1")])
    assert refused(pem) == "member certificate: subject has no CN (member name)"


def test_no_or_two_organisations() -> None:
    assert refused(build(subject=[x509.NameAttribute(NameOID.COMMON_NAME, "a")])) == (
        "member certificate: subject has no O (organisation)"
    )
    two = [*member_subject(), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org1")]
    assert "2 organisations" in refused(build(subject=two))


def test_unknown_critical_extension() -> None:
    ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    assert refused(build(subject=member_subject(), extensions=((ext, True),))) == (
        "member certificate: unknown critical extension 1.3.6.1.4.1.99999.1"
    )
    # Not critical: ignored.
    verify_member_cert(
        build(subject=member_subject(), extensions=((ext, False),)), CA1[0], org_id="org1", at_ms=AT
    )


def test_key_usage_without_digital_signature() -> None:
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    pem = build(subject=member_subject(), extensions=((usage, True),))
    assert refused(pem) == "member certificate: its keyUsage does not allow digitalSignature"


def test_weak_signature_hash_is_refused() -> None:
    pem = build(subject=member_subject(), algorithm=hashes.SHA224())
    assert refused(pem) == (
        "member certificate: signature uses SHA224, which is not accepted (SHA-256 or stronger)"
    )


def test_overlong_common_name_same_verdict_whatever_the_warning_filters() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        long_cn = x509.NameAttribute(NameOID.COMMON_NAME, "x" * 70, _validate=False)
    pem = build(subject=[long_cn, x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org1")])
    messages = []
    for action in ("error", "ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter(action)
            messages.append(refused(pem))
    assert (
        messages[0]
        == messages[1]
        == ("member certificate: subject name is malformed (CN is 70 bytes; X.509 allows 1 to 64)")
    )


# -- not certificates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "no bytes given"),
        (b"\x00\x01garbage", "neither PEM nor DER"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PEM"),
    ],
    ids=["empty", "garbage", "bad-pem", "not-a-cert-pem"],
)
def test_garbage_is_bad_arguments(data: bytes, fragment: str) -> None:
    for call in (
        lambda: parse_member_cert(data),
        lambda: cert_fingerprint(data),
        lambda: verify_member_cert(data, CA1[0], org_id="org1", at_ms=AT),
    ):
        with pytest.raises(InvalidInput) as info:
            call()
        assert info.value.code is ErrorCode.BAD_ARGUMENTS
        assert "not a certificate" in info.value.message
        assert fragment in info.value.message
    with pytest.raises(InvalidInput) as info:
        verify_member_cert(issue(), data, org_id="org1", at_ms=AT)
    assert info.value.code is ErrorCode.BAD_ARGUMENTS
    assert info.value.message.startswith("CA certificate: not a certificate")


def test_two_certificates_in_one_pem() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_member_cert(issue() + issue())
    assert info.value.code is ErrorCode.BAD_ARGUMENTS
    assert info.value.message == "not a certificate: PEM holds 2 certificates, expected 1"


def test_too_large() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_member_cert(b"\x30" * (MAX_CERT_BYTES + 1))
    assert info.value.code is ErrorCode.TOO_LARGE


def test_non_positive_serial_same_verdict_whatever_the_warning_filters() -> None:
    der = bytearray(to_der(issue(serial=0x55)))
    at = der.index(b"\x02\x01\x55")  # the serial INTEGER, right after the version
    der[at + 2] = 0xFF  # -1
    messages = []
    for action in ("error", "ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter(action)
            with pytest.raises(InvalidInput) as info:
                parse_member_cert(bytes(der))
        assert info.value.code is ErrorCode.BAD_ARGUMENTS
        messages.append(info.value.message)
    assert (
        messages[0]
        == messages[1]
        == ("not a valid certificate: serial number -1 is not positive (RFC 5280)")
    )


# -- issuing arguments ---------------------------------------------------------------------------


def test_issue_refuses_bad_arguments() -> None:
    def code_of(**kwargs: object) -> ErrorCode:
        args: dict[str, object] = {"name": "alice", "org_id": "org1", "roles": ["member"]}
        args.update(kwargs)
        key = args.pop("public_key", account_key())
        with pytest.raises(InvalidInput) as info:
            issue_member_cert(CA1[0], CA1[1], key, **args)  # type: ignore[arg-type]
        return info.value.code

    assert code_of(public_key=b"\x01" * 31) is ErrorCode.BAD_PUBLIC_KEY
    assert code_of(roles="admin") is ErrorCode.BAD_ARGUMENTS
    assert code_of(roles=[""]) is ErrorCode.BAD_ARGUMENTS
    assert code_of(roles=["\ud800"]) is ErrorCode.BAD_ARGUMENTS  # a lone surrogate
    assert code_of(org_id="o" * 65) is ErrorCode.BAD_ARGUMENTS
    assert code_of(name="") is ErrorCode.BAD_ARGUMENTS
    assert code_of(name="é" * 33) is ErrorCode.BAD_ARGUMENTS  # 66 bytes of UTF-8
    assert code_of(not_before=datetime(2025, 1, 1)) is ErrorCode.BAD_ARGUMENTS
    assert code_of(not_before=NOT_AFTER, not_after=NOT_BEFORE) is ErrorCode.BAD_ARGUMENTS
    assert code_of(valid_days=0) is ErrorCode.BAD_ARGUMENTS
    assert code_of(serial=0) is ErrorCode.BAD_ARGUMENTS
    assert code_of(serial=2**159) is ErrorCode.BAD_ARGUMENTS


def test_issue_refuses_unusable_ca_files() -> None:
    key = account_key()
    with pytest.raises(ConfigError, match="decrypt it"):
        issue_member_cert(
            CA1[0], encrypt_key_pem(CA1[1], "pw"), key, name="a", org_id="org1", roles=[]
        )
    with pytest.raises(ConfigError, match="does not belong"):
        issue_member_cert(CA1[0], CA1_TWIN[1], key, name="a", org_id="org1", roles=[])
    with pytest.raises(ConfigError, match="not a CA"):
        issue_member_cert(issue(), CA1[1], key, name="a", org_id="org1", roles=[])
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        issue_member_cert(b"nope", CA1[1], key, name="a", org_id="org1", roles=[])
