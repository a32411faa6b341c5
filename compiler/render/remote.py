"""Remote Helm charts: pinned in the project's lock file, fetched once into a cache outside the
project, verified by digest before helm reads them.

The lock. ``meshfile.lock`` beside ``meshfile.yaml`` (``<meshfile stem>.lock``), written by
``meshc charts update`` and committed. One entry per remote chart version some environment
deploys: the chart (a name in an HTTP repository, or an ``oci://`` reference), the repository,
the version as the meshfile asks for it, the version that resolved to, and the sha256 of the
chart package (the ``.tgz`` Helm downloads, the same digest a repository's ``index.yaml``
lists). ``meshc render`` never writes the lock: a chart missing from it is an error saying to run
``meshc charts update``.

The cache. Packages are stored by digest (``sha256-<hex>.tgz``) in ``$MESHC_CHART_CACHE``, else
``$XDG_CACHE_HOME/meshc/charts``, else ``~/.cache/meshc/charts`` (the CLI decides). A package
is fetched with ``helm pull`` only when its digest is not in the cache, then hashed: bytes that
do not match the lock are refused (the repository re-published the version, or something in
between changed it) and never enter the cache. Offline, a cached chart renders; a missing one is
an error naming the chart, its repository and version.

How helm pulls. With the caller's proxy, certificate and registry-credential settings (a
private repository needs them), but its own HOME, cache and repository list: nothing of the
user's helm state is written, and no cluster is reachable.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..core.files import ProjectFiles
from ..core.process import HelmTool, helm_environment
from ..core.source import Span
from ..model.model import Environment, Project, Release
from ..syntax.yamlsrc import load_values_doc

LOCK_VERSION = 1
CACHE_VAR = "MESHC_CHART_CACHE"
UPDATE_HELP = "run `meshc charts update` and commit the lock file"
# what helm pull may take from the caller: proxies, certificates, registry credentials
_PASSED = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
           "SSL_CERT_FILE", "SSL_CERT_DIR", "HELM_REGISTRY_CONFIG", "DOCKER_CONFIG")


def lock_name(meshfile: str) -> str:
    """``meshfile.yaml`` → ``meshfile.lock`` (beside it)."""
    stem = posixpath.basename(meshfile)
    for suffix in (".yaml", ".yml"):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    return posixpath.join(posixpath.dirname(meshfile), f"{stem}.lock")


class ChartUnavailable(CompileError):
    """A pinned chart's package is neither cached nor fetchable (offline, repository down)."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """A remote chart version the project deploys, and the releases that deploy it."""

    chart: str
    repo: str | None
    version: str
    releases: tuple[str, ...]
    span: Span | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.repo or "", self.chart, self.version)

    @property
    def label(self) -> str:
        where = f" from {self.repo}" if self.repo else ""
        return f"chart '{self.chart}' {self.version}{where}"


@dataclass(frozen=True, slots=True)
class Pin:
    """One entry of the lock."""

    chart: str
    repo: str | None
    version: str     # as the meshfile asks (may be a range)
    resolved: str    # the version of the package
    digest: str      # sha256:<hex> of the package
    span: Span | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.repo or "", self.chart, self.version)


@dataclass(frozen=True, slots=True)
class ChartLock:
    file: str
    pins: tuple[Pin, ...]

    def find(self, key: tuple[str, str, str]) -> Pin | None:
        return next((p for p in self.pins if p.key == key), None)


@dataclass(frozen=True, slots=True)
class ChartStore:
    """Where remote charts come from in one run: the lock, the cache folder, and whether a
    missing package may be fetched."""

    lock: ChartLock | None
    lock_file: str
    cache: Path
    environ: Mapping[str, str]
    fetch: bool = True
    memoise: bool = True             # False: every Helm chart is templated afresh (--no-cache)

    @property
    def renders(self) -> Path | None:
        """Where Helm charts' renders are memoised (:func:`render_helm_release`)."""
        return self.cache / "renders" if self.memoise else None

    def digest(self, release: Release, env: Environment) -> str | None:
        """The pinned digest of ``release``'s remote chart in ``env`` (None: not pinned)."""
        pin = self.lock.find(wanted_of(release, env).key) if self.lock is not None else None
        return pin.digest if pin is not None else None

    def package(self, release: Release, env: Environment, helm: HelmTool) -> Path:
        """The verified package of ``release``'s remote chart in ``env``. Raises
        :class:`CompileError` (located on the release's ``chart:``)."""
        want = wanted_of(release, env)
        pin = self.lock.find(want.key) if self.lock is not None else None
        if pin is None:
            raise CompileError([Diagnostic(
                "error", f"{want.label} (release '{release.name}' in '{env.name}') is not "
                f"pinned in {self.lock_file}", want.span, UPDATE_HELP)])
        path = cached(self.cache, pin.digest)
        if path is not None:
            return path
        if not self.fetch:
            raise ChartUnavailable([_not_cached(want, pin, "fetching is off")])
        return fetch_pin(helm, pin, self.cache, self.environ, want.span)


