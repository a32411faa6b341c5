"""Policies: built-in rules over the rendered workloads of each environment.

Each finding names the resource, the rule, the template line that rendered the field, and the
values key that would fix it — with its current provenance (file:line:col) when it is set, or
the environment's last values file to add it to. A values key is suggested only when the chart's
templates mention it, so a chart with other conventions gets no misleading hint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..core.source import Span
from .context import CheckContext, Finding, Resource, containers, dig, pod_spec_path
from .locate import ValuesPath, dotted

SCALED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")


def check_policies(ctx: CheckContext) -> Iterator[Finding]:
    for env in ctx.environments:
        resources = ctx.resources(env)
        hpas = {(r.manifest.namespace, dig(r.data, ("spec", "scaleTargetRef", "kind")),
                 dig(r.data, ("spec", "scaleTargetRef", "name"))): r
                for r in resources if r.manifest.kind == "HorizontalPodAutoscaler"}
        pdbs = [r for r in resources if r.manifest.kind == "PodDisruptionBudget"]
        for resource in resources:
            pod_path = pod_spec_path(resource.manifest.kind)
            if pod_path is None:
                continue
            hpa = hpas.get((resource.manifest.namespace, resource.manifest.kind,
                            resource.manifest.name))
            yield from _min_replicas(ctx, resource, hpa)
            yield from _container_rules(ctx, resource, pod_path)
            yield from _run_as_non_root(ctx, resource, pod_path)
            if (_replicas(resource, hpa) or 1) > 1:
                yield from _pdb(ctx, resource, pdbs)
                yield from _anti_affinity(ctx, resource, pod_path)


def _replicas(resource: Resource, hpa: Resource | None) -> int | None:
    """Replicas a scaled workload runs at least (Kubernetes' default 1 when unset; 1 for other
    kinds); None when the field is not a number (the schema check reports that)."""
    if resource.manifest.kind not in SCALED_KINDS:
        return 1
    if hpa is not None:
        value = dig(hpa.data, ("spec", "minReplicas"))
    else:
        value = dig(resource.data, ("spec", "replicas"))
    if value is None:
        return 1
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _report(ctx: CheckContext, rule: str, resource: Resource, path: tuple[str | int, ...],
            message: str, candidates: Sequence[ValuesPath], culprit: bool,
            extra_help: str = "", at: Resource | None = None) -> Iterator[Finding]:
    """One finding about ``path`` of ``resource`` (or of ``at``). When ``culprit`` and the
    values key is set, the finding points at that values line; otherwise at the template line."""
    if not ctx.enabled(rule, resource.env):
        return
    target = at or resource
    location = ctx.locator.field(target, path)
    candidates = tuple(c for c in candidates if _chart_mentions(ctx, target, c))
    hint = ctx.locator.values(target.output, target.env, candidates) if candidates else None
    span: Span | None = location.span
    notes = list(location.notes)
    if hint is not None and hint.present and culprit and hint.span is not None \
            and not hint.default:  # the value itself is the problem: point at it
        if location.span is not None:
            notes.insert(0, f"template: {location.span.file}:{location.span.line}")
        span = hint.span
    elif hint is not None and hint.deleted is not None:  # a null removed it: point there
        if location.span is not None:
            notes.insert(0, f"template: {location.span.file}:{location.span.line}")
        span = hint.deleted
        notes.append(hint.note)
    elif hint is not None:
        notes.append(hint.note)
    help = hint.help(extra_help) if hint is not None else None
    finding = ctx.finding(rule, resource.env, f"{resource.ref} ({resource.release}): {message}",
                          span, help, notes)
    if finding is not None:
        yield finding


def _chart_mentions(ctx: CheckContext, resource: Resource, path: ValuesPath) -> bool:
    """Whether the chart's templates mention the values key's first name (so setting it can
    matter); keys under ``global`` always can."""
    if not path or path[0] == "global":
        return True
    chart = resource.output.release.chart
    files = ctx.compiler.files
    try:
        names = [n for n in files.list_dir(chart.ref) if n.endswith(".j2")]
        return any(str(path[0]) in files.read(name) for name in names)
    except (OSError, ValueError):
        return False


def _min_replicas(ctx: CheckContext, resource: Resource, hpa: Resource | None) -> Iterator[Finding]:
    rule = "min-replicas"
    if resource.manifest.kind not in SCALED_KINDS or not ctx.enabled(rule, resource.env):
        return
    if "idleReplicas" in (resource.output.values.values.get("blueGreen") or {}):
        return  # an idle blue-green slot, scaled down by strategy.blueGreen.idleReplicas
    minimum = ctx.option(rule, resource.env, "min")
    replicas = _replicas(resource, hpa)
    if replicas is None or replicas >= minimum:
        return
    if hpa is not None:
        yield from _report(ctx, rule, resource, ("spec", "minReplicas"),
                           f"runs {replicas} replica{'s' * (replicas != 1)} at least "
                           f"(HorizontalPodAutoscaler minReplicas), below the minimum {minimum}",
                           [("autoscaling", "minReplicas")], True,
                           f"to {minimum} or more", at=hpa)
        return
    yield from _report(ctx, rule, resource, ("spec", "replicas"),
                       f"runs {replicas} replica{'s' * (replicas != 1)}, below the minimum "
                       f"{minimum}", [("replicaCount",), ("replicas",)], True,
                       f"to {minimum} or more")


def _container_rules(ctx: CheckContext, resource: Resource,
                     pod_path: tuple[str, ...]) -> Iterator[Finding]:
    for path, container in containers(resource.data, pod_path):
        name = container.get("name", "?")
        yield from _resources(ctx, resource, path, container, name)
        yield from _image_tag(ctx, resource, path, container, name)
        security = container.get("securityContext") or {}
        if security.get("readOnlyRootFilesystem") is not True:
            yield from _report(
                ctx, "read-only-root-filesystem", resource,
                (*path, "securityContext", "readOnlyRootFilesystem"),
                f"container '{name}' does not set readOnlyRootFilesystem: true",
                [("securityContext", "readOnlyRootFilesystem")],
                "readOnlyRootFilesystem" in security, "to true")
        if security.get("allowPrivilegeEscalation") is not False or security.get("privileged"):
            field = "privileged" if security.get("privileged") else "allowPrivilegeEscalation"
            yield from _report(
                ctx, "no-privilege-escalation", resource, (*path, "securityContext", field),
                f"container '{name}' " + ("is privileged" if field == "privileged" else
                                          "does not set allowPrivilegeEscalation: false"),
                [("securityContext", field)], field in security,
                "to false")


def _resources(ctx: CheckContext, resource: Resource, path: tuple[str | int, ...],
               container: dict[str, Any], name: str) -> Iterator[Finding]:
    rule = "resources"
    if not ctx.enabled(rule, resource.env):
        return
    missing = []
    for kind in ("requests", "limits"):
        for what in ctx.option(rule, resource.env, kind) or ():
            if dig(container, ("resources", kind, what)) in (None, ""):
                missing.append((kind, what))
    if not missing:
        return
    kind, what = missing[0]
    names = ", ".join(f"{k}.{w}" for k, w in missing)
    yield from _report(ctx, rule, resource, (*path, "resources", kind, what),
                       f"container '{name}' has no resources {names}",
                       [("resources", kind, what)], False)


def _image_tag(ctx: CheckContext, resource: Resource, path: tuple[str | int, ...],
               container: dict[str, Any], name: str) -> Iterator[Finding]:
    rule = "image-tag"
    image = container.get("image")
    if not isinstance(image, str) or not ctx.enabled(rule, resource.env):
        return
    tag = image_tag(image)
    if "@" in image and tag is None:
        return  # pinned by digest
    if tag is None:
        yield from _report(ctx, rule, resource, (*path, "image"),
                           f"container '{name}' image '{image}' has no tag (Kubernetes pulls "
                           "`latest`)", [("image", "tag")], False, "to a released version")
    elif tag == "latest":
        paths = ctx.locator.tag_paths(resource.output, tag) or (("image", "tag"),)
        yield from _report(ctx, rule, resource, (*path, "image"),
                           f"container '{name}' uses the `latest` tag ('{image}')", paths, True,
                           "to a released version")


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``registry:5000/a/b:1.2@sha256:…`` → ``1.2``)."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def _run_as_non_root(ctx: CheckContext, resource: Resource,
                     pod_path: tuple[str, ...]) -> Iterator[Finding]:
    rule = "run-as-non-root"
    if not ctx.enabled(rule, resource.env):
        return
    pod = dig(resource.data, (*pod_path, "securityContext", "runAsNonRoot"))
    candidates = [("podSecurityContext", "runAsNonRoot"), ("global", "securityContext",
                                                          "runAsNonRoot")]
    for path, container in containers(resource.data, pod_path):
        own = dig(container, ("securityContext", "runAsNonRoot"))
        if own is True or (own is None and pod is True):
            continue
        name = container.get("name", "?")
        if own is False:
            yield from _report(ctx, rule, resource, (*path, "securityContext", "runAsNonRoot"),
                               f"container '{name}' sets runAsNonRoot: false",
                               [("securityContext", "runAsNonRoot")], True, "to true")
        else:
            yield from _report(ctx, rule, resource, (*pod_path, "securityContext",
                                                     "runAsNonRoot"),
                               f"container '{name}' may run as root (runAsNonRoot is not true "
                               "for the pod or the container)", candidates, pod is not None,
                               "to true")


def _pdb(ctx: CheckContext, resource: Resource, pdbs: list[Resource]) -> Iterator[Finding]:
    labels = dig(resource.data, ("spec", "template", "metadata", "labels")) or {}
    for pdb in pdbs:
        selector = dig(pdb.data, ("spec", "selector", "matchLabels"))
        if pdb.manifest.namespace == resource.manifest.namespace and isinstance(selector, dict) \
                and selector and all(labels.get(k) == v for k, v in selector.items()):
            return
    yield from _report(ctx, "pod-disruption-budget", resource, ("metadata", "name"),
                       "runs several replicas but no PodDisruptionBudget covers its pods",
                       [("podDisruptionBudget", "enabled")], False, "to true")


def _anti_affinity(ctx: CheckContext, resource: Resource,
                   pod_path: tuple[str, ...]) -> Iterator[Finding]:
    pod = dig(resource.data, pod_path) or {}
    if dig(pod, ("affinity", "podAntiAffinity")) or pod.get("topologySpreadConstraints"):
        return
    yield from _report(ctx, "anti-affinity", resource, (*pod_path, "affinity"),
                       "runs several replicas without podAntiAffinity or "
                       "topologySpreadConstraints (one node failure can take them all)",
                       [("affinity", "podAntiAffinity")], False)


__all__ = ["check_policies", "dotted", "image_tag"]
