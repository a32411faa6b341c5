"""What ``meshc charts …`` does, as library functions: pin the project's remote charts in its
lock (:func:`update_charts`), fill the chart cache from the lock (:func:`fetch_charts`), and
say where the lock stands (:func:`chart_status`).

Each takes the loaded :class:`~compiler.pipeline.Compiler`, the chart cache folder
(:func:`compiler.render.remote.cache_folder`) and, where packages may be pulled, the caller's
environment (the proxy, certificate and registry-credential settings ``helm pull`` keeps) and a
function giving the helm to run, called only when a package must be pulled: a warm cache needs
no helm. Each returns a frozen result or raises :class:`~compiler.core.diagnostics.CompileError`
with every problem located on the release's ``chart:`` (or the lock's entry).
"""

from __future__ import annotations

import json
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..core.diagnostics import CompileError, Diagnostic, choose_from
from ..core.files import decode_text
from ..core.process import HELM_INSTALL, HELM_VAR, HelmTool
from ..model.model import Project
from ..pipeline import Compiler
from ..render.remote import (
    UPDATE_HELP,
    ChartLock,
    Pin,
    Wanted,
    cached,
    fetch_pin,
    file_digest,
    format_lock,
    lock_name,
    package_meta,
    pull,
    read_lock,
    store,
    wanted,
)
from ..syntax.roundtrip import write_files

HelmSource = Callable[[], HelmTool]  # the helm to pull with; raises CompileError when there is none
NEW, UNCHANGED, CHANGED = "new", "unchanged", "changed"
PULLS = 4  # helm pulls at once (each is mostly waiting on the network)
SHORT = 12  # hex digits of a digest in the list's table

T = TypeVar("T")
R = TypeVar("R")


def no_helm(why: str) -> CompileError:
    """The error for a command that must pull a chart and has no helm to pull it with."""
    return CompileError([Diagnostic(
        "error", f"pulling remote charts needs helm (Helm 4): {why}",
        help=f"install {HELM_INSTALL}, or point {HELM_VAR} at the helm binary "
             f"(export {HELM_VAR}=/path/to/helm)")])


def chart_names(want: Wanted) -> tuple[str, ...]:
    """The names a command line may give ``want``'s chart by: the chart as the meshfile names it
    and, for an ``oci://`` reference, its last path segment."""
    short = posixpath.basename(want.chart.rstrip("/"))
    return (want.chart,) if short == want.chart else (want.chart, short)


def select(wants: Sequence[Wanted], names: Iterable[str]) -> list[Wanted]:
    """The ``wants`` whose chart is one of ``names`` (all of them when none is given). Raises
    :class:`CompileError` naming every unknown name and listing the valid ones."""
    names = list(dict.fromkeys(names))
    if not names:
        return list(wants)
    valid = sorted({n for w in wants for n in chart_names(w)})
    unknown = [n for n in names if n not in valid]
    if unknown:
        help_text = (choose_from(unknown[0], valid, "remote charts") if valid else
                     "no release uses a remote chart (chart: NAME with repo:, or chart: oci://…)")
        raise CompileError([Diagnostic("error", f"no remote chart '{name}' in the project",
                                       help=help_text) for name in unknown])
    return [w for w in wants if any(n in chart_names(w) for n in names)]


