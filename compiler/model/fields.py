"""The meshfile's fields, declared once: every object's keys, each key's shape, a line about it.

The load stage (:mod:`.load`) takes its known keys, in this order (the order of its
``known keys: …`` hints), and its enums and patterns from these tables; the JSON Schema
(:mod:`.schema`) is generated from them. A key added here reaches both; a key the loader reads
must be added here. ``limits:`` and ``allowEnv:`` are read in ``compiler/core/limits.py``, which
defines them (:func:`limits_object` describes them from there).

Shapes describe what the loader accepts, as YAML 1.2 (what editors use) reads the text:
:class:`Str`, :class:`Bool`, :class:`Num`, :class:`Enum`, :class:`Choice`, :class:`Scalar`, :class:`ListOf`,
:class:`MapOf`, :class:`Obj`, :class:`AnyOf` and :class:`AnyValue`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import limits

API_VERSION = "meshc/v1"
RULE_LEVELS = ("error", "warning", "off")
# Patterns are matched whole (Python's fullmatch; the schema anchors them).
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL_MAX = 63
RELEASE_NAME_MAX = 53  # Helm's limit
DURATION = r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+"  # Go's time.ParseDuration, as helm --timeout
KUBE_VERSION = r"v?(\d+)\.(\d+)(\.\d+)?"
KUBE_API_VERSION = r"([a-z0-9]([a-z0-9.-]*[a-z0-9])?/)?v[0-9]+[a-z0-9]*(/[A-Z][A-Za-z0-9]*)?"
AGE_RECIPIENT = r"age1[02-9ac-hj-np-z]{58}"
# A Kubernetes quantity (k8s.io/apimachinery resource.Quantity): 100m, 1Gi, 500M, 1e3, 0.5.
QUANTITY = r"[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?"
DECIMAL = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
CURRENCY = r"[A-Z]{3}"
# `cost: prices:` are per hour. Above these ceilings a price is taken for a monthly one (users
# confuse the two: opencost#2840, opencost#3781); the unit each price is per.
PRICE_UNITS = {"cpu": "vCPU", "memory": "GiB of memory", "gpu": "GPU",
               "storage": "GiB of storage", "loadBalancer": "load balancer"}
PRICE_CEILINGS = {"cpu": 2.0, "memory": 0.25, "gpu": 50.0, "storage": 0.01, "loadBalancer": 2.0}
HOURS_PER_MONTH = 730
# Plain words Helm's YAML 1.1 reader takes for booleans but a YAML 1.2 reader (an editor) for
# strings; the schema accepts them where meshc wants a boolean.
YAML11_BOOLEANS = ("y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                   "n", "N", "no", "No", "NO", "off", "Off", "OFF")


@dataclass(frozen=True, slots=True)
class Str:
    """A string; ``pattern`` (matched whole), ``const`` and ``max_length`` narrow it.
    ``looks`` says what matches ``pattern``, for an editor's message when a string does not."""

    pattern: str | None = None
    const: str | None = None
    max_length: int | None = None
    looks: str | None = None


@dataclass(frozen=True, slots=True)
class Bool:
    """``true`` or ``false`` (or a YAML 1.1 boolean word, see :data:`YAML11_BOOLEANS`)."""


@dataclass(frozen=True, slots=True)
class Num:
    """A number above ``above`` and at most ``maximum``; ``default`` is shown by editors."""

    above: float | None = None
    maximum: float | None = None
    default: float | None = None


@dataclass(frozen=True, slots=True)
class Enum:
    """One of ``values``, written as they are (a quoted or plain string)."""

    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Choice:
    """One of the integers ``values``, written as a plain number; ``default`` is shown by
    editors."""

    values: tuple[int, ...]
    default: int | None = None


@dataclass(frozen=True, slots=True)
class Scalar:
    """Any string, number or boolean (not null, not a list or map)."""


