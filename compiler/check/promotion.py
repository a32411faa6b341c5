"""Promotion order: nothing runs ahead of the environment it is promoted from.

For every environment with ``promotesFrom`` and every release deployed in both, each image
(matched by resource and container in the rendered manifests; for a release without manifests,
by the values path of each ``tag``) and each remote chart's version (``version:``, or the environment's ``chartVersions:``) must not be
newer in the target than in the source, compared as semantic versions
(:mod:`.semver`). A tag that is not a semantic version cannot be ordered: it is reported as
such (rule ``promotion-unorderable``), never compared as a string.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..core.source import Span
from ..model.model import Environment
from ..pipeline import ReleaseOutput
from .context import CheckContext, Finding, Resource, containers, pod_spec_path
from .locate import dotted
from .policies import image_tag
from .semver import parse_semver


@dataclass(frozen=True, slots=True)
class _Version:
    """One versioned thing of a release in one environment and where it is decided."""

    what: str                    # "Deployment/x container 'agent' image" or "values image.tag"
    tag: str
    span: Span | None            # the values line setting it (or the template line)
    where: str                   # human text for notes


def check_promotion(ctx: CheckContext) -> Iterator[Finding]:
    for env in ctx.environments:
        if env.promotes_from is None:
            continue
        source = ctx.project.environment(env.promotes_from)
        if source is None or source.abstract:
            continue
        if not (ctx.enabled("promotion-order", env) or ctx.enabled("promotion-unorderable", env)):
            continue
        mine = {o.release.name: o for o in ctx.output(env).releases}
        theirs = {o.release.name: o for o in ctx.output(source).releases}
        for name in sorted(set(mine) & set(theirs)):
            target = _versions(ctx, env, mine[name])
            origin = _versions(ctx, source, theirs[name])
            for key in sorted(set(target) & set(origin)):
                yield from _compare(ctx, env, source, name, target[key], origin[key])


def _versions(ctx: CheckContext, env: Environment, output: ReleaseOutput) -> dict[str, _Version]:
    found: dict[str, _Version] = {}
    if output.manifests is not None:
        for resource in ctx.resources(env):
            if resource.output is not output:
                continue
            pod_path = pod_spec_path(resource.manifest.kind)
            if pod_path is None:
                continue
            for path, container in containers(resource.data, pod_path):
                image = container.get("image")
                tag = image_tag(image) if isinstance(image, str) else None
                if tag is None:
                    continue
                what = f"{resource.ref} container '{container.get('name', '?')}'"
                found[what] = _image_version(ctx, resource, path, what, tag)
    release = output.release
    version = env.chart_version(release) if not release.chart.local else None
    if version is not None:  # a remote chart's own version
        own = dict(env.chart_versions).get(release.name)
        where = (f"chartVersions of environment '{env.name}'" if own is not None
                 else f"version of release '{release.name}'")
        span = env.span if own is not None else release.span
        found["chart version"] = _Version("chart version", version, span, f"{where}, at {span}")
    if output.manifests is not None:
        return found
    for path, tag in _tags(output.values.values, ()):
        hint = ctx.locator.values(output, env, (path,))
        span = hint.span if hint is not None else None
        found[f"values {dotted(path)}"] = _Version(
            f"values {dotted(path)}", tag, span,
            f"{hint.key} at {span}" if hint is not None and span else dotted(path))
    return found


def _image_version(ctx: CheckContext, resource: Resource, path: tuple[str | int, ...],
                   what: str, tag: str) -> _Version:
    paths = ctx.locator.tag_paths(resource.output, tag)
    hint = ctx.locator.values(resource.output, resource.env, paths) if paths else None
    if hint is not None and hint.present and hint.span is not None:
        return _Version(what, tag, hint.span, f"{hint.key} at {hint.span}")
    location = ctx.locator.field(resource, (*path, "image"))
    return _Version(what, tag, location.span, f"image at {location.span}")


def _tags(values: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(values, dict):
        for key, value in sorted(values.items()):
            if key == "tag" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                yield (*path, key), str(value)
            elif key not in ("global", "features"):
                yield from _tags(value, (*path, key))


def _compare(ctx: CheckContext, env: Environment, source: Environment, release: str,
             target: _Version, origin: _Version) -> Iterator[Finding]:
    mine, theirs = parse_semver(target.tag), parse_semver(origin.tag)
    subject = f"{release}: {target.what}"
    if mine is None or theirs is None:
        bad = [(v, e) for v, e in ((target, env), (origin, source)) if parse_semver(v.tag) is None]
        for version, where in bad:
            finding = ctx.finding(
                "promotion-unorderable", env,
                f"{subject}: tag '{version.tag}' in '{where.name}' is not a semantic version, so "
                f"the promotion {source.name} -> {env.name} cannot be ordered", version.span,
                help="use MAJOR.MINOR.PATCH tags (pre-releases: 1.2.0-rc.1), see semver.org",
                notes=((f"'{env.name}' runs {target.tag} ({target.where}); '{source.name}' "
                        f"runs {origin.tag} ({origin.where})"),))
            if finding is not None:
                yield finding
        return
    if mine > theirs:
        finding = ctx.finding(
            "promotion-order", env,
            f"{subject}: '{env.name}' runs {target.tag}, ahead of {origin.tag} in "
            f"'{source.name}', which it is promoted from", target.span,
            help=f"promote {target.tag} to '{source.name}' first, or keep '{env.name}' at "
                 f"{origin.tag} or below",
            notes=(f"'{source.name}' sets {origin.tag} at {origin.where}",))
        if finding is not None:
            yield finding
