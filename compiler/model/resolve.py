"""Resolve stage: :class:`Spec` → :class:`Project`.

Applies environment inheritance (root first), checks every cross-reference (environments,
aliases, releases, files), locates charts and loads every values file exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from ..core.diagnostics import CompileError, Diagnostics, did_you_mean
from ..core.files import OutsideProject, ProjectFiles
from ..core.source import Span
from ..syntax.jsondoc import load_json_doc
from ..syntax.yamlsrc import Path, ValuesDoc, load_values_doc
from .fields import DEFAULT_HELM_MAJOR, RELEASE_NAME_MAX
from .model import (
    SLOTS,
    Chart,
    CostSettings,
    Environment,
    EnvironmentSpec,
    HelmOptions,
    HelmVersion,
    InlineValues,
    Project,
    Ref,
    RegionSpec,
    Release,
    ReleaseSpec,
    SecretsFile,
    Slot,
    Spec,
    Text,
)

TEMPLATE_SUFFIX = ".yaml.j2"
SCHEMA_FILE = "values.schema.json"  # a chart's values schema, as Helm names it
HELM_CHART_FILE = "Chart.yaml"      # a folder holding it is a Helm chart


class ParsedValues(Protocol):
    """A store of values files already parsed, by content (``compiler.output.cache`` has
    one that lasts between runs): ``load`` answers like :func:`load_values_doc`."""

    def prefetch(self, files: ProjectFiles, refs: Iterable[str]) -> None:
        """Parse ahead, possibly in parallel, the files ``refs`` names."""

    def load(self, path: str, text: str) -> ValuesDoc:
        """The values document of ``text``, read from ``path``."""


def resolve_project(spec: Spec, files: ProjectFiles, diags: Diagnostics | None = None,
                    parsed: ParsedValues | None = None) -> Project:
    """Flatten environments and type releases (values files parsed through ``parsed``, a
    cache of parsed files, when given).

    Problems go to ``diags`` when given (the caller raises once it has collected everything);
    without it, raises :class:`CompileError` with all problems.
    """
    resolver = _Resolver(spec, files, diags if diags is not None else Diagnostics(), parsed)
    environments = resolver.environments()
    releases = tuple(found for r in spec.releases for found in resolver.releases_of(r))
    resolver.check_features()
    resolver.check_version_keys()
    if diags is None:
        resolver.diags.raise_if_errors()
    return Project(spec.file, spec.project, spec.output.value, spec.defaults, environments,
                   releases, spec.features, files.texts, policies=spec.policies)


def version_keys(texts: Iterable[Text] | None, default: tuple[Path, ...]) -> tuple[Path, ...]:
    """``versionKeys:`` entries as paths (``image.tag`` → ("image", "tag")); ``default`` when
    not set."""
    return default if texts is None else tuple(parse_values_key(t.value) for t in texts)


class _Resolver:
    def __init__(self, spec: Spec, files: ProjectFiles, diags: Diagnostics,
                 parsed: ParsedValues | None = None) -> None:
        self.parsed = parsed
        self.spec = spec
        self.files = files
        self.diags = diags
        self.docs: dict[str, ValuesDoc] = {}
        self.charts: dict[str, Chart] = {}
        self.by_name = {env.name: env for env in spec.environments}
        self.names = self.environment_names()

    # --- environments ---------------------------------------------------------------------

    def environment_names(self) -> dict[str, str]:
        """Every name and alias → the environment's name; reports clashes."""
        names = {env.name: env.name for env in self.spec.environments}
        for env in self.spec.environments:
            for alias in env.aliases:
                if alias.name in names:
                    self.diags.error(f"alias '{alias.name}' of environment '{env.name}' is already "
                                     f"the name or alias of '{names[alias.name]}'", alias.span)
                else:
                    names[alias.name] = env.name
        return names

    def lookup(self, ref: Ref, what: str) -> str | None:
        if ref.name in self.names:
            return self.names[ref.name]
        self.diags.error(f"{what} unknown environment '{ref.name}'", ref.span,
                         did_you_mean(ref.name, self.names) or
                         f"environments: {', '.join(sorted(self.by_name))}")
        return None

    def chain(self, env: EnvironmentSpec) -> tuple[str, ...] | None:
        """Ancestors root first, then ``env``; None (and an error) on a cycle or unknown parent."""
        chain = [env.name]
        current = env
        while current.inherits is not None:
            parent = self.lookup(current.inherits, f"environment '{current.name}' inherits")
            if parent is None:
                return None
            if parent in chain:
                members = chain[chain.index(parent):]
                cycle = " -> ".join([current.name, *members[:-1], current.name]) if len(members) > 1 \
                    else f"{current.name} -> {current.name}"
                if env.name == min(members):  # report each cycle once
                    self.diags.error(f"environments inherit in a cycle: {cycle}",
                                     current.inherits.span)
                return None
            chain.append(parent)
            current = self.by_name[parent]
        return tuple(reversed(chain))

    def environments(self) -> tuple[Environment, ...]:
        result = []
        for spec in self.spec.environments:
            chain = self.chain(spec)
            if chain is None:
                continue
            env = self.flatten(spec, [self.by_name[n] for n in chain], chain)
            regions = tuple(self.region(env, region) for region in spec.regions)
            stages = self.stages(spec, regions)
            result.append(replace(env, stages=stages) if stages else env)
            result.extend(regions)
        self.check_promotion(result)
        if self.spec.environments and all(env.abstract for env in self.spec.environments):
            self.diags.error("the meshfile has no deployable environment",
                             self.spec.environments[0].span, "every environment is abstract")
        return tuple(result)

    def flatten(self, spec: EnvironmentSpec, layers: list[EnvironmentSpec],
                chain: tuple[str, ...]) -> Environment:
        defaults = self.spec.defaults
        helm = defaults.helm
        namespace, kube_context, labels = defaults.namespace, defaults.kube_context, dict(defaults.labels)
        protected = False
        kube_version = None
        api_versions: set[str] = set()
        values: list[ValuesDoc] = []
        secrets: list[Text] = []
        sops_age: tuple[Text, ...] = ()
        secret_files: list[SecretsFile] = []
        chart_versions: dict[str, str] = {}
        helm_version = self.spec.helm_version or HelmVersion(DEFAULT_HELM_MAJOR)
        argocd_cluster: Text | None = None
        cost = CostSettings()
        for layer in layers:
            cost = layer.cost.over(cost)
            helm = layer.helm.over(helm)
            namespace = layer.namespace or namespace
            kube_context = layer.kube_context or kube_context
            argocd_cluster = layer.argocd_cluster or argocd_cluster
            labels.update(layer.labels)
            protected = layer.protected if layer.protected is not None else protected
            kube_version = layer.kube_version or kube_version
            api_versions.update(text.value for text in layer.api_versions)
            values.extend(self.values_files(layer.values))
            own = self.existing(layer.secrets, "secrets file")
            secrets.extend(own)
            sops_age = layer.sops_age if layer.sops_age is not None else sops_age
            helm_version = layer.helm_version or helm_version
            secret_files.extend(SecretsFile(t.value, t.span, layer.name, sops_age) for t in own)
            chart_versions.update(self.chart_versions(layer) if layer is spec else
                                  {ref.name: text.value for ref, text in layer.chart_versions})
        promotes = (self.lookup(spec.promotes_from, f"environment '{spec.name}' promotes from")
                    if spec.promotes_from else None)
        return Environment(
            name=spec.name, span=spec.span, abstract=spec.abstract, chain=chain,
            aliases=tuple(a.name for a in spec.aliases), values=tuple(values),
            secrets=tuple(secrets), helm=helm, namespace=namespace,
            kube_context=kube_context.value if kube_context else None,
            labels=tuple(sorted(labels.items())), promotes_from=promotes, protected=protected,
            description=spec.description, kube_version=kube_version,
            api_versions=tuple(sorted(api_versions)),
            policies=tuple(setting for layer in layers for setting in layer.policies),
            sops_age=sops_age, secret_files=tuple(secret_files),
            chart_versions=tuple(sorted(chart_versions.items())), helm_version=helm_version,
            argocd_cluster=argocd_cluster.value if argocd_cluster else None, cost=cost)

    def region(self, env: Environment, spec: RegionSpec) -> Environment:
        """Region ``spec`` of ``env``: everything of ``env``, then the region's own settings;
        its values and secrets files come after the environment's chain."""
        secrets = self.existing(spec.secrets, "secrets file")
        labels = dict(env.labels) | dict(spec.labels)
        return replace(
            env, name=f"{env.name}/{spec.name}", span=spec.span,
            aliases=tuple(f"{alias}/{spec.name}" for alias in env.aliases),
            values=(*env.values, *self.values_files(spec.values)),
            secrets=(*env.secrets, *secrets), helm=spec.helm.over(env.helm),
            namespace=spec.namespace or env.namespace,
            kube_context=spec.kube_context.value if spec.kube_context else env.kube_context,
            labels=tuple(sorted(labels.items())),
            description=spec.description or env.description,
            kube_version=spec.kube_version or env.kube_version,
            secret_files=(*env.secret_files, *(SecretsFile(t.value, t.span, env.name, env.sops_age)
                                               for t in secrets)),
            region=spec.name, group=env.name, stages=())

    def stages(self, spec: EnvironmentSpec,
               regions: tuple[Environment, ...]) -> tuple[tuple[str, ...], ...]:
        """The rollout of ``spec``'s regions (names ENV/REGION), checked: every region in
        exactly one stage; by default one region at a time, as listed."""
        names = [r.region for r in regions if r.region is not None]
        if spec.regions and spec.abstract:
            self.diags.error(f"abstract environment '{spec.name}' has regions, which are not "
                             "inherited", spec.regions[0].span,
                             "give the regions to the environments that deploy")
        if spec.rollout is None:
            return tuple((f"{spec.name}/{name}",) for name in names)
        if not spec.regions:
            self.diags.error(f"environment '{spec.name}' has a rollout but no regions",
                             spec.rollout_span or spec.span,
                             "add regions: {NAME: {kubeContext: …}}, or remove the rollout")
            return ()
        seen: dict[str, Ref] = {}
        stages = []
        for stage in spec.rollout:
            found = []
            for ref in stage:
                if ref.name not in names:
                    self.diags.error(f"rollout of environment '{spec.name}' names unknown region "
                                     f"'{ref.name}'", ref.span,
                                     did_you_mean(ref.name, names) or
                                     f"regions: {', '.join(names)}")
                elif ref.name in seen:
                    self.diags.error(f"region '{ref.name}' is listed twice in the rollout of "
                                     f"environment '{spec.name}'", ref.span,
                                     "a region is deployed in one stage",
                                     related=(("listed first here", seen[ref.name].span),))
                else:
                    seen[ref.name] = ref
                    found.append(f"{spec.name}/{ref.name}")
            if found:
                stages.append(tuple(found))
        for region in spec.regions:
            if region.name not in seen:
                self.diags.error(f"region '{region.name}' of environment '{spec.name}' is in no "
                                 "stage of its rollout", spec.rollout_span or region.span,
                                 f"add it to a stage, e.g. [{region.name}]")
        return tuple(stages)

    def chart_versions(self, spec: EnvironmentSpec) -> dict[str, str]:
        """An environment's own ``chartVersions:``, checked: remote releases only."""
        releases = {r.name: r for r in self.spec.releases}
        result = {}
        for ref, text in spec.chart_versions:
            release = releases.get(ref.name)
            if release is None:
                self.diags.error(f"chartVersions of environment '{spec.name}' names unknown "
                                 f"release '{ref.name}'", ref.span,
                                 did_you_mean(ref.name, releases) or
                                 f"releases: {', '.join(releases)}")
            elif self.files.is_dir(release.chart.value):
                self.diags.error(f"chartVersions of environment '{spec.name}': release "
                                 f"'{ref.name}' has a local chart, which has no version",
                                 ref.span, "only remote charts (repo + version) have versions")
            else:
                result[ref.name] = text.value
        return result

    def check_promotion(self, environments: list[Environment]) -> None:
        by_name = {env.name: env for env in environments}
        for env in environments:
            if env.group is not None:
                continue  # a region promotes as its environment does
            spec = self.by_name[env.name]
            if env.promotes_from is None or spec.promotes_from is None:
                continue
            source = by_name.get(env.promotes_from)
            if env.promotes_from == env.name:
                self.diags.error(f"environment '{env.name}' promotes from itself",
                                 spec.promotes_from.span)
            elif source is not None and source.abstract:
                self.diags.error(f"environment '{env.name}' promotes from abstract environment "
                                 f"'{source.name}'", spec.promotes_from.span)
            seen = [env.name]
            current = source
            while current is not None and current.promotes_from is not None:
                if current.name in seen:
                    if env.name == min(seen):
                        self.diags.error("promotion order has a cycle: "
                                         + " <- ".join([*seen, current.name]),
                                         spec.promotes_from.span)
                    break
                seen.append(current.name)
                current = by_name.get(current.promotes_from)

    # --- files ----------------------------------------------------------------------------

    def read(self, ref: Text, what: str) -> tuple[str, str] | None:
        """(normalised path, text) of a file the meshfile names, or None with an error."""
        try:
            path = self.files.normalize(ref.value)
            return path, self.files.read(path)
        except OutsideProject as exc:
            self.diags.error(f"{what} {exc}", ref.span)
        except FileNotFoundError:
            self.diags.error(f"{what} '{ref.value}' does not exist", ref.span)
        except IsADirectoryError:
            self.diags.error(f"{what} '{ref.value}' is a directory, not a file", ref.span)
        except UnicodeDecodeError as exc:
            line = getattr(exc, "line", None)  # files.NotUTF8: at the bad byte
            if line is None:
                self.diags.error(f"{what} '{ref.value}' is not UTF-8 text", ref.span)
            else:
                self.diags.error(f"{what} '{ref.value}' is {exc}",
                                 Span(self.files.normalize(ref.value), line, exc.col),  # type: ignore[attr-defined]
                                 notes=(f"named at {ref.span}",))
        except OSError as exc:
            self.diags.error(f"cannot read {what} '{ref.value}': {exc.strerror}", ref.span)
        return None

    def values_files(self, refs: Iterable[Text]) -> list[ValuesDoc]:
        docs = []
        for ref in refs:
            found = self.read(ref, "values file")
            if found is None:
                continue
            path, text = found
            if path not in self.docs:
                try:
                    self.docs[path] = (self.parsed.load(path, text) if self.parsed is not None
                                       else load_values_doc(text, path))
                except CompileError as exc:
                    self.diags.extend(exc.diagnostics)
                    continue
            docs.append(self.docs[path])
        return docs

    def existing(self, refs: Iterable[Text], what: str) -> list[Text]:
        result = []
        for ref in refs:
            if self.read(ref, what) is not None:
                result.append(Text(self.files.normalize(ref.value), ref.span))
        return result

    def check_version_keys(self) -> None:
        """Every ``versionKeys:`` entry (top level, releases) names a path: no empty key."""
        lists = [self.spec.version_keys, *(r.version_keys for r in self.spec.releases)]
        for texts in lists:
            for text in texts or ():
                if text.value in ("", ".") or "" in parse_values_key(text.value):
                    self.diags.error(f"versionKeys entry '{text.value}' has an empty key (two "
                                     "dots in a row, a dot at an end, or nothing)", text.span,
                                     "a dotted values path, e.g. image.tag")

    def check_features(self) -> None:
        if self.spec.features is not None:
            self.read(self.spec.features, "features template")

    # --- releases -------------------------------------------------------------------------

    def releases_of(self, spec: ReleaseSpec) -> tuple[Release, ...]:
        """The release ``spec`` declares; a blue-green one expands into its two slots and its
        router (named as the release), in that order."""
        release = self.release(spec)
        bg = spec.blue_green
        if bg is None:
            return (release,)
        replicas = int(bg.idle_replicas.value) if bg.idle_replicas is not None else None
        longest = f"{spec.name}-green"
        if len(longest) > RELEASE_NAME_MAX:
            self.diags.error(f"blue-green release '{spec.name}' is too long for its slots: "
                             f"'{longest}' has {len(longest)} characters, over Helm's "
                             f"{RELEASE_NAME_MAX}", spec.span,
                             f"a blue-green release's name has at most "
                             f"{RELEASE_NAME_MAX - len('-green')} characters")
        taken = {r.name for r in self.spec.releases}
        for role in SLOTS:
            if f"{spec.name}-{role}" in taken:
                self.diags.error(f"release '{spec.name}-{role}' is also the {role} slot of "
                                 f"blue-green release '{spec.name}'", bg.span,
                                 "rename one of them")
        if not release.chart.local:
            self.diags.error(
                f"blue-green release '{spec.name}' has remote chart '{release.chart.ref}', "
                "which cannot take the slot values", spec.chart.span,
                "both slots install the same chart side by side: it must name its resources "
                "by release and select its pods by release (or by blueGreen.slot); use a "
                "chart of the project, e.g. a Helm chart folder wrapping it")
        slots = tuple(replace(release, name=f"{spec.name}-{role}", verify=(),
                              slot=Slot(spec.name, role, replicas, bg.span))
                      for role in SLOTS)
        router_chart = self.router_chart(spec, bg.router)
        router = replace(release, chart=router_chart, chart_span=bg.router.span,
                         needs=tuple(Ref(s.name, bg.span) for s in slots), patches=(),
                         version_keys=(), cost_estimate=None,
                         slot=Slot(spec.name, "router", replicas, bg.span))
        return (*slots, router)

    def router_chart(self, spec: ReleaseSpec, ref: Text) -> Chart:
        """The router's chart: a folder of the project."""
        if not self.files.is_dir(ref.value):
            self.diags.error(f"router chart '{ref.value}' of blue-green release '{spec.name}' "
                             "is not a folder of the project", ref.span,
                             self.near_folder(ref.value) or
                             "a local chart that owns the live Service (docs/topology.md)")
            return Chart(ref.value, True, templates=())
        return self.local_chart(replace(spec, chart=ref, repo=None, version=None),
                                self.files.normalize(ref.value))

    def release(self, spec: ReleaseSpec) -> Release:
        names = [r.name for r in self.spec.releases]
        for need in spec.needs:
            if need.name not in names and need.name not in self.spec.unloaded:
                self.diags.error(f"release '{spec.name}' needs unknown release '{need.name}'",
                                 need.span, did_you_mean(need.name, names))
        for field, text in (("condition", spec.condition), ("valuesKey", spec.values_key)):
            problem = text is not None and key_path_problem(text.value, field, spec.name)
            if problem and text is not None:
                self.diags.error(problem, text.span,
                                 "a dotted path of keys, e.g. agents.weather.enabled (`\\.` "
                                 "for a dot inside a key)")
        key_text = spec.values_key.value if spec.values_key else spec.name
        values: list[ValuesDoc] = []
        for item in spec.values:
            if isinstance(item, InlineValues):
                values.append(item.doc)
            else:
                values.extend(self.values_files([item]))
        chart = self.chart(spec)
        if spec.patches and chart.is_helm and (chart.local or chart.repo or chart.version):
            self.diags.error(f"release '{spec.name}' has patches, but its Helm chart is "
                             "installed by Helm itself, which would not apply them (what is "
                             "reviewed must be what is installed)", spec.patches[0].span,
                             "set the chart's values instead, or render the resources from a "
                             "Jinja chart")
        return Release(
            name=spec.name, span=spec.span, chart=chart,
            values_key=parse_values_key(key_text), values_key_text=key_text,
            condition=spec.condition, needs=spec.needs, labels=spec.labels, values=tuple(values),
            namespace=spec.namespace, helm=spec.helm, patches=spec.patches,
            description=spec.description, chart_span=spec.chart.span, verify=spec.verify,
            cost_estimate=spec.cost_estimate,
            version_keys=version_keys(spec.version_keys,
                                      version_keys(self.spec.version_keys, (("image", "tag"),))))

    def chart(self, spec: ReleaseSpec) -> Chart:
        ref = spec.chart
        if self.files.is_dir(ref.value):
            return self.local_chart(spec, self.files.normalize(ref.value))
        if spec.repo is None and not ref.value.startswith("oci://"):
            if self.unreadable_chart(spec):
                return Chart(ref.value, False, None, None, kind="helm")
            looks_local = "/" in ref.value or ref.value.startswith(".")
            self.diags.error(
                f"chart '{ref.value}' of release '{spec.name}' is not a folder of the project "
                "and has no 'repo:'", ref.span,
                self.near_folder(ref.value) or
                ("create the folder for a local chart" if looks_local else
                 "add 'repo: https://…' and 'version:' for a remote chart"))
            return Chart(ref.value, False, None, None, kind="helm")  # one error, not two
        if spec.version is None:
            self.diags.error(f"remote chart '{ref.value}' of release '{spec.name}' needs a "
                             "'version:'", ref.span, "pin the chart version, e.g. version: \"1.2.3\"")
        return Chart(ref.value, False, spec.repo.value if spec.repo else None,
                     spec.version.value if spec.version else None, kind="helm")

    def near_folder(self, path: str) -> str | None:
        """"did you mean 'templates/registry'?" for a chart path one typo away from a folder."""
        parent, _, name = path.rstrip("/").rpartition("/")
        try:
            folders = self.files.list_folders(parent or ".")
        except (OSError, OutsideProject):
            return None
        hint = did_you_mean(name, (folder.rpartition("/")[2] for folder in folders))
        return hint and hint.replace(" '", f" '{parent}/" if parent else " '", 1)

    def unreadable_chart(self, spec: ReleaseSpec) -> bool:
        """Whether a chart path without ``repo:`` leaves the project or goes round a symlink
        loop (an error, said so, instead of "not a folder of the project")."""
        ref = spec.chart
        try:
            self.files.locate(ref.value)
        except OutsideProject as exc:
            self.diags.error(f"chart of release '{spec.name}': {exc}", ref.span,
                             "a local chart is a folder inside the project; a remote one has "
                             "'repo:' and 'version:'")
        except OSError as exc:
            self.diags.error(f"chart '{ref.value}' of release '{spec.name}' is "
                             f"{exc.strerror}", ref.span)
        else:
            return False
        return True

    def local_chart(self, spec: ReleaseSpec, folder: str) -> Chart:
        if spec.repo is not None or spec.version is not None:
            self.diags.warning(f"release '{spec.name}' uses local chart '{folder}'; its repo and "
                               "version are ignored", spec.chart.span)
        if folder not in self.charts:  # releases sharing a chart share its Chart
            self.charts[folder] = self.read_chart(spec, folder)
        return self.charts[folder]

    def read_chart(self, spec: ReleaseSpec, folder: str) -> Chart:
        listing = self.files.list_dir(folder)
        helm = f"{folder}/{HELM_CHART_FILE}" in listing
        templates = tuple(p for p in listing if p.endswith(TEMPLATE_SUFFIX))
        if not templates and not helm:
            self.diags.error(f"local chart '{folder}' has no *{TEMPLATE_SUFFIX} templates",
                             spec.chart.span)
        defaults = None
        if f"{folder}/values.yaml" in listing:
            docs = self.values_files([Text(f"{folder}/values.yaml", spec.chart.span)])
            defaults = docs[0] if docs else None
        schema = None
        if f"{folder}/{SCHEMA_FILE}" in listing:
            found = self.read(Text(f"{folder}/{SCHEMA_FILE}", spec.chart.span), "values schema")
            if found is not None:
                try:
                    schema = load_json_doc(found[1], found[0])
                except CompileError as exc:
                    self.diags.extend(exc.diagnostics)
        if not helm:
            return Chart(folder, True, templates=templates, defaults=defaults, schema=schema)
        try:  # Helm renders from the whole folder: every file of it is an input
            own = self.files.tree_digests(folder)
            # and every folder a file:// dependency that is not vendored is built from
            deps = local_dependencies(self.files, folder, {p for p, _ in own})
            files = tuple(sorted({*own, *(pair for d in deps
                                          for pair in self.files.tree_digests(d))}))
        except (OSError, OutsideProject) as exc:
            self.diags.error(f"cannot read Helm chart '{folder}': {exc}", spec.chart.span)
            files = ()
        return Chart(folder, True, defaults=defaults, schema=schema, kind="helm", files=files)


