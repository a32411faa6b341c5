"""An interrupted or refused render leaves the previous output intact.

``meshc render`` builds the tree in a staging directory beside the output (``.<name>.meshc-*``)
and swaps it in with one atomic rename, so a render killed at any moment leaves the complete old
tree or the complete new tree — never a mix, never no directory at all.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_meshc
from test_determinism import copy_example, read_tree, staging_leftovers, tree_difference

# Two edits of the example's values, so tree B differs from tree A in two environments (a
# render that swapped one environment but not the other would be caught).
EDITS = {
    "environments/staging/values.yaml": ("registry:\n  replicaCount: 3\n",
                                         "registry:\n  replicaCount: 4\n"),
    "environments/production/values.yaml": ("registry:\n  replicaCount: 5\n",
                                            "registry:\n  replicaCount: 6\n"),
}
KILL_ITERATIONS = 24
KILL_BUDGET_SECONDS = 25.0


def set_variant(project: Path, variant: str) -> None:
    """Write the values files of variant "A" (as committed) or "B" (edited)."""
    for rel, (a, b) in EDITS.items():
        original = (ROOT / rel).read_text(encoding="utf-8")
        assert original.count(a) == 1, f"{rel} changed; update EDITS in {__file__}"
        (project / rel).write_text(original if variant == "A" else original.replace(a, b),
                                   encoding="utf-8")


def start_render(project: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "compiler.cli", "-f",
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


def test_sigkill_at_random_moments_leaves_old_or_new_tree(project: Path) -> None:
    out = project / "rendered"
    set_variant(project, "B")
    timed_render(project)
    tree_b = read_tree(out)
    set_variant(project, "A")
    duration = min(timed_render(project), timed_render(project))  # the second: warm caches
    tree_a = read_tree(out)
    assert tree_a != tree_b, "the edit must change the rendered tree"
    assert tree_a == read_tree(ROOT / "rendered")

    rng = random.Random(20240601)
    leftovers_seen: list[str] = []
    outcomes = {"A": 0, "B": 0}
    deadline = time.monotonic() + KILL_BUDGET_SECONDS
    for iteration in range(KILL_ITERATIONS):
        if time.monotonic() > deadline:
            break
        set_variant(project, "AB"[iteration % 2])
        # Half of the kills aim at the end of a render, where emit writes and swaps.
        delay = (rng.uniform(0, duration) if iteration % 4 < 2
                 else rng.uniform(0.75 * duration, 1.1 * duration))
        proc = start_render(project)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert out.is_dir() and not out.is_symlink(), \
            f"iteration {iteration}: output directory missing after SIGKILL at {delay:.3f}s"
        tree = read_tree(out)
        leftovers = staging_leftovers(out)
        leftovers_seen += leftovers
        note = f"(staging leftovers beside the output: {leftovers})" if leftovers else ""
        assert tree in (tree_a, tree_b), (
            f"iteration {iteration}: after SIGKILL at {delay:.3f}s the output is neither the "
            f"old nor the new tree {note}\nvs A: {tree_difference(tree_a, tree)}\n"
            f"vs B: {tree_difference(tree_b, tree)}")
        outcomes["A" if tree == tree_a else "B"] += 1
        assert not any(".meshc-" in p.as_posix() for p in out.rglob("*")), \
            f"iteration {iteration}: a staging directory inside the output {note}"
        for name in leftovers:  # acceptable, but must not accumulate into the next check
            shutil.rmtree(out.parent / name)

    # a complete render afterwards still works and cleans up
    set_variant(project, "B")
    timed_render(project)
    assert read_tree(out) == tree_b
    assert staging_leftovers(out) == []


def test_output_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("precious\n")
    link = tmp_path / "rendered"
    link.symlink_to(elsewhere, target_is_directory=True)
    code, out, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "render", "--out", str(link))
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
    assert code == 1 and "symbolic link" in err, err
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_parent_fails_cleanly_and_keeps_previous_output(project: Path) -> None:
    out = project / "site" / "rendered"
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render", "--out", str(out))[0] == 0
    before = read_tree(out)
    set_variant(project, "B")
    os.chmod(out.parent, 0o555)
    try:
        code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    finally:
        os.chmod(out.parent, 0o755)
    assert code == 1, err
    assert err.startswith("error: ") and "Traceback" not in err, err
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
    assert code == 1 and "error:" in err and "Traceback" not in err, err
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
