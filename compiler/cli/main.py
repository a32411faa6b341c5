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
from .charts import charts
from .check import check
from .completion import completion
from .project import env_group, promote, versions
from .render import plan, render
from .review import diff, explain, graph, values
from .schema import schema
from .secrets import secrets
from .support import Options, Tools


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-f", "--file", "meshfile", type=click.Path(path_type=Path),
              default=Path("meshfile.yaml"), show_default=True, help="The meshfile to compile.")
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
                env_group, apply, charts, schema, completion):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
