"""A render writes only what changed, and no command treats an interrupted render as current.

``meshc render`` brings each environment's folder to the new files one file at a time (a
temporary file and a rename), holding ``ENV/.meshc-incomplete`` from before the first change
until after the last (compiler/output/emit.py, docs/crash-safety.md). These tests check the
writes (nothing more than the change), the refusals (every command that reads the committed
tree), and the promise under SIGKILL at random moments.

The kill test forks children from this process, which has meshc imported, instead of starting
a new interpreter per kill (the suite's time budget): each child runs the real emit stage
(:func:`compiler.output.emit.sync_output`, the only code that writes the tree) towards
another version of the tree and is killed at a seeded random moment of its progress (before
one of its changes to the tree, or after a delay re-measured as the machine's pace changes).
After each kill the
readers the commands use (``committed_files`` for plan, apply and diff --rendered,
``committed_plans`` for status and the other day-2 commands, ``require_complete`` for export)
must either refuse the environment or see exactly its old or its new files. The count of
kills landed before a render completed is ``MESHC_KILLS`` (default 200);
``MESHC_KILLS=5000 pytest tests/test_incremental_render.py`` runs a longer campaign.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import struct
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
from compiler.output import emit
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
    # the snapshot is taken from the render's one walk and its writes, not a second walk
    assert _snapshot_stats(project) == tree_stats(out), "the snapshot is not the tree"

    # a named render, then a full one: the snapshot the next render trusts is the tree's
    values.write_text(original.replace(*EDIT), encoding="utf-8")
    try:
        assert _render(project, "staging")["written"]
        assert _render(project)["upToDate"]
    finally:
        values.write_text(original, encoding="utf-8")
    assert _snapshot_stats(project) == tree_stats(out), "the snapshot is not the tree"
    assert _render(project)["written"]
    assert _snapshot_stats(project) == tree_stats(out), "the snapshot is not the tree"


def _snapshot_stats(project: Path) -> dict[str, str]:
    return sealed.read_map(project / ".meshc-cache" / "output.pickle")["stats"]


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
    assert _snapshot_stats(project) == tree_stats(out), "the snapshot is not the tree"
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
        for env in ("staging", "production/eu-west"):
            for n in range(rng.randrange(1, 4)):
                files[f"{env}/new-{index}-{n}/manifests/cm-{n}.yaml"] = f"n: {n}\n"
        if index == 2:  # an environment no longer rendered
            files = {p: t for p, t in files.items() if not p.startswith("development/")}
        versions.append(files)
    return versions


def _targets(files: dict[str, str]) -> list[str]:
    """The environments (a region: ``production/eu-west``) whose folders ``files`` fill: the
    folders holding a plan.json."""
    return sorted(p.rpartition("/")[0] for p in files if p.endswith("/plan.json"))


def _state(files: dict[str, str], env: str) -> dict[str, str]:
    return {p: t for p, t in files.items() if p.startswith(f"{env}/")}


class _Steps:
    """What :mod:`compiler.output.emit` sees as ``os`` in a killed child: every call that
    changes the tree (``open`` for writing, ``write``, ``replace``, ``unlink``, ``rmdir``) is
    counted, and the process SIGKILLs itself just before the ``stop``-th. The rest is ``os``."""

    CHANGES = frozenset({"open", "write", "replace", "rename", "unlink", "rmdir"})

    def __init__(self, stop: int) -> None:
        self.count = 0
        self.stop = stop

    def __getattr__(self, name: str) -> object:
        real = getattr(os, name)
        if name not in self.CHANGES:
            return real

        def counted(*args: object, **kwargs: object) -> object:
            self.count += 1
            if self.count == self.stop:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return counted


def _render_and_kill(out: Path, target: dict[str, str], names: list[str], stop: int,
                     delay: float | None) -> tuple[bool, tuple[float, int] | None]:
    """Fork a child that renders ``target`` into ``out`` (the real :func:`sync_output`) and
    kill it: itself, before its ``stop``-th change to the tree, or from here ``delay`` seconds
    after it started. Returns whether it died before its render completed and, if it completed,
    what it reported: how long the render took and how many changes it made."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: announce, render towards ``target``, report
        try:
            os.close(read)
            steps = _Steps(stop)
            emit.os = steps  # type: ignore[assignment]  # this process's copy only
            start = time.monotonic()
            os.write(write, b"g")
            sync_output(out, target, names, whole=True)
            os.write(write, struct.pack("=dI", time.monotonic() - start, steps.count))
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"g"
        if delay is not None:
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        report = b""
        while chunk := os.read(read, 64):
            report += chunk
    finally:
        os.close(read)
    done = struct.unpack("=dI", report) if len(report) == struct.calcsize("=dI") else None
    return done is None, done


