"""The stages in order, spelled out: load → resolve → graph → values → render → plan → emit.

Library entry points used by the CLI (and by anyone scripting meshc from Python):
:func:`load_project`, :func:`parse_set_flags`, :func:`compile_environment`,
:func:`output_files`. Each raises :class:`~compiler.core.diagnostics.CompileError` with every
problem found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from .core.diagnostics import (
    WHOLE_LINE,
    CompileError,
    Diagnostic,
    Diagnostics,
    choose_from,
    did_you_mean,
)
from .core.files import InputRefused, NotUTF8, OutsideProject, ProjectFiles
from .core.incomplete import incomplete_diagnostic, is_incomplete, require_complete
from .core.limits import activate as activate_limits
from .core.process import HelmTool
from .core.source import COMMAND_LINE, Span
from .model.bluegreen import groups_of, load_state
from .model.graph import check_needs, waves
from .model.load import DNS_LABEL, load_meshfile
from .model.model import Environment, HelmOptions, HelmVersion, Project, Release, Text
from .model.resolve import ParsedValues, default_helm, parse_values_key, resolve_project
from .plan.diff import (
    ReleaseDiff,
    diff_release,
    manifest_resources,
    read_tree,
)
from .plan.plan import (
    HELM4_ONLY,
    Plan,
    SlotRole,
    Target,
    build_plan,
    format_json,
    helm3_unsupported,
)
from .render import wrapper_chart
from .render.helm_chart import no_helm, render_helm_release, with_deletions
from .render.inputs import inputs_digest
from .render.remote import ChartStore
from .render.render import (
    CLUSTER_SCOPED,
    Manifest,
    manifest_from_file,
    release_context,
    render_release,
)
from .render.templating import Templates
from .secrets.secrets import (
    EnvSecrets,
    ReleaseSecrets,
    SecretObject,
    environment_secrets,
    release_collisions,
    release_inputs,
    secret_functions,
    secret_stand_ins,
)
from .syntax.keypath import blocked_at, format_key_path
from .syntax.yamlsrc import Path as ValuePath
from .syntax.yamlsrc import ValuesDoc, dump_yaml, load_documents
from .values.bluegreen import SlotStatus, with_slot_layers
from .values.chart_schema import check_chart_schema
from .values.flags import SetFlag, SetFlags, parse_flags
from .values.values import (
    ENV_WIDE_KEYS,
    EnvValues,
    ValueSet,
    describe_value,
    environment_values,
    file_values,
    lookup,
    release_values,
    set_at,
)

ENVIRONMENT_WIDE = "(global, features)"  # the pseudo-release of environment-wide values

@dataclass(frozen=True, slots=True)
class ReleaseOutput:
    """Everything compiled for one enabled release in one environment."""

    release: Release
    namespace: str
    values: ValueSet
    manifests: tuple[Manifest, ...] | None  # None for remote charts
    helm: HelmOptions
    secrets: ReleaseSecrets = field(default_factory=ReleaseSecrets)  # Secrets it makes, files it needs

    @property
    def hooks(self) -> tuple[str, ...]:
        """Its Helm hooks, as ``Kind/name (events)``, in file order."""
        return tuple(f"{m.kind}/{m.name} ({m.hook})" for m in self.manifests or () if m.hook)

    @property
    def resources(self) -> tuple[Resource, ...]:
        """The resources it creates (see :func:`resources_of`)."""
        return resources_of(self.manifests or (), self.namespace)


# a resource as Helm owns it: (API group, kind, namespace or "", name), and its template
Resource = tuple[tuple[str, str, str, str], str]


def resources_of(manifests: Iterable[Manifest], namespace: str) -> tuple[Resource, ...]:
    """Who each manifest is to Helm: ``(group, kind, namespace, name)``, the namespace
    defaulted to the release's (Helm installs a namespaced resource without one there), "" for
    cluster-scoped kinds; with the template that wrote it. Hooks are left out: Helm does not
    own them as release resources."""
    return tuple(((m.group, m.kind, "" if m.kind in CLUSTER_SCOPED else m.namespace or namespace,
                   m.name), m.template) for m in manifests if not m.hook)


def duplicate_resources(env: Environment, outputs: Sequence[Placed], diags: Diagnostics) -> None:
    """An error for each resource two releases of ``env`` both create: Helm refuses to install
    the second ("exists and cannot be imported into the current release"). Located on the
    second release's chart, with the first's as a related place."""
    owner: dict[tuple[str, str, str, str], tuple[Release, str]] = {}
    for output in outputs:
        for ident, template in output.resources:
            first = owner.setdefault(ident, (output.release, template))
            if first[0].name == output.release.name:
                continue
            group, kind, namespace, name = ident
            what = f"{kind}{'.' + group if group else ''}/{name}" + (
                f" in namespace '{namespace}'" if namespace else "")
            diags.error(f"releases '{first[0].name}' and '{output.release.name}' both create "
                        f"{what} in environment '{env.name}': Helm would refuse to install "
                        f"'{output.release.name}'", output.release.chart_span or output.release.span,
                        "one release must own it: rename it in one chart, or turn it off there",
                        notes=(f"'{output.release.name}' writes it in {template}",
                               f"'{first[0].name}' writes it in {first[1]}"),
                        related=((f"release '{first[0].name}' creates it first",
                                  first[0].chart_span or first[0].span),))


@dataclass(frozen=True, slots=True)
class EnvironmentOutput:
    env: Environment
    releases: tuple[ReleaseOutput, ...]
    plan: Plan


@dataclass(frozen=True, slots=True)
class Compiler:
    """A loaded project plus the per-run state its stages share (the template cache)."""

    project: Project
    files: ProjectFiles
    templates: Templates
    sets: SetFlags | None = None
    set_sources: dict[str, str] = field(default_factory=dict)
    helm: HelmTool | None = None   # renders Helm charts; the CLI finds it ($MESHC_HELM, PATH)
    helm_manifests: bool = True    # False: Helm charts get values only (values, explain, graph)
    charts: ChartStore | None = None  # remote charts: the lock and the chart cache (the CLI's)

    @property
    def sources(self) -> dict[str, str]:
        return {**self.files.texts, **self.set_sources}

    @property
    def renderer(self) -> HelmTool | None:
        """The helm that renders Helm charts: :attr:`helm` when it is Helm 4 (or says no
        version). A Helm 3 is not used to render (docs/helm-versions.md): the review in
        ``rendered/`` is Helm 4's ``helm template``, the same whichever Helm the plans are
        for, so that it does not depend on who rendered it; the committed review stands in
        while its inputs are unchanged, as without helm."""
        helm = self.helm
        return helm if helm is not None and helm.major in (None, 4) else None


def load_project(files: ProjectFiles, name: str = "meshfile.yaml",
                 parsed: ParsedValues | None = None) -> Compiler:
    """Load, resolve and check the meshfile ``name`` of the project ``files`` reads
    (stages load → resolve → graph). Diagnostics excerpts come from ``files.texts``;
    ``parsed`` (a cache of parsed values files) saves re-parsing unchanged files."""
    meshfile = files.root / name
    try:
        text = files.read(name)
    except FileNotFoundError:
        raise CompileError([_no_meshfile(meshfile)]) from None
    except NotUTF8 as exc:  # where the bad byte is
        raise CompileError([_at(f"{name} is {exc}", Span(name, exc.line, exc.col))]) from None
    except InputRefused as exc:  # too large (limits.fileSize), not a regular file
        raise CompileError([_cli_error(f"cannot read {meshfile}: {exc.strerror}", None)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CompileError([_no_meshfile(meshfile, why)]) from None
    diags = Diagnostics()
    spec = load_meshfile(text, name, diags)
    activate_limits(spec.limits)  # before any other input is read
    if parsed is not None:  # the biggest inputs: parsed on every core, ahead of resolving
        parsed.prefetch(files, [*(ref.value for env in spec.environments for ref in env.values),
                                *(ref.value for rel in spec.releases for ref in rel.values
                                  if isinstance(ref, Text))])
    project = resolve_project(spec, files, diags, parsed)
    check_needs(project, diags)
    _check_output(project, spec.output.span, files, diags)
    diags.raise_if_errors()
    return Compiler(project, files, Templates(files, files.environ, spec.allow_env))


def reload_project(compiler: Compiler, files: ProjectFiles) -> Compiler:
    """The project of ``compiler`` loaded again from ``files`` (edited texts, in memory), with
    the same helm and chart store."""
    loaded = load_project(files, compiler.project.root_file)
    return replace(loaded, helm=compiler.helm, charts=compiler.charts,
                   helm_manifests=compiler.helm_manifests)


def _no_meshfile(meshfile: Path, why: str = "") -> Diagnostic:
    return Diagnostic("error", f"no meshfile at {meshfile}" + (f" ({why})" if why else ""),
                      help="run meshc in a directory holding meshfile.yaml, or pass -f PATH")


def _check_output(project: Project, span: Span, files: ProjectFiles, diags: Diagnostics) -> None:
    try:
        normal = files.normalize(project.output)
    except OutsideProject as exc:
        diags.error(f"output {exc}", span)
        return
    except OSError as exc:  # a symlink loop
        diags.error(f"output folder '{project.output}' is {exc.strerror}", span)
        return
    if normal in ("", "."):
        diags.error("output cannot be the project directory itself", span)
        return
    for named, what in _inputs_named(project):  # a render replaces the output folder wholesale
        if named == normal or named.startswith(normal + "/"):
            diags.error(f"output '{project.output}' holds {what} '{named}', which a render "
                        "would replace", span, "choose a folder of its own (default: rendered)")
            return


def _inputs_named(project: Project) -> list[tuple[str, str]]:
    """The project's inputs the meshfile names: charts, values and secrets files, features."""
    found = [(r.chart.ref, "the chart") for r in project.releases if r.chart.local]
    found += [(doc.file, "the values file") for env in project.environments for doc in env.values]
    found += [(doc.file, "the values file") for r in project.releases for doc in r.values]
    found += [(s.value, "the secrets file") for env in project.environments for s in env.secrets]
    if project.features is not None:
        found.append((project.features.value, "the features template"))
    return sorted(set(found))


