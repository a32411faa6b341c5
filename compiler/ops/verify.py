"""``meshc verify``: the checks after a deployment, with the real ``kubectl``.

1. Every Deployment, StatefulSet and DaemonSet of the committed manifests
   (``rendered/ENV/REL/manifests``): ``kubectl rollout status KIND/NAME --namespace NS
   [--context C] --timeout D`` (D: ``--timeout``, else the step's helm timeout).
2. Then the meshfile's ``verify:`` health checks of each release whose workloads rolled out:
   ``kubectl get --raw /api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH [--context C]``,
   answered by the API server's service proxy (no port-forward, no curl pod); kubectl fails
   unless the answer is 2xx.

Calls run on up to ``concurrency`` threads (:func:`compiler.ops.apply.run_bounded`). A cluster
that cannot be reached is said once, and nothing more is asked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.diagnostics import Diagnostic
from ..core.process import Runner
from ..model.model import HealthCheck
from ..plan.diff import Paint, _plain, resources_of
from ..plan.plan import Plan, Step
from .apply import DEFAULT_CONCURRENCY, run_bounded
from .live import failure_text, is_unreachable

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    root: Path
    kubectl: str = "kubectl"
    timeout: str | None = None            # None: each step's helm --timeout, else 5m
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass(frozen=True, slots=True)
class Check:
    """One check to run: a workload's rollout or a health check."""

    release: str
    kind: str                             # rollout, http
    target: str                           # deployment/registry; registry:http/proxy/health
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: Check
    status: str                           # ok, failed, skipped
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    environment: str
    results: tuple[CheckResult, ...]
    unreachable: str | None = None

    @property
    def ok(self) -> bool:
        return self.unreachable is None and all(r.status == "ok" for r in self.results)


def _context(plan: Plan) -> list[str]:
    return ["--context", plan.kube_context] if plan.kube_context else []


def _timeout(step: Step, options: VerifyOptions) -> str:
    if options.timeout:
        return options.timeout
    if "--timeout" in step.argv:
        return step.argv[step.argv.index("--timeout") + 1]
    return "5m"


def rollout_checks(plan: Plan, folder: Path, options: VerifyOptions) -> list[Check]:
    """A rollout check per workload of the committed manifests, in plan order."""
    checks = []
    for step in plan.steps:
        files = sorted((folder / step.release / "manifests").glob("*.yaml"))
        resources = resources_of((p.name, p.read_text(encoding="utf-8")) for p in files)
        for key in sorted(k for k in resources if k.split("/", 1)[0] in WORKLOADS):
            kind, name = key.split("/", 1)
            target = f"{kind.lower()}/{name}"
            checks.append(Check(step.release, "rollout", target, (
                options.kubectl, "rollout", "status", target, "--namespace", step.namespace,
                *_context(plan), "--timeout", _timeout(step, options))))
    return checks


def health_checks(plan: Plan, declared: Mapping[str, Sequence[HealthCheck]],
                  options: VerifyOptions) -> list[Check]:
    """A check per ``verify:`` entry of the planned releases."""
    return [Check(step.release, "http", check.proxy_path, (
        options.kubectl, "get", "--raw",
        f"/api/v1/namespaces/{step.namespace}/services/{check.proxy_path}", *_context(plan)))
        for step in plan.steps for check in declared.get(step.release, ())]


def verify(plan: Plan, folder: Path, declared: Mapping[str, Sequence[HealthCheck]],
           options: VerifyOptions, runner: Runner) -> VerifyResult:
    """Roll-outs first, then health checks of the releases whose workloads all rolled out (a
    blue-green router's: its live slot's)."""
    rollouts = rollout_checks(plan, folder, options)
    checks = health_checks(plan, declared, options)
    if not rollouts and not checks:
        return VerifyResult(plan.environment, ())
    first = (rollouts or checks)[0]
    probe = _run(first, options, runner)
    if probe.status == "failed" and is_unreachable(probe.detail):
        return VerifyResult(plan.environment, (), probe.detail)
    done = [probe, *run_bounded((rollouts or checks)[1:], lambda c: _run(c, options, runner),
                                options.concurrency)]
    if rollouts:
        failed = {r.check.release for r in done if r.status != "ok"}
        failed |= {step.release for step in plan.steps if step.blue_green is not None
                   and step.blue_green.role == "router"
                   and f"{step.blue_green.group}-{step.blue_green.live_slot}" in failed}
        todo = [c for c in checks if c.release not in failed]
        done += run_bounded(todo, lambda c: _run(c, options, runner), options.concurrency)
        done += [CheckResult(c, "skipped", "its workloads did not roll out")
                 for c in checks if c.release in failed]
    return VerifyResult(plan.environment, tuple(done))


def _run(check: Check, options: VerifyOptions, runner: Runner) -> CheckResult:
    done = runner(list(check.argv), options.root)
    if done.returncode == 0:
        return CheckResult(check, "ok", done.stdout.strip().splitlines()[-1][:120]
                           if done.stdout.strip() else "")
    return CheckResult(check, "failed", failure_text(done))


# --- words ---------------------------------------------------------------------------------

_ROLES = {"ok": "good", "failed": "bad", "skipped": "dim"}


def format_verify(result: VerifyResult, paint: Paint = _plain) -> str:
    lines = [paint(f"verify {result.environment}", "title")]
    if result.unreachable is not None:
        lines.append(paint(f"  cluster unreachable: {result.unreachable}", "bad"))
    width = max((len(f"{r.check.release} {r.check.kind} {r.check.target}")
                 for r in result.results), default=0)
    for r in result.results:
        what = f"{r.check.release} {r.check.kind} {r.check.target}".ljust(width)
        detail = f"  {r.detail}" if r.detail and r.status != "ok" else ""
        lines.append(f"  {paint(f'{r.status:<7}', _ROLES[r.status])} {what}{detail}".rstrip())
    counts = {s: sum(1 for r in result.results if r.status == s) for s in _ROLES}
    lines.append(f"summary: {result.environment}: {counts['ok']} ok, {counts['failed']} "
                 f"failed, {counts['skipped']} skipped" + (
                     ", cluster unreachable" if result.unreachable else ""))
    return "\n".join(lines) + "\n"


def verify_diagnostics(result: VerifyResult, kube_context: str | None) -> list[Diagnostic]:
    """One diagnostic per failure (an unreachable cluster: one in all)."""
    if result.unreachable is not None:
        where = f"kube-context '{kube_context}'" if kube_context else "the current kube-context"
        return [Diagnostic("error", f"{result.environment}: the cluster of {where} cannot be "
                                    f"reached: {result.unreachable}",
                           help="check `kubectl config get-contexts` and your credentials")]
    return [Diagnostic("error", f"{result.environment}: {r.check.release}: {r.check.kind} "
                                f"{r.check.target} failed: {r.detail}")
            for r in result.results if r.status == "failed"]


def verify_json(result: VerifyResult) -> str:
    return json.dumps({"environment": result.environment, "ok": result.ok,
                       "unreachable": result.unreachable,
                       "checks": [{"release": r.check.release, "kind": r.check.kind,
                                   "target": r.check.target, "status": r.status,
                                   "detail": r.detail} for r in result.results]},
                      indent=2) + "\n"
