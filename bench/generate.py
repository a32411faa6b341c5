"""Generate the benchmark workload of issue 8 for meshc, Kustomize, Kapitan and the PyYAML floor.

N services in three environments (development, staging, production) inheriting from a base.
Base values per service: image, tag, replicas, port, resources, labels, env vars; each
environment overrides replicas, resources, the image tag, a few labels and env vars; production
adds a PodDisruptionBudget and a HorizontalPodAutoscaler. Every service renders a Deployment, a
Service and a ConfigMap in every environment: 3·3·N + 2·N = 11·N documents.

The same workload is written three ways, as a user of each tool would write it::

    OUT/workload.json                 n, seed (what verify.py rebuilds the expected documents from)
    OUT/meshc/                        meshfile.yaml with N releases sharing charts/service,
                                      environments/{base,development,staging,production}/values.yaml
    OUT/kustomize/base/SERVICE/       Deployment, Service, ConfigMap
    OUT/kustomize/overlays/ENV/       namespace and environment label over SERVICE/ folders:
                                      images, replicas, a patch (production: + PDB and HPA)
    OUT/kapitan/inventory/            classes/common.yml (base), classes/env/ENV.yml (overrides),
                                      targets/ENV.yml; templates/manifests.yaml (a Jinja2 input)

Values are drawn from ``random.Random`` seeded per service, so the output is byte-identical for
the same (n, seed), and service i has the same values whatever N. No timestamps.

Usage: python bench/generate.py N OUT [--seed S]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ENVIRONMENTS = ("development", "staging", "production")
KINDS = ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler")
DEFAULT_SEED = 8

# Chart defaults (meshc's charts/service/values.yaml; the other tools spell them out).
CHART_DEFAULTS: dict[str, Any] = {
    "replicas": 1,
    "port": 8080,
    "podDisruptionBudget": {"enabled": False, "minAvailable": 1},
    "autoscaling": {"enabled": False, "minReplicas": 1, "maxReplicas": 3,
                    "targetCPUUtilizationPercentage": 80},
}

Values = dict[str, Any]


def service_name(i: int) -> str:
    return f"svc-{i:04d}"


def namespace_of(env: str) -> str:
    return f"bench-{env}"


def _rng(seed: int, i: int, salt: str) -> random.Random:
    return random.Random(f"{seed}/{i}/{salt}")


def _resources(rng: random.Random, scale: int) -> Values:
    cpu = rng.choice((50, 100, 150, 200, 250)) * scale
    mem = rng.choice((64, 128, 192, 256)) * scale
    return {"requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"},
            "limits": {"cpu": f"{cpu * 4}m", "memory": f"{mem * 2}Mi"}}


def base_values(i: int, seed: int) -> Values:
    """The base values of service i: what every environment inherits."""
    rng = _rng(seed, i, "base")
    name = service_name(i)
    team = f"team-{rng.randrange(12)}"
    return {
        "image": {"repository": f"registry.example.com/{team}/{name}",
                  "tag": f"1.{rng.randrange(20)}.{rng.randrange(10)}"},
        "replicas": rng.randint(1, 3),
        "port": rng.choice((8080, 8000, 9000)),
        "resources": _resources(rng, 1),
        "labels": {"app": name, "team": team,
                   "tier": rng.choice(("frontend", "backend", "worker")), "track": "stable"},
        "env": {"LOG_LEVEL": "info", "SERVICE_NAME": name,
                "TIMEOUT_MS": str(rng.randint(5, 60) * 100),
                "CACHE_TTL": str(rng.choice((30, 60, 300))), "FEATURE_FLAGS": "search,export"},
    }


def env_overrides(i: int, env: str, seed: int) -> Values:
    """What environment ``env`` changes in service i's values."""
    rng = _rng(seed, i, env)
    base = base_values(i, seed)
    major, minor, patch = base["image"]["tag"].split(".")
    if env == "development":
        return {
            "replicas": 1,
            "image": {"tag": f"{major}.{int(minor) + 1}.0-dev.{rng.randrange(100)}"},
            "resources": _resources(rng, 1),
            "labels": {"track": "edge", "cost-center": f"cc-dev-{rng.randrange(10)}"},
            "env": {"LOG_LEVEL": "debug", "FEATURE_PREVIEW": "true"},
        }
    if env == "staging":
        return {
            "replicas": base["replicas"] + 1,
            "image": {"tag": f"{major}.{int(minor) + 1}.0-rc.{rng.randrange(5)}"},
            "resources": _resources(rng, 2),
            "labels": {"track": "candidate", "cost-center": f"cc-stg-{rng.randrange(10)}"},
            "env": {"TIMEOUT_MS": str(rng.randint(5, 60) * 100), "ENVIRONMENT": "staging"},
        }
    replicas = base["replicas"] * 3
    return {
        "replicas": replicas,
        "image": {"tag": f"{major}.{minor}.{int(patch) + 1}"},
        "resources": _resources(rng, 4),
        "labels": {"cost-center": f"cc-prod-{rng.randrange(10)}", "criticality": "high"},
        "env": {"LOG_LEVEL": "warn", "ENVIRONMENT": "production",
                "TIMEOUT_MS": str(rng.randint(5, 60) * 100)},
        "podDisruptionBudget": {"enabled": True, "minAvailable": max(1, replicas - 1)},
        "autoscaling": {"enabled": True, "minReplicas": replicas, "maxReplicas": replicas * 4,
                        "targetCPUUtilizationPercentage": rng.choice((60, 70, 75))},
    }


