"""Command-line ``--set``-family flags, applied as Helm applies them.

Helm's ``MergeValues`` merges the ``-f`` files into one map and parses every flag *into* that
map (strvals' ``ParseInto``), in the order ``--set-json``, ``--set``, ``--set-string``,
``--set-file``, ``--set-literal``. So a flag indexes into a list of a file (``hosts[1]=b`` keeps
``hosts[0]``), ``--set-json a={...}`` replaces the map ``a``, and a flag whose path crosses a
value of another type (``b[0]=x`` where ``b: true``) is an error. In meshc the map the flags are
parsed into is a values tree (the environment's files and features, plus a release's own values).

:func:`parse_flags` checks the flags once, up front, into an empty map (syntax errors, unreadable
``--set-file`` paths), reads every file once, and keeps what provenance needs: the flags parsed
alone, with the span of the flag that wrote each path. :func:`apply_flags` then parses them into
a tree without changing it (only the maps and lists the flags descend into are copied).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..core.source import COMMAND_LINE, Span
from ..syntax.keypath import lookup
from ..syntax.strvals import KeyPath, SetError, apply_set
from ..syntax.yamlsrc import ValuesDoc

SET_KINDS = ("set-json", "set", "set-string", "set-file", "set-literal")  # Helm's layer order


@dataclass(frozen=True, slots=True)
class SetFlag:
    """One ``--set``-family flag as given: kind (``set``, ``set-string``…) and its value."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class PlacedFlag:
    """A flag and its line in the command line's pseudo source (``--KIND TEXT`` a line)."""

    flag: SetFlag
    line: int

    @property
    def span(self) -> Span:
        """The flag's value."""
        col = self.value_col
        return Span(COMMAND_LINE, self.line, col, self.line, col + len(self.flag.text))

    @property
    def value_col(self) -> int:
        return len(self.flag.kind) + 4  # after "--KIND "

    def at(self, offset: int | None) -> Span:
        """A one-column span ``offset`` characters into the flag's value."""
        col = self.value_col + (offset or 0)
        return Span(COMMAND_LINE, self.line, col, self.line, col + 1)


@dataclass(frozen=True, slots=True)
class SetFlags:
    """The command line's flags, checked and ready to be parsed into any values tree."""

    flags: tuple[PlacedFlag, ...]           # Helm's order: by kind, then as given
    files: tuple[tuple[str, str], ...]      # --set-file: path as written → contents, read once
    doc: ValuesDoc                          # the flags parsed into an empty map, spans per path
    writes: frozenset[KeyPath]              # every path a flag stores a value at
    containers: frozenset[KeyPath]          # every map or list a flag descends into
    source: str                             # the pseudo source text of diagnostics excerpts


@dataclass(frozen=True, slots=True)
class FlagFailure:
    """A flag Helm refuses when parsing it into a particular tree."""

    flag: PlacedFlag
    error: SetError


def parse_flags(flags: Iterable[SetFlag], read_file: Callable[[str], str]) -> SetFlags | None:
    """Check ``flags`` and read their files (None without flags).

    Raises :class:`CompileError` with one diagnostic per bad flag, located on the flag (the
    pseudo source ``<command line>`` holds one ``--KIND TEXT`` line per flag, as given).
    """
    given = list(flags)
    if not given:
        return None
    source = "".join(f"--{flag.kind} {flag.text}\n" for flag in given)
    placed = sorted((PlacedFlag(flag, line) for line, flag in enumerate(given, start=1)),
                    key=lambda p: SET_KINDS.index(p.flag.kind))
    files: dict[str, str] = {}
    data: dict[str, Any] = {}
    fallback: dict[KeyPath, Span] = {}
    writes: list[tuple[PlacedFlag, tuple[KeyPath, ...]]] = []
    containers: set[KeyPath] = set()
    diags = Diagnostics()
    for flag in placed:
        try:
            trace = apply_set(data, flag.flag.kind, flag.flag.text, _reading(read_file, files))
        except SetError as exc:
            diags.items.append(flag_diagnostic(FlagFailure(flag, _as_helm_says(exc, flag, writes))))
            continue
        _first_spans(data, fallback, flag.span)
        writes.append((flag, trace.writes))
        containers.update(trace.containers)
    if diags.has_errors:
        raise CompileError(diags.items, {COMMAND_LINE: source})
    spans = fallback | _written_spans(data, writes)
    doc = ValuesDoc(COMMAND_LINE, data, spans)
    return SetFlags(tuple(placed), tuple(files.items()), doc,
                    frozenset(w for _, paths in writes for w in paths), frozenset(containers),
                    source)


