"""`meshc check`, the CI gate: schemas, policies, promotion, stale output, sanity, secrets, Helm.
Lives here: one check family per module, rules (names, levels), context, locate, report, semver.
May import: core, syntax, model, values, render, secrets, cost, plan, pipeline, gitops.

Each finding is located at the meshfile, values file or template line responsible.

Library use::

    from compiler.check import run_checks, CheckOptions
    report = run_checks(compiler, compiler.project.deployable, CheckOptions())
    report.errors, report.findings

Checks are functions ``(CheckContext) -> Iterable[Finding | Diagnostic]`` listed in
:data:`CHECKS`; add a family by writing one and appending it there (a plain
:class:`~compiler.core.diagnostics.Diagnostic` is reported under the check's name). Rules, their
levels and options are in :mod:`.rules`; use :meth:`CheckContext.finding` so ``policies:`` can
configure or silence a rule per environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..model.model import Environment
from ..pipeline import Compiler
from .context import CheckContext, CheckOptions, CheckReport, Finding, HelmSummary, Resource
from .cost import check_cost
from .helm import check_helm
from .leaks import check_leaks
from .policies import check_policies
from .promotion import check_promotion
from .rules import RULES, RULES_BY_NAME, Rule
from .sanity import check_sanity
from .schemas import check_schemas
from .stale import check_stale, check_stale_exports

Check = Callable[[CheckContext], Iterable[Finding | Diagnostic]]

# The check families, in report order. The secrets work adds its leak checks here.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("schemas", check_schemas),
    ("policies", check_policies),
    ("promotion", check_promotion),
    ("stale", check_stale),
    ("stale", check_stale_exports),
    ("graph", check_sanity),
    ("secrets", check_leaks),
    ("cost", check_cost),
    ("helm", check_helm),
)


def run_checks(compiler: Compiler, environments: Sequence[Environment],
               options: CheckOptions | None = None,
               checks: Sequence[tuple[str, Check]] = CHECKS) -> CheckReport:
    """Run ``checks`` on ``environments`` (deployable ones) of ``compiler``'s project.

    Raises :class:`~compiler.core.diagnostics.CompileError` when the project does not compile; every
    check finding is in the returned report instead.
    """
    ctx = CheckContext(compiler, environments, options or CheckOptions())
    broken = Diagnostics()  # every environment compiled first: all their errors, not the first's
    for env in ctx.environments:
        try:
            ctx.output(env)
        except CompileError as exc:
            broken.absorb(exc)
    broken.raise_if_errors()
    findings: list[Finding] = list(ctx.setting_errors)
    for name, check in checks:
        for item in check(ctx):
            findings.append(item if isinstance(item, Finding) else Finding(name, None, item))
    resources = sum(len(ctx.resources(env)) for env in ctx.environments)
    return CheckReport(tuple(e.name for e in ctx.environments), tuple(findings), resources,
                       dict(ctx.kube_versions),
                       tuple(f"{what} ({', '.join(envs)})" for what, envs in ctx.unchecked.items()),
                       dict(ctx.sources), tuple(ctx.notes), ctx.helm)


__all__ = ["CHECKS", "RULES", "RULES_BY_NAME", "Check", "CheckContext", "CheckOptions",
           "CheckReport", "Finding", "HelmSummary", "Resource", "Rule", "run_checks"]
