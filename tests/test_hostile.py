"""Hostile and broken input (issue 9): the ``tests/hostile/`` corpus.

Each ``tests/hostile/<case>/`` holds ``project/`` (a small project) and ``case.yaml``: the
issue item it covers (2 sandbox, 3 resource bounds, 4 paths, 5 atomicity, 6 encodings; 1 is
the fuzzing of ``test_properties.py``), what it tries, the meshc arguments, the exit code, and
the expected diagnostic — ``expected.stderr`` (compared exactly; ``pytest --update-goldens``
rewrites it), or, where the text depends on the machine (``golden: false``), the substrings
``expect`` lists. Set up at run time in a scratch copy: ``symlinks`` (path → target, pointing
out of the project), ``big`` (path → size: a sparse file, so a 100 MB input costs nothing),
``environ`` (process environment), ``limit`` (``--limit`` flags), ``poison_cache`` (a committed
render cache holding a pickle that would run code), ``special`` (path → ``fifo``, ``socket``:
files git cannot hold). A FIFO is watched while meshc runs: should meshc ever open one (and so
block for ever, waiting for a writer), the watch opens it for writing, which lets meshc go on,
and the case fails — a hang becomes a failure, not a stuck suite, and no time is measured.
A symlink pointing at itself (``symlinks: {a.yaml: a.yaml}``) is a symlink loop.
Issue 20's cases (``item: 20``) say which ``kind`` of its sweep they cover: ``traceback``,
``hang``, ``exit``, ``silent``, ``message``. ``subprocess: true`` runs meshc as a process
(cases that exhaust memory), ``platform`` restricts a case to one OS. Every case must finish within ``max_seconds`` (default 10), exit
with its code (never 2, the usage error) and never print a traceback.

The output-directory cases (symlink, read-only, full disk, concurrent renders, SIGKILL) need
more than a project: they live in ``test_hostile_output.py`` and ``test_atomic_render.py``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import yaml
from conftest import ROOT, check_text, run_meshc

HOSTILE = Path(__file__).resolve().parent / "hostile"
CASES = sorted(p.parent.name for p in HOSTILE.glob("*/case.yaml"))
PWNED = "MESHC_HOSTILE_PWNED"


def _spec(case: str) -> dict[str, Any]:
    return yaml.safe_load((HOSTILE / case / "case.yaml").read_text(encoding="utf-8"))


class _Pwn:
    """A pickle that, if ever loaded, leaves a marker file (the cache must never load it)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.marker), "pwned\n"))


def prepare(case: str, scratch: Path) -> Path:
    """A scratch copy of the case's project with its run-time setup done."""
    spec = _spec(case)
    project = scratch / "project"
    shutil.copytree(HOSTILE / case / "project", project, symlinks=True)
    for rel, target in (spec.get("symlinks") or {}).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).symlink_to(target)
    for rel, size in (spec.get("big") or {}).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(project / rel, "wb") as handle:
            handle.truncate(size)
    for rel, kind in (spec.get("special") or {}).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        if kind == "fifo":
            os.mkfifo(project / rel)
        else:  # a socket, bound and closed (the file stays); short relative name: AF_UNIX
            with socket.socket(socket.AF_UNIX) as sock, _cwd(project):
                sock.bind(rel)
    if spec.get("poison_cache"):
        cache = project / ".meshc-cache"
        cache.mkdir()
        for name in ("dev.pickle", "output.pickle"):
            (cache / name).write_bytes(pickle.dumps(_Pwn(str(scratch / PWNED))))
    return project


@contextlib.contextmanager
def _cwd(folder: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


class FifoWatch:
    """Notes every FIFO of ``fifos`` that someone opened for reading while it ran, and
    unblocks that reader (a writer's open, then close: the reader sees end of file)."""

    def __init__(self, fifos: list[Path]) -> None:
        self.fifos = fifos
        self.opened: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for fifo in self.fifos:
                try:  # succeeds only while a reader has it open
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    continue
                os.close(fd)
                self.opened.add(fifo.name)

    def __enter__(self) -> Self:
        if self.fifos:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.fifos:
            self._thread.join()


def run_case(case: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    spec = _spec(case)
    args = [*(f"--limit={flag}" for flag in spec.get("limit") or ()), *map(str, spec["args"])]
    environ = {str(k): str(v) for k, v in (spec.get("environ") or {}).items()}
    if spec.get("subprocess"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), **environ}
        proc = subprocess.run([sys.executable, "-m", "compiler.cli.main", *args], cwd=project,
                              env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        return proc.returncode, proc.stdout, proc.stderr
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return run_meshc(*args, cwd=project)


@pytest.mark.parametrize("case", CASES)
def test_hostile_case(case: str, tmp_path: Path, update_goldens: bool,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(case)
    if spec.get("platform", sys.platform) != sys.platform:
        pytest.skip(f"needs {spec['platform']} (e.g. RLIMIT_AS for the memory limit)")
    project = prepare(case, tmp_path)
    fifos = [project / rel for rel, kind in (spec.get("special") or {}).items() if kind == "fifo"]
    start = time.monotonic()
    with FifoWatch(fifos) as watch:
        code, out, err = run_case(case, project, monkeypatch)
    took = time.monotonic() - start
    assert not watch.opened, f"meshc opened FIFO {sorted(watch.opened)} (and blocked)"
    err = err.replace(str(project), "{project}")
    assert "Traceback" not in out + err, err
    assert code == spec.get("exit", 1), f"exit {code}, expected {spec.get('exit', 1)}:\n{err}"
    if code == 1:
        assert "error:" in err, err
    assert took < spec.get("max_seconds", 10), f"took {took:.1f} s"
    if spec.get("golden", True):
        check_text(HOSTILE / case / "expected.stderr", err, update_goldens)
    for text in spec.get("expect") or ():
        assert text in err, f"{text!r} not in:\n{err}"
    for text in spec.get("stdout_expect") or ():
        assert text in out, f"{text!r} not in stdout:\n{out}"
    assert not (tmp_path / PWNED).exists(), "a pickle from the checkout was loaded"
    assert not list(tmp_path.rglob("escaped*")), "a file was written outside the output"


def test_corpus_covers_every_item() -> None:
    items = {_spec(case)["item"] for case in CASES}
    assert items >= {2, 3, 4, 5, 6, 20}, items
    kinds = {_spec(case).get("kind") for case in CASES if _spec(case)["item"] == 20}
    assert kinds >= {"traceback", "hang", "exit", "silent", "message"}, kinds
    for case in CASES:
        assert _spec(case).get("what"), f"{case}: say what the case tries"
