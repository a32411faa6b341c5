"""Versions of every release in every environment, compared along the promotion order.

A release's versions are the values keys its ``versionKeys`` name (default ``image.tag``,
matched at the end of any path of the values its chart receives, ``global`` and ``features``
excepted) and, for a remote chart, the chart version: the environment's ``chartVersions:``
entry (inherited) or the release's ``version:``. Each environment with ``promotesFrom`` is
compared with its source, as semantic versions (:mod:`compiler.check.semver`, the comparator of
``meshc check``'s promotion-order rule): in sync, behind (promotable), ahead (an error),
unorderable (not semantic versions).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..check.semver import parse_semver
from ..core.diagnostics import Diagnostics
from ..core.source import Span
from ..model.graph import _promotion_chain, promotion_order
from ..model.load import load_meshfile
from ..model.model import SLOTS, Environment, Project, Release
from ..pipeline import Compiler, prepare
from ..syntax.yamlsrc import Path as ValuePath
from ..values.values import ENV_WIDE_KEYS, ValueSet, lookup, release_values

CHART = "chart"   # the key under which a remote chart's own version is listed

# states of a cell, compared with the environment's source
IN_SYNC, BEHIND, AHEAD, UNORDERABLE = "in-sync", "behind", "ahead", "unorderable"
NO_SOURCE, NOT_IN_SOURCE, DISABLED, UNSET = "no-source", "not-in-source", "disabled", "unset"
LIVE, IDLE = "live", "idle"   # a blue-green slot: what it runs, not compared (its release is)
MARKS = {IN_SYNC: "=", BEHIND: "<", AHEAD: ">", UNORDERABLE: "?", NOT_IN_SOURCE: "*",
         LIVE: "live", IDLE: "idle"}


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a release in one environment, and where it is set."""

    release: str
    key: str                    # dotted values path ("image.tag") or CHART
    path: ValuePath | None      # the path in the release's values; None for the chart version
    value: Any
    where: str                  # "file:line:col" of the value, or the meshfile key
    span: Span | None = None    # where it is set (values: the strongest layer setting it)

    @property
    def text(self) -> str:
        return str(self.value)


@dataclass(frozen=True, slots=True)
class EnvVersions:
    """An environment's releases and their versions."""

    env: Environment
    enabled: frozenset[str]
    versions: dict[tuple[str, str], Version]
    values: dict[str, ValueSet]
    live: dict[str, str] = field(default_factory=dict)   # blue-green slot → LIVE or IDLE


@dataclass(frozen=True, slots=True)
class Cell:
    release: str
    key: str
    env: str
    state: str
    version: Version | None
    source: str | None
    source_version: Version | None


@dataclass(frozen=True, slots=True)
class VersionTable:
    environments: tuple[Environment, ...]          # deployable, in promotion order
    rows: tuple[tuple[str, str], ...]              # (release, key)
    cells: dict[tuple[str, str, str], Cell]        # (release, key, env)

    def cell(self, release: str, key: str, env: str) -> Cell:
        return self.cells[(release, key, env)]


def compare_versions(mine: str, theirs: str) -> str:
    """IN_SYNC, BEHIND (``mine`` older), AHEAD or UNORDERABLE, by semver precedence."""
    if mine == theirs:
        return IN_SYNC
    a, b = parse_semver(mine), parse_semver(theirs)
    if a is None or b is None:
        return UNORDERABLE
    return IN_SYNC if a == b else BEHIND if a < b else AHEAD


def version_paths(values: Any, patterns: Sequence[ValuePath],
                  path: ValuePath = ()) -> Iterator[ValuePath]:
    """Every path of ``values`` ending in one of ``patterns`` (``*`` matches any key), holding a
    scalar; ``global`` and ``features`` are skipped."""
    if isinstance(values, dict):
        for key, value in values.items():
            if not path and key in ENV_WIDE_KEYS:
                continue
            yield from version_paths(value, patterns, (*path, key))
    elif isinstance(values, list):
        for index, value in enumerate(values):
            yield from version_paths(value, patterns, (*path, index))
    elif (values is not None and not isinstance(values, bool) and path
          and any(_ends_with(path, pattern) for pattern in patterns)):
        yield path


def _ends_with(path: ValuePath, pattern: ValuePath) -> bool:
    if not pattern or len(pattern) > len(path):
        return False
    tail = path[len(path) - len(pattern):]
    return all(p == "*" and isinstance(t, str) or p == t for t, p in zip(tail, pattern))


