"""Kubernetes schemas: every rendered manifest against the strict OpenAPI schemas of the
environment's ``kubeVersion`` (default: the newest ``kubernetes-validate`` ships), offline.

Uses the schema files of the ``kubernetes-validate`` package directly, with one validator per
(version, kind) for the run, and reports every schema error of a resource (not only the first),
each at the template line that rendered the offending field. Custom resources (API groups with a
dot that Kubernetes itself has no schema for) are checked for apiVersion/kind/metadata.name by the
render stage and listed as unchecked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from referencing import Registry
from referencing import Resource as SchemaResource

from ..model.model import Environment
from .context import CheckContext, Finding, Resource
from .locate import dotted

RULE = "kubernetes-schema"
_API_PREFIX = re.compile(r"^([^./]*)(?:\.[^/]*)?/")  # networking.k8s.io/v1 -> networking-v1


class SchemaStore:
    """The schema files of kubernetes-validate, loaded on first use (per run)."""

    def __init__(self) -> None:
        import importlib.resources

        self.root = importlib.resources.files("kubernetes_validate").joinpath(
            "kubernetes-json-schema")
        self.versions = sorted((_version_of(p.name) for p in self.root.iterdir()
                                if p.name.endswith("-local-strict")), key=_numbers)
        self._registries: dict[str, Registry] = {}
        self._validators: dict[tuple[str, str], Any] = {}
        self._builtin_groups: set[str] | None = None

    @property
    def newest(self) -> str:
        return _major_minor(self.versions[-1])

    def folder_for(self, wanted: str) -> str | None:
        """The schema version to use for Kubernetes ``wanted`` (MAJOR.MINOR): the newest
        known that is not newer; None when ``wanted`` is outside what the package knows."""
        target = _numbers(_major_minor(wanted))
        usable = [v for v in self.versions if _numbers(_major_minor(v)) <= target]
        if not usable or target > _numbers(self.newest):
            return None
        return usable[-1]

    def validator(self, version: str, api_version: str, kind: str) -> Any | None:
        """A validator for (kind, apiVersion) in schema ``version``; None if none exists."""
        group_version = _API_PREFIX.sub(r"\1-", api_version)  # apps/v1 -> apps-v1
        name = f"{kind.lower()}-{group_version}.json"
        key = (version, name)
        if key not in self._validators:
            folder = self.root.joinpath(f"v{version}-local-strict")
            schema_file = folder.joinpath(name)
            if "/" in name or not schema_file.is_file():
                self._validators[key] = None
            else:
                schema = json.loads(schema_file.read_text())
                registry = SchemaResource.from_contents(schema) @ self._registry(version)
                self._validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self._validators[key]

    def _registry(self, version: str) -> Registry:
        if version not in self._registries:
            folder = self.root.joinpath(f"v{version}-local-strict")
            definitions = json.loads(folder.joinpath("_definitions.json").read_text())
            self._registries[version] = SchemaResource.from_contents(definitions) @ Registry()
        return self._registries[version]

    def is_builtin(self, api_version: str) -> bool:
        """Whether apiVersion belongs to Kubernetes itself (a missing schema is then an error):
        groups without a dot, and the *.k8s.io groups Kubernetes has schemas for."""
        group = api_version.rpartition("/")[0]
        if "." not in group:
            return True
        if not group.endswith(".k8s.io"):
            return False
        if self._builtin_groups is None:
            self._builtin_groups = set()
            for folder in self.root.iterdir():
                if folder.name.endswith("-local-strict"):
                    for entry in folder.iterdir():
                        parts = entry.name.removesuffix(".json").split("-")
                        if len(parts) >= 3 and not entry.name.startswith("_"):
                            self._builtin_groups.add("-".join(parts[1:-1]))
        return group.split(".")[0] in self._builtin_groups


def _version_of(folder: str) -> str:
    return folder.removeprefix("v").split("-", 1)[0]


def _numbers(version: str) -> tuple[int, ...]:
    """``1.31.0`` → (1, 31, 0): versions compared as numbers (``1.9 < 1.31``)."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _major_minor(version: str) -> str:
    match = re.match(r"v?(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else version


def check_schemas(ctx: CheckContext) -> Iterator[Finding]:
    """Validate every rendered resource of the checked environments."""
    store = SchemaStore()
    for env in ctx.environments:
        if not ctx.enabled(RULE, env):
            continue
        version = _environment_version(ctx, env, store)
        if isinstance(version, Finding):
            yield version
            continue
        ctx.kube_versions[env.name] = _major_minor(version)
        for resource in ctx.resources(env):
            yield from _validate(ctx, store, version, resource)


def _environment_version(ctx: CheckContext, env: Environment,
                         store: SchemaStore) -> str | Finding:
    if env.kube_version is None:
        return store.versions[-1]
    folder = store.folder_for(env.kube_version.value)
    if folder is not None:
        return folder
    finding = ctx.finding(
        RULE, env, f"no Kubernetes schemas for kubeVersion {env.kube_version.value}",
        env.kube_version.span,
        help=f"kubernetes-validate knows {_major_minor(store.versions[0])} to {store.newest}")
    assert finding is not None
    return finding


def _validate(ctx: CheckContext, store: SchemaStore, version: str,
              resource: Resource) -> Iterator[Finding]:
    data = resource.data
    validator = store.validator(version, data["apiVersion"], data["kind"])
    where = f"{resource.ref} ({resource.release})"
    if validator is None:
        if store.is_builtin(data["apiVersion"]):
            location = ctx.locator.field(resource, ("apiVersion",))
            finding = ctx.finding(
                RULE, resource.env, f"{where}: Kubernetes {_major_minor(version)} has no "
                f"{data['kind']} in {data['apiVersion']}", location.span,
                help="a removed or misspelled apiVersion/kind", notes=location.notes)
            if finding is not None:
                yield finding
        else:
            envs = ctx.unchecked.setdefault(f"{data['apiVersion']} {resource.ref}", [])
            if resource.env.name not in envs:
                envs.append(resource.env.name)
        return
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        for path, message in _explain(error):
            location = ctx.locator.field(resource, path)
            finding = ctx.finding(
                RULE, resource.env, f"{where}: {dotted(path) or '(top level)'}: {message}",
                location.span, notes=(*location.notes,
                                      f"schema: Kubernetes {_major_minor(version)}, strict"))
            if finding is not None:
                yield finding


def _explain(error: jsonschema.ValidationError) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, message) pairs for one schema error; unknown fields each at their own key."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties", {}))
        extras = sorted(k for k in error.instance if k not in known)
        for extra in extras:
            hint = _closest(extra, known)
            yield (*path, extra), f"unknown field '{extra}'" + (f" (did you mean '{hint}'?)"
                                                                  if hint else "")
        if extras:
            return
    yield path, _short(error)


def _closest(name: str, known: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _short(error: jsonschema.ValidationError) -> str:
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(t for t in expected if t != "null") if isinstance(
            expected, list) else expected
        return f"{_brief(error.instance)} is not of type {expected}"
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    if error.validator == "enum":
        return f"{_brief(error.instance)} is not one of " + ", ".join(
            repr(v) for v in error.validator_value if v is not None)
    message = str(error.message)
    return message if len(message) < 200 else message[:197] + "..."


def _brief(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

