"""``Client`` (blocking) and ``AsyncClient`` (asyncio): a citychain node over HTTP.

Both share everything but the I/O: requests are described by :class:`_Call`, answers are
parsed by :mod:`._parse` and state answers checked by :mod:`._verify`.

Trust model
-----------
A node is a server, not an authority. The SDK trusts exactly three things, and says so:

* the **chain id** given as ``Client(chain_id=...)``, or else the one the node reports first;
* the **validator set** given as ``Client(validators=...)`` (the set that signs block
  ``trust_height``, default 1: the genesis set), or else the set the node reports the first
  time a proof is checked ("trust on first use");
* the **crypto suite** named by the chain (only suites registered in this process are used).

With those, :meth:`Client.get_state` accepts a value only if the node proves it: an ICS-23
proof against the state root of a header, and a commit in which members of a trusted set
holding more than 2/3 of its power signed that header. A node can therefore not invent or
alter state. What it *can* do: answer with an older (but genuine) height, so check
``VerifiedValue.height``/``header.time`` when freshness matters; and, if the trusted set was
taken on first use, a node that lied at that first contact can keep lying. For real
assurance, pass the genesis validator set (or one you checked out of band).

When governance changes the validator set, the client follows it as a light client does
(:mod:`citychain.sdk._light`): a header naming a new set is accepted once more than 2/3 of
the new set and more than 1/3 of a trusted set signed it, verifying intermediate headers
first (bisection) when the change is larger; the new set is then trusted too
(:attr:`Client.trusted_sets`). Old heights keep verifying against the sets they name.

Transaction and block answers are checked for internal consistency (hashes, tx root) but
their commits are not verified; use :meth:`Client.get_state` for answers that must be proven.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload
from urllib.parse import quote

from citychain import codec
from citychain.crypto import CryptoSuite, HashNew, Signer, get_suite, suite_for
from citychain.errors import CitychainError, ErrorCode, InvalidInput, NotFound, Unavailable
from citychain.proof import ics23
from citychain.sdk import _parse
from citychain.sdk._errors import error_from_response, transport_error
from citychain.sdk._events import AsyncEventSubscription, EventSubscription, events_url
from citychain.sdk._httpsig import SignedRequests
from citychain.sdk._light import Answer, Fetch, LightBlock, LightClient, TrustedSet, drive
from citychain.sdk._services import attach_services
from citychain.sdk._types import (
    AccountInfo,
    BlockInfo,
    EvidenceInfo,
    NodeStatus,
    StateProof,
    SubmitResult,
    TxInfo,
    VerifiedValue,
)
from citychain.sdk._verify import check_header, prove_value, state_spec
from citychain.types import Receipt, Transaction, ValidatorSet
from citychain.types.address import call_args, to_address
from citychain.types.tx import codec_to_json, json_to_codec

if TYPE_CHECKING:
    import httpx

_H = TypeVar("_H")

DEFAULT_URL = "http://127.0.0.1:26657"
DEFAULT_TIMEOUT = 10.0
DEFAULT_GAS_LIMIT = 100_000
#: How long :meth:`Client.send` and :meth:`Client.wait_for_commit` wait by default.
DEFAULT_COMMIT_TIMEOUT = 30.0
_CBOR = {"content-type": "application/cbor"}


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    params: dict[str, str] | None = None
    content: bytes | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    expect: tuple[int, ...] = (200,)


#: Seconds an idle connection is kept: under the node's own keep-alive timeout
#: (``[api] keepalive_timeout_ms``, 5 s by default), so the client never sends a request on a
#: connection the node is closing (httpx's default is also 5 s: a POST then failed with
#: ReadError now and then, and a POST is not retried).
KEEPALIVE_EXPIRY_S = 2.0


def _limits() -> Any:
    import httpx  # see _http_error

    return httpx.Limits(
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY_S
    )


def _hex_arg(value: bytes | str, what: str, size: int | None = None) -> str:
    """Hex for a URL from bytes or a hex string (checked here, so errors are local)."""
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif not isinstance(value, str):
        raise _bad(f"{what} must be bytes or a hex string, got {type(value).__name__}")
    else:
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise _bad(f"{what} must be bytes or a hex string, got {value!r:.80}") from None
    if size is not None and len(data) != size:
        raise _bad(f"{what} must be {size} bytes, got {len(data)}")
    return data.hex()


def _bad(message: str) -> CitychainError:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def _http_error() -> type[httpx.HTTPError]:
    # httpx is imported when a client is made, not with the SDK: importing httpx also imports
    # its optional command line (click, rich, pygments) wherever those happen to be installed.
    import httpx

    return httpx.HTTPError


def _raw(tx: Transaction | bytes) -> bytes:
    return tx.encode() if isinstance(tx, Transaction) else bytes(tx)


def _tx_hash(tx: Transaction | bytes, hash_new: HashNew) -> bytes:
    return tx.hash if isinstance(tx, Transaction) else hash_new(bytes(tx)).digest()


@dataclass
class _Trust:
    """The client's trust anchors: fixed at construction or learnt once, never replaced; the
    light client starts from them and only adds validator sets it verified."""

    chain_id: str | None = None
    suite: CryptoSuite | None = None
    validators: ValidatorSet | None = None
    trust_height: int = 1
    status_seen: bool = field(default=False)
    light: LightClient | None = None


def _unbind(response: httpx.Response) -> None:
    """Let a read response's request body go as soon as the response does.

    httpx binds a response's stream to the response (the stream refers back to it, for its
    elapsed time), a reference cycle through which the response keeps its request and the
    request its body: each body sent lived until the cyclic garbage collector ran, not until
    the caller dropped the response. A data upload sends a 4 MiB chunk a request; its client
    held ~20-35 MiB more of them at its peak than the upload's own bounds allow (1 GiB
    through a node: 188-200 MiB against 200), and how much depended on when the collector
    happened to run. Once the body is read and the stream closed, the stream has nothing more
    to give: an empty one in its place leaves no cycle."""
    import httpx  # see _http_error

    response.stream = httpx.ByteStream(b"")


def _auth(signer: Signer | None, digest: bool = True) -> Any:
    """httpx's ``auth`` for a request signed for ``signer`` (RFC 9421), or the client's own
    (its signer, if it has one) when None."""
    import httpx

    return SignedRequests(signer, digest=digest) if signer is not None else httpx.USE_CLIENT_DEFAULT


class _Base:
    #: Every registered service's helper by service name (set by ``attach_services``).
    services: Mapping[str, Any]

    def __init__(
        self,
        url: str,
        chain_id: str | None,
        validators: ValidatorSet | None,
        suite: CryptoSuite | str | None,
        trust_height: int | None,
    ) -> None:
        self.url = url.rstrip("/")
        if trust_height is not None and validators is None:
            raise _bad("trust_height is the height of the trusted validators; pass both")
        if trust_height is not None and trust_height < 1:
            raise _bad(f"trust_height starts at 1, got {trust_height}")
        self._trust = _Trust(
            chain_id=chain_id,
            suite=get_suite(suite) if isinstance(suite, str) else suite,
            validators=validators,
            trust_height=1 if trust_height is None else trust_height,
        )

    @property
    def chain_id(self) -> str | None:
        """The chain id this client works with (None until given or first learnt)."""
        return self._trust.chain_id

    @property
    def trusted_validators(self) -> ValidatorSet | None:
        """The trusted validator set seen at the greatest height (None until given or first
        learnt): the anchor, or the newest set followed since."""
        t = self._trust
        return t.light.latest.validators if t.light is not None else t.validators

    @property
    def trusted_sets(self) -> tuple[TrustedSet, ...]:
        """Every validator set this client trusts, with the heights it was seen signing
        (pass the newest as ``Client(validators=..., trust_height=...)`` to resume)."""
        t = self._trust
        if t.light is not None:
            return t.light.trusted
        if t.validators is not None:
            return (TrustedSet(t.validators, t.trust_height, t.trust_height),)
        return ()

    def _start_light(self, validators: ValidatorSet, height: int) -> None:
        t = self._trust
        assert t.suite is not None and t.chain_id is not None
        t.validators, t.trust_height = validators, height
        t.light = LightClient(t.suite, t.chain_id, validators, height)

    def _learn(self, status: NodeStatus) -> None:
        t = self._trust
        if t.chain_id is None:
            t.chain_id = status.chain_id
        elif status.chain_id != t.chain_id:
            raise CitychainError(
                f"node {self.url} serves chain {status.chain_id!r}, not {t.chain_id!r}",
                ErrorCode.WRONG_CHAIN,
            )
        if t.suite is None:
            t.suite = suite_for(status.crypto_suite, status.crypto_params)
        t.status_seen = True

    def _hash(self) -> HashNew:
        """The chain's hash, for the hashes in the node's answers: the suite's, once given or
        learnt (the methods that parse hashed values learn it first); SHA-256 before."""
        suite = self._trust.suite
        return suite.hash_new if suite is not None else sha256

    def _spec(self) -> ics23.ProofSpec:
        """The ICS-23 spec of this chain's state proofs (SM3 ops only on an SM3 chain)."""
        suite = self._trust.suite
        assert suite is not None  # verifying needs the trust anchors, the suite among them
        return state_spec(suite)

    def _build(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any] | None,
        nonce: int,
        expiry: int | None,
        gas_limit: int,
        endorsers: Sequence[Signer],
    ) -> Transaction:
        assert self._trust.chain_id is not None
        extra: dict[str, Any] = {} if expiry is None else {"expiry": expiry}
        suite = self._trust.suite
        if suite is not None:  # sign under the chain's parameters (an SM2 chain's ID)
            signer = signer.under(suite)
            endorsers = [e.under(suite) for e in endorsers]
        return Transaction.create(
            signer,
            chain_id=self._trust.chain_id,
            nonce=nonce,
            contract=contract,
            method=method,
            args=dict(args or {}),
            gas_limit=gas_limit,
            endorsers=list(endorsers),
            **extra,
        )

    def _state_answer(self, raw: Any, key: bytes, height: int | None) -> StateProof:
        new = self._hash()
        a = _parse.parsed("state answer", lambda: _parse.state_proof(raw, new))
        if a.key != key:
            raise _parse.bad_answer(f"asked for key {key.hex()}, got an answer for {a.key.hex()}")
        if height is not None and a.height != height:
            raise _parse.bad_answer(f"asked for height {height}, got {a.height}")
        return a

    def _light_check(self, a: StateProof) -> Generator[Fetch, Answer, ValidatorSet]:
        """Check the answer's header (chain, height, final under a trusted or followed set);
        a generator of the light client's requests, driven by each client's I/O."""
        t = self._trust
        assert t.chain_id is not None and t.light is not None
        check_header(t.chain_id, a.height, a.header)
        return t.light.verify(a.header, a.commit)

    def _light_check_block(
        self, b: BlockInfo, height: int | None
    ) -> Generator[Fetch, Answer, ValidatorSet]:
        t = self._trust
        assert t.light is not None
        if height is not None and b.height != height:
            raise _parse.bad_answer(f"asked for block {height}, got block {b.height}")
        return t.light.verify(b.header, b.commit)

    def _proven(self, a: StateProof, validators: ValidatorSet) -> VerifiedValue:
        return prove_value(
            validators=validators,
            key=a.key,
            value=a.value,
            proof=a.proof,
            header=a.header,
            commit=a.commit,
            spec=self._spec(),
        )

    @staticmethod
    def _unverified(a: StateProof) -> VerifiedValue:
        return VerifiedValue(a.key, a.value, a.height, a.header, verified=False)

    def _validators_answer(self, raw: Any, height: int | None) -> tuple[int, ValidatorSet]:
        new = self._hash()

        def parse() -> tuple[int, ValidatorSet]:
            d = _parse.obj(raw)
            return _parse.integer(d["height"]), _parse.validator_set(d, new)

        got_height, vs = _parse.parsed("validators", parse)
        if height is not None and got_height != height:
            raise _parse.bad_answer(
                f"asked for the validators of height {height}, got {got_height}"
            )
        return got_height, vs

    @staticmethod
    def _validators_call(height: int | None) -> _Call:
        params = None if height is None else {"height": str(height)}
        return _Call("GET", "/v1/validators", params)

    # -- request descriptions ------------------------------------------------------------------
    @staticmethod
    def _state_call(key: bytes, height: int | None) -> _Call:
        params = None if height is None else {"height": str(height)}
        return _Call("GET", f"/v1/state/{key.hex()}", params)

    @staticmethod
    def _query_call(contract: str, method: str, args: Mapping[str, Any]) -> _Call:
        args = call_args(contract, method, args)  # an address as hex becomes bytes here
        codec.check_value(args)
        path = f"/v1/query/{quote(contract, safe='')}/{quote(method, safe='')}"
        return _Call("POST", path, json={"args": codec_to_json(args)})

    @staticmethod
    def _block_call(height: int | None) -> _Call:
        return _Call("GET", "/v1/blocks/latest" if height is None else f"/v1/blocks/{height}")

    @staticmethod
    def _submit_one(tx: Transaction | bytes) -> _Call:
        return _Call("POST", "/v1/tx", content=_raw(tx), headers=_CBOR, expect=(202,))

    @staticmethod
    def _submit_many(txs: Sequence[Transaction | bytes]) -> _Call:
        body = codec.encode_trusted([_raw(t) for t in txs])
        return _Call("POST", "/v1/txs", content=body, headers=_CBOR)

    def _check_submitted(self, raw: Any, tx: Transaction | bytes) -> bytes:
        d = _parse.parsed("submit answer", lambda: _parse.obj(raw))
        got = _parse.parsed("submit answer", lambda: _parse.hexb(d["hash"], 32))
        if got != _tx_hash(tx, self._hash()):
            raise _parse.bad_answer("the node reported another hash for the transaction")
        return got

    @staticmethod
    def _batch_results(raw: Any, count: int) -> list[SubmitResult]:
        d = _parse.parsed("submit answer", lambda: _parse.obj(raw))
        results = _parse.parsed(
            "submit answer", lambda: [_parse.submit_result(r) for r in d["results"]]
        )
        if len(results) != count:
            raise _parse.bad_answer(f"{len(results)} results for {count} transactions")
        return results

    @staticmethod
    def _withheld_error(info: TxInfo, signer: Signer | None) -> InvalidInput:
        w = info.withheld
        assert w is not None
        who = (
            f"{signer.address.hex()} is not its sender, an endorser or a member in good standing"
            if signer is not None
            else "wait with signer= (the sender's key) to read it"
        )
        return InvalidInput(
            f"transaction {w.hash.hex()} is a private call ({w.contract}.{w.method}): the node "
            f"shows it and its receipt only to a signed read by its sender, an endorser or a "
            f"member in good standing; {who}",
            ErrorCode.NOT_AUTHORIZED,
        )

    @staticmethod
    def _timeout_error(tx_hash: bytes, timeout: float, last: str) -> Unavailable:
        return Unavailable(
            f"transaction {tx_hash.hex()} was not committed within {timeout:g}s "
            f"(last status: {last}); it may still be committed later"
        )

    def service(self, kind: type[_H]) -> _H:
        """This client's helper of class ``kind`` (e.g. ``client.service(Gov)``), typed;
        :class:`~citychain.errors.NotFound` when no registered service provides one."""
        for helper in self.services.values():
            if isinstance(helper, kind):
                return helper
        raise NotFound(f"no registered service gives this client a {kind.__name__}")


