"""The ``meshc`` command line: parse options, call the library, print. Nothing else lives here.

This module holds the group and the compile/review commands; the commands that edit the
project are in :mod:`compiler.cli_project`, ``apply`` in :mod:`compiler.cli_apply`, and what they
all share (session, value flags, colour, prompts) in :mod:`compiler.cli_support`.

Exit codes: 0 success; 1 invalid input (a diagnostic was printed); 2 a malformed command line;
3 "changes found" for commands run with ``--exit-code``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__, limits
from .cli_support import (
    EXIT_CHANGES,
    EXIT_INVALID,
    Options,
    _cache,
    _canary_decrypt,
    _echo,
    _flags,
    _paint,
    _Session,
    _set_options,
)
from .diagnostics import CompileError, Diagnostic
from .diff import env_diff_json, format_env_diff, review_environment, unified_diff
from .emit import check_target, replace_environment, staged_output, write_output
from .explain import explain_value, explanation_json, format_explanation
from .graph import format_graph
from .journal import CHECKED, answer, command_line
from .keypath import KeyPathError, parse_key_path
from .lock import output_lock
from .parallel import plan_work, render_files
from .pipeline import (
    committed_files,
    compare_environments,
    compile_environment,
    find_environment,
    find_release,
    input_paths,
    output_files,
    release_output,
    values_yaml,
)
from .plan import Plan, format_json, format_sh, format_text


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-f", "--file", "meshfile", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("meshfile.yaml"), show_default=True, help="The meshfile to compile.")
@click.option("--limit", "limit_flags", multiple=True, metavar="NAME=VALUE",
              help="Raise or lower a resource limit (templateSteps=5000000, fileSize=64Mi, "
                   "memory=4Gi, …; see README 'Security'). Beyond the meshfile's limits.")
@click.version_option(__version__, prog_name="meshc")
@click.pass_context
def main(ctx: click.Context, meshfile: Path, limit_flags: tuple[str, ...]) -> None:
    """meshc compiles a meshfile into rendered Helm values, manifests and ordered helm plans."""
    try:
        overrides = limits.parse_overrides(limit_flags)
    except limits.LimitError as exc:
        raise click.BadParameter(str(exc), param_hint="--limit") from None
    ctx.with_resource(limits.session(overrides))  # the bounds, for this command only
    ctx.obj = Options(meshfile)


@main.command()
@click.argument("environment")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "sh"]), default="text",
              show_default=True, help="text for people, json for CI, sh for a shell script.")
@click.option("--exit-code", is_flag=True,
              help="Exit 3 when the plan differs from the committed rendered output.")
@click.option("--no-cache", is_flag=True, help="Compile every release afresh.")
@_set_options
@click.pass_obj
def plan(options: Options, /, environment: str, fmt: str, exit_code: bool, no_cache: bool,
         **kwargs: Any) -> None:
    """Print the ordered helm plan of ENVIRONMENT (a name or an alias).

    \b
    Example: meshc plan production
             meshc plan prod -o json --set agents.weather.canary.enabled=true
    """
    session = _Session(options)
    compiler = session.compiler(_flags(kwargs), cache=not no_cache)

    def work() -> int:
        env = find_environment(compiler.project, environment)
        plans: dict[str, Plan] = {}
        cache = _cache(compiler, no_cache)
        files = render_files(compiler, [env], cache=cache, plans=plans)
        if cache is not None:
            cache.save()
        plan = plans[env.name]
        review = None
        if fmt == "text" or exit_code:
            output = compiler.files.root / compiler.project.output
            unchanged = cache is not None and cache.environment_unchanged(output, env.name, files)
            committed = files if unchanged else committed_files(compiler, env.name)  # no reading
            review = review_environment(env.name, [s.release for s in plan.steps], files,
                                        committed,
                                        f"{compiler.project.output.rstrip('/')}/{env.name}")
        if fmt == "json":
            click.echo(format_json(plan), nl=False)
        elif fmt == "sh":
            click.echo(format_sh(plan, session.name), nl=False)
        else:
            _echo(format_text(plan, review, _paint()))
        return EXIT_CHANGES if exit_code and review is not None and review.any else 0

    code = session.run(work)
    sys.exit(code)


@main.command()
@click.argument("environments", nargs=-1)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Write here instead of the meshfile's output directory.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes to compile with (default: one per core; small projects use one).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              metavar="SECONDS", help="Wait this long for another render into the same output "
                                       "to finish (0: fail at once).")
@click.option("--no-cache", is_flag=True,
              help="Compile every release afresh (ignore and do not update .meshc-cache/).")
@_set_options
@click.pass_obj
def render(options: Options, /, environments: tuple[str, ...], out: Path | None,
           jobs: int | None, no_cache: bool, **kwargs: Any) -> None:
    """Write the rendered tree: values, manifests, wrapper charts and plan.json per environment.

    All deployable environments by default. The tree is built aside and swapped in atomically.

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
        CHECKED.remove(command)  # the launcher checked the journal already (compiler/launch.py)
    elif journaled and answer(options.meshfile.parent, command, kwargs["lock_timeout"],
                              lambda note: click.echo(note, err=True)):
        return
    session = _Session(options, journal=journaled)
    compiler = session.compiler(flags, cache=not no_cache)

    def work() -> None:
        project = compiler.project
        envs = ([find_environment(project, name) for name in environments] if environments
                else list(project.deployable))
        target = out if out is not None else options.meshfile.parent / project.output
        click.get_current_context().with_resource(  # until the command ends: compiler/lock.py
            output_lock(target, kwargs["lock_timeout"], lambda note: click.echo(note, err=True)))
        check_target(target, compiler.files.root, input_paths(compiler))
        cache = _cache(compiler, no_cache)
        work = plan_work(compiler, envs, cache)
        note = ""
        written: dict[str, tuple[int, int]] | None = None  # the files written, as written
        unchanged: set[str] = set()  # environments whose folders were left as they were
        if cache is not None and not environments and 2 * len(work.todo) <= len(work.done):
            # mostly cached: compile what is missing, then write only what changed
            files = render_files(compiler, envs, jobs, cache=cache, work=work)
            changed = cache.changed_environments(target, files)
            if changed is not None and not changed:
                cache.save()
                cache.record_output(target, files, journal(target))
                click.echo(f"{target} is up to date ({len(files)} files)", err=True)
                return
            if changed is not None and len(changed) == 1:
                (name,) = changed
                written = {}
                mine = {p: t for p, t in files.items() if p.startswith(f"{name}/")}
                replace_environment(target, name, mine, written, cache.same_files(target, mine))
                unchanged = {e.name for e in envs} - changed
                note = f" (only {name} changed: its folder was replaced)"
            else:
                write_output(target, files, [e.name for e in envs], whole=True)
        else:
            written = {} if not environments else None
            with staged_output(target, [e.name for e in envs], whole=not environments) as staging:
                files = render_files(compiler, envs, jobs, write_root=staging, cache=cache,
                                     work=work, written=written)
        if cache is not None:
            cache.save()
            if not environments:
                cache.record_output(target, files, journal(target), written, unchanged)
        click.echo(f"rendered {len(envs)} environment{'s' * (len(envs) != 1)} "
                   f"({', '.join(e.name for e in envs)}): {len(files)} files in {target}{note}",
                   err=True)

    def journal(target: Path) -> dict[str, Any] | None:
        observed = session.files.journal
        return (None if observed is None else
                {"command": command, "journal": dict(observed), "shown": str(target)})

    session.run(work)


