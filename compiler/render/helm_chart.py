"""Render stage for Helm charts: a local chart folder (``Chart.yaml`` + Go templates) rendered by
the real ``helm template`` into the same one-resource-per-file manifests as a Jinja chart.

What goes in. The release's values exactly as meshc computed them (chart defaults, environment
files, features, ``--set``), written as the YAML ``rendered/<env>/<release>/values.yaml`` holds,
so Helm reads the bytes it reads at install. A chart default that meshc's layers deleted (a
``null`` over it) is passed as ``null``, which is how Helm deletes it again when it merges the
chart's ``values.yaml`` under the file. Then the release name, its namespace, ``--kube-version``
when the environment sets ``kubeVersion``, and ``--include-crds``: the CRDs of ``crds/`` become
ordinary reviewed manifests, because the plan installs the wrapper chart of the rendered
manifests, which has no ``crds/`` of its own.

How helm runs. Isolated (:func:`compiler.core.process.helm_environment`): its own HOME, config,
cache and data in a private temporary folder, a kubeconfig naming an unreachable loopback
server, nothing of the caller's environment (Go's collector held back: :data:`HELM_RUNTIME`).
The chart folder is read in place and never written: dependencies already in ``charts/``
(folders or ``.tgz``) are used as they are; missing ones are built with ``helm dependency
build`` from the chart's ``Chart.lock`` into a private copy, once per chart and lock (kept
beside the renders memo). Each run is a separate process, so forked render workers run helm
like the main process does, one per core.

What comes out. Helm's documents are split on its ``# Source:`` comments and go through
:func:`compiler.render.render.manifests_of`, as a Jinja chart's templates do: same validation,
namespaces, patches and file names. Hooks (``helm.sh/hook``) stay documents with their
annotations; the wrapper chart emits them verbatim, so Helm still runs them as hooks at install.

Why some templates are refused. ``rendered/`` is committed and reviewed: the same inputs must
give the same bytes on every run and every machine. ``helm template`` cannot promise that for
templates calling random or clock functions (``randAlphaNum``, ``uuidv4``, ``now``, the
``gen*`` certificate and key functions, bcrypt's salted hashes, ``encryptAES``'s random IV) or
the cluster (``lookup`` returns nothing offline, something else at install). Rendering twice
would only catch some of them, some of the time. Instead every template of the chart that can
have produced a document is scanned for calls of those functions: the templates Helm names in
its ``# Source:`` comments, and, conservatively, every partial (``_*.tpl``, ``_*.yaml``), since
any rendered template may include a ``define`` of theirs. Each call found is an error on its
file and line; the fix is to set the value explicitly or to replace the template.
``derivePassword`` and the hash functions are deterministic and allowed.

How errors come back. Helm's messages name a template as ``CHART/templates/x.yaml:LINE[:COL]``;
the chart name is replaced by the project folder so the diagnostic points at the project file.
Anything else Helm refuses (a values.schema.json failure, a broken Chart.yaml) is located on the
release's ``chart:`` line, with Helm's words.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..core.diagnostics import WHOLE_LINE, CompileError, Diagnostic, Diagnostics
from ..core.files import ProjectFiles
from ..core.process import HELM_VAR, Completed, HelmTool, helm_environment
from ..core.source import Span
from ..model.model import Release
from ..syntax.yamlsrc import dump_yaml, load_documents
from ..values.chart_schema import with_stand_ins
from .render import FROM_SECRETS, GENERATED, Manifest, manifests_of

NON_REPRODUCIBLE = (
    "randAlphaNum", "randAlpha", "randNumeric", "randAscii", "randBytes", "randInt", "uuidv4",
    "now", "ago", "lookup", "getHostByName", "genPrivateKey", "genCA", "genCAWithKey",
    "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey",
    "bcrypt", "htpasswd", "encryptAES", "shuffle",
)
REPLACE_HELP = "set the value explicitly, or replace the template"
# Go's runtime settings for the short-lived helm processes that render: no garbage collection
# until the heap nears 256 MiB. A `helm template` is mostly Helm's start-up, and collecting
# during it is a quarter of its CPU; Helm 4 (built with Go >= 1.24) honours the soft limit, so
# a large chart still collects. Output is the same: only when memory is reclaimed changes.
HELM_RUNTIME = {"GOGC": "off", "GOMEMLIMIT": "256MiB"}
_CALL = re.compile(r"(?<![\w.$])(" + "|".join(NON_REPRODUCIBLE) + r")(?![\w])")
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_STRINGS = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|/\*.*?\*/', re.DOTALL)
_SOURCE = re.compile(r"^# Source: (\S.*)$", re.MULTILINE)
_LOCATION = re.compile(r"([\w.-]+(?:/[\w.-]+)*/[\w.-]+\.(?:yaml|yml|tpl|txt|json)):(\d+)(?::(\d+))?")


def render_helm_release(release: Release, values: dict[str, Any], files: ProjectFiles,
                        helm: HelmTool, namespace: str, env: str, kube_version: str | None,
                        package: Path | None = None,
                        stand_ins: Sequence[tuple[tuple[Any, ...], str]] = (),
                        api_versions: Sequence[str] = (), memo: Path | None = None,
                        package_digest: str | None = None) -> tuple[Manifest, ...]:
    """Render the Helm chart of ``release`` with ``helm template`` and ``values`` (the release's
    computed values) in environment ``env``: the local chart folder, or ``package`` (a remote
    chart's verified package, of ``package_digest``). ``stand_ins`` are (path, text) pairs put
    into the values where the release's secrets go (helm never sees a secret value). Raises
    :class:`CompileError`: Helm's failures located on the chart file or the ``chart:`` line,
    non-reproducible templates on their call.

    ``memo``: a folder of earlier renders (beside the chart cache), by a digest of everything
    ``helm template`` reads — helm's version, the chart's files or package digest, the values
    file, the release name, namespace, kube version and API versions. Helm's output is a
    function of those, so a hit is that output without running helm; only successful renders
    are kept."""
    chart = release.chart
    defaults = chart.defaults.data if chart.defaults is not None else {}
    given = with_deletions(with_stand_ins(values, stand_ins), defaults)
    values_text = dump_yaml(given)
    variant = dump_yaml(with_deletions(with_stand_ins(
        values, [(path, f"{text}~other") for path, text in stand_ins]), defaults)) \
        if stand_ins else None
    key = render_key(release, helm, namespace, kube_version, api_versions, values_text,
                     package_digest) if memo is not None else None
    output = _recall(memo, key)
    if output is None:
        output = _template(release, files, helm, namespace, kube_version, package,
                           api_versions, values_text, variant,
                           memo.parent / "dependencies" if memo is not None else None)
        _remember(memo, key, output)
    outputs = list(split_sources(output, chart.ref))
    return manifests_of(release, outputs, namespace, env, redact_secrets=True)


def render_key(release: Release, helm: HelmTool, namespace: str, kube_version: str | None,
               api_versions: Sequence[str], values_text: str,
               package_digest: str | None) -> str | None:
    """The digest of everything ``helm template`` reads for this render (None: a remote chart
    whose package digest is unknown, never memoised)."""
    chart = release.chart
    if not chart.local and not package_digest:
        return None
    identity = [chart.ref, list(chart.files)] if chart.local else [chart.ref, package_digest]
    text = json.dumps([_code(), helm.version, identity, release.name, namespace, kube_version,
                       list(api_versions), values_text], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _code() -> str:
    """A hash of this package's source: what a memoised render holds is what this code made
    of helm's output (marks, stabilisation), so another meshc renders afresh."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _recall(memo: Path | None, key: str | None) -> str | None:
    if memo is None or key is None:
        return None
    try:
        return (memo / key[:2] / f"{key}.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _remember(memo: Path | None, key: str | None, output: str) -> None:
    if memo is None or key is None:
        return
    folder = memo / key[:2]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".part-", dir=folder)
        with os.fdopen(handle, "wb") as out:
            out.write(output.encode("utf-8"))
        os.replace(temp, folder / f"{key}.yaml")
    except OSError:
        return  # a memo that cannot be written only costs the next render a helm run


def _template(release: Release, files: ProjectFiles, helm: HelmTool, namespace: str,
              kube_version: str | None, package: Path | None, api_versions: Sequence[str],
              values_text: str, variant: str | None = None,
              dependencies: Path | None = None) -> str:
    """``helm template``'s output for the review (values a chart generates marked). With
    ``variant`` (the values with other stand-ins for the secrets), the chart is templated a
    second time: ``checksum/*`` annotations that change with the secrets read
    :data:`FROM_SECRETS` (the review cannot know them; at install they are the real values').
    Raises :class:`CompileError`."""
    chart = release.chart
    with tempfile.TemporaryDirectory(prefix="meshc-helm-") as temp:
        work = Path(temp)
        environ = {**helm_environment(work / "home"), **HELM_RUNTIME}
        if package is not None:
            source = package
        else:
            built = _with_dependencies(release, files, helm, work, environ, dependencies)
            source = built or files.locate(chart.ref)
        values_file = work / "values.yaml"
        values_file.write_bytes(values_text.encode())
        argv = [helm.path, "template", release.name, "", "--namespace", namespace,
                "--include-crds", "-f", str(values_file)]
        if kube_version:
            argv += ["--kube-version", kube_version]
        for api in api_versions:
            argv += ["--api-versions", api]

        def template(chart_source: Path) -> Completed:
            return helm.runner([*argv[:3], str(chart_source), *argv[4:]], work, environ)

        done = template(source)
        if done.returncode != 0:
            raise CompileError([helm_failure(release, files, done.stderr or done.stdout)])
        problems, output = non_reproducible(release, files, source, work, template,
                                            done.stdout, _identity(release, package))
        if variant is not None and not problems:
            values_file.write_bytes(variant.encode())
            other = template(source)
            if other.returncode == 0:
                output, _ = stabilized(output, other.stdout, None)
    if problems:
        raise CompileError(problems)
    return output


def stand_in(path: Sequence[Any], fingerprint: str = "") -> str:
    """The text a Helm chart receives in place of the secret at ``path`` (its full values
    path): it names the secret, so a chart that copies it outside a Secret shows where, and
    carries the fingerprint of its ciphertext, so the review's digest of a Secret value changes
    when the secret does."""
    return "meshc-secret:" + ".".join(map(str, path)) + (f"@{fingerprint}" if fingerprint else "")


def split_sources(output: str, folder: str) -> Iterator[tuple[str, str]]:
    """``helm template``'s output as (project path of the template, its documents) pairs, in
    Helm's order; ``CHART/templates/x.yaml`` becomes ``<folder>/templates/x.yaml``."""
    for document in re.split(r"^---[ \t]*$", output, flags=re.MULTILINE):
        match = _SOURCE.search(document)
        if match is None:
            if document.strip():
                yield folder, document
            continue
        yield project_path(match.group(1), folder), document


def project_path(helm_path: str, folder: str) -> str:
    """``CHART/templates/x.yaml`` (Helm's name of a template) → ``<folder>/templates/x.yaml``."""
    rest = helm_path.partition("/")[2]
    return posixpath.join(folder, rest) if rest else folder


def with_deletions(values: Any, defaults: Any) -> Any:
    """``values`` with ``null`` where a chart default is absent: meshc's layers deleted it, and
    Helm would merge it back in from the chart's values.yaml otherwise (the values file of a
    Helm chart's plan step says so too)."""
    if not isinstance(values, dict) or not isinstance(defaults, dict):
        return values
    result = dict(values)
    for key, default in defaults.items():
        result[key] = with_deletions(result[key], default) if key in result else None
    return result


# --- dependencies ---------------------------------------------------------------------------

def _with_dependencies(release: Release, files: ProjectFiles, helm: HelmTool, temp: Path,
                       environ: Mapping[str, str], store: Path | None = None) -> Path | None:
    """None when the chart's dependencies are all in ``charts/`` (no ``helm dependency
    build`` at all); else a private copy of the chart with them built from ``Chart.lock``.
    Raises :class:`CompileError` when one is missing and cannot be built.

    A chart is built once for its files and its lock (and ``file://`` dependencies, all in
    :attr:`Chart.files`) and helm's version: in ``store`` (beside the renders memo, shared by
    forked workers and later runs, written by an atomic rename), else once per process."""
    folder = release.chart.ref
    chart_file = f"{folder}/Chart.yaml"
    text = files.read(chart_file)
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CompileError([Diagnostic("error", f"Helm chart '{folder}' has an invalid "
                                       f"Chart.yaml: {exc}", Span(chart_file, 1, 1))]) from None
    deps = meta.get("dependencies") if isinstance(meta, dict) else None
    present = {path for path, _ in release.chart.files}
    missing = [dep["name"] for dep in deps or () if isinstance(dep, dict)
               and isinstance(dep.get("name"), str) and not _vendored(dep["name"], folder, present)]
    if not missing:
        return None
    if f"{folder}/Chart.lock" not in present:
        diags = Diagnostics()
        for name in missing:
            diags.error(f"dependency '{name}' of Helm chart '{folder}' is not in "
                        f"{folder}/charts/ and the chart has no Chart.lock to build it from",
                        _line_of(text, chart_file, name),
                        help="vendor it into charts/ (helm dependency update), or commit a "
                             "Chart.lock")
        diags.raise_if_errors()
    key = hashlib.sha256(json.dumps([_code(), helm.version, folder,
                                     list(release.chart.files)]).encode()).hexdigest()
    with _build_lock(store, key):  # forked workers wait for the one build of a chart
        kept = _BUILT.get(key) if store is None else store / key / posixpath.basename(folder)
        if kept is not None and (kept / "Chart.yaml").is_file():
            return kept
        return _build(release, files, helm, temp, environ, store, key, missing)


@contextlib.contextmanager
def _build_lock(store: Path | None, key: str) -> Iterator[None]:
    """An exclusive lock on building ``key`` in ``store`` (none without a store, or where
    the lock file cannot be made: then two processes may both build, and one build is kept)."""
    handle = None
    try:
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)
            handle = open(store / f".{key}.lock", "a")  # noqa: SIM115 - held across the yield
            fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError:
        handle = None
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # releases the lock


