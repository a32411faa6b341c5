"""meshc check: the example passes, findings land on the lines responsible, rules are
configurable, semantic versions order as semver.org says, traced renders map every line.

The golden projects tests/golden/check-*/ cover each check's output end to end; these tests pin
the library behaviour behind them.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from conftest import GOLDEN, ROOT, pin_charts, run_meshc, with_tools

from compiler.check import CheckOptions, run_checks
from compiler.check.report import format_github
from compiler.check.semver import parse_semver
from compiler.core.diagnostics import CompileError, Diagnostics
from compiler.core.files import ProjectFiles
from compiler.pipeline import environment_tree, load_project, release_values
from compiler.render.render import release_context
from compiler.render.trace import trace_render
from compiler.secrets.secrets import ReleaseSecrets, environment_secrets

BASE = GOLDEN / "check-ok" / "project"


def _project(tmp_path: Path, edits: dict[str, str] | None = None, render: bool = True) -> Path:
    """A copy of the check-ok project with ``edits`` (path → text, or old>>>new replacements)."""
    root = tmp_path / "project"
    shutil.copytree(BASE, root)
    for path, text in (edits or {}).items():
        target = root / path
        if ">>>" in text:
            old, new = text.split(">>>")
            content = target.read_text()
            assert old in content, (path, old)
            text = content.replace(old, new)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if render:
        code, _, err = run_meshc("render", cwd=root)
        assert code == 0, err
    return root


def _check(root: Path, *envs: str, stale: bool = True):
    compiler = with_tools(load_project(ProjectFiles(root)))
    project = compiler.project
    chosen = [project.environment(e) for e in envs] if envs else list(project.deployable)
    return run_checks(compiler, chosen, CheckOptions(stale=stale))


def _line_of(root: Path, path: str, needle: str) -> int:
    lines = (root / path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


# --- the example ------------------------------------------------------------------------------

def test_example_passes_meshc_check():
    """CI's gate on the example: `meshc check` (every environment, stale output included)."""
    code, _, stderr = run_meshc("check", cwd=ROOT)
    assert code == 0, stderr
    assert "meshc check passed: 5 environments" in stderr
    assert " 0 errors, 0 warnings" in stderr


def test_example_check_json_lists_unchecked_custom_resources():
    code, stdout, _ = run_meshc("check", "production", "-o", "json", "--no-stale", cwd=ROOT)
    assert code == 0
    report = json.loads(stdout)
    assert report["passed"] and report["findings"] == []
    assert set(report["kubernetesVersions"]) == {"production/eu-west", "production/us-east"}
    assert any("ServiceMonitor/registry" in entry for entry in report["unchecked"])


# --- locations ----------------------------------------------------------------------------------

def test_schema_error_in_template_is_reported_at_the_template_line(tmp_path):
    root = _project(tmp_path, {"charts/app/deployment.yaml.j2":
                               '          image: "{{ values.image.repository }}:{{ values.image.tag }}"\n'
                               '>>>          image: "{{ values.image.repository }}:{{ values.image.tag }}"\n'
                               '          tty: sometimes\n'
                               '          readinessProbe: {httpGet: {port: 80}, periodSecond: 5}\n'})
    report = _check(root, "dev")
    findings = [f for f in report.findings if f.rule == "kubernetes-schema"]
    assert len(findings) == 2, [f.diagnostic.message for f in findings]
    template = "charts/app/deployment.yaml.j2"
    probe_line = _line_of(root, template, "periodSecond:")
    policy_line = _line_of(root, template, "tty: sometimes")
    by_line = {f.diagnostic.span.line: f.diagnostic for f in findings}
    assert set(by_line) == {probe_line, policy_line}
    assert all(d.span.file == template for d in by_line.values())
    assert "unknown field 'periodSecond' (did you mean 'periodSeconds'?)" in by_line[probe_line].message
    assert "tty: 'sometimes' is not of type boolean" in by_line[policy_line].message
    # the column underlines the key on the template line
    line_text = (root / template).read_text().splitlines()[policy_line - 1]
    assert line_text[by_line[policy_line].span.col - 1:].startswith("tty")
    assert report.errors == 2