@main.command()
@click.argument("environment")
@click.argument("release")
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
@_set_options
@click.pass_obj
def values(options: Options, /, environment: str, release: str, fmt: str, **kwargs: Any) -> None:
    """Print the computed values RELEASE's chart receives in ENVIRONMENT.

    The same content as rendered/ENVIRONMENT/RELEASE/values.yaml.

    \b
    Example: meshc values production weather-agent
    """
    session = _Session(options)
    compiler = session.compiler(_flags(kwargs))

    def work() -> None:
        env = find_environment(compiler.project, environment)
        find_release(compiler.project, release)
        result = compile_environment(compiler, env)
        found = release_output(result, release)
        if found is None:
            why = dict(result.plan.disabled).get(release, "disabled")
            raise CompileError([Diagnostic("error", f"release '{release}' is not deployed in "
                                           f"'{env.name}' ({why})")])
        if fmt == "json":
            click.echo(json.dumps(found.values.values, indent=2, sort_keys=True,
                                  ensure_ascii=False))
        else:
            click.echo(values_yaml(found.values), nl=False)
        note = found.secrets.note(found.release)  # compiler/secrets.py: names, never values
        if note:
            click.echo(note, err=True)

    session.run(work)


@main.command()
@click.argument("environment", required=False)
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "dot", "mermaid", "json"]),
              default="text", show_default=True)
