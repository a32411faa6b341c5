"""``meshc promote SRC DST``: copy SRC's versions into DST's own files, along the promotion order.

For every selected release deployed in both environments and every version it has in both
(:mod:`compiler.ops.versions`), DST must be behind SRC or in sync: a promotion against the declared
order (DST does not promote from SRC), or one that would move a version backwards or between
versions that cannot be ordered, is refused before anything is written.

Where a value is written — the place a careful person would edit:

* a values key: the values file of DST's own (the files DST itself lists, not its ancestors')
  that sets it today; otherwise DST's last own values file, where the missing keys are added.
  A value fixed for every environment (by a release's own ``values:`` in the meshfile) cannot be
  promoted per environment and is refused;
* a remote chart's version: DST's own ``chartVersions:`` entry when it has one; else the
  release's ``version:`` when every environment reading it is DST or inherits from DST (so the
  edit moves nothing else); else a new ``chartVersions:`` entry in DST's meshfile entry.

The edits are made with :mod:`compiler.syntax.roundtrip` (comments, order, quoting, blank lines kept),
then the whole project is loaded again in memory with the edited texts: DST must now run SRC's
versions, and no environment may end up ahead of its source. Only then can anything be written,
atomically. Environments inheriting DST's files move with it; they are named.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..core.files import ProjectFiles
from ..core.source import Span
from ..model.load import load_meshfile
from ..model.model import Environment, Project
from ..pipeline import Compiler, find_environment, find_release, reload_project
from ..syntax.roundtrip import Change, EditError, edit_text
from ..syntax.yamlsrc import Path as ValuePath
from ..values.values import ValueSet
from .versions import (
    AHEAD,
    CHART,
    IN_SYNC,
    UNORDERABLE,
    UNSET,
    EnvVersions,
    Version,
    compare_versions,
    environment_versions,
    version_table,
)


@dataclass(frozen=True, slots=True)
class Edit:
    """One version promoted: release, key, the value DST had and gets, and where it is written."""

    release: str
    key: str
    old: str | None
    new: str
    file: str
    path: ValuePath


@dataclass(frozen=True, slots=True)
class Promotion:
    source: Environment
    target: Environment
    edits: tuple[Edit, ...]
    texts: dict[str, tuple[str, str]]        # file → (text now, text after)
    notes: tuple[str, ...]                   # releases left out, and why
    moved: tuple[str, ...]                   # other environments whose versions change too

    @property
    def changed(self) -> bool:
        return bool(self.edits)


def plan_promotion(compiler: Compiler, source: str, target: str,
                   releases: Sequence[str] = ()) -> Promotion:
    """Work out a promotion without writing anything. Raises :class:`CompileError` when it is
    refused (every reason at once)."""
    project = compiler.project
    src = find_environment(project, source, regions=True)
    dst = find_environment(project, target, regions=True)
    for name in releases:
        find_release(project, name)
    _check_order(compiler, src, dst)
    before = {e.name: environment_versions(compiler, e) for e in _compared(project, src, dst)}
    edits, changes, notes = _edits(compiler, before[src.name], before[dst.name], releases)
    texts = _edited_texts(compiler, changes)
    moved = _verify(compiler, texts, src, dst, edits, before) if edits else ()
    return Promotion(src, dst, tuple(edits), texts, tuple(notes), moved)


# --- the order ------------------------------------------------------------------------------

def _check_order(compiler: Compiler, src: Environment, dst: Environment) -> None:
    project = compiler.project
    if src.name == dst.name:
        raise CompileError([Diagnostic("error", f"cannot promote '{src.name}' into itself")])
    if dst.promotes_from == src.name:
        return
    spec = load_meshfile(compiler.files.read(project.root_file), project.root_file, Diagnostics())
    own = next((e for e in spec.environments if e.name == dst.name), None)
    span = own.promotes_from.span if own and own.promotes_from else dst.span
    chain = _sources(project, src)
    if dst.name in chain:
        order = " -> ".join([*reversed(chain[:chain.index(dst.name) + 1]), src.name])
        message = (f"refusing to promote '{src.name}' into '{dst.name}': that runs backwards "
                   f"against the promotion order ({order})")
    else:
        message = (f"refusing to promote '{src.name}' into '{dst.name}': '{dst.name}' does not "
                   f"promote from '{src.name}'")
    if dst.promotes_from:
        help = (f"'{dst.name}' promotes from '{dst.promotes_from}': "
                f"meshc promote {dst.promotes_from} {dst.name}")
    else:
        help = f"'{dst.name}' promotes from nowhere; to change that, set promotesFrom: {src.name}"
    raise CompileError([Diagnostic("error", message, span, help)])


def _sources(project: Project, env: Environment) -> list[str]:
    """The environments ``env`` promotes from, nearest first."""
    found: list[str] = []
    current = env.promotes_from
    while current is not None and current not in found:
        found.append(current)
        parent = project.environment(current)
        current = parent.promotes_from if parent is not None else None
    return found


# --- what changes, and where ----------------------------------------------------------------

def _edits(compiler: Compiler, src: EnvVersions, dst: EnvVersions, releases: Sequence[str]
           ) -> tuple[list[Edit], list[tuple[str, Change]], list[str]]:
    project = compiler.project
    diags = Diagnostics()
    edits: list[Edit] = []
    changes: list[tuple[str, Change]] = []
    notes: list[str] = []
    for release in project.releases:
        if releases and release.name not in releases:
            continue
        if release.slot is not None and not release.slot.is_router:
            continue  # a slot runs what the state file says; its release (the router) promotes
        if release.name not in dst.enabled or release.name not in src.enabled:
            where = dst.env.name if release.name not in dst.enabled else src.env.name
            why = f"{release.name} (not in {where})"
            if releases:
                diags.error(f"cannot promote release '{release.name}': it is not deployed in "
                            f"'{where}'")
            notes.append(why)
            continue
        keys = [k for (name, k) in src.versions if name == release.name]
        for key in keys:
            theirs = src.versions[(release.name, key)]
            mine = dst.versions.get((release.name, key))
            state = UNSET if mine is None else _compare(mine, theirs)
            if state == IN_SYNC:
                continue
            if state in (AHEAD, UNORDERABLE):
                _refuse(diags, state, release.name, key, mine, theirs, src.env, dst.env)
                continue
            try:
                file, path, style = _location(compiler, src, dst, release.name, key, theirs)
            except _Refused as exc:
                diags.items.append(exc.diagnostic)
                continue
            edits.append(Edit(release.name, key, mine.text if mine else None, theirs.text, file,
                              path))
            changes.append((file, Change(path, theirs.value, style)))
    diags.raise_if_errors()
    return edits, changes, notes


def _compare(mine: Version, theirs: Version) -> str:
    return compare_versions(mine.text, theirs.text)


def _refuse(diags: Diagnostics, state: str, release: str, key: str, mine: Version | None,
            theirs: Version, src: Environment, dst: Environment) -> None:
    assert mine is not None
    if state == AHEAD:
        message = (f"refusing to move {release} {key} in '{dst.name}' backwards: it runs "
                   f"{mine.text}, newer than {theirs.text} in '{src.name}'")
        help = (f"promote {mine.text} into '{src.name}' first, or leave {release} out "
                f"(--release selects what to promote)")
    else:
        message = (f"cannot order {release} {key}: '{dst.name}' runs {mine.text}, '{src.name}' "
                   f"runs {theirs.text}, and they are not both semantic versions")
        help = "use MAJOR.MINOR.PATCH versions (see README, \"Semantic versions\")"
    diags.error(message, mine.span, help, (f"'{src.name}' sets {theirs.text} at {theirs.where}",))


class _Refused(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _location(compiler: Compiler, src: EnvVersions, dst: EnvVersions, release: str, key: str,
              theirs: Version) -> tuple[str, ValuePath, str]:
    """(file, path in that file, scalar style for an inserted value)."""
    if key == CHART:
        file, path = _chart_location(compiler, dst.env, release)
        return file, path, _style(compiler, theirs.span)
    assert theirs.path is not None
    values = dst.values[release]
    own = own_values_files(compiler.project, dst.env)
    style = _style(compiler, theirs.span)
    for link in values.chain(theirs.path):
        if link.layer.kind == "chart":
            break
        if link.layer.kind in ("release", "features", "set"):
            what = {"release": f"release '{release}''s own values in the meshfile",
                    "features": "the features template", "set": "a command-line flag"}
            raise _Refused(Diagnostic(
                "error", f"cannot promote {release} {key} into '{dst.env.name}': {what[link.layer.kind]} "
                f"sets it for every environment", link.span,
                "move it to the environments' values files to promote it per environment"))
        if link.layer.doc.file in own and link.effect in ("set", "list"):
            return link.layer.doc.file, values.layer_path(link.layer, theirs.path), style
        break
    if not own and dst.env.group is not None:
        raise _Refused(Diagnostic(
            "error", f"cannot promote into region '{dst.env.name}' alone: it has no values "
                     "file of its own", dst.env.span,
            f"add one (regions: {{{dst.env.region}: {{values: [environments/{dst.env.name}"
            f".yaml]}}}}), or promote into '{dst.env.group}' (all its regions)"))
    if not own:
        raise _Refused(Diagnostic(
            "error", f"cannot promote into '{dst.env.name}': it has no values file of its own",
            dst.env.span, f"add one to its values: list, e.g. environments/{dst.env.name}/"
                          "values.yaml (meshc env new scaffolds one)"))
    layer_path = _env_path(values, theirs.path)
    return own[-1], layer_path, style


def _env_path(values: ValueSet, path: ValuePath) -> ValuePath:
    return (*values.values_key, *path)


def own_values_files(project: Project, env: Environment) -> list[str]:
    """The values files ``env`` lists itself (its ancestors' come first in ``env.values``); a
    region's are those of its ``regions:`` entry (so a promotion into one region leaves the
    others as they are)."""
    if env.group is not None:
        group = project.environment(env.group)
        return [doc.file for doc in env.values[len(group.values) if group else 0:]]
    parent = project.environment(env.chain[-2]) if len(env.chain) > 1 else None
    inherited = len(parent.values) if parent is not None else 0
    return [doc.file for doc in env.values[inherited:]]


def _style(compiler: Compiler, span: Span | None) -> str:
    """The quoting of the source's value, for the inserted copy."""
    if span is None:
        return '"'
    text = compiler.files.texts.get(span.file, "")
    lines = text.splitlines()
    if not 1 <= span.line <= len(lines):
        return '"'
    first = lines[span.line - 1][span.col - 1:span.col]
    return first if first in ("'", '"') else ""


