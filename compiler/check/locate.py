"""Locations of findings: the template line that rendered a field, the patch that changed it,
and the values line that would fix it.

Nothing here runs unless a finding needs it: a resource's template is re-rendered with
:func:`compiler.render.render.trace.trace_render` the first time a finding asks where one of its fields came
from, and the trace is kept for the rest of the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core.diagnostics import WHOLE_LINE, CompileError
from ..core.source import Span, source_line
from ..model.model import Environment
from ..pipeline import Compiler, ReleaseOutput, env_context
from ..render.render import release_context
from ..render.trace import (
    FieldPath,
    TracedRender,
    document_nodes,
    find_document,
    locate_path,
    trace_render,
)
from ..values.values import ValueSet, lookup
from .resource import Resource, rendered_path

ValuesPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a field of a rendered resource comes from (``span``) and notes saying more."""

    span: Span | None
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ValuesHint:
    """The values key that decides a finding: where it is set now, and where to change it.

    A value that only the chart's defaults set is changed in the environment's values file
    (the chart is shared by every environment), so ``file`` then names that file.
    """

    key: str                    # the key to set, as written in ``file``
    file: str                   # where to set it
    span: Span | None           # the current value's span (None when nothing sets it)
    value: Any
    present: bool
    default: bool = False       # set only by the chart's values.yaml
    deleted: Span | None = None  # a null that deletes it (or a map holding it)

    def help(self, to: str = "") -> str:
        verb = "change" if self.present and not self.default else "set"
        return f"{verb} {self.key} in {self.file}" + (f" {to}" if to else "")

    @property
    def note(self) -> str:
        if self.deleted is not None:
            return f"{self.key} is not set: a null deletes it at {self.deleted}"
        if not self.present or self.span is None:
            return f"{self.key} is not set"
        where = "the chart's default, at" if self.default else "set at"
        return f"{self.key} is {_show(self.value)} ({where} {self.span})"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return str(value)


