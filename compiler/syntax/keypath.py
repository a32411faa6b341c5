"""Value paths written the way ``--set`` writes them: ``resources.limits.cpu``, ``hosts[0].host``,
``annotations.cert-manager\\.io/cluster-issuer`` (a backslash escapes a dot)."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.diagnostics import MeshcError
from .yamlsrc import Path


class KeyPathError(MeshcError, ValueError):
    """A malformed path; ``offset`` is the 0-based position of the problem."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def parse_key_path(text: str) -> Path:
    """``a.b[0].c\\.d`` → ("a", "b", 0, "c.d"). Raises :class:`KeyPathError`."""
    parts: list[str | int] = []
    current: list[str] = []
    i = 0
    after_index = False
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
            continue
        if ch == ".":
            if not current and not after_index:
                raise KeyPathError("empty key in path", i)
            if current:
                parts.append("".join(current))
            current, after_index = [], False
        elif ch == "[":
            if current:
                parts.append("".join(current))
                current = []
            elif not parts:
                raise KeyPathError("a path starts with a key, not an index", i)
            close = text.find("]", i)
            if close < 0 or not text[i + 1:close].isdigit():
                raise KeyPathError("an index is written [N] with N ≥ 0", i)
            parts.append(int(text[i + 1:close]))
            i = close + 1
            after_index = True
            continue
        else:
            if after_index:
                raise KeyPathError("expected '.' or '[' after an index", i)
            current.append(ch)
        i += 1
    if current:
        parts.append("".join(current))
    elif not parts or (text.endswith(".") and not text.endswith("\\.")):
        raise KeyPathError("empty key in path", len(text))
    return tuple(parts)


def format_key_path(path: Iterable[str | int]) -> str:
    """The inverse of :func:`parse_key_path` (dots in keys escaped)."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            key = part.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[")
            out.append(f".{key}" if out else key)
    return "".join(out)


def leaf_paths(value: object, prefix: Path = ()) -> list[Path]:
    """Every leaf path below ``value`` (maps by sorted key, lists by index); empty maps and
    lists count as leaves."""
    if isinstance(value, dict) and value:
        return [p for key in sorted(value) for p in leaf_paths(value[key], (*prefix, key))]
    if isinstance(value, list) and value:
        return [p for i, item in enumerate(value) for p in leaf_paths(item, (*prefix, i))]
    return [prefix]


def blocked_at(tree: object, path: Path) -> Path | None:
    """The part of ``path`` that holds a value no key can be looked up in (a scalar or a list
    where a map is needed to go on), or None when ``path`` can be followed or just ends
    early. ``a.b.c`` with ``a.b: true`` → ``("a", "b")``."""
    node = tree
    for depth, part in enumerate(path):
        if not isinstance(node, dict):
            return None if node is None or depth == 0 else path[:depth]
        if part not in node:
            return None
        node = node[part]
    return None


def lookup(tree: object, path: Path) -> tuple[bool, object]:
    """(True, value) if ``path`` exists in ``tree`` (maps by key, lists by index), else
    (False, None)."""
    node = tree
    for part in path:
        if isinstance(node, dict) and isinstance(part, str):
            if part not in node:
                return False, None
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False, None
    return True, node
