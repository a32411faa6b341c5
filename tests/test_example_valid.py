"""The rendered example is valid Kubernetes, and its wrapper charts are meshc's.

What Helm makes of those charts (``helm lint --strict``, and that ``helm template`` yields
exactly the reviewed manifests and the promised Secrets) is judged by the real Helm 4 in
tests/test_helm_judge_charts.py, for the example and the golden projects.

Uses the session fixture ``rendered_example`` (tests/conftest.py): the Path of a freshly
rendered tree of the example, laid out as ``<env>/<release>/{values.yaml, Chart.yaml,
templates/manifests.yaml, manifests/*.yaml}`` (remote-chart releases: values.yaml only).
"""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import yaml

from compiler.render import wrapper_chart


class _HelmLikeLoader(yaml.SafeLoader):
    """PyYAML read the way Kubernetes reads manifests (Go's YAML 1.1 resolver).

    Timestamps stay strings and y/Y/n/N are booleans too, so an unquoted value that the
    cluster would see as a bool or a string is checked as such against the schema.
    """


_HelmLikeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "yYnN":
    _HelmLikeLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$")))
_HelmLikeLoader.add_constructor(
    "tag:yaml.org,2002:bool",
    lambda loader, node: loader.construct_scalar(node) in
    ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"))


def load_documents(text: str) -> list:
    return [doc for doc in yaml.load_all(text, Loader=_HelmLikeLoader) if doc is not None]


def manifest_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*/manifests/*.yaml"))


def wrapper_charts(root: Path) -> list[Path]:
    return sorted(chart.parent for chart in root.glob("*/*/Chart.yaml"))


def _builtin_api_groups() -> set[str]:
    """First labels of the API groups Kubernetes has (had) schemas for, in any version."""
    schemas = kubernetes_validate.utils.importlib_resources.files("kubernetes_validate")
    groups = set()
    for directory in schemas.joinpath("kubernetes-json-schema").iterdir():
        if not directory.name.endswith("-strict"):
            continue
        for entry in directory.iterdir():
            parts = entry.name.removesuffix(".json").split("-")  # kind[-group]-version
            if len(parts) >= 3 and not entry.name.startswith("_"):
                groups.add("-".join(parts[1:-1]))
    return groups


def is_builtin_api(api_version: str, builtin_groups: set[str]) -> bool:
    """Whether apiVersion belongs to Kubernetes itself (then a missing schema is an error).

    Custom resources (ServiceMonitor, PrometheusRule, Gateway API...) need a group with a
    dot (the API server requires it of CRDs); groups without one (core, apps, extensions...)
    are Kubernetes', and so are the *.k8s.io groups Kubernetes has schemas for.
    """
    group = api_version.rpartition("/")[0]
    if "." not in group:
        return True
    return group.endswith(".k8s.io") and group.split(".")[0] in builtin_groups


def test_every_manifest_is_valid_kubernetes(rendered_example):
    files = manifest_files(rendered_example)
    assert files, f"no manifests under {rendered_example}"
    version = kubernetes_validate.latest_version()
    builtin_groups = _builtin_api_groups()
    problems, unchecked = [], []
    validated = 0
    for path in files:
        where = path.relative_to(rendered_example)
        try:
            docs = load_documents(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            problems.append(f"{where}: not YAML: {error}")
            continue
        if len(docs) != 1:
            problems.append(f"{where}: {len(docs)} YAML documents, expected exactly one")
            continue
        doc = docs[0]
        if not isinstance(doc, dict) or not all(
                isinstance(doc.get(key), str) and doc[key] for key in ("apiVersion", "kind")) \
                or not isinstance(doc.get("metadata"), dict) \
                or not isinstance(doc["metadata"].get("name"), str) \
                or not doc["metadata"]["name"]:
            problems.append(f"{where}: apiVersion, kind and metadata.name are required")
            continue
        what = f"{doc['apiVersion']} {doc['kind']} {doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            validated += 1
        except kubernetes_validate.ValidationError as error:
            at = "/".join(str(part) for part in error.absolute_path) or "(top)"
            problems.append(f"{where}: {what}: {at}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            if is_builtin_api(doc["apiVersion"], builtin_groups):
                problems.append(f"{where}: {what}: Kubernetes {version} has no such API "
                                "(removed or misspelled apiVersion/kind)")
            else:
                unchecked.append(f"{where}: {what}")
    print(f"{validated} manifests valid against Kubernetes {version} (strict schemas); "
          f"{len(unchecked)} custom resources checked for apiVersion/kind/metadata.name only:")
    for line in unchecked:
        print(f"  unchecked: {line}")
    assert not problems, "invalid manifests:\n" + "\n".join(problems)


def test_every_wrapper_chart_is_meshcs(rendered_example):
    """Each rendered local release is a wrapper chart written from compiler/render/wrapper_chart.py."""
    releases = sorted({path.parent.parent for path in manifest_files(rendered_example)}
                      | set(wrapper_charts(rendered_example)))
    assert releases, f"no wrapper charts under {rendered_example}"
    helm_charts = _helm_chart_releases()
    assert helm_charts  # the example's remote charts
    for release in releases:
        where = release.relative_to(rendered_example)
        if release.name in helm_charts:  # installed as itself: the review copy only
            assert sorted(p.name for p in release.iterdir()) == ["manifests", "values.yaml"], \
                where
            continue
        assert (release / "Chart.yaml").read_text() == wrapper_chart.chart_yaml(release.name), \
            where
        templates = sorted(p.name for p in (release / "templates").iterdir())
        secrets = Path(wrapper_chart.SECRETS_TEMPLATE_PATH).name
        assert [t for t in templates if t != secrets] == [Path(wrapper_chart.TEMPLATE_PATH).name], \
            where
        if secrets in templates:  # meshc's Secrets template: regenerated from its own parse
            text = (release / wrapper_chart.SECRETS_TEMPLATE_PATH).read_text()
            assert text == wrapper_chart.secrets_template(
                release.name, _secrets_namespace(text), secret_objects(text)), where
        assert (release / wrapper_chart.TEMPLATE_PATH).read_text() == \
            wrapper_chart.manifests_template(), where
        assert (release / "values.yaml").is_file(), where
        assert (release / "manifests").is_dir(), where


def _helm_chart_releases() -> set[str]:
    """The example's releases whose chart is a Helm chart (local folder or remote)."""
    from conftest import ROOT

    from compiler.core.files import ProjectFiles
    from compiler.pipeline import load_project

    project = load_project(ProjectFiles(ROOT)).project
    return {r.name for r in project.releases if r.chart.is_helm}


_SECRET_BLOCK = re.compile(r"  name: (\S+)\n.*?dig ((?:\"[^\"]*\" )+)dict \.Values\.AsMap }}\n"
                           r"\{\{- range \$k := list ((?:\"[^\"]*\" ?)+) }}", re.DOTALL)


def secret_objects(text: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(name, path, keys) of every Secret of a generated templates/secrets.yaml."""
    return [(name, tuple(re.findall(r'"([^"]*)"', path)), tuple(re.findall(r'"([^"]*)"', keys)))
            for name, path, keys in _SECRET_BLOCK.findall(text)]


def _secrets_namespace(text: str) -> str:
    return re.search(r"\n  namespace: (\S+)\n", text).group(1)
