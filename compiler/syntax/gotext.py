"""Text as Helm's Go code sees it: Go's quoting (``%q``) and ``encoding/json``'s scanner.

Shared by the ``--set`` parser (:mod:`compiler.syntax.strvals`) and Helm's merge warnings
(:mod:`compiler.syntax.helmvalues`), whose messages quote keys and values exactly as Go does.
"""

from __future__ import annotations

import json
import math
from typing import Any

# --- Go-compatible quoting -----------------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\"}


def _escape_rune(char: str, quote: str) -> str:
    if char == quote:
        return "\\" + char
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """Go's ``%q`` / strconv.Quote of a string."""
    return '"' + "".join(_escape_rune(char, '"') for char in text) + '"'


def quote_runes(text: str) -> str:
    """Go's ``%q`` of a ``[]rune``: ``['a' 'b']``."""
    return "[" + " ".join("'" + _escape_rune(char, "'") + "'" for char in text) + "]"


def quote_char(char: str) -> str:
    """encoding/json's quoteChar of the first *byte* of ``char``."""
    byte = chr(char.encode("utf-8", "surrogatepass")[0])
    if byte == "'":
        return "'\\''"
    if byte == '"':
        return "'\"'"
    return "'" + go_quote(byte)[1:-1] + "'"


# --- JSON, as Go's encoding/json scanner sees it -------------------------------------------------

_JSON_SPACE = " \t\r\n"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_MAX_JSON_DEPTH = 10000


class JsonError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def skip_json_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in _JSON_SPACE:
        i += 1
    return i


class _JsonScan:
    """Finds where the first JSON value of ``text[start:]`` ends, or fails with Go's message."""

    def __init__(self, text: str, eof_message: str) -> None:
        self.text = text
        self.eof_message = eof_message
        self.stack: list[str] = []

    def fail(self, i: int, context: str) -> JsonError:
        if i >= len(self.text):
            return JsonError(self.eof_message, i)
        return JsonError(f"invalid character {quote_char(self.text[i])} {context}", i)

    def char(self, i: int) -> str:
        if i >= len(self.text):
            raise JsonError(self.eof_message, i)
        return self.text[i]

    def push(self, kind: str, i: int) -> None:
        self.stack.append(kind)
        if len(self.stack) > _MAX_JSON_DEPTH:
            raise self.fail(i, "exceeded max depth")

    def value(self, i: int) -> tuple[int, bool]:
        """Scan the start of a value at ``i``; returns (next index, value complete)."""
        i = skip_json_space(self.text, i)
        char = self.char(i)
        if char == "{":
            self.push("{", i)
            i = skip_json_space(self.text, i + 1)
            if self.char(i) == "}":
                self.stack.pop()
                return i + 1, True
            return self.object_key(i), False
        if char == "[":
            self.push("[", i)
            i = skip_json_space(self.text, i + 1)
            if self.char(i) == "]":
                self.stack.pop()
                return i + 1, True
            return i, False
        if char == '"':
            return self.string(i), True
        if char == "-" or char in _DIGITS:
            return self.number(i), True
        if char in "tfn":
            return self.literal(i), True
        raise self.fail(i, "looking for beginning of value")

    def object_key(self, i: int) -> int:
        if self.char(i) != '"':
            raise self.fail(i, "looking for beginning of object key string")
        i = skip_json_space(self.text, self.string(i))
        if self.char(i) != ":":
            raise self.fail(i, "after object key")
        return i + 1

    def after_value(self, i: int) -> tuple[int, bool]:
        """After a complete value: close containers; returns (index, whole value complete)."""
        while self.stack:
            i = skip_json_space(self.text, i)
            char = self.char(i)
            if self.stack[-1] == "{":
                if char == ",":
                    return self.object_key(skip_json_space(self.text, i + 1)), False
                if char != "}":
                    raise self.fail(i, "after object key:value pair")
            else:
                if char == ",":
                    return i + 1, False
                if char != "]":
                    raise self.fail(i, "after array element")
            self.stack.pop()
            i += 1
        return i, True

    def string(self, i: int) -> int:
        i += 1
        while True:
            char = self.char(i)
            if char == '"':
                return i + 1
            if char == "\\":
                i = self.escape(i + 1)
                continue
            if char < " ":
                raise self.fail(i, "in string literal")
            i += 1

    def escape(self, i: int) -> int:
        char = self.char(i)
        if char in 'bfnrt\\/"':
            return i + 1
        if char != "u":
            raise self.fail(i, "in string escape code")
        for j in range(i + 1, i + 5):
            if self.char(j) not in _HEX:
                raise self.fail(j, "in \\u hexadecimal character escape")
        return i + 5

    def digits(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _DIGITS:
            i += 1
        return i

    def number(self, i: int) -> int:
        if self.text[i] == "-":
            i += 1
            if self.char(i) not in _DIGITS:
                raise self.fail(i, "in numeric literal")
        i = i + 1 if self.text[i] == "0" else self.digits(i)
        if i < len(self.text) and self.text[i] == ".":
            if self.char(i + 1) not in _DIGITS:
                raise self.fail(i + 1, "after decimal point in numeric literal")
            i = self.digits(i + 1)
        if i < len(self.text) and self.text[i] in "eE":
            i += 1
            if i < len(self.text) and self.text[i] in "+-":
                i += 1
            if self.char(i) not in _DIGITS:
                raise self.fail(i, "in exponent of numeric literal")
            i = self.digits(i)
        return i

    def literal(self, i: int) -> int:
        word = {"t": "true", "f": "false", "n": "null"}[self.text[i]]
        for offset, expected in enumerate(word[1:], start=1):
            if self.char(i + offset) != expected:
                raise self.fail(i + offset, f"in literal {word} (expecting '{expected}')")
        return i + len(word)


def scan_json(text: str, start: int, eof_message: str) -> int:
    """Index just after the first JSON value in ``text[start:]``. Raises :class:`JsonError`."""
    scan = _JsonScan(text, eof_message)
    i, complete = scan.value(start)
    while True:
        if complete:
            i, complete = scan.after_value(i)
            if complete:
                return i
        i, complete = scan.value(i)


def decode_json(text: str, offset: int) -> Any:
    """Decode already-validated JSON as Go does into ``any`` (every number is a float64): an
    integer stays an ``int`` when float64 holds it exactly, else it becomes Go's float64 value;
    numbers beyond float64 fail as in Go."""

    def number(literal: str) -> int | float:
        value = float(literal)
        if math.isinf(value):
            raise JsonError(f"json: cannot unmarshal number {literal} into Go value of type "
                             "float64", offset)
        if any(char in literal for char in ".eE"):
            return value
        integer = int(literal)
        return integer if value == integer else value

    return json.loads(text, parse_int=number, parse_float=number)
