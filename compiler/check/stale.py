"""Stale output: the committed output directory must equal a fresh render of the checked
environments (compared file by file, in memory; nothing is written)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..pipeline import output_files
from .context import CheckContext, Finding

RULE = "stale-output"
SHOWN = 20  # stale files listed per environment


def check_stale(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.options.stale:
        return
    output = ctx.project.output.rstrip("/")
    root = ctx.compiler.files.root / output
    for env in ctx.environments:
        if not ctx.enabled(RULE, env):
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
