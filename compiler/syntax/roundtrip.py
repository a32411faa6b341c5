"""Editing the user's YAML files the way a careful person would.

``meshc promote`` and ``meshc env new`` change a few values in files people wrote by hand —
values files and the meshfile — and everything else in them must stay as it was: comments, key
order, quoting, blank lines, indentation, flow maps. ruamel.yaml, a round-trip YAML library,
reads the file (its composer reports where every key and value starts and ends, and how each
scalar is quoted); each change is then made as the smallest text edit at those positions —
replace one scalar, or add the missing keys after the last line of the nearest existing map —
so every byte outside the edited lines is untouched, even in layouts ruamel's own emitter would
normalise. The result is read back twice before anyone writes it: by ruamel (the document must
equal the original document with exactly the intended changes) and by meshc's own Helm-typed
reader (the new value must read back as the value meant, typed as Helm types it).

Writes are atomic (:func:`write_files`): a temporary file beside the target, then a rename, so
an interrupted command leaves every file as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..core.diagnostics import CompileError, MeshcError
from .yamlsrc import Path as ValuePath
from .yamlsrc import load_documents, resolve_plain

Scalar = str | int | float | bool


class Removal:
    """The value of a :class:`Change` that removes its key (with the lines of its value)."""

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE = Removal()


@dataclass(frozen=True, slots=True)
class Change:
    """Set ``path`` (keys and list indexes, as meshc reads the file) to ``value``.

    ``style`` quotes an inserted scalar: ``"`` double, ``'`` single, ``""`` plain when plain
    reads back as the same value (else double). A replaced scalar keeps its own quoting.
    """

    path: ValuePath
    value: Scalar | Removal
    style: str = '"'


class EditError(MeshcError):
    """A change that cannot be made safely; ``line``/``col`` (1-based) point at the reason."""

    def __init__(self, message: str, line: int = 0, col: int = 0, help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        self.help = help


def edit_text(text: str, changes: Sequence[Change]) -> str:
    """``text`` with every change made (in order), verified by reading it back.

    Raises :class:`EditError` when a change cannot be made without rewriting more than the
    value (a multi-line structure in the way, a list to extend, a non-map on the path).
    """
    new = text
    for change in changes:
        new = _apply(new, change)
    _verify(text, new, changes)
    return new


# --- locating -------------------------------------------------------------------------------

def compose_text(text: str) -> Node | None:
    try:
        node: Node | None = YAML(typ="rt").compose(text)
        return node
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise EditError(f"cannot read the file as YAML: {getattr(exc, 'problem', exc)}",
                        (mark.line + 1) if mark else 0, (mark.column + 1) if mark else 0) from None


def _key_text(node: Node) -> str | None:
    """A map key as meshc (and Helm) reads it: plain scalars typed the Go way, then as text."""
    if not isinstance(node, ScalarNode):
        return None
    if node.style is not None:
        return str(node.value)
    _, value = resolve_plain(node.value) if node.value else ("", None)
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value) if not isinstance(value, str) else value


def find_key(mapping: MappingNode, key: str) -> Node | None:
    for key_node, value_node in mapping.value:
        if _key_text(key_node) == key:
            found: Node = value_node
            return found
    return None


def _apply(text: str, change: Change) -> str:
    root = compose_text(text)
    if isinstance(change.value, Removal):
        return _remove(text, root, change.path)
    if root is None:
        return _append_top(text, change)
    node: Node = root
    parent_indent = -1
    for depth, part in enumerate(change.path):
        if isinstance(node, MappingNode) and isinstance(part, str):
            found = find_key(node, part)
            if found is None:
                return _insert(text, node, change.path[depth:], change, parent_indent)
            if not node.flow_style and node.value:
                parent_indent = node.value[0][0].start_mark.column
            node = found
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            where = ".".join(map(str, change.path[:depth])) or "the top level"
            raise EditError(f"cannot set {_dotted(change.path)}: {where} is not a map that "
                            "could hold it", node.start_mark.line + 1, node.start_mark.column + 1)
    if not isinstance(node, ScalarNode):
        raise EditError(f"cannot set {_dotted(change.path)}: it holds a "
                        f"{'map' if isinstance(node, MappingNode) else 'list'}, not a value",
                        node.start_mark.line + 1, node.start_mark.column + 1)
    style = node.style if node.style in ("'", '"') else "" if node.style is None else '"'
    start, end = node.start_mark.index, node.end_mark.index
    new = render_scalar(change.value, style)
    return text[:start] + new + _keep_comment_column(text[end:], len(new) - (end - start))


def _remove(text: str, root: Node | None, path: ValuePath) -> str:
    """``text`` without the key at ``path`` of a block map, its value's lines with it (a key
    that is not there: nothing to do)."""
    node = root
    for depth, part in enumerate(path):
        if not isinstance(node, MappingNode) or not isinstance(part, str):
            raise EditError(f"cannot remove {_dotted(path)}: "
                            f"{'.'.join(map(str, path[:depth])) or 'the top level'} is not a map")
        entry = next(((k, v) for k, v in node.value if _key_text(k) == part), None)
        if entry is None:
            return text
        if depth == len(path) - 1:
            if node.flow_style:
                raise EditError(f"cannot remove {_dotted(path)} from a {{…}} map",
                                entry[0].start_mark.line + 1, entry[0].start_mark.column + 1,
                                "write the map one key per line")
            start = text.rfind("\n", 0, entry[0].start_mark.index) + 1
            if text[start:entry[0].start_mark.index].strip():
                raise EditError(f"cannot remove {_dotted(path)}: another key shares its line",
                                entry[0].start_mark.line + 1, entry[0].start_mark.column + 1)
            return text[:start] + text[line_after(text, last_end(entry[1])):]
        node = entry[1]
    return text


def _keep_comment_column(rest: str, grown: int) -> str:
    """The text after a replaced scalar, with the blanks before a trailing ``# comment`` adjusted
    so the comment stays in its column (at least one blank remains)."""
    blanks = len(rest) - len(rest.lstrip(" "))
    if not grown or not rest[blanks:].startswith("#") or blanks == 0:
        return rest
    return " " * max(blanks - grown, 1) + rest[blanks:]


def last_end(node: Node) -> int:
    """Where the last character of ``node``'s own text ends (block collections end where the next
    token starts, after trailing comments: look at their last item instead)."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        key, value = node.value[-1]
        key_end: int = key.end_mark.index
        return max(key_end, last_end(value))
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return last_end(node.value[-1])
    end: int = node.end_mark.index
    return end


