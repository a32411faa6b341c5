"""The wrapper chart (compiler/render/wrapper_chart.py) checked with the real Helm 4.

The binary comes from tests/realtools.py (``helm4()`` skips these tests with the reason where it
cannot be had, and fails them under ``CI=true``). tests/test_helm_judge_charts.py judges every
wrapper chart of the example and of the golden projects; this file holds the chart's texts and
Helm's reading of a hand-made chart with template syntax in its manifests, and a broken one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helmjudge import manifest_documents
from realtools import helm4, run_helm

from compiler.render import wrapper_chart

RELEASE = "registry"

MANIFESTS = {
    # Template syntax that would fail, or change, if Helm evaluated the file.
    "configmap-registry.yaml": (
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: registry\n"
        "  namespace: mcp-mesh-dev\n"
        "data:\n"
        "  greeting: 'Hello {{ .Release.Name }} {{ fail \"templated!\" }}'\n"
    ),
    "prometheusrule-registry.yaml": (
        "apiVersion: monitoring.coreos.com/v1\n"
        "kind: PrometheusRule\n"
        "metadata:\n"
        "  name: registry\n"
        "  namespace: mcp-mesh-dev\n"
        "spec:\n"
        "  groups:\n"
        "    - name: registry\n"
        "      rules:\n"
        "        - alert: RegistryDown\n"
        "          expr: up{job=\"registry\"} == 0\n"
        "          annotations:\n"
        "            description: \"Registry {{ $labels.instance }} is down\"\n"
    ),
}


def write_wrapper_chart(directory: Path, release: str, manifests: dict[str, str],
                        values: str = "registry:\n  replicaCount: 2\n") -> Path:
    """Lay out a release the way meshc's emit stage does."""
    chart = directory / release
    (chart / "templates").mkdir(parents=True)
    (chart / "manifests").mkdir()
    (chart / "Chart.yaml").write_text(wrapper_chart.chart_yaml(release))
    (chart / wrapper_chart.TEMPLATE_PATH).write_text(wrapper_chart.manifests_template())
    (chart / "values.yaml").write_text(values)
    for name, text in manifests.items():
        (chart / "manifests" / name).write_text(text)
    return chart


# --- the texts themselves (no Helm needed) -------------------------------------------------

def test_chart_yaml_is_stable_and_valid():
    text = wrapper_chart.chart_yaml("weather-agent")
    assert text == wrapper_chart.chart_yaml("weather-agent")
    assert text.endswith("\n") and "\r" not in text
    data = yaml.safe_load(text)
    assert data["apiVersion"] == "v2"
    assert data["name"] == "weather-agent"
    assert data["version"] == "0.1.0"
    assert data["type"] == "application"
    assert "meshc" in data["description"]


@pytest.mark.parametrize("bad", ["", "Registry", "a_b", "-a", "a-", "a" * 54, "x: y", "a\nb"])
def test_chart_yaml_rejects_names_that_are_not_release_names(bad):
    with pytest.raises(ValueError):
        wrapper_chart.chart_yaml(bad)


def test_template_reads_the_manifests_as_files():
    template = wrapper_chart.manifests_template()
    assert '.Files.Glob "manifests/*.yaml"' in template
    assert "$.Files.Get $path" in template
    assert ".Values" not in template and "tpl" not in template
    assert template.endswith("\n")


# --- with Helm ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def charts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wrapper-charts")
    good = write_wrapper_chart(root / "good", RELEASE, MANIFESTS)
    broken = dict(MANIFESTS)
    broken["configmap-broken.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n"
    bad = write_wrapper_chart(root / "bad", RELEASE, broken)
    empty = write_wrapper_chart(root / "empty", "nothing", {})
    return {"good": good, "bad": bad, "empty": empty}


def helm(args: list[str], tmp_path: Path):
    return run_helm(helm4(), args, tmp_path / "home")


def test_wrapper_chart_passes_helm_lint_strict(charts, tmp_path):
    for name in ("good", "empty"):
        done = helm(["lint", "--strict", str(charts[name])], tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        # Helm's only remark is the informational "icon is recommended" on Chart.yaml.
        remarks = [line for line in done.stdout.splitlines() if line.startswith("[")]
        assert remarks == ["[INFO] Chart.yaml: icon is recommended"], done.stdout


def test_helm_lint_sees_the_emitted_manifests(charts, tmp_path):
    """Negative control: a broken file of manifests/ is an error."""
    done = helm(["lint", "--strict", str(charts["bad"])], tmp_path)
    assert done.returncode != 0
    assert "[ERROR]" in done.stdout and "unable to parse YAML" in done.stdout, done.stdout


def test_wrapper_chart_installs_the_files_verbatim(charts, tmp_path):
    good = charts["good"]
    args = [RELEASE, str(good), "--namespace", "mcp-mesh-dev", "--values",
            str(good / "values.yaml")]
    templated = helm(["template", *args], tmp_path)
    assert templated.returncode == 0, templated.stderr
    # helm template: one document per file, each the file's text under Helm's "# Source:" line
    # (Helm orders by kind; ConfigMap comes before kinds it does not know).
    assert [(d.source, d.text) for d in manifest_documents(templated.stdout)] == [
        (f"{RELEASE}/templates/manifests.yaml", MANIFESTS[name].rstrip("\n"))
        for name in sorted(MANIFESTS)]

    # The release manifest (helm install --dry-run=client -o json: the release as Helm would
    # store it) holds the same documents, each under its "# Source:" line.
    installed = helm(["install", *args, "--dry-run=client", "-o", "json"], tmp_path)
    assert installed.returncode == 0, installed.stderr
    manifest = json.loads(installed.stdout)["manifest"]
    assert [d.text for d in manifest_documents(manifest)] == [
        MANIFESTS[name].rstrip("\n") for name in sorted(MANIFESTS)]
    assert manifest.count(f"# Source: {RELEASE}/templates/manifests.yaml\n") == len(MANIFESTS)
    assert 'description: "Registry {{ $labels.instance }} is down"' in manifest
    assert "Hello {{ .Release.Name }} {{ fail \"templated!\" }}" in manifest
    assert list(yaml.safe_load_all(manifest)) == [
        yaml.safe_load(MANIFESTS[name]) for name in sorted(MANIFESTS)]

    empty = helm(["template", "nothing", str(charts["empty"])], tmp_path)
    assert empty.returncode == 0 and empty.stdout.strip() == "", empty.stdout + empty.stderr