def _in_parallel(run: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[run(item) for item in items]``, up to :data:`PULLS` at once, in order."""
    if len(items) <= 1:
        return [run(item) for item in items]
    with ThreadPoolExecutor(min(PULLS, len(items))) as pool:
        return list(pool.map(run, items))


def _releases_note(want: Wanted) -> tuple[str, ...]:
    if not want.releases:
        return ()
    plural = "s" if len(want.releases) != 1 else ""
    return (f"deployed by release{plural} {', '.join(want.releases)}",)


# --- meshc charts update ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PinUpdate:
    """One chart version pulled by :func:`update_charts`: its new pin, and what it replaced."""

    pin: Pin
    releases: tuple[str, ...]
    status: str                  # NEW, UNCHANGED or CHANGED
    previous: Pin | None = None  # the lock's entry before, when there was one


@dataclass(frozen=True, slots=True)
class LockUpdate:
    """What :func:`update_charts` did: the charts pulled (in lock order), the entries dropped
    because no environment deploys them any more, and whether the lock's bytes changed."""

    lock_file: str
    updates: tuple[PinUpdate, ...]
    dropped: tuple[Pin, ...]
    written: bool
    unreadable: bool = False     # the old lock could not be read and was written anew


@dataclass(frozen=True, slots=True)
class _Pulled:
    want: Wanted
    package: Path | None
    digest: str
    resolved: str
    problem: Diagnostic | None


def update_charts(compiler: Compiler, cache: Path, caller: Mapping[str, str], helm: HelmSource,
                  names: Iterable[str] = ()) -> LockUpdate:
    """Pull every remote chart version the project deploys (only the charts ``names`` gives,
    when any), pin each package's sha256 in the lock, store the packages in ``cache``.

    A range version (``~1.2``) pins what helm pulls for it. Entries not updated are kept as
    they were, entries no environment deploys are dropped; the lock is replaced atomically,
    and only when its bytes change. Raises :class:`CompileError` when a name is unknown, when
    there is no helm, or with one diagnostic per chart that could not be pulled: then nothing is
    written and nothing is stored.
    """
    project = compiler.project
    lock_file = lock_name(project.root_file)
    names = tuple(names)
    wants = wanted(project)
    chosen = select(wants, names)
    old, unreadable = _old_lock(compiler, lock_file, strict=bool(names))
    with tempfile.TemporaryDirectory(prefix="meshc-charts-") as temp:
        pulled = _pull_all(helm, chosen, Path(temp), caller) if chosen else []
        problems = [p.problem for p in pulled if p.problem is not None]
        if problems:
            raise CompileError(problems)
        for done in pulled:
            assert done.package is not None
            store(cache, done.package, done.digest)
    updates = tuple(sorted((_compare(done, old) for done in pulled), key=lambda u: u.pin.key))
    before = old.pins if old is not None else ()
    used = {w.key for w in wants}
    pins = {**{p.key: p for p in before if p.key in used}, **{u.pin.key: u.pin for u in updates}}
    written = False
    if pins or old is not None or unreadable:  # no remote charts and no lock: no lock either
        written = _write_lock(compiler.files.root, lock_file,
                              format_lock(project.root_file, pins.values()))
    return LockUpdate(lock_file, updates, tuple(p for p in before if p.key not in used),
                      written, unreadable)


def _old_lock(compiler: Compiler, lock_file: str, strict: bool) -> tuple[ChartLock | None, bool]:
    """The lock as it is, or (None, True) when it cannot be read and is about to be rewritten
    whole (``strict``: some entries are to be kept, so an unreadable lock is an error)."""
    try:
        return read_lock(compiler.files, lock_file), False
    except CompileError:
        if strict:
            raise
        return None, True


def _pull_all(helm: HelmSource, wants: Sequence[Wanted], temp: Path,
              caller: Mapping[str, str]) -> list[_Pulled]:
    tool = helm()
    jobs = [(want, temp / str(index) / "package") for index, want in enumerate(wants)]
    return _in_parallel(lambda job: _pull_one(tool, job[0], job[1], caller), jobs)


def _pull_one(helm: HelmTool, want: Wanted, into: Path, caller: Mapping[str, str]) -> _Pulled:
    package, words = pull(helm, want.chart, want.repo, want.version, into, caller)
    if package is None:
        return _Pulled(want, None, "", "", _pull_failed(want, words))
    try:
        meta = package_meta(package)
    except (OSError, tarfile.TarError, ValueError) as exc:
        return _Pulled(want, None, "", "", _pull_failed(
            want, f"helm pulled {package.name}, which is not a chart package: {exc}"))
    resolved = meta.get("version")
    return _Pulled(want, package, file_digest(package),
                   str(resolved) if resolved is not None else want.version, None)


def _pull_failed(want: Wanted, words: str) -> Diagnostic:
    repo = f" --repo {want.repo}" if want.repo else ""
    return Diagnostic(
        "error", f"cannot pull {want.label}: {words}", want.span,
        f"check the chart's name, its version (`version:`, or the environment's chartVersions:) "
        f"and that the repository is reachable: helm pull {want.chart}{repo} "
        f"--version {want.version}", _releases_note(want))


def _compare(done: _Pulled, old: ChartLock | None) -> PinUpdate:
    want = done.want
    pin = Pin(want.chart, want.repo, want.version, done.resolved, done.digest)
    before = old.find(want.key) if old is not None else None
    if before is None:
        return PinUpdate(pin, want.releases, NEW)
    same = before.digest == pin.digest and before.resolved == pin.resolved
    return PinUpdate(pin, want.releases, UNCHANGED if same else CHANGED, before)


def _write_lock(root: Path, lock_file: str, text: str) -> bool:
    """Replace the lock with ``text`` (:func:`~compiler.syntax.roundtrip.write_files`: one
    rename, refused if it changed on disk meanwhile), only when its text changes. Returns
    whether it wrote."""
    try:
        current: str | None = decode_text((root / lock_file).read_bytes())
    except FileNotFoundError:
        current = None
    except UnicodeDecodeError:  # not even text: it goes, the new one takes its place
        (root / lock_file).unlink()
        current = None
    if current == text:
        return False
    write_files(root, {lock_file: text}, {lock_file: current})
    return True


def format_update(result: LockUpdate) -> list[str]:
    """``meshc charts update``'s lines: one per chart pulled, one per entry dropped."""
    lines = []
    for update in result.updates:
        pin = update.pin
        status = update.status
        if update.previous is not None and status == CHANGED:
            before = update.previous
            moved = f"{before.resolved} " if before.resolved != pin.resolved else ""
            status = f"changed from {moved}{before.digest}"
        lines.append(f"pinned {_version_label(pin)} {pin.digest} ({status})")
    lines += [f"dropped {_version_label(pin)} (no environment deploys it)"
              for pin in result.dropped]
    return lines


def _version_label(pin: Pin) -> str:
    """``grafana 7.3.0``, or ``grafana ~7.3 → 7.3.0`` for a range."""
    version = pin.resolved if pin.resolved == pin.version else f"{pin.version} → {pin.resolved}"
    return f"{pin.chart} {version}"


# --- meshc charts fetch ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Fetched:
    """A pinned package in the cache: whether it had to be fetched, and where it is."""

    pin: Pin
    releases: tuple[str, ...]
    fetched: bool
    path: Path


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What :func:`fetch_charts` did: the packages now in the cache, in lock order, and a
    diagnostic for each one that could not be fetched or did not match its digest."""

    lock_file: str
    cache: Path
    charts: tuple[Fetched, ...]
    failures: tuple[Diagnostic, ...] = ()

    def raise_failures(self) -> None:
        """Raise :class:`CompileError` with the failures, if any."""
        if self.failures:
            raise CompileError(self.failures)


def fetch_charts(compiler: Compiler, cache: Path, caller: Mapping[str, str],
                 helm: HelmSource) -> FetchResult:
    """Make sure every package the lock pins for the project is in ``cache``, verified by its
    digest; fetch (``helm pull``) the missing ones. Raises :class:`CompileError` before
    fetching anything when a chart the project deploys is not pinned; the packages that could
    not be fetched or verified are the result's ``failures`` (the others are fetched all the
    same: a cache filled as far as it goes)."""
    lock_file = lock_name(compiler.project.root_file)
    lock = read_lock(compiler.files, lock_file)
    wants = wanted(compiler.project)
    missing = [_not_pinned(w, lock_file, lock) for w in wants
               if lock is None or lock.find(w.key) is None]
    if missing:
        raise CompileError(missing)
    assert lock is not None or not wants
    pairs = [(w, lock.find(w.key)) for w in wants] if lock is not None else []
    hits = {w.key: cached(cache, p.digest) for w, p in pairs if p is not None}
    tool = helm() if any(path is None for path in hits.values()) else None

    def fetch(pair: tuple[Wanted, Pin | None]) -> Fetched | tuple[Diagnostic, ...]:
        want, pin = pair
        assert pin is not None
        path = hits[want.key]
        if path is not None:
            return Fetched(pin, want.releases, False, path)
        assert tool is not None
        try:
            return Fetched(pin, want.releases, True, fetch_pin(tool, pin, cache, caller,
                                                               want.span))
        except CompileError as exc:
            return exc.diagnostics

    done = _in_parallel(fetch, pairs)
    return FetchResult(lock_file, cache, tuple(d for d in done if isinstance(d, Fetched)),
                       tuple(g for d in done if not isinstance(d, Fetched) for g in d))


def _not_pinned(want: Wanted, lock_file: str, lock: ChartLock | None) -> Diagnostic:
    why = "" if lock is not None else f" (there is no {lock_file})"
    return Diagnostic("error", f"{want.label} is not pinned in {lock_file}{why}", want.span,
                      UPDATE_HELP, _releases_note(want))


def format_fetch(result: FetchResult) -> list[str]:
    """``meshc charts fetch``'s lines: ``cached`` or ``fetched``, one per chart."""
    return [f"{'fetched' if f.fetched else 'cached'} {_version_label(f.pin)} {f.pin.digest}"
            for f in result.charts]


