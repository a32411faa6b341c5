"""Plans for Helm 3 or Helm 4 (docs/helm-versions.md): ``helmVersion:``, ``--helm-version``,
the flags each gets, options Helm 3 lacks, the plan's record of its Helm, and the check of the
binary before anything runs.

In-process and cheap: a small project of one Jinja chart, helm recorded by an injected runner
or a stand-in script answering ``helm version --short``. The real Helm 3.15.3 and Helm 4.3.1
run whole plans in tests/test_helm_judge_plans.py; here the real Helm 3 only shows what
rendering does with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_meshc
from realtools import helm3

from compiler.core.diagnostics import CompileError
from compiler.core.process import Completed, helm_major
from compiler.model.model import HelmVersion
from compiler.ops.apply import read_plan, reviewed_plan
from compiler.ops.helm_version import require_helm_version
from compiler.plan.plan import format_sh

MESHFILE = """\
apiVersion: meshc/v1
helmVersion: 3
defaults:
  helm: {{rollbackOnFailure: true, forceReplace: true, wait: true, timeout: 5m{extra}}}
environments:
  dev: {{}}
  prod:
    helmVersion: 4
    kubeContext: prod-main
  prod-dr:
    inherits: prod
releases:
  app: {{chart: charts/app}}
  web: {{chart: charts/app, needs: [app]}}
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ release.name }}
data: {a: "1"}
"""


def write_project(root: Path, extra: str = "") -> Path:
    (root / "charts" / "app").mkdir(parents=True)
    (root / "charts" / "app" / "configmap.yaml.j2").write_text(CONFIGMAP, encoding="utf-8")
    (root / "meshfile.yaml").write_text(MESHFILE.format(extra=extra), encoding="utf-8")
    return root


def plan(root: Path, env: str, *options: str) -> dict[str, Any]:
    code, out, err = run_meshc("-f", str(root / "meshfile.yaml"), "plan", env, "-o", "json",
                               *options)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("helm-versions"))


# --- which Helm, and its flags -----------------------------------------------------------------

def test_the_top_level_helm_version_and_an_environment_s_own(project: Path) -> None:
    dev, prod, dr = (plan(project, env) for env in ("dev", "prod", "prod-dr"))
    assert (dev["helmVersion"], prod["helmVersion"], dr["helmVersion"]) == (3, 4, 4)  # inherited
    three, four = dev["steps"][0]["argv"], prod["steps"][0]["argv"]
    assert three[-5:] == ["--atomic", "--wait", "--timeout", "5m", "--force"]
    assert four[-5:] == ["--rollback-on-failure", "--wait", "--timeout", "5m", "--force-replace"]
    assert not {"--rollback-on-failure", "--force-replace"} & set(three)
    assert not {"--atomic", "--force"} & set(four)
    # the rest of the command line is the same (but for prod's kube-context)
    assert [a.replace("dev", "ENV") for a in three[:-5]] == \
        [a.replace("prod", "ENV") for a in four[:-5] if a not in ("--kube-context", "prod-main")]


def test_helm_version_on_the_command_line_wins(project: Path) -> None:
    prod = plan(project, "prod", "--helm-version", "3")
    assert prod["helmVersion"] == 3
    assert "--atomic" in prod["steps"][0]["argv"]
    dev = plan(project, "dev", "--helm-version", "4")
    assert dev["helmVersion"] == 4 and "--rollback-on-failure" in dev["steps"][0]["argv"]
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "dev",
                             "--helm-version", "5")
    assert code == 2 and "'5' is not one of '3', '4'" in err


def test_the_text_plan_says_which_helm(project: Path) -> None:
    code, out, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "dev")
    assert code == 0, err
    assert out.splitlines()[2] == ("  Helm 3 commands: helm upgrade --install … "
                                   "--create-namespace --atomic --wait --timeout 5m --force")
    code, out, _ = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "dev",
                             "--helm-version", "4")
    assert "  Helm 4 commands: helm upgrade --install … --create-namespace " \
           "--rollback-on-failure --wait --timeout 5m --force-replace\n" in out


def test_server_side_is_helm4_s(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", ", serverSide: false")
    assert plan(root, "prod")["steps"][0]["argv"][-1] == "--server-side=false"
    assert not any(a.startswith("--server-side") for a in plan(root, "dev")["steps"][0]["argv"])


def test_an_option_helm3_lacks_is_an_error_at_the_option(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", ", serverSide: true")
    assert plan(root, "prod")["steps"][0]["argv"][-1] == "--server-side=true"
    code, out, err = run_meshc("-f", str(root / "meshfile.yaml"), "plan", "dev")
    assert code == 1 and out == ""
    assert err.count("error:") == 1  # one error for the one place, naming both releases
    assert ("meshfile.yaml:4:80: error: helm option 'serverSide' (--server-side) has no Helm 3 "
            "equivalent: environment 'dev' targets Helm 3 (releases app, web)") in err
    assert "^^^^^^^^^^" in err and "Traceback" not in err
    assert "= note: helmVersion: 3 is set at meshfile.yaml:2:14" in err
    assert "target Helm 4 (helmVersion: 4)" in err
    code, _, err = run_meshc("-f", str(root / "meshfile.yaml"), "plan", "prod",
                             "--helm-version", "3")
    assert code == 1 and "environment 'prod' targets Helm 3" in err
    assert "= note: --helm-version 3 on the command line" in err


def test_the_helm_version_is_located_in_errors(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    text = (root / "meshfile.yaml").read_text(encoding="utf-8")
    (root / "meshfile.yaml").write_text(text.replace("helmVersion: 4", "helmVersion: v4"))
    code, _, err = run_meshc("-f", str(root / "meshfile.yaml"), "plan", "dev")
    assert code == 1
    assert ("meshfile.yaml:8:18: error: environment 'prod': helmVersion must be 3 or 4, "
            "found 'v4'") in err


# --- the plan's record of its Helm -------------------------------------------------------------

def test_a_plan_reads_back_with_its_helm_version(project: Path) -> None:
    data = plan(project, "dev")
    assert read_plan(json.dumps(data), "p.json").helm_version == 3
    del data["helmVersion"]  # a plan from before the key: Helm 4's
    assert read_plan(json.dumps(data), "p.json").helm_version == 4
    for bad in ("3", 5, None):
        with pytest.raises(CompileError) as caught:
            read_plan(json.dumps({**data, "helmVersion": bad}), "p.json")
        assert '"helmVersion" must be 3 or 4' in caught.value.diagnostics[0].message


def test_a_reviewed_plan_for_another_helm_is_refused(project: Path) -> None:
    from compiler.core.files import ProjectFiles
    from compiler.pipeline import compile_environment, find_environment, load_project

    compiler = load_project(ProjectFiles(project))
    env = find_environment(compiler.project, "dev")
    fresh = compile_environment(compiler, env).plan
    made = plan(project, "dev", "--helm-version", "4")
    with pytest.raises(CompileError) as caught:
        reviewed_plan(json.dumps(made), "plan.json", env, fresh)
    (diag,) = caught.value.diagnostics
    assert diag.message == ("plan.json is a plan for Helm 4, and this apply makes plans for "
                            "Helm 3")
    assert "pass --helm-version 4" in (diag.help or "")


# --- the binary, before anything runs ----------------------------------------------------------

def _answering(text: str, code: int = 0) -> Any:
    calls: list[list[str]] = []

    def runner(argv: Any, cwd: Path, env: Any = None) -> Completed:
        calls.append(list(argv))
        return Completed(code, text, "" if code == 0 else "boom")

    runner.calls = calls  # type: ignore[attr-defined]
    return runner


def test_require_helm_version() -> None:
    runner = _answering("v3.15.3+g3bb50bb\n")
    found = require_helm_version("/bin/helm", 3, "dev", runner)
    assert (found.major, found.version) == (3, "v3.15.3+g3bb50bb")
    assert runner.calls == [["/bin/helm", "version", "--short"]]
    with pytest.raises(CompileError) as caught:
        require_helm_version("/bin/helm", HelmVersion(4, None, "default"), "prod", runner)
    (diag,) = caught.value.diagnostics
    assert diag.message == ("/bin/helm is Helm v3.15.3+g3bb50bb, but the plan of 'prod' is for "
                            "Helm 4: refusing before any step runs")
    assert diag.notes == ("Helm 4 is the default (no helmVersion: in the meshfile)",)
    assert diag.help == ("run it with a Helm 4 binary, or make the plan for Helm 3: "
                         "`helmVersion: 3` in meshfile.yaml (top level, or the environment's), "
                         "or `--helm-version 3` on the meshc command line")
    with pytest.raises(CompileError) as caught:
        require_helm_version("/bin/helm", 4, "prod", _answering("", 2))
    assert caught.value.diagnostics[0].message == ("cannot tell which Helm /bin/helm is: "
                                                   "`helm version --short` said: boom")
    assert [helm_major(t) for t in ("v4.3.1+gc0d08d0", "v3.15.3", "3.2", "nope")] == \
        [4, 3, 3, None]


def test_the_shell_plan_checks_helm_first(project: Path, tmp_path: Path) -> None:
    """The script stops before its first step when ``helm`` is of another major version; a
    stand-in ``helm`` prints the version and records every other call."""
    code, script, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "dev",
                                  "-o", "sh")
    assert code == 0, err
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "helm").write_text(
        '#!/bin/sh\nif [ "$1" = version ]; then echo "$HELM_SAYS"; exit 0; fi\n'
        'echo "$@" >> "$HELM_LOG"\n', encoding="utf-8")
    (bin_dir / "helm").chmod(0o755)
    log = tmp_path / "calls"
    for says, ok in (("v4.3.1+gc0d08d0", False), ("v3.15.3+g3bb50bb", True)):
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.defpath}", "HELM_SAYS": says,
               "HELM_LOG": str(log)}
        done = subprocess.run(["bash", "-c", script], cwd=project, env=env, text=True,
                              capture_output=True, check=False)
        if ok:
            assert done.returncode == 0, done.stderr
            assert len(log.read_text().splitlines()) == 2  # app, web
        else:
            assert done.returncode == 1 and not log.exists()
            assert done.stderr == (
                "meshc: this plan is for Helm 3, but helm is v4.3.1+gc0d08d0\n"
                "meshc: run it with a Helm 3 binary, or make the plan for Helm 4: `helmVersion: "
                "4` in meshfile.yaml (top level, or the environment's), or `--helm-version 4` "
                "on the meshc command line\n")
    assert "helm version --short" in format_sh(read_plan(json.dumps(plan(project, "dev")),
                                                         "p"), "meshfile.yaml")


# --- rendering Helm charts with a Helm 3 ------------------------------------------------------

def test_a_helm3_does_not_render_helm_charts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Helm 3 as MESHC_HELM: the example's Helm charts are the committed review
    (unchanged inputs), with a warning naming it; a change that needs them rendered again is an
    error naming the Helm 3, not a silent Helm 3 render."""
    monkeypatch.setenv("MESHC_HELM", str(helm3()))
    meshfile = str(ROOT / "meshfile.yaml")
    code, out, err = run_meshc("-f", meshfile, "plan", "production", "--helm-version", "3")
    assert code == 0, err
    assert f"warning: {helm3()} is Helm v3.15.3+g3bb50bb, and meshc renders Helm charts with " \
           "Helm 4 only: the Helm-chart releases (platform, prometheus, grafana, alertmanager) " \
           "are the committed review" in err
    assert "  Helm 3 commands: helm upgrade --install … --create-namespace --atomic" in out
    code, _, err = run_meshc("-f", meshfile, "plan", "production", "--set",
                             "platform.replicaCount=5")
    assert code == 1
    assert f"error: {helm3()} is Helm v3.15.3+g3bb50bb, and meshc renders Helm charts with " \
           "Helm 4 only; left unrendered: platform" in err
    assert "install Helm 4 and set MESHC_HELM to its path" in err


def test_sys_executable_is_no_helm() -> None:  # the version parser on a real non-helm answer
    done = subprocess.run([sys.executable, "--version"], capture_output=True, text=True,
                          check=False)
    assert helm_major(done.stdout) is None
