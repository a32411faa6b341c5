"""Flux (v2 APIs) documents for one environment: a GitRepository for the repository, a
HelmRepository per remote chart repository, one HelmRelease per release (``dependsOn`` = its
needs, remediation from ``rollbackOnFailure``, ``timeout``) and one Kustomization applying
them, decrypting SOPS. Pure: :class:`ExportEnv` in, files and :class:`SecretRequest` out.

Paths are relative to the engine's folder (``gitops/flux``): ``<env>/cluster/`` (what a
cluster's Flux is pointed at: the sources and the Kustomization) and ``<env>/releases/`` (what
the Kustomization applies: HelmReleases, and SOPS-encrypted Secrets holding releases' secrets).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..secrets.secrets import SecretInput
from .model import (
    ExportEnv,
    ExportOptions,
    ExportRelease,
    documents,
    header,
    label_value,
    object_name,
)

HELM = "helm.toolkit.fluxcd.io/v2"
SOURCE = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE = "kustomize.toolkit.fluxcd.io/v1"
SOURCES_ANNOTATION = "meshc.io/sources"
SECRETS_KEY = "values.yaml"
DECRYPTION_SECRET = "sops-age"   # the Secret in the Flux namespace holding the age key


@dataclass(frozen=True, slots=True)
class SecretRequest:
    """A SOPS-encrypted Secret the export needs: the release's part (``extract``) of an
    encrypted file, re-encrypted for the environment's recipients. ``sources`` digests what it is
    made from (the encrypted file's bytes, the part, the recipients, the Secret's name): a
    committed Secret with the same digest is kept byte for byte, no key needed."""

    path: str                     # relative to the engine's folder
    name: str
    namespace: str
    input: SecretInput
    recipients: tuple[str, ...]
    sources: str

    def document(self, plaintext: str) -> dict[str, Any]:
        """The Secret, before encryption (held in memory only)."""
        return {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "annotations": {SOURCES_ANNOTATION: self.sources}},
                "type": "Opaque", "stringData": {SECRETS_KEY: plaintext}}


def flux_files(env: ExportEnv, options: ExportOptions, folder: str,
               source_bytes: dict[str, bytes]) -> tuple[dict[str, str], tuple[SecretRequest, ...]]:
    """The Flux export of ``env`` (``folder``: the engine's folder, project-relative) and the
    encrypted Secrets it needs; ``source_bytes`` holds each encrypted secrets file's bytes."""
    top = header("flux", env.name)
    git = object_name(env.project, env.name)
    repos = sorted({r.repo for r in env.releases if r.repo})
    cluster = [_git_repository(env, options, git)]
    cluster += [_helm_repository(env, options, repo) for repo in repos]
    files = {
        f"{env.name}/cluster/sources.yaml": top + documents(*cluster),
        f"{env.name}/cluster/sync.yaml": top + documents(
            _kustomization(env, options, folder, git)),
    }
    requests: list[SecretRequest] = []
    for release in env.releases:
        mine = [_secret_request(env, options, release, index, item, source_bytes)
                for index, item in enumerate(release.secrets, 1)]
        requests += mine
        docs = [helm_release(env, release, options, git, repos, mine)]
        if release.kind == "remote":
            docs.append(values_config_map(env, release, options, release.values))
        files[f"{env.name}/releases/{release.name}.yaml"] = top + documents(*docs)
    return files, tuple(requests)


def repository_name(repo: str) -> str:
    """A HelmRepository's name for ``repo``: its host, and a short digest of the URL."""
    host = repo.split("://", 1)[-1].split("/", 1)[0].split(":")[0].lower()
    host = "".join(c if c.isalnum() else "-" for c in host).strip("-")[:40] or "charts"
    return f"{host}-{hashlib.sha256(repo.encode()).hexdigest()[:8]}"


def _labels(env: ExportEnv) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "meshc", "meshc.io/project": env.project,
            "meshc.io/environment": label_value(env.name)}


def _git_repository(env: ExportEnv, options: ExportOptions, name: str) -> dict[str, Any]:
    return {"apiVersion": SOURCE, "kind": "GitRepository",
            "metadata": {"name": name, "namespace": options.flux_namespace,
                         "labels": _labels(env)},
            "spec": {"interval": options.interval, "url": options.repo_url,
                     "ref": {"branch": options.revision}}}