def key_path_problem(text: str, what: str, release: str) -> str | None:
    """What is wrong with dotted path ``text`` (a release's condition or valuesKey), or None:
    an empty key (``a..b``, a leading or trailing dot) names nothing anyone can set."""
    if text in ("", "."):
        return None if what == "valuesKey" else f"{what} of release '{release}' is empty"
    if "" in parse_values_key(text):
        return (f"{what} '{text}' of release '{release}' has an empty key (two dots in a row, "
                "or a dot at an end)")
    return None


def local_dependencies(files: ProjectFiles, folder: str, present: set[str]) -> list[str]:
    """The project folders the ``file://`` dependencies of Helm chart ``folder`` (its
    ``Chart.yaml``) name, when ``helm dependency build`` would read them (not vendored in
    ``charts/``), and theirs, recursively: part of what the chart renders from. A folder
    outside the project, missing or unreadable is left out (the build reports it)."""
    import posixpath

    import yaml

    found: list[str] = []
    todo = [(folder, present)]
    while todo:
        chart, listing = todo.pop()
        try:
            meta = yaml.safe_load(files.read(f"{chart}/Chart.yaml"))
        except (OSError, ValueError, OutsideProject, yaml.YAMLError):
            continue
        deps = meta.get("dependencies") if isinstance(meta, dict) else None
        for dep in deps if isinstance(deps, list) else ():
            repo = dep.get("repository") if isinstance(dep, dict) else None
            if not isinstance(repo, str) or not repo.startswith("file://"):
                continue
            name = str(dep.get("name", ""))
            if any(p.startswith(f"{chart}/charts/{name}") for p in listing):
                continue  # vendored: helm reads charts/, not the folder
            target = posixpath.normpath(posixpath.join(chart, repo[len("file://"):]))
            if target.startswith("../") or target in found or target == folder:
                continue
            try:
                if not files.is_dir(target):
                    continue
                listing = {p for p, _ in files.tree_digests(target)}
            except (OSError, OutsideProject):
                continue
            found.append(target)
            todo.append((target, listing))
    return sorted(found)


def parse_values_key(text: str) -> Path:
    """``agents.weather`` → ("agents", "weather"); ``a\\.b`` escapes a dot; "" or "." → ()."""
    if text in ("", "."):
        return ()
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return tuple(parts)


def default_helm() -> HelmOptions:
    """Helm's own behaviour where nothing is set."""
    return HelmOptions(timeout=None, wait=False, rollback_on_failure=False, create_namespace=True,
                       force_replace=False, server_side=None)
