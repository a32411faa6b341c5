"""JSON documents read with positions: a chart's ``values.schema.json``.

The data comes from Python's JSON parser (the authority on what is JSON, like Go's); the span of
each path comes from reading the same text as YAML, lazily and only when a diagnostic needs one.
Text that YAML cannot read (tabs where YAML forbids them) simply has no spans: diagnostics then
point at the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic
from ..core.source import Span, file_span
from .yamlsrc import LazySpans, Path, ValuesDoc


class _BestEffortSpans(Mapping[Path, Span]):
    """:class:`LazySpans`, or none at all when the text cannot be read as YAML."""

    def __init__(self, file: str, text: str) -> None:
        self._lazy = LazySpans(file, text)

    def _spans(self) -> Mapping[Path, Span]:
        try:
            self._lazy.get(())
        except CompileError:
            return {}
        return self._lazy

    def __getitem__(self, path: Path) -> Span:
        return self._spans()[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._spans())

    def __len__(self) -> int:
        return len(self._spans())


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unclosed(text: str, end: int) -> tuple[int, int, str] | None:
    """(line, column, bracket) of the innermost ``{`` or ``[`` still open at offset ``end``
    (strings skipped), or None: where the construct the parser gave up in started."""
    stack: list[int] = []
    in_string = escaped = False
    for at, char in enumerate(text[:end]):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string, escaped = True, False
        elif char in "{[":
            stack.append(at)
        elif char in "}]" and stack:
            stack.pop()
    if not stack:
        return None
    at = stack[-1]
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1, text[at]


def load_json_doc(text: str, file: str) -> ValuesDoc:
    """The JSON object ``text`` holds, with lazy spans; raises :class:`CompileError` located on
    the first syntax error, or when the document is not an object."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        opener = _unclosed(text, exc.pos)
        related = () if opener is None or opener[0] == exc.lineno else (
            (f"to match this '{opener[2]}'", Span(file, opener[0], opener[1])),)
        raise CompileError([Diagnostic("error", f"{file} is not valid JSON: {exc.msg}",
                                       Span(file, exc.lineno, exc.colno),
                                       related=related)]) from None
    except ValueError as exc:  # NaN, Infinity: Python reads them, JSON (and Go) do not
        raise CompileError([Diagnostic("error", f"{file} is not valid JSON: {exc}",
                                       file_span(file))]) from None
    if not isinstance(data, dict):
        raise CompileError([Diagnostic("error", f"{file} must hold a JSON object (a schema)",
                                       file_span(file))])
    return ValuesDoc(file, data, _BestEffortSpans(file, text))
