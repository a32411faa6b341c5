"""`meshc charts`: the project's remote Helm charts, pinned by digest in ``meshfile.lock``
(library: compiler.ops.charts, compiler.render.remote)."""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from ..core.diagnostics import CompileError
from ..core.process import HELM_VAR, HelmTool, find_helm, helm_tool
from ..pipeline import Compiler, load_project
from ..render.remote import cache_folder
from .support import Options, _Session


def _load(session: _Session) -> Compiler:
    """The project, loaded without what ``_Session.compiler`` adds for rendering: no helm is
    looked for (a warm cache needs none) and the lock is not read on the way (these commands
    read it themselves, and ``update`` rewrites one that cannot be read). Call inside
    ``session.run``: errors print as diagnostics."""
    return load_project(session.files, session.name)


def _helm(session: _Session) -> Callable[[], HelmTool]:
    """The helm to pull with, found when first needed: ``$MESHC_HELM``, else ``helm`` on PATH;
    else an error saying how to provide one."""
    from ..ops.charts import no_helm

    def find() -> HelmTool:
        try:
            path = find_helm(os.environ.get(HELM_VAR), os.environ.get("PATH"),
                             given=HELM_VAR + "={}", remedy=f"set {HELM_VAR}")
        except CompileError as exc:
            raise no_helm(exc.diagnostics[0].message) from None
        return helm_tool(path, session.runner)

    return find


@click.group(invoke_without_command=True)
@click.pass_context
def charts(ctx: click.Context) -> None:
    """Remote Helm charts (`chart:` + `repo:`, or `oci://`), pinned by sha256 in meshfile.lock.

    \b
    update [CHART…]  pull the charts, pin their digests in the lock (commit it)
    fetch            fill the chart cache from the lock, each package verified
    list             the charts, their pins, whether cached (the default)
    The cache is $MESHC_CHART_CACHE, else $XDG_CACHE_HOME/meshc/charts, else
    ~/.cache/meshc/charts; helm is $MESHC_HELM, else helm on PATH.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(charts_list)


@charts.command("update")
@click.argument("names", nargs=-1, metavar="[CHART]...")
@click.pass_obj
def charts_update(options: Options, /, names: tuple[str, ...]) -> None:
    """Pull every remote chart version an environment deploys (or only the CHARTs named) and pin
    each package's sha256 in the lock; entries no environment deploys are dropped. Nothing is
    written when a pull fails.

    \b
    Example: meshc charts update
             meshc charts update grafana
    """
    from ..ops.charts import format_update, update_charts

    session = _Session(options)

    def work() -> None:
        compiler = _load(session)
        result = update_charts(compiler, cache_folder(os.environ), os.environ,
                               _helm(session), names)
        if result.unreadable:
            click.echo(f"note: {result.lock_file} could not be read: written anew", err=True)
        for line in format_update(result):
            click.echo(line)
        if not result.updates and not result.dropped:
            click.echo("no remote charts")
        click.echo(f"{result.lock_file}: {'written' if result.written else 'unchanged'}",
                   err=True)

    session.run(work)


@charts.command("fetch")
@click.pass_obj
def charts_fetch(options: Options, /) -> None:
    """Make sure every chart package the lock pins is in the cache, verified by its digest;
    fetch the missing ones (warms a CI cache). Needs helm only to fetch."""
    from ..ops.charts import fetch_charts, format_fetch

    session = _Session(options)

    def work() -> None:
        compiler = _load(session)
        result = fetch_charts(compiler, cache_folder(os.environ), os.environ,
                              _helm(session))
        for line in format_fetch(result):
            click.echo(line)
        if not result.charts and not result.failures:
            click.echo("no remote charts")
        result.raise_failures()

    session.run(work)


@charts.command("list")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--check", is_flag=True,
              help="Exit 1 when the lock is out of date: a chart not pinned, or a stale entry.")
@click.pass_obj
def charts_list(options: Options, /, fmt: str, check: bool) -> None:
    """List the remote chart versions the environments deploy, their pins and whether each
    package is cached, then the lock's stale entries."""
    from ..ops.charts import chart_status, format_status, status_json

    session = _Session(options)

    def work() -> None:
        compiler = _load(session)
        status = chart_status(compiler, cache_folder(os.environ))
        if fmt == "json":
            click.echo(status_json(status), nl=False)
        else:
            for line in format_status(status):
                click.echo(line)
        if check and not status.current:
            raise CompileError(status.problems())

    session.run(work)

