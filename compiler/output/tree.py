"""Bring an output tree up to date: the whole of ``meshc render`` as one library call.

:func:`render_tree` takes the lock, refuses a target that would overwrite inputs, compiles what
the cache does not hold, and writes as little as the change allows: nothing when nothing changed,
one environment's folder when only it changed, else a staged tree swapped in atomically. It
records what it wrote (cache, journal) for the next run. The CLI only parses and prints.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model.model import Environment
from ..pipeline import Compiler, input_paths
from .cache import Cache
from .emit import check_target, replace_environment, staged_output, write_output
from .lock import output_lock
from .parallel import plan_work, render_files

Journal = Callable[[Path], "dict[str, Any] | None"]  # what the run read, for the render journal


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """What to render where. ``selected``: environments were named (a partial render)."""

    environments: tuple[Environment, ...]
    target: Path
    selected: bool
    jobs: int | None = None
    lock_timeout: float = 300.0
    detect_changes: bool = False  # compare the tree before and after (``--exit-code``)


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What a render did: ``files`` written or checked, ``up_to_date`` when nothing had to be
    written, ``changed`` (only with ``detect_changes``) when the tree's bytes differ after."""

    target: Path
    environments: tuple[str, ...]
    files: int
    up_to_date: bool = False
    note: str = ""
    changed: bool | None = None


def render_tree(compiler: Compiler, request: RenderRequest, cache: Cache | None,
                journal: Journal, waiting: Callable[[str], None] | None = None) -> RenderResult:
    """Render ``request.environments`` into ``request.target``; raises
    :class:`~compiler.core.diagnostics.CompileError` or
    :class:`~compiler.output.emit.EmitError` with what went wrong (nothing half-written)."""
    target = request.target
    with output_lock(target, request.lock_timeout, waiting):
        check_target(target, compiler.files.root, input_paths(compiler))
        before = tree_digest(target) if request.detect_changes else None
        result = _write(compiler, request, cache, journal)
        if before is not None:
            changed = False if result.up_to_date else tree_digest(target) != before
            result = RenderResult(result.target, result.environments, result.files,
                                  result.up_to_date, result.note, changed)
        return result


def _write(compiler: Compiler, request: RenderRequest, cache: Cache | None,
           journal: Journal) -> RenderResult:
    envs, target = list(request.environments), request.target
    names = tuple(e.name for e in envs)
    work = plan_work(compiler, envs, cache)
    note = ""
    written: dict[str, tuple[int, int]] | None = None  # the files written, as written
    unchanged: set[str] = set()  # environments whose folders were left as they were
    if cache is not None and not request.selected and 2 * len(work.todo) <= len(work.done):
        # mostly cached: compile what is missing, then write only what changed
        files = render_files(compiler, envs, request.jobs, cache=cache, work=work)
        changed = cache.changed_environments(target, files)
        if changed is not None and not changed:
            cache.save()
            cache.record_output(target, files, journal(target))
            return RenderResult(target, names, len(files), up_to_date=True)
        if changed is not None and len(changed) == 1:
            (name,) = changed
            written = {}
            mine = {p: t for p, t in files.items() if p.startswith(f"{name}/")}
            replace_environment(target, name, mine, written, cache.same_files(target, mine))
            unchanged = set(names) - changed
            note = f" (only {name} changed: its folder was replaced)"
        else:
            write_output(target, files, list(names), whole=True)
    else:
        written = {} if not request.selected else None
        with staged_output(target, list(names), whole=not request.selected) as staging:
            files = render_files(compiler, envs, request.jobs, write_root=staging, cache=cache,
                                 work=work, written=written)
    if cache is not None:
        cache.save()
        if not request.selected:
            cache.record_output(target, files, journal(target), written, unchanged)
    return RenderResult(target, names, len(files), note=note)


def tree_digest(root: Path) -> str:
    """A digest of every file under ``root`` (paths and bytes, symlinks by target), in a stable
    order; of nothing when ``root`` does not exist."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).encode()
            digest.update(rel + b"\0")
            if os.path.islink(path):
                digest.update(b"link\0" + os.readlink(path).encode() + b"\0")
            else:
                with open(path, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def render_summary(result: RenderResult, names: Sequence[str]) -> str:
    """The line ``meshc render`` prints on stderr."""
    if result.up_to_date:
        return f"{result.target} is up to date ({result.files} files)"
    return (f"rendered {len(names)} environment{'s' * (len(names) != 1)} "
            f"({', '.join(names)}): {result.files} files in {result.target}{result.note}")
