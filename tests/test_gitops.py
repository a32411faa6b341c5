"""GitOps exports and CI workflows: every exported document validates strictly against the
upstream CRD schemas (tests/fixtures/crds, pinned, see SOURCES.md there); Argo CD sync-waves
and Flux dependsOn equal the plan's waves and needs, for the example and the golden projects;
Flux Secrets are real SOPS (the real sops, the test key) holding exactly the release's part;
`meshc ci github` workflows validate against SchemaStore's schema (check-jsonschema, offline).

No Argo CD or Flux controller runs here (no Kubernetes API server): the CRD schemas stand in
for the API server's strict field validation, which is all the tests claim.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT, run_meshc, with_tools

from compiler.core.diagnostics import CompileError
from compiler.core.files import ProjectFiles
from compiler.gitops.argocd import WAVE, argocd_files
from compiler.gitops.flux import flux_files
from compiler.gitops.github import CiOptions, workflow_files
from compiler.gitops.model import ExportEnv, ExportOptions, export_environment
from compiler.pipeline import compile_environment, load_project
from compiler.secrets.sops import find_sops

CRDS = Path(__file__).parent / "fixtures" / "crds"
KEY = Path(__file__).parent / "keys" / "example-age-key.txt"
OPTIONS = ExportOptions("https://github.com/acme/mesh.git", "main")
# every golden project that compiles (the error-* cases are refused before any plan)
GOLDEN = sorted(p.parent.name for p in (ROOT / "tests" / "golden").glob("*/project")
                if not p.parent.name.startswith("error-"))
FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
META_KEYS = {"name", "namespace", "labels", "annotations", "finalizers"}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD's schema with undeclared fields refused (as strict field validation does),
    except in free-form subtrees (x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes")}
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=FAST)  # 2 MB of CRDs: libyaml where there
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            found[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return found


def validate(doc: dict[str, Any], validators: dict) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if doc["apiVersion"] == "v1":  # ConfigMap, Secret: core kinds, checked by shape here
        assert set(doc) <= {"apiVersion", "kind", "metadata", "data", "stringData", "type"}
    else:
        errors = sorted(validators[key].iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert set(doc["metadata"]) <= META_KEYS, doc["metadata"]


def _compiled(project: Path) -> list[ExportEnv]:
    # values only for Helm charts (no helm template): an export needs the plan, not manifests
    compiler = replace(with_tools(load_project(ProjectFiles(project, {}))), helm_manifests=False)
    return [export_environment(compile_environment(compiler, env), compiler.project.name)
            for env in compiler.project.deployable]


@pytest.fixture(scope="module")
def projects(chart_cache: Path, session_helm: Path | None) -> dict[str, list[ExportEnv]]:
    with pytest.MonkeyPatch.context() as patch:  # as the autouse fixture does, module-wide
        patch.setenv("MESHC_CHART_CACHE", str(chart_cache))
        if session_helm is not None:
            patch.setenv("MESHC_HELM", str(session_helm))
        found = {"example": _compiled(ROOT)}
        for case in GOLDEN:
            found[case] = _compiled(ROOT / "tests" / "golden" / case / "project")
    return found


def _docs(files: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, doc) for path, text in sorted(files.items())
            for doc in yaml.safe_load_all(text) if doc]


def _no_secrets(env: ExportEnv) -> ExportEnv:
    return replace(env, releases=tuple(replace(r, secrets=()) for r in env.releases))


def test_argocd_validates_and_keeps_waves(projects: dict, validators: dict) -> None:
    kinds = set()
    for name, envs in projects.items():
        for env in envs:
            files = argocd_files(_no_secrets(env), OPTIONS, "gitops/argocd")
            apps = {}
            for path, doc in _docs(files):
                validate(doc, validators)
                kinds.add(doc["kind"])
                labels = doc["metadata"].get("labels", {})
                if doc["kind"] == "Application" and "meshc.io/release" in labels:
                    apps[labels["meshc.io/release"]] = doc
                    assert doc["spec"]["project"] == f"{env.project}-{_dns(env.name)}"
            assert {r: int(a["metadata"]["annotations"][WAVE]) for r, a in apps.items()} == \
                {r.name: r.wave for r in env.releases}, (name, env.name)
            for release in env.releases:  # a wave follows every need's wave
                for need in release.needs:
                    assert int(apps[need]["metadata"]["annotations"][WAVE]) < release.wave
    assert kinds == {"Application", "AppProject", "ConfigMap"}


def test_argocd_applicationset_validates_and_steps_by_wave(projects: dict,
                                                          validators: dict) -> None:
    options = replace(OPTIONS, application_set=True)
    for envs in projects.values():
        for env in envs:
            files = argocd_files(_no_secrets(env), options, "gitops/argocd")
            assert not any(p.endswith(f"/apps/{r.name}.yaml") for p in files for r in env.releases)
            (appset,) = [d for _, d in _docs(files) if d["kind"] == "ApplicationSet"]
            validate(appset, validators)
            elements = appset["spec"]["generators"][0]["list"]["elements"]
            assert {e["release"]: int(e["wave"]) for e in elements} == \
                {r.name: r.wave for r in env.releases}
            steps = appset["spec"]["strategy"]["rollingSync"]["steps"]
            assert [s["matchExpressions"][0]["values"] for s in steps] == \
                [[str(w)] for w in sorted({r.wave for r in env.releases})]
            assert appset["spec"]["template"]["metadata"]["labels"]["meshc.io/wave"] == "{{.wave}}"


def test_argocd_cluster_from_the_meshfile(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(ROOT / "tests" / "golden" / "ok-small" / "project", project)
    meshfile = project / "meshfile.yaml"
    text = meshfile.read_text()
    assert "  prod:\n" in text
    meshfile.write_text(text.replace("  prod:\n", "  prod:\n    argocd: {cluster: east-1}\n", 1))
    (env,) = [e for e in _compiled(project) if e.name == "prod"]
    files = argocd_files(env, OPTIONS, "gitops/argocd")
    app = yaml.safe_load(files["prod/apps/api.yaml"].split("\n", 2)[2])
    assert app["spec"]["destination"] == {"name": "east-1", "namespace": "default"}
    meshfile.write_text(text.replace("  prod:\n", "  prod:\n    argocd: {clustr: x}\n", 1))
    code, _, err = run_meshc("export", "argocd", "--repo-url", "u", cwd=project)
    assert code == 1 and "clustr" in err and "needs 'cluster:'" in err


def test_argocd_example_release_shapes(projects: dict) -> None:
    production = next(e for e in projects["example"] if e.name == "production/eu-west")
    files = argocd_files(_no_secrets(production), OPTIONS, "gitops/argocd")
    grafana = yaml.safe_load(files["production/eu-west/apps/grafana.yaml"].split("\n", 2)[2])
    chart, values = grafana["spec"]["sources"]
    assert (chart["chart"], chart["targetRevision"]) == ("grafana", "7.3.0")
    assert chart["helm"]["valueFiles"] == [
        "$values/rendered/production/eu-west/grafana/values.yaml"]
    assert values == {"repoURL": OPTIONS.repo_url, "targetRevision": "main", "ref": "values"}
    registry = yaml.safe_load(files["production/eu-west/apps/registry.yaml"])
    assert registry["spec"]["source"]["path"] == "rendered/production/eu-west/registry"
    assert registry["spec"]["destination"] == {"name": "prod-eu",
                                               "namespace": "mcp-mesh-production"}
    assert "automated" not in registry["spec"]["syncPolicy"]  # protected: a person syncs
    project = yaml.safe_load(files["production/eu-west/apps/project.yaml"].split("\n", 2)[2])
    assert {"group": "", "kind": "Namespace"} in project["spec"]["clusterResourceWhitelist"]
    assert project["spec"]["destinations"] == [{"name": "prod-eu",
                                                "namespace": "mcp-mesh-production"}]


def test_argocd_refuses_sops_secrets(projects: dict) -> None:
    production = next(e for e in projects["example"] if e.name == "production/eu-west")
    with pytest.raises(CompileError) as caught:
        argocd_files(production, OPTIONS, "gitops/argocd")
    message = caught.value.diagnostics[0].message
    assert "Argo CD cannot decrypt SOPS" in message and "'registry'" in message


def _dns(environment: str) -> str:
    """An environment's name in object names: a region's ``production/eu-west`` reads
    ``production-eu-west``."""
    return environment.replace("/", "-")


def test_flux_validates_and_keeps_needs(projects: dict, validators: dict) -> None:
    kinds = set()
    for name, envs in projects.items():
        for env in envs:
            files, secrets = flux_files(env, OPTIONS, "gitops/flux", {})
            releases = {}
            for _path, doc in _docs(files):
                validate(doc, validators)
                kinds.add(doc["kind"])
                if doc["kind"] == "HelmRelease":
                    releases[doc["spec"]["releaseName"]] = doc
            assert set(releases) == {r.name for r in env.releases}
            for release in env.releases:
                spec = releases[release.name]["spec"]
                assert [d["name"] for d in spec.get("dependsOn", [])] == \
                    [f"{_dns(env.name)}-{need}" for need in release.needs], (name, release.name)
                assert spec["targetNamespace"] == release.namespace
                assert spec.get("timeout") == release.helm.timeout
                refs = [v["name"] for v in spec.get("valuesFrom", []) if v["kind"] == "Secret"]
                assert refs == [s.name for s in secrets if s.path.startswith(
                    f"{env.name}/releases/{release.name}-secrets-")]
    assert kinds == {"GitRepository", "HelmRepository", "HelmRelease", "Kustomization",
                     "ConfigMap"}


def _without_keys() -> dict[str, str]:
    return {name: os.environ.pop(name) for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY")
            if name in os.environ}


def test_flux_export_secrets_are_sops_and_stable(tmp_path: Path) -> None:
    """The CLI end to end on a copy of the example's development: without a key the Secret
    cannot be made (a diagnostic, nothing written); with the test key it is SOPS-encrypted for
    the environment's recipient and decrypts to exactly the release's part; a second export
    changes nothing and needs no key. Argo CD refuses the same environment, saying why."""
    project = tmp_path / "example"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".git", "tests", "bench", "docs", ".meshc-cache", "gitops", ".github"))
    saved = _without_keys()
    try:
        code, _, err = run_meshc("export", "flux", "development", cwd=project)
        assert code == 1 and "no repository URL" in err
        code, _, err = run_meshc("export", "flux", "development", "--repo-url",
                                 OPTIONS.repo_url, cwd=project)
        assert code == 1 and "needs an age key" in err and "Traceback" not in err
        assert not (project / "gitops").exists()  # nothing half-written
        code, _, err = run_meshc("export", "argocd", "development", "--repo-url", "u",
                                 cwd=project)
        assert code == 1 and "Argo CD cannot decrypt SOPS" in err and "meshc export flux" in err
        os.environ["SOPS_AGE_KEY_FILE"] = str(KEY)
        code, _, err = run_meshc("export", "flux", "development", "--repo-url",
                                 OPTIONS.repo_url, cwd=project)
        assert code == 0, err
        assert "2 Secret(s) encrypted anew" in err  # the slots weather-agent-blue and -green
        secret = project / "gitops/flux/development/releases/weather-agent-blue-secrets-1.yaml"
        first = secret.read_bytes()
        env = {**os.environ}
        sops = find_sops(os.environ.get("PATH")).binary
        clear = yaml.safe_load(subprocess.run(
            [sops, "decrypt", str(secret)], env=env, capture_output=True, check=True).stdout)
        part = yaml.safe_load(subprocess.run(
            [sops, "decrypt", "--extract", '["agents"]["weather"]',
             "environments/development/secrets.yaml"], cwd=project, env=env,
            capture_output=True, check=True).stdout)
        assert yaml.safe_load(clear["stringData"]["values.yaml"]) == part
        assert b"stringData:\n    values.yaml: ENC[" in first  # never plaintext on disk
        os.environ.pop("SOPS_AGE_KEY_FILE")
        code, _, err = run_meshc("export", "flux", "development", cwd=project)
        assert code == 0, err
        assert "nothing changed" in err and secret.read_bytes() == first
    finally:
        _without_keys()
        os.environ.update(saved)

def test_check_reports_stale_exports(tmp_path: Path) -> None:
    """A committed export is checked like rendered/: a meshfile change that changes the export
    is a stale-export error naming the files; an unchanged one passes, no key needed."""
    project = tmp_path / "p"
    shutil.copytree(ROOT / "tests" / "golden" / "ok-small" / "project", project)
    code, _, err = run_meshc("render", cwd=project)
    assert code == 0, err
    for engine in ("argocd", "flux"):
        code, _, err = run_meshc("export", engine, "--repo-url", OPTIONS.repo_url, cwd=project)
        assert code == 0, err
    code, _, err = run_meshc("check", cwd=project)
    assert "stale-export" not in err, err
    before = {p: p.read_bytes() for p in (project / "gitops").rglob("*") if p.is_file()}
    code, _, err = run_meshc("export", "flux", cwd=project)  # options read back: same bytes
    assert code == 0 and "nothing changed" in err
    assert before == {p: p.read_bytes() for p in (project / "gitops").rglob("*") if p.is_file()}
    mine = project / "gitops/flux/prod/releases/mine.yaml"  # a file of the user's
    mine.write_text("kind: ConfigMap\n")
    meshfile = project / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace("    needs: [api]\n", ""))  # one wave
    code, _, err = run_meshc("export", "flux", cwd=project)
    assert code == 1 and "holds files meshc did not write (releases/mine.yaml)" in err
    assert mine.read_text() == "kind: ConfigMap\n"
    mine.unlink()
    code, _, err = run_meshc("check", cwd=project)
    assert code == 1
    assert "gitops/flux/prod is stale" in err and "gitops/argocd/prod is stale" in err
    assert "changed: gitops/flux/prod/releases/worker.yaml" in err
    assert "changed: gitops/argocd/prod/apps/worker.yaml" in err


def test_ci_github_workflows_validate(tmp_path: Path, projects: dict) -> None:
    out = tmp_path / "workflows"
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "ci", "github", "--out", str(out))
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["meshc-apply.yml", "meshc-pr.yml", "meshc-promote.yml"]
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", *(str(out / n) for n in names)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    apply = yaml.safe_load((out / "meshc-apply.yml").read_text())
    jobs = apply["jobs"]
    eu, us = jobs["apply-production-eu-west"], jobs["apply-production-us-east"]
    assert eu["environment"] == "production/eu-west"                 # reviewers gate it
    assert eu["needs"] == ["apply-staging"]                           # promotion order
    assert us["needs"] == ["apply-staging", "apply-production-eu-west"]  # the rollout's stages
    assert jobs["apply-production-dr"]["needs"] == ["apply-production-eu-west",
                                                    "apply-production-us-east"]
    assert "environment" not in jobs["apply-staging"]               # unprotected: --yes
    assert "meshc apply staging --yes" in str(jobs["apply-staging"]["steps"])
    # the example commits its Flux export of development: Flux applies it, not the workflow
    assert (ROOT / "gitops/flux/development").is_dir() and "apply-development" not in jobs
    assert "not by this workflow: development" in (out / "meshc-apply.yml").read_text()
    pr = (out / "meshc-pr.yml").read_text()
    assert "meshc plan production/eu-west -o markdown" in pr and "azure/setup-helm" in pr
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "ci", "github", "--out", str(out))
    assert code == 0 and "up to date" in err
    compiler = load_project(ProjectFiles(ROOT, {}))
    assert workflow_files(compiler.project, CiOptions(exported=("development",))) == \
        {n: (out / n).read_text() for n in names}
    assert "Install Helm 3" not in (out / "meshc-apply.yml").read_text()  # all for Helm 4


def test_ci_github_installs_helm_3_for_the_environments_planned_for_it(tmp_path: Path) -> None:
    """`helmVersion: 3` on staging: its apply job puts Helm 3 on PATH after Helm 4 (so `helm`
    is the one its plan is for); the other jobs keep Helm 4 alone."""
    project = tmp_path / "p"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".git", "rendered", "gitops",
                                                                 ".meshc*", "tests", "docs"))
    meshfile = project / "meshfile.yaml"
    text = meshfile.read_text()
    assert "\n  staging:\n" in text
    meshfile.write_text(text.replace("\n  staging:\n", "\n  staging:\n    helmVersion: 3\n", 1))
    compiler = load_project(ProjectFiles(project, {}))
    apply = yaml.safe_load(workflow_files(compiler.project)["meshc-apply.yml"])["jobs"]
    names = {job: [step.get("name", step.get("uses")) for step in apply[job]["steps"]]
             for job in apply}
    staging = names["apply-staging"]
    assert staging.index("Install Helm 3 (the plan of staging is for Helm 3)") == \
        staging.index("meshc apply staging") - 1
    assert staging.index("Install Helm 4 (meshc renders the Helm charts with it)") < \
        staging.index("Install Helm 3 (the plan of staging is for Helm 3)")
    assert not any("Helm 3" in name for job, steps in names.items() if job != "apply-staging"
                   for name in steps)


def test_plan_markdown_escapes_user_text() -> None:
    """Table cells escape pipes and HTML; a change holding backticks gets a longer fence."""
    from compiler.plan.diff import FieldChange, ReleaseReview, Review
    from compiler.plan.markdown import format_markdown
    from compiler.plan.plan import Plan, Step

    step = Step("api", 0, (), "default", "rendered/prod/api", ("helm",), False)
    plan = Plan("prod", True, "ctx", (step,), 1, (("old", "condition a|b is <false>"),),
                ("api: needs x | y",))
    change = FieldChange(("motd",), "changed", "```", "````x")
    review = Review("rendered/prod", (ReleaseReview("api", "changed", (change,)),))
    text = format_markdown(plan, review)
    assert "| 0 | `api` | `default` |" in text and "**protected**" in text
    assert "`old` (condition a\\|b is &lt;false&gt;)" in text
    assert "- api: needs x \\| y" in text
    assert "\n`````diff\n" in text and "\n`````\n" in text  # longer than the 4 backticks inside
    assert "<summary><code>api</code> (wave 0): changed: 1 change</summary>" in text