def _helm_repository(env: ExportEnv, options: ExportOptions, repo: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": "1h", "url": repo}
    if repo.startswith("oci://"):
        spec["type"] = "oci"
    return {"apiVersion": SOURCE, "kind": "HelmRepository",
            "metadata": {"name": object_name(env.name, repository_name(repo)),
                         "namespace": options.flux_namespace, "labels": _labels(env)},
            "spec": spec}


def _kustomization(env: ExportEnv, options: ExportOptions, folder: str,
                   git: str) -> dict[str, Any]:
    """Applies ``<env>/releases``; decrypts the SOPS Secrets there with the age key in
    ``sops-age``. A protected environment is suspended: a person resumes it
    (``flux resume kustomization``) to deploy, as ``meshc apply`` asks for confirmation."""
    spec: dict[str, Any] = {
        "interval": options.interval, "prune": True, "wait": False,
        "path": "./" + options.repo_path(f"{folder}/{env.name}/releases"),
        "sourceRef": {"kind": "GitRepository", "name": git},
        "decryption": {"provider": "sops", "secretRef": {"name": DECRYPTION_SECRET}},
    }
    if env.protected:
        spec["suspend"] = True
    return {"apiVersion": KUSTOMIZE, "kind": "Kustomization",
            "metadata": {"name": git, "namespace": options.flux_namespace,
                         "labels": _labels(env)},
            "spec": spec}


def _secret_request(env: ExportEnv, options: ExportOptions, release: ExportRelease,
                    index: int, item: SecretInput,
                    source_bytes: dict[str, bytes]) -> SecretRequest:
    name = object_name(env.name, release.name, "secrets", str(index))
    data = source_bytes.get(item.file, b"")
    sources = "sha256:" + hashlib.sha256(b"\0".join([
        hashlib.sha256(data).hexdigest().encode(), item.file.encode(), item.extract.encode(),
        ",".join(sorted(env.recipients)).encode(), name.encode(),
        options.flux_namespace.encode()])).hexdigest()
    return SecretRequest(f"{env.name}/releases/{release.name}-secrets-{index}.yaml", name,
                         options.flux_namespace, item, env.recipients, sources)


def helm_release(env: ExportEnv, release: ExportRelease, options: ExportOptions, git: str,
                 repos: list[str], secrets: list[SecretRequest]) -> dict[str, Any]:
    """One release's HelmRelease: installed into its namespace under its own name, after the
    HelmReleases of its needs are ready."""
    values_file = options.repo_path(release.values_file)
    if release.kind == "remote":
        chart_spec: dict[str, Any] = {
            "chart": release.chart, "version": release.version or "*",
            "sourceRef": {"kind": "HelmRepository",
                          "name": object_name(env.name, repository_name(release.repo or ""))}}
    else:  # the wrapper chart meshc rendered, or the Helm chart's folder, from git
        path = values_file.rpartition("/")[0] if release.kind == "wrapper" else \
            options.repo_path(release.chart)
        chart_spec = {"chart": "./" + path, "reconcileStrategy": "Revision",
                      "sourceRef": {"kind": "GitRepository", "name": git},
                      "valuesFiles": ["./" + values_file]}
    chart_spec["interval"] = options.interval
    helm = release.helm
    remediation = {"retries": 3} if helm.rollback_on_failure else {"retries": 0}
    spec: dict[str, Any] = {
        "interval": options.interval,
        "releaseName": release.name, "targetNamespace": release.namespace,
        "storageNamespace": release.namespace,
        "chart": {"spec": chart_spec},
        "install": {"createNamespace": bool(helm.create_namespace),
                    "remediation": remediation},
        "upgrade": {"remediation": {**remediation, "remediateLastFailure":
                                    bool(helm.rollback_on_failure),
                                    "strategy": "rollback"},
                    "force": bool(helm.force_replace)},
    }
    if helm.timeout:
        spec["timeout"] = helm.timeout
    if not helm.wait:
        spec["install"]["disableWait"] = True
        spec["upgrade"]["disableWait"] = True
    if release.needs:
        spec["dependsOn"] = [{"name": object_name(env.name, need)} for need in release.needs]
    values_from = []
    if release.kind == "remote":  # no git path in a chart repository: the reviewed file as is
        values_from.append({"kind": "ConfigMap", "name": object_name(env.name, release.name,
                                                                     "values"),
                            "valuesKey": "values.yaml"})
    values_from += [{"kind": "Secret", "name": s.name, "valuesKey": SECRETS_KEY}
                    for s in secrets]
    if values_from:
        spec["valuesFrom"] = values_from
    annotations = {"meshc.io/wave": str(release.wave)}
    if release.digest:
        annotations["meshc.io/chart-digest"] = release.digest
    return {"apiVersion": HELM, "kind": "HelmRelease",
            "metadata": {"name": object_name(env.name, release.name),
                         "namespace": options.flux_namespace,
                         "labels": {**_labels(env), "meshc.io/release": release.name},
                         "annotations": annotations},
            "spec": spec}


def values_config_map(env: ExportEnv, release: ExportRelease, options: ExportOptions,
                      values: str) -> dict[str, Any]:
    """A remote chart's reviewed values (rendered/<env>/<release>/values.yaml) as a ConfigMap
    its HelmRelease reads (``valuesFrom``): a chart repository has no git path to point at."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": object_name(env.name, release.name, "values"),
                         "namespace": options.flux_namespace, "labels": _labels(env)},
            "data": {"values.yaml": values}}