def _reading(read_file: Callable[[str], str], files: dict[str, str]) -> Callable[[str], str]:
    """``read_file`` that remembers what it read in ``files``."""
    def read(path: str) -> str:
        if path not in files:
            files[path] = read_file(path)
        return files[path]
    return read


def _first_spans(data: Any, spans: dict[KeyPath, Span], span: Span, path: KeyPath = ()) -> None:
    """Give every path of ``data`` not yet in ``spans`` the flag at ``span``."""
    if path and path not in spans:
        spans[path] = span
    if isinstance(data, dict):
        for key, value in data.items():
            _first_spans(value, spans, span, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _first_spans(value, spans, span, (*path, index))


def _written_spans(data: dict[str, Any],
                   writes: Iterable[tuple[PlacedFlag, tuple[KeyPath, ...]]]) -> dict[KeyPath, Span]:
    """Each path a flag wrote, and everything in the value it wrote: the last such flag."""
    spans: dict[KeyPath, Span] = {}
    for flag, paths in writes:
        for path in paths:
            present, value = lookup(data, path)
            if present:
                below: dict[KeyPath, Span] = {}
                _first_spans(value, below, flag.span, path)
                spans.update(below)
    return spans


def apply_flags(tree: Mapping[str, Any], flags: SetFlags
                ) -> tuple[dict[str, Any], FlagFailure | None]:
    """``tree`` with every flag parsed into it, as Helm parses them into its user values.

    ``tree`` is not changed (the result shares what the flags do not touch). On the first flag
    Helm refuses, returns the tree as far as it got and the failure.
    """
    out = _copy_along(tree, flags.containers)
    files = dict(flags.files)
    done: list[tuple[PlacedFlag, tuple[KeyPath, ...]]] = []
    for flag in flags.flags:
        try:
            trace = apply_set(out, flag.flag.kind, flag.flag.text, files.__getitem__)
        except SetError as exc:
            return out, FlagFailure(flag, _as_helm_says(exc, flag, done))
        done.append((flag, trace.writes))
    return out, None


def _as_helm_says(error: SetError, flag: PlacedFlag,
                  done: Sequence[tuple[PlacedFlag, tuple[KeyPath, ...]]]) -> SetError:
    """``error`` naming the Go type Helm has for a number the flag's path crosses: only
    ``--set`` reads numbers as int64; Helm reads values files and ``--set-json`` through JSON,
    where every number is a float64. ``done`` are the flags applied before ``flag``."""
    if error.path is None or "interface {} is int64," not in error.message:
        return error
    writers = [*done, (flag, error.writes)]
    kind = next((f.flag.kind for f, writes in reversed(writers)
                 if any(error.path[:len(w)] == w for w in writes)), None)
    if kind == "set":
        return error
    message = error.message.replace("interface {} is int64,", "interface {} is float64,")
    return SetError(message, error.offset, kind=error.kind, text=error.text, path=error.path,
                    writes=error.writes)


def _copy_along(node: Any, paths: frozenset[KeyPath], here: KeyPath = ()) -> Any:
    """``node`` with a fresh copy of every map and list at ``paths`` (the parser edits those in
    place); everything else shared."""
    if isinstance(node, dict):
        out = dict(node)
        for key, value in node.items():
            if (*here, key) in paths:
                out[key] = _copy_along(value, paths, (*here, key))
        return out
    if isinstance(node, list):
        return [_copy_along(item, paths, (*here, index)) if (*here, index) in paths else item
                for index, item in enumerate(node)]
    return node


def flag_diagnostic(failure: FlagFailure, notes: tuple[str, ...] = ()) -> Diagnostic:
    """The error for a refused flag, with a caret where Helm's parser stopped."""
    flag, error = failure.flag, failure.error
    help = None
    if error.path is not None:
        help = ("Helm parses the flags into the values of the files, so a flag's path cannot "
                "go through a value that is not a map (for 'a.b') or a list (for 'a[0]')")
    return Diagnostic("error", f"invalid --{flag.flag.kind} value: {error.message}",
                      flag.at(error.offset), help, notes)
