"""A chart's values.schema.json: meshc's verdict on a chart's values is Helm's.

Differential against the real Helm 4 (tests/realtools.py): hypothesis draws a JSON Schema (types,
enums, consts, bounds, lengths, patterns, objects with required and additional properties,
arrays with items and sizes, anyOf/oneOf/allOf/not, `format` under draft-07 and 2020-12) and a values map; `helm template` of a chart
carrying that schema accepts or refuses the values, and meshc
(:func:`compiler.values.chart_schema.schema_errors`) must agree, naming the same failing
locations where the schema has no alternatives (Helm reports the leaves of anyOf/oneOf in its
own way). ``MESHC_SCHEMA_CASES`` sets how many cases run (default 240).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from compiler.syntax.yamlsrc import ValuesDoc
from compiler.values.chart_schema import pointer, schema_errors, schema_problems
from tests.realtools import helm4, run_helm

CASES = int(os.environ.get("MESHC_SCHEMA_CASES", "240"))
KEYS = ["a", "b", "c"]
PATTERNS = ["^[a-z]+$", "^[0-9]{2,}$", "x", "^$"]

scalars = st.one_of(st.booleans(), st.integers(-5, 5), st.sampled_from([0.5, -1.5, 2.0]),
                    st.sampled_from(["", "x", "ab", "12", "abc1", "zz", "a@b.c", "1.2.3.4",
                                     "2026-12-02", "2026-13-40"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=8)

TYPES = ["string", "integer", "number", "boolean", "array", "object"]
leaf_schemas = st.one_of(
    st.builds(lambda t: {"type": t}, st.sampled_from(TYPES)),
    st.builds(lambda ts: {"type": ts}, st.lists(st.sampled_from(TYPES), min_size=1, max_size=2,
                                               unique=True)),
    st.builds(lambda vs: {"enum": vs}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda v: {"const": v}, scalars),
    st.builds(lambda k, n: {k: n}, st.sampled_from(["minimum", "maximum", "exclusiveMinimum",
                                                    "exclusiveMaximum"]), st.integers(-3, 3)),
    st.builds(lambda n: {"multipleOf": n}, st.sampled_from([2, 3, 0.5])),
    st.builds(lambda k, n: {k: n}, st.sampled_from(["minLength", "maxLength"]), st.integers(0, 3)),
    st.builds(lambda p: {"pattern": p}, st.sampled_from(PATTERNS)),
    st.builds(lambda f: {"format": f}, st.sampled_from(["email", "ipv4", "date"])),
)


def _object(props: dict[str, Any], required: list[str], extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    if extra is not None:
        schema["additionalProperties"] = extra
    return schema


def _array(items: Any, low: int | None, high: int | None, unique: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if low is not None:
        schema["minItems"] = low
    if high is not None:
        schema["maxItems"] = high
    if unique:
        schema["uniqueItems"] = True
    return schema


def _extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(_object, st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
                  st.lists(st.sampled_from(KEYS), max_size=2, unique=True),
                  st.one_of(st.none(), st.booleans(), inner)),
        st.builds(_array, inner, st.one_of(st.none(), st.integers(0, 2)),
                  st.one_of(st.none(), st.integers(0, 3)), st.booleans()),
        st.builds(lambda k, subs: {k: subs}, st.sampled_from(["anyOf", "oneOf", "allOf"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda sub: {"not": sub}, inner),
    )


schemas = st.recursive(leaf_schemas, _extend, max_leaves=6)
def _dialect(schema: dict[str, Any], draft: str | None) -> dict[str, Any]:
    return schema if draft is None else {"$schema": draft, **schema}


top_schemas = st.builds(_dialect, st.builds(_object, st.dictionaries(st.sampled_from(KEYS), schemas, max_size=3),
                        st.lists(st.sampled_from(KEYS), max_size=2, unique=True),
                        st.one_of(st.none(), st.booleans(), schemas)),
                        st.sampled_from([None, "http://json-schema.org/draft-07/schema#",
                                         "https://json-schema.org/draft/2020-12/schema"]))
top_values = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)

HELM_LINE = re.compile(r"^( *)- at '([^']*)': ")


def helm_leaves(output: str) -> set[str]:
    """The locations of Helm's innermost complaints: Helm nests the causes of a failure
    (``- at '/b': validation failed`` above ``  - at '/b/a': …``); meshc reports the causes."""
    found = [(len(m.group(1)), m.group(2)) for m in map(HELM_LINE.match, output.splitlines())
             if m is not None]
    return {where for i, (depth, where) in enumerate(found)
            if i + 1 == len(found) or found[i + 1][0] <= depth}


def _has_alternatives(schema: Any) -> bool:
    text = json.dumps(schema)
    return any(key in text for key in ('"anyOf"', '"oneOf"', '"not"'))


def helm_verdict(helm: Path, root: Path, schema: dict[str, Any],
                 data: dict[str, Any]) -> tuple[bool, set[str], str]:
    """(accepted, failing locations, Helm's output) of `helm template` on a chart carrying
    ``schema`` given ``data`` as its values."""
    chart = root / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    (chart / "values.schema.json").write_text(json.dumps(schema))
    (root / "values.json").write_text(json.dumps(data))
    done = run_helm(helm, ["template", "r", str(chart), "-f", str(root / "values.json")],
                    root / "home")
    output = done.stdout + done.stderr
    if done.returncode == 0:
        return True, set(), output
    assert "don't meet the specifications of the schema" in output, output
    return False, helm_leaves(output), output


def _bad_schema(schema: dict[str, Any]) -> bool:
    return bool(schema_problems(ValuesDoc("values.schema.json", schema, {})))


def _draw_cases(count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []

    @seed(20261202)
    @settings(max_examples=count, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(top_schemas, top_values)
    def collect(schema: dict[str, Any], data: dict[str, Any]) -> None:
        found.append((schema, data))

    collect()
    return found


def test_meshc_refuses_exactly_the_values_helm_refuses(tmp_path: Path) -> None:
    helm = helm4()
    cases = _draw_cases(CASES)

    def judge(item: tuple[int, tuple[dict[str, Any], dict[str, Any]]]) -> str | None:
        index, (schema, data) = item
        accepted, where, output = helm_verdict(helm, tmp_path / str(index), schema, data)
        errors = schema_errors(schema, data) if not _bad_schema(schema) else [None]
        mine = {pointer(tuple(e.absolute_path)) for e in errors if e is not None}
        if accepted != (not errors):
            return f"verdict: helm {'accepts' if accepted else 'refuses'}, meshc " \
                   f"{'refuses' if errors else 'accepts'}\n{schema}\n{data}\n{output}"
        if not accepted and not _has_alternatives(schema) and where != mine and \
                not _bad_schema(schema):
            return f"locations: helm {sorted(where)}, meshc {sorted(mine)}\n{schema}\n{data}\n" \
                   f"{output}"
        return None

    with ThreadPoolExecutor(2) as pool:
        problems = [p for p in pool.map(judge, enumerate(cases)) if p is not None]
    refused = sum(1 for s, d in cases if schema_errors(s, d))
    assert refused > len(cases) // 5, "the generator must produce refusals too"
    assert not problems, f"{len(problems)} of {len(cases)} cases disagree:\n\n" + \
        "\n\n".join(problems[:5])