def _build(release: Release, files: ProjectFiles, helm: HelmTool, temp: Path,
           environ: Mapping[str, str], store: Path | None, key: str,
           missing: list[str]) -> Path:
    folder = release.chart.ref
    copy = _private_copy(files, folder, temp / "project")
    done = helm.runner([helm.path, "dependency", "build", str(copy)], temp, environ)
    if done.returncode != 0:
        raise CompileError([Diagnostic(
            "error", f"helm dependency build of '{folder}' failed for "
            f"{', '.join(missing)}: {_helm_words(done.stderr or done.stdout)}",
            _chart_span(release),
            help="vendor the dependencies into charts/ (helm dependency update)")])
    return _keep_built(copy, key, store) or copy


# Charts built by `helm dependency build` in this process when there is no store (--no-cache):
# key → the built copy, in a folder removed when the process ends.
_BUILT: dict[str, Path] = {}


def _keep_built(copy: Path, key: str, store: Path | None) -> Path | None:
    """The built ``copy`` kept under ``key`` (its own symlinks to the project resolved:
    helm reads only the chart and its built ``charts/``): in ``store`` by copying it beside
    and renaming it into place (another worker's identical build may win), else in a folder of
    this process. None when it cannot be kept (the next render builds again)."""
    try:
        if store is None:
            root = Path(tempfile.mkdtemp(prefix="meshc-deps-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            kept = root / copy.name
            shutil.copytree(copy, kept, symlinks=False)
            _BUILT[key] = kept
            return kept
        store.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix=".part-", dir=store))
        shutil.copytree(copy, part / copy.name, symlinks=False)
        try:
            os.rename(part, store / key)
        except OSError:  # kept already by another process: theirs is the same build
            shutil.rmtree(part, ignore_errors=True)
        kept = store / key / copy.name
        return kept if (kept / "Chart.yaml").is_file() else None
    except OSError:
        return None


