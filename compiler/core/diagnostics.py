"""Diagnostics: structured errors and warnings, printed like rustc with a caret excerpt.

Every user-facing problem is a :class:`Diagnostic`; stages collect them in a
:class:`Diagnostics` and raise one :class:`CompileError` holding all of them, so a run reports
every error it found, not only the first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from .source import Span, source_line

Severity = Literal["error", "warning", "note"]
WHOLE_LINE = 1 << 16  # a span's end_col meaning "the whole line" (runtime template errors)
EXCERPT_WIDTH = 160  # longer source lines are excerpted around the column


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: what is wrong, where, and how to fix it."""

    severity: Severity
    message: str
    span: Span | None = None
    help: str | None = None
    notes: tuple[str, ...] = ()
    # other places that matter, each printed with its excerpt: ("to match this", the span of
    # an opening bracket), ("set here", the values file line behind a value)
    related: tuple[tuple[str, Span], ...] = ()

    def related_notes(self) -> tuple[str, ...]:
        """:attr:`related` as plain notes (``label: file:line:col``) for one-line outputs."""
        return tuple(f"{label}: {span}" for label, span in self.related)


class MeshcError(Exception):
    """The base of every error meshc reports to a person rather than as a traceback. Click-free:
    the CLI prints it and exits with ``exit_code`` (click's own pattern, without click)."""

    exit_code: ClassVar[int] = 1


class CompileError(MeshcError):
    """Raised by a stage when input is invalid; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic],
                 sources: Mapping[str, str] | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        self.sources = dict(sources or {})  # texts the excerpts need that the caller lacks
        first = self.diagnostics[0].message if self.diagnostics else "compile error"
        super().__init__(first)


class Diagnostics:
    """A collector a stage fills while it works (local to one call, never shared)."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self.sources: dict[str, str] = {}  # texts not in the project (rendered output, flags)

    def error(self, message: str, span: Span | None = None, help: str | None = None,
              notes: tuple[str, ...] = (), related: tuple[tuple[str, Span], ...] = ()) -> None:
        self.items.append(Diagnostic("error", message, span, help, notes, related))

    def warning(self, message: str, span: Span | None = None, help: str | None = None) -> None:
        self.items.append(Diagnostic("warning", message, span, help))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    def absorb(self, exc: CompileError, note: str | None = None) -> None:
        """Take over a raised error's diagnostics (each with ``note`` added) and sources."""
        for diag in exc.diagnostics:
            notes = (*diag.notes, note) if note else diag.notes
            self.items.append(Diagnostic(diag.severity, diag.message, diag.span, diag.help, notes,
                                         diag.related))
        self.sources.update(exc.sources)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise CompileError(self.items, self.sources)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean 'x'?" hint for the closest candidate, or None."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def choose_from(name: str, candidates: Iterable[str], what: str) -> str:
    """Help for an unknown name: the closest candidate, if any, and every valid name."""
    names = sorted(set(candidates))
    hint = did_you_mean(name, names)
    listing = f"{what}: {', '.join(names)}"
    return f"{hint} ({listing})" if hint else listing


def format_diagnostic(diag: Diagnostic, sources: Mapping[str, str]) -> str:
    """Render a diagnostic as text: ``file:line:col: error: message``, excerpt, caret, help."""
    head = f"{diag.severity}: {diag.message}"
    if diag.span is None:
        lines = [head]
    else:
        lines = [f"{_located(diag.span, sources.get(diag.span.file))}: {head}"]
        lines.extend(_excerpt(diag.span, sources.get(diag.span.file)))
    for label, span in diag.related:
        lines.append(f"{_located(span, sources.get(span.file))}: note: {label}")
        lines.extend(_excerpt(span, sources.get(span.file)))
    lines.extend(f"  = note: {note}" for note in diag.notes)
    if diag.help:
        lines.append(f"  = help: {diag.help}")
    return "\n".join(lines)


def _located(span: Span, text: str | None) -> str:
    """``file:line:col``; for a whole-line span, the column of the line's first character."""
    line = source_line(text, span.line) if text is not None and span.end_col >= WHOLE_LINE else None
    if line is None:
        return str(span)
    return f"{span.file}:{span.line}:{len(line) - len(line.lstrip()) + 1}"


def _excerpt(span: Span, text: str | None) -> list[str]:
    if text is None:
        return []
    line = source_line(text, span.line)
    if line is None:
        return []
    gutter = str(span.line)
    pad = " " * len(gutter)
    col = min(max(span.col, 1), len(line) + 1)
    width = max(1, min(span.width, len(line) - col + 1))
    if span.end_col >= WHOLE_LINE:  # underline the line's content, not its indentation
        col = len(line) - len(line.lstrip()) + 1
        width = max(1, len(line.strip()))
    if len(line) > EXCERPT_WIDTH:  # a huge line (minified or hostile input): a window of it
        start = max(0, col - 1 - EXCERPT_WIDTH // 4)
        head = "…" if start else ""
        tail = "…" if start + EXCERPT_WIDTH < len(line) else ""
        line = head + line[start:start + EXCERPT_WIDTH] + tail
        col = col - start + len(head)
        width = max(1, min(width, EXCERPT_WIDTH - (col - 1 - len(head))))
    caret_prefix = "".join("\t" if ch == "\t" else " " for ch in line[: col - 1])
    return [f"  {gutter} | {line}", f"  {pad} | {caret_prefix}{'^' * width}"]


def _merge_duplicates(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per (severity, message, span, help); their notes combined.

    A template used by several releases fails once per release: say it once, and list where.
    """
    merged: dict[tuple[object, ...], Diagnostic] = {}
    for diag in diagnostics:
        key = (diag.severity, diag.message, diag.span, diag.help, diag.related)
        if key in merged:
            old = merged[key]
            notes = old.notes + tuple(n for n in diag.notes if n not in old.notes)
            merged[key] = Diagnostic(old.severity, old.message, old.span, old.help, notes,
                                     old.related)
        else:
            merged[key] = diag
    return list(merged.values())


def _position(diag: Diagnostic) -> tuple[int, str, int, int]:
    if diag.span is None:
        return (1, "", 0, 0)
    return (0, diag.span.file, diag.span.line, diag.span.col)


def format_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """All diagnostics, errors counted at the end, as the CLI prints them on stderr."""
    diags = sorted(_merge_duplicates(diagnostics), key=_position)
    parts = [format_diagnostic(d, sources) for d in diags]
    errors = sum(1 for d in diags if d.severity == "error")
    if errors:
        parts.append(f"meshc: {errors} error{'s' if errors != 1 else ''} found")
    return "\n".join(parts) + "\n" if parts else ""
