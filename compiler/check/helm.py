"""The ``helm`` rule: Helm itself judges the wrapper chart of every local release.

For each compiled local release of each checked environment — the compiled output, not the
committed tree (``stale-output`` compares those) — the files of its wrapper chart
(:func:`compiler.pipeline.release_files`) are written into a private temporary folder at the
paths the plan names, and Helm runs there:

* ``helm lint --strict rendered/ENV/REL``: every ``[ERROR]`` and ``[WARNING]`` is a finding;
* ``helm template`` with the plan step's own arguments (``upgrade --install`` becomes
  ``template``): a refusal is a finding, and so are documents other than the compiled
  manifests (Helm would install something other than what was reviewed) or than the Secrets
  ``templates/secrets.yaml`` promises.

Findings sit on the release in the meshfile; where Helm's words name a manifest (an object name,
an apiVersion and kind) or a line of the chart, the notes say which file and template line.

Helm runs isolated: its HOME, config, cache and data in the temporary folder, a kubeconfig
naming an unreachable loopback server, and nothing else of the caller's environment. A wrapper
chart with ``templates/secrets.yaml`` refuses to template without the decrypted secrets (by
design, compiler/render/wrapper_chart.py); the check never decrypts them and passes stand-in
values of the same shape instead, and says so in a note. Without a helm binary
(``CheckOptions.helm`` None), or with a Helm 3 (which refuses the plan's Helm 4 flags), the rule
is skipped with one note.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.process import HELM_VAR, Completed, Runner, helm_environment
from ..model.model import Environment
from ..pipeline import ReleaseOutput, release_files
from ..plan.plan import Step
from ..render import wrapper_chart
from .context import CheckContext, Finding, HelmSummary

RULE = "helm"
SKIPPED = (f"helm rule skipped: no helm binary (set {HELM_VAR} or put helm on PATH); wrapper "
           "charts were not linted or templated by Helm")
STAND_IN = "meshc-check-stand-in"  # every secret value handed to helm template
OUTPUT_SHOWN = 12                  # lines of Helm's output quoted in a finding's notes


@dataclass(frozen=True, slots=True)
class WrapperChart:
    """One local release of one environment, as the plan installs it."""

    env: Environment
    output: ReleaseOutput
    step: Step
    output_dir: str                 # the project's output folder (``rendered``)

    @property
    def name(self) -> str:
        return self.output.release.name

    @property
    def folder(self) -> str:
        """The chart folder, project-relative, as the plan names it."""
        return self.step.chart

    @property
    def stand_ins(self) -> str | None:
        """The stand-in secrets file (beside the project copy), if the chart needs one."""
        return f"stand-ins/{self.env.name}.{self.name}.json" if self.output.secrets.objects \
            else None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What Helm said of one wrapper chart: each complaint of ``helm lint --strict`` (empty:
    it passed), and how ``helm template`` ended."""

    chart: WrapperChart
    lint: tuple[str, ...]
    template: Completed


def check_helm(ctx: CheckContext) -> Iterator[Finding]:
    """Helm's complaints about the wrapper charts of the environments where the rule is on;
    without a helm binary, only a note."""
    envs = [env for env in ctx.environments if ctx.enabled(RULE, env)]
    if not envs:
        return
    helm = ctx.options.helm
    if helm is None:
        why = ctx.options.helm_unavailable
        ctx.note(RULE, SKIPPED, (why,) if why else ())
        return
    charts = [chart for env in envs for chart in wrapper_charts(ctx, env)]
    with tempfile.TemporaryDirectory(prefix="meshc-helm-") as temp:
        root = Path(temp) / "project"
        environ = helm_environment(Path(temp) / "home")
        write_charts(root, charts)
        version, verdicts = judge(ctx.options.runner, helm, root, environ, charts)
    if version.returncode != 0:
        broken = _broken_helm(ctx, helm, version)
        yield from (broken,) if broken is not None else ()
        return
    release = version.stdout.strip().split("+")[0]
    if _major(release) < 4:  # a Helm 3 refuses the plan's Helm 4 flags: no verdict of Helm 4's
        ctx.note(RULE, f"helm rule skipped: {helm} is Helm {release}; meshc's plans are Helm 4 "
                 f"command lines (set {HELM_VAR} to a Helm 4 binary)")
        return
    for verdict in verdicts:
        yield from (f for f in _verdict_findings(ctx, verdict) if f is not None)
    ctx.helm = HelmSummary(release, len(charts))
    _note_stand_ins(ctx, charts)


