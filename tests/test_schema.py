"""The meshfile JSON Schema (compiler/model/schema.py, `meshc schema`, schema/meshfile-v1.json).

The committed schema is what meshc prints; it is a valid draft-07 schema; and it agrees with the
load stage, differentially: it accepts every meshfile the loader accepts (the repository's, the
cases of tests/fixtures/schema/accepted.yaml, and generated ones), and rejects every shape error
the loader rejects (tests/fixtures/schema/rejected.yaml). Where meshc is stricter than a schema
can be, tests/fixtures/schema/gaps.yaml lists cases the schema accepts and meshc rejects
(docs/schema-limits.md says the same in prose).

Editors read the meshfile as YAML 1.2 (yaml-language-server's default), meshc as Helm does (YAML
1.1, Go's rules); :func:`editor_view` reads a meshfile as an editor does, for the schema.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from compiler.check.context import CheckContext, CheckOptions
from compiler.cli.schema import schema as schema_command
from compiler.core.diagnostics import CompileError, Diagnostics
from compiler.core.files import ProjectFiles
from compiler.model import fields
from compiler.model.load import load_meshfile
from compiler.model.schema import DRAFT_07, meshfile_schema, schema_json
from compiler.pipeline import compile_environment, load_project
from compiler.syntax.yamlsrc import BOOL, resolve_plain

COMMITTED = ROOT / "schema" / "meshfile-v1.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "schema"
VALIDATOR = jsonschema.Draft7Validator(meshfile_schema())


# --- reading a meshfile as an editor does, and asking the loader and the schema ---------------

# The YAML 1.2 core schema's plain scalars (what yaml-language-server resolves); all else is a
# string: y/yes/on/off, timestamps, 1_000.
_CORE: tuple[tuple[re.Pattern[str], Callable[[str], Any]], ...] = (
    (re.compile(r"~|null|Null|NULL|"), lambda text: None),
    (re.compile(r"true|True|TRUE"), lambda text: True),
    (re.compile(r"false|False|FALSE"), lambda text: False),
    (re.compile(r"[-+]?[0-9]+"), int),
    (re.compile(r"0o[0-7]+|0x[0-9a-fA-F]+"), lambda text: int(text, 0)),
    (re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"), float),
    (re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"),
     lambda text: float(text.replace(".", ""))),
)


def _editor_value(node: Node) -> Any:
    if isinstance(node, MappingNode):
        return {key.value if isinstance(key, ScalarNode) else json.dumps(_editor_value(key)):
                _editor_value(value) for key, value in node.value}
    if isinstance(node, SequenceNode):
        return [_editor_value(item) for item in node.value]
    if node.style is None:  # plain, not quoted or a block scalar
        for pattern, convert in _CORE:
            if pattern.fullmatch(node.value):
                return convert(node.value)
    return node.value


def editor_view(text: str) -> Any:
    """The meshfile ``text`` as a YAML 1.2 editor reads it: JSON data for the schema."""
    return _editor_value(yaml.compose(text, Loader=yaml.SafeLoader))


def loader_errors(text: str) -> list[str]:
    """The messages of the errors the load stage reports for ``text``."""
    diags = Diagnostics()
    try:
        load_meshfile(text, "meshfile.yaml", diags)
    except CompileError as exc:
        return [d.message for d in exc.diagnostics if d.severity == "error"]
    return [d.message for d in diags.items if d.severity == "error"]


def schema_errors(text: str) -> list[str]:
    """What the schema finds wrong with ``text`` (as an editor reads it), located."""
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in VALIDATOR.iter_errors(editor_view(text))]


def _cases(name: str) -> list[Any]:
    cases = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["name"]) for case in cases]


def _repository_meshfiles() -> list[Any]:
    """The example and every meshfile.yaml under tests/ that the load stage accepts (a file
    that is not UTF-8 never reaches it)."""
    paths = [ROOT / "meshfile.yaml", *sorted((ROOT / "tests").rglob("meshfile.yaml"))]
    accepted = []
    for path in paths:
        if not path.is_file():  # tests/hostile/meshfile-directory: a folder in its place
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not loader_errors(text):
            accepted.append(pytest.param(text, id=str(path.relative_to(ROOT).parent)))
    return accepted


REPOSITORY = _repository_meshfiles()


# --- the committed schema ----------------------------------------------------------------------

def test_the_committed_schema_is_what_meshc_schema_prints() -> None:
    result = CliRunner().invoke(schema_command, [])
    assert result.exit_code == 0, result.output
    committed = COMMITTED.read_text(encoding="utf-8")
    assert result.output == committed, "regenerate it: python3 -m compiler schema > " \
                                       "schema/meshfile-v1.json"
    assert schema_json() == committed
    assert json.loads(committed) == meshfile_schema()


def test_the_schema_is_a_valid_draft_07_schema() -> None:
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema["$schema"] == DRAFT_07 == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_the_example_names_the_schema_on_its_first_line() -> None:
    first = (ROOT / "meshfile.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./schema/meshfile-v1.json"


def test_the_schema_knows_every_key_the_loader_knows() -> None:
    """Closed objects list exactly their table's keys, in the loader's order."""
    definitions = meshfile_schema()["definitions"]
    for table in (fields.DEFAULTS, fields.HELM, fields.ENVIRONMENT, fields.SOPS, fields.RELEASE,
                  fields.PATCH, fields.TARGET):
        assert list(definitions[table.name]["properties"]) == list(table.keys)
        assert definitions[table.name]["additionalProperties"] is False
    schema = meshfile_schema()
    assert list(schema["properties"]) == list(fields.MESHFILE.keys)
    assert list(definitions["limits"]["properties"]) == ["fileSize", "yamlNodes", "yamlBytes",
                                                         "yamlDepth", "templateSteps",
                                                         "templateOutput", "templateSeconds",
                                                         "totalSeconds", "memory"]


def test_the_yaml_1_1_booleans_are_booleans_to_meshc_and_strings_to_an_editor() -> None:
    for word in fields.YAML11_BOOLEANS:
        assert resolve_plain(word)[0] == BOOL
        assert editor_view(f"a: {word}") == {"a": word}


# --- it accepts what the loader accepts ----------------------------------------------------------

def test_the_repository_has_meshfiles_to_compare() -> None:
    assert len(REPOSITORY) >= 50
    assert any(param.id == "." for param in REPOSITORY)  # the example


@pytest.mark.parametrize("text", REPOSITORY)
def test_the_schema_accepts_every_meshfile_of_the_repository_the_loader_accepts(text: str) -> None:
    assert schema_errors(text) == []


@pytest.mark.parametrize("case", _cases("accepted.yaml"))
def test_the_schema_accepts_what_the_loader_accepts(case: dict[str, str]) -> None:
    assert loader_errors(case["meshfile"]) == []
    assert schema_errors(case["meshfile"]) == []


# Generated meshfiles: shaped by the field tables, with wrong values mixed in.
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**10),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["yes", "off", "5m", "", "1.31", "error", "warn", "16Mi", "5k", "0", "age1"]),
    st.text(max_size=6))
_ANY = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.text(string.ascii_letters, max_size=5), inner, max_size=3)), max_leaves=6)


def _valid(shape: fields.Shape) -> st.SearchStrategy[Any]:
    """Values of ``shape`` (their parts sometimes wrong, see :func:`_mostly`)."""
    if isinstance(shape, fields.Str):
        if shape.const is not None:
            return st.just(shape.const)
        if shape.pattern is None:
            return st.text(max_size=8)
        limit = shape.max_length
        return st.from_regex(shape.pattern, fullmatch=True).filter(
            lambda text: limit is None or len(text) <= limit)
    if isinstance(shape, fields.Bool):
        return st.one_of(st.booleans(), st.sampled_from(fields.YAML11_BOOLEANS))
    if isinstance(shape, fields.Num):
        top = shape.maximum or 10**9
        whole = [st.integers(1, int(top))] if top >= 1 else []  # prices may cap below 1
        return st.one_of(*whole, st.floats(0.001, top))
    if isinstance(shape, fields.Enum | fields.Choice):
        return st.sampled_from(shape.values)
    if isinstance(shape, fields.Scalar):
        return _SCALARS.filter(lambda value: value is not None)
    if isinstance(shape, fields.AnyValue):
        return _ANY
    if isinstance(shape, fields.ListOf):
        return st.lists(_mostly(shape.item), max_size=3)
    if isinstance(shape, fields.MapOf):
        keys = _valid(shape.keys) if shape.keys else st.text(string.ascii_letters, max_size=6)
        return st.dictionaries(keys, _mostly(shape.value), max_size=3)
    if isinstance(shape, fields.AnyOf):
        return st.one_of([_valid(option) for option in shape.options])
    required = {f.key: _valid(f.shape) for f in shape.fields if f.key in shape.required}
    optional = {f.key: _mostly(f.shape) for f in shape.fields if f.key not in shape.required}
    return st.fixed_dictionaries(required, optional=optional)


def _mostly(shape: fields.Shape) -> st.SearchStrategy[Any]:
    """Values of ``shape``, and now and then anything at all."""
    return st.one_of(*[_valid(shape)] * 9, _ANY)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(doc=_valid(fields.MESHFILE))
def test_the_schema_accepts_any_generated_meshfile_the_loader_accepts(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    # meshc reads allowEnv's items by their text, so `[true]` allows a variable named "true";
    # the schema asks for names (docs/schema-limits.md)
    if not loader_errors(text) and all(isinstance(v, str) for v in doc.get("allowEnv") or []):
        assert schema_errors(text) == [], text


# --- it rejects the shape errors the loader rejects -------------------------------------------

@pytest.mark.parametrize("case", _cases("rejected.yaml"))
def test_the_schema_rejects_each_shape_error_the_loader_rejects(case: dict[str, str]) -> None:
    errors = loader_errors(case["meshfile"])
    assert any(case["error"] in message for message in errors), errors
    assert schema_errors(case["meshfile"]) != []


# --- and where meshc is stricter than a schema can be --------------------------------------------

_TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"


def _meshc_errors(case: dict[str, Any], root: Path) -> list[str]:
    """The errors meshc reports for the case's meshfile at its ``stage``."""
    if case["stage"] == "load":
        return loader_errors(case["meshfile"])
    for path, text in {"templates/app/configmap.yaml.j2": _TEMPLATE, **case.get("files", {}),
                       "meshfile.yaml": case["meshfile"]}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    try:
        compiler = load_project(ProjectFiles(root))
        if case["stage"] == "compile":
            for env in compiler.project.deployable:
                compile_environment(compiler, env)
        if case["stage"] == "check":
            context = CheckContext(compiler, compiler.project.deployable, CheckOptions())
            return [finding.diagnostic.message for finding in context.setting_errors]
    except CompileError as exc:
        return [d.message for d in exc.diagnostics if d.severity == "error"]
    return []


@pytest.mark.parametrize("case", _cases("gaps.yaml"))
def test_what_the_schema_accepts_and_only_meshc_rejects(case: dict[str, Any],
                                                          tmp_path: Path) -> None:
    assert schema_errors(case["meshfile"]) == []
    errors = _meshc_errors(case, tmp_path)
    assert any(case["error"] in message for message in errors), errors
