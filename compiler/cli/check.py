"""`meshc check`: the CI gate (library: compiler.check)."""

from __future__ import annotations

import sys

import click

from ..core.diagnostics import CompileError
from ..ops.live import deployable
from .support import (
    EXIT_INVALID,
    Options,
    _canary_decrypt,
    _check_helm,
    _Session,
)


@click.command()
@click.argument("environments", nargs=-1)
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True,
              help="text for people (stderr), json for tools, github for GitHub Actions "
                   "annotations (both on stdout).")
@click.option("--no-stale", is_flag=True, help="Skip comparing the committed rendered output.")
@click.pass_obj
def check(options: Options, /, environments: tuple[str, ...], fmt: str, no_stale: bool) -> None:
    """Check ENVIRONMENTS (default: every deployable one): Kubernetes schemas, policies,
    promotion order, stale rendered output, graph sanity, secrets, and Helm's verdict on every
    wrapper chart (with $MESHC_HELM, or helm on PATH). Exit 1 on any error.

    \b
    Example: meshc check
             meshc check production -o github
    """
    from ..check import CheckOptions, run_checks
    from ..check.report import compile_failure, format_github, format_json, format_text

    session = _Session(options)
    if fmt != "text":  # a project that does not compile: CI still gets the errors, located
        def structured(exc: CompileError, sources: dict[str, str]) -> None:
            report = compile_failure(exc, environments)
            show = format_json if fmt == "json" else format_github
            click.echo(show(report, {**sources, **report.sources}), nl=False)

        session.on_error = structured
    compiler = session.compiler()

    def work() -> int:
        envs = deployable(compiler, environments)  # a name deployed in regions: its regions
        helm, why = _check_helm()
        report = run_checks(compiler, envs, CheckOptions(
            stale=not no_stale, decrypt=_canary_decrypt(compiler), helm=helm,
            helm_unavailable=why, runner=options.tools.runner))
        sources = {**compiler.sources, **report.sources}
        if fmt == "json":
            click.echo(format_json(report, sources), nl=False)
        elif fmt == "github":
            click.echo(format_github(report, sources), nl=False)
        else:
            click.echo(format_text(report, sources), err=True, nl=False)
        return EXIT_INVALID if report.errors else 0

    sys.exit(session.run(work))
