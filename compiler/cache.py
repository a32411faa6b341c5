"""A content-addressed cache of compiled releases, so an unchanged re-render is cheap.

The key of a release in an environment is a hash of everything its files depend on: meshc's
own source code, the environment's template context and secret key names, the release's
settings (chart, labels, valuesKey, namespace, helm options, patches), its computed values, and
the text of every template its chart can load (static imports and includes followed; a dynamic
one makes every project template count). A hit can therefore never be stale: any change to any
of these is a different key. Entries live in ``.meshc-cache/`` beside the meshfile (it ignores
itself in git), one pack per environment holding only the current keys.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sealed
from .files import ProjectFiles
from .inputs import template_closure
from .model import Release
from .templating import Templates
from .yamlsrc import LazySpans, ValuesDoc, load_values_doc

CACHE_DIR = ".meshc-cache"
FORMAT = 1


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of meshc's own source: a new meshc never reads an old meshc's entries."""
    import jinja2
    import jsonpatch
    import yaml

    root = Path(__file__).resolve().parent
    versions = f"{FORMAT} {jinja2.__version__} {yaml.__version__} {jsonpatch.__version__}"
    digest = hashlib.sha256(versions.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _text_hash(files: ProjectFiles, name: str) -> str:
    try:
        return hashlib.sha256(files.read(name).encode()).hexdigest()
    except (OSError, UnicodeDecodeError, ValueError):
        return "missing"


@dataclass
class Cache:
    """Per-run access to the cache directory (loaded lazily, saved once at the end)."""

    root: Path
    files: ProjectFiles
    templates: Templates
    packs: dict[str, dict[str, Any]] = field(default_factory=dict)
    fresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    closures: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def chart_hash(self, release: Release) -> str:
        """A hash of every template the release's chart can load (see
        :func:`compiler.inputs.template_closure`)."""
        folder = release.chart.ref
        if folder not in self.closures:
            names = template_closure(self.files, self.templates, list(release.chart.templates))
            digest = hashlib.sha256()
            for name in sorted(set(names)):
                digest.update(f"{name}\0{_text_hash(self.files, name)}\0".encode())
            self.closures[folder] = digest.hexdigest()
        return self.closures[folder]

    def key(self, parts: dict[str, Any]) -> str:
        text = json.dumps({"code": code_fingerprint(), **parts}, sort_keys=True, default=repr,
                          ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, env: str, key: str) -> Any | None:
        if env not in self.packs:
            self.packs[env] = self._load(env)
        entry = self.packs[env].get(key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
            self.fresh.setdefault(env, {})[key] = entry
        return entry

    def put(self, env: str, key: str, entry: Any) -> None:
        self.fresh.setdefault(env, {})[key] = entry

    def _load(self, env: str) -> dict[str, Any]:
        return _read_sealed(self.root / f"{env}.pickle")

    def save(self) -> None:
        """Write this run's entries (only those used: stale ones are dropped). Best effort: a
        cache that cannot be written costs speed, never correctness."""
        try:
            _prepare_dir(self.root)
            for env, entries in self.fresh.items():
                temp = self.root / f".{env}.pickle.tmp"
                with open(temp, "wb") as handle:
                    sealed.dump(entries, handle)
                temp.replace(self.root / f"{env}.pickle")
        except OSError:
            pass

    # --- the output directory ---------------------------------------------------------------

    def output_unchanged(self, target: Path, files: dict[str, str]) -> bool:
        """Whether ``target`` holds exactly ``files`` as meshc last wrote them: same content
        (by hash), and no file added, removed or touched since (by size and mtime)."""
        snapshot = _read_sealed(self.root / "output.pickle")
        if snapshot.get("target") != str(target.resolve()):
            return False
        if snapshot.get("content") != _content_digest(files):
            return False
        return snapshot.get("stat") == _stat_digest(target)

    def record_output(self, target: Path, files: dict[str, str]) -> None:
        """Remember what was just written to ``target`` (see :meth:`output_unchanged`)."""
        snapshot = {"target": str(target.resolve()), "content": _content_digest(files),
                    "stat": _stat_digest(target)}
        try:
            _prepare_dir(self.root)
            with open(self.root / "output.pickle", "wb") as handle:
                sealed.dump(snapshot, handle)
        except OSError:
            pass


def _read_sealed(path: Path) -> dict[str, Any]:
    """A map meshc itself wrote to ``path`` (sealed.py: never a pickle a checkout brought);
    {} when it is missing, unreadable, forged or not a map — a cold cache, never an error."""
    try:
        with open(path, "rb") as handle:
            data = sealed.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
            TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _prepare_dir(root: Path) -> None:
    """The cache folder, ours (see sealed.own_dir) and ignoring itself in git."""
    sealed.own_dir(root)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# meshc's cache: safe to delete, never commit\n*\n")


def _content_digest(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


def _stat_digest(target: Path) -> str | None:
    """Every file under ``target`` with its size and modification time, hashed."""
    digest = hashlib.sha256()
    try:
        stack = [str(target)]
        entries = []
        while stack:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        st = entry.stat(follow_symlinks=False)
                        entries.append(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}")
    except OSError:
        return None
    for line in sorted(entries):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


class ParsedValues:
    """Values files already parsed, by content: ``load`` skips YAML parsing for a file whose
    exact text (under this meshc) was seen before. Spans stay exact (parsed lazily from the
    text on demand)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: dict[str, Any] | None = None
        self.used: dict[str, Any] = {}

    def load(self, path: str, text: str) -> ValuesDoc:
        """The :class:`ValuesDoc` of ``text`` (read from ``path``); raises like
        :func:`load_values_doc`."""
        if self.entries is None:
            self.entries = self._read()
        key = hashlib.sha256(f"{code_fingerprint()}\0{text}".encode()).hexdigest()
        data = self.entries.get(key)
        if data is None:
            doc = load_values_doc(text, path)
            data = doc.data
        self.used[key] = data
        return ValuesDoc(path, data, LazySpans(path, text))

    def _read(self) -> dict[str, Any]:
        return _read_sealed(self.root / "values.pickle")

    def save(self) -> None:
        """Keep the files parsed in this run (best effort, like the release cache)."""
        if not self.used or self.used.keys() == (self.entries or {}).keys():
            return
        try:
            _prepare_dir(self.root)
            temp = self.root / ".values.pickle.tmp"
            with open(temp, "wb") as handle:
                sealed.dump(self.used, handle)
            temp.replace(self.root / "values.pickle")
        except OSError:
            pass