def merge(base: Values, over: Values) -> Values:
    """Helm's merge: maps merge recursively, anything else in ``over`` replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def service_values(i: int, env: str, seed: int) -> Values:
    """The values service i's chart receives in ``env``: chart defaults, base, environment."""
    return merge(merge(CHART_DEFAULTS, base_values(i, seed)), env_overrides(i, env, seed))


def build_documents(name: str, v: Values, env: str | None) -> list[Values]:
    """The documents of one service. ``env=None``: Kustomize's base (no namespace, no
    environment label, no PDB/HPA: the overlays add them)."""
    labels = dict(v["labels"])
    meta: Values = {"name": name, "labels": labels}
    if env is not None:
        labels["environment"] = env
        meta["namespace"] = namespace_of(env)
    selector = {"app": name}
    docs: list[Values] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": copy.deepcopy(meta),
         "spec": {"replicas": v["replicas"], "selector": {"matchLabels": dict(selector)},
                  "template": {"metadata": {"labels": dict(selector)},
                               "spec": {"containers": [{
                                   "name": "app",
                                   "image": f"{v['image']['repository']}:{v['image']['tag']}",
                                   "ports": [{"name": "http", "containerPort": v["port"]}],
                                   "envFrom": [{"configMapRef": {"name": name}}],
                                   "resources": copy.deepcopy(v["resources"])}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": copy.deepcopy(meta),
         "spec": {"selector": dict(selector),
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": copy.deepcopy(meta),
         "data": dict(v["env"])},
    ]
    if env is not None:
        docs += extra_documents(name, v, env)
    return docs


def extra_documents(name: str, v: Values, env: str) -> list[Values]:
    """The PodDisruptionBudget and HorizontalPodAutoscaler, where enabled (production)."""
    meta = {"name": name, "namespace": namespace_of(env),
            "labels": dict(v["labels"], environment=env)}
    docs: list[Values] = []
    pdb, hpa = v["podDisruptionBudget"], v["autoscaling"]
    if pdb["enabled"]:
        docs.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                     "metadata": copy.deepcopy(meta),
                     "spec": {"minAvailable": pdb["minAvailable"],
                              "selector": {"matchLabels": {"app": name}}}})
    if hpa["enabled"]:
        target = {"type": "Utilization",
                  "averageUtilization": hpa["targetCPUUtilizationPercentage"]}
        docs.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                     "metadata": copy.deepcopy(meta),
                     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": name},
                              "minReplicas": hpa["minReplicas"], "maxReplicas": hpa["maxReplicas"],
                              "metrics": [{"type": "Resource",
                                           "resource": {"name": "cpu", "target": target}}]}})
    return docs


