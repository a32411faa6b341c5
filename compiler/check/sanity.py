"""Graph sanity: needs on disabled releases, releases deployed nowhere, abstract environments
nobody inherits, values files nobody uses.

Definitions (README, "meshc check"):

- ``region-cluster-shared`` (per environment): a region deploys to the same kube-context and
  namespace as another deployable target (at the region).
- ``bluegreen-unrecorded`` (per environment): the state file does not record a blue-green
  release's live slot (at the release's ``strategy``).
- ``needs-disabled`` (per environment): a deployed release needs a release that the environment
  does not deploy; the plan drops that need (reported at the ``needs`` entry).
- ``enabled-nowhere``: a release no deployable environment deploys (at the release).
- ``abstract-unused``: an abstract environment no environment inherits from (at the environment).
- ``values-file-unused``: a ``*.yaml``/``*.yml`` file in a folder holding a values file the
  meshfile names, which the meshfile names nowhere (neither ``values:`` nor ``secrets:``); or a
  named values file that reaches no deployable environment.

The project-wide rules run when every deployable environment is checked (``meshc check`` with no
environment named), since only then is "nowhere" known.
"""

from __future__ import annotations

from collections.abc import Iterator
from posixpath import dirname

from ..core.source import Span
from ..model.bluegreen import groups_of, load_state, state_path
from ..model.model import SLOTS
from .context import CheckContext, Finding

YAML_SUFFIXES = (".yaml", ".yml")


def check_sanity(ctx: CheckContext) -> Iterator[Finding]:
    yield from _needs_disabled(ctx)
    yield from _region_cluster_shared(ctx)
    yield from _bluegreen_unrecorded(ctx)
    if {e.name for e in ctx.environments} != {e.name for e in ctx.project.deployable}:
        return
    yield from _enabled_nowhere(ctx)
    yield from _abstract_unused(ctx)
    yield from _values_files_unused(ctx)


def _needs_disabled(ctx: CheckContext) -> Iterator[Finding]:
    for env in ctx.environments:
        if not ctx.enabled("needs-disabled", env):
            continue
        result = ctx.output(env)
        deployed = {o.release.name for o in result.releases}
        why = dict(result.plan.disabled)
        for output in result.releases:
            for need in output.release.needs:
                if need.name in deployed or ctx.project.release(need.name) is None:
                    continue
                reason = why.get(need.name, "disabled")
                finding = ctx.finding(
                    "needs-disabled", env,
                    f"release '{output.release.name}' needs '{need.name}', which "
                    f"'{env.name}' does not deploy ({reason}); the plan drops this need",
                    need.span, help=f"enable '{need.name}' in '{env.name}', or accept the "
                                    "dropped need by turning this rule off there")
                if finding is not None:
                    yield finding


def _region_cluster_shared(ctx: CheckContext) -> Iterator[Finding]:
    """A region sharing a kube-context and a namespace with another deployable target (of
    those checked): their releases would overwrite each other's."""
    targets = [env for env in ctx.environments if env.kube_context is not None]
    if not any(env.region is not None for env in targets):
        return
    namespaces = {env.name: {o.namespace for o in ctx.output(env).releases} for env in targets}
    for index, env in enumerate(targets):
        for other in targets[:index]:
            if env.kube_context != other.kube_context or (env.region is None
                                                          and other.region is None):
                continue
            shared = sorted(namespaces[env.name] & namespaces[other.name])
            if not shared or not ctx.enabled("region-cluster-shared", env):
                continue
            finding = ctx.finding(
                "region-cluster-shared", env,
                f"'{env.name}' and '{other.name}' both deploy to kube-context "
                f"'{env.kube_context}', namespace{'s' * (len(shared) > 1)} {', '.join(shared)}: "
                "their releases would overwrite each other's", env.span,
                help="give the region a kubeContext of its own, or a namespace of its own "
                     "(regions: {NAME: {namespace: …}})")
            if finding is not None:
                yield finding


def _bluegreen_unrecorded(ctx: CheckContext) -> Iterator[Finding]:
    """A blue-green release whose live slot the state file does not record: it runs the values
    files' versions, so a version change there would reach both slots, the live one too."""
    groups = groups_of(ctx.project.releases)
    for env in ctx.environments if groups else ():
        if not ctx.enabled("bluegreen-unrecorded", env):
            continue
        routers = [o.release for o in ctx.output(env).releases  # compiled once, for every check
                   if o.release.slot is not None and o.release.slot.is_router]
        state = load_state(ctx.compiler.files, env.name, groups) if routers else None
        for router in routers:
            group = router.slot.group  # type: ignore[union-attr]
            record = state.record(group) if state is not None else None
            if record is not None and record.values_of(record.live) is not None:
                continue
            live = record.live if record is not None else SLOTS[0]
            finding = ctx.finding(
                "bluegreen-unrecorded", env,
                f"blue-green release '{group}': {state_path(env.name)} does not record "
                f"its live slot ({live}) and what it runs, so a version change in the "
                "values files would reach both slots, the live one too",
                router.slot.span,  # type: ignore[union-attr]
                help=f"record it once deployed: meshc switch {env.name} {group} --record")
            if finding is not None:
                yield finding


def _enabled_nowhere(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.enabled("enabled-nowhere", None):
        return
    deployed = {o.release.name for env in ctx.project.deployable
                for o in ctx.output(env).releases}
    for release in ctx.project.releases:
        if release.name in deployed:
            continue
        condition = release.condition.value if release.condition else "its condition"
        finding = ctx.finding(
            "enabled-nowhere", None,
            f"release '{release.name}' is deployed in no environment ({condition} is never "
            "true)", release.span, help=f"set {condition}: true where it should run, or remove "
                                        "the release")
        if finding is not None:
            yield finding


def _abstract_unused(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.enabled("abstract-unused", None):
        return
    inherited = {name for env in ctx.project.environments for name in env.chain[:-1]}
    for env in ctx.project.environments:
        if env.abstract and env.name not in inherited:
            finding = ctx.finding(
                "abstract-unused", None,
                f"abstract environment '{env.name}' is inherited by no environment", env.span,
                help=f"add `inherits: {env.name}` where it belongs, or remove it")
            if finding is not None:
                yield finding


def _values_files_unused(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.enabled("values-file-unused", None):
        return
    project = ctx.project
    named = {doc.file for env in project.environments for doc in env.values}
    named |= {doc.file for r in project.releases for doc in r.values}
    named |= {s.value for env in project.environments for s in env.secrets}
    used = {doc.file for env in project.deployable for doc in env.values}
    for env in project.environments:
        for doc in env.values:
            if doc.file not in used:
                used.add(doc.file)  # report once
                yield from _unused(ctx, doc.file, "is named only by environments that no "
                                                  "deployable environment inherits")
    env_folders = sorted({dirname(doc.file) for env in project.environments
                          for doc in env.values} - {""})
    for folder in env_folders:
        try:
            listing = ctx.compiler.files.list_dir(folder)
        except (OSError, ValueError):
            continue
        for path in listing:
            if path.endswith(YAML_SUFFIXES) and path not in named:
                yield from _unused(ctx, path, "is not named in the meshfile (neither `values:` "
                                              "nor `secrets:` of any environment)")


def _unused(ctx: CheckContext, path: str, why: str) -> Iterator[Finding]:
    try:
        ctx.sources[path] = ctx.compiler.files.read(path)
    except (OSError, ValueError):
        pass
    finding = ctx.finding("values-file-unused", None, f"values file {path} {why}",
                          Span(path, 1, 1), help="name it in an environment's `values:`, or "
                                                 "delete it")
    if finding is not None:
        yield finding
