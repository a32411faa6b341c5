"""YAML in and out, typed the way Helm's Go reader types it, with source spans.

Helm reads values through sigs.k8s.io/yaml (go-yaml v2, a YAML 1.1 resolver), not PyYAML's
rules: ``y``/``n``/``yes``/``on``/``off`` are booleans, timestamps stay strings, ``1:30`` is a
string (no base 60), ``0777`` is octal and ``1_000`` is 1000. Duplicate keys are errors here
(PyYAML keeps the last one silently). Parsing uses libyaml through PyYAML's C parser when
available; typing and spans are ours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from .diagnostics import CompileError, Diagnostic, Diagnostics
from .source import Span, span_from_marks

LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MERGE = (TAG + t for t in ("str", "int", "float", "bool", "null", "merge"))
MAP, SEQ = TAG + "map", TAG + "seq"

Path = tuple[str | int, ...]

_FIXED: dict[str, tuple[str, Any]] = {}
for _words, _tag, _value in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), BOOL, True),
    (("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), BOOL, False),
    (("", "~", "null", "Null", "NULL"), NULL, None),
    ((".nan", ".NaN", ".NAN"), FLOAT, math.nan),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), FLOAT, math.inf),
    (("-.inf", "-.Inf", "-.INF"), FLOAT, -math.inf),
    (("<<",), MERGE, "<<"),
):
    for _word in _words:
        _FIXED[_word] = (_tag, _value)

_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_INT64 = (-(2**63), 2**63 - 1)


def _go_int(plain: str) -> int | None:
    match = _GO_INT.fullmatch(plain)
    if match is None:
        return None
    sign, digits = match.groups()
    prefix = digits[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        value = int(digits[2:], {"0x": 16, "0o": 8, "0b": 2}[prefix])
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits, 8)
    else:
        value = int(digits)
    if sign == "-":
        value = -value
    if _INT64[0] <= value <= _INT64[1]:
        return value
    if sign == "" and value < 2**64:  # strconv.ParseUint accepts no sign
        return value
    return None


def resolve_plain(text: str) -> tuple[str, Any]:
    """Type an unquoted scalar as go-yaml v2 does: returns (tag, Python value)."""
    fixed = _FIXED.get(text)
    if fixed is not None:
        return fixed
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text):
            return FLOAT, float(text)
    elif first.isdigit() or first in "+-":
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return INT, number
        if _GO_FLOAT.fullmatch(plain):
            value = float(plain)
            if not math.isinf(value):  # Go's ParseFloat reports a range error: stays a string
                return FLOAT, value
    return STR, text


class GoResolver(BaseResolver):
    """Assigns go-yaml v2 tags to plain scalars (used by both the parser and the emitter)."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return resolve_plain(value)[0]
        return super().resolve(kind, value, implicit)


if LIBYAML:  # libyaml is much faster; the pure-Python parser is the fallback
    class _ComposeLoader(yaml.cyaml.CParser, GoResolver):  # type: ignore[misc]
        pass
else:  # pragma: no cover - depends on the PyYAML build
    class _ComposeLoader(yaml.reader.Reader, yaml.scanner.Scanner,  # type: ignore[no-redef]
                         yaml.parser.Parser, yaml.composer.Composer, GoResolver):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            GoResolver.__init__(self)


def _make_loader(text: str) -> Any:
    loader = _ComposeLoader(text)
    return loader


@dataclass(slots=True)
class Limits:
    """Bounds against hostile input (alias bombs, runaway nesting)."""

    max_nodes: int = 5_000_000
    max_depth: int = 200


