"""Local Helm charts rendered by the real ``helm template`` (compiler/render/helm_chart.py).

The golden project ``tests/golden/helm-chart`` (helpers, a subchart, a hook, a CRD, a values
schema) is rendered by meshc and compared, document for document, with Helm's own rendering of
the same chart with the same values layered as Helm layers them; renders in fresh interpreters
under different hash seeds give the same bytes; the error cases are located diagnostics. The
goldens under tests/golden/ (``needs: helm``) hold the exact texts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import GOLDEN, run_meshc
from realtools import helm4, run_helm
from test_determinism import HASH_SEEDS, assert_same_tree, meshc_subprocess, read_tree

from compiler.core.process import Completed
from compiler.render.helm_chart import calls, project_path, split_sources

PROJECT = GOLDEN / "helm-chart" / "project"
CLUSTER_SCOPED = {"CustomResourceDefinition"}


@pytest.fixture
def helm(monkeypatch: pytest.MonkeyPatch) -> Path:
    path = helm4()
    monkeypatch.setenv("MESHC_HELM", str(path))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns(".meshc-cache"))
    return copy


def _identity(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["apiVersion"], doc["kind"], doc["metadata"]["name"]


def _helm_documents(helm: Path, project: Path, home: Path) -> list[dict[str, Any]]:
    """Helm's rendering of the chart: chart defaults, then the environment's values for the
    release as one -f file (as Helmfile passes them)."""
    env_values = yaml.safe_load((project / "env" / "prod.yaml").read_text())["web"]
    values = home.parent / "web-values.yaml"
    values.write_text(yaml.safe_dump(env_values))
    done = run_helm(helm, ["template", "web", str(project / "charts" / "shop"), "--namespace",
                           "shop", "--kube-version", "1.31.0", "--include-crds", "-f",
                           str(values)], home)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    for doc in docs:  # meshc writes the namespace every namespaced resource lands in
        if doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"].setdefault("namespace", "shop")
    return sorted(docs, key=_identity)


def test_parity_with_helm_template(helm: Path, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = run_meshc("render", "--out", str(out), cwd=project)
    assert code == 0, err
    manifests = sorted(out.glob("prod/web/manifests/*.yaml"))
    ours = sorted((yaml.safe_load(p.read_text()) for p in manifests), key=_identity)
    theirs = _helm_documents(helm, project, tmp_path / "home")
    assert [_identity(d) for d in ours] == [_identity(d) for d in theirs]
    assert ours == theirs
    kinds = {d["kind"] for d in ours}
    assert {"CustomResourceDefinition", "Job", "ConfigMap"} <= kinds  # crds/, hook, subchart
    job = next(d for d in ours if d["kind"] == "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade,pre-install"


def test_the_plan_step_installs_the_reviewed_manifests(helm: Path, project: Path,
                                                       tmp_path: Path) -> None:
    """What the plan installs (the chart itself, with the reviewed values file and the plan's
    flags) is what was reviewed, the hook included: Helm's template of exactly the plan step's
    chart and values gives the same documents (tests/test_helm_install.py runs the install)."""
    assert run_meshc("render", cwd=project)[0] == 0
    _, out, _ = run_meshc("plan", "prod", "-o", "json", cwd=project)
    [step] = json.loads(out)["steps"]
    argv = step["argv"]
    assert argv[4] == "charts/shop" and step["helmChart"] == "charts/shop"
    done = run_helm(helm, ["template", *argv[3:], "--include-crds", "--kube-version", "1.31.0"],
                    tmp_path / "home", cwd=project)
    assert done.returncode == 0, done.stderr
    installed = sorted((d for d in yaml.safe_load_all(done.stdout) if d), key=_identity)
    for doc in installed:
        if doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"].setdefault("namespace", "shop")
    reviewed = sorted((yaml.safe_load(p.read_text())
                       for p in project.glob("rendered/prod/web/manifests/*.yaml")), key=_identity)
    assert installed == reviewed


def test_patches_on_a_helm_chart_are_refused(helm: Path, project: Path) -> None:
    meshfile = project / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text() + "    patches:\n      - target: {kind: Deployment}\n"
                        "        ops: [{op: add, path: /metadata/labels/x, value: y}]\n")
    code, _, err = run_meshc("render", cwd=project)
    assert code == 1
    assert "meshfile.yaml:12:9: error: release 'web' has patches, but its Helm chart is " \
        "installed by Helm itself, which would not apply them" in err


def test_api_versions_reach_capabilities(helm: Path, project: Path) -> None:
    template = project / "charts" / "shop" / "templates" / "pdb.yaml"
    template.write_text('apiVersion: {{ if .Capabilities.APIVersions.Has '
                        '"policy/v1/PodDisruptionBudget" }}policy/v1{{ else }}policy/v1beta1'
                        '{{ end }}\nkind: PodDisruptionBudget\nmetadata: {name: web}\n'
                        'spec: {maxUnavailable: 1}\n')
    assert run_meshc("render", cwd=project)[0] == 0
    pdb = project / "rendered" / "prod" / "web" / "manifests" / "poddisruptionbudget-web.yaml"
    assert "apiVersion: policy/v1beta1" in pdb.read_text()  # Helm's built-in list lacks it
    meshfile = project / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(
        '    kubeVersion: "1.31.0"\n',
        '    kubeVersion: "1.31.0"\n    apiVersions: [policy/v1/PodDisruptionBudget]\n'))
    code, _, err = run_meshc("render", cwd=project)
    assert code == 0, err
    assert "apiVersion: policy/v1\n" in pdb.read_text()


def test_an_api_version_that_is_none_is_refused(project: Path) -> None:
    meshfile = project / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(
        '    kubeVersion: "1.31.0"\n', '    kubeVersion: "1.31.0"\n    apiVersions: [Policy v1]\n'))
    code, _, err = run_meshc("plan", "prod", cwd=project)
    assert code == 1
    assert "meshfile.yaml:7:19: error: environment 'prod': apiVersions: 'Policy v1' is not an " \
        "API version" in err


def test_same_bytes_across_hash_seeds(helm: Path, project: Path, tmp_path: Path) -> None:
    trees = []
    for seed in HASH_SEEDS:
        out = tmp_path / f"out-{seed}"
        proc = meshc_subprocess(["render", "--out", str(out), "--no-cache"], project, seed)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        trees.append(read_tree(out))
    for seed, tree in zip(HASH_SEEDS[1:], trees[1:], strict=True):
        assert_same_tree(trees[0], tree, f"PYTHONHASHSEED=0 vs {seed}")


def test_changed_chart_file_rerenders(helm: Path, project: Path, tmp_path: Path) -> None:
    """The cache covers every file of the chart folder, the subchart's included."""
    out = tmp_path / "out"
    assert run_meshc("render", "--out", str(out), cwd=project)[0] == 0
    (project / "charts/shop/charts/cache/values.yaml").write_text("enabled: true\nsize: 1Gi\n")
    (project / "env/prod.yaml").write_text(
        (project / "env/prod.yaml").read_text().replace("    size: 256Mi\n", ""))
    code, _, err = run_meshc("render", "--out", str(out), cwd=project)
    assert code == 0, err
    assert "size: 1Gi" in (out / "prod/web/manifests/configmap-web-cache.yaml").read_text()


