"""What runs: the releases of environments' committed plans, read back from Helm.

Day-2 commands (``status``, ``drift``, ``history``, ``rollback``, ``versions --live``) start
here. Each reads the environment's committed plan (``rendered/ENV/plan.json``: namespaces,
kube-context, releases, waves) and asks the real ``helm`` about every release, through the
injected :data:`~compiler.core.process.Runner`, on up to ``concurrency`` threads
(:func:`compiler.ops.apply.run_bounded`):

* ``helm list --namespace NS [--kube-context C] --deployed --failed --pending --uninstalling
  --max 0 -o json``: once per namespace, every release's latest revision, status, chart, app
  version and time (a planned release not listed is not deployed);
* ``helm status REL --namespace NS [--kube-context C] -o json``: a listed release's manifest
  and user-supplied values (``helm get manifest`` and ``helm get values`` in one call);
* ``helm history REL … --max 256 -o json`` (history, rollback): all its revisions.

A cluster that cannot be reached is found by the ``helm list`` calls and said once per
environment (:attr:`LiveEnvironment.unreachable`); the environment's releases are then not
asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic
from ..core.incomplete import require_complete
from ..core.process import Completed, Runner
from ..model.model import Environment
from ..pipeline import Compiler
from ..plan.plan import Plan, Step
from .apply import DEFAULT_CONCURRENCY, read_plan, run_bounded

HISTORY_MAX = 256  # helm history's own default


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """How to reach Helm: where it runs, which binary, how many calls at once."""

    root: Path
    helm: str = "helm"
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass(frozen=True, slots=True)
class Revision:
    """One line of ``helm history``."""

    revision: int
    updated: str
    status: str                     # deployed, superseded, failed, pending-upgrade, …
    chart: str                      # name-version
    app_version: str
    description: str


@dataclass(frozen=True, slots=True)
class LiveRelease:
    """A planned release as Helm knows it. No revisions and no error: not deployed."""

    step: Step
    revisions: tuple[Revision, ...] = ()    # oldest first
    manifest: str | None = None             # the latest revision's, when asked for
    values: Any = None                      # its user-supplied values (helm get values)
    error: str | None = None                # helm failed, for another reason than not-found

    @property
    def release(self) -> str:
        return self.step.release

    @property
    def current(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None


@dataclass(frozen=True, slots=True)
class LiveEnvironment:
    """An environment's planned releases as Helm knows them, or why its cluster is out of
    reach (said once, for all its releases)."""

    plan: Plan
    releases: tuple[LiveRelease, ...]
    unreachable: str | None = None

    @property
    def name(self) -> str:
        return self.plan.environment


def committed_plan(compiler: Compiler, env: Environment) -> Plan:
    """``env``'s committed plan (``rendered/ENV/plan.json``). Raises :class:`CompileError`
    when there is none, it is not a plan, or a render of it was interrupted."""
    require_complete(compiler.files.root, compiler.project.output, [env.name])
    path = f"{compiler.project.output.rstrip('/')}/{env.name}/plan.json"
    try:
        text = (compiler.files.root / path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompileError([Diagnostic(
            "error", f"{path} is missing: meshc compares the cluster with the committed output",
            help=f"run `meshc render {env.name}` and commit rendered/")]) from None
    return read_plan(text, path)


def committed_plans(compiler: Compiler, envs: Sequence[Environment]) -> list[Plan]:
    """:func:`committed_plan` of each of ``envs``; every interrupted render named at once."""
    require_complete(compiler.files.root, compiler.project.output, [e.name for e in envs])
    return [committed_plan(compiler, e) for e in envs]


def deployable(compiler: Compiler, names: Sequence[str] = ()) -> list[Environment]:
    """The environments named (aliases allowed, each once, in the order given; one deployed in
    regions: its regions), or every deployable one, in the meshfile's order. Raises
    :class:`CompileError` naming each unknown name."""
    from ..pipeline import find_targets

    if not names:
        return list(compiler.project.deployable)
    found, problems = [], []
    for name in names:
        try:
            targets = find_targets(compiler.project, name)
        except CompileError as exc:
            problems += exc.diagnostics
            continue
        found += [env for env in targets if env not in found]
    if problems:
        raise CompileError(problems)
    return found


def select_releases(plan: Plan, names: Sequence[str]) -> Plan:
    """``plan`` narrowed to the releases ``names`` (all without names). Raises
    :class:`CompileError` for each name the plan does not deploy, with a near miss."""
    if not names:
        return plan
    from ..core.diagnostics import did_you_mean

    planned = [s.release for s in plan.steps]
    problems = [Diagnostic(
        "error", f"release '{name}' is not deployed in '{plan.environment}'",
        help=did_you_mean(name, planned) or f"its releases: {', '.join(planned) or 'none'}")
        for name in dict.fromkeys(names) if name not in planned]
    if problems:
        raise CompileError(problems)
    return replace(plan, steps=tuple(s for s in plan.steps if s.release in names))


def scope(plan: Plan, step: Step) -> list[str]:
    """The flags placing a helm (or kubectl: ``--context``) call: namespace, kube-context."""
    return ["--namespace", step.namespace] + (
        ["--kube-context", plan.kube_context] if plan.kube_context else [])


def failure_text(done: Completed) -> str:
    """What a failed command said, on one line (helm's ``Error: `` prefix dropped)."""
    text = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}")
    lines = [line for line in text.splitlines() if line.strip()
             and not line.startswith("level=WARN")] or [text]
    last = lines[-1].strip().removeprefix("Error: ").removeprefix("error: ")
    if last == "EOF" and done.stdout.strip():  # it prompted (kubectl: for a username): no stdin
        return f"{done.stdout.strip().splitlines()[-1]} (no input: EOF)"
    return last


