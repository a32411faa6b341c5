"""Argo CD (argoproj.io/v1alpha1) documents for one environment: an AppProject limited to its
destinations and namespaces, one Application per release carrying its meshc wave as
``argocd.argoproj.io/sync-wave``, an app-of-apps root Application, and the ``argocd-cm``
health check that makes waves wait on health. Pure: :class:`ExportEnv` in, files out.

Paths returned are relative to the engine's folder (``gitops/argocd``): ``<env>/root.yaml``,
``<env>/argocd-cm.yaml``, ``<env>/apps/project.yaml``, ``<env>/apps/<release>.yaml``.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic
from .model import (
    ExportEnv,
    ExportOptions,
    ExportRelease,
    documents,
    header,
    label_value,
    object_name,
)

API = "argoproj.io/v1alpha1"
WAVE = "argocd.argoproj.io/sync-wave"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
# Argo CD ≥ 1.8 no longer assesses an Application's health from its children: without this
# Lua check a parent's sync waves do not wait for the previous wave's Applications to be
# Healthy (argo-cd docs, "Application health" in the 1.7 → 1.8 upgrade notes).
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
HEALTH_LUA = """hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
  if obj.status.health ~= nil then
    hs.status = obj.status.health.status
    if obj.status.health.message ~= nil then
      hs.message = obj.status.health.message
    end
  end
end
return hs
"""


def argocd_files(env: ExportEnv, options: ExportOptions, folder: str) -> dict[str, str]:
    """The Argo CD export of ``env``; ``folder`` is the engine's folder, project-relative
    (``gitops/argocd``). Raises :class:`CompileError` for releases Argo CD cannot be given
    faithfully (those receiving SOPS secrets: Argo CD cannot decrypt them)."""
    _refuse_secrets(env)
    top = header("argocd", env.name)
    project = object_name(env.project, env.name)
    files = {
        f"{env.name}/root.yaml": top + documents(_root(env, options, folder, project)),
        f"{env.name}/argocd-cm.yaml": top + documents(health_patch(options)),
        f"{env.name}/apps/project.yaml": top + documents(_project(env, options, project)),
    }
    if options.application_set:
        files[f"{env.name}/apps/applicationset.yaml"] = top + documents(
            application_set(env, options, project))
        return files
    for release in env.releases:
        files[f"{env.name}/apps/{release.name}.yaml"] = top + documents(
            application(env, release, options, project))
    return files


def application_set(env: ExportEnv, options: ExportOptions, project: str) -> dict[str, Any]:
    """One ApplicationSet for the environment: a list generator with an element per release,
    every Application labelled ``meshc.io/wave``, and a RollingSync strategy stepping through
    the waves in order (progressive syncs must be switched on in Argo CD). Every Application
    has two sources (chart, and the reviewed values as ``$values``), so one template fits all;
    the sync policy is the environment's (CreateNamespace when any release creates its
    namespace, a retry when every release rolls back)."""
    elements = []
    for release in env.releases:
        remote = release.kind == "remote"
        path = ("" if remote else options.repo_path(
            release.values_file.rpartition("/")[0] if release.kind == "wrapper" else release.chart))
        elements.append({
            "release": release.name, "wave": str(release.wave), "namespace": release.namespace,
            "repoURL": release.repo if remote and release.repo else options.repo_url,
            "revision": release.version or "" if remote else options.revision,
            "chart": release.chart if remote else "", "path": path,
            "valuesFile": f"$values/{options.repo_path(release.values_file)}",
        })
    destination: dict[str, str] = ({"server": IN_CLUSTER_SERVER} if env.cluster is None else
                                   {"name": env.cluster})
    policy: dict[str, Any] = {}
    if any(r.helm.create_namespace for r in env.releases):
        policy["syncOptions"] = ["CreateNamespace=true"]
    if env.releases and all(r.helm.rollback_on_failure for r in env.releases):
        longest = max((r.helm.timeout or "5m" for r in env.releases), key=_seconds)
        policy["retry"] = {"limit": 3, "backoff": {"duration": "30s", "factor": 2,
                                                   "maxDuration": longest}}
    waves = sorted({r.wave for r in env.releases})
    return {
        "apiVersion": API, "kind": "ApplicationSet",
        "metadata": {"name": project, "namespace": options.argocd_namespace,
                     "labels": _labels(env)},
        "spec": {
            "goTemplate": True, "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": elements}}],
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": [
                {"matchExpressions": [{"key": "meshc.io/wave", "operator": "In",
                                       "values": [str(wave)]}]} for wave in waves]}},
            "template": {
                "metadata": {"name": f"{object_name(env.name)}-{{{{.release}}}}",
                             "labels": {**_labels(env), "meshc.io/release": "{{.release}}",
                                        "meshc.io/wave": "{{.wave}}"},
                             "annotations": {WAVE: "{{.wave}}"}},
                "spec": {
                    "project": project,
                    "destination": {**destination, "namespace": "{{.namespace}}"},
                    "sources": [
                        {"repoURL": "{{.repoURL}}", "targetRevision": "{{.revision}}",
                         "chart": "{{.chart}}", "path": "{{.path}}",
                         "helm": {"releaseName": "{{.release}}",
                                  "valueFiles": ["{{.valuesFile}}"]}},
                        {"repoURL": options.repo_url, "targetRevision": options.revision,
                         "ref": "values"}],
                    "syncPolicy": policy,
                },
            },
        },
    }


def _seconds(duration: str) -> float:
    """A Go duration (5m, 1h30m, 300s) in seconds, to compare timeouts."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)",
                                                          duration))


