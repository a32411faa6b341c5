"""``meshc switch ENV RELEASE [--back]``: make a blue-green release's idle slot live.

The switch is an edit of the environment's committed state file, ``bluegreen/<env>.yaml``
(:mod:`compiler.model.bluegreen`), made with :mod:`compiler.syntax.roundtrip` (comments, order
and quoting kept): ``live:`` names the other slot, and each slot's entry records the versions
it runs now, so that the slot leaving traffic keeps running what it ran (ready for
``--back``) and a later version change reaches the idle slot only. After the edit, a render
shows the router changing; applying it moves the traffic.

Refused (every reason at once), unless ``force``:

* nothing of the release is deployed: the committed plan (``rendered/<env>/plan.json``) has no
  step for it (an error even with ``force``);
* the slot to make live is not in the committed plan, or its committed values are not the ones
  it would run (it was never rendered, reviewed and applied in this version);
* going forward, the slot to make live runs a version behind the live one (``--back`` exists
  for that); going back, the slot to make live is not the one that was live before (it holds
  a version that was never live).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..model.bluegreen import state_path
from ..model.model import SLOTS, Environment
from ..pipeline import Compiler, Prepared, find_environment, prepare, values_yaml
from ..syntax.roundtrip import REMOVE, Change, EditError, edit_text
from ..syntax.yamlsrc import Path as ValuePath
from ..values.bluegreen import SlotStatus
from ..values.values import release_values
from .versions import BEHIND, compare_versions

HEADER = ("# Blue-green state of {env}: the live slot of each blue-green release and the\n"
          "# versions each slot runs. `meshc switch` edits it; commit it (docs/topology.md).\n")


@dataclass(frozen=True, slots=True)
class Switch:
    """A switch worked out, nothing written: the state file's text before (None: no file) and
    after, the slots, and the refusals ``force`` overrode."""

    env: Environment
    release: str
    before: str                   # the live slot now
    after: str                    # the live slot after the switch
    file: str
    old_text: str | None
    new_text: str
    versions: tuple[tuple[str, str], ...]   # the new live slot's versions, (key, version)
    forced: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text


def plan_switch(compiler: Compiler, env_name: str, release: str, back: bool = False,
                force: bool = False) -> Switch:
    """Work out the switch of blue-green ``release`` in ``env_name`` without writing. Raises
    :class:`CompileError` when it is refused."""
    project = compiler.project
    env = find_environment(project, env_name)
    _blue_green(compiler, release)
    prepared = prepare(compiler, env)
    status = next((s for s in prepared.slots if s.group == release), None)
    if status is None:
        raise CompileError([Diagnostic("error", f"blue-green release '{release}' is not "
                                                f"deployed in environment '{env.name}' (its "
                                                "condition is false there)")])
    target = status.idle
    committed = _committed_plan(compiler, env)
    steps = {step.get("release") for step in committed} if committed is not None else set()
    if committed is None or release not in steps:
        raise CompileError([Diagnostic(
            "error", f"nothing of blue-green release '{release}' is deployed in "
                     f"'{env.name}': the committed plan has no step for it",
            help=f"render, review and apply it first (meshc render {env.name}; meshc apply "
                 f"{env.name}); then switch")])
    refusals = _refusals(compiler, prepared, status, target, back, steps)
    if refusals and not force:
        raise CompileError([Diagnostic("error", f"refusing to switch '{release}' in "
                                                f"'{env.name}' to {target}: {why}",
                                       help="--force switches anyway")
                            for why in refusals])
    return _edit(compiler, env, status, target, tuple(refusals), back)


def plan_record(compiler: Compiler, env_name: str, release: str) -> Switch:
    """Work out the recording of blue-green ``release`` in ``env_name`` as it stands, without
    switching or writing: ``live:`` and what the live slot runs, so that a later version change
    in the values files reaches the idle slot only. Raises :class:`CompileError`."""
    env = find_environment(compiler.project, env_name)
    _blue_green(compiler, release)
    status = next((s for s in prepare(compiler, env).slots if s.group == release), None)
    if status is None:
        raise CompileError([Diagnostic("error", f"blue-green release '{release}' is not "
                                                f"deployed in environment '{env.name}' (its "
                                                "condition is false there)")])
    return _edit(compiler, env, status, status.live, (), False, (status.live,))


def _blue_green(compiler: Compiler, name: str) -> None:
    """Raise unless ``name`` is a blue-green release (its router's name)."""
    releases = compiler.project.releases
    found = compiler.project.release(name)
    if found is not None and found.slot is not None and found.slot.is_router:
        return
    groups = sorted({r.slot.group for r in releases if r.slot is not None})
    if found is not None and found.slot is not None:
        hint = f"'{name}' is a slot of '{found.slot.group}': meshc switch ENV {found.slot.group}"
    else:
        hint = (f"blue-green releases: {', '.join(groups)}" if groups else
                "no release has strategy: {blueGreen: …} (docs/topology.md)")
    raise CompileError([Diagnostic("error", f"'{name}' is not a blue-green release", help=hint)])


def _committed_plan(compiler: Compiler, env: Environment) -> list[dict[str, object]] | None:
    path = f"{compiler.project.output.rstrip('/')}/{env.name}/plan.json"
    try:
        data = json.loads(compiler.files.read(path))
    except (OSError, ValueError):
        return None
    steps = data.get("steps") if isinstance(data, dict) else None
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else None


def _refusals(compiler: Compiler, prepared: Prepared, status: SlotStatus, target: str,
              back: bool, steps: set[object]) -> list[str]:
    release, env = status.group, prepared.env
    name = f"{release}-{target}"
    found = []
    slot = next((r for r in prepared.enabled if r.name == name), None)
    if name not in steps or slot is None:
        found.append(f"slot {name} was never deployed (the committed plan has no step for it)")
    else:
        values = release_values(slot, prepared.env_values, Diagnostics())
        folder = f"{compiler.project.output.rstrip('/')}/{env.name}/{name}/values.yaml"
        try:
            committed = compiler.files.read(folder)
        except OSError:
            committed = None
        if committed != values_yaml(values):
            found.append(f"slot {name} was never deployed with what it runs now ({folder} "
                         "differs: render, review and apply it first)")
    live, idle = status.versions_of(status.live), status.versions_of(target)
    if back:
        if status.pending or target not in status.recorded:
            found.append(f"{target} was not live before: it holds a version that was never "
                         f"live (switch without --back to make it live)")
    else:
        behind = [f"{_dotted(key)} {idle.get(key)} < {value}" for key, value in live.items()
                  if idle.get(key) is not None and value is not None
                  and compare_versions(str(idle[key]), str(value)) == BEHIND]
        if behind:
            found.append(f"{target} runs a version behind the live {status.live} "
                         f"({'; '.join(behind)}); to go back to it: --back")
    return found


def _edit(compiler: Compiler, env: Environment, status: SlotStatus, target: str,
          forced: tuple[str, ...], back: bool, slots: tuple[str, ...] = SLOTS) -> Switch:
    """The state file with ``target`` live and what ``slots`` run recorded where it does not
    say it yet. Going back, the entry of the slot leaving traffic is removed when it only
    repeats the values files' versions (it was written by the switch being undone)."""
    path = state_path(env.name)
    try:
        old: str | None = compiler.files.read(path)
    except FileNotFoundError:
        old = None
    changes = [Change((status.group, "live"), target, "")]
    recorded = set(status.recorded)
    for slot in slots:
        if back and slot == status.live and not status.pending:
            changes.append(Change((status.group, slot), REMOVE))
            continue
        for key, value in status.versions_of(slot).items():
            if value is None or isinstance(value, (dict, list)):
                continue
            if slot in recorded and _recorded(compiler, path, status.group, slot, key) == value:
                continue
            changes.append(Change((status.group, slot, *key), value))
    text = old if old is not None else HEADER.format(env=env.name)
    try:
        new = edit_text(text, changes)
    except EditError as exc:
        raise CompileError([Diagnostic("error", f"cannot edit {path}: {exc.message}",
                                       help=exc.help)]) from None
    versions = tuple((_dotted(k), str(v)) for k, v in status.versions_of(target).items())
    return Switch(env, status.group, status.live, target, path, old, new, versions, forced)


def _recorded(compiler: Compiler, path: str, group: str, slot: str, key: ValuePath) -> object:
    from ..syntax.keypath import lookup
    from ..syntax.yamlsrc import load_values_doc

    doc = load_values_doc(compiler.files.read(path), path)
    return lookup(doc.data, (group, slot, *key))[1]


def _dotted(key: ValuePath) -> str:
    return ".".join(map(str, key))


def switch_summary(switch: Switch) -> list[str]:
    """What the switch does, for people."""
    runs = ", ".join(f"{k} {v}" for k, v in switch.versions) or "its current values"
    if switch.before == switch.after:  # a record
        return [(f"{switch.release} in {switch.env.name}: live slot {switch.before} "
                 f"({switch.release}-{switch.before} runs {runs}) "
                 f"{'recorded' if switch.changed else 'already recorded'}")]
    lines = [(f"{switch.release} in {switch.env.name}: live slot {switch.before} -> "
             f"{switch.after} ({switch.release}-{switch.after} runs {runs})")]
    lines += [f"forced: {why}" for why in switch.forced]
    return lines
