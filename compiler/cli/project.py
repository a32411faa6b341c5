"""`meshc versions`, `meshc promote`, `meshc env`: the environments side by side, and the
commands that edit the project's files (library: compiler.ops versions, promote, scaffold)."""

from __future__ import annotations

from typing import Any

import click

from ..pipeline import (
    find_release,
)
from . import support as cli_support
from .support import (
    Failed,
    Options,
    _echo,
    _paint,
    _Session,
)


def _confirm(question: str, protected: str | None) -> bool:
    """Ask before writing: y/N, or the environment's name for a protected one."""
    if protected is not None:
        answer = click.prompt(f"{question} '{protected}' is protected: type its name to confirm",
                              default="", show_default=False, err=True)
        return bool(answer.strip() == protected)
    return click.confirm(question, default=False, err=True)


@click.command()
@click.argument("environments", nargs=-1)
@click.option("--release", "releases", multiple=True, metavar="R",
              help="Only these releases (repeatable).")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--live", is_flag=True,
              help="From what runs: image tags of the live manifests, chart versions from "
                   "Helm (of ENVIRONMENTS, default all); an error when prod runs newer "
                   "than its source.")
@click.option("--helm", "helm_path", metavar="PATH",
              help="With --live: the helm binary (default: $MESHC_HELM, else PATH).")
@click.pass_obj
def versions(options: Options, /, environments: tuple[str, ...], releases: tuple[str, ...],
             fmt: str, live: bool, helm_path: str | None) -> None:
    """Print every release's versions (image tags, remote chart versions) in every environment,
    in promotion order, each compared with the environment it promotes from. With --live, the
    versions that run (helm; see `meshc status`).

    \b
    Example: meshc versions
             meshc versions --release weather-agent -o json
             meshc versions --live staging production
    """
    from ..ops.versions import format_table, table_json, version_table

    if environments and not live:
        raise click.UsageError("ENVIRONMENTS go with --live (the declared table shows all)")
    session = _Session(options)
    compiler = session.compiler(manifests=not live)

    def work() -> None:
        for name in releases:
            find_release(compiler.project, name)
        table = (_live_table(options, compiler, environments, helm_path) if live
                 else version_table(compiler, releases))
        if live and releases:
            from dataclasses import replace
            table = replace(table, rows=tuple(r for r in table.rows if r[0] in releases))
        if fmt == "json":
            click.echo(table_json(table), nl=False)
        else:
            _echo(format_table(table, compiler.project, _paint()))
        if live:
            from ..ops.live_versions import raise_broken
            raise_broken(table)

    session.run(work)


def _live_table(options: Options, compiler: Any, environments: tuple[str, ...],
                helm_path: str | None) -> Any:
    from ..core.diagnostics import format_all
    from ..ops.live import (
        LiveOptions,
        committed_plans,
        deployable,
        read_environments,
        unreachable_diagnostic,
    )
    from ..ops.live_versions import live_version_table
    from .day2 import counting, resolve_helm

    envs = deployable(compiler, environments)
    plans = committed_plans(compiler, envs)
    runner, close = counting(options.tools.runner, "helm")
    try:
        live = read_environments(plans, LiveOptions(compiler.files.root,
                                                    resolve_helm(helm_path)), runner)
    finally:
        close()
    cut_off = [unreachable_diagnostic(e) for e in live if e.unreachable is not None]
    if cut_off:  # said once per environment; the others are still shown
        click.echo(format_all(cut_off, {}), err=True, nl=False)
    return live_version_table(compiler, envs, live)


@click.command()
@click.argument("source")
@click.argument("target")
@click.option("--release", "releases", multiple=True, metavar="R",
              help="Only these releases (repeatable; default: every release).")
@click.option("--dry-run", is_flag=True, help="Only show the change; write nothing.")
@click.option("-y", "--yes", is_flag=True, help="Write without asking.")
@click.option("--render", "render_after", is_flag=True,
              help="Then run `meshc render` (rendered/ is stale after a promotion).")
