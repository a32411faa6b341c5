"""Properties of the whole compiler on generated projects (hypothesis).

* Any meshfile — valid or not, misspelled keys, wrong types, unknown names, cycles — gives a
  result (exit 0) or diagnostics (exit 1, ``error:`` on stderr): never a traceback, never the
  usage-error exit 2 (the command lines here are well formed).
* Any ``--set`` string likewise.
* A valid project always compiles, and rendering it twice gives the same bytes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from conftest import pin_charts, run_meshc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.syntax.yamlsrc import STR, resolve_plain

# examples per test: the hypothesis profile's (conftest.py: "ci" 30, HYPOTHESIS_PROFILE=long)
BOUNDED = settings(deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

CHART = {
    "charts/app/values.yaml": "replicas: 1\nimage: nginx:1.27\nenabled: true\ndata: {}\n",
    "charts/app/deployment.yaml.j2": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ release.name }}
  labels: {app: {{ release.name }}, env: {{ env.name }}}
spec:
  replicas: {{ values.replicas }}
  selector:
    matchLabels: {app: {{ release.name }}}
  template:
    metadata:
      labels: {app: {{ release.name }}}
    spec:
      containers:
        - name: app
          image: "{{ values.image }}"
""",
    "charts/app/configmap.yaml.j2": """\
{% if values.data %}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ release.name }}-data
data:{{ values.data | toyaml | nindent(2) }}
{% endif %}
""",
    "features.yaml.j2": "fast: {{ env.name == 'prod' }}\nname: {{ env.name }}\n",
}

ENV_POOL = ["dev", "staging", "prod", "base", "qa", "eu-1"]
REL_POOL = ["api", "web", "worker", "db", "cache", "x-1"]
BAD_NAMES = ["Prod", "a_b", "-x", "x-", "a" * 64, "ns.x", "dév", "", "1" * 54]
FILES = ["env/a.yaml", "env/b.yaml", "env/bad.yaml", "env/missing.yaml", "../outside.yaml",
         "/etc/hostname", "charts/app", "env/list.yaml"]

WEIRD = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12),
                  st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(
                      ["", "yes", "0777", "1:30", "~", "{{ x }}", "5m", "a.b", "meshc/v1"]),
                  st.lists(st.sampled_from(["a", 1, None]), max_size=2),
                  st.dictionaries(st.sampled_from(["k", "on"]), st.integers(0, 2), max_size=2))
SMALL_TEXT = st.text(st.sampled_from("abz09-_.{}%# :'\"\n"), max_size=8)


