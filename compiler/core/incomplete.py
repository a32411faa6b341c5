"""The marker of an interrupted render: the one file meshc's readers of the output tree check.

``meshc render`` writes ``rendered/ENV/.meshc-incomplete`` before it changes the first file of
an environment's folder and removes it after the last (compiler/output/emit.py). A folder that
holds it may be a mix of old and new files, so every command that reads the committed output
(plan, apply, check, diff --rendered, status, export, …) refuses it until the next render
completes (docs/crash-safety.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from .diagnostics import CompileError, Diagnostic

INCOMPLETE = ".meshc-incomplete"


def is_incomplete(folder: Path | str) -> bool:
    """Whether the environment folder ``folder`` holds the marker of an interrupted render."""
    return os.path.lexists(os.path.join(folder, INCOMPLETE))


def incomplete_diagnostic(output: str, env: str) -> Diagnostic:
    where = f"{output.rstrip('/')}/{env}"
    return Diagnostic("error", f"{where} is incomplete (an interrupted render): run meshc render",
                      help=f"a render was stopped while it replaced files in {where} (it holds "
                           f"{INCOMPLETE}); `meshc render` completes it")


def require_complete(root: Path, output: str, envs: list[str] | tuple[str, ...]) -> None:
    """Raise :class:`CompileError` naming every environment of ``envs`` whose folder under
    ``root / output`` is incomplete."""
    found = [incomplete_diagnostic(output, env) for env in envs
             if is_incomplete(root / output / env)]
    if found:
        raise CompileError(found)
