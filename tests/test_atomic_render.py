"""An interrupted render is never taken for a complete one; a refused render changes nothing.

``meshc render`` replaces only the files that change, each atomically, and holds
``ENV/.meshc-incomplete`` while it changes an environment's folder (docs/crash-safety.md), so
after a real ``meshc render`` process is killed at any moment each environment's folder is its
complete old files, its complete new files, or marked incomplete (and refused by every reader:
tests/test_incremental_render.py, which also kills 200 forked renders per run).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_meshc
from test_determinism import copy_example, read_tree, staging_leftovers, tree_difference

from compiler.core.diagnostics import CompileError
from compiler.core.incomplete import INCOMPLETE, require_complete

# Two edits of the example's values, so tree B differs from tree A in two environments (a
# render that swapped one environment but not the other would be caught).
EDITS = {
    "environments/staging/values.yaml": ("registry:\n  replicaCount: 3\n",
                                         "registry:\n  replicaCount: 4\n"),
    "environments/production/values.yaml": ("registry:\n  replicaCount: 5\n",
                                            "registry:\n  replicaCount: 6\n"),
}
KILL_ITERATIONS = 21
KILL_BUDGET_SECONDS = 15.0  # then stop, once MIN_KILLS kills were checked
MIN_KILLS = 5


def set_variant(project: Path, variant: str) -> None:
    """Write the values files of variant "A" (as committed) or "B" (edited)."""
    for rel, (a, b) in EDITS.items():
        original = (ROOT / rel).read_text(encoding="utf-8")
        assert original.count(a) == 1, f"{rel} changed; update EDITS in {__file__}"
        (project / rel).write_text(original if variant == "A" else original.replace(a, b),
                                   encoding="utf-8")


def start_render(project: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "compiler.cli.main", "-f",
                             str(project / "meshfile.yaml"), "render"],
                            cwd=project, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def timed_render(project: Path) -> float:
    start = time.monotonic()
    proc = start_render(project)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - start


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "project", reverse=False)


def _marked(out: Path) -> list[str]:
    """The target folders marked (a region's ``production/eu-west`` included)."""
    found = [*out.glob(f"*/{INCOMPLETE}"), *out.glob(f"*/*/{INCOMPLETE}")]
    return sorted(p.parent.relative_to(out).as_posix() for p in found)


def wait_for_staging(proc: subprocess.Popen[bytes], out: Path, timeout: float) -> float | None:
    """Poll until the render marks an environment's folder (its emit stage has begun); the
    time it was seen, or None if the process ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if _marked(out):
            return time.monotonic()
        time.sleep(0.0002)
    return None


def emit_window(project: Path, out: Path) -> float:
    """How long a render's emit stage takes: from its first marker appearing to exit."""
    proc = start_render(project)
    seen = wait_for_staging(proc, out, 60)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    return time.monotonic() - seen if seen is not None else 0.005


# the example's targets deployed in regions: rendered/production/<region>/ is a target's folder
REGION_FOLDERS = tuple(sorted({p.parent.relative_to(ROOT / "rendered").as_posix()
                               for p in (ROOT / "rendered").glob("*/*/plan.json")}))


def _by_env(tree: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """The files of each target's folder (``production/eu-west`` for a region)."""
    envs: dict[str, dict[str, bytes]] = {}
    for path, data in tree.items():
        env = next((r for r in REGION_FOLDERS if path.startswith(f"{r}/")),
                   path.partition("/")[0])
        envs.setdefault(env, {})[path] = data
    return envs


def test_sigkill_at_random_moments_leaves_each_environment_old_new_or_marked(
        project: Path) -> None:
    out = project / "rendered"
    set_variant(project, "B")
    timed_render(project)
    tree_b = read_tree(out)
    set_variant(project, "A")
    duration = min(timed_render(project), timed_render(project))  # the second: warm caches
    tree_a = read_tree(out)
    assert tree_a != tree_b, "the edit must change the rendered tree"
    assert tree_a == read_tree(ROOT / "rendered")
    window = emit_window(project, out)

    rng = random.Random(20240601)
    log: list[str] = []
    deadline = time.monotonic() + KILL_BUDGET_SECONDS
    for iteration in range(KILL_ITERATIONS):
        if time.monotonic() > deadline and len(log) >= MIN_KILLS:  # a loaded machine: slower,
            break                                                   # never fewer kills
        set_variant(project, "AB"[iteration % 2])
        proc = start_render(project)
        if iteration % 3 == 0:  # anywhere in the run
            delay = rng.uniform(0, duration)
            time.sleep(delay)
            how = f"{delay:.3f}s after start"
        else:  # inside the emit stage: writing files, removing files, markers
            seen = wait_for_staging(proc, out, 60)
            delay = rng.uniform(0, 1.2 * window)
            time.sleep(delay)
            how = (f"{delay * 1000:.1f}ms into emit" if seen else "after exit (staging unseen)")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        leftovers = staging_leftovers(out)
        note = f" (staging leftovers beside the output: {leftovers})" if leftovers else ""
        where = f"iteration {iteration}, SIGKILL {how}, exit {proc.returncode}{note}"
        assert out.is_dir() and not out.is_symlink(), f"{where}: output directory missing"
        tree = _by_env(read_tree(out))
        states = []
        for env in sorted(set(tree) | set(_by_env(tree_a))):
            files = tree.get(env, {})
            if f"{env}/{INCOMPLETE}" in files:
                with pytest.raises(CompileError, match=f"rendered/{env} is incomplete"):
                    require_complete(project, "rendered", [env])
                states.append(f"{env}: marked")
                continue
            a, b = _by_env(tree_a).get(env, {}), _by_env(tree_b).get(env, {})
            assert files in (a, b), (
                f"{where}: {env} is complete but neither the old nor the new files\n"
                f"vs A: {tree_difference(a, files)}\nvs B: {tree_difference(b, files)}")
            assert not any(".meshc-" in p for p in files), f"{where}: a temporary file"
            states.append(f"{env}: {'A' if files == a else 'B'}")
        log.append(f"{where}: {', '.join(states)}")
        for name in leftovers:  # acceptable; removed so they cannot confuse the next check
            shutil.rmtree(out.parent / name)
    assert len(log) >= MIN_KILLS

    # a complete render afterwards still works and cleans up
    set_variant(project, "B")
    timed_render(project)
    assert read_tree(out) == tree_b
    assert staging_leftovers(out) == []
    print("\n".join(log))


def test_output_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("precious\n")
    link = tmp_path / "rendered"
    link.symlink_to(elsewhere, target_is_directory=True)
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "render", "--out", str(link))
    assert code == 1, err
    assert "symbolic link" in err and str(link) in err, err
    assert "Traceback" not in err
    assert link.is_symlink() and os.readlink(link) == str(elsewhere)
    assert read_tree(elsewhere) == {"keep.txt": b"precious\n"}, "written through the symlink"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "rendered"], \
        "staging directory left behind"