def extra_keys(allowed: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Random known and unknown (misspelled, other tools') keys."""
    return st.dictionaries(st.sampled_from(allowed + ["dependsOn", "extends", "valuesFiles",
                                                      "Inherits", "atomic", "foo", "needz"]),
                           WEIRD, max_size=2)


class _Meant(yaml.SafeDumper):
    """PyYAML's dumper, writing a string quoted wherever meshc (Go's YAML rules) would read
    it bare as something else: ``y``, ``N``, ``0777``, ``1_000``. PyYAML quotes only what YAML
    1.1 reads otherwise, so a generated ``description: Y`` became a boolean."""


_BREAKS = "\x85\u2028\u2029"  # line breaks to YAML 1.1 (and Go's reader) beside \n and \r


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if any(c in _BREAKS for c in text):  # PyYAML writes them raw, even quoted: a reader folds
        style: str | None = '"'          # them into a space; double quotes escape them (\N)
    else:
        style = "'" if text and resolve_plain(text)[0] != STR else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Meant.add_representer(str, _represent_str)


def meant_yaml(data: Any, sort_keys: bool = True) -> str:
    """``data`` as YAML text that meshc reads back as ``data``: a generator writes only what it
    means (see :class:`_Meant`)."""
    return yaml.dump(data, Dumper=_Meant, sort_keys=sort_keys, allow_unicode=True)


@given(st.one_of(st.sampled_from(["Y", "n", "NO", "Off", "0777", "1_000", "0x1F", ".5", "~",
                                   "", "+1", "1e3", "-.inf", "<<", "null"]), st.text(max_size=8)))
def test_generated_yaml_means_what_the_generator_meant(text: str) -> None:
    """The flaky-generator fix (issue 20): what the generators write, meshc reads back."""
    from compiler.syntax.yamlsrc import load_values_text

    assert load_values_text(meant_yaml({"k": text, text or "e": 1}), "x.yaml") == \
        {"k": text, text or "e": 1}


@st.composite
def valid_projects(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """A project meshc must accept: valid names, needs on earlier releases only, inherits and
    promotesFrom on earlier environments only, every file present, every template valid.
    Returns (meshfile as data, values files, deployable environment names)."""
    env_names = draw(st.lists(st.sampled_from(ENV_POOL), min_size=1, max_size=4, unique=True))
    rel_names = draw(st.lists(st.sampled_from(REL_POOL), min_size=1, max_size=5, unique=True))
    aliases = iter(draw(st.permutations(["d", "p", "s", "q", "e", "z"])))
    files: dict[str, str] = {}
    environments: dict[str, Any] = {}
    deployable: list[str] = []
    for i, name in enumerate(env_names):
        env: dict[str, Any] = {"values": [f"env/{name}.yaml"]}
        if i and draw(st.booleans()):
            env["inherits"] = draw(st.sampled_from(env_names[:i]))
        if i < len(env_names) - 1 and draw(st.booleans()):
            env["abstract"] = True
        else:
            deployable.append(name)
        if draw(st.booleans()):
            env["aliases"] = [next(aliases)]
        if deployable[:-1] and name in deployable and draw(st.booleans()):
            env["promotesFrom"] = draw(st.sampled_from(deployable[:-1]))
        env.update(draw(st.fixed_dictionaries({}, optional={
            "helm": st.fixed_dictionaries({}, optional={
                "timeout": st.sampled_from(["5m", "10m", "1h30m"]), "wait": st.booleans(),
                "rollbackOnFailure": st.booleans(), "forceReplace": st.booleans()}),
            "labels": st.fixed_dictionaries({"tier": st.sampled_from(["a", "b"])}),
            "protected": st.booleans(),
            "kubeContext": st.sampled_from(["ctx-1", "prod-main"]),
            "namespace": st.sampled_from(["ns-{{ env.name }}", "{{ env.name }}-apps"]),
            # any text: meant_yaml quotes what Go's YAML would read as another type (Y, 0777)
            "description": st.text(max_size=10),
        })))
        environments[name] = env
        data: dict[str, Any] = {rel: draw(st.fixed_dictionaries({}, optional={
            "enabled": st.booleans(), "replicas": st.integers(0, 9),
            "image": st.sampled_from(["nginx:1.27", "busybox", "r.example/x:y"]),
            "data": st.dictionaries(st.sampled_from(["k", "y", "0777", "a.b"]),
                                    st.text(max_size=6), max_size=2)}))
            for rel in rel_names}
        data["global"] = {"owner": draw(st.sampled_from(["t", "on", "1:30"]))}
        files[f"env/{name}.yaml"] = meant_yaml(data)
    releases: dict[str, Any] = {}
    for i, name in enumerate(rel_names):
        release: dict[str, Any] = {"chart": "charts/app"}
        if draw(st.integers(0, 3)) == 0:
            release = {"chart": draw(st.sampled_from(["nginx", "oci://r.example/charts/x"])),
                       "repo": "https://charts.example", "version": "1.2.3"}
        needs = draw(st.lists(st.sampled_from(rel_names[:i]), unique=True)) if i else []
        if needs:
            release["needs"] = needs
        if draw(st.booleans()):
            release["condition"] = f"{name}.enabled"
        release.update(draw(st.fixed_dictionaries({}, optional={
            "valuesKey": st.just(name),
            "values": st.lists(st.fixed_dictionaries({"replicas": st.integers(1, 3)}),
                               max_size=2),
            "labels": st.fixed_dictionaries({"team": st.sampled_from(["x", "y"])}),
            "namespace": st.just("r-{{ release.name }}"),
            "helm": st.fixed_dictionaries({"timeout": st.just("20m")}),
            "patches": st.just([{"target": {"kind": "Deployment", "name": name},
                                 "ops": [{"op": "add", "path": "/metadata/labels/patched",
                                          "value": "yes"}]}]),
        })))
        if "repo" in release:
            release.pop("patches", None)  # a Helm chart is installed as itself: never patched
            # the stand-in chart names its ConfigMap after the chart, not the release: two
            # releases of it in one namespace would both own it, which Helm (and meshc) refuse
            release["namespace"] = "r-{{ release.name }}"
        releases[name] = release
    spec: dict[str, Any] = {"apiVersion": "meshc/v1", "project": "p",
                            "environments": environments, "releases": releases}
    if draw(st.booleans()):
        spec["defaults"] = {"namespace": "ns-{{ env.name }}", "labels": {"team": "platform"}}
    if draw(st.booleans()):
        spec["features"] = "features.yaml.j2"
    if draw(st.booleans()):
        spec["output"] = "out/rendered"
    return spec, files, deployable


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of ``node`` (dict keys and list indexes), the root excluded."""
    found = []
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for key, child in items:
        found.append((*path, key))
        found.extend(_paths(child, (*path, key)))
    return found


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    return _get(root, path[:-1])


BROKEN_TEMPLATES = [
    "{{ values.nope.x }}\n", "{% for %}\n", "a: [\n", "apiVersion: v1\nkind: X\n",
    "metadata: {name: x}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
    "{{ fail('no') }}", "{{ required(values.nope, 'need it') }}", "{% import './x.j2' as x %}",
    "{% include '../../../etc/hostname' %}", "- a\n- b\n", "42\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ values.image }}'}\n",
]


@st.composite
def mutated_projects(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """A valid project with zero to three mistakes: wrong types, misspelled or unknown keys,
    removed keys, unknown or cyclic references, broken templates or values files."""
    spec, files, deployable = draw(valid_projects())
    names = list(spec["environments"]) + list(spec["releases"]) + ["nope", "Bad_Name"]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["weird", "extra", "delete", "reference", "jinja",
                                     "values", "rename", "template"]))
        paths = _paths(spec)
        path = draw(st.sampled_from(paths))
        parent = _parent(spec, path)
        if kind == "weird":
            parent[path[-1]] = draw(WEIRD)
        elif kind == "extra":
            target = draw(st.sampled_from([()] + [p for p in paths
                                                  if isinstance(_get(spec, p), dict)]))
            _get(spec, target).update(draw(extra_keys(["needs", "inherits", "chart", "values"])))
        elif kind == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif kind == "reference":
            section = draw(st.sampled_from(["environments", "releases"]))
            entries = spec.get(section)
            if isinstance(entries, dict) and entries:
                entry = entries[draw(st.sampled_from(sorted(entries)))]
                if isinstance(entry, dict):
                    key = draw(st.sampled_from(["needs"] if section == "releases"
                                               else ["inherits", "promotesFrom"]))
                    ref = draw(st.sampled_from(names))
                    entry[key] = [ref] if key == "needs" else ref
        elif kind == "jinja":
            parent[path[-1]] = draw(st.sampled_from(
                ["{{ env.nme }}", "{% if %}", "{{ release.name | nope }}", "UPPER",
                 "{{ values }}", "x{{ fail('boom') }}", "{{ ''.__class__ }}"]))
        elif kind == "values":
            rel = draw(st.sampled_from(sorted(files)))
            files[rel] = draw(st.sampled_from([
                "a: [1\n", "a: 1\na: 2\n", "- list\n", "\t:\n", "global: 3\n",
                "api: {replicas: abc, image: 'q\"uote'}\n", "api: {data: [1, 2]}\n",
                "api: {enabled: maybe}\nweb: {enabled: 1}\n", "api: {data: {k: {x: y}}}\n",
                "web: {replicas: {a: 1}}\n", "\ufeffapi: {replicas: 1}\n", "x: \x01\n"]))
        elif kind == "template":
            name = draw(st.sampled_from(["deployment", "configmap"]))
            files[f"charts/app/{name}.yaml.j2"] = draw(st.sampled_from(BROKEN_TEMPLATES))
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["Api", "a_b", "-x", "a" * 64, "1" * 54, "ok"]))] = \
                parent.pop(path[-1])
    return spec, files, deployable


@contextmanager
def project_dir(meshfile_text: str, files: dict[str, str]) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="meshc-prop-"))
    try:
        for rel, text in {**CHART, **files}.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        (root / "meshfile.yaml").write_text(meshfile_text, encoding="utf-8")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def assert_result_or_diagnostic(result: tuple[int, str, str], args: list[str]) -> None:
    code, out, err = result
    assert code in (0, 1), f"meshc {' '.join(args)} exited {code}:\n{out}{err}"
    assert "Traceback" not in out + err, err
    if code == 1:
        assert "error:" in err, f"exit 1 without a diagnostic: {err!r}"


def run_all(root: Path, commands: list[list[str]]) -> None:
    for args in commands:
        full = ["-f", str(root / "meshfile.yaml"), *args]
        assert_result_or_diagnostic(run_meshc(*full), args)


@BOUNDED
@given(mutated_projects(), st.data())
def test_any_meshfile_gives_a_result_or_diagnostics(
        project: tuple[dict[str, Any], dict[str, str], list[str]], data: st.DataObject) -> None:
    spec, files, deployable = project
    env = data.draw(st.sampled_from([*deployable, *deployable, "d", "nope", "base"]), "env")
    text = meant_yaml(spec, sort_keys=False)
    with project_dir(text, files) as root:
        run_all(root, [["plan", env], ["plan", env, "-o", "json"],
                       ["render", "--out", str(root / "out")], ["render"],
                       ["values", env, "api"], ["graph"]])
        assert [p.name for p in root.rglob(".*.meshc-*")] == [], "staging directory left"


@BOUNDED
@given(st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789:{}[]- \n\t'\"#&*!|>%@`,"),
               max_size=80))
def test_any_meshfile_text_gives_a_result_or_diagnostics(text: str) -> None:
    with project_dir("apiVersion: meshc/v1\n" + text, {}) as root:
        run_all(root, [["plan", "dev"], ["render", "--out", str(root / "out")]])


SMALL_PROJECT = """\
apiVersion: meshc/v1
project: demo
defaults: {namespace: "ns-{{ env.name }}"}
environments:
  base: {abstract: true, values: [env/a.yaml]}
  dev: {inherits: base, aliases: [d]}
releases:
  api: {chart: charts/app, valuesKey: app}
  worker: {chart: charts/app, needs: [api], condition: x.y}
"""
SET_TEXT = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789.,=[]{}\\"), max_size=30)
SET_KINDS = st.sampled_from(["--set", "--set-string", "--set-json", "--set-literal"])


@BOUNDED
@given(st.lists(st.tuples(SET_KINDS, st.one_of(SET_TEXT, SET_TEXT.map(lambda s: "app." + s))),
                min_size=1, max_size=3))
def test_any_set_flag_gives_a_result_or_diagnostics(flags: list[tuple[str, str]]) -> None:
    files = {"env/a.yaml": "app: {enabled: true, replicas: 2}\nx: {y: true}\n"}
    with project_dir(SMALL_PROJECT, files) as root:
        set_args = [part for kind, text in flags for part in (kind, text)]
        run_all(root, [["values", "dev", "api", *set_args], ["plan", "dev", *set_args],
                       ["render", "--out", str(root / "out"), *set_args]])


# --- valid projects ---------------------------------------------------------------------------

@BOUNDED
@given(valid_projects())
def test_valid_projects_compile_and_render_deterministically(
        project: tuple[dict[str, Any], dict[str, str], list[str]]) -> None:
    spec, files, deployable = project
    text = meant_yaml(spec, sort_keys=False)
    with project_dir(text, files) as root:
        meshfile = str(root / "meshfile.yaml")
        pin_charts(root)  # its remote charts, as `meshc charts update` pins them
        trees = []
        for out in (root / "out1", root / "out2", root / "out1"):
            code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
            assert code == 0, f"{err}\n{text}"
            trees.append({p.relative_to(out).as_posix(): p.read_bytes()
                          for p in sorted(out.rglob("*")) if p.is_file()})
        assert trees[0] == trees[1] == trees[2]
        assert sorted({p.split("/")[0] for p in trees[0]}) == sorted(deployable)
        for env in deployable:
            code, out, err = run_meshc("-f", meshfile, "plan", env, "-o", "json")
            assert code == 0, err
            plan = json.loads(out)
            cost = plan.pop("cost")  # against the committed output: not in plan.json
            assert (json.dumps(plan, indent=2, ensure_ascii=False) + "\n").encode() == \
                trees[0][f"{env}/plan.json"]
            assert cost["before"] == {"monthly": 0, "ceiling": 0}  # nothing committed there
            wave_of = {s["release"]: s["wave"] for s in plan["steps"]}
            for step in plan["steps"]:
                assert all(wave_of[n] < step["wave"] for n in step["needs"])
