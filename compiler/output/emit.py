"""Emit stage: the only code that writes the output directory.

:func:`sync_output` (``meshc render``) writes only the files whose bytes change and removes
only those no longer rendered. Every new file is first written beside the old one (a full
disk fails there, the tree unchanged), then renamed over it; an environment's folder holds
``.meshc-incomplete`` from before its first change until after its last, so no reader takes
an interrupted render for a complete one (docs/crash-safety.md). :func:`replace_environment`
swaps a whole folder in with one atomic ``renameat2(RENAME_EXCHANGE)`` (the GitOps exports).
Files are written with LF endings; nothing depends on the clock or on absolute paths.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.diagnostics import MeshcError
from ..core.incomplete import INCOMPLETE

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class EmitError(MeshcError):
    """The output directory could not be written; the previous output is untouched."""


def _libc_renameat2() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False if the OS cannot do it."""
    func = _libc_renameat2()
    if func is None:
        return False
    result = func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)  # type: ignore[operator]
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def write_files(root: Path, files: Mapping[str, str],
                written: dict[str, tuple[int, int]] | None = None) -> None:
    """Write ``files`` (relative POSIX paths → text) under ``root``: UTF-8, LF endings. With
    ``written``, each file's size and modification time (ns) as written go there by path (the
    output snapshot, without walking the tree again: compiler/output/journal.py)."""
    made: set[str] = set()
    for rel in sorted(files):
        _make_folder(root, rel, made)
        stat = _write(f"{root}/{rel}", files[rel].encode("utf-8"))
        if written is not None:
            written[rel] = (stat.st_size, stat.st_mtime_ns)


def _make_folder(root: Path, rel: str, made: set[str]) -> None:
    """The folder of ``rel`` under ``root`` (once per folder: ``made``); a path that would
    leave ``root`` is refused."""
    if any(part in ("", ".", "..") for part in rel.split("/")) or "\\" in rel:
        raise EmitError(f"refusing to write {rel!r}: it would leave the output directory")
    folder = rel.rpartition("/")[0]
    if folder not in made:
        (root / folder).mkdir(parents=True, exist_ok=True)
        made.add(folder)