def _private_copy(files: ProjectFiles, folder: str, root: Path) -> Path:
    """A copy of chart ``folder`` at the same relative place under ``root``, its siblings (and
    its ancestors' siblings) linked to the project's, so ``file://../lib`` dependencies resolve
    as they do in the project; ``helm dependency build`` writes only into the copy."""
    here, target = root, files.root
    parts = folder.split("/")
    for depth, part in enumerate(parts):
        here.mkdir(parents=True, exist_ok=True)
        for entry in sorted(target.iterdir()):
            if entry.name != part:
                (here / entry.name).symlink_to(entry)
        here, target = here / part, target / part
        if depth == len(parts) - 1:
            shutil.copytree(target, here, symlinks=False)
    return here


def _vendored(name: str, folder: str, present: set[str]) -> bool:
    prefix = f"{folder}/charts/"
    return any(p.startswith(f"{prefix}{name}/") or
               (p.startswith(f"{prefix}{name}-") and p.endswith(".tgz") and "/" not in p[len(prefix):])
               for p in present)


def _line_of(text: str, file: str, name: str) -> Span:
    pattern = re.compile(r"name:\s*['\"]?" + re.escape(name) + r"['\"]?\s*$")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.search(line):
            col = line.index(name) + 1
            return Span(file, number, col, number, col + len(name))
    return Span(file, 1, 1)