def test_schema_error_inside_a_values_structure_names_the_values_line(tmp_path):
    root = _project(tmp_path, {"env/dev.yaml": "api:\n  image:\n    tag: \"1.1.0-rc.1\"\n"
                                               "  resources:\n    limit: {cpu: 1}\n"})
    report = _check(root, "dev", stale=False)
    [finding] = [f for f in report.findings if f.rule == "kubernetes-schema"]
    diag = finding.diagnostic
    assert diag.span.file == "charts/app/deployment.yaml.j2"
    assert diag.span.line == _line_of(root, diag.span.file, "resources:")
    assert "from values: api.resources.limit = a dict, set at env/dev.yaml:5:12" in diag.notes


def test_missing_limit_in_protected_environment_is_an_error_at_the_values_line(tmp_path):
    root = _project(tmp_path, {"env/prod.yaml": "api:\n  replicaCount: 2\n"
                                                "  podDisruptionBudget: {enabled: true}\n"
                                                "  affinity: {podAntiAffinity: {x: 1}}\n"
                                                "  resources:\n    limits: {memory: null}\n"})
    report = _check(root, stale=False)
    [finding] = [f for f in report.findings if f.rule == "resources"]
    assert finding.environment == "prod" and finding.diagnostic.severity == "error"
    assert str(finding.diagnostic.span) == "env/prod.yaml:6:22"
    assert finding.diagnostic.help == "set api.resources.limits.memory in env/prod.yaml"


def test_replicas_below_minimum_points_at_the_value_and_the_template(tmp_path):
    root = _project(tmp_path, {"env/prod.yaml": "api:\n  replicaCount: 1\n"})
    report = _check(root, "prod", stale=False)
    [finding] = [f for f in report.findings if f.rule == "min-replicas"]
    assert str(finding.diagnostic.span) == "env/prod.yaml:2:17"
    assert "template: charts/app/deployment.yaml.j2:6" in finding.diagnostic.notes


def test_patched_field_points_at_the_patch(tmp_path):
    root = _project(tmp_path, {"meshfile.yaml": "    chart: charts/app\n>>>    chart: charts/app\n"
                               "    patches:\n"
                               "      - target: {kind: Deployment, name: api}\n"
                               "        ops: [{op: add, path: /spec/template/spec/hostNetwork, "
                               "value: 'yes'}]\n"})
    report = _check(root, "dev")
    [finding] = [f for f in report.findings if f.rule == "kubernetes-schema"]
    assert finding.diagnostic.span.file == "meshfile.yaml"
    assert finding.diagnostic.span.line == _line_of(root, "meshfile.yaml", "- target:")


# --- configuration ------------------------------------------------------------------------------

def test_protected_environments_get_the_strict_set_and_policies_override(tmp_path):
    values = "api:\n  image: {tag: \"1.0.0\"}\n  securityContext: {readOnlyRootFilesystem: false}\n"
    root = _project(tmp_path, {"env/base.yaml": values,
                               "env/dev.yaml": "api: {}\n",
                               "env/prod.yaml": "api: {}\n"})
    report = _check(root, stale=False)
    levels = {(f.rule, f.environment): f.diagnostic.severity for f in report.findings}
    assert levels[("read-only-root-filesystem", "dev")] == "warning"
    assert levels[("read-only-root-filesystem", "prod")] == "error"
    assert levels[("min-replicas", "prod")] == "error"
    assert ("min-replicas", "dev") not in levels          # off outside protected environments
    silenced = root / "meshfile.yaml"
    silenced.write_text(silenced.read_text().replace(
        "    protected: true\n",
        "    protected: true\n    policies: {read-only-root-filesystem: warning, "
        "min-replicas: {min: 1}}\n"))
    report = _check(root, stale=False)
    levels = {(f.rule, f.environment): f.diagnostic.severity for f in report.findings}
    assert levels[("read-only-root-filesystem", "prod")] == "warning"
    assert ("min-replicas", "prod") not in levels


