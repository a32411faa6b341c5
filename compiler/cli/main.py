"""The ``meshc`` command line: parse options, call the library, print. Nothing else lives here.

This module holds the group and the compile/review commands; the commands that edit the
project are in :mod:`compiler.cli.project`, ``apply`` in :mod:`compiler.cli.apply`, and what they
all share (session, value flags, colour, prompts) in :mod:`compiler.cli.support`.

Exit codes (compiler.cli.support): 0 success; 1 invalid input (a diagnostic was printed); 2 a
malformed command line; 3 "changes found" for commands run with ``--exit-code``; 130
interrupted.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ..core import limits
from .apply import apply
from .bluegreen import switch
from .charts import charts
from .check import check
from .completion import completion
from .cost import cost
from .day2 import drift, history, rollback, status, verify
from .gitops import ci_group, export_group
from .project import env_group, promote, versions
from .render import plan, render
from .review import diff, explain, graph, values
from .schema import schema
from .secrets import secrets
from .support import Options, Tools

_GLOBAL_WITH_VALUE = ("-f", "--file", "--limit")


def _options_of(command: click.Command) -> set[str]:
    """Every option name ``command`` (and, for a group, any command under it) declares."""
    names = {opt for param in command.params for opt in getattr(param, "opts", ())}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= _options_of(sub)
    return names


def hoist_file_option(group: click.Group, args: list[str]) -> list[str]:
    """``args`` with a ``-f/--file PATH`` written after the command moved before it, where
    the group's option is parsed: ``meshc plan prod -f x.yaml`` as Helmfile users type it. A
    command with a ``--file`` of its own (``secrets edit --file``) keeps it."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        i += 2 if args[i] in _GLOBAL_WITH_VALUE else 1
    if i >= len(args) or args[i] == "--":
        return args
    command = group.commands.get(args[i])
    own = _options_of(command) if command is not None else set()
    head, rest, moved = args[:i + 1], args[i + 1:], []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg == "--":
            kept += rest[j:]
            break
        if arg in ("-f", "--file") and arg not in own and j + 1 < len(rest):
            moved += [arg, rest[j + 1]]
            j += 2
            continue
        if arg.startswith("--file=") and "--file" not in own:
            moved.append(arg)
        else:
            kept.append(arg)
        j += 1
    return [*moved, *head, *kept] if moved else args


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_file_option(self, list(args)))


@click.group(cls=_Group,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-f", "--file", "meshfile", type=click.Path(path_type=Path),
              default=Path("meshfile.yaml"), show_default=True,
              help="The meshfile to compile (before or after the command).")
@click.option("--limit", "limit_flags", multiple=True, metavar="NAME=VALUE",
              help="Raise or lower a resource limit (templateSteps=5000000, fileSize=64Mi, "
                   "memory=4Gi, …; see docs/security.md). Beyond the meshfile's limits.")
@click.version_option(__version__, prog_name="meshc")
@click.pass_context
def main(ctx: click.Context, meshfile: Path, limit_flags: tuple[str, ...]) -> None:
    """meshc compiles a meshfile into rendered Helm values, manifests and ordered helm plans."""
    try:
        overrides = limits.parse_overrides(limit_flags)
    except limits.LimitError as exc:
        raise click.BadParameter(str(exc), param_hint="--limit") from None
    ctx.with_resource(limits.session(overrides))  # the bounds, for this command only
    ctx.obj = Options(meshfile, ctx.obj if isinstance(ctx.obj, Tools) else Tools())


for command in (plan, render, values, graph, explain, diff, check, secrets, versions, promote,
                switch, env_group, apply, status, drift, history, rollback, verify, charts,
                export_group, ci_group, cost, schema, completion):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
