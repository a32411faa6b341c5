"""The PyYAML floor: load meshc's inputs and dump the same documents, in one process.

Reads the workload's meshfile, the chart's values.yaml and every environment values file with
PyYAML's C loader, merges them (chart defaults, base, environment), builds each service's
documents as plain dicts (no templating) and writes one file per document with PyYAML's C
dumper: the least any PyYAML-based compiler has to spend on the same job.

Usage: python bench/floor.py W/meshc OUT      (writes OUT/ENV/RELEASE/KIND-NAME.yaml)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import build_documents, merge

Loader = yaml.CSafeLoader
Dumper = yaml.CSafeDumper


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def env_values(project: Path, meshfile: dict[str, Any], env: str) -> dict[str, Any]:
    """The environment's values files, root of the inheritance chain first, merged."""
    chain = []
    name: str | None = env
    while name is not None:
        chain.append(meshfile["environments"][name])
        name = chain[-1].get("inherits")
    merged: dict[str, Any] = {}
    for spec in reversed(chain):
        for file in spec.get("values", []):
            merged = merge(merged, load(project / file) or {})
    return merged


def run(project: Path, out: Path) -> int:
    """Write every document; returns how many."""
    meshfile = load(project / "meshfile.yaml")
    chart_defaults: dict[str, dict[str, Any]] = {}
    written = 0
    for env, spec in meshfile["environments"].items():
        if spec.get("abstract"):
            continue
        tree = env_values(project, meshfile, env)
        for release, rel in meshfile["releases"].items():
            chart = rel["chart"]
            if chart not in chart_defaults:
                chart_defaults[chart] = load(project / chart / "values.yaml") or {}
            node = tree
            for key in rel.get("valuesKey", release).split("."):
                node = node.get(key, {})
            values = merge(chart_defaults[chart], node)
            folder = out / env / release
            folder.mkdir(parents=True, exist_ok=True)
            for doc in build_documents(release, values, env):
                text = yaml.dump(doc, Dumper=Dumper, sort_keys=True, default_flow_style=False)
                (folder / f"{doc['kind'].lower()}-{release}.yaml").write_text(
                    text, encoding="utf-8")
                written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path, help="the workload's meshc/ directory")
    parser.add_argument("out", type=Path, help="output directory")
    args = parser.parse_args(argv)
    run(args.project, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
