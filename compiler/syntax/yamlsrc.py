"""YAML in and out, typed the way Helm's Go reader types it, with source spans.

Helm reads values through sigs.k8s.io/yaml (go-yaml v2, a YAML 1.1 resolver), not PyYAML's
rules: ``y``/``n``/``yes``/``on``/``off`` are booleans, timestamps stay strings, ``1:30`` is a
string (no base 60), ``0777`` is octal and ``1_000`` is 1000. Duplicate keys are errors here
(PyYAML keeps the last one silently). Parsing uses libyaml through PyYAML's C parser when
available; typing and spans are ours.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..core.limits import Limits
from ..core.limits import current as current_limits
from ..core.limits import describe as describe_limit
from ..core.source import Span, span_from_marks

LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, MERGE = (TAG + t for t in ("str", "int", "float", "bool", "null", "merge"))
MAP, SEQ, BINARY = TAG + "map", TAG + "seq", TAG + "binary"

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


@functools.lru_cache(maxsize=1 << 16)  # a pure function over strings that repeat a lot
def resolve_plain(text: str) -> tuple[str, Any]:
    """Type an unquoted scalar as go-yaml v2 does: returns (tag, Python value)."""
    fixed = _FIXED.get(text)
    if fixed is not None:
        return fixed
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text) and not math.isinf(float(text)):
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


@functools.lru_cache(maxsize=1 << 16)
def _plain_tag(text: str) -> str:
    return resolve_plain(text)[0]


_DEFAULT_TAGS = {ScalarNode: STR, SequenceNode: SEQ, MappingNode: MAP}


class _ComposeResolver(GoResolver):
    """The composer's resolver, lean: the composer calls it back (in Python) for every node.

    No path resolvers are ever registered (``add_path_resolver``), so BaseResolver's per-node
    path bookkeeping is a no-op, and every tag but a plain scalar's is the kind's default."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:  # implicit is a bool for collections
            return _plain_tag(value)
        return _DEFAULT_TAGS[kind]


if LIBYAML:  # libyaml is much faster; the pure-Python parser is the fallback
    class _ComposeLoader(yaml.cyaml.CParser, _ComposeResolver):  # type: ignore[misc]
        pass
else:  # pragma: no cover - depends on the PyYAML build
    class _ComposeLoader(yaml.reader.Reader, yaml.scanner.Scanner,  # type: ignore[no-redef]
                         yaml.parser.Parser, yaml.composer.Composer, _ComposeResolver):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _ComposeResolver.__init__(self)


def _make_loader(text: str) -> Any:
    return _ComposeLoader(text)


