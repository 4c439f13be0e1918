"""`citychain bench latency`: submit-to-commit latency at a fixed offered load.

1. Fund ``senders`` accounts (as ``bench transfers`` does) and pre-sign the transfers.
2. Offer ``rate`` transfers per second for ``duration`` seconds: every 100 ms a batch of
   ``rate / 10`` goes to the next node, round-robin; the time each batch was sent is kept
   per transaction hash.
3. Meanwhile follow the committed blocks of the first node (``GET /v1/blocks/{h}``) and note
   when each transaction is first seen committed. Latency = seen committed - submitted, so
   it includes block time, consensus and the polling interval (50 ms).

Reported: p50 and p99 over the transfers committed, and the committed rate. The ceiling is the
machine's verifications/s for the chain's suite (the issuer key's), measured in the same run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import cbor2
import httpx

from citychain.bench import node_errors
from citychain.bench.ceiling import verifications_per_second
from citychain.bench.transfers import fund_senders
from citychain.crypto import Signer
from citychain.types import Transaction


@dataclass(frozen=True, slots=True)
class LatencyResult:
    offered_rate: int
    submitted: int
    committed: int
    seconds: float
    p50_s: float
    p99_s: float
    max_s: float
    ceiling: float

    @property
    def committed_rate(self) -> float:
        return self.committed / self.seconds if self.seconds else 0.0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


async def run_latency(
    urls: list[str],
    issuer: Signer,
    *,
    chain_id: str,
    rate: int,
    duration: int,
    senders: int = 500,
    timeout: float = 120.0,
    log: Callable[[str], None] = print,
    admin: tuple[Signer, str] | None = None,
) -> LatencyResult:
    # The chain's suite is the issuer key's: senders, sink and ceiling are of it (an sm2-sm3
    # chain refuses Ed25519 senders).
    ceiling = verifications_per_second(issuer.suite)
    log(f"ceiling: {ceiling:,.0f} {issuer.suite.name} verifications/s on all cores")
    with node_errors(urls[0]):
        clients = [httpx.AsyncClient(base_url=u, timeout=60.0) for u in urls]
        try:
            first = clients[0]
            deadline = time.monotonic() + timeout + duration
            accounts = await fund_senders(
                first,
                issuer,
                chain_id=chain_id,
                senders=senders,
                batch=500,
                deadline=deadline,
                admin=admin,
            )
            total = rate * duration
            sink = Signer.generate(issuer.suite).address
            txs = [
                Transaction.create(
                    accounts[i % senders],
                    chain_id=chain_id,
                    nonce=i // senders,
                    contract="token",
                    method="transfer",
                    args={"to": sink, "amount": 1},
                )
                for i in range(total)
            ]
            log(f"funded {senders} senders, signed {total} transfers; offering {rate}/s")
            sent_at: dict[bytes, float] = {}
            seen_at: dict[bytes, float] = {}
            height = int((await first.get("/v1/status")).json()["height"])
            done = asyncio.Event()

            async def follow() -> None:
                nonlocal height
                while not done.is_set():
                    resp = await first.get(f"/v1/blocks/{height + 1}")
                    if resp.status_code != 200:
                        await asyncio.sleep(0.05)
                        continue
                    now = time.monotonic()
                    height += 1
                    for tx in resp.json()["txs"]:
                        h = bytes.fromhex(tx["hash"])
                        if h in sent_at and h not in seen_at:
                            seen_at[h] = now
                    if len(seen_at) >= len(sent_at) == total:
                        done.set()

            follower = asyncio.create_task(follow())
            per_tick = max(1, rate // 10)
            t0 = time.monotonic()
            for k, i in enumerate(range(0, total, per_tick)):
                due = t0 + k * 0.1
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                part = txs[i : i + per_tick]
                stamp = time.monotonic()
                for tx in part:
                    sent_at[tx.hash] = stamp
                await clients[k % len(clients)].post(
                    "/v1/txs",
                    content=cbor2.dumps([t.encode() for t in part]),
                    headers={"content-type": "application/cbor"},
                )
            with_timeout = deadline - time.monotonic()
            try:
                await asyncio.wait_for(done.wait(), max(1.0, with_timeout))
            except TimeoutError:
                log(f"timed out with {len(seen_at)} of {total} committed")
            done.set()
            await follower
            seconds = max(seen_at.values(), default=t0) - t0
            lat = sorted(seen_at[h] - sent_at[h] for h in seen_at)
            return LatencyResult(
                offered_rate=rate,
                submitted=total,
                committed=len(seen_at),
                seconds=seconds,
                p50_s=percentile(lat, 0.50),
                p99_s=percentile(lat, 0.99),
                max_s=lat[-1] if lat else 0.0,
                ceiling=ceiling,
            )
        finally:
            for c in clients:
                await c.aclose()
