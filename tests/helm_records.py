"""Helm release records built from a project's committed output, for Helm's memory driver.

No Kubernetes API server can run here, so the day-2 commands (status, drift, history,
rollback, versions --live) are tested against the real Helm replaying release records offline:
``HELM_DRIVER=memory HELM_MEMORY_DRIVER_DATA=a.json:b.json``, each file a list of release
objects (Helm's JSON field names). This module writes such records from ``rendered/ENV``
(what ``meshc apply`` would install: the manifests, the values plus stand-ins for the secrets)
and edits some to make a scenario. A target is a deployable environment or a region
(``production/eu-west``, records from ``rendered/production/eu-west``); its cluster, the
kube-context and namespaces, is what its committed plan says. The memory driver knows no
kube-contexts, and the two regions use one namespace, so each cluster gets its own records.
Used by tests/test_day2.py and, as a script, to try the commands on the example
(docs/commands/day2.md):

    python3 tests/helm_records.py /tmp/records     # prints the variables to export

The script also writes ``/tmp/records/helm``, which runs the real helm (``$MESHC_HELM``, else
the one on ``PATH``) on the records of the cluster its ``--kube-context`` names.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml where there is one
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
FAKE_SECRET = "not-a-real-secret-4f1c"  # stands in for a decrypted secret value
DAY = "2026-11-{:02d}T10:00:00Z"


def _plan(root: Path, env: str) -> dict[str, Any]:
    return json.loads((root / "rendered" / env / "plan.json").read_text(encoding="utf-8"))


def _chart(root: Path, step: dict[str, Any]) -> dict[str, str]:
    argv = step["argv"]
    if step["remote"]:
        version = argv[argv.index("--version") + 1] if "--version" in argv else "0.0.0"
        return {"name": step["chart"], "version": version}
    chart_yaml = (root / step["chart"] / "Chart.yaml")
    meta = yaml.safe_load(chart_yaml.read_text(encoding="utf-8")) if chart_yaml.is_file() else {}
    return {"name": str(meta.get("name", step["release"])),
            "version": str(meta.get("version", "0.1.0"))}


def _secret_leaves(root: Path, step: dict[str, Any]) -> list[list[str]]:
    """Where the step's decrypted secrets land in the release's values (keys are clear in a
    sops file)."""
    paths = []
    for item in step["secrets"]:
        doc = yaml.load((root / item["file"]).read_text(encoding="utf-8"), LOADER) or {}
        node: Any = doc
        for part in re.findall(r'\["([^"]*)"\]', item["extract"]):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        stack: list[tuple[list[str], Any]] = [([], node)]
        while stack:
            path, value = stack.pop()
            if isinstance(value, dict) and value:
                stack += [([*path, k], v) for k, v in value.items() if path or k != "sops"]
            elif path:
                paths.append(path)
    return sorted(paths)


def rendered_release(root: Path, env: str, step: dict[str, Any]) -> tuple[list[Any], dict]:
    """The documents Helm would install for ``step`` (hooks apart, Secrets made from secrets
    with stand-in data) and the user-supplied values (values.yaml plus stand-in secrets)."""
    folder = root / "rendered" / env / step["release"]
    docs = []
    hooks = set(step.get("hooks", []))
    for path in sorted((folder / "manifests").glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), LOADER):
            if isinstance(doc, dict) and f"{doc.get('kind')}/{doc['metadata']['name']}" not in hooks:
                docs.append(doc)
    secrets = folder / "templates" / "secrets.yaml"
    if secrets.is_file():
        for name in re.findall(r"^kind: Secret\nmetadata:\n  name: (\S+)$",
                               secrets.read_text(encoding="utf-8"), re.MULTILINE):
            docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                         "data": {"value": "bm90LWEtcmVhbC1zZWNyZXQ="}})
    values = yaml.load((folder / "values.yaml").read_text(encoding="utf-8"), LOADER) or {}
    for path in _secret_leaves(root, step):
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = FAKE_SECRET
    return docs, values


def manifest_text(docs: list[Any]) -> str:
    return "".join("---\n" + yaml.dump(d, Dumper=DUMPER, sort_keys=False) for d in docs)


def record(env: str, step: dict[str, Any], chart: dict[str, str], revision: int, status: str,
           docs: list[Any], values: dict[str, Any], app_version: str = "") -> dict[str, Any]:
    return {"name": step["release"], "namespace": step["namespace"], "version": revision,
            "info": {"status": status, "first_deployed": DAY.format(1),
                     "last_deployed": DAY.format(min(revision, 28)),
                     "description": {"deployed": "Upgrade complete", "superseded":
                                     "Upgrade complete", "failed": "Upgrade failed: timed out "
                                     "waiting for the condition"}.get(status, status)},
            "chart": {"metadata": {"name": chart["name"], "version": chart["version"],
                                   "appVersion": app_version}, "values": {}},
            "config": values, "manifest": manifest_text(docs)}


def _image_tag(docs: list[Any]) -> str:
    for doc in docs:
        if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
            for c in doc["spec"]["template"]["spec"].get("containers", []):
                return str(c.get("image", "")).rpartition(":")[2]
    return ""


Edit = Callable[[list[Any], dict[str, Any]], None]


def drifted(docs: list[Any], values: dict[str, Any]) -> None:
    """Someone scaled the first workload by hand, added a ConfigMap, set a value."""
    for doc in docs:
        if doc.get("kind") in ("Deployment", "StatefulSet"):
            doc["spec"]["replicas"] = int(doc["spec"].get("replicas", 1)) + 2
            break
    docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "hand-made-debug"}, "data": {"LOG_LEVEL": "debug"}})
    values["debug"] = True


def older(tag: str) -> Edit:
    """The workloads' images at ``tag`` (an earlier revision)."""
    def edit(docs: list[Any], values: dict[str, Any]) -> None:
        for doc in docs:
            if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
                for c in doc["spec"]["template"]["spec"].get("containers", []):
                    c["image"] = str(c["image"]).rpartition(":")[0] + ":" + tag
    return edit


