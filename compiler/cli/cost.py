"""`meshc cost`: the estimated monthly cost of environments (library: compiler.ops.cost)."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..cost.report import change_text, format_change_json, format_json, format_markdown
from ..cost.report import format_text as cost_text
from ..cost.svg import format_svg
from ..ops.cost import estimate_costs
from ..ops.live import deployable
from .support import Options, _cache, _echo, _flags, _Session, _set_options


@click.command()
@click.argument("environments", nargs=-1)
@click.option("-o", "--output", "fmt", default="text", show_default=True,
              type=click.Choice(["text", "json", "markdown", "svg"]),
              help="text for people, json for CI, markdown for a PR comment, svg for a chart.")
@click.option("--by", type=click.Choice(["release", "kind"]), default="release",
              show_default=True, help="Rows (and the chart's stacks) per release or per kind.")
@click.option("--diff", is_flag=True,
              help="Compare with the committed rendered output: before, after, per release.")
@click.option("--no-cache", is_flag=True, help="Compile every release afresh.")
@_set_options
@click.pass_obj
def cost(options: Options, /, environments: tuple[str, ...], fmt: str, by: str, diff: bool,
         no_cache: bool, **kwargs: Any) -> None:
    """Estimate the monthly cost of ENVIRONMENTS (default: every deployable one) from their
    rendered manifests: CPU and memory requests, GPUs, storage, load balancers.

    \b
    Example: meshc cost
             meshc cost production --diff --set registry.replicaCount=8
             meshc cost -o svg > cost.svg
    """
    session = _Session(options)
    compiler = session.compiler(_flags(kwargs), cache=not no_cache)

    def work() -> int:
        envs = deployable(compiler, environments)  # each once; a name deployed in regions: its regions
        cache = _cache(compiler, no_cache)
        report = estimate_costs(compiler, envs, diff=diff, cache=cache)
        if cache is not None:
            cache.save()
        if diff and fmt == "json":
            click.echo(format_change_json(report.changes), nl=False)
        elif diff and fmt == "text":
            texts = [f"{c.after.environment} (against the committed output)\n" + change_text(c)
                     for c in report.changes]
            _echo("\n".join(texts) + "\n" + cost_text(report.estimates, by))
        elif fmt == "json":
            click.echo(format_json(report.estimates, by), nl=False)
        elif fmt == "markdown":
            click.echo(format_markdown(report.estimates, by), nl=False)
        elif fmt == "svg":
            click.echo(format_svg(report.estimates, by), nl=False)
        else:
            _echo(cost_text(report.estimates, by))
        return 0

    sys.exit(session.run(work))
