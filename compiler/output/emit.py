"""Emit stage: the only code that writes the output directory.

A render is built completely in a temporary directory next to the output, then swapped in with
one atomic ``renameat2(RENAME_EXCHANGE)`` where the OS has it (Linux), or two renames
elsewhere, so an interrupted render leaves the previous output intact. When only one
environment's files changed, only that environment's folder is built and swapped
(:func:`replace_environment`): still one atomic exchange, so still the old tree or the new one,
at a third of the writing for three environments. Files are written with LF endings in sorted
order; nothing depends on the clock or on absolute paths.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ..core.diagnostics import MeshcError

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
    """Whether ``entry`` looks like an environment's output: a folder holding a ``plan.json``,
    or (an environment deployed in regions) a folder of such folders."""
    if not entry.is_dir() or entry.is_symlink():
        return False
    if (entry / "plan.json").is_file():
        return True
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


def write_output(out_dir: Path, files: Mapping[str, str], environments: Iterable[str],
                 whole: bool) -> None:
    """Write ``files`` (paths relative to ``out_dir``) and swap them in with one atomic rename.

    See :func:`staged_output`; call :func:`check_target` first. Raises :class:`EmitError`.
    """
    with staged_output(out_dir, environments, whole) as staging:
        write_files(staging, files)


@contextmanager
def staged_output(out_dir: Path, environments: Iterable[str], whole: bool) -> Iterator[Path]:
    """A staging directory beside ``out_dir`` to write the new output into; swapped in with one
    atomic rename when the block ends normally, removed when it raises.

    With ``whole`` the entire output directory is replaced (environments no longer in the
    meshfile disappear); otherwise the other environments' folders are carried over (hard
    links) and only those of ``environments`` are new. Raises :class:`EmitError` (previous
    output intact).
    """
    staging = _make_staging(out_dir)
    try:
        if not whole and out_dir.is_dir():
            _carry_over(out_dir, staging, set(environments))
        yield staging
        _swap_in(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise EmitError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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


def _carry_over(out_dir: Path, staging: Path, replaced: set[str]) -> None:
    """Copy the environments not being re-rendered into ``staging`` (hard links: cheap)."""
    for entry in sorted(out_dir.iterdir()):
        if entry.name in replaced or not entry.is_dir():
            continue
        shutil.copytree(entry, staging / entry.name, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