def line_after(text: str, index: int) -> int:
    """The index just past the end of the line holding ``index - 1`` (its comment included)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _insert(text: str, mapping: MappingNode, rest: ValuePath, change: Change,
            parent_indent: int) -> str:
    if any(not isinstance(part, str) for part in rest):
        raise EditError(f"cannot set {_dotted(change.path)}: it needs a new list item",
                        mapping.start_mark.line + 1, mapping.start_mark.column + 1)
    keys = [str(part) for part in rest]
    if mapping.flow_style:
        close = mapping.end_mark.index - 1
        entry = _flow_entry(keys, change)
        sep = ", " if mapping.value else ""
        return text[:close].rstrip() + sep + entry + text[close:] if mapping.value else \
            text[:close] + entry + text[close:]
    if not mapping.value:
        raise EditError(f"cannot set {_dotted(change.path)}: its map is empty",
                        mapping.start_mark.line + 1, mapping.start_mark.column + 1)
    indent = mapping.value[0][0].start_mark.column
    step = indent - parent_indent if parent_indent >= 0 else _indent_step(text)
    at = line_after(text, last_end(mapping))
    lines = _block_lines(keys, change, indent, step)
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return text[:at] + prefix + lines + text[at:]


def _append_top(text: str, change: Change) -> str:
    keys = [str(part) for part in change.path]
    prefix = "" if not text or text.endswith("\n") else "\n"
    lines = text.rstrip("\n").splitlines()
    if lines and lines[-1].lstrip().startswith("#"):
        prefix += "\n"   # after a closing comment block: a blank line, as people write it
    return text + prefix + _block_lines(keys, change, 0, _indent_step(text))


def _indent_step(text: str) -> int:
    """The file's indentation step: the first indented key line after an unindented one."""
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped and not stripped.startswith(("#", "-")) and len(line) > len(stripped):
            return len(line) - len(stripped)
    return 2


def _block_lines(keys: list[str], change: Change, indent: int, step: int) -> str:
    lines = []
    for depth, key in enumerate(keys):
        pad = " " * (indent + depth * step)
        if depth == len(keys) - 1:
            lines.append(f"{pad}{render_key(key)}: {render_scalar(change.value, change.style)}")
        else:
            lines.append(f"{pad}{render_key(key)}:")
    return "\n".join(lines) + "\n"


def _flow_entry(keys: list[str], change: Change) -> str:
    entry = render_scalar(change.value, change.style)
    for key in reversed(keys[1:]):
        entry = f"{{{render_key(key)}: {entry}}}"
    return f"{render_key(keys[0])}: {entry}"