def test_helm_version_is_part_of_the_cache_key(project: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Another helm may render differently: its version is in the key (asked once)."""
    from compiler.output import parallel

    seen: list[str] = []
    real = parallel.release_key

    def spy(compiler: Any, *args: Any) -> Any:
        seen.append(compiler.helm.version if compiler.helm else "")
        return real(compiler, *args)

    monkeypatch.setattr(parallel, "release_key", spy)
    monkeypatch.setenv("MESHC_HELM", str(helm4()))
    assert run_meshc("render", "--out", str(tmp_path / "out"), cwd=project)[0] == 0
    assert seen and all(v.startswith("v4.") for v in seen)


def test_no_helm_is_one_located_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHC_HELM", raising=False)
    monkeypatch.setenv("PATH", "")
    code, _, err = run_meshc("render", cwd=project)
    assert code == 1
    assert "meshfile.yaml:10:12: error: no helm binary to render Helm charts; left " \
           "unrendered: web" in err
    assert "MESHC_HELM" in err and "Traceback" not in err


def test_jinja_projects_never_run_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from compiler.cli.main import main
    from compiler.cli.support import Tools

    calls_made: list[list[str]] = []

    def runner(argv: Any, cwd: Path, env: Any = None, /) -> Completed:
        calls_made.append(list(argv))
        return Completed(1, "", "")

    project = tmp_path / "p"
    shutil.copytree(GOLDEN / "ok-values-schema" / "project", project,
                    ignore=shutil.ignore_patterns(".meshc-cache"))
    monkeypatch.setenv("MESHC_HELM", "/bin/true")
    result = CliRunner().invoke(main, ["-f", str(project / "meshfile.yaml"), "render", "--out",
                                       str(tmp_path / "out")], obj=Tools(runner))
    assert result.exit_code == 0, result.stderr
    assert calls_made == []


@pytest.mark.parametrize(("text", "found"), [
    ('{{ randAlphaNum 16 }}', [("randAlphaNum", 1, 4)]),
    ('x: {{ .Values.now }}\ny: {{ "randAlpha" }} {{/* uuidv4 */}}', []),
    ('{{- $p := lookup "v1" "Secret" .Release.Namespace "x" -}}\n{{ now | date "2006" }}',
     [("lookup", 1, 11), ("now", 2, 4)]),
    ('{{ derivePassword 1 "long" "p" "u" "s" }} {{ sha256sum .Values.a }}', []),
    ('{{ include "x" .\n  | default (genCA "ca" 365) }}', [("genCA", 2, 14)]),
])
def test_non_reproducible_calls(text: str, found: list[tuple[str, int, int]]) -> None:
    assert [call[:3] for call in calls(text)] == found


def test_helm_output_split_by_source() -> None:
    output = ("---\n# Source: shop/templates/a.yaml\nkind: A\n---\n"
              "# Source: shop/charts/cache/templates/b.yaml\nkind: B\n")
    assert [name for name, _ in split_sources(output, "charts/shop")] == [
        "charts/shop/templates/a.yaml", "charts/shop/charts/cache/templates/b.yaml"]
    assert project_path("shop/crds/x.yaml", "charts/s") == "charts/s/crds/x.yaml"


def test_dependencies_built_from_the_lock_into_a_private_copy(helm: Path, tmp_path: Path) -> None:
    """A dependency missing from charts/ but pinned in Chart.lock is built by ``helm dependency
    build`` into a private copy; the user's chart folder is never written."""
    project = tmp_path / "p"
    (project / "charts" / "lib" / "templates").mkdir(parents=True)
    (project / "charts" / "lib" / "Chart.yaml").write_text("apiVersion: v2\nname: lib\nversion: 0.1.0\n")
    (project / "charts" / "lib" / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-lib\n")
    app = project / "charts" / "app"
    (app / "templates").mkdir(parents=True)
    (app / "Chart.yaml").write_text(
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: lib\n"
        "    version: 0.1.0\n    repository: file://../lib\n")
    done = run_helm(helm, ["dependency", "update", str(app)], tmp_path / "home")
    assert done.returncode == 0, done.stderr
    shutil.rmtree(app / "charts")  # Chart.lock stays: the dependency is pinned, not vendored
    before = sorted(p.relative_to(app).as_posix() for p in app.rglob("*"))
    (project / "meshfile.yaml").write_text(
        "apiVersion: meshc/v1\nproject: p\nenvironments:\n  prod: {}\nreleases:\n  app:\n"
        "    chart: charts/app\n")
    code, _, err = run_meshc("render", "--out", str(tmp_path / "out"), cwd=project)
    assert code == 0, err
    assert (tmp_path / "out/prod/app/manifests/configmap-app-lib.yaml").is_file()
    assert sorted(p.relative_to(app).as_posix() for p in app.rglob("*")) == before


def test_forked_workers_run_helm(helm: Path, project: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The parallel renderer's forked workers render Helm charts as the parent does."""
    from compiler.output import parallel

    serial, forked = tmp_path / "serial", tmp_path / "forked"
    assert run_meshc("render", "--no-cache", "--out", str(serial), cwd=project)[0] == 0
    monkeypatch.setattr(parallel, "PARALLEL_THRESHOLD", 0)
    code, _, err = run_meshc("render", "--no-cache", "--jobs", "2", "--out", str(forked),
                             cwd=project)
    assert code == 0, err
    assert read_tree(serial) == read_tree(forked)


def test_no_helm_names_every_release_once(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meshfile = project / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text() + "  api:\n    chart: charts/shop\n"
                        "  front:\n    chart: charts/shop\n")
    monkeypatch.delenv("MESHC_HELM", raising=False)
    monkeypatch.setenv("PATH", "")
    code, _, err = run_meshc("render", cwd=project)
    assert code == 1
    assert err.count("error:") == 1, err
    assert "left unrendered: web, api, front" in err


def test_check_passes_on_a_helm_chart(helm: Path, project: Path) -> None:
    """``meshc check`` (schemas, policies, Helm's verdict on the wrapper chart) covers the
    rendered Helm chart like any release."""
    assert run_meshc("render", cwd=project)[0] == 0
    code, out, err = run_meshc("check", cwd=project)
    assert code == 0, err
    assert "1 chart judged by Helm" in out + err


def test_helm_schema_refusal_is_located_on_the_chart_line(helm: Path, project: Path) -> None:
    """A subchart's values.schema.json is judged by Helm alone: its refusal, in Helm's words,
    sits on the release's ``chart:`` line."""
    (project / "charts/shop/charts/cache/values.schema.json").write_text(
        '{"type": "object", "properties": {"size": {"type": "integer"}}}')
    code, _, err = run_meshc("render", cwd=project)
    assert code == 1
    assert err.startswith("meshfile.yaml:10:12: error: helm template failed for release 'web': "
                          "values don't meet the specifications of the schema(s)"), err
    assert "at '/size': got string, want integer" in err
    assert "Traceback" not in err
