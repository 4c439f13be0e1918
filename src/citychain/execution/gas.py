"""Gas: what each operation of a transaction costs.

Gas here is a *resource limit*, not a fee: a permissioned chain has no gas price. It bounds the
work one transaction can make every validator do, and it is deterministic (integers charged
per operation and per byte, never time), so every node stops a runaway transaction at exactly
the same operation.

Charges (``k`` = key length inside the contract's namespace, ``v`` = value length):

=====================  ================================================================
intrinsic              ``tx_base + tx_byte * wire size``, before the call runs
``ctx.get``            ``read_base + read_byte * (k + v)`` (``v`` = 0 for an absent key)
``ctx.set``            ``write_base + write_byte * (k + v)``
``ctx.delete``         ``delete``
each iterated item     ``iter_step + iter_byte * (k + v)``
``ctx.emit``           ``event_base + event_byte * (len(type) + encoded attributes)``
``ctx.call``           ``call + tx_byte * encoded args``
returned value         ``return_byte * encoded size``
=====================  ================================================================

A token transfer costs about 9,000 gas with the defaults; ``Transaction.create`` asks for
100,000 unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from citychain.errors import ConfigError


@dataclass(frozen=True, slots=True)
class GasSchedule:
    tx_base: int = 2_000
    tx_byte: int = 10
    read_base: int = 200
    read_byte: int = 2
    write_base: int = 1_000
    write_byte: int = 20
    delete: int = 500
    iter_step: int = 100
    iter_byte: int = 2
    event_base: int = 500
    event_byte: int = 10
    call: int = 1_000
    return_byte: int = 10
    #: The largest ``gas_limit`` a transaction may ask for (GAS_LIMIT_TOO_HIGH above it).
    max_gas_per_tx: int = 50_000_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 0:
                raise ConfigError(
                    f"gas schedule {f.name} must be a non-negative integer, got {value!r}"
                )
        if self.max_gas_per_tx <= 0:
            raise ConfigError("gas schedule max_gas_per_tx must be positive")

    def intrinsic(self, tx_size: int) -> int:
        """What a transaction of ``tx_size`` wire bytes costs before its call runs."""
        return self.tx_base + self.tx_byte * tx_size

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> GasSchedule:
        """A schedule from genesis parameters: the defaults, overridden by ``raw``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"unknown gas schedule field(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**raw)
