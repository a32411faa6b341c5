"""The output directory under stress (issue 9, items 4 and 5): a full disk and two renders at
once. The symlinked, read-only and file-in-the-way cases, and SIGKILL at random moments, are
in ``test_atomic_render.py``.

* A full disk (a 1 MiB tmpfs where the test may mount one, else ENOSPC simulated) fails with a
  clean error and leaves the previous output and nothing else.
* Two renders into the same output serialize on a lock (the second waits, saying so); with
  ``--lock-timeout 0`` the second fails at once, clearly. Neither leaves anything behind.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, run_meshc
from test_determinism import read_tree, staging_leftovers

MESHFILE = """\
apiVersion: meshc/v1
project: lock
environments:
  dev: {values: [values.yaml]}
releases:
  app: {chart: charts/app}
"""
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  size: "{{ values.size }}"
{% for i in range(values.spin) %}{% for j in range(100) %}{% endfor %}{% endfor %}
  blob: "{{ 'x' * values.size }}"
"""


def make_project(root: Path, size: int = 10, spin: int = 0) -> Path:
    (root / "charts" / "app").mkdir(parents=True)
    (root / "meshfile.yaml").write_text(MESHFILE, encoding="utf-8")
    (root / "charts" / "app" / "cm.yaml.j2").write_text(TEMPLATE, encoding="utf-8")
    set_values(root, size, spin)
    return root


def set_values(root: Path, size: int, spin: int = 0) -> None:
    (root / "values.yaml").write_text(f"app: {{size: {size}, spin: {spin}}}\n", encoding="utf-8")


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "compiler.cli.main", "-f",
                             str(project / "meshfile.yaml"), "render", *args],
                            cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@contextmanager
def held_lock(folder: Path) -> Iterator[None]:
    """Hold the render lock of outputs in ``folder`` as a running render would."""
    import fcntl

    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_render_waits_for_the_lock_or_fails_clearly(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    out = project / "rendered"
    with held_lock(project):
        impatient = start(project, "--lock-timeout", "0")
        _, err = impatient.communicate(timeout=60)
        assert impatient.returncode == 1, err
        assert err.startswith("error: another meshc render into") and "still running" in err, err
        assert not out.exists()
        patient = start(project, "--lock-timeout", "60")
        assert patient.stderr is not None
        waiting = patient.stderr.readline()  # printed once it waits: the lock is still held
        assert "waiting for another meshc render" in waiting, waiting + patient.communicate()[1]
        assert patient.poll() is None, patient.communicate()
    _, err = patient.communicate(timeout=60)
    assert patient.returncode == 0, waiting + err
    assert "dev/app/manifests/configmap-cfg.yaml" in read_tree(out)


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_two_renders_at_once_serialize(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", size=10, spin=1000)  # holds the lock a while
    out = project / "rendered"
    procs = [start(project, "--no-cache"), start(project, "--no-cache")]
    errs = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errs
    assert sum("waiting for another meshc render" in err for err in errs) <= 1, errs
    tree = read_tree(out)
    assert sorted(tree) == ["dev/app/Chart.yaml", "dev/app/manifests/configmap-cfg.yaml",
                            "dev/app/templates/manifests.yaml", "dev/app/values.yaml",
                            "dev/plan.json"]
    assert staging_leftovers(out) == []
    assert sorted(p.name for p in project.iterdir()) == ["charts", "meshfile.yaml", "rendered",
                                                         "values.yaml"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs the right to mount; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the ENOSPC "
                    "simulation below covers the case")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_full_disk_fails_cleanly_and_keeps_previous_output(tmp_path: Path,
                                                           small_disk: Path) -> None:
    project = make_project(tmp_path / "p", size=1000)
    out = small_disk / "rendered"
    meshfile = str(project / "meshfile.yaml")
    code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    assert code == 0, err
    before = read_tree(out)
    set_values(project, size=3 * 1024 * 1024)  # 3 MiB: more than the disk holds
    code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    assert code == 1, err
    assert err.startswith("error: ") and "No space left on device" in err, err
    assert "Traceback" not in err
    assert read_tree(out) == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["rendered"], "staging left behind"


def test_enospc_while_writing_fails_cleanly_and_keeps_previous_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full disk without a tmpfs: the second file written fails with ENOSPC. Every new
    file is written beside the old one before any old one is replaced, so this fails before
    the tree changes (compiler/output/emit.py)."""
    import compiler.output.emit

    project = make_project(tmp_path / "p", size=10)
    out = tmp_path / "site" / "rendered"
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render", "--out", str(out))[0] == 0
    before = read_tree(out)
    set_values(project, size=20)
    real = compiler.output.emit._write
    calls = []

    def full(path: str, data: bytes) -> os.stat_result:
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real(path, data)

    monkeypatch.setattr(compiler.output.emit, "_write", full)
    code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out), "--no-cache")
    monkeypatch.undo()
    assert code == 1, err
    assert err.startswith("error: ") and "No space left on device" in err, err
    assert read_tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["rendered"]


def test_read_only_output_directory_is_refused_and_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only output (or environment folder) is refused before anything is written: its
    old tree could not be removed after the swap. Simulated: the test may run as root."""
    project = make_project(tmp_path / "p", size=10)
    out = tmp_path / "site" / "rendered"
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render", "--out", str(out))[0] == 0
    before = read_tree(out)
    set_values(project, size=20)
    locked = (out / "dev").resolve()
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        False if Path(path).resolve() == locked else real(path, mode, **kw)))
    code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    monkeypatch.undo()
    assert code == 1, err
    assert err.startswith("error: output directory") and "is read-only (rendered/dev)" in err, err
    assert read_tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["rendered"]