_UNREACHABLE = ("kubernetes cluster unreachable", "connection refused", "no such host",
                "i/o timeout", "context deadline exceeded", "unable to connect to the server",
                "the server has asked for the client to provide credentials", "unauthorized",
                "no configuration has been provided",
                "the connection to the server",  # kubectl: "… localhost:8080 was refused"
                "please enter username")  # kubectl without credentials, stdin closed


def is_unreachable(text: str) -> bool:
    """Whether helm's (or kubectl's) error says the cluster or its context cannot be reached."""
    low = text.lower()
    return any(word in low for word in _UNREACHABLE) or (
        "context" in low and ("does not exist" in low or "was not found" in low))


def is_not_found(text: str) -> bool:
    return "release: not found" in text.lower() or text.lower().endswith(": not found")


def parse_history(text: str) -> tuple[Revision, ...]:
    """``helm history -o json`` → revisions, oldest first. Raises ValueError, KeyError or
    TypeError."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise TypeError("helm history did not print a JSON list")
    revisions = [Revision(int(d["revision"]), str(d.get("updated") or ""), str(d["status"]),
                          str(d.get("chart") or ""), str(d.get("app_version") or ""),
                          str(d.get("description") or "")) for d in data]
    return tuple(sorted(revisions, key=lambda r: r.revision))


def read_history(plan: Plan, step: Step, options: LiveOptions, runner: Runner) -> LiveRelease:
    """The release's revisions: none when Helm has no record of it."""
    argv = [options.helm, "history", step.release, *scope(plan, step),
            "--max", str(HISTORY_MAX), "-o", "json"]
    done = runner(argv, options.root)
    if done.returncode != 0:
        why = failure_text(done)
        return LiveRelease(step) if is_not_found(why) else LiveRelease(step, error=why)
    try:
        return LiveRelease(step, parse_history(done.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        return LiveRelease(step, error=f"cannot read helm history's output: {exc}")


def read_content(plan: Plan, live: LiveRelease, options: LiveOptions,
                 runner: Runner) -> LiveRelease:
    """``live`` with its latest revision's manifest and user-supplied values."""
    step = live.step
    done = runner([options.helm, "status", step.release, *scope(plan, step), "-o", "json"],
                  options.root)
    if done.returncode != 0:
        return replace(live, error=failure_text(done))
    try:
        data = json.loads(done.stdout)
        manifest, values = str(data.get("manifest") or ""), data.get("config") or {}
    except (ValueError, AttributeError) as exc:
        return replace(live, error=f"cannot read helm status's output: {exc}")
    return replace(live, manifest=manifest, values=values)


def list_argv(plan: Plan, namespace: str, helm: str) -> list[str]:
    """``helm list`` of one namespace: every release whose latest revision is deployed,
    failed, pending or being uninstalled (uninstalled ones count as not deployed)."""
    return [helm, "list", "--namespace", namespace,
            *(["--kube-context", plan.kube_context] if plan.kube_context else []),
            "--deployed", "--failed", "--pending", "--uninstalling", "--max", "0", "-o", "json"]


_LIST_TIME = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.\d+)? ([+-]\d\d)(\d\d) \S+")


def rfc3339(text: str) -> str:
    """``helm list``'s time (``2026-11-02 10:00:00.12 +0000 UTC``) as ``helm history`` writes
    it (``2026-11-02T10:00:00Z``); other text unchanged."""
    match = _LIST_TIME.fullmatch(text.strip())
    if match is None:
        return text
    zone = "Z" if match[3] + match[4] in ("+0000", "-0000") else f"{match[3]}:{match[4]}"
    return f"{match[1]}T{match[2]}{zone}"


def read_namespace(plan: Plan, namespace: str, options: LiveOptions,
                   runner: Runner) -> dict[str, Revision] | str:
    """The latest revision of every listed release of ``namespace``, by name; or why helm
    failed."""
    done = runner(list_argv(plan, namespace, options.helm), options.root)
    if done.returncode != 0:
        return failure_text(done)
    try:
        return {str(d["name"]): Revision(int(d["revision"]), rfc3339(str(d.get("updated") or "")),
                                         str(d["status"]), str(d.get("chart") or ""),
                                         str(d.get("app_version") or ""), "")
                for d in json.loads(done.stdout or "[]")}
    except (ValueError, KeyError, TypeError) as exc:
        return f"cannot read helm list's output: {exc}"


def read_environments(plans: Sequence[Plan], options: LiveOptions, runner: Runner,
                      content: bool = True) -> tuple[LiveEnvironment, ...]:
    """Every planned release of ``plans`` as Helm knows it: one ``helm list`` per namespace
    of each environment (which also finds an unreachable cluster, once), then, with
    ``content``, ``helm status`` of every release found (its manifest and values)."""
    spaces = [(p, ns) for p in plans for ns in dict.fromkeys(s.namespace for s in p.steps)]
    listed = dict(zip([(p.environment, ns) for p, ns in spaces],
                      run_bounded(spaces, lambda item: read_namespace(*item, options, runner),
                                  options.concurrency)))
    cut_off = {}
    for (env, _), found in listed.items():
        if isinstance(found, str) and is_unreachable(found):
            cut_off.setdefault(env, found)

    def known(plan: Plan, step: Step) -> LiveRelease:
        found = listed[(plan.environment, step.namespace)]
        if isinstance(found, str):
            return LiveRelease(step, error=found)
        current = found.get(step.release)
        return LiveRelease(step, (current,) if current else ())

    work = [(p, s) for p in plans if p.environment not in cut_off for s in p.steps]

    def one(item: tuple[Plan, Step]) -> LiveRelease:
        live = known(*item)
        if content and live.revisions:
            live = read_content(item[0], live, options, runner)
        return live

    done = dict(zip([(p.environment, s.release) for p, s in work],
                    run_bounded(work, one, options.concurrency)))
    return tuple(
        LiveEnvironment(plan, tuple(LiveRelease(s) for s in plan.steps), cut_off[plan.environment])
        if plan.environment in cut_off else
        LiveEnvironment(plan, tuple(done[(plan.environment, s.release)] for s in plan.steps))
        for plan in plans)


def unreachable_diagnostic(live: LiveEnvironment) -> Diagnostic:
    """The one diagnostic for an environment whose cluster helm cannot reach."""
    where = (f"kube-context '{live.plan.kube_context}'" if live.plan.kube_context
             else "the current kube-context")
    return Diagnostic("error", f"{live.name}: the cluster of {where} cannot be reached: "
                               f"{live.unreachable}",
                      help="check `kubectl config get-contexts` and your credentials")