def wanted_of(release: Release, env: Environment) -> Wanted:
    version = env.chart_version(release) or ""
    return Wanted(release.chart.ref, release.chart.repo, version, (release.name,),
                  release.chart_span or release.span)


def wanted(project: Project) -> list[Wanted]:
    """Every remote chart version a deployable environment of ``project`` uses, sorted."""
    found: dict[tuple[str, str, str], Wanted] = {}
    for env in project.environments:
        if env.abstract:
            continue
        for release in project.releases:
            if release.chart.local:
                continue
            want = wanted_of(release, env)
            seen = found.get(want.key)
            if seen is None:
                found[want.key] = want
            elif release.name not in seen.releases:
                found[want.key] = Wanted(seen.chart, seen.repo, seen.version,
                                         tuple(sorted((*seen.releases, release.name))), seen.span)
    return [found[k] for k in sorted(found)]


# --- the lock file --------------------------------------------------------------------------

def read_lock(files: ProjectFiles, name: str) -> ChartLock | None:
    """The lock ``name`` of the project, or None when there is none. Raises
    :class:`CompileError` with every malformed entry located."""
    try:
        text = files.read(name)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CompileError([Diagnostic("error", f"cannot read {name}: {exc}",
                                       Span(name, 1, 1))]) from None
    doc = load_values_doc(text, name)
    diags = Diagnostics()
    data = doc.data
    if data.get("version") != LOCK_VERSION:
        diags.error(f"{name}: unknown lock format {data.get('version')!r} (meshc writes "
                    f"version: {LOCK_VERSION})", doc.spans.get(("version",)) or Span(name, 1, 1),
                    UPDATE_HELP)
    entries = data.get("charts") or []
    pins = []
    if not isinstance(entries, list):
        diags.error(f"{name}: 'charts' must be a list", doc.spans.get(("charts",)) or
                    Span(name, 1, 1), UPDATE_HELP)
        entries = []
    for index, entry in enumerate(entries):
        span = doc.spans.get(("charts", index)) or Span(name, 1, 1)
        fields = {k: entry.get(k) for k in ("chart", "repo", "version", "resolved", "digest")} \
            if isinstance(entry, dict) else {}
        bad = [k for k in ("chart", "version", "digest") if not isinstance(fields.get(k), str)]
        digest = fields.get("digest")
        if not bad and not _is_digest(str(digest)):
            bad = ["digest"]
        if bad:
            diags.error(f"{name}: entry {index + 1} has no valid {', '.join(bad)}", span,
                        UPDATE_HELP)
            continue
        pins.append(Pin(fields["chart"], fields.get("repo") or None, fields["version"],
                        str(fields.get("resolved") or fields["version"]), str(digest), span))
    diags.raise_if_errors()
    return ChartLock(name, tuple(pins))


def format_lock(meshfile: str, pins: Iterable[Pin]) -> str:
    """The lock's text: sorted entries, no timestamps (the same pins give the same bytes)."""
    name = posixpath.basename(meshfile)
    lines = [f"# The remote charts of {name}, pinned by digest. Written by `meshc charts update`;",
             "# commit it. meshc render refuses a package whose sha256 differs.",
             f"version: {LOCK_VERSION}", "charts:"]
    ordered = sorted(pins, key=lambda p: p.key)
    if not ordered:
        lines[-1] = "charts: []"
    for pin in ordered:
        lines.append(f"  - chart: {_scalar(pin.chart)}")
        if pin.repo:
            lines.append(f"    repo: {_scalar(pin.repo)}")
        lines.append(f"    version: {_scalar(pin.version)}")
        lines.append(f"    resolved: {_scalar(pin.resolved)}")
        lines.append(f"    digest: {pin.digest}")
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    return yaml.safe_dump(text, default_style='"').strip()