def test_policies_are_inherited_along_the_environment_chain(tmp_path):
    root = _project(tmp_path, {"meshfile.yaml": "    abstract: true\n>>>    abstract: true\n"
                               "    policies: {promotion-order: off}\n",
                               "env/prod.yaml": "api:\n  image: {tag: \"9.0.0\"}\n"},
                    render=False)
    assert not [f for f in _check(root, stale=False).findings if f.rule == "promotion-order"]


def test_kube_version_selects_the_schemas_and_unknown_versions_are_reported(tmp_path):
    root = _project(tmp_path, {"meshfile.yaml": 'kubeVersion: "1.31">>>kubeVersion: "1.10"'},
                    render=False)
    report = _check(root, "prod", stale=False)
    [finding] = [f for f in report.findings if f.rule == "kubernetes-schema"]
    assert "no Kubernetes schemas for kubeVersion 1.10" in finding.diagnostic.message
    assert finding.diagnostic.span.line == _line_of(root, "meshfile.yaml", "kubeVersion")


def test_kube_version_must_be_a_quoted_version(tmp_path):
    root = _project(tmp_path, {"meshfile.yaml": 'kubeVersion: "1.31">>>kubeVersion: 1.31'},
                    render=False)
    code, _, stderr = run_meshc("check", cwd=root)
    assert code == 1
    assert "kubeVersion must be a string, found a number" in stderr
    assert "Traceback" not in stderr


def test_bad_policy_level_is_a_load_error(tmp_path):
    root = _project(tmp_path, {"meshfile.yaml": "    chart: charts/app\n>>>    chart: charts/app\n"
                               "policies: {resources: fatal}\n"}, render=False)
    with pytest.raises(CompileError) as raised:
        load_project(ProjectFiles(root))
    assert "policy 'resources' must be error, warning or off" in raised.value.diagnostics[0].message


# --- output formats ---------------------------------------------------------------------------

def test_github_output_escapes_messages_and_properties(tmp_path):
    root = _project(tmp_path, {"env/dev.yaml": "api:\n  image: {tag: latest}\n"})
    report = _check(root, "dev")
    compiler = load_project(ProjectFiles(root))
    text = format_github(report, compiler.sources)
    line = next(line for line in text.splitlines() if line.startswith("::error "))
    assert line.startswith("::error file=env/dev.yaml,line=2,col=16,")
    assert "title=meshc check%3A image-tag::" in line
    assert "\n" not in line and "%0A" in line


# --- semantic versions --------------------------------------------------------------------------

SEMVER_ORDER = ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1-rc.1",
                "1.1.0-dev.1", "1.10.0", "2.0.0"]


def test_semver_precedence_follows_semver_org():
    versions = [parse_semver(text) for text in SEMVER_ORDER]
    assert all(versions)
    assert all(a < b for a, b in itertools.pairwise(versions))
    assert sorted(versions[1::2] + versions[::2]) == versions
    assert parse_semver("1.0.0+build.7") == parse_semver("1.0.0")
    assert parse_semver("v1.2.3") == parse_semver("1.2.3")


@pytest.mark.parametrize("text", ["0.3", "latest", "1.2", "01.2.3", "1.2.3-", "1.2.3-01", ""])
def test_not_semantic_versions(text):
    assert parse_semver(text) is None


# --- traced rendering ---------------------------------------------------------------------------

@pytest.mark.parametrize("env_name", ["development", "production/eu-west"])
def test_traced_render_equals_render_and_maps_every_line(env_name):
    from compiler.pipeline import prepare

    compiler = load_project(ProjectFiles(ROOT))
    env = compiler.project.environment(env_name)
    env_values, env_ctx = environment_tree(compiler, env)
    secrets = ReleaseSecrets(env=environment_secrets(compiler.files, env))
    for release in prepare(compiler, env).enabled:  # blue-green slots with their state layers
        if not release.chart.local:
            continue
        values = release_values(release, env_values, Diagnostics())
        context = release_context(values, env_ctx, {
            "name": release.name, "namespace": "ns", "chart": release.chart.ref,
            "labels": {}, "valuesKey": release.values_key_text})
        context.update(secrets.template_functions(release))  # secret_ref, has_secret
        for template in release.chart.templates:
            traced = trace_render(compiler.templates, template, context)
            assert traced.text == compiler.templates.render_file(template, context)
            source = compiler.files.read(template).splitlines()
            assert len(traced.lines) == len(traced.text.split("\n"))
            for number, (line, origin) in enumerate(zip(traced.text.split("\n"), traced.lines), 1):
                assert origin.template == template
                written = source[origin.line - 1]
                key = line.strip().removeprefix("- ").split(":")[0]
                if line.strip() and "{{" not in written and "{%" not in written:
                    assert line.strip() == written.strip(), (template, number)
                elif line.strip() and ":" in line and key and key in written:
                    pass  # a key written on the template line itself
                elif line.strip():
                    assert "{{" in written, (template, number, line, written)