def test_dangling_symlink_output_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "rendered"
    link.symlink_to(tmp_path / "missing", target_is_directory=True)
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "render", "--out", str(link))
    assert code == 1 and "symbolic link" in err, err
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rendered"]


def test_symlinked_meshfile_output_is_refused(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "rendered").symlink_to(elsewhere, target_is_directory=True)
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render")
    assert code == 1 and "error:" in err and "Traceback" not in err, err
    assert list(elsewhere.iterdir()) == []
    assert (project / "rendered").is_symlink()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_environment_folder_fails_cleanly_and_keeps_previous_output(
        project: Path) -> None:
    """A render writes inside the output's folders (the output's parent is not touched: see
    the next test): one it cannot write is refused before anything changes."""
    out = project / "site" / "rendered"
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render", "--out", str(out))[0] == 0
    before = read_tree(out)
    set_variant(project, "B")
    os.chmod(out / "staging", 0o555)
    try:
        code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    finally:
        os.chmod(out / "staging", 0o755)
    assert code == 1, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert read_tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["rendered"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_parent_does_not_matter(project: Path) -> None:
    """Only the output's own folders are written: a read-only parent is no obstacle (no
    staging folder beside the output any more)."""
    out = project / "site" / "rendered"
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render", "--out", str(out))[0] == 0
    set_variant(project, "B")
    os.chmod(out.parent, 0o555)
    try:
        code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    finally:
        os.chmod(out.parent, 0o755)
    assert code == 0, err
    assert "written " in err and not _marked(out)


def test_unwritable_environment_folder_simulated_fails_cleanly_and_keeps_previous_output(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-only-folder case for root too: creating, renaming or removing anything in
    staging's folder fails with EACCES, as the kernel does for an unprivileged user."""
    out = project / "site" / "rendered"
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render", "--out", str(out))[0] == 0
    before = read_tree(out)
    set_variant(project, "B")
    locked = (out / "staging").resolve()

    def guard(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)) and \
                        Path(os.fsdecode(arg)).resolve().parent == locked:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), arg)
            return real(*args, **kwargs)
        return call

    for name in ("mkdir", "rename", "replace", "rmdir", "unlink", "open"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    monkeypatch.undo()
    assert code == 1, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert "Permission denied" in err, err
    assert read_tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["rendered"]


def test_parent_that_is_a_file_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "render",
                             "--out", str(tmp_path / "file" / "rendered"))
    assert code == 1, err
    assert "error:" in err and "Traceback" not in err, err
    assert (tmp_path / "file").read_text() == "not a directory\n"