def _is_digest(text: str) -> bool:
    head, _, hexa = text.partition(":")
    return head == "sha256" and len(hexa) == 64 and all(c in "0123456789abcdef" for c in hexa)


# --- the cache and helm pull -------------------------------------------------------------------

def cache_folder(environ: Mapping[str, str]) -> Path:
    """``$MESHC_CHART_CACHE``, else ``$XDG_CACHE_HOME/meshc/charts``, else
    ``~/.cache/meshc/charts`` (``environ`` is the caller's environment)."""
    if environ.get(CACHE_VAR):
        return Path(environ[CACHE_VAR])
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or "~").expanduser()
                                                / ".cache")
    return Path(base) / "meshc" / "charts"


def cached(cache: Path, digest: str) -> Path | None:
    """The cached package with ``digest``, when present and still of that digest."""
    path = cache / f"{digest.replace(':', '-')}.tgz"
    try:
        if path.is_file() and file_digest(path) == digest:
            return path
    except OSError:
        return None
    return None


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def store(cache: Path, package: Path, digest: str) -> Path:
    """Put ``package`` (of ``digest``) into the cache, atomically."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{digest.replace(':', '-')}.tgz"
    handle, temp = tempfile.mkstemp(prefix=".part-", dir=cache)
    try:
        with os.fdopen(handle, "wb") as out, open(package, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                out.write(block)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def pull_environment(home: Path, caller: Mapping[str, str]) -> dict[str, str]:
    """helm's environment for ``helm pull``: isolated (:func:`helm_environment`) but for the
    caller's proxy, certificate and registry-credential settings."""
    environ = helm_environment(home)
    environ.update({k: caller[k] for k in _PASSED if k in caller})
    return environ


def pull(helm: HelmTool, chart: str, repo: str | None, version: str, into: Path,
         caller: Mapping[str, str]) -> tuple[Path | None, str]:
    """``helm pull`` of one chart version into folder ``into``: (the package, "") or
    (None, helm's words)."""
    into.mkdir(parents=True, exist_ok=True)
    argv = [helm.path, "pull", chart, "--version", version, "--destination", str(into)]
    if repo:
        argv += ["--repo", repo]
    done = helm.runner(argv, into, pull_environment(into.parent / "home", caller))
    packages = sorted(into.glob("*.tgz"))
    if done.returncode != 0 or len(packages) != 1:
        words = " ".join(line.strip().removeprefix("Error: ")
                         for line in (done.stderr or done.stdout).splitlines() if line.strip())
        return None, words or f"helm pull exited {done.returncode}"
    return packages[0], ""


def fetch_pin(helm: HelmTool, pin: Pin, cache: Path, caller: Mapping[str, str],
              span: Span | None) -> Path:
    """Fetch the package ``pin`` names, verify its digest, cache it. Raises
    :class:`CompileError` on a failed fetch or a digest mismatch."""
    want = Wanted(pin.chart, pin.repo, pin.version, (), span)
    with tempfile.TemporaryDirectory(prefix="meshc-pull-") as temp:
        package, words = pull(helm, pin.chart, pin.repo, pin.resolved, Path(temp) / "out",
                              caller)
        if package is None:
            raise ChartUnavailable([_not_cached(want, pin, words)])
        digest = file_digest(package)
        if digest != pin.digest:
            raise CompileError([Diagnostic(
                "error", f"{want.label}: the package's digest changed: the lock pins "
                f"{pin.digest}, the repository now serves {digest}", span,
                "if the new package is expected, `meshc charts update` pins it (review the "
                "change in rendered/); otherwise do not deploy it",
                (f"pinned at {pin.span}",) if pin.span is not None else ())])
        return store(cache, package, digest)


def _not_cached(want: Wanted, pin: Pin, why: str) -> Diagnostic:
    where = f" --repo {want.repo}" if want.repo else ""
    return Diagnostic(
        "error", f"{want.label} is not in the chart cache and could not be fetched: {why}",
        want.span, f"fetch it where the repository is reachable (helm pull {want.chart}"
        f"{where} --version {pin.resolved}; meshc charts fetch), or point {CACHE_VAR} at a "
        "cache that holds it")


def package_meta(package: Path) -> dict[str, Any]:
    """The ``Chart.yaml`` of a chart package (its top folder's)."""
    with tarfile.open(package, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                data = tar.extractfile(member)
                if data is not None:
                    meta = yaml.safe_load(io.TextIOWrapper(data, "utf-8"))
                    return meta if isinstance(meta, dict) else {}
    return {}