# --- errors ---------------------------------------------------------------------------------

def _chart_span(release: Release) -> Span:
    return release.chart_span or release.span


def _helm_words(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines()
             if line.strip() and not line.startswith("Use --debug")]
    return " ".join(line.removeprefix("Error: ") for line in lines) or "no output"


def helm_failure(release: Release, files: ProjectFiles, text: str) -> Diagnostic:
    """Helm's refusal as a diagnostic: on the chart file and line Helm names when that file is
    in the project, else on the release's ``chart:`` line."""
    words = _helm_words(text)
    folder = release.chart.ref
    found = _LOCATION.search(words)
    if found is not None:
        path = project_path(found.group(1), folder)
        if any(p == path for p, _ in release.chart.files):
            files.read(path)  # for the excerpt
            line = int(found.group(2))
            col = int(found.group(3)) if found.group(3) else 1
            span = Span(path, line, col, line, WHOLE_LINE) if not found.group(3) \
                else Span(path, line, col)
            said = (words[:found.start()] + words[found.end():]).strip(" :")
            said = re.sub(r"^(parse error at|execution error at) \(\)", r"\1", said)
            return Diagnostic("error", f"helm template failed for release '{release.name}': "
                              f"{said}", span)
    return Diagnostic("error", f"helm template failed for release '{release.name}': {words}",
                      _chart_span(release))


