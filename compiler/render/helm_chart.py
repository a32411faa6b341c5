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
server, nothing of the caller's environment. The chart folder is read in place and never
written: dependencies already in ``charts/`` (folders or ``.tgz``) are used as they are; missing
ones are built with ``helm dependency build`` from the chart's ``Chart.lock`` into a private copy.
Each run is a separate process, so forked render workers run helm like the main process does.

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

import io
import posixpath
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..core.diagnostics import WHOLE_LINE, CompileError, Diagnostic, Diagnostics
from ..core.files import ProjectFiles
from ..core.process import HELM_VAR, HelmTool, helm_environment
from ..core.source import Span
from ..model.model import Release
from ..syntax.yamlsrc import dump_yaml
from .render import Manifest, manifests_of

NON_REPRODUCIBLE = (
    "randAlphaNum", "randAlpha", "randNumeric", "randAscii", "randBytes", "randInt", "uuidv4",
    "now", "ago", "lookup", "getHostByName", "genPrivateKey", "genCA", "genCAWithKey",
    "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey",
    "bcrypt", "htpasswd", "encryptAES", "shuffle",
)
REPLACE_HELP = "set the value explicitly, or replace the template"
_CALL = re.compile(r"(?<![\w.$])(" + "|".join(NON_REPRODUCIBLE) + r")(?![\w])")
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_STRINGS = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|/\*.*?\*/', re.DOTALL)
_SOURCE = re.compile(r"^# Source: (\S.*)$", re.MULTILINE)
_LOCATION = re.compile(r"([\w.-]+(?:/[\w.-]+)*/[\w.-]+\.(?:yaml|yml|tpl|txt|json)):(\d+)(?::(\d+))?")


def render_helm_release(release: Release, values: dict[str, Any], files: ProjectFiles,
                        helm: HelmTool, namespace: str, env: str,
                        kube_version: str | None) -> tuple[Manifest, ...]:
    """Render the local Helm chart of ``release`` with ``helm template`` and ``values`` (the
    release's computed values) in environment ``env``. Raises :class:`CompileError`: Helm's
    failures located on the chart file or the ``chart:`` line, non-reproducible templates on
    their call."""
    chart = release.chart
    folder = files.locate(chart.ref)
    with tempfile.TemporaryDirectory(prefix="meshc-helm-") as temp:
        environ = helm_environment(Path(temp) / "home")
        source = _with_dependencies(release, files, helm, Path(temp), environ)
        values_file = Path(temp) / "values.yaml"
        values_file.write_bytes(dump_yaml(_with_deletions(
            values, chart.defaults.data if chart.defaults is not None else {})).encode())
        argv = [helm.path, "template", release.name, str(source or folder),
                "--namespace", namespace, "--include-crds", "-f", str(values_file)]
        if kube_version:
            argv += ["--kube-version", kube_version]
        done = helm.runner(argv, Path(temp), environ)
    if done.returncode != 0:
        raise CompileError([helm_failure(release, files, done.stderr or done.stdout)])
    outputs = list(split_sources(done.stdout, chart.ref))
    problems = non_reproducible(release, files, {name for name, _ in outputs})
    if problems:
        raise CompileError(problems)
    return manifests_of(release, outputs, namespace, env)


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


def _with_deletions(values: Any, defaults: Any) -> Any:
    """``values`` with ``null`` where a chart default is absent: meshc's layers deleted it, and
    Helm would merge it back in from the chart's values.yaml otherwise."""
    if not isinstance(values, dict) or not isinstance(defaults, dict):
        return values
    result = dict(values)
    for key, default in defaults.items():
        result[key] = _with_deletions(result[key], default) if key in result else None
    return result


# --- dependencies ---------------------------------------------------------------------------

def _with_dependencies(release: Release, files: ProjectFiles, helm: HelmTool, temp: Path,
                       environ: Mapping[str, str]) -> Path | None:
    """None when the chart's dependencies are all in ``charts/``; else a private copy of the
    chart with them built from ``Chart.lock``. Raises :class:`CompileError` when one is missing
    and cannot be built."""
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
    copy = _private_copy(files, folder, temp / "project")
    done = helm.runner([helm.path, "dependency", "build", str(copy)], temp, environ)
    if done.returncode != 0:
        raise CompileError([Diagnostic(
            "error", f"helm dependency build of '{folder}' failed for "
            f"{', '.join(missing)}: {_helm_words(done.stderr or done.stdout)}",
            _chart_span(release),
            help="vendor the dependencies into charts/ (helm dependency update)")])
    return copy


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


def no_helm(releases: list[Release], why: str | None = None) -> Diagnostic:
    """The one error when Helm charts need rendering and there is no helm binary."""
    names = ", ".join(r.name for r in releases)
    return Diagnostic(
        "error", f"no helm binary to render Helm charts; left unrendered: {names}",
        _chart_span(releases[0]),
        help=f"install Helm 4 and put helm on PATH, or set {HELM_VAR} to its path"
             + (f" ({why})" if why else ""))


# --- non-reproducible templates -------------------------------------------------------------

def non_reproducible(release: Release, files: ProjectFiles,
                     rendered: set[str]) -> list[Diagnostic]:
    """A diagnostic for each call of a non-reproducible function in a template that rendered a
    document (``rendered``: their project paths) or in any partial of the chart."""
    if not rendered:
        return []
    found = []
    for path, text, located in _templates(release, files):
        partial = posixpath.basename(path).startswith("_")
        if path not in rendered and not partial:
            continue
        for function, line, col in calls(text):
            span = Span(path, line, col, line, col + len(function)) if located \
                else _chart_span(release)
            notes = () if located else (f"in {path}:{line}",)
            found.append(Diagnostic(
                "error", f"template {path} calls {function}, which renders differently on "
                f"every run (meshc commits only reproducible output)", span, REPLACE_HELP,
                notes))
    return found


def calls(text: str) -> Iterator[tuple[str, int, int]]:
    """(function, line, column) of every non-reproducible call inside a ``{{ }}`` action of
    Go template ``text`` (string literals and comments left out)."""
    for action in _ACTION.finditer(text):
        body = _STRINGS.sub(lambda m: " " * len(m.group(0)), action.group(1))
        for call in _CALL.finditer(body):
            offset = action.start(1) + call.start()
            line = text.count("\n", 0, offset) + 1
            col = offset - (text.rfind("\n", 0, offset) + 1) + 1
            yield call.group(1), line, col


def _templates(release: Release, files: ProjectFiles) -> Iterator[tuple[str, str, bool]]:
    """(path, text, is a project file) of every template of the chart and its subcharts:
    project files, and the members of vendored ``.tgz`` subcharts (named as if unpacked)."""
    for path, _ in release.chart.files:
        rel = path[len(release.chart.ref) + 1:]
        if "/templates/" in f"/{rel}":
            try:
                yield path, files.read(path), True
            except (OSError, ValueError):
                continue
        elif rel.startswith("charts/") and rel.endswith(".tgz") and rel.count("/") == 1:
            yield from _archive_templates(files.locate(path), f"{release.chart.ref}/charts")


def _archive_templates(archive: Path, charts: str) -> Iterator[tuple[str, str, bool]]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if member.isfile() and "/templates/" in member.name:
                    data = tar.extractfile(member)
                    if data is not None:
                        text = io.TextIOWrapper(data, "utf-8", errors="replace").read()
                        yield f"{charts}/{member.name}", text, False
    except (OSError, tarfile.TarError):
        return
