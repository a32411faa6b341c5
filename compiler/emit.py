"""Emit stage: the only code that writes the output directory.

A render is built completely in a temporary directory next to the output, then swapped in with
one atomic ``renameat2(RENAME_EXCHANGE)`` where the OS has it (Linux), or two renames
elsewhere, so an interrupted render leaves the previous output intact. Files are written with
LF endings in sorted order; nothing depends on the clock or on absolute paths.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class EmitError(Exception):
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


def _write_files(root: Path, files: Mapping[str, str]) -> None:
    for rel in sorted(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(files[rel])


def _swap_in(staged: Path, target: Path) -> None:
    """Put ``staged`` at ``target``; the old ``target`` (if any) is removed afterwards."""
    if target.is_symlink():
        raise EmitError(f"{target} is a symbolic link; refusing to replace it")
    if not target.exists():
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


def write_output(out_dir: Path, files: Mapping[str, str], environments: Iterable[str],
                 whole: bool) -> None:
    """Write ``files`` (paths relative to ``out_dir``) and swap them in atomically.

    With ``whole`` the entire output directory is replaced (environments no longer in the
    meshfile disappear); otherwise only the folders of ``environments`` are replaced.
    Raises :class:`EmitError` (previous output intact).
    """
    envs = sorted(set(environments))
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if out_dir.is_symlink():
            raise EmitError(f"output directory {out_dir} is a symbolic link; refusing to write "
                            "through it")
        staging = out_dir.parent / f".{out_dir.name}.meshc-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()  # not mkdtemp: its 0700 mode would end up on the output directory
    except OSError as exc:
        raise EmitError(f"cannot create a staging directory next to {out_dir}: "
                        f"{exc.strerror or exc}") from None
    try:
        _write_files(staging, files)
        if whole:
            _swap_in(staging, out_dir)
            return
        out_dir.mkdir(exist_ok=True)
        for env in envs:
            source = staging / env
            source.mkdir(exist_ok=True)
            _swap_in(source, out_dir / env)
        shutil.rmtree(staging)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise EmitError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
    except EmitError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
