"""The values a blue-green release's slots and router receive in one environment.

Every slot starts from the release's values (the environment's, as for any release). Then:

* the **live** slot runs what the state file records for it (``bluegreen/<env>.yaml``): a
  version change in the values files does not reach it;
* the **idle** slot gets the environment's versions when they differ from the live slot's (a
  new version goes to the idle slot only); otherwise it keeps what the state records for it
  (after a switch, the slot that was live stays as it was, ready to switch back);
* each slot receives ``blueGreen: {slot, live}`` (and ``idleReplicas`` when it is idle and
  holds no new version, if the meshfile sets ``idleReplicas``); the router receives
  ``blueGreen: {liveSlot}`` and the release's values without its version keys (Helm's null
  deletes them), so that a new version never changes the router.

The layers are appended to the releases' own ``values:``, so ``explain`` shows where a slot's
version comes from and the plan's inputs digest covers the state file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..core.diagnostics import Diagnostics
from ..core.source import Span
from ..model.bluegreen import BlueGreenState
from ..model.model import SLOTS, Release
from ..syntax.helmvalues import merge_maps
from ..syntax.yamlsrc import Path, ValuesDoc
from .values import EnvValues, lookup, release_values


@dataclass(frozen=True, slots=True)
class SlotStatus:
    """Where a blue-green release stands in one environment."""

    group: str
    live: str                      # the live slot
    recorded: tuple[str, ...]      # the slots the state file records
    pending: bool                  # the idle slot carries versions the live one does not run
    versions: tuple[tuple[str, tuple[tuple[Path, Any], ...]], ...]  # slot → (key, version)

    @property
    def idle(self) -> str:
        return SLOTS[1 - SLOTS.index(self.live)]

    def versions_of(self, slot: str) -> dict[Path, Any]:
        """The versions ``slot`` runs here, by values path."""
        return dict(dict(self.versions).get(slot, ()))


def with_slot_layers(releases: Sequence[Release], env_values: EnvValues,
                     state: BlueGreenState, meshfile: str,
                     diags: Diagnostics) -> tuple[tuple[Release, ...], tuple[SlotStatus, ...]]:
    """``releases`` with every blue-green slot's and router's layers appended to its values,
    and the status of each blue-green release."""
    groups: dict[str, dict[str, Release]] = {}
    for release in releases:
        if release.slot is not None:
            groups.setdefault(release.slot.group, {})[release.slot.role] = release
    layered: dict[str, Release] = {}
    statuses = []
    for group, members in sorted(groups.items()):
        found = _group(group, members, env_values, state, meshfile, diags)
        if found is not None:
            layered.update(found[0])
            statuses.append(found[1])
    return tuple(layered.get(r.name, r) for r in releases), tuple(statuses)


def _group(group: str, members: dict[str, Release], env_values: EnvValues,
           state: BlueGreenState, meshfile: str,
           diags: Diagnostics) -> tuple[dict[str, Release], SlotStatus] | None:
    slot = members.get(SLOTS[0]) or members.get(SLOTS[1])
    if slot is None:
        return None
    record = state.record(group)
    live = record.live if record is not None else SLOTS[0]
    desired = release_values(slot, env_values, diags).values
    keys = _version_keys(slot, desired)
    running = {s: _versions(desired, record.values_of(s) if record else None, keys)
               for s in SLOTS}
    wanted = _versions(desired, None, keys)
    pending = running[live] != wanted
    where = (record.live_span if record is not None and record.live_span is not None
             else slot.slot.span if slot.slot is not None else slot.span)
    file = state.file if record is not None else meshfile
    out: dict[str, Release] = {}
    versions = []
    for role in SLOTS:
        member = members.get(role)
        if member is None or member.slot is None:
            continue
        is_live = role == live
        pin = record.values_of(role) if record is not None and (is_live or not pending) else None
        marker: dict[str, Any] = {"slot": role, "live": is_live}
        if not is_live and not pending and member.slot.idle_replicas is not None:
            marker["idleReplicas"] = member.slot.idle_replicas
        layers = [pin] if pin is not None else []
        layers.append(_doc(file, {"blueGreen": marker}, where))
        out[member.name] = replace(member, values=(*member.values, *layers))
        runs = running[role] if pin is not None else wanted
        versions.append((role, tuple(sorted(runs.items(), key=lambda kv: tuple(map(str, kv[0]))))))
    router = members.get("router")
    if router is not None:  # without the versions: a new version never changes the router
        unversioned: dict[str, Any] = {}
        for key in keys:
            unversioned = merge_maps(unversioned, _nested(key, None))
        declared = router.slot.span if router.slot is not None else router.span
        layers = [_doc(meshfile, unversioned, declared)] if unversioned else []
        layers.append(_doc(file, {"blueGreen": {"liveSlot": live}}, where))
        out[router.name] = replace(router, values=(*router.values, *layers))
    recorded = tuple(s for s, _ in record.recorded) if record is not None else ()
    return out, SlotStatus(group, live, recorded, pending, tuple(versions))


def _version_keys(release: Release, values: dict[str, Any]) -> tuple[Path, ...]:
    """The release's version keys present in ``values`` (exact paths; ``*`` matches a key)."""
    found: list[Path] = []

    def walk(value: Any, pattern: Path, path: Path) -> None:
        if not pattern:
            if value is not None and not isinstance(value, (dict, list)):
                found.append(path)
            return
        if not isinstance(value, dict):
            return
        head, *rest = pattern
        for key in (sorted(value, key=str) if head == "*" else [head] if head in value else []):
            walk(value[key], tuple(rest), (*path, key))

    for pattern in release.version_keys:
        walk(values, pattern, ())
    return tuple(sorted(set(found), key=lambda p: tuple(map(str, p))))


def _versions(desired: dict[str, Any], pin: ValuesDoc | None,
              keys: tuple[Path, ...]) -> dict[Path, Any]:
    values = merge_maps(desired, pin.data) if pin is not None else desired
    return {key: lookup(values, key)[1] for key in keys}


def _nested(path: Path, value: Any) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return value  # type: ignore[no-any-return]


def _doc(file: str, data: dict[str, Any], span: Span) -> ValuesDoc:
    spans: dict[Path, Span] = {}

    def walk(value: Any, path: Path) -> None:
        if path:
            spans[path] = span
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))

    walk(data, ())
    return ValuesDoc(file, data, spans)


def status_of(statuses: Sequence[SlotStatus], group: str) -> SlotStatus | None:
    return next((s for s in statuses if s.group == group), None)

