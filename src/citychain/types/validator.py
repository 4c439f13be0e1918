"""Validators and validator sets.

A validator set is ordered by public key (so its hash does not depend on how genesis listed
it); its hash is the simple-Merkle root of each validator's canonical bytes, under the chain's
hash (``hash_new``: SHA-256 unless the chain's suite says otherwise). Voting power is an
integer; a quorum is more than two thirds of the total.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from citychain import codec
from citychain.crypto import HashNew
from citychain.errors import ConfigError
from citychain.proof import merkle


@dataclass(frozen=True, slots=True)
class Validator:
    public_key: bytes
    power: int
    name: str = ""

    def encode(self) -> bytes:
        return codec.encode([self.public_key, self.power, self.name])

    def to_json(self) -> dict[str, Any]:
        return {"public_key": self.public_key.hex(), "power": self.power, "name": self.name}


class ValidatorSet:
    """An immutable, ordered set of validators with their powers."""

    __slots__ = ("_by_key", "_hash", "total_power", "validators")

    def __init__(
        self, validators: Iterable[Validator], *, hash_new: HashNew = hashlib.sha256
    ) -> None:
        vals = sorted(validators, key=lambda v: v.public_key)
        if not vals:
            raise ConfigError("a validator set needs at least one validator")
        keys = [v.public_key for v in vals]
        if len(set(keys)) != len(keys):
            raise ConfigError("a validator appears twice in the validator set")
        for v in vals:
            if not isinstance(v.power, int) or v.power <= 0:
                raise ConfigError(f"validator {v.public_key.hex()} has non-positive power")
        self.validators: tuple[Validator, ...] = tuple(vals)
        self.total_power: int = sum(v.power for v in vals)
        self._by_key = {v.public_key: v for v in vals}
        self._hash = merkle.root([v.encode() for v in vals], hash_new)

    @property
    def hash(self) -> bytes:
        return self._hash

    def __len__(self) -> int:
        return len(self.validators)

    def __iter__(self) -> Iterator[Validator]:
        return iter(self.validators)

    def __contains__(self, public_key: object) -> bool:
        return public_key in self._by_key

    def get(self, public_key: bytes) -> Validator | None:
        return self._by_key.get(public_key)

    def power_of(self, public_key: bytes) -> int:
        v = self._by_key.get(public_key)
        return v.power if v else 0

    def quorum(self) -> int:
        """The least power that is more than two thirds of the total."""
        return self.total_power * 2 // 3 + 1

    def has_quorum(self, power: int) -> bool:
        return power * 3 > self.total_power * 2

    def to_json(self) -> list[dict[str, Any]]:
        return [v.to_json() for v in self.validators]
