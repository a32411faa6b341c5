"""Provenance as `meshc explain` reports it: deletions by null, wholesale list replacement,
`--set` index paths, escaped dots, and missing keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_meshc

from compiler.syntax.keypath import KeyPathError, format_key_path, parse_key_path

MESHFILE = """\
apiVersion: meshc/v1
environments:
  base: {abstract: true, values: [base.yaml]}
  prod: {inherits: base, values: [prod.yaml]}
releases:
  app: {chart: chart}
"""
CHART_VALUES = """\
replicas: 1
debug: {enabled: true, level: 3}
hosts:
  - {host: a.example.com, port: 80}
  - {host: b.example.com, port: 81}
annotations: {}
"""
BASE = """\
app:
  replicas: 2
  hosts:
    - {host: base.example.com, port: 8080}
  annotations:
    cert-manager.io/issuer: staging
"""
PROD = """\
app:
  debug: null
  replicas: 3
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "chart").mkdir()
    (tmp_path / "meshfile.yaml").write_text(MESHFILE)
    (tmp_path / "chart" / "values.yaml").write_text(CHART_VALUES)
    (tmp_path / "chart" / "cm.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"
        "data: {replicas: {{ values.replicas | quote }}}\n")
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "prod.yaml").write_text(PROD)
    return tmp_path


def explain(project: Path, path: str, *flags: str) -> dict:
    code, out, err = run_meshc("-f", str(project / "meshfile.yaml"), "explain", "prod", "app",
                               path, "-o", "json", *flags)
    assert code == 0, err
    return json.loads(out)


def test_override_chain_is_strongest_first(project: Path) -> None:
    data = explain(project, "replicas")
    chain = data["leaves"][0]["chain"]
    assert data["value"] == 3
    assert [(c["file"], c["line"], c["status"]) for c in chain] == [
        ("prod.yaml", 3, "wins"), ("base.yaml", 2, "overridden"),
        ("chart/values.yaml", 1, "overridden")]


def test_deletion_by_null_is_explained(project: Path) -> None:
    data = explain(project, "debug.level")
    assert data["exists"] is False
    chain = data["leaves"][0]["chain"]
    assert chain[0] == {"status": "deletes", "layer": "environment", "effect": "null",
                        "path": "app.debug", "value": None, "file": "prod.yaml", "line": 2,
                        "column": 10}
    assert chain[1]["status"] == "overridden" and chain[1]["file"] == "chart/values.yaml"


def test_list_replaced_wholesale(project: Path) -> None:
    data = explain(project, "hosts[0].host")
    chain = data["leaves"][0]["chain"]
    assert data["value"] == "base.example.com"
    assert chain[0]["status"] == "wins (whole list)" and chain[0]["path"] == "app.hosts"
    assert chain[0]["file"] == "base.yaml"
    assert chain[1]["value"] == "a.example.com" and chain[1]["status"] == "overridden"
    # the chart's second host is gone: the list was replaced, not merged
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "explain", "prod", "app",
                             "hosts[1].host")
    assert code == 0, err


def test_set_index_path_names_the_flag(project: Path) -> None:
    data = explain(project, "hosts[2].port", "--set", "app.hosts[2].port=9000")
    leaf = data["leaves"][0]
    assert leaf["value"] == 9000
    assert leaf["chain"][0]["flag"] == "--set app.hosts[2].port=9000"
    assert leaf["chain"][0]["status"] == "wins"


def test_set_index_keeps_the_rest_of_the_list(project: Path) -> None:
    """As in Helm, the flag is parsed into the values files' list, not merged over it: the
    file's first host stays, and the flag has no say on it."""
    data = explain(project, "hosts[0].host", "--set", "app.hosts[2].port=9000")
    chain = data["leaves"][0]["chain"]
    assert data["value"] == "base.example.com"
    assert [(c["layer"], c["status"]) for c in chain] == [
        ("environment", "wins (whole list)"), ("chart", "overridden")]
    data = explain(project, "hosts[1]", "--set", "app.hosts[2].port=9000")
    assert data["exists"] is True and data["value"] is None


def test_set_json_map_replaces_the_map(project: Path) -> None:
    data = explain(project, "annotations", "--set-json", 'app.annotations={"a": "b"}')
    assert data["value"] == {"a": "b"}
    code, out, err = run_meshc("-f", str(project / "meshfile.yaml"), "explain", "prod", "app",
                               "annotations.cert-manager\\.io/issuer", "--set-json",
                               'app.annotations={"a": "b"}')
    assert code == 0, err
    assert "the map it sets at app.annotations replaces the subtree" in out


def test_escaped_dot_in_key(project: Path) -> None:
    data = explain(project, "annotations.cert-manager\\.io/issuer")
    assert data["value"] == "staging"
    assert data["leaves"][0]["chain"][0]["file"] == "base.yaml"


def test_map_explains_every_leaf(project: Path) -> None:
    data = explain(project, "hosts")
    assert [leaf["path"] for leaf in data["leaves"]] == ["hosts[0].host", "hosts[0].port"]


def test_missing_key_suggests_the_nearest(project: Path) -> None:
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "explain", "prod", "app",
                             "replica")
    assert code == 1
    assert "did you mean 'replicas'?" in err
    assert "keys at the top level: annotations, hosts, replicas" in err


@pytest.mark.parametrize("text", ["a.b", "hosts[0].host", "a\\.b.c", "x[1][2]", "k"])
def test_key_path_round_trip(text: str) -> None:
    assert format_key_path(parse_key_path(text)) == text


@pytest.mark.parametrize("text", ["", "a..b", "[0]", "a[x]", "a[0]b", "a."])
def test_bad_key_paths(text: str) -> None:
    with pytest.raises(KeyPathError):
        parse_key_path(text)
