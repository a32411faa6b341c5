"""Reading the project's input files, confined to the project directory.

The one place the compiler reads input files. Paths are project-relative POSIX strings; a path
that leaves the project (``..``, absolute, or a symlink pointing out) is refused.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from . import limits


class OutsideProject(ValueError):
    """A path names something outside the project directory."""


class InputRefused(OSError):
    """An input file meshc will not read: too large (limits.fileSize) or not a regular file.
    An OSError, so every reader's existing error handling reports it with the file."""


class SymlinkLoop(InputRefused):
    """A path through a symlink that points, directly or through others, back at itself."""

    def __init__(self, rel: str) -> None:
        super().__init__(errno.ELOOP, "a symlink loop (a symlink that leads back to itself)",
                         rel)


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a directory"))


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (``a FIFO (named pipe)``)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


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
    try:
        mode = os.stat(path).st_mode  # before opening: opening a FIFO blocks until a writer comes
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkLoop(str(path)) from None
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise InputRefused(errno.ENOENT, f"a dangling symlink (to '{os.readlink(path)}', "
                                             "which does not exist)", str(path)) from None
        raise
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
    if not stat.S_ISREG(mode):
        raise InputRefused(0, f"{file_kind(mode)}, not a regular file", str(path))
    # O_NONBLOCK: should a FIFO take the file's place between the stat and the open, the open
    # returns at once and the fstat below refuses it; on a regular file the flag changes nothing
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(0, f"{file_kind(info.st_mode)}, not a regular file",
                               str(path))
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
    """Reads files under ``root`` and remembers their text for diagnostics excerpts.

    With ``journal`` (a dict), every observation a compile makes of the project is noted there:
    each file read (a hash of its bytes, or the error), each path resolved, folder tested,
    listed or walked, each environment variable looked up. ``compiler/output/journal.py`` replays
    them to know, without compiling, that nothing a render read has changed."""

    def __init__(self, root: Path, environ: Mapping[str, str] | None = None,
                 journal: dict[tuple[str, str], Any] | None = None) -> None:
        self.root = root.resolve()
        self.journal = journal
        # the process environment as the CLI passes it in; templates read only the names
        # the meshfile's allowEnv lists (compiler/render/sandbox.py: env_var, required_env)
        given: Mapping[str, str] = environ if environ is not None else {}
        self.environ: Mapping[str, str] = given if journal is None else _Watched(given, journal)
        self.texts: dict[str, str] = {}
        self._located: dict[str, Path | OutsideProject | SymlinkLoop] = {}

    def _note(self, kind: str, rel: str, seen: Any) -> None:
        if self.journal is not None:
            self.journal.setdefault((kind, rel), seen)

    def locate(self, rel: str) -> Path:
        """The absolute path of project-relative ``rel``; raises OutsideProject if it escapes,
        :class:`SymlinkLoop` (an OSError) if resolving it goes round a symlink loop."""
        try:
            target = self._locate(rel)
        except OutsideProject:
            self._note("path", rel, "!outside")
            raise
        except SymlinkLoop:
            self._note("path", rel, "!loop")
            raise
        self._note("path", rel, str(target))
        return target

    def _locate(self, rel: str) -> Path:
        found = self._located.get(rel)  # many releases name one chart: resolve it once
        if found is None:
            try:
                found = self._resolve(rel)
            except (OutsideProject, SymlinkLoop) as exc:
                found = exc
            self._located[rel] = found
        if isinstance(found, (OutsideProject, SymlinkLoop)):
            raise found
        return found

    def _resolve(self, rel: str) -> Path:
        pure = PurePosixPath(rel.replace(os.sep, "/"))
        if pure.is_absolute() or rel.startswith("~"):
            raise OutsideProject(f"'{rel}' is an absolute path; paths are relative to the project")
        try:
            target = (self.root / pure).resolve()
        except RuntimeError:  # pathlib's "Symlink loop from …" (Python < 3.13)
            raise SymlinkLoop(rel) from None
        except OSError as exc:  # Python ≥ 3.13 raises ELOOP itself
            if exc.errno == errno.ELOOP:
                raise SymlinkLoop(rel) from None
            raise
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
        try:
            data = read_bounded(self.locate(rel))
        except FileNotFoundError as exc:
            link = self.root / rel
            if not os.path.islink(link):
                self._note("read", rel, f"!{type(exc).__name__} {exc.errno}")
                raise
            self._note("read", rel, "!dangling")
            raise InputRefused(errno.ENOENT, f"a dangling symlink (to '{os.readlink(link)}', "
                                             "which does not exist)", rel) from None
        except (OSError, OutsideProject) as exc:
            self._note("read", rel, f"!{type(exc).__name__} {getattr(exc, 'errno', '')}")
            raise
        self._note("read", rel, hashlib.sha256(data).hexdigest())
        text = decode_text(data)
        self.texts[rel] = text
        return text

    def is_dir(self, rel: str) -> bool:
        try:
            found = self.locate(rel).is_dir()
        except (OutsideProject, OSError):
            found = False
        self._note("is_dir", rel, found)
        return found

    def list_dir(self, rel: str) -> list[str]:
        """Sorted project-relative names of the entries directly in folder ``rel`` that are not
        folders: its regular files, and whatever else stands where a file could (a dangling or
        looping symlink, a FIFO), so that reading one reports it instead of skipping it."""
        try:
            folder = self.locate(rel)
            names = sorted(entry.name for entry in folder.iterdir() if not _is_folder(entry))
        except (OSError, OutsideProject) as exc:
            self._note("list_dir", rel, f"!{type(exc).__name__}")
            raise
        self._note("list_dir", rel, names)
        return [f"{rel.rstrip('/')}/{name}" for name in names]

    def list_folders(self, rel: str) -> list[str]:
        """Sorted project-relative names of the folders directly in folder ``rel`` (hidden
        ones left out): the candidates for a mistyped chart path."""
        try:
            folder = self.locate(rel)
            names = sorted(entry.name for entry in folder.iterdir()
                           if _is_folder(entry) and not entry.name.startswith("."))
        except (OSError, OutsideProject) as exc:
            self._note("list_folders", rel, f"!{type(exc).__name__}")
            raise
        self._note("list_folders", rel, names)
        prefix = "" if rel in ("", ".") else f"{rel.rstrip('/')}/"
        return [f"{prefix}{name}" for name in names]

    def tool_stamp(self, path: str) -> str:
        """Size and modification time of the external tool at absolute ``path`` (helm): noted,
        so that a render's journal is not trusted once that binary is replaced."""
        try:
            info = os.stat(path)
            stamp = f"{info.st_size}:{info.st_mtime_ns}"
        except OSError as exc:
            stamp = f"!{type(exc).__name__}"
        self._note("tool", path, stamp)
        return stamp

    def tree_digests(self, rel: str) -> list[tuple[str, str]]:
        """Every regular file under folder ``rel``, recursively, as sorted (project-relative
        name, sha256 of its bytes) pairs: what a Helm chart folder is made of."""
        try:
            folder = self.locate(rel)
            found = []
            for here, dirs, names in os.walk(folder):
                dirs.sort()
                for name in sorted(names):
                    path = os.path.join(here, name)  # read_bounded refuses a FIFO, a loop…
                    sub = os.path.relpath(path, folder).replace(os.sep, "/")
                    digest = hashlib.sha256(read_bounded(path)).hexdigest()
                    found.append((f"{rel.rstrip('/')}/{sub}", digest))
        except (OSError, OutsideProject) as exc:
            self._note("tree", rel, f"!{type(exc).__name__}")
            raise
        found.sort()
        self._note("tree", rel, [list(pair) for pair in found])
        return found

    def all_templates(self) -> list[str]:
        """Every ``*.j2`` of the project, hidden folders and virtualenvs left out (they are not
        the project's, and differ between machines)."""
        found = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and
                             not os.path.exists(os.path.join(folder, d, "pyvenv.cfg")))
            rel = os.path.relpath(folder, self.root)
            found += [posixpath.normpath(f"{rel}/{n}".replace(os.sep, "/")) for n in sorted(names)
                      if n.endswith(".j2")]
        self._note("all_templates", "", found)
        return found


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a symlink loop (Python ≥ 3.13 no longer hides it)
        return False


class _Watched(Mapping[str, str]):
    """The process environment, noting in a journal each variable looked up (None: unset)."""

    def __init__(self, given: Mapping[str, str], journal: dict[tuple[str, str], Any]) -> None:
        self._given = given
        self._journal = journal

    def __getitem__(self, name: str) -> str:
        self._journal.setdefault(("environ", name), self._given.get(name))
        return self._given[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._journal.setdefault(("environ", name), self._given.get(name))
        return name in self._given

    def __iter__(self) -> Iterator[str]:  # a compile never lists the environment
        raise TypeError("the process environment is looked up by name only")

    def __len__(self) -> int:
        return len(self._given)
