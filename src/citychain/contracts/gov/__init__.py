"""``gov``: the chain's organisations, members, access policies and proposals.

See :mod:`citychain.contracts.gov._contract` for the proposal state machine and
:mod:`citychain.contracts.gov._kinds` for what each kind of proposal changes.
"""

from citychain.contracts.gov._contract import Gov as Gov
from citychain.contracts.gov._kinds import DEFAULT_KIND_POLICY as DEFAULT_KIND_POLICY
from citychain.contracts.gov._kinds import KINDS as KINDS

__all__ = ["DEFAULT_KIND_POLICY", "KINDS", "Gov"]
