"""Coverage-guided fuzzing of every decoder of outside bytes, with a CPU budget (issue 15.2).

Each decoder runs in its own process under atheris (libFuzzer) for ``--seconds``, seeded with
the canonical vectors. An input "crashes" if the decoder raises anything but a citychain
error; it is "over budget" if it costs more CPU than ``0.03 s + 5 us per byte`` (the budget
of ``tests/fuzz/test_decoder_fuzz.py``). Crashing and over-budget inputs are kept, not fatal,
so the run goes on; they are written under ``--out``. One line per decoder::

    fuzz <decoder>: <execs> execs in <s> s (<execs/s>/s), <crashes> crashes, <over> over budget,
      slowest <ms> ms for <bytes> bytes

atheris is not a dependency (the suite uses hypothesis); install it into the venv first::

    .venv/bin/pip install atheris
    .venv/bin/python bench/fuzz_decoders.py --seconds 20            # every decoder
    .venv/bin/python bench/fuzz_decoders.py --seconds 60 transaction block
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors" / "canonical"
NAMES = [
    "codec",
    "transaction",
    "header",
    "block",
    "commit",
    "vote",
    "evidence",
    "receipt",
    "consensus-message",
    "sync-message",
    "p2p-control",
    "p2p-frames",
    "api-tx-batch",
    "api-json-body",
    "keystore",
    "genesis",
    "config",
]


def _decoders(tmp: Path) -> dict[str, Any]:
    from citychain import codec
    from citychain.api._body import parse_cbor_byte_array, parse_json_object
    from citychain.consensus import messages
    from citychain.crypto.keystore import import_key
    from citychain.node.config import NodeConfig
    from citychain.p2p.frames import FrameDecoder, decode_control
    from citychain.sync import messages as sync_messages
    from citychain.types.block import Block, Commit, Header
    from citychain.types.evidence import DuplicateVoteEvidence
    from citychain.types.genesis import Genesis
    from citychain.types.receipt import Receipt
    from citychain.types.tx import Transaction
    from citychain.types.vote import Vote

    (tmp / "config").mkdir(exist_ok=True)

    def genesis(d: bytes) -> Any:
        (tmp / "genesis.json").write_bytes(d)
        return Genesis.load(tmp / "genesis.json")

    def config(d: bytes) -> Any:
        (tmp / "config" / "node.toml").write_bytes(d)
        return NodeConfig.load(tmp)

    return {
        "codec": codec.decode,
        "transaction": Transaction.decode,
        "header": Header.decode,
        "block": Block.decode,
        "commit": Commit.decode,
        "vote": Vote.decode,
        "evidence": DuplicateVoteEvidence.decode,
        "receipt": Receipt.decode,
        "consensus-message": lambda d: messages.decode(d, max_size=1 << 20),
        "sync-message": lambda d: sync_messages.decode(d, max_size=1 << 20),
        "p2p-control": decode_control,
        "p2p-frames": lambda d: FrameDecoder(1 << 20).feed(d),
        "api-tx-batch": lambda d: parse_cbor_byte_array(d, 50),
        "api-json-body": lambda d: parse_json_object(d, "body"),
        "keystore": lambda d: import_key(d.decode("utf-8", "replace"), "passphrase"),
        "genesis": genesis,
        "config": config,
    }


def _child(name: str, seconds: float, out: Path, corpus: Path, scratch: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["citychain"]):
        from citychain.errors import CitychainError

        decoder = _decoders(scratch)[name]
    stats = {"name": name, "execs": 0, "crashes": 0, "over": 0, "slowest": 0.0, "slow_len": 0}
    began = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)

    def one(data: bytes) -> None:
        start = time.process_time()
        try:
            decoder(data)
        except CitychainError:
            pass
        except Exception as exc:
            stats["crashes"] += 1
            (out / f"crash-{name}-{stats['crashes']}.bin").write_bytes(data)
            (out / f"crash-{name}-{stats['crashes']}.txt").write_text(repr(exc))
        spent = time.process_time() - start
        stats["execs"] += 1
        if spent > stats["slowest"]:
            stats["slowest"], stats["slow_len"] = spent, len(data)
        if spent > 0.03 + 5e-6 * len(data):
            stats["over"] += 1
            (out / f"slow-{name}-{stats['over']}.bin").write_bytes(data)
        if time.monotonic() - began >= seconds:
            stats["seconds"] = time.monotonic() - began
            print("STATS " + json.dumps(stats), flush=True)
            os._exit(0)

    atheris.Setup([sys.argv[0], "-max_len=4096", "-rss_limit_mb=2048", str(corpus)], one)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("decoders", nargs="*", help=f"default: all ({', '.join(NAMES)})")
    parser.add_argument("--seconds", type=float, default=20.0, help="per decoder")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.seconds, args.out, args.corpus, args.scratch)
        return
    names = args.decoders or NAMES
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown decoder {unknown[0]!r}; known: {', '.join(NAMES)}")
    total = {"execs": 0, "crashes": 0, "over": 0}
    for name in names:
        # The child leaves with os._exit (libFuzzer's loop does not return), so what it needs on
        # disk is made and removed here.
        with (
            tempfile.TemporaryDirectory(prefix="citychain-corpus-") as corpus,
            tempfile.TemporaryDirectory(prefix="citychain-fuzz-") as scratch,
        ):
            for i, f in enumerate(sorted(VECTORS.glob("*.json"))):
                for j, case in enumerate(json.loads(f.read_text())["cases"]):
                    if "encoding" in case:
                        Path(corpus, f"{i}-{j}").write_bytes(bytes.fromhex(case["encoding"]))
            cmd = [sys.executable, __file__, "--child", name, "--seconds", str(args.seconds)]
            cmd += ["--out", str(args.out), "--corpus", corpus, "--scratch", scratch]
            run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = next((x for x in run.stdout.splitlines() if x.startswith("STATS ")), None)
        if line is None:
            print(f"fuzz {name}: the fuzzer stopped (exit {run.returncode}):")
            print(run.stderr[-2000:])
            total["crashes"] += 1
            continue
        s = json.loads(line[6:])
        for k in total:
            total[k] += s[k]
        print(
            f"fuzz {name}: {s['execs']} execs in {s['seconds']:.0f} s "
            f"({s['execs'] / s['seconds']:.0f}/s), {s['crashes']} crashes, {s['over']} over "
            f"budget, slowest {s['slowest'] * 1e3:.1f} ms for {s['slow_len']} bytes",
            flush=True,
        )
    t = total
    print(f"fuzz total: {t['execs']} execs, {t['crashes']} crashes, {t['over']} over budget")


if __name__ == "__main__":
    main()