def _write(path: str, data: bytes) -> os.stat_result:
    """Create (or truncate) ``path`` holding ``data``, and return its status: the bare system
    calls, which take half the time of ``open()``'s buffered text layer when a render writes
    ten thousand files."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view):]
        return os.fstat(handle)
    finally:
        os.close(handle)


def _swap_in(staged: Path, target: Path) -> None:
    """Put ``staged`` at ``target``; the old ``target`` (if any) is removed afterwards."""
    if target.is_symlink():
        raise EmitError(f"{target} is a symbolic link; refusing to replace it")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)  # a region's environment folder
        os.rename(staged, target)
        return
    if not target.is_dir():
        raise EmitError(f"{target} exists and is not a directory")
    if not _exchange(staged, target):
        old = staged.with_name(staged.name + ".old")
        os.rename(target, old)
        os.rename(staged, target)
        staged = old
    shutil.rmtree(staged)


def check_target(out_dir: Path, project_root: Path, inputs: Iterable[str]) -> None:
    """Refuse an output directory whose replacement would destroy something of the user's.

    A render replaces the output directory wholesale, so it must not be (or contain) the
    project or any input file, must not be a symbolic link, and, when it already exists, must
    look like meshc output (only environment folders holding a ``plan.json``).
    Raises :class:`EmitError`.
    """
    if out_dir.is_symlink():
        raise EmitError(f"output directory {out_dir} is a symbolic link; refusing to write "
                        "through it")
    target = out_dir.resolve()
    root = project_root.resolve()
    if target == root or target in root.parents:
        raise EmitError(f"output directory {out_dir} contains the project itself; rendering "
                        "there would replace meshfile.yaml and its inputs")
    for rel in sorted(inputs):
        path = (root / rel).resolve()
        if path == target or target in path.parents:
            raise EmitError(f"output directory {out_dir} holds project input {rel}; choose a "
                            "folder of its own (default: rendered)")
    if target.is_dir():
        foreign = sorted(entry.name for entry in target.iterdir()
                         if not _environment_folder(entry))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
            raise EmitError(f"refusing to replace {out_dir}: it holds files meshc did not write "
                            f"({shown}); choose an empty or new directory, or remove them")
        _check_writable(out_dir, target)
    elif target.exists():
        raise EmitError(f"{out_dir} exists and is not a directory")


def _environment_folder(entry: Path, regions: bool = True) -> bool:
    """Whether ``entry`` looks like an environment's output: a folder holding a ``plan.json``
    (or the marker of an interrupted render), or (an environment deployed in regions) a folder
    of such folders."""
    if not entry.is_dir() or entry.is_symlink():
        return False
    if (entry / "plan.json").is_file() or (entry / INCOMPLETE).is_file():
        return True  # the marker alone: a first render of it was interrupted
    children = list(entry.iterdir())
    return regions and bool(children) and all(_environment_folder(child, False)
                                              for child in children)


def _check_writable(out_dir: Path, target: Path) -> None:
    """The old tree is deleted after the swap: a folder of it meshc cannot empty would fail
    the render after the new tree is in place. Refuse up front (previous output intact)."""
    folders = [target, *(entry for entry in target.iterdir() if entry.is_dir())]
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise EmitError(f"output directory {out_dir} is read-only "
                            f"({folder.relative_to(target.parent)}); make it writable or choose "
                            "another (--out)")


def replace_environment(out_dir: Path, env: str, files: Mapping[str, str],
                        written: dict[str, tuple[int, int]] | None = None,
                        same: Iterable[str] = ()) -> None:
    """Swap in a new folder for environment ``env`` of the existing output ``out_dir``, built
    from ``files`` (paths relative to ``out_dir``, all under ``env/``) beside the output and
    exchanged with one atomic rename; the rest of the output is not touched (``written``: as
    :func:`write_files`). The files of ``same``, which the output holds already with the
    same bytes, are hard-linked rather than written: no data is copied, and the file system
    allocates (and then frees) no inode for them. Raises :class:`EmitError` (previous output
    intact)."""
    if any(not rel.startswith(f"{env}/") for rel in files):
        raise EmitError(f"refusing to write outside environment {env!r} of {out_dir}")
    staging = _make_staging(out_dir)
    try:
        linked = _link_files(out_dir, staging, sorted(set(same) & set(files)), written)
        write_files(staging, {rel: text for rel, text in files.items() if rel not in linked},
                    written)
        _swap_in(staging / env, out_dir / env)
        for folder in reversed(Path(env).parents[:-1]):  # a region's: production/eu-west
            (staging / folder).rmdir()
        staging.rmdir()
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise EmitError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _link_files(source: Path, target: Path, names: list[str],
                written: dict[str, tuple[int, int]] | None) -> set[str]:
    """Hard-link the files ``names`` of ``source`` into ``target`` (same relative paths);
    returns those linked (none where the file system has no hard links: they are written)."""
    made: set[str] = set()
    linked: set[str] = set()
    for rel in names:
        _make_folder(target, rel, made)
        try:
            os.link(f"{source}/{rel}", f"{target}/{rel}", follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP,
                             errno.EOPNOTSUPP):
                return linked  # no hard links here: the caller writes the rest
            raise
        linked.add(rel)
        if written is not None:
            stat = os.lstat(f"{target}/{rel}")
            written[rel] = (stat.st_size, stat.st_mtime_ns)
    return linked


def _make_staging(out_dir: Path) -> Path:
    """A new empty directory beside ``out_dir`` (same file system: renames stay atomic)."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = out_dir.parent / f".{out_dir.name}.meshc-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()  # not mkdtemp: its 0700 mode would end up on the output directory
    except OSError as exc:
        raise EmitError(f"cannot create a staging directory next to {out_dir}: "
                        f"{exc.strerror or exc}") from None
    return staging




# --- writing only what changed ---------------------------------------------------------------

INCOMPLETE_TEXT = ("A meshc render is changing this folder, or was interrupted while it did.\n"
                   "Until `meshc render` completes, meshc refuses to plan, apply, check, diff\n"
                   "or export from it.\n")
TEMP_SUFFIX = ".meshc-tmp"  # a file being written: ``.<name>.meshc-tmp`` beside it


@dataclass(frozen=True, slots=True)
class EnvironmentSync:
    """What :func:`sync_output` must do to one environment's folder (paths relative to the
    output directory)."""

    env: str
    write: tuple[str, ...]  # new or changed files
    remove: tuple[str, ...]  # files no longer rendered (and leftovers of an interrupted render)
    folders: tuple[str, ...]  # folders left empty by the removals, deepest first
    unchanged: int
    interrupted: bool  # the folder holds the marker of an interrupted render
    gone: bool = False  # the environment is no longer rendered: its whole folder goes

    @property
    def idle(self) -> bool:
        return not (self.write or self.remove or self.folders or self.interrupted or self.gone)


