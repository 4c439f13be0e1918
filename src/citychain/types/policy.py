"""Access policies: who must approve an action, as data every node evaluates the same way.

Theory of operation
-------------------
A policy is ``rule`` over ``orgs`` and ``roles`` (ChainMaker's ``rule + orgList + roleList``)::

    {"rule": "MAJORITY", "orgs": ["org1", "org2", "org3"], "roles": ["admin"]}

An *approval* is the signature (or vote) of a registered member that belongs to one of
``orgs`` (every organisation on the chain when ``orgs`` is empty) and holds one of ``roles``
(any role when ``roles`` is empty). Approvals are counted **per organisation**: several admins
of one organisation approving count once, so no organisation can outvote the others by
registering more keys. With ``n`` the number of organisations the policy is over and ``k`` the
number of those that approved:

=============  ======================================  =============================
rule           met when                                example
=============  ======================================  =============================
``ANY``        ``k >= 1``                              any admin of any listed org
``ALL``        ``k == n``                              every listed org
``MAJORITY``   ``2k > n``                              more than half
``"3"``        ``k >= 3`` (k-of-n; 1 <= 3 <= n)        three organisations
``"2/3"``      ``3k >= 2n`` (a fraction a/b, 0<a<=b)   at least two thirds
=============  ======================================  =============================

A k-of-n rule larger than the number of organisations can never be met; evaluation says so
instead of silently refusing. Everything here is integer arithmetic over sorted tuples: no
floats, no set order, so every node reaches the same verdict.

A policy names itself in refusals: :meth:`Policy.describe` gives ``MAJORITY of org1, org2,
org3 (role admin)``, and the caller prefixes the policy's name (``token.mint``, ``gov:add_org``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from citychain.errors import ErrorCode, InvalidInput

RULES = ("ANY", "ALL", "MAJORITY")
_KOFN = re.compile(r"[1-9][0-9]{0,3}")
_FRACTION = re.compile(r"([1-9][0-9]{0,3})/([1-9][0-9]{0,3})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Most organisations or roles one policy may list.
MAX_PRINCIPALS = 256


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def check_name(value: Any, what: str) -> str:
    """An organisation id or role name: 1-64 of ``[A-Za-z0-9._-]``, starting alphanumeric."""
    if type(value) is not str or not _NAME.fullmatch(value):
        raise _bad(
            f"{what} {value!r} must be 1 to 64 letters, digits, '.', '_' or '-', starting with "
            "a letter or digit"
        )
    return value


@dataclass(frozen=True, slots=True)
class Policy:
    """``rule`` over ``orgs`` (empty: every organisation) and ``roles`` (empty: any role)."""

    rule: str
    orgs: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        rule = self.rule
        if rule not in RULES and not _KOFN.fullmatch(rule):
            m = _FRACTION.fullmatch(rule)
            if m is None or int(m.group(1)) > int(m.group(2)):
                raise _bad(
                    f"policy rule {rule!r} is not ANY, ALL, MAJORITY, a number k (k-of-n) or a "
                    "fraction a/b with 0 < a <= b"
                )
        for what, names in (("organisation", self.orgs), ("role", self.roles)):
            if len(names) > MAX_PRINCIPALS:
                raise _bad(f"a policy lists at most {MAX_PRINCIPALS} {what}s")
            for n in names:
                check_name(n, what)
            if list(names) != sorted(set(names)):
                raise _bad(f"the {what}s of a policy must be sorted and distinct")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def of(cls, rule: str | int, orgs: Iterable[str] = (), roles: Iterable[str] = ()) -> Policy:
        """A policy with ``orgs``/``roles`` in any order (sorted and deduplicated here)."""
        return cls(str(rule).upper(), tuple(sorted(set(orgs))), tuple(sorted(set(roles))))

    @classmethod
    def from_value(cls, raw: Any, what: str = "policy") -> Policy:
        """From the map form ``{"rule": ..., "orgs": [...], "roles": [...]}`` (JSON or CBOR)."""
        if not isinstance(raw, Mapping):
            raise _bad(f"{what} must be a map with 'rule', and optionally 'orgs' and 'roles'")
        unknown = sorted(set(raw) - {"rule", "orgs", "roles"})
        if unknown:
            raise _bad(f"{what} has unknown field(s) {', '.join(map(str, unknown))}")
        rule = raw.get("rule")
        if type(rule) is int and not isinstance(rule, bool):
            rule = str(rule)
        if type(rule) is not str:
            raise _bad(f"{what}: 'rule' must be a text (ANY, ALL, MAJORITY, 'k' or 'a/b')")
        lists = []
        for key in ("orgs", "roles"):
            value = raw.get(key, [])
            if not isinstance(value, list | tuple) or not all(type(v) is str for v in value):
                raise _bad(f"{what}: {key!r} must be a list of texts")
            lists.append(value)
        try:
            return cls.of(rule, lists[0], lists[1])
        except InvalidInput as exc:
            raise _bad(f"{what}: {exc.message}") from None

    def to_value(self) -> dict[str, Any]:
        return {"rule": self.rule, "orgs": list(self.orgs), "roles": list(self.roles)}

    # -- evaluation --------------------------------------------------------------------------
    def universe(self, all_orgs: Iterable[str]) -> tuple[str, ...]:
        """The organisations this policy counts over, given every organisation on the chain
        (when given, a listed organisation that left the chain no longer counts, so "ALL of
        org1, org2, org3" does not become impossible when org3 is removed)."""
        present = set(all_orgs)
        if self.orgs:
            return tuple(o for o in self.orgs if o in present) if present else self.orgs
        return tuple(sorted(present))

    def admits(self, org: str, roles: Iterable[str], all_orgs: Iterable[str] = ()) -> bool:
        """Whether a member of ``org`` holding ``roles`` can approve under this policy."""
        if self.orgs and org not in self.orgs:
            return False
        if not self.orgs and all_orgs and org not in set(all_orgs):
            return False
        return not self.roles or any(r in self.roles for r in roles)

    def required(self, n: int) -> int:
        """How many approving organisations out of ``n`` meet the rule (``n + 1``: never)."""
        rule = self.rule
        if rule == "ANY":
            return 1
        if rule == "ALL":
            return n
        if rule == "MAJORITY":
            return n // 2 + 1
        m = _FRACTION.fullmatch(rule)
        if m is not None:
            a, b = int(m.group(1)), int(m.group(2))
            return max(1, -(-a * n // b))  # ceil(a*n/b), at least one
        k = int(rule)
        return k if k <= n else n + 1

    def met(self, approving_orgs: Iterable[str], all_orgs: Iterable[str]) -> bool:
        """Whether approvals from ``approving_orgs`` meet the rule."""
        universe = self.universe(all_orgs)
        if not universe:
            return False
        inside = set(universe)
        k = len({o for o in approving_orgs if o in inside})
        return k >= self.required(len(universe))

    def shortfall(self, approving_orgs: Iterable[str], all_orgs: Iterable[str]) -> str:
        """Words for a refusal: what was needed and who approved."""
        universe = self.universe(all_orgs)
        inside = set(universe)
        got = sorted({o for o in approving_orgs if o in inside})
        need = self.required(len(universe))
        if not universe:
            return "no organisation is in its scope, so it can never be met"
        if need > len(universe):
            return (
                f"it needs {self.rule} organisations but only {len(universe)} are in its scope, "
                "so it can never be met"
            )
        have = ", ".join(got) if got else "none"
        return f"needs {need} of {len(universe)} organisations, approved by {have}"

    def describe(self) -> str:
        """``MAJORITY of org1, org2 (role admin)``; ``ANY of every organisation (any role)``."""
        orgs = ", ".join(self.orgs) if self.orgs else "every organisation"
        if not self.roles:
            roles = "any role"
        else:
            roles = ("role " if len(self.roles) == 1 else "roles ") + ", ".join(self.roles)
        rule = self.rule
        if _KOFN.fullmatch(rule):
            rule = f"{rule}-of-n"
        return f"{rule} of {orgs} ({roles})"