def _chart_location(compiler: Compiler, dst: Environment, release: str
                    ) -> tuple[str, ValuePath]:
    project = compiler.project
    meshfile = project.root_file
    spec = load_meshfile(compiler.files.read(meshfile), meshfile, Diagnostics())
    overrides = {e.name: {ref.name for ref, _ in e.chart_versions} for e in spec.environments}
    if release in overrides.get(dst.name, set()):
        return meshfile, ("environments", dst.name, "chartVersions", release)
    setter = next((n for n in reversed(dst.chain) if release in overrides.get(n, set())), None)
    readers = [e.name for e in project.deployable
               if not any(release in overrides.get(n, set()) for n in e.chain)]
    if setter is None and all(dst.name in project.environment(n).chain  # type: ignore[union-attr]
                              for n in readers):
        return meshfile, ("releases", release, "version")
    return meshfile, ("environments", dst.name, "chartVersions", release)


def _edited_texts(compiler: Compiler, changes: list[tuple[str, Change]]
                  ) -> dict[str, tuple[str, str]]:
    diags = Diagnostics()
    texts: dict[str, tuple[str, str]] = {}
    for file in dict.fromkeys(f for f, _ in changes):
        old = compiler.files.read(file)
        try:
            texts[file] = (old, edit_text(old, [c for f, c in changes if f == file]))
        except EditError as exc:
            span = Span(file, exc.line, exc.col, exc.line, exc.col + 1) if exc.line else None
            diags.error(f"cannot edit {file}: {exc.message}", span, exc.help)
    diags.raise_if_errors()
    return texts


