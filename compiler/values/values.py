"""Values stage: the values every (environment, release) receives, and where each leaf came from.

Layers, weakest first (DESIGN.md, "Values of (env, release)"):
  1. the local chart's ``values.yaml`` (chart defaults; a user null deletes a default),
  2. every environment values file of the inheritance chain,
  3. ``features``, rendered from the features template for this environment,
  4. the release's own ``values:`` in the meshfile (addressing the chart directly),
  5. command-line ``--set`` family flags (addressing the environment's whole tree).

Merging follows Helm exactly (:mod:`compiler.syntax.helmvalues`). Provenance is not stored per leaf;
a :class:`ValueSet` keeps its layers (shared, never copied) and answers "who set this path?" by
looking through them strongest first, so merging costs nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..core.diagnostics import Diagnostics
from ..core.source import Span
from ..model.model import Environment, Release
from ..syntax.helmvalues import coalesce_values, merge_maps
from ..syntax.yamlsrc import Path, ValuesDoc

LayerKind = Literal["chart", "environment", "features", "release", "set"]
ENV_WIDE_KEYS = ("global", "features")  # top-level keys every chart receives as they are


@dataclass(frozen=True, slots=True)
class Layer:
    """One source of values. ``scope`` says what its paths address: the environment's whole tree
    (``env``) or the release's chart directly (``release``)."""

    kind: LayerKind
    doc: ValuesDoc
    scope: Literal["env", "release"]


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
            present, value = lookup(layer.doc.data, own)
            if present:
                found.append(Origin(layer, own, layer.doc.spans.get(own), value))
        return tuple(found)

    def chain(self, path: Path) -> tuple[Link, ...]:
        """Every layer that had a say on ``path``, strongest first, each with its effect:
        ``set`` (holds the value), ``null`` (a null there: deletes a chart default), ``list``
        (holds the whole list ``path`` indexes into: lists replace wholesale), ``cut`` (holds a
        non-map value above ``path``, replacing the whole subtree)."""
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
    node: Any = layer.doc.data
    for depth, part in enumerate(path):
        here = path[:depth]
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


def lookup(tree: Any, path: Path) -> tuple[bool, Any]:
    """(True, value) if ``path`` exists in ``tree`` (maps by key, lists by index), else (False, None)."""
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


def file_values(env: Environment) -> dict[str, Any]:
    """An environment's values files merged, root first (layer 2 alone)."""
    base: dict[str, Any] = {}
    for doc in env.values:
        base = merge_maps(base, doc.data) if base else doc.data
    return base


def environment_values(env: Environment, files: dict[str, Any], features: ValuesDoc | None,
                       sets: ValuesDoc | None) -> EnvValues:
    """The environment's merged values ``files`` (see :func:`file_values`), then its
    features, then the command-line flags."""
    layers = [Layer("environment", doc, "env") for doc in env.values]
    base = files
    if features is not None:
        layers.append(Layer("features", features, "env"))
        base = merge_maps(base, features.data)
    tree = base
    if sets is not None and sets.data:
        layers.append(Layer("set", sets, "env"))
        tree = merge_maps(base, sets.data)
    return EnvValues(env, tuple(layers), tree, base)


def env_view(tree: dict[str, Any], key: Path, diags: Diagnostics, span: Span,
             what: str) -> dict[str, Any]:
    """The part of an environment-wide tree one release sees: the subtree at ``key`` plus the
    environment-wide keys (global, features)."""
    present, sub = lookup(tree, key)
    if not present or sub is None:
        sub = {}
    elif not isinstance(sub, dict):
        diags.error(f"values key '{'.'.join(map(str, key))}' is {type(sub).__name__}, not a map, "
                    f"in {what}", span)
        sub = {}
    view = dict(sub)
    for name in ENV_WIDE_KEYS:
        if name in tree:
            view[name] = tree[name]
    return view


def release_values(release: Release, env_values: EnvValues, diags: Diagnostics) -> ValueSet:
    """Compute the values ``release``'s chart receives in ``env_values``' environment."""
    where = f"environment '{env_values.env.name}'"
    user = env_view(env_values.base, release.values_key, diags, release.span, where)
    layers: list[Layer] = []
    if release.chart.defaults is not None:
        layers.append(Layer("chart", release.chart.defaults, "release"))
    layers.extend(layer for layer in env_values.layers if layer.kind != "set")
    for doc in release.values:
        layers.append(Layer("release", doc, "release"))
        user = merge_maps(user, doc.data)
    sets = [layer for layer in env_values.layers if layer.kind == "set"]
    for layer in sets:
        layers.append(layer)
        user = merge_maps(user, env_view(layer.doc.data, release.values_key, diags,
                                         release.span, "the --set flags"))
    defaults = release.chart.defaults.data if release.chart.defaults is not None else {}
    values = coalesce_values(defaults, user)
    return ValueSet(env_values.env.name, release.name, release.values_key, tuple(layers), values)
