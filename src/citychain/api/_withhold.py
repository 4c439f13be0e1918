"""Private calls in public answers: who is shown a transaction whole.

A contract names the methods whose calls are not public (``Contract.private_methods``: the
data service's requests, decisions, downloads, the people a dataset version is about...).
Blocks and transactions are otherwise public over the API, so without this a private query's
signed read (:mod:`citychain.api._httpsig`) could be had for free from ``GET /v1/blocks/...``.

Theory of operation
-------------------
An answer that holds a private call (``NodeService.private_call``) looks at the request's
RFC 9421 signature, and only then (an answer without one costs nothing more):

============================================  ============================================
reader                                        a private call is shown
============================================  ============================================
no signature                                  withheld (:class:`~citychain.types.answers.
                                              WithheldTx`: hash, contract, method, leaf)
a member in good standing of an organisation  whole (members' nodes hold every block)
the call's sender or one of its endorsers     whole (its own transaction)
anyone else                                   withheld
a signature that does not verify              401, as on every signed route
============================================  ============================================

The membership is read from the latest state (``gov.member``), as the services' signed
routes read it. Public calls are always shown whole, signed or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from citychain.api._httpsig import signed_request
from citychain.api.service import NodeService
from citychain.types import Transaction
from citychain.types.answers import Withhold

__all__ = ["withholding"]

_GOV = "gov"


async def withholding(
    request: Request, service: NodeService, txs: Iterable[Transaction | Any]
) -> Withhold | None:
    """What an answer holding ``txs`` withholds from this request's reader (None: nothing).
    Raises the 401 of a signature that is present but does not verify."""
    private = service.private_call
    if not any(isinstance(tx, Transaction) and private(tx) for tx in txs):
        return None
    if "signature-input" not in request.headers:
        return private
    signed = await signed_request(request)
    m = await service.query(_GOV, "member", {"address": signed.address})
    if isinstance(m, dict) and m.get("standing") == "ok":
        return None
    address, reader = service.suite.address, signed.address

    def withhold(tx: Transaction) -> bool:
        return private(tx) and all(address(pk) != reader for pk in tx.signers())

    return withhold
