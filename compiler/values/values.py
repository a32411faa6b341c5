"""Values stage: the values every (environment, release) receives, and where each leaf came from.

Layers, weakest first (DESIGN.md, "Values of (env, release)"):
  1. the local chart's ``values.yaml`` (chart defaults; a user null deletes a default),
  2. every environment values file of the inheritance chain,
  3. ``features``, rendered from the features template for this environment,
  4. the release's own ``values:`` in the meshfile (addressing the chart directly),
  5. command-line ``--set`` family flags (addressing the environment's whole tree).

Merging follows Helm exactly (:mod:`compiler.syntax.helmvalues`): layers 2 to 4 are the user's
values files, and the flags are parsed *into* them, as Helm's ``MergeValues`` parses them into
the ``-f`` files (:mod:`compiler.values.flags`), before the chart's defaults go under them.
Provenance is not stored per leaf; a :class:`ValueSet` keeps its layers (shared, never copied)
and answers "who set this path?" by looking through them strongest first, so merging costs
nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..core.diagnostics import Diagnostics
from ..core.source import COMMAND_LINE, Span
from ..model.model import Environment, Release
from ..syntax.helmvalues import coalesce_values, merge_maps
from ..syntax.keypath import blocked_at, format_key_path, lookup
from ..syntax.yamlsrc import Path, ValuesDoc
from .flags import FlagFailure, SetFlags, apply_flags, flag_diagnostic

LayerKind = Literal["chart", "environment", "features", "release", "set"]
ENV_WIDE_KEYS = ("global", "features")  # top-level keys every chart receives as they are


@dataclass(frozen=True, slots=True)
class Layer:
    """One source of values. ``scope`` says what its paths address: the environment's whole tree
    (``env``) or the release's chart directly (``release``). ``writes``, for the command line,
    are the paths its flags store values at: they are parsed into the values below them, so
    the rest of ``doc.data`` (a list a flag indexes into, a map it descends into) is theirs."""

    kind: LayerKind
    doc: ValuesDoc
    scope: Literal["env", "release"]
    writes: frozenset[Path] | None = None

    def holds(self, path: Path) -> tuple[bool, Any]:
        """(True, value) if this layer has a say on exactly ``path``, else (False, None)."""
        present, value = lookup(self.doc.data, path)
        if not present or self.writes is None or _reaches(path, self.writes):
            return present, value
        return False, None


def _reaches(path: Path, writes: frozenset[Path]) -> bool:
    """Whether a flag writes ``path``, a path above it or a path below it."""
    return any(path[:depth] in writes for depth in range(1, len(path) + 1)) or any(
        write[:len(path)] == path for write in writes)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was set: the layer and the span of the value in its file."""

    layer: Layer
    path: Path
    span: Span | None
    value: Any


@dataclass(frozen=True, slots=True)
class EnvValues:
    """An environment's computed values tree (layers 2, 3 and 5), shared by all its releases."""

    env: Environment
    layers: tuple[Layer, ...]       # environment files, features, --set flags
    tree: dict[str, Any]            # everything merged: what conditions look at
    base: dict[str, Any]            # without --set flags
    flags: SetFlags | None = None   # the flags, to parse into each release's values
    failure: FlagFailure | None = None  # a flag Helm refuses on ``base`` (see environment_values)


@dataclass(frozen=True, slots=True)
class ValueSet:
    """The values one release's chart receives in one environment, with their layers."""

    env: str
    release: str
    values_key: Path
    layers: tuple[Layer, ...]       # weakest first
    values: dict[str, Any]

    def layer_path(self, layer: Layer, path: Path) -> Path:
        """Translate a path of the release's values into ``layer``'s own addressing."""
        if layer.scope == "release" or (path and path[0] in ENV_WIDE_KEYS):
            return path
        return (*self.values_key, *path)

    def origins(self, path: Path) -> tuple[Origin, ...]:
        """Every layer that holds ``path``, strongest first (the first one set the value)."""
        found = []
        for layer in reversed(self.layers):
            own = self.layer_path(layer, path)
            present, value = layer.holds(own)
            if present:
                found.append(Origin(layer, own, layer.doc.spans.get(own), value))
        return tuple(found)

    def chain(self, path: Path) -> tuple[Link, ...]:
        """Every layer that had a say on ``path``, strongest first, each with its effect:
        ``set`` (holds the value), ``null`` (a null there: deletes a chart default), ``list``
        (holds the whole list ``path`` indexes into: lists replace wholesale), ``cut`` (holds a
        non-map value above ``path``, or a flag sets a whole map there, replacing the subtree)."""
        links = []
        for layer in reversed(self.layers):
            link = _link(layer, self.layer_path(layer, path))
            if link is not None:
                links.append(link)
        return tuple(links)

    def origin(self, path: Path) -> Origin | None:
        """The layer that set the final value at ``path`` (None if nothing did)."""
        origins = self.origins(path)
        return origins[0] if origins else None


