"""A render writes only what changed, and no command treats an interrupted render as current.

``meshc render`` brings each environment's folder to the new files one file at a time (a
temporary file and a rename), holding ``ENV/.meshc-incomplete`` from before the first change
until after the last (compiler/output/emit.py, docs/crash-safety.md). These tests check the
writes (nothing more than the change), the refusals (every command that reads the committed
tree), and the promise under SIGKILL at random moments.

The kill test forks children from this process, which has meshc imported, instead of starting
a new interpreter per kill (the suite's time budget): each child runs the real emit stage
(:func:`compiler.output.emit.sync_output`, the only code that writes the tree) towards
another version of the tree and is killed at a random (seeded) moment. After each kill the
readers the commands use (``committed_files`` for plan, apply and diff --rendered,
``committed_plans`` for status and the other day-2 commands, ``require_complete`` for export)
must either refuse the environment or see exactly its old or its new files. The count is
``MESHC_KILLS`` (default 200); ``MESHC_KILLS=5000 pytest tests/test_incremental_render.py``
runs a longer campaign.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_meshc
from test_determinism import copy_example, read_tree

from compiler.core import sealed
from compiler.core.diagnostics import CompileError
from compiler.core.files import ProjectFiles
from compiler.core.incomplete import INCOMPLETE, require_complete
from compiler.ops.live import committed_plans
from compiler.output.emit import sync_output
from compiler.output.journal import tree_stats
from compiler.pipeline import committed_files, load_project

KILLS = int(os.environ.get("MESHC_KILLS", "200"))

EDIT = ("registry:\n  replicaCount: 3\n", "registry:\n  replicaCount: 4\n")  # staging's values


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, chart_cache: Path,
            session_helm: Path | None) -> Path:
    """The example, rendered once (the CLI, cache on; Helm as conftest's tests have it)."""
    project = copy_example(tmp_path_factory.mktemp("incremental") / "project", reverse=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESHC_CHART_CACHE", str(chart_cache))
        if session_helm is not None:
            patch.setenv("MESHC_HELM", str(session_helm))
        code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render")
    assert code == 0, err
    return project


def _render(project: Path, *args: str) -> dict:
    code, out, err = run_meshc("-f", str(project / "meshfile.yaml"), "render", "--json", *args)
    assert code == 0, err
    result = json.loads(out)
    line = err.strip().splitlines()[-1]
    assert (f"written {len(result['written'])}, removed {len(result['removed'])}, "
            f"unchanged {result['unchanged']}") in line, line
    return result


def _inodes(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def test_writes_only_what_changed_and_removes_only_what_went(project: Path) -> None:
    out = project / "rendered"
    values = project / "environments" / "staging" / "values.yaml"
    original = values.read_text(encoding="utf-8")
    assert original.count(EDIT[0]) == 1
    noop = _render(project)
    assert noop["written"] == [] and noop["removed"] == [] and noop["upToDate"]
    before = _inodes(out)
    values.write_text(original.replace(*EDIT), encoding="utf-8")
    try:
        one = _render(project)
    finally:
        values.write_text(original, encoding="utf-8")
    # one release's value: that release's changed files and the plan's digest, nothing else
    assert one["written"] and all(p.startswith("staging/") for p in one["written"])
    assert len(one["written"]) <= 5 and one["removed"] == []
    assert one["unchanged"] == one["files"] - len(one["written"])
    after = _inodes(out)
    assert set(after) == set(before)
    touched = sorted(p for p in after if after[p] != before[p] and (out / p).is_file())
    assert touched == sorted(one["written"]), "a file not reported as written was replaced"
    assert all(after[p][0] == before[p][0] for p in after if (out / p).is_dir()), \
        "a folder was rebuilt"

    # a file meshc no longer renders, and folders it never made, go; the rest stays
    (out / "staging" / "stray.yaml").write_text("x: 1\n")
    (out / "production" / "eu-west" / "old-release" / "manifests").mkdir(parents=True)
    (out / "production" / "eu-west" / "old-release" / "manifests" / "a.yaml").write_text("a: 1\n")
    back = _render(project)
    assert sorted(back["removed"]) == ["production/eu-west/old-release/manifests/a.yaml",
                                       "staging/stray.yaml"]
    assert sorted(back["written"]) == sorted(one["written"])  # the edit undone
    assert not (out / "production" / "eu-west" / "old-release").exists()
    assert read_tree(out) == read_tree(ROOT / "rendered")

    # a named render, then a full one: the snapshot the next render trusts is the tree's
    values.write_text(original.replace(*EDIT), encoding="utf-8")
    try:
        assert _render(project, "staging")["written"]
        assert _render(project)["upToDate"]
    finally:
        values.write_text(original, encoding="utf-8")
    snapshot = sealed.read_map(project / ".meshc-cache" / "output.pickle")
    assert snapshot["stats"] == tree_stats(out), "the snapshot is not the tree"
    assert _render(project)["written"]


def test_every_reader_refuses_an_interrupted_render_until_the_next_render(project: Path) -> None:
    out = project / "rendered"
    meshfile = str(project / "meshfile.yaml")
    (out / "staging" / INCOMPLETE).write_text("")
    (out / "production" / "eu-west" / INCOMPLETE).write_text("")  # a region's folder
    message = "rendered/{} is incomplete (an interrupted render): run meshc render"
    try:
        for args in (["plan", "staging"], ["diff", "--rendered", "production/eu-west"],
                     ["plan", "production"], ["apply", "staging", "--dry-run"],
                     ["check", "staging"], ["status"],
                     ["export", "flux", "staging", "--repo-url", "https://example.com/x.git"]):
            code, _, err = run_meshc("-f", meshfile, *args)
            env = "production/eu-west" if any("production" in a for a in args) else "staging"
            assert code == 1 and message.format(env) in err, (args, err)
            assert "Traceback" not in err
            if args == ["status"]:
                assert message.format("production/eu-west") in err, \
                    "every interrupted folder is named"
        code, _, err = run_meshc("-f", meshfile, "plan", "development")  # a complete folder
        assert code == 0 and "incomplete" not in err, err
    finally:
        result = _render(project)  # the next render repairs it
    assert sorted(result["written"]) == [] and not result["upToDate"]
    assert read_tree(out) == read_tree(ROOT / "rendered")
    assert run_meshc("-f", meshfile, "plan", "staging")[0] == 0


def _variants(base: dict[str, str]) -> list[dict[str, str]]:
    """Versions of the example's tree that change, add and remove files and folders (and a
    whole environment), each plan.json kept valid (status reads it)."""
    rng = random.Random(17)
    names = sorted(base)
    versions = [dict(base)]
    for index in range(1, 4):
        files = {}
        for name in names:
            if name.endswith("/plan.json"):
                files[name] = base[name]
            elif rng.random() < 0.04:
                continue  # removed
            elif rng.random() < 0.08:
                files[name] = base[name] + f"# version {index}\n"
            else:
                files[name] = base[name]
        for env in ("staging", "production"):
            for n in range(rng.randrange(1, 4)):
                files[f"{env}/new-{index}-{n}/manifests/cm-{n}.yaml"] = f"n: {n}\n"
        if index == 2:  # an environment no longer rendered
            files = {p: t for p, t in files.items() if not p.startswith("development/")}
        versions.append(files)
    return versions


def _state(files: dict[str, str], env: str) -> dict[str, str]:
    return {p: t for p, t in files.items() if p.startswith(f"{env}/")}


def test_sigkill_at_random_moments_never_leaves_an_incomplete_tree_current(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    assert hasattr(os, "fork"), "the kill test forks"
    scratch = tmp_path
    memory = Path("/dev/shm")
    if memory.is_dir() and os.access(memory, os.W_OK):
        # SIGKILL's effect on the tree is the kernel's (the page cache is shared, whatever
        # the file system); a memory file system lets 200 kills fit the suite's time budget
        # (this disk's cost is measured by bench/run, not here)
        scratch = Path(tempfile.mkdtemp(prefix="meshc-kills-", dir=memory))
        request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    kill_project = copy_example(scratch / "p", reverse=False)
    out = kill_project / "rendered"
    base = {p: t.decode() for p, t in read_tree(ROOT / "rendered").items()}
    versions = _variants(base)
    envs = sorted({p.partition("/")[0] for p in base})
    sync_output(out, versions[0], envs, whole=True)
    compiler = load_project(ProjectFiles(kill_project))
    deployable = {e.name: e for e in compiler.project.deployable}

    # how long one emit takes, to spread the kills over it
    start = time.monotonic()
    for files in (versions[1], versions[0]):
        sync_output(out, files, sorted({p.partition("/")[0] for p in files}), whole=True)
    window = (time.monotonic() - start) / 2

    rng = random.Random(20261203)
    current = versions[0]
    complete: dict[str, dict[str, str] | None] = {e: _state(current, e) for e in envs}
    outcomes = {"refused": 0, "old": 0, "new": 0}
    for kill in range(KILLS):
        target = rng.choice([v for v in versions if v is not current])
        names = sorted({p.partition("/")[0] for p in target})
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: announce, then render towards ``target``
            try:
                os.close(read)
                os.write(write, b"go")
                sync_output(out, target, names, whole=True)
            finally:
                os._exit(0)
        os.close(write)
        os.read(read, 2)
        os.close(read)
        time.sleep(rng.uniform(0, 1.2 * window))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for env in envs:  # what the readers of the committed tree see of each environment
            new = _state(target, env)
            try:
                seen = committed_files(compiler, env)  # plan, apply, diff --rendered read this
            except CompileError as exc:
                assert f"rendered/{env} is incomplete" in str(exc), exc
                assert (out / env / INCOMPLETE).exists()
                if kill % 4 == 0:  # status and the day-2 commands; export
                    with pytest.raises(CompileError, match=f"rendered/{env} is incomplete"):
                        committed_plans(compiler, [deployable[env]])
                    with pytest.raises(CompileError, match=f"rendered/{env} is incomplete"):
                        require_complete(kill_project, "rendered", [env])
                outcomes["refused"] += 1
                complete[env] = None
                continue
            # complete: the old files (when they were complete) or the new ones, nothing else
            assert not (out / env / INCOMPLETE).exists()
            assert seen == new or (complete[env] is not None and seen == complete[env]), \
                f"kill {kill}, {env}: complete but neither the old nor the new tree"
            outcomes["new" if seen == new else "old"] += 1
            if seen and kill % 4 == 0:
                committed_plans(compiler, [deployable[env]])  # read, not refused
            complete[env] = seen
        current = target
    assert outcomes["refused"] > 0 and outcomes["old"] + outcomes["new"] > 0, outcomes
    sync_output(out, versions[0], envs, whole=True)
    assert read_tree(out) == read_tree(ROOT / "rendered")
    assert not [p for p in out.rglob("*") if "meshc" in p.name], "marker or temp file left"
    print(f"{KILLS} kills: {outcomes}, window {window * 1000:.1f} ms")