@click.pass_obj
def graph(options: Options, /, environment: str | None, fmt: str) -> None:
    """Print releases and their needs (of ENVIRONMENT, or all releases with the environments'
    inheritance and promotion order).

    \b
    Example: meshc graph
             meshc graph production -o mermaid
    """
    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        enabled = None
        name = None
        if environment is not None:
            env = find_environment(compiler.project, environment)
            result = compile_environment(compiler, env)
            enabled = {o.release.name for o in result.releases}
            name = env.name
        click.echo(format_graph(compiler.project, enabled, name, fmt), nl=False)

    session.run(work)


@main.command()
@click.argument("environment")
@click.argument("release")
@click.argument("key_path", metavar="KEY.PATH")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@_set_options
@click.pass_obj
def explain(options: Options, /, environment: str, release: str, key_path: str, fmt: str,
            **kwargs: Any) -> None:
    """Explain a value: its final value and every layer that set or overrode it, strongest
    first, with file:line:col. KEY.PATH uses --set syntax (resources.limits.cpu, hosts[0].host,
    escaped dots: annotations.cert-manager\\.io/cluster-issuer). A map explains each leaf.

    \b
    Example: meshc explain production weather-agent replicaCount
             meshc explain staging weather-agent env.CACHE_TTL -o json
    """
    session = _Session(options)
    compiler = session.compiler(_flags(kwargs))

    def work() -> None:
        try:
            path = parse_key_path(key_path)
        except KeyPathError as exc:
            raise CompileError([Diagnostic("error", f"invalid KEY.PATH '{key_path}': {exc}",
                                           help="write it as --set does: a.b[0].c, "
                                                "dots in keys escaped as \\.")]) from None
        env = find_environment(compiler.project, environment)
        find_release(compiler.project, release)
        found = release_output(compile_environment(compiler, env), release)
        if found is None:
            raise CompileError([Diagnostic("error", f"release '{release}' is not deployed in "
                                           f"'{env.name}'")])
        from .values import lookup

        secret = found.secrets.explain(found.release, path)  # compiler/secrets.py: no value
        if secret is not None and not lookup(found.values.values, path)[0]:
            click.echo(json.dumps(found.secrets.explain_json(found.release, path), indent=2)
                       if fmt == "json" else secret.rstrip("\n"))
            return
        if secret is not None and fmt != "json":
            click.echo(secret.replace(" is a secret (", " also holds secrets (", 1), err=True,
                       nl=False)
        exp = explain_value(found.values, path)
        if fmt == "json":
            click.echo(json.dumps(explanation_json(exp, compiler.sources), indent=2,
                                  ensure_ascii=False))
        else:
            _echo(format_explanation(exp, compiler.sources, _paint()))

    session.run(work)


@main.command()
@click.argument("environments", nargs=-1, required=True)
@click.option("--release", "releases", multiple=True, metavar="R",
              help="Only these releases (repeatable).")