# --- checking the result --------------------------------------------------------------------

def _compared(project: Project, src: Environment, dst: Environment) -> list[Environment]:
    """The environments whose versions a promotion compares: every deployable one, and SRC
    or DST when it is deployed in regions (its own files, which its regions read)."""
    found = [e for e in (project.environment(n.name) for n in (src, dst))
             if e is not None and e.has_regions]
    return [*project.deployable, *found]


def _verify(compiler: Compiler, texts: dict[str, tuple[str, str]], src: Environment,
            dst: Environment, edits: list[Edit], before: dict[str, EnvVersions]
            ) -> tuple[str, ...]:
    """Load the project with the edited texts (in memory): DST must run the promoted versions
    and nothing may be ahead of its source that was not before. Returns the other
    environments whose versions changed."""
    files = copy_with_texts(compiler.files, {file: new for file, (_, new) in texts.items()})
    try:
        edited = reload_project(compiler, files)
        after = {e.name: environment_versions(edited, e)
                 for e in _compared(edited.project, src, dst)}
    except CompileError as exc:
        raise CompileError([Diagnostic("error", "the promoted project would not compile; "
                                       "nothing written")] + list(exc.diagnostics),
                           {**files.texts, **exc.sources}) from None
    problems = []
    for edit in edits:
        got = after[dst.name].versions.get((edit.release, edit.key))
        if got is None or got.text != edit.new:
            problems.append(Diagnostic(
                "error", f"promoting {edit.release} {edit.key} into '{dst.name}' would not take "
                f"effect (it would run {got.text if got else 'nothing'}, not {edit.new})",
                got.span if got else None, "a stronger layer overrides the edited file"))
    table_before = version_table(compiler, computed=before)
    table_after = version_table(edited, computed=after)
    for key, cell in table_after.cells.items():
        old = table_before.cells.get(key)
        if cell.state == AHEAD and (old is None or old.state != AHEAD):
            assert cell.version is not None and cell.source_version is not None
            problems.append(Diagnostic(
                "error", f"the promotion would put {cell.release} {cell.key} in '{cell.env}' "
                f"ahead of its source '{cell.source}' ({cell.version.text} > "
                f"{cell.source_version.text})", None,
                f"'{cell.env}' shares the edited file; promote '{cell.source}' first"))
    moved = tuple(e.name for e in edited.project.deployable
                  if e.name != dst.name and _texts(before[e.name]) != _texts(after[e.name]))
    problems += _new_promotion_errors(compiler, edited, (dst.name, *moved))
    if problems:
        raise CompileError(problems, files.texts)
    return moved


