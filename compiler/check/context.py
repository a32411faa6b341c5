"""What every check works from: the compiled environments, their resources, rule levels, and
locations (lazily traced) for findings.

A :class:`CheckContext` lives for one ``run_checks`` call; its caches (compiled environments,
parsed manifests, traced renders) are per run, never module state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.diagnostics import Diagnostic, Diagnostics, did_you_mean
from ..core.process import Runner, run_process
from ..core.source import Span
from ..model.model import Environment, RuleSetting, SecretsFile
from ..pipeline import Compiler, EnvironmentOutput, compile_environment
from ..syntax.yamlsrc import load_documents
from .locate import Locator
from .resource import Resource, rendered_path
from .rules import RULES_BY_NAME, Level, Rule


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What to run. ``rules``, when given, limits the run to those rule names."""

    stale: bool = True
    rules: frozenset[str] | None = None
    # a secrets file's plaintext (JSON, in memory) when an age key is available: enables the
    # secret-canary scan (compiler.secrets.Decrypt; the CLI builds it from SOPS_AGE_KEY*)
    decrypt: Callable[[SecretsFile], bytes] | None = None
    # the helm binary of the helm rule (the CLI takes $MESHC_HELM, else helm on PATH); None
    # skips the rule with a note, saying ``helm_unavailable`` (why there is none) if given
    helm: str | None = None
    helm_unavailable: str | None = None
    runner: Runner = run_process                  # how helm runs (tests record it)


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnostic of a check, with the rule and environment it belongs to."""

    rule: str
    environment: str | None
    diagnostic: Diagnostic


@dataclass(frozen=True, slots=True)
class HelmSummary:
    """What the helm rule had Helm judge."""

    version: str                                 # ``helm version --short``, e.g. v4.3.1
    charts: int                                  # wrapper charts linted and templated


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Everything ``meshc check`` found, in a stable order."""

    environments: tuple[str, ...]
    findings: tuple[Finding, ...]
    resources: int                               # rendered resources checked
    kube_versions: Mapping[str, str]             # environment → Kubernetes version used
    unchecked: tuple[str, ...]                   # custom resources without a schema
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[Finding, ...] = ()              # about the run, not the project (a skipped rule)
    helm: HelmSummary | None = None              # None: the helm rule did not run Helm

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.diagnostic.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.diagnostic.severity == "warning")

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return tuple(f.diagnostic for f in self.findings)


