"""Regions: ENV/REGION addressing, the rollout's stages, and the shared-cluster check, on a copy
of the ``ok-regions`` golden project (its goldens hold the plans and the rendered layout)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import GOLDEN, run_meshc

from compiler.cli import support as cli_support

PROJECT = GOLDEN / "ok-regions" / "project"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    target = tmp_path / "maps"
    shutil.copytree(PROJECT, target)
    return target


def meshc(project: Path, *args: str) -> tuple[int, str, str]:
    return run_meshc("-f", str(project / "meshfile.yaml"), *args)


def test_steps_run_by_stage_region_wave_release(project: Path) -> None:
    code, out, err = meshc(project, "plan", "production", "-o", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["stages"] == [["eu-west"], ["us-east", "ap-south"]]
    order = [(s["stage"], s["region"], s["wave"], s["release"]) for s in plan["steps"]]
    assert order == [(0, "eu-west", 0, "db"), (0, "eu-west", 1, "api"),
                     (1, "us-east", 0, "db"), (1, "us-east", 1, "api"),
                     (1, "ap-south", 0, "db"), (1, "ap-south", 1, "api")]
    assert [r["kubeContext"] for r in plan["regions"]] == ["prod-eu", "prod-us", "prod-ap"]


def test_default_rollout_is_one_region_at_a_time(project: Path) -> None:
    meshfile = project / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(
        "    rollout: [[eu-west], [us-east, ap-south]]\n", ""))
    code, out, err = meshc(project, "plan", "production", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["stages"] == [["eu-west"], ["us-east"], ["ap-south"]]


def test_templates_see_the_region_and_render_writes_per_region(project: Path) -> None:
    code, _, err = meshc(project, "render", "production")
    assert code == 0, err
    rendered = project / "rendered" / "production"
    assert sorted(p.name for p in rendered.iterdir()) == ["ap-south", "eu-west", "us-east"]
    deployment = (rendered / "us-east" / "api" / "manifests" / "deployment-api.yaml").read_text()
    assert "region: us-east" in deployment and "environment: production" in deployment
    assert not (project / "rendered" / "staging").exists()


@pytest.mark.parametrize(("namespace", "found"), [(None, True), ("maps-us", False)])
def test_a_region_sharing_a_cluster_namespace_is_an_error(project: Path, namespace: str | None,
                                                          found: bool) -> None:
    meshfile = project / "meshfile.yaml"
    extra = f", namespace: {namespace}" if namespace else ""
    meshfile.write_text(meshfile.read_text().replace(
        "us-east: {kubeContext: prod-us,", f"us-east: {{kubeContext: prod-eu{extra},"))
    code, _, err = meshc(project, "check", "production/eu-west", "production/us-east")
    assert code == 1  # the fixture breaks other policies too: the rule is asserted below
    assert "Traceback" not in err
    shared = ("'production/us-east' and 'production/eu-west' both deploy to kube-context "
              "'prod-eu', namespace maps-production")
    assert (shared in err) is found, err
    assert ("[region-cluster-shared]" in err) is found


# --- apply: the rollout, stage by stage, against tests/fakehelm.py (no cluster here) ----------

def _apply(project: Path, tmp_path: Path, config: dict[str, Any], *args: str,
           input: str | None = None) -> tuple[int, str, str, list[dict[str, Any]]]:
    import fakehelm
    from click.testing import CliRunner

    from compiler.cli.main import main

    bin_dir, log, conf = tmp_path / "bin", tmp_path / "helm.log", tmp_path / "helm.json"
    fakehelm.install(bin_dir)
    fakehelm.configure(conf, **config)
    assert meshc(project, "render")[0] == 0
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "FAKE_HELM_LOG": str(log),
           "FAKE_HELM_CONFIG": str(conf), "MESHC_HELM": None}
    result = CliRunner().invoke(main, ["-f", str(project / "meshfile.yaml"), "apply",
                                       "production", *args], input=input, env=env,
                                catch_exceptions=False)
    calls = fakehelm.calls(log) if log.exists() else []
    return result.exit_code, result.stdout, result.stderr, calls


def _context(call: dict[str, Any]) -> str:
    return call["argv"][call["argv"].index("--kube-context") + 1]


def test_apply_runs_the_stages_in_order(project: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_support, "can_prompt", lambda: True)
    code, out, err, calls = _apply(project, tmp_path, {"sleep": {"api": 0.3}},
                                   input="production\n")
    assert code == 0, err
    assert err.count("Type 'production' to apply") == 1  # one confirmation for the rollout
    eu = [c for c in calls if _context(c) == "prod-eu"]
    later = [c for c in calls if _context(c) != "prod-eu"]
    assert [c["release"] for c in eu] == ["db", "api"] and len(later) == 4
    assert max(c["end"] for c in eu) <= min(c["start"] for c in later)  # stage 0, then 1
    us = [c for c in later if _context(c) == "prod-us"]
    ap = [c for c in later if _context(c) == "prod-ap"]
    assert us[0]["start"] < ap[-1]["end"] and ap[0]["start"] < us[-1]["end"]  # in parallel
    assert "stage 1 ap-south: done: 2 release(s)" in out and re.search(r"us-east: \[ *[0-9.]+s\]   api: done", out)


def test_a_failed_stage_stops_every_later_stage(project: Path, tmp_path: Path) -> None:
    code, out, err, calls = _apply(project, tmp_path, {"fail": {"api": "Error: boom"}},
                                   "--yes")
    assert code == 1 and "Traceback" not in err
    assert [(c["release"], _context(c)) for c in calls] == [("db", "prod-eu"), ("api", "prod-eu")]
    assert "stage 0 eu-west: failed: api" in out
    assert "stage 1 us-east: not started (an earlier stage failed)" in out
    assert "Error: boom" in err


def test_promote_into_the_environment_moves_its_regions(project: Path) -> None:
    staging = project / "environments" / "staging.yaml"
    staging.write_text("api:\n  replicas: 2\n  image: {tag: \"2.1.0\"}\n")
    code, _, err = meshc(project, "promote", "staging", "production", "--yes")
    assert code == 0, err
    assert ("also changes: production/eu-west, production/us-east, production/ap-south "
            "(they read the edited files)") in err
    assert 'image: {tag: "2.1.0"}' in (project / "environments/production/values.yaml").read_text()
    code, out, _ = meshc(project, "versions")
    assert "api      image.tag  2.1.0    2.1.0 =              2.1.0 =             2.1.0 =" in out


def test_render_again_and_in_part_and_export(project: Path) -> None:
    """Region folders nest in rendered/ and gitops/: a second render, a render of one region
    into existing output, and a second export all recognise them as meshc's."""
    assert meshc(project, "render")[0] == 0
    code, _, err = meshc(project, "render", "--no-cache")
    assert code == 0, err
    shutil.rmtree(project / "rendered" / "production")
    code, _, err = meshc(project, "render", "production/us-east", "--no-cache")
    assert code == 0, err
    assert sorted(p.name for p in (project / "rendered/production").iterdir()) == ["us-east"]
    for engine in ("flux", "argocd"):
        args = ("export", engine, "--repo-url", "https://git.example.com/maps.git")
        code, _, err = meshc(project, *args)
        assert code == 0, err
        code, _, err = meshc(project, *args)
        assert code == 0 and "(nothing changed)" in err, err
    flux = (project / "gitops/flux/production/eu-west/releases/api.yaml").read_text()
    assert "name: production-eu-west-api" in flux
    assert "meshc.io/environment: production.eu-west" in flux


