"""`meshc plan` and `meshc render`: compile environments into plans and the rendered tree
(library: compiler.pipeline, compiler.output)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..core import limits
from ..core.incomplete import require_complete
from ..ops.cost import cost_change
from ..output.journal import CHECKED, answer, command_line
from ..output.parallel import render_files
from ..output.tree import RenderRequest, render_json, render_summary, render_tree
from ..pipeline import (
    committed_files,
    find_environment,
    find_targets,
    overridden_plan_stands,
)
from ..plan.diff import review_environment
from ..plan.markdown import format_markdown, format_rollout_markdown
from ..plan.plan import (
    Plan,
    RolloutPlan,
    format_json,
    format_rollout_sh,
    format_rollout_text,
    format_sh,
    format_text,
    rollout_json,
)
from .support import (
    EXIT_CHANGES,
    Options,
    _cache,
    _echo,
    _flags,
    _paint,
    _Session,
    _set_options,
    helm_version_option,
    with_helm_version,
)


@click.command()
@click.argument("environment")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "sh", "markdown"]),
              default="text", show_default=True,
              help="text for people, json for CI, sh for a shell script, markdown for a "
                   "pull-request comment.")
@click.option("--exit-code", is_flag=True,
              help="Exit 3 when the plan differs from the committed rendered output.")
@click.option("--no-cache", is_flag=True, help="Compile every release afresh.")
@helm_version_option
@_set_options
@click.pass_obj
def plan(options: Options, /, environment: str, fmt: str, exit_code: bool, no_cache: bool,
         helm_version: int | None, **kwargs: Any) -> None:
    """Print the ordered helm plan of ENVIRONMENT (a name or an alias).

    \b
    Example: meshc plan production
             meshc plan prod -o json --set agents.weather.canary.enabled=true
             meshc plan production --helm-version 3
    """
    session = _Session(options)
    compiler = with_helm_version(session.compiler(_flags(kwargs), cache=not no_cache),
                                 helm_version)

    def work() -> int:
        env = find_environment(compiler.project, environment, regions=True)
        if env.has_regions:
            return _rollout(compiler, env, fmt, exit_code, no_cache)
        if fmt in ("text", "markdown") or exit_code:  # reviews the committed tree: at once
            require_complete(compiler.files.root, compiler.project.output, [env.name])
        plans: dict[str, Plan] = {}
        cache = _cache(compiler, no_cache)
        files = render_files(compiler, [env], cache=cache, plans=plans)
        if cache is not None:
            cache.save()
        plan = plans[env.name]
        review = cost = None
        if fmt in ("text", "json", "markdown") or exit_code:
            output = compiler.files.root / compiler.project.output
            unchanged = cache is not None and cache.environment_unchanged(output, env.name, files)
            committed = files if unchanged else committed_files(compiler, env.name)  # no reading
            name = f"{env.name}/plan.json"  # --helm-version: the committed plan is the meshfile's
            if overridden_plan_stands(env, files.get(name), committed.get(name)):
                files = {**files, name: committed[name]}
            review = review_environment(env.name, [s.release for s in plan.steps], files,
                                        committed,
                                        f"{compiler.project.output.rstrip('/')}/{env.name}")
            cost = cost_change(compiler.project, env, files, committed, plan)
        if fmt == "json":
            click.echo(format_json(plan, cost), nl=False)
        elif fmt == "sh":
            click.echo(format_sh(plan, session.name), nl=False)
        elif fmt == "markdown":
            click.echo(format_markdown(plan, review, cost), nl=False)
        else:
            _echo(format_text(plan, review, _paint(), cost))
        return EXIT_CHANGES if exit_code and review is not None and review.any else 0

    code = session.run(work)
    sys.exit(code)


def _rollout(compiler: Any, env: Any, fmt: str, exit_code: bool, no_cache: bool) -> int:
    """``meshc plan ENV`` for an environment deployed in regions: its stages, in order."""
    regions = list(compiler.project.regions_of(env))
    reviewed = fmt in ("text", "json", "markdown") or exit_code
    if reviewed:  # reviews the committed tree: at once, per region folder
        require_complete(compiler.files.root, compiler.project.output,
                         [region.name for region in regions])
    plans: dict[str, Plan] = {}
    cache = _cache(compiler, no_cache)
    files = render_files(compiler, regions, cache=cache, plans=plans)
    if cache is not None:
        cache.save()
    output = compiler.project.output.rstrip("/")
    reviews, costs = {}, {}
    for region in regions if reviewed else ():
        own = {k: v for k, v in files.items() if k.startswith(f"{region.name}/")}
        committed = committed_files(compiler, region.name)
        reviews[region.name] = review_environment(
            region.name, [s.release for s in plans[region.name].steps], own, committed,
            f"{output}/{region.name}")
        costs[region.name] = cost_change(compiler.project, region, own, committed,
                                         plans[region.name])
    rollout = RolloutPlan(env.name, env.protected, tuple(
        tuple(plans[name] for name in stage) for stage in env.stages))
    if fmt == "json":
        click.echo(json.dumps(rollout_json(rollout), indent=2, ensure_ascii=False))
    elif fmt == "sh":
        click.echo(format_rollout_sh(rollout, compiler.project.root_file), nl=False)
    elif fmt == "markdown":
        click.echo(format_rollout_markdown(rollout, reviews, costs), nl=False)
    else:
        _echo(format_rollout_text(rollout, reviews, _paint(), costs))
    return EXIT_CHANGES if exit_code and any(r.any for r in reviews.values()) else 0


@click.command()
@click.argument("environments", nargs=-1)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Write here instead of the meshfile's output directory: the same bytes, "
                   "so plan.json still names the output directory's paths (for comparing, "
                   "e.g. in CI; apply from the output directory).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes to compile with (default: one per core; small projects use one).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              metavar="SECONDS", help="Wait this long for another render into the same output "
                                       "to finish (0: fail at once).")
@click.option("--no-cache", is_flag=True,
              help="Compile every release afresh (ignore and do not update .meshc-cache/).")
@click.option("--exit-code", is_flag=True,
              help="Exit 3 when the render changed the output tree (for pre-commit hooks).")
@click.option("--fsync", "durable", is_flag=True,
              help="Flush what is written to disk before marking an environment complete, so "
                   "the crash-safety promise holds across a power loss too.")
@click.option("-v", "--verbose", is_flag=True,
              help="List every file written and removed (on stderr).")
@click.option("--json", "as_json", is_flag=True,
              help="Print what the render did as JSON on stdout: files written, removed, "
                   "unchanged.")
@_set_options
@click.pass_obj
def render(options: Options, /, environments: tuple[str, ...], out: Path | None,
           jobs: int | None, no_cache: bool, exit_code: bool, durable: bool, verbose: bool,
           as_json: bool, **kwargs: Any) -> None:
    """Write the rendered tree: values, manifests, wrapper charts and plan.json per environment.

    All deployable environments by default. Only files whose bytes change are written; an
    interrupted render is marked and refused by every command until the next render completes.

    \b
    Example: meshc render
             meshc render staging --out /tmp/rendered
    """
    flags = _flags(kwargs)
    # a full render journals what it reads; --set-file reads outside the project: not journaled
    journaled = not no_cache and not environments and all(f.kind != "set-file" for f in flags)
    command = command_line(options.meshfile, out, [(f.kind, f.text) for f in flags],
                           limits.command_line())
    if command in CHECKED:
        CHECKED.remove(command)  # the launcher checked the journal already (compiler/cli/launch.py)
    elif journaled and not as_json and answer(options.meshfile.parent, command, kwargs["lock_timeout"],
                              lambda note: click.echo(note, err=True)):
        return
    session = _Session(options, journal=journaled)
    compiler = session.compiler(flags, cache=not no_cache)

    def work() -> int:
        project = compiler.project
        envs = ([target for name in environments for target in find_targets(project, name)]
                if environments else list(project.deployable))
        target = out if out is not None else options.meshfile.parent / project.output
        request = RenderRequest(tuple(envs), target, bool(environments), jobs,
                                kwargs["lock_timeout"], detect_changes=exit_code,
                                durable=durable)
        result = render_tree(compiler, request, _cache(compiler, no_cache), journal,
                             lambda note: click.echo(note, err=True))
        if verbose:
            for rel in result.written:
                click.echo(f"wrote {rel}", err=True)
            for rel in result.removed:
                click.echo(f"removed {rel}", err=True)
        if as_json:
            click.echo(json.dumps(render_json(result), indent=2))
        click.echo(render_summary(result, [e.name for e in envs]), err=True)
        return EXIT_CHANGES if result.changed else 0

    def journal(target: Path) -> dict[str, Any] | None:
        observed = session.files.journal
        return (None if observed is None else
                {"command": command, "journal": dict(observed), "shown": str(target)})

    sys.exit(session.run(work))
