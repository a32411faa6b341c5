"""Helm's ``--set`` family of flags, exactly as Helm 4 parses them (a port of helm's pkg/strvals).

One flag value such as ``a.b=1,c[0]={x,y}`` is parsed *into* an existing values map:

- ``set``         typed scalars: ``true``/``false``/``null`` (any case), ``0``, base-10 int64s
                  that do not start with ``0``; everything else stays a string;
- ``set-string``  every value is a string;
- ``set-json``    every value is JSON (an empty value is null); a whole JSON object
                  (``{"a": 1}``) is merged like Helm's ``MergeMaps``. Go reads every JSON
                  number as a float64: integers stay ``int`` where float64 holds them
                  exactly and become that float64 otherwise (``12345678901234567890`` →
                  ``1.2345678901234567e19``);
- ``set-file``    every value is a path, replaced by that file's contents;
- ``set-literal`` one key; the value is the rest of the text, verbatim.

The port keeps Helm's control flow on purpose (errors are returned, not raised, inside the
parser; "EOF" ends parsing without an error; a failed type assertion is a recovered panic), because
Helm's observable behaviour lives in those details: ``a[0`` silently sets nothing, ``noval[0]``
yields an empty list, ``a={}`` is ``[""]``. Error texts are Helm's, so users can search them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..core.diagnostics import MeshcError
from .gotext import (
    JsonError,
    decode_json,
    go_quote,
    quote_char,
    quote_runes,
    scan_json,
    skip_json_space,
)

__all__ = [
    "KINDS",
    "MAX_INDEX",
    "MAX_NESTED_NAME_LEVEL",
    "KeyPath",
    "SetError",
    "SetTrace",
    "apply_set",
    "helm_error_text",
]

MAX_INDEX = 65536
MAX_NESTED_NAME_LEVEL = 30
KINDS = ("set", "set-string", "set-json", "set-file", "set-literal")

_INT_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_KEY_STOP = frozenset("=[,.")
_LITERAL_KEY_STOP = frozenset("=[.")
_ITEM_STOP = frozenset("[.=")
_LIST_STOP = frozenset(",}")
_VALUE_STOP = frozenset(",")
_INDEX_STOP = frozenset("]")
_NO_STOP: frozenset[str] = frozenset()

KeyPath = tuple[str | int, ...]  # map keys and list indexes from the top of the values
_R = TypeVar("_R")


class SetError(MeshcError):
    """A ``--set``-family flag value that Helm would reject.

    ``message`` is Helm's error text; ``offset`` the 0-based character offset into the flag value
    where the problem is (None when unknown). ``kind`` and ``text`` name the flag and its value
    when known (``cli_merge_values`` fills them in). ``path`` is, for a path that crosses a value
    of another type ("interface conversion"), the path of that value; ``writes`` the paths the
    flag stored values at before failing.
    """

    def __init__(self, message: str, offset: int | None = None, *,
                 kind: str | None = None, text: str | None = None,
                 path: KeyPath | None = None, writes: tuple[KeyPath, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.kind = kind
        self.text = text
        self.path = path
        self.writes = writes


@dataclass(frozen=True, slots=True)
class SetTrace:
    """What one flag did to the map it was parsed into.

    ``writes``: every path it stored a value at (a scalar, a ``{a,b}`` list, a JSON value, a
    file's contents), in order; ``containers``: every map or list it descended into (the top
    level ``()`` included), i.e. every container it may have edited in place. Both follow from
    the flag's text alone, whatever map it is parsed into.
    """

    writes: tuple[KeyPath, ...]
    containers: tuple[KeyPath, ...]


def apply_set(dest: dict[str, Any], kind: str, text: str,
              read_file: Callable[[str], str] | None = None) -> SetTrace:
    """Parse one flag value ``text`` of ``kind`` (one of :data:`KINDS`) into ``dest``, in place.

    Like Helm's ParseInto / ParseIntoString / ParseJSON / ParseIntoFile / ParseLiteralInto, later
    keys overwrite earlier ones, dotted keys merge into existing maps, and existing maps and lists
    *inside* ``dest`` are edited in place, so ``dest`` must not share subtrees with data that has
    to stay unchanged. On error ``dest`` may be partly updated, as in Helm.

    ``read_file(path)`` returns a file's contents for ``set-file``, given the value text as
    written (Helm reads ``-`` from stdin and URLs through its getters); it may raise ``OSError``
    or :class:`SetError`. Returns what the flag did (:class:`SetTrace`). Raises
    :class:`SetError` (also for an unknown ``kind``).
    """
    if kind not in KINDS:
        raise SetError(f"unknown flag kind {kind!r}", None, kind=kind, text=text)
    if kind == "set-json" and _is_json_object_flag(text):
        return _merge_json_object(dest, text)
    parser = _Parser(text, kind, read_file)
    parser.parse(dest)
    return SetTrace(tuple(parser.writes), tuple(dict.fromkeys(parser.containers)))


def helm_error_text(kind: str, text: str, error: SetError) -> str:
    """The message Helm's CLI prints for ``error`` in flag ``--<kind> <text>``.

    Helm wraps parser errors (``failed parsing --set data: ...``) and, for ``--set-json``, drops
    the parser's detail and prints the flag value instead.
    """
    if kind == "set-json":
        if _is_json_object_flag(text):
            return f"failed parsing --set-json data JSON: {text}"
        return f"failed parsing --set-json data {text}"
    return f"failed parsing --{kind} data: {error.message}"


# --- errors inside the parser ----------------------------------------------------------------

@dataclass(slots=True)
class _Err:
    """A Go ``error`` value: ``eof`` is ``errors.Is(err, io.EOF)`` (survives %w wrapping)."""

    message: str
    offset: int | None
    eof: bool = False
    not_list: bool = False
    path: KeyPath | None = None

    def wrap(self, prefix: str) -> _Err:
        return _Err(prefix + self.message, self.offset, self.eof, self.not_list, self.path)


class _Panic(Exception):
    """A failed Go type assertion; recovered by the innermost ``key`` as in Helm. ``path`` is
    where the value of the wrong type is."""

    def __init__(self, message: str, offset: int, path: KeyPath) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.path = path


def _eof(offset: int) -> _Err:
    return _Err("EOF", offset, eof=True)


def _go_type(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def _as_map(value: Any, offset: int, path: KeyPath) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _Panic(f"interface conversion: interface {{}} is {_go_type(value)}, "
                 "not map[string]interface {}", offset, path)


def _as_list(value: Any, offset: int, path: KeyPath) -> list[Any]:
    if isinstance(value, list):
        return value
    raise _Panic(f"interface conversion: interface {{}} is {_go_type(value)}, "
                 "not []interface {}", offset, path)


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    if key:  # Helm ignores empty keys
        data[key] = value


def _set_index(lst: list[Any], index: int, value: Any,
               offset: int | None) -> tuple[list[Any], _Err | None]:
    if index < 0:
        return lst, _Err(f"negative {index} index not allowed", offset)
    if index > MAX_INDEX:
        return lst, _Err(f"index of {index} is greater than maximum supported index of "
                         f"{MAX_INDEX}", offset)
    if len(lst) <= index:  # Go allocates a new, longer slice; the old one is left as it was
        lst = lst + [None] * (index + 1 - len(lst))
    lst[index] = value
    return lst, None


def _typed_value(text: str) -> Any:
    folded = text.casefold()  # Go's strings.EqualFold
    if folded == "true":
        return True
    if folded == "false":
        return False
    if folded == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0" and _INT_RE.fullmatch(text):
        number = int(text)
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
    return text


def _is_go_space(char: str) -> bool:
    """Go's unicode.IsSpace (Python's isspace also counts the \\x1c-\\x1f separators)."""
    return char.isspace() and not "\x1c" <= char <= "\x1f"


# --- the parser --------------------------------------------------------------------------------

class _Parser:
    """One flag value being parsed; ``pos`` plays the role of Helm's rune scanner. ``trail`` is
    the path of the container being parsed into; ``writes`` and ``containers`` make the
    :class:`SetTrace`."""

    def __init__(self, text: str, kind: str, read_file: Callable[[str], str] | None) -> None:
        self.text = text
        self.pos = 0
        self.kind = kind
        self.literal = kind == "set-literal"
        self.json = kind == "set-json"
        self.read_file = read_file
        self.key_stop = _LITERAL_KEY_STOP if self.literal else _KEY_STOP
        self.trail: list[str | int] = []
        self.writes: list[KeyPath] = []
        self.containers: list[KeyPath] = [()]

    def parse(self, data: dict[str, Any]) -> None:
        while True:
            err = self.key(data, 0)
            if err is None:
                continue
            if err.eof:
                return
            raise SetError(err.message, err.offset, kind=self.kind, text=self.text,
                           path=err.path, writes=tuple(self.writes))

    # -- where the parser is (for SetTrace and error paths)

    def within(self, part: str | int, parse: Callable[[], _R]) -> _R:
        """Run ``parse`` with ``part`` appended to the trail (descending into a container)."""
        self.trail.append(part)
        self.containers.append(tuple(self.trail))
        try:
            return parse()
        finally:
            self.trail.pop()

    def path(self, part: str | int) -> KeyPath:
        return (*self.trail, part)

    def store(self, data: dict[str, Any], key: str, value: Any) -> None:
        """Helm's ``set`` of a value (not of a container on the way to one)."""
        if key:
            self.writes.append(self.path(key))
        _set(data, key, value)

    def store_index(self, lst: list[Any], index: int, value: Any,
                    offset: int | None) -> tuple[list[Any], _Err | None]:
        """Helm's ``setIndex`` of a value (not of a container on the way to one)."""
        lst, err = _set_index(lst, index, value, offset)
        if err is None:
            self.writes.append(self.path(index))
        return lst, err

    # -- scanning

    def until(self, stop: frozenset[str]) -> tuple[str, str | None]:
        """Runes up to the first stop rune (consumed, returned as ``last``; None at EOF).
        A backslash escapes the next rune, except in the literal parser."""
        text, end, i = self.text, len(self.text), self.pos
        out: list[str] = []
        while i < end:
            char = text[i]
            i += 1
            if char in stop:
                self.pos = i
                return "".join(out), char
            if char == "\\" and not self.literal:
                if i >= end:
                    break
                char = text[i]
                i += 1
            out.append(char)
        self.pos = end
        return "".join(out), None

    def rest(self) -> str:
        value, self.pos = self.text[self.pos:], len(self.text)
        return value

    def empty_value(self) -> bool:
        """Skip blanks; True at EOF or after a consumed comma (Helm's ``emptyVal``)."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            self.pos += 1
            if char == ",":
                return True
            if not _is_go_space(char):
                self.pos -= 1
                return False
        return True

    # -- keys

    def key(self, data: dict[str, Any], level: int) -> _Err | None:
        start = self.pos
        try:
            return self.key_body(data, level, start)
        except _Panic as panic:
            return _Err(f"unable to parse key: {panic.message}", panic.offset, path=panic.path)

    def key_body(self, data: dict[str, Any], level: int, start: int) -> _Err | None:
        key, last = self.until(self.key_stop)
        if last is None:
            if not key:
                return _eof(start)
            return _Err(f"key {go_quote(key)} has no value", start)
        if last == "[":
            return self.key_index_then_item(data, key, level, start)
        if last == "=":
            return self.key_value(data, key, start)
        if last == ",":
            _set(data, key, "")
            return _Err(f"key {go_quote(key)} has no value (cannot end with ,)", start)
        return self.key_map(data, key, level + 1, start)

    def key_map(self, data: dict[str, Any], key: str, level: int, start: int) -> _Err | None:
        if level > MAX_NESTED_NAME_LEVEL:
            return _Err("value name nested level is greater than maximum supported nested "
                        f"level of {MAX_NESTED_NAME_LEVEL}", self.pos - 1)
        inner: dict[str, Any] = _as_map(data[key], start, self.path(key)) if key in data else {}
        err = self.within(key, lambda: self.key(inner, level))
        if err is None and not inner:
            return _Err(f"key map {go_quote(key)} has no value", start)
        if inner:
            _set(data, key, inner)
        return err

    def key_index_then_item(self, data: dict[str, Any], key: str, level: int,
                            start: int) -> _Err | None:
        index_at = self.pos
        index, err = self.key_index()
        if err is not None:
            return err.wrap("error parsing index: ")
        lst: list[Any] = _as_list(data[key], start, self.path(key)) if key in data else []
        lst, err = self.within(key, lambda: self.list_item(lst, index, level, index_at))
        _set(data, key, lst)
        return err

    def key_value(self, data: dict[str, Any], key: str, start: int) -> _Err | None:
        if self.json:
            return self.key_json_value(data, key)
        if self.literal:
            self.store(data, key, self.rest())
            return None
        items, err = self.value_list()
        if err is None:
            self.store(data, key, items)
            return None
        if err.eof:
            self.store(data, key, "")
            return err
        if not err.not_list:
            return err
        value_at = self.pos
        value, err = self.read_value(self.until(_VALUE_STOP)[0], value_at)
        self.store(data, key, value)
        return err

    def key_json_value(self, data: dict[str, Any], key: str) -> _Err | None:
        if self.empty_value():
            self.store(data, key, None)
            return None
        value, err = self.decode_json()
        if err is not None:
            return err
        self.store(data, key, value)
        self.empty_value()
        return None

    def key_index(self) -> tuple[int, _Err | None]:
        start = self.pos
        text, last = self.until(_INDEX_STOP)
        if last is None:
            return 0, _eof(start)
        return _atoi(text, start)

    # -- list items

    def list_item(self, lst: list[Any], index: int, level: int,
                  index_at: int) -> tuple[list[Any], _Err | None]:
        if index < 0:
            return lst, _Err(f"negative {index} index not allowed", index_at)
        start = self.pos
        key, last = self.until(_ITEM_STOP)
        if key:
            return lst, _Err("unexpected data at end of array index: " + quote_runes(key), start)
        if last is None:
            return lst, _eof(start)
        if last == "=":
            return self.item_value(lst, index, index_at)
        if last == "[":
            return self.item_nested_list(lst, index, level, index_at)
        return self.item_map(lst, index, level, index_at)

    def item_value(self, lst: list[Any], index: int,
                   index_at: int) -> tuple[list[Any], _Err | None]:
        if self.json:
            return self.item_json_value(lst, index, index_at)
        if self.literal:
            return self.store_index(lst, index, self.rest(), index_at)
        items, err = self.value_list()
        if err is None:
            return self.store_index(lst, index, items, index_at)
        if err.eof:
            return self.store_index(lst, index, "", index_at)
        if not err.not_list:
            return lst, err
        value_at = self.pos
        value, err = self.read_value(self.until(_VALUE_STOP)[0], value_at)
        if err is not None:
            return lst, err
        return self.store_index(lst, index, value, index_at)

    def item_json_value(self, lst: list[Any], index: int,
                        index_at: int) -> tuple[list[Any], _Err | None]:
        if self.empty_value():
            return self.store_index(lst, index, None, index_at)
        value, err = self.decode_json()
        if err is not None:
            return lst, err
        lst, err = self.store_index(lst, index, value, index_at)
        if err is not None:
            return lst, err
        self.empty_value()
        return lst, None

    def item_nested_list(self, lst: list[Any], index: int, level: int,
                         index_at: int) -> tuple[list[Any], _Err | None]:
        next_at = self.pos
        next_index, err = self.key_index()
        if err is not None:
            return lst, err.wrap("error parsing index: ")
        current: list[Any] = []
        if len(lst) > index and lst[index] is not None:
            current = _as_list(lst[index], index_at, self.path(index))
        inner, err = self.within(index, lambda: self.list_item(current, next_index, level,
                                                               next_at))
        if err is not None:
            return lst, err
        return _set_index(lst, index, inner, index_at)

    def item_map(self, lst: list[Any], index: int, level: int,
                 index_at: int) -> tuple[list[Any], _Err | None]:
        inner: dict[str, Any] = {}
        if len(lst) > index:
            if not isinstance(lst[index], dict):
                lst[index] = {}  # "indices out of order": Helm replaces the element
            inner = lst[index]
        err = self.within(index, lambda: self.key(inner, level))
        if err is not None:
            return lst, err
        return _set_index(lst, index, inner, index_at)

    # -- values

    def value_list(self) -> tuple[list[Any], _Err | None]:
        """``{a,b}`` → a list; ``not_list`` error when the value does not start with ``{``."""
        start = self.pos
        if start >= len(self.text):
            return [], _eof(start)
        if self.text[start] != "{":
            return [], _Err("not a list", start, not_list=True)
        self.pos += 1
        items: list[Any] = []
        while True:
            item_at = self.pos
            text, last = self.until(_LIST_STOP)
            if last is None:
                return items, _Err("list must terminate with '}'", start)
            if last == "}" and self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
            value, err = self.read_value(text, item_at)
            if last == "}":
                items.append(value)
                return items, err
            if err is not None:
                return items, err
            items.append(value)

    def read_value(self, text: str, offset: int) -> tuple[Any, _Err | None]:
        """Helm's ``RunesValueReader`` of this flag kind."""
        if self.kind == "set":
            return _typed_value(text), None
        if self.kind != "set-file":
            return text, None
        if self.read_file is None:
            return None, _Err(f"cannot read {text!r}: no file reader for --set-file", offset)
        try:
            return self.read_file(text), None
        except SetError as error:
            return None, _Err(error.message, offset)
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
            return None, _Err(f"open {text}: {reason}", offset)

    def decode_json(self) -> tuple[Any, _Err | None]:
        """One JSON value from ``pos``, as Go's ``json.Decoder.Decode`` reads it."""
        start = self.pos
        try:
            end = scan_json(self.text, start, "unexpected EOF")
            value = decode_json(self.text[start:end], start)
        except JsonError as error:
            return None, _Err(error.message, error.offset)
        self.pos = end
        return value, None


def _atoi(text: str, offset: int) -> tuple[int, _Err | None]:
    """Go's strconv.Atoi, with its error texts."""
    if not _INT_RE.fullmatch(text):
        return 0, _Err(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax", offset)
    number = int(text)
    if not _INT64_MIN <= number <= _INT64_MAX:
        return 0, _Err(f"strconv.Atoi: parsing {go_quote(text)}: value out of range", offset)
    return number, None


def _go_trim_bounds(text: str) -> tuple[int, int]:
    """Where Go's strings.TrimSpace would cut ``text``: (start, end)."""
    start, end = 0, len(text)
    while start < end and _is_go_space(text[start]):
        start += 1
    while end > start and _is_go_space(text[end - 1]):
        end -= 1
    return start, end


def _is_json_object_flag(text: str) -> bool:
    start, end = _go_trim_bounds(text)
    return start < end and text[start] == "{"


def _merge_json_object(dest: dict[str, Any], text: str) -> SetTrace:
    """``--set-json '{...}'``: Helm 4 unmarshals the whole (trimmed) value and MergeMaps it
    over dest."""
    start, stop = _go_trim_bounds(text)
    try:
        end = scan_json(text[:stop], start, "unexpected end of JSON input")
        tail = skip_json_space(text, end)
        if tail < stop:
            raise JsonError(f"invalid character {quote_char(text[tail])} after top-level "
                             "value", tail)
        value = decode_json(text[start:end], start)
    except JsonError as error:
        raise SetError(error.message, error.offset, kind="set-json", text=text) from None
    _merge_into(dest, value)
    return _object_trace(value)


def _object_trace(value: dict[str, Any], prefix: KeyPath = ()) -> SetTrace:
    """What merging the JSON object ``value`` does: its non-map values are writes, its maps
    (the top included) containers merged into."""
    writes: list[KeyPath] = []
    containers: list[KeyPath] = [prefix]
    for key, item in value.items():
        if isinstance(item, dict):
            inner = _object_trace(item, (*prefix, key))
            writes.extend(inner.writes)
            containers.extend(inner.containers)
        else:
            writes.append((*prefix, key))
    return SetTrace(tuple(writes), tuple(containers))


def _merge_into(dest: dict[str, Any], src: dict[str, Any]) -> None:
    """MergeMaps(dest, src), done in place: maps merge recursively, anything else replaces."""
    for key, value in src.items():
        current = dest.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge_into(current, value)
        else:
            dest[key] = value