def test_ci_github_applies_a_stage_after_the_previous_one(project: Path) -> None:
    import yaml

    code, _, err = meshc(project, "ci", "github")
    assert code == 0, err
    jobs = yaml.safe_load((project / ".github/workflows/meshc-apply.yml").read_text())["jobs"]
    assert {name: job.get("needs") for name, job in jobs.items()} == {
        "apply-staging": None,
        "apply-production-eu-west": ["apply-staging"],
        "apply-production-us-east": ["apply-staging", "apply-production-eu-west"],
        "apply-production-ap-south": ["apply-staging", "apply-production-eu-west"]}
    assert jobs["apply-production-us-east"]["environment"] == "production/us-east"


@pytest.mark.parametrize("fail", [None, "api"])
def test_shell_rollout_runs_the_stages_in_order(project: Path, tmp_path: Path,
                                                fail: str | None) -> None:
    """``meshc plan ENV -o sh`` of a rollout, run by bash against tests/fakehelm.py."""
    import subprocess

    import fakehelm

    assert meshc(project, "render")[0] == 0
    code, script, err = meshc(project, "plan", "production", "-o", "sh")
    assert code == 0, err
    bin_dir, log, conf = tmp_path / "bin", tmp_path / "helm.log", tmp_path / "helm.json"
    fakehelm.install(bin_dir)
    fakehelm.configure(conf, fail={fail: "Error: boom"} if fail else None)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "FAKE_HELM_LOG": str(log),
           "FAKE_HELM_CONFIG": str(conf), "MESHC_CONFIRM": "production"}
    done = subprocess.run(["bash", "-c", script], cwd=project, env=env, capture_output=True,
                          check=False,
                          text=True, timeout=60)
    calls = [(c["release"], c["argv"][c["argv"].index("--kube-context") + 1])
             for c in fakehelm.calls(log)]
    if fail is None:
        assert done.returncode == 0, done.stderr
        assert calls[:2] == [("db", "prod-eu"), ("api", "prod-eu")]
        assert sorted(calls[2:]) == [("api", "prod-ap"), ("api", "prod-us"), ("db", "prod-ap"),
                                     ("db", "prod-us")]
    else:
        assert done.returncode == 1
        assert calls == [("db", "prod-eu"), ("api", "prod-eu")]
        assert "meshc: stage 0 failed: later stages not started" in done.stderr