def _refuse_secrets(env: ExportEnv) -> None:
    needing = [r for r in env.releases if r.secrets]
    if not needing:
        return
    names = ", ".join(f"'{r.name}'" for r in needing)
    files = ", ".join(sorted({s.file for r in needing for s in r.secrets}))
    raise CompileError([Diagnostic(
        "error", f"cannot export '{env.name}' to Argo CD: {names} receive{'s' * (len(needing) == 1)}"
        f" SOPS-encrypted secrets ({files}), and Argo CD cannot decrypt SOPS: it would deploy "
        "them without their secrets", None,
        help=f"export to Flux, which decrypts SOPS natively (`meshc export flux {env.name}`); or "
             "deliver these secrets outside Helm values (e.g. External Secrets) and remove them "
             "from the environment's secrets files; see docs/gitops.md, \"Secrets\"")])


def _root(env: ExportEnv, options: ExportOptions, folder: str, project: str) -> dict[str, Any]:
    """The app-of-apps: syncs ``<env>/apps`` (the AppProject, then the Applications by wave)."""
    return {
        "apiVersion": API, "kind": "Application",
        "metadata": {"name": project, "namespace": options.argocd_namespace,
                     "labels": _labels(env), "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
        "spec": {
            "project": "default",
            "source": {"repoURL": options.repo_url, "targetRevision": options.revision,
                       "path": options.repo_path(f"{folder}/{env.name}/apps")},
            "destination": {"server": IN_CLUSTER_SERVER, "namespace": options.argocd_namespace},
            "syncPolicy": _sync_policy(env, None),
        },
    }


def _project(env: ExportEnv, options: ExportOptions, project: str) -> dict[str, Any]:
    """The environment's AppProject: its repositories, its cluster and namespaces only, and the
    cluster-scoped kinds its manifests hold."""
    repos = sorted({options.repo_url} | {r.repo for r in env.releases if r.repo})
    destinations = [_destination(env, ns) for ns in env.namespaces]
    kinds = {kind for r in env.releases for kind in r.cluster_kinds}
    if any(r.helm.create_namespace for r in env.releases):
        kinds.add(("", "Namespace"))
    return {
        "apiVersion": API, "kind": "AppProject",
        "metadata": {"name": project, "namespace": options.argocd_namespace,
                     "labels": _labels(env), "annotations": {WAVE: "-1"}},
        "spec": {
            "description": f"meshc project {env.project}, environment {env.name}",
            "sourceRepos": repos,
            "destinations": destinations,
            "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in sorted(kinds)],
        },
    }


def application(env: ExportEnv, release: ExportRelease, options: ExportOptions,
                project: str) -> dict[str, Any]:
    """One release's Application: its chart, its reviewed values file, its wave."""
    rendered = options.repo_path(release.values_file.rpartition("/")[0])
    helm: dict[str, Any] = {"releaseName": release.name}
    spec: dict[str, Any] = {"project": project, "destination": _destination(env, release.namespace)}
    if release.kind == "wrapper":  # the wrapper chart meshc rendered: one git source
        helm["valueFiles"] = ["values.yaml"]
        spec["source"] = {"repoURL": options.repo_url, "targetRevision": options.revision,
                          "path": rendered, "helm": helm}
    else:  # the chart itself, its values from the reviewed file in git ($values)
        helm["valueFiles"] = [f"$values/{options.repo_path(release.values_file)}"]
        chart: dict[str, Any] = (
            {"repoURL": release.repo or "", "chart": release.chart,
             "targetRevision": release.version or ""} if release.kind == "remote" else
            {"repoURL": options.repo_url, "targetRevision": options.revision,
             "path": options.repo_path(release.chart)})
        spec["sources"] = [{**chart, "helm": helm},
                           {"repoURL": options.repo_url, "targetRevision": options.revision,
                            "ref": "values"}]
    spec["syncPolicy"] = _sync_policy(env, release)
    annotations = {WAVE: str(release.wave)}
    if release.digest:
        annotations["meshc.io/chart-digest"] = release.digest
    return {
        "apiVersion": API, "kind": "Application",
        "metadata": {"name": object_name(env.name, release.name),
                     "namespace": options.argocd_namespace,
                     "labels": {**_labels(env), "meshc.io/release": release.name,
                                "meshc.io/wave": str(release.wave)},
                     "annotations": annotations,
                     "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
        "spec": spec,
    }


def _destination(env: ExportEnv, namespace: str) -> dict[str, str]:
    if env.cluster is None:
        return {"server": IN_CLUSTER_SERVER, "namespace": namespace}
    return {"name": env.cluster, "namespace": namespace}


def _sync_policy(env: ExportEnv, release: ExportRelease | None) -> dict[str, Any]:
    """Automated (prune, self-heal) unless the environment is protected: then a person syncs.
    ``CreateNamespace=true`` when helm would create it; a retry when helm would roll back."""
    policy: dict[str, Any] = {}
    if not env.protected:
        policy["automated"] = {"prune": True, "selfHeal": True}
    if release is None:
        return policy
    if release.helm.create_namespace:
        policy["syncOptions"] = ["CreateNamespace=true"]
    if release.helm.rollback_on_failure:
        policy["retry"] = {"limit": 3, "backoff": {"duration": "30s", "factor": 2,
                                                   "maxDuration": release.helm.timeout or "5m"}}
    return policy


def _labels(env: ExportEnv) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "meshc", "meshc.io/project": env.project,
            "meshc.io/environment": label_value(env.name)}


def health_patch(options: ExportOptions) -> dict[str, Any]:
    """The ``argocd-cm`` patch (merge it into the ConfigMap) restoring Application health."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "argocd-cm", "namespace": options.argocd_namespace,
                         "labels": {"app.kubernetes.io/name": "argocd-cm",
                                    "app.kubernetes.io/part-of": "argocd"}},
            "data": {HEALTH_KEY: HEALTH_LUA}}
