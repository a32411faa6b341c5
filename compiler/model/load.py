"""Load stage: ``meshfile.yaml`` text → :class:`~compiler.model.model.Spec`.

Builds the model from composed YAML nodes, so every object keeps its span. Checks shape only:
known keys (with "did you mean"), types, names. Cross-references (unknown environments,
releases, files) are the resolve stage's job. The known keys, enums and patterns come from the
field tables of :mod:`.fields`, which the meshfile's JSON Schema is generated from too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..core.diagnostics import CompileError, Diagnostics, did_you_mean
from ..core.limits import read_safety
from ..core.source import Span, span_from_marks
from ..syntax.yamlsrc import (
    BOOL,
    FLOAT,
    INT,
    MERGE,
    NULL,
    STR,
    ValuesDoc,
    build_value,
    compose_documents,
    duplicate_key,
)
from . import fields
from .model import (
    BlueGreen,
    CostEstimate,
    CostSettings,
    Defaults,
    EnvironmentSpec,
    HealthCheck,
    HelmOptions,
    HelmVersion,
    InlineValues,
    Patch,
    Ref,
    RegionSpec,
    ReleaseSpec,
    RuleSetting,
    Spec,
    Text,
)

API_VERSION = fields.API_VERSION
TOP_KEYS = fields.MESHFILE.keys  # limits: and allowEnv: are read by compiler/core/limits.py
DEFAULTS_KEYS = fields.DEFAULTS.keys
HELM_KEYS = fields.HELM.keys
ENV_KEYS = fields.ENVIRONMENT.keys
SOPS_KEYS = fields.SOPS.keys
ARGOCD_KEYS = fields.ARGOCD.keys
AGE_RECIPIENT = re.compile(fields.AGE_RECIPIENT)
RELEASE_KEYS = fields.RELEASE.keys
PATCH_KEYS = fields.PATCH.keys
TARGET_KEYS = fields.TARGET.keys
VERIFY_KEYS = fields.VERIFY_CHECK.keys
HTTP_CHECK_KEYS = fields.HTTP_CHECK.keys
COST_KEYS = fields.COST.keys
PRICE_KEYS = fields.PRICES.keys
ESTIMATE_KEYS = fields.ESTIMATE.keys
QUANTITY = re.compile(fields.QUANTITY)
DECIMAL = re.compile(fields.DECIMAL)
CURRENCY = re.compile(fields.CURRENCY)

RULE_LEVELS = fields.RULE_LEVELS
KUBE_VERSION = re.compile(fields.KUBE_VERSION)
KUBE_API_VERSION = re.compile(fields.KUBE_API_VERSION)
DNS_LABEL = re.compile(fields.DNS_LABEL)
DURATION = re.compile(fields.DURATION)
RELEASE_NAME_MAX = fields.RELEASE_NAME_MAX
DNS_LABEL_MAX = fields.DNS_LABEL_MAX
_TYPE_NAMES = {STR: "a string", BOOL: "a boolean", NULL: "null"}

Entries = dict[str, tuple[ScalarNode, Node]]


def load_meshfile(text: str, file: str, diags: Diagnostics | None = None) -> Spec:
    """Parse and type-check a meshfile.

    Problems go to ``diags`` when given, so later stages can add theirs before anything is
    raised; parts in error are left out of the returned spec. Raises :class:`CompileError`
    when the text is not a YAML map at all, or, without ``diags``, on any problem.
    """
    docs = compose_documents(text, file)
    local = diags if diags is not None else Diagnostics()
    if len(docs) != 1 or not isinstance(docs[0], MappingNode):
        span = span_from_marks(file, docs[1].start_mark) if len(docs) > 1 else Span(file, 1, 1)
        local.error("a meshfile holds exactly one YAML document, a map", span)
        raise CompileError(local.items)
    spec = _Reader(file, local).spec(docs[0])
    spec = read_safety(spec, docs[0], file, local)  # limits:, allowEnv:
    if diags is None:
        local.raise_if_errors()
    return spec


class _Reader:
    """Typed accessors over YAML nodes that report problems instead of raising."""

    def __init__(self, file: str, diags: Diagnostics) -> None:
        self.file = file
        self.diags = diags
        self.unloaded: list[str] = []  # releases too broken to load (reported already)

    def span(self, node: Node) -> Span:
        return span_from_marks(self.file, node.start_mark, node.end_mark)

    # --- shapes ---------------------------------------------------------------------------

    def entries(self, node: Node, what: str, allowed: tuple[str, ...] | None) -> Entries:
        """A map's entries by key; reports non-maps, duplicate and (if ``allowed``) unknown keys."""
        if not isinstance(node, MappingNode):
            if not _is_null(node):
                self.diags.error(f"{what} must be a map, found {_kind(node)}", self.span(node))
            return {}
        result: Entries = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE:
                self.diags.error(f"unsupported key in {what}", self.span(key_node))
                continue
            key = key_node.value
            if key in result:
                self.diags.items.append(duplicate_key(self.file, key, key_node, result[key][0]))
                continue
            if allowed is not None and key not in allowed:
                hint = (_synonym(key, allowed) or did_you_mean(key, allowed)
                        or f"known keys: {', '.join(allowed)}")
                self.diags.error(f"unknown key '{key}' in {what}", self.span(key_node), hint)
                continue
            result[key] = (key_node, value_node)
        return result

    def text(self, node: Node, what: str) -> Text | None:
        if isinstance(node, ScalarNode) and node.tag == STR:
            return Text(node.value, self.span(node))
        if isinstance(node, ScalarNode) and node.tag not in (BOOL, NULL) and node.value:
            help = f"quote it: \"{node.value}\"" if node.tag != STR else None
            self.diags.error(f"{what} must be a string, found {_kind(node)}", self.span(node), help)
            return None
        self.diags.error(f"{what} must be a string, found {_kind(node)}", self.span(node))
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            value = build_value(node, self.file, self.diags)
            return bool(value)
        self.diags.error(f"{what} must be true or false, found {_kind(node)}", self.span(node))
        return None

    def texts(self, node: Node, what: str) -> tuple[Text, ...]:
        if not isinstance(node, SequenceNode):
            help = f"write a list: [{node.value}]" if isinstance(node, ScalarNode) else None
            self.diags.error(f"{what} must be a list, found {_kind(node)}", self.span(node), help)
            return ()
        items = (self.text(item, f"each item of {what}") for item in node.value)
        return tuple(item for item in items if item is not None)

    def name(self, node: Node, what: str) -> Ref | None:
        text = self.text(node, what)
        return Ref(text.value, text.span) if text else None

    def names(self, node: Node, what: str) -> tuple[Ref, ...]:
        return tuple(Ref(t.value, t.span) for t in self.texts(node, what))

    def labels(self, node: Node, what: str) -> tuple[tuple[str, str], ...]:
        labels = []
        for key, (_, value_node) in sorted(self.entries(node, what, None).items()):
            if isinstance(value_node, ScalarNode) and value_node.tag != NULL:
                labels.append((key, value_node.value))
            else:
                self.diags.error(f"label '{key}' must be a string", self.span(value_node))
        return tuple(labels)

    def helm(self, node: Node, what: str) -> HelmOptions:
        entries = self.entries(node, what, HELM_KEYS)
        timeout = self.text(entries["timeout"][1], "helm timeout") if "timeout" in entries else None
        flags = {key: self.boolean(entries[key][1], f"helm {key}") if key in entries else None
                 for key in HELM_KEYS[1:]}
        if timeout and not DURATION.fullmatch(timeout.value):
            self.diags.error(f"helm timeout '{timeout.value}' is not a duration", timeout.span,
                             "write it as Go durations are written: 300s, 5m, 1h30m")
        spans = tuple(sorted((key, self.span(key_node)) for key, (key_node, _) in entries.items()))
        return HelmOptions(timeout.value if timeout else None, flags["wait"],
                           flags["rollbackOnFailure"], flags["createNamespace"],
                           flags["forceReplace"], flags["serverSide"], spans=spans)

    def helm_version(self, node: Node, what: str) -> HelmVersion | None:
        """``helmVersion: 3`` or ``4``, a plain number."""
        majors = fields.HELM_MAJORS
        if isinstance(node, ScalarNode) and node.tag == INT and node.value in map(str, majors):
            return HelmVersion(int(node.value), self.span(node), "meshfile")
        found = (f"'{node.value}'" if isinstance(node, ScalarNode) and node.tag == STR
                 else _kind(node))
        self.diags.error(f"{what} must be {' or '.join(map(str, majors))}, found {found}",
                         self.span(node), "the major version of the Helm that runs the plans, "
                         "a plain number: helmVersion: 3")
        return None

    def check_name(self, name: str, span: Span, what: str, limit: int) -> None:
        if not DNS_LABEL.fullmatch(name) or len(name) > limit:
            self.diags.error(
                f"{what} name '{name}' is not a DNS-1123 label", span,
                f"use at most {limit} lowercase letters, digits and '-', starting and ending "
                "with a letter or digit")

    # --- the meshfile ---------------------------------------------------------------------

    def spec(self, root: MappingNode) -> Spec:
        top = self.entries(root, "the meshfile", TOP_KEYS)
        self.api_version(top, root)
        project = self.optional_text(top, "project", "project") or Text("", self.span(root))
        output = self.optional_text(top, "output", "output") or Text("rendered", self.span(root))
        defaults = self.defaults(top["defaults"][1]) if "defaults" in top else Defaults()
        environments = self.environments(top.get("environments"), root)
        releases = self.releases(top.get("releases"), root)
        features = self.optional_text(top, "features", "features")
        policies = self.policies(top["policies"][1], "policies") if "policies" in top else ()
        version_keys = (self.texts(top["versionKeys"][1], "versionKeys")
                        if "versionKeys" in top else None)
        helm_version = (self.helm_version(top["helmVersion"][1], "helmVersion")
                        if "helmVersion" in top else None)
        return Spec(self.file, project.value, output, defaults, environments, releases, features,
                    policies=policies, version_keys=version_keys, helm_version=helm_version,
                    unloaded=tuple(self.unloaded))

    def api_version(self, top: Entries, root: Node) -> None:
        if "apiVersion" not in top:
            self.diags.error("the meshfile needs 'apiVersion: meshc/v1'", self.span(root))
            return
        text = self.text(top["apiVersion"][1], "apiVersion")
        if text and text.value != API_VERSION:
            self.diags.error(f"unsupported apiVersion '{text.value}'", text.span,
                             f"this meshc reads '{API_VERSION}'")

    def optional_text(self, entries: Entries, key: str, what: str) -> Text | None:
        return self.text(entries[key][1], what) if key in entries else None

    def defaults(self, node: Node) -> Defaults:
        entries = self.entries(node, "defaults", DEFAULTS_KEYS)
        return Defaults(
            namespace=self.optional_text(entries, "namespace", "defaults.namespace"),
            helm=self.helm(entries["helm"][1], "defaults.helm") if "helm" in entries else HelmOptions(),
            kube_context=self.optional_text(entries, "kubeContext", "defaults.kubeContext"),
            labels=self.labels(entries["labels"][1], "defaults.labels") if "labels" in entries else (),
        )

    def named_sections(self, node: Node | None, what: str) -> Iterator[tuple[str, Span, Node]]:
        if node is None:
            return
        for name, (key_node, value_node) in self.entries(node, what, None).items():
            yield name, self.span(key_node), value_node

    def environments(self, entry: tuple[ScalarNode, Node] | None, root: Node) -> tuple[EnvironmentSpec, ...]:
        if entry is None:
            self.diags.error("the meshfile declares no environments", self.span(root),
                             "add an 'environments:' map, e.g. development: {values: [...]}")
            return ()
        result = []
        for name, span, node in self.named_sections(entry[1], "environments"):
            self.check_name(name, span, "environment", DNS_LABEL_MAX)
            result.append(self.environment(name, span, node))
        if not result and isinstance(entry[1], MappingNode):
            self.diags.error("the meshfile declares no environments", self.span(entry[1]),
                             "add one, e.g. development: {values: [...]}")
        return tuple(result)

    def environment(self, name: str, span: Span, node: Node) -> EnvironmentSpec:
        what = f"environment '{name}'"
        e = self.entries(node, what, ENV_KEYS)

        def get(key: str, read: Any, default: Any = None) -> Any:
            return read(e[key][1], f"{what}: {key}") if key in e else default

        aliases = get("aliases", self.names, ())
        for alias in aliases:
            self.check_name(alias.name, alias.span, "alias", DNS_LABEL_MAX)
        return EnvironmentSpec(
            name=name, span=span, abstract=bool(get("abstract", self.boolean, False)),
            inherits=get("inherits", self.name), aliases=aliases,
            values=get("values", self.texts, ()), secrets=get("secrets", self.texts, ()),
            helm=get("helm", self.helm, HelmOptions()), namespace=get("namespace", self.text),
            kube_context=get("kubeContext", self.text), labels=get("labels", self.labels, ()),
            promotes_from=get("promotesFrom", self.name), protected=get("protected", self.boolean),
            description=_value(get("description", self.text)),
            kube_version=get("kubeVersion", self.kube_version),
            api_versions=get("apiVersions", self.api_versions, ()),
            policies=get("policies", self.policies, ()),
            sops_age=get("sops", self.sops, None),
            chart_versions=get("chartVersions", self.chart_versions, ()),
            helm_version=get("helmVersion", self.helm_version),
            argocd_cluster=get("argocd", self.argocd_cluster),
            cost=get("cost", self.cost, CostSettings()),
            regions=get("regions", self.regions, ()),
            rollout=get("rollout", self.rollout, None),
            rollout_span=self.span(e["rollout"][0]) if "rollout" in e else None,
        )

    def regions(self, node: Node, what: str) -> tuple[RegionSpec, ...]:
        """An environment's ``regions: {NAME: {kubeContext, values, …}}``."""
        result = []
        for name, span, region in self.named_sections(node, what):
            self.check_name(name, span, "region", DNS_LABEL_MAX)
            at = f"{what}.{name}"
            e = self.entries(region, at, fields.REGION.keys)

            def get(key: str, read: Any, default: Any = None, e: Entries = e,
                    at: str = at) -> Any:
                return read(e[key][1], f"{at}: {key}") if key in e else default

            result.append(RegionSpec(
                name=name, span=span, values=get("values", self.texts, ()),
                secrets=get("secrets", self.texts, ()), helm=get("helm", self.helm, HelmOptions()),
                namespace=get("namespace", self.text), kube_context=get("kubeContext", self.text),
                labels=get("labels", self.labels, ()),
                kube_version=get("kubeVersion", self.kube_version),
                description=_value(get("description", self.text))))
        return tuple(result)

    def rollout(self, node: Node, what: str) -> tuple[tuple[Ref, ...], ...]:
        """``rollout: [[eu-west], [us-east, ap-south]]``: stages of region names."""
        if not isinstance(node, SequenceNode):
            self.diags.error(f"{what} must be a list of stages, found {_kind(node)}",
                             self.span(node), "e.g. rollout: [[eu-west], [us-east, ap-south]]")
            return ()
        stages = []
        for stage in node.value:
            if isinstance(stage, ScalarNode) and stage.tag == STR:  # a stage of one region
                stages.append((Ref(stage.value, self.span(stage)),))
            else:
                stages.append(self.names(stage, f"each stage of {what}"))
        return tuple(stages)

    def argocd_cluster(self, node: Node, what: str) -> Text | None:
        """``argocd: {cluster: NAME}``: the Argo CD cluster name of the environment."""
        entries = self.entries(node, what, ARGOCD_KEYS)
        if not isinstance(node, MappingNode):
            return None
        if "cluster" not in entries:
            self.diags.error(f"{what} needs 'cluster:', the cluster's name in Argo CD",
                             self.span(node), "e.g. argocd: {cluster: prod-main}")
            return None
        return self.text(entries["cluster"][1], f"{what}.cluster")

    def number(self, node: Node, what: str, whole: bool = False) -> Text | None:
        """A number, kept as written (exact decimal text); not negative."""
        if isinstance(node, ScalarNode) and node.tag in (INT, FLOAT) \
                and DECIMAL.fullmatch(node.value.strip()):
            value = node.value.strip()
            if value.startswith("-"):
                self.diags.error(f"{what} cannot be negative", self.span(node))
                return None
            if whole and not re.fullmatch(r"\+?\d+", value):
                self.diags.error(f"{what} must be a whole number, found {value}", self.span(node))
                return None
            if abs(Decimal(value)) >= 2**31:  # more than Kubernetes counts (int32)
                self.diags.error(f"{what} is out of range ({value})", self.span(node))
                return None
            return Text(value, self.span(node))
        self.diags.error(f"{what} must be a number, found {_kind(node)}", self.span(node))
        return None

    def cost(self, node: Node, what: str) -> CostSettings:
        """``cost: {currency, prices: {cpu, memory, gpu, storage, loadBalancer}, nodes}``."""
        entries = self.entries(node, what, COST_KEYS)
        currency = self.optional_text(entries, "currency", f"{what}.currency")
        if currency is not None and not CURRENCY.fullmatch(currency.value):
            self.diags.error(f"{what}.currency '{currency.value}' is not a currency code",
                             currency.span, "an ISO 4217 code: USD, EUR, GBP")
            currency = None
        prices = []
        if "prices" in entries:
            for key, (_, value) in self.entries(entries["prices"][1], f"{what}.prices",
                                                PRICE_KEYS).items():
                price = self.number(value, f"{what}.prices.{key}")
                if price is not None and self.plausible_price(key, price, what):
                    prices.append((key, price))
        nodes = (self.number(entries["nodes"][1], f"{what}.nodes", whole=True)
                 if "nodes" in entries else None)
        return CostSettings(currency, tuple(sorted(prices)), nodes)

    def plausible_price(self, key: str, price: Text, what: str) -> bool:
        """Prices are per hour; one above its ceiling is most likely a monthly price."""
        ceiling = fields.PRICE_CEILINGS[key]
        value = float(price.value)
        if value <= ceiling:
            return True
        hours = fields.HOURS_PER_MONTH
        unit = fields.PRICE_UNITS[key]
        self.diags.error(
            f"{what}.prices.{key}: {price.value} per {unit} per hour is implausible (more than "
            f"{ceiling:g})", price.span,
            f"prices are per hour; if {price.value} is a monthly price, write "
            f"{value / hours:.6g} ({price.value} / {hours} hours)")
        return False

    def release_cost(self, node: Node, what: str) -> CostEstimate | None:
        """A release's ``cost: {estimate: {cpu, memory, gpu, storage, replicas, …}}``."""
        entries = self.entries(node, what, fields.RELEASE_COST.keys)
        if "estimate" not in entries:
            return None
        estimate = entries["estimate"][1]
        items = []
        for key, (_, value) in self.entries(estimate, f"{what}.estimate", ESTIMATE_KEYS).items():
            name = f"{what}.estimate.{key}"
            if key in ("cpu", "memory", "storage") and isinstance(value, ScalarNode) \
                    and value.tag == STR:
                if QUANTITY.fullmatch(value.value.strip()) and not value.value.startswith("-"):
                    items.append((key, Text(value.value.strip(), self.span(value))))
                else:
                    self.diags.error(f"{name} '{value.value}' is not a Kubernetes quantity",
                                     self.span(value), "write e.g. 2, 500m, 4Gi, 512Mi")
                continue
            number = self.number(value, name, whole=key in ("replicas", "loadBalancers"))
            if number is not None:
                items.append((key, number))
        return CostEstimate(tuple(sorted(items)), self.span(estimate))

    def chart_versions(self, node: Node, what: str) -> tuple[tuple[Ref, Text], ...]:
        """``chartVersions: {release: version}``: this environment's remote chart versions."""
        result = []
        for name, (key_node, value_node) in self.entries(node, what, None).items():
            version = self.text(value_node, f"{what}.{name}")
            if version is not None:
                result.append((Ref(name, self.span(key_node)), version))
        return tuple(result)

    def sops(self, node: Node, what: str) -> tuple[Text, ...]:
        """``sops: {age: [age1…]}``: the age recipients secrets files are encrypted to."""
        entries = self.entries(node, what, SOPS_KEYS)
        if not isinstance(node, MappingNode):
            return ()
        if "age" not in entries:
            self.diags.error(f"{what} needs 'age:', a list of age recipients", self.span(node),
                             "generate a key with `meshc secrets keygen`; list its public key")
            return ()
        recipients = self.texts(entries["age"][1], f"{what}.age")
        for recipient in recipients:
            if not AGE_RECIPIENT.fullmatch(recipient.value):
                self.diags.error(f"'{recipient.value}' is not an age recipient", recipient.span,
                                 "an age public key: 'age1' and 58 more characters "
                                 "(never the AGE-SECRET-KEY-… private key)")
        return recipients

    def api_versions(self, node: Node, what: str) -> tuple[Text, ...]:
        """``apiVersions: [policy/v1/PodDisruptionBudget, …]``: for ``.Capabilities``."""
        found = []
        for text in self.texts(node, what):
            if KUBE_API_VERSION.fullmatch(text.value):
                found.append(text)
            else:
                self.diags.error(f"{what}: '{text.value}' is not an API version", text.span,
                                 "write GROUP/VERSION or GROUP/VERSION/Kind, e.g. "
                                 "policy/v1/PodDisruptionBudget (v1 for the core group)")
        return tuple(found)

    def kube_version(self, node: Node, what: str) -> Text | None:
        text = self.text(node, what)
        if text is not None and not KUBE_VERSION.fullmatch(text.value):
            self.diags.error(f"{what} '{text.value}' is not a Kubernetes version", text.span,
                             'write MAJOR.MINOR, quoted: kubeVersion: "1.31"')
            return None
        return text

    def policies(self, node: Node, what: str) -> tuple[RuleSetting, ...]:
        """``rule: error|warning|off`` or ``rule: {level: …, option: value}`` entries (rule
        names and options are checked by ``meshc check``, which knows the rules)."""
        result = []
        for rule, (key_node, value_node) in self.entries(node, what, None).items():
            span = self.span(key_node)
            if isinstance(value_node, MappingNode):
                entries = self.entries(value_node, f"{what}: {rule}", None)
                level = self.rule_level(entries["level"][1], rule) if "level" in entries else None
                options = tuple((key, build_value(v, self.file, self.diags))
                                for key, (_, v) in sorted(entries.items()) if key != "level")
                result.append(RuleSetting(rule, level, options, span))
            else:
                level = self.rule_level(value_node, rule)
                if level is not None:
                    result.append(RuleSetting(rule, level, (), span))
        return tuple(result)

    def rule_level(self, node: Node, rule: str) -> str | None:
        # the text, not the typed value: YAML 1.1 reads a bare `off` as false
        if isinstance(node, ScalarNode) and node.value in RULE_LEVELS:
            return str(node.value)
        levels = f"{', '.join(RULE_LEVELS[:-1])} or {RULE_LEVELS[-1]}"
        self.diags.error(f"policy '{rule}' must be {levels} (or a map with 'level:' and the "
                         "rule's options)", self.span(node))
        return None

    def releases(self, entry: tuple[ScalarNode, Node] | None, root: Node) -> tuple[ReleaseSpec, ...]:
        if entry is None:
            self.diags.error("the meshfile declares no releases", self.span(root))
            return ()
        result = []
        for name, span, node in self.named_sections(entry[1], "releases"):
            self.check_name(name, span, "release", RELEASE_NAME_MAX)
            release = self.release(name, span, node)
            if release is not None:
                result.append(release)
            else:
                self.unloaded.append(name)
        return tuple(result)

    def release(self, name: str, span: Span, node: Node) -> ReleaseSpec | None:
        what = f"release '{name}'"
        e = self.entries(node, what, RELEASE_KEYS)

        def get(key: str, read: Any, default: Any = None) -> Any:
            return read(e[key][1], f"{what}: {key}") if key in e else default

        typed = [k.value for k, _ in node.value if isinstance(k, ScalarNode)] \
            if isinstance(node, MappingNode) else []
        if "chart" not in e and not any(did_you_mean(str(k), ["chart"]) for k in typed):
            self.diags.error(f"{what} has no chart", span,
                             "add 'chart: templates/<folder>' (local) or a remote chart name")
        chart = get("chart", self.text)
        if chart is None:
            return None
        return ReleaseSpec(
            name=name, span=span, chart=chart, repo=get("repo", self.text),
            version=get("version", self.text), values_key=get("valuesKey", self.text),
            condition=get("condition", self.text), needs=get("needs", self.names, ()),
            labels=get("labels", self.labels, ()), values=get("values", self.release_values, ()),
            namespace=get("namespace", self.text), helm=get("helm", self.helm, HelmOptions()),
            patches=get("patches", self.patches, ()),
            description=_value(get("description", self.text)),
            version_keys=get("versionKeys", self.texts, None),
            verify=get("verify", self.health_checks, ()),
            cost_estimate=get("cost", self.release_cost, None),
            blue_green=get("strategy", self.strategy, None),
        )

    def strategy(self, node: Node, what: str) -> BlueGreen | None:
        """A release's ``strategy: {blueGreen: {router, idleReplicas}}``."""
        entries = self.entries(node, what, fields.STRATEGY.keys)
        if "blueGreen" not in entries:
            return None
        key, value = entries["blueGreen"]
        name = f"{what}.blueGreen"
        inner = self.entries(value, name, fields.BLUE_GREEN.keys)
        if "router" not in inner:
            if isinstance(value, MappingNode) or _is_null(value):
                self.diags.error(f"{name} needs a 'router:' chart", self.span(key),
                                 "router: templates/router (a local chart owning the live "
                                 "Service; docs/topology.md)")
            return None
        router = self.text(inner["router"][1], f"{name}.router")
        replicas = (self.number(inner["idleReplicas"][1], f"{name}.idleReplicas", whole=True)
                    if "idleReplicas" in inner else None)
        return BlueGreen(router, replicas, self.span(key)) if router is not None else None

    def health_checks(self, node: Node, what: str) -> tuple[HealthCheck, ...]:
        if not isinstance(node, SequenceNode):
            self.diags.error(f"{what} must be a list, found {_kind(node)}", self.span(node),
                             "write [{http: {service: NAME, port: 8080, path: /health}}]")
            return ()
        checks = []
        for item in node.value:
            http = self.entries(item, f"{what} item", VERIFY_KEYS).get("http")
            if http is None:
                self.diags.error(f"{what}: each check needs 'http'", self.span(item))
                continue
            e = self.entries(http[1], f"{what}: http", HTTP_CHECK_KEYS)
            missing = [key for key in ("service", "port") if key not in e]
            if missing:
                self.diags.error(f"{what}: http needs {' and '.join(repr(k) for k in missing)}",
                                 self.span(http[1]))
                continue
            service = self.text(e["service"][1], f"{what}: http service")
            port_node = e["port"][1]
            port = (port_node.value if isinstance(port_node, ScalarNode)
                    and port_node.tag not in (BOOL, NULL) and port_node.value else None)
            if port is None:
                self.diags.error(f"{what}: http port must be a number or a port name",
                                 self.span(port_node))
            path = self.text(e["path"][1], f"{what}: http path") if "path" in e else None
            if service is not None and port is not None:
                checks.append(HealthCheck(service.value, str(port),
                                          path.value if path else "/", self.span(item)))
        return tuple(checks)

    def release_values(self, node: Node, what: str) -> tuple[Text | InlineValues, ...]:
        items = node.value if isinstance(node, SequenceNode) else [node]
        result: list[Text | InlineValues] = []
        for item in items:
            if isinstance(item, MappingNode):
                spans: dict[Any, Span] = {}
                data = build_value(item, self.file, self.diags, spans)
                result.append(InlineValues(ValuesDoc(self.file, data or {}, spans), self.span(item)))
            elif isinstance(item, ScalarNode) and item.tag == STR:
                result.append(Text(item.value, self.span(item)))
            else:
                self.diags.error(f"{what}: each item must be a values file path or a map",
                                 self.span(item))
        return tuple(result)

    def patches(self, node: Node, what: str) -> tuple[Patch, ...]:
        if not isinstance(node, SequenceNode):
            self.diags.error(f"{what} must be a list, found {_kind(node)}", self.span(node))
            return ()
        return tuple(p for p in (self.patch(item, what) for item in node.value) if p is not None)

    def patch(self, node: Node, what: str) -> Patch | None:
        e = self.entries(node, f"{what} item", PATCH_KEYS)
        if "target" not in e or "ops" not in e:
            self.diags.error(f"{what}: each patch needs 'target' and 'ops'", self.span(node))
            return None
        target = self.entries(e["target"][1], "patch target", TARGET_KEYS)
        fields = []
        for key, (_, value_node) in sorted(target.items()):
            text = self.text(value_node, f"patch target {key}")
            if text:
                fields.append((key, text.value))
        ops_node = e["ops"][1]
        ops = build_value(ops_node, self.file, self.diags)
        if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
            self.diags.error("patch ops must be a list of RFC 6902 operations",
                             self.span(ops_node))
            return None
        op_nodes = ops_node.value if isinstance(ops_node, SequenceNode) else []
        spans = tuple(self.span(item) for item in op_nodes)
        well_formed = [self.patch_op(op, item) for op, item in zip(ops, op_nodes, strict=True)]
        if not all(well_formed):  # every op checked, each error reported
            return None
        return Patch(tuple(fields), tuple(ops), self.span(node), spans)

    def patch_op(self, op: dict[str, Any], node: Node) -> bool:
        """Whether one RFC 6902 operation is well-formed; errors located on it (on its ``op``
        or its path when that is what is wrong)."""
        def at(key: str) -> Span:
            if isinstance(node, MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, ScalarNode) and key_node.value == key:
                        return self.span(value_node)
            return self.span(node)

        name = op.get("op")
        if name not in PATCH_OPS:
            self.diags.error(f"unknown patch operation {name!r}" if "op" in op else
                             "a patch operation needs 'op'", at("op"),
                             " ".join(filter(None, (
                                 did_you_mean(str(name), PATCH_OPS),
                                 f"RFC 6902 operations: {', '.join(PATCH_OPS)}"))))
            return False
        needed = ["path", *PATCH_OPS[name]]
        missing = [key for key in needed if key not in op]
        if missing:
            self.diags.error(f"patch operation '{name}' needs "
                             + " and ".join(f"'{key}'" for key in missing), self.span(node))
            return False
        ok = True
        for key in ("path", "from"):
            pointer = op.get(key)
            if key in op and (not isinstance(pointer, str) or pointer[:1] not in ("", "/")):
                self.diags.error(f"patch '{key}' must be a JSON pointer starting with '/' "
                                 f"(e.g. /metadata/labels/app), not {pointer!r}", at(key))
                ok = False
        return ok


# RFC 6902's operations and what each needs besides 'path'
PATCH_OPS: dict[str, tuple[str, ...]] = {"add": ("value",), "remove": (), "replace": ("value",),
                                         "move": ("from",), "copy": ("from",), "test": ("value",)}


# What users of other tools write, and what meshc calls it.
_SYNONYMS = {"dependsOn": "needs", "depends_on": "needs", "dependencies": "needs",
             "extends": "inherits", "parent": "inherits", "valuesFiles": "values",
             "set": "values", "kubecontext": "kubeContext", "context": "kubeContext",
             "atomic": "rollbackOnFailure", "installed": "condition", "enabled": "condition"}


def _synonym(key: str, allowed: tuple[str, ...]) -> str | None:
    target = _SYNONYMS.get(key)
    return f"meshc calls this '{target}'" if target in allowed else None


def _value(text: Text | None) -> str | None:
    return text.value if text else None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a map"
    if isinstance(node, SequenceNode):
        return "a list"
    return {STR: "a string", BOOL: "a boolean", NULL: "null"}.get(
        node.tag, "a number" if node.tag.endswith(("int", "float")) else "a scalar")
