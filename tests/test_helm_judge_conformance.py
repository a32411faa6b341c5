"""Helm's own values cases (tests/conformance/helm-values/) checked against the real Helm 4.

``tests/test_conformance_helm.py`` holds meshc's values code to these cases; this file holds the
cases to Helm itself, so that a case transcribed wrongly cannot make meshc wrong. Each case
becomes one ``helm template`` command line of a chart whose one template shows ``.Values`` as
JSON (tests/helmjudge.py), and Helm's ``.Values`` must equal the case's ``expect`` (or Helm
must refuse where the case expects an error):

* a ``--set``-family case: its ``dest`` as a ``--values`` file (the flags parse into the merged
  values files, as ``helm`` does), then ``--<mode>=<input>`` and one more flag per ``then``,
  its ``files`` written beside the chart (``--set-file`` reads them);
* ``merge_maps``: each layer as a ``--values`` file, in order; ``load_values``: the YAML as a
  ``--values`` file; ``cli_merge_values``: its values files and flags;
* ``coalesce_values`` and friends: the case's chart (values, subcharts in ``charts/``) with its
  user values as a ``--values`` file; ``coalesce_tables``/``merge_tables``: ``src`` as the
  chart's defaults, ``dst`` as the user's values.

A case whose operation Helm's command line does not reach, or reaches with another result,
carries ``real_helm``: the reason, in the case data. It runs as a strict xfail, so the note
goes stale (and fails) the day Helm agrees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helmjudge import HelmValues, helm_values, in_parallel, write_values_chart
from realtools import helm4
from test_conformance_helm import CASES_DIR, MERGE_FILE, STRVALS_FILES, same_values

FLAG_KINDS = ("set_json", "set", "set_string", "set_file", "set_literal")  # Helm's order


@dataclass(frozen=True, slots=True)
class Run:
    """One case as a chart and a ``helm template`` command line (run in a folder of its own)."""

    chart: dict[str, Any]                          # {name, values, dependencies}
    args: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)


def load_cases(filename: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((CASES_DIR / filename).read_text(encoding="utf-8"))
    return cases


def all_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for filename in (*STRVALS_FILES, MERGE_FILE):
        for case in load_cases(filename):
            yield filename, case


def _values_file(name: str, data: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    return {name: json.dumps(data)}, ("--values", name)


def strvals_run(case: dict[str, Any]) -> Run:
    files, args = dict(case.get("files") or {}), ()
    if case.get("dest"):
        dest, args = _values_file("dest.json", case["dest"])
        files |= dest
    flags = tuple(f"--{case['mode']}={text}" for text in [case["input"], *case.get("then", [])])
    return Run({"name": "values"}, (*args, *flags), files)


def merge_run(case: dict[str, Any]) -> Run | None:
    data, op = case["input"], case["op"]
    if op == "merge_maps":
        files = {f"layer-{i}.json": json.dumps(layer) for i, layer in enumerate(data["layers"])}
        return Run({"name": "values"}, tuple(a for name in files for a in ("--values", name)),
                   files)
    if op == "load_values":
        return Run({"name": "values"}, ("--values", "values-file.yaml"),
                   {"values-file.yaml": data["yaml"]})
    if op == "cli_merge_values":
        files = dict(data.get("files") or {})
        args = [a for name in data.get("values_files", []) for a in ("--values", name)]
        args += [f"--{kind.replace('_', '-')}={text}" for kind in FLAG_KINDS
                 for text in data[kind]]
        return Run({"name": "values"}, tuple(args), files)
    if op in ("coalesce_values", "coalesce_values_nocopy", "merge_values"):
        text = data.get("values_yaml") or json.dumps(data["values"])
        return Run(data["chart"], ("--values", "user.yaml"), {"user.yaml": text})
    if op in ("coalesce_tables", "merge_tables"):
        files, args = _values_file("user.json", data["dst"])
        return Run({"name": "tables", "values": data["src"]}, args, files)
    return None  # upgrade_reuse_values: see the case's real_helm


def case_run(case: dict[str, Any]) -> Run | None:
    return merge_run(case) if "op" in case else strvals_run(case)


def run_case(helm: Path, work: Path, key: str, run: Run) -> HelmValues:
    folder = work / key
    folder.mkdir(parents=True)
    for name, text in run.files.items():
        assert "/" not in name and name not in ("charts", run.chart["name"]), name
        (folder / name).write_text(text, encoding="utf-8")
    chart = write_values_chart(folder, run.chart["name"], run.chart.get("values"),
                               run.chart.get("dependencies") or ())
    return helm_values(helm, chart, run.args, folder, work / "home")


def _params() -> list[Any]:
    params = []
    for filename, case in all_cases():
        reason = case.get("real_helm")
        marks = [pytest.mark.xfail(reason=f"real Helm: {reason}", strict=True)] if reason else []
        params.append(pytest.param(filename, case, id=case["name"], marks=marks))
    return params


@pytest.fixture(scope="module")
def helm_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HelmValues | None]:
    """Every case run by the real Helm at once (on a few threads), by file and case name."""
    helm = helm4()
    work = tmp_path_factory.mktemp("conformance-helm")
    jobs = [(f"{filename}:{case['name']}", case_run(case)) for filename, case in all_cases()]
    keys = {key: f"case-{index}" for index, (key, _) in enumerate(jobs)}
    answers = in_parallel(
        lambda job: None if job[1] is None else run_case(helm, work, keys[job[0]], job[1]), jobs)
    return dict(zip([key for key, _ in jobs], answers, strict=True))


@pytest.mark.parametrize(("filename", "case"), _params())
def test_helm_agrees_with_the_case(filename: str, case: dict[str, Any],
                                   helm_answers: dict[str, HelmValues | None]) -> None:
    answer = helm_answers[f"{filename}:{case['name']}"]
    assert answer is not None, "no helm command line reaches this operation"
    if case.get("error"):
        assert answer.refused, f"Helm accepted it: .Values = {answer.values!r}"
        if case.get("mode") == "set-json":  # helm names the flag, not the JSON parser's error
            assert f"failed parsing --set-json data {case['input']}" in answer.stderr
        elif "error_message" in case:
            assert case["error_message"] in answer.stderr, answer.stderr
        return
    assert not answer.refused, answer.stderr
    difference = same_values(answer.values, case["expect"])
    assert difference is None, f"Helm's .Values differ from the case: {difference}"
    for warning in case.get("warnings_contain", []):
        assert warning.removeprefix("warning: ") in answer.stderr, answer.stderr


def test_every_case_is_judged_or_says_why_not() -> None:
    """A case no command line reaches must say so, and only such a case."""
    for _, case in all_cases():
        assert (case_run(case) is None) <= bool(case.get("real_helm")), case["name"]


def test_cases_live_in_the_project() -> None:
    assert CASES_DIR == Path(__file__).resolve().parent / "conformance" / "helm-values"
    assert (CASES_DIR / "README.md").is_file()
