"""General rules of Helm's values layering, checked on generated data (hypothesis)."""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compiler.syntax.helmvalues import (
    Chart,
    ValuesError,
    cli_merge_values,
    coalesce_tables,
    coalesce_values,
    deep_copy,
    merge_maps,
    merge_values,
)
from compiler.syntax.helmvalues import _coalesce as coalesce_faithfully  # the line-by-line port
from compiler.syntax.strvals import SetError, apply_set

KEYS = st.sampled_from(["a", "b", "c", "global", "x.y", "n"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
MAPS = st.dictionaries(KEYS, VALUES, max_size=5)

# "Shape-consistent" maps: a key starting with "m" always holds a map, any other key never does.
SHAPED = st.recursive(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), SCALARS, max_size=3),
    lambda inner: st.builds(
        lambda scalars, maps: {**scalars, **maps},
        st.dictionaries(st.sampled_from(["a", "b", "c"]), SCALARS, max_size=3),
        st.dictionaries(st.sampled_from(["m1", "m2"]), inner, max_size=2)),
    max_leaves=10)


# Generous limits: CI machines are slow, and timing is not what these tests are about.
RELAXED = settings(deadline=None, max_examples=150)


def snapshot(*values: Any) -> str:
    return json.dumps(values, sort_keys=True)


@RELAXED
@given(SHAPED, SHAPED, SHAPED)
def test_merge_maps_is_associative_on_consistent_shapes(a: Any, b: Any, c: Any) -> None:
    assert merge_maps(merge_maps(a, b), c) == merge_maps(a, merge_maps(b, c))


def test_merge_maps_is_not_associative_when_a_layer_replaces_a_map() -> None:
    # Helm folds -f files left to right: a scalar in the middle layer forgets what came before.
    a, b, c = {"k": {"x": 1}}, {"k": 2}, {"k": {"y": 1}}
    assert merge_maps(merge_maps(a, b), c) == {"k": {"y": 1}}
    assert merge_maps(a, merge_maps(b, c)) == {"k": {"x": 1, "y": 1}}


@RELAXED
@given(MAPS)
def test_merge_maps_identity(a: dict[str, Any]) -> None:
    assert merge_maps({}, a) == a
    assert merge_maps(a, {}) == a


@RELAXED
@given(MAPS, MAPS)
def test_merge_maps_later_layer_wins_on_leaves(a: dict[str, Any], b: dict[str, Any]) -> None:
    merged = merge_maps(a, b)
    for key, value in b.items():
        if not (isinstance(value, dict) and isinstance(a.get(key), dict)):
            assert merged[key] == value


@RELAXED
@given(MAPS, MAPS, MAPS)
def test_no_function_mutates_its_inputs(a: dict[str, Any], b: dict[str, Any],
                                        c: dict[str, Any]) -> None:
    before = snapshot(a, b, c)
    merge_maps(a, b)
    coalesce_values(a, b)
    merge_values(a, b)
    coalesce_tables(a, b)
    chart = Chart("top", a, (Chart("a", c), Chart("b", b)))
    with suppress(ValuesError):  # a subchart's key holds a non-map: an error, inputs untouched
        coalesce_values(chart, b)
        merge_values(chart, c)
    with suppress(SetError):  # e.g. "a" holds a scalar: Helm refuses "a.b=1"
        cli_merge_values([a, b], set_values=["a.b=1", "c[1]=x"], set_json=['{"b": {"z": 1}}'])
    assert snapshot(a, b, c) == before


@RELAXED
@given(MAPS, MAPS)
def test_flat_coalesce_equals_the_faithful_port(defaults: dict[str, Any],
                                                user: dict[str, Any]) -> None:
    fast_warnings: list[str] = []
    port_warnings: list[str] = []
    fast = coalesce_values(Chart("c", defaults), user, warnings=fast_warnings)
    port = coalesce_faithfully(Chart("c", deep_copy(defaults)), deep_copy(user), "", False,
                               port_warnings.append)
    assert snapshot(fast) == snapshot(port)
    assert list(fast) == list(port)  # same key order, too
    assert fast_warnings == port_warnings