@click.option("--rendered", is_flag=True,
              help="With one ENV: a unified diff of the committed output against a fresh "
                   "compile.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 3 when there are differences.")
@_set_options
@click.pass_obj
def diff(options: Options, /, environments: tuple[str, ...], releases: tuple[str, ...],
         rendered: bool, fmt: str, exit_code: bool, **kwargs: Any) -> None:
    """Compare two environments (ENV_A ENV_B): per release, the computed values added, removed
    and changed (with each side's provenance) and the manifests that differ. With --rendered
    and one ENV: what a render would change in the committed output, as a unified diff.

    \b
    Example: meshc diff staging production
             meshc diff staging production --release registry -o json
             meshc diff --rendered production --exit-code
    """
    session = _Session(options)
    compiler = session.compiler(_flags(kwargs))
    if rendered and len(environments) != 1:
        raise click.UsageError("--rendered takes exactly one environment")
    if not rendered and len(environments) != 2:
        raise click.UsageError("give two environments to compare (or --rendered ENV)")

    def work() -> int:
        envs = [find_environment(compiler.project, name) for name in environments]
        for name in releases:
            find_release(compiler.project, name)
        results = [compile_environment(compiler, env) for env in envs]
        if rendered:
            files = output_files(results[0])
            committed = committed_files(compiler, envs[0].name)
            if releases:
                keep = tuple(f"{envs[0].name}/{r}/" for r in releases)
                files = {p: t for p, t in files.items() if p.startswith(keep)}
                committed = {p: t for p, t in committed.items() if p.startswith(keep)}
            text = unified_diff(files, committed, compiler.project.output.rstrip("/"))
            _echo(text)
            return EXIT_CHANGES if exit_code and text else 0
        diffs = compare_environments(compiler.project, results[0], results[1], releases)
        if fmt == "json":
            click.echo(json.dumps(env_diff_json(envs[0].name, envs[1].name, diffs,
                                                compiler.sources), indent=2, ensure_ascii=False))
        else:
            _echo(format_env_diff(envs[0].name, envs[1].name, diffs, compiler.sources, _paint()))
        return EXIT_CHANGES if exit_code and any(d.differs for d in diffs) else 0

    sys.exit(session.run(work))


@main.command()
@click.argument("environments", nargs=-1)
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True,
              help="text for people (stderr), json for tools, github for GitHub Actions "
                   "annotations (both on stdout).")
@click.option("--no-stale", is_flag=True, help="Skip comparing the committed rendered output.")
@click.pass_obj
def check(options: Options, /, environments: tuple[str, ...], fmt: str, no_stale: bool) -> None:
    """Check ENVIRONMENTS (default: every deployable one): Kubernetes schemas, policies,
    promotion order, stale rendered output, graph sanity. Exit 1 on any error.

    \b
    Example: meshc check
             meshc check production -o github
    """
    from .check import CheckOptions, run_checks
    from .check.report import format_github, format_json, format_text

    session = _Session(options)
    compiler = session.compiler()

    def work() -> int:
        project = compiler.project
        envs = ([find_environment(project, name) for name in dict.fromkeys(environments)]
                if environments else list(project.deployable))
        report = run_checks(compiler, envs, CheckOptions(stale=not no_stale,
                                                         decrypt=_canary_decrypt(compiler)))
        sources = {**compiler.sources, **report.sources}
        if fmt == "json":
            click.echo(format_json(report, sources), nl=False)
        elif fmt == "github":
            click.echo(format_github(report, sources), nl=False)
        else:
            click.echo(format_text(report, sources), err=True, nl=False)
        return EXIT_INVALID if report.errors else 0

    sys.exit(session.run(work))


# --- the commands that live in their own modules ----------------------------------------
from .cli_apply import apply
from .cli_project import env_group, promote, secrets, versions

main.add_command(secrets)
main.add_command(versions)
main.add_command(promote)
main.add_command(env_group)
main.add_command(apply)


if __name__ == "__main__":  # pragma: no cover
    main()