def no_helm(releases: list[Release], why: str | None = None,
            found: HelmTool | None = None) -> Diagnostic:
    """The one error when Helm charts need rendering and there is no Helm 4 binary (none at
    all, or only ``found``, a Helm 3, which meshc does not render with)."""
    names = ", ".join(r.name for r in releases)
    if found is not None:
        return Diagnostic(
            "error", f"{found.path} is Helm {found.version}, and meshc renders Helm charts with "
                     f"Helm 4 only; left unrendered: {names}", _chart_span(releases[0]),
            help=f"install Helm 4 and set {HELM_VAR} to its path (plans can still be for Helm "
                 "3: helmVersion: 3)" + (f" ({why})" if why else ""))
    return Diagnostic(
        "error", f"no helm binary to render Helm charts; left unrendered: {names}",
        _chart_span(releases[0]),
        help=f"install Helm 4 and put helm on PATH, or set {HELM_VAR} to its path"
             + (f" ({why})" if why else ""))


# --- non-reproducible templates -------------------------------------------------------------

# The charts (by :func:`_identity`) whose templates this process scanned and found without a
# non-reproducible call: the scan is a copy of the chart and a pass over every template, and a
# chart shared by a thousand releases need not pay it a thousand times.
_CLEAN: set[str] = set()


