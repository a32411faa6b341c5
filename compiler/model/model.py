"""The typed model of a meshfile: what the load stage produces and the resolve stage flattens.

Everything is frozen; collections are tuples or read-only mappings. Every object carries the
span of the meshfile text it came from, so any later stage can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.limits import MeshfileLimits
from ..core.source import Span
from ..syntax.yamlsrc import Path, ValuesDoc


@dataclass(frozen=True, slots=True)
class Ref:
    """A name written in the meshfile (an environment, a release), with where it was written."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Text:
    """A string setting with its span (may be a Jinja expression, e.g. a namespace)."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class HelmOptions:
    """Per-step helm settings; None means "not set here" (inherited key by key).

    ``spans`` says where each key set was written (meshfile key → span), so a later stage can
    point at an option (one Helm 3 cannot express, say); it follows the values through
    :meth:`over` and takes no part in equality."""

    timeout: str | None = None
    wait: bool | None = None
    rollback_on_failure: bool | None = None
    create_namespace: bool | None = None
    force_replace: bool | None = None
    server_side: bool | None = None
    spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False)

    def over(self, base: HelmOptions) -> HelmOptions:
        """These options layered over ``base``: every key set here wins."""
        values = (mine if mine is not None else theirs
                  for mine, theirs in zip(_fields(self), _fields(base), strict=True))
        spans = dict(base.spans) | dict(self.spans)
        return HelmOptions(*values, spans=tuple(sorted(spans.items())))

    def span(self, key: str) -> Span | None:
        """Where meshfile key ``key`` of these options was set (None: nowhere, a default)."""
        return dict(self.spans).get(key)


def _fields(options: HelmOptions) -> tuple[Any, ...]:
    return (options.timeout, options.wait, options.rollback_on_failure, options.create_namespace,
            options.force_replace, options.server_side)


@dataclass(frozen=True, slots=True)
class InlineValues:
    """A release's inline ``values:`` map in the meshfile."""

    doc: ValuesDoc
    span: Span


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One ``verify:`` check of a release: an HTTP GET of ``path`` on port ``port`` of Service
    ``service`` (in the release's namespace), through the API server's service proxy."""

    service: str
    port: str                          # a number or the port's name, as written
    path: str
    span: Span

    @property
    def proxy_path(self) -> str:
        """The path after ``/api/v1/namespaces/NS/services/``."""
        return f"{self.service}:{self.port}/proxy/{self.path.lstrip('/')}"


@dataclass(frozen=True, slots=True)
class Patch:
    """An RFC 6902 patch for rendered manifests matching ``target``."""

    target: tuple[tuple[str, str], ...]  # (field, expected) pairs: kind, name, namespace, apiVersion
    ops: tuple[dict[str, Any], ...]
    span: Span
    op_spans: tuple[Span, ...] = ()  # each op's own place in the meshfile


@dataclass(frozen=True, slots=True)
class RuleSetting:
    """One ``policies:`` entry of the meshfile: a check rule's level and options.

    ``level`` is ``error``, ``warning``, ``off`` or None (options only, level unchanged).
    """

    rule: str
    level: str | None
    options: tuple[tuple[str, Any], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CostSettings:
    """A ``cost:`` block: an environment's as written, or resolved along ``inherits``.

    Numbers are kept as written (exact decimal text, see :mod:`compiler.cost`); None or a
    missing price means "not set here" (the parent's, else OpenCost's default)."""

    currency: Text | None = None
    prices: tuple[tuple[str, Text], ...] = ()   # price key (cpu, memory, …) → hourly price
    nodes: Text | None = None

    def over(self, base: CostSettings) -> CostSettings:
        """These settings layered over ``base``, key by key."""
        return CostSettings(self.currency or base.currency,
                            tuple(sorted((dict(base.prices) | dict(self.prices)).items())),
                            self.nodes or base.nodes)


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """A release's ``cost: {estimate: …}``: what it runs, declared (quantities as written)."""

    items: tuple[tuple[str, Text], ...]   # cpu, memory, gpu, storage, replicas, loadBalancers
    span: Span


@dataclass(frozen=True, slots=True)
class BlueGreen:
    """A release's ``strategy: {blueGreen: …}`` as written: the router chart, and the idle
    slot's replicas after a switch (None: the idle slot keeps running)."""

    router: Text
    idle_replicas: Text | None
    span: Span


SLOTS = ("blue", "green")


@dataclass(frozen=True, slots=True)
class Slot:
    """What a resolved release is to a blue-green release ``group``: one of its two slots
    (``blue``, ``green``) or its ``router``."""

    group: str
    role: str                          # "blue", "green" or "router"
    idle_replicas: int | None
    span: Span                         # the meshfile's `blueGreen:`

    @property
    def is_router(self) -> bool:
        return self.role == "router"


@dataclass(frozen=True, slots=True)
class Defaults:
    namespace: Text | None = None
    helm: HelmOptions = HelmOptions()
    kube_context: Text | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HelmVersion:
    """The major version of Helm a plan's command lines are for (``helmVersion:``, 3 or 4), and
    where it was chosen: a meshfile span, or None for the default (or ``--helm-version``, with
    ``origin`` saying so)."""

    major: int
    span: Span | None = None
    origin: str = "default"       # "meshfile", "default" or the command line's option


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """A region of an environment as written (``regions: {NAME: {…}}``)."""

    name: str
    span: Span
    values: tuple[Text, ...] = ()
    secrets: tuple[Text, ...] = ()
    helm: HelmOptions = HelmOptions()
    namespace: Text | None = None
    kube_context: Text | None = None
    labels: tuple[tuple[str, str], ...] = ()
    kube_version: Text | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class EnvironmentSpec:
    """An environment as written in the meshfile (before inheritance is applied)."""

    name: str
    span: Span
    abstract: bool = False
    inherits: Ref | None = None
    aliases: tuple[Ref, ...] = ()
    values: tuple[Text, ...] = ()
    secrets: tuple[Text, ...] = ()
    helm: HelmOptions = HelmOptions()
    namespace: Text | None = None
    kube_context: Text | None = None
    labels: tuple[tuple[str, str], ...] = ()
    promotes_from: Ref | None = None
    protected: bool | None = None
    description: str | None = None
    kube_version: Text | None = None
    api_versions: tuple[Text, ...] = ()
    policies: tuple[RuleSetting, ...] = ()
    sops_age: tuple[Text, ...] | None = None   # None: not set here (inherited)
    chart_versions: tuple[tuple[Ref, Text], ...] = ()  # `chartVersions:` release → version
    helm_version: HelmVersion | None = None   # `helmVersion:` (None: inherited)
    argocd_cluster: Text | None = None                 # `argocd: {cluster:}` (export argocd)
    cost: CostSettings = CostSettings()
    regions: tuple[RegionSpec, ...] = ()
    rollout: tuple[tuple[Ref, ...], ...] | None = None  # `rollout:` stages (None: not set)
    rollout_span: Span | None = None


@dataclass(frozen=True, slots=True)
class SecretsFile:
    """A SOPS-encrypted secrets file of an environment: where the meshfile names it, which
    environment lists it (descendants inherit it), and the age recipients it is encrypted to
    (the owner's ``sops.age``, own or inherited; empty when the meshfile gives none)."""

    path: str                          # project-relative, normalised
    span: Span
    owner: str
    recipients: tuple[Text, ...] = ()


@dataclass(frozen=True, slots=True)
class ReleaseSpec:
    """A release as written in the meshfile."""

    name: str
    span: Span
    chart: Text
    repo: Text | None = None
    version: Text | None = None
    values_key: Text | None = None
    condition: Text | None = None
    needs: tuple[Ref, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    values: tuple[Text | InlineValues, ...] = ()
    namespace: Text | None = None
    helm: HelmOptions = HelmOptions()
    patches: tuple[Patch, ...] = ()
    description: str | None = None
    version_keys: tuple[Text, ...] | None = None   # `versionKeys:` (None: the project's)
    verify: tuple[HealthCheck, ...] = ()           # `verify:` health checks (meshc verify)
    cost_estimate: CostEstimate | None = None       # `cost: {estimate: …}`
    blue_green: BlueGreen | None = None             # `strategy: {blueGreen: …}`


@dataclass(frozen=True, slots=True)
class Spec:
    """The whole meshfile, typed, with spans; the output of :func:`compiler.model.load.load_meshfile`."""

    file: str
    project: str
    output: Text
    defaults: Defaults
    environments: tuple[EnvironmentSpec, ...]
    releases: tuple[ReleaseSpec, ...]
    features: Text | None = None
    policies: tuple[RuleSetting, ...] = ()
    limits: MeshfileLimits = field(default_factory=MeshfileLimits)  # top-level `limits:`
    allow_env: tuple[str, ...] = ()            # top-level `allowEnv:`
    version_keys: tuple[Text, ...] | None = None   # top-level `versionKeys:`
    helm_version: HelmVersion | None = None        # top-level `helmVersion:` (None: 4)
    unloaded: tuple[str, ...] = ()  # releases declared, but too broken to load (no cascades)


# --- resolved -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Environment:
    """An environment with its inheritance applied (the output of the resolve stage)."""

    name: str
    span: Span
    abstract: bool
    chain: tuple[str, ...]            # root first, this environment last
    aliases: tuple[str, ...]
    values: tuple[ValuesDoc, ...]     # every values file of the chain, in layer order
    secrets: tuple[Text, ...]
    helm: HelmOptions
    namespace: Text | None
    kube_context: str | None
    labels: tuple[tuple[str, str], ...]
    promotes_from: str | None
    protected: bool
    description: str | None = None
    kube_version: Text | None = None            # inherited: the nearest in the chain
    api_versions: tuple[str, ...] = ()          # inherited: the chain's, sorted (Helm charts)
    policies: tuple[RuleSetting, ...] = ()      # the chain's settings, root first
    sops_age: tuple[Text, ...] = ()             # inherited: the nearest `sops.age` in the chain
    secret_files: tuple[SecretsFile, ...] = ()  # the chain's secrets files, root first
    chart_versions: tuple[tuple[str, str], ...] = ()  # release → remote chart version (inherited)
    helm_version: HelmVersion = HelmVersion(4)  # the plan's Helm: the chain's nearest, else top
    argocd_cluster: str | None = None           # inherited: the nearest `argocd.cluster`
    cost: CostSettings = CostSettings()         # inherited key by key along the chain
    region: str | None = None                   # a region's own name (its name is ENV/REGION)
    group: str | None = None                    # a region: the environment it belongs to
    stages: tuple[tuple[str, ...], ...] = ()    # an environment with regions: its rollout,
                                                # stages of region environments' names

    @property
    def has_regions(self) -> bool:
        """Deployed through its regions only (``meshc plan ENV`` shows their stages)."""
        return bool(self.stages)

    def chart_version(self, release: Release) -> str | None:
        """The version of ``release``'s remote chart here: the chain's nearest
        ``chartVersions:`` entry, else the release's ``version:``."""
        return dict(self.chart_versions).get(release.name, release.chart.version)


@dataclass(frozen=True, slots=True)
class Chart:
    """Where a release's chart comes from: a local folder of templates, or a remote chart.

    A local folder is a Jinja chart (``*.yaml.j2`` templates, rendered by meshc) or, when it
    holds a ``Chart.yaml``, a Helm chart (Go templates, rendered by ``helm template``)."""

    ref: str                          # the folder (project-relative) or the remote chart name
    local: bool
    repo: str | None = None
    version: str | None = None
    templates: tuple[str, ...] = ()   # local: the *.yaml.j2 files, sorted, project-relative
    defaults: ValuesDoc | None = None  # local: the chart's values.yaml
    schema: ValuesDoc | None = None    # local: the chart's values.schema.json (Helm checks it)
    kind: str = "jinja"               # "jinja", or "helm" (a folder with Chart.yaml; remote)
    files: tuple[tuple[str, str], ...] = ()  # helm: every file of the folder, (path, sha256)

    @property
    def is_helm(self) -> bool:
        """Rendered by ``helm template``: a local folder with ``Chart.yaml``, or any remote
        chart (pinned in the project's lock, fetched into the chart cache)."""
        return self.kind == "helm"


@dataclass(frozen=True, slots=True)
class Release:
    """A release, resolved: chart located, values sources loaded."""

    name: str
    span: Span
    chart: Chart
    values_key: Path
    values_key_text: str
    condition: Text | None
    needs: tuple[Ref, ...]
    labels: tuple[tuple[str, str], ...]
    values: tuple[ValuesDoc, ...]
    namespace: Text | None
    helm: HelmOptions
    patches: tuple[Patch, ...]
    description: str | None = None
    version_keys: tuple[Path, ...] = (("image", "tag"),)   # values keys that hold versions
    chart_span: Span | None = None    # the release's `chart:` in the meshfile
    verify: tuple[HealthCheck, ...] = ()   # `verify:` health checks (meshc verify)
    cost_estimate: CostEstimate | None = None   # `cost: {estimate: …}` (meshc cost)
    slot: Slot | None = None          # a blue-green release's slot or router (docs/topology.md)


@dataclass(frozen=True, slots=True)
class Project:
    """The resolved meshfile: environments flattened, releases typed, all inputs loaded."""

    root_file: str
    name: str
    output: str
    defaults: Defaults
    environments: tuple[Environment, ...]
    releases: tuple[Release, ...]
    features: Text | None
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    policies: tuple[RuleSetting, ...] = ()      # top-level `policies:`

    def environment(self, name: str) -> Environment | None:
        """The environment called ``name`` or having it as an alias (``ENV/REGION`` for a
        region, the environment named by name or alias)."""
        for env in self.environments:
            if env.name == name or name in env.aliases:
                return env
        return None

    def regions_of(self, env: Environment) -> tuple[Environment, ...]:
        """The region environments of ``env``, in rollout order."""
        return tuple(found for name in (n for stage in env.stages for n in stage)
                     if (found := self.environment(name)) is not None)

    def release(self, name: str) -> Release | None:
        for release in self.releases:
            if release.name == name:
                return release
        return None

    @property
    def deployable(self) -> tuple[Environment, ...]:
        """Every environment a plan deploys: not abstract, regions in place of the environment
        they belong to."""
        return tuple(env for env in self.environments if not env.abstract and not env.has_regions)
