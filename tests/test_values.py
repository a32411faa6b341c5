"""Values layering with provenance: every leaf knows the file, line and column that set it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from compiler.core.files import ProjectFiles
from compiler.pipeline import SetFlag, compile_environment, load_project, release_output, with_sets


def _values(env: str, release: str, flags: tuple[SetFlag, ...] = ()):
    compiler = load_project(ProjectFiles(ROOT))
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
    values = _values("production", "weather-agent")
    origin = values.origin(("replicaCount",))
    assert values.values["replicaCount"] == 10
    assert origin is not None and origin.layer.kind == "environment"
    assert origin.span.file == "environments/production/values.yaml"
    weather = _line_of(origin.span.file, "weather:")
    assert origin.span.line == _line_of(origin.span.file, "replicaCount: 10", weather)
    assert origin.span.col == len("    replicaCount: ") + 1


def test_chart_default_is_the_weakest_layer() -> None:
    values = _values("development", "weather-agent")
    origins = values.origins(("updateStrategy", "type"))
    assert [o.layer.kind for o in origins] == ["chart"]
    assert origins[0].span.file == "templates/agent/values.yaml"


def test_override_chain_strongest_first() -> None:
    values = _values("production", "registry")
    chain = values.origins(("image", "tag"))
    assert chain[0].span.file == "environments/base/values.yaml"
    values = _values("production", "weather-agent")
    chain = values.origins(("image", "tag"))
    assert [o.span.file for o in chain] == ["environments/production/values.yaml",
                                            "templates/agent/values.yaml"]
    assert [o.value for o in chain] == ["1.0.0", "1.0.0"]


def test_set_flag_wins_and_is_attributed_to_the_command_line() -> None:
    flags = (SetFlag("set", "agents.weather.replicaCount=42"),)
    values = _values("production", "weather-agent", flags)
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


@pytest.mark.parametrize("env", ["development", "staging", "production", "production-dr"])
def test_values_match_rendered_tree(env: str) -> None:
    compiler = load_project(ProjectFiles(ROOT))
    result = compile_environment(compiler, compiler.project.environment(env))
    from compiler.pipeline import values_yaml

    for output in result.releases:
        committed = ROOT / "rendered" / env / output.release.name / "values.yaml"
        assert committed.read_text() == values_yaml(output.values)