def parse_set_flags(flags: Iterable[SetFlag], read_file: Callable[[str], str]
                    ) -> tuple[SetFlags | None, dict[str, str]]:
    """Check ``--set``-family flags and read their files (see :mod:`compiler.values.flags`).

    Returns the flags (None without any) and a pseudo source text for diagnostics excerpts.
    Raises :class:`CompileError`, located on the flag, for a value Helm cannot parse.
    """
    sets = parse_flags(flags, read_file)
    return sets, ({COMMAND_LINE: sets.source} if sets is not None else {})


def _record_set_spans(data: Any, spans: dict[ValuePath, Span], span: Span,
                      path: ValuePath = ()) -> None:
    """Attribute every path of ``data`` not yet attributed to ``span``."""
    if path and path not in spans:
        spans[path] = span
    if isinstance(data, dict):
        for key, value in data.items():
            _record_set_spans(value, spans, span, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _record_set_spans(value, spans, span, (*path, index))


def with_sets(compiler: Compiler, flags: Iterable[SetFlag],
              read_file: Callable[[str], str]) -> Compiler:
    """The compiler with command-line flags applied to every environment."""
    sets, sources = parse_set_flags(flags, read_file)
    return replace(compiler, sets=sets, set_sources=sources)


def input_paths(compiler: Compiler) -> list[str]:
    """Every project path the compile reads: files read so far, chart folders, features."""
    project = compiler.project
    paths = set(compiler.files.texts)
    paths.update(r.chart.ref for r in project.releases if r.chart.local)
    if project.features is not None:
        paths.add(project.features.value)
    return sorted(paths)


def find_targets(project: Project, name: str) -> tuple[Environment, ...]:
    """What ``name`` deploys: the environment, or the regions of one deployed in regions (in
    rollout order). Raises :class:`CompileError` as :func:`find_environment` does."""
    env = find_environment(project, name, regions=True)
    return project.regions_of(env) if env.has_regions else (env,)


def find_environment(project: Project, name: str, regions: bool = False) -> Environment:
    """The deployable environment ``name`` (or alias; ``ENV/REGION`` for a region); a
    diagnostic listing valid names if not. An environment deployed through its regions is
    accepted only with ``regions`` (commands that take its rollout: plan, render)."""
    env = project.environment(name)
    deployable = [e.name for e in project.deployable]
    group = project.environment(name.partition("/")[0]) if "/" in name else None
    if env is None and group is not None:
        regions = [r.region or "" for r in project.regions_of(group)]
        region = name.partition("/")[2]
        listing = (f"regions of '{group.name}': {', '.join(regions)}" if regions else
                   f"'{group.name}' has no regions: meshc plan {group.name}")
        closest = did_you_mean(region, regions)
        raise CompileError([_cli_error(f"environment '{group.name}' has no region '{region}'",
                                       f"{closest} ({listing})" if closest else listing)])
    if env is None:
        candidates = [e.name for e in project.environments]
        candidates += [a for e in project.environments for a in e.aliases]
        closest = did_you_mean(name, candidates)
        listing = f"deployable environments: {', '.join(deployable)}"
        raise CompileError([_cli_error(f"unknown environment '{name}'",
                                       f"{closest} ({listing})" if closest else listing)])
    if env.abstract:
        raise CompileError([_cli_error(f"environment '{env.name}' is abstract (only inherited)",
                                       f"deployable environments: {', '.join(deployable)}")])
    if env.has_regions and not regions:
        names = [r.name for r in project.regions_of(env)]
        raise CompileError([_cli_error(f"environment '{env.name}' is deployed in regions: name "
                                       "one", f"its regions: {', '.join(names)}")])
    return env


def find_release(project: Project, name: str) -> Release:
    """The release ``name``; a diagnostic listing valid names if there is none."""
    release = project.release(name)
    if release is None:
        raise CompileError([_cli_error(f"unknown release '{name}'", choose_from(
            name, [r.name for r in project.releases], "releases"))])
    return release


def _cli_error(message: str, help: str | None) -> Diagnostic:
    """An error about the command line: no source location."""
    return Diagnostic("error", message, None, help)


# --- per environment --------------------------------------------------------------------------

def env_context(compiler: Compiler, env: Environment) -> dict[str, Any]:
    """What templates see as ``env``."""
    context = {"name": env.group or env.name, "aliases": list(env.aliases),
               "labels": dict(env.labels), "protected": env.protected,
               "kubeContext": env.kube_context, "promotesFrom": env.promotes_from,
               "namespace": None, "region": env.region}
    if env.namespace is not None and "release" not in env.namespace.value:
        context["namespace"] = compiler.templates.render_string(
            env.namespace.value, {"env": context}, env.namespace.span)
    return context


def features_layer(compiler: Compiler, env: Environment, env_ctx: dict[str, Any],
                   base: dict[str, Any]) -> ValuesDoc | None:
    """Render the features template for ``env``; its YAML becomes values key ``features``."""
    features = compiler.project.features
    if features is None:
        return None
    name = compiler.files.normalize(features.value)
    text = compiler.templates.render_file(
        name, {"env": env_ctx, "values": base, "global": base.get("global", {})})
    label = f"{name} (rendered for {env.name})"
    try:
        docs = load_documents(text, label)
    except CompileError as exc:
        raise _in_template(exc, label, text, name, compiler.files.read(name)) from None
    data = docs[0] if docs else {}
    if len(docs) > 1 or not isinstance(data, dict):
        raise CompileError([_at(f"the features template must render one YAML map for "
                                f"'{env.name}'", features.span)])
    spans: dict[ValuePath, Span] = {}
    _record_set_spans({"features": data}, spans, Span(name, 1, 1))
    return ValuesDoc(name, {"features": data}, spans)


def _in_template(exc: CompileError, label: str, rendered: str, name: str,
                 source: str) -> CompileError:
    """``exc``'s diagnostics about text rendered from template ``name``, located on the
    template's own line where a rendered line can be traced back to one (it appears there,
    literally or with its ``{{ }}`` filled in, exactly once), and on the rendered text, shown,
    otherwise."""
    rendered_lines = rendered.split("\n")
    template_lines = source.split("\n")
    moved = []

    def back(span: Span) -> Span | None:
        if span.file != label or not 0 < span.line <= len(rendered_lines):
            return None
        found = _template_line(rendered_lines[span.line - 1], template_lines)
        if found is None:
            return None
        same = found[1] == rendered_lines[span.line - 1]
        return Span(name, found[0], span.col if same else 1, found[0],
                    span.end_col if same and span.end_line == span.line else WHOLE_LINE)

    for diag in exc.diagnostics:
        span = back(diag.span) if diag.span is not None else None
        related = tuple((text, back(where) or where) for text, where in diag.related)
        note = f"in the YAML the template renders for this environment ({diag.span})" \
            if span is not None else None
        moved.append(Diagnostic(diag.severity, diag.message, span or diag.span, diag.help,
                                (*diag.notes, *([note] if note else [])), related))
    return CompileError(moved, {**exc.sources, label: rendered})


def _template_line(line: str, template: list[str]) -> tuple[int, str] | None:
    """(1-based number, text) of the one template line ``line`` was rendered from, if there
    is exactly one that matches (its ``{{ … }}`` parts matching anything)."""
    if not line.strip():
        return None
    matches = []
    for number, text in enumerate(template, 1):
        parts = re.split(r"\{\{.*?\}\}", text)
        if not "".join(parts).strip():  # nothing literal to recognise it by
            continue
        if text == line or re.fullmatch(".*?".join(map(re.escape, parts)), line):
            matches.append((number, text))
    return matches[0] if len(matches) == 1 else None


def _at(message: str, span: Span) -> Diagnostic:
    return Diagnostic("error", message, span)


def environment_tree(compiler: Compiler, env: Environment) -> tuple[EnvValues, dict[str, Any]]:
    """An environment's values (files, features, flags) and its template context."""
    ctx = env_context(compiler, env)
    files = file_values(env)
    features = features_layer(compiler, env, ctx, files)
    return environment_values(env, files, features, compiler.sets), ctx


def is_enabled(release: Release, env_values: EnvValues, diags: Diagnostics) -> tuple[bool, str]:
    """Whether ``release`` exists in this environment, and why not."""
    if release.condition is None:
        return True, ""
    path = parse_values_key(release.condition.value)
    where = f"in environment '{env_values.env.name}'"
    blocked = blocked_at(env_values.tree, path)
    if blocked is not None:
        _, found = lookup(env_values.tree, blocked)
        diags.error(f"condition '{release.condition.value}' of release '{release.name}' goes "
                    f"through '{format_key_path(blocked)}', which is {describe_value(found)} "
                    f"{where}, not a map", release.condition.span,
                    related=set_at(env_values, blocked),
                    help="a condition names one true/false value; check the path's spelling")
        return False, ""
    present, value = lookup(env_values.tree, path)
    if not present or value is None:
        return False, f"{release.condition.value} is not set"
    if not isinstance(value, bool):
        diags.error(f"condition '{release.condition.value}' of release '{release.name}' is "
                    f"{describe_value(value)} {where}, not true or false",
                    release.condition.span, related=set_at(env_values, path),
                    help="set it to true or false in the values files")
        return False, ""
    return value, "" if value else f"{release.condition.value} is false"


@dataclass(frozen=True, slots=True)
class Prepared:
    """An environment ready for its releases to be compiled (cheap; see :func:`prepare`)."""

    env: Environment
    env_values: EnvValues
    env_ctx: dict[str, Any]
    env_secrets: EnvSecrets
    enabled: tuple[Release, ...]
    disabled: tuple[tuple[str, str], ...]
    slots: tuple[SlotStatus, ...] = ()   # blue-green releases: live slot, pending version


def prepare(compiler: Compiler, env: Environment) -> Prepared:
    """Environment-wide work: values tree, features, secret key names, enabled releases."""
    env_values, env_ctx = environment_tree(compiler, env)
    diags = Diagnostics()
    env_secrets = EnvSecrets(env.name, (), {})
    try:  # the key structure only: compiling never decrypts (see compiler/secrets/secrets.py)
        env_secrets = environment_secrets(compiler.files, env)
    except CompileError as exc:
        diags.absorb(exc)
    enabled: list[Release] = []
    disabled: list[tuple[str, str]] = []
    for release in compiler.project.releases:
        on, why = is_enabled(release, env_values, diags)
        if on:
            enabled.append(release)
        elif why:
            disabled.append((release.name, why))
    slots: tuple[SlotStatus, ...] = ()
    if any(r.slot is not None for r in enabled):
        try:
            state = load_state(compiler.files, env.name, groups_of(compiler.project.releases))
            layered, slots = with_slot_layers(enabled, env_values, state,
                                              compiler.project.root_file, diags)
            enabled = list(layered)
        except CompileError as exc:
            diags.absorb(exc)
    diags.raise_if_errors()
    return Prepared(env, env_values, env_ctx, env_secrets, tuple(enabled), tuple(disabled),
                    slots)


def compile_releases(compiler: Compiler, prepared: Prepared, releases: Iterable[Release],
                     known: Mapping[str, ValueSet] | None = None) -> tuple[ReleaseOutput, ...]:
    """Values and manifests of ``releases`` (enabled ones of ``prepared``; values already
    computed for a release, by name, in ``known``); all errors at once."""
    diags = Diagnostics()
    outputs = []
    releases = list(releases)
    review: dict[str, tuple[Manifest, ...]] = {}  # without helm: the committed Helm charts'
    if compiler.renderer is None and compiler.helm_manifests and \
            any(r.chart.is_helm for r in releases):
        found = committed_review(compiler, prepared)
        if found is None:
            unrendered = [r for r in releases if r.chart.is_helm]
            diags.extend([no_helm(unrendered, stale_review(compiler, prepared), compiler.helm)])
            releases = [r for r in releases if not r.chart.is_helm]
        review = found or {}
    for release in releases:
        try:
            outputs.append(_compile_release(compiler, release, prepared, diags,
                                            (known or {}).get(release.name), review))
        except CompileError as exc:
            diags.absorb(exc, f"while compiling release '{release.name}' for environment "
                              f"'{prepared.env.name}'")
    diags.raise_if_errors()
    return tuple(outputs)


def finish(compiler: Compiler, prepared: Prepared,
           outputs: tuple[ReleaseOutput, ...]) -> EnvironmentOutput:
    """The environment's output once its releases are compiled: adds the plan."""
    plan = plan_environment(compiler, prepared.env, outputs, prepared.disabled, prepared.slots)
    return EnvironmentOutput(prepared.env, outputs, plan)


def compile_environment(compiler: Compiler, env: Environment) -> EnvironmentOutput:
    """Values, manifests and plan of every release of one deployable environment."""
    prepared = prepare(compiler, env)
    return finish(compiler, prepared, compile_releases(compiler, prepared, prepared.enabled))


def _compile_release(compiler: Compiler, release: Release, prepared: Prepared,
                     diags: Diagnostics, values: ValueSet | None,
                     review: Mapping[str, tuple[Manifest, ...]]) -> ReleaseOutput:
    env, env_ctx, env_secrets = prepared.env, prepared.env_ctx, prepared.env_secrets
    namespace = _namespace(compiler, release, env, env_ctx)
    if values is None:
        values = release_values(release, prepared.env_values, diags)
    helm = release.helm.over(env.helm).over(default_helm())
    manifests = None
    secret_objects: dict[str, SecretObject] = {}
    if release.chart.is_helm:
        if compiler.renderer is not None and compiler.helm_manifests:
            manifests = _render_helm(compiler, compiler.renderer, release, values, env, namespace,
                                     env_secrets, diags)
        elif compiler.helm_manifests:  # no helm: compile_releases found the committed review
            manifests = review[release.name]
        elif release.chart.schema is not None:
            check_chart_schema(release.chart.schema, values, release, diags, [])
    elif release.chart.local:
        release_ctx = {"name": release.name, "namespace": namespace, "chart": release.chart.ref,
                       "labels": dict(release.labels), "valuesKey": release.values_key_text}
        context = release_context(values, env_ctx, release_ctx)
        context.update(secret_functions(env_secrets, release, secret_objects))
        manifests = render_release(release, context, compiler.templates, namespace, env.name)
    if release.chart.schema is not None and not release.chart.is_helm:  # as Helm judges it
        check_chart_schema(release.chart.schema, values, release, diags,
                           [(o.path, o.keys) for o in secret_objects.values()])
    diags.extend(release_collisions(env_secrets, release, values))
    objects = tuple(sorted(secret_objects.values(), key=lambda o: o.name))
    # a Helm chart receives its secrets as values when the plan runs, as a remote chart does
    takes_values = release.chart.local and not release.chart.is_helm
    secrets = ReleaseSecrets(objects, release_inputs(env_secrets, release, takes_values,
                                                     objects), env_secrets)
    return ReleaseOutput(release, namespace, values, manifests, helm, secrets)


STALE_REVIEW = ("without helm, the committed review stands in only while the inputs are those "
                "it was rendered from: its plan.json's inputsDigest differs")


def stale_review(compiler: Compiler, prepared: Prepared) -> str | None:
    """Why the committed review cannot stand in for helm: None when there is none at all."""
    output = compiler.project.output.rstrip("/")
    if is_incomplete(compiler.files.root / output / prepared.env.name):
        return incomplete_diagnostic(output, prepared.env.name).message
    plan = f"{output}/{prepared.env.name}/plan.json"
    return STALE_REVIEW if (compiler.files.root / plan).is_file() else None


def committed_review(compiler: Compiler,
                     prepared: Prepared) -> dict[str, tuple[Manifest, ...]] | None:
    """The committed manifests of the environment's Helm-chart releases, by release, when its
    committed plan.json was made from exactly the current inputs; else None."""
    env = prepared.env
    output = compiler.project.output.rstrip("/")
    if is_incomplete(compiler.files.root / output / env.name):
        return None  # an interrupted render: a mix of old and new files
    try:
        committed = json.loads(compiler.files.read(f"{output}/{env.name}/plan.json"))
    except (OSError, ValueError):
        return None
    if not isinstance(committed, dict) or \
            committed.get("inputsDigest") != plan_inputs_digest(compiler, env, prepared.enabled):
        return None
    found = {}
    for release in prepared.enabled:
        if release.chart.is_helm:
            folder = f"{output}/{env.name}/{release.name}/manifests"
            try:
                names = compiler.files.list_dir(folder)
                found[release.name] = tuple(manifest_from_file(release, name.rpartition("/")[2],
                                                               compiler.files.read(name))
                                            for name in sorted(names) if name.endswith(".yaml"))
            except (OSError, ValueError, KeyError, TypeError):
                return None
    return found


def _render_helm(compiler: Compiler, helm: HelmTool, release: Release, values: ValueSet,
                 env: Environment, namespace: str, env_secrets: EnvSecrets,
                 diags: Diagnostics) -> tuple[Manifest, ...]:
    """A Helm chart's manifests by ``helm template`` (a remote chart's from its verified
    package); its values.schema.json is judged by meshc first (refusals located on the layer
    that set the value), then by Helm. The release's secrets go in as stand-ins."""
    if release.chart.schema is not None:
        schema = Diagnostics()
        check_chart_schema(release.chart.schema, values, release, schema, [])
        diags.extend(schema.items)
        if schema.has_errors:  # reported; Helm would only say it again, less precisely
            return ()
    kube_version = env.kube_version.value if env.kube_version is not None else None
    package = None
    if not release.chart.local:
        if compiler.charts is None:
            raise CompileError([Diagnostic(
                "error", f"remote chart '{release.chart.ref}' of release '{release.name}' "
                "cannot be rendered: no chart cache", release.chart_span or release.span)])
        package = compiler.charts.package(release, env, helm)
    stand_ins = secret_stand_ins(env_secrets, release)
    store = compiler.charts
    return render_helm_release(release, values.values, compiler.files, helm, namespace,
                               env.name, kube_version, package, stand_ins, env.api_versions,
                               store.renders if store is not None else None,
                               store.digest(release, env) if store is not None
                               and package is not None else None)


def _namespace(compiler: Compiler, release: Release, env: Environment,
               env_ctx: dict[str, Any]) -> str:
    template = release.namespace or env.namespace
    if template is None:
        return "default"
    context = {"env": env_ctx, "release": {"name": release.name, "labels": dict(release.labels),
                                           "chart": release.chart.ref}}
    namespace = compiler.templates.render_string(template.value, context, template.span).strip()
    if not DNS_LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise CompileError([_at(f"namespace '{namespace}' (release '{release.name}' in "
                                f"'{env.name}') is not a DNS-1123 label", template.span)])
    return namespace


class Placed(Protocol):
    """What the plan needs of a compiled release (a ReleaseOutput, or a worker's summary)."""

    @property
    def release(self) -> Release: ...
    @property
    def namespace(self) -> str: ...
    @property
    def helm(self) -> HelmOptions: ...
    @property
    def secrets(self) -> ReleaseSecrets: ...
    @property
    def hooks(self) -> tuple[str, ...]: ...
    @property
    def resources(self) -> tuple[Resource, ...]: ...


def plan_environment(compiler: Compiler, env: Environment, outputs: Sequence[Placed],
                     disabled: tuple[tuple[str, str], ...],
                     slots: Sequence[SlotStatus] = ()) -> Plan:
    """The plan of ``env`` from its compiled releases (in meshfile order); ``slots``: where
    its blue-green releases stand (:attr:`Prepared.slots`). Raises
    :class:`CompileError` when two of them create the same resource."""
    diags = Diagnostics()
    duplicate_resources(env, outputs, diags)
    diags.raise_if_errors()
    output = compiler.project.output.rstrip("/")
    names = {o.release.name for o in outputs}
    targets = []
    for o in outputs:
        r = o.release
        folder = f"{output}/{env.name}/{r.name}"
        targets.append(Target(
            release=r.name, namespace=o.namespace,
            needs=tuple(n.name for n in r.needs if n.name in names),
            dropped_needs=tuple(n.name for n in r.needs if n.name not in names),
            helm=o.helm, chart=r.chart.ref if r.chart.is_helm else folder,
            values_file=f"{folder}/values.yaml", remote=not r.chart.local,
            repo=r.chart.repo, version=env.chart_version(r), secrets=o.secrets.inputs,
            helm_chart=r.chart.ref if r.chart.is_helm else None, hooks=o.hooks,
            digest=compiler.charts.digest(r, env) if compiler.charts is not None
            and not r.chart.local else None, blue_green=SlotRole.of(r, slots)))
    generations = waves(o.release for o in outputs)
    digest = plan_inputs_digest(compiler, env, [o.release for o in outputs])
    check_helm_options(env, outputs)
    return build_plan(env.name, env.protected, env.kube_context, tuple(targets), generations,
                      disabled, digest, env.helm_version.major, env.region)


def check_helm_options(env: Environment, outputs: Sequence[Placed]) -> None:
    """Refuse options the Helm ``env``'s plan is for cannot express (Helm 3: ``serverSide:
    true``): one error per place an option is set, naming the option, the environment and the
    releases it reaches. Raises :class:`CompileError`."""
    if env.helm_version.major >= 4:
        return
    found: dict[tuple[str, Span | None], list[str]] = {}
    for o in outputs:
        for key in helm3_unsupported(o.helm):
            found.setdefault((key, o.helm.span(key)), []).append(o.release.name)
    if not found:
        return
    chosen = helm_version_origin(env.helm_version)
    raise CompileError([Diagnostic(
        "error", f"helm option '{key}' ({HELM4_ONLY[key]}) has no Helm 3 equivalent: "
                 f"environment '{env.name}' targets Helm 3 (release{'s' * (len(names) > 1)} "
                 f"{', '.join(names)})", span or env.span,
        help="Helm 3 always applies on the client: remove it (or set it to false) for this "
             "environment, or target Helm 4 (helmVersion: 4)",
        notes=(chosen,)) for (key, span), names in sorted(
            found.items(), key=lambda item: (item[0][0], str(item[0][1])))])


def helm_version_origin(version: HelmVersion) -> str:
    """Where the Helm a plan is for was chosen, for a diagnostic's notes."""
    if version.span is not None:
        return (f"helmVersion: {version.major} is set at {version.span.file}:"
                f"{version.span.line}:{version.span.col}")
    if version.origin != "default":
        return f"{version.origin} on the command line"
    return f"Helm {version.major} is the default (no helmVersion: in the meshfile)"


def overridden_plan_stands(env: Environment, fresh: str | None, committed: str | None) -> bool:
    """Whether ``env``'s committed ``plan.json`` text (made for the meshfile's Helm) stands for
    the ``fresh`` one made for the command line's ``--helm-version``: both made from the same
    inputs (same ``inputsDigest``). False without such an override."""
    if env.helm_version.origin in ("meshfile", "default"):
        return False
    digests = []
    for text in (fresh, committed):
        try:
            found = json.loads(text or "").get("inputsDigest")
        except (ValueError, AttributeError):
            return False
        digests.append(found if isinstance(found, str) and found else None)
    return digests[0] is not None and digests[0] == digests[1]


def with_helm_version(compiler: Compiler, major: int, origin: str = "--helm-version") -> Compiler:
    """``compiler`` with every environment's plans for Helm ``major`` (3 or 4), as the command
    line's ``origin`` (``--helm-version 3``) says, over the meshfile's ``helmVersion:``."""
    version = HelmVersion(major, None, f"{origin} {major}")
    project = replace(compiler.project, environments=tuple(
        replace(env, helm_version=version) for env in compiler.project.environments))
    return replace(compiler, project=project)


def plan_inputs_digest(compiler: Compiler, env: Environment, releases: Iterable[Release]) -> str:
    """The ``inputsDigest`` of ``env``'s plan deploying ``releases``, with the command line's
    value flags."""
    sets = compiler.sets
    return inputs_digest(compiler.files, compiler.templates, compiler.project, env, releases,
                         sets.doc if sets is not None else None,
                         [(p.flag.kind, p.flag.text) for p in sets.flags] if sets is not None
                         else ())


# --- output files ---------------------------------------------------------------------------

def output_files(result: EnvironmentOutput) -> dict[str, str]:
    """The files of ``rendered/<env>/`` (paths relative to the output directory)."""
    env = result.env.name
    files = {f"{env}/plan.json": format_json(result.plan)}
    for o in result.releases:
        files.update(release_files(env, o))
    return files


def release_files(env: str, o: ReleaseOutput) -> dict[str, str]:
    """The files of ``rendered/<env>/<release>/``."""
    folder = f"{env}/{o.release.name}"
    chart = o.release.chart
    if chart.is_helm and chart.defaults is not None:  # installed as itself: deletions said
        files = {f"{folder}/values.yaml": dump_yaml(with_deletions(o.values.values,
                                                                   chart.defaults.data))}
    else:
        files = {f"{folder}/values.yaml": values_yaml(o.values)}
    if o.manifests is None:
        return files
    if chart.is_helm:  # the review copy: the plan installs the Helm chart itself
        files.update({f"{folder}/manifests/{m.filename}": m.text for m in o.manifests})
        return files
    files[f"{folder}/Chart.yaml"] = wrapper_chart.chart_yaml(o.release.name)
    files[f"{folder}/{wrapper_chart.TEMPLATE_PATH}"] = wrapper_chart.manifests_template()
    for manifest in o.manifests:
        files[f"{folder}/manifests/{manifest.filename}"] = manifest.text
    if o.release.chart.schema is not None:  # so Helm checks again at install, secrets added
        files[f"{folder}/{wrapper_chart.SCHEMA_PATH}"] = \
            wrapper_chart.schema_json(o.release.chart.schema.data)
    if o.secrets.objects:
        files[f"{folder}/{wrapper_chart.SECRETS_TEMPLATE_PATH}"] = \
            wrapper_chart.secrets_template(o.release.name, o.namespace, [
                (obj.name, obj.path, obj.keys) for obj in o.secrets.objects])
    return files


def values_yaml(values: ValueSet) -> str:
    """``values.yaml`` as written to rendered/ and printed by ``meshc values``."""
    return dump_yaml(values.values)


def release_output(result: EnvironmentOutput, name: str) -> ReleaseOutput | None:
    return next((o for o in result.releases if o.release.name == name), None)


def committed_files(compiler: Compiler, env: str) -> dict[str, str]:
    """The committed output of ``env`` (paths relative to the output directory). Raises
    :class:`CompileError` when a render of it was interrupted (compiler/core/incomplete.py)."""
    require_complete(compiler.files.root, compiler.project.output, [env])
    folder = compiler.files.root / compiler.project.output / env
    return {f"{env}/{p}": t for p, t in read_tree(folder).items()}


def compare_environments(project: Project, before: EnvironmentOutput,
                         after: EnvironmentOutput, only: Iterable[str] = ()) -> list[ReleaseDiff]:
    """Every release (in meshfile order) of either environment, compared."""
    wanted = set(only)
    a = {o.release.name: o for o in before.releases}
    b = {o.release.name: o for o in after.releases}
    names = [r.name for r in project.releases
             if (r.name in a or r.name in b) and (not wanted or r.name in wanted)]
    diffs = []
    for name in names:
        if name not in b:
            diffs.append(ReleaseDiff(name, "only-from", a[name].values, None))
        elif name not in a:
            diffs.append(ReleaseDiff(name, "only-to", None, b[name].values))
        else:
            diffs.append(diff_release(a[name].values, b[name].values,
                                      manifest_resources(a[name].manifests or (), a[name].namespace),
                                      manifest_resources(b[name].manifests or (), b[name].namespace)))
    return _hoist_env_wide(diffs)


def _hoist_env_wide(diffs: list[ReleaseDiff]) -> list[ReleaseDiff]:
    """``global`` and ``features`` reach every chart alike: report their differences once, as
    the environment's, instead of under every release."""
    wide = next((d for d in diffs if d.presence == "both"), None)
    if wide is None:
        return diffs
    shared = tuple(c for c in wide.values if c.path[0] in ENV_WIDE_KEYS)
    trimmed = [replace(d, values=tuple(c for c in d.values if c.path[0] not in ENV_WIDE_KEYS))
               for d in diffs]
    header = ReleaseDiff(ENVIRONMENT_WIDE, "both", wide.before, wide.after, shared)
    return [header, *trimmed]