@dataclass(frozen=True, slots=True)
class AnyValue:
    """Anything YAML can hold."""


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list (never null) of ``item``."""

    item: Shape


@dataclass(frozen=True, slots=True)
class MapOf:
    """A map of free keys (names, labels) to ``value``; ``keys`` constrains the key text.
    ``nullable``: an empty ``key:`` reads as an empty map."""

    value: Shape
    keys: Str | None = None
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Field:
    """One key of an :class:`Obj`: its name, its shape and a line for editor hovers."""

    key: str
    shape: Shape
    description: str


@dataclass(frozen=True, slots=True)
class Obj:
    """A map with known keys (``fields``, in the loader's order) and ``required`` ones.

    ``name`` names it in the schema's definitions. Keys beyond ``fields`` are errors, unless
    ``others`` gives their shape. ``nullable``: an empty ``key:`` reads as an empty map."""

    name: str
    title: str
    fields: tuple[Field, ...]
    required: tuple[str, ...] = ()
    nullable: bool = True
    others: Shape | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """The known keys, in declaration order."""
        return tuple(f.key for f in self.fields)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Any of ``options`` (which the loader tells apart by kind: string, map, list…)."""

    options: tuple[Shape, ...]


Shape = Str | Bool | Num | Enum | Choice | Scalar | AnyValue | ListOf | MapOf | Obj | AnyOf

# --- building blocks -------------------------------------------------------------------------


def _dns_label(limit: int) -> Str:
    """A name that is a DNS-1123 label of at most ``limit`` characters."""
    return Str(DNS_LABEL, max_length=limit,
               looks=f"a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
                     f"with a letter or digit, at most {limit} characters")


STRING = Str()
ENVIRONMENT_NAME = _dns_label(DNS_LABEL_MAX)
RELEASE_NAME = _dns_label(RELEASE_NAME_MAX)
TEXTS = ListOf(STRING)
LABELS = MapOf(Scalar())
ANY_MAP = MapOf(AnyValue(), nullable=False)

HELM = Obj("helmOptions", "helm options", (
    Field("timeout", Str(DURATION, looks="a Go duration: 300s, 5m, 1h30m"),
          "How long helm waits, as a Go duration (300s, 5m, 1h30m): helm --timeout."),
    Field("wait", Bool(), "Wait until the release's resources are ready: helm --wait."),
    Field("rollbackOnFailure", Bool(),
          "Roll back a failed upgrade: helm --rollback-on-failure (Helm 3's --atomic)."),
    Field("createNamespace", Bool(),
          "Create the release's namespace if it is missing: helm --create-namespace."),
    Field("forceReplace", Bool(),
          "Replace resources that cannot be updated in place: helm --force-replace (Helm 3's "
          "--force)."),
    Field("serverSide", Bool(),
          "Helm 4 only: apply on the server (true) or on the client (false): helm "
          "--server-side; unset, Helm 4 decides (auto). Helm 3 always applies on the client, so "
          "true is an error under helmVersion: 3."),
))

HELM_MAJORS = (3, 4)   # the Helm majors meshc's plans are written for
DEFAULT_HELM_MAJOR = 4
HELM_VERSION = Choice(HELM_MAJORS, DEFAULT_HELM_MAJOR)

RULE_SETTING = Obj(
    "ruleSetting", "rule setting",
    (Field("level", Enum(RULE_LEVELS), "error fails meshc check, warning reports, off silences."),),
    nullable=False, others=AnyValue())
POLICIES = MapOf(AnyOf((Enum(RULE_LEVELS), RULE_SETTING)))
# rule names and options are checked by meshc check, which knows the rules
RULES_ABOUT = "by rule name: error, warning, off, or {level: …, option: value}"

SOPS = Obj("sops", "sops", (
    Field("age", ListOf(Str(AGE_RECIPIENT, looks="an age public key: 'age1' and 58 more "
                                                "characters (never AGE-SECRET-KEY-…)")),
          "The age public keys (age1…) this environment's secrets files are encrypted to."),
), required=("age",))

ARGOCD = Obj("argocd", "argocd", (
    Field("cluster", STRING, "The Argo CD cluster name this environment deploys to (default: "
                             "its kubeContext; without one, the cluster Argo CD runs in)."),
), required=("cluster",))

DEFAULTS = Obj("defaults", "defaults", (
    Field("namespace", STRING,
          "The releases' namespace; may be Jinja over env and release, e.g. "
          "\"app-{{ env.name }}\"."),
    Field("helm", HELM, "Helm options of every release."),
    Field("kubeContext", STRING, "The kubeconfig context helm uses: helm --kube-context."),
    Field("labels", LABELS, "Labels of every environment (templates: env.labels)."),
))

PRICES = Obj("prices", "prices per hour", tuple(
    Field(key, Num(maximum=PRICE_CEILINGS[key]),
          f"The price of one {unit} for one hour (not a month: a month is {HOURS_PER_MONTH} h).")
    for key, unit in PRICE_UNITS.items()))

COST = Obj("cost", "cost", (
    Field("currency", Str(CURRENCY, looks="an ISO 4217 currency code: USD, EUR, GBP"),
          "The currency of the prices (default USD), shown by meshc cost."),
    Field("prices", PRICES, "Hourly prices, key by key over the parent's and OpenCost's "
                            "defaults (GCP us-central1)."),
    Field("nodes", Num(), "How many nodes the cluster runs: a DaemonSet runs one pod on "
                                 "each (without it, DaemonSets are priced per node)."),
))

QUANTITY_SHAPE = AnyOf((Num(), Str(QUANTITY, looks="a Kubernetes quantity: 2, 500m, 4Gi")))
ESTIMATE = Obj("costEstimate", "cost estimate", (
    Field("cpu", QUANTITY_SHAPE, "vCPUs one replica requests (a quantity: 2, 500m)."),
    Field("memory", QUANTITY_SHAPE, "Memory one replica requests (a quantity: 4Gi, 512Mi)."),
    Field("gpu", Num(), "GPUs one replica requests."),
    Field("storage", QUANTITY_SHAPE, "Persistent storage of one replica (a quantity: 100Gi)."),
    Field("replicas", Num(), "How many replicas run (default 1)."),
    Field("loadBalancers", Num(), "How many load balancers the release creates."),
))

RELEASE_COST = Obj("releaseCost", "release cost", (
    Field("estimate", ESTIMATE, "What the release runs, for meshc cost, in place of its "
                                "rendered manifests (remote charts rendered without helm, "
                                "pods an operator creates)."),
))

REGION = Obj("region", "region", (
    Field("kubeContext", STRING, "The region's kubeconfig context: helm --kube-context."),
    Field("values", TEXTS, "Values files layered after the environment's chain, in this order."),
    Field("secrets", TEXTS, "SOPS-encrypted values files, after the environment's."),
    Field("namespace", STRING, "The releases' namespace here; may be Jinja over env and release "
                               "(env.region names the region)."),
    Field("labels", LABELS, "Labels, over the environment's (templates: env.labels)."),
    Field("helm", HELM, "Helm options, over the environment's, key by key."),
    Field("kubeVersion", Str(KUBE_VERSION, looks='MAJOR.MINOR, quoted: "1.31"'),
          "The Kubernetes version of the region's cluster, for meshc check."),
    Field("description", STRING, "Free text, shown by meshc."),
))

ENVIRONMENT = Obj("environment", "environment", (
    Field("abstract", Bool(), "Only inherited by other environments, never deployed."),
    Field("inherits", STRING, "The parent environment: its layers come first, then these."),
    Field("aliases", ListOf(ENVIRONMENT_NAME),
          "Other names for this environment on the command line (meshc plan prod)."),
    Field("values", TEXTS,
          "Values files, layered after the parent's, in this order (project-relative paths)."),
    Field("secrets", TEXTS, "SOPS-encrypted values files (inherited); meshc never decrypts "
                            "them to render."),
    Field("helm", HELM, "Helm options, over the parent's and the defaults, key by key."),
    Field("namespace", STRING, "The releases' namespace here; may be Jinja over env and release."),
    Field("kubeContext", STRING, "The kubeconfig context helm uses here: helm --kube-context."),
    Field("labels", LABELS, "Labels, over the parent's and the defaults' (templates: "
                            "env.labels)."),
    Field("promotesFrom", STRING, "The environment whose changes reach this one first "
                                  "(promotion order)."),
    Field("protected", Bool(), "Applying needs explicit confirmation."),
    Field("description", STRING, "Free text, shown by meshc."),
    Field("kubeVersion", Str(KUBE_VERSION, looks='MAJOR.MINOR, quoted: "1.31"'),
          "The Kubernetes version meshc check validates against: \"MAJOR.MINOR\", quoted."),
    Field("apiVersions", ListOf(Str(KUBE_API_VERSION, looks="GROUP/VERSION or GROUP/VERSION/Kind")),
          "API versions the cluster serves beyond Helm's built-in list, for Helm charts' "
          ".Capabilities.APIVersions: helm template --api-versions (inherited, added to the "
          "parent's), e.g. policy/v1/PodDisruptionBudget."),
    Field("policies", POLICIES, f"meshc check rules here (inherited), {RULES_ABOUT}."),
    Field("sops", SOPS, "Who can decrypt this environment's secrets (inherited)."),
    Field("argocd", ARGOCD, "meshc export argocd: where Argo CD deploys this environment "
                            "(inherited)."),
    Field("chartVersions", MapOf(STRING),
          "Remote chart versions here, release name to version (inherited), over the "
          "release's version:."),
    Field("helmVersion", HELM_VERSION,
          "The major Helm version this environment's plans are for (3 or 4; inherited, over the "
          "top-level helmVersion:)."),
    Field("cost", COST, "Prices and the node count for meshc cost (inherited, key by key)."),
    Field("regions", MapOf(REGION, ENVIRONMENT_NAME),
          "The regions this environment deploys to, by name: each is addressed as ENV/REGION, "
          "inherits everything from the environment and is rendered to rendered/ENV/REGION/ "
          "(docs/topology.md)."),
    Field("rollout", ListOf(AnyOf((ENVIRONMENT_NAME, ListOf(ENVIRONMENT_NAME)))),
          "The order regions are deployed in: stages of regions, e.g. [[eu-west], [us-east, "
          "ap-south]]; the regions of a stage run in parallel (default: one region at a time, "
          "as listed)."),
))

TARGET = Obj("patchTarget", "patch target", tuple(
    Field(key, STRING, f"Only manifests whose {about} is this.") for key, about in (
        ("kind", "kind"), ("name", "metadata.name"), ("namespace", "metadata.namespace"),
        ("apiVersion", "apiVersion"), ("group", "API group"), ("version", "API version"))))

PATCH = Obj("patch", "patch", (
    Field("target", TARGET, "Which rendered manifests to patch."),
    Field("ops", ListOf(ANY_MAP),
          "RFC 6902 operations, e.g. {op: replace, path: /spec/replicas, value: 3}."),
), required=("target", "ops"), nullable=False)

HTTP_CHECK = Obj("httpCheck", "http check", (
    Field("service", STRING, "The Service answering, in the release's namespace."),
    Field("port", AnyOf((Num(above=0, maximum=65535), STRING)),
          "The Service's port: a number or the port's name."),
    Field("path", STRING, "The path asked for (default: /); it must answer 2xx."),
), required=("service", "port"), nullable=False)

VERIFY_CHECK = Obj("verifyCheck", "verify check", (
    Field("http", HTTP_CHECK, "GET through the API server's service proxy: "
                              "/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH."),
), required=("http",), nullable=False)

BLUE_GREEN = Obj("blueGreen", "blue-green", (
    Field("router", STRING, "The router chart (a local chart folder): a release named as this "
                            "one that owns the live Service (and Ingress) and selects the live "
                            "slot's pods; it receives blueGreen.liveSlot."),
    Field("idleReplicas", Num(), "Replicas of the idle slot after a switch (slots receive "
                                 "blueGreen.idleReplicas); unset, the idle slot keeps running."),
), required=("router",), nullable=False)

STRATEGY = Obj("strategy", "strategy", (
    Field("blueGreen", BLUE_GREEN, "Deploy as two slot releases, NAME-blue and NAME-green, and "
                                   "a router release NAME; bluegreen/ENV.yaml says which slot "
                                   "is live (meshc switch)."),
), nullable=False)

RELEASE_VALUES = AnyOf((STRING, ANY_MAP, ListOf(AnyOf((STRING, ANY_MAP)))))

RELEASE = Obj("release", "release", (
    Field("chart", STRING, "A project folder of *.yaml.j2 templates (a local chart), or a remote "
                           "chart's name (with repo: and version:) or oci:// reference."),
    Field("repo", STRING, "The remote chart's repository URL: helm --repo."),
    Field("version", STRING, "The remote chart's version: helm --version (an environment's "
                             "chartVersions: wins)."),
    Field("valuesKey", STRING, "The dotted path of the environment's values this release's "
                               "chart receives (default: the release's name)."),
    Field("condition", STRING, "A dotted path into the environment's values: the release is "
                               "deployed only where it is true."),
    Field("needs", TEXTS, "Releases deployed before this one (in earlier waves)."),
    Field("labels", LABELS, "Labels of this release (templates: release.labels)."),
    Field("values", RELEASE_VALUES, "The release's own values: files or inline maps, addressing "
                                    "the chart directly, over the environment's."),
    Field("namespace", STRING, "This release's namespace; may be Jinja over env and release."),
    Field("helm", HELM, "Helm options, over the environment's, key by key."),
    Field("patches", ListOf(PATCH), "RFC 6902 patches of the rendered manifests (local charts)."),
    Field("description", STRING, "Free text, shown by meshc."),
    Field("versionKeys", TEXTS, "Values keys holding this release's versions, replacing the "
                                "top-level versionKeys ([] for none)."),
    Field("verify", ListOf(VERIFY_CHECK), "Health checks meshc verify runs after the release's "
                                          "workloads rolled out, e.g. {http: {service: registry, "
                                          "port: 8080, path: /health}}."),
    Field("cost", RELEASE_COST, "For meshc cost: an estimate of what the release runs."),
    Field("strategy", STRATEGY, "How the release is deployed: {blueGreen: {router: CHART}} "
                                "(docs/topology.md)."),
), required=("chart",), nullable=False)


def limits_object() -> Obj:
    """The ``limits:`` block, described from ``compiler/core/limits.py``: names, units,
    defaults and ceilings."""
    entries = []
    for name, field in limits.NAMES.items():
        ceiling, default = getattr(limits.CEILINGS, field), getattr(limits.DEFAULT, field)
        shown = (limits.describe(field, value).split(" = ")[1] for value in (default, ceiling))
        about = "{} Default {}; a meshfile may set at most {}.".format(limits.ABOUT[name], *shown)
        number = Num(above=0, maximum=ceiling, default=default)
        text = Str(limits.text_pattern(field),
                   looks="a size: 16Mi, 2Gi, 500k" if field in limits.SIZES else "a number")
        entries.append(Field(name, AnyOf((number, text)), about))
    return Obj("limits", "limits", tuple(entries), nullable=False)


MESHFILE = Obj("meshfile", f"meshc meshfile ({API_VERSION})", (
    Field("apiVersion", Str(const=API_VERSION), f"The meshfile format: {API_VERSION}."),
    Field("project", STRING, "The project's name."),
    Field("output", STRING, "Where meshc render writes (default: rendered)."),
    Field("defaults", DEFAULTS, "Settings every release starts from; environments, then "
                                "releases override them."),
    Field("environments", MapOf(ENVIRONMENT, ENVIRONMENT_NAME),
          "The environments by name (DNS-1123 labels); they form a tree through inherits."),
    Field("features", STRING, "A Jinja template rendered per environment; its YAML output becomes "
                              "the values key features."),
    Field("releases", MapOf(RELEASE, RELEASE_NAME),
          "The releases by name (DNS-1123 labels of at most 53 characters)."),
    Field("policies", POLICIES, f"meshc check rules for every environment, {RULES_ABOUT}."),
    Field("versionKeys", TEXTS, "Values keys holding versions, for meshc versions and promote "
                                "(default [image.tag])."),
    Field("limits", limits_object(), "Resource bounds against hostile input, within ceilings; "
                                     "only meshc --limit goes beyond."),
    Field("helmVersion", HELM_VERSION,
          "The major Helm version the plans are for: 3 or 4 (default 4); environments may "
          "override it. meshc plan --helm-version overrides both."),
    Field("allowEnv", ListOf(Str(limits.ENV_NAME, looks=f"a variable name ({limits.ENV_NAME})")),
          "Process environment variables templates may read (env_var, required_env)."),
), required=("apiVersion", "environments", "releases"), nullable=False)
