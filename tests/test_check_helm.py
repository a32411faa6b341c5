"""`meshc check`'s helm rule (compiler/check/helm.py): Helm itself lints and templates every
local wrapper chart, and what it says becomes findings located on the release.

The real Helm 4 comes from tests/realtools.py (``helm4()`` skips these tests with the reason where
it cannot be had, and fails them under ``CI=true``) and is named by ``MESHC_HELM``, as a user
would. Two cases use a runner handed to the command instead, because the real Helm cannot
produce them offline, and say so: a Helm whose ``template`` installs other documents than the
compiled manifests (the wrapper chart exists so that this never happens), and a recorded
``helm lint`` of several charts, parsed. Without a helm binary the rule is a note, never an
error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GOLDEN, ROOT, check_text, run_meshc
from realtools import helm3, helm4

from compiler.check.helm import SKIPPED, lint_complaints
from compiler.cli.main import main
from compiler.cli.support import Tools
from compiler.core.files import ProjectFiles
from compiler.core.process import Completed, run_process
from compiler.output.journal import CACHE_DIR
from compiler.pipeline import compile_environment, load_project

BASE = GOLDEN / "check-ok" / "project"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "check-helm"

# A Service named `api.v2`: a DNS-1123 subdomain, so meshc renders it and its other rules pass
# it, but not the DNS-1035 label Kubernetes requires of a Service's name: Helm's lint rejects it.
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ release.name }}.v2
spec:
  selector: {app: {{ release.name }}}
  ports:
    - port: 80
"""


