"""The YAML emitter (``compiler.syntax.yamlsrc.dump_yaml``).

``_pyyaml_dump`` below is the implementation ``dump_yaml`` replaced (PyYAML's representer and
serializer around the C emitter). It is the oracle: the new emitter must write the same bytes for
everything except the documented differences (``_known_difference``), and both Go's reading
(``load_values_text``) and a YAML 1.1 reader (``yaml.safe_load``) must get the data back.

``python tests/test_emitter.py`` benchmarks both on 18,000 Deployments (1,000 releases × 3
environments × 6 documents' worth of rendering) and measures how often they differ.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import timeit
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yaml.nodes import ScalarNode

from compiler.syntax.yamlsrc import INT, LIBYAML, STR, GoResolver, dump_yaml, load_values_text

# --- the oracle: dump_yaml as it was, on PyYAML ------------------------------------------------


class _SafeDumpResolver(GoResolver):
    _std = yaml.resolver.Resolver()

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is ScalarNode and implicit[0] and tag == STR:
            return self._std.resolve(kind, value, implicit)
        return tag


class _Representer(yaml.representer.SafeRepresenter):
    def represent_str(self, data: str) -> ScalarNode:  # type: ignore[override]
        if "\n" in data and not data.endswith("\n\n"):
            return self.represent_scalar(STR, data, style="|")
        if "\n" in data:
            return self.represent_scalar(STR, data, style='"')
        return self.represent_scalar(STR, data)

    def represent_float(self, data: float) -> ScalarNode:  # type: ignore[override]
        if data.is_integer() and abs(data) < 1e16:
            return self.represent_scalar(INT, str(int(data)))
        return super().represent_float(data)


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(float, _Representer.represent_float)


class _OracleDumper(yaml.cyaml.CEmitter, _Representer, _SafeDumpResolver):  # type: ignore[misc,name-defined]
    def __init__(self, stream: Any, **kwargs: Any) -> None:
        yaml.cyaml.CEmitter.__init__(self, stream, canonical=None, indent=2,  # type: ignore[attr-defined]
                                     width=1 << 30,
                                     allow_unicode=True, line_break="\n")
        _Representer.__init__(self, default_flow_style=False, sort_keys=True)
        _SafeDumpResolver.__init__(self)


def _pyyaml_dump(data: Any) -> str:
    if data == {} or data is None:
        return "{}\n" if data == {} else "null\n"
    return yaml.dump(data, Dumper=_OracleDumper)


# --- data -------------------------------------------------------------------------------------

TRICKY = [
    "y", "Y", "n", "NO", "no", "yes", "On", "off", "true", "False", "null", "Null", "~", "",
    "0777", "0o17", "0x1F", "0b101", "1_000", "1:30", "190:20:30", "2024-01-01",
    "2001-12-14t21:59:43.10-05:00", "1e3", "1.5", ".5", "+1", "-1", ".inf", "-.Inf", ".NaN",
    "<<", "=", "!", "&", "*", "3.", "1e", "12e03", "0.1.2", "v1", "1.0.0",
    " lead", "trail ", " ", "  ", "a: b", "a:b", "a:", ":", "::", ":x", "a #b", "a#b", "#", "- x",
    "-", "-x", "--", "---", "---x", "...", "...x", "?", "? x", "?x", "@x", "`x", "%x", "!x", "&x",
    "*x", "|", ">", "'", '"', "it's", 'say "hi"', "a,b", "[a]", "{a}", "a[0]", "a{b}", "a, b",
    "tab\there", "\t", "back\\slash", "é", "日本", "\xa0", "a\xa0", "\u2028", "a\u2029b", "\x85",
    "\ufeff", "\x7f", "\x00", "\x1b[0m", "😀", "a😀b", "{{ $labels.instance }}",
    "{{ .Values.x }}", "${VAR}", "$(VAR)", "http://x:80/y", "a=b", "-Xmx512m", "key: value",
    "\n", "\n\n", "a\n", "a\nb", "a\nb\n", "a\nb\n\n", "\na", " a\nb", "  indented\nx\n",
    "a \nb", "a\n b", "a\n\nb", "a\n\n\n", "a\tb\nc", "a\r\nb", "x" * 300, "y " * 200,
    "line\n" * 50, "\u00e9\n\u65e5\n",
]
_SPECIAL_ALPHABET = " -?:,[]{}#&*!|>'\"%@`~.\\\n\t\r01yYnN_+eE=<é\u2028\x85😀"

tricky_strings = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=_SPECIAL_ALPHABET, max_size=8),
    st.text(max_size=20),
    st.lists(st.sampled_from(TRICKY[:60]), max_size=4).map(" ".join),
    st.lists(st.text(alphabet=" ab#:-é", max_size=6), max_size=4).map("\n".join),
    st.builds(lambda a, b: a + b, st.sampled_from(TRICKY), st.sampled_from(["", "\n", "\n\n"])),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([3.0, -0.0, 1e20, 1e16, 1e15 + 0.5, 1.5e-7, 1e-5, 0.1, 123456789.125,
                     math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]),
)
scalars = st.one_of(tricky_strings, numbers, st.booleans(), st.none())
plain_data = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(tricky_strings, children, max_size=4),
    ),
    max_leaves=20,
)


def _same(expected: Any, actual: Any) -> bool:
    """Equality as Helm sees it: every number is a float64 (3 == 3.0), bool is not a number,
    NaN equals NaN."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        if math.isnan(expected):
            return math.isnan(actual)
        return expected == actual or float(expected) == float(actual)
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(_same(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(_same(a, b) for a, b in zip(expected, actual, strict=True)))
    return type(expected) is type(actual) and expected == actual


def _reversed(data: Any) -> Any:
    """A copy with every map's insertion order reversed."""
    if isinstance(data, dict):
        return {k: _reversed(data[k]) for k in reversed(data)}
    if isinstance(data, list):
        return [_reversed(item) for item in data]
    return data


def _walk(data: Any) -> Any:
    yield data
    if isinstance(data, dict):
        yield from data.keys()
        for value in data.values():
            yield from _walk(value)
    elif isinstance(data, list):
        for item in data:
            yield from _walk(item)


def _known_difference(data: Any) -> str | None:
    """Why the new emitter deliberately writes other bytes than PyYAML for this data, if it does.

    - U+2028/U+2029 in a string: libyaml takes them for line breaks and writes the separator
      followed by an indentation inside single quotes or a literal block (a YAML 1.2 reader
      keeps those spaces); we double-quote (``\\L``, ``\\P``). In a key, the explicit
      ``? key`` form remains, only the scalar's style differs.
    - ``"\\n"`` alone: libyaml writes a keep-chomped ``|2+`` block and a ``...`` document end
      marker; we write ``"\\n"``.
    - ints outside int64/uint64: PyYAML writes ``!!int 123…`` (Go reads the digits as a float);
      we write the digits.
    - a map or list reached twice (the same object): PyYAML writes an anchor and aliases
      (``&id001``, ``*id001``); we write it out each time, as Go's emitter does.
    """
    seen: set[int] = set()
    for node in _walk(data):
        if isinstance(node, dict | list):
            if id(node) in seen:
                return "shared object"
            seen.add(id(node))
        elif isinstance(node, str):
            if "\u2028" in node or "\u2029" in node:
                return "line separator"
            if node == "\n":
                return "lone newline"
        elif type(node) is int and not -(2**63) <= node < 2**64:
            return "big int"
    return None


# --- layout -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "text"), [
    (None, "null\n"),
    ({}, "{}\n"),
    ([], "[]\n"),
    ("x", "x\n"),
    ("", "''\n"),
    (3.0, "3\n"),
    (True, "true\n"),
    ({"b": 1, "a": [1, {"z": None, "x": [True, []]}], "c": {}},
     "a:\n- 1\n- x:\n  - true\n  - []\n  z: null\nb: 1\nc: {}\n"),
    ([[["x", "w"]], "z"], "- - - x\n    - w\n- z\n"),
    ({"k": "a\nb"}, "k: |-\n  a\n  b\n"),
    ({"k": "a\nb\n"}, "k: |\n  a\n  b\n"),
    ({"k": " a\n\nb\n"}, "k: |2\n   a\n\n  b\n"),
    ({"k": ["a\nb", {"m": "c\nd"}]}, "k:\n- |-\n  a\n  b\n- m: |-\n    c\n    d\n"),
    ({"k": "a\n\n"}, 'k: "a\\n\\n"\n'),
    ({"k": "a \nb"}, 'k: "a \\nb"\n'),
    ({"k": "it's"}, "k: it's\n"),
    ({"k": "'q"}, "k: '''q'\n"),
    ({"k": "tab\there"}, 'k: "tab\\there"\n'),
    ({"k": "a\u2028b"}, 'k: "a\\Lb"\n'),
    ({"k": "\n"}, 'k: "\\n"\n'),
    ("\n", '"\\n"\n'),
    ({"k": "\ufeff\x85\x7f😀é"}, 'k: "\\uFEFF\\N\\x7F\\U0001F600é"\n'),
    ({"y": "n", "1": "0777", "k": "1:30", "d": "2024-01-01", "e": "~"},
     "'1': '0777'\nd: '2024-01-01'\ne: '~'\nk: '1:30'\n'y': 'n'\n"),
    ({"k": [1e20, 1.5e-7, math.inf, -math.inf, math.nan, 2**64, -0.0]},
     "k:\n- 1.0e+20\n- 1.5e-07\n- .inf\n- -.inf\n- .nan\n- 18446744073709551616\n- 0\n"),
    ({"x" * 129: {"a": 1}, "a\nb": [1]}, "? |-\n  a\n  b\n: - 1\n? " + "x" * 129 + "\n: a: 1\n"),
    ({"k": "x" * 10_000}, "k: " + "x" * 10_000 + "\n"),
])
def test_layout(data: Any, text: str) -> None:
    assert dump_yaml(data) == text


