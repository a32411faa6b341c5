"""Wrapper charts judged by the real Helm 4: every local release of every deployable target
(environment or region) of the example and of every golden project that renders.

For each wrapper chart (``rendered/<env>/<release>/``, ``rendered/<env>/<region>/<release>/``
in a region; compiler/render/wrapper_chart.py):

* ``helm lint --strict <chart>`` passes;
* ``helm template`` with the plan step's own arguments (``helm upgrade --install REL CHART …``
  of ``rendered/<env>/plan.json`` with ``template`` for ``upgrade --install``, run from the
  project directory as ``meshc apply`` runs it) yields exactly the documents of ``manifests/``:
  the same texts, byte for byte once Helm's ``# Source:`` line and the document's trailing line
  breaks are set aside (Helm orders documents by kind, so order is not compared);
* with the step's secrets decrypted by the real sops with the test key (the values files
  ``meshc apply`` adds), ``templates/secrets.yaml`` yields exactly the Secrets meshc promises:
  name, namespace, labels, type, and each key's data the base64 of the decrypted value; and
  every ``secretKeyRef`` of the manifests finds its key there.

The example is judged as :func:`helmjudge.keyed_example`, a copy whose staging and production
secrets are stand-ins encrypted to the test key (their real key is not in the repository);
:func:`test_the_keyed_example_renders_as_the_example` shows that only the secret values differ.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import tree_files
from helmjudge import (
    Document,
    decrypt_step_secrets,
    in_parallel,
    manifest_documents,
    meshfile_output,
    rendered_projects,
)
from realtools import helm4, run_helm

from compiler.core.files import ProjectFiles
from compiler.ops.apply import read_plan
from compiler.pipeline import compile_environment, find_environment, load_project
from compiler.plan.plan import Step
from compiler.render import wrapper_chart


@dataclass(frozen=True, slots=True)
class Chart:
    """One wrapper chart to judge: its project, environment and plan step."""

    project: str
    root: Path
    environment: str
    step: Step

    @property
    def folder(self) -> Path:
        return self.root / self.step.chart

    @property
    def where(self) -> str:
        return f"{self.project}: {self.step.chart}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What Helm said of one chart."""

    chart: Chart
    lint: str | None              # helm lint --strict's output where it failed, else None
    template: str | None          # helm template's error, else None
    documents: tuple[Document, ...]
    secrets_values: tuple[Path, ...]


def local_steps(name: str, root: Path) -> Iterator[Chart]:
    """The wrapper charts of every target's plan (a region's: ``ENV/REGION/plan.json``)."""
    output = root / meshfile_output(root)
    for plan in sorted(output.glob("**/plan.json")):
        for step in read_plan(plan.read_text(encoding="utf-8"), str(plan)).steps:
            if not step.remote and step.helm_chart is None:  # a Helm chart has no wrapper
                yield Chart(name, root, plan.parent.relative_to(output).as_posix(), step)


def judge(helm: Path, home: Path, chart: Chart) -> Verdict:
    """``helm lint --strict`` and ``helm template`` (the plan step's arguments, its decrypted
    secrets added) of one wrapper chart."""
    linted = run_helm(helm, ["lint", "--strict", str(chart.folder)], home)
    secrets_dir = home / "secrets" / chart.project / chart.environment
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets = decrypt_step_secrets(chart.root, chart.step, secrets_dir)
    argv = list(chart.step.argv)
    assert argv[:3] == ["helm", "upgrade", "--install"], argv
    extra = [arg for path in secrets for arg in ("--values", str(path))]
    templated = run_helm(helm, ["template", *argv[3:], *extra], home, cwd=chart.root)
    return Verdict(chart, None if linted.returncode == 0 else linted.stdout + linted.stderr,
                   None if templated.returncode == 0 else templated.stderr,
                   tuple(manifest_documents(templated.stdout)) if templated.returncode == 0
                   else (), tuple(secrets))


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    helm = helm4()
    work = tmp_path_factory.mktemp("helm-judge-charts")
    roots, failed = rendered_projects(work / "projects")
    charts = [chart for name, root in roots.items() for chart in local_steps(name, root)]
    verdicts = in_parallel(lambda chart: judge(helm, work / "home", chart), charts)
    print(f"helm judged {len(verdicts)} wrapper charts of {len(roots)} projects "
          f"({', '.join(roots)}); not rendering: {', '.join(failed)}")
    return {"roots": roots, "failed": failed, "verdicts": verdicts}


