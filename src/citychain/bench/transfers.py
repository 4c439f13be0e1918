"""`citychain bench transfers`: committed token transfers per second through the API.

1. Measure the ceiling: this machine's verifications/s on all cores for the chain's suite
   (the issuer key's: Ed25519, or SM2 on an sm2-sm3 chain, whose senders are SM2 keys too).
2. Fund ``senders`` fresh accounts with one batch of mints from an issuer key.
3. Pre-sign ``per_sender`` transfers for each sender (signing is not what is measured).
   On a chain in registered-key identity mode an organisation admin's key first registers
   the senders as members (``--admin``).
4. Submit them in CBOR batches over a few concurrent HTTP connections, then follow the chain
   until every admitted transfer is committed (or the deadline passes). Every transfer sends
   1 token to one fresh sink account, so the sink's balance counts the successful ones. The
   figure is committed successful transfers divided by the time from the first submission
   until the last one is committed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import cbor2
import httpx

from citychain.bench import node_errors
from citychain.bench.ceiling import verifications_per_second
from citychain.crypto import Signer
from citychain.errors import Unavailable
from citychain.types import Transaction


@dataclass(frozen=True, slots=True)
class TransfersResult:
    committed: int
    seconds: float
    submitted: int
    rejected: int
    ceiling: float
    blocks: int
    first_height: int
    last_height: int

    @property
    def rate(self) -> float:
        return self.committed / self.seconds if self.seconds else 0.0


async def _post_batch(client: httpx.AsyncClient, raws: list[bytes]) -> int:
    resp = await client.post(
        "/v1/txs", content=cbor2.dumps(raws), headers={"content-type": "application/cbor"}
    )
    resp.raise_for_status()
    return sum(1 for r in resp.json()["results"] if r["code"] != "ok")


async def _send_in_chunks(
    client: httpx.AsyncClient,
    signer: Signer,
    calls: list[tuple[str, str, dict[str, Any]]],
    *,
    chain_id: str,
    batch: int,
    deadline: float,
    what: str,
) -> None:
    """Send ``calls`` (contract, method, args) from ``signer`` with consecutive nonces, in
    chunks that fit the mempool's per-sender nonce window, waiting for each chunk."""
    acct = (await client.get(f"/v1/accounts/{signer.address.hex()}")).json()
    nonce = int(acct["pending_nonce"])
    txs = [
        Transaction.create(
            signer, chain_id=chain_id, nonce=nonce + i, contract=c, method=m, args=a
        ).encode()
        for i, (c, m, a) in enumerate(calls)
    ]
    chunk = min(batch, 500)
    for i in range(0, len(txs), chunk):
        refused = await _post_batch(client, txs[i : i + chunk])
        if refused:
            raise Unavailable(f"{refused} {what} were refused")
        want = min(i + chunk, len(txs))
        while True:
            acct = (await client.get(f"/v1/accounts/{signer.address.hex()}")).json()
            done = int(acct["nonce"]) - nonce
            if done >= want:
                break
            if time.monotonic() >= deadline:
                # Said here: going on would time a load that never started, as "0/s".
                raise Unavailable(
                    f"the benchmark's time ran out while its setup waited for {what}: "
                    f"{max(done, 0)} of {len(txs)} committed. The node commits them too "
                    "slowly for the deadline: use fewer senders (--senders)"
                )
            await asyncio.sleep(0.05)


def _member_args(account: Signer, org: str) -> dict[str, Any]:
    return {"public_key": account.public_key, "org": org, "roles": ["member"]}


async def fund_senders(
    client: httpx.AsyncClient,
    issuer: Signer,
    *,
    chain_id: str,
    senders: int,
    batch: int,
    deadline: float,
    admin: tuple[Signer, str] | None = None,
) -> list[Signer]:
    """Fresh accounts, each minted 10^9 tokens by ``issuer``; returns once all are funded.
    With ``admin`` (an organisation admin's key and its organisation), the accounts are first
    registered as members of that organisation (a chain in registered-key identity mode)."""
    accounts = [Signer.generate(issuer.suite) for _ in range(senders)]
    if admin is not None:
        signer, org = admin
        await _send_in_chunks(
            client,
            signer,
            [("gov", "register_member", _member_args(a, org)) for a in accounts],
            chain_id=chain_id,
            batch=batch,
            deadline=deadline,
            what="member registrations (is the key an admin of the organisation?)",
        )
    await _send_in_chunks(
        client,
        issuer,
        [("token", "mint", {"to": a.address, "amount": 10**9}) for a in accounts],
        chain_id=chain_id,
        batch=batch,
        deadline=deadline,
        what="funding mints (is the key an issuer?)",
    )
    return accounts


