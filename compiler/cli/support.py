"""What every meshc command shares: global options, the session that loads the project
and turns failures into diagnostics, Helm's value flags, colour, prompts, the caches."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor  # a worker process lost (killed by a limit)
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import click

from ..core.diagnostics import CompileError, Diagnostic, MeshcError, format_all
from ..core.files import ProjectFiles, read_bounded
from ..core.limits import resource_exhausted
from ..core.process import HelmTool, Runner, helm_tool, run_process
from ..output.cache import Cache, ParsedValues
from ..output.emit import EmitError
from ..output.journal import CACHE_DIR
from ..pipeline import (
    Compiler,
    SetFlag,
    load_project,
    with_sets,
)
from ..render.remote import ChartStore, cache_folder, lock_name, read_lock
from ..syntax.strvals import SetError

EXIT_INVALID = 1      # a diagnostic was printed (MeshcError.exit_code)
EXIT_CHANGES = 3      # --exit-code: changes found
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: what ran was let finish, nothing else started


@dataclass(frozen=True, slots=True)
class Tools:
    """How commands reach external tools (``meshc apply``'s and ``meshc check``'s helm). ``meshc``
    uses the real processes; a caller of :func:`compiler.cli.main.main` may pass its own as
    click's ``obj`` (tests record helm calls in-process this way)."""

    runner: Runner = run_process


@dataclass(frozen=True, slots=True)
class Options:
    """Global options, frozen once parsed."""

    meshfile: Path
    tools: Tools = Tools()


class Failed(click.ClickException):
    """Diagnostics were printed already; exit 1 without a second message."""

    exit_code = EXIT_INVALID

    def show(self, file: Any = None) -> None:
        pass


def _report(exc: CompileError, sources: dict[str, str]) -> NoReturn:
    click.echo(format_all(exc.diagnostics, sources), err=True, nl=False)
    raise Failed("")


@contextmanager
def _diagnostics(compiler_holder: list[Compiler], files: ProjectFiles,
                 also: Callable[[CompileError, dict[str, str]], None] | None = None
                 ) -> Iterator[None]:
    try:
        yield
    except CompileError as exc:
        sources = compiler_holder[0].sources if compiler_holder else files.texts
        if also is not None:  # e.g. `check -o json`: the errors on stdout too, for CI
            also(exc, {**sources, **exc.sources})
        _report(exc, {**sources, **exc.sources})
    except EmitError as exc:
        click.echo(f"error: {exc}", err=True)
        raise Failed("") from None
    except (MemoryError, RecursionError, BrokenExecutor) as exc:  # resource limits
        click.echo(f"error: {resource_exhausted(exc)}", err=True)
        raise Failed("") from None
    except OSError as exc:  # an input or output the OS refused: say which, no traceback
        click.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        raise Failed("") from None
    except MeshcError as exc:  # any other error of meshc's own: its message, its exit code
        click.echo(f"error: {exc}", err=True)
        failed = Failed("")
        failed.exit_code = exc.exit_code
        raise failed from None


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


