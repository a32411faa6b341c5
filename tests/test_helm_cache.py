"""Helm charts at scale (issue 22): never a helm process for a release that did not change.

A small project (two releases of two local Helm charts, one of them built from a ``file://``
dependency pinned in ``Chart.lock``, in two environments) is rendered with the real Helm 4
through a runner that logs every helm process it starts (to a file, so forked workers' count
too). Then every input of ``helm template`` is changed in turn, and the helm processes that
follow are exactly those of the releases and environments that input reaches: the key of each
cache is complete (the render journal's idea, tests/test_journal.py), and nothing else runs
helm. Each edit is proved twice: against the release cache (``.meshc-cache``; the renders memo
emptied before each run) and against the renders memo of the chart cache (``.meshc-cache``
removed before each run).

The one fake: a second "Helm 4" is a script that answers ``version`` with another build's
string and runs the real helm for everything else (there is one Helm 4 binary here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from realtools import helm4, run_helm

from compiler.core.process import Completed, run_process

LIB_CHART = "apiVersion: v2\nname: lib\nversion: 0.1.0\n"
LIB_TEMPLATE = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-lib\n"
                "data:\n  from: lib-{{ .Values.greeting | default \"hello\" }}\n")
CAPS = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-{{ .Chart.Name }}\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
        "  monitoring: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n"
        "  namespace: {{ .Release.Namespace | quote }}\n"
        "  size: {{ .Values.size | quote }}\n")
MESHFILE = """\
apiVersion: meshc/v1
project: p
environments:
  dev:
    values: [env/dev.yaml]
    kubeVersion: "1.30.0"
    namespace: dev
  prod:
    values: [env/prod.yaml]
    namespace: prod
    apiVersions: [policy/v1/PodDisruptionBudget]
releases:
  a:
    chart: charts/app
  b:
    chart: charts/plain
"""


@pytest.fixture(scope="module")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, its app chart's Chart.lock made by the real ``helm dependency update``
    (then charts/ removed: the dependency is pinned, not vendored)."""
    root = tmp_path_factory.mktemp("helm-cache") / "project"
    lib, app, plain = root / "charts/lib", root / "charts/app", root / "charts/plain"
    for chart in (lib, app, plain):
        (chart / "templates").mkdir(parents=True)
    (lib / "Chart.yaml").write_text(LIB_CHART)
    (lib / "templates/cm.yaml").write_text(LIB_TEMPLATE)
    (app / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                                    "  - name: lib\n    version: 0.1.0\n"
                                    "    repository: file://../lib\n")
    (app / "templates/cm.yaml").write_text(CAPS)
    (plain / "Chart.yaml").write_text("apiVersion: v2\nname: plain\nversion: 0.1.0\n")
    (plain / "templates/cm.yaml").write_text(CAPS)
    (root / "env").mkdir()
    (root / "env/dev.yaml").write_text("a:\n  size: 1\nb:\n  size: 2\n")
    (root / "env/prod.yaml").write_text("a:\n  size: 3\nb:\n  size: 4\n")
    (root / "meshfile.yaml").write_text(MESHFILE)
    done = run_helm(helm4(), ["dependency", "update", str(app)], root.parent / "home")
    assert done.returncode == 0, done.stderr
    shutil.rmtree(app / "charts")
    assert (app / "Chart.lock").is_file()
    return root