@dataclass(slots=True)
class _Builder:
    """Turns composed nodes into plain Python values, typed like Go, recording spans."""

    file: str
    diags: Diagnostics
    spans: dict[Path, Span] | None = None
    limits: Limits = field(default_factory=current_limits)  # alias bombs, runaway nesting
    visited: int = 0
    size: int = 0  # scalar characters, aliases expanded
    seen: set[int] = field(default_factory=set)  # container nodes built once (by id)
    aliasing: bool = False  # inside an alias's expansion
    aliased: int = 0  # nodes built inside alias expansions
    # the limits, read once: build() runs for every node
    max_nodes: int = field(init=False)
    max_depth: int = field(init=False)
    max_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.max_nodes = self.limits.yaml_nodes
        self.max_depth = self.limits.yaml_depth
        self.max_bytes = self.limits.yaml_bytes

    def build(self, node: Node, path: Path = (), depth: int = 0) -> Any:
        self.visited += 1
        if self.visited > self.max_nodes or depth > self.max_depth:
            raise _TooBig(node, "yaml_depth" if depth > self.max_depth else "yaml_nodes")
        if self.aliasing:  # go-yaml's rule, so a billion laughs stops in milliseconds
            self.aliased += 1
            if self.aliased > 100 and self.visited > 1000 and \
                    self.aliased > self.visited * _alias_ratio(self.visited):
                raise _TooBig(node, "aliasing")
        if self.spans is not None:
            self.spans[path] = span_from_marks(self.file, node.start_mark, node.end_mark)
        if isinstance(node, ScalarNode):
            self.size += len(node.value)
            if self.size > self.max_bytes:
                raise _TooBig(node, "yaml_bytes")
            return node.value if node.tag == STR else self.scalar(node)  # strings: the most
        if not self.aliasing and id(node) in self.seen:  # an alias of a map or list
            self.aliasing = True
            try:
                return self.container(node, path, depth)
            finally:
                self.aliasing = False
        self.seen.add(id(node))
        return self.container(node, path, depth)

    def container(self, node: Node, path: Path, depth: int) -> Any:
        if isinstance(node, SequenceNode):
            if self.spans is None:  # paths only name spans
                return [self.build(item, path, depth + 1) for item in node.value]
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.mapping(node, path, depth)  # type: ignore[arg-type]

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
        if tag == BINARY:  # go-yaml v2 decodes it; Helm sees the bytes as a string
            try:
                return base64.b64decode("".join(node.value.split()), validate=True).decode(
                    "utf-8", errors="replace")
            except (binascii.Error, ValueError):
                self.diags.error("invalid base64 in a !!binary value",
                                 span_from_marks(self.file, node.start_mark, node.end_mark))
                return node.value
        return node.value  # !!timestamp and custom tags: the text, as Go reads them

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        """Keys apply in document order, as go-yaml v2 decodes them: a ``<<`` merge overrides
        keys written before it and is overridden by keys written after it."""
        result: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        spans = self.spans is not None  # paths only name spans
        for key_node, value_node in node.value:
            if key_node.tag == STR and isinstance(key_node, ScalarNode):  # the common case
                key = key_node.value
            elif isinstance(key_node, ScalarNode) and key_node.tag == MERGE:
                for source in reversed(self.merge_sources(value_node, path, depth)):
                    result.update(source)  # earlier maps of a '<<' list win
                continue
            else:
                key = self.key(key_node)
                if key is None:
                    continue
            if key in seen:
                self.diags.items.append(duplicate_key(self.file, key, key_node, seen[key]))
                continue
            seen[key] = key_node
            result[key] = self.build(value_node, (*path, key) if spans else path, depth + 1)
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
        """A map key as Helm sees it: sigs.k8s.io/yaml turns non-string keys into text."""
        if not isinstance(node, ScalarNode):
            self.diags.error("a map key must be a scalar",
                             span_from_marks(self.file, node.start_mark, node.end_mark))
            return None
        value = self.scalar(node)
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):  # sigs.k8s.io/yaml spells the special values as YAML does
            text = go_float32_text(value)
            return _SPECIAL_FLOAT_KEYS.get(text, text)
        if isinstance(value, int):
            return str(value)
        self.diags.error("a null map key is not allowed (Helm rejects it)",
                         span_from_marks(self.file, node.start_mark, node.end_mark))
        return None


_SPECIAL_FLOAT_KEYS = {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}