DocKey = tuple[str, str, str]  # (environment, kind, name)


def expected_documents(n: int, seed: int) -> dict[DocKey, Values]:
    """Every document the workload must produce, keyed by (environment, kind, name)."""
    out: dict[DocKey, Values] = {}
    for env in ENVIRONMENTS:
        for i in range(n):
            name = service_name(i)
            for doc in build_documents(name, service_values(i, env, seed), env):
                out[(env, doc["kind"], name)] = doc
    return out


# --- writing -------------------------------------------------------------------------------

def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


def dump_all(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=1000)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def all_base(n: int, seed: int) -> dict[str, Values]:
    return {service_name(i): base_values(i, seed) for i in range(n)}


def all_overrides(n: int, env: str, seed: int) -> dict[str, Values]:
    return {service_name(i): env_overrides(i, env, seed) for i in range(n)}


MESHC_CHART = {
    "deployment.yaml.j2": """\
{% import './_helpers.j2' as h %}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ release.name }}
  labels:{{ h.labels(values, env)|nindent(4) }}
spec:
  replicas: {{ values.replicas|int }}
  selector:
    matchLabels:
      app: {{ release.name|quote }}
  template:
    metadata:
      labels:
        app: {{ release.name|quote }}
    spec:
      containers:
        - name: app
          image: {{ (values.image.repository ~ ':' ~ values.image.tag)|quote }}
          ports:
            - name: http
              containerPort: {{ values.port|int }}
          envFrom:
            - configMapRef:
                name: {{ release.name|quote }}
          resources:{{ values.resources|toyaml|nindent(12) }}
""",
    "service.yaml.j2": """\
{% import './_helpers.j2' as h %}
apiVersion: v1
kind: Service
metadata:
  name: {{ release.name }}
  labels:{{ h.labels(values, env)|nindent(4) }}
spec:
  selector:
    app: {{ release.name|quote }}
  ports:
    - name: http
      port: 80
      targetPort: http
""",
    "configmap.yaml.j2": """\
{% import './_helpers.j2' as h %}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ release.name }}
  labels:{{ h.labels(values, env)|nindent(4) }}
data:
{% for k, v in values.env|dictsort %}
  {{ k }}: {{ v|string|quote }}
{% endfor %}
""",
    "poddisruptionbudget.yaml.j2": """\
{% import './_helpers.j2' as h %}
{% if values.podDisruptionBudget.enabled %}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ release.name }}
  labels:{{ h.labels(values, env)|nindent(4) }}
spec:
  minAvailable: {{ values.podDisruptionBudget.minAvailable|int }}
  selector:
    matchLabels:
      app: {{ release.name|quote }}
{% endif %}
""",
    "horizontalpodautoscaler.yaml.j2": """\
{% import './_helpers.j2' as h %}
{% set hpa = values.autoscaling %}
{% if hpa.enabled %}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ release.name }}
  labels:{{ h.labels(values, env)|nindent(4) }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ release.name }}
  minReplicas: {{ hpa.minReplicas|int }}
  maxReplicas: {{ hpa.maxReplicas|int }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ hpa.targetCPUUtilizationPercentage|int }}
{% endif %}
""",
    "_helpers.j2": """\
{# The service's labels plus environment=<env.name>, sorted, as a YAML block #}
{% macro labels(values, env) %}
{% for k, v in dict(values.labels, environment=env.name)|dictsort %}
{{ k }}: {{ v|string|quote }}
{% endfor %}
{%- endmacro %}
""",
}