class Counted:
    """A project copy, its chart cache, and meshc run with a runner that logs each helm
    process (its subcommand, and for ``template`` the release and namespace)."""

    def __init__(self, base: Path, tmp: Path, layer: str) -> None:
        self.root = tmp / "project"
        shutil.copytree(base, self.root)
        self.cache = tmp / "chart-cache"
        self.log = tmp / "helm.log"
        self.pids = tmp / "helm.pids"  # the processes that ran helm template
        self.layer = layer

    def runner(self, argv: Any, cwd: Path, env: Any = None, /) -> Completed:
        words = [argv[1]]
        if argv[1] == "template":
            words += [argv[2], argv[argv.index("--namespace") + 1]]
        with open(self.log, "a") as out:  # appended by forked workers too
            out.write(" ".join(words) + "\n")
        if argv[1] == "template":
            with open(self.pids, "a") as out:
                out.write(f"{os.getpid()}\n")
        return run_process(argv, cwd, env)

    runner.runs_binaries = True  # type: ignore[attr-defined]  # the real helm answers: kept

    def render(self, monkeypatch: pytest.MonkeyPatch, helm: Path | None = None) -> Counter[str]:
        """Run ``meshc render``; the helm processes it started, as a Counter of log lines."""
        from compiler.cli.main import main
        from compiler.cli.support import Tools

        if self.layer == "renders memo":  # only the chart cache's memo may serve
            shutil.rmtree(self.root / ".meshc-cache", ignore_errors=True)
        else:  # only the release cache (and the journal) may serve
            shutil.rmtree(self.cache / "renders", ignore_errors=True)
        self.log.unlink(missing_ok=True)
        self.pids.unlink(missing_ok=True)
        monkeypatch.setenv("MESHC_HELM", str(helm or helm4()))
        monkeypatch.setenv("MESHC_CHART_CACHE", str(self.cache))
        result = CliRunner().invoke(main, ["-f", str(self.root / "meshfile.yaml"), "render"],
                                    obj=Tools(self.runner), catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return Counter(lines)

    def text(self, env: str, release: str, name: str) -> str:
        return (self.root / "rendered" / env / release / "manifests" /
                f"configmap-{name}.yaml").read_text()

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new))


def _other_helm(tmp: Path) -> Path:
    """A "Helm 4" of another build (the fake of the module docstring)."""
    real = helm4()
    version = subprocess.run([str(real), "version", "--short"], capture_output=True, text=True,
                             check=True).stdout.strip()
    script = tmp / "other-helm"
    script.write_text(f'#!/bin/sh\nif [ "$1" = version ]; then echo "{version}-other"; exit 0; fi\n'
                      f'exec "{real}" "$@"\n')
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("layer", ["release cache", "renders memo"])
def test_each_input_rerenders_exactly_what_it_reaches(
        template_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        layer: str) -> None:
    p = Counted(template_project, tmp_path, layer)
    every = {"template a dev", "template b dev", "template a prod", "template b prod"}

    first = p.render(monkeypatch)
    # a first render: helm's version asked once, the app chart's dependency built once for
    # its two renders, and never for the chart without dependencies
    assert first == Counter({**dict.fromkeys(every, 1), "version": 1,
                             "dependency": 1}), first
    assert "from: lib-hello" in p.text("prod", "a", "a-lib")
    # on a first render helm runs in forked workers, at most one per core (--jobs: all)
    starters = set(p.pids.read_text().split())
    if (os.cpu_count() or 1) > 1:
        assert str(os.getpid()) not in starters and len(starters) <= (os.cpu_count() or 1)
    assert p.render(monkeypatch) == Counter()  # a no-op: no helm process at all

    steps: list[tuple[str, Any, set[str], bool]] = [
        ("one release's values, one environment",
         lambda: p.edit("env/dev.yaml", "size: 1", "size: 10"), {"template a dev"}, False),
        ("the namespace of one environment",
         lambda: p.edit("meshfile.yaml", "namespace: prod", "namespace: production"),
         {"template a production", "template b production"}, False),
        ("kubeVersion", lambda: p.edit("meshfile.yaml", '"1.30.0"', '"1.31.0"'),
         {"template a dev", "template b dev"}, False),
        ("apiVersions", lambda: p.edit("meshfile.yaml", "[policy/v1/PodDisruptionBudget]",
                                       "[monitoring.coreos.com/v1]"),
         {"template a production", "template b production"}, False),
        ("a release's name", lambda: (p.edit("meshfile.yaml", "  b:\n", "  c:\n"),
                                      p.edit("env/dev.yaml", "b:", "c:"),
                                      p.edit("env/prod.yaml", "b:", "c:")),
         {"template c dev", "template c production"}, False),
        ("a file of one chart", lambda: p.edit("charts/plain/templates/cm.yaml", "size:",
                                               "sized:"),
         {"template c dev", "template c production"}, False),
        ("a file of a file:// dependency (outside the chart's folder)",
         lambda: p.edit("charts/lib/templates/cm.yaml", "lib-", "library-"),
         {"template a dev", "template a production"}, True),
        ("the chart's Chart.lock (dependencies built again)",
         lambda: p.edit("charts/app/Chart.lock", "generated:", "# edited\ngenerated:"),
         {"template a dev", "template a production"}, True),
    ]
    for what, change, expected, build in steps:
        change()
        seen = p.render(monkeypatch)
        want = Counter({**dict.fromkeys(expected, 1), **({"dependency": 1} if build else {})})
        assert seen == want, f"{layer}, after changing {what}: {seen}"
    assert "sized: '2'" in p.text("dev", "c", "c-plain")
    assert "from: library-hello" in p.text("prod", "a", "a-lib")
    assert "kube: v1.31.0" in p.text("dev", "a", "a-app")
    assert "monitoring: 'true'" in p.text("prod", "c", "c-plain")

    # another helm build: everything again (its version asked once, then remembered)
    other = _other_helm(tmp_path)
    assert p.render(monkeypatch, other) == Counter(
        {"version": 1, "dependency": 1, **dict.fromkeys(
            {"template a dev", "template c dev", "template a production",
             "template c production"}, 1)})
    assert p.render(monkeypatch, other) == Counter()


