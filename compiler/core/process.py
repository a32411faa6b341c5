"""Running external tools (helm, kubectl, sops): one seam, so callers can be handed a recorder.

A :data:`Runner` takes an argv, a working directory and, optionally, the environment to run in,
and returns how the command ended. The real one is :func:`run_process`; the CLI passes it down
(``compiler.cli.support.Tools``), and tests pass their own to record calls in-process instead of
faking binaries on PATH. :func:`find_tool` (:func:`find_helm`) says which binary to run; the
CLI hands it the ``PATH`` and the explicit choice (``--helm``, ``$MESHC_HELM``) it read.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .diagnostics import CompileError, Diagnostic

HELM_VAR = "MESHC_HELM"  # the helm binary `meshc check` runs (the CLI reads it)
HELM_INSTALL = "Helm 4 (https://helm.sh/docs/intro/install/)"
KUBECTL_VAR = "MESHC_KUBECTL"  # the kubectl binary `meshc verify` runs (the CLI reads it)
KUBECTL_INSTALL = "kubectl (https://kubernetes.io/docs/tasks/tools/)"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: none
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: none
  context:
    cluster: none
    user: none
current-context: none
users:
- name: none
  user: {}
"""


@dataclass(frozen=True, slots=True)
class Completed:
    """How one command ended."""

    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs ``argv`` in ``cwd``; ``env`` is the whole environment of the command (None: this
    process's environment). Returns how it ended, never raises for a failing command."""

    def __call__(self, argv: Sequence[str], cwd: Path,
                 env: Mapping[str, str] | None = None, /) -> Completed: ...


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
                /) -> Completed:
    """Run ``argv`` in ``cwd`` with ``env`` (default: this process's environment), capturing
    its output."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, capture_output=True, check=False,
                              stdin=subprocess.DEVNULL, env=None if env is None else dict(env))
    except OSError as exc:
        return Completed(127, "", f"cannot run {argv[0]}: {exc.strerror or exc}")
    return Completed(done.returncode, done.stdout.decode("utf-8", "replace"),
                     done.stderr.decode("utf-8", "replace"))


def find_tool(name: str, explicit: str | None, path: str | None, *, given: str,
              install: str, remedy: str) -> str:
    """The binary to run for tool ``name``: ``explicit`` (a path, or a command looked up on
    ``path``) when given, else ``name`` on ``path`` (a ``PATH`` value, as :func:`shutil.which`
    takes it).

    ``given`` shows where ``explicit`` came from, ``{}`` standing for it (``--helm {}``),
    ``install`` how to get the tool and ``remedy`` how to name it instead; all three go into the
    error. Raises
    :class:`CompileError` when there is no such binary.
    """
    if explicit:
        found = shutil.which(explicit, path=path) if os.sep not in explicit else None
        if found:
            return found
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return os.path.abspath(explicit)
        raise CompileError([Diagnostic(
            "error", f"{given.format(explicit)}: not an executable file")])
    found = shutil.which(name, path=path)
    if found is None:
        raise CompileError([Diagnostic(
            "error", f"{name} is not installed: no '{name}' on PATH",
            help=f"install {install}, or {remedy}")])
    return found


def find_helm(explicit: str | None, path: str | None, given: str = "--helm {}",
              remedy: str = "pass --helm PATH") -> str:
    """The helm binary: ``explicit`` (``--helm``; ``$MESHC_HELM`` with ``given="MESHC_HELM={}"``),
    else ``helm`` on ``path``. Raises :class:`CompileError` when there is none."""
    return find_tool("helm", explicit, path, given=given, install=HELM_INSTALL, remedy=remedy)


def find_kubectl(explicit: str | None, path: str | None, given: str = "--kubectl {}",
                 remedy: str = "pass --kubectl PATH") -> str:
    """The kubectl binary: ``explicit`` (``--kubectl``, or ``$MESHC_KUBECTL``), else ``kubectl``
    on ``path``. Raises :class:`CompileError` when there is none."""
    return find_tool("kubectl", explicit, path, given=given, install=KUBECTL_INSTALL,
                     remedy=remedy)


def helm_environment(home: Path) -> dict[str, str]:
    """An environment in which helm touches nothing of the user's and no cluster: HOME,
    config, cache and data under ``home``, a kubeconfig naming an unreachable loopback server."""
    home.mkdir(parents=True, exist_ok=True)
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_bytes(KUBECONFIG.encode("utf-8"))
    kubeconfig.chmod(0o600)  # Helm warns about a kubeconfig others may read
    return {"PATH": os.defpath, "HOME": str(home), "KUBECONFIG": str(kubeconfig),
            "HELM_CONFIG_HOME": str(home / "config"), "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"), "LANG": "C.UTF-8"}


_HELM_VERSION = re.compile(r"v?(\d+)\.\d+")


def helm_major(version: str) -> int | None:
    """The major version in what ``helm version --short`` prints (``v4.3.1+gc0d08d0`` → 4);
    None when it is not a version."""
    found = _HELM_VERSION.match(version.strip())
    return int(found[1]) if found else None


@dataclass(frozen=True, slots=True)
class HelmTool:
    """The helm binary a compile renders Helm charts with: its path, what
    ``helm version --short`` said (part of every Helm chart's cache key: another helm may
    render differently), and the runner that runs it."""

    path: str
    version: str
    runner: Runner = run_process

    @property
    def major(self) -> int | None:
        """Its major version (4 for ``v4.3.1+gc0d08d0``); None when unknown."""
        return helm_major(self.version)


def helm_tool(path: str, runner: Runner = run_process, memo: Path | None = None) -> HelmTool:
    """The helm at ``path``, its version asked once (isolated). Raises :class:`CompileError`
    when it does not answer.

    ``memo``: a folder where the answer is kept by the binary file's identity (device, inode,
    size, modification and change times: a binary replaced or rewritten is asked again), so a
    render that finds every Helm chart in its caches starts no helm process at all."""
    stamp = _file_identity(path) if memo is not None else None
    kept = memo / f"{stamp}.txt" if memo is not None and stamp is not None else None
    if kept is not None:
        try:
            version = kept.read_text(encoding="utf-8").strip()
            if version:
                return HelmTool(path, version, runner)
        except (OSError, UnicodeDecodeError):
            pass
    found = _ask_helm_version(path, runner)
    if kept is not None:
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=".part-", dir=kept.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(found.version + "\n")
            os.replace(temp, kept)
        except OSError:
            pass  # unkept, it is asked again next time
    return found


def _file_identity(path: str) -> str | None:
    try:
        real = os.path.realpath(path)
        info = os.stat(real)
    except OSError:
        return None
    text = f"{real}\0{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:" \
           f"{info.st_ctime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()


def ask_helm_version(path: str, runner: Runner = run_process) -> Completed:
    """``helm version --short`` of the helm at ``path``, isolated: no cluster, none of the
    user's helm settings."""
    with tempfile.TemporaryDirectory(prefix="meshc-helm-") as temp:
        return runner([path, "version", "--short"], Path(temp), helm_environment(Path(temp) / "home"))


def _ask_helm_version(path: str, runner: Runner) -> HelmTool:
    done = ask_helm_version(path, runner)
    if done.returncode != 0 or not done.stdout.strip():
        raise CompileError([Diagnostic(
            "error", f"{path} version --short failed: "
            f"{(done.stderr or done.stdout).strip() or done.returncode}",
            help=f"point {HELM_VAR} at a working Helm 4 binary")])
    return HelmTool(path, done.stdout.strip(), runner)
