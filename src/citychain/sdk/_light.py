"""Following the validator set: light-client header verification with bisection.

Theory of operation
-------------------
Governance can add, remove and re-power validators (``gov`` proposals; the chain applies a
change two heights after the proposal executes). Every header names the set that signed it
(``validators_hash``), so a client that trusted only the genesis set would refuse every header
after the first change. This module lets the SDK follow the changes without trusting the node,
the way CometBFT's light client does ("skipping verification", ``VerifyNonAdjacent``):

**Trust state.** :class:`LightClient` keeps the validator sets it trusts, each with the lowest
and highest height at which it was seen signing (:class:`TrustedSet`). It starts from one anchor
(the genesis set at height 1, a set checked out of band at a height, or the set the node reports
on first use) and only ever adds sets it verified. Sets are never dropped, so old heights keep
verifying.

**A header naming a trusted set** (the common case) is final when members of that set holding
more than 2/3 of its power signed its commit (:meth:`Commit.verify`).

**A header naming another set.** The client fetches the set the node says signs that height,
checks that it hashes to the header's ``validators_hash``, and accepts the header (and from then
on the set) only if its commit carries valid signatures from

1. more than 2/3 of the power of the *new* set: the header is final under that set; and
2. more than the trust level (1/3) of the power of a *trusted* set: if fewer than 1/3 of the
   trusted set's power is faulty, at least one correct validator signed, and a correct
   validator only signs headers of the real chain, so the new set is the one the chain chose.

The trusted set used in (2), the "anchor", is the one trusted at the highest height at or
below the header (forward, as CometBFT does), else at the lowest height above it. The argument
does not depend on direction, so a header below every trusted height is checked the same way
(a permissioned chain has no unbonding period after which old keys become free to sign forks;
a validator removed by governance is still assumed not to sign them). Backwards there is also
a hash link: a verified header names its predecessor (``prev_hash``), so a header just below a
verified one is trusted when it hashes to that name (and its commit is final under its set),
however much the set changed between them.

**Bisection.** When (2) fails, too much of the power changed between the anchor and the header
for one step. The client then verifies the header halfway between them first (which, once
accepted, becomes a closer anchor) and retries, recursively, as CometBFT's ``verifySkipping``
does. Each step only needs the change between two verified heights to stay under the trust
level. If the anchor and the header are adjacent heights and (2) still fails (and no hash
link applies), no intermediate header can help: :class:`ProofError` says so, with the powers
involved. Going forward this happens only when validators holding at least 2/3 of the old
set's power left in a single step (headers carry no "next validators" hash to follow instead);
the new set must then be checked out of band and passed in
(``Client(validators=..., trust_height=...)``).

**Conflicts.** A header at a height where the client already trusts a *different* set (a fork,
another chain, or a node lying about history) is refused outright.

**No I/O here.** :meth:`LightClient.verify` is a generator that yields :class:`Fetch` requests
(a validator set, or a header with its commit and set, at a height) and receives the answers,
so the blocking and the asyncio client drive the same code. :meth:`LightClient.verify_with`
drives it with a plain function. What this does not do, compared with CometBFT: no trusting
period or clock-drift checks (validator keys of a permissioned chain do not become free to
sell after unbonding), and no cross-checking of several nodes for attack detection.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from fractions import Fraction

from citychain.crypto import CryptoSuite
from citychain.errors import ErrorCode, InsufficientTrust, ProofError
from citychain.types import Commit, Header, ValidatorSet

#: The fraction of a trusted set's power that must sign a header naming a new set (CometBFT's
#: default). Anything below 1/3 would let a coalition the security model allows forge a set.
TRUST_LEVEL = Fraction(1, 3)
#: Most intermediate headers one verification fetches before giving up.
MAX_FETCHES = 64


@dataclass(frozen=True, slots=True)
class LightBlock:
    """A header, the commit that finalised it, and the validator set the node says signed it."""

    header: Header
    commit: Commit
    validators: ValidatorSet

    @property
    def height(self) -> int:
        return self.header.height


@dataclass(frozen=True, slots=True)
class TrustedSet:
    """A validator set the client trusts, and the lowest and highest heights it is known to
    sign (both ``height`` for an anchor passed in)."""

    validators: ValidatorSet
    low: int
    high: int

    @property
    def hash(self) -> bytes:
        return self.validators.hash


@dataclass(frozen=True, slots=True)
class Fetch:
    """What :meth:`LightClient.verify` needs next: the validator set that signs ``height``
    (answer a :class:`ValidatorSet`), or with ``block`` that header and its commit too
    (answer a :class:`LightBlock`)."""

    height: int
    block: bool


Answer = LightBlock | ValidatorSet


def signed_power(commit: Commit, validators: ValidatorSet) -> int:
    """The power of the members of ``validators`` among the commit's signers, each counted once.

    Signatures are *not* checked here: call it on a commit that :meth:`Commit.verify` accepted
    (which checks every signature and refuses duplicates and non-members of the signing set).
    """
    return sum(validators.power_of(v) for v in {s.validator for s in commit.signatures})


def exceeds(power: int, total: int, level: Fraction) -> bool:
    """Whether ``power`` is *more* than ``level`` of ``total`` (exact, no floats)."""
    return power * level.denominator > total * level.numerator


def verify_skipping(
    suite: CryptoSuite,
    chain_id: str,
    trusted: ValidatorSet,
    untrusted: LightBlock,
    trust_level: Fraction = TRUST_LEVEL,
) -> None:
    """Raise :class:`ProofError` unless ``untrusted`` may be trusted given ``trusted``.

    The rule of the module docstring: the header is for ``chain_id``; its validator set hashes
    to its ``validators_hash``; more than 2/3 of that set's power signed the commit, every
    signature valid; and the signers include more than ``trust_level`` of ``trusted``'s power.
    Only the last failure raises :class:`InsufficientTrust` (an intermediate header may help).
    """
    h = untrusted.header
    if h.chain_id != chain_id:
        raise ProofError(
            f"header {h.height} is for chain {h.chain_id!r}, not {chain_id!r}", ErrorCode.BAD_PROOF
        )
    if untrusted.validators.hash != h.validators_hash:
        raise ProofError(
            f"header {h.height} names validator set {h.validators_hash.hex()}, but the set the "
            f"node gave for that height hashes to {untrusted.validators.hash.hex()}",
            ErrorCode.BAD_PROOF,
        )
    try:
        untrusted.commit.verify(suite, chain_id, h, untrusted.validators)
    except ProofError as exc:
        raise _not_final(h.height, exc) from None
    power = signed_power(untrusted.commit, trusted)
    if not exceeds(power, trusted.total_power, trust_level):
        raise InsufficientTrust(
            f"header {h.height} was signed by only {power} of the {trusted.total_power} power "
            f"of the trusted set; more than {trust_level} is needed",
            power,
            trusted.total_power,
        )


def _not_final(height: int, exc: ProofError) -> ProofError:
    return ProofError(f"header {height} is not final: {exc.message}", exc.code)


def _about(exc: ProofError, intermediate: bool) -> ProofError:
    """``exc`` (a message starting "header N ...") as an error about an intermediate header."""
    if not intermediate:
        return exc
    return ProofError(f"intermediate {exc.message}", exc.code)


class LightClient:
    """The validator sets a client trusts, and the verification that extends them.

    ``validators`` is the anchor: the set that signs block ``height`` (1, the genesis set, by
    default); ``header``, if known, is that block's header (it lets headers just below the
    anchor be checked by hash). ``trust_level`` and ``max_fetches`` are as in the module
    docstring.
    """

    def __init__(
        self,
        suite: CryptoSuite,
        chain_id: str,
        validators: ValidatorSet,
        height: int = 1,
        *,
        header: Header | None = None,
        trust_level: Fraction = TRUST_LEVEL,
        max_fetches: int = MAX_FETCHES,
    ) -> None:
        if not Fraction(1, 3) <= trust_level <= 1:
            raise ValueError(f"the trust level must be in [1/3, 1], got {trust_level}")
        if height < 1:
            raise ValueError(f"a trusted height starts at 1, got {height}")
        if header is not None and (
            header.height != height or header.validators_hash != validators.hash
        ):
            raise ValueError("the anchor header must be at the anchor height and name its set")
        self.suite = suite
        self.chain_id = chain_id
        self.trust_level = trust_level
        self.max_fetches = max_fetches
        self._sets: dict[bytes, TrustedSet] = {}
        #: Verified headers at the heights of the trusted points (for hash links backwards).
        self._headers: dict[int, Header] = {}
        self._trust(validators, height, header)

    # -- the trust state ---------------------------------------------------------------------
    @property
    def trusted(self) -> tuple[TrustedSet, ...]:
        """Every trusted set, by the lowest height it is known at."""
        return tuple(sorted(self._sets.values(), key=lambda t: (t.low, t.high)))

    @property
    def latest(self) -> TrustedSet:
        """The trusted set seen at the greatest height."""
        return max(self._sets.values(), key=lambda t: (t.high, t.low))

    def trusted_set(self, validators_hash: bytes) -> ValidatorSet | None:
        """The trusted set with this hash, if any."""
        t = self._sets.get(validators_hash)
        return t.validators if t is not None else None

    def _points(self) -> list[tuple[int, TrustedSet]]:
        out = []
        for t in self._sets.values():
            out.append((t.low, t))
            if t.high != t.low:
                out.append((t.high, t))
        return out

    def _anchor(self, height: int) -> tuple[int, TrustedSet]:
        """The trusted (height, set) to verify a header at ``height`` from: the highest one at
        or below it (forward, as CometBFT does), else the lowest one above it (backwards)."""
        points = self._points()
        below = [p for p in points if p[0] <= height]
        if below:
            return max(below, key=lambda p: p[0])
        return min(points, key=lambda p: p[0])

    def _check_conflict(self, header: Header) -> None:
        for at, t in self._points():
            if at == header.height and t.hash != header.validators_hash:
                raise ProofError(
                    f"header {header.height} was signed by a validator set this client does not "
                    f"trust (validators_hash {header.validators_hash.hex()}): this client "
                    f"already trusts set {t.hash.hex()} for height {at}, so the node serves a "
                    "fork, another chain, or a false history",
                    ErrorCode.BAD_PROOF,
                )

    def _trust(self, validators: ValidatorSet, height: int, header: Header | None) -> None:
        t = self._sets.get(validators.hash)
        if t is None:
            self._sets[validators.hash] = TrustedSet(validators, height, height)
        elif not t.low <= height <= t.high:
            self._sets[validators.hash] = TrustedSet(
                t.validators, min(t.low, height), max(t.high, height)
            )
        if header is not None:
            self._headers[height] = header
        points = {at for at, _ in self._points()}
        for at in [h for h in self._headers if h not in points]:
            del self._headers[at]

    def _linked(self, block: LightBlock, at: int) -> bool:
        """Whether the verified header at ``at``, just above ``block``, names ``block``'s
        header as its predecessor (a trusted header commits to the one before it)."""
        above = self._headers.get(at)
        return at == block.height + 1 and above is not None and above.prev_hash == block.header.hash

    # -- verification ------------------------------------------------------------------------
    def verify(self, header: Header, commit: Commit) -> Generator[Fetch, Answer, ValidatorSet]:
        """Check that ``commit`` finalises ``header`` and that the set which signed it can be
        trusted; the set. Yields :class:`Fetch` requests for what it needs from the node.

        Raises :class:`ProofError` saying which check failed.
        """
        if header.chain_id != self.chain_id:
            raise ProofError(
                f"the header is for chain {header.chain_id!r}, not {self.chain_id!r}",
                ErrorCode.BAD_PROOF,
            )
        if commit.height != header.height or commit.block_hash != header.hash:
            raise ProofError(
                f"header {header.height} is not final: commit is for a different block",
                ErrorCode.BAD_PROOF,
            )
        self._check_conflict(header)
        known = self.trusted_set(header.validators_hash)
        if known is not None:
            try:
                commit.verify(self.suite, self.chain_id, header, known)
            except ProofError as exc:
                raise _not_final(header.height, exc) from None
            self._trust(known, header.height, header)
            return known
        answer = yield Fetch(header.height, block=False)
        if not isinstance(answer, ValidatorSet):
            raise TypeError(f"expected the validator set of height {header.height}")
        target = LightBlock(header, commit, answer)
        yield from self._bisect(target)
        return answer

    def _bisect(self, target: LightBlock) -> Generator[Fetch, Answer, None]:
        """Verify ``target`` from a trusted height, verifying headers halfway first while the
        trusted power that signed falls short of the trust level."""
        pending = [target]
        fetched = 0
        while pending:
            block = pending[-1]
            intermediate = block is not target
            known = self.trusted_set(block.header.validators_hash)
            if known is not None:  # learnt while bisecting
                try:
                    block.commit.verify(self.suite, self.chain_id, block.header, known)
                except ProofError as exc:
                    raise _about(_not_final(block.height, exc), intermediate) from None
                self._trust(known, block.height, block.header)
                pending.pop()
                continue
            at, anchor = self._anchor(block.height)
            try:
                verify_skipping(
                    self.suite, self.chain_id, anchor.validators, block, self.trust_level
                )
            except InsufficientTrust as exc:
                if self._linked(block, at):
                    pass  # final under its own set, and the trusted header above names it
                elif abs(block.height - at) <= 1 or fetched >= self.max_fetches:
                    raise self._untrusted(target, block, at, exc, fetched) from None
                else:
                    pivot = (at + block.height) // 2
                    answer = yield Fetch(pivot, block=True)
                    fetched += 1
                    if not isinstance(answer, LightBlock) or answer.height != pivot:
                        raise ProofError(
                            f"asked the node for header {pivot}, got another answer",
                            ErrorCode.BAD_PROOF,
                        ) from None
                    self._check_conflict(answer.header)
                    pending.append(answer)
                    continue
            except ProofError as exc:
                raise _about(exc, intermediate) from None
            self._trust(block.validators, block.height, block.header)
            pending.pop()

    def _untrusted(
        self, target: LightBlock, block: LightBlock, at: int, exc: InsufficientTrust, fetched: int
    ) -> ProofError:
        h = block.height
        if fetched >= self.max_fetches and abs(h - at) > 1:
            why = (
                f"gave up after verifying {fetched} intermediate headers; verify an intermediate "
                "header first (Client.verify_header at a height in between) or pass a newer "
                "trusted set"
            )
        else:
            why = (
                "the heights are adjacent, so no intermediate header can bridge the change; if "
                "it is genuine, check the new set out of band and pass it as "
                f"Client(validators=..., trust_height={h})"
            )
        lead = (
            f"header {target.height} was signed by a validator set this client does not trust"
            if block is target
            else f"header {target.height} could not be verified: intermediate header {h} was "
            "signed by a validator set this client does not trust"
        )
        return ProofError(
            f"{lead}: the validator set changed by more than the trust level allows between "
            f"heights {min(at, h)} and {max(at, h)} (only {exc.signed_power} of the "
            f"{exc.total_power} power trusted at height {at} signed header {h}; more than "
            f"{self.trust_level} is needed); {why}",
            ErrorCode.BAD_PROOF,
        )

    def verify_with(
        self, header: Header, commit: Commit, fetch: Callable[[Fetch], Answer]
    ) -> ValidatorSet:
        """:meth:`verify`, answering its requests with ``fetch``."""
        return drive(self.verify(header, commit), fetch)


def drive(
    gen: Generator[Fetch, Answer, ValidatorSet], fetch: Callable[[Fetch], Answer]
) -> ValidatorSet:
    """Run a :meth:`LightClient.verify` generator to its end with a blocking ``fetch``."""
    try:
        need = next(gen)
        while True:
            need = gen.send(fetch(need))
    except StopIteration as stop:
        result: ValidatorSet = stop.value
        return result
