"""Resource bounds against hostile or broken input, and where they come from.

meshc runs in CI on pull requests whose authors should not control the machine, so every input
is bounded: file sizes (checked before reading), YAML documents after expanding aliases (nodes,
bytes, depth), templates (loop iterations and calls, output bytes, wall time) and the process's
memory. Limits come from built-in defaults, then the meshfile's ``limits:`` block (bounded by
:data:`CEILINGS`: a pull request cannot lift them further), then the command line
(``meshc --limit NAME=VALUE``, the operator's word, unbounded).

The limits in force live in a context variable, set for the duration of a command by the CLI
(:func:`session`) and updated by :func:`activate` once the meshfile is read; forked workers
inherit them. Library code asks :func:`current`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostics, MeshcError
from .source import span_from_marks

if TYPE_CHECKING:  # yaml is imported where the meshfile is read: `meshc render` may not need it
    from yaml.nodes import MappingNode, Node

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound, in bytes, counts or seconds (meshfile names in :data:`NAMES`)."""

    file_size: int = 16 * MIB          # any input file: meshfile, values, templates, --set-file
    yaml_nodes: int = 1_000_000        # nodes of one YAML document, aliases expanded
    yaml_bytes: int = 64 * MIB         # scalar bytes of one YAML document, aliases expanded
    yaml_depth: int = 200              # nesting of one YAML document
    template_steps: int = 1_000_000    # loop iterations + calls of one template render
    template_output: int = 16 * MIB    # characters one template render (or value) may produce
    template_seconds: float = 5.0      # wall time of one template render
    total_seconds: float = 120.0       # wall time of all template renders of one command
    memory: int = 2 * GIB              # address space a command may add (Linux: RLIMIT_AS)


DEFAULT = Limits()
# meshfile key → field; the CLI takes the same names (--limit templateSteps=5000000)
NAMES: Mapping[str, str] = {
    "fileSize": "file_size", "yamlNodes": "yaml_nodes", "yamlBytes": "yaml_bytes",
    "yamlDepth": "yaml_depth", "templateSteps": "template_steps",
    "templateOutput": "template_output", "templateSeconds": "template_seconds",
    "totalSeconds": "total_seconds", "memory": "memory",
}
# meshfile key → what it bounds, one line (the meshfile schema's hover text)
ABOUT: Mapping[str, str] = {
    "fileSize": "Largest input file meshc reads: meshfile, values, templates, --set-file.",
    "yamlNodes": "Most nodes in one YAML document, aliases expanded.",
    "yamlBytes": "Most scalar bytes in one YAML document, aliases expanded.",
    "yamlDepth": "Deepest nesting of one YAML document.",
    "templateSteps": "Most loop iterations and calls in one template render.",
    "templateOutput": "Most characters one template render (or value) may produce.",
    "templateSeconds": "Longest wall time of one template render, in seconds.",
    "totalSeconds": "Longest wall time of all template renders of one command, in seconds.",
    "memory": "Most address space a command may add (Linux).",
}
SIZES = frozenset({"file_size", "yaml_bytes", "template_output", "memory"})  # take units: 16Mi
# The most a meshfile may ask for; beyond, only the command line.
CEILINGS = Limits(file_size=256 * MIB, yaml_nodes=20_000_000, yaml_bytes=1 * GIB,
                  yaml_depth=1000, template_steps=50_000_000, template_output=256 * MIB,
                  template_seconds=120.0, total_seconds=1800.0, memory=16 * GIB)

_UNITS = {"": 1, "k": 1000, "ki": KIB, "m": 1000**2, "mi": MIB, "g": 1000**3, "gi": GIB}
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgG]i?)?[bB]?")
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"  # what allowEnv may list


class LimitError(MeshcError, ValueError):
    """A limit setting that cannot be read (unknown name, bad number)."""


def field_of(name: str) -> str:
    """The :class:`Limits` field of meshfile/CLI name ``name``; raises :class:`LimitError`."""
    if name in NAMES:
        return NAMES[name]
    from .diagnostics import did_you_mean

    hint = did_you_mean(name, NAMES) or f"known limits: {', '.join(NAMES)}"
    raise LimitError(f"unknown limit '{name}' ({hint})")