def test_blue_green_state_is_per_region(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(GOLDEN / "ok-bluegreen" / "project", project)
    meshfile = project / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(
        "    values: [environments/production.yaml]\n",
        "    values: [environments/production.yaml]\n"
        "    regions: {eu: {kubeContext: eu}, us: {kubeContext: us}}\n", 1))
    (project / "bluegreen" / "production.yaml").unlink()
    assert meshc(project, "render")[0] == 0
    code, _, err = meshc(project, "switch", "production/eu", "web", "--yes")
    assert code == 0, err
    assert "live: green" in (project / "bluegreen/production/eu.yaml").read_text()
    assert not (project / "bluegreen/production/us.yaml").exists()
    service = "rendered/production/{}/web/manifests/service-web.yaml"
    assert "slot: green" in (project / service.format("eu")).read_text()
    assert "slot: blue" in (project / service.format("us")).read_text()
    code, _, err = meshc(project, "switch", "production", "web", "--yes")
    assert code == 1 and "environment 'production' is deployed in regions: name one" in err


def test_render_writes_only_what_changed_in_region_folders(project: Path) -> None:
    """The incremental writer treats each region folder as an environment's: a change in one
    region rewrites only its files, a region dropped from the meshfile loses its folder, an
    interrupted region is refused by its own marker and completed by a render of it, and an
    environment that gains regions loses its flat files (and the reverse)."""
    assert meshc(project, "render")[0] == 0
    code, _, err = meshc(project, "render")
    assert code == 0 and "written 0, removed 0, unchanged 36" in err, err
    eu_west = project / "environments/production/eu-west.yaml"
    eu_west.write_text(eu_west.read_text().replace("replicas: 5", "replicas: 6"))
    code, _, err = meshc(project, "render", "-v")
    assert code == 0, err
    written = sorted(line.split()[1] for line in err.splitlines() if line.startswith("wrote "))
    assert written == ["production/eu-west/api/manifests/deployment-api.yaml",
                       "production/eu-west/api/values.yaml", "production/eu-west/plan.json"]
    meshfile = project / "meshfile.yaml"
    flat = meshfile.read_text()
    meshfile.write_text(flat.replace("      ap-south: {kubeContext: prod-ap, helm: {timeout: 20m}}\n",
                                     "").replace("[us-east, ap-south]", "[us-east]"))
    code, _, err = meshc(project, "render")
    assert code == 0 and "removed 9" in err, err
    rendered = project / "rendered"
    assert sorted(p.name for p in (rendered / "production").iterdir()) == ["eu-west", "us-east"]
    (rendered / "production/us-east/.meshc-incomplete").write_text("")
    for args in (("plan", "production"), ("plan", "production/us-east"),
                 ("apply", "production", "--dry-run")):
        code, _, err = meshc(project, *args)
        assert code == 1 and "rendered/production/us-east is incomplete" in err, (args, err)
    assert meshc(project, "plan", "production/eu-west")[0] == 0
    assert meshc(project, "render", "production/us-east")[0] == 0
    assert meshc(project, "plan", "production")[0] == 0
    meshfile.write_text(flat.replace("    values: [environments/staging.yaml]\n",
                                     "    values: [environments/staging.yaml]\n"
                                     "    regions: {one: {kubeContext: s1}}\n"))
    code, _, err = meshc(project, "render")
    assert code == 0, err
    assert sorted(p.name for p in (rendered / "staging").iterdir()) == ["one"]
    meshfile.write_text(flat)
    code, _, err = meshc(project, "render")
    assert code == 0, err
    assert (rendered / "staging/plan.json").is_file()
    assert not (rendered / "staging/one").exists()
    assert sorted(p.name for p in (rendered / "production").iterdir()) == \
        ["ap-south", "eu-west", "us-east"]
    assert not list(rendered.rglob(".meshc-*"))
