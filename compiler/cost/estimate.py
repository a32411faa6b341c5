"""The estimator: rendered manifests → what each release costs per month.

A pure function over the ``rendered/ENV`` tree (path → text, fresh or committed). Per pod,
requests follow Kubernetes' effective request: the larger of the largest init container
(plus the sidecars started before it) and the sum of the app containers and sidecars, plus
``spec.overhead``; a container without a request takes its limit, as the API server defaults it.
Replicas: ``spec.replicas`` (1 when absent); a workload targeted by an HPA or a KEDA
ScaledObject runs between its floor (``minReplicas``) and ceiling (``maxReplicas``); a DaemonSet
runs on ``cost.nodes`` nodes. Storage: PersistentVolumeClaims and a StatefulSet's
``volumeClaimTemplates`` × replicas; a Service of ``type: LoadBalancer`` is one load balancer.

Money is exact (:class:`~decimal.Decimal`) until one rounding: each item's cost of each resource
per month (amount × hourly price × 730) is rounded to the cent, half up. Every total (a
release's, a kind's, an environment's) is a sum of those cents, so rows add up to totals
exactly in every grouping.

What cannot be priced is listed in :attr:`EnvironmentCost.unpriced`, never counted as zero
silently: containers without requests, Jobs and CronJobs, Helm hooks, DaemonSets without a node
count (priced for one node), releases with no rendered manifests and no ``cost.estimate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from ..core.diagnostics import CompileError
from ..model.model import CostEstimate, Environment, Project
from ..syntax.yamlsrc import load_documents
from .prices import HOURS, UNITS, Prices, prices_of
from .quantity import PRECISION, QuantityError, gibibytes, parse_quantity

KEYS = tuple(UNITS)  # cpu, memory, gpu, storage, loadBalancer
CENT = Decimal("0.01")
ZERO = Decimal(0)
WORKLOADS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "DaemonSet",
             "Pod", "Rollout")
NOT_ESTIMATED = {"Job": "runs to completion: not estimated",
                 "CronJob": "runs on a schedule: not estimated"}
KEDA_MAX = 100  # a ScaledObject's default maxReplicaCount


@dataclass(frozen=True, slots=True)
class Amounts:
    """Resources, per key: vCPU, GiB of memory, GPUs, GiB of storage, load balancers."""

    values: tuple[Decimal, ...] = (ZERO,) * len(KEYS)

    @classmethod
    def of(cls, **given: Decimal) -> Amounts:
        return cls(tuple(given.get(key, ZERO) for key in KEYS))

    def get(self, key: str) -> Decimal:
        return self.values[KEYS.index(key)]

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(tuple(a + b for a, b in zip(self.values, other.values, strict=True)))

    def times(self, n: int | Decimal) -> Amounts:
        return Amounts(tuple(a * n for a in self.values))

    def most(self, other: Amounts) -> Amounts:
        return Amounts(tuple(max(a, b) for a, b in zip(self.values, other.values, strict=True)))


@dataclass(frozen=True, slots=True)
class Money:
    """Monthly cost per key, each rounded to the cent."""

    values: tuple[Decimal, ...] = (ZERO,) * len(KEYS)

    def get(self, key: str) -> Decimal:
        return self.values[KEYS.index(key)]

    @property
    def total(self) -> Decimal:
        return sum(self.values, ZERO)

    def __add__(self, other: Money) -> Money:
        return Money(tuple(a + b for a, b in zip(self.values, other.values, strict=True)))


def monthly(amounts: Amounts, prices: Prices) -> Money:
    """What ``amounts`` cost for a month of 730 hours, each key rounded to the cent (half up)."""
    with localcontext() as context:
        context.prec = PRECISION
        return Money(tuple((amounts.get(key) * prices.of(key) * HOURS).quantize(CENT, ROUND_HALF_UP)
                           for key in KEYS))


@dataclass(frozen=True, slots=True)
class Item:
    """One priced object: a workload (``each`` per replica), a claim, a load balancer."""

    release: str
    kind: str
    name: str
    each: Amounts              # one replica's (or the object's) resources
    floor: int                 # replicas at the floor (the headline figure)
    ceiling: int               # replicas at the ceiling (HPA maxReplicas)
    floor_cost: Money
    ceiling_cost: Money
    scaling: str = ""          # how the replicas were found: "HPA 2–10", "3 nodes", …


@dataclass(frozen=True, slots=True)
class Unpriced:
    """Something the estimate does not cover, and why."""

    release: str
    what: str                  # Kind/name, or Kind/name container 'c'
    why: str


@dataclass(frozen=True, slots=True)
class ReleaseCost:
    release: str
    items: tuple[Item, ...]
    declared: bool = False     # from the release's cost.estimate, not its manifests

    @property
    def floor(self) -> Money:
        return sum((i.floor_cost for i in self.items), Money())

    @property
    def ceiling(self) -> Money:
        return sum((i.ceiling_cost for i in self.items), Money())


@dataclass(frozen=True, slots=True)
class EnvironmentCost:
    """The monthly estimate of one environment (see the module docstring for the rules)."""

    environment: str
    prices: Prices
    releases: tuple[ReleaseCost, ...]
    unpriced: tuple[Unpriced, ...] = ()

    @property
    def floor(self) -> Money:
        return sum((r.floor for r in self.releases), Money())

    @property
    def ceiling(self) -> Money:
        return sum((r.ceiling for r in self.releases), Money())

    def release(self, name: str) -> ReleaseCost | None:
        return next((r for r in self.releases if r.release == name), None)

    def groups(self, by: str) -> list[tuple[str, Money, Money]]:
        """(name, floor, ceiling) rows by ``release`` (meshfile order) or ``kind`` (sorted)."""
        if by == "release":
            return [(r.release, r.floor, r.ceiling) for r in self.releases]
        kinds: dict[str, tuple[Money, Money]] = {}
        for r in self.releases:
            for i in r.items:
                floor, ceiling = kinds.get(i.kind, (Money(), Money()))
                kinds[i.kind] = (floor + i.floor_cost, ceiling + i.ceiling_cost)
        return [(kind, *kinds[kind]) for kind in sorted(kinds)]


@dataclass(frozen=True, slots=True)
class ReleaseInput:
    """One release of the tree: its manifests (None: nothing rendered), its declared estimate."""

    name: str
    documents: tuple[tuple[str, Any], ...] | None   # (file name, parsed document)
    estimate: CostEstimate | None = None
    problems: tuple[str, ...] = ()                  # files that could not be read


# --- reading the tree --------------------------------------------------------------------------

def release_inputs(env: str, files: Mapping[str, str], releases: Sequence[str],
                   estimates: Mapping[str, CostEstimate] | None = None) -> tuple[ReleaseInput, ...]:
    """The releases ``releases`` (in that order) of ``rendered/env`` given as ``files`` (paths
    relative to the output directory), their manifests parsed."""
    inputs = []
    for name in releases:
        prefix = f"{env}/{name}/manifests/"
        paths = sorted(p for p in files if p.startswith(prefix) and p.endswith(".yaml"))
        docs: list[tuple[str, Any]] = []
        problems = []
        for path in paths:
            try:
                loaded = load_documents(files[path], path)
            except CompileError:
                problems.append(path)
                continue
            docs.extend((path[len(prefix):], doc) for doc in loaded if isinstance(doc, dict))
        has_folder = bool(paths) or any(p.startswith(f"{env}/{name}/") for p in files)
        inputs.append(ReleaseInput(name, tuple(docs) if has_folder and paths else None,
                                   (estimates or {}).get(name), tuple(problems)))
    return tuple(inputs)


def tree_releases(env: str, files: Mapping[str, str], order: Sequence[str]) -> list[str]:
    """The releases that have a folder in ``rendered/env`` (``files``): those of ``order``
    (the meshfile's) first, in that order, then any others, sorted."""
    prefix = f"{env}/"  # a region's env is ENV/REGION
    present = {p[len(prefix):].partition("/")[0] for p in files
               if p.startswith(prefix) and "/" in p[len(prefix):]}
    return [n for n in order if n in present] + sorted(present - set(order))


# --- the estimate ------------------------------------------------------------------------------

def estimate_tree(env: str, prices: Prices, releases: Sequence[ReleaseInput]) -> EnvironmentCost:
    """The monthly estimate of ``env`` at ``prices`` from its releases' manifests."""
    scalers = _scalers(d for r in releases for _, d in r.documents or ())
    costs: list[ReleaseCost] = []
    unpriced: list[Unpriced] = []
    for r in releases:
        unpriced += [Unpriced(r.name, path, "cannot be read as YAML") for path in r.problems]
        if r.estimate is not None:
            try:
                costs.append(ReleaseCost(r.name, _declared(r.name, r.estimate, prices), True))
            except QuantityError as exc:
                costs.append(ReleaseCost(r.name, (), True))
                unpriced.append(Unpriced(r.name, "cost.estimate", str(exc)))
        elif r.documents is None:
            costs.append(ReleaseCost(r.name, ()))
            unpriced.append(Unpriced(r.name, "(the whole release)", "no rendered manifests: "
                                     "declare `cost: {estimate: …}` on the release"))
        else:
            items: list[Item] = []
            for _, doc in r.documents:
                _price_document(r.name, doc, prices, scalers, items, unpriced)
            costs.append(ReleaseCost(r.name, tuple(items)))
    return EnvironmentCost(env, prices, tuple(costs), tuple(unpriced))


def _item(release: str, kind: str, name: str, each: Amounts, floor: int, ceiling: int,
          prices: Prices, scaling: str = "") -> Item:
    return Item(release, kind, name, each, floor, ceiling, monthly(each.times(floor), prices),
                monthly(each.times(ceiling), prices), scaling)


def _declared(release: str, estimate: CostEstimate, prices: Prices) -> tuple[Item, ...]:
    given = {key: text.value for key, text in estimate.items}
    replicas = int(Decimal(given.get("replicas", "1")))
    each = Amounts.of(cpu=parse_quantity(given.get("cpu", "0")),
                      memory=gibibytes(given.get("memory", "0")),
                      gpu=Decimal(given.get("gpu", "0")),
                      storage=gibibytes(given.get("storage", "0")))
    items = [_item(release, "estimate", release, each, replicas, replicas, prices, "declared")]
    if "loadBalancers" in given:
        lbs = Amounts.of(loadBalancer=Decimal(given["loadBalancers"]))
        items.append(_item(release, "estimate", f"{release} load balancers", lbs, 1, 1, prices,
                           "declared"))
    return tuple(items)


def _meta(doc: Mapping[str, Any]) -> tuple[str, str, str | None]:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    namespace = meta.get("namespace")
    return (str(doc.get("kind", "")), str(meta.get("name", "")),
            namespace if isinstance(namespace, str) else None)


Scalers = dict[tuple[str, str], list[tuple[str | None, int, int, str]]]


def _scalers(docs: Iterable[Any]) -> Scalers:
    """(kind, name) → [(namespace, floor, ceiling, what)] of HPAs and KEDA ScaledObjects."""
    found: Scalers = {}
    for doc in docs:
        kind, name, namespace = _meta(doc)
        spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
        target = spec.get("scaleTargetRef")
        if not isinstance(target, dict) or kind not in ("HorizontalPodAutoscaler", "ScaledObject"):
            continue
        if kind == "HorizontalPodAutoscaler":
            low, high, what = spec.get("minReplicas", 1), spec.get("maxReplicas"), "HPA"
        else:
            low, high, what = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount",
                                                                      KEDA_MAX), "KEDA"
        if not _whole(low) or not _whole(high):
            continue
        key = (str(target.get("kind", "Deployment")), str(target.get("name", "")))
        found.setdefault(key, []).append((namespace, int(low), int(high),
                                          f"{what} {name}: {low}–{high}"))
    return found