def _new_promotion_errors(compiler: Compiler, edited: Compiler,
                          names: Sequence[str]) -> list[Diagnostic]:
    """``meshc check``'s promotion-order rule (rendered images, matched by resource and
    container) on the environments the promotion changes: the errors it reports on the edited
    project and not on the project as it is."""
    from ..check import CheckOptions, run_checks
    from ..check.promotion import check_promotion

    def errors(target: Compiler) -> dict[tuple[str | None, str], Diagnostic]:
        envs = [e for e in target.project.deployable if e.name in names]
        report = run_checks(target, envs, CheckOptions(stale=False,
                                                       rules=frozenset({"promotion-order"})),
                            checks=(("promotion", check_promotion),))
        return {(f.environment, f.diagnostic.message.split(" runs ")[0]): f.diagnostic
                for f in report.findings if f.diagnostic.severity == "error"}

    old = errors(compiler)
    return [diag for key, diag in errors(edited).items() if key not in old]


def _texts(env: EnvVersions) -> dict[tuple[str, str], str]:
    return {key: version.text for key, version in env.versions.items()}


# --- presenting -----------------------------------------------------------------------------

def copy_with_texts(files: ProjectFiles, texts: dict[str, str]) -> ProjectFiles:
    """A reader of the same project that sees ``texts`` instead of what is on disk."""
    edited = copy.copy(files)
    edited.texts = {**files.texts, **texts}
    return edited


def promotion_diff(promotion: Promotion) -> str:
    """The edits as a unified diff (``a/FILE`` before, ``b/FILE`` after)."""
    out: list[str] = []
    for file, (old, new) in promotion.texts.items():
        out += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                    f"a/{file}", f"b/{file}")
    return "".join(out)


def promotion_summary(promotion: Promotion) -> list[str]:
    lines = []
    for edit in promotion.edits:
        old = edit.old if edit.old is not None else "(unset)"
        lines.append(f"  {edit.release} {edit.key}: {old} -> {edit.new}  ({edit.file})")
    return lines
