"""``meshc versions --live``: the versions table of :mod:`.versions`, from what runs.

Per environment and running release (Helm's latest revision ``deployed``): the image tag of
each container of its live manifest's workloads (key ``image CONTAINER``) and, for a remote
chart, the chart version Helm installed (key ``chart``). Environments are compared along the
promotion order as ``meshc versions`` compares them; a release running a newer version than
its source environment (by semver) breaks the live promotion order: an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic
from ..model.model import SLOTS, Environment
from ..pipeline import Compiler
from ..plan.diff import resources_of
from .live import LiveEnvironment
from .versions import (
    AHEAD,
    CHART,
    IDLE,
    LIVE,
    EnvVersions,
    Version,
    VersionTable,
    version_table,
)

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job")


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or {}
    return [c for key in ("initContainers", "containers") for c in pod.get(key) or []
            if isinstance(c, dict)]


def image_tags(manifest: str) -> dict[str, str]:
    """``{"image CONTAINER": tag}`` of a manifest's workloads (a digest-pinned image: its
    digest)."""
    found: dict[str, str] = {}
    for key, doc in sorted(resources_of([("manifest", manifest)]).items()):
        if key.split("/", 1)[0] not in WORKLOADS:
            continue
        for c in _containers(doc):
            image = str(c.get("image") or "")
            name, _, digest = image.partition("@")
            tag = digest or (name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else
                             "latest")
            found.setdefault(f"image {c.get('name')}", tag)
    return found


def live_env_versions(env: Environment, live: LiveEnvironment) -> EnvVersions:
    versions: dict[tuple[str, str], Version] = {}
    running = set()
    for r in live.releases:
        current = r.current
        if current is None or current.status != "deployed" or r.manifest is None:
            continue
        running.add(r.release)
        where = f"helm: {r.release} revision {current.revision} in {live.name}"
        if r.step.remote and "-" in current.chart:
            version = current.chart.rpartition("-")[2]
            head = current.chart.rpartition("-")[0]
            while head and version and not version[0].isdigit() and "-" in head:
                head, _, more = head.rpartition("-")  # a pre-release: name-1.0.0-rc.1
                version = f"{more}-{version}"
            versions[(r.release, CHART)] = Version(r.release, CHART, None, version, where)
        for key, tag in image_tags(r.manifest).items():
            versions[(r.release, key)] = Version(r.release, key, None, tag, where)
    # a blue-green release runs what its live slot runs (as the plan it was applied from says):
    # the release's row, compared along the promotion order; its slots show live or idle
    slots: dict[str, str] = {}
    planned = {x.release for x in live.releases}
    for r in live.releases:
        role = r.step.blue_green
        if role is None or role.role == "router":
            continue
        slots[r.release] = LIVE if role.live else IDLE
        if role.live and r.release in running and role.group in planned:
            running.add(role.group)
            versions.update({(role.group, key): replace(v, release=role.group)
                             for (name, key), v in list(versions.items()) if name == r.release})
    return EnvVersions(env, frozenset(running), versions, {}, slots)


def live_version_table(compiler: Compiler, envs: Sequence[Environment],
                       live: Sequence[LiveEnvironment]) -> VersionTable:
    """The versions table of the reachable environments in ``live``."""
    computed = {env.name: live_env_versions(env, found) for env, found in zip(envs, live)
                if found.unreachable is None}
    return version_table(compiler, (), computed)


def broken_order(table: VersionTable) -> list[Diagnostic]:
    """One error per version running ahead of its source environment's."""
    found = []
    for (release, key, env), cell in sorted(table.cells.items()):
        if cell.state == AHEAD and cell.version and cell.source_version:
            found.append(Diagnostic(
                "error", f"live promotion order broken: {env} runs {release} {key} "
                         f"{cell.version.text}, newer than {cell.source}'s "
                         f"{cell.source_version.text}",
                help=f"promote through {cell.source} first, or roll {env} back "
                     f"(meshc rollback {env} {_running(table, release, key, env)})"))
    return found


def _running(table: VersionTable, release: str, key: str, env: str) -> str:
    """The release that runs ``release``'s version in ``env``: a blue-green release's live
    slot (rolling back its router would not change what runs), else itself."""
    return next((slot for slot in (f"{release}-{s}" for s in SLOTS)
                 if (cell := table.cells.get((slot, key, env))) is not None
                 and cell.state == LIVE), release)


def raise_broken(table: VersionTable) -> None:
    problems = broken_order(table)
    if problems:
        raise CompileError(problems)