class Locator:
    """Answers "where did this come from?" for one check run (traces cached per template)."""

    def __init__(self, compiler: Compiler) -> None:
        self.compiler = compiler
        self._traces: dict[tuple[str, str, str], TracedRender | None] = {}
        self._nodes: dict[tuple[str, str, str], list[Any]] = {}
        self._env_ctx: dict[str, dict[str, Any]] = {}

    # --- fields of rendered resources -----------------------------------------------------

    def field(self, resource: Resource, path: FieldPath) -> Location:
        """The template line (or meshfile patch) responsible for ``path`` of ``resource``,
        with a note giving the line in the rendered file."""
        notes = []
        rendered = self._rendered_line(resource, path)
        if rendered is not None:
            notes.append(f"rendered at {rendered_path(self.compiler.project, resource)}:{rendered}")
        patch = self._patch_span(resource, path)
        if patch is not None:
            return Location(patch, (*notes, "the field is set by this patch"))
        span, exact_note = self._template_span(resource, path)
        if exact_note:
            notes.append(exact_note)
        notes.extend(self._values_on_line(resource, span, path))
        return Location(span, tuple(notes))

    def _values_on_line(self, resource: Resource, span: Span, path: FieldPath) -> list[str]:
        """Notes naming the values a template line renders (``{{ values.a.b|toyaml }}``), down
        to the field in question when the line renders a structure holding it."""
        text = source_line(self.compiler.sources.get(span.file, ""), span.line) or ""
        refs = _VALUES_REF.findall(text)
        if not refs:
            return []
        rest: FieldPath = ()
        for index in range(len(path) - 1, -1, -1):
            part = path[index]
            if isinstance(part, str) and re.search(rf"(?<![\w.-]){re.escape(part)}\s*:", text):
                rest = path[index + 1:]
                break
        values = resource.output.values
        notes = []
        for ref in dict.fromkeys(refs):
            base = tuple(ref.strip(".").split("."))
            for candidate in ((*base, *rest), base) if rest else (base,):
                origin = values.origin(candidate)
                if origin is None or not lookup(values.values, candidate)[0]:
                    continue
                if candidate == base and isinstance(origin.value, dict):
                    break  # a merged map has no single line to name
                key = _dotted(origin.path) if origin.layer.scope == "env" else _dotted(candidate)
                notes.append(f"from values: {key} = {_show(origin.value)}, set at {origin.span}")
                break
        return notes

    def _rendered_line(self, resource: Resource, path: FieldPath) -> int | None:
        try:
            nodes = document_nodes(resource.manifest.text, resource.manifest.filename)
        except CompileError:
            return None
        if not nodes:
            return None
        return locate_path(nodes[0], path).line

    def _patch_span(self, resource: Resource, path: FieldPath) -> Span | None:
        pointer = [str(p) for p in path]
        for patch in resource.output.release.patches:
            if not _targets(patch.target, resource.data):
                continue
            for op in patch.ops:
                for key in ("path", "from"):
                    target = op.get(key)
                    if not isinstance(target, str):
                        continue
                    parts = [p.replace("~1", "/").replace("~0", "~")
                             for p in target.split("/")[1:]]
                    shorter = min(len(parts), len(pointer))
                    if parts[:shorter] == pointer[:shorter]:
                        return patch.span
        return None

    def _template_span(self, resource: Resource, path: FieldPath) -> tuple[Span, str]:
        template = resource.manifest.template
        fallback = Span(template, 1, 1, 1, WHOLE_LINE)
        traced = self._trace(resource)
        if traced is None:
            return fallback, ""
        key = (resource.env.name, resource.release, template)
        if key not in self._nodes:
            try:
                self._nodes[key] = document_nodes(traced.text, f"{template} (traced)")
            except CompileError:
                self._nodes[key] = []
        document = find_document(self._nodes[key], resource.manifest.kind, resource.manifest.name)
        if document is None:  # renamed by a patch: the template's only document, if one
            document = self._nodes[key][0] if len(self._nodes[key]) == 1 else None
        if document is None:
            return fallback, ""
        where = locate_path(document, path)
        origin = traced.origin(where.line)
        if origin is None:
            return fallback, ""
        note = "" if where.exact else (
            f"{_dotted(path)} is not rendered; "
            + (f"{_dotted(where.found)} is" if where.found else "the resource starts")
            + " at this template line")
        return self._span_on_line(origin.template, origin.line, where.found), note

    def _span_on_line(self, template: str, line: int, found: FieldPath) -> Span:
        """Underline the field's key on the template line when it is written there."""
        text = source_line(self.compiler.sources.get(template, ""), line) or ""
        last = next((p for p in reversed(found) if isinstance(p, str)), None)
        if last is not None:
            match = re.search(rf"(?<![\w.-]){re.escape(last)}\s*:", text)
            if match is not None:
                return Span(template, line, match.start() + 1, line, match.start() + 1 + len(last))
        return Span(template, line, 1, line, WHOLE_LINE)

    def _trace(self, resource: Resource) -> TracedRender | None:
        output = resource.output
        if output.release.chart.is_helm:  # Go templates: Helm traces nothing back to lines
            return None
        key = (resource.env.name, resource.release, resource.manifest.template)
        if key not in self._traces:
            try:
                context = self._release_context(resource.env, output)
                self._traces[key] = trace_render(self.compiler.templates,
                                                 resource.manifest.template, context)
            except CompileError:
                self._traces[key] = None
        return self._traces[key]

    def _release_context(self, env: Environment, output: ReleaseOutput) -> dict[str, Any]:
        if env.name not in self._env_ctx:
            self._env_ctx[env.name] = env_context(self.compiler, env)
        release = output.release
        release_ctx = {"name": release.name, "namespace": output.namespace,
                       "chart": release.chart.ref, "labels": dict(release.labels),
                       "valuesKey": release.values_key_text}
        context = release_context(output.values, self._env_ctx[env.name], release_ctx)
        context.update(output.secrets.template_functions(release))  # secret_ref, has_secret
        return context

    # --- values ---------------------------------------------------------------------------

    def values(self, output: ReleaseOutput, env: Environment,
               candidates: tuple[ValuesPath, ...]) -> ValuesHint | None:
        """The first candidate key (paths into the release's values) that is set, with its
        provenance; else where to add the first candidate: the environment's last values file."""
        if not candidates:
            return None
        values = output.values
        last = (env.values[-1].file if env.values
                else f"a values file of environment '{env.name}' (it has none yet)")
        env_layer = _env_layer(values)
        for path in candidates:
            origin = values.origin(path)
            if origin is None or not lookup(values.values, path)[0]:
                continue
            if origin.layer.kind == "chart":
                own = values.layer_path(env_layer, path) if env_layer is not None else path
                return ValuesHint(_dotted(own), last, origin.span, origin.value, True, True)
            return ValuesHint(_dotted(origin.path), origin.layer.doc.file, origin.span,
                              origin.value, True)
        path = candidates[0]
        own = values.layer_path(env_layer, path) if env_layer is not None else path
        return ValuesHint(_dotted(own), last, None, None, False, deleted=_deleted_at(values, path))

    def tag_paths(self, output: ReleaseOutput, tag: str) -> tuple[ValuesPath, ...]:
        """Paths of the release's values holding ``tag`` under a key named ``tag``."""
        found: list[ValuesPath] = []
        _walk_tags(output.values.values, (), tag, found)
        return tuple(found)


_VALUES_REF = re.compile(r"(?<![\w.])values((?:\.[A-Za-z_]\w*)+)")


def _deleted_at(values: ValueSet, path: ValuesPath) -> Span | None:
    """Where a null deletes ``path`` or one of its parents (the strongest such null)."""
    for end in range(len(path), 0, -1):
        origin = values.origin(path[:end])
        if origin is not None and origin.value is None:
            return origin.span
    return None


def _env_layer(values: Any) -> Any:
    return next((layer for layer in values.layers if layer.scope == "env"), None)


def _walk_tags(node: Any, path: ValuesPath, tag: str, found: list[ValuesPath]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "tag" and not isinstance(value, (dict, list)) and str(value) == tag:
                found.append((*path, key))
            elif key not in ("global", "features"):
                _walk_tags(value, (*path, key), tag, found)


def _targets(target: tuple[tuple[str, str], ...], data: dict[str, Any]) -> bool:
    meta = data.get("metadata") or {}
    api = str(data.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    actual = {"kind": data.get("kind"), "name": meta.get("name"),
              "namespace": meta.get("namespace", ""), "apiVersion": api, "group": group,
              "version": version}
    return all(actual.get(key) == expected for key, expected in target)


def _dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part.replace(".", "\\.") if "." in part else part)
    return out


dotted = _dotted