@pytest.mark.parametrize("data", [
    {"k": (1, 2)}, {"k": {1, 2}}, {"k": b"x"}, {1: "x"}, {"k": object()}, (1,),
    {"k": [1, {"a": 1j}]}, {"b": 1, 2: 1},
])
def test_rejects_other_types(data: Any) -> None:
    with pytest.raises(TypeError):
        dump_yaml(data)


def test_subclasses_dump_as_their_base_type() -> None:
    import collections
    import enum

    class Color(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    data = collections.OrderedDict([("z", Color.RED), (Color.RED, [Level.HIGH])])
    assert dump_yaml(data) == "red:\n- 3\nz: red\n"


def test_no_aliases_for_shared_objects() -> None:
    shared = {"a": [1]}
    assert dump_yaml({"x": shared, "z": shared}) == "x:\n  a:\n  - 1\nz:\n  a:\n  - 1\n"
    assert "&id001" in _pyyaml_dump({"x": shared, "z": shared})


# --- properties -------------------------------------------------------------------------------

_SETTINGS = settings(max_examples=600, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_SETTINGS
@given(plain_data)
@example({"k": TRICKY})
@example({s: s for s in TRICKY})
def test_go_reads_back_the_same_data(data: Any) -> None:
    text = dump_yaml({"k": data})
    assert _same(data, load_values_text(text, "x")["k"]), text


@_SETTINGS
@given(plain_data)
@example(TRICKY)
@example({s: s for s in TRICKY})
def test_yaml11_reads_back_the_same_data(data: Any) -> None:
    text = dump_yaml(data)
    assert _same(data, yaml.safe_load(text)), text


@_SETTINGS
@given(plain_data)
def test_deterministic(data: Any) -> None:
    assert dump_yaml(data) == dump_yaml(data) == dump_yaml(_reversed(data))


@pytest.mark.skipif(not LIBYAML, reason="the oracle is PyYAML on libyaml")
@_SETTINGS
@given(plain_data)
@example([s for s in TRICKY if _known_difference(s) is None])
@example({s: s for s in TRICKY if _known_difference(s) is None})
def test_same_bytes_as_pyyaml(data: Any) -> None:
    if _known_difference(data) is None:
        assert dump_yaml(data) == _pyyaml_dump(data)


# --- benchmark --------------------------------------------------------------------------------

def deployment(release: str, env: str) -> dict[str, Any]:
    """A Deployment as meshc renders it (labels, env list, resources, probes), sharing no
    objects (PyYAML would write aliases for shared ones)."""
    labels = {"app": "mcp-mesh", "app.kubernetes.io/component": release,
              "app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "meshc",
              "app.kubernetes.io/name": f"mcp-mesh-{release}", "app.kubernetes.io/part-of": "mcp-mesh",
              "app.kubernetes.io/version": "1.0.0", "environment": env, "tier": env,
              "version": "1.0.0"}
    env_vars: list[dict[str, Any]] = [{"name": f"VAR_{i}", "value": v} for i, v in
                enumerate([env, "postgresql", "5432", "true", "INFO", "json", f"{release}.svc",
                           '[{"type": "stdout"}]', "300", "0.5"])]
    env_vars.append({"name": "DB_USER", "valueFrom": {"secretKeyRef": {"key": "username",
                                                                       "name": f"{release}-db"}}})
    probe = {"failureThreshold": 3, "httpGet": {"path": "/health", "port": "http"},
             "initialDelaySeconds": 30, "periodSeconds": 10, "timeoutSeconds": 5}
    return json.loads(json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"labels": labels, "name": release, "namespace": f"mesh-{env}"},
        "spec": {
            "replicas": 3, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {k: labels[k] for k in list(labels)[2:5]}},
            "template": {
                "metadata": {"annotations": {"prometheus.io/port": "9090",
                                             "prometheus.io/scrape": "true",
                                             "checksum/config": hashlib.sha256(f"{release}/{env}".encode()).hexdigest()},
                             "labels": labels},
                "spec": {
                    "containers": [{
                        "env": env_vars,
                        "image": f"registry.example.io/mesh/{release}:1.0.{len(release)}",
                        "imagePullPolicy": "IfNotPresent",
                        "livenessProbe": probe,
                        "name": release,
                        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"},
                                  {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                        "readinessProbe": {**probe, "initialDelaySeconds": 5},
                        "resources": {"limits": {"cpu": "2000m", "memory": "4Gi"},
                                      "requests": {"cpu": 1.5, "memory": "2Gi"}},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]},
                                            "readOnlyRootFilesystem": True},
                        "volumeMounts": [{"mountPath": "/tmp", "name": "tmp"}],
                    }],
                    "securityContext": {"fsGroup": 1000, "runAsNonRoot": True, "runAsUser": 1000},
                    "volumes": [{"emptyDir": {}, "name": "tmp"}],
                },
            },
        },
    }))