@dataclass(frozen=True, slots=True)
class SyncCounts:
    """Files written, removed and left as they were by :func:`sync_output`."""

    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    touched: tuple[str, ...] = ()  # environments whose folders changed
    stats: dict[str, Stat] | None = None  # each file written: its size and time as written


def sync_output(out_dir: Path, files: Mapping[str, str], environments: Iterable[str],
                whole: bool, known: Mapping[str, bytes] | None = None,
                idle: Iterable[str] = (), durable: bool = False,
                scan: Scan | None = None) -> SyncCounts:
    """Bring ``out_dir`` to hold ``files`` (paths ``env/...`` → text) for ``environments``,
    writing only the files whose bytes change and removing only those no longer rendered.

    With ``whole`` the folders of environments not named go too; otherwise they are not
    touched. ``known`` (path → :func:`file_digest`): what meshc last wrote there, when the tree
    is known to be untouched since (else each existing file is read and compared); ``idle``:
    environments known to need nothing. Every environment that changes holds the marker
    :data:`~compiler.pipeline.INCOMPLETE` from before its first change until after its last,
    so an interrupted render is recognised (docs/crash-safety.md); each file is replaced
    atomically (a temporary file in its folder, then a rename). Everything is planned, and
    every folder checked, before anything is written. An environment deployed in regions
    has a folder per region (``production/eu-west``): each is an environment here, with its own
    marker. ``scan``: the output as :func:`scan_tree` found it just before (under the render
    lock), instead of walking it again. Raises :class:`EmitError`."""
    names = list(environments)
    skip = set(idle)
    stats: dict[str, Stat] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if scan is None:
            scan = scan_tree(out_dir, None if whole else names)
        plans = [_plan_environment(out_dir, env, files, known, scan)
                 for env in names if env not in skip]
        if whole:
            plans += _plan_leftovers(names, scan)
        active = [plan for plan in plans if not plan.idle]
        staged: list[tuple[EnvironmentSync, list[tuple[str, str]], set[str]]] = []
        try:  # every new file's bytes, beside the old ones: a full disk fails here, harmlessly
            for plan in active:
                staged.append((plan, [], set()))
                _begin(out_dir, plan, files, durable, *staged[-1][1:], stats)
        except BaseException:
            for plan, temps, made in staged:
                _abandon(out_dir, plan, temps, made)
            raise
        for plan, temps, _ in staged:  # renames and removals: no data to write any more
            _finish(out_dir, plan, files, temps, durable, stats)
        written = [rel for plan in active for rel in plan.write]
        removed = [rel for plan in active for rel in plan.remove]
        touched = [plan.env for plan in active]
    except OSError as exc:
        raise EmitError(f"cannot write {out_dir}: {exc.strerror or exc}"
                        + (f" ({exc.filename})" if exc.filename else "")) from None
    unchanged = len(files) - len(written) if not skip else \
        sum(1 for rel in files if _owner(rel, names) is not None) - len(written)
    return SyncCounts(tuple(written), tuple(removed), unchanged, tuple(touched), stats)


def _owner(rel: str, names: Iterable[str]) -> str | None:
    """Which of the environments ``names`` the output file ``rel`` belongs to (a region's
    ``production/eu-west`` owns ``production/eu-west/...``), if any."""
    parts = rel.split("/", 2)
    for env in ("/".join(parts[:2]), parts[0]):
        if env in names:
            return env
    return None


def _plan_leftovers(names: list[str], scan: Scan) -> list[EnvironmentSync]:
    """What a whole render removes: the folders of environments no longer rendered and, in the
    folder of an environment deployed in regions (``production/`` of ``production/eu-west``),
    the folders of its regions no longer rendered and anything else it holds (the files of
    the environment before it had regions)."""
    groups = {name.partition("/")[0] for name in names if "/" in name}
    found = []
    for top in sorted(scan.files):
        if top in names:
            continue
        if top not in groups:
            found.append(_plan_gone(top, scan))
            continue
        found += [_plan_gone(rel, scan) for rel in sorted(scan.dirs[top])
                  if rel.count("/") == 1 and rel not in names]
        loose = sorted(rel for rel in scan.files[top] if rel.count("/") == 1)
        marker = f"{top}/{INCOMPLETE}"
        found.append(EnvironmentSync(top, (), tuple(r for r in loose if r != marker), (),
                                     0, marker in loose))
    return found


