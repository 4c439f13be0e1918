"""SD-JWT VC (RFC 9901) with Ed25519: issue with selectively disclosable claims (nested, array
elements, age_over_18), present a chosen subset with key binding, verify, and each refusal;
interop with the `sd-jwt` reference implementation both ways and with the RFC's §5 example."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vc_fixtures import DictResolver, did_document, signer, vector

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity import sdk
from citychain.services.identity.sdk._sdjwt import _process

ISSUER_KEY = signer(11)
HOLDER_KEY = signer(12)
OTHER_KEY = signer(13)
ISSUER = "did:citychain:Q4mX7TQfmBuGdF5Aaq9cF3"
KID = f"{ISSUER}#key-1"
RESOLVER = DictResolver(
    did_document(
        ISSUER,
        {"key-1": ISSUER_KEY, "key-2": OTHER_KEY},
        {"assertionMethod": ["key-1"], "authentication": ["key-2"]},
    )
)
NOW = 1_780_000_000
CLAIMS = {
    "given_name": "Lei",
    "family_name": "Li",
    "birthdate": "1990-05-17",
    "age_over_18": True,
    "address": {"locality": "Beijing", "district": "Dongcheng", "street_address": "1 Main St"},
    "nationalities": ["CN", "DE"],
}
DISCLOSABLE = [
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("age_over_18",),
    ("address",),
    ("address", "locality"),
    ("address", "street_address"),
    ("nationalities", 0),
    ("nationalities", 1),
]
VCT = "https://w3id.org/citychain/vct/resident"


def _issue(**kwargs: Any) -> str:
    args: dict[str, Any] = {
        "issuer": ISSUER,
        "vct": VCT,
        "disclosable": DISCLOSABLE,
        "holder_key": HOLDER_KEY.public_key,
        "kid": KID,
        "iat": NOW - 100,
        "exp": NOW + 86_400,
    }
    args.update(kwargs)
    return sdk.issue_sd_jwt(CLAIMS, ISSUER_KEY, **args)


def _present(sd_jwt: str, paths: list[tuple[str | int, ...]], **kwargs: Any) -> str:
    args: dict[str, Any] = {
        "holder": HOLDER_KEY,
        "nonce": "n-1",
        "aud": "https://bar.example",
        "iat": NOW,
    }
    args.update(kwargs)
    return sdk.present_sd_jwt(sd_jwt, paths, **args)


def _verify(presentation: str, **kwargs: Any) -> sdk.VerifiedSdJwt:
    args: dict[str, Any] = {
        "now": NOW,
        "nonce": "n-1",
        "aud": "https://bar.example",
        "resolver": RESOLVER,
    }
    args.update(kwargs)
    return sdk.verify_sd_jwt(presentation, **args)


def _code(call: Any) -> ErrorCode:
    with pytest.raises(InvalidInput) as e:
        call()
    return e.value.code


def test_the_issuer_signed_jwt_holds_no_disclosable_value() -> None:
    issued = _issue()
    jwt = issued.split("~")[0]
    header = json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))
    payload_text = base64.urlsafe_b64decode(jwt.split(".")[1] + "==").decode()
    assert header == {"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": KID}
    for secret in ("1990-05-17", "Beijing", "Lei", "age_over_18", '"DE"'):
        assert secret not in payload_text
    payload = json.loads(payload_text)
    assert payload["_sd_alg"] == "sha-256"
    assert payload["_sd"] == sorted(payload["_sd"])  # order says nothing about the claims
    assert len(issued.split("~")) == 1 + len(DISCLOSABLE) + 1


def test_disclose_only_age_over_18() -> None:
    shown = _verify(_present(_issue(), [("age_over_18",)]))
    claims = shown.claims
    assert claims["age_over_18"] is True
    assert "birthdate" not in claims and "given_name" not in claims and "address" not in claims
    assert claims["nationalities"] == []  # elements hidden, the array itself is visible
    assert claims["iss"] == ISSUER and claims["vct"] == VCT


def test_nested_and_array_elements() -> None:
    shown = _verify(_present(_issue(), [("address", "locality"), ("nationalities", 1)]))
    # the locality brings its parent (address) but not its sibling street_address
    assert shown.claims["address"] == {"district": "Dongcheng", "locality": "Beijing"}
    assert shown.claims["nationalities"] == ["DE"]
    assert {d.path for d in shown.disclosures} == {
        ("address",),
        ("address", "locality"),
        ("nationalities", 1),
    }


def test_everything_disclosed_gives_back_the_claims() -> None:
    shown = _verify(_present(_issue(), DISCLOSABLE))
    assert {k: v for k, v in shown.claims.items() if k in CLAIMS} == CLAIMS


def test_tampered_disclosure_is_refused() -> None:
    presented = _present(_issue(), [("age_over_18",)])
    parts = presented.split("~")
    forged = (
        base64.urlsafe_b64encode(json.dumps(["salt", "age_over_18", False]).encode())
        .rstrip(b"=")
        .decode()
    )
    parts[1] = forged
    assert _code(lambda: _verify("~".join(parts))) is ErrorCode.DISCLOSURE_INVALID
    # the same without key binding: still not signed by the issuer
    no_kb = "~".join(parts[:-1]) + "~"
    assert _code(lambda: _verify(no_kb, require_key_binding=False)) is ErrorCode.DISCLOSURE_INVALID


def test_dropped_or_added_disclosure_is_refused() -> None:
    issued = _issue()
    presented = _present(issued, [("age_over_18",), ("given_name",)])
    parts = presented.split("~")
    dropped = "~".join([parts[0], parts[2], parts[-1]])
    assert _code(lambda: _verify(dropped)) is ErrorCode.DISCLOSURE_INVALID
    extra = next(d for d in issued.split("~")[1:-1] if d not in parts)
    added = "~".join([*parts[:-1], extra, parts[-1]])
    assert _code(lambda: _verify(added)) is ErrorCode.DISCLOSURE_INVALID
    duplicated = "~".join([*parts[:-1], parts[1], parts[-1]])
    assert _code(lambda: _verify(duplicated)) is ErrorCode.DISCLOSURE_INVALID


def test_wrong_nonce_or_audience() -> None:
    presented = _present(_issue(), [("age_over_18",)])
    assert _code(lambda: _verify(presented, nonce="n-2")) is ErrorCode.WRONG_CHALLENGE
    assert _code(lambda: _verify(presented, aud="https://other.example")) is ErrorCode.WRONG_DOMAIN


def test_key_binding_refusals() -> None:
    issued = _issue()
    assert _code(lambda: _verify(_present(issued, [("age_over_18",)], holder=None))) is (
        ErrorCode.KEY_BINDING_INVALID
    )
    stolen = _present(issued, [("age_over_18",)], holder=OTHER_KEY)
    assert _code(lambda: _verify(stolen)) is ErrorCode.KEY_BINDING_INVALID
    stale = _present(issued, [("age_over_18",)], iat=NOW - 3_600)
    assert _code(lambda: _verify(stale)) is ErrorCode.KEY_BINDING_INVALID
    _verify(stale, max_kb_age=None)


def test_bad_issuer_signature_and_wrong_keys() -> None:
    presented = _present(_issue(), [("age_over_18",)])
    jwt, rest = presented.split("~", 1)
    head, body, sig = jwt.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["vct"] = "https://w3id.org/citychain/vct/other"
    body2 = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    forged = f"{head}.{body2}.{sig}~{rest}"
    assert _code(lambda: _verify(forged, require_key_binding=False, nonce=None, aud=None)) is (
        ErrorCode.TAMPERED
    )
    by_other = _present(
        sdk.issue_sd_jwt(
            CLAIMS,
            OTHER_KEY,
            issuer=ISSUER,
            vct=VCT,
            disclosable=DISCLOSABLE,
            holder_key=HOLDER_KEY.public_key,
            kid=KID,
        ),
        [("age_over_18",)],
    )
    assert _code(lambda: _verify(by_other)) is ErrorCode.TAMPERED
    auth_only = _present(_issue(kid=f"{ISSUER}#key-2"), [("age_over_18",)])
    assert _code(lambda: _verify(auth_only)) is ErrorCode.KEY_NOT_AUTHORIZED


@pytest.mark.parametrize("junk", ["!", " ", "\n", "+", "/", "=", "é"])
def test_a_segment_that_is_not_strict_base64url_is_refused(junk: str) -> None:
    """A lenient decoder skips characters outside the alphabet, so a signature with junk in
    it would still verify: two texts for one credential. Only base64url without padding is
    taken (RFC 7515 §2), in the signature, the payload and a disclosure alike."""
    presented = _present(_issue(), [("age_over_18",)], holder=None)
    assert _verify(presented, require_key_binding=False, nonce=None, aud=None).claims
    jwt, disclosure, end = presented.split("~")
    head, body, sig = jwt.split(".")
    for bad in (
        f"{head}.{body}.{sig[:10]}{junk}{sig[10:]}~{disclosure}~{end}",
        f"{head}.{body[:10]}{junk}{body[10:]}.{sig}~{disclosure}~{end}",
    ):
        assert (
            _code(lambda bad=bad: _verify(bad, require_key_binding=False, nonce=None, aud=None))
            is ErrorCode.INVALID_CREDENTIAL
        )
    if junk == "!":  # the signature's last character with an unused bit set: same bytes
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(sig[-1])
        assert last & 0b1111 == 0  # 512 bits in 86 characters: 4 unused
        twin = f"{head}.{body}.{sig[:-1]}{alphabet[last | 1]}~{disclosure}~{end}"
        assert base64.urlsafe_b64decode(sig[:-1] + alphabet[last | 1] + "==") == (
            base64.urlsafe_b64decode(sig + "==")
        )
        assert (
            _code(lambda: _verify(twin, require_key_binding=False, nonce=None, aud=None))
            is ErrorCode.INVALID_CREDENTIAL
        )
    bad_disclosure = f"{jwt}~{disclosure[:5]}{junk}{disclosure[5:]}~{end}"
    assert _code(
        lambda: _verify(bad_disclosure, require_key_binding=False, nonce=None, aud=None)
    ) is (ErrorCode.DISCLOSURE_INVALID if junk.isascii() else ErrorCode.INVALID_CREDENTIAL)


def test_a_status_claim_is_signed_shown_always_and_checked_for_shape() -> None:
    """The SD-JWT VC ``status`` claim (its Token Status List reference shape) is in the
    issuer-signed JWT, never a disclosure: a presentation disclosing nothing still shows it,
    and changing it breaks the issuer's signature."""
    status = sdk.sd_jwt_status(f"{ISSUER}/status/licences", 42)
    assert status == {"status_list": {"idx": 42, "uri": f"{ISSUER}/status/licences"}}
    issued = _issue(status=status)
    seen = _verify(_present(issued, []))
    assert seen.claims["status"] == status
    assert sdk.check_sd_jwt_status(seen.claims["status"]) == (f"{ISSUER}/status/licences", 42)

    head, payload, sig = issued.split("~", 1)[0].split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["status"]["status_list"]["idx"] = 43
    moved = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    forged = ".".join([head, moved, sig]) + "~" + issued.split("~", 1)[1]
    assert _code(lambda: _verify(_present(forged, []))) is ErrorCode.TAMPERED

    for bad in (
        {"status_list": {"idx": -1, "uri": "x"}},
        {"status_list": {"idx": "1", "uri": "x"}},
        {"status_list": {"idx": 1}},
        {"status_list": {"idx": 1, "uri": ""}},
        {"idx": 1, "uri": "x"},
    ):
        with pytest.raises(InvalidInput) as e:
            _issue(status=bad)
        assert e.value.code is ErrorCode.BAD_ARGUMENTS and "status claim" in e.value.message
        with pytest.raises(InvalidInput) as e:
            sdk.check_sd_jwt_status(bad)
        assert e.value.code is ErrorCode.INVALID_CREDENTIAL
    with pytest.raises(InvalidInput) as e:
        sdk.issue_sd_jwt({**CLAIMS, "status": status}, ISSUER_KEY, issuer=ISSUER, vct=VCT,
                         disclosable=[], holder_key=None)  # fmt: skip
    assert "'status' is set by the issuer" in e.value.message


