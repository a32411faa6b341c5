"""YAML in and out (``compiler.syntax.yamlsrc``): Helm's Go typing when reading, safe quoting when writing.

The typing table is go-yaml v2's resolver as Helm reads values (``sigs.k8s.io/yaml``): its
boolean/null words are an exact-case list, timestamps stay strings, no base-60 numbers, Go's
``strconv`` number syntax. The whole table is also checked against the real Helm 4
(``tests/realtools.py``): each entry as a ``--values`` file, read back from ``.Values``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.core.diagnostics import CompileError
from compiler.syntax.yamlsrc import dump_yaml, load_values_text

NAN = object()  # marker: the value must be a float NaN (NaN != NaN)


def _value(text: str) -> Any:
    return load_values_text(f"k: {text}\n", "t.yaml")["k"]


def _same(actual: Any, expected: Any) -> bool:
    """Equal, and of the same type (True is not 1, 9.0 is not 9)."""
    if expected is NAN:
        return isinstance(actual, float) and math.isnan(actual)
    return type(actual) is type(expected) and actual == expected


# (scalar as written after "k: ", expected Python value). Types matter: see _same.
SCALARS: list[tuple[str, Any]] = [
    # booleans: go-yaml v2's exact-case table
    *[(w, True) for w in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                          "on", "On", "ON")],
    *[(w, False) for w in ("n", "N", "no", "No", "NO", "false", "False", "FALSE",
                           "off", "Off", "OFF")],
    ("yEs", "yEs"), ("tRUE", "tRUE"), ("oN", "oN"), ("nO", "nO"), ("fAlse", "fAlse"),
    ("yes please", "yes please"),
    # null
    ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None), ("nULL", "nULL"),
    # timestamps and sexagesimal numbers stay strings
    ("2024-01-01", "2024-01-01"), ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("2001-12-14 21:59:43.10", "2001-12-14 21:59:43.10"),
    ("1:30", "1:30"), ("190:20:30", "190:20:30"), ("-1:30", "-1:30"),
    # integers: strconv.ParseInt(s, 0, 64) after removing '_'
    ("0", 0), ("-0", 0), ("42", 42), ("+12", 12), ("-17", -17),
    ("0777", 511), ("00", 0), ("0o17", 15), ("0O17", 15), ("0x1F", 31), ("0X1f", 31),
    ("-0x1F", -31), ("0b101", 5), ("-0b101", -5), ("1_000", 1000), ("1__0", 10),
    ("9223372036854775807", 2**63 - 1), ("-9223372036854775808", -(2**63)),
    ("9223372036854775808", 2**63),  # ParseUint still takes it
    # floats: yamlStyleFloat, and '.'-led ParseFloat
    ("09", 9.0), ("012345678", 12345678.0), ("08.5", 8.5), ("1.", 1.0), ("0.", 0.0),
    (".5", 0.5), ("+.5", 0.5), ("-.5", -0.5), ("1e3", 1000.0), ("1E3", 1000.0),
    ("1e+3", 1000.0), ("2.5e-1", 0.25), ("1_0.5", 10.5),
    ("18446744073709551616", 1.8446744073709552e19), ("-9223372036854775809", -9.223372036854776e18),
    (".inf", math.inf), (".Inf", math.inf), ("+.INF", math.inf), ("-.inf", -math.inf),
    (".nan", NAN), (".NaN", NAN),
    # not numbers
    ("0x", "0x"), ("0o", "0o"), ("0b2", "0b2"), ("0o8", "0o8"), ("+", "+"), (".", "."),
    ("._5", "._5"), ("0.5e", "0.5e"), ("1e400", "1e400"), ("0x1p-2", "0x1p-2"),
    ("1.2.3", "1.2.3"), ("12abc", "12abc"), ("infinity", "infinity"), ("nan", "nan"),
    # quoted and explicitly tagged scalars
    ("'y'", "y"), ('"0777"', "0777"), ("'1_000'", "1_000"), ('"null"', "null"), ("''", ""),
    ("'2024-01-01'", "2024-01-01"), ("!!str 12", "12"), ("!!str yes", "yes"), ("!!str", ""),
    ("!!float 1", 1.0), ("!!int 0x10", 16), ("!!bool on", True), ("!!null ''", None),
    ("!!timestamp 2001-01-01", "2001-01-01"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS, ids=[repr(t) for t, _ in SCALARS])
def test_scalar_typing_follows_go_yaml(text: str, expected: Any) -> None:
    actual = _value(text)
    assert _same(actual, expected), f"{text!r} read as {actual!r}, expected {expected!r}"


# Differences from Helm's reader found with Helm's own values reader (helm v4.2.3, through the
# helm-python-sdk package this suite once used), each checked with values_from_yaml(text).
HELM_DIFFERENCES = [
    # '.'-led float out of float64 range: Go's ParseFloat reports a range error, Helm keeps
    # the string
    pytest.param(".5e400", ".5e400", id="dot-float-out-of-range"),
    # go-yaml v2 decodes !!binary; Helm sees the bytes as a string
    pytest.param("!!binary aGVsbG8=", "hello", id="binary-tag"),
]


@pytest.mark.parametrize(("text", "expected"), HELM_DIFFERENCES)
def test_scalar_typing_edge_cases_helm_disagrees_with(text: str, expected: Any) -> None:
    assert _same(_value(text), expected)


def test_merge_after_explicit_key_follows_document_order() -> None:
    """go-yaml v2 (Helm) applies keys in document order: a '<<' written after an explicit key
    overrides it (go-yaml v3 would let the explicit key win)."""
    assert load_values_text("a: 1\n<<: {a: 2, b: 3}\n", "t.yaml") == {"a": 2, "b": 3}


KEYS: list[tuple[str, str]] = [
    ("on", "true"), ("y", "true"), ("off", "false"), ("NO", "false"), ("yEs", "yEs"),
    ("0777", "511"), ("0x10", "16"), ("1_000", "1000"), ("12", "12"), ("1.5", "1.5"),
    ("0.1", "0.1"), ("1e3", "1000"), ("'on'", "on"), ('"12"', "12"), ("2024-01-01", "2024-01-01"),
    ("1:30", "1:30"),
]


@pytest.mark.parametrize(("key", "expected"), KEYS, ids=[k for k, _ in KEYS])
def test_non_string_keys_become_their_go_text(key: str, expected: str) -> None:
    assert load_values_text(f"{key}: x\n", "t.yaml") == {expected: "x"}


def test_float_keys_are_formatted_as_sigs_k8s_yaml_does() -> None:
    """sigs.k8s.io/yaml writes float keys with strconv.FormatFloat(k, 'g', -1, 32)."""
    assert load_values_text("123456789.0: x\n1e21: z\n", "t.yaml") == {
        "1.2345679e+08": "x", "1e+21": "z"}


def test_special_and_out_of_range_float_keys_read_as_helm_reads_them() -> None:
    """Seen with the real Helm 4.3.1 (`helm template` dumping .Values): sigs.k8s.io/yaml spells
    infinities and NaN as YAML does, and a key beyond float32's range overflows to infinity."""
    assert load_values_text(".nan: a\n.inf: b\n-.inf: c\n", "t.yaml") == {
        ".nan": "a", ".inf": "b", "-.inf": "c"}
    assert load_values_text("1e39: big\n-1e39: small\n", "t.yaml") == {".inf": "big",
                                                                     "-.inf": "small"}


