"""Render stage: a local chart's templates + a release's values → sorted, validated manifests.

Each ``*.yaml.j2`` template renders zero or more YAML documents. Every document must be a
Kubernetes object (apiVersion, kind, metadata.name); a missing namespace defaults to the
release's. Patches from the meshfile apply next (RFC 6902). Each resource becomes one file,
``<kind>-<name>.yaml``, qualified by API group or namespace only where needed to stay unique.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from ..core.diagnostics import CompileError, Diagnostics
from ..core.source import Span
from ..model.model import Patch, Release
from ..syntax.yamlsrc import dump_yaml, load_documents
from ..values.values import ValueSet
from .templating import Templates

HOOK = "helm.sh/hook"  # the annotation that makes a resource a Helm hook
RESOURCE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
API_VERSION = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[a-z0-9]{1,63}")
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "StorageClass", "PriorityClass", "IngressClass", "RuntimeClass",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
    "CSIDriver", "CSINode", "VolumeAttachment", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ClusterIssuer", "FlowSchema",
    "PriorityLevelConfiguration",
})


@dataclass(frozen=True, slots=True)
class Manifest:
    """One rendered Kubernetes resource and the file it is written to."""

    filename: str
    api_version: str
    kind: str
    name: str
    namespace: str | None
    template: str
    text: str
    hook: str | None = None   # its `helm.sh/hook` annotation: Helm runs it as a hook

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""


@dataclass(frozen=True, slots=True)
class _Doc:
    data: dict[str, Any]
    template: str


def render_release(release: Release, context: dict[str, Any], templates: Templates,
                   namespace: str, env: str) -> tuple[Manifest, ...]:
    """Render one local-chart release in environment ``env``. Raises :class:`CompileError`
    with every problem found."""
    diags = Diagnostics()
    outputs: list[tuple[str, str]] = []
    for template in release.chart.templates:
        try:
            outputs.append((template, templates.render_file(template, context)))
        except CompileError as exc:
            diags.absorb(exc)
    return manifests_of(release, outputs, namespace, env, diags)


def manifests_of(release: Release, outputs: list[tuple[str, str]], namespace: str, env: str,
                 diags: Diagnostics | None = None) -> tuple[Manifest, ...]:
    """The manifests of a release from what its templates rendered, as (template, YAML text)
    pairs (a Jinja chart's templates, or ``helm template``'s documents by ``# Source``): one
    resource per file, defaulted namespaces, the meshfile's patches applied, files named.
    Raises :class:`CompileError` with every problem found (and those already in ``diags``)."""
    diags = diags if diags is not None else Diagnostics()
    docs: list[_Doc] = []
    for template, text in outputs:
        label = f"{template} (rendered for {release.name} in {env})"
        docs.extend(_documents(text, template, label, namespace, diags))
    diags.raise_if_errors()
    docs = _apply_patches(docs, release.patches, diags)
    manifests = _name_files(docs, diags)
    diags.raise_if_errors()
    return manifests


def _documents(text: str, template: str, label: str, namespace: str,
               diags: Diagnostics) -> list[_Doc]:
    """The documents ``template`` rendered (as ``text``); YAML errors point into the rendered
    text, which becomes a diagnostics source under ``label``."""
    try:
        loaded = load_documents(text, label)
    except CompileError as exc:
        diags.sources[label] = text
        for diag in exc.diagnostics:
            diags.error(f"template {template} rendered invalid YAML: "
                        f"{diag.message.removeprefix('invalid YAML: ')}", diag.span,
                        help="check the indentation of inserted blocks (`| nindent(n)`) and "
                             "quote values that contain ': ' (`| quote`)")
        return []
    result = []
    for index, doc in enumerate(loaded):
        problem = _object_problem(doc)
        if problem:
            diags.error(f"document {index + 1} rendered by {template} {problem}",
                        Span(template, 1, 1))
            continue
        metadata = doc["metadata"]
        if doc["kind"] not in CLUSTER_SCOPED and not metadata.get("namespace"):
            metadata["namespace"] = namespace
        result.append(_Doc(doc, template))
    return result


def _object_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "is not a map"
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            return f"has no '{key}'"
    if not KIND.fullmatch(doc["kind"]):  # it names files: no '/', '..', spaces
        return f"has an invalid kind {doc['kind']!r} (letters and digits, e.g. ConfigMap)"
    if not API_VERSION.fullmatch(doc["apiVersion"]):
        return f"has an invalid apiVersion {doc['apiVersion']!r} (e.g. v1, apps/v1)"
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return "has no 'metadata.name'"
    name = metadata["name"]
    if not RESOURCE_NAME.fullmatch(name) or len(name) > 253:
        return f"has an invalid name '{name}' (lowercase DNS-1123 subdomain expected)"
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not RESOURCE_NAME.fullmatch(namespace)):
        return f"has an invalid namespace {namespace!r}"
    return None


def _matches(doc: dict[str, Any], target: tuple[tuple[str, str], ...]) -> bool:
    meta = doc["metadata"]
    api = doc["apiVersion"]
    group, _, version = api.rpartition("/")
    actual = {"kind": doc["kind"], "name": meta["name"], "namespace": meta.get("namespace", ""),
              "apiVersion": api, "group": group, "version": version}
    return all(actual[key] == expected for key, expected in target)


def _apply_patches(docs: list[_Doc], patches: tuple[Patch, ...], diags: Diagnostics) -> list[_Doc]:
    for patch in patches:
        hits = [i for i, doc in enumerate(docs) if _matches(doc.data, patch.target)]
        if not hits:
            names = ", ".join(sorted(f"{d.data['kind']}/{d.data['metadata']['name']}" for d in docs))
            diags.error("patch target matches no rendered resource", patch.span,
                        notes=(f"resources: {names}",))
            continue
        for i in hits:
            try:
                patched = jsonpatch.apply_patch(docs[i].data, list(patch.ops))
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
                    TypeError, ValueError) as exc:
                diags.error(f"patch failed on {docs[i].data['kind']}/"
                            f"{docs[i].data['metadata']['name']}: {exc}", patch.span)
                continue
            if _object_problem(patched):
                diags.error(f"patch leaves {docs[i].data['kind']} without a valid "
                            f"apiVersion/kind/metadata.name", patch.span)
                continue
            docs[i] = _Doc(patched, docs[i].template)
    return docs


def _name_files(docs: list[_Doc], diags: Diagnostics) -> tuple[Manifest, ...]:
    by_base: dict[str, list[_Doc]] = defaultdict(list)
    for doc in docs:
        by_base[f"{doc.data['kind'].lower()}-{doc.data['metadata']['name']}"].append(doc)
    manifests = []
    for base, group in by_base.items():
        for doc in group:
            filename = _qualified(base, doc, group) + ".yaml"
            manifests.append(_manifest(doc, filename))
    names: dict[str, Manifest] = {}
    for manifest in manifests:
        if manifest.filename in names:
            first = names[manifest.filename]
            diags.error(f"two resources are both {manifest.kind}/{manifest.name}"
                        + (f" in namespace {manifest.namespace}" if manifest.namespace else ""),
                        Span(manifest.template, 1, 1), notes=(f"the other is from {first.template}",))
        names[manifest.filename] = manifest
    return tuple(sorted(manifests, key=lambda m: m.filename))


def _qualified(base: str, doc: _Doc, group: list[_Doc]) -> str:
    if len(group) == 1:
        return base
    kind = doc.data["kind"].lower()
    name = doc.data["metadata"]["name"]
    api_group = doc.data["apiVersion"].rpartition("/")[0]
    groups = {d.data["apiVersion"].rpartition("/")[0] for d in group}
    if len(groups) > 1:
        kind = f"{kind}.{api_group}" if api_group else kind
    namespaces = {d.data["metadata"].get("namespace") for d in group}
    if len(namespaces) > 1:
        return f"{kind}-{doc.data['metadata'].get('namespace') or '_cluster'}-{name}"
    return f"{kind}-{name}"


def _manifest(doc: _Doc, filename: str) -> Manifest:
    data = doc.data
    annotations = data["metadata"].get("annotations")
    hook = annotations.get(HOOK) if isinstance(annotations, dict) else None
    return Manifest(filename, data["apiVersion"], data["kind"], data["metadata"]["name"],
                    data["metadata"].get("namespace"), doc.template, dump_yaml(data),
                    hook if isinstance(hook, str) else None)


def release_context(values: ValueSet, env: dict[str, Any], release: dict[str, Any]) -> dict[str, Any]:
    """What a chart template sees: values, global, features, env, release."""
    return {"values": values.values, "global": values.values.get("global", {}),
            "features": values.values.get("features", {}), "env": env, "release": release}
