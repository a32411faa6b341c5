"""``meshc env new`` and ``meshc env list``: environments as commands.

``meshc env new NAME --from ENV`` makes NAME a sibling of ENV: it inherits what ENV inherits,
gets a copy of ENV's own settings (``helm``, ``namespace``, ``kubeContext``, ``labels``,
``protected``, ``kubeVersion``, ``policies``, ``chartVersions``, copied as written, comments
included) and ``environments/NAME/values.yaml``, a copy of ENV's last own values file under a
header saying so — so NAME starts out running exactly what ENV runs, in its own namespace, and
is free to drift from there. Secrets are not copied (they are encrypted to ENV's keys). From an
abstract ENV, NAME inherits ENV and starts from a commented, empty values file.

The meshfile entry is inserted after ENV's entry as text (:mod:`compiler.syntax.roundtrip` locates it),
so the rest of the meshfile stays byte for byte as it was. The new project is compiled in memory
— NAME must render and plan — before both files are written, atomically.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ruamel.yaml.nodes import MappingNode, Node

from ..core.diagnostics import CompileError, Diagnostic, did_you_mean
from ..core.source import Span
from ..model.graph import _promotion_chain, promotion_order
from ..model.load import DNS_LABEL, DNS_LABEL_MAX
from ..model.model import Environment, Project
from ..pipeline import (
    Compiler,
    _namespace,
    compile_environment,
    env_context,
    reload_project,
)
from ..syntax.roundtrip import (
    Change,
    EditError,
    compose_text,
    edit_text,
    find_key,
    last_end,
    line_after,
    render_scalar,
)
from .promote import copy_with_texts, own_values_files

COPIED_KEYS = ("helm", "namespace", "kubeContext", "labels", "protected", "kubeVersion",
               "policies", "chartVersions")


@dataclass(frozen=True, slots=True)
class Scaffold:
    """A new environment, worked out but not written."""

    name: str
    texts: dict[str, tuple[str | None, str]]    # file → (text now or None, text after)
    values_file: str
    copied_from: str | None                     # the values file copied, if any
    namespaces: tuple[str, ...]
    notes: tuple[str, ...]


def new_environment(compiler: Compiler, name: str, source: str,
                    promotes_from: str | None = None, promotes_to: Sequence[str] = (),
                    aliases: Sequence[str] = (), description: str | None = None) -> Scaffold:
    """Work out ``meshc env new``; raises :class:`CompileError` (nothing is written)."""
    project = compiler.project
    _check_names(project, name, aliases)
    base = _environment(project, source, "--from", deployable=False)
    upstream = _environment(project, promotes_from, "--promotes-from") if promotes_from else None
    downstream = [_environment(project, n, "--promotes-to") for n in promotes_to]
    meshfile = project.root_file
    text = compiler.files.read(meshfile)
    values_file = f"environments/{name}/values.yaml"
    if compiler.files.locate(values_file).exists():
        raise CompileError([Diagnostic("error", f"{values_file} exists already",
                                       help="remove it, or pick another name")])
    own = own_values_files(project, base) if not base.abstract else []
    copied = own[-1] if own else None
    values = [*own[:-1], values_file]
    values_text = _values_text(compiler, name, base, copied, source)
    notes = []
    for own_namespace in (None, f"{project.name or name}-{{{{ env.name }}}}"):
        entry = _entry(text, base, name, values, upstream, aliases, description, own_namespace)
        new_text = _insert_entry(text, base, entry)
        for env in downstream:
            new_text = _edit(new_text, meshfile, [Change(
                ("environments", env.name, "promotesFrom"), name, "")])
        texts: dict[str, tuple[str | None, str]] = {meshfile: (text, new_text),
                                                    values_file: (None, values_text)}
        namespaces, shared = _verify(compiler, texts, name)
        if not shared:
            break
    if shared:
        notes.append(f"'{name}' shares namespace{'s' * (len(shared) != 1)} "
                     f"{', '.join(shared)} (same kubeContext) with other environments: set "
                     "`namespace:` on the releases concerned")
    elif own_namespace is not None:
        notes.append(f"{base.name}'s namespace would be shared: '{name}' gets namespace: "
                     f"\"{own_namespace}\"")
    notes += [f"'{env.name}' now promotes from '{name}' (was: {env.promotes_from or 'nothing'})"
              for env in downstream]
    if base.secret_files and not base.abstract:
        notes.append(f"secrets are not copied ({', '.join(s.path for s in base.secret_files)} "
                     f"{'is' if len(base.secret_files) == 1 else 'are'} encrypted to "
                     f"{base.name}'s keys): add {name}'s with `meshc secrets encrypt`")
    if upstream is None:
        notes.append(f"'{name}' is not in the promotion order (add --promotes-from)")
    return Scaffold(name, texts, values_file, copied, namespaces, tuple(notes))


def _check_names(project: Project, name: str, aliases: Sequence[str]) -> None:
    taken = {e.name for e in project.environments} | {a for e in project.environments
                                                      for a in e.aliases}
    problems = []
    for what, value in [("environment", name), *(("alias", a) for a in aliases)]:
        if not DNS_LABEL.fullmatch(value) or len(value) > DNS_LABEL_MAX:
            problems.append(Diagnostic("error", f"{what} name '{value}' is not a DNS-1123 label",
                                       help="use at most 63 lowercase letters, digits and '-', "
                                            "starting and ending with a letter or digit"))
        elif value in taken:
            problems.append(Diagnostic("error", f"{what} name '{value}' is already an "
                                       "environment's name or alias"))
        taken.add(value)
    if problems:
        raise CompileError(problems)


def _environment(project: Project, name: str, option: str,
                 deployable: bool = True) -> Environment:
    env = project.environment(name)
    names = [e.name for e in project.environments if not deployable or not e.abstract]
    if env is None or (deployable and env.abstract):
        why = "unknown" if env is None else "abstract"
        raise CompileError([Diagnostic("error", f"{option}: {why} environment '{name}'", None,
                                       did_you_mean(name, names) or
                                       f"environments: {', '.join(names)}")])
    return env


# --- the meshfile entry ---------------------------------------------------------------------

def _entry_node(text: str, env: str) -> tuple[Node, Node]:
    root = compose_text(text)
    envs = find_key(root, "environments") if isinstance(root, MappingNode) else None
    if not isinstance(envs, MappingNode) or envs.flow_style:
        raise CompileError([Diagnostic("error", "meshc env new needs `environments:` as a "
                                       "block map in the meshfile")])
    for key, value in envs.value:
        if key.value == env:
            return key, value
    raise CompileError([Diagnostic("error", f"environment '{env}' not found in the meshfile")])


def _entry(text: str, base: Environment, name: str, values: list[str],
           upstream: Environment | None, aliases: Sequence[str],
           description: str | None, namespace: str | None) -> str:
    key, node = _entry_node(text, base.name)
    indent = key.start_mark.column
    step = 2
    copied: list[str] = []
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        step = node.value[0][0].start_mark.column - indent
        if not base.abstract:
            copied = _copied_lines(text, node, skip=("namespace",) if namespace else ())
    pad = " " * (indent + step)
    lines = [f"{' ' * indent}{name}:"]
    if description:
        lines.append(f"{pad}description: {render_scalar(description, '')}")
    inherits = base.name if base.abstract else (base.chain[-2] if len(base.chain) > 1 else None)
    if inherits:
        lines.append(f"{pad}inherits: {inherits}")
    if aliases:
        lines.append(f"{pad}aliases: [{', '.join(aliases)}]")
    if upstream is not None:
        lines.append(f"{pad}promotesFrom: {upstream.name}")
    lines.append(f"{pad}values: [{', '.join(values)}]")
    if namespace:
        lines.append(f"{pad}namespace: {json.dumps(namespace)}")
    return "\n".join(lines) + "\n" + "".join(copied)


def _copied_lines(text: str, node: MappingNode, skip: Sequence[str] = ()) -> list[str]:
    """The text of ENV's copied keys, each from its key line to the end of its value."""
    result = []
    for key, value in node.value:
        if key.value not in COPIED_KEYS or key.value in skip:
            continue
        start = text.rfind("\n", 0, key.start_mark.index) + 1
        end = line_after(text, max(key.end_mark.index, last_end(value)))
        result.append(text[start:end] if text[start:end].endswith("\n")
                      else text[start:end] + "\n")
    return result