def test_anchors_aliases_and_merge_keys() -> None:
    text = """\
base: &base {image: nginx, replicas: 2, labels: {a: "1"}}
list: &l [1, 2]
copy: *l
svc:
  <<: *base
  replicas: 3
multi:
  <<: [{a: 1, b: 1}, {a: 2, c: 2}]
  c: 3
"""
    assert load_values_text(text, "t.yaml") == {
        "base": {"image": "nginx", "replicas": 2, "labels": {"a": "1"}},
        "list": [1, 2],
        "copy": [1, 2],
        "svc": {"image": "nginx", "replicas": 3, "labels": {"a": "1"}},
        "multi": {"a": 1, "b": 1, "c": 3},  # earlier merge sources win, explicit keys win
    }


def test_aliased_maps_are_independent_copies() -> None:
    data = load_values_text("a: &x {k: [1]}\nb: *x\n", "t.yaml")
    data["a"]["k"].append(2)
    assert data["b"] == {"k": [1]}, "an alias must not share mutable data with its anchor"


def test_quoted_strings_stay_strings() -> None:
    text = "a: 'yes'\nb: \"0x1F\"\nc: '~'\nd: \"1:30\"\ne: '.inf'\n"
    assert load_values_text(text, "t.yaml") == {
        "a": "yes", "b": "0x1F", "c": "~", "d": "1:30", "e": ".inf"}


def _error(text: str) -> Any:
    with pytest.raises(CompileError) as info:
        load_values_text(text, "values.yaml")
    return info.value.diagnostics


def test_duplicate_key_is_an_error_at_the_second_key() -> None:
    diags = _error("a: 1\nb:\n  c: 2\n  d: 3\n  c: 4\n")
    assert len(diags) == 1
    d = diags[0]
    assert d.severity == "error" and "duplicate key 'c'" in d.message
    assert (d.span.file, d.span.line, d.span.col) == ("values.yaml", 5, 3)
    assert any("values.yaml:3:3" in note for note in d.notes), d.notes


