"""``meshc explain``: where a value came from — the final value and every layer that had a say.

Answered from the meshfile alone (no cluster): the chain of layers of a :class:`ValueSet`,
strongest first, each with file:line:col, the value it held there, and its effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic, did_you_mean
from ..core.source import COMMAND_LINE, Span, source_line
from ..model.bluegreen import STATE_FOLDER
from ..syntax.keypath import format_key_path, leaf_paths
from ..syntax.yamlsrc import Path
from .values import Link, ValueSet, describe_value, lookup

LAYER_NAMES = {"chart": "chart default", "environment": "environment values",
               "features": "features template", "release": "release values",
               "set": "command line"}


@dataclass(frozen=True, slots=True)
class Say:
    """One layer's say on one leaf, with its verdict."""

    link: Link
    status: str  # wins | overridden | deletes | replaces | list wins | default


@dataclass(frozen=True, slots=True)
class Leaf:
    path: Path
    exists: bool
    value: Any
    says: tuple[Say, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    environment: str
    release: str
    path: Path
    exists: bool
    value: Any
    leaves: tuple[Leaf, ...]


def explain_value(values: ValueSet, path: Path) -> Explanation:
    """Explain ``path`` of a release's values (a map: each leaf below it).

    Raises :class:`CompileError` (with the nearest existing keys) when no layer mentions it.
    """
    exists, value = lookup(values.values, path)
    paths = leaf_paths(value, path) if exists else [path]
    leaves = tuple(_leaf(values, p) for p in paths)
    if not exists and not any(leaf.says for leaf in leaves):
        raise CompileError([_missing(values, path)])
    return Explanation(values.env, values.release, path, exists, value, leaves)


def _leaf(values: ValueSet, path: Path) -> Leaf:
    exists, value = lookup(values.values, path)
    chain = values.chain(path)
    return Leaf(path, exists, value, tuple(Say(link, _status(i, link, exists))
                                           for i, link in enumerate(chain)))


def _status(index: int, link: Link, exists: bool) -> str:
    if index:
        return "overridden"
    if link.effect == "null":
        return "deletes" if not exists else "sets null"
    if link.effect == "cut":
        return "replaces"
    if link.effect == "list":
        return "wins (whole list)"
    return "wins"


def _missing(values: ValueSet, path: Path) -> Diagnostic:
    depth = len(path)
    while depth and not lookup(values.values, path[:depth])[0]:
        depth -= 1
    parent = lookup(values.values, path[:depth])[1]
    where = format_key_path(path[:depth]) or "the top level"
    notes: tuple[str, ...] = ()
    if isinstance(parent, dict):
        notes = (f"keys at {where}: {', '.join(sorted(parent)) or '(none)'}",)
    elif isinstance(parent, list):
        notes = (f"{where} is a list of {len(parent)} item{'s' * (len(parent) != 1)}",)
    else:  # the path goes through a scalar
        notes = (f"{where} is {describe_value(parent)}, which holds no keys",)
    candidates = [format_key_path(p) for p in leaf_paths(values.values)]
    return Diagnostic("error", f"'{format_key_path(path)}' is not a value of release "
                      f"'{values.release}' in '{values.env}'", None,
                      did_you_mean(format_key_path(path), candidates), notes)


# --- output ---------------------------------------------------------------------------------

Paint = Callable[[str, str], str]


def _plain(text: str, role: str) -> str:
    return text


def show(value: Any, limit: int = 60) -> str:
    """A value as compact JSON, shortened for one line."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def where(span: Span | None, sources: Mapping[str, str]) -> str:
    """``file:line:col``, or the flag itself for values set on the command line."""
    if span is None:
        return "?"
    if span.file == COMMAND_LINE:
        flag = source_line(sources.get(COMMAND_LINE, ""), span.line)
        return flag or "the command line"
    return str(span)


def format_explanation(exp: Explanation, sources: Mapping[str, str], paint: Paint = _plain) -> str:
    """The explanation for people: one block per leaf, its chain strongest first."""
    head = f"{exp.release} in {exp.environment}: {format_key_path(exp.path)}"
    if exp.exists and len(exp.leaves) > 1:
        head += f" ({len(exp.leaves)} values below it)"
    lines = [paint(head, "title")]
    for leaf in exp.leaves:
        lines.append("")
        value = show(leaf.value) if leaf.exists else "(absent)"
        lines.append(f"{paint(format_key_path(leaf.path), 'key')} = {paint(value, 'value')}")
        rows = [(say.status, show(say.link.value, 40), where(say.link.span, sources),
                 _layer_text(say.link)) for say in leaf.says]
        widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
        for status, val, loc, layer in rows:
            role = "good" if status.startswith(("wins", "sets")) else "bad" if status in (
                "deletes", "replaces") else "dim"
            lines.append(f"  {paint(status.ljust(widths[0]), role)}  {val.ljust(widths[1])}  "
                         f"{loc.ljust(widths[2])}  ({layer})")
        if not leaf.says:
            lines.append("  (no layer sets it)")
    return "\n".join(lines) + "\n"


def _layer_text(link: Link) -> str:
    name = LAYER_NAMES[link.layer.kind]
    if link.layer.kind == "release" and link.layer.doc.file.startswith(f"{STATE_FOLDER}/"):
        name = "blue-green state"  # a slot's pinned versions, bluegreen/ENV.yaml
    if link.effect == "list":
        return f"{name}; lists replace wholesale: {format_key_path(link.path)}"
    if link.effect == "cut" and isinstance(link.value, dict):
        return f"{name}; the map it sets at {format_key_path(link.path)} replaces the subtree"
    if link.effect == "cut":
        return f"{name}; a non-map value at {format_key_path(link.path)} replaces the subtree"
    return name


def explanation_json(exp: Explanation, sources: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "meshc/v1", "kind": "Explanation", "environment": exp.environment,
        "release": exp.release, "path": format_key_path(exp.path), "exists": exp.exists,
        "value": exp.value if exp.exists else None,
        "leaves": [{
            "path": format_key_path(leaf.path), "exists": leaf.exists,
            "value": leaf.value if leaf.exists else None,
            "chain": [_say_json(say, sources) for say in leaf.says]} for leaf in exp.leaves],
    }


def _say_json(say: Say, sources: Mapping[str, str]) -> dict[str, Any]:
    span = say.link.span
    data: dict[str, Any] = {"status": say.status, "layer": say.link.layer.kind,
                            "effect": say.link.effect, "path": format_key_path(say.link.path),
                            "value": say.link.value}
    if span is not None and span.file == COMMAND_LINE:
        data["flag"] = where(span, sources)
    elif span is not None:
        data.update(file=span.file, line=span.line, column=span.col)
    return data
