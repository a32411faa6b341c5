"""Apply stage: run an environment's plan with the real ``helm``, wave by wave.

What runs is exactly the plan ``meshc plan ENV`` shows (``-o sh`` prints the same commands):

* :func:`prepare_apply` compiles the environment, refuses when the committed output the plan's
  steps install from (``rendered/ENV``) is not what the inputs compile to, takes the compiled
  plan or reads a reviewed one (:func:`read_plan`, refused when its ``inputsDigest`` is not the
  inputs' digest now), and narrows it to the selected releases (:func:`select_steps`);
* :func:`execute` runs it: waves in order, the steps of a wave on up to ``concurrency``
  threads, each a ``helm`` subprocess (an injectable :data:`Runner`). After a failure the
  running steps finish and nothing new starts. A step's secrets are decrypted just before its
  helm command (through the injected :data:`DecryptFile`, normally
  :func:`compiler.secrets.sops.decrypt`) into files of a private temporary directory (0700, files 0600)
  passed as more ``--values``, and removed when the step ends, however it ends.

Progress goes to a :data:`Reporter` (see :mod:`compiler.cli.progress`), called under a lock.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from ..core.diagnostics import CompileError, Diagnostic
from ..core.incomplete import require_complete
from ..core.process import (
    Completed,
    Runner,
    find_helm,  # noqa: F401 (re-exported: it lived here)
    run_process,
)
from ..model.model import Environment, Project
from ..pipeline import (
    Compiler,
    committed_files,
    compile_environment,
    output_files,
    overridden_plan_stands,
)
from ..plan.plan import API_VERSION, Plan, SlotRole, Step, pinned_argv
from ..secrets.secrets import SecretInput
from ..secrets.sops import AgeKey, Sops, SopsError, decrypt
from ..values.values import lookup

DEFAULT_CONCURRENCY = 4
Item = TypeVar("Item")
Done = TypeVar("Done")
NEEDS_MODES = ("error", "include", "skip")  # see select_steps


# --- what to run --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Selector:
    """One ``-l`` selector: every term must match (``tier=core,name!=registry``)."""

    text: str
    terms: tuple[tuple[str, str, bool], ...]  # (label, value, equal)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all((labels.get(key) == value) == equal for key, value, equal in self.terms)


_TERM = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_./]*)(!=|=)(.*)")


def parse_selector(text: str) -> Selector:
    """``key=value`` or ``key!=value`` terms, comma-separated (helmfile's ``-l``). Raises
    ValueError saying what is wrong."""
    terms = []
    for part in text.split(","):
        match = _TERM.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"'{part.strip()}' is not KEY=VALUE or KEY!=VALUE")
        terms.append((match[1], match[3], match[2] == "="))
    return Selector(text, tuple(terms))


def step_labels(project: Project, step: Step) -> dict[str, str]:
    """What selectors match a step against: the release's labels, plus ``name``,
    ``namespace`` and ``chart`` (helmfile's built-in labels). ``chart`` is the meshfile's
    ``chart:`` as written (``templates/agent``, ``prometheus``), not the rendered wrapper chart
    a local chart's step installs."""
    release = project.release(step.release)
    labels = dict(release.labels) if release is not None else {}
    labels.update(name=step.release, namespace=step.namespace,
                  chart=release.chart.ref if release is not None else step.chart)
    return labels


def select_steps(plan: Plan, project: Project, selectors: Sequence[Selector],
                 needs: str = "error") -> Plan:
    """The plan narrowed to the steps any selector matches (all without selectors).

    ``needs`` says what happens to a selected release needing one not selected: ``error``
    (the default: a diagnostic per such need), ``include`` (the needs are selected too,
    transitively) or ``skip`` (they are left out: assumed deployed already). Waves keep their
    numbers. Raises :class:`CompileError`.
    """
    if not selectors:
        return plan
    by_name = {s.release: s for s in plan.steps}
    chosen = {s.release for s in plan.steps
              if any(sel.matches(step_labels(project, s)) for sel in selectors)}
    if not chosen:
        raise CompileError([Diagnostic(
            "error", f"no release of '{plan.environment}' matches "
                     f"{' or '.join(repr(s.text) for s in selectors)}",
            help=f"releases: {', '.join(by_name) or 'none'}; selectors match labels and "
                 "name=, namespace=, chart=")])
    if needs == "include":
        todo = list(chosen)
        while todo:
            for need in by_name[todo.pop()].needs:
                if need not in chosen:
                    chosen.add(need)
                    todo.append(need)
    elif needs == "error":
        missing = [Diagnostic(
            "error", f"release '{name}' needs '{need}', which the selector does not select",
            help="add --include-needs to apply it too, or --skip-needs if it is deployed "
                 "already") for name in sorted(chosen) for need in by_name[name].needs
            if need not in chosen]
        if missing:
            raise CompileError(missing)
    steps = tuple(replace(s, needs=tuple(n for n in s.needs if n in chosen))
                  for s in plan.steps if s.release in chosen)
    return replace(plan, steps=steps)


def read_plan(text: str, source: str) -> Plan:
    """A plan from its JSON form (``meshc plan -o json``, ``rendered/ENV/plan.json``).
    Raises :class:`CompileError` when ``source`` is not such a plan."""
    def bad(why: str) -> CompileError:
        return CompileError([Diagnostic("error", f"{source} is not a meshc plan: {why}",
                                        help="make one with `meshc plan ENV -o json`")])
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise bad(f"invalid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION or \
            data.get("kind") != "Plan":
        raise bad(f'it needs "apiVersion": "{API_VERSION}" and "kind": "Plan"')
    try:
        steps = tuple(_read_step(item) for item in data["steps"])
        plan = Plan(str(data["environment"]), data["protected"] is True, data.get("kubeContext"),
                    steps, int(data["waves"]),
                    tuple((d["release"], d["reason"]) for d in data.get("disabled", [])),
                    tuple(str(n) for n in data.get("notes", [])),
                    str(data.get("inputsDigest") or ""), _read_helm_version(data),
                    str(data["region"]) if data.get("region") else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"malformed ({type(exc).__name__}: {exc})") from None
    return plan


def _read_helm_version(data: dict[str, Any]) -> int:
    """``"helmVersion"``: 3 or 4; 4 when absent (plans older than the key were Helm 4's)."""
    version = data.get("helmVersion", 4)
    if type(version) is not int or version not in (3, 4):
        raise ValueError(f'"helmVersion" must be 3 or 4, not {json.dumps(version)}')
    return version


def _read_step(item: dict[str, Any]) -> Step:
    argv = item["argv"]
    if not isinstance(argv, list) or argv[:3] != ["helm", "upgrade", "--install"] or \
            argv[3:4] != [item["release"]] or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"step {item.get('release')!r}: argv must be a helm upgrade --install "
                         "of the release")
    secrets = tuple(SecretInput(str(s["file"]), _parse_extract(str(s["extract"])))
                    for s in item.get("secrets", []))
    return Step(str(item["release"]), int(item["wave"]), tuple(map(str, item["needs"])),
                str(item["namespace"]), str(item["chart"]), tuple(argv), bool(item["remote"]),
                str(item.get("action", "upgrade")), secrets,
                str(item["helmChart"]) if item.get("helmChart") else None,
                tuple(map(str, item.get("hooks", ()))),
                str(item["chartDigest"]) if item.get("chartDigest") else None,
                SlotRole.from_json(item["blueGreen"]) if item.get("blueGreen") else None)


_EXTRACT_PART = re.compile(r'\["([^"]*)"\]')


def _parse_extract(text: str) -> tuple[str, ...]:
    """``["a"]["b"]`` (sops's ``--extract``) → ``("a", "b")``."""
    parts = _EXTRACT_PART.findall(text)
    if "".join(f'["{p}"]' for p in parts) != text:
        raise ValueError(f"secrets extract {text!r} is not of the form [\"key\"]…")
    return tuple(parts)


def check_rendered(compiler: Compiler, env: Environment, fresh: Mapping[str, str]) -> None:
    """Refuse when the committed output of ``env`` (what the plan's steps install) is not
    ``fresh``, what its inputs compile to now."""
    committed = committed_files(compiler, env.name)
    changed = sorted(p for p in set(fresh) | set(committed) if fresh.get(p) != committed.get(p))
    plan = f"{env.name}/plan.json"
    if plan in changed and overridden_plan_stands(env, fresh.get(plan), committed.get(plan)):
        changed.remove(plan)  # --helm-version: the committed plan is the meshfile's Helm's
    if not changed:
        return
    output = compiler.project.output.rstrip("/")
    listed = ", ".join(f"{output}/{p}" for p in changed[:3]) + (
        f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    raise CompileError([Diagnostic(
        "error", f"{output}/{env.name} is not what the inputs compile to ({len(changed)} file"
                 f"{'s' * (len(changed) != 1)} differ: {listed}); helm would install stale "
                 "output", help=f"run `meshc render {env.name}` (with the same --set flags) and "
                 f"review the change (`meshc diff --rendered {env.name}` shows it)")])


def reviewed_plan(text: str, source: str, env: Environment, fresh: Plan) -> Plan:
    """The plan in ``text``, if it is ``env``'s, was made from the inputs ``fresh`` (the plan
    compiled now) was made from, and is that plan: an edited plan, or one another meshc version
    made, is refused too. Raises :class:`CompileError`."""
    plan = read_plan(text, source)
    digest = fresh.inputs_digest
    if plan.environment != env.name:
        raise CompileError([Diagnostic(
            "error", f"{source} is the plan of '{plan.environment}', not of '{env.name}'")])
    if plan.inputs_digest != digest:
        why = ("has no inputsDigest (made by an older meshc)" if not plan.inputs_digest else
               "was made from other inputs than the project holds now")
        raise CompileError([Diagnostic(
            "error", f"{source} {why}: refusing a stale plan",
            notes=(f"plan: {plan.inputs_digest or '(none)'}", f"now:  {digest}"),
            help=f"make and review a new plan (`meshc plan {env.name} -o json`), with the "
                 "same --set flags as this apply")])
    if plan.helm_version != fresh.helm_version:
        raise CompileError([Diagnostic(
            "error", f"{source} is a plan for Helm {plan.helm_version}, and this apply makes "
                     f"plans for Helm {fresh.helm_version}",
            help=f"pass --helm-version {plan.helm_version} (as when the plan was made), or make "
                 f"and review a new plan (`meshc plan {env.name} -o json`)")])
    if plan != fresh:
        theirs, ours = {s.release: s for s in plan.steps}, {s.release: s for s in fresh.steps}
        differ = sorted(n for n in set(theirs) | set(ours) if theirs.get(n) != ours.get(n))
        what = f"steps of {', '.join(differ)}" if differ else "its settings"
        raise CompileError([Diagnostic(
            "error", f"{source} is not the plan its inputs compile to ({what} differ): edited, "
                     "or made by another meshc version",
            help=f"make and review a new plan (`meshc plan {env.name} -o json`)")])
    return plan


def prepare_apply(compiler: Compiler, env: Environment, plan_text: str | None = None,
                  plan_source: str = "plan.json", selectors: Sequence[Selector] = (),
                  needs: str = "error") -> Plan:
    """The plan to apply to ``env``: compiled now, or ``plan_text`` (a reviewed plan's JSON,
    refused unless it was made from the same inputs), narrowed by ``selectors``. Raises
    :class:`CompileError`."""
    require_complete(compiler.files.root, compiler.project.output, [env.name])  # at once
    result = compile_environment(compiler, env)
    plan = result.plan
    if plan_text is not None:
        plan = reviewed_plan(plan_text, plan_source, env, result.plan)
    check_rendered(compiler, env, output_files(result))
    return select_steps(plan, compiler.project, selectors, needs)


def pinned_packages(compiler: Compiler, env: Environment, plan: Plan) -> dict[str, Path]:
    """The verified package of every remote chart ``plan`` installs, by release: fetched into
    the chart cache if need be, its sha256 that of the lock (a repository that re-published
    the version is refused). Raises :class:`CompileError`."""
    packages = {}
    for step in plan.steps:
        release = compiler.project.release(step.release) if step.remote else None
        if release is None:
            continue
        if compiler.charts is None or compiler.helm is None:
            raise CompileError([Diagnostic(
                "error", f"release '{release.name}': its remote chart cannot be verified "
                "without helm and the chart cache", release.chart_span or release.span)])
        packages[step.release] = compiler.charts.package(release, env, compiler.helm)
    return packages


# --- running it ---------------------------------------------------------------------------------

DecryptFile = Callable[[str], bytes]                  # a project secrets file → its JSON plaintext


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """How to run a plan."""

    root: Path                       # where helm runs: the plan's paths are relative to it
    helm: str = "helm"               # replaces argv[0] of every step
    concurrency: int = DEFAULT_CONCURRENCY
    temp_dir: Path | None = None     # where private secrets directories go (default $TMPDIR)
    packages: Mapping[str, Path] = field(default_factory=dict)  # release → its pinned package


@dataclass(frozen=True, slots=True)
class Event:
    """Progress: ``wave`` (``releases`` about to run), ``start``, ``done``, ``failed``."""

    kind: str
    wave: int
    release: str = ""
    seconds: float = 0.0
    releases: tuple[str, ...] = ()


Reporter = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class StepResult:
    release: str
    wave: int
    status: str                      # done, failed, not-started
    seconds: float = 0.0
    returncode: int | None = None
    stderr: str = ""
    stdout: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    environment: str
    steps: tuple[StepResult, ...]
    seconds: float
    waves: tuple[int, ...] = ()
    stopped_after: int | None = None  # the wave after which ``after_wave`` said stop

    @property
    def ok(self) -> bool:
        return self.stopped_after is None and all(s.status == "done" for s in self.steps)

    def having(self, status: str) -> tuple[StepResult, ...]:
        return tuple(s for s in self.steps if s.status == status)


def plan_waves(plan: Plan) -> list[tuple[int, tuple[Step, ...]]]:
    """The plan's non-empty waves, in order (a selection can empty some)."""
    numbers = sorted({s.wave for s in plan.steps})
    return [(n, tuple(s for s in plan.steps if s.wave == n)) for n in numbers]


def execute(plan: Plan, options: ApplyOptions, runner: Runner = run_process,
            decrypt_file: DecryptFile | None = None, report: Reporter | None = None,
            after_wave: Callable[[int, tuple[Step, ...]], bool] | None = None) -> ApplyResult:
    """Run ``plan``: wave after wave, each only once the previous one fully succeeded; a wave's
    steps on up to ``options.concurrency`` threads. After a failure, running steps finish and
    no step starts. ``decrypt_file`` is needed when a step has secrets. ``after_wave`` (``meshc
    apply --verify``) runs after each wave that succeeded; False stops before the next one."""
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()

    def emit(event: Event) -> None:
        if report is not None:
            with lock:
                report(event)

    def one(step: Step) -> StepResult:
        if stop.is_set():
            return StepResult(step.release, step.wave, "not-started")
        emit(Event("start", step.wave, step.release))
        begin = time.monotonic()
        done = run_step(step, options, runner, decrypt_file)
        seconds = time.monotonic() - begin
        status = "done" if done.returncode == 0 else "failed"
        if status == "failed":
            stop.set()
        emit(Event(status, step.wave, step.release, seconds))
        return StepResult(step.release, step.wave, status, seconds, done.returncode,
                          done.stderr, done.stdout)

    results: list[StepResult] = []
    stopped_after: int | None = None
    waves = plan_waves(plan)
    for number, steps in waves:
        if stop.is_set():
            results += [StepResult(s.release, s.wave, "not-started") for s in steps]
            continue
        emit(Event("wave", number, releases=tuple(s.release for s in steps)))
        results += _run_wave(steps, one, options.concurrency, stop)
        if after_wave is not None and not stop.is_set() and not after_wave(number, steps):
            stop.set()
            stopped_after = number
    return ApplyResult(plan.environment, tuple(results), time.monotonic() - started,
                       tuple(n for n, _ in waves), stopped_after)


def _run_wave(steps: Sequence[Step], one: Callable[[Step], StepResult], concurrency: int,
              stop: threading.Event) -> list[StepResult]:
    return run_bounded(steps, one, concurrency, stop)


def run_bounded(items: Sequence[Item], one: Callable[[Item], Done], concurrency: int,
                stop: threading.Event | None = None) -> list[Done]:
    """``one`` over ``items`` on up to ``concurrency`` threads, results in the order of
    ``items``. On Ctrl-C ``stop`` is set (``one`` should start nothing more once it is) and
    the running calls finish before the interrupt goes on. Every helm and kubectl call of
    meshc's commands runs through here (apply's waves, status, drift, verify)."""
    from concurrent.futures import ThreadPoolExecutor

    stop = stop or threading.Event()
    pool = ThreadPoolExecutor(max(1, min(concurrency, len(items))), "meshc-run")
    try:
        futures = [pool.submit(one, item) for item in items]
        return [future.result() for future in futures]
    except BaseException:  # Ctrl-C: start nothing more, let running commands end
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)


def run_step(step: Step, options: ApplyOptions, runner: Runner,
             decrypt_file: DecryptFile | None) -> Completed:
    """One step: its secrets decrypted into private files for the duration of its helm
    command, removed afterwards whatever happens."""
    package = options.packages.get(step.release)
    argv = [options.helm, *(pinned_argv(step.argv, str(package)) if package is not None
                            else step.argv)[1:]]
    if not step.secrets:
        return runner(argv, options.root)
    if decrypt_file is None:
        return Completed(1, "", "the step needs secrets and no way to decrypt them was given")
    with private_directory(options.temp_dir) as folder:
        try:
            for index, item in enumerate(step.secrets, 1):
                path = folder / f"{step.release}.{index}.json"
                write_private(path, release_secrets(decrypt_file(item.file), item))
                argv += ["--values", str(path)]
        except SopsError as exc:
            return Completed(1, "", exc.message + (f"\n{exc.help}" if exc.help else ""))
        except (OSError, ValueError, TypeError) as exc:
            return Completed(1, "", f"cannot prepare the secrets of '{step.release}': {exc}")
        return runner(argv, options.root)


@contextmanager
def private_directory(parent: Path | None) -> Iterator[Path]:
    """A new directory only we can read (0700), removed with its contents on exit."""
    folder = Path(tempfile.mkdtemp(prefix="meshc-secrets-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (which must not exist) readable and writable by us only (0600)."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as out:
        out.write(data)


def release_secrets(plaintext: bytes, item: SecretInput) -> bytes:
    """The release's part of a decrypted file (what ``sops decrypt --extract`` gives), as a
    JSON values file. Raises TypeError when it is not a map."""
    present, node = lookup(json.loads(plaintext or b"{}"), item.values_key)
    node = node if present else {}
    if not isinstance(node, dict):
        raise TypeError(f"'{item.extract}' of {item.file} is not a map of values")
    return json.dumps(node, ensure_ascii=False, sort_keys=True).encode("utf-8")


def sops_decryptor(compiler: Compiler, env: Environment, sops: Sops, key: AgeKey) -> DecryptFile:
    """Decrypt a secrets file of ``env`` with the real sops, in memory (see compiler/secrets/sops.py)."""
    recipients = {f.path: [t.value for t in f.recipients] for f in env.secret_files}

    def run(file: str) -> bytes:
        return decrypt(sops, compiler.files.root, file, key, recipients.get(file, ()), env.name)

    return run


def check_secrets(plan: Plan, decrypt_file: DecryptFile) -> None:
    """Decrypt every file the plan needs once, in memory, before anything runs: a missing or
    wrong key stops the apply before its first step. Raises :class:`CompileError`."""
    problems = []
    for file in sorted({item.file for step in plan.steps for item in step.secrets}):
        try:
            decrypt_file(file)
        except SopsError as exc:
            problems.append(Diagnostic("error", exc.message, help=exc.help))
    if problems:
        raise CompileError(problems)


# --- words for people ---------------------------------------------------------------------------

def command_lines(plan: Plan, helm: str = "helm") -> list[str]:
    """The plan's helm commands in order, as shell lines (``--dry-run``); a step's decrypted
    secrets are shown as placeholders."""
    lines = []
    for number, steps in plan_waves(plan):
        lines.append(f"# wave {number}")
        for step in steps:
            extra = [f"<decrypted {i.file}{i.extract}>" for i in step.secrets]
            args = [helm, *step.argv[1:], *(x for e in extra for x in ("--values", e))]
            lines.append(" ".join(shlex.quote(a) for a in args))
    return lines


def failure_diagnostics(plan: Plan, result: ApplyResult) -> list[Diagnostic]:
    """One diagnostic per failed release, with helm's (or sops's) stderr."""
    by_name = {s.release: s for s in plan.steps}
    found = []
    for step in result.having("failed"):
        output = (step.stderr.strip() or step.stdout.strip() or "(no output)").splitlines()
        notes = tuple(f"| {line}" for line in output[-20:])
        found.append(Diagnostic(
            "error", f"release '{step.release}' failed (exit {step.returncode}, "
                     f"{step.seconds:.1f}s)", notes=notes,
            help=_failure_help(step.stderr, plan.kube_context, by_name[step.release])))
    return found


def _failure_help(stderr: str, kube_context: str | None, step: Step) -> str | None:
    text = stderr.lower()
    if "kubernetes cluster unreachable" in text or ("context" in text and
                                                   "does not exist" in text):
        where = f"kube-context '{kube_context}'" if kube_context else "the current kube-context"
        return (f"helm could not reach the cluster of {where}: check `kubectl config "
                "get-contexts` and your credentials")
    if step.secrets and "sops" in text:
        return "the age key comes from SOPS_AGE_KEY_FILE or SOPS_AGE_KEY"
    return None

