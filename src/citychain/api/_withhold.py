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

The membership is read from the latest state (``gov.member``, through
``NodeService.in_good_standing``), as the services' signed routes read it. Public calls are
always shown whole, signed or not.

The event stream (``/v1/events``, a WebSocket) follows the same table with the handshake's
signature: an unsigned subscriber gets no event of a private call, a member every one, another
signer those of the calls it signed. The handshake signs its ``http(s)://`` form (what RFC 6455
sends is that GET). Who signed is settled at the handshake; whether that account is a member
is asked again for each private call the stream would send (the node memoises the answer until
governance changes), so a member removed, revoked or frozen stops receiving other accounts'
private calls with the block that did it, and an account admitted later starts.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import HTTPConnection, Request

from citychain.api._httpsig import SignedBy, signed_request, verifier_of
from citychain.api.service import NodeService
from citychain.types import Transaction
from citychain.types.answers import TxFilter

__all__ = ["subscriber_sees", "withholding"]

_HTTP = {"ws": "http", "wss": "https"}


def _everything(tx: Transaction) -> bool:
    return True


def _own(signed: SignedBy, service: NodeService) -> TxFilter:
    """The calls ``signed``'s account signed (as sender or endorser)."""
    address, reader = service.suite.address, signed.address

    def own(tx: Transaction) -> bool:
        return any(address(pk) == reader for pk in tx.signers())

    return own


def _sees(signed: SignedBy, service: NodeService) -> TxFilter:
    """The private calls ``signed``'s account may read now: all for a member in good
    standing, else those it signed."""
    if service.in_good_standing(signed.address):
        return _everything
    return _own(signed, service)


async def withholding(
    request: Request, service: NodeService, txs: Iterable[Transaction | None]
) -> TxFilter | None:
    """What an answer holding ``txs`` (None: no transaction) withholds from this request's
    reader (None: nothing). Raises the 401 of a signature that is present but does not
    verify."""
    private = service.private_call
    if not any(tx is not None and private(tx) for tx in txs):
        return None
    if "signature-input" not in request.headers:
        return private
    sees = _sees(await signed_request(request), service)
    if sees is _everything:
        return None

    def withhold(tx: Transaction) -> bool:
        return private(tx) and not sees(tx)

    return withhold


def subscriber_sees(conn: HTTPConnection, service: NodeService) -> TxFilter | None:
    """Which private calls' events a ``/v1/events`` subscriber gets, from its handshake's
    signature (None: unsigned, none of them): its own, and every one while its account is a
    member in good standing, asked at each call. Raises the 401 of a signature that does not
    verify."""
    if "signature-input" not in conn.headers:
        return None
    verifier = verifier_of(conn.app)
    scope = dict(conn.scope)
    scope["scheme"] = _HTTP.get(scope.get("scheme", "ws"), scope.get("scheme", "http"))
    url = verifier.target_uri(scope, conn.headers.get("host"))
    signed = verifier.verify("GET", url, list(conn.headers.items()), b"", body_bound=False)
    own, reader, member = _own(signed, service), signed.address, service.in_good_standing

    def sees(tx: Transaction) -> bool:
        return own(tx) or member(reader)

    return sees