def _identity(release: Release, package: Path | None) -> str:
    """What a chart's templates are made of: every file of a local chart (its ``file://``
    dependencies' too, :attr:`Chart.files`), or the bytes of a package (its path in the cache
    is its digest)."""
    chart = release.chart
    text = json.dumps([chart.ref, str(package)] if package is not None
                      else [chart.ref, list(chart.files)])
    return hashlib.sha256(text.encode()).hexdigest()


CLOCK = frozenset({"now", "ago"})              # refused wherever Helm reaches them
CLUSTER = frozenset({"lookup", "getHostByName"})  # nothing offline; the cluster's at install
RANDOM = frozenset(NON_REPRODUCIBLE) - CLOCK - CLUSTER
_HELM_AT = re.compile(r"([\w.-]+(?:/[\w.-]+)*/templates/[\w./-]+):(\d+)(?::(\d+))?")


def non_reproducible(release: Release, files: ProjectFiles, source: Path, work: Path,
                     template: Callable[[Path], Completed], first: str,
                     identity: str | None = None) -> tuple[list[Diagnostic], str]:
    """(A diagnostic for each non-reproducible call that shaped the output, the output to
    review). Only charts whose templates call such a function pay for the proof:

    * random functions (``randAlphaNum``, ``uuidv4``, ``genCA``…): the chart is templated a
      second time. Where the two outputs differ only in values of a Secret's ``data`` or
      ``stringData`` and in ``checksum/*`` annotations (a password the chart generates when
      none is given, and the checksums of it), those values read :data:`GENERATED` in the
      review: the chart generates them at install, and a Secret's values are never shown
      anyway. Any other difference is an error on every random call of the templates whose
      documents differ (and of the partials). ``default (randAlphaNum 16)`` with the value set
      renders the same twice and is accepted;
    * clock functions (``now``, ``ago``), which render the same twice here but not tomorrow: a
      copy of the chart whose calls of them are replaced by ``fail`` is templated; each call
      Helm reaches is an error (the copy is templated again with that call restored, until none
      is reached);
    * ``lookup`` and ``getHostByName`` render nothing offline and the cluster's answer at
      install, which is what charts use them for (keeping a generated password across
      upgrades); they are not refused, and ``meshc check`` names them.
    """
    if identity is not None and identity in _CLEAN:  # scanned already: no such call
        return [], first
    tree = work / "instrumented"
    unpack(source, tree)
    sites = [(path, text, [c for c in calls(text) if c[0] not in CLUSTER])
             for path, text in _tree_templates(tree)]
    sites = [(path, text, found) for path, text, found in sites if found]
    if not sites:
        if identity is not None:
            _CLEAN.add(identity)
        return [], first
    chart_root = next(p for p in sorted(tree.iterdir()) if p.is_dir())
    problems: list[Diagnostic] = []
    output = first
    random = [(path, f, line, col) for path, _, found in sites for f, line, col, _ in found
              if f in RANDOM]
    if random:
        again = template(source)
        if again.returncode == 0 and again.stdout != first:
            output, changed = stabilized(first, again.stdout)
            for path, function, line, col in random if changed else ():
                rel = path.relative_to(chart_root).as_posix()
                if rel in changed or "" in changed or posixpath.basename(rel).startswith("_"):
                    problems.append(_call_diagnostic(release, files, rel, function, line, col))
    for rel, function, line, col in reached_calls(tree, CLOCK, template):
        problems.append(_call_diagnostic(release, files, rel, function, line, col))
    return sorted(problems, key=lambda d: (str(d.span), d.message)), output


