"""Drift: a release as it runs (Helm's latest revision) against the committed ``rendered/ENV``.

Compared, in the direction ``meshc apply`` would change them (cluster → rendered, the direction
of ``meshc plan``'s review, whose change lines :func:`compiler.plan.diff.review_lines` prints):

* the user-supplied values (``helm get values``) with ``values.yaml`` plus the release's
  secrets. Secrets are never shown nor compared by value: their paths are read from the
  encrypted files' structure (sops leaves key names in the clear) and both sides show
  ``(secret)`` there, so only a secret missing on one side is drift;
* the manifest (``helm get manifest``) with ``manifests/*.yaml``, resource by resource and
  field by field, hooks left out (Helm keeps them apart). The Secrets a local chart makes from
  secrets (``templates/secrets.yaml``) are checked for presence only, and so are the ``data``
  keys of any other Secret: their values are never printed. In a release that receives
  secrets, ``checksum/*`` annotations follow the secrets' values and are not compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from ..core.diagnostics import CompileError
from ..plan.diff import (
    FieldChange,
    Paint,
    ReleaseReview,
    ResourceChange,
    Resources,
    _plain,
    diff_resources,
    diff_trees,
    resources_of,
    review_lines,
)
from ..plan.plan import Plan, Step
from ..render.wrapper_chart import declared_secrets
from ..syntax.yamlsrc import load_documents
from ..values.values import lookup
from .live import LiveEnvironment, LiveRelease, Revision

SECRET = "(secret)"

# sync verdicts, worst first: what `meshc status` shows per release
UNREACHABLE, ERROR, NOT_DEPLOYED, FAILED, PENDING, DRIFTED, IN_SYNC = (
    "unreachable", "error", "not-deployed", "failed", "pending", "drifted", "in-sync")
VERDICTS = (UNREACHABLE, ERROR, NOT_DEPLOYED, FAILED, PENDING, DRIFTED, IN_SYNC)


@dataclass(frozen=True, slots=True)
class ReleaseDrift:
    """One release: its verdict, Helm's latest revision, and what differs."""

    release: str
    namespace: str
    sync: str
    revision: Revision | None = None
    review: ReleaseReview | None = None    # cluster → rendered; None when nothing was compared
    reason: str = ""                       # helm's error, for ERROR and UNREACHABLE

    @property
    def differs(self) -> bool:
        return self.review is not None and bool(self.review.values or self.review.resources)


@dataclass(frozen=True, slots=True)
class EnvironmentDrift:
    name: str
    kube_context: str | None
    releases: tuple[ReleaseDrift, ...]
    unreachable: str | None = None


def environment_drift(root: FsPath, output: str, live: LiveEnvironment) -> EnvironmentDrift:
    """Every release of ``live`` against ``root/output/ENV``."""
    folder = root / output.rstrip("/") / live.name
    releases = tuple(release_drift(root, folder, live.plan, r, live.unreachable)
                     for r in live.releases)
    return EnvironmentDrift(live.name, live.plan.kube_context, releases, live.unreachable)


def release_drift(root: FsPath, folder: FsPath, plan: Plan, live: LiveRelease,
                  unreachable: str | None = None) -> ReleaseDrift:
    step = live.step
    if unreachable is not None:
        return ReleaseDrift(step.release, step.namespace, UNREACHABLE, reason=unreachable)
    if live.error is not None:
        return ReleaseDrift(step.release, step.namespace, ERROR, live.current, reason=live.error)
    current = live.current
    if current is None or current.status in ("uninstalled", "uninstalling"):
        return ReleaseDrift(step.release, step.namespace, NOT_DEPLOYED, current)
    review = compare(root, folder / step.release, step, live.manifest or "", live.values)
    if current.status == "failed":
        sync = FAILED
    elif current.status.startswith("pending"):
        sync = PENDING
    else:
        sync = DRIFTED if review.values or review.resources else IN_SYNC
    return ReleaseDrift(step.release, step.namespace, sync, current, review)