def _major(release: str) -> int:
    """The major version of ``helm version --short`` (``v4.3.1`` → 4; unreadable: 4)."""
    match = re.match(r"v?(\d+)\.", release)
    return int(match.group(1)) if match else 4


def _note_stand_ins(ctx: CheckContext, charts: Sequence[WrapperChart]) -> None:
    secret = [c for c in charts if c.stand_ins is not None]
    if not secret:
        return
    by_env: dict[str, list[str]] = {}
    for chart in secret:
        by_env.setdefault(chart.env.name, []).append(chart.name)
    ctx.note(RULE, f"helm rule: {len(secret)} wrapper chart{'s' * (len(secret) != 1)} with "
             "templates/secrets.yaml templated with stand-in secret values (meshc check never "
             "decrypts secrets; the plan passes the real ones)",
             ("; ".join(f"{env}: {', '.join(names)}" for env, names in by_env.items()),))


# --- the charts -----------------------------------------------------------------------------

def wrapper_charts(ctx: CheckContext, env: Environment) -> list[WrapperChart]:
    """The local releases of ``env`` with their plan steps, in plan order."""
    result = ctx.output(env)
    outputs = {o.release.name: o for o in result.releases if o.manifests is not None}
    output_dir = ctx.project.output.rstrip("/")
    return [WrapperChart(env, outputs[step.release], step, output_dir)
            for step in result.plan.steps if step.release in outputs]


def write_charts(root: Path, charts: Sequence[WrapperChart]) -> None:
    """Each chart's files under ``root`` at the paths the plan names, and its stand-ins."""
    for chart in charts:
        for path, text in release_files(chart.env.name, chart.output).items():
            _write(root / chart.output_dir / path, text)
        if chart.stand_ins is not None:
            _write(root.parent / chart.stand_ins, json.dumps(stand_in_values(chart.output)))


def stand_in_values(output: ReleaseOutput) -> dict[str, Any]:
    """Values of the shape ``templates/secrets.yaml`` reads: every key of every Secret it
    promises, at the Secret's path, set to :data:`STAND_IN`."""
    values: dict[str, Any] = {}
    for obj in output.secrets.objects:
        node = values
        for part in obj.path:
            node = node.setdefault(str(part), {})
        node.update(dict.fromkeys(obj.keys, STAND_IN))
    return values


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


# --- running Helm ---------------------------------------------------------------------------

def lint_argv(helm: str, charts: Sequence[WrapperChart]) -> list[str]:
    """``helm lint --strict`` of ``charts`` (Helm lints several charts in one run)."""
    return [helm, "lint", "--strict", *(chart.folder for chart in charts)]


def template_argv(helm: str, chart: WrapperChart) -> list[str]:
    """The plan step's argv with ``template`` for ``upgrade --install`` (and the stand-ins)."""
    argv = list(chart.step.argv)
    assert argv[1:3] == ["upgrade", "--install"], argv
    extra = ["--values", f"../{chart.stand_ins}"] if chart.stand_ins is not None else []
    return [helm, "template", *argv[3:], *extra]


def judge(runner: Runner, helm: str, root: Path, environ: Mapping[str, str],
          charts: Sequence[WrapperChart]) -> tuple[Completed, list[Verdict]]:
    """``helm version``, then lint and template every chart: the helm processes in parallel,
    one per core; the charts are linted in one batch per core (a helm run is mostly its
    start-up)."""
    cores = os.cpu_count() or 1
    batches = [list(charts[i::cores]) for i in range(min(cores, len(charts)))]
    commands = [[helm, "version", "--short"], *(lint_argv(helm, batch) for batch in batches),
                *(template_argv(helm, chart) for chart in charts)]
    with ThreadPoolExecutor(min(cores, len(commands)), "meshc-helm") as pool:
        done = list(pool.map(lambda argv: runner(argv, root, environ), commands))
    linted: dict[str, tuple[str, ...]] = {}
    for batch, lint in zip(batches, done[1:], strict=False):
        linted.update(lint_complaints([chart.folder for chart in batch], lint))
    templated = done[1 + len(batches):]
    return done[0], [Verdict(chart, linted[chart.folder], templated[index])
                     for index, chart in enumerate(charts)]


