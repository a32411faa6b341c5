"""Day 2: `meshc status`, `drift`, `history`, `rollback`, `verify` (library: compiler/ops live,
drift, status, rollback, verify). Each reads the environments' committed plans and asks the
real helm (kubectl for verify): --helm/--kubectl, else $MESHC_HELM/$MESHC_KUBECTL, else PATH."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from ..core.diagnostics import CompileError, Diagnostic, format_all
from ..core.process import Completed, Runner
from .support import (
    EXIT_CHANGES,
    EXIT_INVALID,
    Options,
    _echo,
    _paint,
    _Session,
    confirm_protected,
)

_OUTPUT = click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]),
                       default="text", show_default=True)
_HELM = click.option("--helm", "helm_path", metavar="PATH",
                     help="The helm binary (default: $MESHC_HELM, else helm on PATH).")
_CONCURRENCY = click.option("--concurrency", type=click.IntRange(min=1), default=4,
                            show_default=True, help="At most this many helm calls at once.")


def resolve_helm(flag: str | None) -> str:
    """--helm, else $MESHC_HELM, else helm on PATH."""
    from ..core.process import HELM_VAR, find_helm

    if flag:
        return find_helm(flag, os.environ.get("PATH"))
    return find_helm(os.environ.get(HELM_VAR), os.environ.get("PATH"),
                     given=HELM_VAR + "={}", remedy=f"pass --helm PATH or set {HELM_VAR}")


def resolve_kubectl(flag: str | None) -> str:
    """--kubectl, else $MESHC_KUBECTL, else kubectl on PATH."""
    from ..core.process import KUBECTL_VAR, find_kubectl

    if flag:
        return find_kubectl(flag, os.environ.get("PATH"))
    return find_kubectl(os.environ.get(KUBECTL_VAR), os.environ.get("PATH"),
                        given=KUBECTL_VAR + "={}",
                        remedy=f"pass --kubectl PATH or set {KUBECTL_VAR}")


def counting(runner: Runner, what: str) -> tuple[Runner, Any]:
    """``runner`` showing how many calls finished on a terminal's stderr (``close()`` clears
    the line); unchanged when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return runner, lambda: None
    lock = threading.Lock()
    count = [0]

    def run(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
            /) -> Completed:
        done = runner(argv, cwd, env)
        with lock:
            count[0] += 1
            sys.stderr.write(f"\r\x1b[2K{what}: {count[0]} calls done")
            sys.stderr.flush()
        return done

    def close() -> None:
        if count[0]:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    return run, close


def _require_helm(helm: str, envs: Sequence[Any], runner: Runner) -> None:
    """The helm found is the major Helm every environment's plan is for (asked once per
    major: docs/helm-versions.md)."""
    from ..ops.helm_version import require_helm_version

    first: dict[int, Any] = {}
    for env in envs:
        first.setdefault(env.helm_version.major, env)
    for major in sorted(first):
        require_helm_version(helm, first[major].helm_version, first[major].name, runner)


def _live(options: Options, environments: Sequence[str], helm_path: str | None,
          concurrency: int, content: bool = True,
          check_version: bool = False) -> tuple[Any, list[Any]]:
    """The project and the live state of the environments named (all: every deployable one);
    ``check_version``: refuse a helm of another major than the plans' first."""
    from ..ops.live import LiveOptions, committed_plans, deployable, read_environments

    session = _Session(options)
    compiler = session.compiler(manifests=False)

    def work() -> tuple[Any, list[Any]]:
        envs = deployable(compiler, environments)
        plans = committed_plans(compiler, envs)
        helm = resolve_helm(helm_path)
        if check_version:
            _require_helm(helm, envs, options.tools.runner)
        runner, close = counting(options.tools.runner, "helm")
        try:
            live = read_environments(plans, LiveOptions(compiler.files.root, helm, concurrency),
                                     runner, content)
        finally:
            close()
        return compiler, list(live)

    found: tuple[Any, list[Any]] = session.run(work)
    return found


@click.command()
@click.argument("environments", nargs=-1)
@_OUTPUT
@click.option("--exit-code", is_flag=True, help="Exit 3 when anything is not in sync.")
@_HELM
@_CONCURRENCY
@click.pass_obj
def status(options: Options, /, environments: tuple[str, ...], fmt: str, exit_code: bool,
           helm_path: str | None, concurrency: int) -> None:
    """What runs, per environment and release: Helm's revision, status, chart, app version
    and time, and whether it matches the committed rendered/ (in-sync, drifted,
    not-deployed, failed, pending, unreachable). Default: every deployable environment.

    \b
    Example: meshc status
             meshc status production staging -o json --exit-code
    """
    from ..ops.drift import environment_drift
    from ..ops.live import unreachable_diagnostic
    from ..ops.status import format_status, in_sync, status_json

    compiler, live = _live(options, environments, helm_path, concurrency,
                           check_version=True)
    output = compiler.project.output
    drifts = [environment_drift(compiler.files.root, output, env) for env in live]
    if fmt == "json":
        click.echo(status_json(drifts), nl=False)
    else:
        _echo(format_status(drifts, _paint()))
    problems = [unreachable_diagnostic(env) for env in live if env.unreachable is not None]
    problems += [Diagnostic("error", f"{d.name}/{r.release}: helm failed: {r.reason}")
                 for d in drifts if d.unreachable is None for r in d.releases
                 if r.sync == "error"]
    if problems:
        click.echo(format_all(problems, {}), err=True, nl=False)
        sys.exit(EXIT_INVALID)
    sys.exit(EXIT_CHANGES if exit_code and not in_sync(drifts) else 0)