# --- meshc charts list -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChartRow:
    """A remote chart version the project deploys, its pin (None: not pinned) and whether its
    package is in the cache."""

    want: Wanted
    pin: Pin | None
    cached: bool


@dataclass(frozen=True, slots=True)
class ChartStatus:
    """The project's remote charts against its lock: ``stale`` holds the lock's entries no
    environment deploys. The lock is current when every chart is pinned and nothing is stale."""

    lock_file: str
    has_lock: bool
    charts: tuple[ChartRow, ...]
    stale: tuple[Pin, ...]

    @property
    def current(self) -> bool:
        return all(row.pin is not None for row in self.charts) and not self.stale

    def problems(self) -> tuple[Diagnostic, ...]:
        """Why the lock is not current: one error per chart not pinned (on its ``chart:``) and
        per stale entry (on its line of the lock)."""
        lock = ChartLock(self.lock_file, ()) if self.has_lock else None
        found = [_not_pinned(row.want, self.lock_file, lock) for row in self.charts
                 if row.pin is None]
        found += [Diagnostic("error", f"{self.lock_file} pins {_version_label(pin)}, which no "
                                      "environment deploys", pin.span, UPDATE_HELP)
                  for pin in self.stale]
        return tuple(found)


def chart_status(compiler: Compiler, cache: Path) -> ChartStatus:
    """Every remote chart version the project deploys, its pin and whether it is cached, and
    the lock's stale entries. Raises :class:`CompileError` when the lock cannot be read."""
    return status_of(compiler.project, read_lock(compiler.files,
                                                 lock_name(compiler.project.root_file)), cache)


