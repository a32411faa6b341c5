"""Traced rendering: which template line produced each line of a template's output.

Normal renders pay nothing for this: ``meshc check`` re-renders a template here only when a
finding needs a location. Jinja compiles a template to a Python generator that yields output
chunks; after each chunk we look at the suspended generator's frame (following ``gi_yieldfrom``
into included templates) and map its code line back to the template line with Jinja's debug
info (:meth:`jinja2.Template.get_corresponding_lineno`).

Jinja records debug lines for expressions and tags, not for literal text: a literal chunk maps
to the node before it. Literal chunks are therefore located in the template source itself
(searching forward from that line), so that each of their lines gets its own template line.

:func:`locate_path` then maps a field path of a rendered document (``spec.template.spec.
containers[0].resources``) to the output line holding it, through composed YAML nodes.
"""

from __future__ import annotations

import dis
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import CodeType, FrameType, GeneratorType
from typing import Any

import jinja2
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..core.diagnostics import CompileError
from ..syntax.yamlsrc import compose_documents
from .templating import Templates

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class TemplateLine:
    """A line of a template file (project-relative name, 1-based line)."""

    template: str
    line: int


@dataclass(frozen=True, slots=True)
class _Chunk:
    start: int                 # offset in the output
    text: str
    origin: TemplateLine       # for a literal chunk: the line where its text starts
    literal: bool


@dataclass(frozen=True, slots=True)
class TracedRender:
    """A template's output and, for every output line, the template line responsible."""

    text: str
    lines: tuple[TemplateLine, ...]   # index 0 is output line 1

    def origin(self, line: int) -> TemplateLine | None:
        """The template line that produced output ``line`` (1-based)."""
        return self.lines[line - 1] if 1 <= line <= len(self.lines) else None


def trace_render(templates: Templates, name: str, context: Mapping[str, Any]) -> TracedRender:
    """Render template ``name`` as :meth:`Templates.render_file` does, recording line origins.

    Raises :class:`CompileError` if the template fails (it rendered before, so it should not).
    """
    template = templates.env.get_template(name)
    generator = template.root_render_func(template.new_context(dict(context)))
    chunks: list[_Chunk] = []
    offset = 0
    sources: dict[str, str] = {}
    literals: dict[CodeType, frozenset[int]] = {}
    try:
        for text in generator:
            frame = _innermost_frame(generator)
            chunk = _chunk(templates, frame, name, str(text), offset, sources, literals)
            chunks.append(chunk)
            offset += len(chunk.text)
    except Exception as exc:  # noqa: BLE001 - same failures as a normal render
        from .templating import template_diagnostic

        raise CompileError([template_diagnostic(exc, name)]) from None
    output = "".join(c.text for c in chunks)
    return TracedRender(output, _line_origins(output, chunks, name))


def _innermost_frame(generator: Any) -> FrameType | None:
    """The frame of the innermost template generator the render is suspended in: through
    ``yield from`` (extends, blocks) and through the ``for event in gen: yield event`` loop
    Jinja compiles ``{% include %}`` to."""
    frame: FrameType | None = generator.gi_frame
    inner = generator.gi_yieldfrom
    while frame is not None:
        if not isinstance(inner, GeneratorType) and "gen" in frame.f_code.co_varnames:
            inner = frame.f_locals.get("gen")  # an include's generator, while it runs
        if not isinstance(inner, GeneratorType) or inner.gi_frame is None \
                or "__jinja_template__" not in inner.gi_frame.f_globals:
            return frame
        frame = inner.gi_frame
        inner = inner.gi_yieldfrom
    return frame


def _chunk(templates: Templates, frame: FrameType | None, fallback: str, text: str,
           offset: int, sources: dict[str, str],
           literals: dict[CodeType, frozenset[int]]) -> _Chunk:
    template = frame.f_globals.get("__jinja_template__") if frame is not None else None
    if not isinstance(template, jinja2.Template) or frame is None:
        return _Chunk(offset, text, TemplateLine(fallback, 1), False)
    name = template.name or fallback
    line = template.get_corresponding_lineno(frame.f_lineno)
    literal = frame.f_lasti in _literal_yields(frame.f_code, literals)
    if literal:
        source = sources.get(name)
        if source is None:
            source = sources[name] = _template_source(templates, name)
        line = _find_literal(source, text, line)
    return _Chunk(offset, text, TemplateLine(name, line), literal)


