"""Regions: ENV/REGION addressing, the rollout's stages, and the shared-cluster check, on a copy
of the ``ok-regions`` golden project (its goldens hold the plans and the rendered layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import GOLDEN, run_meshc

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
    assert "Traceback" not in err
    shared = ("'production/us-east' and 'production/eu-west' both deploy to kube-context "
              "'prod-eu', namespace maps-production")
    assert (shared in err) is found, err
    assert ("[region-cluster-shared]" in err) is found
