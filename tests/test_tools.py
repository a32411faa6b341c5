"""The habits around the command: shell completion, pre-commit hooks, ``render --exit-code``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, copy_features_project, run_meshc, tree_files
from tests.test_cli import copy_example

project = pytest.fixture(name="project")(copy_features_project)


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F _meshc_completion"),
                                           ("zsh", "#compdef meshc"),
                                           ("fish", "complete --no-files --command meshc")])
def test_completion_prints_clicks_script_for_each_shell(shell: str, marker: str) -> None:
    code, out, _ = run_meshc("completion", shell)
    assert code == 0
    assert marker in out and "_MESHC_COMPLETE" in out


def test_completion_refuses_an_unknown_shell() -> None:
    code, _, err = run_meshc("completion", "tcsh")
    assert code == 2 and "'tcsh' is not one of" in err


def _complete(words: str) -> list[str]:
    """What the installed script gets back from meshc for the command line ``words``."""
    env = {**os.environ, "_MESHC_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    proc = subprocess.run([sys.executable, "-m", "compiler"], env=env, capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]


def test_the_completion_script_completes_commands_and_choices() -> None:
    assert _complete("meshc pr") == ["promote"]
    assert _complete("meshc plan production -o ") == ["text", "json", "sh", "markdown"]


def _hooks() -> dict[str, dict[str, object]]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: hook for hook in hooks}


def test_pre_commit_offers_check_and_render() -> None:
    hooks = _hooks()
    assert sorted(hooks) == ["meshc-check", "meshc-render"]
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert str(hook["entry"]).startswith("meshc ")


def _run_hook(hook: str, project: Path) -> int:
    """The hook's entry as pre-commit runs it: in the project's folder, no file names."""
    args = shlex.split(str(_hooks()[hook]["entry"]))[1:]
    return run_meshc(*args, cwd=project)[0]


def test_render_hook_fails_when_rendering_changes_files_and_passes_once_committed(
        tmp_path: Path) -> None:
    project = copy_example(tmp_path / "example", with_rendered=False)
    assert _run_hook("meshc-render", project) == 3          # no rendered/ yet: written
    assert _run_hook("meshc-render", project) == 0          # nothing to do
    assert _run_hook("meshc-check", project) == 0
    values = project / "environments" / "base" / "values.yaml"
    values.write_text(values.read_text(encoding="utf-8") + "\nhookProbe: 1\n", encoding="utf-8")
    assert _run_hook("meshc-check", project) == 1           # stale until re-rendered
    assert _run_hook("meshc-render", project) == 3
    assert _run_hook("meshc-render", project) == 0
    assert _run_hook("meshc-check", project) == 0


@pytest.mark.parametrize("extra", [(), ("--no-cache",), ("-j", "1")])
def test_render_exit_code_is_zero_when_the_bytes_are_the_same(project: Path,
                                                               extra: tuple[str, ...]) -> None:
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render")[0] == 0
    before = tree_files(project / "rendered")
    code, _, err = run_meshc("-f", meshfile, "render", "--exit-code", *extra)
    assert code == 0, err
    assert tree_files(project / "rendered") == before


def test_render_exit_code_sees_a_changed_file_in_one_environment(project: Path) -> None:
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render")[0] == 0
    victim = min((project / "rendered").rglob("values.yaml"))
    victim.write_text(victim.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")
    code, _, err = run_meshc("-f", meshfile, "render", "--exit-code", "--no-cache")
    assert code == 3, err
    assert "# edited by hand" not in victim.read_text(encoding="utf-8")