def test_sigkill_at_random_moments_never_leaves_an_incomplete_tree_current(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """``KILLS`` children die before their render completes (more are forked when some finish
    first), at seeded random moments tied to the writer's progress, so that a loaded machine
    moves the moments with the work instead of missing it: every other child kills itself
    before a random one of its changes to the tree (any of them, the marker's creation and
    removal included, up to 1.1 times as many as the last render of that version made, a
    count raised by a tenth whenever such a child dies before completing); the
    others are killed from here after a random delay up to 1.2 times a render's duration,
    re-measured from every self-killing child whose stop came after its last change (it
    rendered to the end at the machine's present pace)."""
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
    envs = _targets(base)
    sync_output(out, versions[0], envs, whole=True)
    compiler = load_project(ProjectFiles(kill_project))
    deployable = {e.name: e for e in compiler.project.deployable}

    # a first measure of a render (its duration; its changes, by version rendered), corrected
    # by every child that completes
    window, most = 0.0, {}
    for index in (1, 2, 3, 0):
        files = versions[index]
        died, done = _render_and_kill(out, files, _targets(files),
                                      0, None)
        assert not died and done is not None
        window, most[index] = max(window, done[0]), done[1]

    rng = random.Random(20261203)
    current = versions[0]
    complete: dict[str, dict[str, str] | None] = {e: _state(current, e) for e in envs}
    outcomes = {"refused": 0, "old": 0, "new": 0}
    kills = {"step": 0, "timed": 0}
    forks = 0
    while sum(kills.values()) < KILLS and forks < 4 * KILLS:
        index = rng.choice([i for i, v in enumerate(versions) if v is not current])
        target = versions[index]
        names = _targets(target)
        how = "step" if forks % 2 else "timed"
        forks += 1
        if how == "step":
            stop = rng.randint(1, most[index] + most[index] // 10 + 1)
            died, done = _render_and_kill(out, target, names, stop, None)
        else:
            died, done = _render_and_kill(out, target, names, 0, rng.uniform(0, 1.2 * window))
        if done is not None:  # it completed: the measures follow the machine's pace
            if done[1]:  # (a render that found nothing to change says nothing of the count)
                most[index] = done[1]
            if how == "step":  # (a timed child completes only when it was quicker than usual)
                window = 0.75 * window + 0.25 * done[0]
        elif how == "step":  # its stop came before its last change: renders may be longer
            most[index] += most[index] // 10 + 1
        kills[how] += died
        for env in envs:  # what the readers of the committed tree see of each environment
            new = _state(target, env)
            try:
                seen = committed_files(compiler, env)  # plan, apply, diff --rendered read this
            except CompileError as exc:
                assert f"rendered/{env} is incomplete" in str(exc), exc
                assert (out / env / INCOMPLETE).exists()
                if forks % 4 == 0:  # status and the day-2 commands; export
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
                f"fork {forks}, {env}: complete but neither the old nor the new tree"
            assert died or seen == new, f"fork {forks}, {env}: a completed render's old files"
            outcomes["new" if seen == new else "old"] += 1
            if seen and forks % 4 == 0:
                committed_plans(compiler, [deployable[env]])  # read, not refused
            complete[env] = seen
        current = target
    summary = (f"{sum(kills.values())} kills ({kills}) in {forks} renders: {outcomes}, "
               f"window {window * 1000:.1f} ms, changes {most}")
    assert sum(kills.values()) >= KILLS, summary
    assert kills["step"] and kills["timed"], summary
    assert outcomes["refused"] > 0 and outcomes["old"] + outcomes["new"] > 0, summary
    sync_output(out, versions[0], envs, whole=True)
    assert read_tree(out) == read_tree(ROOT / "rendered")
    assert not [p for p in out.rglob("*") if "meshc" in p.name], "marker or temp file left"
    print(summary)