def parse_value(field: str, text: str) -> int | float:
    """``16Mi``, ``2G``, ``500000``, ``1.5`` (seconds) → a number; raises :class:`LimitError`."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise LimitError(f"'{text}' is not a number"
                         + (" or size (16Mi, 2Gi, 500k)" if field in SIZES else ""))
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    if unit and field not in SIZES:
        raise LimitError(f"'{text}': a count or seconds takes no unit")
    value = number * _UNITS[unit]
    if value <= 0:
        raise LimitError(f"'{text}' must be positive")
    return value if field.endswith("_seconds") else int(value)


def text_pattern(field: str) -> str:
    """A regular expression (whole text) of what :func:`parse_value` reads for ``field``, as
    text: sizes take a unit (``16Mi``), counts and seconds do not."""
    unit = r"(?:[kKmMgG]i?)?" if field in SIZES else ""
    return rf"\s*\d+(?:\.\d+)?\s*{unit}[bB]?\s*"


def describe(field: str, value: float | None = None) -> str:
    """``templateSteps = 1000000`` style text for messages (the meshfile name and value)."""
    name = next(key for key, f in NAMES.items() if f == field)
    value = getattr(current(), field) if value is None else value
    if field in SIZES:
        shown = next((f"{value // size} {unit}" for size, unit in ((GIB, "GiB"), (MIB, "MiB"),
                      (KIB, "KiB")) if value >= size and value % size == 0), f"{value} bytes")
    else:
        shown = f"{value:g}" if isinstance(value, float) else f"{value:,}"
    return f"limits.{name} = {shown}"


# --- the meshfile's `limits:` block ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MeshfileLimits:
    """The settings of a meshfile's ``limits:`` block (field → value), already checked."""

    values: tuple[tuple[str, int | float], ...] = ()


def read_limits(node: Node, file: str, diags: Diagnostics) -> MeshfileLimits:
    """Read ``limits: {templateSteps: 2000000, fileSize: 32Mi, …}``; problems go to ``diags``."""
    from yaml.nodes import MappingNode, ScalarNode
    if not isinstance(node, MappingNode):
        diags.error("limits must be a map (e.g. {templateSteps: 2000000, fileSize: 32Mi})",
                    span_from_marks(file, node.start_mark, node.end_mark))
        return MeshfileLimits()
    values = []
    for key_node, value_node in node.value:
        key_span = span_from_marks(file, key_node.start_mark, key_node.end_mark)
        span = span_from_marks(file, value_node.start_mark, value_node.end_mark)
        try:
            field = field_of(str(key_node.value))
            if not isinstance(value_node, ScalarNode):
                raise LimitError("must be a number")
            value = parse_value(field, str(value_node.value))
        except LimitError as exc:
            diags.error(f"limits: {exc}", key_span if "unknown" in str(exc) else span)
            continue
        ceiling = getattr(CEILINGS, field)
        if value > ceiling:
            diags.error(f"limits.{key_node.value} may be at most "
                        f"{describe(field, ceiling).split(' = ')[1]} in a meshfile", span,
                        help=f"only the command line goes beyond: meshc --limit "
                             f"{key_node.value}={value_node.value} …")
            continue
        values.append((field, value))
    return MeshfileLimits(tuple(values))


def read_allow_env(node: Node, file: str, diags: Diagnostics) -> tuple[str, ...]:
    """``allowEnv: [NAME, …]``: the process environment variables templates may read."""
    from yaml.nodes import MappingNode, ScalarNode
    names: list[str] = []
    items = getattr(node, "value", None)
    if not isinstance(items, list) or isinstance(node, MappingNode):
        diags.error("allowEnv must be a list of environment variable names",
                    span_from_marks(file, node.start_mark, node.end_mark))
        return ()
    for item in items:
        value = item.value if isinstance(item, ScalarNode) else None
        if not isinstance(value, str) or not re.fullmatch(ENV_NAME, value):
            diags.error(f"each item of allowEnv must be a variable name ({ENV_NAME})",
                        span_from_marks(file, item.start_mark, item.end_mark))
            continue
        names.append(value)
    return tuple(dict.fromkeys(names))


# --- the limits in force --------------------------------------------------------------------

_ACTIVE: ContextVar[Limits] = ContextVar("meshc_limits", default=DEFAULT)
_COMMAND_LINE: ContextVar[tuple[tuple[str, int | float], ...]] = \
    ContextVar("meshc_limits_cli", default=())
# (address space when the command began, the soft limit then): the memory limit adds to it
_MEMORY_BASE: ContextVar[tuple[int, int] | None] = ContextVar("meshc_memory_base", default=None)
_STARTED: ContextVar[float | None] = ContextVar("meshc_started", default=None)  # monotonic