# --- scalars --------------------------------------------------------------------------------

def render_scalar(value: Scalar, style: str = '"') -> str:
    """``value`` as a YAML scalar in ``style`` (``""`` plain, ``'`` or ``"``); strings fall back
    to double quotes where the style would change how the text reads."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        return json.dumps(value)
    if style == "" and _reads_back(value, value):
        return value
    if style == "'" and value.isprintable() and _reads_back("'" + value.replace("'", "''") + "'",
                                                            value):
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, ensure_ascii=False)


def render_key(key: str) -> str:
    return key if _reads_back(key, key) and ": " not in key else json.dumps(key)


def _reads_back(text: str, value: Scalar) -> bool:
    """True when ``k: TEXT`` reads back as ``value``, to meshc's reader and to ruamel's."""
    if not text or text != text.strip() or "\n" in text or " #" in text:
        return False
    try:
        ours = load_documents(f"k: {text}\n", "<value>")
        theirs = YAML(typ="safe", pure=True).load(f"k: {text}\n")
    except (CompileError, YAMLError):
        return False
    return ours == [{"k": value}] and isinstance(theirs, dict) and theirs.get("k") == value


# --- verifying ------------------------------------------------------------------------------

def _verify(old: str, new: str, changes: Sequence[Change]) -> None:
    """Read both texts back: they must differ by exactly ``changes``, to meshc and to ruamel."""
    try:
        before = (load_documents(old, "<before>") or [{}])[0]
        after = (load_documents(new, "<after>") or [{}])[0]
        rt_before = _plain(YAML(typ="rt").load(old) or {})
        rt_after = _plain(YAML(typ="rt").load(new) or {})
    except (CompileError, YAMLError) as exc:
        raise EditError(f"the edited file would not read back: {exc}") from None
    for change in changes:
        before = _set(before, change.path, change.value)
        rt_before = _set(rt_before, change.path, change.value)
    if after != before or rt_after != rt_before:
        raise EditError("meshc could not make this change without touching other values; "
                        "edit the file by hand")


def _plain(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {_plain_key(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    return data


def _plain_key(key: Any) -> Any:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _set(data: Any, path: ValuePath, value: Scalar | Removal) -> Any:
    """A copy of ``data`` with ``path`` set (removed: :data:`REMOVE`), missing maps created."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(value, Removal) and (not isinstance(data, dict) or head not in data):
        return data  # nothing there to remove
    if isinstance(value, Removal) and not rest:
        return {k: v for k, v in data.items() if k != head}
    if isinstance(data, list) and isinstance(head, int):
        items = list(data)
        items[head] = _set(items[head], rest, value)
        return items
    mapping = dict(data) if isinstance(data, dict) else {}
    mapping[head] = _set(mapping.get(head), rest, value)
    return mapping


def _dotted(path: ValuePath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text


# --- writing --------------------------------------------------------------------------------

def write_files(root: Path, texts: Mapping[str, str], expected: Mapping[str, str | None]) -> None:
    """Write project files atomically: every file to a temporary file beside it first, then
    each renamed into place. ``expected`` holds each file's text as read (None: must not
    exist); a file changed on disk meanwhile stops everything before any rename. If a rename
    fails, files already replaced get their old text back. A file with CRLF line endings keeps
    them."""
    staged: list[tuple[Path, Path]] = []
    endings: dict[Path, str] = {}
    try:
        for rel, text in texts.items():
            target = root / rel
            raw = target.read_bytes() if target.exists() else None
            current = raw.decode("utf-8").replace("\r\n", "\n") if raw is not None else None
            endings[target] = "\r\n" if raw is not None and b"\r\n" in raw else "\n"
            if current != expected.get(rel):
                raise OSError(f"{rel} changed on disk while meshc was working; nothing written")
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".meshc-tmp",
                                                 dir=target.parent)
            with os.fdopen(handle, "w", encoding="utf-8", newline=endings[target]) as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            if target.exists():
                os.chmod(temp_name, target.stat().st_mode & 0o7777)
            else:
                os.chmod(temp_name, 0o644)
            staged.append((Path(temp_name), target))
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    done: list[Path] = []
    try:
        for temp, target in staged:
            os.replace(temp, target)
            done.append(target)
    except BaseException:
        for target in done:
            rel = target.relative_to(root).as_posix()
            old = expected.get(rel)
            if old is None:
                target.unlink(missing_ok=True)
            else:
                target.write_text(old, encoding="utf-8", newline=endings[target])
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