def test_benchmark_document_matches_pyyaml() -> None:
    doc = deployment("weather-agent", "production")
    assert dump_yaml(doc) == _pyyaml_dump(doc)


def _benchmark() -> None:
    """1,000 releases × 3 environments × 6 documents = 18,000 dumps, each name distinct."""
    docs = [deployment(f"release-{r}-{n}", env) for r in range(1000)
            for env in ("development", "staging", "production") for n in range(6)]
    count, size = len(docs), sum(len(dump_yaml(d)) for d in docs)
    for name, dump in (("pyyaml", _pyyaml_dump), ("new", dump_yaml)):
        best = min(timeit.repeat(lambda: [dump(d) for d in docs], number=1, repeat=3))  # noqa: B023
        print(f"{name:>7}: {best:.3f} s for {count} dumps ({size / 1e6:.1f} MB), "
              f"{best / count * 1e6:.1f} µs each")
    differing = sum(dump_yaml(d) != _pyyaml_dump(d) for d in docs)
    print(f"differing documents: {differing}/{count}")


def _measure_differences(samples: int = 20_000) -> None:
    from collections import Counter

    reasons: Counter[str] = Counter()
    for _ in range(samples):
        data = plain_data.example()
        if dump_yaml(data) != _pyyaml_dump(data):
            reasons[_known_difference(data) or "UNEXPLAINED"] += 1
        else:
            reasons["equal"] += 1
    print(dict(reasons))


if __name__ == "__main__":
    _benchmark()
    if "--differences" in sys.argv:
        _measure_differences()