def dotted(path: ValuePath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part).replace(".", "\\.")
    return text


class _ChartSpans:
    """Where the meshfile sets chart versions (read again with spans: the model keeps values)."""

    def __init__(self, compiler: Compiler) -> None:
        name = compiler.project.root_file
        spec = load_meshfile(compiler.files.read(name), name, Diagnostics())
        self.envs = {e.name: {ref.name: text.span for ref, text in e.chart_versions}
                     for e in spec.environments}
        self.releases = {r.name: r.version.span if r.version else None for r in spec.releases}

    def where(self, env: Environment, release: Release) -> tuple[str, Span | None]:
        """Where ``env`` gets ``release``'s chart version: text for people, and the span."""
        for name in reversed(env.chain):
            span = self.envs.get(name, {}).get(release.name)
            if span is not None:
                return f"{span} (environments.{name}.chartVersions)", span
        span = self.releases.get(release.name)
        return (f"{span} (releases.{release.name}.version)" if span else "meshfile"), span


def environment_versions(compiler: Compiler, env: Environment,
                         spans: _ChartSpans | None = None) -> EnvVersions:
    """The versions of every release deployed in ``env`` (values only: nothing is rendered)."""
    spans = spans or _ChartSpans(compiler)
    prepared = prepare(compiler, env)
    diags = Diagnostics()
    versions: dict[tuple[str, str], Version] = {}
    value_sets: dict[str, ValueSet] = {}
    for release in prepared.enabled:
        if not release.chart.local:
            version = env.chart_version(release)
            if version is not None:
                where, span = spans.where(env, release)
                versions[(release.name, CHART)] = Version(release.name, CHART, None, version,
                                                          where, span)
        keys = release.version_keys
        if release.slot is not None and release.slot.is_router:
            # a blue-green release's versions are the environment's (the idle slot gets them
            # when they are new): what promote compares and edits; its slots show what runs
            plain = compiler.project.release(f"{release.slot.group}-{SLOTS[0]}")
            if plain is None:
                continue
            values, keys = release_values(plain, prepared.env_values, diags), plain.version_keys
        else:
            values = release_values(release, prepared.env_values, diags)
        value_sets[release.name] = values
        for path in version_paths(values.values, keys):
            origin = values.origin(path)
            where = str(origin.span) if origin and origin.span else "?"
            _, value = lookup(values.values, path)
            versions[(release.name, dotted(path))] = Version(
                release.name, dotted(path), path, value, where, origin.span if origin else None)
    diags.raise_if_errors()
    live = {f"{s.group}-{slot}": LIVE if slot == s.live else IDLE
            for s in prepared.slots for slot in SLOTS}
    return EnvVersions(env, frozenset(r.name for r in prepared.enabled), versions, value_sets,
                       live)


def version_table(compiler: Compiler, releases: Sequence[str] = (),
                  computed: dict[str, EnvVersions] | None = None) -> VersionTable:
    """Every (release, version key) × deployable environment, in promotion order (with
    ``computed``: its environments only)."""
    project = compiler.project
    envs = tuple(e for e in (project.environment(n) for n in promotion_order(project))
                 if e is not None and (computed is None or e.name in computed))
    spans = _ChartSpans(compiler)
    per_env = computed or {e.name: environment_versions(compiler, e, spans) for e in envs}
    wanted = set(releases)
    rows: list[tuple[str, str]] = []
    for release in project.releases:
        if wanted and release.name not in wanted:
            continue
        keys = {key for ev in per_env.values() for (name, key) in ev.versions
                if name == release.name}
        rows += [(release.name, key) for key in sorted(keys, key=lambda k: (k != CHART, k))]
    cells = {}
    for name, key in rows:
        for env in envs:
            cells[(name, key, env.name)] = _cell(name, key, env, per_env)
    return VersionTable(envs, tuple(rows), cells)


def _cell(release: str, key: str, env: Environment, per_env: dict[str, EnvVersions]) -> Cell:
    mine = per_env[env.name]
    source = env.promotes_from
    version = mine.versions.get((release, key))
    theirs = per_env[source].versions.get((release, key)) if source in per_env else None
    if release not in mine.enabled:
        state = DISABLED
    elif version is None:
        state = UNSET
    elif release in mine.live:
        state = mine.live[release]
    elif source is None:
        state = NO_SOURCE
    elif theirs is None:
        state = NOT_IN_SOURCE
    else:
        state = compare_versions(version.text, theirs.text)
    return Cell(release, key, env.name, state, version, source, theirs)