# (target, release) → revisions, oldest first: (status, edit or None); releases not listed are
# deployed once, in sync; None: never deployed. weather-agent is blue-green: its images run in
# the slot releases (weather-agent-blue is live), the router weather-agent has none.
SCENARIO: dict[tuple[str, str], list[tuple[str, Edit | None]] | None] = {
    ("development", "registry"): [("superseded", None), ("deployed", None)],
    ("development", "weather-agent-blue"): [("superseded", older("1.0.0")),
                                            ("superseded", older("1.1.0-dev.0")),
                                            ("deployed", None)],
    ("staging", "registry"): [("deployed", drifted)],
    ("staging", "analytics-agent"): [("superseded", None), ("failed", older("1.0.1"))],
    ("staging", "ingress"): None,
}


# The example's deployable targets: production deploys in two regions, each a cluster.
ENVIRONMENTS = ("development", "staging", "production/eu-west", "production/us-east",
                "production-dr")


def clusters(root: Path, envs: tuple[str, ...] = ENVIRONMENTS) -> dict[str, tuple[Any, ...]]:
    """Each target's cluster, as its committed plan says: (kube-context or None, namespaces)."""
    result = {}
    for env in envs:
        plan = _plan(root, env)
        result[env] = (plan.get("kubeContext"),
                       tuple(sorted({s["namespace"] for s in plan["steps"]})))
    return result


def example_records(root: Path, scenario: dict[Any, Any] | None = None,
                    envs: tuple[str, ...] = ENVIRONMENTS) -> dict[str, list[Any]]:
    """Records for every planned release of ``envs``, per target."""
    scenario = SCENARIO if scenario is None else scenario
    result: dict[str, list[Any]] = {}
    for env in envs:
        records = []
        for step in _plan(root, env)["steps"]:
            revisions = scenario.get((env, step["release"]), [("deployed", None)])
            if revisions is None:
                continue
            docs, values = rendered_release(root, env, step)
            chart = _chart(root, step)
            for number, (status, edit) in enumerate(revisions, 1):
                d, v = copy.deepcopy(docs), copy.deepcopy(values)
                if edit is not None:
                    edit(d, v)
                records.append(record(env, step, chart, number, status, d, v, _image_tag(d)))
        result[env] = records
    return result


def record_files(root: Path, out: Path, scenario: dict[Any, Any] | None = None,
                 envs: tuple[str, ...] = ENVIRONMENTS) -> dict[str, Path]:
    """Write one file per target under ``out`` (``out/production/eu-west.json`` for a region);
    return target → file."""
    files = {}
    for env, records in example_records(root, scenario, envs).items():
        path = out / f"{env}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        files[env] = path
    return files


def write_records(root: Path, out: Path, scenario: dict[Any, Any] | None = None,
                  envs: tuple[str, ...] = ENVIRONMENTS) -> str:
    """:func:`record_files`; return HELM_MEMORY_DRIVER_DATA's value (the files, ``:``-joined)."""
    return ":".join(str(p) for p in record_files(root, out, scenario, envs).values())


def write_helm(root: Path, out: Path, helm: str, files: dict[str, Path]) -> Path:
    """Write ``out/helm``: ``helm`` on the memory driver with the records of the targets whose
    plan has the kube-context it is given (``--kube-context C``; none: those without one)."""
    by_context: dict[str, list[str]] = {}
    for env, (context, _) in clusters(root, tuple(files)).items():
        by_context.setdefault(context or "", []).append(str(files[env]))
    cases = "".join(f"  {shlex.quote(c)}) data={shlex.quote(':'.join(f))} ;;\n"
                    for c, f in sorted(by_context.items()))
    path = out / "helm"
    path.write_text(f"""#!/bin/sh
# helm on Helm's memory driver: one cluster per kube-context (tests/helm_records.py)
context='' previous=''
for arg in "$@"; do
  [ "$previous" = --kube-context ] && context=$arg
  previous=$arg
done
data={shlex.quote(str(out / "none.json"))}
case "$context" in
{cases}esac
HELM_DRIVER=memory HELM_MEMORY_DRIVER_DATA=$data exec {shlex.quote(helm)} "$@"
""", encoding="utf-8")
    path.chmod(0o755)
    (out / "none.json").write_text("[]\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    ROOT, OUT = Path(__file__).resolve().parent.parent, Path(sys.argv[1]).resolve()
    HELM = shutil.which(os.environ.get("MESHC_HELM") or "helm") or "helm"
    if Path(HELM).resolve() == OUT / "helm":   # run again after its own export
        HELM = shutil.which("helm") or "helm"
    FILES = record_files(ROOT, OUT)
    print(f"export MESHC_HELM={shlex.quote(str(write_helm(ROOT, OUT, HELM, FILES)))}")