def _scanned(scan: Scan, env: str) -> tuple[dict[str, Stat], set[str]]:
    """The files and folders under ``env``'s folder in ``scan`` (a region's, from the walk of
    its environment's folder when that was walked whole)."""
    if env in scan.files:
        return scan.files[env], scan.dirs[env]
    top, prefix = env.partition("/")[0], f"{env}/"
    return ({rel: st for rel, st in scan.files.get(top, {}).items() if rel.startswith(prefix)},
            {rel for rel in scan.dirs.get(top, ()) if rel.startswith(prefix)})


def file_digest(data: bytes) -> bytes:
    """The digest meshc's output snapshot keeps of each file it wrote."""
    return hashlib.blake2b(data, digest_size=16).digest()


def _plan_environment(out_dir: Path, env: str, files: Mapping[str, str],
                      known: Mapping[str, bytes] | None, scan: Scan) -> EnvironmentSync:
    folder = out_dir / env
    mine = {rel: files[rel] for rel in files if rel.startswith(f"{env}/")}
    for path in (folder, *list(Path(env).parents)[:-1]):  # a region's: production/ too
        path = out_dir / path
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise EmitError(f"{path} is in the way: it is not a folder meshc wrote")
    found, found_dirs = _scanned(scan, env)
    existing, dirs = set(found), set(found_dirs)
    interrupted = f"{env}/{INCOMPLETE}" in existing
    existing.discard(f"{env}/{INCOMPLETE}")
    write = []
    same = 0
    for rel in sorted(mine):
        if rel in existing:
            data = mine[rel].encode("utf-8")
            if known is not None and not interrupted and rel in known:
                unchanged = known[rel] == file_digest(data)
            else:
                unchanged = _same_bytes(out_dir / rel, data)
            if unchanged:
                same += 1
                continue
        write.append(rel)
    needed = {f"{env}/{rel}" for rel in _parents(mine, env)} | {env}
    staged = {_temp_rel(rel) for rel in write}  # an interrupted render's: written over
    remove = sorted(existing - set(mine) - staged)
    folders = sorted(dirs - needed, key=lambda d: (-d.count("/"), d))
    return EnvironmentSync(env, tuple(write), tuple(remove), tuple(folders), same, interrupted)


def _plan_gone(env: str, scan: Scan) -> EnvironmentSync:
    found, dirs = _scanned(scan, env)
    existing = set(found)
    existing.discard(f"{env}/{INCOMPLETE}")
    return EnvironmentSync(env, (), tuple(sorted(existing)),
                           tuple(sorted(dirs, key=lambda d: (-d.count("/"), d))), 0, False,
                           gone=True)


def _parents(files: Iterable[str], env: str) -> set[str]:
    """Every folder (below the environment's, relative to it) that holds one of ``files``
    (``env/...``; a region's ``env`` is ``production/eu-west``)."""
    found: set[str] = set()
    for rel in files:
        folder = rel[len(env) + 1:].rpartition("/")[0]
        while folder and folder not in found:
            found.add(folder)
            folder = folder.rpartition("/")[0]
    return found


Stat = tuple[int, int]  # a file's size and modification time (ns)


@dataclass(frozen=True, slots=True)
class Scan:
    """One walk of an output tree: per environment folder (by name), its files — anything not
    a folder, symbolic links included (removed or replaced, never followed) — with their
    :data:`Stat`, and its folders (paths relative to the output); ``other``: the output's own
    entries that are not folders. A render walks its output once and plans, compares and
    records from this."""

    files: dict[str, dict[str, Stat]]
    dirs: dict[str, set[str]]
    other: dict[str, Stat]


def scan_tree(out_dir: Path, only: Iterable[str] | None = None) -> Scan:
    """Walk ``out_dir`` (nothing when it does not exist), or only its entries named ``only``.
    Raises OSError."""
    scan = Scan({}, {}, {})
    if not out_dir.is_dir():
        return scan
    if only is None:
        with os.scandir(out_dir) as it:
            top = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in it]
    else:
        top = [(name, os.path.isdir(out_dir / name) and not os.path.islink(out_dir / name))
               for name in only if os.path.lexists(out_dir / name)]
    for name, is_dir in sorted(top):
        if is_dir:
            scan.files[name], scan.dirs[name] = _walk(out_dir, name)
        else:
            st = os.lstat(out_dir / name)
            scan.other[name] = (st.st_size, st.st_mtime_ns)
    return scan


