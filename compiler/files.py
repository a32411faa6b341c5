"""Reading the project's input files, confined to the project directory.

The one place the compiler reads input files. Paths are project-relative POSIX strings; a path
that leaves the project (``..``, absolute, or a symlink pointing out) is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from . import limits


class OutsideProject(ValueError):
    """A path names something outside the project directory."""


class InputRefused(OSError):
    """An input file meshc will not read: too large (limits.fileSize) or not a regular file.
    An OSError, so every reader's existing error handling reports it with the file."""


class NotUTF8(UnicodeDecodeError):
    """A file that is not UTF-8, with the line and column of the first bad byte."""

    def __init__(self, exc: UnicodeDecodeError, data: bytes) -> None:
        super().__init__(exc.encoding, exc.object, exc.start, exc.end, exc.reason)
        before = data[:exc.start]
        self.line = before.count(b"\n") + 1
        self.col = exc.start - (before.rfind(b"\n") + 1) + 1

    def __str__(self) -> str:
        return (f"not UTF-8 text: byte 0x{self.object[self.start]:02x} at line {self.line}, "
                f"column {self.col}")


def read_bounded(path: Path | str) -> bytes:
    """The bytes of regular file ``path``, refused without reading it when it is larger than
    ``limits.fileSize`` (or is a FIFO, a device…). Raises OSError (:class:`InputRefused`)."""
    limit = limits.current().file_size
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(0, "not a regular file", str(path))
        if info.st_size > limit:
            raise InputRefused(0, f"file too large: {info.st_size:,} bytes, over "
                                  f"{limits.describe('file_size', limit)}", str(path))
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while we looked
        raise InputRefused(0, f"file too large: over {limits.describe('file_size', limit)}",
                           str(path))
    return data


def decode_text(data: bytes) -> str:
    """UTF-8 text with CRLF normalised; raises :class:`NotUTF8` with the bad byte's position."""
    try:
        return data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        raise NotUTF8(exc, data) from None


class ProjectFiles:
    """Reads files under ``root`` and remembers their text for diagnostics excerpts."""

    def __init__(self, root: Path, environ: Mapping[str, str] | None = None) -> None:
        self.root = root.resolve()
        # the process environment as the CLI passes it in; templates read only the names
        # the meshfile's allowEnv lists (compiler/sandbox.py: env_var, required_env)
        self.environ: Mapping[str, str] = environ if environ is not None else {}
        self.texts: dict[str, str] = {}

    def locate(self, rel: str) -> Path:
        """The absolute path of project-relative ``rel``; raises OutsideProject if it escapes."""
        pure = PurePosixPath(rel.replace(os.sep, "/"))
        if pure.is_absolute() or rel.startswith("~"):
            raise OutsideProject(f"'{rel}' is an absolute path; paths are relative to the project")
        target = (self.root / pure).resolve()
        if target != self.root and self.root not in target.parents:
            raise OutsideProject(f"'{rel}' points outside the project directory")
        return target

    def normalize(self, rel: str) -> str:
        """``rel`` in canonical project-relative form (``a/../b`` → ``b``)."""
        return self.locate(rel).relative_to(self.root).as_posix()

    def read(self, rel: str) -> str:
        """The text of ``rel`` (UTF-8, CRLF normalised); raises OSError, OutsideProject,
        UnicodeDecodeError."""
        if rel in self.texts:
            return self.texts[rel]
        path = self.locate(rel)
        text = decode_text(read_bounded(path))
        self.texts[rel] = text
        return text

    def is_dir(self, rel: str) -> bool:
        try:
            return self.locate(rel).is_dir()
        except OutsideProject:
            return False

    def list_dir(self, rel: str) -> list[str]:
        """Sorted project-relative names of the regular files directly in folder ``rel``."""
        folder = self.locate(rel)
        names = sorted(entry.name for entry in folder.iterdir() if entry.is_file())
        return [f"{rel.rstrip('/')}/{name}" for name in names]