def write_meshc(root: Path, n: int, seed: int) -> None:
    """A meshfile with N releases sharing the local chart charts/service."""
    lines = [
        "# Generated by bench/generate.py: N releases sharing one local chart.",
        "apiVersion: meshc/v1",
        "project: bench",
        "defaults:",
        '  namespace: "bench-{{ env.name }}"',
        "environments:",
        "  base:",
        "    abstract: true",
        "    values: [environments/base/values.yaml]",
    ]
    for env in ENVIRONMENTS:
        lines += [f"  {env}:", "    inherits: base",
                  f"    values: [environments/{env}/values.yaml]"]
    lines.append("releases:")
    for i in range(n):
        name = service_name(i)
        lines += [f"  {name}:", "    chart: charts/service", f"    valuesKey: services.{name}"]
    write(root / "meshfile.yaml", "\n".join(lines) + "\n")
    for fname, text in MESHC_CHART.items():
        write(root / "charts/service" / fname, text)
    write(root / "charts/service/values.yaml", "# Chart defaults\n" + dump(CHART_DEFAULTS))
    write(root / "environments/base/values.yaml", dump({"services": all_base(n, seed)}))
    for env in ENVIRONMENTS:
        write(root / f"environments/{env}/values.yaml",
              dump({"services": all_overrides(n, env, seed)}))


def _strip_labels(v: Values) -> Values:
    return {"labels": v["labels"]} if v.get("labels") else {}


def kustomize_patch(name: str, over: Values) -> list[Values]:
    """A strategic-merge patch per document of one service: resources, ConfigMap data, labels."""
    meta = {"name": name, **_strip_labels(over)}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta),
         "spec": {"template": {"spec": {"containers": [
             {"name": "app", "resources": over["resources"]}]}}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta), "data": over["env"]},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta)},
    ]


def write_kustomize(root: Path, n: int, seed: int) -> None:
    """One kustomization per service: base/SERVICE and overlays/ENV/SERVICE (images, replicas,
    a strategic-merge patch, production's PDB and HPA); overlays/ENV gathers its services and
    adds the namespace and the environment label.

    Per-service folders are how a Kustomize user lays out many services, and they keep
    Kustomize linear in N: one overlay patching all N services (each patch is matched against
    every resource) took 101 s at N = 200 here, 25 times its N = 50 time."""
    names = [service_name(i) for i in range(n)]
    base = all_base(n, seed)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    for name in names:
        write(root / f"base/{name}/resources.yaml",
              dump_all(build_documents(name, merge(CHART_DEFAULTS, base[name]), None)))
        write(root / f"base/{name}/kustomization.yaml",
              dump({**kustomization, "resources": ["resources.yaml"]}))
    for env in ENVIRONMENTS:
        overlay = root / "overlays" / env
        overrides = all_overrides(n, env, seed)
        for i, name in enumerate(names):
            over = overrides[name]
            resources = [f"../../../base/{name}"]
            extra = extra_documents(name, service_values(i, env, seed), env)
            if extra:
                # A user writes these without namespace or environment label: the overlay adds them.
                for doc in extra:
                    del doc["metadata"]["namespace"]
                    del doc["metadata"]["labels"]["environment"]
                write(overlay / f"{name}/resources.yaml", dump_all(extra))
                resources.append("resources.yaml")
            write(overlay / f"{name}/patch.yaml", dump_all(kustomize_patch(name, over)))
            write(overlay / f"{name}/kustomization.yaml", dump({
                **kustomization,
                "resources": resources,
                "images": [{"name": base[name]["image"]["repository"],
                            "newTag": over["image"]["tag"]}],
                "replicas": [{"name": name, "count": over["replicas"]}],
                "patches": [{"path": "patch.yaml"}],
            }))
        write(overlay / "kustomization.yaml", dump({
            **kustomization,
            "namespace": namespace_of(env),
            "labels": [{"pairs": {"environment": env}, "includeSelectors": False}],
            "resources": names,
        }))


