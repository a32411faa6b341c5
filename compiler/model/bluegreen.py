"""Blue-green state: which slot of each blue-green release is live in an environment, and what
each slot runs, read from the committed ``bluegreen/<env>.yaml`` (docs/topology.md).

```yaml
weather-agent:
  live: blue                 # the slot the router sends traffic to
  blue: {image: {tag: "1.4.0"}}    # the versions each slot runs (its chart's values keys)
  green: {image: {tag: "1.5.0"}}
```
``meshc switch`` edits it (comments, order and quoting kept); people may edit it by hand. A
missing file, or a release missing from it, means: blue is live and runs the environment's
versions, and green was never deployed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics, did_you_mean
from ..core.files import ProjectFiles
from ..core.source import Span
from ..syntax.yamlsrc import Path, ValuesDoc, load_values_doc
from .model import SLOTS, Release

STATE_FOLDER = "bluegreen"
STATE_KEYS = ("live", *SLOTS)


def state_path(env: str) -> str:
    """The project-relative state file of environment ``env``."""
    return f"{STATE_FOLDER}/{env}.yaml"


@dataclass(frozen=True, slots=True)
class SlotRecord:
    """One blue-green release's entry: the live slot and each recorded slot's values (the
    versions it runs, addressing its chart directly), as a values layer with spans."""

    group: str
    live: str
    live_span: Span | None
    recorded: tuple[tuple[str, ValuesDoc], ...]     # slot → its values, in SLOTS order

    def values_of(self, slot: str) -> ValuesDoc | None:
        return dict(self.recorded).get(slot)

    @property
    def idle(self) -> str:
        return SLOTS[1 - SLOTS.index(self.live)]


@dataclass(frozen=True, slots=True)
class BlueGreenState:
    """The state file of one environment: its path, its text (None: no file) and its entries."""

    file: str
    text: str | None
    records: tuple[SlotRecord, ...] = ()

    def record(self, group: str) -> SlotRecord | None:
        return next((r for r in self.records if r.group == group), None)


def groups_of(releases: Iterable[Release]) -> dict[str, Span]:
    """The blue-green releases among ``releases`` (by their routers), with their spans."""
    return {r.slot.group: r.slot.span for r in releases if r.slot is not None
            and r.slot.is_router}


def load_state(files: ProjectFiles, env: str, groups: Mapping[str, Span]) -> BlueGreenState:
    """``env``'s blue-green state. Raises :class:`CompileError` with every problem: a file
    that is not a map of blue-green releases to ``{live, blue, green}``."""
    path = state_path(env)
    if not groups:
        return BlueGreenState(path, None)
    try:
        text = files.read(path)
    except FileNotFoundError:
        return BlueGreenState(path, None)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CompileError([Diagnostic("error", f"cannot read blue-green state {path}: {why}",
                                       next(iter(groups.values())))]) from None
    doc = load_values_doc(text, path)
    diags = Diagnostics()
    records = []
    for group, entry in doc.data.items():
        span = _key_span(path, text, str(group)) or doc.spans.get((group,))
        if group not in groups:
            diags.error(f"'{group}' is not a blue-green release (in the blue-green state)", span,
                        did_you_mean(str(group), groups) or
                        f"blue-green releases: {', '.join(sorted(groups)) or 'none'}")
            continue
        if not isinstance(entry, dict):
            diags.error(f"the blue-green state of '{group}' must be a map: {{live: blue|green, "
                        "blue: {…}, green: {…}}", span)
            continue
        record = _record(doc, group, entry, diags)
        if record is not None:
            records.append(record)
    diags.raise_if_errors()
    return BlueGreenState(path, text, tuple(sorted(records, key=lambda r: r.group)))


def _record(doc: ValuesDoc, group: str, entry: dict[str, Any],
            diags: Diagnostics) -> SlotRecord | None:
    for key in entry:
        if key not in STATE_KEYS:
            diags.error(f"unknown key '{key}' in the blue-green state of '{group}'",
                        doc.spans.get((group, key)),
                        did_you_mean(str(key), STATE_KEYS) or f"known keys: {', '.join(STATE_KEYS)}")
    live = entry.get("live", SLOTS[0])
    if live not in SLOTS:
        diags.error(f"the live slot of '{group}' is {live!r}: blue or green",
                    doc.spans.get((group, "live")), "live: blue, or live: green")
    recorded = []
    for slot in SLOTS:
        data = entry.get(slot)
        if data is None:
            continue
        if not isinstance(data, dict):
            diags.error(f"'{group}.{slot}' must be a map of the values the slot runs, "
                        "e.g. {image: {tag: \"1.4.0\"}}", doc.spans.get((group, slot)))
            continue
        recorded.append((slot, sub_doc(doc, (group, slot), data)))
    if live not in SLOTS:
        return None
    return SlotRecord(group, live, doc.spans.get((group, "live")), tuple(recorded))


def _key_span(file: str, text: str, key: str) -> Span | None:
    """Where top-level key ``key`` is written (plain or quoted), if it is."""
    for number, line in enumerate(text.split("\n"), 1):
        for written in (key, f'"{key}"', f"'{key}'"):
            if line.startswith(written + ":"):
                return Span(file, number, 1, number, len(written) + 1)
    return None


def sub_doc(doc: ValuesDoc, at: Path, data: dict[str, Any]) -> ValuesDoc:
    """The part of ``doc`` at ``at`` (whose data is ``data``) as a values document of its own,
    its spans those of the file."""
    spans: dict[Path, Span] = {}

    def walk(value: Any, path: Path) -> None:
        span = doc.spans.get((*at, *path))
        if path and span is not None:
            spans[path] = span
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    walk(data, ())
    return ValuesDoc(doc.file, data, spans)