@click.command()
@click.argument("environment")
@click.option("--release", "releases", multiple=True, metavar="R",
              help="Only these releases (repeatable).")
@_OUTPUT
@click.option("--exit-code", is_flag=True, help="Exit 3 when anything drifted.")
@_HELM
@_CONCURRENCY
@click.pass_obj
def drift(options: Options, /, environment: str, releases: tuple[str, ...], fmt: str,
          exit_code: bool, helm_path: str | None, concurrency: int) -> None:
    """What differs between the cluster (helm's manifest and values of each release) and
    rendered/ENVIRONMENT, field by field, in the change lines of `meshc plan`: resources live
    but not rendered, rendered but not live, and each field that differs.

    \b
    Example: meshc drift production/eu-west
             meshc drift staging --release registry -o json --exit-code
    """
    import json

    from ..ops.drift import IN_SYNC, drift_json, environment_drift, format_drift
    from ..ops.live import (
        LiveOptions,
        committed_plan,
        read_environments,
        select_releases,
        unreachable_diagnostic,
    )
    from ..pipeline import find_environment

    session = _Session(options)
    compiler = session.compiler(manifests=False)

    def work() -> int:
        env = find_environment(compiler.project, environment)
        plan = select_releases(committed_plan(compiler, env), releases)
        runner, close = counting(options.tools.runner, "helm")
        try:
            live = read_environments([plan], LiveOptions(compiler.files.root,
                                                         resolve_helm(helm_path), concurrency),
                                     runner)[0]
        finally:
            close()
        if live.unreachable is not None:
            raise CompileError([unreachable_diagnostic(live)])
        found = environment_drift(compiler.files.root, compiler.project.output, live)
        if fmt == "json":
            click.echo(json.dumps(drift_json(found), indent=2, ensure_ascii=False))
        else:
            _echo(format_drift(found, compiler.project.output, _paint()))
        errors = [Diagnostic("error", f"{found.name}/{r.release}: helm failed: {r.reason}")
                  for r in found.releases if r.sync == "error"]
        if errors:
            raise CompileError(errors)
        drifted = any(r.sync != IN_SYNC for r in found.releases)
        return EXIT_CHANGES if exit_code and drifted else 0

    sys.exit(session.run(work))


@click.command()
@click.argument("environment")
@click.argument("release")
@_OUTPUT
@_HELM
@click.pass_obj
def history(options: Options, /, environment: str, release: str, fmt: str,
            helm_path: str | None) -> None:
    """RELEASE's revisions in ENVIRONMENT, as helm history shows them.

    \b
    Example: meshc history production/eu-west registry
    """
    from ..ops.live import LiveOptions, committed_plan
    from ..ops.rollback import format_history, history_json, history_of
    from ..pipeline import find_environment

    session = _Session(options)
    compiler = session.compiler(manifests=False)

    def work() -> None:
        env = find_environment(compiler.project, environment)
        plan = committed_plan(compiler, env)
        live = history_of(plan, release, LiveOptions(compiler.files.root,
                                                     resolve_helm(helm_path)),
                          options.tools.runner)
        if fmt == "json":
            click.echo(history_json(env.name, live), nl=False)
        else:
            _echo(format_history(env.name, live))

    session.run(work)


@click.command()
@click.argument("environment")
@click.argument("releases", nargs=-1)
@click.option("--to-revision", type=click.IntRange(min=1), metavar="N",
              help="This revision (one release only; default: each release's previous good "
                   "revision).")