KAPITAN_TEMPLATE = """\
{#- Every service of this target's environment: Deployment, Service, ConfigMap (+ PDB, HPA) -#}
{% set p = inventory.parameters %}
{% macro labels(s, indent) %}
{% for k, v in s.labels|dictsort %}
{{ ' ' * indent }}{{ k }}: {{ v|string|tojson }}
{% endfor %}
{{ ' ' * indent }}environment: {{ p.environment|tojson }}
{% endmacro %}
{% for name, s in p.services|dictsort %}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ name }}
  namespace: {{ p.namespace }}
  labels:
{{ labels(s, 4) -}}
spec:
  replicas: {{ s.replicas }}
  selector:
    matchLabels:
      app: {{ name|tojson }}
  template:
    metadata:
      labels:
        app: {{ name|tojson }}
    spec:
      containers:
        - name: app
          image: {{ (s.image.repository ~ ':' ~ s.image.tag)|tojson }}
          ports:
            - name: http
              containerPort: {{ s.port }}
          envFrom:
            - configMapRef:
                name: {{ name|tojson }}
          resources:
            requests:
              cpu: {{ s.resources.requests.cpu|tojson }}
              memory: {{ s.resources.requests.memory|tojson }}
            limits:
              cpu: {{ s.resources.limits.cpu|tojson }}
              memory: {{ s.resources.limits.memory|tojson }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ name }}
  namespace: {{ p.namespace }}
  labels:
{{ labels(s, 4) -}}
spec:
  selector:
    app: {{ name|tojson }}
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ name }}
  namespace: {{ p.namespace }}
  labels:
{{ labels(s, 4) -}}
data:
{% for k, v in s.env|dictsort %}
  {{ k }}: {{ v|string|tojson }}
{% endfor %}
{% if s.podDisruptionBudget.enabled %}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ name }}
  namespace: {{ p.namespace }}
  labels:
{{ labels(s, 4) -}}
spec:
  minAvailable: {{ s.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      app: {{ name|tojson }}
{% endif %}
{% if s.autoscaling.enabled %}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ name }}
  namespace: {{ p.namespace }}
  labels:
{{ labels(s, 4) -}}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ name }}
  minReplicas: {{ s.autoscaling.minReplicas }}
  maxReplicas: {{ s.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ s.autoscaling.targetCPUUtilizationPercentage }}
{% endif %}
{% endfor %}
"""


def write_kapitan(root: Path, n: int, seed: int) -> None:
    """Inventory: classes/common.yml (defaults + base), classes/env/ENV.yml, targets/ENV.yml."""
    base = {name: merge(CHART_DEFAULTS, v) for name, v in all_base(n, seed).items()}
    write(root / "inventory/classes/common.yml", dump({"parameters": {"services": base}}))
    for env in ENVIRONMENTS:
        write(root / f"inventory/classes/env/{env}.yml", dump({"parameters": {
            "environment": env, "namespace": namespace_of(env),
            "services": all_overrides(n, env, seed)}}))
        write(root / f"inventory/targets/{env}.yml", dump({
            "classes": ["common", f"env.{env}"],
            "parameters": {"kapitan": {
                "vars": {"target": env},
                "compile": [{"output_path": ".", "input_type": "jinja2",
                             "input_paths": ["templates/manifests.yaml"]}]}}}))
    write(root / "templates/manifests.yaml", KAPITAN_TEMPLATE)


def generate(n: int, out: Path, seed: int = DEFAULT_SEED) -> Path:
    """Write the workload for N services under ``out`` (replacing it); returns ``out``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write(out / "workload.json", json.dumps({"n": n, "seed": seed}, sort_keys=True) + "\n")
    write_meshc(out / "meshc", n, seed)
    write_kustomize(out / "kustomize", n, seed)
    write_kapitan(out / "kapitan", n, seed)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of services")
    parser.add_argument("out", type=Path, help="directory to (re)create")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    generate(args.n, args.out, args.seed)
    print(f"workload: {args.n} services x {len(ENVIRONMENTS)} environments "
          f"({11 * args.n} documents) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
