"""The command line: help, exit codes, diagnostics, aliases, flags, and the plan JSON contract.

Driven in-process with click's CliRunner (``run_meshc``); the example at the repository's top
level is the project unless a test copies it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLE_INPUTS, ROOT, run_meshc

MESHFILE = str(ROOT / "meshfile.yaml")
DEPLOYABLE = ("development", "staging", "production/eu-west", "production/us-east",
              "production-dr")


def meshc(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    return run_meshc("-f", MESHFILE, *args, cwd=cwd)


def assert_diagnostic(code: int, err: str, *fragments: str) -> None:
    """Exit 1, an ``error:`` line on stderr, no traceback, and every fragment present."""
    assert code == 1, err
    assert "error:" in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in stderr:\n{err}"


def copy_example(dest: Path, with_rendered: bool = True) -> Path:
    for name in (*EXAMPLE_INPUTS, "rendered"):
        if name == "rendered" and not with_rendered:
            continue
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest / name)
    return dest


# --- help and usage errors --------------------------------------------------------------------

def _command_names() -> list[str]:
    from compiler.cli.main import main

    return sorted(main.commands)


def test_every_command_is_listed_in_the_main_help() -> None:
    code, out, err = run_meshc("--help")
    assert code == 0, err
    assert "Usage:" in out
    for name in _command_names():
        assert name in out
    assert {"plan", "render", "values", "graph"} <= set(_command_names())


@pytest.mark.parametrize("command", _command_names())
def test_help_of_every_command(command: str) -> None:
    for flag in ("--help", "-h"):
        code, out, err = run_meshc(command, flag)
        assert code == 0, err
        assert "Usage:" in out and command in out and "Traceback" not in out + err


def test_version() -> None:
    code, out, _ = run_meshc("--version")
    assert code == 0 and "meshc" in out


@pytest.mark.parametrize("args", [
    ["plan", "production", "--bogus"],
    ["--bogus", "plan", "production"],
    ["render", "--no-such-flag"],
    ["values", "production", "registry", "--output=xml"],
    ["plan", "production", "-o", "yaml"],
    ["graph", "-o", "png"],
    ["no-such-command"],
])
def test_unknown_option_or_value_exits_2(args: list[str]) -> None:
    code, _, err = meshc(*args)
    assert code == 2, err
    assert "Error" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["plan"], ["values"], ["values", "production"],
                                  ["plan", "production", "-o"], ["plan", "production", "--set"]])
def test_missing_argument_exits_2(args: list[str]) -> None:
    code, _, err = meshc(*args)
    assert code == 2, err
    assert ("Missing argument" in err or "requires an argument" in err), err


# --- unknown names ---------------------------------------------------------------------------

def test_unknown_environment_lists_the_valid_names() -> None:
    code, _, err = meshc("values", "qa", "registry")
    assert_diagnostic(code, err, "unknown environment 'qa'", *DEPLOYABLE)


def test_unknown_environment_near_miss_gets_a_suggestion() -> None:
    code, _, err = meshc("plan", "prodution")
    assert_diagnostic(code, err, "unknown environment 'prodution'", "did you mean 'production'?")


def test_abstract_environment_is_refused_with_the_deployable_names() -> None:
    code, _, err = meshc("values", "base", "registry")
    assert_diagnostic(code, err, "'base' is abstract", *DEPLOYABLE)


def test_unknown_release_lists_the_valid_names() -> None:
    code, _, err = meshc("values", "production/eu-west", "zzz")
    assert_diagnostic(code, err, "unknown release 'zzz'", "registry", "weather-agent",
                      "analytics-agent", "ingress", "prometheus")


def test_unknown_release_near_miss_gets_a_suggestion() -> None:
    code, _, err = meshc("values", "production/eu-west", "regsitry")
    assert_diagnostic(code, err, "unknown release 'regsitry'", "did you mean 'registry'?")


def test_release_not_deployed_in_the_environment_says_why() -> None:
    code, _, err = meshc("values", "development", "alertmanager")
    assert_diagnostic(code, err, "'alertmanager' is not deployed in 'development'")


# --- values, aliases, flags -----------------------------------------------------------------

def test_values_prod_registry_equals_the_committed_file() -> None:
    code, out, err = meshc("values", "prod/eu-west", "registry")
    assert code == 0, err
    expected = (ROOT / "rendered" / "production" / "eu-west" / "registry" /
                "values.yaml").read_text("utf-8")
    assert out == expected


@pytest.mark.parametrize("env", DEPLOYABLE)
def test_values_json_matches_values_yaml(env: str) -> None:
    from compiler.syntax.yamlsrc import load_values_text

    code, out, err = meshc("values", env, "registry", "-o", "json")
    assert code == 0, err
    committed = (ROOT / "rendered" / env / "registry" / "values.yaml").read_text("utf-8")
    assert json.loads(out) == load_values_text(committed, "values.yaml")


@pytest.mark.parametrize("args", [["plan", "{}"], ["plan", "{}", "-o", "json"],
                                  ["plan", "{}", "-o", "sh"], ["values", "{}", "registry"],
                                  ["graph", "{}", "-o", "json"]])
@pytest.mark.parametrize(("alias", "name"), [("dev", "development"),
                                           ("prod/eu-west", "production/eu-west")])
def test_aliases_are_the_environment(args: list[str], alias: str, name: str) -> None:
    by_alias = meshc(*[a.replace("{}", alias) for a in args])
    by_name = meshc(*[a.replace("{}", name) for a in args])
    assert by_alias[0] == 0, by_alias[2]
    assert by_alias == by_name


@pytest.mark.parametrize("fmt", ["text", "json", "sh"])
def test_an_alias_names_an_environment_deployed_in_regions(fmt: str) -> None:
    by_alias = meshc("plan", "prod", "-o", fmt)
    assert by_alias[0] == 0, by_alias[2]
    assert by_alias == meshc("plan", "production", "-o", fmt)


def test_set_flag_reaches_the_values() -> None:
    code, out, err = meshc("values", "production/eu-west", "weather-agent-blue",
                           "--set", "agents.weather.replicaCount=42")
    assert code == 0, err
    assert "\nreplicaCount: 42\n" in "\n" + out
    code, out, _ = meshc("values", "production/eu-west", "weather-agent-blue", "-o", "json",
                         "--set", "agents.weather.replicaCount=42")
    assert json.loads(out)["replicaCount"] == 42


def test_set_string_and_set_json_follow_helms_precedence() -> None:
    # --set-json, then --set, then --set-string, whatever the command-line order
    code, out, err = meshc("values", "production/eu-west", "weather-agent-blue", "-o", "json",
                           "--set-string", "agents.weather.replicaCount=7",
                           "--set", "agents.weather.replicaCount=8",
                           "--set-json", "agents.weather.replicaCount=9")
    assert code == 0, err
    assert json.loads(out)["replicaCount"] == "7"


def test_set_file_reads_the_file(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello\nworld\n")
    code, out, err = meshc("values", "production/eu-west", "weather-agent-blue", "-o", "json",
                           "--set-file", f"agents.weather.note={note}")
    assert code == 0, err
    assert json.loads(out)["note"] == "hello\nworld\n"


def test_set_file_with_a_missing_file_is_a_diagnostic(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    code, _, err = meshc("values", "production/eu-west", "weather-agent-blue",
                         "--set-file", f"agents.weather.note={missing}")
    assert_diagnostic(code, err, "nope.txt")


def test_malformed_set_is_a_diagnostic_not_a_usage_error() -> None:
    code, _, err = meshc("plan", "production", "--set", "agents.weather.replicaCount")
    assert_diagnostic(code, err, "--set")


def test_set_can_switch_a_condition() -> None:
    code, out, err = meshc("plan", "development", "-o", "json",
                           "--set", "monitoring.alertmanager.enabled=true")
    assert code == 0, err
    assert "alertmanager" in [s["release"] for s in json.loads(out)["steps"]]


# --- the meshfile ----------------------------------------------------------------------------

def test_missing_meshfile_is_a_diagnostic(tmp_path: Path) -> None:
    code, _, err = run_meshc("-f", str(tmp_path / "nowhere" / "meshfile.yaml"), "plan", "prod")
    assert_diagnostic(code, err, "no meshfile", "meshfile.yaml")


def test_default_meshfile_is_looked_up_in_the_current_directory(tmp_path: Path) -> None:
    code, _, err = run_meshc("plan", "prod", cwd=tmp_path)
    assert_diagnostic(code, err, "no meshfile")
    code, out, err = run_meshc("plan", "prod", "-o", "json", cwd=ROOT)
    assert code == 0, err
    assert json.loads(out)["environment"] == "production"


def test_meshfile_that_is_a_directory_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "meshfile.yaml").mkdir()
    code, _, err = run_meshc("-f", str(tmp_path / "meshfile.yaml"), "plan", "prod")
    assert_diagnostic(code, err, "is a directory")
    # without -f: the default meshfile.yaml a directory is a diagnostic too, not click's
    # "Invalid value for '-f'" (exit 2) about an option never passed
    code, _, err = run_meshc("plan", "prod", cwd=tmp_path)
    assert_diagnostic(code, err, "is a directory")
    assert "Invalid value" not in err


def test_file_option_after_the_command(tmp_path: Path) -> None:
    """`meshc plan prod -f x.yaml`, the Helmfile habit, is `meshc -f x.yaml plan prod`."""
    before = run_meshc("-f", MESHFILE, "plan", "production", "-o", "json")
    for args in (["plan", "production", "-f", MESHFILE, "-o", "json"],
                 ["plan", "production", "-o", "json", f"--file={MESHFILE}"]):
        assert run_meshc(*args, cwd=tmp_path) == before
    assert before[0] == 0


# --- plan --exit-code -------------------------------------------------------------------------

def test_exit_code_is_0_when_nothing_changed() -> None:
    for env in DEPLOYABLE:
        code, out, err = meshc("plan", env, "--exit-code")
        assert code == 0, f"{env}: {out}{err}"


def test_exit_code_is_3_after_a_values_change(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p")
    meshfile = str(project / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "plan", "production", "--exit-code")[0] == 0
    values = project / "environments" / "production" / "values.yaml"
    text = values.read_text("utf-8")
    assert "registry:\n  replicaCount: 5\n" in text
    values.write_text(text.replace("registry:\n  replicaCount: 5\n",
                                   "registry:\n  replicaCount: 6\n"), "utf-8")
    code, out, err = run_meshc("-f", meshfile, "plan", "production", "--exit-code")
    assert code == 3, out + err
    assert "changed" in out
    for fmt in ("json", "sh"):  # --exit-code works with every output format
        code, out, err = run_meshc("-f", meshfile, "plan", "production", "-o", fmt, "--exit-code")
        assert code == 3, out + err
        assert run_meshc("-f", meshfile, "plan", "staging", "-o", fmt, "--exit-code")[0] == 0
    # without --exit-code the same plan succeeds, and other environments are unaffected
    assert run_meshc("-f", meshfile, "plan", "production")[0] == 0
    assert run_meshc("-f", meshfile, "plan", "staging", "--exit-code")[0] == 0
    # after rendering, nothing differs any more
    assert run_meshc("-f", meshfile, "render")[0] == 0
    assert run_meshc("-f", meshfile, "plan", "production", "--exit-code")[0] == 0


def test_exit_code_is_3_when_nothing_is_rendered_yet(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p", with_rendered=False)
    code, out, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "staging",
                               "--exit-code")
    assert code == 3, out + err
    assert "new" in out


def test_exit_code_is_3_with_a_set_flag_that_changes_output() -> None:
    code, out, err = meshc("plan", "production", "--exit-code",
                           "--set", "agents.weather.canary.enabled=true")
    assert code == 3, out + err


@pytest.mark.parametrize("stale", [1, 10, 11])  # 10: "10 removed" contains "0 removed"
def test_exit_code_is_3_when_committed_releases_disappear(tmp_path: Path, stale: int) -> None:
    project = copy_example(tmp_path / "p")
    for i in range(stale):
        shutil.copytree(project / "rendered" / "production" / "eu-west" / "registry",
                        project / "rendered" / "production" / "eu-west" / f"old-{i}")
    code, out, err = run_meshc("-f", str(project / "meshfile.yaml"), "plan", "production",
                               "--exit-code")
    assert f"{stale} removed" in out, out
    assert code == 3, out + err


# --- plan JSON: the DESIGN.md contract --------------------------------------------------------

@pytest.mark.parametrize("env", DEPLOYABLE)
def test_plan_json_contract(env: str) -> None:
    code, out, err = meshc("plan", env, "-o", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert {"apiVersion", "kind", "environment", "protected", "waves", "steps"} <= set(plan)
    assert plan["apiVersion"] == "meshc/v1" and plan["kind"] == "Plan"
    assert plan["environment"] == env
    assert isinstance(plan["protected"], bool)
    steps = plan["steps"]
    assert steps, "the example deploys something everywhere"
    assert isinstance(plan["waves"], int) and plan["waves"] == max(s["wave"] for s in steps) + 1
    assert {s["wave"] for s in steps} == set(range(plan["waves"])), "no empty wave"
    assert [(s["wave"], s["release"]) for s in steps] == sorted(
        (s["wave"], s["release"]) for s in steps), "steps in execution order"
    wave_of = {s["release"]: s["wave"] for s in steps}
    assert len(wave_of) == len(steps), "each release once"
    for step in steps:
        assert {"release", "wave", "needs", "namespace", "action", "chart", "argv"} <= set(step)
        for need in step["needs"]:
            assert need in wave_of and wave_of[need] < step["wave"], (step["release"], need)
        if step["needs"]:  # a step is in the first wave its needs allow
            assert step["wave"] == max(wave_of[n] for n in step["needs"]) + 1
        else:
            assert step["wave"] == 0
        argv = step["argv"]
        assert argv[:3] == ["helm", "upgrade", "--install"]
        assert argv[3] == step["release"]
        assert argv[4] == step["chart"]
        assert argv[argv.index("--namespace") + 1] == step["namespace"]
        assert "--atomic" not in argv and "--recreate-pods" not in argv
        values = argv[argv.index("--values") + 1]
        assert values == f"rendered/{env}/{step['release']}/values.yaml"
        if step.get("remote"):
            assert "--repo" in argv and "--version" in argv
            assert step["helmChart"] == step["chart"] and step["chartDigest"].startswith("sha256:")
        elif "helmChart" in step:  # a local Helm chart, installed as itself
            assert step["chart"] == step["helmChart"] == "charts/mcp-mesh-platform"
        else:  # a Jinja chart: the wrapper chart of the reviewed manifests
            assert step["chart"] == f"rendered/{env}/{step['release']}"
    assert plan["protected"] == env.startswith("production")


@pytest.mark.parametrize("env", DEPLOYABLE)
def test_plan_json_is_the_committed_plan_json(env: str) -> None:
    """Byte for byte, but for the ``cost`` object `meshc plan -o json` adds: the estimate against
    the committed output (docs/cost.md), which the committed plan.json cannot hold."""
    code, out, err = meshc("plan", env, "-o", "json")
    assert code == 0, err
    printed = json.loads(out)
    cost = printed.pop("cost")
    assert json.dumps(printed, indent=2, ensure_ascii=False) + "\n" == \
        (ROOT / "rendered" / env / "plan.json").read_text("utf-8")
    assert cost["before"] == cost["after"] and cost["releases"] == []  # nothing changed


def test_plan_json_production_waves() -> None:
    plan = json.loads(meshc("plan", "production/eu-west", "-o", "json")[1])
    assert [(s["wave"], s["release"]) for s in plan["steps"]] == [
        (0, "prometheus"), (0, "registry"), (1, "alertmanager"), (1, "analytics-agent"),
        (1, "grafana"), (1, "platform"), (1, "weather-agent-blue"), (1, "weather-agent-green"),
        (2, "weather-agent"), (3, "ingress")]
    registry = next(s for s in plan["steps"] if s["release"] == "registry")
    assert registry["argv"][-6:] == ["--kube-context", "prod-eu", "--rollback-on-failure",
                                     "--wait", "--timeout", "15m"]


def test_plan_sh_is_a_strict_bash_script() -> None:
    code, out, err = meshc("plan", "production", "-o", "sh")
    assert code == 0, err
    assert out.startswith("#!") and "set -euo pipefail" in out
    assert "helm upgrade --install registry" in out


def test_render_reports_on_stderr_and_prints_nothing_on_stdout(tmp_path: Path) -> None:
    code, out, err = meshc("render", "staging", "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert out == ""
    assert "staging" in err
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["staging"]


def test_render_unknown_environment_writes_nothing(tmp_path: Path) -> None:
    code, _, err = meshc("render", "staging", "qa", "--out", str(tmp_path / "r"))
    assert_diagnostic(code, err, "unknown environment 'qa'")
    assert list(tmp_path.iterdir()) == []


# --- the README's promises, command by command (issue 20) -------------------------------------

def test_diff_summary_counts_releases_not_the_environment_wide_values() -> None:
    code, out, err = meshc("diff", "staging", "production/eu-west")
    assert code == 0, err
    summary = out.rstrip("\n").rsplit("\n", 1)[-1]
    code, data, err = meshc("diff", "staging", "production/eu-west", "-o", "json")
    releases = [r["release"] for r in json.loads(data)["releases"]]
    real = [r for r in releases if not r.startswith("(")]
    assert len(real) < len(releases), "the environment-wide pseudo-release is compared too"
    assert summary.startswith(f"summary: {len(real)} releases; environment-wide values "), summary


def test_diff_rendered_says_when_nothing_changes_and_speaks_json(tmp_path: Path) -> None:
    code, out, err = meshc("diff", "--rendered", "development")
    assert (code, out) == (0, "")
    assert "no changes: a render would leave rendered/development as it is" in err
    code, out, err = meshc("diff", "--rendered", "development", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == {"apiVersion": "meshc/v1", "kind": "RenderedDiff",
                               "environment": "development", "changed": False, "files": []}
    code, out, err = meshc("diff", "--rendered", "development", "-o", "json",
                           "--set", "registry.replicaCount=5", "--exit-code")
    assert code == 3, err
    files = {f["path"]: f for f in json.loads(out)["files"]}
    deployment = files["rendered/development/registry/manifests/deployment-registry.yaml"]
    assert deployment["change"] == "changed"
    assert "-  replicas: 1\n+  replicas: 5\n" in deployment["diff"]


def test_render_out_writes_the_bytes_of_the_output_directory(tmp_path: Path) -> None:
    """`--out DIR` is for comparing: the same bytes as rendered/, so its plan.json names
    rendered/ (the help and docs/commands/render.md say so)."""
    code, _, err = meshc("render", "development", "--out", str(tmp_path / "elsewhere"))
    assert code == 0, err
    plan = (tmp_path / "elsewhere/development/plan.json").read_text()
    assert plan == (ROOT / "rendered/development/plan.json").read_text()
    code, out, _ = meshc("render", "--help")
    assert "the same bytes, so plan.json still names the output directory's paths" in \
        " ".join(out.split())
