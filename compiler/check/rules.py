"""The rules ``meshc check`` knows: name, family, default levels, options, one-line summary.

Every finding belongs to one rule, and every rule can be set per environment in the meshfile::

    policies:                       # top level: every environment
      min-replicas: {level: error, min: 3}
    environments:
      development:
        policies: {min-replicas: off}   # inherited by environments inheriting this one

Levels: ``error`` (fails the check), ``warning`` (reported), ``off``. Protected environments
start from each rule's ``protected`` level (the strict set) instead of its ``default``.
Project-wide rules (``scope="project"``) read only the top-level ``policies:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["error", "warning", "off"]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    family: str
    default: Level
    protected: Level
    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)   # option → default value
    scope: Literal["environment", "project"] = "environment"


RULES: tuple[Rule, ...] = (
    # Kubernetes schemas
    Rule("kubernetes-schema", "schemas", "error", "error",
         "every rendered manifest validates against the strict Kubernetes OpenAPI schema of "
         "the environment's kubeVersion"),
    # policies
    Rule("min-replicas", "policies", "off", "error",
         "Deployments and StatefulSets run at least `min` replicas (an HPA's minReplicas "
         "counts)", {"min": 2}),
    Rule("resources", "policies", "warning", "error",
         "every container sets resource requests and limits (`requests` and `limits` list "
         "which)", {"requests": ["cpu", "memory"], "limits": ["cpu", "memory"]}),
    Rule("image-tag", "policies", "error", "error",
         "every image names a tag (or digest) that is not `latest`"),
    Rule("run-as-non-root", "policies", "warning", "error",
         "pods or all their containers set securityContext.runAsNonRoot: true"),
    Rule("read-only-root-filesystem", "policies", "warning", "error",
         "every container sets securityContext.readOnlyRootFilesystem: true"),
    Rule("no-privilege-escalation", "policies", "warning", "error",
         "every container sets securityContext.allowPrivilegeEscalation: false and is not "
         "privileged"),
    Rule("pod-disruption-budget", "policies", "warning", "error",
         "a workload with more than one replica is covered by a PodDisruptionBudget"),
    Rule("anti-affinity", "policies", "off", "error",
         "a workload with more than one replica spreads its pods (podAntiAffinity or "
         "topologySpreadConstraints)"),
    # promotion order
    Rule("promotion-order", "promotion", "error", "error",
         "no image tag is ahead of the same image in the environment it is promoted from "
         "(semantic versions)"),
    Rule("promotion-unorderable", "promotion", "warning", "error",
         "image tags compared for promotion are semantic versions"),
    # stale output
    Rule("stale-output", "stale", "error", "error",
         "the committed output directory equals a fresh render"),
    Rule("stale-export", "stale", "error", "error",
         "a committed GitOps export (gitops/<engine>/<env>/) equals a fresh export"),
    # graph sanity
    Rule("region-cluster-shared", "graph", "error", "error",
         "a region does not deploy into a cluster namespace another deployable target deploys "
         "into (same kubeContext and namespace): the two would fight over it"),
    Rule("bluegreen-unrecorded", "graph", "warning", "warning",
         "the live slot of a blue-green release is recorded in bluegreen/<env>.yaml, so that a "
         "version change reaches the idle slot only (meshc switch ENV RELEASE --record)"),
    Rule("needs-disabled", "graph", "warning", "warning",
         "a release does not need a release that is disabled in the same environment"),
    Rule("enabled-nowhere", "graph", "warning", "warning",
         "every release is deployed in at least one deployable environment", scope="project"),
    Rule("abstract-unused", "graph", "warning", "warning",
         "every abstract environment is inherited by some environment", scope="project"),
    # secrets (compiler/secrets/secrets.py)
    Rule("plaintext-secret", "secrets", "error", "error",
         "no secret-like plain value (password, token, apiKey, privateKey, connection strings "
         "with credentials, private keys) in ordinary values files", scope="project"),
    Rule("unencrypted-secrets", "secrets", "error", "error",
         "every secrets file is SOPS-encrypted, with no value in clear text", scope="project"),
    Rule("secret-unused", "secrets", "warning", "warning",
         "every secret of an environment reaches a deployed release (remote charts: under "
         "their valuesKey; local charts: through secret_ref)"),
    Rule("secret-in-clear", "secrets", "error", "error",
         "a Helm chart puts no secret value outside a Secret's data (a ConfigMap, an env value, "
         "an annotation: readable in clear text in the cluster)"),
    Rule("secret-canary", "secrets", "error", "error",
         "with an age key available: no secret value occurs in the committed output or in "
         "values files (`public` lists secret keys whose values are not secret, e.g. "
         "registry.database.username)", {"public": []}, scope="project"),
    Rule("values-file-unused", "graph", "warning", "warning",
         "every YAML file beside the meshfile's values files is named in the meshfile, and "
         "every named values file reaches a deployable environment", scope="project"),
    # cost (compiler/check/cost.py, docs/cost.md)
    Rule("cost-unpriced", "cost", "warning", "warning",
         "meshc cost can price every workload: containers request cpu and memory, DaemonSets "
         "have a node count (cost.nodes), releases without rendered manifests declare "
         "cost.estimate"),
    Rule("max-monthly-cost", "cost", "off", "off",
         "the environment's estimated monthly cost (autoscaled workloads at their floor) is at "
         "most `max`, in the environment's currency", {"max": 0.0}),
    Rule("cost-increase", "cost", "off", "off",
         "a change raises the environment's estimated monthly cost by at most `maxPercent` "
         "against the committed output", {"maxPercent": 20.0}),
    # Helm itself (compiler/check/helm.py), when a helm binary is available
    Rule("install-time", "helm", "warning", "warning",
         "a Helm chart decides nothing only at install that the review cannot show: values it "
         "generates, lookup and getHostByName calls Helm reaches"),
    Rule("helm", "helm", "error", "error",
         "every Jinja release's wrapper chart passes `helm lint --strict`, and `helm template` "
         "with each plan step's arguments (a Helm chart's pinned package) yields exactly the "
         "compiled manifests"),
)

RULES_BY_NAME: Mapping[str, Rule] = {rule.name: rule for rule in RULES}