@click.pass_context
def promote(ctx: click.Context, /, source: str, target: str, releases: tuple[str, ...],
            dry_run: bool, yes: bool, render_after: bool) -> None:
    """Promote SOURCE's versions into TARGET, which must promote from SOURCE (promotesFrom).

    Copies every version TARGET is behind on into TARGET's own values file (or the meshfile,
    for remote chart versions), keeping comments, order and quoting; shows the diff and asks
    before writing. Refuses a promotion against the order or one moving a version backwards.

    \b
    Example: meshc promote staging production --release weather-agent
             meshc promote development staging --dry-run
    """
    from ..ops.promote import plan_promotion, promotion_diff, promotion_summary
    from ..syntax.roundtrip import write_files

    options: Options = ctx.obj
    session = _Session(options)
    compiler = session.compiler()
    promotion = session.run(lambda: plan_promotion(compiler, source, target, releases))
    src, dst = promotion.source.name, promotion.target.name
    if promotion.notes:
        click.echo(f"note: not deployed in both, left out: {', '.join(promotion.notes)}",
                   err=True)
    if not promotion.changed:
        click.echo(f"nothing to promote from '{src}' into '{dst}': the versions of the "
                   "releases both deploy are in sync", err=True)
        return
    _echo(promotion_diff(promotion))
    click.echo(f"promote {src} -> {dst}:", err=True)
    for line in promotion_summary(promotion):
        click.echo(line, err=True)
    if promotion.moved:
        click.echo(f"also changes: {', '.join(promotion.moved)} (they read the edited files)",
                   err=True)
    # the targets whose output changes (an environment deployed in regions: its regions, moved)
    dst_env = compiler.project.environment(dst)
    touched = [*([] if dst_env is None or dst_env.has_regions else [dst]), *promotion.moved]
    protected = [name for name in touched
                 if compiler.project.environment(name).protected]  # type: ignore[union-attr]
    if protected:
        click.echo(f"note: {', '.join(protected)} {'is' if len(protected) == 1 else 'are'} "
                   "protected: review the change; applying it asks for confirmation", err=True)
    if dry_run:
        click.echo("dry run: nothing written", err=True)
        return
    if not yes:
        if not cli_support.can_prompt():
            click.echo("error: not asking without a terminal: pass --yes to write (or "
                       "--dry-run to only show); nothing written", err=True)
            raise Failed("")
        if not _confirm("Write these changes?",
                        dst if dst_env is not None and dst_env.protected else None):
            click.echo("nothing written", err=True)
            raise Failed("")
    session.run(lambda: write_files(compiler.files.root,
                                    {f: new for f, (_, new) in promotion.texts.items()},
                                    {f: old for f, (old, _) in promotion.texts.items()}))
    click.echo(f"wrote {', '.join(promotion.texts)}", err=True)
    if render_after:
        render = ctx.find_root().command.get_command(ctx, "render")  # defined in cli.py
        ctx.invoke(render, environments=())
    else:
        changed = ", ".join(touched)
        click.echo(f"{compiler.project.output.rstrip('/')}/ is stale ({changed} changed) until "
                   "`meshc render` (or promote with --render)", err=True)


@click.group("env")
def env_group() -> None:
    """Environments: list them, scaffold a new one."""


@env_group.command("list")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def env_list(options: Options, /, fmt: str) -> None:
    """List environments: inheritance, aliases, protection, promotion order, namespace."""
    from ..ops.scaffold import format_environments

    session = _Session(options)
    compiler = session.compiler()
    _echo(session.run(lambda: format_environments(compiler, fmt)))


@env_group.command("new")
@click.argument("name")
@click.option("--from", "source", required=True, metavar="ENV",
              help="Start from this environment (a copy of its settings and values).")
@click.option("--promotes-from", metavar="ENV", help="NAME promotes from ENV.")
@click.option("--promotes-to", "promotes_to", multiple=True, metavar="ENV",
              help="ENV promotes from NAME from now on (repeatable): NAME joins the chain.")
@click.option("--alias", "aliases", multiple=True, metavar="A", help="An alias (repeatable).")
@click.option("--description", help="The environment's description.")
@click.option("--dry-run", is_flag=True, help="Only show what would be written.")
@click.pass_obj
def env_new(options: Options, /, name: str, source: str, promotes_from: str | None,
            promotes_to: tuple[str, ...], aliases: tuple[str, ...], description: str | None,
            dry_run: bool) -> None:
    """Scaffold environment NAME from ENV: its meshfile entry (the rest of the meshfile kept as
    it is) and environments/NAME/values.yaml. NAME renders and plans right away.

    \b
    Example: meshc env new qa --from staging --promotes-from development
             meshc env new qa --from staging --promotes-from development --promotes-to staging
    """
    from ..ops.scaffold import new_environment, scaffold_diff
    from ..syntax.roundtrip import write_files

    session = _Session(options)
    compiler = session.compiler()
    scaffold = session.run(lambda: new_environment(compiler, name, source, promotes_from,
                                                   promotes_to, aliases, description))
    _echo(scaffold_diff(scaffold))
    made = f"a copy of {scaffold.copied_from}" if scaffold.copied_from else "a commented start"
    click.echo(f"new environment '{name}': {scaffold.values_file} ({made}); namespace"
               f"{'s' * (len(scaffold.namespaces) != 1)} {', '.join(scaffold.namespaces)}",
               err=True)
    for note in scaffold.notes:
        click.echo(f"note: {note}", err=True)
    if dry_run:
        click.echo("dry run: nothing written", err=True)
        return
    session.run(lambda: write_files(compiler.files.root,
                                    {f: new for f, (_, new) in scaffold.texts.items()},
                                    {f: old for f, (old, _) in scaffold.texts.items()}))
    output = compiler.project.output.rstrip("/")
    click.echo(f"wrote {', '.join(scaffold.texts)}; {output}/ is stale until `meshc render`; "
               f"the plan: meshc plan {name}", err=True)
