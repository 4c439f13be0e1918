"""Transaction execution: system contracts run against state, one receipt per transaction.

Public API::

    Executor(registry, suite, gas=None)      .execute_block / .init_genesis / .query
    BlockContext, BlockResult, GasSchedule, VerifiedTxs
    Contract, method, query, ContractRegistry, Context
    default_registry()                       the system contracts of every registered service
    only_args, arg_int, arg_address, arg_bytes, arg_str   (BAD_ARGUMENTS naming the argument)
    keys                                     the state key layout (nonces, contract namespaces)

See :mod:`citychain.execution.executor` for the rules of a block and
:mod:`citychain.execution.context` for what a contract can do.
"""

from citychain.execution import keys as keys
from citychain.execution.args import arg_address as arg_address
from citychain.execution.args import arg_bytes as arg_bytes
from citychain.execution.args import arg_int as arg_int
from citychain.execution.args import arg_str as arg_str
from citychain.execution.args import only_args as only_args
from citychain.execution.context import MAX_CALL_DEPTH as MAX_CALL_DEPTH
from citychain.execution.context import BlockContext as BlockContext
from citychain.execution.context import Context as Context
from citychain.execution.context import out_of_gas as out_of_gas
from citychain.execution.contract import Contract as Contract
from citychain.execution.contract import ContractRegistry as ContractRegistry
from citychain.execution.contract import MethodSpec as MethodSpec
from citychain.execution.contract import default_registry as default_registry
from citychain.execution.contract import method as method
from citychain.execution.contract import query as query
from citychain.execution.executor import BlockResult as BlockResult
from citychain.execution.executor import Executor as Executor
from citychain.execution.executor import QueryAnswer as QueryAnswer
from citychain.execution.gas import GasSchedule as GasSchedule
from citychain.execution.verified import VerifiedTxs as VerifiedTxs

__all__ = [
    "MAX_CALL_DEPTH",
    "BlockContext",
    "BlockResult",
    "Context",
    "Contract",
    "ContractRegistry",
    "Executor",
    "GasSchedule",
    "MethodSpec",
    "QueryAnswer",
    "arg_address",
    "arg_bytes",
    "arg_int",
    "arg_str",
    "default_registry",
    "keys",
    "method",
    "only_args",
    "out_of_gas",
    "query",
]