@pytest.fixture
def helm(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real Helm 4, named by MESHC_HELM."""
    path = helm4()
    monkeypatch.setenv("MESHC_HELM", str(path))
    return path


@pytest.fixture
def no_helm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MESHC_HELM, and a PATH without helm."""
    monkeypatch.delenv("MESHC_HELM", raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def project(tmp_path: Path, files: Mapping[str, str] = {}, meshfile_tail: str = "") -> Path:
    """A rendered copy of the check-ok golden project, with ``files`` added and
    ``meshfile_tail`` appended to its meshfile."""
    root = tmp_path / "project"
    shutil.copytree(BASE, root, ignore=shutil.ignore_patterns(CACHE_DIR, "rendered"))
    for path, text in files.items():
        (root / path).write_text(text, encoding="utf-8")
    if meshfile_tail:
        with (root / "meshfile.yaml").open("a", encoding="utf-8") as meshfile:
            meshfile.write(meshfile_tail)
    code, _, err = run_meshc("render", cwd=root)
    assert code == 0, err
    return root


def check(root: Path, *args: str, runner: object = None) -> tuple[int, str, str]:
    """``meshc check ARGS`` in ``root``; with ``runner``, helm runs through it (click's obj)."""
    if runner is None:
        return run_meshc("check", *args, cwd=root)
    old = Path.cwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(main, ["check", *args], obj=Tools(runner),  # type: ignore
                                    catch_exceptions=False, prog_name="meshc")
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def _line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


# --- the real Helm judges -----------------------------------------------------------------------

def test_the_example_passes_the_helm_rule(helm: Path) -> None:
    """Every local release of every environment of the example, linted and templated by the
    real Helm 4: no finding, and the summary says how many charts Helm judged."""
    compiler = load_project(ProjectFiles(ROOT))
    local = sum(1 for env in compiler.project.deployable
                for o in compile_environment(compiler, env).releases if o.manifests is not None)
    code, out, _ = check(ROOT, "-o", "json", "--no-stale")
    report = json.loads(out)
    assert [f for f in report["findings"] if f["rule"] == "helm"] == []
    assert code == 0, report["findings"]
    assert report["helm"] == {"version": "v4.3.1", "charts": local}
    messages = [n["message"] for n in report["notes"]]
    assert not any(m.startswith("helm rule skipped") for m in messages)
    assert any("templated with stand-in secret values" in m for m in messages), messages
    code, _, err = check(ROOT, "--no-stale")
    assert code == 0, err
    assert f", {local} charts judged by Helm v4.3.1; 0 errors" in err


def test_helm_runs_isolated_with_the_plan_arguments(helm: Path, tmp_path: Path) -> None:
    """Every helm process runs in a private temporary folder (removed afterwards) with an
    environment of its own: HOME and Helm's folders there, a kubeconfig naming an unreachable
    loopback server, nothing of ours. ``helm template`` gets exactly the plan step's arguments."""
    root = project(tmp_path)
    calls: list[tuple[list[str], Path, dict[str, str]]] = []

    def recording(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
                  ) -> Completed:
        assert env is not None
        calls.append((list(argv), cwd, dict(env)))
        return run_process(argv, cwd, env)

    code, _, err = check(root, runner=recording)
    assert code == 0, err
    assert "2 charts judged by Helm v4.3.1" in err
    commands = sorted(argv[1] for argv, _, _ in calls)
    assert commands in (["lint", "lint", "template", "template", "version"],
                        ["lint", "template", "template", "version"])  # one lint batch per core
    plans = {env: json.loads((root / f"rendered/{env}/plan.json").read_text())
             for env in ("dev", "prod")}
    for argv, cwd, env in calls:
        assert argv[0] == str(helm)
        assert set(env) == {"PATH", "HOME", "KUBECONFIG", "HELM_CONFIG_HOME", "HELM_CACHE_HOME",
                            "HELM_DATA_HOME", "LANG"}
        home = Path(env["HOME"])
        assert cwd.parent == home.parent and home != Path.home()
        assert all(Path(env[k]).is_relative_to(home) for k in env if k.startswith("HELM_"))
        assert not cwd.exists(), "the temporary folder is left behind"
        if argv[1] == "template":
            step = next(s for plan in plans.values() for s in plan["steps"]
                        if s["release"] == argv[2] and s["chart"] == argv[3])
            assert argv[2:] == step["argv"][3:]
    kubeconfigs = {env["KUBECONFIG"] for _, _, env in calls}
    assert len(kubeconfigs) == 1


def test_a_chart_helm_rejects_is_a_finding_on_the_release(helm: Path, tmp_path: Path,
                                                          update_goldens: bool) -> None:
    """A Service name Helm's lint refuses: one error per environment, located on the release
    in the meshfile, naming the rendered manifest and the template line that wrote the name;
    exit 1. Every other rule passes this project."""
    root = project(tmp_path, {"charts/app/service.yaml.j2": SERVICE})
    code, _, err = check(root)
    check_text(FIXTURES / "service-name.stderr", err, update_goldens)
    assert code == 1
    code, out, _ = check(root, "-o", "json")
    findings = json.loads(out)["findings"]
    assert {f["rule"] for f in findings} == {"helm"}
    assert [f["environment"] for f in findings] == ["dev", "prod"]
    for finding in findings:
        env = finding["environment"]
        assert (finding["file"], finding["line"]) == ("meshfile.yaml",
                                                      _line_of(root / "meshfile.yaml", "  api:"))
        assert finding["severity"] == "error"
        assert finding["message"].startswith(
            "release 'api': helm lint --strict: [WARNING] templates/manifests.yaml: object name "
            'does not conform to Kubernetes naming requirements: "api.v2"')
        assert f"rendered at rendered/{env}/api/manifests/service-api.v2.yaml:4" in \
            finding["notes"]
        assert "written by charts/app/service.yaml.j2:4:3" in finding["notes"]


def test_policies_helm_off_silences_the_rule(helm: Path, tmp_path: Path) -> None:
    """``policies: {helm: off}``: Helm does not run, no finding, no note; on one environment
    only, the other environment's finding stays."""
    root = project(tmp_path, {"charts/app/service.yaml.j2": SERVICE},
                   "policies:\n  helm: off\n")
    code, _, err = check(root)
    assert code == 0, err
    assert "helm" not in err
    root = project(tmp_path / "dev-only", {"charts/app/service.yaml.j2": SERVICE})
    meshfile = root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(
        "    values: [env/dev.yaml]\n", "    values: [env/dev.yaml]\n    policies: {helm: off}\n"))
    code, out, _ = check(root, "-o", "json", "--no-stale")  # the meshfile changed since render
    report = json.loads(out)
    assert code == 1
    assert [(f["rule"], f["environment"]) for f in report["findings"]] == [("helm", "prod")]
    assert report["helm"]["charts"] == 1


def test_a_plan_for_helm3_is_judged_with_helm4_s_spelling(helm: Path, tmp_path: Path) -> None:
    """``helmVersion: 3``: the steps say ``--atomic`` and ``--force``, which Helm 4 only takes
    as deprecated aliases; the rule judges them as Helm 4 spells them (docs/helm-versions.md),
    and a sound project passes."""
    root = project(tmp_path, meshfile_tail="helmVersion: 3\ndefaults:\n  helm: "
                   "{rollbackOnFailure: true, forceReplace: true}\n")
    assert "--atomic" in (root / "rendered" / "prod" / "plan.json").read_text()
    code, out, err = check(root, "-o", "json")
    assert code == 0, err
    assert json.loads(out)["helm"]["charts"] >= 2


# --- cases the real Helm cannot produce offline ------------------------------------------------

def test_documents_other_than_the_compiled_manifests_are_an_error(helm: Path,
                                                                  tmp_path: Path) -> None:
    """Helm installing other documents than the reviewed manifests (the wrapper chart exists so
    that it never does; a post-renderer or another Helm build could): simulated by a runner that
    runs the real Helm and alters the Deployment in its ``template`` output."""
    root = project(tmp_path)

    def altering(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
                 ) -> Completed:
        done = run_process(argv, cwd, env)
        if argv[1] != "template" or argv[2] != "api" or "rendered/prod/" not in argv[3]:
            return done
        assert "replicas: 2\n" in done.stdout
        return Completed(done.returncode, done.stdout.replace("replicas: 2\n", "replicas: 3\n"),
                         done.stderr)

    code, out, _ = check(root, "-o", "json", runner=altering)
    assert code == 1
    (finding,) = json.loads(out)["findings"]
    assert finding["rule"] == "helm" and finding["environment"] == "prod"
    assert finding["message"] == (
        "release 'api': helm template yields other documents than the compiled manifests: Helm "
        "would install something other than what was reviewed [helm]")
    assert "not installed as compiled: rendered/prod/api/manifests/deployment-api.yaml" in \
        finding["notes"]
    assert "installed but not compiled: Deployment/api" in finding["notes"]


def test_helm_lint_of_several_charts_is_read_chart_by_chart() -> None:
    """Helm 4.3.1's own words, recorded from one ``helm lint --strict`` of five charts (a clean
    one, two with warnings, a broken YAML, a missing and an unreadable chart)."""
    recorded = (FIXTURES / "lint-several.stdout").read_text(encoding="utf-8")
    folders = ["chart", "bad", "bad2", "nothere", "bad4", "bad3"]
    said = lint_complaints(folders, Completed(1, recorded, "Error: 6 chart(s) linted, 4 chart(s) "
                                                       "failed\n"))
    assert said["chart"] == () and said["bad3"] == ()
    assert [re.sub(r":.*", "", s) for s in said["bad"]] == \
        ["[WARNING] templates/manifests.yaml"] * 2
    assert said["bad2"] == (("[ERROR] templates/manifests.yaml: unable to parse YAML: error "
                             "converting YAML to JSON: yaml: line 7: did not find expected ',' "
                             "or ']'"),)
    assert said["nothere"] == (("Error unable to check Chart.yaml file in chart: stat "
                                "nothere/Chart.yaml: no such file or directory"),)
    assert said["bad4"][0] == ("[ERROR] Chart.yaml: unable to parse YAML error converting YAML "
                               "to JSON: yaml: line 1: did not find expected node content")
    assert len(said["bad4"]) == 3
    missing = lint_complaints(["gone"], Completed(1, "", "Error: boom\n"))
    assert missing == {"gone": ("boom",)}


# --- without helm -------------------------------------------------------------------------------

def test_without_helm_the_rule_is_skipped_with_one_note(no_helm: None, tmp_path: Path) -> None:
    root = project(tmp_path, {"charts/app/service.yaml.j2": SERVICE})
    code, _, err = check(root)
    assert code == 0, err
    assert err.count("helm rule skipped") == 1
    assert f"note: {SKIPPED}\n" in err
    assert SKIPPED == ("helm rule skipped: no helm binary (set MESHC_HELM or put helm on PATH); "
                       "wrapper charts were not linted or templated by Helm")
    assert "judged by Helm" not in err
    code, out, _ = check(root, "-o", "json")
    report = json.loads(out)
    assert code == 0 and report["passed"] and report["helm"] is None
    assert [(n["rule"], n["severity"], n["message"]) for n in report["notes"]] == [
        ("helm", "note", SKIPPED)]
    code, out, _ = check(root, "-o", "github")
    assert code == 0 and out.count("::notice title=meshc check%3A helm::helm rule skipped") == 1


def test_a_helm_variable_naming_nothing_is_a_note_saying_so(
        no_helm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    monkeypatch.setenv("MESHC_HELM", str(tmp_path / "nowhere" / "helm"))
    code, _, err = check(root)
    assert code == 0, err
    assert err.count("helm rule skipped") == 1
    assert f"  = note: MESHC_HELM={tmp_path / 'nowhere' / 'helm'}: not an executable file\n" in err


def test_a_helm_3_is_skipped_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Helm 3 (3.15.3) does not judge: the review is Helm 4's render (and a Helm 4
    plan's flags, ``--rollback-on-failure``, are unknown to it). A Helm 3 on PATH (CI images
    carry one) is a note, not an error."""
    old_helm = helm3()
    root = project(tmp_path, {"charts/app/service.yaml.j2": SERVICE})
    monkeypatch.setenv("MESHC_HELM", str(old_helm))
    code, _, err = check(root)
    assert code == 0, err
    assert err.count("helm rule skipped") == 1
    assert (f"note: helm rule skipped: {old_helm} is Helm v3.15.3; the rule judges with Helm 4, "
            "which renders the review (set MESHC_HELM to a Helm 4 binary)\n") in err


def test_a_helm_that_does_not_run_is_an_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    false = shutil.which("false")
    if false is None:
        pytest.skip("no `false` command")
    root = project(tmp_path)
    monkeypatch.setenv("MESHC_HELM", false)
    code, _, err = check(root)
    assert code == 1
    assert f"error: {false} does not run (`helm version` exit 1): (no output) [helm]" in err

