"""What a render read, so a re-render with nothing changed can stop before compiling.

A full ``meshc render`` (every environment, cache on) notes every observation it makes of the
project through :class:`~compiler.core.files.ProjectFiles`: each file read (a hash of its bytes, or
the error), each path resolved (symlinks), each folder tested, listed or walked, each
environment variable looked up; with it the command line that matters (the meshfile's name,
``--out``, ``--set`` flags, ``--limit`` flags) and meshc's own code fingerprint. It is kept
with the output snapshot in ``.meshc-cache/output.pickle`` (sealed: never a pickle a checkout
brought).

The next render replays the journal first (:func:`answer`): when every observation still
holds and the output tree is exactly as meshc last wrote it (every file's size and
modification time), the same inputs would compile to the same bytes, so the command ends
there. Any difference — a file edited, added to a listed folder or removed, a symlink
retargeted, a variable set, a flag changed, another meshc — falls through to the compile, whose
release cache still saves the unchanged work. ``--set-file`` reads files outside the project,
so a command with it never takes this path.

This module imports nothing heavy: the check runs before the compiler is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core import sealed
from ..core.files import ProjectFiles
from .emit import EmitError, Scan, Stat, SyncCounts
from .lock import output_lock

CACHE_DIR = ".meshc-cache"  # meshc's cache folder, beside the meshfile (compiler/output/cache.py)
SNAPSHOT = "output.pickle"  # in the cache folder: the output snapshot and the journal
FORMAT = 1  # of the cache's entries: part of the code fingerprint


# The libraries whose versions shape what meshc writes (as they name themselves on import).
_LIBRARIES = ("jinja2", "yaml", "jsonpatch", "markupsafe")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of meshc's own source and of the libraries that shape its output: a new meshc
    (or a new Jinja, PyYAML, …) never reads an old one's cache entries or journal. The
    libraries are named by their package's ``__init__`` (which holds ``__version__``), read
    without importing them: the journal check runs before anything heavy is loaded."""
    root = Path(__file__).resolve().parent.parent  # the whole compiler package
    digest = hashlib.sha256(f"{FORMAT}".encode())
    for name in _LIBRARIES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        digest.update(f"\0{name}\0".encode())
        if origin and os.path.isfile(origin):
            with open(origin, "rb") as handle:
                digest.update(handle.read())
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def command_line(meshfile: Path, out: Path | None, flags: list[tuple[str, str]],
                 limit_flags: tuple[tuple[str, int | float], ...]) -> dict[str, Any]:
    """The parts of a ``meshc render`` command line that change what it writes. Value flags
    apply kind by kind (``--set`` before ``--set-string`` …, as Helm applies them), in the order
    given within a kind: a later ``--set a=2`` wins over an earlier ``--set a=1``."""
    by_kind: dict[str, list[str]] = {}
    for kind, text in flags:
        by_kind.setdefault(kind, []).append(text)
    return {"meshfile": meshfile.name, "out": None if out is None else str(out),
            "cwd": os.getcwd() if out is not None and not out.is_absolute() else None,
            "set": sorted(by_kind.items()), "limit": sorted(limit_flags)}


# Commands whose journal the launcher (compiler/cli/launch.py) checked already in this process
CHECKED: list[dict[str, Any]] = []