@RELAXED
@given(MAPS, KEYS)
def test_user_null_deletes_a_chart_default(defaults: dict[str, Any], key: str) -> None:
    defaults = {**defaults, key: "default"}
    assert key not in coalesce_values(defaults, {key: None})
    assert merge_values(defaults, {key: None})[key] is None


def without_nulls(value: Any) -> Any:
    """Helm's cleanNilValues on a copy: null map entries dropped at any depth of maps."""
    if not isinstance(value, dict):
        return value
    return {key: without_nulls(item) for key, item in value.items() if item is not None}


@RELAXED
@given(MAPS)
def test_coalesce_without_user_values_gives_the_defaults_without_nulls(
        defaults: dict[str, Any]) -> None:
    """Helm 4.3.1 drops the chart's own null defaults (measured with the real Helm; see
    tests/test_helm_differential.py), in nested maps too, but not inside lists."""
    assert snapshot(coalesce_values(defaults, {})) == snapshot(without_nulls(defaults))


@RELAXED
@given(MAPS, MAPS)
def test_a_user_value_keeps_its_key_over_a_null_default(defaults: dict[str, Any],
                                                        user: dict[str, Any]) -> None:
    """A key the user sets to a value survives whatever the chart says; a null default the user
    does not set never shows through."""
    out = coalesce_values(defaults, user)
    for key, value in user.items():
        if value is not None:
            assert key in out
    for key, default in defaults.items():
        if default is None and key not in user:
            assert key not in out


# --- --set round trips -----------------------------------------------------------------------

SEGMENT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
                  max_size=6)
PLAIN_SEGMENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True)
PATHS = st.lists(SEGMENT, min_size=1, max_size=5)


def escape(text: str, specials: str) -> str:
    return "".join("\\" + char if char in specials or char == "\\" else char for char in text)


def set_key(path: list[str]) -> str:
    return ".".join(escape(segment, ".=[],") for segment in path)


def read_path(data: Any, path: list[str]) -> Any:
    for segment in path:
        assert isinstance(data, dict), f"no map at {segment!r} in {data!r}"
        data = data[segment]
    return data


@RELAXED
@given(PATHS, st.text(max_size=12))
def test_set_string_round_trips(path: list[str], value: str) -> None:
    dest: dict[str, Any] = {}
    apply_set(dest, "set-string", f"{set_key(path)}={escape(value, ',{')}")
    assert read_path(dest, path) == value


@RELAXED
@given(PATHS, st.one_of(st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none()))
def test_set_typed_scalar_round_trips(path: list[str], value: Any) -> None:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(
        value)
    dest: dict[str, Any] = {}
    apply_set(dest, "set", f"{set_key(path)}={text}")
    read = read_path(dest, path)
    assert read == value and type(read) is type(value)


@RELAXED
@given(PATHS, VALUES)
def test_set_json_round_trips(path: list[str], value: Any) -> None:
    # Helm reads a --set-json value that starts with '{' (after trimming space) as one whole
    # JSON object, not as key=value: such keys cannot be written in the key=value form
    assume(not set_key(path).strip().startswith("{"))
    dest: dict[str, Any] = {}
    apply_set(dest, "set-json", f"{set_key(path)}={json.dumps(value)}")
    assert snapshot(read_path(dest, path)) == snapshot(value)


@RELAXED
@given(st.lists(PLAIN_SEGMENT, min_size=1, max_size=5), st.text(max_size=12))
def test_set_literal_takes_the_rest_verbatim(path: list[str], value: str) -> None:
    dest: dict[str, Any] = {}
    apply_set(dest, "set-literal", f"{'.'.join(path)}={value}")
    assert read_path(dest, path) == value


@RELAXED
@given(PATHS, st.text(max_size=8), st.text(max_size=8))
def test_later_set_wins_and_siblings_survive(path: list[str], first: str, second: str) -> None:
    dest: dict[str, Any] = {"keep": {"me": 1}}
    apply_set(dest, "set-string", f"{set_key(path)}={escape(first, ',{')}")
    apply_set(dest, "set-string", f"{set_key(path)}={escape(second, ',{')}")
    assert read_path(dest, path) == second
    if path[0] != "keep":
        assert dest["keep"] == {"me": 1}