def test_dependencies_built_once_per_process_without_a_cache(
        template_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--no-cache`` renders every chart afresh, yet builds a chart's dependencies once for
    all its releases and environments in one process (``--jobs 1``: one process)."""
    from compiler.cli.main import main
    from compiler.cli.support import Tools

    p = Counted(template_project, tmp_path, "none")
    monkeypatch.setenv("MESHC_HELM", str(helm4()))
    monkeypatch.setenv("MESHC_CHART_CACHE", str(p.cache))
    result = CliRunner().invoke(main, ["-f", str(p.root / "meshfile.yaml"), "render",
                                       "--no-cache", "--jobs", "1"],
                                obj=Tools(p.runner), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    seen = Counter(p.log.read_text().splitlines())
    assert seen == Counter({"version": 1, "dependency": 1, "template a dev": 1,
                            "template b dev": 1, "template a prod": 1,
                            "template b prod": 1}), seen
    assert not (p.cache / "renders").exists()


def test_helm_version_kept_per_binary(tmp_path: Path) -> None:
    """helm's version is asked once per binary file: kept by its identity, asked again when
    the file is rewritten or another binary is named (no helm runs: the runner answers)."""
    from compiler.core.process import helm_tool

    asked: list[str] = []

    def runner(argv: Any, cwd: Path, env: Any = None, /) -> Completed:
        asked.append(argv[0])
        return Completed(0, f"v4.{len(asked)}.0+gtest\n", "")

    binary, other = tmp_path / "helm", tmp_path / "helm-other"
    for path in (binary, other):
        path.write_text("#!/bin/sh\n")
    memo = tmp_path / "memo"
    assert helm_tool(str(binary), runner, memo).version == "v4.1.0+gtest"
    assert helm_tool(str(binary), runner, memo).version == "v4.1.0+gtest"
    assert asked == [str(binary)]
    assert helm_tool(str(other), runner, memo).version == "v4.2.0+gtest"
    binary.write_text("#!/bin/sh\n# rebuilt\n")
    assert helm_tool(str(binary), runner, memo).version == "v4.3.0+gtest"
    assert helm_tool(str(binary), runner, None).version == "v4.4.0+gtest"  # no memo: asked
    assert len(asked) == 4