# --- presentation ---------------------------------------------------------------------------

def format_table(table: VersionTable, project: Project,
                 paint: Callable[[str, str], str] = lambda text, role: text) -> str:
    """The table for people: a column per environment, a mark per cell, then what to do."""
    if not table.rows:
        return "no versions found (versionKeys: see README, \"meshc versions\")\n"
    names = [e.name for e in table.environments]
    head = ["release", "version", *names]
    body: list[list[Any]] = []
    for release, key in table.rows:
        body.append([release, key, *(_cell_text(table.cell(release, key, n)) for n in names)])
    widths = [max(len(row[i][0] if isinstance(row[i], tuple) else row[i])
                  for row in [head, *body]) for i in range(len(head))]
    lines = ["promotion order: " + "; ".join(_promotion_chain(project)), ""]
    lines.append(_row(head, widths, paint, title=True))
    for row in body:
        lines.append(_row(row, widths, paint))
    lines.append("")
    lines.append("= in sync with its source   < behind it: promotable   > ahead of it: an error")
    lines.append("? not semantic versions   * its source does not deploy or set it")
    if any(c.state in (LIVE, IDLE) for c in table.cells.values()):
        lines.append("live, idle: a blue-green slot, what it runs (meshc switch makes the idle "
                     "one live)")
    lines += _summary(table, paint)
    return "\n".join(lines) + "\n"


_ROLES = {IN_SYNC: "good", BEHIND: "warn", AHEAD: "bad", UNORDERABLE: "bad", DISABLED: "dim",
          UNSET: "dim"}


def _cell_text(cell: Cell) -> tuple[str, str]:
    if cell.state == DISABLED:
        return "disabled", cell.state
    if cell.state == UNSET:
        return "unset", cell.state
    assert cell.version is not None
    mark = MARKS.get(cell.state)
    return (f"{cell.version.text} {mark}" if mark else cell.version.text), cell.state


def _row(cells: list[Any], widths: list[int], paint: Callable[[str, str], str],
         title: bool = False) -> str:
    parts = []
    for cell, width in zip(cells, widths):
        text, state = cell if isinstance(cell, tuple) else (cell, "")
        padded = text.ljust(width)
        parts.append(paint(padded, "title" if title else _ROLES.get(state, "")))
    return "  ".join(parts).rstrip()


def _summary(table: VersionTable, paint: Callable[[str, str], str]) -> list[str]:
    lines = []
    groups = [(BEHIND, "promotable (meshc promote SOURCE TARGET):", "warn"),
              (AHEAD, "ahead of their source (errors):", "bad"),
              (UNORDERABLE, "cannot be ordered (not semantic versions):", "bad")]
    for state, title, role in groups:
        found = [c for c in table.cells.values() if c.state == state]
        if not found:
            continue
        lines += ["", paint(title, role)]
        order = {e.name: i for i, e in enumerate(table.environments)}
        rows = {r: i for i, r in enumerate(table.rows)}
        for c in sorted(found, key=lambda c: (order[c.env], rows[(c.release, c.key)])):
            assert c.version is not None and c.source_version is not None
            change = (f"{c.version.text} -> {c.source_version.text}" if state == BEHIND else
                      f"{c.version.text} (source: {c.source_version.text})")
            lines.append(f"  {c.source} -> {c.env}: {c.release} {c.key} {change}")
    return lines


def table_json(table: VersionTable) -> str:
    data = {
        "apiVersion": "meshc/v1", "kind": "Versions",
        "promotionOrder": [e.name for e in table.environments],
        "environments": [{"name": e.name, "promotesFrom": e.promotes_from,
                          "protected": e.protected} for e in table.environments],
        "versions": [
            {"release": c.release, "key": c.key, "environment": c.env, "state": c.state,
             "version": c.version.text if c.version else None,
             "setAt": c.version.where if c.version else None,
             "source": c.source,
             "sourceVersion": c.source_version.text if c.source_version else None}
            for release, key in table.rows for e in table.environments
            for c in [table.cell(release, key, e.name)]],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
