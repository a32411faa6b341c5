"""Source positions: where every value, key and model object came from."""

from __future__ import annotations

from dataclasses import dataclass

COMMAND_LINE = "<command line>"  # the pseudo file of --set flags in spans and diagnostics


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; ``file`` is project-relative."""

    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def width(self) -> int:
        """Columns to underline on the first line (at least one)."""
        if self.end_line == self.line and self.end_col > self.col:
            return self.end_col - self.col
        return 1


def span_from_marks(file: str, start: object, end: object | None = None) -> Span:
    """Build a span from PyYAML marks (0-based ``line``/``column`` attributes)."""
    line = getattr(start, "line", 0) + 1
    col = getattr(start, "column", 0) + 1
    if end is None:
        return Span(file, line, col, line, col + 1)
    return Span(file, line, col, getattr(end, "line", 0) + 1, getattr(end, "column", 0) + 1)


def file_span(file: str) -> Span:
    """A span for a whole file, used when nothing more precise is known."""
    return Span(file, 1, 1, 1, 1)


def source_line(text: str, line: int) -> str | None:
    """The 1-based ``line`` of ``text`` without its newline, or None past the end."""
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None
