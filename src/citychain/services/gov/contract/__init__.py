"""The ``gov`` system contract: organisations, members, roles, policies and proposals.

See :mod:`citychain.services.gov.contract._contract` for the proposal state machine (its
theory of operation), :mod:`._kinds` for what each kind of proposal changes and
:mod:`._records` for the records it keeps in state.
"""

from citychain.services.gov.contract._contract import Gov as Gov
from citychain.services.gov.contract._kinds import DEFAULT_KIND_POLICY as DEFAULT_KIND_POLICY
from citychain.services.gov.contract._kinds import KINDS as KINDS


def system_contract() -> Gov:
    """The contract a node registers for this service (see :mod:`citychain.registry`)."""
    return Gov()


__all__ = ["DEFAULT_KIND_POLICY", "KINDS", "Gov", "system_contract"]