async def run_transfers(
    url: str | list[str],
    issuer: Signer,
    *,
    chain_id: str,
    senders: int = 2000,
    per_sender: int = 50,
    batch: int = 1000,
    concurrency: int = 4,
    timeout: float = 300.0,
    log: Callable[[str], None] = print,
    admin: tuple[Signer, str] | None = None,
    before_load: Callable[[], Awaitable[None]] | None = None,
) -> TransfersResult:
    """Fund ``senders`` accounts, sign ``per_sender`` transfers each, post them in batches over
    the nodes and wait until all are committed. ``before_load`` runs once the accounts are
    funded and the transfers signed, right before the first is posted (``bench profile``
    reads the nodes' stage clocks there)."""
    urls = [url] if isinstance(url, str) else list(url)
    # The chain's suite is the issuer key's: senders, sink and ceiling are of it (an sm2-sm3
    # chain refuses Ed25519 senders).
    ceiling = verifications_per_second(issuer.suite)
    log(f"ceiling: {ceiling:,.0f} {issuer.suite.name} verifications/s on all cores")
    with node_errors(urls[0]):
        others = [httpx.AsyncClient(base_url=u, timeout=60.0) for u in urls[1:]]
        async with httpx.AsyncClient(base_url=urls[0], timeout=60.0) as client:
            deadline = time.monotonic() + timeout
            accounts = await fund_senders(
                client,
                issuer,
                chain_id=chain_id,
                senders=senders,
                batch=batch,
                deadline=deadline,
                admin=admin,
            )
            log(f"funded {senders} senders")
            clients = [client, *others]
            sink = Signer.generate(issuer.suite).address
            txs: list[Transaction] = []
            for n in range(per_sender):
                for a in accounts:
                    txs.append(
                        Transaction.create(
                            a,
                            chain_id=chain_id,
                            nonce=n,
                            contract="token",
                            method="transfer",
                            args={"to": sink, "amount": 1},
                        )
                    )
            raws = [t.encode() for t in txs]
            log(f"signed {len(raws)} transfers; submitting")
            if before_load is not None:
                await before_load()
            start_height = int((await client.get("/v1/status")).json()["height"])
            t0 = time.monotonic()
            sem = asyncio.Semaphore(concurrency)
            rejected = 0

            async def send(n: int, part: list[bytes]) -> None:
                nonlocal rejected
                async with sem:
                    rejected += await _post_batch(clients[n % len(clients)], part)

            # Batches go round-robin over the nodes; a node that gets a sender's nonce n+1 before
            # gossip brings nonce n holds it as gapped (within the mempool's nonce window).
            await asyncio.gather(
                *(send(k, raws[i : i + batch]) for k, i in enumerate(range(0, len(raws), batch)))
            )
            for c in others:
                await c.aclose()
            log(f"submitted in {time.monotonic() - t0:.1f}s; waiting for commits")
            args = json.dumps({"owner": {"hex": sink.hex()}})
            expected = len(raws) - rejected
            committed = 0
            last = start_height
            while time.monotonic() < deadline:
                resp = await client.get("/v1/query/token/balance", params={"args": args})
                committed = int(resp.json()["result"])
                last = int((await client.get("/v1/status")).json()["height"])
                if committed >= expected:
                    break
                await asyncio.sleep(0.05)
            seconds = time.monotonic() - t0
            return TransfersResult(
                committed=committed,
                seconds=seconds,
                submitted=len(raws),
                rejected=rejected,
                ceiling=ceiling,
                blocks=last - start_height,
                first_height=start_height + 1,
                last_height=last,
            )