def reached_calls(tree: Path, functions: frozenset[str],
                  template: Callable[[Path], Completed]) -> list[tuple[str, str, int, int]]:
    """(chart-relative file, function, line, column) of every call of ``functions`` that Helm
    reaches when it templates the chart unpacked in ``tree`` (:func:`unpack`) with
    ``template``: the calls are replaced by ``fail`` in place, and the chart is templated again
    with each reached call restored, until none is reached. Charts without such calls cost
    nothing."""
    roots = [p for p in sorted(tree.iterdir()) if p.is_dir()]
    if not roots:
        return []
    chart_root = roots[0]
    texts = dict(_tree_templates(tree))
    pending = {(path, line): (function, col, offset) for path, text in texts.items()
               for function, line, col, offset in calls(text) if function in functions}
    if not pending:
        return []

    def instrument(path: Path) -> None:  # every pending call of the file made a `fail`
        marks = sorted((offset, function) for (at, _), (function, _, offset) in pending.items()
                       if at == path)
        path.write_text(_failing(texts[path], marks), encoding="utf-8")

    for path in sorted({at for at, _ in pending}):
        instrument(path)
    found = []
    for _ in range(len(pending)):
        done = template(chart_root)
        # Helm names the whole include chain, outermost first: the failing call is the
        # innermost location that is one of ours
        hits = _HELM_AT.findall(done.stderr or done.stdout) if done.returncode != 0 else []
        at = next((spot for spot in ((chart_root / h[0].partition("/")[2], int(h[1]))
                                     for h in reversed(hits)) if spot in pending), None)
        if at is None:
            break  # none reached (a failure of another kind is not ours to report here)
        function, col, _ = pending.pop(at)
        found.append((at[0].relative_to(chart_root).as_posix(), function, at[1], col))
        instrument(at[0])
    for path in sorted({at for at, _ in pending} | {chart_root / f for f, *_ in found}):
        if path in texts:
            path.write_text(texts[path], encoding="utf-8")  # the chart as it was
    return found


def stabilized(first: str, second: str,
               marker: str | None = GENERATED) -> tuple[str, set[str]]:
    """(``first`` with each value that differs from ``second`` in a Secret's data or in a
    ``checksum/*`` annotation replaced by ``marker`` (:func:`_generated`), the chart-relative
    templates whose documents differ anywhere else) for two ``helm template`` outputs."""
    a = re.split(r"^---[ \t]*$", first, flags=re.MULTILINE)
    b = re.split(r"^---[ \t]*$", second, flags=re.MULTILINE)
    if len(a) != len(b):
        return first, _changed_templates(first, second) or {""}
    chunks, unconfined = [], set()
    for one, two in zip(a, b, strict=True):
        merged = None
        if one != two:
            try:
                docs = load_documents(one, "first"), load_documents(two, "second")
            except CompileError:
                docs = ([], [])
            if len(docs[0]) == 1 == len(docs[1]) and isinstance(docs[0][0], dict):
                merged = _generated(docs[0][0], docs[1][0], docs[0][0].get("kind") == "Secret",
                                    (), marker)
            if merged is None:
                source = _SOURCE.search(one)
                unconfined.add(project_path(source.group(1), "").lstrip("/") if source else "")
                chunks.append(one)
                continue
            comments = [line for line in one.strip("\n").splitlines() if line.startswith("#")]
            one = "\n" + "".join(f"{line}\n" for line in comments) + dump_yaml(merged)
        chunks.append(one)
    return "---".join(chunks), unconfined


