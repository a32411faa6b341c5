"""Shared fixtures: the repository root, a freshly rendered example, golden-file helpers.

Goldens are regenerated only on request: ``pytest --update-goldens``.
"""

from __future__ import annotations

import atexit
import difflib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from compiler.output.journal import (
    CACHE_DIR,  # meshc's own cache beside a meshfile: never project content
)

ROOT = Path(__file__).resolve().parents[1]
# the example's inputs at the top level (its output: rendered/)
EXAMPLE_INPUTS = ("meshfile.yaml", "meshfile.lock", "environments", "templates", "charts",
                  "bluegreen")  # bluegreen/: the state of the blue-green releases
GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/realtools.py, tests/helmjudge.py and friends

# Property tests (hypothesis): a few examples each in CI, many by hand:
#   HYPOTHESIS_PROFILE=long python3 -m pytest tests/test_properties.py tests/test_fuzz_hostile.py
settings.register_profile("ci", max_examples=30, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite golden files from the current output instead of comparing")


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def run_meshc(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from compiler.cli.main import main

    runner = CliRunner()
    if cwd is not None:
        import os

        old = Path.cwd()
        os.chdir(cwd)
        try:
            result = runner.invoke(main, list(args), catch_exceptions=False, prog_name="meshc")
        finally:
            os.chdir(old)
    else:
        result = runner.invoke(main, list(args), catch_exceptions=False, prog_name="meshc")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def rendered_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ``meshc render`` of the example at the repository's top level."""
    out = tmp_path_factory.mktemp("example") / "rendered"
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "render", "--out", str(out))
    assert code == 0, err
    return out


def unified(expected: str, actual: str, name: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                        actual.splitlines(keepends=True),
                                        f"expected/{name}", f"actual/{name}"))


def check_text(path: Path, actual: str, update: bool) -> None:
    """Compare ``actual`` with golden file ``path`` (or rewrite it with --update-goldens)."""
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"missing golden {path}; run pytest --update-goldens"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, "golden mismatch:\n" + unified(expected, actual, path.name)


FEATURES = GOLDEN / "ok-features" / "project"  # the golden project with most meshfile features


def copy_features_project(tmp_path: Path) -> Path:
    """A scratch copy of the ``ok-features`` golden project (no cache, no output). Modules use it
    as their ``project`` fixture: ``project = pytest.fixture(name="project")(copy_features_project)``."""
    target = tmp_path / "p"
    shutil.copytree(FEATURES, target, ignore=shutil.ignore_patterns(CACHE_DIR, "rendered"))
    return target


def render_tree(project: Path, *args: str) -> tuple[str, dict[str, str]]:
    """``meshc -f PROJECT/meshfile.yaml ARGS`` (a render): its stderr, and the rendered tree."""
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), *args)
    assert code == 0, err
    return err, tree_files(project / "rendered")


def fresh_tree(project: Path, *args: str) -> dict[str, str]:
    """The tree ``meshc ARGS --no-cache`` (a render) writes from scratch, in a folder of its own."""
    out = project.parent / "fresh"
    shutil.rmtree(out, ignore_errors=True)
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), *args, "--no-cache",
                             "--out", str(out))
    assert code == 0, err
    return tree_files(out)


def tree_files(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative POSIX path → text), meshc's cache folders excepted."""
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*"))
            if p.is_file() and CACHE_DIR not in p.relative_to(root).parts}


def check_tree(expected_root: Path, actual_root: Path, update: bool) -> None:
    """Compare two directory trees file by file, printing unified diffs of what differs."""
    if update:
        if expected_root.exists():
            shutil.rmtree(expected_root)
        shutil.copytree(actual_root, expected_root)
        return
    expected = tree_files(expected_root) if expected_root.exists() else {}
    actual = tree_files(actual_root)
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"missing: {name}")
        elif name not in expected:
            problems.append(f"unexpected: {name}")
        elif expected[name] != actual[name]:
            problems.append(unified(expected[name], actual[name], name))
    assert not problems, "rendered tree differs from golden:\n" + "\n".join(problems)


# --- remote charts and helm, as a user of the example has them -------------------------------

CHART_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "charts"


_CHART_CACHE: list[Path] = []


def shared_chart_cache() -> Path:
    """The tests' chart cache, made once a session: the example's remote chart packages
    (tests/fixtures/charts, built from the upstream sources), stored by digest as
    ``meshc charts fetch`` stores them: no chart repository is reachable from the tests."""
    from compiler.render.remote import file_digest

    if not _CHART_CACHE:
        cache = Path(tempfile.mkdtemp(prefix="meshc-test-chart-cache-"))
        for package in sorted(CHART_FIXTURES.glob("*.tgz")):
            digest = file_digest(package)
            shutil.copyfile(package, cache / f"{digest.replace(':', '-')}.tgz")
        _CHART_CACHE.append(cache)
    return _CHART_CACHE[0]