@dataclass(slots=True)
class _Builder:
    """Turns composed nodes into plain Python values, typed like Go, recording spans."""

    file: str
    diags: Diagnostics
    spans: dict[Path, Span] | None = None
    limits: Limits = field(default_factory=Limits)
    visited: int = 0

    def build(self, node: Node, path: Path = (), depth: int = 0) -> Any:
        self.visited += 1
        if self.visited > self.limits.max_nodes or depth > self.limits.max_depth:
            raise _TooBig(node, depth > self.limits.max_depth)
        if self.spans is not None:
            self.spans[path] = span_from_marks(self.file, node.start_mark, node.end_mark)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.mapping(node, path, depth)

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag == STR or tag == MERGE:
            return node.value
        if tag in (INT, FLOAT, BOOL, NULL):
            rtag, value = resolve_plain(node.value) if node.value else (NULL, None)
            if rtag == tag or (tag == FLOAT and rtag == INT):
                return float(value) if tag == FLOAT else value
            self.diags.error(f"cannot read {node.value!r} as {tag[len(TAG):]}",
                             span_from_marks(self.file, node.start_mark, node.end_mark))
            return node.value
        return node.value  # !!timestamp, !!binary and custom tags: the text, as Go reads them

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        merged: list[dict[str, Any]] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == MERGE:
                merged.extend(self.merge_sources(value_node, path, depth))
                continue
            key = self.key(key_node)
            if key is None:
                continue
            if key in seen:
                self.diags.items.append(duplicate_key(self.file, key, key_node, seen[key]))
                continue
            seen[key] = key_node
            result[key] = self.build(value_node, (*path, key), depth + 1)
        for source in merged:  # '<<' keys: explicit keys win, earlier merge sources win
            for key, value in source.items():
                result.setdefault(key, value)
        return result

    def merge_sources(self, node: Node, path: Path, depth: int) -> list[dict[str, Any]]:
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        sources = []
        for item in nodes:
            value = self.build(item, path, depth + 1)
            if isinstance(value, dict):
                sources.append(value)
            else:
                self.diags.error("a '<<' merge key needs a map or a list of maps",
                                 span_from_marks(self.file, item.start_mark, item.end_mark))
        return sources

    def key(self, node: Node) -> str | None:
        if not isinstance(node, ScalarNode):
            self.diags.error("a map key must be a scalar",
                             span_from_marks(self.file, node.start_mark, node.end_mark))
            return None
        value = self.scalar(node)
        if isinstance(value, bool):  # Go turns non-string keys into their text
            return "true" if value else "false"
        if value is None:
            return "null"
        return value if isinstance(value, str) else _number_text(value)


def duplicate_key(file: str, key: str, node: Node, first: Node) -> Diagnostic:
    """The error for a key written twice in one map (Go's reader rejects it; PyYAML would
    silently keep the last)."""
    mark = first.start_mark
    return Diagnostic("error", f"duplicate key '{key}'",
                      span_from_marks(file, node.start_mark, node.end_mark),
                      notes=(f"first defined at {file}:{mark.line + 1}:{mark.column + 1}",))


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _TooBig(Exception):
    def __init__(self, node: Node, too_deep: bool) -> None:
        self.node = node
        self.too_deep = too_deep


def compose_documents(text: str, file: str) -> list[Node]:
    """Parse ``text`` into YAML node trees (one per document); syntax errors become diagnostics."""
    loader = _make_loader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(node)
        return docs
    except yaml.MarkedYAMLError as exc:
        raise CompileError([_syntax_diagnostic(exc, file)]) from None
    except yaml.YAMLError as exc:  # reader errors (bad characters) carry a position too
        raise CompileError([Diagnostic("error", f"invalid YAML: {exc}", Span(file, 1, 1))]) from None
    finally:
        loader.dispose()


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    context = f" ({exc.context})" if exc.context else ""
    span = span_from_marks(file, mark) if mark is not None else Span(file, 1, 1)
    return Diagnostic("error", f"invalid YAML: {problem}{context}", span)


def build_value(node: Node, file: str, diags: Diagnostics,
                spans: dict[Path, Span] | None = None, prefix: Path = ()) -> Any:
    """Convert one composed node to plain Python data (Go typing), recording spans if asked."""
    builder = _Builder(file, diags, spans)
    try:
        return builder.build(node, prefix)
    except _TooBig as exc:
        what = "nested too deeply" if exc.too_deep else "too large after expanding aliases"
        diags.error(f"YAML document is {what}",
                    span_from_marks(file, exc.node.start_mark, exc.node.end_mark))
        return None


@dataclass(frozen=True, slots=True)
class ValuesDoc:
    """A loaded values file: its merged map and the span of every path in it."""

    file: str
    data: dict[str, Any]
    spans: dict[Path, Span]


