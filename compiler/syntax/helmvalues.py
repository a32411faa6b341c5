"""Helm 4's values layering, as pure functions over plain YAML data.

Data in and out is what a YAML or JSON reader produces: ``dict`` (string keys), ``list``, ``str``,
``int``, ``float``, ``bool`` and ``None``. Only ``dict`` counts as a table (Go's
``map[string]any``).

Sharing: results may share subtrees with the inputs (``merge_maps`` shares everything it does not
have to rebuild, ``coalesce_values`` shares chart defaults and user values it did not change).
No function here mutates its inputs; callers that want to edit a result in place must
:func:`deep_copy` it first.

The chart-with-subcharts algorithm (:func:`coalesce_values` on a :class:`Chart` with
``dependencies``, :func:`merge_values`, :func:`coalesce_tables`) is a line-by-line port of helm's
pkg/chart/common/util/coalesce.go, run on private copies: Helm's results depend on which maps it
copies deeply, which shallowly and which it edits in place (globals of nested subcharts are
shallow copies), and the port keeps exactly those copy points.

One deliberate difference from that file's current text, measured on Helm 4.3.1 (the Helm the
tests run): a null in the *top-level* chart's own ``values.yaml`` is dropped like a subchart's
(``cleanNilValues``), where newer sources keep it (helm#32530). ``helm template`` hands a chart
with ``a: null, b: {x: null}`` in its values.yaml ``{"b": {}}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .gotext import go_quote
from .strvals import SetError, apply_set, helm_error_text

__all__ = [
    "GLOBAL_KEY",
    "Chart",
    "ValuesError",
    "cli_merge_values",
    "coalesce_tables",
    "coalesce_values",
    "deep_copy",
    "format_go_value",
    "merge_maps",
    "merge_tables",
    "merge_values",
    "upgrade_reuse_values",
]

GLOBAL_KEY = "global"

Warn = Callable[[str], None]


class ValuesError(Exception):
    """Values Helm refuses to coalesce (a subchart's key holds a non-map)."""


@dataclass(frozen=True, slots=True)
class Chart:
    """What coalescing needs of a chart: its name, its default values, its subcharts."""

    name: str
    values: Mapping[str, Any] | None = None
    dependencies: tuple[Chart, ...] = ()


# --- plain data helpers ------------------------------------------------------------------------

def deep_copy(value: Any) -> Any:
    """A copy of plain YAML data in which every dict and list is new (scalars are immutable)."""
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_copy(item) for item in value]
    return value


def merge_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's ``MergeMaps``: ``b`` over ``a``. Maps merge recursively; lists, scalars and null
    in ``b`` replace. Used for ``-f`` files, multi-document files and ``--set-json`` objects.

    Returns a new dict; untouched subtrees of ``a`` and ``b`` are shared, not copied.
    """
    out = dict(a)
    for key, value in b.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = merge_maps(current, value)
        else:
            out[key] = value
    return out


def format_go_value(value: Any) -> str:
    """``value`` as Go's ``fmt`` prints it with ``%v`` (maps with sorted keys, ``<nil>``,
    floats in ``%g`` shortest form), so messages read as Helm's do."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict):
        items = " ".join(f"{key}:{format_go_value(value[key])}" for key in sorted(value))
        return f"map[{items}]"
    if isinstance(value, list):
        return "[" + " ".join(format_go_value(item) for item in value) + "]"
    return str(value)