def _walk(out_dir: Path, env: str) -> tuple[dict[str, Stat], set[str]]:
    """The files (with their :data:`Stat`) and the folders under ``out_dir/env``, relative to
    ``out_dir``."""
    files: dict[str, Stat] = {}
    dirs: set[str] = set()
    stack = [env]
    while stack:
        rel = stack.pop()
        with os.scandir(out_dir / rel) as it:
            for entry in it:
                path = f"{rel}/{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    dirs.add(path)
                    stack.append(path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    files[path] = (st.st_size, st.st_mtime_ns)
    return files, dirs


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        if os.path.islink(path):
            return False
        with open(path, "rb") as handle:
            return handle.read(len(data) + 1) == data
    except OSError:
        return False


def _temp_rel(rel: str) -> str:
    head, _, name = rel.rpartition("/")
    return f"{head}/.{name}{TEMP_SUFFIX}"


def _temp(out_dir: Path, rel: str) -> str:
    return f"{out_dir}/{_temp_rel(rel)}"


def _deferred(plan: EnvironmentSync) -> set[str]:
    """Files of ``plan.write`` that cannot be staged beside the old files: a file or folder
    being removed is in their way (a file that becomes a folder, or the reverse)."""
    gone = set(plan.remove) | set(plan.folders)
    found = set()
    for rel in plan.write:
        parts = rel.split("/")
        if rel in gone or any("/".join(parts[:i]) in gone for i in range(2, len(parts))):
            found.add(rel)
    return found


def _begin(out_dir: Path, plan: EnvironmentSync, files: Mapping[str, str], durable: bool,
           temps: list[tuple[str, str]], made: set[str], stats: dict[str, Stat]) -> None:
    """The first half of ``plan``: the marker, then every new file written to its temporary
    name beside the old one (``temps``: temporary and final paths; ``made``: folders made;
    ``stats``: each file's size and time as written, which its rename keeps)."""
    folder = out_dir / plan.env
    if not folder.exists():
        head = plan.env
        while head and not (out_dir / head).exists():  # a region's: production/ too
            made.add(head)
            head = head.rpartition("/")[0]
        folder.mkdir(parents=True)
    handle = os.open(folder / INCOMPLETE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     0o666)
    try:
        os.write(handle, INCOMPLETE_TEXT.encode())
        if durable:
            os.fsync(handle)
    finally:
        os.close(handle)
    if durable:
        _fsync_folder(folder)
    later = _deferred(plan)
    for rel in plan.write:
        if rel in later:
            continue
        head = rel.rpartition("/")[0]
        if head not in made and not os.path.isdir(out_dir / head):
            (out_dir / head).mkdir(parents=True, exist_ok=True)
            while head and head not in made:
                made.add(head)
                head = head.rpartition("/")[0]
        temp = _temp(out_dir, rel)
        temps.append((temp, f"{out_dir}/{rel}"))
        st = _write(temp, files[rel].encode("utf-8"))
        stats[rel] = (st.st_size, st.st_mtime_ns)


def _abandon(out_dir: Path, plan: EnvironmentSync, temps: list[tuple[str, str]],
             made: set[str]) -> None:
    """Undo :func:`_begin` after an error (a full disk): the old files were not touched."""
    for temp, _ in temps:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    if not plan.interrupted:
        with contextlib.suppress(OSError):
            os.unlink(out_dir / plan.env / INCOMPLETE)
    for rel in sorted(made, key=lambda d: (-d.count("/"), d)):
        with contextlib.suppress(OSError):
            os.rmdir(out_dir / rel)


def _finish(out_dir: Path, plan: EnvironmentSync, files: Mapping[str, str],
            temps: list[tuple[str, str]], durable: bool, stats: dict[str, Stat]) -> None:
    """The second half of ``plan``: removals, renames, and the marker last."""
    folder = out_dir / plan.env
    for rel in plan.remove:  # first: a file removed may be in the way of a folder written
        os.unlink(out_dir / rel)
    for rel in plan.folders:  # and a folder removed in the way of a file
        os.rmdir(out_dir / rel)
    for temp, final in temps:
        os.replace(temp, final)
    made: set[str] = set()
    for rel in sorted(_deferred(plan)):
        _make_folder(out_dir, rel, made)
        st = _write(_temp(out_dir, rel), files[rel].encode("utf-8"))
        stats[rel] = (st.st_size, st.st_mtime_ns)
        os.replace(_temp(out_dir, rel), f"{out_dir}/{rel}")
    if durable:
        os.sync()  # every file written reaches the disk before the marker goes
    os.unlink(folder / INCOMPLETE)
    if plan.gone:
        os.rmdir(folder)
    if durable:
        _fsync_folder(folder.parent if plan.gone else folder)


def _fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
