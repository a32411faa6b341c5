"""Pickles only meshc itself wrote: the cache's files are sealed with a per-user key.

The render cache (``.meshc-cache/`` beside the meshfile) holds pickles, and unpickling runs
code of the pickle's choosing. The folder ignores itself in git, but a pull request can still
add it (``git add -f``), so a pickle found in a checkout must never be trusted. Every pickle
the cache writes is prefixed with an HMAC-SHA256 under a random key kept outside any project
(``~/.cache/meshc/cache.key``, mode 0600, made on first use); :func:`load` unpickles only
what carries a valid seal and treats anything else as a cold cache. Without a usable key no
pickle is read at all.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import IO, Any

MAGIC = b"meshc-sealed-1\n"
_DIGEST = hashlib.sha256().digest_size


def key_file() -> Path:
    return Path.home() / ".cache" / "meshc" / "cache.key"


@functools.lru_cache(maxsize=1)
def _key() -> bytes | None:
    """This user's sealing key (created on first use), or None when it cannot be had."""
    path = key_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(handle, "wb") as out:
                out.write(secrets.token_bytes(32))
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None  # someone else's, or readable by others: not a secret
        key = path.read_bytes()
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    return key if len(key) >= 32 else None


def dump(obj: Any, handle: IO[bytes]) -> None:
    """Pickle ``obj`` to ``handle`` (a file open for writing, seekable), sealed (nothing is
    written without a key). The pickle streams into the file as it is made, signed on the way,
    and the seal is written into its place before it last: no copy of the whole pickle is held
    in memory (the render cache of a large project is tens of megabytes)."""
    key = _key()
    if key is None:
        raise OSError("no cache key")  # callers treat OSError as "cannot cache"
    mac = hmac.new(key, digestmod=hashlib.sha256)
    start = handle.tell()
    handle.write(MAGIC + bytes(_DIGEST))
    pickle.dump(obj, _Signed(handle, mac), protocol=pickle.HIGHEST_PROTOCOL)
    end = handle.tell()
    handle.seek(start + len(MAGIC))
    handle.write(mac.digest())
    handle.seek(end)


class _Signed:
    """A file that signs what is written to it."""

    def __init__(self, handle: IO[bytes], mac: hmac.HMAC) -> None:
        self.handle = handle
        self.mac = mac

    def write(self, data: bytes) -> int:
        self.mac.update(data)
        return self.handle.write(data)


def load(handle: IO[bytes]) -> Any:
    """Unpickle what :func:`dump` wrote; raises ``pickle.UnpicklingError`` for anything else
    (unsealed, forged, truncated) without unpickling it."""
    key = _key()
    blob = handle.read()
    if key is None or not blob.startswith(MAGIC):
        raise pickle.UnpicklingError("not sealed by this user's meshc")
    seal = blob[len(MAGIC):len(MAGIC) + _DIGEST]
    data = memoryview(blob)[len(MAGIC) + _DIGEST:]  # not a copy
    if not hmac.compare_digest(seal, hmac.new(key, data, hashlib.sha256).digest()):
        raise pickle.UnpicklingError("cache file seal does not match: ignored")
    return pickle.loads(data)


def own_dir(path: Path) -> None:
    """Make cache folder ``path``; raises OSError when it is a symbolic link (a checkout could
    point it anywhere: the cache writes only inside the project)."""
    if path.is_symlink():
        raise OSError(f"{path} is a symbolic link: not used")
    path.mkdir(exist_ok=True)


def read_map(path: Path) -> dict[str, Any]:
    """A map meshc itself wrote to ``path`` (never a pickle a checkout brought); {} when it is
    missing, unreadable, forged or not a map — a cold cache, never an error."""
    try:
        with open(path, "rb") as handle:
            data = load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
            TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
