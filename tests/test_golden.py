"""Golden projects: input project → expected rendered tree, plans, stdout, stderr, exit code.

Each ``tests/golden/<case>/`` holds ``case.yaml`` (the runs) and either ``project/`` (the input)
or ``project: ROOT`` in case.yaml for the example at the repository's top level. For every run
``<name>``: ``<name>.stdout``, ``<name>.stderr``, and, for runs writing to ``{out}``,
``<name>.tree/`` — except the example's render, whose golden tree is the committed ``rendered/``.
Regenerate with ``pytest --update-goldens`` and review the diff.

A case may prepare a scratch copy of its project before each run: ``setup:`` lists meshc
invocations to run there first (e.g. ``[render]``, so ``meshc check`` finds fresh output without
a committed ``rendered/`` in the golden project), and ``edit:`` maps project paths to the text
written afterwards (e.g. to make one rendered file stale). ``needs: helm`` gives the case the real
Helm 4 through $MESHC_HELM (a Helm chart to render); without one the case skips, loudly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import GOLDEN, ROOT, check_text, check_tree, run_meshc

CASES = sorted(p.parent.name for p in GOLDEN.glob("*/case.yaml"))


def _runs(case: str) -> list[tuple[str, dict]]:
    spec = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())
    return [(run["name"], run) for run in spec["runs"]]


def _project(case: str) -> Path:
    spec = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())
    return ROOT if spec.get("project") == "ROOT" else GOLDEN / case / "project"


def _prepared(case: str, project: Path, scratch: Path) -> Path:
    """The project itself, or a scratch copy after the case's ``setup`` runs and ``edit``s."""
    spec = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())
    if not spec.get("setup") and not spec.get("edit"):
        return project
    shutil.copytree(project, scratch)
    for args in spec.get("setup") or ():
        code, _, err = run_meshc(*map(str, args), cwd=scratch)
        assert code == 0, err
    for path, text in (spec.get("edit") or {}).items():
        (scratch / path).parent.mkdir(parents=True, exist_ok=True)
        (scratch / path).write_text(text, encoding="utf-8")
    return scratch


PARAMS = [pytest.param(case, name, run, id=f"{case}/{name}")
          for case in CASES for name, run in _runs(case)]


@pytest.fixture(autouse=True)
def no_helm(monkeypatch: pytest.MonkeyPatch) -> None:
    """``meshc check`` runs its helm rule only where it finds a helm binary ($MESHC_HELM, or
    helm on PATH): the goldens are made without one, so they read the same on every machine
    (they show the rule's "skipped" note). tests/test_check_helm.py runs the rule with the real
    Helm."""
    monkeypatch.delenv("MESHC_HELM", raising=False)
    monkeypatch.setenv("PATH", "")


def _needs_helm(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A case with ``needs: helm`` (a Helm chart to render) gets the real Helm 4 through
    $MESHC_HELM; it skips, loudly, where there is none (fails under CI)."""
    spec = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())
    if spec.get("needs") == "helm":
        from realtools import helm4

        monkeypatch.setenv("MESHC_HELM", str(helm4()))


@pytest.mark.parametrize(("case", "name", "run"), PARAMS)
def test_golden(case: str, name: str, run: dict, tmp_path: Path, update_goldens: bool,
                monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_helm(case, monkeypatch)
    project = _prepared(case, _project(case), tmp_path / "project")
    out = tmp_path / "out"
    args = [str(a).replace("{out}", str(out)) for a in run["args"]]
    code, stdout, stderr = run_meshc(*args, cwd=project)
    stdout, stderr = (s.replace(str(out), "{out}") for s in (stdout, stderr))
    folder = GOLDEN / case
    check_text(folder / f"{name}.stdout", stdout, update_goldens)
    check_text(folder / f"{name}.stderr", stderr, update_goldens)
    assert code == run.get("exit", 0), stderr
    if "{out}" in " ".join(map(str, run["args"])) and code == 0:
        expected = ROOT / "rendered" if project == ROOT else folder / f"{name}.tree"
        check_tree(expected, out, update_goldens)
    if code != 0:
        assert "Traceback" not in stderr