def test_validity_window() -> None:
    presented = _present(_issue(nbf=NOW + 10), [("age_over_18",)])
    assert _code(lambda: _verify(presented)) is ErrorCode.NOT_YET_VALID
    expired = _present(_issue(exp=NOW - 1), [("age_over_18",)])
    assert _code(lambda: _verify(expired)) is ErrorCode.CREDENTIAL_EXPIRED


def test_reference_implementation_verifies_what_we_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `sd-jwt` reference implementation (0.10.4) accepts our SD-JWT+KB and reads the same
    claims. It hard-codes ES256 for the KB-JWT (DEFAULT_SIGNING_ALG); told EdDSA, it checks ours."""
    from jwcrypto.jwk import JWK
    from sd_jwt import verifier as ref

    monkeypatch.setattr(ref, "DEFAULT_SIGNING_ALG", "EdDSA")
    issuer_jwk = JWK.from_json(json.dumps(sdk.public_jwk(ISSUER_KEY.public_key)))
    presented = _present(
        _issue(), [("age_over_18",), ("address", "locality"), ("nationalities", 0)]
    )
    checked = ref.SDJWTVerifier(
        presented,
        lambda iss, header: issuer_jwk,
        expected_aud="https://bar.example",
        expected_nonce="n-1",
    )
    theirs = checked.get_verified_payload()
    ours = _verify(presented).claims
    assert theirs == ours
    assert theirs["age_over_18"] is True and "birthdate" not in theirs
    with pytest.raises(Exception, match="nonce"):
        ref.SDJWTVerifier(presented, lambda iss, header: issuer_jwk, "https://bar.example", "n-2")


def test_we_verify_what_the_reference_implementation_issues() -> None:
    from jwcrypto.jwk import JWK
    from sd_jwt.common import SDObj
    from sd_jwt.holder import SDJWTHolder
    from sd_jwt.issuer import SDJWTIssuer

    issuer_jwk = JWK.generate(kty="OKP", crv="Ed25519")
    holder_jwk = JWK.generate(kty="OKP", crv="Ed25519")
    claims = {
        "iss": "https://issuer.example",
        "vct": VCT,
        SDObj("age_over_18"): True,
        SDObj("birthdate"): "1990-05-17",
        "nationalities": [SDObj("CN"), "DE"],
    }
    issued = SDJWTIssuer(claims, issuer_jwk, holder_jwk, sign_alg="EdDSA").sd_jwt_issuance
    holder = SDJWTHolder(issued)
    holder.create_presentation(
        {"age_over_18": True, "nationalities": [True]},
        "n-9",
        "https://bar.example",
        holder_jwk,
        sign_alg="EdDSA",
    )
    issuer_key = base64.urlsafe_b64decode(json.loads(issuer_jwk.export_public())["x"] + "==")
    shown = sdk.verify_sd_jwt(
        holder.sd_jwt_presentation,
        now=NOW,
        nonce="n-9",
        aud="https://bar.example",
        issuer_key=issuer_key,
        max_kb_age=None,
    )
    assert shown.claims["age_over_18"] is True
    assert shown.claims["nationalities"] == ["CN", "DE"]
    assert "birthdate" not in shown.claims


def test_rfc9901_section5_disclosures_and_digests() -> None:
    """RFC 9901 §5: every disclosure's digest, the processed payload of the issuance and of the
    presentation, and the KB-JWT's sd_hash, computed by our code (signatures are ES256: not
    compared, see SOURCE.md)."""
    ex = vector("sd-jwt-rfc9901/section5-example.json")
    text = "".join(vector("sd-jwt-rfc9901/section5.txt").split())
    for d in ex["disclosures"]:
        assert d["disclosure"] in text  # the example file is the RFC's text
        assert sdk.sdjwt_digest(d["disclosure"]) == d["digest"]
    assert ex["issuer_signed_jwt"] in text
    payload = ex["sd_jwt_payload"]
    assert (
        json.loads(base64.urlsafe_b64decode(ex["issuer_signed_jwt"].split(".")[1] + "=="))
        == payload
    )

    everything, found = _process(payload, [d["disclosure"] for d in ex["disclosures"]])
    expected = dict(ex["user_claims"])
    expected.update({k: payload[k] for k in ("iss", "iat", "exp", "cnf")})
    assert everything == expected
    assert len(found) == 10

    presentation = ex["presentation"]["sd_jwt_kb"]
    _jwt, *disclosed, kb = presentation.split("~")
    shown, _ = _process(payload, disclosed)
    assert shown == ex["processed_payload"]
    sd_hash = (
        base64.urlsafe_b64encode(
            hashlib.sha256(presentation[: len(presentation) - len(kb)].encode()).digest()
        )
        .rstrip(b"=")
        .decode()
    )
    assert sd_hash == ex["presentation"]["kb_jwt_payload"]["sd_hash"]
    # a changed disclosure of the RFC example is refused by our processing
    with pytest.raises(InvalidInput) as e:
        _process(payload, [*disclosed[:-1], disclosed[-1][:-2] + "fQ"])
    assert e.value.code is ErrorCode.DISCLOSURE_INVALID


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(DISCLOSABLE)), st.integers(0, 3))
def test_any_chosen_subset_is_exactly_what_the_verifier_sees(
    chosen: set[tuple[str | int, ...]], decoys: int
) -> None:
    presented = _present(_ISSUED[decoys], sorted(chosen, key=str))
    shown = _verify(presented).claims
    # a claim is seen iff it (or, for a nested claim, it and its parent) was chosen
    wanted_paths = {p[: i + 1] for p in chosen for i in range(len(p))}
    for path in DISCLOSABLE:
        node: Any = shown
        for step in path[:-1]:
            node = node.get(step, {}) if isinstance(node, dict) else {}
        leaf = path[-1]
        if isinstance(leaf, int):
            visible = CLAIMS["nationalities"][leaf] in shown.get("nationalities", [])
        else:
            visible = isinstance(node, dict) and leaf in node
        assert visible == (
            path in wanted_paths or (path[:1] in wanted_paths and path not in DISCLOSABLE)
        )


_ISSUED = {n: _issue(decoys=n) for n in range(4)}