def _whole(value: Any) -> bool:
    """A replica count Kubernetes takes: an int32, not negative."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


def _price_document(release: str, doc: Mapping[str, Any], prices: Prices, scalers: Scalers,
                    items: list[Item], unpriced: list[Unpriced]) -> None:
    kind, name, namespace = _meta(doc)
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    what = f"{kind}/{name}"
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    if "helm.sh/hook" in annotations and (kind in WORKLOADS or kind in NOT_ESTIMATED):
        unpriced.append(Unpriced(release, what, f"a Helm hook ({annotations['helm.sh/hook']}): "
                                               "runs only around installs, not estimated"))
        return
    if kind in NOT_ESTIMATED:
        unpriced.append(Unpriced(release, what, NOT_ESTIMATED[kind]))
    elif kind == "PersistentVolumeClaim":
        storage = _storage(spec, release, what, unpriced)
        if storage is not None:
            items.append(_item(release, kind, name, Amounts.of(storage=storage), 1, 1, prices))
    elif kind == "Service" and spec.get("type") == "LoadBalancer":
        items.append(_item(release, kind, name, Amounts.of(loadBalancer=Decimal(1)), 1, 1,
                           prices))
    elif kind in WORKLOADS:
        _price_workload(release, kind, name, namespace, spec, prices, scalers, items, unpriced)


def _price_workload(release: str, kind: str, name: str, namespace: str | None,
                    spec: Mapping[str, Any], prices: Prices, scalers: Scalers,
                    items: list[Item], unpriced: list[Unpriced]) -> None:
    what = f"{kind}/{name}"
    pod = spec if kind == "Pod" else _dig(spec, "template", "spec")
    each = _pod_requests(pod if isinstance(pod, dict) else {}, release, what, unpriced)
    floor, ceiling, scaling = _replicas(kind, name, namespace, spec, scalers, prices)
    if kind == "DaemonSet" and prices.nodes is None:
        unpriced.append(Unpriced(release, what, "a DaemonSet runs on every node: priced for one "
                                                "node (set `cost: {nodes: N}`)"))
    items.append(_item(release, kind, name, each, floor, ceiling, prices, scaling))
    if kind == "StatefulSet":
        templates = spec.get("volumeClaimTemplates")
        for template in templates if isinstance(templates, list) else ():
            if not isinstance(template, dict):
                continue
            claim = f"{what} volumeClaimTemplate '{_meta(template)[1]}'"
            claim_spec = template.get("spec")
            storage = _storage(claim_spec if isinstance(claim_spec, dict) else {}, release, claim,
                               unpriced)
            if storage is not None:
                items.append(_item(release, "PersistentVolumeClaim",
                                   f"{_meta(template)[1]} ({name})", Amounts.of(storage=storage),
                                   floor, ceiling, prices, scaling))


def _replicas(kind: str, name: str, namespace: str | None, spec: Mapping[str, Any],
              scalers: Scalers, prices: Prices) -> tuple[int, int, str]:
    if kind == "DaemonSet":
        nodes = prices.nodes if prices.nodes is not None else 1
        return nodes, nodes, f"{nodes} node{'s' * (nodes != 1)}" if prices.nodes else "per node"
    if kind == "Pod":
        return 1, 1, ""
    for scaler_ns, low, high, what in scalers.get((kind, name), ()):
        if scaler_ns is None or namespace is None or scaler_ns == namespace:
            return low, high, what
    replicas = spec.get("replicas", 1)
    return (replicas, replicas, "") if _whole(replicas) else (1, 1, "")


def _dig(data: Any, *path: str) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _storage(spec: Mapping[str, Any], release: str, what: str,
             unpriced: list[Unpriced]) -> Decimal | None:
    value = _dig(spec, "resources", "requests", "storage")
    try:
        return gibibytes(value)
    except QuantityError:
        unpriced.append(Unpriced(release, what, "requests no storage size" if value is None
                                 else f"storage request {value!r} is not a quantity"))
        return None


def _pod_requests(pod: Mapping[str, Any], release: str, what: str,
                  unpriced: list[Unpriced]) -> Amounts:
    """One pod's effective request (Kubernetes' rule, sidecar init containers included)."""
    apps = ZERO_AMOUNTS
    for container in _containers(pod, "containers"):
        apps = apps + _container(container, release, what, unpriced)
    sidecars = ZERO_AMOUNTS
    init_peak = ZERO_AMOUNTS
    for container in _containers(pod, "initContainers"):
        amounts = _container(container, release, what, unpriced)
        if container.get("restartPolicy") == "Always":  # a sidecar: runs alongside the app
            sidecars = sidecars + amounts
            init_peak = init_peak.most(sidecars)
        else:
            init_peak = init_peak.most(sidecars + amounts)
    effective = (apps + sidecars).most(init_peak)
    overhead = pod.get("overhead")
    if isinstance(overhead, dict):
        effective = effective + _resources(overhead, release, f"{what} overhead", unpriced)
    return effective


ZERO_AMOUNTS = Amounts()


def _containers(pod: Mapping[str, Any], key: str) -> Iterator[dict[str, Any]]:
    items = pod.get(key)
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            yield item


def _container(container: Mapping[str, Any], release: str, what: str,
               unpriced: list[Unpriced]) -> Amounts:
    resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
    requests = resources.get("requests") if isinstance(resources.get("requests"), dict) else {}
    limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else {}
    effective = {**limits, **requests}  # the API server defaults a missing request to the limit
    where = f"{what} container '{container.get('name', '?')}'"
    missing = [key for key in ("cpu", "memory") if key not in effective]
    if missing:
        unpriced.append(Unpriced(release, where, f"requests no {' and no '.join(missing)}: "
                                                 "priced at zero"))
    return _resources(effective, release, where, unpriced)


def _resources(given: Mapping[str, Any], release: str, where: str,
               unpriced: list[Unpriced]) -> Amounts:
    found: dict[str, Decimal] = {}
    for key, value in sorted(given.items(), key=lambda pair: str(pair[0])):
        slot = ("cpu" if key == "cpu" else "memory" if key == "memory" else
                "gpu" if "gpu" in str(key).rpartition("/")[2] else None)
        if slot is None:
            continue
        try:
            amount = gibibytes(value) if slot == "memory" else parse_quantity(value)
        except QuantityError:
            unpriced.append(Unpriced(release, where, f"{key} request {value!r} is not a "
                                                     "quantity"))
            continue
        found[slot] = found.get(slot, ZERO) + amount
    return Amounts.of(**found)


# --- a change ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CostChange:
    """An environment's estimate before (the committed output) and after (a fresh render)."""

    before: EnvironmentCost
    after: EnvironmentCost
    releases: tuple[tuple[str, Money, Money, Money, Money], ...] = field(default=())
    # (release, floor before, floor after, ceiling before, ceiling after), releases that differ