def test_every_project_but_the_error_cases_renders(judged: dict[str, Any]) -> None:
    assert all(name.startswith("error-") for name in judged["failed"]), judged["failed"]
    assert len(judged["roots"]) >= 15
    projects = {v.chart.project for v in judged["verdicts"]}
    helm_only = {"helm-chart", "error-no-helm"}  # Helm charts only: installed as themselves
    assert projects == set(judged["roots"]) - helm_only, "a rendered project without wrapper charts"


def test_every_wrapper_chart_passes_helm_lint_strict(judged: dict[str, Any]) -> None:
    failed = [f"{v.chart.where}:\n{v.lint}" for v in judged["verdicts"] if v.lint is not None]
    assert not failed, "helm lint --strict failed:\n" + "\n".join(failed)


def _reviewed(chart: Path) -> list[str]:
    return [path.read_text(encoding="utf-8").rstrip("\n")
            for path in sorted((chart / "manifests").glob("*.yaml"))]


def test_helm_template_yields_exactly_the_reviewed_manifests(judged: dict[str, Any]) -> None:
    problems = []
    for verdict in judged["verdicts"]:
        if verdict.template is not None:
            problems.append(f"{verdict.chart.where}: helm template failed: {verdict.template}")
            continue
        from_files = [d for d in verdict.documents if d.source.endswith(wrapper_chart.TEMPLATE_PATH)]
        others = [d.source for d in verdict.documents if d not in from_files
                  and not d.source.endswith(wrapper_chart.SECRETS_TEMPLATE_PATH)]
        if others:
            problems.append(f"{verdict.chart.where}: documents from other templates: {others}")
        if sorted(d.text for d in from_files) != sorted(_reviewed(verdict.chart.folder)):
            installed = sorted(d.identity for d in from_files)
            problems.append(f"{verdict.chart.where}: Helm's documents are not manifests/ "
                            f"({len(from_files)} documents: {installed})")
    assert not problems, "\n".join(problems)


def _promised(roots: dict[str, Path]) -> dict[tuple[str, str], Any]:
    """(target, release) → what meshc compiled for the example: its releases' Secrets. A target
    is a deployable environment or a region (``production/eu-west``)."""
    compiler = load_project(ProjectFiles(roots["example"]))
    found = {}
    for env in compiler.project.deployable:
        result = compile_environment(compiler, find_environment(compiler.project, env.name))
        for output in result.releases:
            found[env.name, output.release.name] = output
    return found


def _merged(paths: tuple[Path, ...]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in paths:
        _merge_into(merged, json.loads(path.read_text(encoding="utf-8")))
    return merged


def _merge_into(base: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = value


def _secret_refs(node: Any) -> Iterator[tuple[str, str | None]]:
    """(Secret name, key) of every ``secretKeyRef`` of a manifest, and (name, None) of every
    ``envFrom`` ``secretRef``."""
    if isinstance(node, dict):
        for field, key in (("secretKeyRef", True), ("secretRef", False)):
            ref = node.get(field)
            if isinstance(ref, dict):
                yield str(ref.get("name")), str(ref.get("key")) if key else None
        for value in node.values():
            yield from _secret_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _secret_refs(value)


def expected_secret(output: Any, secrets: dict[str, Any], obj: Any) -> dict[str, Any]:
    """The Secret ``templates/secrets.yaml`` promises for ``obj`` (name, path, keys), given the
    release's decrypted ``secrets``."""
    node = secrets
    for part in obj.path:
        node = node[part]
    data = {}
    for key in obj.keys:
        assert isinstance(node[key], str), f"{obj.name}.{key}: not a string secret"
        data[key] = base64.b64encode(node[key].encode("utf-8")).decode("ascii")
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": obj.name, "namespace": output.namespace,
                         "labels": {"app.kubernetes.io/instance": output.release.name,
                                    "app.kubernetes.io/managed-by": "meshc"}},
            "type": "Opaque", "data": data}


