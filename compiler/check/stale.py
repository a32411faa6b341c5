"""Stale output: the committed output directory must equal a fresh render of the checked
environments (compared file by file, in memory; nothing is written). Stale exports: a committed
GitOps export (``gitops/<engine>/<env>/``) must equal a fresh export made with the options it
was made with (read back from it); its encrypted Secrets are compared by the digest of their
sources, so no key is needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..core.diagnostics import CompileError
from ..core.incomplete import INCOMPLETE, incomplete_diagnostic, is_incomplete
from ..gitops.model import DEFAULT_OUT, ENGINES, export_environment
from ..gitops.stale import committed_options, differences, export_files
from ..model.model import Environment
from ..pipeline import output_files
from .context import CheckContext, Finding

RULE = "stale-output"
EXPORT_RULE = "stale-export"
SHOWN = 20  # stale files listed per environment


def check_stale(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.options.stale:
        return
    output = ctx.project.output.rstrip("/")
    root = ctx.compiler.files.root / output
    for env in ctx.environments:
        if not ctx.enabled(RULE, env):
            continue
        if is_incomplete(root / env.name):  # a mix of old and new files: not compared
            finding = ctx.finding(RULE, env, incomplete_diagnostic(output, env.name).message,
                                  env.span, help="a render was stopped while it replaced "
                                  f"files (the folder holds {INCOMPLETE}); `meshc render` "
                                  "completes it")
            if finding is not None:
                yield finding
            continue
        fresh = output_files(ctx.output(env))
        differ = _differences(root, env.name, fresh)
        if not differ:
            continue
        listed = [f"{kind}: {output}/{path}" for kind, path in differ[:SHOWN]]
        if len(differ) > SHOWN:
            listed.append(f"... and {len(differ) - SHOWN} more")
        count = len(differ)
        finding = ctx.finding(
            RULE, env, f"{output}/{env.name} is stale: {count} file{'s' * (count != 1)} "
            f"{'differs' if count == 1 else 'differ'} from a fresh render", env.span, help="run `meshc render` and commit "
            f"{output}/", notes=tuple(listed))
        if finding is not None:
            yield finding


def _differences(root: Path, env: str, fresh: dict[str, str]) -> list[tuple[str, str]]:
    folder = root / env
    on_disk = ({p.relative_to(root).as_posix() for p in folder.rglob("*") if p.is_file()}
               if folder.is_dir() else set())
    differ = []
    for path in sorted(set(fresh) | on_disk):
        if path not in on_disk:
            differ.append(("missing", path))
        elif path not in fresh:
            differ.append(("not rendered any more", path))
        else:
            try:
                same = (root / path).read_bytes().decode("utf-8") == fresh[path]
            except (OSError, UnicodeDecodeError):
                same = False
            if not same:
                differ.append(("changed", path))
    return differ


def check_stale_exports(ctx: CheckContext) -> Iterator[Finding]:
    """Each committed export under ``gitops/`` (the default place) against a fresh one."""
    if not ctx.options.stale:
        return
    root = ctx.compiler.files.root
    for env in ctx.environments:
        if not ctx.enabled(EXPORT_RULE, env):
            continue
        for engine in ENGINES:
            engine_dir = root / DEFAULT_OUT / engine
            if not (engine_dir / env.name).is_dir():
                continue
            finding = _stale_export(ctx, env, engine, engine_dir)
            if finding is not None:
                yield finding


def _stale_export(ctx: CheckContext, env: Environment, engine: str,
                  engine_dir: Path) -> Finding | None:
    shown = f"{DEFAULT_OUT}/{engine}/{env.name}"
    again = f"run `meshc export {engine} {env.name}` and commit {shown}/"
    options = committed_options(engine_dir, engine, env.name)
    if options is None:
        return ctx.finding(EXPORT_RULE, env, f"{shown} is not an export meshc can read back",
                           env.span, help=f"export it again with --repo-url: {again}")
    files = ctx.compiler.files
    xenv = export_environment(ctx.output(env), ctx.project.name)
    source_bytes = {item: files.locate(item).read_bytes()
                    for item in sorted({s.file for r in xenv.releases for s in r.secrets})}
    try:
        fresh, secrets = export_files(engine, xenv, options, f"{DEFAULT_OUT}/{engine}",
                                      source_bytes)
    except CompileError as exc:
        return ctx.finding(EXPORT_RULE, env, f"{shown} cannot be exported any more: "
                           f"{exc.diagnostics[0].message}", env.span, help=exc.diagnostics[0].help)
    differ = differences(engine_dir, env.name, fresh, secrets)
    if not differ:
        return None
    listed = [f"{kind}: {DEFAULT_OUT}/{engine}/{path}" for kind, path in differ[:SHOWN]]
    if len(differ) > SHOWN:
        listed.append(f"... and {len(differ) - SHOWN} more")
    count = len(differ)
    return ctx.finding(
        EXPORT_RULE, env, f"{shown} is stale: {count} file{'s' * (count != 1)} "
        f"{'differs' if count == 1 else 'differ'} from a fresh export", env.span, help=again,
        notes=tuple(listed))

