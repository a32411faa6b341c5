"""Writing generated trees that live beside the project's own files: GitOps exports
(``gitops/<engine>/<env>/``, one folder per environment swapped in atomically) and generated
files in a folder the user also owns (``.github/workflows``: each file replaced atomically, the
others never touched). Only what changed is written; LF endings, UTF-8.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from .emit import EmitError, replace_environment


def _same_tree(folder: Path, files: Mapping[str, str], prefix: str) -> bool:
    """Whether ``folder`` holds exactly ``files`` (paths under ``prefix``/), byte for byte."""
    if not folder.is_dir():
        return False
    on_disk = {f"{prefix}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*")
               if p.is_file() or p.is_symlink()}
    if on_disk != set(files):
        return False
    base = folder.parents[prefix.count("/")]  # the export's folder (a region's env is a/b)
    try:
        return all((base / rel).read_bytes() == files[rel].encode("utf-8") for rel in files)
    except OSError:
        return False


def write_export(out: Path, env: str, files: Mapping[str, str],
                 ours: Callable[[bytes], bool] = lambda data: True) -> bool:
    """Make ``out/env`` hold exactly ``files`` (paths relative to ``out``, all under ``env/``):
    built beside it and swapped in with one atomic rename, so a reader sees the old export or
    the new one. Returns False when it held them already (nothing written). A file there that
    the new export does not write and ``ours`` does not recognise (the user's own) makes it
    refuse, the folder untouched. Raises :class:`EmitError`."""
    target = out / env
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise EmitError(f"{target} is not a directory meshc wrote; refusing to replace it")
    if _same_tree(target, files, env):
        return False
    foreign = _foreign(target, files, env, ours)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise EmitError(f"refusing to replace {target}: it holds files meshc did not write "
                        f"({shown}); move them elsewhere, or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmitError(f"cannot create {out}: {exc.strerror or exc}") from None
    replace_environment(out, env, files)
    return True


def _foreign(folder: Path, files: Mapping[str, str], prefix: str,
             ours: Callable[[bytes], bool]) -> list[str]:
    """The files under ``folder`` that the new export leaves out and ``ours`` disowns."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*")):
        rel = f"{prefix}/{path.relative_to(folder).as_posix()}"
        if path.is_dir() and not path.is_symlink() or rel in files:
            continue
        try:
            mine = path.is_file() and not path.is_symlink() and ours(path.read_bytes())
        except OSError:
            mine = False
        if not mine:
            found.append(path.relative_to(folder).as_posix())
    return found


def write_generated(folder: Path, files: Mapping[str, str]) -> list[str]:
    """Write ``files`` (names relative to ``folder``) each atomically (temporary file, then
    rename); files whose bytes are unchanged are left alone, other files in ``folder`` are
    never touched. Returns the names written. Raises :class:`EmitError`."""
    written = []
    try:
        for name in sorted(files):
            path = folder / name
            data = files[name].encode("utf-8")
            if path.is_file() and path.read_bytes() == data:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                os.chmod(temp, 0o644)
                os.replace(temp, path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            written.append(name)
    except OSError as exc:
        raise EmitError(f"cannot write {folder}: {exc.strerror or exc}") from None
    return written
