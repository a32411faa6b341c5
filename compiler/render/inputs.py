"""The inputs digest: one hash of everything an environment's plan was compiled from.

``meshc plan -o json`` and ``rendered/<env>/plan.json`` carry it as ``inputsDigest``, so
``meshc apply --plan plan.json`` can refuse a plan whose inputs changed since it was reviewed.
It covers, by project-relative path and content: the meshfile; the environment's values and
secrets files (the whole inheritance chain); the features template; and for every release the
environment deploys, its values files and, for a local chart, its ``values.yaml`` and every
template the chart can load (imports and includes followed) — plus the ``--set``-family flags,
by the values they set, and the environment variables the meshfile lets templates read
(``allowEnv``), if any. Nothing else machine- or time-dependent goes in: the digest is as stable
as the rest of ``rendered/``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable, Sequence
from typing import Any

from jinja2 import TemplateError, meta

from ..core.files import ProjectFiles
from ..model.model import Environment, Project, Release
from ..syntax.yamlsrc import ValuesDoc
from .remote import lock_name
from .templating import Templates

PREFIX = "sha256:"


def inputs_digest(files: ProjectFiles, templates: Templates, project: Project,
                  env: Environment, releases: Iterable[Release],
                  sets: ValuesDoc | None, flags: Sequence[tuple[str, str]] = ()) -> str:
    """``sha256:<hex>`` over the inputs of ``env``'s plan deploying ``releases``. ``flags``
    are the value flags as (kind, text) in Helm's order: flags parse into each release's own
    values, so two sets that give the same map alone can still give different values."""
    releases = list(releases)
    paths = set(input_files(files, templates, project, env, releases))
    digest = hashlib.sha256(b"meshc inputs v1\0")
    for path in sorted(paths):
        digest.update(f"{path}\0{_content(files, path)}\0".encode())
    helm_files = sorted({pair for r in releases if r.chart.is_helm for pair in r.chart.files})
    if helm_files:  # a Helm chart renders from every file of its folder, binary ones included
        found = [(path, _text_digest(files, path, raw)) for path, raw in helm_files]
        digest.update(f"<helm charts>\0{json.dumps(found)}\0".encode())
    given = json.dumps(sets.data if sets is not None else None, sort_keys=True, default=repr,
                       ensure_ascii=False)
    digest.update(f"<command line>\0{given}\0".encode())
    if flags:
        digest.update(f"<flags>\0{json.dumps(list(flags), ensure_ascii=False)}\0".encode())
    environ = getattr(templates, "environ", None)  # variables the meshfile's allowEnv exposes
    if environ:
        digest.update(f"<environment>\0{json.dumps(dict(sorted(environ.items())))}\0".encode())
    return PREFIX + digest.hexdigest()


def input_files(files: ProjectFiles, templates: Templates, project: Project, env: Environment,
                releases: Iterable[Release]) -> list[str]:
    """The project-relative files the digest covers (unsorted, may repeat)."""
    found = [project.root_file]
    releases = list(releases)
    if any(not r.chart.local for r in releases):  # remote charts: pinned there
        found.append(lock_name(project.root_file))
    found += [doc.file for doc in env.values]
    found += [source.path for source in env.secret_files]
    if project.features is not None:
        found += template_closure(files, templates, [files.normalize(project.features.value)])
    charts: dict[str, list[str]] = {}  # many releases share a chart: follow its imports once
    for release in releases:
        found += [doc.file for doc in release.values]
        chart = release.chart
        if chart.local:
            if chart.defaults is not None:
                found.append(chart.defaults.file)
            if chart.schema is not None:
                found.append(chart.schema.file)
            if chart.ref not in charts:
                charts[chart.ref] = template_closure(files, templates, list(chart.templates))
    return found + [name for names in charts.values() for name in names]


def template_closure(files: ProjectFiles, templates: Templates, start: list[str]) -> list[str]:
    """``start`` and every template they import or include, transitively; a dynamic include
    (a name computed at render time) makes every ``*.j2`` of the project count."""
    seen: list[str] = []
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        try:
            ast = templates.env.parse(files.read(name))
        except (TemplateError, OSError, UnicodeDecodeError, ValueError):
            continue  # missing or broken: compiling reports it; the digest hashes "missing"
        for ref in meta.find_referenced_templates(ast):
            if ref is None:
                return seen + _all_templates(files)
            if ref.startswith(("./", "../")):
                ref = posixpath.normpath(posixpath.join(posixpath.dirname(name), ref))
            todo.append(ref)
    return seen


def _all_templates(files: ProjectFiles) -> list[str]:
    return files.all_templates()


def _text_digest(files: ProjectFiles, path: str, raw: str) -> str:
    """A chart file's digest as text (line endings normalised, as every other input's: a
    checkout with CRLF endings is the same project), or ``raw`` (its bytes') for binary files."""
    try:
        return hashlib.sha256(files.read(path).encode()).hexdigest()
    except (OSError, UnicodeDecodeError, ValueError):
        return raw


def _content(files: ProjectFiles, path: str) -> Any:
    try:
        return hashlib.sha256(files.read(path).encode()).hexdigest()
    except (OSError, UnicodeDecodeError, ValueError):
        return "missing"