def command_deadline() -> float | None:
    """When the command's template time (limits.totalSeconds) runs out: a monotonic time, the
    same clock in forked workers; None outside a command."""
    started = _STARTED.get()
    return None if started is None else started + current().total_seconds


def command_line() -> tuple[tuple[str, int | float], ...]:
    """The command line's ``--limit`` settings in force (field, value)."""
    return _COMMAND_LINE.get()


def current() -> Limits:
    """The limits in force in this context (defaults outside a command)."""
    return _ACTIVE.get()


def activate(meshfile: MeshfileLimits) -> Limits:
    """Put a meshfile's limits in force (under the command line's); returns them."""
    limits = replace(DEFAULT, **{**dict(meshfile.values), **dict(_COMMAND_LINE.get())})  # type: ignore[arg-type]
    _ACTIVE.set(limits)
    base = _MEMORY_BASE.get()
    if base is not None:
        _set_memory_limit(min(base[0] + limits.memory, base[1]))
    return limits


def parse_overrides(items: Iterator[str] | tuple[str, ...]) -> tuple[tuple[str, int | float], ...]:
    """``NAME=VALUE`` command-line settings; raises :class:`LimitError`."""
    result = []
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise LimitError(f"'{item}': write NAME=VALUE, e.g. templateSteps=5000000")
        field = field_of(name.strip())
        result.append((field, parse_value(field, text)))
    return tuple(result)


@contextmanager
def session(overrides: tuple[tuple[str, int | float], ...] = (),
            bound_memory: bool = True) -> Iterator[Limits]:
    """The scope of one command: command-line ``overrides`` over the defaults, the memory
    limit applied to this process (and so to the workers it forks), all undone at the end."""
    limits = replace(DEFAULT, **dict(overrides))  # type: ignore[arg-type]
    tokens = (_ACTIVE.set(limits), _COMMAND_LINE.set(overrides), _STARTED.set(time.monotonic()))
    saved = _get_memory_limit() if bound_memory else None
    size = _address_space() if saved is not None else None
    base = (size, _finite(saved[0])) if size is not None and saved is not None else None
    memory_token = _MEMORY_BASE.set(base)
    if base is not None:
        _set_memory_limit(min(base[0] + limits.memory, base[1]))
    try:
        yield limits
    finally:
        if saved is not None:
            _restore_memory_limit(saved)
        _MEMORY_BASE.reset(memory_token)
        _STARTED.reset(tokens[2])
        _COMMAND_LINE.reset(tokens[1])
        _ACTIVE.reset(tokens[0])


def _address_space() -> int | None:
    """This process's current virtual size (Linux /proc), the base the memory limit adds to."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _get_memory_limit() -> tuple[int, int] | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    return resource.getrlimit(resource.RLIMIT_AS)


def _finite(limit: int) -> int:
    import resource

    return 1 << 62 if limit == resource.RLIM_INFINITY else limit


def _set_memory_limit(total: int) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    total = min(total, _finite(hard))
    try:
        resource.setrlimit(resource.RLIMIT_AS, (total, hard))
    except (ValueError, OSError):  # pragma: no cover - a stricter limit is already set
        pass


def _restore_memory_limit(saved: tuple[int, int]) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, saved)
    except (ValueError, OSError):  # pragma: no cover
        pass


def read_safety(spec: Any, root: MappingNode, file: str, diags: Diagnostics) -> Any:
    """``spec`` (a :class:`~compiler.model.model.Spec`) with the meshfile's ``limits:`` and
    ``allowEnv:`` read from its top-level map ``root``."""
    from yaml.nodes import ScalarNode
    found = {key.value: value for key, value in root.value if isinstance(key, ScalarNode)}
    settings = read_limits(found["limits"], file, diags) if "limits" in found else MeshfileLimits()
    allow = read_allow_env(found["allowEnv"], file, diags) if "allowEnv" in found else ()
    return replace(spec, limits=settings, allow_env=allow)


def resource_exhausted(exc: BaseException) -> str:
    """The message for a command stopped by memory, recursion or a worker lost to them."""
    if isinstance(exc, MemoryError):
        return (f"out of memory: meshc stopped at its limit ({describe('memory')}); raise it "
                "with `meshc --limit memory=…` if the project really needs more")
    if isinstance(exc, RecursionError):
        return "input nested or recursing too deeply for meshc to follow (Python's recursion limit)"
    return (f"a worker process died ({exc}); it may have run out of memory "
            f"({describe('memory')}) or been killed")