def folder_digest(folder: Path | str) -> str:
    """Every entry under ``folder``, files with their size and modification time, hashed
    (paths relative to ``folder``: the digest is the same however it is named). Raises
    OSError."""
    stack = [""]
    entries = []
    while stack:
        rel_folder = stack.pop()
        with os.scandir(os.path.join(folder, rel_folder)) as it:
            for entry in it:
                rel = rel_folder + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel + "/")
                    entries.append(rel + "/")  # an added empty folder is a change too
                else:
                    st = entry.stat(follow_symlinks=False)
                    entries.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}")
    entries.sort()
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def tree_stats(target: Path, kept: dict[str, str] | None = None) -> dict[str, str] | None:
    """Per entry of ``target`` (an environment's folder: ``name/``), what it holds as
    :func:`folder_digest` sees it; None when the tree cannot be read. Entries of ``kept`` are
    taken as they are (their folders were not touched), not walked."""
    stats = dict(kept or {})
    try:
        with os.scandir(target) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name + "/" not in stats:
                        stats[entry.name + "/"] = folder_digest(entry.path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    stats[entry.name] = f"{st.st_size}\0{st.st_mtime_ns}"
    except OSError:
        return None
    return stats


def scan_stats(scan: Scan) -> dict[str, str]:
    """What :func:`tree_stats` finds in the tree as ``scan`` saw it, without walking it again."""
    stats = {name: f"{size}\0{mtime}" for name, (size, mtime) in scan.other.items()}
    for env, files in scan.files.items():
        stats[env + "/"] = _env_digest(env, files, scan.dirs[env])
    return stats


def synced_stats(scan: Scan, files: Mapping[str, str], counts: SyncCounts) -> dict[str, str]:
    """What :func:`tree_stats` finds after a whole-output
    :func:`~compiler.output.emit.sync_output` brought the tree ``scan`` saw to hold exactly
    ``files``: the environments it did not touch as they were; those it touched hold ``files``,
    as written (``counts.stats``) or as they were, in their folders and no others; those it
    removed, nothing."""
    touched = {env.partition("/")[0] for env in counts.touched}  # a region's: its folder's
    written = counts.stats or {}
    stats = {name: f"{size}\0{mtime}" for name, (size, mtime) in scan.other.items()}
    for env in scan.files.keys() - touched:
        stats[env + "/"] = _env_digest(env, scan.files[env], scan.dirs[env])
    by_env: dict[str, dict[str, Stat]] = {}
    for rel in files:
        env = rel.partition("/")[0]
        if env in touched:
            by_env.setdefault(env, {})[rel] = written.get(rel) or scan.files[env][rel]
    for env, mine in by_env.items():
        dirs = set()
        for rel in mine:
            folder = rel.rpartition("/")[0]
            while folder != env and folder not in dirs:
                dirs.add(folder)
                folder = folder.rpartition("/")[0]
        stats[env + "/"] = _env_digest(env, mine, dirs)
    return stats


def _env_digest(env: str, files: Mapping[str, Stat], dirs: set[str]) -> str:
    """:func:`folder_digest` of the folder ``env`` holding ``files`` and ``dirs`` (paths
    relative to its parent)."""
    cut = len(env) + 1
    entries = [f"{rel[cut:]}\0{size}\0{mtime}" for rel, (size, mtime) in files.items()]
    entries += [rel[cut:] + "/" for rel in dirs]
    entries.sort()
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def stats_digest(stats: dict[str, str]) -> str:
    """:func:`tree_stats` as one hash."""
    return hashlib.sha256(repr(sorted(stats.items())).encode()).hexdigest()


def tree_stat_digest(target: Path) -> str | None:
    """:func:`tree_stats` of ``target`` as one hash (None: the tree cannot be read)."""
    stats = tree_stats(target)
    return None if stats is None else stats_digest(stats)


def still_holds(root: Path, journal: dict[tuple[str, str], Any],
                environ: Mapping[str, str]) -> bool:
    """Whether every observation of ``journal`` is what the project shows now."""
    probe = ProjectFiles(root, environ, journal={})
    for (kind, rel), seen in journal.items():
        try:
            if kind == "read":
                probe.read(rel)
            elif kind == "path":
                probe.locate(rel)
            elif kind == "is_dir":
                probe.is_dir(rel)
            elif kind == "list_dir":
                probe.list_dir(rel)
            elif kind == "list_folders":
                probe.list_folders(rel)
            elif kind == "all_templates":
                probe.all_templates()
            elif kind == "tree":
                probe.tree_digests(rel)
            elif kind == "tool":
                probe.tool_stamp(rel)
            elif kind == "environ":
                _ = rel in probe.environ
            else:
                return False  # an observation this meshc does not know how to repeat
        except (OSError, ValueError):  # ValueError: OutsideProject, UnicodeDecodeError
            pass  # the error itself was noted
        if probe.journal.get((kind, rel)) != seen:  # type: ignore[union-attr]
            return False
    return True


def answer(project_root: Path, command: dict[str, Any], lock_timeout: float,
           say: Callable[[str], None]) -> bool:
    """True, having said ``… is up to date``, when the last full render into the output of
    the project at ``project_root``, made by this meshc with this ``command``, read nothing
    that has changed since and its output is untouched; False when anything may differ (then
    compile), or when it cannot be known (the full command reports why). Checked under the
    output's render lock; the snapshot is read once unless another render replaced it while
    this one waited for the lock."""
    path = project_root / CACHE_DIR / SNAPSHOT
    try:
        seen = os.stat(path)
    except OSError:
        return False
    snapshot = sealed.read_map(path)
    target = snapshot.get("target")
    if not isinstance(target, str):
        return False
    try:
        with output_lock(Path(target), lock_timeout, say):
            now = os.stat(path)
            if (now.st_mtime_ns, now.st_size, now.st_ino) != \
                    (seen.st_mtime_ns, seen.st_size, seen.st_ino):
                snapshot = sealed.read_map(path)  # a render finished meanwhile
            found = _up_to_date(snapshot, project_root, command)
    except (EmitError, OSError):
        return False
    if found is None:
        return False
    say(f"{found[0]} is up to date ({found[1]} files: written 0, removed 0, "
        f"unchanged {found[1]})")
    return True


def _up_to_date(snapshot: dict[str, Any], project_root: Path,
                command: dict[str, Any]) -> tuple[Path, int] | None:
    """The output folder (as the render named it) and its file count when ``snapshot``
    (the last full render's) still holds for ``command``; None when anything may differ."""
    journal = snapshot.get("journal")
    if not isinstance(journal, dict) or snapshot.get("code") != code_fingerprint() or \
            snapshot.get("command") != command or not isinstance(snapshot.get("target"), str):
        return None
    target = Path(snapshot["target"])
    if not still_holds(project_root, journal, os.environ):
        return None
    if tree_stat_digest(target) != snapshot.get("stat"):
        return None
    return Path(str(snapshot.get("shown", target))), int(snapshot.get("count", 0))