def status_of(project: Project, lock: ChartLock | None, cache: Path) -> ChartStatus:
    """:func:`chart_status` of a project and its lock as read already."""
    wants = wanted(project)
    rows = []
    for want in wants:
        pin = lock.find(want.key) if lock is not None else None
        rows.append(ChartRow(want, pin, pin is not None and cached(cache, pin.digest) is not None))
    keys = {w.key for w in wants}
    stale = tuple(p for p in (lock.pins if lock is not None else ()) if p.key not in keys)
    return ChartStatus(lock_name(project.root_file), lock is not None, tuple(rows), stale)


def format_status(status: ChartStatus) -> list[str]:
    """``meshc charts list``'s table, then the stale entries."""
    header = ("CHART", "VERSION", "RESOLVED", "DIGEST", "CACHE", "RELEASES", "REPOSITORY")
    rows = [header]
    for row in status.charts:
        pin = row.pin
        rows.append((row.want.chart, row.want.version, pin.resolved if pin else "-",
                     _short(pin.digest) if pin else "not pinned",
                     ("cached" if row.cached else "missing") if pin else "-",
                     ",".join(row.want.releases), row.want.repo or "-"))
    if len(rows) == 1:
        lines = ["no remote charts"]
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
        lines = ["  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]])
                 for r in rows]
    lines += [f"stale in {status.lock_file}: {_version_label(pin)} {_short(pin.digest)} "
              "(no environment deploys it)" for pin in status.stale]
    return lines


def _short(digest: str) -> str:
    head, _, hexa = digest.partition(":")
    return f"{head}:{hexa[:SHORT]}"


def status_json(status: ChartStatus) -> str:
    """``meshc charts list -o json``."""
    def pin_fields(pin: Pin | None) -> dict[str, Any]:
        return {"resolved": pin.resolved if pin else None, "digest": pin.digest if pin else None}

    data = {
        "apiVersion": "meshc/v1", "kind": "ChartLock", "lock": status.lock_file,
        "exists": status.has_lock, "current": status.current,
        "charts": [{"chart": r.want.chart, "repo": r.want.repo, "version": r.want.version,
                    "releases": list(r.want.releases), "pinned": r.pin is not None,
                    **pin_fields(r.pin), "cached": r.cached} for r in status.charts],
        "stale": [{"chart": p.chart, "repo": p.repo, "version": p.version, **pin_fields(p)}
                  for p in status.stale],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
