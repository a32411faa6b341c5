"""The wrapper chart (compiler/render/wrapper_chart.py) checked with Helm 4's real engine.

Helm runs in a cached Python 3.12 venv (see tests/helmlint.py); these tests skip with the
reason when it cannot be provided.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helmlint import lint_charts, render_charts, strip_source_comments

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


def concatenation(manifests: dict[str, str]) -> str:
    return "".join("---\n" + manifests[name] for name in sorted(manifests))


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


@pytest.fixture(scope="module")
def lint_results(charts):
    results = lint_charts([charts["good"], charts["bad"], charts["empty"]])
    print("Helm engines:", results[0].versions)
    for result in results:
        print(result.report())
    return dict(zip(["good", "bad", "empty"], results))


def test_wrapper_chart_passes_helm_lint_strict(lint_results):
    good = lint_results["good"]
    assert good.strict_ok, good.report()
    # Both engines ran (each reports the INFO "icon is recommended" on Chart.yaml).
    assert {m.engine for m in good.messages} == {"helm-sdkpy", "helm-python-sdk"}
    assert all(m.severity == 1 for m in good.messages), good.report()
    assert lint_results["empty"].strict_ok, lint_results["empty"].report()


def test_helm_lint_sees_the_emitted_manifests(lint_results):
    """Negative control: a broken file of manifests/ is an error for both engines."""
    bad = lint_results["bad"]
    assert not bad.ok
    assert {m.engine for m in bad.errors} == {"helm-sdkpy", "helm-python-sdk"}
    assert any("unable to parse YAML" in m.text for m in bad.errors), bad.report()


def test_wrapper_chart_installs_the_files_verbatim(charts):
    good, empty = render_charts([charts["good"], charts["empty"]], namespace="mcp-mesh-dev")
    assert good.error is None, good.error

    # The template engine's raw output is the files, byte for byte.
    assert good.templates == {f"{RELEASE}/templates/manifests.yaml": concatenation(MANIFESTS)}

    # The release manifest (helm install --dry-run=client): the same documents, each under
    # Helm's "# Source:" line; only the very end differs (Helm ends with a blank line).
    manifest = good.manifest
    assert manifest.count(f"# Source: {RELEASE}/templates/manifests.yaml\n") == len(MANIFESTS)
    assert strip_source_comments(manifest).rstrip("\n") == concatenation(MANIFESTS).rstrip("\n")
    assert 'description: "Registry {{ $labels.instance }} is down"' in manifest
    assert "Hello {{ .Release.Name }} {{ fail \"templated!\" }}" in manifest
    assert list(yaml.safe_load_all(manifest)) == [
        yaml.safe_load(MANIFESTS[name]) for name in sorted(MANIFESTS)]

    assert empty.error is None and empty.manifest == ""
