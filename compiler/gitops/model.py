"""What an export needs of one compiled environment, taken from its plan: waves, needs,
namespaces, kube-context, helm options, charts and their pins, secrets inputs.

:func:`export_environment` is the only reader of the pipeline's output; the engines' generators
(:mod:`.argocd`, :mod:`.flux`) are pure functions of :class:`ExportEnv` and
:class:`ExportOptions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.diagnostics import CompileError, Diagnostic
from ..model.model import HelmOptions
from ..pipeline import EnvironmentOutput, release_files
from ..secrets.secrets import SecretInput
from ..syntax.yamlsrc import dump_yaml

ENGINES = ("argocd", "flux")
DEFAULT_OUT = "gitops"
# Kinds without a namespace that charts commonly create; the AppProject allows exactly those
# the environment's manifests hold (plus Namespace when helm creates namespaces).
CLUSTER_SCOPED = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterIssuer", "ClusterRole",
    "ClusterRoleBinding", "CSIDriver", "CustomResourceDefinition", "IngressClass",
    "MutatingWebhookConfiguration", "Namespace", "PersistentVolume", "PodSecurityPolicy",
    "PriorityClass", "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
})
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How the exported objects reach the repository and the engines."""

    repo_url: str                      # the git repository holding this project
    revision: str = "main"             # branch, tag or commit the engines follow
    path: str = ""                     # the project's folder inside the repository ("": root)
    application_set: bool = False      # Argo CD: one ApplicationSet instead of app-of-apps
    argocd_namespace: str = "argocd"
    flux_namespace: str = "flux-system"
    interval: str = "5m"               # Flux: how often to reconcile

    def repo_path(self, rel: str) -> str:
        """``rel`` (project-relative) as a path from the repository's root."""
        return f"{self.path.strip('/')}/{rel}" if self.path.strip("/") else rel


@dataclass(frozen=True, slots=True)
class ExportRelease:
    """One step of the plan, as the engines need it."""

    name: str
    wave: int
    needs: tuple[str, ...]
    namespace: str
    helm: HelmOptions
    kind: str                          # "wrapper" (rendered/<env>/<release>), "helm", "remote"
    chart: str                         # the chart folder, or the remote chart's name
    values_file: str                   # project-relative rendered values.yaml
    repo: str | None = None            # remote: the chart repository
    version: str | None = None         # remote: the pinned version
    digest: str | None = None          # remote: the package's sha256, as the lock pins it
    secrets: tuple[SecretInput, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    cluster_kinds: tuple[tuple[str, str], ...] = ()  # (group, kind) without a namespace
    values: str = ""                   # remote: the reviewed values.yaml (Flux reads it as is)


@dataclass(frozen=True, slots=True)
class ExportEnv:
    """One deployable environment, as the engines need it."""

    project: str
    name: str
    protected: bool
    kube_context: str | None
    releases: tuple[ExportRelease, ...]   # plan order: wave by wave
    recipients: tuple[str, ...] = ()      # age recipients of its secrets (sops.age)
    argocd_cluster: str | None = None     # the meshfile's `argocd: {cluster:}`

    @property
    def cluster(self) -> str | None:
        """The Argo CD cluster name: ``argocd.cluster``, else the kube-context's name; None: the
        cluster Argo CD runs in."""
        return self.argocd_cluster or self.kube_context

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(sorted({r.namespace for r in self.releases}))


def export_environment(result: EnvironmentOutput, project: str) -> ExportEnv:
    """The export view of a compiled environment (its plan, release by release)."""
    outputs = {o.release.name: o for o in result.releases}
    releases = []
    for step in result.plan.steps:
        output = outputs[step.release]
        chart = output.release.chart
        kind = "remote" if step.remote else "helm" if step.helm_chart is not None else "wrapper"
        argv = list(step.argv)
        kinds = {(m.group, m.kind) for m in output.manifests or () if m.kind in CLUSTER_SCOPED}
        releases.append(ExportRelease(
            step.release, step.wave, step.needs, step.namespace, output.helm, kind, step.chart,
            argv[argv.index("--values") + 1],
            repo=chart.repo if step.remote else None,
            version=argv[argv.index("--version") + 1] if "--version" in argv else None,
            digest=step.digest, secrets=step.secrets, labels=output.release.labels,
            cluster_kinds=tuple(sorted(kinds)),
            values=release_files(result.env.name, output)[f"{result.env.name}/{step.release}/"
                                                          "values.yaml"] if step.remote else ""))
    return ExportEnv(project, result.env.name, result.plan.protected, result.plan.kube_context,
                     tuple(releases), tuple(t.value for t in result.env.sops_age),
                     result.env.argocd_cluster)


def object_name(*parts: str) -> str:
    """A DNS-1123 name made of ``parts`` (``production``, ``weather-agent``; a region's
    ``production/eu-west`` reads ``production-eu-west``); raises :class:`CompileError` when it
    cannot be one (over 253 characters)."""
    name = "-".join(part.replace("/", "-") for part in parts).lower()
    if not _NAME.fullmatch(name) or len(name) > 253:
        raise CompileError([Diagnostic("error", f"'{name}' cannot name a Kubernetes object")])
    return name


def label_value(environment: str) -> str:
    """An environment's name as a label value (a region's ``production/eu-west`` reads
    ``production.eu-west``: a label value has no ``/``)."""
    return environment.replace("/", ".")


def documents(*docs: dict[str, object]) -> str:
    """YAML documents, ``---``-separated, keys sorted (byte-stable)."""
    return "---\n".join(dump_yaml(doc) for doc in docs)


def header(engine: str, env: str) -> str:
    """The first lines of every exported file: where it came from, how to remake it."""
    return (f"# Generated by `meshc export {engine} {env}` from meshfile.yaml; do not edit.\n"
            "# `meshc check` reports it stale when the meshfile changes: export again.\n")


def is_generated(data: bytes) -> bool:
    """Whether a file's bytes are an export meshc wrote: its header, or an encrypted Secret
    carrying the digest of its sources."""
    return data.startswith(b"# Generated by `meshc export ") or \
        b"meshc.io/sources: sha256:" in data

