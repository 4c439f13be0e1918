"""Access policies: parsing, each rule's threshold, per-organisation counting, the words of a
refusal, and the properties every node relies on (order independence, monotonicity)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.errors import ErrorCode, InvalidInput
from citychain.types.policy import MAX_PRINCIPALS, RULES, Policy, check_name

ORGS3 = ("org1", "org2", "org3")
examples = settings(max_examples=200, deadline=None)


def orgs(n: int) -> list[str]:
    return [f"org{i}" for i in range(1, n + 1)]


def bad(raw: Any, what: str = "policy") -> str:
    with pytest.raises(InvalidInput) as exc:
        Policy.from_value(raw, what)
    assert exc.value.code == ErrorCode.BAD_ARGUMENTS
    return exc.value.message


# -- parsing ------------------------------------------------------------------------------------
def test_from_value_accepts_every_rule_form() -> None:
    assert Policy.from_value({"rule": "ANY"}) == Policy("ANY")
    assert Policy.from_value({"rule": "all", "orgs": [], "roles": []}) == Policy("ALL")
    assert Policy.from_value({"rule": "Majority", "roles": ["admin"]}) == Policy(
        "MAJORITY", (), ("admin",)
    )
    assert Policy.from_value({"rule": 2, "orgs": ["b", "a"]}) == Policy("2", ("a", "b"))
    assert Policy.from_value({"rule": "2", "orgs": ("a", "b")}).rule == "2"
    assert Policy.from_value({"rule": "2/3"}).rule == "2/3"
    assert Policy.from_value({"rule": "1/1"}).rule == "1/1"
    assert Policy.from_value({"rule": "9999"}).rule == "9999"


def test_orgs_and_roles_are_sorted_and_deduplicated() -> None:
    p = Policy.from_value(
        {"rule": "ANY", "orgs": ["org3", "org1", "org3"], "roles": ["member", "admin", "admin"]}
    )
    assert p.orgs == ("org1", "org3")
    assert p.roles == ("admin", "member")
    assert Policy.of("any", ["org3", "org1", "org1"]) == Policy("ANY", ("org1", "org3"))
    assert Policy.of(3).rule == "3"


@pytest.mark.parametrize(
    "raw",
    [
        {"rule": "ANY"},
        {"rule": "ALL", "orgs": ["org1", "org2"]},
        {"rule": "MAJORITY", "orgs": list(ORGS3), "roles": ["admin"]},
        {"rule": "2", "orgs": list(ORGS3), "roles": ["admin", "auditor"]},
        {"rule": "2/3", "roles": ["member"]},
    ],
)
def test_to_value_round_trips(raw: dict[str, Any]) -> None:
    p = Policy.from_value(raw)
    assert Policy.from_value(p.to_value()) == p
    assert p.to_value() == {"orgs": [], "roles": [], **raw}


@pytest.mark.parametrize("raw", [None, "ANY", ["ANY"], 3])
def test_a_policy_must_be_a_map(raw: Any) -> None:
    msg = bad(raw, "policy 'token.mint'")
    assert msg == "policy 'token.mint' must be a map with 'rule', and optionally 'orgs' and 'roles'"


def test_unknown_fields_are_named() -> None:
    msg = bad({"rule": "ANY", "org": ["org1"], "threshold": 2})
    assert msg == "policy has unknown field(s) org, threshold"


@pytest.mark.parametrize("rule", [None, True, False, 1.5, b"ANY", ["ANY"]])
def test_rule_must_be_text(rule: Any) -> None:
    raw = {} if rule is None else {"rule": rule}
    msg = bad(raw, "policy 'gov:add_org'")
    assert msg.startswith("policy 'gov:add_org': 'rule' must be a text")


@pytest.mark.parametrize(
    "rule",
    ["SOME", "", "0", "00", "01", "-1", "10000", "1.5", "3/2", "0/3", "2/0", "1/", "/2", "2 / 3"],
)
def test_bad_rules_are_refused_by_name(rule: str) -> None:
    msg = bad({"rule": rule}, "policy 'token.burn'")
    assert msg.startswith(f"policy 'token.burn': policy rule {rule.upper()!r} is not ANY, ALL")
    assert "a fraction a/b with 0 < a <= b" in msg


def test_negative_and_zero_int_rules_are_refused() -> None:
    assert "policy rule '0'" in bad({"rule": 0})
    assert "policy rule '-2'" in bad({"rule": -2})


@pytest.mark.parametrize(
    ("key", "value"),
    [("orgs", "org1"), ("orgs", [1]), ("roles", {"admin": True}), ("roles", [b"admin"])],
)
def test_lists_must_be_lists_of_texts(key: str, value: Any) -> None:
    assert bad({"rule": "ANY", key: value}) == f"policy: {key!r} must be a list of texts"


def test_bad_names_are_named() -> None:
    msg = bad({"rule": "ANY", "orgs": ["org 1"]}, "policy 'p'")
    assert msg.startswith("policy 'p': organisation 'org 1' must be 1 to 64 letters")
    msg = bad({"rule": "ANY", "roles": ["-admin"]})
    assert msg.startswith("policy: role '-admin' must be 1 to 64 letters")
    assert "role ''" in bad({"rule": "ANY", "roles": [""]})
    assert "organisation 'x" in bad({"rule": "ANY", "orgs": ["x" * 65]})


def test_too_many_principals() -> None:
    many = [f"o{i}" for i in range(MAX_PRINCIPALS + 1)]
    assert bad({"rule": "ANY", "orgs": many}) == (
        f"policy: a policy lists at most {MAX_PRINCIPALS} organisations"
    )
    assert Policy.from_value({"rule": "ANY", "roles": many[:MAX_PRINCIPALS]}).roles
    # duplicates do not count against the limit
    assert Policy.from_value({"rule": "ANY", "orgs": ["o1"] * (MAX_PRINCIPALS + 5)}).orgs == ("o1",)


def test_constructor_refuses_unsorted_or_repeated_principals() -> None:
    with pytest.raises(InvalidInput, match="organisations of a policy must be sorted and distinct"):
        Policy("ANY", ("org2", "org1"))
    with pytest.raises(InvalidInput, match="roles of a policy must be sorted and distinct"):
        Policy("ANY", (), ("admin", "admin"))
    with pytest.raises(InvalidInput, match="is not ANY"):
        Policy("any")  # the constructor takes the canonical (upper-case) form only


def test_check_name() -> None:
    assert check_name("org-1.a_b", "organisation id") == "org-1.a_b"
    assert check_name("x" * 64, "role") == "x" * 64
    for value in ("", "_x", ".x", "a b", "a/b", "é", "x" * 65, 5, None, b"org1"):
        with pytest.raises(InvalidInput) as exc:
            check_name(value, "role")
        assert exc.value.message == (
            f"role {value!r} must be 1 to 64 letters, digits, '.', '_' or '-', starting with "
            "a letter or digit"
        )


# -- thresholds ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "n", "need"),
    [
        ("ANY", 1, 1),
        ("ANY", 5, 1),
        ("ALL", 1, 1),
        ("ALL", 4, 4),
        ("MAJORITY", 1, 1),
        ("MAJORITY", 2, 2),
        ("MAJORITY", 3, 2),
        ("MAJORITY", 4, 3),
        ("MAJORITY", 5, 3),
        ("1", 3, 1),
        ("2", 3, 2),
        ("3", 3, 3),
        ("4", 3, 4),  # k > n: n + 1, never met
        ("9999", 3, 4),
        ("1/1", 1, 1),
        ("1/1", 4, 4),
        ("2/3", 1, 1),
        ("2/3", 2, 2),
        ("2/3", 3, 2),
        ("2/3", 4, 3),
        ("2/3", 5, 4),
        ("2/3", 6, 4),
        ("1/2", 4, 2),  # at least half (MAJORITY needs 3)
        ("1/3", 1, 1),
        ("1/3", 3, 1),
        ("3/4", 4, 3),
        ("3/4", 5, 4),
    ],
)
def test_required(rule: str, n: int, need: int) -> None:
    p = Policy(rule)
    assert p.required(n) == need
    universe = orgs(n)
    met = [k for k in range(n + 1) if p.met(universe[:k], universe)]
    assert met == list(range(need, n + 1))  # met exactly from ``need`` approving orgs on


def test_any() -> None:
    p = Policy("ANY")
    assert not p.met([], ORGS3)
    assert p.met(["org2"], ORGS3)


def test_all() -> None:
    p = Policy("ALL", ORGS3)
    assert not p.met(["org1", "org2"], ())
    assert p.met(["org3", "org1", "org2"], ())


def test_k_larger_than_n_is_never_met_and_says_so() -> None:
    p = Policy("4", ORGS3)
    assert not p.met(ORGS3, ORGS3)
    assert p.shortfall(ORGS3, ()) == (
        "it needs 4 organisations but only 3 are in its scope, so it can never be met"
    )


def test_fraction_one_is_all() -> None:
    one, every = Policy("1/1"), Policy("ALL")
    for n in range(1, 7):
        universe = orgs(n)
        for k in range(n + 1):
            assert one.met(universe[:k], universe) == every.met(universe[:k], universe)


def test_fraction_is_at_least_not_more_than() -> None:
    # 2/3 of 3 is exactly 2: "at least two thirds" is met with equality
    assert Policy("2/3").met(["org1", "org2"], ORGS3)
    # while MAJORITY of 4 needs strictly more than half
    four = orgs(4)
    assert Policy("1/2").met(four[:2], four)
    assert not Policy("MAJORITY").met(four[:2], four)


def test_no_organisation_in_scope_is_never_met() -> None:
    for rule in ("ANY", "ALL", "MAJORITY", "1", "1/2", "1/1"):
        p = Policy(rule)
        assert not p.met([], [])
        assert not p.met(["org1"], [])  # approvals from outside the (empty) scope
        assert p.shortfall(["org1"], []) == (
            "no organisation is in its scope, so it can never be met"
        )


# -- counting -----------------------------------------------------------------------------------
def test_approvals_count_once_per_organisation() -> None:
    p = Policy("MAJORITY", ORGS3)
    assert not p.met(["org1"] * 10, ())
    assert p.met(["org1"] * 10 + ["org3"], ())
    assert p.shortfall(["org1", "org1", "org1"], ()) == (
        "needs 2 of 3 organisations, approved by org1"
    )


def test_approvals_outside_the_listed_orgs_do_not_count() -> None:
    p = Policy("ANY", ("org1", "org2"))
    assert not p.met(["org3", "org4"], ORGS3)
    assert p.shortfall(["org3"], ORGS3) == "needs 1 of 2 organisations, approved by none"
    # every organisation: approvals from an organisation not on the chain do not count
    q = Policy("ALL")
    assert not q.met(["org1", "org2", "ghost"], ORGS3)
    assert q.met(["org1", "org2", "org3", "ghost"], ORGS3)


def test_empty_orgs_means_every_organisation() -> None:
    p = Policy("ALL")
    assert p.universe(["org3", "org1", "org2", "org1"]) == ORGS3
    assert Policy("ALL", ("org1",)).universe(["org1", "org2"]) == ("org1",)
    assert p.met(ORGS3, ORGS3)
    assert not p.met(ORGS3, [*ORGS3, "org4"])  # a new organisation joins: ALL needs it too
    assert p.shortfall(ORGS3, [*ORGS3, "org4"]) == (
        "needs 4 of 4 organisations, approved by org1, org2, org3"
    )


def test_admits_filters_by_org_and_role() -> None:
    admins = Policy("ANY", ("org1", "org2"), ("admin",))
    assert admins.admits("org1", ["admin"])
    assert admins.admits("org2", ("member", "admin"))
    assert not admins.admits("org1", ["member"])
    assert not admins.admits("org1", [])
    assert not admins.admits("org3", ["admin"])
    several = Policy("ANY", (), ("admin", "auditor"))
    assert several.admits("orgX", ["auditor"])
    assert not several.admits("orgX", ["member", "validator"])
    anyone = Policy("ANY")
    assert anyone.admits("org1", [])
    assert anyone.admits("org9", ["x"])  # without the chain's organisations: anyone
    assert anyone.admits("org1", ["member"], ORGS3)
    assert not anyone.admits("org9", ["member"], ORGS3)  # not on the chain
    # listed orgs win over the chain's organisations
    assert Policy("ANY", ("gone",)).admits("gone", [], ORGS3)


# -- words --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "words"),
    [
        (Policy("MAJORITY", ORGS3, ("admin",)), "MAJORITY of org1, org2, org3 (role admin)"),
        (Policy("ANY"), "ANY of every organisation (any role)"),
        (Policy("ALL", ("org2",)), "ALL of org2 (any role)"),
        (
            Policy("2", ORGS3, ("admin", "auditor")),
            "2-of-n of org1, org2, org3 (roles admin, auditor)",
        ),
        (Policy("2/3"), "2/3 of every organisation (any role)"),
    ],
)
def test_describe(policy: Policy, words: str) -> None:
    assert policy.describe() == words


def test_shortfall_words() -> None:
    p = Policy("2/3")
    assert p.shortfall([], ORGS3) == "needs 2 of 3 organisations, approved by none"
    assert p.shortfall(["org3", "org2", "org3"], [*ORGS3, "org4"]) == (
        "needs 3 of 4 organisations, approved by org2, org3"
    )
    assert Policy("ANY").shortfall([], []) == (
        "no organisation is in its scope, so it can never be met"
    )


# -- properties ---------------------------------------------------------------------------------
ORG_POOL = [f"o{i}" for i in range(7)]
org_names = st.sampled_from(ORG_POOL)


@st.composite
def rules(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["named", "k", "fraction"]))
    if kind == "named":
        return draw(st.sampled_from(RULES))
    if kind == "k":
        return str(draw(st.integers(1, 9)))
    b = draw(st.integers(1, 9))
    return f"{draw(st.integers(1, b))}/{b}"


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    listed = draw(st.lists(org_names, max_size=5, unique=True))
    roles = draw(st.lists(st.sampled_from(["admin", "member", "auditor"]), max_size=2))
    return Policy.of(draw(rules()), listed, roles)


chain_orgs = st.lists(org_names, max_size=7, unique=True)
approvals = st.lists(org_names, max_size=12)


def reference(p: Policy, approving: list[str], all_orgs: list[str]) -> bool:
    """The rules of the module docstring, with exact rational arithmetic."""
    # listed organisations that left the chain no longer count (when the chain's list is known)
    if p.orgs:
        universe = set(p.orgs) & set(all_orgs) if all_orgs else set(p.orgs)
    else:
        universe = set(all_orgs)
    n = len(universe)
    k = len(set(approving) & universe)
    if n == 0:
        return False
    if p.rule == "ANY":
        return k >= 1
    if p.rule == "ALL":
        return k == n
    if p.rule == "MAJORITY":
        return 2 * k > n
    if "/" in p.rule:
        a, b = map(int, p.rule.split("/"))
        return k >= 1 and Fraction(k, n) >= Fraction(a, b)
    return int(p.rule) <= n and k >= int(p.rule)


@examples
@given(policies(), approvals, chain_orgs)
def test_met_matches_the_reference(p: Policy, approving: list[str], all_orgs: list[str]) -> None:
    assert p.met(approving, all_orgs) == reference(p, approving, all_orgs)
    never = p.required(len(p.universe(all_orgs))) > len(p.universe(all_orgs))
    assert ("can never be met" in p.shortfall(approving, all_orgs)) == (
        never or not p.universe(all_orgs)
    )


@examples
@given(policies(), approvals, chain_orgs, st.randoms(use_true_random=False))
def test_verdict_does_not_depend_on_order_or_repetition(
    p: Policy, approving: list[str], all_orgs: list[str], rnd: Any
) -> None:
    verdict = p.met(approving, all_orgs)
    words = p.shortfall(approving, all_orgs)
    shuffled, chain_shuffled = list(approving), list(all_orgs)
    rnd.shuffle(shuffled)
    rnd.shuffle(chain_shuffled)
    doubled = shuffled + approving
    assert p.met(shuffled, chain_shuffled) == verdict
    assert p.met(doubled, chain_shuffled + all_orgs) == verdict
    assert p.met(iter(sorted(set(approving))), tuple(all_orgs)) == verdict
    assert p.shortfall(doubled, chain_shuffled) == words


@examples
@given(policies(), approvals, approvals, chain_orgs)
def test_met_is_monotone(
    p: Policy, approving: list[str], more: list[str], all_orgs: list[str]
) -> None:
    if p.met(approving, all_orgs):
        assert p.met(approving + more, all_orgs)
        assert p.met(more + approving, all_orgs)


@examples
@given(policies(), chain_orgs)
def test_required_is_within_bounds(p: Policy, all_orgs: list[str]) -> None:
    n = len(p.universe(all_orgs))
    need = p.required(n)
    assert 1 <= need <= n + 1 or (n == 0 and need == 0)  # ALL of nothing
    # everybody approving meets every rule that can be met at all
    assert p.met(list(p.universe(all_orgs)), all_orgs) == (n > 0 and need <= n)


@examples
@given(rules(), st.lists(org_names, max_size=6), st.lists(st.sampled_from(["a", "b"])))
def test_construction_is_canonical(rule: str, listed: list[str], roles: list[str]) -> None:
    p = Policy.of(rule.lower(), listed, roles)
    q = Policy.of(rule, list(reversed(listed)) + listed, sorted(roles, reverse=True))
    assert p == q
    assert Policy.from_value(p.to_value()) == p
    assert p.describe() == q.describe()
    words = p.describe()
    assert all(o in words for o in p.orgs)
    assert re.match(r"^(ANY|ALL|MAJORITY|\d+-of-n|\d+/\d+) of ", words)


def test_a_listed_organisation_that_left_the_chain_no_longer_counts() -> None:
    p = Policy.of("ALL", ["org1", "org2", "org3"], ["admin"])
    on_chain = ["org1", "org2"]  # org3 was removed by governance
    assert p.universe(on_chain) == ("org1", "org2")
    assert p.met(["org1", "org2"], on_chain)
    assert not p.met(["org1"], on_chain)
    assert "needs 2 of 2 organisations" in p.shortfall(["org1"], on_chain)