@click.option("--dry-run", is_flag=True, help="Print the helm commands in order; run nothing.")
@click.option("--yes", is_flag=True, help="Roll back a protected environment without asking.")
@_HELM
@_CONCURRENCY
@click.pass_obj
def rollback(options: Options, /, environment: str, releases: tuple[str, ...],
             to_revision: int | None, dry_run: bool, yes: bool, helm_path: str | None,
             concurrency: int) -> None:
    """Roll RELEASES of ENVIRONMENT (default: all of its releases) back to their previous good
    revision, or to --to-revision N, in reverse wave order: dependents first. A failed step
    stops the rest.

    \b
    Example: meshc rollback staging weather-agent
             meshc rollback production/eu-west registry --to-revision 3 --dry-run
    """
    from ..ops.apply import ApplyOptions, execute, failure_diagnostics
    from ..ops.live import LiveOptions, committed_plan
    from ..ops.rollback import plan_rollback, rollback_lines
    from ..pipeline import find_environment
    from .progress import LineLog, LiveView, format_summary

    session = _Session(options)
    compiler = session.compiler(manifests=False)

    def work() -> int:
        env = find_environment(compiler.project, environment)
        helm = resolve_helm(helm_path)
        _require_helm(helm, [env], options.tools.runner)
        live_options = LiveOptions(compiler.files.root, helm, concurrency)
        planned = plan_rollback(committed_plan(compiler, env), releases, to_revision,
                                live_options, options.tools.runner)
        plan = planned.plan
        reasons: dict[str, list[str]] = {}
        for entry in planned.left:
            name, _, why = entry.partition(": ")
            reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            click.echo(f"left as they are ({why}): {', '.join(names)}", err=True)
        for t in planned.targets:
            click.echo(f"{t.release}: revision {t.current.revision} ({t.current.status}) → "
                       f"{t.target.revision} ({t.target.chart}, {t.target.updated})", err=True)
        if dry_run:
            click.echo("\n".join(rollback_lines(plan, helm_path or "helm")))
            return 0
        confirm_protected(plan, yes, "roll back", "rolled back")
        paint = _paint()
        view = LiveView(sys.stdout, paint) if sys.stdout.isatty() else LineLog(sys.stdout)
        try:
            result = execute(plan, ApplyOptions(compiler.files.root, helm, concurrency),
                             options.tools.runner, report=view)
        finally:
            view.close()
        _echo(format_summary(plan, result, paint, ("rollback", "rolled back")))
        if result.ok:
            return 0
        click.echo(format_all(failure_diagnostics(plan, result), {}), err=True, nl=False)
        return EXIT_INVALID

    sys.exit(session.run(work))


@click.command()
@click.argument("environment")
@click.option("--timeout", metavar="D", help="How long each rollout may take (a Go duration; "
                                             "default: the release's helm timeout).")
@_OUTPUT
@click.option("--kubectl", "kubectl_path", metavar="PATH",
              help="The kubectl binary (default: $MESHC_KUBECTL, else kubectl on PATH).")
@_CONCURRENCY
@click.pass_obj
def verify(options: Options, /, environment: str, timeout: str | None, fmt: str,
           kubectl_path: str | None, concurrency: int) -> None:
    """Check that ENVIRONMENT came up: `kubectl rollout status` for every Deployment,
    StatefulSet and DaemonSet of its rendered manifests, then the meshfile's `verify:` health
    checks through the API server's service proxy. Exit 1 naming each failure.

    \b
    Example: meshc verify staging
             meshc verify production/eu-west --timeout 2m -o json
    """
    from ..ops.live import committed_plan
    from ..pipeline import find_environment

    session = _Session(options)
    compiler = session.compiler(manifests=False)

    def work() -> int:
        env = find_environment(compiler.project, environment)
        plan = committed_plan(compiler, env)
        kubectl = resolve_kubectl(kubectl_path)
        return run_verify(compiler, plan, kubectl, timeout, concurrency,
                          options.tools.runner, fmt)

    sys.exit(session.run(work))


def run_verify(compiler: Any, plan: Any, kubectl: str, timeout: str | None, concurrency: int,
               runner: Runner, fmt: str = "text") -> int:
    """Verify ``plan``'s releases, print the result; 0 or 1 (diagnostics printed)."""
    import re

    from ..model.fields import DURATION
    from ..ops.verify import (
        VerifyOptions,
        format_verify,
        verify,
        verify_diagnostics,
        verify_json,
    )

    if timeout is not None and not re.fullmatch(DURATION, timeout):
        raise CompileError([Diagnostic("error", f"--timeout {timeout}: not a duration",
                                       help="a Go duration: 90s, 5m, 1h30m")])
    declared = {r.name: r.verify for r in compiler.project.releases}
    folder = compiler.files.root / compiler.project.output.rstrip("/") / plan.environment
    counted, close = counting(runner, "kubectl")
    try:
        result = verify(plan, folder, declared,
                        VerifyOptions(compiler.files.root, kubectl, timeout, concurrency),
                        counted)
    finally:
        close()
    if fmt == "json":
        click.echo(verify_json(result), nl=False)
    else:
        _echo(format_verify(result, _paint()))
    if result.ok:
        return 0
    click.echo(format_all(verify_diagnostics(result, plan.kube_context), {}), err=True, nl=False)
    return EXIT_INVALID
