"""Check that every tool produced the same documents, so that no tool wins by doing less.

Each tool's output is read back with PyYAML and compared with the documents the workload must
produce (rebuilt by generate.py from ``workload.json``): every document, field by field, plus a
table of counts per kind and environment and a few spot values (replicas, image, a resource
limit, an env var, PDB minAvailable, HPA maxReplicas) printed side by side.

Where each tool's output is expected, under a workload directory W::

    meshc      W/meshc/rendered/ENV/RELEASE/manifests/*.yaml   (meshc render)
    kustomize  W/kustomize/out/ENV.yaml                         (kubectl kustomize overlays/ENV)
    kapitan    W/kapitan/compiled/ENV/manifests.yaml            (kapitan compile)
    floor      W/floor/out/ENV/RELEASE/*.yaml                   (bench/floor.py)

Usage: python bench/verify.py W [--tools meshc,kustomize,kapitan,floor]
Exit 0 when every named tool matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import ENVIRONMENTS, KINDS, DocKey, expected_documents, service_name

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TOOLS = ("meshc", "kustomize", "kapitan", "floor")


def _load_files(paths: Iterable[Path]) -> list[Any]:
    docs: list[Any] = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            docs.extend(d for d in yaml.load_all(f, Loader=Loader) if d is not None)
    return docs


def tool_files(tool: str, work: Path, env: str) -> list[Path]:
    """The output files of ``tool`` for ``env`` (empty if it wrote none)."""
    if tool == "meshc":
        return sorted((work / "meshc/rendered" / env).glob("*/manifests/*.yaml"))
    if tool == "kustomize":
        return [p for p in [work / "kustomize/out" / f"{env}.yaml"] if p.exists()]
    if tool == "kapitan":
        return sorted((work / "kapitan/compiled" / env).glob("*.yaml"))
    if tool == "floor":
        return sorted((work / "floor/out" / env).glob("*/*.yaml"))
    raise ValueError(f"unknown tool {tool!r}")


def load_outputs(tool: str, work: Path) -> tuple[dict[DocKey, Any], list[str]]:
    """The documents ``tool`` wrote, keyed by (environment, kind, name); plus duplicates found."""
    out: dict[DocKey, Any] = {}
    problems: list[str] = []
    for env in ENVIRONMENTS:
        for doc in _load_files(tool_files(tool, work, env)):
            key = (env, doc.get("kind", "?"), doc.get("metadata", {}).get("name", "?"))
            if key in out:
                problems.append(f"{tool}: duplicate document {'/'.join(key)}")
            out[key] = doc
    return out, problems


def first_difference(want: Any, got: Any, path: str = "") -> str | None:
    """The path of the first place ``got`` differs from ``want``, with both values."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got), key=str):
            if k not in got:
                return f"{path}.{k}: missing (want {want[k]!r})"
            if k not in want:
                return f"{path}.{k}: unexpected {got[k]!r}"
            diff = first_difference(want[k], got[k], f"{path}.{k}")
            if diff:
                return diff
        return None
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (w, g) in enumerate(zip(want, got)):
            diff = first_difference(w, g, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if want != got or type(want) is not type(got):
        return f"{path or '.'}: want {want!r}, got {got!r}"
    return None


def compare(tool: str, expected: dict[DocKey, Any], actual: dict[DocKey, Any]) -> list[str]:
    problems = []
    for key in sorted(set(expected) | set(actual)):
        name = "/".join(key)
        if key not in actual:
            problems.append(f"{tool}: missing {name}")
        elif key not in expected:
            problems.append(f"{tool}: unexpected {name}")
        else:
            diff = first_difference(expected[key], actual[key])
            if diff:
                problems.append(f"{tool}: {name}{diff}")
    return problems


def counts(docs: dict[DocKey, Any]) -> Counter[tuple[str, str]]:
    return Counter((env, kind) for env, kind, _ in docs)


def spot_values(docs: dict[DocKey, Any], env: str, name: str) -> dict[str, Any]:
    """The values the issue names, for one service in one environment (None where absent)."""
    def get(kind: str, *path: Any) -> Any:
        node = docs.get((env, kind, name))
        for p in path:
            if node is None:
                return None
            node = node[p] if isinstance(node, list) else node.get(p)
        return node

    container = ("spec", "template", "spec", "containers", 0)
    return {
        "replicas": get("Deployment", "spec", "replicas"),
        "image": get("Deployment", *container, "image"),
        "limits.memory": get("Deployment", *container, "resources", "limits", "memory"),
        "env LOG_LEVEL": get("ConfigMap", "data", "LOG_LEVEL"),
        "pdb minAvailable": get("PodDisruptionBudget", "spec", "minAvailable"),
        "hpa maxReplicas": get("HorizontalPodAutoscaler", "spec", "maxReplicas"),
    }


def verify(work: Path, tools: Iterable[str], out: Any = sys.stdout) -> bool:
    """Compare every tool's output under ``work`` with the expected documents; print a report."""
    workload = json.loads((work / "workload.json").read_text(encoding="utf-8"))
    n, seed = workload["n"], workload["seed"]
    expected = expected_documents(n, seed)
    tools = list(tools)
    loaded: dict[str, dict[DocKey, Any]] = {}
    problems: list[str] = []
    for tool in tools:
        docs, dups = load_outputs(tool, work)
        loaded[tool] = docs
        problems += dups + compare(tool, expected, docs)

    print(f"verify N={n}: {len(expected)} documents expected (11*N = {11 * n})", file=out)
    want = counts(expected)
    header = f"  {'environment':<12} {'kind':<24} {'expected':>8}" + "".join(
        f" {t:>9}" for t in tools)
    print(header, file=out)
    got = {t: counts(loaded[t]) for t in tools}
    for env in ENVIRONMENTS:
        for kind in KINDS:
            if want[(env, kind)] or any(got[t][(env, kind)] for t in tools):
                print(f"  {env:<12} {kind:<24} {want[(env, kind)]:>8}"
                      + "".join(f" {got[t][(env, kind)]:>9}" for t in tools), file=out)
    for name in sorted({service_name(0), service_name(n // 2), service_name(n - 1)}):
        env = "production"
        print(f"  spot values, {name} in {env}:", file=out)
        want_spot = spot_values(expected, env, name)
        for field, value in want_spot.items():
            row = [spot_values(loaded[t], env, name)[field] for t in tools]
            mark = "" if all(v == value for v in row) else "   <-- differs"
            print(f"    {field:<17} {value!s:<48}"
                  + "".join(f" {str(v == value).lower():>6}" for v in row) + mark, file=out)
    if problems:
        print(f"verify N={n}: {len(problems)} problem(s); the first 20:", file=out)
        for p in problems[:20]:
            print(f"  {p}", file=out)
        return False
    print(f"verify N={n}: {', '.join(tools)}: all {len(expected)} documents identical "
          "to the expected ones", file=out)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="a workload directory written by generate.py")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="comma-separated tools to check (default: all)")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOLS)}")
    return 0 if verify(args.work, tools) else 1


if __name__ == "__main__":
    sys.exit(main())