def _generated(a: Any, b: Any, secret: bool, path: tuple[str, ...],
               marker: str | None = GENERATED) -> Any:
    """``a`` with the values that differ from ``b`` where a chart may derive them from what
    the review cannot show replaced by ``marker`` (a Secret's data: left as they are when
    ``marker`` is None, the review shows their digests; ``checksum/*`` annotations: always
    ``marker``, else :data:`FROM_SECRETS`); None when they differ anywhere else."""
    if a == b or a in (GENERATED, FROM_SECRETS):  # already marked: the first mark stays
        return a
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        merged = {}
        for key in a:
            value = _generated(a[key], b[key], secret, (*path, str(key)), marker)
            if value is None:
                return None
            merged[key] = value
        return merged
    if secret and len(path) == 2 and path[0] in ("data", "stringData"):
        return a if marker is None else marker
    if len(path) >= 2 and path[-2] == "annotations" and path[-1].startswith("checksum/"):
        return marker or FROM_SECRETS
    return None


def _failing(text: str, marks: list[tuple[int, str]]) -> str:
    """``text`` with the call of each (offset, function) replaced by ``fail`` (padded to the
    name's length where it is longer, so columns stay put)."""
    for offset, function in reversed(marks):
        text = text[:offset] + "fail".ljust(len(function)) + text[offset + len(function):]
    return text


def _changed_templates(first: str, second: str) -> set[str]:
    """The chart-relative templates whose documents differ between two ``helm template``
    outputs."""
    def by_source(output: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, document in split_sources(output, ""):
            found.setdefault(name.lstrip("/"), []).append(document)
        return found
    a, b = by_source(first), by_source(second)
    return {name for name in set(a) | set(b) if a.get(name) != b.get(name)}


def _call_diagnostic(release: Release, files: ProjectFiles, rel: str, function: str,
                     line: int, col: int) -> Diagnostic:
    """The error for a call at ``rel`` (chart-relative) ``line:col``: on the project file when
    the chart is a local folder holding it, else on the release's ``chart:``."""
    path = posixpath.join(release.chart.ref, rel)
    message = (f"template {path if release.chart.local else release.chart.ref + '/' + rel} "
               f"calls {function}, which renders differently on every run or at install "
               "(meshc commits only reproducible output)")
    if release.chart.local and any(p == path for p, _ in release.chart.files):
        files.read(path)  # for the excerpt
        return Diagnostic("error", message, Span(path, line, col, line, col + len(function)),
                          REPLACE_HELP)
    return Diagnostic("error", message, _chart_span(release), REPLACE_HELP,
                      (f"in {release.chart.ref}/{rel}:{line}:{col}",))


def calls(text: str) -> Iterator[tuple[str, int, int, int]]:
    """(function, line, column, offset) of every non-reproducible call inside a ``{{ }}``
    action of Go template ``text`` (string literals and comments left out)."""
    for action in _ACTION.finditer(text):
        body = _STRINGS.sub(lambda m: " " * len(m.group(0)), action.group(1))
        for call in _CALL.finditer(body):
            offset = action.start(1) + call.start()
            line = text.count("\n", 0, offset) + 1
            col = offset - (text.rfind("\n", 0, offset) + 1) + 1
            yield call.group(1), line, col, offset


def unpack(source: Path, into: Path) -> None:
    """The chart at ``source`` (a folder or a package) as plain folders under ``into``, its
    packaged subcharts (``charts/*.tgz``) unpacked in place, recursively."""
    into.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, into / source.name, symlinks=False)
    else:
        _extract(source, into)
    for archive in sorted(into.rglob("charts/*.tgz")):
        _extract(archive, archive.parent)
        archive.unlink()


def _extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if (m.isfile() or m.isdir())
                   and not m.name.startswith(("/", "..")) and "/../" not in m.name]
        tar.extractall(into, members=members, filter="data")


def _tree_templates(tree: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(tree.rglob("*")):
        if path.is_file() and "templates" in path.relative_to(tree).parts:
            try:
                yield path, path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