def test_every_duplicate_key_is_reported() -> None:
    diags = _error("a: 1\na: 2\nb: 1\nb: 2\n")
    assert [(d.span.line, d.span.col) for d in diags] == [(2, 1), (4, 1)]


def test_duplicate_key_after_go_typing_is_an_error() -> None:
    # 'on' and 'true' are the same key once typed (both become "true")
    diags = _error("on: 1\ntrue: 2\n")
    assert "duplicate key 'true'" in diags[0].message
    assert (diags[0].span.line, diags[0].span.col) == (2, 1)


@pytest.mark.parametrize(("text", "line", "col"), [
    ("a: [1, 2\n", 2, 1),
    ("a:\n  b: 1\n   c: 2\n", 3, 5),
    ("a: 'unterminated\n", 2, 1),
    ("a: b: c\n", 1, 5),
    ("a: *nowhere\n", 1, 4),
    ("a:\n\t- b\n", 2, 1),
])
def test_syntax_errors_carry_a_position(text: str, line: int, col: int) -> None:
    diags = _error(text)
    assert diags[0].severity == "error" and "invalid YAML" in diags[0].message
    assert (diags[0].span.file, diags[0].span.line, diags[0].span.col) == ("values.yaml", line, col)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_must_be_a_map(text: str) -> None:
    assert "top level" in _error(text)[0].message


def test_empty_file_is_an_empty_map() -> None:
    assert load_values_text("", "t.yaml") == {}
    assert load_values_text("# only a comment\n", "t.yaml") == {}


def helm_reads(texts: list[str], work: Path) -> list[Any]:
    """Each text read by the real Helm 4 as a values file (tests/helmjudge.py); skips the
    calling test (or fails it under CI=true) without the binary."""
    from helmjudge import values_as_helm_reads
    from realtools import helm4

    return values_as_helm_reads(helm4(), texts, work)


def test_table_agrees_with_helms_own_reader(tmp_path: Path) -> None:
    """Every table entry, read by Helm's reader (through JSON, as Helm does), gives our value."""
    texts = [f"k: {t}\n" for t, e in SCALARS if e is not NAN and not _is_inf(e)]
    texts += [f"{k}: x\n" for k, _ in KEYS]
    helm = helm_reads(texts, tmp_path)
    differ = []
    for text, theirs in zip(texts, helm):
        ours = _as_float64(load_values_text(text, "t.yaml"))
        if ours != _as_float64(theirs):
            differ.append(f"{text!r}: meshc {ours!r}, helm {theirs!r}")
    assert not differ, "\n".join(differ)


def _as_float64(value: Any) -> Any:
    """Helm's values pass through JSON: every number is a float64 there."""
    if isinstance(value, dict):
        return {k: _as_float64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_float64(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _is_inf(value: Any) -> bool:
    return isinstance(value, float) and math.isinf(value)


# --- dump_yaml: what it writes reads back as the same data ------------------------------------

TRICKY = ["y", "Y", "n", "yes", "No", "on", "OFF", "true", "True", "null", "Null", "~", "",
          "0777", "0o17", "0x1F", "1_000", "09", "1e3", ".5", ".inf", "-.inf", ".nan", "1:30",
          "2024-01-01", "2001-12-14t21:59:43.10-05:00", "12", "-1", "+1", "1.", "<<", "=",
          " lead", "trail ", " ", "a: b", "a:b", "- x", "-", "#", "# c", "a #b", "x\n", "x\n\n",
          "\n", "\n\n", "a\nb", " \n", "x\n \n", "a\n  b\n", "'", '"', "\\", "@x", "`x", "%x",
          "!x", "&a", "*a", "|", ">", "{", "[]", "{}", "?", "? x", "---", "...", "\t", "x\ty",
          "\u2028", "\x85", "\ufeff", "é", "日本", "\x00", "\x7f", "a\r\nb", "\r"]

TEXT = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12),
                 st.lists(st.sampled_from(TRICKY), min_size=1, max_size=3).map("".join))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                   st.floats(allow_nan=False, allow_infinity=False), TEXT)
DATA = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=20)
DOCS = st.dictionaries(TEXT, DATA, max_size=6)


@settings(max_examples=150, deadline=None)
@given(DOCS)
def test_dump_yaml_round_trips(data: dict[str, Any]) -> None:
    text = dump_yaml(data)
    assert load_values_text(text, "dumped.yaml") == data, text


@settings(max_examples=100, deadline=None)
@given(DOCS)
def test_dump_yaml_is_stable_and_plain(data: dict[str, Any]) -> None:
    text = dump_yaml(data)
    assert dump_yaml(data) == text
    assert text.endswith("\n") and "\r" not in text
    assert dump_yaml(load_values_text(text, "dumped.yaml")) == text