def test_secrets_come_out_exactly_as_promised(judged: dict[str, Any]) -> None:
    promised = _promised(judged["roots"])
    problems, judged_secrets, refs = [], 0, 0
    for verdict in judged["verdicts"]:
        chart = verdict.chart
        if chart.project != "example" or verdict.template is not None:
            continue
        output = promised[chart.environment, chart.step.release]
        secrets = _merged(verdict.secrets_values)
        made = {d.data["metadata"]["name"]: d.data for d in verdict.documents
                if d.source.endswith(wrapper_chart.SECRETS_TEMPLATE_PATH)}
        expected = {obj.name: expected_secret(output, secrets, obj)
                    for obj in output.secrets.objects}
        if made != expected:
            problems.append(f"{chart.where}: Secrets {sorted(made)} are not the promised "
                            f"{sorted(expected)} (or their content differs)")
        judged_secrets += len(made)
        used = set()
        for document in verdict.documents:
            for name, key in _secret_refs(document.data):
                refs += 1
                used.add(name)
                data = (made.get(name) or {}).get("data")
                if data is None or (key is not None and key not in data):
                    problems.append(f"{chart.where}: {document.identity} needs Secret {name}"
                                    f"{f' key {key}' if key else ''}, which Helm does not create")
        if set(made) - used:
            problems.append(f"{chart.where}: Secrets no manifest uses: {sorted(set(made) - used)}")
    assert not problems, "\n".join(problems)
    print(f"{judged_secrets} Secrets as promised; {refs} references to them satisfied")
    assert judged_secrets > 0


def test_development_secrets_are_the_real_ones(judged: dict[str, Any]) -> None:
    """Development's secrets are the example's own file, decrypted with the test key (both
    slots of the blue-green weather-agent receive them)."""
    slots = {v.chart.step.release: v for v in judged["verdicts"] if v.chart.project == "example"
             and v.chart.environment == "development"
             and v.chart.step.release.startswith("weather-agent-")}
    assert sorted(slots) == ["weather-agent-blue", "weather-agent-green"]
    for weather in slots.values():
        assert _merged(weather.secrets_values)["credentials"]["WEATHER_API_KEY"] == \
            "dev-weather-api-key-0001"


def test_the_keyed_example_renders_as_the_example(judged: dict[str, Any],
                                                  rendered_example: Path) -> None:
    """Apart from plan.json (its inputsDigest covers the secrets files) and the digests of the
    Helm charts' Secret values that come from the secrets (they follow the ciphertexts, which
    the keyed copy re-encrypted; a checksum of them reads "derived from the secrets" in both),
    the keyed copy renders byte for byte what the example renders."""
    root = judged["roots"]["example"]
    keyed = tree_files(root / meshfile_output(root))
    example = tree_files(rendered_example)
    assert {p: _digests_out(t) for p, t in keyed.items() if not p.endswith("plan.json")} == \
        {p: _digests_out(t) for p, t in example.items() if not p.endswith("plan.json")}
    targets = {p.removesuffix("/plan.json") for p in keyed if p.endswith("/plan.json")}
    assert {"production/eu-west", "production/us-east"} <= targets
    differ = {p for p in keyed if not p.endswith("plan.json") and keyed[p] != example[p]}
    # the admin password's digest, in every target deploying grafana
    assert differ == {f"{t}/grafana/manifests/secret-grafana.yaml" for t in targets
                      if f"{t}/grafana/manifests/secret-grafana.yaml" in keyed}
    assert len(differ) == 4  # staging, both production regions, production-dr


def _digests_out(text: str) -> str:
    return re.sub(r"sha256:[0-9a-f]{64}", "sha256:…", text)