class Client(_Base):
    """A blocking client of one node. Use it as a context manager, or call :meth:`close`.

    ``url`` is the node's API (``http://host:26657``). See the module's trust model for
    ``chain_id``, ``validators`` and ``suite``. ``transport`` replaces httpx's network
    transport (tests pass ``httpx.MockTransport``). With ``signer``, every request is signed
    for that account (RFC 9421, :mod:`citychain.sdk._httpsig`): what signed reads need.

    Each registered platform service with an SDK part is an attribute named after it
    (``client.gov``, ``client.token``; see :mod:`citychain.registry`), and
    ``client.services`` maps every such name to its helper. The SDK imports no service, so
    these attributes are typed ``Any``; for a typed helper ask :meth:`service` by its class
    (``client.service(Gov)`` is ``client.gov`` as a :class:`~citychain.sdk.Gov`).
    """

    #: ``client.gov``: governance (:class:`citychain.services.gov.sdk.Gov`).
    gov: Any
    #: ``client.token``: balances and transfers (:class:`citychain.services.token.sdk.Token`).
    token: Any

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        chain_id: str | None = None,
        validators: ValidatorSet | None = None,
        trust_height: int | None = None,
        suite: CryptoSuite | str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(url, chain_id, validators, suite, trust_height)
        self.timeout = timeout
        #: The account that signs every request (signed reads), or None.
        self.signer = signer
        # One helper per registered service with an SDK part: ``self.gov``, ``self.token``...
        attach_services(self, asynchronous=False)
        import httpx  # see _http_error

        from citychain.sdk._transport import growing_transport

        limits = _limits()  # the transport's, and httpx's for any proxy it mounts from the env
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            # Reads that grow while a long body (a data download) streams in: see _transport.
            transport=transport if transport is not None else growing_transport(limits),
            headers=headers,
            limits=limits,
            auth=SignedRequests(signer) if signer is not None else None,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post_json(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON to a service's own route (e.g. ``/credentials/verify``): its
        JSON answer, or the coded error of a 4xx (for the services' SDK helpers)."""
        return self._call(_Call("POST", path, json=body))

    def _post_bytes(self, path: str, content: bytes, content_type: str) -> Any:
        """POST ``content`` as it is (a file whose exact bytes matter): as :meth:`_post_json`."""
        return self._call(
            _Call("POST", path, content=content, headers={"content-type": content_type})
        )

    def _signed(
        self,
        signer: Signer | None,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        expect: tuple[int, ...] = (200,),
        digest: bool = True,
    ) -> httpx.Response:
        """One request to a service's route, signed for ``signer`` (RFC 9421; the client's
        own signer when None): the response, or the coded error of any other status. For
        the services' SDK helpers (signed reads, uploads). ``digest=False``: a
        content-addressed PUT, whose URI binds the body (see ``sign_request``)."""
        try:
            r = self._http.request(
                method,
                path,
                params=params,
                content=content,
                json=json,
                auth=_auth(signer, digest),
            )
        except _http_error() as exc:
            raise transport_error(self.url, exc) from None
        _unbind(r)
        if r.status_code not in expect:
            raise error_from_response(r)
        return r

    @contextmanager
    def _signed_stream(
        self,
        signer: Signer | None,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """A signed ``GET`` whose body is read as it arrives (``response.iter_bytes()``)."""
        try:
            with self._http.stream("GET", path, params=params, auth=_auth(signer)) as r:
                if r.status_code != 200:
                    r.read()
                    raise error_from_response(r)
                yield r
        except _http_error() as exc:
            raise transport_error(self.url, exc) from None

    def _call(self, call: _Call) -> Any:
        try:
            r = self._http.request(
                call.method,
                call.path,
                params=call.params,
                content=call.content,
                json=call.json,
                headers=call.headers,
            )
        except _http_error() as exc:
            raise transport_error(self.url, exc) from None
        _unbind(r)
        if r.status_code not in call.expect:
            raise error_from_response(r)
        try:
            return r.json()
        except ValueError:
            raise _parse.bad_answer(f"{call.method} {call.path} did not answer JSON") from None

    def _suite_hash(self) -> HashNew:
        """The chain's hash, learning the suite from the node's status first if it is not
        known yet (an answer's hashes can only be checked with the chain's own hash)."""
        if self._trust.suite is None:
            self.status()
        return self._hash()

    def _ensure_trust(self, need_validators: bool) -> None:
        t = self._trust
        if t.chain_id is None or t.suite is None or not t.status_seen:
            self._learn(self.status())
        if need_validators and t.light is None:
            if t.validators is None:  # trust on first use: the set of the next block
                height, vs = self._validators_at(None)
                self._start_light(vs, height)
            else:
                self._start_light(t.validators, t.trust_height)

    def _validators_at(self, height: int | None) -> tuple[int, ValidatorSet]:
        raw = self._call(self._validators_call(height))
        return self._validators_answer(raw, height)

    def _fetch(self, need: Fetch) -> Answer:
        _, vs = self._validators_at(need.height)
        if not need.block:
            return vs
        b = self.block(need.height)
        return LightBlock(b.header, b.commit, vs)

    # -- chain -------------------------------------------------------------------------------
    def status(self) -> NodeStatus:
        """The node's view: chain, height, mempool, validators, version."""
        raw = self._call(_Call("GET", "/v1/status"))
        s = _parse.parsed("status", lambda: _parse.status(raw))
        self._learn(s)
        return s

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``(ok, details)`` from ``/health`` (an unhealthy node answers 503 with details)."""
        raw = self._call(_Call("GET", "/health", expect=(200, 503)))
        d = _parse.parsed("health", lambda: _parse.obj(raw))
        return bool(d.get("ok")), dict(d.get("details") or {})

    def consensus(self) -> dict[str, Any]:
        """The node's consensus state: height, round, step, who voted, what it waits for."""
        raw = self._call(_Call("GET", "/v1/consensus"))
        return _parse.parsed("consensus", lambda: _parse.obj(raw))

    def peers(self) -> list[dict[str, Any]]:
        """The node's p2p peers (empty on a single-validator chain)."""
        raw = self._call(_Call("GET", "/v1/net/peers"))
        return _parse.parsed("peers", lambda: list(_parse.obj(raw)["peers"]))

    def evidence(self, limit: int = 100) -> EvidenceInfo:
        """Evidence of double signing: committed (with the block height) and pending."""
        new = self._suite_hash()
        raw = self._call(_Call("GET", "/v1/evidence", {"limit": str(limit)}))
        return _parse.parsed("evidence", lambda: _parse.evidence_info(raw, new))

    def validators(self, height: int | None = None) -> ValidatorSet:
        """The validator set that signs block ``height`` (the next block if None), as the node
        reports it. This does not change the set the client trusts."""
        self._suite_hash()
        return self._validators_at(height)[1]

    def block(self, height: int | None = None, *, signer: Signer | None = None) -> BlockInfo:
        """The block at ``height`` (the latest if None) with its commit. Private calls in it
        come in ``info.withheld`` unless the read is signed by ``signer`` (or the client's own
        signer) and that account may read them (a member in good standing sees them all;
        an account, the calls it signed)."""
        new = self._suite_hash()
        call = self._block_call(height)
        if signer is None:
            raw = self._call(call)
        else:
            raw = _parse.parsed("block", self._signed(signer, "GET", call.path).json)
        return _parse.parsed("block", lambda: _parse.block_info(raw, new))

    def block_by_hash(self, block_hash: bytes | str) -> BlockInfo:
        new = self._suite_hash()
        raw = self._call(_Call("GET", f"/v1/blocks/hash/{_hex_arg(block_hash, 'hash', 32)}"))
        return _parse.parsed("block", lambda: _parse.block_info(raw, new))

    # -- transactions --------------------------------------------------------------------------
    def submit(self, tx: Transaction | bytes) -> bytes:
        """Submit one signed transaction; its hash once admitted. A refusal raises with the
        node's code (e.g. :class:`TxRejected` ``nonce_too_low``, :class:`Unavailable`
        ``mempool_full``)."""
        if not isinstance(tx, Transaction):
            self._suite_hash()  # raw bytes: their hash is the chain's
        return self._check_submitted(self._call(self._submit_one(tx)), tx)

    def submit_batch(self, txs: Sequence[Transaction | bytes]) -> list[SubmitResult]:
        """Submit many transactions in one request; one result per transaction, in order.
        Refused transactions do not raise: check each result's ``ok`` and ``code``."""
        return self._batch_results(self._call(self._submit_many(txs)), len(txs))

    def tx(self, tx_hash: bytes | str, *, signer: Signer | None = None) -> TxInfo:
        """A pending or committed transaction; :class:`NotFound` if the node does not know it.

        A private call (its contract's ``private_methods``) comes as ``info.withheld``, with
        no transaction and no receipt, unless the read is signed (RFC 9421) by ``signer``
        (or by the client's own signer) and that account is its sender, an endorser or a
        member in good standing."""
        new = self._suite_hash()
        path = f"/v1/txs/{_hex_arg(tx_hash, 'tx hash', 32)}"
        if signer is None:
            raw = self._call(_Call("GET", path))
        else:
            raw = _parse.parsed("transaction", self._signed(signer, "GET", path).json)
        return _parse.parsed("transaction", lambda: _parse.tx_info(raw, new))

    def account(self, address: bytes | str) -> AccountInfo:
        raw = self._call(_Call("GET", f"/v1/accounts/{to_address(address).hex()}"))
        return _parse.parsed("account", lambda: _parse.account(raw))

    def build_tx(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any] | None = None,
        *,
        nonce: int | None = None,
        expiry: int | None = None,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        endorsers: Sequence[Signer] = (),
    ) -> Transaction:
        """A signed transaction for this chain. ``nonce`` defaults to the signer's pending
        nonce on the node (so consecutive calls after submits count up); ``expiry`` (the last
        height it may be included at) defaults to never. ``endorsers`` co-sign it (for
        access policies that need several organisations); to collect a co-signature
        elsewhere, build with ``Transaction.create(..., endorsers=[public_key])`` and
        ``tx.endorse(signer)`` instead.

        The address arguments of the system contracts' methods (token ``to``, gov
        ``address``, ...) may be given as bytes or hex; anything else is refused with
        :class:`InvalidInput` (``bad_arguments``) before any request is sent."""
        args = call_args(contract, method, args)
        self._ensure_trust(need_validators=False)
        if nonce is None:
            nonce = self.account(signer.address).pending_nonce
        return self._build(signer, contract, method, args, nonce, expiry, gas_limit, endorsers)

    def wait_for_commit(
        self,
        tx_hash: bytes | str,
        timeout: float = DEFAULT_COMMIT_TIMEOUT,
        *,
        signer: Signer | None = None,
    ) -> Receipt:
        """Wait until the transaction is committed and return its receipt (which may record a
        failure: check ``receipt.ok``). Raises :class:`Unavailable` after ``timeout`` s.
        The receipt of a private call is read with a request signed by ``signer`` (its
        sender's key; :meth:`send` passes it), once it is committed."""
        h = bytes.fromhex(_hex_arg(tx_hash, "tx hash", 32))
        deadline = time.monotonic() + timeout
        delay, last = 0.05, "unknown"
        while True:
            try:
                info = self.tx(h)
            except NotFound:
                info, last = None, "unknown to the node"
            if info is not None:
                if info.committed and info.withheld is not None:
                    if signer is not None:
                        info = self.tx(h, signer=signer)
                    if info.receipt is None:
                        raise self._withheld_error(info, signer)
                if info.receipt is not None:
                    return info.receipt
                last = info.status
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout_error(h, timeout, last)
            time.sleep(min(delay, left))
            delay = min(delay * 1.5, 0.5)

    @overload
    def send(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any] | None = ...,
        *,
        wait: Literal[True] = ...,
        timeout: float = ...,
        nonce: int | None = ...,
        expiry: int | None = ...,
        gas_limit: int = ...,
        endorsers: Sequence[Signer] = ...,
    ) -> Receipt: ...

    @overload
    def send(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any] | None = ...,
        *,
        wait: Literal[False],
        timeout: float = ...,
        nonce: int | None = ...,
        expiry: int | None = ...,
        gas_limit: int = ...,
        endorsers: Sequence[Signer] = ...,
    ) -> bytes: ...

    def send(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float = DEFAULT_COMMIT_TIMEOUT,
        nonce: int | None = None,
        expiry: int | None = None,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        endorsers: Sequence[Signer] = (),
    ) -> Receipt | bytes:
        """Build, sign (with ``endorsers`` co-signing) and submit a call; with ``wait`` (the
        default) return its receipt once committed, else its hash. A committed call can still
        have failed: check ``receipt.ok`` / ``receipt.code``."""
        tx = self.build_tx(
            signer,
            contract,
            method,
            args,
            nonce=nonce,
            expiry=expiry,
            gas_limit=gas_limit,
            endorsers=endorsers,
        )
        tx_hash = self.submit(tx)
        return self.wait_for_commit(tx_hash, timeout, signer=signer) if wait else tx_hash

    # -- state -------------------------------------------------------------------------------
    def _send_committed(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        """:meth:`send` and wait (for :class:`~citychain.services.gov.sdk._helpers.Gov`)."""
        return self.send(
            signer,
            contract,
            method,
            args,
            endorsers=endorsers,
            timeout=DEFAULT_COMMIT_TIMEOUT if timeout is None else timeout,
            gas_limit=gas_limit,
        )

    def query(self, contract: str, method: str, /, **args: Any) -> Any:
        """A read-only contract call on the latest state, e.g.
        ``query("token", "balance", owner=address)`` (an address as bytes or hex). Not proven:
        see :meth:`get_state`."""
        raw = self._call(self._query_call(contract, method, args))
        return _parse.parsed("query", lambda: json_to_codec(_parse.obj(raw)["result"]))

    def balance(self, address: bytes | str) -> int:
        """The token balance of ``address`` (through the token contract's query; the same as
        ``client.token.balance``)."""
        balance: int = self.token.balance(address)
        return balance

    def get_state(
        self, key: bytes, height: int | None = None, *, verify: bool = True
    ) -> VerifiedValue:
        """The value of a state key after block ``height`` (latest if None).

        With ``verify`` (the default) the answer is checked as the module's trust model
        describes and :class:`ProofError` (``bad_proof``) is raised if any link fails; the
        result's ``value`` is None when the key is proven absent. If the header is signed by
        a validator set the client does not trust yet, the client follows the change from the
        sets it trusts (fetching validator sets and intermediate headers; see the module's
        trust model) or raises :class:`ProofError` saying why it cannot.
        """
        if verify:
            self._ensure_trust(need_validators=True)
        answer = self._state_answer(self._call(self._state_call(key, height)), key, height)
        if not verify:
            return self._unverified(answer)
        return self._proven(answer, drive(self._light_check(answer), self._fetch))

    def state_proof(self, key: bytes, height: int | None = None) -> StateProof:
        """The node's answer for a state key as it came: value (or absence), ICS-23 proof,
        header and commit, *not* checked (check it with :func:`citychain.sdk.verify_state`,
        as :meth:`get_state` does); for carrying proofs elsewhere, e.g. an offline bundle."""
        self._suite_hash()
        return self._state_answer(self._call(self._state_call(key, height)), key, height)

    def verify_header(self, height: int | None = None) -> LightBlock:
        """The header of block ``height`` (the latest if None) verified as :meth:`get_state`
        verifies headers (following validator-set changes), with its commit and the trusted
        set that signed it. Verifying a height between the trusted one and a target bridges a
        large change of the validator set in steps."""
        self._ensure_trust(need_validators=True)
        b = self.block(height)
        vs = drive(self._light_check_block(b, height), self._fetch)
        return LightBlock(b.header, b.commit, vs)

    # -- events --------------------------------------------------------------------------------
    def subscribe(
        self,
        contract: str | None = None,
        type: str | None = None,
        *,
        from_height: int | None = None,
        signer: Signer | None = None,
    ) -> EventSubscription:
        """Committed events as they happen (a WebSocket): iterate the result, close it when
        done (or use ``with``). With ``from_height``, from that committed block on: the past
        blocks' events first, then the live ones, each once, in commit order. If the node
        ends the stream (e.g. this client fell too far behind), iteration raises the node's
        error (:class:`Unavailable` with the reason) after every event before it. The
        subscription's ``position`` is the height up to which every event of it was received
        (it moves with the chain, each second it waits, even when no event matches):
        subscribe again ``from_height=position + 1`` to go on without a gap or a repeat.
        The events of private calls come only to a subscription signed by ``signer`` (or the
        client's own signer): all of them for a member in good standing, else those of the
        calls it signed."""
        url = events_url(self.url, contract, type, from_height, progress=True)
        return EventSubscription(url, self.timeout, signer or self.signer, from_height)


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`: the same methods, awaited (service helpers too)."""

    #: ``client.gov``: :class:`citychain.services.gov.sdk.AsyncGov`.
    gov: Any
    #: ``client.token``: :class:`citychain.services.token.sdk.AsyncToken`.
    token: Any

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        chain_id: str | None = None,
        validators: ValidatorSet | None = None,
        trust_height: int | None = None,
        suite: CryptoSuite | str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        signer: Signer | None = None,
    ) -> None:
        super().__init__(url, chain_id, validators, suite, trust_height)
        self.timeout = timeout
        #: The account that signs every request (signed reads), or None.
        self.signer = signer
        # The awaited helpers: ``self.gov`` (an AsyncGov), ``self.token``...
        attach_services(self, asynchronous=True)
        import httpx  # see _http_error

        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers=headers,
            limits=_limits(),
            auth=SignedRequests(signer) if signer is not None else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post_json(self, path: str, body: Any) -> Any:
        return await self._call(_Call("POST", path, json=body))

    async def _post_bytes(self, path: str, content: bytes, content_type: str) -> Any:
        return await self._call(
            _Call("POST", path, content=content, headers={"content-type": content_type})
        )

    async def _signed(
        self,
        signer: Signer | None,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        expect: tuple[int, ...] = (200,),
        digest: bool = True,
    ) -> httpx.Response:
        """As :meth:`Client._signed`, awaited."""
        try:
            r = await self._http.request(
                method,
                path,
                params=params,
                content=content,
                json=json,
                auth=_auth(signer, digest),
            )
        except _http_error() as exc:
            raise transport_error(self.url, exc) from None
        _unbind(r)
        if r.status_code not in expect:
            raise error_from_response(r)
        return r

    async def _call(self, call: _Call) -> Any:
        try:
            r = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                content=call.content,
                json=call.json,
                headers=call.headers,
            )
        except _http_error() as exc:
            raise transport_error(self.url, exc) from None
        _unbind(r)
        if r.status_code not in call.expect:
            raise error_from_response(r)
        try:
            return r.json()
        except ValueError:
            raise _parse.bad_answer(f"{call.method} {call.path} did not answer JSON") from None

    async def _suite_hash(self) -> HashNew:
        """As :meth:`Client._suite_hash`."""
        if self._trust.suite is None:
            await self.status()
        return self._hash()

    async def _ensure_trust(self, need_validators: bool) -> None:
        t = self._trust
        if t.chain_id is None or t.suite is None or not t.status_seen:
            self._learn(await self.status())
        if need_validators and t.light is None:
            if t.validators is None:  # trust on first use: the set of the next block
                height, vs = await self._validators_at(None)
                self._start_light(vs, height)
            else:
                self._start_light(t.validators, t.trust_height)

    async def _validators_at(self, height: int | None) -> tuple[int, ValidatorSet]:
        raw = await self._call(self._validators_call(height))
        return self._validators_answer(raw, height)

    async def _fetch(self, need: Fetch) -> Answer:
        _, vs = await self._validators_at(need.height)
        if not need.block:
            return vs
        b = await self.block(need.height)
        return LightBlock(b.header, b.commit, vs)

    async def _drive(self, gen: Generator[Fetch, Answer, ValidatorSet]) -> ValidatorSet:
        try:
            need = next(gen)
            while True:
                need = gen.send(await self._fetch(need))
        except StopIteration as stop:
            result: ValidatorSet = stop.value
            return result

    async def status(self) -> NodeStatus:
        raw = await self._call(_Call("GET", "/v1/status"))
        s = _parse.parsed("status", lambda: _parse.status(raw))
        self._learn(s)
        return s

    async def health(self) -> tuple[bool, dict[str, Any]]:
        raw = await self._call(_Call("GET", "/health", expect=(200, 503)))
        d = _parse.parsed("health", lambda: _parse.obj(raw))
        return bool(d.get("ok")), dict(d.get("details") or {})

    async def consensus(self) -> dict[str, Any]:
        raw = await self._call(_Call("GET", "/v1/consensus"))
        return _parse.parsed("consensus", lambda: _parse.obj(raw))

    async def peers(self) -> list[dict[str, Any]]:
        raw = await self._call(_Call("GET", "/v1/net/peers"))
        return _parse.parsed("peers", lambda: list(_parse.obj(raw)["peers"]))

    async def evidence(self, limit: int = 100) -> EvidenceInfo:
        new = await self._suite_hash()
        raw = await self._call(_Call("GET", "/v1/evidence", {"limit": str(limit)}))
        return _parse.parsed("evidence", lambda: _parse.evidence_info(raw, new))

    async def validators(self, height: int | None = None) -> ValidatorSet:
        await self._suite_hash()
        return (await self._validators_at(height))[1]

    async def block(self, height: int | None = None, *, signer: Signer | None = None) -> BlockInfo:
        new = await self._suite_hash()
        call = self._block_call(height)
        if signer is None:
            raw = await self._call(call)
        else:
            raw = _parse.parsed("block", (await self._signed(signer, "GET", call.path)).json)
        return _parse.parsed("block", lambda: _parse.block_info(raw, new))

    async def block_by_hash(self, block_hash: bytes | str) -> BlockInfo:
        new = await self._suite_hash()
        raw = await self._call(_Call("GET", f"/v1/blocks/hash/{_hex_arg(block_hash, 'hash', 32)}"))
        return _parse.parsed("block", lambda: _parse.block_info(raw, new))

    async def submit(self, tx: Transaction | bytes) -> bytes:
        if not isinstance(tx, Transaction):
            await self._suite_hash()  # raw bytes: their hash is the chain's
        return self._check_submitted(await self._call(self._submit_one(tx)), tx)

    async def submit_batch(self, txs: Sequence[Transaction | bytes]) -> list[SubmitResult]:
        return self._batch_results(await self._call(self._submit_many(txs)), len(txs))

    async def tx(self, tx_hash: bytes | str, *, signer: Signer | None = None) -> TxInfo:
        new = await self._suite_hash()
        path = f"/v1/txs/{_hex_arg(tx_hash, 'tx hash', 32)}"
        if signer is None:
            raw = await self._call(_Call("GET", path))
        else:
            raw = _parse.parsed("transaction", (await self._signed(signer, "GET", path)).json)
        return _parse.parsed("transaction", lambda: _parse.tx_info(raw, new))

    async def account(self, address: bytes | str) -> AccountInfo:
        raw = await self._call(_Call("GET", f"/v1/accounts/{to_address(address).hex()}"))
        return _parse.parsed("account", lambda: _parse.account(raw))

    async def build_tx(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any] | None = None,
        *,
        nonce: int | None = None,
        expiry: int | None = None,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        endorsers: Sequence[Signer] = (),
    ) -> Transaction:
        args = call_args(contract, method, args)  # refused before any request, as Client's
        await self._ensure_trust(need_validators=False)
        if nonce is None:
            nonce = (await self.account(signer.address)).pending_nonce
        return self._build(signer, contract, method, args, nonce, expiry, gas_limit, endorsers)

    async def wait_for_commit(
        self,
        tx_hash: bytes | str,
        timeout: float = DEFAULT_COMMIT_TIMEOUT,
        *,
        signer: Signer | None = None,
    ) -> Receipt:
        """As :meth:`Client.wait_for_commit`, awaited."""
        h = bytes.fromhex(_hex_arg(tx_hash, "tx hash", 32))
        deadline = time.monotonic() + timeout
        delay, last = 0.05, "unknown"
        while True:
            try:
                info = await self.tx(h)
            except NotFound:
                info, last = None, "unknown to the node"
            if info is not None:
                if info.committed and info.withheld is not None:
                    if signer is not None:
                        info = await self.tx(h, signer=signer)
                    if info.receipt is None:
                        raise self._withheld_error(info, signer)
                if info.receipt is not None:
                    return info.receipt
                last = info.status
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout_error(h, timeout, last)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 1.5, 0.5)

    async def send(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_COMMIT_TIMEOUT,
        nonce: int | None = None,
        expiry: int | None = None,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        endorsers: Sequence[Signer] = (),
    ) -> Receipt:
        """Build, sign (with ``endorsers``), submit and wait for the receipt (use
        :meth:`submit` not to wait)."""
        tx = await self.build_tx(
            signer,
            contract,
            method,
            args,
            nonce=nonce,
            expiry=expiry,
            gas_limit=gas_limit,
            endorsers=endorsers,
        )
        return await self.wait_for_commit(await self.submit(tx), timeout, signer=signer)

    async def _send_committed(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        """:meth:`send` and wait (for :class:`~citychain.services.gov.sdk._helpers.AsyncGov`)."""
        return await self.send(
            signer,
            contract,
            method,
            args,
            endorsers=endorsers,
            timeout=DEFAULT_COMMIT_TIMEOUT if timeout is None else timeout,
            gas_limit=gas_limit,
        )

    async def query(self, contract: str, method: str, /, **args: Any) -> Any:
        raw = await self._call(self._query_call(contract, method, args))
        return _parse.parsed("query", lambda: json_to_codec(_parse.obj(raw)["result"]))

    async def balance(self, address: bytes | str) -> int:
        balance: int = await self.token.balance(address)
        return balance

    async def get_state(
        self, key: bytes, height: int | None = None, *, verify: bool = True
    ) -> VerifiedValue:
        if verify:
            await self._ensure_trust(need_validators=True)
        raw = await self._call(self._state_call(key, height))
        answer = self._state_answer(raw, key, height)
        if not verify:
            return self._unverified(answer)
        return self._proven(answer, await self._drive(self._light_check(answer)))

    async def verify_header(self, height: int | None = None) -> LightBlock:
        await self._ensure_trust(need_validators=True)
        b = await self.block(height)
        vs = await self._drive(self._light_check_block(b, height))
        return LightBlock(b.header, b.commit, vs)

    def subscribe(
        self,
        contract: str | None = None,
        type: str | None = None,
        *,
        from_height: int | None = None,
        signer: Signer | None = None,
    ) -> AsyncEventSubscription:
        """Committed events: ``async with client.subscribe() as events: async for e in
        events: ...`` (``from_height`` and private calls' events as :meth:`Client.subscribe`
        says)."""
        url = events_url(self.url, contract, type, from_height, progress=True)
        return AsyncEventSubscription(url, self.timeout, signer or self.signer, from_height)