@pytest.mark.parametrize("value", TRICKY)
def test_each_tricky_string_round_trips_as_value_and_key(value: str) -> None:
    data = {"v": value, value: "k", "l": [value]}
    assert load_values_text(dump_yaml(data), "dumped.yaml") == data


MORE_TRICKY = ["0b101", "+0x1F", "1e400", ".5e400", "+1_0", "0x_1F", "0.0.0", "2001-12-14",
               "12:30:00", "1:2:3", "--", "y\n", "on\n", "NULL", "nULL", "\u00a0", "a\u00a0",
               "\u2029x", "x\u0085y", "\t\n", "x\n\n\n", "  \n  \n", "#x\n", "key: v\n- x\n",
               "Yes ", " no"]


def test_helm_reads_what_dump_yaml_writes(tmp_path: Path) -> None:
    """Helm's reader gets back exactly the data dump_yaml wrote, tricky strings included."""
    datas = [{"v": s, "l": [s, 1, 2.5, True, None], s: {"n": 1}}
             for s in TRICKY + MORE_TRICKY if s not in ("v", "l")]
    differ = [f"{data!r}: helm read {theirs!r} from {dump_yaml(data)!r}"
              for data, theirs in zip(datas, helm_reads([dump_yaml(d) for d in datas], tmp_path))
              if _as_float64(theirs) != _as_float64(data)]
    assert not differ, "\n".join(differ)


def test_helm_reads_the_committed_values_files_as_meshc_does(tmp_path: Path) -> None:
    from conftest import ROOT

    paths = sorted((ROOT / "rendered").rglob("values.yaml"))
    assert paths
    texts = [p.read_text("utf-8") for p in paths]
    differ = [str(p) for p, text, theirs in zip(paths, texts, helm_reads(texts, tmp_path))
              if _as_float64(load_values_text(text, str(p))) != _as_float64(theirs)]
    assert not differ, differ


def test_dump_yaml_quotes_what_go_or_yaml_1_1_would_retype() -> None:
    text = dump_yaml({"a": "y", "b": "0777", "c": "2024-01-01", "d": "1:30", "e": "plain"})
    assert text == "a: 'y'\nb: '0777'\nc: '2024-01-01'\nd: '1:30'\ne: plain\n"


def test_dump_yaml_sorts_keys_and_writes_numbers_as_helm_does() -> None:
    assert dump_yaml({"b": 3.0, "a": [1, 2.5, True, None]}) == (
        "a:\n- 1\n- 2.5\n- true\n- null\nb: 3\n")
    assert dump_yaml({}) == "{}\n"


# Flow nesting: the first level past the limit, or where a libyaml build that bounds nesting
# at 1,000 levels stops while scanning ahead (PyYAML 6.0.4's wheels), whichever comes first.
@pytest.mark.parametrize("text, line, cols", [
    ("deep: " + "[" * 100_000 + "]" * 100_000 + "\n", 1, (207, 1006)),
    ("deep: " + "{a: " * 100_000 + "}" * 100_000 + "\n", 1, (807, 4003)),
    ("deep:\n" + "- " * 50_000 + "x\n", 2, (401,)),
    ("deep:\n" + "".join(" " * i + f"k{i}:\n" for i in range(3000)) + " " * 3000 + "x: 1\n",
     203, (202,)),
])
def test_runaway_nesting_is_refused_before_libyaml_composes_it(text: str, line: int,
                                                               cols: tuple[int, ...]) -> None:
    """Some libyaml builds (PyYAML 6.0.3's wheels) set no nesting bound and compose by C
    recursion: 100,000 levels killed the process with SIGSEGV. The depth limit must be enforced
    on parser events first, whatever the build, and answer with a position."""
    with pytest.raises(CompileError) as caught:
        load_values_text(text, "deep.yaml")
    (diag,) = caught.value.diagnostics
    assert diag.message == "YAML document is nested too deeply"
    assert diag.span.line == line and diag.span.col in cols, diag.span
    assert diag.help == "the limit is limits.yamlDepth = 200"


def test_command_line_depth_limit_cannot_lift_the_c_stack_ceiling() -> None:
    from compiler.core import limits
    from compiler.syntax.yamlsrc import SAFE_DEPTH
    with limits.session((("yaml_depth", 10**9),), bound_memory=False), \
            pytest.raises(CompileError) as caught:
        load_values_text("deep: " + "[" * 100_000 + "]" * 100_000 + "\n", "deep.yaml")
    assert f"ceiling, whatever --limit asks: {SAFE_DEPTH}" in caught.value.diagnostics[0].help


def test_nesting_at_the_limit_still_loads() -> None:
    text = "deep: " + "[" * 199 + "1" + "]" * 199 + "\n"  # root map + 200 levels
    value = load_values_text(text, "ok.yaml")["deep"]
    for _ in range(198):
        value = value[0]
    assert value == [1]
