"""`meshc cost`: each environment's monthly estimate from its fresh render, and a change's cost
against the committed output (the estimator is :mod:`compiler.cost`; docs/cost.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..cost.estimate import CostChange, EnvironmentCost, compare, estimate_environment
from ..model.model import Environment, Project
from ..output.cache import Cache
from ..output.parallel import render_files
from ..pipeline import Compiler, committed_files
from ..plan.plan import Plan


@dataclass(frozen=True, slots=True)
class CostReport:
    """The estimates of the environments asked for; with ``diff``, each against the committed
    output."""

    estimates: tuple[EnvironmentCost, ...]
    changes: tuple[CostChange, ...] = ()


def planned_releases(project: Project, plan: Plan) -> list[str]:
    """The releases ``plan`` deploys, in meshfile order."""
    planned = {s.release for s in plan.steps}
    return [r.name for r in project.releases if r.name in planned]


def cost_change(project: Project, env: Environment, fresh: Mapping[str, str],
                committed: Mapping[str, str], plan: Plan) -> CostChange:
    """The estimate of the committed ``rendered/ENV`` and of a fresh render, compared."""
    before = estimate_environment(project, env, committed)
    after = estimate_environment(project, env, fresh, planned_releases(project, plan))
    return compare(before, after)


def estimate_costs(compiler: Compiler, envs: Sequence[Environment], diff: bool = False,
                   cache: Cache | None = None) -> CostReport:
    """Compile ``envs`` (reusing ``cache``) and estimate each; with ``diff``, compare each
    with its committed output. Raises :class:`~compiler.core.diagnostics.CompileError`."""
    plans: dict[str, Plan] = {}
    files = render_files(compiler, list(envs), cache=cache, plans=plans)
    project = compiler.project
    estimates, changes = [], []
    for env in envs:
        if diff:
            change = cost_change(project, env, files, committed_files(compiler, env.name),
                                 plans[env.name])
            changes.append(change)
            estimates.append(change.after)
        else:
            estimates.append(estimate_environment(project, env, files,
                                                  planned_releases(project, plans[env.name])))
    return CostReport(tuple(estimates), tuple(changes))
