"""``client.gov``: the governance service from the SDK (see :mod:`._helpers` for what each
helper does and :mod:`._params` for building a proposal's parameters from ``name=value``
flags, as the CLI does); :mod:`._rest` (``rest``) parses the ``/v1/gov/...`` REST answers into
the same shapes. Needs nothing of the ``[node]`` extra."""

from typing import Any

from citychain.services.gov.sdk import _rest as rest
from citychain.services.gov.sdk._helpers import GOV_GAS_LIMIT as GOV_GAS_LIMIT
from citychain.services.gov.sdk._helpers import AsyncGov as AsyncGov
from citychain.services.gov.sdk._helpers import Gov as Gov
from citychain.services.gov.sdk._params import build_params as build_params
from citychain.services.gov.sdk._params import parse_param_value as parse_param_value
from citychain.services.gov.shapes import GovValidator as GovValidator
from citychain.services.gov.shapes import GovValidators as GovValidators
from citychain.services.gov.shapes import HistoryEntry as HistoryEntry
from citychain.services.gov.shapes import MemberInfo as MemberInfo
from citychain.services.gov.shapes import OrgInfo as OrgInfo
from citychain.services.gov.shapes import PolicyInfo as PolicyInfo
from citychain.services.gov.shapes import ProposalInfo as ProposalInfo
from citychain.services.gov.shapes import ProposalVote as ProposalVote


def bind(client: Any) -> Gov:
    """The helper a :class:`~citychain.sdk.Client` carries as ``client.gov``."""
    return Gov(client)


def bind_async(client: Any) -> AsyncGov:
    """The helper an :class:`~citychain.sdk.AsyncClient` carries as ``client.gov``."""
    return AsyncGov(client)


__all__ = [
    "GOV_GAS_LIMIT",
    "AsyncGov",
    "Gov",
    "GovValidator",
    "GovValidators",
    "HistoryEntry",
    "MemberInfo",
    "OrgInfo",
    "PolicyInfo",
    "ProposalInfo",
    "ProposalVote",
    "bind",
    "bind_async",
    "build_params",
    "parse_param_value",
    "rest",
]