_LINTING = re.compile(r"^==> Linting (.*)$", re.MULTILINE)


def lint_complaints(folders: Sequence[str], lint: Completed) -> dict[str, tuple[str, ...]]:
    """Chart folder → what ``helm lint --strict`` of ``folders`` said against it (``[ERROR]``
    and ``[WARNING]`` lines, a continuation joined on; ``[INFO]`` is not a complaint). A
    failed run without a word about a chart counts against that chart."""
    sections = _LINTING.split(lint.stdout)
    said = {sections[i]: sections[i + 1] for i in range(1, len(sections) - 1, 2)}
    found = {}
    for folder in folders:
        if folder not in said and lint.returncode != 0:
            found[folder] = (_first_line(lint.stderr or lint.stdout),)
            continue
        items: list[str] = []
        for line in said.get(folder, "").splitlines():
            if line.startswith(("[ERROR] ", "[WARNING] ", "Error ")):
                items.append(line)
            elif line.startswith("\t") and items:
                items[-1] += " " + line.strip()
        found[folder] = tuple(items)
    return found


# --- what Helm said, as findings --------------------------------------------------------------

def _verdict_findings(ctx: CheckContext, verdict: Verdict) -> Iterator[Finding | None]:
    chart, template = verdict.chart, verdict.template
    for text in verdict.lint:
        yield _finding(ctx, chart, f"helm lint --strict: {text}", text, (),
                       f"helm lint --strict {chart.folder}")
    step = " ".join(["helm", "template", *chart.step.argv[3:]]) + (
        " --values <its decrypted secrets>" if chart.stand_ins is not None else "")
    if template.returncode != 0:
        yield _finding(ctx, chart, f"helm template: {_first_line(template.stderr)}",
                       template.stderr, _quoted(template.stderr), step)
        return
    problems = compare_documents(chart, template.stdout)
    if problems:
        yield _finding(ctx, chart, "helm template yields other documents than the compiled "
                       "manifests: Helm would install something other than what was reviewed",
                       "", tuple(problems), step)


def _finding(ctx: CheckContext, chart: WrapperChart, said: str, text: str,
             quoted: tuple[str, ...], command: str) -> Finding | None:
    release = chart.output.release
    return ctx.finding(
        RULE, chart.env, f"release '{release.name}': {said}", release.span,
        notes=(*_located(ctx, chart, text), *quoted,
               f"reproduce: meshc render {chart.env.name} && {command}"))


def _first_line(text: str) -> str:
    """Helm's error line (``Error: …``, the prefix dropped), else its first line of output."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    error = next((line for line in lines if line.startswith("Error: ")), None)
    return (error or (lines[0] if lines else "(no output)")).removeprefix("Error: ")


def _quoted(text: str) -> tuple[str, ...]:
    lines = [line for line in text.strip().splitlines()
             if line.strip() and not line.startswith(("[INFO]", "==> Linting"))]
    if len(lines) <= 1:
        return ()
    shown = [f"| {line}" for line in lines[:OUTPUT_SHOWN]]
    return (*shown, f"| … {len(lines) - OUTPUT_SHOWN} more lines") \
        if len(lines) > OUTPUT_SHOWN else tuple(shown)


_OBJECT_NAME = re.compile(r'object name does not conform to Kubernetes naming requirements: '
                          r'"([^"]*)"')
_DEPRECATED = re.compile(r"(?<!\S)(\S+) (\S+) is deprecated in")
_CHART_LINE = re.compile(r"(?<![\w./-])(?:[\w.-]+/)?(templates/[\w.-]+\.yaml):(\d+)")


def _located(ctx: CheckContext, chart: WrapperChart, text: str) -> tuple[str, ...]:
    """Notes naming the manifest (its template line) or the chart line Helm's text points at."""
    match = _OBJECT_NAME.search(text)
    if match is not None:
        return _manifest_notes(ctx, chart, lambda d: d.get("metadata", {}).get("name")
                               == match.group(1), ("metadata", "name"))
    match = _DEPRECATED.search(text)
    if match is not None:
        api, kind = match.group(1), match.group(2)
        return _manifest_notes(ctx, chart, lambda d: d.get("apiVersion") == api
                               and d.get("kind") == kind, ("apiVersion",))
    match = _CHART_LINE.search(text)
    if match is not None:
        return (f"at {chart.folder}/{match.group(1)}:{match.group(2)} (the wrapper chart)",)
    return ()