def compare(root: FsPath, folder: FsPath, step: Step, manifest: str,
            values: Any) -> ReleaseReview:
    """What applying ``folder`` (``rendered/ENV/REL``) would change in the live ``manifest``
    and ``values``."""
    secret_paths = secret_value_paths(root, step)
    rendered_values = _masked(_read_values(folder / "values.yaml"), secret_paths, add=True)
    live_values = _masked(values if isinstance(values, dict) else {}, secret_paths, add=False)
    changes = diff_trees(live_values, rendered_values, by_name=False)
    declared = _declared(folder)
    hooks = set(step.hooks)
    rendered = {k: _secret_masked(v, declared) for k, v in _read_manifests(folder).items()
                if k not in hooks}
    rendered.update({f"Secret/{name}": _presence(name) for name in declared})
    running = {k: _secret_masked(v, declared) for k, v in
               resources_of([("manifest", manifest)]).items() if k not in hooks}
    resources = diff_resources(running, rendered)
    if step.secrets:
        resources = _without_checksums(resources)
    return ReleaseReview(step.release, "changed" if changes or resources else "unchanged",
                         tuple(changes), resources)


def secret_value_paths(root: FsPath, step: Step) -> list[tuple[Any, ...]]:
    """The paths, in the release's values, of the secrets its step passes to helm: read from
    the encrypted files' structure (keys are in the clear), never decrypted."""
    paths: list[tuple[Any, ...]] = []
    for item in step.secrets:
        try:
            docs = load_documents((root / item.file).read_text(encoding="utf-8"), item.file)
        except (OSError, CompileError):
            continue
        doc = {k: v for k, v in (docs[0] if docs and isinstance(docs[0], dict) else {}).items()
               if k != "sops"}
        present, node = lookup(doc, item.values_key)
        paths += _leaves(node if present else {}, ())
    return paths


