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

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import sealed
from ..core.diagnostics import CompileError
from ..core.files import ProjectFiles
from ..model.model import Release
from ..render.inputs import template_closure
from ..render.templating import Templates
from ..syntax.yamlsrc import LazySpans, ValuesDoc, load_values_doc
from .journal import SNAPSHOT, code_fingerprint, folder_digest, tree_stats
from .journal import stats_digest as _stats_digest


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
    # environments whose pack on disk holds exactly this run's entries (every entry hit,
    # nothing added): save() leaves those files as they are
    kept: set[str] = field(default_factory=set)
    output: dict[str, Any] | None = None  # the last output snapshot, once read
    # per environment name: (prepared environment, compiler, limits, digest of what all its
    # releases' keys share), reused only for those same objects (see output.parallel)
    environments: dict[str, tuple[Any, Any, str, str]] = field(default_factory=dict)

    def chart_hash(self, release: Release) -> str:
        """A hash of every template the release's Jinja chart can load (see
        :func:`compiler.render.inputs.template_closure`); of every file of a Helm chart's
        folder, recursively."""
        folder = release.chart.ref
        if release.chart.is_helm:  # helm template reads the whole folder
            return hashlib.sha256(json.dumps(release.chart.files).encode()).hexdigest()
        if folder not in self.closures:
            names = template_closure(self.files, self.templates, list(release.chart.templates))
            if release.chart.schema is not None:  # it decides which values are refused
                names.append(release.chart.schema.file)
            digest = hashlib.sha256()
            for name in sorted(set(names)):
                digest.update(f"{name}\0{_text_hash(self.files, name)}\0".encode())
            self.closures[folder] = digest.hexdigest()
        return self.closures[folder]

    def key(self, parts: dict[str, Any]) -> str:
        text = json.dumps({"code": code_fingerprint(), **parts}, sort_keys=True, default=repr,
                          ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def is_empty(self, env: str) -> bool:
        """Whether the cache holds no entry at all for ``env`` (nothing can hit)."""
        if env not in self.packs:
            self.packs[env] = self._load(env)
        return not self.packs[env]

    def get(self, env: str, key: str) -> Any | None:
        if env not in self.packs:
            self.packs[env] = self._load(env)
        entry = self.packs[env].get(key)
        if entry is not None:
            self.fresh.setdefault(env, {})[key] = entry
        return entry

    def forget_misses(self) -> None:
        """Drop the loaded packs once every release was looked up: what hit is held in this
        run's entries, and the rest is stale (it is not saved again). A global edit misses
        everywhere, so this frees a copy of every file's text before the releases compile.
        Looking up again afterwards reads the packs again."""
        self.kept = {env for env, pack in self.packs.items()
                     if env in self.fresh and self.fresh[env].keys() == pack.keys()}
        self.packs.clear()

    def put(self, env: str, key: str, entry: Any) -> None:
        self.kept.discard(env)
        self.fresh.setdefault(env, {})[key] = entry

    def _load(self, env: str) -> dict[str, Any]:
        return _read_sealed(self.root / f"{env}.pickle")

    def save(self) -> None:
        """Write this run's entries (only those used: stale ones are dropped). Best effort: a
        cache that cannot be written costs speed, never correctness. A pack that would be
        written as it was read is left alone (the entries are keyed by content: even one
        another render wrote meanwhile is never stale)."""
        try:
            _prepare_dir(self.root)
            for env, entries in self.fresh.items():
                if env in self.kept:
                    continue
                temp = self.root / f".{env}.pickle.tmp"
                with open(temp, "wb") as handle:
                    sealed.dump(entries, handle)
                temp.replace(self.root / f"{env}.pickle")
        except OSError:
            pass

    # --- the output directory ---------------------------------------------------------------

    def _last_output(self) -> dict[str, Any]:
        """The snapshot of the output the last render wrote (read once per run)."""
        if self.output is None:
            self.output = _read_sealed(self.root / SNAPSHOT)
        return self.output

    def changed_environments(self, target: Path, files: dict[str, str],
                             stats: dict[str, str] | None = None,
                             digests: dict[str, str] | None = None) -> set[str] | None:
        """The environments whose files differ from what ``target`` holds, as meshc last wrote
        it; None when that is not known (another folder, files touched since, environments
        added or removed): then the whole output must be rewritten. ``stats``: the tree's
        :func:`~compiler.output.journal.tree_stats`, when a walk found them already;
        ``digests``: :func:`env_digests` of ``files``, when computed already."""
        snapshot = self._last_output()
        before = snapshot.get("envs")
        if snapshot.get("target") != str(target.resolve()) or not isinstance(before, dict):
            return None
        now = env_digests(files) if digests is None else digests
        if stats is None:
            stats = tree_stats(target)
        if now.keys() != before.keys() or snapshot.get("stats") != stats:
            return None
        return {env for env, digest in now.items() if digest != before[env]}

    def same_files(self, target: Path, files: dict[str, str]) -> set[str]:
        """Which of ``files`` the output holds already, byte for byte, as meshc last wrote
        them (call after :meth:`changed_environments` found the output untouched)."""
        snapshot = self._last_output()
        if snapshot.get("target") != str(target.resolve()):
            return set()
        before = snapshot.get("files") or {}
        return {name for name, text in files.items() if before.get(name) == _file_digest(text)}

    def known_files(self, target: Path) -> dict[str, bytes] | None:
        """The digest of every file meshc last wrote to ``target`` (by path; see
        :func:`compiler.output.emit.file_digest`): call after :meth:`changed_environments`
        found the output untouched since."""
        snapshot = self._last_output()
        found = snapshot.get("files")
        if snapshot.get("target") != str(target.resolve()) or not isinstance(found, dict):
            return None
        return found

    def environment_unchanged(self, target: Path, env: str, files: dict[str, str]) -> bool:
        """Whether ``target``'s folder of ``env`` holds exactly ``files`` (that environment's
        files, paths ``env/...``) as meshc last wrote them, untouched since: then it need not
        be read to be compared."""
        snapshot = self._last_output()
        if snapshot.get("target") != str(target.resolve()):
            return False
        if (snapshot.get("envs") or {}).get(env) != _content_digest(files):
            return False
        try:
            return (snapshot.get("stats") or {}).get(f"{env}/") == folder_digest(target / env)
        except OSError:
            return False

    def record_output(self, target: Path, files: dict[str, str],
                      journal: dict[str, Any] | None = None,
                      stats: dict[str, str] | None = None,
                      digests: dict[str, str] | None = None) -> None:
        """Remember what was just written to ``target`` (see :meth:`changed_environments`) and,
        with ``journal`` (its ``command`` and observations), what the render read (see
        :func:`compiler.output.journal.answer`). ``stats``: the tree's
        :func:`~compiler.output.journal.tree_stats` as the render left it, when it knows them
        without walking the tree (:func:`~compiler.output.journal.synced_stats`); ``digests``:
        :func:`env_digests` of ``files``, when computed already."""
        if stats is None:
            stats = tree_stats(target)
        self.output = None  # the last snapshot's file digests go before the new ones are made
        snapshot = {"target": str(target.resolve()), "envs": env_digests(files) if digests is None else digests,
                    "stats": stats,
                    "files": {name: _file_digest(text) for name, text in files.items()},
                    "stat": None if stats is None else _stats_digest(stats),
                    "count": len(files), "code": code_fingerprint(), **(journal or {})}
        try:
            _prepare_dir(self.root)
            temp = self.root / f".{SNAPSHOT}.tmp"
            with open(temp, "wb") as handle:
                sealed.dump(snapshot, handle)
            temp.replace(self.root / SNAPSHOT)
        except OSError:
            pass
        self.output = snapshot


def _read_sealed(path: Path) -> dict[str, Any]:
    return sealed.read_map(path)


def _prepare_dir(root: Path) -> None:
    """The cache folder, ours (see sealed.own_dir) and ignoring itself in git."""
    sealed.own_dir(root)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# meshc's cache: safe to delete, never commit\n*\n")


def _file_digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def env_digests(files: dict[str, str]) -> dict[str, str]:
    """A content digest per environment (the first folder of each path): of every file's
    text, so a render computes them once, for the check and for the new snapshot."""
    by_env: dict[str, dict[str, str]] = {}
    for name, text in files.items():
        by_env.setdefault(name.partition("/")[0], {})[name] = text
    return {env: _content_digest(part) for env, part in by_env.items()}


def _content_digest(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


PREFETCH_BYTES = 256 * 1024  # of values text to parse, below which one process is quicker


def _values_key(text: str) -> str:
    return hashlib.sha256(f"{code_fingerprint()}\0{text}".encode()).hexdigest()


def _parse_values(item: tuple[str, str]) -> Any:
    """In a worker: the data of one values file, or None when it has errors (reported later)."""
    path, text = item
    try:
        return load_values_doc(text, path).data
    except CompileError:
        return None


class ParsedValues:
    """Values files already parsed, by content: ``load`` skips YAML parsing for a file whose
    exact text (under this meshc) was seen before. Spans stay exact (parsed lazily from the
    text on demand)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: dict[str, Any] | None = None
        self.used: dict[str, Any] = {}

    def prefetch(self, files: ProjectFiles, refs: Iterable[str]) -> None:
        """Parse the values files ``refs`` names that are not held yet, two or more at a time on
        separate cores when there is enough text to repay the forks (the values files of a
        large project are its biggest inputs). Files that cannot be read or parsed are left to
        :meth:`load`, which reports them in order."""
        if self.entries is None:
            self.entries = self._read()
        todo: dict[str, tuple[str, str]] = {}
        for ref in refs:
            try:
                path = files.normalize(ref)
                text = files.read(path)
            except (OSError, ValueError):  # ValueError: OutsideProject, UnicodeDecodeError
                continue
            key = _values_key(text)
            if key not in self.entries:
                todo[key] = (path, text)
        import multiprocessing  # here: most commands never fork, and these imports cost
        from concurrent.futures import ProcessPoolExecutor

        jobs = min(len(todo), os.cpu_count() or 1)
        if jobs < 2 or sum(len(text) for _, text in todo.values()) < PREFETCH_BYTES or \
                "fork" not in multiprocessing.get_all_start_methods():
            return
        ordered = sorted(todo.items(), key=lambda item: -len(item[1][1]))  # biggest first
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            parsed = list(pool.map(_parse_values, [item for _, item in ordered]))
        for (key, _), data in zip(ordered, parsed, strict=True):
            if data is not None:
                self.entries[key] = data

    def load(self, path: str, text: str) -> ValuesDoc:
        """The :class:`ValuesDoc` of ``text`` (read from ``path``); raises like
        :func:`load_values_doc`."""
        if self.entries is None:
            self.entries = self._read()
        key = _values_key(text)
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