@dataclass(frozen=True, slots=True)
class Link:
    """One layer's say on a path (see :meth:`ValueSet.chain`)."""

    layer: Layer
    path: Path          # the path found in the layer (its own addressing; maybe a prefix)
    span: Span | None
    value: Any
    effect: Literal["set", "null", "list", "cut"]


def _link(layer: Layer, path: Path) -> Link | None:
    if layer.writes is not None:
        return _flag_link(layer, layer.writes, path)
    return _link_below(layer, path, 0, layer.doc.data)


def _flag_link(layer: Layer, writes: frozenset[Path], path: Path) -> Link | None:
    """A command-line layer's say: none on what its flags only descend into (a list element
    they do not write keeps the value below), a layer's say below a path a flag writes."""
    node: Any = layer.doc.data
    for depth, part in enumerate(path):
        here = path[:depth]
        if depth and here in writes:
            link = _link_below(layer, path, depth, node)
            if link is None and isinstance(node, dict):  # --set-json a={...} replaces a map
                link = Link(layer, here, layer.doc.spans.get(here), node, "cut")
            return link
        present, node = lookup(node, (part,))
        if not present:
            return None
    if not _reaches(path, writes):
        return None
    return Link(layer, path, layer.doc.spans.get(path), node, "null" if node is None else "set")


def _link_below(layer: Layer, path: Path, start: int, node: Any) -> Link | None:
    """A layer's say on ``path``, walking from ``node`` (the layer's value at ``path[:start]``)."""
    for depth in range(start, len(path)):
        here, part = path[:depth], path[depth]
        if isinstance(node, list) and depth and isinstance(part, int):
            present, element = lookup(node, path[depth:])
            span = layer.doc.spans.get(path) if present else None
            return Link(layer, here, span or layer.doc.spans.get(here),
                        element if present else node, "list")
        if depth and not isinstance(node, dict):
            return Link(layer, here, layer.doc.spans.get(here), node,
                        "null" if node is None else "cut")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return Link(layer, path, layer.doc.spans.get(path), node, "null" if node is None else "set")


def file_values(env: Environment) -> dict[str, Any]:
    """An environment's values files merged, root first (layer 2 alone)."""
    base: dict[str, Any] = {}
    for doc in env.values:
        base = merge_maps(base, doc.data) if base else doc.data
    return base


def environment_values(env: Environment, files: dict[str, Any], features: ValuesDoc | None,
                       sets: SetFlags | None) -> EnvValues:
    """The environment's merged values ``files`` (see :func:`file_values`), then its
    features, then the command-line flags parsed into them.

    Helm judges a flag against a release's values, and a release's own values may make a flag
    parse that the environment's alone refuse (they replace the value its path crosses). So a
    refusal here is only noted (``failure``); each release reports its own. Conditions then read
    the flags merged over the environment's values instead.
    """
    layers = [Layer("environment", doc, "env") for doc in env.values]
    base = files
    if features is not None:
        layers.append(Layer("features", features, "env"))
        base = merge_maps(base, features.data)
    if sets is None:
        return EnvValues(env, tuple(layers), base, base)
    layers.append(Layer("set", sets.doc, "env", sets.writes))
    tree, failure = apply_flags(base, sets)
    if failure is not None:
        tree = merge_maps(base, sets.doc.data)
    return EnvValues(env, tuple(layers), tree, base, sets, failure)


def _flag_failed(failure: FlagFailure, layers: list[Layer], values_key: Path, sets: SetFlags,
                 where: str, diags: Diagnostics) -> None:
    """Report a flag Helm refuses on the values of ``layers`` (``where`` says whose), naming
    the value its path crosses and the layer that set it."""
    crossed = failure.error.path
    notes = [_crossed(crossed, layers, values_key)] if crossed is not None else []
    notes.append(where)
    diags.items.append(flag_diagnostic(failure, tuple(notes)))
    diags.sources[COMMAND_LINE] = sets.source


def _crossed(path: Path, layers: list[Layer], values_key: Path) -> str:
    """Where the values below the flags hold ``path`` (whole-tree addressing)."""
    for layer in reversed(layers):
        own = path
        if layer.scope == "release":
            if path[:len(values_key)] != values_key:
                continue
            own = path[len(values_key):]
        present, value = lookup(layer.doc.data, own)
        if present and layer.kind not in ("set", "chart"):  # flags go in before the chart
            span = layer.doc.spans.get(own)
            at = f", set at {span}" if span is not None else ""
            return f"'{format_key_path(path)}' is {_kind_of(value)} in the values{at}"
    return f"'{format_key_path(path)}' is not a map or list in the values"


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a map"


def describe_value(value: Any) -> str:
    """A value in a few words for a message: ``a bool (true)``, ``a list of 3``, ``a map``."""
    if isinstance(value, bool):
        return f"a bool ({str(value).lower()})"
    if isinstance(value, dict):
        return f"a map of {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"a string ({shown!r})"
    return f"{'an' if type(value).__name__[0] in 'aeiou' else 'a'} {type(value).__name__} ({value!r})"


