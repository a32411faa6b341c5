"""Bring an output tree up to date: the whole of ``meshc render`` as one library call.

:func:`render_tree` takes the lock, refuses a target that would overwrite inputs, compiles what
the cache does not hold, and writes only the files whose bytes change, removing only those no
longer rendered (:func:`~compiler.output.emit.sync_output`: nothing when nothing changed; an
interrupted render is marked, docs/crash-safety.md). It records what it wrote (cache, journal)
for the next run. The CLI only parses and prints.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..model.model import Environment
from ..pipeline import Compiler, input_paths
from .cache import Cache, env_digests
from .emit import Scan, check_target, scan_tree, sync_output
from .journal import scan_stats, synced_stats
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
    durable: bool = False  # fsync: the promise holds across power loss too (docs/crash-safety.md)


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What a render did: ``files`` rendered, of which ``written`` (paths) were written and
    ``unchanged`` left as they were; ``removed``: files no longer rendered, deleted;
    ``up_to_date`` when nothing had to change; ``changed`` (only with ``detect_changes``) when
    the tree's bytes differ after."""

    target: Path
    environments: tuple[str, ...]
    files: int
    up_to_date: bool = False
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
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
            result = replace(result, changed=changed)
        return result


def _write(compiler: Compiler, request: RenderRequest, cache: Cache | None,
           journal: Journal) -> RenderResult:
    envs, target = list(request.environments), request.target
    names = tuple(e.name for e in envs)
    work = plan_work(compiler, envs, cache)
    files = render_files(compiler, envs, request.jobs, cache=cache, work=work)
    known = None  # what meshc last wrote, when the tree is as it left it
    idle: set[str] = set()  # environments known to need no change
    scan = _scan(target) if not request.selected else None  # the one walk of the tree
    # each environment's digest of its files' texts: for the check and the new snapshot
    digests = env_digests(files) if cache is not None and not request.selected else None
    if cache is not None and not request.selected:
        changed = cache.changed_environments(target, files,
                                             None if scan is None else scan_stats(scan), digests)
        if changed is not None:
            known = cache.known_files(target)
            # the snapshot compares top folders: a region (production/eu-west) is idle only
            # when its environment's whole folder (production/) is
            idle = {name for name in names if name.partition("/")[0] not in changed}
    counts = sync_output(target, files, names, whole=not request.selected, known=known,
                         idle=idle, durable=request.durable, scan=scan)
    known = None  # (the last snapshot's digests of every file: freed before the new snapshot)
    if cache is not None:
        cache.save()
        if not request.selected:
            cache.record_output(target, files, journal(target),
                                None if scan is None else synced_stats(scan, files, counts),
                                digests)
    return RenderResult(target, names, len(files), up_to_date=not counts.touched,
                        written=counts.written, removed=counts.removed,
                        unchanged=counts.unchanged)


def _scan(target: Path) -> Scan | None:
    """The output as it is now (None when it cannot be read: sync_output reports why)."""
    try:
        return scan_tree(target)
    except OSError:
        return None


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
    counts = (f"written {len(result.written)}, removed {len(result.removed)}, "
              f"unchanged {result.unchanged}")
    if result.up_to_date:
        return f"{result.target} is up to date ({result.files} files: {counts})"
    return (f"rendered {len(names)} environment{'s' * (len(names) != 1)} "
            f"({', '.join(names)}): {result.files} files in {result.target}: {counts}")


def render_json(result: RenderResult) -> dict[str, Any]:
    """``meshc render --json``: what the render did, file by file."""
    return {"target": str(result.target), "environments": list(result.environments),
            "files": result.files, "upToDate": result.up_to_date,
            "written": list(result.written), "removed": list(result.removed),
            "unchanged": result.unchanged,
            **({} if result.changed is None else {"changed": result.changed})}
