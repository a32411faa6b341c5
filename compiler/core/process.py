"""Running external tools (helm, kubectl, sops): one seam, so callers can be handed a recorder.

A :data:`Runner` takes an argv and a working directory and returns how the command ended. The
real one is :func:`run_process`; the CLI passes it down (``compiler.cli.support.Tools``), and
tests pass their own to record calls in-process instead of faking binaries on PATH.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Completed:
    """How one command ended."""

    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], Path], Completed]   # (argv, working directory) → result


def run_process(argv: Sequence[str], cwd: Path) -> Completed:
    """Run ``argv`` in ``cwd`` with this process's environment, capturing its output."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, capture_output=True, check=False,
                              stdin=subprocess.DEVNULL)
    except OSError as exc:
        return Completed(127, "", f"cannot run {argv[0]}: {exc.strerror or exc}")
    return Completed(done.returncode, done.stdout.decode("utf-8", "replace"),
                     done.stderr.decode("utf-8", "replace"))