def helm_version_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--helm-version 3|4``: the Helm the plan's command lines are for, over the meshfile's
    ``helmVersion:``."""
    return click.option(
        "--helm-version", "helm_version", type=click.Choice(["3", "4"]), default=None,
        callback=lambda ctx, param, value: None if value is None else int(value),
        help="Write the helm commands for this Helm major version (over the meshfile's "
             "helmVersion:, default 4).")(func)


def with_helm_version(compiler: Any, major: int | None) -> Any:
    """``compiler`` with its plans for Helm ``major`` (``--helm-version``), when given."""
    if major is None:
        return compiler
    from ..pipeline import with_helm_version as override

    return override(compiler, major)


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


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Load the project with Python's cyclic garbage collector paused, then keep what was
    loaded out of its sight (``gc.freeze``). Loading builds a large, acyclic tree of values
    (a million objects at a thousand services), and each full collection on the way walked
    all of it again: a tenth of a large render. Nothing is lost: acyclic objects are freed by
    reference counting as ever, and the collector runs again afterwards, on new objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class _Session:
    """Loads the project once per command and turns failures into diagnostics."""

    def __init__(self, options: Options, journal: bool = False) -> None:
        # templates read only the variables the meshfile's allowEnv lists (compiler/render/sandbox.py);
        # with ``journal`` every observation of the project is noted (compiler/output/journal.py)
        self.files = ProjectFiles(options.meshfile.parent, os.environ,
                                  journal={} if journal else None)
        self.name = options.meshfile.name
        self.holder: list[Compiler] = []
        self.runner = options.tools.runner
        self.unrendered: list[str] = []  # Helm-chart releases, when there is no helm
        self.helm3: HelmTool | None = None  # the helm found, when it is not Helm 4
        # told of a CompileError before it is printed (check's structured outputs)
        self.on_error: Callable[[CompileError, dict[str, str]], None] | None = None

    def compiler(self, flags: list[SetFlag] | None = None, cache: bool = True,
                 manifests: bool = True) -> Compiler:
        """The project, loaded. ``manifests=False``: values only (Helm charts are not
        rendered, helm is not looked for)."""
        with _diagnostics(self.holder, self.files, self.on_error):
            parsed = ParsedValues(self.files.root / CACHE_DIR) if cache else None
            with _collector_paused():
                compiler = load_project(self.files, self.name, parsed)
            if parsed is not None:
                parsed.save()
            helm_charts = [r.name for r in compiler.project.releases if r.chart.is_helm]
            if not manifests:
                compiler = replace(compiler, helm_manifests=False)
            elif helm_charts:
                compiler = replace(compiler, helm=_render_helm(self.files, self.runner, cache))
                if compiler.renderer is None:
                    self.unrendered = helm_charts
                    self.helm3 = compiler.helm
            if helm_charts:  # the lock of remote charts; the renders memo for all of them
                compiler = replace(compiler, charts=chart_store(self.files, self.name, cache))
            self.holder.append(compiler)
            if flags:
                compiler = with_sets(compiler, flags, _read_set_file)
                self.holder[0] = compiler
            return compiler

    def run(self, func: Callable[[], Any]) -> Any:
        with _diagnostics(self.holder, self.files, self.on_error):
            result = func()
        if self.unrendered:  # it worked without helm: the committed review stood in
            why = (f"{self.helm3.path} is Helm {self.helm3.version}, and meshc renders Helm "
                   "charts with Helm 4 only" if self.helm3 is not None else "no helm")
            click.echo(f"warning: {why}: the Helm-chart releases ({', '.join(self.unrendered)})"
                       " are the committed review (their inputs are unchanged since it was "
                       "rendered), neither re-rendered nor checked by Helm; install Helm 4 (or "
                       "set MESHC_HELM) to render them", err=True)
        return result




def chart_store(files: ProjectFiles, meshfile: str, memoise: bool = True) -> ChartStore:
    """The remote charts' lock (read through ``files``: a render's journal covers it) and the
    chart cache this process uses (``$MESHC_CHART_CACHE``, else the user's cache folder), with
    its memo of Helm charts' renders unless ``memoise`` is False (``--no-cache``)."""
    name = lock_name(meshfile)
    return ChartStore(read_lock(files, name), name, cache_folder(os.environ), os.environ,
                      memoise=memoise)


# --- helm (check's helm rule) ---------------------------------------------------------------

def _check_helm() -> tuple[str | None, str | None]:
    """The helm binary of ``meshc check``'s helm rule: ``$MESHC_HELM``, else ``helm`` on PATH
    (only the CLI reads the environment). ``(None, why)`` when there is none: the rule is then
    skipped with a note, not failed."""
    from ..core.process import HELM_VAR, find_helm

    explicit = os.environ.get(HELM_VAR)
    try:
        return find_helm(explicit, os.environ.get("PATH"), given=HELM_VAR + "={}",
                         remedy=f"set {HELM_VAR}"), None
    except CompileError as exc:
        return None, exc.diagnostics[0].message if explicit else None


def _render_helm(files: ProjectFiles, runner: Runner, cache: bool = True) -> HelmTool | None:
    """The helm that renders the project's Helm charts (``$MESHC_HELM``, else ``helm`` on
    PATH), its version asked once per command, and kept in the chart cache for that binary
    unless ``cache`` is False (``--no-cache``); None when there is none (compiling a Helm chart
    then says so, naming the releases left unrendered). Read through ``files`` so a render's
    journal notes which helm it used, and is not trusted once that changes."""
    from ..core.process import HELM_VAR, find_helm
    from ..render.remote import cache_folder

    explicit = files.environ.get(HELM_VAR)
    try:
        helm = find_helm(explicit, files.environ.get("PATH"), given=HELM_VAR + "={}",
                         remedy=f"set {HELM_VAR}")
    except CompileError:
        return None
    files.tool_stamp(helm)
    # kept only when the binary itself answered: a runner standing in for helm (tests) may
    # answer anything, and must not leave that answer for the real binary
    kept = cache and getattr(runner, "runs_binaries", runner is run_process)
    return helm_tool(helm, runner, cache_folder(os.environ) / "helm-versions" if kept else None)


# --- sops (secrets commands, apply, check's canary) ---------------------------------------

def _sops_tools(need_key: bool) -> tuple[Any, Any]:
    """The sops binary and the age key, from the process environment (only the CLI reads it)."""
    import os

    from ..secrets.sops import SOPS_VAR, SopsError, age_key_from_environ, find_sops

    try:
        sops = find_sops(os.environ.get("PATH"), os.environ.get(SOPS_VAR))
    except SopsError as exc:
        raise CompileError([Diagnostic("error", exc.message, None, exc.help)]) from None
    return sops, age_key_from_environ(os.environ) if need_key else None


def _canary_decrypt(compiler: Compiler) -> Callable[[Any], bytes] | None:
    """For ``meshc check``'s canary scan: decrypt a secrets file in memory, when a key is set."""
    import os

    from ..secrets.sops import SOPS_VAR, SopsError, age_key_from_environ, decrypt, find_sops

    key = age_key_from_environ(os.environ)
    if not key.available:
        return None

    def run(source: Any) -> bytes:
        sops = find_sops(os.environ.get("PATH"), os.environ.get(SOPS_VAR))
        return decrypt(sops, compiler.files.root, source.path, key,
                       [t.value for t in source.recipients], source.owner)

    _ = SopsError  # raised by run(); the check reports it
    return run




def confirm_protected(plan: Any, yes: bool, verb: str = "apply",
                       change: str = "upgraded") -> None:
    """A protected environment's plan runs after its name is typed, or with --yes (``verb``:
    apply, roll back; ``change``: what happens to its releases)."""
    if not plan.protected or yes:
        return
    env = plan.environment
    if not can_prompt():
        raise CompileError([Diagnostic(
            "error", f"environment '{env}' is protected and there is no terminal to confirm on",
            help=f"pass --yes to {verb} without asking (e.g. in CI, after review)")])
    where = f" (kube-context {plan.kube_context})" if plan.kube_context else ""
    count = len(plan.steps)
    click.echo(f"'{env}' is protected: {count} release{'s' * (count != 1)} will be {change}"
               f"{where}.", err=True)
    try:
        answer = click.prompt(f"Type '{env}' to {verb}", default="", show_default=False,
                              err=True)
    except click.Abort:
        answer = ""
    if answer.strip() != env:
        raise CompileError([Diagnostic("error", f"cancelled: '{env}' was not confirmed")])


def can_prompt() -> bool:
    """Whether a person can answer a question on stdin (tests replace this)."""
    return sys.stdin.isatty()