def _insert_entry(text: str, base: Environment, entry: str) -> str:
    key, node = _entry_node(text, base.name)
    at = line_after(text, max(key.end_mark.index, last_end(node)))
    separated = text[at:at + 1] == "\n"   # entries separated by blank lines: keep doing so
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return text[:at] + prefix + ("\n" if separated else "") + entry + text[at:]


def _edit(text: str, file: str, changes: list[Change]) -> str:
    try:
        return edit_text(text, changes)
    except EditError as exc:
        span = Span(file, exc.line, exc.col, exc.line, exc.col + 1) if exc.line else None
        raise CompileError([Diagnostic("error", f"cannot edit {file}: {exc.message}", span,
                                       exc.help)], {file: text}) from None


# --- the values file ------------------------------------------------------------------------

def _values_text(compiler: Compiler, name: str, base: Environment, copied: str | None,
                 source: str) -> str:
    made = f"`meshc env new {name} --from {source}`"
    header = [f"# environments/{name}/values.yaml",
              f"# Values of environment '{name}' (created with {made})."]
    if copied is None:
        chain = ", then ".join(base.chain)
        header += [f"# '{name}' inherits '{base.name}': its values are {chain}'s files, then",
                   "# this one. Set here what differs in this environment, e.g.:",
                   "#",
                   "# global:",
                   f"#   environment: {name}",
                   "# registry:",
                   "#   replicaCount: 2"]
        return "\n".join(header) + "\n"
    header += [f"# It started as a copy of {copied}, so '{name}' runs what",
               f"# '{base.name}' runs; change what differs here (domains, hosts, replicas,",
               "# resources, versions: `meshc promote` writes versions into this file).",
               "#", ""]
    return "\n".join(header) + compiler.files.read(copied)


