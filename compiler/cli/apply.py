"""`meshc apply`: run a plan with helm (library: apply.py, progress.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..core.diagnostics import format_all
from ..core.incomplete import require_complete
from ..pipeline import (
    find_environment,
)
from .support import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    Options,
    _echo,
    _flags,
    _paint,
    _Session,
    _set_options,
    _sops_tools,
    helm_version_option,
    with_helm_version,
)
from .support import confirm_protected as _confirm_protected

# --- meshc apply (compiler/ops/apply.py, compiler/cli/progress.py) ----------------------------------



@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop an apply as Ctrl-C does: nothing new starts, running helm
    commands end, every decrypted secrets file is removed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _wave_verifier(compiler: Any, plan: Any, kubectl_path: str | None, concurrency: int,
                   runner: Any) -> Any:
    """``meshc apply --verify``: after a wave, ``meshc verify`` on its releases."""
    from dataclasses import replace

    from .day2 import resolve_kubectl, run_verify

    kubectl = resolve_kubectl(kubectl_path)  # before anything runs: a missing kubectl stops it

    def after(number: int, steps: tuple[Any, ...]) -> bool:
        wave = replace(plan, steps=steps)
        return run_verify(compiler, wave, kubectl, None, concurrency, runner) == 0

    return after


@click.command()
@click.argument("environment")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="Steps of one wave run in parallel, at most this many at once.")
@click.option("--helm", "helm_path", metavar="PATH", help="The helm binary (default: helm on PATH).")
@helm_version_option
@click.option("--yes", is_flag=True, help="Apply a protected environment without asking.")
@click.option("--dry-run", is_flag=True, help="Print the helm commands in order; run nothing.")
@click.option("-l", "--selector", "selectors", multiple=True, metavar="KEY=VALUE[,…]",
              help="Only releases whose labels match (also name=, namespace=, chart=; != "
                   "negates; comma: all terms; repeated: any selector).")
@click.option("--include-needs", is_flag=True,
              help="With -l: also apply what the selected releases need (transitively).")
@click.option("--skip-needs", is_flag=True,
              help="With -l: leave out needs that are not selected (deployed already).")
@click.option("--verify", "verify_waves", is_flag=True,
              help="After each wave, run `meshc verify` on its releases (rollouts, health "
                   "checks); stop before the next wave if it fails.")
@click.option("--kubectl", "kubectl_path", metavar="PATH",
              help="With --verify: the kubectl binary (default: $MESHC_KUBECTL, else PATH).")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Apply this reviewed plan (meshc plan ENV -o json), refused if its inputs "
                   "changed since.")
@_set_options
@click.pass_obj
def apply(options: Options, /, environment: str, concurrency: int, helm_path: str | None,
          yes: bool, dry_run: bool, selectors: tuple[str, ...], include_needs: bool,
          skip_needs: bool, verify_waves: bool, kubectl_path: str | None,
          plan_file: Path | None, helm_version: int | None, **kwargs: Any) -> None:
    """Run ENVIRONMENT's plan with helm: wave by wave, the steps of a wave in parallel; a wave
    starts once the previous one fully succeeded. Secrets are decrypted just in time per step.

    \b
    Example: meshc apply staging
             meshc apply production --plan plan.json --yes
             meshc apply dev -l tier=agents --include-needs --dry-run
    """

    from ..ops.apply import (
        ApplyOptions,
        check_secrets,
        command_lines,
        execute,
        failure_diagnostics,
        find_helm,
        parse_selector,
        pinned_packages,
        prepare_apply,
        sops_decryptor,
    )
    from ..ops.helm_version import require_helm_version
    from .progress import LineLog, LiveView, format_summary

    if include_needs and skip_needs:
        raise click.UsageError("--include-needs and --skip-needs exclude each other")
    try:
        parsed = [parse_selector(text) for text in selectors]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-l' / '--selector'") from None
    session = _Session(options)
    compiler = with_helm_version(session.compiler(_flags(kwargs)), helm_version)

    def work() -> int:
        env = find_environment(compiler.project, environment, regions=True)
        if env.has_regions:
            if plan_file is not None or parsed:
                raise click.UsageError("--plan and -l apply one region: name it (ENV/REGION)")
            return _apply_rollout(env)
        text = _read_plan(plan_file) if plan_file is not None else None
        plan = prepare_apply(compiler, env, text, str(plan_file), parsed,
                             "include" if include_needs else "skip" if skip_needs else "error")
        if dry_run:
            click.echo("\n".join(command_lines(plan, helm_path or "helm")))
            return 0
        helm = find_helm(helm_path, os.environ.get("PATH"))
        require_helm_version(helm, env.helm_version, env.name, options.tools.runner)
        after_wave = None
        if verify_waves:
            after_wave = _wave_verifier(compiler, plan, kubectl_path, concurrency,
                                        options.tools.runner)
        packages = pinned_packages(compiler, env, plan)  # remote charts: the bytes pinned
        _confirm_protected(plan, yes)
        decrypt_file = None
        if any(step.secrets for step in plan.steps):
            sops, key = _sops_tools(need_key=True)
            decrypt_file = sops_decryptor(compiler, env, sops, key)
            check_secrets(plan, decrypt_file)
        paint = _paint()
        view = LiveView(sys.stdout, paint) if sys.stdout.isatty() else LineLog(sys.stdout)
        try:
            with _terminate_as_interrupt():
                result = execute(plan, ApplyOptions(compiler.files.root, helm, concurrency,
                                                    packages=packages),
                                 options.tools.runner, decrypt_file=decrypt_file, report=view,
                                 after_wave=after_wave)
        except KeyboardInterrupt:
            click.echo("meshc: interrupted: running helm commands ended, nothing else "
                       "started", err=True)
            return EXIT_INTERRUPTED
        finally:
            view.close()
        _echo(format_summary(plan, result, paint))
        if result.ok:
            return 0
        click.echo(format_all(failure_diagnostics(plan, result), {}), err=True, nl=False)
        return EXIT_INVALID

    def _apply_rollout(env: Any) -> int:
        """The environment's regions, stage by stage (compiler/ops/rollout.py)."""
        from ..ops.rollout import execute_rollout, rollout_summary

        regions = {r.name: r for r in compiler.project.regions_of(env)}
        # every region folder an interrupted render left incomplete, named at once
        require_complete(compiler.files.root, compiler.project.output, list(regions))
        plans = {name: prepare_apply(compiler, region) for name, region in regions.items()}
        stages = [[plans[name] for name in stage] for stage in env.stages]
        if dry_run:
            for index, stage in enumerate(stages):
                for plan in stage:
                    click.echo(f"# stage {index}, region {plan.region}")
                    click.echo("\n".join(command_lines(plan, helm_path or "helm")))
            return 0
        helm = find_helm(helm_path, os.environ.get("PATH"))
        for region in regions.values():
            require_helm_version(helm, region.helm_version, region.name, options.tools.runner)
        packages = {name: pinned_packages(compiler, regions[name], plan)
                    for name, plan in plans.items()}
        from ..plan.plan import Plan

        whole = Plan(env.name, env.protected, None,
                     tuple(s for plan in plans.values() for s in plan.steps), 0, (), ())
        _confirm_protected(whole, yes)  # once, for the whole rollout
        decrypt = {}
        if any(step.secrets for plan in plans.values() for step in plan.steps):
            sops, key = _sops_tools(need_key=True)
            for name, plan in plans.items():
                decrypt[name] = sops_decryptor(compiler, regions[name], sops, key)
                check_secrets(plan, decrypt[name])
        import threading

        lock = threading.Lock()

        def run_region(plan: Any) -> Any:
            name = plan.environment
            log = LineLog(_Prefixed(sys.stdout, f"{plan.region}: ", lock))
            after = (_wave_verifier(compiler, plan, kubectl_path, concurrency,
                                    options.tools.runner) if verify_waves else None)
            return execute(plan, ApplyOptions(compiler.files.root, helm, concurrency,
                                              packages=packages[name]),
                           options.tools.runner, decrypt_file=decrypt.get(name), report=log,
                           after_wave=after)

        try:
            with _terminate_as_interrupt():
                result = execute_rollout(env.name, stages, run_region)
        except KeyboardInterrupt:
            click.echo("meshc: interrupted: running helm commands ended, nothing else "
                       "started", err=True)
            return EXIT_INTERRUPTED
        for line in rollout_summary(result):
            click.echo(line)
        if result.ok:
            return 0
        failures = [d for run in result.runs if run.result is not None and not run.result.ok
                    for d in failure_diagnostics(run.plan, run.result)]
        click.echo(format_all(failures, {}), err=True, nl=False)
        return EXIT_INVALID

    sys.exit(session.run(work))


class _Prefixed:
    """A text stream writing each line with a prefix (a region's name), one line at a time."""

    def __init__(self, out: Any, prefix: str, lock: Any) -> None:
        self.out, self.prefix, self.lock = out, prefix, lock

    def write(self, text: str) -> int:
        with self.lock:
            return int(self.out.write("".join(self.prefix + line
                                              for line in text.splitlines(keepends=True))))

    def flush(self) -> None:
        self.out.flush()


def _read_plan(path: Path) -> str:
    """The reviewed plan's text: a regular file only (a FIFO is refused, never waited on),
    within limits.fileSize, UTF-8."""
    from ..core.diagnostics import CompileError, Diagnostic
    from ..core.files import decode_text, read_bounded

    try:
        return decode_text(read_bounded(path))
    except UnicodeDecodeError as exc:
        raise CompileError([Diagnostic("error", f"{path} is {exc}")]) from None
    except OSError as exc:
        raise CompileError([Diagnostic("error", f"cannot read the plan {path}: "
                                                f"{exc.strerror or exc}")]) from None
