"""The ``meshc`` entry point (compiler/cli/launch.py) answers an unchanged plain ``meshc render``
from the journal before loading the compiler, and hands everything else to the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, copy_features_project, run_meshc

from compiler.cli import render as cli_render
from compiler.cli.launch import plain_render
from compiler.output.journal import command_line

project = pytest.fixture(name="project")(copy_features_project)


def launch(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``meshc ARGS`` through the entry point, in a fresh process; it reports whether it
    loaded the compiler's command line."""
    code = ("import sys, atexit\n"
            "atexit.register(lambda: print('cli loaded' if 'compiler.cli.main' in sys.modules "
            "else 'cli not loaded', file=sys.stderr))\n"
            "from compiler.cli.launch import main\n"
            f"sys.argv = ['meshc', *{list(args)!r}]\n"
            "main()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_unchanged_render_is_answered_without_loading_the_compiler(project: Path) -> None:
    first = launch(project, "render")
    assert first.returncode == 0, first.stderr
    assert "rendered 3 environments" in first.stderr and "cli loaded" in first.stderr
    again = launch(project, "render")
    assert again.returncode == 0, again.stderr
    assert again.stderr == ("rendered is up to date (30 files: written 0, removed 0, unchanged 30)\n"
                            "cli not loaded\n")
    (project / "env" / "qa.yaml").write_text((project / "env" / "qa.yaml").read_text() + "x: 1\n")
    changed = launch(project, "render", "-v")
    assert changed.returncode == 0, changed.stderr
    assert "written 1, removed 0, unchanged 29" in changed.stderr, changed.stderr
    assert "qa/plan.json" in changed.stderr, changed.stderr  # its inputsDigest; nothing else
    assert "cli loaded" in changed.stderr


@pytest.mark.parametrize("argv", [
    ["render", "dev"], ["render", "--no-cache"], ["--limit=templateSteps=9", "render"],
    ["render", "--set-file", "a=b"], ["plan", "live"], ["render", "-j0"], ["render", "-j2"],
    ["render", "--help"], ["-f"], ["render", "--out"], ["--version"], [], ["render", "--"],
    ["render", "--lock-timeout", "-1"], ["-fx.yaml", "render"],
])
def test_anything_but_a_plain_render_goes_to_the_cli(argv: list[str]) -> None:
    assert plain_render(argv) is None


@pytest.mark.parametrize("argv", [
    ["render"],
    ["-f", "meshfile.yaml", "render", "--out", "out", "-j", "2"],
    ["--file=meshfile.yaml", "render", "--out=/tmp/x", "--jobs=1", "--lock-timeout", "5"],
    ["render", "--set", "a=1", "--set-string", "b=2", "--set", "a=3", "--set-json", "c=[1]",
     "--set-literal", "d=x,y"],
])
def test_the_launcher_reads_a_plain_render_as_the_cli_does(argv: list[str],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           project: Path) -> None:
    seen: list[dict[str, Any]] = []

    def capture(project_root: Path, command: dict[str, Any], lock_timeout: float,
                say: Any) -> bool:
        seen.append(command)
        return True  # "up to date": stop there

    monkeypatch.setattr(cli_render, "answer", capture)
    monkeypatch.chdir(project)
    code, _, err = run_meshc(*argv)
    assert code == 0, err
    parsed = plain_render(argv)
    assert parsed is not None
    meshfile, out, flags, _ = parsed
    assert seen == [command_line(meshfile, out, flags, ())]


def test_set_flags_keep_their_order_within_a_kind() -> None:
    one = command_line(Path("m.yaml"), None, [("set", "a=1"), ("set", "a=2")], ())
    two = command_line(Path("m.yaml"), None, [("set", "a=2"), ("set", "a=1")], ())
    assert one != two
    mixed = command_line(Path("m.yaml"), None, [("set-string", "b=1"), ("set", "a=1")], ())
    assert mixed == command_line(Path("m.yaml"), None, [("set", "a=1"), ("set-string", "b=1")],
                                 ())
