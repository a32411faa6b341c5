"""Reading the project's input files, confined to the project directory.

The one place the compiler reads input files. Paths are project-relative POSIX strings; a path
that leaves the project (``..``, absolute, or a symlink pointing out) is refused.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


class OutsideProject(ValueError):
    """A path names something outside the project directory."""


class ProjectFiles:
    """Reads files under ``root`` and remembers their text for diagnostics excerpts."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
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
        text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
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