def _manifest_notes(ctx: CheckContext, chart: WrapperChart,
                    matches: Callable[[dict[str, Any]], bool],
                    field: tuple[str, ...]) -> tuple[str, ...]:
    """Where the chart's manifests that ``matches`` are rendered and written (their ``field``)."""
    notes: list[str] = []
    for resource in ctx.resources(chart.env):
        if resource.release == chart.name and matches(resource.data):
            location = ctx.locator.field(resource, field)
            notes += [*location.notes, f"written by {location.span}"]
    return tuple(notes)


def compare_documents(chart: WrapperChart, output: str) -> list[str]:
    """What differs between ``helm template``'s documents and the compiled manifests (plus
    the promised Secrets), as notes; empty when Helm installs exactly those."""
    by_source: dict[str, list[str]] = {}
    for source, text in template_documents(output):
        by_source.setdefault(source.partition("/")[2], []).append(text)
    ours = (wrapper_chart.TEMPLATE_PATH, wrapper_chart.SECRETS_TEMPLATE_PATH)
    problems = [f"document from {source}: {_identity(text)}"
                for source, texts in sorted(by_source.items()) if source not in ours
                for text in texts]
    manifests = chart.output.manifests or ()
    expected = Counter(m.text.rstrip("\n") for m in manifests)
    installed = Counter(by_source.get(wrapper_chart.TEMPLATE_PATH, []))
    problems += [f"not installed as compiled: {chart.folder}/manifests/{m.filename}"
                 for m in manifests if not installed[m.text.rstrip("\n")]]
    problems += [f"installed but not compiled: {_identity(text)}"
                 for text in sorted((installed - expected).elements())]
    secrets = by_source.get(wrapper_chart.SECRETS_TEMPLATE_PATH, [])
    return problems + _secret_problems(chart, secrets)


def template_documents(output: str) -> list[tuple[str, str]]:
    """(template, text) of every document of ``helm template`` output, in Helm's order; the
    text without its ``# Source:`` line and trailing line breaks."""
    documents = []
    for chunk in re.split(r"^---\n(?=# Source: )", output, flags=re.MULTILINE):
        head, _, text = chunk.partition("\n")
        if head.startswith("# Source: ") and text.strip():
            documents.append((head.removeprefix("# Source: "), text.rstrip("\n")))
    return documents


def _secret_problems(chart: WrapperChart, texts: Sequence[str]) -> list[str]:
    """Differences between the Secrets templated from the stand-ins and those promised: name,
    namespace, keys, and every value the stand-in (read from where the chart looks)."""
    encoded = base64.b64encode(STAND_IN.encode()).decode()
    promised = Counter(f"Secret {obj.name} in {chart.output.namespace}, keys "
                       f"{', '.join(sorted(obj.keys))}" for obj in chart.output.secrets.objects)
    found = Counter(_secret_identity(_parsed(text), encoded) for text in texts)
    missing, extra = sorted((promised - found).elements()), sorted((found - promised).elements())
    return ([f"promised but not installed: {what}" for what in missing]
            + [f"installed but not promised: {what}" for what in extra])


def _secret_identity(data: dict[str, Any], encoded: str) -> str:
    meta = data.get("metadata") or {}
    values = data.get("data") or {}
    wrong = sorted(str(k) for k, v in values.items() if v != encoded)
    return (f"{data.get('kind')} {meta.get('name')} in {meta.get('namespace')}, keys "
            f"{', '.join(sorted(map(str, values)))}"
            + (f" (not from the secrets values: {', '.join(wrong)})" if wrong else ""))


def _parsed(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _identity(text: str) -> str:
    data = _parsed(text)
    meta = data.get("metadata") or {}
    return f"{data.get('kind', '?')}/{meta.get('name', '?')}" if data else "(not a YAML map)"


# --- a helm that does not run ----------------------------------------------------------------

def _broken_helm(ctx: CheckContext, helm: str, version: Completed) -> Finding | None:
    return ctx.finding(RULE, None, f"{helm} does not run (`helm version` exit "
                      f"{version.returncode}): {_first_line(version.stderr or version.stdout)}",
                      None, help=f"point {HELM_VAR} at a working Helm 4 binary, or turn the rule "
                      "off")