def env_origin(env_values: EnvValues, path: Path) -> Span | None:
    """Where the value at ``path`` of an environment's tree was set: the strongest layer (an
    environment's values file, the features template, a flag) that holds it."""
    for layer in reversed(env_values.layers):
        present, _ = layer.holds(path)
        if present:
            return layer.doc.spans.get(path) or Span(layer.doc.file, 1, 1)
    return None


def set_at(env_values: EnvValues | None, path: Path) -> tuple[tuple[str, Span], ...]:
    """Where ``path`` was set, as a diagnostic's ``related`` place (none if unknown)."""
    span = env_origin(env_values, path) if env_values is not None else None
    return ((f"{format_key_path(path)} is set here", span),) if span is not None else ()


def env_view(tree: dict[str, Any], key: Path, diags: Diagnostics, span: Span,
             what: str, env_values: EnvValues | None = None) -> dict[str, Any]:
    """The part of an environment-wide tree one release sees: the subtree at ``key`` plus the
    environment-wide keys (global, features). A ``key`` that runs into a scalar or a list, or
    names one, is an error located on the release (and noted where that value was set)."""
    present, sub = lookup(tree, key)
    blocked = blocked_at(tree, key)
    if blocked is not None:
        _, found = lookup(tree, blocked)
        diags.error(f"values key '{format_key_path(key)}' goes through "
                    f"'{format_key_path(blocked)}', which is {describe_value(found)}, not a "
                    f"map, in {what}", span, related=set_at(env_values, blocked))
        sub = {}
    elif not present or sub is None:
        sub = {}
    elif not isinstance(sub, dict):
        diags.error(f"values key '{format_key_path(key)}' is {describe_value(sub)}, not a map, "
                    f"in {what}", span, related=set_at(env_values, key))
        sub = {}
    view = dict(sub)
    for name in ENV_WIDE_KEYS:
        if name in tree:
            view[name] = tree[name]
    return view


def release_values(release: Release, env_values: EnvValues, diags: Diagnostics) -> ValueSet:
    """Compute the values ``release``'s chart receives in ``env_values``' environment."""
    where = f"environment '{env_values.env.name}'"
    user = env_view(env_values.base, release.values_key, diags, release.span, where, env_values)
    layers: list[Layer] = []
    if release.chart.defaults is not None:
        layers.append(Layer("chart", release.chart.defaults, "release"))
    layers.extend(layer for layer in env_values.layers if layer.kind != "set")
    for doc in release.values:
        layers.append(Layer("release", doc, "release"))
        user = merge_maps(user, doc.data)
    if env_values.flags is not None:
        layers.extend(layer for layer in env_values.layers if layer.kind == "set")
        user = _with_flags(release, env_values, env_values.flags, user, layers, diags)
    defaults = release.chart.defaults.data if release.chart.defaults is not None else {}
    values = coalesce_values(defaults, user)
    return ValueSet(env_values.env.name, release.name, release.values_key, tuple(layers), values)


def _with_flags(release: Release, env_values: EnvValues, sets: SetFlags, user: dict[str, Any],
                layers: list[Layer], diags: Diagnostics) -> dict[str, Any]:
    """The release's user values ``user`` with the flags parsed into them.

    The flags address the environment's whole tree, so they are parsed into that tree with the
    release's own values put in place (the environment's tree already has them parsed in when
    the release has no values of its own and Helm took them).
    """
    where = f"environment '{env_values.env.name}'"
    if not release.values and env_values.failure is None:
        return env_view(env_values.tree, release.values_key, diags, release.span, where)
    tree, failure = apply_flags(_put_view(env_values.base, release.values_key, user), sets)
    if failure is not None:
        _flag_failed(failure, layers, release.values_key, sets,
                     _whose(failure, env_values.failure, release.name, where), diags)
    return env_view(tree, release.values_key, diags, release.span, where)


def _whose(failure: FlagFailure, known: FlagFailure | None, release: str, where: str) -> str:
    """Whose values refuse the flag: the environment's (said once for all its releases), or,
    where the release's own values make the difference, the release's."""
    same = known is not None and (known.flag, known.error.message, known.error.path) == (
        failure.flag, failure.error.message, failure.error.path)
    return f"in {where}" if same else f"for release '{release}' in {where}"


def _put_view(tree: dict[str, Any], key: Path, view: dict[str, Any]) -> dict[str, Any]:
    """The tree whose :func:`env_view` at ``key`` is ``view``: ``tree`` with the view's
    environment-wide keys at the top and the rest at ``key``."""
    if not key:
        return dict(view)
    out = dict(tree)
    for name in ENV_WIDE_KEYS:
        if name in view:
            out[name] = view[name]
    return _put(out, key, {k: v for k, v in view.items() if k not in ENV_WIDE_KEYS})


def _put(tree: dict[str, Any], key: Path, value: Any) -> dict[str, Any]:
    """``tree`` with ``value`` at ``key``, copying the maps on the way (a non-map on the way,
    already reported by :func:`env_view`, becomes a map)."""
    out = dict(tree)
    head = key[0]
    if len(key) == 1:
        out[head] = value
    else:
        inner = out.get(head)
        out[head] = _put(inner if isinstance(inner, dict) else {}, key[1:], value)
    return out