def go_float32_text(value: float) -> str:
    """``strconv.FormatFloat(value, 'g', -1, 32)``: how sigs.k8s.io/yaml writes float keys."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    target = struct.unpack("f", struct.pack("f", value))[0]
    if math.isinf(target):  # beyond float32's range: Go's conversion overflows to infinity
        return "+Inf" if target > 0 else "-Inf"
    for digits in range(1, 10):  # shortest decimal that reads back as the same float32
        text = f"{target:.{digits - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == target:
            break
    mantissa, exponent = text.split("e")
    exp = int(exponent)
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-").rstrip("0").rstrip(".")
    if exp < -4 or exp >= 6:  # Go's %e form for shortest 'g'
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    figures = mantissa.replace(".", "")
    point = exp + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{figures}"
    if point >= len(figures):
        return f"{sign}{figures}{'0' * (point - len(figures))}"
    return f"{sign}{figures[:point]}.{figures[point:]}"


def duplicate_key(file: str, key: str, node: Node, first: Node) -> Diagnostic:
    """The error for a key written twice in one map (PyYAML would silently keep the last)."""
    mark = first.start_mark
    return Diagnostic("error", f"duplicate key '{key}'",
                      span_from_marks(file, node.start_mark, node.end_mark),
                      notes=(f"first defined at {file}:{mark.line + 1}:{mark.column + 1}",))


def _alias_ratio(decoded: int) -> float:
    """go-yaml's allowedAliasRatio: the share of nodes that may come from aliases, 99% for
    documents up to 400,000 nodes, falling to 10% at 4,000,000."""
    if decoded <= 400_000:
        return 0.99
    if decoded >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decoded - 400_000) / 3_600_000


class _TooBig(Exception):
    def __init__(self, node: Node, limit: str) -> None:
        self.node = node
        self.limit = limit  # the field of compiler.limits.Limits exceeded


# Deeper than this libyaml's recursive composer may overflow an 8 MiB C stack (it does at
# about 30,000 levels); ``--limit yamlDepth`` beyond it still stops here.
SAFE_DEPTH = 5000
# Documents that cannot nest deeper than this go straight to the composer (which is safe that
# deep), and the node walk enforces limits.yamlDepth; only deeper ones are scanned first.
_COMPOSE_DIRECTLY = 1000
# What can open a nesting level at the start of a line: indentation and the block indicators.
_LINE_PREFIX = re.compile(r"^[ \t?:-]*", re.MULTILINE)


def _may_nest_deeper(text: str, depth: int) -> bool:
    """False when ``text``'s collections cannot nest more than ``depth`` levels (cheap to know).

    A nested block collection starts to the right of its parent, or (a sequence under a mapping
    key) in the same column, so block nesting is at most two levels per column of a line's
    leading blanks and indicators (``-``, ``?``, ``:``), plus three; each flow level needs its
    own bracket. The longest line bounds the widest such prefix, and is quicker to find."""
    if 2 * len(text) + 3 <= depth:
        return False
    room = depth - 3 - text.count("[") - text.count("{")
    if room < 0:
        return True
    if max(map(len, text.split("\n"))) <= room // 2:
        return False
    return max(map(len, _LINE_PREFIX.findall(text))) > room // 2


def _check_nesting(text: str, file: str) -> None:
    """Refuse a document nested deeper than ``limits.yamlDepth`` before libyaml composes it.

    libyaml's composer recurses in C once per level, and some builds of it set no bound
    (PyYAML 6.0.3's wheels): a document nested 100,000 levels deep overflows the C stack and
    kills the process. Parser events come from an explicit stack, so counting them is safe at
    any depth; this runs only when the cheap bound says composing could go too deep."""
    asked = current_limits().yaml_depth
    limit = min(asked, SAFE_DEPTH)
    if not _may_nest_deeper(text, max(limit, _COMPOSE_DIRECTLY)):
        return
    parser = _make_loader(text)
    depth = 0
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit + 1:  # the document's root collection is depth 0
                    raise _too_deep(file, event.start_mark, limit, asked)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml builds that bound nesting (1,000 levels) may say so while scanning ahead,
        # before the events that cross our limit: the same finding, at libyaml's position
        if "nesting depth" in str(exc.problem) and exc.problem_mark is not None:
            raise _too_deep(file, exc.problem_mark, limit, asked) from None
        return  # any other syntax error: composing reports it, with its position
    except yaml.YAMLError:
        return
    finally:
        parser.dispose()


def _too_deep(file: str, mark: Any, limit: int, asked: int) -> CompileError:
    ceiling = "" if limit == asked else f" (meshc's own ceiling, whatever --limit asks: {SAFE_DEPTH})"
    return CompileError([Diagnostic(
        "error", "YAML document is nested too deeply", span_from_marks(file, mark),
        help=f"the limit is {describe_limit('yaml_depth', limit)}{ceiling}")])


def compose_documents(text: str, file: str) -> list[Node]:
    """Parse ``text`` into YAML node trees (one per document); syntax errors become diagnostics."""
    _check_nesting(text, file)
    loader = _make_loader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(node)
        return docs
    except yaml.MarkedYAMLError as exc:
        raise CompileError([_syntax_diagnostic(exc, file, text)]) from None
    except yaml.YAMLError as exc:  # reader errors (bad characters) carry a position too
        raise CompileError([_reader_diagnostic(exc, text, file)]) from None
    finally:
        loader.dispose()


def _reader_diagnostic(exc: yaml.YAMLError, text: str, file: str) -> Diagnostic:
    """A reader error (a character YAML does not allow) at its line and column."""
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return Diagnostic("error", f"invalid YAML: {exc}", Span(file, 1, 1))
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    char = getattr(exc, "character", "")
    what = f"character U+{char:04X}" if isinstance(char, int) else f"character {char!r}"
    return Diagnostic("error", f"invalid YAML: {what} is not allowed here "
                               f"({getattr(exc, 'reason', 'control characters are not allowed')})",
                      Span(file, line, col, line, col + 1))


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str, text: str = "") -> Diagnostic:
    """A YAML syntax error where PyYAML gave up, and, when that is another line, where the
    construct it was reading started (an unclosed ``[``: "to match this", as compilers say)."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    context = f" ({exc.context})" if exc.context else ""
    span = span_from_marks(file, mark) if mark is not None else Span(file, 1, 1)
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        return Diagnostic("error", "invalid YAML: a tab character, where YAML allows only "
                                   "spaces (for indentation, and to start a token)", span,
                          help="indent with spaces; YAML forbids tabs there")
    related: tuple[tuple[str, Span], ...] = ()
    start = exc.context_mark
    if exc.problem_mark is not None and start is not None and (
            start.line, start.column) != (mark.line, mark.column):
        what = (exc.context or "this").removeprefix("while parsing ").removeprefix(
            "while scanning ")
        opener = _char_at(text, start.line, start.column)
        label = (f"to match this '{opener}'" if opener in ("[", "{", "'", '"') else
                 f"{what} starts here")
        related = ((label, span_from_marks(file, start)),)
    return Diagnostic("error", f"invalid YAML: {problem}{context}", span, related=related)


def _char_at(text: str, line: int, column: int) -> str:
    """The character at 0-based ``line`` and ``column`` of ``text`` ("" past the end)."""
    lines = text.split("\n", line + 1)
    if line >= len(lines):
        return ""
    return lines[line][column:column + 1]


def build_value(node: Node, file: str, diags: Diagnostics,
                spans: dict[Path, Span] | None = None, prefix: Path = ()) -> Any:
    """Convert one composed node to plain Python data (Go typing), recording spans if asked."""
    builder = _Builder(file, diags, spans)
    try:
        return builder.build(node, prefix)
    except _TooBig as exc:
        what = {"yaml_depth": "nested too deeply",
                "yaml_nodes": "too large after expanding aliases (too many nodes)",
                "yaml_bytes": "too large after expanding aliases (too many bytes of text)",
                "aliasing": "made mostly of alias expansions (excessive aliasing, as Helm "
                            "reports it)",
                }[exc.limit]
        limit = ("at most 99% of a document's nodes may come from aliases (less in large "
                 "documents)" if exc.limit == "aliasing" else
                 describe_limit(exc.limit, getattr(builder.limits, exc.limit)))
        diags.error(f"YAML document is {what}",
                    span_from_marks(file, exc.node.start_mark, exc.node.end_mark),
                    help=f"the limit is {limit}")
        return None


class LazySpans(Mapping[Path, Span]):
    """The span of every path of a values file, computed on first use by parsing its text
    again: compiles never ask (no cost on the hot path); explanations and errors do."""

    def __init__(self, file: str, text: str) -> None:
        self._file = file
        self._text = text
        self._index: dict[Path, Span] | None = None

    def _spans(self) -> dict[Path, Span]:
        if self._index is None:
            index: dict[Path, Span] = {}
            for node in compose_documents(self._text, self._file):
                build_value(node, self._file, Diagnostics(), index)
            self._index = index
        return self._index

    def __getitem__(self, path: Path) -> Span:
        return self._spans()[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._spans())

    def __len__(self) -> int:
        return len(self._spans())


@dataclass(frozen=True, slots=True)
class ValuesDoc:
    """A loaded values file: its merged map and the span of every path in it."""

    file: str
    data: dict[str, Any]
    spans: Mapping[Path, Span]


def load_values_doc(text: str, file: str,
                    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
                    ) -> ValuesDoc:
    """Load a values file (possibly several documents, later ones merged over earlier ones).

    Raises :class:`CompileError` for syntax errors, duplicate keys, or a top level that is not a
    map.
    """
    diags = Diagnostics()
    data: dict[str, Any] = {}
    for node in compose_documents(text, file):
        value = build_value(node, file, diags)
        if value is None:
            continue
        if not isinstance(value, dict):
            diags.error("a values file must hold a map at its top level",
                        span_from_marks(file, node.start_mark, node.end_mark))
            continue
        data = _merge_docs(data, value, merge)
    diags.raise_if_errors()
    return ValuesDoc(file, data, LazySpans(file, text))


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
#
# A small emitter for plain data. It writes the bytes PyYAML (representer, serializer, libyaml's
# emitter) wrote here before, at a tenth of the cost, except where those were wrong: strings
# holding U+2028/U+2029 (libyaml indents after them inside quotes) and the string "\n" (a
# keep-chomped |2+ block) are double-quoted, ints beyond uint64 are written without PyYAML's
# "!!int" tag, and an object reached twice is written twice instead of as an &id001 anchor and
# alias. tests/test_emitter.py keeps the PyYAML version as its oracle.

# Words a YAML 1.1 reader (PyYAML) or Go's reader types as bool or null (with _FIXED, which also
# holds Go's float and merge words); any other string starting with a letter reads as a string.
_WORDS = frozenset(_FIXED) | frozenset(
    form for word in ("yes", "no", "true", "false", "on", "off", "null")
    for form in (word, word.title(), word.upper()))
_TYPED_FIRST = frozenset("+-.0123456789<=!&*~")
_STD_RESOLVER = yaml.resolver.Resolver()

# libyaml's printable set (astral characters and U+FEFF are not printable to it, nor to Go's
# emitter); line breaks, tab and everything else outside it need double quotes.
_UNPRINTABLE = "[^\x20-\x7e\xa0-\ud7ff\ue000-\ufffd]|[\ufeff\u2028\u2029]"
_NOT_SINGLE = re.compile(_UNPRINTABLE)
_NOT_PLAIN = re.compile(
    "\\A(?:[-?:](?: |\\Z)|[#,\\[\\]{}&*!|>'\"%@`]|---|\\.\\.\\.| )|: |:\\Z| #| \\Z|" + _UNPRINTABLE)
# A literal block needs printable lines without trailing blanks (libyaml's rule).
_NOT_LITERAL = re.compile("[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd]|[\ufeff\u2028\u2029]| \n| \\Z")
_LINE_BREAK = re.compile("[\r\n\x85\u2028\u2029]")
_ESCAPES = {"\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v",
            "\f": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N",
            "\u2028": "\\L", "\u2029": "\\P"}
_NEEDS_ESCAPE = re.compile('[^\x20-\x7e\xa0-\ud7ff\ue000-\ufffd]|[\ufeff\u2028\u2029"\\\\]')
_CACHED_LEN = 200  # longer strings are rendered uncached: the cache must stay small


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    escape = _ESCAPES.get(char)
    if escape is not None:
        return escape
    code = ord(char)
    return f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def _double_quoted(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _reads_as_str(text: str) -> bool:
    """True when both Go's reader and a YAML 1.1 reader type this plain scalar as a string."""
    if text[0] not in _TYPED_FIRST and text not in _WORDS:
        return True
    return (resolve_plain(text)[0] == STR
            and _STD_RESOLVER.resolve(ScalarNode, text, (True, False)) == STR)


def _render_str(text: str) -> str:
    """A string as YAML: plain, 'single', "double" or (for multi-line text) a literal block.

    A literal block comes back as its header line and unindented lines joined by newlines
    (starting with ``|``, which no other form does); the caller indents it.
    """
    if "\n" in text:
        if text.endswith("\n\n") or text == "\n" or _NOT_LITERAL.search(text):
            return _double_quoted(text)  # never keep-chomped (|+): helm strips trailing newlines
        header = "|2" if text[0] in " \n" else "|"
        if text.endswith("\n"):
            return header + "\n" + text[:-1]
        return header + "-\n" + text
    if text and not _NOT_PLAIN.search(text) and _reads_as_str(text):
        return text
    if _NOT_SINGLE.search(text):
        return _double_quoted(text)
    return "'" + text.replace("'", "''") + "'"


_render_short_str = functools.lru_cache(maxsize=1 << 14)(_render_str)


def _render_key(key: str) -> str | None:
    """``key:`` for a simple key; None when the key needs the explicit ``? key`` form (libyaml's
    rule: more than 128 bytes, or a line break)."""
    if len(key) > 32 and len(key.encode("utf-8", "surrogatepass")) > 128 or _LINE_BREAK.search(key):
        return None
    return _render_str(key) + ":"


_render_short_key = functools.lru_cache(maxsize=1 << 12)(_render_key)


def _render_float(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))  # Helm reads every number as float64; 3.0 prints as 3
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:  # 1e+20 is no float to a YAML 1.1 reader
        text = text.replace("e", ".0e", 1)
    return text


def _render_scalar(value: Any) -> str:
    """Any non-container as YAML text (strings may come back as unindented literal blocks)."""
    kind = type(value)
    if kind is str:
        return _render_short_str(value) if len(value) <= _CACHED_LEN else _render_str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _render_float(value)
    if isinstance(value, str):  # subclasses (str enums): their plain value
        return _render_scalar(str.__str__(value))
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _render_float(float(value))
    raise TypeError(f"cannot dump a {kind.__name__} as YAML (only dict, list, str, int, float, "
                    "bool and None)")


def _literal(text: str, indent: str) -> str:
    header, _, body = text.partition("\n")
    lines = "".join(f"{indent}{line}\n" if line else "\n" for line in body.split("\n"))
    return f"{header}\n{lines}"


def _emit_map(data: dict[str, Any], first: str, rest: str, out: list[str]) -> None:
    """Emit a non-empty map: its first key after ``first`` (an indentation or ``- ``), the other
    keys after ``rest``. The hot loop of rendering: common cases are inlined."""
    prefix = first
    inner = rest + "  "
    try:
        keys = sorted(data)
    except TypeError:
        keys = list(data)  # mixed key types: the check below names the bad one
    for key in keys:
        value = data[key]
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(f"cannot dump a map key of type {type(key).__name__} as YAML: "
                                "keys must be str")
            key = str.__str__(key)
        label = _render_short_key(key) if len(key) <= _CACHED_LEN else _render_key(key)
        if label is None:  # explicit key: '? key' line(s), then ': value'
            _emit_item(key, prefix + "? ", inner, out)
            _emit_item(value, rest + ": ", inner, out)
        elif type(value) is str:
            text = _render_short_str(value) if len(value) <= _CACHED_LEN else _render_str(value)
            if text[0] == "|":
                out.append(f"{prefix}{label} {_literal(text, inner)}")
            else:
                out.append(f"{prefix}{label} {text}\n")
        elif isinstance(value, dict):
            if value:
                out.append(f"{prefix}{label}\n")
                _emit_map(value, inner, inner, out)
            else:
                out.append(f"{prefix}{label} {{}}\n")
        elif isinstance(value, list):
            if value:
                out.append(f"{prefix}{label}\n")
                _emit_list(value, rest, rest, out)  # PyYAML style: a list is not indented
            else:
                out.append(f"{prefix}{label} []\n")
        else:
            text = _render_scalar(value)
            if text[0] == "|":
                out.append(f"{prefix}{label} {_literal(text, inner)}")
            else:
                out.append(f"{prefix}{label} {text}\n")
        prefix = rest


def _emit_list(data: list[Any], first: str, rest: str, out: list[str]) -> None:
    """Emit a non-empty list: its first item after ``first``, the others after ``rest``."""
    prefix = first + "- "
    inner = rest + "  "
    for item in data:
        if type(item) is dict and item:
            _emit_map(item, prefix, inner, out)
        else:
            _emit_item(item, prefix, inner, out)
        prefix = rest + "- "


def _emit_item(value: Any, prefix: str, inner: str, out: list[str]) -> None:
    """Emit a node after an indicator (``- ``, ``? ``, ``: ``): maps and lists start on the
    indicator's line and continue at ``inner``."""
    if isinstance(value, dict):
        if value:
            _emit_map(value, prefix, inner, out)
        else:
            out.append(f"{prefix}{{}}\n")
    elif isinstance(value, list):
        if value:
            _emit_list(value, prefix, inner, out)
        else:
            out.append(f"{prefix}[]\n")
    else:
        text = _render_scalar(value)
        out.append(f"{prefix}{_literal(text, inner)}" if text[0] == "|" else f"{prefix}{text}\n")


def dump_yaml(data: Any) -> str:
    """Serialize plain data (dicts with str keys, lists, str, int, float, bool, None) as block
    YAML: sorted keys, 2-space indentation, lists not indented under their key, no line wrapping,
    LF endings, a trailing newline.

    Strings that a Go or YAML 1.1 reader would read as something else are quoted, so the bytes
    mean the same to helm as to us; floats with an integral value print as integers. Raises
    :class:`TypeError` for any other type.
    """
    out: list[str] = []
    if isinstance(data, dict) and data:
        _emit_map(data, "", "", out)
    elif isinstance(data, list) and data:
        _emit_list(data, "", "", out)
    else:
        _emit_item(data, "", "  ", out)
    return "".join(out)
