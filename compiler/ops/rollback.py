"""``meshc history`` and ``meshc rollback``: a release's revisions, and going back to them.

A rollback is planned first (:func:`plan_rollback`): every named release (default: every
release of the environment's committed plan) to ``--to-revision N`` or to its previous good
revision (the latest ``deployed`` or ``superseded`` one before the current), as ``helm history``
shows. The result is a :class:`~compiler.plan.plan.Plan` of ``helm rollback`` steps whose waves
are the plan's in reverse (dependents first), run by :func:`compiler.ops.apply.execute` like an
apply: a failed wave stops the rest, and the summary says what ran.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..core.diagnostics import CompileError, Diagnostic
from ..core.process import Runner
from ..plan.plan import Plan, Step
from .apply import run_bounded
from .live import (
    LiveEnvironment,
    LiveOptions,
    LiveRelease,
    Revision,
    is_unreachable,
    read_history,
    scope,
    select_releases,
    unreachable_diagnostic,
)

GOOD = ("deployed", "superseded")


@dataclass(frozen=True, slots=True)
class RollbackTarget:
    release: str
    current: Revision
    target: Revision


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    plan: Plan                                  # helm rollback steps, dependents first
    targets: tuple[RollbackTarget, ...]         # in the order they run
    left: tuple[str, ...] = ()                  # releases not rolled back, and why


def history_of(plan: Plan, release: str, options: LiveOptions, runner: Runner) -> LiveRelease:
    """The revisions of ``release`` (which the plan must deploy). Raises :class:`CompileError`
    when helm fails or has no history of it."""
    step = select_releases(plan, [release]).steps[0]
    live = read_history(plan, step, options, runner)
    if live.error is not None:
        if is_unreachable(live.error):
            raise CompileError([unreachable_diagnostic(LiveEnvironment(plan, (), live.error))])
        raise CompileError([Diagnostic(
            "error", f"helm history {release} failed in '{plan.environment}': {live.error}")])
    if not live.revisions:
        raise CompileError([Diagnostic(
            "error", f"release '{release}' in '{plan.environment}' (namespace "
                     f"{step.namespace}): no history: it was never deployed there",
            help=f"deploy it with `meshc apply {plan.environment}`")])
    return live


def plan_rollback(plan: Plan, releases: Sequence[str], to_revision: int | None,
                  options: LiveOptions, runner: Runner) -> RollbackPlan:
    """The rollback of ``releases`` as a plan of ``helm rollback`` steps, waves reversed.

    Named releases must each have somewhere to go back to; without names, every release of the
    plan that has a previous good revision goes back to it and the others are left, said in
    :attr:`RollbackPlan.left`. Raises :class:`CompileError` with every problem: a release
    without history, a revision it does not have (the history is listed), no previous good
    revision, nothing to roll back at all."""
    chosen = select_releases(plan, releases)
    names = [s.release for s in chosen.steps]
    if to_revision is not None and len(names) != 1:
        raise CompileError([Diagnostic(
            "error", f"--to-revision needs exactly one release ({len(names)} selected)",
            help="name the release: meshc rollback ENV RELEASE --to-revision N")])
    problems: list[Diagnostic] = []
    left: list[str] = []

    def one(name: str) -> LiveRelease | Diagnostic:
        try:
            return history_of(plan, name, options, runner)
        except CompileError as exc:
            return exc.diagnostics[0]

    targets = []
    for name, live in zip(names, run_bounded(names, one, options.concurrency)):
        target = live if isinstance(live, Diagnostic) else _target(live, to_revision,
                                                                  plan.environment)
        if not isinstance(target, Diagnostic):
            assert isinstance(live, LiveRelease)
            targets.append(RollbackTarget(name, live.revisions[-1], target))
        elif releases or "cannot be reached" in target.message or "failed" in target.message:
            problems.append(target)
        else:
            left.append(f"{name}: {target.message.split(': ')[-1]}")
    if problems:
        raise CompileError(_unique(problems))
    if not targets:
        raise CompileError([Diagnostic(
            "error", f"nothing to roll back in '{plan.environment}': no release has a previous "
                     "good revision", notes=tuple(left))])
    by_name = {t.release: t for t in targets}
    last = max((s.wave for s in chosen.steps), default=0)
    steps = sorted((_rollback_step(plan, s, by_name[s.release].target.revision, last)
                    for s in reversed(chosen.steps) if s.release in by_name),
                   key=lambda s: s.wave)
    number = {w: i for i, w in enumerate(sorted({s.wave for s in steps}))}
    steps = [replace(s, wave=number[s.wave]) for s in steps]
    return RollbackPlan(replace(chosen, steps=tuple(steps)),
                        tuple(by_name[s.release] for s in steps), tuple(left))


def _unique(items: list[Diagnostic]) -> list[Diagnostic]:
    seen, result = set(), []
    for d in items:
        if d.message not in seen:
            seen.add(d.message)
            result.append(d)
    return result


def _target(live: LiveRelease, to_revision: int | None, env: str) -> Revision | Diagnostic:
    listing = tuple(f"{r.revision:>4}  {r.status:<16} {r.chart}  {r.updated}"
                    for r in live.revisions)
    if to_revision is not None:
        for r in live.revisions:
            if r.revision == to_revision:
                return r
        return Diagnostic("error", f"release '{live.release}' in '{env}' has no revision "
                                   f"{to_revision}", notes=listing,
                          help=f"its revisions: {', '.join(str(r.revision) for r in live.revisions)}")
    for r in reversed(live.revisions[:-1]):
        if r.status in GOOD:
            return r
    return Diagnostic("error", f"release '{live.release}' in '{env}': no previous good revision "
                               "to roll back to", notes=listing,
                      help="pick one with --to-revision N")


def _rollback_step(plan: Plan, step: Step, revision: int, last_wave: int) -> Step:
    argv = ["helm", "rollback", step.release, str(revision), *scope(plan, step)]
    if "--wait" in step.argv:
        argv.append("--wait")
    if "--timeout" in step.argv:
        at = step.argv.index("--timeout")
        argv += list(step.argv[at:at + 2])
    return Step(step.release, last_wave - step.wave, (), step.namespace, step.chart,
                tuple(argv), step.remote, action="rollback")


def rollback_lines(plan: Plan, helm: str = "helm") -> list[str]:
    """The rollback's helm commands in order, as shell lines (``--dry-run``)."""
    lines = []
    for wave in sorted({s.wave for s in plan.steps}):
        lines.append(f"# wave {wave}")
        lines += [" ".join(shlex.quote(a) for a in [helm, *s.argv[1:]])
                  for s in plan.steps if s.wave == wave]
    return lines


def format_history(env: str, live: LiveRelease) -> str:
    head = ("REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION", "DESCRIPTION")
    rows = [(str(r.revision), r.updated, r.status, r.chart, r.app_version, r.description)
            for r in live.revisions]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = [f"{live.release} in {env} (namespace {live.step.namespace})"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *rows]]
    return "\n".join(lines) + "\n"


def history_json(env: str, live: LiveRelease) -> str:
    return json.dumps({"environment": env, "release": live.release,
                       "namespace": live.step.namespace,
                       "revisions": [{"revision": r.revision, "updated": r.updated,
                                      "status": r.status, "chart": r.chart,
                                      "appVersion": r.app_version,
                                      "description": r.description}
                                     for r in live.revisions]}, indent=2) + "\n"