# --- checking the result --------------------------------------------------------------------

def _verify(compiler: Compiler, texts: dict[str, tuple[str | None, str]],
            name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Compile the new environment in memory: it must render and plan. Returns its namespaces,
    and those another deployable environment also deploys to in the same kubeContext."""
    files = copy_with_texts(compiler.files, {file: new for file, (_, new) in texts.items()})
    try:
        edited = reload_project(compiler, files)
        env = edited.project.environment(name)
        assert env is not None
        result = compile_environment(edited, env)
    except CompileError as exc:
        raise CompileError([Diagnostic("error", f"the new environment '{name}' would not "
                                       "compile; nothing written"), *exc.diagnostics],
                           {**files.texts, **exc.sources}) from None
    mine = {(env.kube_context, step.namespace) for step in result.plan.steps}
    others = {(other.kube_context, namespace) for other in edited.project.deployable
              if other.name != name for namespace in _namespaces(edited, other)}
    return (tuple(sorted({ns for _, ns in mine})),
            tuple(sorted({ns for _, ns in mine & others})))


def _namespaces(compiler: Compiler, env: Environment) -> set[str]:
    """Every namespace ``env``'s releases would use (enabled or not; nothing is rendered)."""
    context = env_context(compiler, env)
    return {_namespace(compiler, release, env, context) for release in compiler.project.releases}


def scaffold_diff(scaffold: Scaffold) -> str:
    out: list[str] = []
    for file, (old, new) in scaffold.texts.items():
        if old is None:
            continue
        out += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                    f"a/{file}", f"b/{file}")
    return "".join(out)


# --- meshc env list -------------------------------------------------------------------------

def environment_rows(compiler: Compiler) -> list[dict[str, object]]:
    """Every environment, in meshfile order, with what ``meshc env list`` shows."""
    rows = []
    for env in compiler.project.environments:
        namespace = None if env.abstract else env_context(compiler, env).get("namespace")
        rows.append({"name": env.name, "abstract": env.abstract,
                     "inherits": env.group or (env.chain[-2] if len(env.chain) > 1 else None),
                     "aliases": list(env.aliases), "protected": env.protected,
                     "promotesFrom": env.promotes_from, "namespace": namespace,
                     "kubeContext": env.kube_context,
                     "values": own_values_files(compiler.project, env)})
    return rows


def format_environments(compiler: Compiler, fmt: str = "text") -> str:
    rows = environment_rows(compiler)
    if fmt == "json":
        return json.dumps({"apiVersion": "meshc/v1", "kind": "Environments",
                           "environments": rows,
                           "promotionOrder": list(promotion_order(compiler.project))},
                          indent=2) + "\n"
    head = ["environment", "inherits", "aliases", "protected", "promotes from", "namespace"]
    body = [[str(r["name"]) + (" (abstract)" if r["abstract"] else ""),
             str(r["inherits"] or "-"), ", ".join(r["aliases"]) or "-",  # type: ignore[arg-type]
             "yes" if r["protected"] else "-", str(r["promotesFrom"] or "-"),
             str(r["namespace"] or "-")] for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
    lines += ["", "promotion order: " + "; ".join(_promotion_chain(compiler.project))]
    return "\n".join(lines) + "\n"
