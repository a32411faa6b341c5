"""The Helm a command runs against the Helm a plan is for: asked once, before anything runs.

A plan's command lines are written for one major Helm version (``helmVersion:`` in the
meshfile, ``--helm-version`` on the command line; see docs/helm-versions.md): Helm 4 refuses
Helm 3's ``--atomic``/``--force`` and Helm 3 refuses Helm 4's ``--rollback-on-failure``/
``--force-replace``. A mismatch found by the first step leaves nothing changed, but one found
after a Helm-3-compatible wave has run leaves a half-done rollout, so every command that runs
helm against a cluster (``meshc apply``, and ``status``/``rollback``) calls
:func:`require_helm_version` once, before its first helm command.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.diagnostics import CompileError, Diagnostic
from ..core.process import Runner, ask_helm_version, helm_major, run_process
from ..model.model import HelmVersion
from ..pipeline import helm_version_origin
from ..plan.plan import helm_mismatch_help


@dataclass(frozen=True, slots=True)
class HelmFound:
    """The helm binary a command runs, and what ``helm version --short`` said."""

    path: str
    version: str      # v4.3.1+gc0d08d0
    major: int


def require_helm_version(helm: str, wanted: HelmVersion | int, environment: str,
                         runner: Runner = run_process) -> HelmFound:
    """Run ``helm version --short`` once (isolated: no cluster, none of the user's helm
    settings) and return what it said, when its major version is ``wanted`` (an environment's
    :attr:`~compiler.model.model.Environment.helm_version`, or a plan's ``helmVersion``).

    Raises :class:`CompileError` when helm does not answer, or is another major version: the
    error names the binary, both versions, where the plan's version was chosen, and which
    setting to change (``helmVersion:`` in the meshfile, or ``--helm-version``)."""
    target = wanted if isinstance(wanted, HelmVersion) else HelmVersion(wanted, None, "plan")
    done = ask_helm_version(helm, runner)
    text = done.stdout.strip()
    major = helm_major(text) if done.returncode == 0 else None
    if major is None:
        said = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        raise CompileError([Diagnostic(
            "error", f"cannot tell which Helm {helm} is: `helm version --short` said: "
                     f"{said.splitlines()[-1]}",
            help=f"the plan of '{environment}' is for Helm {target.major}: point --helm (or "
                 f"PATH) at a working Helm {target.major} binary")])
    if major != target.major:
        raise CompileError([Diagnostic(
            "error", f"{helm} is Helm {text}, but the plan of '{environment}' is for Helm "
                     f"{target.major}: refusing before any step runs",
            notes=(_origin(target),),
            help=helm_mismatch_help(target.major))])
    return HelmFound(helm, text, major)


def _origin(target: HelmVersion) -> str:
    if target.origin == "plan":
        return f"the plan says \"helmVersion\": {target.major}"
    return helm_version_origin(target)
