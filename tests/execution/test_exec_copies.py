"""The copies the executor hands out (a contract's arguments, a query's result) are what the
checked CBOR round trip gave, and share nothing mutable with their source.

Both were made with ``codec.decode(codec.encode(...))`` until the copies were taken by hand
(arguments) and read back unchecked (results) for speed; these properties pin that nothing a
contract or a caller sees changed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.execution.context import _plain, private_args

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**130), max_value=2**130)
    | st.binary(max_size=40)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
args_maps = st.dictionaries(st.text(max_size=8), values, max_size=6)


def _containers(value: Any) -> list[int]:
    """The ids of every mutable container inside ``value``."""
    out: list[int] = []
    if isinstance(value, dict):
        out.append(id(value))
        for v in value.values():
            out.extend(_containers(v))
    elif isinstance(value, list):
        out.append(id(value))
        for v in value:
            out.extend(_containers(v))
    return out


@settings(max_examples=300)
@given(args_maps)
def test_private_args_equal_the_checked_round_trip_and_share_nothing(args: dict[str, Any]) -> None:
    # A transaction's arguments are decoded canonical data: the canonical order of its maps.
    canonical = codec.decode(codec.encode(args))
    copy = private_args(canonical)
    assert copy == canonical
    assert codec.encode(copy) == codec.encode(canonical)  # same map order, same bytes
    assert not set(_containers(copy)) & set(_containers(canonical))


@settings(max_examples=300)
@given(args_maps)
def test_private_args_turn_tuples_into_lists(args: dict[str, Any]) -> None:
    copy = private_args(args)
    assert codec.encode(copy) == codec.encode(args)
    assert not any(type(v) is tuple for v in _walk(copy))


def _walk(value: Any) -> list[Any]:
    out = [value]
    if isinstance(value, dict):
        for v in value.values():
            out.extend(_walk(v))
    elif isinstance(value, list | tuple):
        for v in value:
            out.extend(_walk(v))
    return out


@settings(max_examples=300)
@given(values)
def test_plain_result_is_the_checked_decode(value: Any) -> None:
    encoded = codec.encode(value)
    plain = _plain(value, encoded)
    assert plain == codec.decode(encoded)
    assert codec.encode(plain) == encoded
    assert not set(_containers(plain)) & set(_containers(value))