class CheckContext:
    """The per-run state checks share. Checks call :meth:`finding` to report."""

    def __init__(self, compiler: Compiler, environments: Sequence[Environment],
                 options: CheckOptions) -> None:
        self.compiler = compiler
        self.project = compiler.project
        self.environments = tuple(environments)
        self.options = options
        self.sources: dict[str, str] = {}          # extra texts for excerpts
        self.unchecked: dict[str, list[str]] = {}   # "apiVersion Kind/name" → environments
        self.kube_versions: dict[str, str] = {}
        self.notes: list[Finding] = []              # see note()
        self.helm: HelmSummary | None = None
        self._outputs: dict[str, EnvironmentOutput] = {}
        self._resources: dict[str, tuple[Resource, ...]] = {}
        self._settings: dict[str, dict[str, RuleSetting]] = {}
        self.setting_errors = self._validate_settings()
        self.locator = Locator(compiler)

    # --- compiled output ------------------------------------------------------------------

    def output(self, env: Environment) -> EnvironmentOutput:
        """The compiled environment (compiled once per run)."""
        if env.name not in self._outputs:
            self._outputs[env.name] = compile_environment(self.compiler, env)
        return self._outputs[env.name]

    def resources(self, env: Environment) -> tuple[Resource, ...]:
        """Every rendered manifest of ``env``, parsed, in release then file order."""
        if env.name not in self._resources:
            found = []
            for output in self.output(env).releases:
                for manifest in output.manifests or ():
                    docs = load_documents(manifest.text, manifest.filename)
                    if docs and isinstance(docs[0], dict):
                        found.append(Resource(env, output, manifest, docs[0]))
            self._resources[env.name] = tuple(found)
        return self._resources[env.name]

    def rendered_path(self, resource: Resource) -> str:
        """The project-relative path ``meshc render`` writes ``resource`` to."""
        return rendered_path(self.project, resource)

    # --- rule levels and options ------------------------------------------------------------

    def _settings_for(self, env: Environment | None) -> dict[str, RuleSetting]:
        """Rule → merged setting (top level, then the environment chain, later wins)."""
        key = env.name if env is not None else ""
        if key not in self._settings:
            merged: dict[str, RuleSetting] = {}
            chain = self.project.policies + (env.policies if env is not None else ())
            for setting in chain:
                old = merged.get(setting.rule)
                if old is None:
                    merged[setting.rule] = setting
                else:
                    options = dict(old.options) | dict(setting.options)
                    merged[setting.rule] = RuleSetting(
                        setting.rule, setting.level or old.level, tuple(sorted(options.items())),
                        setting.span)
            self._settings[key] = merged
        return self._settings[key]

    def level(self, rule: str, env: Environment | None) -> Level:
        """The level of ``rule`` in ``env`` (None: project-wide rules)."""
        spec = RULES_BY_NAME[rule]
        if self.options.rules is not None and rule not in self.options.rules:
            return "off"
        scope_env = env if spec.scope == "environment" else None
        setting = self._settings_for(scope_env).get(rule)
        if setting is not None and setting.level is not None:
            return setting.level  # type: ignore[return-value]
        return spec.protected if env is not None and env.protected else spec.default

    def option(self, rule: str, env: Environment | None, name: str) -> Any:
        spec = RULES_BY_NAME[rule]
        scope_env = env if spec.scope == "environment" else None
        setting = self._settings_for(scope_env).get(rule)
        options = dict(setting.options) if setting is not None else {}
        value = options.get(name, spec.options.get(name))
        # an invalid option was reported (setting_errors); the rule runs with its default
        return value if _option_problem(spec, name, value) is None else spec.options.get(name)

    def enabled(self, rule: str, env: Environment | None) -> bool:
        return self.level(rule, env) != "off"

    def finding(self, rule: str, env: Environment | None, message: str, span: Span | None,
                help: str | None = None, notes: Sequence[str] = ()) -> Finding | None:
        """A finding of ``rule`` at its configured level (None when the rule is off)."""
        level = self.level(rule, env)
        if level == "off":
            return None
        where = (f"in environment '{env.name}'",) if env is not None else ()
        silence = (f"rule {rule}: set `policies: {{{rule}: off}}` "
                   + (f"on environment '{env.name}'" if env is not None
                      and RULES_BY_NAME[rule].scope == "environment" else "at the top level")
                   + " to silence it")
        diagnostic = Diagnostic(level, f"{message} [{rule}]", span, help,
                                (*where, *notes, silence))
        return Finding(rule, env.name if env is not None else None, diagnostic)

    def note(self, rule: str, message: str, notes: Sequence[str] = ()) -> None:
        """A note about the run (not a finding: it never fails the check), once per message."""
        if all(n.diagnostic.message != message for n in self.notes):
            self.notes.append(Finding(rule, None, Diagnostic("note", message, None, None,
                                                             tuple(notes))))

    def _validate_settings(self) -> list[Finding]:
        """Unknown rules, options and bad option values in ``policies:``, as findings."""
        diags = Diagnostics()
        settings = list(self.project.policies)
        seen = {id(s) for s in settings}
        for env in self.project.environments:
            settings += [s for s in env.policies if id(s) not in seen]
            seen.update(id(s) for s in env.policies)
        checked: set[tuple[str, int, int]] = set()
        for setting in settings:
            key = (setting.span.file, setting.span.line, setting.span.col)
            if key in checked:
                continue
            checked.add(key)
            rule = RULES_BY_NAME.get(setting.rule)
            if rule is None:
                diags.error(f"unknown policy rule '{setting.rule}'", setting.span,
                            did_you_mean(setting.rule, RULES_BY_NAME)
                            or "rules: " + ", ".join(sorted(RULES_BY_NAME)))
                continue
            _check_options(rule, setting, diags)
        return [Finding("policies", None, d) for d in diags.items]


def _check_options(rule: Rule, setting: RuleSetting, diags: Diagnostics) -> None:
    for name, value in setting.options:
        if name not in rule.options:
            known = ", ".join(sorted(rule.options)) or "none"
            diags.error(f"policy '{rule.name}' has no option '{name}'", setting.span,
                        f"options of {rule.name}: {known}")
            continue
        problem = _option_problem(rule, name, value)
        if problem is not None:
            diags.error(f"option '{name}' of policy '{rule.name}' must be {problem}",
                        setting.span)


def _option_problem(rule: Rule, name: str, value: Any) -> str | None:
    """What ``value`` should be for option ``name`` of ``rule``, or None if it is fine."""
    default = rule.options.get(name)
    if isinstance(default, int) and (not isinstance(value, int) or isinstance(value, bool)
                                     or value < 0):
        return "a whole number"
    if isinstance(default, float) and (not isinstance(value, int | float)
                                       or isinstance(value, bool) or value < 0):
        return "a number, at least 0"
    if isinstance(default, list) and (not isinstance(value, list)
                                      or not all(isinstance(v, str) for v in value)):
        return "a list of names"
    return None


def pod_spec_path(kind: str) -> tuple[str, ...] | None:
    """Where a workload kind keeps its pod spec."""
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return ("spec", "template", "spec")
    if kind == "CronJob":
        return ("spec", "jobTemplate", "spec", "template", "spec")
    if kind == "Pod":
        return ("spec",)
    return None


def containers(data: Mapping[str, Any], pod_path: tuple[str, ...]) -> Iterator[
        tuple[tuple[str | int, ...], dict[str, Any]]]:
    """(path, container) for every container and init container of a pod spec."""
    pod = dig(data, pod_path)
    if not isinstance(pod, dict):
        return
    for key in ("initContainers", "containers"):
        items = pod.get(key)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    yield (*pod_path, key, index), item


def dig(data: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` or None."""
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data