def load_values_doc(text: str, file: str,
                    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
                    ) -> ValuesDoc:
    """Load a values file (possibly several documents, later ones merged over earlier ones).

    Raises :class:`CompileError` for syntax errors, duplicate keys, or a top level that is not a
    map.
    """
    diags = Diagnostics()
    spans: dict[Path, Span] = {}
    data: dict[str, Any] = {}
    for node in compose_documents(text, file):
        value = build_value(node, file, diags, spans)
        if value is None:
            continue
        if not isinstance(value, dict):
            diags.error("a values file must hold a map at its top level",
                        span_from_marks(file, node.start_mark, node.end_mark))
            continue
        data = _merge_docs(data, value, merge)
    diags.raise_if_errors()
    return ValuesDoc(file, data, spans)


def _merge_docs(a: dict[str, Any], b: dict[str, Any],
                merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None) -> dict[str, Any]:
    if not a:
        return b
    if merge is None:
        from .helmvalues import merge_maps

        merge = merge_maps
    return merge(a, b)


def load_values_text(text: str, filename: str) -> dict[str, Any]:
    """A values file's text → its map, exactly as ``helm -f`` reads it."""
    return load_values_doc(text, filename).data


def load_documents(text: str, file: str) -> list[Any]:
    """All documents of a YAML stream as plain data (Go typing, no spans). Empty documents are
    skipped. Raises :class:`CompileError`."""
    diags = Diagnostics()
    docs = [build_value(node, file, diags) for node in compose_documents(text, file)]
    diags.raise_if_errors()
    return [doc for doc in docs if doc is not None]


# --- output ---------------------------------------------------------------------------------

class _SafeDumpResolver(GoResolver):
    """Quotes a string when Go *or* a YAML 1.1 reader (PyYAML, Python tools) would retype it."""

    _std = yaml.resolver.Resolver()

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is ScalarNode and implicit[0] and tag == STR:
            return self._std.resolve(kind, value, implicit)
        return tag


class _Representer(yaml.representer.SafeRepresenter):
    def represent_str(self, data: str) -> ScalarNode:  # type: ignore[override]
        if "\n" in data and not data.endswith("\n\n"):  # never keep-chomped (|+): helm strips it
            return self.represent_scalar(STR, data, style="|")
        if "\n" in data:
            return self.represent_scalar(STR, data, style='"')
        return self.represent_scalar(STR, data)

    def represent_float(self, data: float) -> ScalarNode:  # type: ignore[override]
        if data.is_integer() and abs(data) < 1e16:
            return self.represent_scalar(INT, str(int(data)))  # Helm's float64 3 prints as 3
        return super().represent_float(data)


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(float, _Representer.represent_float)


if LIBYAML:
    class GoDumper(yaml.cyaml.CEmitter, _Representer, _SafeDumpResolver):  # type: ignore[misc]
        def __init__(self, stream: Any, **kwargs: Any) -> None:
            yaml.cyaml.CEmitter.__init__(self, stream, canonical=None, indent=2, width=1 << 30,
                                         allow_unicode=True, line_break="\n")
            _Representer.__init__(self, default_flow_style=False, sort_keys=True)
            _SafeDumpResolver.__init__(self)
else:  # pragma: no cover
    class GoDumper(yaml.emitter.Emitter, yaml.serializer.Serializer,  # type: ignore[no-redef]
                   _Representer, _SafeDumpResolver):
        def __init__(self, stream: Any, **kwargs: Any) -> None:
            yaml.emitter.Emitter.__init__(self, stream, indent=2, width=1 << 30,
                                          allow_unicode=True, line_break="\n")
            yaml.serializer.Serializer.__init__(self)
            _Representer.__init__(self, default_flow_style=False, sort_keys=True)
            _SafeDumpResolver.__init__(self)


def dump_yaml(data: Any) -> str:
    """Serialize data as block YAML: sorted keys, no line wrapping, LF endings, trailing newline.

    Strings that a Go or YAML 1.1 reader would read as something else are quoted, so the bytes
    mean the same to helm as to us.
    """
    if data == {} or data is None:
        return "{}\n" if data == {} else "null\n"
    return yaml.dump(data, Dumper=GoDumper)