def test_output_that_is_a_file_is_refused_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "rendered"
    target.write_text("a file\n")
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "render", "--out", str(target))
    assert code in (1, 2) and "rror" in err and "is a file" in err, err  # click: exit 2
    assert "Traceback" not in err
    assert target.read_text() == "a file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rendered"]


def test_failed_named_render_leaves_every_environment_as_it_was(tmp_path: Path) -> None:
    """A render of several named environments that fails on the second folder must not have
    replaced the first one already ("the previous output is untouched")."""
    project = copy_example(tmp_path / "project", reverse=False)
    out = project / "rendered"
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render")[0] == 0
    shutil.rmtree(out / "staging")
    (out / "staging").write_text("in the way\n")  # the second swap (sorted: staging) fails
    before = read_tree(out)
    set_variant(project, "B")  # changes both production and staging
    code, _, err = run_meshc("-f", meshfile, "render", "production", "staging")
    assert code == 1, err
    assert "Traceback" not in err
    assert read_tree(out) == before, (
        "a failed render changed the output:\n" + tree_difference(before, read_tree(out)))


def test_meshfile_output_that_is_a_file_is_refused_and_kept(project: Path) -> None:
    (project / "rendered").write_text("a file\n")
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render")
    assert code == 1 and "error:" in err and "Traceback" not in err, err
    assert (project / "rendered").read_text() == "a file\n"
    assert staging_leftovers(project / "rendered") == []


def _inputs(project: Path) -> dict[str, bytes]:
    """The project's own files: not its outputs, not meshc's cache of parsed inputs."""
    return {rel: data for rel, data in read_tree(project).items()
            if not rel.startswith(("rendered/", "out/", ".meshc-cache/"))}


@pytest.mark.parametrize("which", ["project", "parent"])
def test_out_that_contains_the_project_is_refused(tmp_path: Path, which: str) -> None:
    project = copy_example(tmp_path / "outer" / "p", reverse=False)
    before = _inputs(project)
    out = project if which == "project" else project.parent
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render", "--out", str(out))
    assert (project / "meshfile.yaml").exists(), "the project was deleted"
    assert _inputs(project) == before
    assert code == 1 and "error:" in err, err


@pytest.mark.parametrize("how", ["meshfile", "--out"])
def test_output_overlapping_the_inputs_is_refused(project: Path, how: str) -> None:
    before = _inputs(project)
    meshfile = project / "meshfile.yaml"
    if how == "meshfile":
        text = meshfile.read_text("utf-8")
        meshfile.write_text(text.replace("\noutput: rendered", "\noutput: templates"), "utf-8")
        before = _inputs(project)
        args = ["render"]
    else:
        args = ["render", "--out", str(project / "environments")]
    code, _, err = run_meshc("-f", str(meshfile), *args)
    assert _inputs(project) == before, "project inputs were replaced by rendered output"
    assert code == 1 and "error:" in err, err
