"""Bitstring Status List v1.0: the list's encoding, set/get, the status list credential, checking
a credential's status, and the index allocator (a keyed permutation: no collisions, no order)."""

from __future__ import annotations

import base64
import gzip
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vc_fixtures import NOW, VALID_FROM, DictResolver, did_document, licence_subject, signer

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity import sdk

ISSUER_KEY = signer(21)
ISSUER = "did:citychain:7ZqbGwZ1S3nV5fTnLdYt2c"
VM = f"{ISSUER}#key-1"
RESOLVER = DictResolver(did_document(ISSUER, {"key-1": ISSUER_KEY}, {"assertionMethod": ["key-1"]}))
LIST_URL = f"{ISSUER}/status/revocation-1"


def test_a_new_list_has_131072_entries_and_encodes_per_spec() -> None:
    status = sdk.StatusList()
    assert status.size == 131_072
    encoded = status.encode()
    assert encoded.startswith("u") and "=" not in encoded
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert raw == bytes(16_384)
    assert encoded == sdk.StatusList().encode()  # deterministic (GZIP mtime 0)


def test_index_zero_is_the_left_most_bit() -> None:
    status = sdk.StatusList()
    status.set(0)
    status.set(131_071)
    assert status.bits[0] == 0x80 and status.bits[-1] == 0x01
    assert status.get(0) and status.get(131_071) and not status.get(1)
    status.set(0, False)
    assert not status.get(0)


@settings(max_examples=25, deadline=None)
@given(st.sets(st.integers(0, 131_071), max_size=50))
def test_encode_decode_round_trip(indexes: set[int]) -> None:
    status = sdk.StatusList()
    for i in indexes:
        status.set(i)
    back = sdk.StatusList.decode(status.encode())
    assert back.bits == status.bits
    assert {i for i in range(0, 131_072) if i in indexes and back.get(i)} == indexes


def test_bad_lists_and_indexes_are_refused() -> None:
    with pytest.raises(InvalidInput):
        sdk.StatusList(1024)
    status = sdk.StatusList()
    for bad in (-1, 131_072, "5"):
        with pytest.raises(InvalidInput):
            status.get(bad)  # type: ignore[arg-type]
    short = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(1024))).rstrip(b"=").decode()
    for encoded in ("zabc", "u!!!", short):
        with pytest.raises(InvalidInput) as e:
            sdk.StatusList.decode(encoded)
        assert e.value.code is ErrorCode.INVALID_CREDENTIAL


@pytest.mark.parametrize("purpose", ["revocation", "suspension"])
def test_status_list_credential_and_check(purpose: str) -> None:
    allocator = sdk.IndexAllocator(b"issuer secret key 0123456789abcd")
    index = allocator.index(0)
    entry = sdk.status_entry(LIST_URL, index, purpose)
    assert entry["statusListIndex"] == str(index) and entry["id"] != LIST_URL
    vc = sdk.issue_credential(
        sdk.credential_from_template(
            "business-licence",
            issuer=ISSUER,
            subject=licence_subject(),
            valid_from=VALID_FROM,
            credential_status=entry,
        ),
        ISSUER_KEY,
        VM,
    )
    status = sdk.StatusList()

    def published() -> dict[str, object]:
        list_vc = sdk.issue_credential(
            sdk.status_list_credential(LIST_URL, ISSUER, status, purpose, valid_from=VALID_FROM),
            ISSUER_KEY,
            VM,
        )
        assert "BitstringStatusListCredential" in list_vc["type"]
        sdk.verify_credential(list_vc, now=NOW, resolver=RESOLVER)  # the list itself verifies
        return list_vc

    sdk.check_status(vc, published())
    status.set(index)
    with pytest.raises(InvalidInput) as e:
        sdk.check_status(vc, published())
    expected = (
        ErrorCode.CREDENTIAL_REVOKED if purpose == "revocation" else ErrorCode.CREDENTIAL_SUSPENDED
    )
    assert e.value.code is expected
    other = "revocation" if purpose == "suspension" else "suspension"
    with pytest.raises(InvalidInput) as e:
        sdk.check_status(vc, sdk.status_list_credential(LIST_URL, ISSUER, status, other))
    assert e.value.code is ErrorCode.INVALID_CREDENTIAL


def test_allocator_is_a_permutation_of_a_small_space() -> None:
    for size in (2, 3, 1000, 4096):
        allocator = sdk.IndexAllocator(b"k" * 16, size)
        assert sorted(allocator.index(n) for n in range(size)) == list(range(size))


def test_allocator_hides_the_order_of_issuance() -> None:
    allocator = sdk.IndexAllocator(b"issuer secret key 0123456789abcd")
    first = [allocator.index(n) for n in range(2_000)]
    assert len(set(first)) == 2_000
    # consecutive issuances land far apart: no run of neighbours betrays the order
    gaps = [abs(a - b) for a, b in itertools.pairwise(first)]
    assert sum(g < 64 for g in gaps) < 10
    assert 131_072 / 4 < sum(first) / len(first) < 131_072 * 3 / 4
    # another key, another permutation: indexes say nothing without the issuer's key
    other = sdk.IndexAllocator(b"another issuer's secret key 0000")
    assert sum(a == other.index(n) for n, a in enumerate(first)) < 5


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=16, max_size=32), st.integers(2, 300_000), st.data())
def test_allocator_stays_in_range_and_never_collides(
    key: bytes, size: int, data: st.DataObject
) -> None:
    allocator = sdk.IndexAllocator(key, size)
    ns = data.draw(st.sets(st.integers(0, size - 1), min_size=1, max_size=40))
    out = [allocator.index(n) for n in ns]
    assert all(0 <= i < size for i in out)
    assert len(set(out)) == len(out)


def test_status_entries_read_a_vc_and_an_sd_jwt_alike_and_refuse_odd_indexes() -> None:
    """The one reader of status entries (the VC-API, the offline bundle, check_status and
    the CLI's revoke use it): list, index and purpose, or invalid_credential."""
    from citychain.crypto import ED25519, Signer

    lst = "did:citychain:3nWDRRHmxJM8xLi6hv7wJr/status/licences"
    vc = {"credentialStatus": [sdk.status_entry(lst, 42), {"type": "Other"}]}
    assert sdk.status_entries(vc) == [(lst, 42, "revocation")]
    assert sdk.status_entries({}) == []
    token = sdk.issue_sd_jwt({"a": 1}, Signer(ED25519, bytes(32)), issuer="did:example:1",
                             vct="T", disclosable=[], holder_key=None,
                             status=sdk.sd_jwt_status(lst, 7))  # fmt: skip
    assert sdk.status_entries(token) == [(lst, 7, None)]
    for odd in ("²", "٣", "-1", "9" * 13, 5):
        bad = {"credentialStatus": {**sdk.status_entry(lst, 1), "statusListIndex": odd}}
        with pytest.raises(InvalidInput) as e:
            sdk.status_entries(bad)
        assert e.value.code is ErrorCode.INVALID_CREDENTIAL
    no_purpose = {k: v for k, v in sdk.status_entry(lst, 1).items() if k != "statusPurpose"}
    with pytest.raises(InvalidInput, match="statusPurpose"):
        sdk.status_entries({"credentialStatus": no_purpose})
    with pytest.raises(InvalidInput, match="not an SD-JWT"):
        sdk.status_entries("no-dots-here")