@pytest.fixture(scope="session")
def chart_cache() -> Iterator[Path]:
    cache = shared_chart_cache()
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def session_helm() -> Path | None:
    """The real Helm 4 (tests/realtools.py), or None where it cannot be had (outside CI)."""
    from realtools import helm4

    try:
        return helm4()
    except pytest.skip.Exception:
        return None


@pytest.fixture(autouse=True)
def _helm_and_charts(monkeypatch: pytest.MonkeyPatch, chart_cache: Path,
                     session_helm: Path | None) -> None:
    """Every test runs meshc as a user of the example does: with Helm 4 (``MESHC_HELM``) and
    the example's remote charts in the chart cache (``MESHC_CHART_CACHE``). A test of the
    behaviour without helm deletes ``MESHC_HELM`` (and keeps helm off ``PATH``)."""
    monkeypatch.setenv("MESHC_CHART_CACHE", str(chart_cache))
    if session_helm is not None:
        monkeypatch.setenv("MESHC_HELM", str(session_helm))


def pin_charts(root: Path, meshfile: str = "meshfile.yaml") -> Path:
    """Pin every remote chart the project at ``root`` deploys, as ``meshc charts update`` would,
    and put the packages into the chart cache ``$MESHC_CHART_CACHE`` names (the tests' own):
    ``tests/fixtures/charts/NAME-VERSION.tgz`` where there is one, else a minimal chart of that
    name and version packaged here by the real helm (its one ConfigMap shows ``.Values``).
    Returns the lock file."""
    from realtools import helm4, run_helm

    from compiler.core.diagnostics import CompileError
    from compiler.core.files import ProjectFiles
    from compiler.pipeline import load_project
    from compiler.render.remote import Pin, file_digest, format_lock, lock_name, wanted

    cache = Path(os.environ.get("MESHC_CHART_CACHE") or shared_chart_cache())
    lock = root / lock_name(meshfile)
    try:
        project = load_project(ProjectFiles(root), meshfile).project
    except CompileError:
        return lock  # it does not load: meshc says why, there is nothing to pin
    pins = []
    for want in wanted(project):
        name = want.chart.rstrip("/").rpartition("/")[2]
        package = CHART_FIXTURES / f"{name}-{want.version}.tgz"
        if not package.is_file():
            package = _STAND_INS.get((name, want.version)) or _stand_in_chart(
                _scratch("meshc-stand-in-"), name, want.version, helm4(), run_helm)
            _STAND_INS[(name, want.version)] = package
        digest = file_digest(package)
        shutil.copyfile(package, cache / f"{digest.replace(':', '-')}.tgz")
        pins.append(Pin(want.chart, want.repo, want.version, want.version, digest))
    lock.write_text(format_lock(meshfile, pins), encoding="utf-8")
    return lock


_STAND_INS: dict[tuple[str, str], Path] = {}  # (name, version) → package, built once a session


def _scratch(prefix: str) -> Path:
    """A temporary folder removed when this process exits (tests import this module under
    a second name too, so a fixture's teardown would not see every folder made)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _stand_in_chart(work: Path, name: str, version: str, helm: Path, run_helm) -> Path:
    """A minimal chart ``name`` ``version`` whose one template shows ``.Values`` as JSON
    (:func:`helmjudge.write_values_chart`), packaged by the real helm with fixed file times."""
    from helmjudge import write_values_chart

    source = write_values_chart(work / f"{name}-{version}", name, version=version)
    for path in [source, *source.rglob("*")]:
        os.utime(path, (1767225600, 1767225600))  # 2026-01-01: the same bytes every time
    done = run_helm(helm, ["package", str(source), "--destination", str(source.parent)],
                    work / "home")
    assert done.returncode == 0, done.stderr
    return source.parent / f"{name}-{version}.tgz"


def with_tools(compiler):  # type: ignore[no-untyped-def]
    """A compiler loaded by the library (``load_project``) given what the CLI gives it: the
    helm ``$MESHC_HELM`` names and the project's chart store (lock and chart cache)."""
    from dataclasses import replace

    from compiler.cli.support import chart_store
    from compiler.core.process import helm_tool

    helm = helm_tool(os.environ["MESHC_HELM"]) if os.environ.get("MESHC_HELM") else None
    name = compiler.project.root_file
    return replace(compiler, helm=helm, charts=chart_store(compiler.files, name))
