"""Cost: what ``meshc cost`` cannot price, and the cost policies (``max-monthly-cost``,
``cost-increase`` against the committed output), each located on the releases responsible.
The estimator is :mod:`compiler.cost` (docs/cost.md)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from ..cost.estimate import EnvironmentCost, compare, estimate_environment
from ..cost.report import money, percent
from ..model.model import Environment
from ..pipeline import committed_files, output_files
from .context import CheckContext, Finding, containers, dig, pod_spec_path
from .policies import _report

RULES = ("cost-unpriced", "max-monthly-cost", "cost-increase")
LISTED = 8  # releases listed in a finding's notes


def check_cost(ctx: CheckContext) -> Iterator[Finding]:
    for env in ctx.environments:
        if not any(ctx.enabled(rule, env) for rule in RULES):
            continue
        output = ctx.output(env)
        after = estimate_environment(ctx.project, env, output_files(output),
                                     [o.release.name for o in output.releases])
        yield from _unpriced(ctx, env, after)
        yield from _max_monthly(ctx, env, after)
        yield from _increase(ctx, env, after)


def _unpriced(ctx: CheckContext, env: Environment, cost: EnvironmentCost) -> Iterator[Finding]:
    rule = "cost-unpriced"
    if not ctx.enabled(rule, env):
        return
    estimated = {r.release for r in cost.releases if r.declared}
    for resource in ctx.resources(env):
        pod_path = pod_spec_path(resource.manifest.kind)
        if pod_path is None or resource.release in estimated or \
                resource.manifest.kind in ("Job", "CronJob") or resource.manifest.hook:
            continue
        for path, container in containers(resource.data, pod_path):
            given = {**_map(dig(container, ("resources", "limits"))),
                     **_map(dig(container, ("resources", "requests")))}
            missing = [key for key in ("cpu", "memory") if key not in given]
            if missing:
                yield from _report(
                    ctx, rule, resource, (*path, "resources", "requests"),
                    f"container '{container.get('name', '?')}' requests no "
                    f"{' and no '.join(missing)}: meshc cost prices it at zero",
                    [("resources", "requests", key) for key in missing], False)
    for item in cost.unpriced:
        release = ctx.project.release(item.release)
        if item.what == "(the whole release)" and release is not None:
            finding = ctx.finding(rule, env, f"release '{item.release}' has no rendered "
                                  "manifests to price", release.span,
                                  "declare what it runs: cost: {estimate: {cpu: 2, memory: 4Gi, "
                                  "replicas: 3}}")
            if finding is not None:
                yield finding
    daemonsets = sorted({f"{u.release}: {u.what}" for u in cost.unpriced
                         if u.what.startswith("DaemonSet/") and "node" in u.why})
    if daemonsets:
        finding = ctx.finding(rule, env, f"{len(daemonsets)} DaemonSet"
                              f"{'s' * (len(daemonsets) != 1)} priced for one node: the "
                              "environment has no node count", env.span,
                              "set `cost: {nodes: N}` on the environment", daemonsets)
        if finding is not None:
            yield finding


def _map(value: object) -> dict[object, object]:
    return value if isinstance(value, dict) else {}


def _max_monthly(ctx: CheckContext, env: Environment,
                 cost: EnvironmentCost) -> Iterator[Finding]:
    rule = "max-monthly-cost"
    if not ctx.enabled(rule, env):
        return
    ceiling = Decimal(str(ctx.option(rule, env, "max")))
    if ceiling <= 0:
        ctx.note(rule, f"{rule} is on but has no `max` (policies: {{{rule}: {{max: 5000}}}})")
        return
    total = cost.floor.total
    if total <= ceiling:
        return
    cur = cost.prices.currency
    ranked = sorted(cost.releases, key=lambda r: (-r.floor.total, r.release))
    top = ctx.project.release(ranked[0].release) if ranked else None
    notes = [f"{r.release}: {money(r.floor.total, cur)}" for r in ranked[:LISTED]
             if r.floor.total]
    finding = ctx.finding(rule, env, f"the estimated monthly cost {money(total, cur)} is above "
                          f"the maximum {money(ceiling, cur)} (the largest: release "
                          f"'{ranked[0].release}')", top.span if top else env.span,
                          "run `meshc cost " + env.name + "` for the breakdown", notes)
    if finding is not None:
        yield finding


def _increase(ctx: CheckContext, env: Environment, after: EnvironmentCost) -> Iterator[Finding]:
    rule = "cost-increase"
    if not ctx.enabled(rule, env):
        return
    before = estimate_environment(ctx.project, env, committed_files(ctx.compiler, env.name))
    old, new = before.floor.total, after.floor.total
    limit = Decimal(str(ctx.option(rule, env, "maxPercent")))
    if old <= 0 or new <= old or (new - old) * 100 <= limit * old:
        return  # nothing committed yet, no increase, or within the limit
    change = compare(before, after)
    cur = after.prices.currency
    grown = sorted(((fb.total - fa.total, name) for name, fa, fb, _, _ in change.releases
                    if fb.total > fa.total), key=lambda row: (-row[0], row[1]))
    notes = []
    for delta, name in grown[:LISTED]:
        release = ctx.project.release(name)
        where = f" ({release.span.file}:{release.span.line})" if release else ""
        notes.append(f"{name}: {money(delta, cur, signed=True)}{where}")
    top = ctx.project.release(grown[0][1]) if grown else None
    finding = ctx.finding(rule, env, f"the estimated monthly cost rises {money(old, cur)} → "
                          f"{money(new, cur)} ({percent(old, new)}), more than {limit}% against "
                          "the committed output", top.span if top else env.span,
                          f"run `meshc cost {env.name} --diff` for the breakdown", notes)
    if finding is not None:
        yield finding
