"""System contracts: the services every department uses the same way.

:func:`default_registry` is the set a node runs; the chain's genesis names each contract's
initial parameters.
"""

from citychain.contracts.gov import Gov as Gov
from citychain.contracts.token import Token as Token
from citychain.contracts.token import balance_key as balance_key
from citychain.execution import ContractRegistry


def default_registry() -> ContractRegistry:
    """A registry holding every system contract of this release."""
    registry = ContractRegistry()
    registry.register(Gov())
    registry.register(Token())
    return registry


__all__ = ["Gov", "Token", "balance_key", "default_registry"]
