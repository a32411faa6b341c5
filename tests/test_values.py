"""Values layering with provenance: every leaf knows the file, line and column that set it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, with_tools
from hypothesis import given
from hypothesis import strategies as st

from compiler.core.diagnostics import CompileError, Diagnostics
from compiler.core.files import ProjectFiles
from compiler.core.source import COMMAND_LINE
from compiler.pipeline import (
    SetFlag,
    compile_environment,
    environment_tree,
    load_project,
    release_output,
    with_sets,
)
from compiler.values.flags import apply_flags, parse_flags
from compiler.values.values import release_values


def _values(env: str, release: str, flags: tuple[SetFlag, ...] = ()):
    compiler = with_tools(load_project(ProjectFiles(ROOT)))  # the Helm charts render too
    if flags:
        compiler = with_sets(compiler, flags, lambda p: Path(p).read_text())
    result = compile_environment(compiler, compiler.project.environment(env))
    found = release_output(result, release)
    assert found is not None
    return found.values


def _line_of(file: str, needle: str, after: int = 0) -> int:
    lines = (ROOT / file).read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if i + 1 > after and needle in line)


def test_environment_file_sets_value_with_position() -> None:
    values = _values("production/eu-west", "weather-agent-blue")
    origin = values.origin(("replicaCount",))
    assert values.values["replicaCount"] == 10
    assert origin is not None and origin.layer.kind == "environment"
    assert origin.span.file == "environments/production/values.yaml"
    weather = _line_of(origin.span.file, "weather:")
    assert origin.span.line == _line_of(origin.span.file, "replicaCount: 10", weather)
    assert origin.span.col == len("    replicaCount: ") + 1


def test_chart_default_is_the_weakest_layer() -> None:
    values = _values("development", "weather-agent-blue")
    origins = values.origins(("updateStrategy", "type"))
    assert [o.layer.kind for o in origins] == ["chart"]
    assert origins[0].span.file == "templates/agent/values.yaml"


def test_override_chain_strongest_first() -> None:
    values = _values("production/eu-west", "registry")
    chain = values.origins(("image", "tag"))
    assert chain[0].span.file == "environments/base/values.yaml"
    values = _values("production/eu-west", "weather-agent-blue")
    chain = values.origins(("image", "tag"))
    # the live slot: the state file pins what it runs, over the values files
    assert [o.span.file for o in chain] == ["bluegreen/production/eu-west.yaml",
                                            "environments/production/values.yaml",
                                            "templates/agent/values.yaml"]
    assert [o.value for o in chain] == ["1.0.0", "1.0.0", "1.0.0"]


def test_set_flag_wins_and_is_attributed_to_the_command_line() -> None:
    flags = (SetFlag("set", "agents.weather.replicaCount=42"),)
    values = _values("production/eu-west", "weather-agent-blue", flags)
    assert values.values["replicaCount"] == 42
    origin = values.origin(("replicaCount",))
    assert origin is not None and origin.layer.kind == "set"
    assert origin.span.file == "<command line>"
    assert [o.layer.kind for o in values.origins(("replicaCount",))][:2] == ["set", "environment"]


def test_global_and_features_reach_every_chart() -> None:
    values = _values("staging", "registry")
    assert values.values["global"]["environment"] == "staging"
    assert values.origin(("global", "environment")).span.file == "environments/staging/values.yaml"
    assert values.values["features"]["canaryDeployment"] is True
    assert values.origin(("features", "canaryDeployment")).layer.kind == "features"


@pytest.mark.parametrize("env", ["development", "staging", "production/eu-west",
                                 "production/us-east", "production-dr"])
def test_values_match_rendered_tree(env: str) -> None:
    compiler = with_tools(load_project(ProjectFiles(ROOT)))  # the Helm charts render too
    result = compile_environment(compiler, compiler.project.environment(env))
    from compiler.pipeline import values_yaml

    for output in result.releases:
        committed = ROOT / "rendered" / env / output.release.name / "values.yaml"
        assert committed.read_text() == values_yaml(output.values)


# --- --set parsed into the values files, as Helm parses them into its -f files ----------------

FLAGS_MESHFILE = """\
apiVersion: meshc/v1
environments:
  prod: {values: [prod.yaml]}
releases:
  api: {chart: chart}
  own: {chart: chart, values: [own.yaml]}
"""
FLAGS_ENV = """\
api:
  hosts: [a.test]
  enabled: true
  labels: {team: core, tier: web}
own:
  enabled: true
