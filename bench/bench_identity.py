"""Credential verification and status checks per second, beside Ed25519 in the same run.

    .venv/bin/python bench/bench_identity.py [--seconds S] [--rounds R]

Pure SDK work on one core (no node): the figures of issue 11's "credential verify (/s, for each
proof format)" and "status check (/s)". Each line is the house form
``bench <name>: <v> <unit> (ceiling <c> <unit>, ratio <r>)`` with medians over the rounds,
the ceiling measured alternately with the figure so a busy machine hurts both alike:

* ``vc-verify-jcs`` / ``vc-verify-rdfc``: ``verify_credential`` of a business licence from the
  template (shape, bundled contexts, the Data Integrity proof, the issuer's key, validity
  dates, its JSON Schema), a ``did:key`` issuer resolved locally. Ceiling: raw Ed25519
  verifications/s (PyNaCl) of a 32-byte message, one signature being the least a verification
  can cost.
* ``sd-jwt-verify``: ``verify_sd_jwt`` of a presentation disclosing 3 of 9 claims with key
  binding (two signatures: issuer and holder). Ceiling: raw Ed25519 verifications/s / 2.
* ``status-check``: ``check_status`` of a credential against a 131,072-entry status list
  credential already verified (decoding its GZIP bitstring, then one bit). Ceiling: GZIP
  decompressions/s of the same ``encodedList``, the irreducible part of a check.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from nacl.signing import SigningKey

from citychain.crypto import ED25519, Signer
from citychain.services.identity.sdk import (
    EDDSA_JCS_2022,
    EDDSA_RDFC_2022,
    StatusList,
    check_status,
    credential_from_template,
    issue_credential,
    issue_sd_jwt,
    present_sd_jwt,
    status_entry,
    status_list_credential,
    verify_credential,
    verify_sd_jwt,
)
from citychain.services.identity.shapes import did_key, multikey_encode

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _rate(fn: Callable[[], object], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(20):
            fn()
        n += 20
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    issuer, holder = Signer(ED25519, b"\x07" * 32), Signer(ED25519, b"\x08" * 32)
    did = did_key(issuer.public_key)
    vm = f"{did}#{multikey_encode(issuer.public_key)}"
    lst = "https://city.example/status/1"
    subject = {
        "id": did_key(holder.public_key),
        "legalName": "Fuzhou Tea Co., Ltd.",
        "unifiedSocialCreditCode": "91350100MA2Y7K1234",
        "legalRepresentative": "Chen Mei",
        "registeredAddress": "1 Wuyi Road, Gulou District, Fuzhou",
        "establishedOn": "2021-03-04",
    }
    vc = credential_from_template(
        "business-licence",
        issuer=did,
        subject=subject,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        credential_status=status_entry(lst, 4242),
    )
    jcs = issue_credential(vc, issuer, vm, cryptosuite=EDDSA_JCS_2022)
    rdfc = issue_credential(vc, issuer, vm, cryptosuite=EDDSA_RDFC_2022)

    now_s = int(NOW.timestamp())
    claims = {f"claim_{i}": f"value {i}" for i in range(9)}
    sd = issue_sd_jwt(
        claims,
        issuer,
        issuer=did,
        vct="https://w3id.org/citychain/vct/resident",
        disclosable=[(k,) for k in claims],
        holder_key=holder.public_key,
        kid=vm,
        iat=now_s - 100,
        exp=now_s + 86_400,
    )
    shown = present_sd_jwt(
        sd, [("claim_0",), ("claim_1",), ("claim_2",)], holder=holder, nonce="n", aud="a",
        iat=now_s,
    )  # fmt: skip

    status = StatusList()
    for i in range(0, 131_072, 97):
        status.set(i)
    list_vc = status_list_credential(lst, did, status)
    packed = base64.urlsafe_b64decode(list_vc["credentialSubject"]["encodedList"][1:] + "==")

    key = SigningKey(b"\x05" * 32)
    msg = b"m" * 32
    sig = key.sign(msg).signature
    vk = key.verify_key

    cases: list[tuple[str, str, Callable[[], object], Callable[[], object], str, float]] = [
        ("vc-verify-jcs", "verifies/s", lambda: verify_credential(jcs, now=NOW),
         lambda: vk.verify(msg, sig), "Ed25519 verifies/s", 1.0),
        ("vc-verify-rdfc", "verifies/s", lambda: verify_credential(rdfc, now=NOW),
         lambda: vk.verify(msg, sig), "Ed25519 verifies/s", 1.0),
        ("sd-jwt-verify", "verifies/s",
         lambda: verify_sd_jwt(shown, now=now_s, nonce="n", aud="a"),
         lambda: vk.verify(msg, sig), "Ed25519 verifies/s / 2", 0.5),
        ("status-check", "checks/s", lambda: check_status(jcs, list_vc),
         lambda: gzip.decompress(packed), "gzip decodes/s", 1.0),
    ]  # fmt: skip
    for name, unit, fn, ceiling_fn, ceiling_unit, factor in cases:
        ours, ceil = [], []
        for _ in range(args.rounds):
            ours.append(_rate(fn, args.seconds))
            ceil.append(_rate(ceiling_fn, args.seconds) * factor)
        v, c = statistics.median(ours), statistics.median(ceil)
        print(f"bench {name}: {v:,.0f} {unit} (ceiling {c:,.0f} {ceiling_unit}, ratio {v / c:.3f})")


if __name__ == "__main__":
    main()
