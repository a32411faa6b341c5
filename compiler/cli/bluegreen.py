"""`meshc switch`: make a blue-green release's idle slot live (library: compiler.ops.switch)."""

from __future__ import annotations

import difflib

import click

from ..core.diagnostics import CompileError, Diagnostic
from . import support as cli_support
from .support import Options, _echo, _Session


@click.command()
@click.argument("environment")
@click.argument("release")
@click.option("--back", is_flag=True,
              help="Go back to the slot that was live before (undoes a switch).")
@click.option("--force", is_flag=True,
              help="Switch although the slot was never deployed in this version, or runs a "
                   "version behind the live one.")
@click.option("--record", is_flag=True,
              help="Switch nothing: record which slot is live and what it runs, so that a "
                   "later version change in the values files reaches the idle slot only.")
@click.option("--dry-run", is_flag=True, help="Only show the change; write nothing.")
@click.option("--yes", is_flag=True, help="Switch a protected environment without asking.")
@click.pass_context
def switch(ctx: click.Context, /, environment: str, release: str, back: bool, force: bool,
           record: bool, dry_run: bool, yes: bool) -> None:
    """Make the idle slot of blue-green RELEASE live in ENVIRONMENT.

    Edits bluegreen/ENVIRONMENT.yaml (comments kept), shows the diff, then renders the
    environment: its plan changes the router only. Apply it to move the traffic.

    \b
    Example: meshc switch production/eu-west weather-agent
             meshc switch production/eu-west weather-agent --back
             meshc switch production/eu-west weather-agent --record
    """
    from ..ops.switch import plan_record, plan_switch, switch_summary
    from ..syntax.roundtrip import write_files

    options: Options = ctx.obj
    session = _Session(options)
    if record and (back or force):
        raise click.UsageError("--record switches nothing: it takes neither --back nor --force")
    compiler = session.compiler()
    change = session.run(lambda: plan_record(compiler, environment, release) if record else
                         plan_switch(compiler, environment, release, back, force))
    env = change.env
    _echo("".join(difflib.unified_diff((change.old_text or "").splitlines(keepends=True),
                                       change.new_text.splitlines(keepends=True),
                                       f"a/{change.file}", f"b/{change.file}")))
    for line in switch_summary(change):
        click.echo(line, err=True)
    if dry_run or not change.changed:
        click.echo("dry run: nothing written" if dry_run else "nothing to write", err=True)
        return
    if env.protected and not yes and not record:  # a record moves no traffic
        session.run(lambda: _confirm(env.name, env.kube_context))
    session.run(lambda: write_files(compiler.files.root, {change.file: change.new_text},
                                    {change.file: change.old_text}))
    click.echo(f"wrote {change.file}", err=True)
    render = ctx.find_root().command.get_command(ctx, "render")  # type: ignore[attr-defined]
    ctx.invoke(render, environments=(env.name,))


def _confirm(env: str, kube_context: str | None) -> None:
    """A protected environment's switch goes ahead once its name is typed (as apply asks)."""
    if not cli_support.can_prompt():
        raise CompileError([Diagnostic(
            "error", f"environment '{env}' is protected and there is no terminal to confirm on",
            help="pass --yes to switch without asking (e.g. in CI, after review)")])
    where = f" (kube-context {kube_context})" if kube_context else ""
    click.echo(f"'{env}' is protected: the switch moves its traffic once applied{where}.",
               err=True)
    try:
        answer = click.prompt(f"Type '{env}' to switch", default="", show_default=False,
                              err=True)
    except click.Abort:
        answer = ""
    if answer.strip() != env:
        raise CompileError([Diagnostic("error", f"cancelled: '{env}' was not confirmed")])
