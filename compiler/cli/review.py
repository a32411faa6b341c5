"""`meshc values`, `graph`, `explain`, `diff`: look at what a compile produces, and why
(library: compiler.values, compiler.model.graph, compiler.plan.diff)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..core.diagnostics import CompileError, Diagnostic
from ..core.incomplete import require_complete
from ..model.graph import format_graph
from ..pipeline import (
    committed_files,
    compare_environments,
    compile_environment,
    find_environment,
    find_release,
    output_files,
    release_output,
    values_yaml,
)
from ..plan.diff import (
    env_diff_json,
    format_env_diff,
    paint_unified,
    rendered_diff_json,
    unified_diff,
)
from ..syntax.keypath import KeyPathError, parse_key_path
from ..values.explain import explain_value, explanation_json, format_explanation
from .support import (
    EXIT_CHANGES,
    Options,
    _echo,
    _flags,
    _paint,
    _Session,
    _set_options,
)


@click.command()
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
    compiler = session.compiler(_flags(kwargs), manifests=False)  # values only: no helm

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
        note = found.secrets.note(found.release)  # compiler/secrets/secrets.py: names, never values
        if note:
            click.echo(note, err=True)

    session.run(work)

@click.command()
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
    compiler = session.compiler(manifests=False)  # values only: no helm

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

@click.command()
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
    compiler = session.compiler(_flags(kwargs), manifests=False)  # values only: no helm

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
        from ..values.values import lookup

        secret = found.secrets.explain(found.release, path)  # compiler/secrets/secrets.py: no value
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

@click.command()
@click.argument("environments", nargs=-1, required=True)
@click.option("--release", "releases", multiple=True, metavar="R",
              help="Only these releases (repeatable).")
@click.option("--rendered", is_flag=True,
              help="With one ENV: a unified diff of the committed output against a fresh "
                   "compile (-o json: the files that change, each with its diff).")
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
        if rendered:  # before compiling: an interrupted render is refused at once
            require_complete(compiler.files.root, compiler.project.output, [envs[0].name])
        results = [compile_environment(compiler, env) for env in envs]
        if rendered:
            files = output_files(results[0])
            committed = committed_files(compiler, envs[0].name)
            if releases:
                keep = tuple(f"{envs[0].name}/{r}/" for r in releases)
                files = {p: t for p, t in files.items() if p.startswith(keep)}
                committed = {p: t for p, t in committed.items() if p.startswith(keep)}
            root = compiler.project.output.rstrip("/")
            if fmt == "json":
                data = rendered_diff_json(envs[0].name, files, committed, root)
                click.echo(json.dumps(data, indent=2, ensure_ascii=False))
                return EXIT_CHANGES if exit_code and data["changed"] else 0
            text = unified_diff(files, committed, root)
            _echo(paint_unified(text, _paint()))
            if not text:  # on stderr: stdout stays a diff (empty) for `git apply` and friends
                click.echo(f"no changes: a render would leave {root}/{envs[0].name} as it is",
                           err=True)
            return EXIT_CHANGES if exit_code and text else 0
        diffs = compare_environments(compiler.project, results[0], results[1], releases)
        if fmt == "json":
            click.echo(json.dumps(env_diff_json(envs[0].name, envs[1].name, diffs,
                                                compiler.sources), indent=2, ensure_ascii=False))
        else:
            _echo(format_env_diff(envs[0].name, envs[1].name, diffs, compiler.sources, _paint()))
        return EXIT_CHANGES if exit_code and any(d.differs for d in diffs) else 0

    sys.exit(session.run(work))