def _leaves(node: Any, path: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if isinstance(node, dict) and node:
        return [p for key, value in node.items() for p in _leaves(value, (*path, key))]
    return [path] if path else []


def _masked(values: dict[str, Any], paths: Iterable[tuple[Any, ...]], add: bool) -> dict[str, Any]:
    """A copy of ``values`` with ``(secret)`` at each of ``paths`` present (``add``: at each
    of them, the rendered side, where helm merges the decrypted file in)."""
    result = json.loads(json.dumps(values))
    for path in paths:
        node = result
        for part in path[:-1]:
            if not isinstance(node, dict):
                break
            if part not in node and add:
                node[part] = {}
            node = node.get(part)
        else:
            if isinstance(node, dict) and (add or path[-1] in node):
                node[path[-1]] = SECRET
    return result


def _read_values(path: FsPath) -> Any:
    try:
        docs = load_documents(path.read_text(encoding="utf-8"), str(path))
    except (OSError, CompileError):
        return {}
    return docs[0] if docs and isinstance(docs[0], dict) else {}


def _read_manifests(folder: FsPath) -> Resources:
    files = sorted((folder / "manifests").glob("*.yaml"))
    return resources_of((p.name, p.read_text(encoding="utf-8")) for p in files)


def _declared(folder: FsPath) -> tuple[str, ...]:
    try:
        return declared_secrets((folder / "templates" / "secrets.yaml").read_text("utf-8"))
    except OSError:
        return ()


def _presence(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}


def _secret_masked(doc: dict[str, Any], declared: tuple[str, ...]) -> dict[str, Any]:
    """Secrets compared without their values: the ones made from secrets by presence, the
    others by their keys."""
    if doc.get("kind") != "Secret":
        return doc
    name = doc.get("metadata", {}).get("name")
    if name in declared:
        return _presence(str(name))
    return {**doc, **{key: {k: SECRET for k in doc[key]} for key in ("data", "stringData")
                      if isinstance(doc.get(key), dict)}}


def _without_checksums(changes: tuple[ResourceChange, ...]) -> tuple[ResourceChange, ...]:
    def derived(change: FieldChange) -> bool:
        path = change.path
        return len(path) >= 2 and path[-2] == "annotations" and str(path[-1]).startswith(
            "checksum/")

    kept = []
    for rc in changes:
        fields = tuple(f for f in rc.fields if not derived(f))
        if rc.change != "changed" or fields:
            kept.append(ResourceChange(rc.resource, rc.change, fields))
    return tuple(kept)


# --- words for people and machines --------------------------------------------------------

def format_drift(env: EnvironmentDrift, output: str, paint: Paint = _plain) -> str:
    """``meshc drift ENV``: per release, its verdict and the change lines of ``meshc plan``
    (cluster → rendered: ``+`` rendered but not live, ``-`` live but not rendered)."""
    where = f"kube-context {env.kube_context}" if env.kube_context else "the current kube-context"
    lines = [paint(f"drift {env.name}: the cluster ({where}) → {output.rstrip('/')}/{env.name}",
                   "title")]
    if env.unreachable is not None:
        lines.append(paint(f"  cluster unreachable: {env.unreachable}", "bad"))
    else:
        for r in env.releases:
            lines += _release_lines(r, paint)
    legend = ("+ rendered, not live   - live, not rendered   ~ live → rendered "
              "(what `meshc apply` would change)")
    lines += ["", legend, drift_summary(env)]
    return "\n".join(lines) + "\n"


_ROLES = {IN_SYNC: "good", DRIFTED: "warn", PENDING: "warn", FAILED: "bad", ERROR: "bad",
          UNREACHABLE: "bad", NOT_DEPLOYED: "dim"}


def _release_lines(r: ReleaseDrift, paint: Paint) -> list[str]:
    what = f"revision {r.revision.revision}, {r.revision.status}" if r.revision else ""
    head = f"  {paint(r.release, 'key')}" + (f" ({what})" if what else "")
    verdict = paint(r.sync, _ROLES[r.sync]) + (f": {r.reason}" if r.reason else "")
    lines = [f"{head}: {verdict}"]
    if r.review is not None:
        lines += review_lines(r.review, "      ", paint)
    return lines


def drift_summary(env: EnvironmentDrift) -> str:
    counts = {v: sum(1 for r in env.releases if r.sync == v) for v in reversed(VERDICTS)}
    shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    resources = [c for r in env.releases if r.review for c in r.review.resources]
    values = sum(len(r.review.values) for r in env.releases if r.review)
    kinds = {k: sum(1 for c in resources if c.change == k) for k in ("added", "changed", "removed")}
    return (f"summary: {env.name}: {len(env.releases)} releases: {shown or 'none'}; values: "
            f"{values} differ; resources: {kinds['added']} not live, {kinds['changed']} "
            f"differ, {kinds['removed']} not rendered")


def drift_json(env: EnvironmentDrift) -> dict[str, Any]:
    return {
        "apiVersion": "meshc/v1", "kind": "Drift", "environment": env.name,
        "kubeContext": env.kube_context, "unreachable": env.unreachable,
        "releases": [{
            "release": r.release, "namespace": r.namespace, "sync": r.sync,
            "revision": r.revision.revision if r.revision else None,
            "status": r.revision.status if r.revision else None,
            "reason": r.reason or None,
            "values": [{"path": c.text, "change": c.change, "live": c.before,
                        "rendered": c.after} for c in (r.review.values if r.review else ())],
            "resources": [{"resource": rc.resource, "change": rc.change,
                           "fields": [{"path": f.text, "change": f.change, "live": f.before,
                                       "rendered": f.after} for f in rc.fields]}
                          for rc in (r.review.resources if r.review else ())]}
            for r in env.releases],
        "summary": drift_summary(env),
    }