def compare(before: EnvironmentCost, after: EnvironmentCost) -> CostChange:
    """Per-release differences of two estimates of one environment (after's order first)."""
    names = [r.release for r in after.releases]
    names += [r.release for r in before.releases if r.release not in names]
    rows = []
    for name in names:
        a, b = before.release(name), after.release(name)
        fa, fb = (a.floor if a else Money()), (b.floor if b else Money())
        ca, cb = (a.ceiling if a else Money()), (b.ceiling if b else Money())
        if fa != fb or ca != cb:
            rows.append((name, fa, fb, ca, cb))
    return CostChange(before, after, tuple(rows))


def estimate_environment(project: Project, env: Environment, files: Mapping[str, str],
                         releases: Sequence[str] | None = None) -> EnvironmentCost:
    """The estimate of ``env`` from its output tree ``files`` (paths relative to the output
    directory: a fresh render's or the committed ``rendered/``), at the environment's prices.
    ``releases``: those to price, in order (default: every release with a folder there)."""
    order = [r.name for r in project.releases]
    names = list(releases) if releases is not None else tree_releases(env.name, files, order)
    estimates = {r.name: r.cost_estimate for r in project.releases if r.cost_estimate}
    return estimate_tree(env.name, prices_of(env.cost),
                         release_inputs(env.name, files, names, estimates))
