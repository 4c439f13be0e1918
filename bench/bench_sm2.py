"""SM2 verify/s of the sm2-sm3 suite beside `openssl speed sm2`, measured in the same run.

    .venv/bin/python bench/bench_sm2.py [--seconds S] [--rounds R]

Prints, per round, the suite's single-thread verify/s, then `openssl speed sm2` (the ceiling: the
same libcrypto with no Python in the way), alternating so a busy machine hurts both alike, and the
house line `bench sm2-verify: <v> verifies/s (ceiling <c> verifies/s, ratio <r>)` with medians;
the suite's verify and sign rates are counted per second of the thread's CPU time, as
`openssl speed` counts its own (the wall-clock rate is printed beside it).
Also: batch_verify on the thread pool, sign/s, SM3 hashes/s, and gmssl-pyx for comparison.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable

from citychain.crypto import SM2_SM3, Signer, VerifyItem

MSG = b"m" * 32  # openssl speed signs a short buffer; the message length barely matters (SM3)


def cpu_rate(fn: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(calls per second of this thread's CPU time, calls per second of wall time).

    ``openssl speed`` counts user CPU time unless given ``-elapsed``, so its figure is what one
    core does however busy the machine is; a rate compared with it is counted the same way."""
    n, c0, t0 = 0, time.thread_time(), time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        n += 50
        if time.perf_counter() - t0 >= seconds:
            return n / (time.thread_time() - c0), n / (time.perf_counter() - t0)


def _rate(fn: Callable[[], object], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= end:
            return n / (now - t0)


def openssl_speed(seconds: float) -> tuple[float, float]:
    """(sign/s, verify/s) from `openssl speed -seconds S sm2` (one process, one core)."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(max(1, round(seconds))), "sm2"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"SM2 \(CurveSM2\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    if not m:
        raise SystemExit(f"cannot read `openssl speed sm2` output:\n{out}")
    return float(m.group(1)), float(m.group(2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    signer = Signer.generate(SM2_SM3)
    pub, sig = signer.public_key, signer.sign(MSG)
    assert SM2_SM3.verify(pub, MSG, sig)

    ours: list[float] = []
    ceil: list[float] = []
    for i in range(args.rounds):
        cpu, wall = cpu_rate(lambda: SM2_SM3.verify(pub, MSG, sig), args.seconds)
        ours.append(cpu)
        ceil.append(openssl_speed(args.seconds)[1])
        print(
            f"round {i + 1}: suite {cpu:,.0f} verifies per CPU second ({wall:,.0f} per wall "
            f"second), openssl speed {ceil[-1]:,.0f}"
        )
    v, c = statistics.median(ours), statistics.median(ceil)
    print(f"bench sm2-verify: {v:,.0f} verifies/s (ceiling {c:,.0f} verifies/s, ratio {v / c:.2f})")

    sign_rate = cpu_rate(lambda: SM2_SM3.sign(signer.secret, MSG), args.seconds)[0]
    ossl_sign = openssl_speed(args.seconds)[0]
    print(
        f"bench sm2-sign: {sign_rate:,.0f} signs/s (ceiling {ossl_sign:,.0f} signs/s, "
        f"ratio {sign_rate / ossl_sign:.2f})"
    )

    signers = [Signer.generate(SM2_SM3) for _ in range(32)]
    items = [VerifyItem(s.public_key, MSG, s.sign(MSG)) for s in signers] * 64
    t0 = time.perf_counter()
    assert all(SM2_SM3.batch_verify(items))
    batch = len(items) / (time.perf_counter() - t0)
    print(
        f"bench sm2-batch-verify: {batch:,.0f} verifies/s on {os.cpu_count()} cores "
        f"(single thread {v:,.0f}, speedup {batch / v:.2f})"
    )

    blob = b"x" * 250
    print(f"bench sm3-250B: {_rate(lambda: SM2_SM3.hash(blob), 1.0):,.0f} hashes/s")

    try:
        import gmssl_pyx  # type: ignore[import-untyped]
    except ImportError:
        print("gmssl-pyx: not installed")
        return
    gpub, gpriv = gmssl_pyx.sm2_key_generate()
    gsig = gmssl_pyx.sm2_sign(gpriv, gpub, MSG)
    g = _rate(lambda: gmssl_pyx.sm2_verify(gpub, MSG, gsig), args.seconds)
    print(f"gmssl-pyx sm2_verify: {g:,.0f} verifies/s (the suite is {v / g:.2f}x)")


if __name__ == "__main__":
    main()