def _literal_yields(code: CodeType, cache: dict[CodeType, frozenset[int]]) -> frozenset[int]:
    """Offsets of the ``yield`` instructions of ``code`` that yield a string constant (template
    text), as opposed to an expression's value."""
    found = cache.get(code)
    if found is None:
        offsets = set()
        previous = None
        for instruction in dis.get_instructions(code):
            if instruction.opname == "YIELD_VALUE" and previous is not None \
                    and previous.opname == "LOAD_CONST" and isinstance(previous.argval, str):
                offsets.add(instruction.offset)
            if instruction.opname not in ("CACHE", "EXTENDED_ARG", "NOP"):
                previous = instruction
        found = cache[code] = frozenset(offsets)
    return found


def _template_source(templates: Templates, name: str) -> str:
    loader = templates.env.loader
    if loader is None:
        return ""
    try:
        return loader.get_source(templates.env, name)[0]
    except jinja2.TemplateNotFound:
        return ""


def _find_literal(source: str, text: str, line: int) -> int:
    """The line where literal ``text`` starts in ``source``, searching from ``line``."""
    if not text.strip():
        return line
    start = _line_offset(source, line)
    found = source.find(text, start)
    if found >= 0:
        return source.count("\n", 0, found) + 1
    # Joined with a raw block's text, the chunk is not one piece of the source: find its first
    # whole line instead, and count back the lines before it.
    pieces = text.split("\n")
    for index, piece in enumerate(pieces[1:-1] or pieces, 1 if len(pieces) > 2 else 0):
        if piece.strip():
            found = source.find(piece, start)
            if found >= 0:
                return source.count("\n", 0, found) + 1 - index
            break
    return line


def _line_offset(source: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = source.find("\n", offset) + 1
        if offset == 0:
            return len(source)
    return offset


def _line_origins(output: str, chunks: Sequence[_Chunk], fallback: str) -> tuple[TemplateLine, ...]:
    """Each output line's origin: the chunk holding its first non-blank character."""
    origins = []
    index = 0
    line_start = 0
    for line_text in output.split("\n"):
        stripped = len(line_text) - len(line_text.lstrip())
        point = line_start + (stripped if line_text.strip() else 0)
        while index + 1 < len(chunks) and chunks[index].start + len(chunks[index].text) <= point:
            index += 1
        origins.append(_origin_at(chunks[index], point) if chunks else TemplateLine(fallback, 1))
        line_start += len(line_text) + 1
    return tuple(origins)


def _origin_at(chunk: _Chunk, point: int) -> TemplateLine:
    if not chunk.literal:
        return chunk.origin
    newlines = chunk.text.count("\n", 0, max(0, point - chunk.start))
    return TemplateLine(chunk.origin.template, chunk.origin.line + newlines)


# --- field paths in rendered YAML -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PathLocation:
    """Where a field path of a document sits in its text: the line (1-based) and column of the
    deepest part of the path that exists, and whether the whole path exists."""

    line: int
    col: int
    found: FieldPath
    exact: bool


def document_nodes(text: str, label: str) -> list[Node]:
    """The composed documents of ``text`` (raises :class:`CompileError` on invalid YAML)."""
    return compose_documents(text, label)


def find_document(nodes: Sequence[Node], kind: str, name: str) -> Node | None:
    """The document node whose ``kind`` and ``metadata.name`` are the given ones."""
    for node in nodes:
        if (_scalar(_child(node, "kind")) == kind
                and _scalar(_child(_child(node, "metadata"), "name")) == name):
            return node
    return None


def locate_path(document: Node, path: FieldPath) -> PathLocation:
    """The location of ``path`` in ``document`` (keys point at the key, items at the item)."""
    node = document
    line, col = document.start_mark.line + 1, document.start_mark.column + 1
    found: list[str | int] = []
    for part in path:
        key_node, child = _entry(node, part)
        if child is None:
            return PathLocation(line, col, tuple(found), False)
        anchor = key_node if key_node is not None else child
        line, col = anchor.start_mark.line + 1, anchor.start_mark.column + 1
        found.append(part)
        node = child
    return PathLocation(line, col, tuple(found), True)


def _entry(node: Node | None, part: str | int) -> tuple[Node | None, Node | None]:
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == part:
                return key, value
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None, None


def _child(node: Node | None, key: str) -> Node | None:
    return _entry(node, key)[1]


def _scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None