"""


@pytest.fixture()
def flags_project(tmp_path: Path) -> Path:
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "cm.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ release.name }}}\n")
    (tmp_path / "chart" / "values.yaml").write_text(
        "debug: null\nprobe: {path: null, port: 80}\nreplicas: 1\nkeep: [null]\n")
    (tmp_path / "meshfile.yaml").write_text(FLAGS_MESHFILE)
    (tmp_path / "prod.yaml").write_text(FLAGS_ENV)
    (tmp_path / "own.yaml").write_text("enabled: [x]\n")
    return tmp_path


def _project_values(root: Path, release: str, *flags: SetFlag):
    compiler = load_project(ProjectFiles(root))
    if flags:
        compiler = with_sets(compiler, flags, lambda p: (root / p).read_text())
    result = compile_environment(compiler, compiler.project.environment("prod"))
    found = release_output(result, release)
    assert found is not None
    return found.values


def test_a_list_index_keeps_the_rest_of_the_files_list(flags_project: Path) -> None:
    values = _project_values(flags_project, "api", SetFlag("set", "api.hosts[1]=b.test"))
    assert values.values["hosts"] == ["a.test", "b.test"]
    assert values.origin(("hosts", 1)).layer.kind == "set"
    assert values.origin(("hosts", 0)).layer.kind == "environment"  # the flag did not set it
    assert [link.layer.kind for link in values.chain(("hosts", 0))] == ["environment"]


def test_set_json_replaces_a_map_and_set_merges_into_it(flags_project: Path) -> None:
    values = _project_values(flags_project, "api", SetFlag("set-json", 'api.labels={"x": 1}'))
    assert values.values["labels"] == {"x": 1}
    chain = values.chain(("labels", "team"))
    assert [(link.layer.kind, link.effect) for link in chain] == [("set", "cut"),
                                                                  ("environment", "set")]
    values = _project_values(flags_project, "api", SetFlag("set", "api.labels.x=1"))
    assert values.values["labels"] == {"team": "core", "tier": "web", "x": 1}


def test_a_path_through_a_value_of_another_type_is_refused_on_the_flag(
        flags_project: Path) -> None:
    with pytest.raises(CompileError) as caught:
        _project_values(flags_project, "api", SetFlag("set", "api.replicas=2"),
                        SetFlag("set", "api.enabled[0]=x"))
    diags = {(d.message, d.span, d.notes) for d in caught.value.diagnostics}
    assert len(diags) == 1  # once for the environment, not per release
    ((message, span, notes),) = diags
    assert message == ("invalid --set value: unable to parse key: interface conversion: "
                       "interface {} is bool, not []interface {}")
    assert (span.file, span.line, span.col) == (COMMAND_LINE, 2, 11)
    assert notes == ("'api.enabled' is a boolean (true) in the values, set at prod.yaml:3:12",
                     "in environment 'prod'")


def _release_values(root: Path, release: str, *flags: SetFlag) -> tuple[dict, list[str]]:
    """One release's values and the notes of the errors its values raise."""
    compiler = with_sets(load_project(ProjectFiles(root)), flags, lambda p: "")
    env_values, _ = environment_tree(compiler, compiler.project.environment("prod"))
    diags = Diagnostics()
    values = release_values(compiler.project.release(release), env_values, diags)
    return values.values, [note for d in diags.items for note in d.notes]


def test_a_flag_is_judged_against_each_releases_own_values(flags_project: Path) -> None:
    """The base the flags are parsed into holds the release's own values: ``own.yaml`` makes
    ``enabled`` a list, so ``own.enabled[1]`` parses for ``own``; for ``api``, whose base is the
    environment's tree alone (``own.enabled: true``), it does not."""
    flag = SetFlag("set", "own.enabled[1]=y")
    values, notes = _release_values(flags_project, "own", flag)
    assert values["enabled"] == ["x", "y"] and not notes
    _, notes = _release_values(flags_project, "api", flag)
    assert notes[-1] == "in environment 'prod'"
    _, notes = _release_values(flags_project, "own", SetFlag("set", "own.enabled.a=1"))
    assert notes[-1] == "for release 'own' in environment 'prod'"


def test_null_chart_defaults_are_dropped_unless_set(flags_project: Path) -> None:
    values = _project_values(flags_project, "api")
    assert "debug" not in values.values and values.values["probe"] == {"port": 80}
    assert values.values["keep"] == [None]  # not inside lists
    values = _project_values(flags_project, "api", SetFlag("set", "api.debug=1"),
                             SetFlag("set", "api.replicas=null"))
    assert values.values["debug"] == 1 and "replicas" not in values.values


KEYS = st.sampled_from(["a", "b", "c"])
TREES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(0, 3), st.just("s")),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(KEYS, inner, max_size=3)),
                     max_leaves=10)
FLAG_TEXTS = st.lists(st.tuples(
    st.sampled_from(["set", "set-string", "set-json", "set-literal"]),
    st.from_regex(r"[abc](\[[0-2]\])?(\.[abc](\[[0-2]\])?){0,2}=(1|x|null|\{p,q\})",
                  fullmatch=True)), min_size=1, max_size=4)


@given(st.dictionaries(KEYS, TREES, max_size=3), FLAG_TEXTS)
def test_applying_flags_never_changes_the_tree_it_is_given(
        tree: dict, texts: list[tuple[str, str]]) -> None:
    """The values stage parses the flags into an environment's tree once per release: the
    tree (shared by every release) must come out unchanged, whatever the flags do."""
    try:
        flags = parse_flags([SetFlag(kind, text) for kind, text in texts], lambda p: "")
    except CompileError:
        return
    assert flags is not None
    before = json.dumps(tree, sort_keys=True)
    apply_flags(tree, flags)
    assert json.dumps(tree, sort_keys=True) == before


def test_the_plan_digest_tells_apart_flags_that_parse_to_the_same_map_alone(tmp_path: Path) -> None:
    """``--set a={x,y}`` and ``--set a[0]=x,a[1]=y`` give the same map on their own, but not
    once parsed into a values file holding ``a: [p, q, r]`` (Helm keeps ``r`` in the second):
    the digest `apply` checks must differ."""
    import shutil

    from tests.conftest import GOLDEN, run_meshc

    project = tmp_path / "p"
    shutil.copytree(GOLDEN / "ok-small" / "project", project)
    meshfile = str(project / "meshfile.yaml")

    def digest(*flags: str) -> str:
        code, out, err = run_meshc("-f", meshfile, "plan", "prod", "-o", "json", *flags)
        assert code == 0, err
        return json.loads(out)["inputsDigest"]

    whole, indexed = digest("--set", "api.a={x,y}"), digest("--set", "api.a[0]=x,api.a[1]=y")
    assert whole != indexed
    assert digest("--set", "api.a={x,y}") == whole  # and it is stable