def _go_float(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    if number == 0:
        return sign + "0"
    shortest = Decimal(repr(abs(number))).as_tuple()
    all_digits = "".join(map(str, shortest.digits))
    digits = all_digits.rstrip("0")
    point = len(all_digits) + int(shortest.exponent)  # digits before the decimal point
    exponent = point - 1
    if exponent < -4 or exponent >= 6:  # strconv 'g', shortest: %e from exponent 6 up
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_bool_verb(value: Any) -> str:
    """Go's ``%t`` of a value: fine for bools, ``%!t(type=value)`` otherwise."""
    if isinstance(value, bool):
        return format_go_value(value)
    if value is None:
        return "%!t(<nil>)"
    kinds = {str: "string", int: "int64", float: "float64", list: "[]interface {}",
             dict: "map[string]interface {}"}
    return f"%!t({kinds.get(type(value), type(value).__name__)}={format_go_value(value)})"


def _warner(warnings: list[str] | None) -> Warn:
    return warnings.append if warnings is not None else (lambda message: None)


def _concat(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _as_chart(chart: Chart | Mapping[str, Any] | None) -> Chart:
    if isinstance(chart, Chart):
        return chart
    return Chart(name="", values=chart)


# --- coalescing: the public entry points -------------------------------------------------------

def coalesce_values(chart: Chart | Mapping[str, Any] | None,
                    user_values: Mapping[str, Any] | None, *,
                    warnings: list[str] | None = None) -> dict[str, Any]:
    """Helm's ``CoalesceValues``: ``user_values`` over the chart's defaults (and, for a
    :class:`Chart` with dependencies, over its subcharts' defaults, with ``global`` copied down).

    ``chart`` is a :class:`Chart` or just a chart's default values (a chart without subcharts).
    Maps merge recursively; lists and scalars replace; a user ``null`` deletes the chart default
    (a user ``null`` for a key the chart does not have is kept). Where a user value and a default
    disagree on being a map, the user value wins and Helm's warning is appended to ``warnings``.
    Null defaults are dropped, in maps at any depth (not inside lists), unless a user value
    sets that key.

    Returns a new dict that may share subtrees with the inputs; inputs are not changed.
    Raises :class:`ValuesError` when a subchart's key in the values is not a map.
    """
    chart = _as_chart(chart)
    warn = _warner(warnings)
    if not chart.dependencies:
        return _coalesce_flat(chart, user_values or {}, warn)
    return _coalesce(chart, deep_copy(dict(user_values or {})), "", False, warn)


def merge_values(chart: Chart | Mapping[str, Any] | None,
                 user_values: Mapping[str, Any] | None, *,
                 warnings: list[str] | None = None) -> dict[str, Any]:
    """Helm's ``MergeValues``: as :func:`coalesce_values`, but every null is kept (a user null
    overrides a default instead of deleting it). Returns a new dict; inputs are not changed."""
    dest = deep_copy(dict(user_values or {}))
    return _coalesce(_as_chart(chart), dest, "", True, _warner(warnings))


def coalesce_tables(dst: Mapping[str, Any] | None, src: Mapping[str, Any] | None, *,
                    warnings: list[str] | None = None) -> dict[str, Any] | None:
    """Helm's ``CoalesceTables``: ``src`` merged under ``dst`` (``dst`` is authoritative).

    A null in ``dst`` deletes the key when ``src`` has a non-null value there. With ``src`` None
    the result is ``dst``; with ``dst`` None it is ``src``. Returns new data; inputs unchanged.
    """
    return _tables(dst, src, False, warnings)


def merge_tables(dst: Mapping[str, Any] | None, src: Mapping[str, Any] | None, *,
                 warnings: list[str] | None = None) -> dict[str, Any] | None:
    """Helm's ``MergeTables``: as :func:`coalesce_tables`, but nulls in ``dst`` are kept."""
    return _tables(dst, src, True, warnings)


def _tables(dst: Mapping[str, Any] | None, src: Mapping[str, Any] | None, merge: bool,
            warnings: list[str] | None) -> dict[str, Any] | None:
    dst_copy = deep_copy(dict(dst)) if dst is not None else None
    src_copy = deep_copy(dict(src)) if src is not None else None
    return _coalesce_tables(dst_copy, src_copy, "", merge, _warner(warnings))


def upgrade_reuse_values(existing_config: Mapping[str, Any] | None,
                         new_values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values ``helm upgrade --reuse-values`` (and ``--reset-then-reuse-values``) installs:
    ``CoalesceTables(new_values, existing_config)``: the new flags over the previous release's
    user-supplied values (chart defaults are not part of them; they are applied at render time).
    """
    result = coalesce_tables(new_values if new_values is not None else {}, existing_config)
    return result if result is not None else {}


# --- the --set pipeline ----------------------------------------------------------------------

def cli_merge_values(value_maps: Sequence[Mapping[str, Any]] = (), *,
                     set_json: Sequence[str] = (), set_values: Sequence[str] = (),
                     set_string: Sequence[str] = (), set_file: Sequence[str] = (),
                     set_literal: Sequence[str] = (),
                     read_file: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Helm's ``values.Options.MergeValues``: the user values of one helm command.

    Layers by kind, not by command-line order: every ``-f`` file (already loaded, in
    ``value_maps``, merged with :func:`merge_maps`), then ``--set-json``, ``--set``,
    ``--set-string``, ``--set-file`` (``read_file(path)`` gives contents), ``--set-literal``.

    Returns a new dict (shares nothing with ``value_maps`` once a flag is applied). Raises
    :class:`SetError` whose ``message`` is Helm's text (``failed parsing --set data: ...``), with
    ``kind``, ``text`` and ``offset`` of the flag; the parser's own error is its ``__cause__``.
    """
    base: dict[str, Any] = {}
    for layer in value_maps:
        base = merge_maps(base, layer)
    flags = (("set-json", set_json), ("set", set_values), ("set-string", set_string),
             ("set-file", set_file), ("set-literal", set_literal))
    if any(texts for _, texts in flags):
        base = deep_copy(base)  # the parsers edit maps and lists in place
    for kind, texts in flags:
        for text in texts:
            _apply_flag(base, kind, text, read_file)
    return base


def _apply_flag(base: dict[str, Any], kind: str, text: str,
                read_file: Callable[[str], str] | None) -> None:
    try:
        apply_set(base, kind, text, read_file)
    except SetError as error:
        message = helm_error_text(kind, text, error)
        raise SetError(message, error.offset, kind=kind, text=text) from error


# --- coalescing without subcharts: no copies ---------------------------------------------------

def _coalesce_flat(chart: Chart, user: Mapping[str, Any], warn: Warn) -> dict[str, Any]:
    """``coalesce`` of a chart without dependencies, building only the maps it changes.

    Equal to the faithful port for such charts (the top-level chart never cleans nulls and
    nothing is edited after merging, so Helm's in-place edits are invisible).
    """
    defaults = chart.values or {}
    out = dict(user)
    for key, default in defaults.items():
        if key not in user:
            if default is not None:
                out[key] = _without_nulls(default)
            continue
        value = user[key]
        if value is None:
            del out[key]
        elif isinstance(value, dict):
            if isinstance(default, dict):
                out[key] = _tables_flat(value, _without_nulls(default),
                                        _concat(chart.name, key), warn)
            elif default is not None:
                warn(f"warning: skipped value for {chart.name}.{key}: Not a table.")
    return out


def _tables_flat(dst: Mapping[str, Any], src: Mapping[str, Any], prefix: str,
                 warn: Warn) -> dict[str, Any]:
    """``coalesceTablesFullKey(dst, src, merge=False)`` without mutating either side."""
    out = dict(dst)
    for key, value in src.items():
        full_key = _concat(prefix, key)
        if key not in dst:
            out[key] = value
            continue
        current = dst[key]
        if current is None:
            if value is not None:
                del out[key]  # the user nulls a default
        elif isinstance(value, dict):
            if isinstance(current, dict):
                out[key] = _tables_flat(current, value, full_key, warn)
            else:
                warn(f"warning: cannot overwrite table with non table for {full_key} "
                     f"({format_go_value(value)})")
        elif isinstance(current, dict) and value is not None:
            warn(f"warning: destination for {full_key} is a table. Ignoring non-table value "
                 f"({format_go_value(value)})")
    return out


# --- the faithful port (private copies, edited in place as Helm does) ------------------------

def _coalesce(chart: Chart, dest: dict[str, Any], prefix: str, merge: bool,
              warn: Warn) -> dict[str, Any]:
    _coalesce_chart_values(chart, dest, prefix, merge, warn)
    return _coalesce_deps(chart, dest, prefix, merge, warn)


def _coalesce_deps(chart: Chart, dest: dict[str, Any], prefix: str, merge: bool,
                   warn: Warn) -> dict[str, Any]:
    for sub in chart.dependencies:
        if sub.name not in dest:
            dest[sub.name] = {}
        elif not isinstance(dest[sub.name], dict):
            raise ValuesError(f"type mismatch on {sub.name}: {_go_bool_verb(dest[sub.name])}")
        sub_values = dest[sub.name]
        sub_prefix = _concat(prefix, chart.name)
        _coalesce_globals(sub_values, dest, sub_prefix, warn)
        dest[sub.name] = _coalesce(sub, sub_values, sub_prefix, merge, warn)
    return dest


def _table_or_new(values: dict[str, Any], side: str, warn: Warn) -> dict[str, Any] | None:
    if GLOBAL_KEY not in values:
        return {}
    table = values[GLOBAL_KEY]
    if isinstance(table, dict):
        return table
    warn(f"warning: skipping globals because {side} {GLOBAL_KEY} is not a table.")
    return None


def _coalesce_globals(dest: dict[str, Any], src: dict[str, Any], prefix: str,
                      warn: Warn) -> None:
    """Copy the parent's globals (``src``) into a subchart's values (``dest``); the parent wins.
    Map-valued globals are copied one level deep only, as in Helm."""
    dest_globals = _table_or_new(dest, "destination", warn)
    if dest_globals is None:
        return
    src_globals = _table_or_new(src, "source", warn)
    if src_globals is None:
        return
    for key, value in list(src_globals.items()):
        if isinstance(value, dict):
            copied = dict(value)
            if key not in dest_globals:
                dest_globals[key] = copied
            elif not isinstance(dest_globals[key], dict):
                warn(f"Conflict: cannot merge map onto non-map for {go_quote(key)}. Skipping.")
            else:
                _coalesce_tables(copied, dest_globals[key], _concat(prefix, key), True, warn)
                dest_globals[key] = copied
        elif isinstance(dest_globals.get(key), dict):
            warn(f"key {key} is table. Skipping")
        else:
            dest_globals[key] = value
    dest[GLOBAL_KEY] = dest_globals


def _coalesce_chart_values(chart: Chart, values: dict[str, Any], prefix: str, merge: bool,
                           warn: Warn) -> None:
    """Helm's ``coalesceValues``: the chart's defaults (a private deep copy) under ``values``."""
    sub_prefix = _concat(prefix, chart.name)
    defaults: dict[str, Any] = deep_copy(dict(chart.values)) if chart.values else {}
    subcharts = {sub.name for sub in chart.dependencies}
    for key, default in defaults.items():
        if key not in values:
            if not merge:  # Helm 4.3.1: for the top-level chart too (see the module's doc)
                if default is None:
                    continue
                if isinstance(default, dict):
                    _clean_nils(default)
            values[key] = default
            continue
        value = values[key]
        if value is None and not merge:
            del values[key]
        elif isinstance(value, dict):
            if not isinstance(default, dict):
                if default is not None:
                    warn(f"warning: skipped value for {sub_prefix}.{key}: Not a table.")
                continue
            key_merge = merge or key in subcharts
            if not key_merge:
                _clean_nils(default)
            _coalesce_tables(value, default, _concat(sub_prefix, key), key_merge, warn)


def _coalesce_tables(dst: dict[str, Any] | None, src: dict[str, Any] | None, prefix: str,
                     merge: bool, warn: Warn) -> dict[str, Any] | None:
    """Helm's ``coalesceTablesFullKey``: edits ``dst`` (and marks ``dst``'s nulls in ``src``)."""
    if src is None:
        return dst
    if dst is None:
        return src
    src_non_null = {key for key, value in src.items() if value is not None}
    for key, value in list(dst.items()):
        if value is None:
            src[key] = None
    for key, value in list(src.items()):
        full_key = _concat(prefix, key)
        if key not in dst:
            dst[key] = value
            continue
        current = dst[key]
        if not merge and current is None and key in src_non_null:
            del dst[key]
        elif isinstance(value, dict):
            if isinstance(current, dict):
                _coalesce_tables(current, value, full_key, merge, warn)
            else:
                warn(f"warning: cannot overwrite table with non table for {full_key} "
                     f"({format_go_value(value)})")
        elif isinstance(current, dict) and value is not None:
            warn(f"warning: destination for {full_key} is a table. Ignoring non-table value "
                 f"({format_go_value(value)})")
    return dst


def _without_nulls(value: Any) -> Any:
    """``value`` without null map entries, at any depth of maps (a copy where that changes
    anything; lists are left alone, as by ``cleanNilValues``)."""
    if not isinstance(value, dict):
        return value
    out = {key: _without_nulls(item) for key, item in value.items() if item is not None}
    return value if len(out) == len(value) and all(
        out[key] is value[key] for key in out) else out


def _clean_nils(table: dict[str, Any]) -> None:
    """Helm's ``cleanNilValues``: drop null entries recursively, in place."""
    for key, value in list(table.items()):
        if value is None:
            del table[key]
        elif isinstance(value, dict):
            _clean_nils(value)
