"""Canonical decoding: transactions decoded with every check, beside cbor2 building them alone.

    .venv/bin/python bench/bench_codec.py [--seconds T] [--rounds R]

Every transaction a node admits, and every block it syncs, is decoded by ``codec.decode``:
the scan that refuses anything but the canonical encoding (:func:`citychain.codec.scan`),
then cbor2 building the value. Two transactions as the benches send them: an
``identity.create_did`` (the ``citychain did create`` document, 413 bytes) and a token
transfer (159 bytes). One thread, ``T`` seconds per measurement, medians of ``R`` rounds,
the ceiling measured alternately with the figure:

* ``codec-decode-<tx>``: ``codec.decode`` per second. Ceiling: ``cbor2.loads`` of the same
  bytes, which checks nothing (what the canonical checks cost is the gap).
* ``tx-decode-<tx>``: ``Transaction.decode`` (the codec, then the fields' checks and the
  signing bytes cut from the wire), same ceiling.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cbor2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from citychain import codec
from citychain.bench import result_line
from citychain.crypto import ED25519, Signer
from citychain.services.identity.cli import own_document
from citychain.services.identity.sdk._dids import DID_GAS_LIMIT
from citychain.types import Transaction


def _rate(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            fn()
        n += 200
    return n / elapsed


def _txs() -> dict[str, bytes]:
    s = Signer(ED25519, b"\x07" * 32)
    create = Transaction.create(
        s,
        chain_id="bench",
        nonce=3,
        contract="identity",
        method="create_did",
        args={"document": own_document(s.public_key)},
        gas_limit=DID_GAS_LIMIT,
        expiry=1_000,
    )
    transfer = Transaction.create(
        s,
        chain_id="bench",
        nonce=3,
        contract="token",
        method="transfer",
        args={"to": bytes(20), "amount": 5},
        gas_limit=50_000,
        expiry=1_000,
    )
    return {"create-did": create.encode(), "transfer": transfer.encode()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    for name, data in _txs().items():
        for what, fn in (
            ("codec-decode", lambda d=data: codec.decode(d)),
            ("tx-decode", lambda d=data: Transaction.decode(d)),
        ):
            ours, ceil = [], []
            for _ in range(args.rounds):
                ours.append(_rate(fn, args.seconds))
                ceil.append(_rate(lambda d=data: cbor2.loads(d), args.seconds))
            print(
                result_line(
                    f"{what}-{name}",
                    statistics.median(ours),
                    f"decodes/s ({len(data)} bytes)",
                    statistics.median(ceil),
                    "cbor2.loads/s",
                )
            )


if __name__ == "__main__":
    main()
