"""One render at a time per output location.

Two ``meshc render`` runs into the same output would each build a staging tree and swap it in;
the swaps themselves are atomic, but the runs would race on the checks before them (what the
output holds, whether it is up to date) and on the environments a partial render carries over.
:func:`output_lock` serializes them with ``flock`` on the output's parent directory (the
folder the staging tree and the swap happen in), held from the first look at the output until
the swap is done. A second render waits for the first (saying so), up to a timeout, then fails
clearly.

Locking the directory itself leaves nothing behind — no lock file to clean up after a render
killed with SIGKILL (the kernel drops the lock with the process), none to confuse a later run —
at the price of also serializing renders into different outputs of one folder. Where the file
system cannot lock a directory (some network file systems), renders are not serialized.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

from .emit import EmitError

POLL_SECONDS = 0.05
_UNSUPPORTED = (errno.EBADF, errno.EINVAL, errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP)


@contextlib.contextmanager
def output_lock(out_dir: Path, timeout: float,
                waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the render lock of ``out_dir`` for the block. Waits up to ``timeout`` seconds for
    another holder (calling ``waiting`` once with a message); raises :class:`EmitError` when
    the lock cannot be had in time or the folder cannot be opened."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    folder = out_dir.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise EmitError(f"cannot use {folder} for {out_dir}: {exc.strerror or exc}") from None
    try:
        _acquire(handle, out_dir, timeout, waiting)
        yield
    finally:
        os.close(handle)  # releases the lock


def _acquire(handle: int, out_dir: Path, timeout: float,
             waiting: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                return  # this file system cannot lock directories: go on unserialized
            raise EmitError(f"cannot lock {out_dir.parent}: {exc.strerror or exc}") from None
        if time.monotonic() >= deadline:
            raise EmitError(f"another meshc render into {out_dir} (or beside it) is still "
                            f"running; gave up waiting after {timeout:g} s "
                            "(render --lock-timeout)")
        if waiting is not None and not told:
            waiting(f"waiting for another meshc render into {out_dir} (or beside it) to "
                    "finish…")
            told = True
        time.sleep(POLL_SECONDS)