def test_invalid_policy_options_are_errors_and_the_rule_keeps_its_default(tmp_path):
    root = _project(tmp_path, {"meshfile.yaml": "    chart: charts/app\n>>>    chart: charts/app\n"
                               "policies: {min-replicas: {min: two}, resources: {limits: cpu}}\n"},
                    render=False)
    report = _check(root, stale=False)
    messages = sorted(f.diagnostic.message for f in report.findings)
    assert messages == ["option 'limits' of policy 'resources' must be a list of names",
                        "option 'min' of policy 'min-replicas' must be a whole number"]
    assert all(str(f.diagnostic.span).startswith("meshfile.yaml:") for f in report.findings)


def test_traced_render_follows_extends_blocks_and_includes(tmp_path):
    charts = tmp_path / "charts" / "app"
    charts.mkdir(parents=True)
    (charts / "_base.j2").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                                     "  name: {{ release.name }}\nspec:\n"
                                     "{% block spec %}{% endblock %}\n")
    (charts / "_part.j2").write_text("      containers:\n        - name: app\n"
                                     "          badField: {{ values.x }}\n")
    (charts / "d.yaml.j2").write_text("{% extends './_base.j2' %}\n{% block spec %}\n"
                                      "  template:\n    spec:\n{% include './_part.j2' %}\n"
                                      "{% endblock %}\n")
    (charts / "values.yaml").write_text("x: 1\n")
    (tmp_path / "meshfile.yaml").write_text("apiVersion: meshc/v1\nenvironments:\n  dev: {}\n"
                                            "releases:\n  api: {chart: charts/app}\n")
    compiler = load_project(ProjectFiles(tmp_path))
    context = {"values": {"x": 1}, "release": {"name": "api"}}
    traced = trace_render(compiler.templates, "charts/app/d.yaml.j2", context)
    assert traced.text == compiler.templates.render_file("charts/app/d.yaml.j2", context)
    origins = [f"{o.template.rsplit('/', 1)[1]}:{o.line}" for o in traced.lines]
    assert origins[:9] == ["_base.j2:1", "_base.j2:2", "_base.j2:3", "_base.j2:4", "_base.j2:5",
                           "d.yaml.j2:3", "d.yaml.j2:4", "_part.j2:1", "_part.j2:2"]
    assert origins[9] == "_part.j2:3" and traced.text.split("\n")[9].strip() == "badField: 1"
    report = run_checks(compiler, compiler.project.deployable, CheckOptions(stale=False))
    [finding] = [f for f in report.findings if "badField" in f.diagnostic.message]
    assert str(finding.diagnostic.span) == "charts/app/_part.j2:3:11"


def test_remote_chart_version_ahead_of_its_source_environment(tmp_path):
    root = _project(tmp_path, {"meshfile.yaml": 'kubeVersion: "1.31"\n>>>kubeVersion: "1.31"\n'
                               "    chartVersions: {prom: 25.9.0}\n"}, render=False)
    meshfile = root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text() + "  prom:\n    chart: prometheus\n"
                        "    repo: https://example.com/charts\n    version: 25.8.0\n")
    pin_charts(root)
    report = _check(root, stale=False)
    [finding] = [f for f in report.findings if f.rule == "promotion-order"]
    assert "prom: chart version: 'prod' runs 25.9.0, ahead of 25.8.0 in 'dev'" in \
        finding.diagnostic.message
    assert finding.diagnostic.span.line == _line_of(root, "meshfile.yaml", "  prod:")
