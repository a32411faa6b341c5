"""A local chart's values.schema.json: refused values located where they were set, secrets left
to Helm, bad schemas reported, and the cache never answers for a changed schema. (What Helm
refuses, meshc refuses: tests/test_chart_schema_helm.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler.core.diagnostics import CompileError, Diagnostics
from compiler.core.source import Span
from compiler.model.model import Chart, HelmOptions, Release
from compiler.syntax.jsondoc import load_json_doc
from compiler.syntax.yamlsrc import load_values_doc
from compiler.values.chart_schema import SECRET_STAND_IN, check_chart_schema, with_secrets
from compiler.values.values import Layer, ValueSet
from tests.conftest import GOLDEN, run_meshc

SCHEMA = """{
  "type": "object",
  "properties": {
    "db": {"type": "object", "required": ["password", "user"],
           "properties": {"password": {"type": "string", "minLength": 12},
                          "user": {"type": "string"}}}
  }
}
"""


def _values(text: str) -> ValueSet:
    doc = load_values_doc(text, "env/prod.yaml")
    return ValueSet("prod", "web", (), (Layer("environment", doc, "release"),), doc.data)


def _release() -> Release:
    return Release("web", Span("meshfile.yaml", 3, 3), Chart("charts/web", True), (), "", None,
                   (), (), (), None, HelmOptions(), ())


def _check(values_text: str, secrets: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> list[str]:
    diags = Diagnostics()
    check_chart_schema(load_json_doc(SCHEMA, "charts/web/values.schema.json"),
                       _values(values_text), _release(), diags, secrets)
    return [f"{d.span}: {d.message}" for d in diags.items]


def test_secrets_are_present_for_the_schema_but_judged_by_helm_at_install() -> None:
    assert _check("db: {user: app}\n", [(("db",), ("password",))]) == []
    assert _check("db: {user: 7}\n", [(("db",), ("password",))]) == [
        ("env/prod.yaml:1:12: values of release 'web' do not meet charts/web/values.schema.json:"
         " at '/db/user': 7 is not of type 'string'")]
    missing = _check("db: {user: app}\n", [])
    assert missing and "'password' is a required property" in missing[0]


def test_stand_ins_copy_only_along_their_paths() -> None:
    tree = {"db": {"user": "app"}, "other": {"x": 1}}
    filled = with_secrets(tree, [("db", "password")])
    assert filled == {"db": {"user": "app", "password": SECRET_STAND_IN}, "other": {"x": 1}}
    assert tree == {"db": {"user": "app"}, "other": {"x": 1}}
    assert filled["other"] is tree["other"]


@pytest.mark.parametrize("text, message, line, col", [
    ('{"type": "object",\n "properties": {,}}\n', "is not valid JSON: Expecting property name", 2, 17),
    ("[1, 2]\n", "must hold a JSON object", 1, 1),
    ('{"type": NaN}', "is not valid JSON: NaN is not JSON", 1, 1),
])
def test_a_schema_that_is_not_json_is_located(text: str, message: str, line: int,
                                              col: int) -> None:
    with pytest.raises(CompileError) as caught:
        load_json_doc(text, "s.json")
    (diag,) = caught.value.diagnostics
    assert message in diag.message and (diag.span.line, diag.span.col) == (line, col)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "p"
    shutil.copytree(GOLDEN / "ok-values-schema" / "project", target)
    return target


def test_an_invalid_schema_is_an_error_on_the_schema(project: Path) -> None:
    (project / "charts/web/values.schema.json").write_text(
        '{\n  "type": "object",\n  "properties": {"replicas": {"type": "integr"}}\n}\n')
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "prod")
    assert code == 1
    assert "charts/web/values.schema.json:3:39: error: charts/web/values.schema.json is not a " \
           "valid JSON Schema" in err, err


def test_the_cache_never_answers_for_a_changed_schema(project: Path) -> None:
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render")[0] == 0
    assert run_meshc("-f", meshfile, "render")[0] == 0  # cached, up to date
    schema = project / "charts/web/values.schema.json"
    schema.write_text(schema.read_text().replace('"minimum": 1', '"minimum": 5'))
    code, _, err = run_meshc("-f", meshfile, "render")
    assert code == 1 and "at '/replicas': 3 is less than the minimum of 5" in err, err


# Cases where meshc once disagreed with the real Helm 4.3.1 (tests/test_chart_schema_helm.py),
# kept as they were found.
@pytest.mark.parametrize("schema, values, refused", [
    # Helm's draft-07 metaschema asks for unique enum items: Helm refuses the whole schema
    ({"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"c": {"enum": [0.5, 0.5, 4]}}},
     {}, "is not a valid JSON Schema: [0.5, 0.5, 4] has non-unique elements"),
    # under draft-07 Helm asserts `format`; under 2020-12 it is an annotation
    ({"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {"format": "email"}}},
     {"a": "nope"}, "at '/a': 'nope' is not a 'email'"),
    ({"properties": {"a": {"format": "email"}}}, {"a": "nope"}, None),
])
def test_regressions_found_against_helm(schema: dict[str, object], values: dict[str, object],
                                        refused: str | None) -> None:
    import json

    diags = Diagnostics()
    doc = load_json_doc(json.dumps(schema), "charts/web/values.schema.json")
    check_chart_schema(doc, _values(json.dumps(values)), _release(), diags)
    messages = [d.message for d in diags.items]
    assert (messages == []) if refused is None else any(refused in m for m in messages), messages
