"""Day 2 (status, drift, history, rollback, verify, versions --live, apply --verify) on the
example, against the real Helm 4 replaying release records offline.

No Kubernetes API server can run here. Helm's memory driver (``HELM_DRIVER=memory``) replays
records that tests/helm_records.py builds from the committed ``rendered/`` (in sync, drifted,
failed, several revisions, missing); the real ``helm`` answers ``history``, ``status`` and
``rollback``. Nothing is written back, so the recording runner below keeps every argv meshc
passed and the tests assert on it; ``helm rollback`` is run with ``--dry-run=client`` added
(the argv recorded is meshc's own). kubectl is the real one only for the unreachable cluster;
``rollout status`` and the service-proxy answers come from a scripted stand-in, and a cluster
failing a rollback or an upgrade from scripted answers too.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import helm_records
import pytest
from click.testing import CliRunner
from conftest import ROOT

from compiler.cli import support as cli_support
from compiler.cli.main import main
from compiler.cli.support import Tools
from compiler.core.process import Completed, run_process

realtools = pytest.importorskip("realtools")

BIN = Path(sys.executable).parent
EXAMPLE_KEY = ROOT / "tests/keys/example-age-key.txt"
STUB_KUBECTL = "#!/bin/sh\necho 'the test runner answers for this stand-in' >&2\nexit 9\n"


@dataclass
class Cluster:
    """The recording runner: real helm on the memory driver (one records file per cluster and
    namespace: the memory driver knows no kube-contexts, and both production regions deploy to
    namespace mcp-mesh-production), the real kubectl or a scripted stand-in."""

    home: Path
    files: dict[tuple[str | None, str], str]  # (kube-context, namespace) → records file
    helm: str
    kubectl: str                              # the real one
    stand_in: str                             # the scripted kubectl's path
    unreachable: set[str] = field(default_factory=set)   # kube-contexts without a cluster
    fail: dict[str, str] = field(default_factory=dict)   # argv text fragment → stderr
    calls: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, argv: Sequence[str], cwd: Path,
                 env: Mapping[str, str] | None = None, /) -> Completed:
        argv = list(argv)
        with self.lock:
            self.calls.append(argv)
        text = " ".join(argv)
        for fragment, stderr in self.fail.items():
            if fragment in text:
                return Completed(1, "", stderr)
        if argv[0] == self.stand_in:
            return self.kubectl_answer(argv)
        environ = realtools.helm_env(self.home)
        context = argv[argv.index("--kube-context") + 1] if "--kube-context" in argv else None
        if argv[0] == self.helm and context not in self.unreachable:
            namespace = argv[argv.index("--namespace") + 1] if "--namespace" in argv else ""
            environ.update(HELM_DRIVER="memory",
                           HELM_MEMORY_DRIVER_DATA=self.files.get((context, namespace),
                                                                  self.empty))
            if argv[1] == "rollback":
                argv.append("--dry-run=client")  # the memory driver cannot tell; argv can
        return run_process(argv, cwd, environ)

    @property
    def empty(self) -> str:
        path = self.home / "none.json"
        path.write_text("[]\n")
        return str(path)

    def kubectl_answer(self, argv: list[str]) -> Completed:
        if argv[1:3] == ["rollout", "status"]:
            return Completed(0, f'{argv[3]} successfully rolled out\n', "")
        if argv[1:3] == ["get", "--raw"]:
            return Completed(0, '{"status":"healthy"}\n', "")
        return Completed(9, "", f"unscripted kubectl call: {argv}")

    def of(self, tool: str, verb: str | None = None) -> list[list[str]]:
        return [c for c in self.calls if c[0] == tool and (verb is None or c[1] == verb)]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str | None, str], str]:
    """The example's records (tests/helm_records.py SCENARIO), one file per deployable target
    (production/eu-west and production/us-east are two), keyed by the (kube-context, namespace)
    of the target's committed plan."""
    files = helm_records.record_files(ROOT, tmp_path_factory.mktemp("records"))
    return {(context, namespace): str(files[env])
            for env, (context, namespaces) in helm_records.clusters(ROOT).items()
            for namespace in namespaces}


@pytest.fixture()
def cluster(records: dict[tuple[str | None, str], str], tmp_path: Path) -> Cluster:
    stand_in = tmp_path / "kubectl"
    stand_in.write_text(STUB_KUBECTL)
    stand_in.chmod(0o755)
    return Cluster(tmp_path / "home", dict(records), str(realtools.helm4()),
                   str(realtools.kubectl()), str(stand_in))


def meshc(cluster: Cluster, *args: str, input: str | None = None,
          env: Mapping[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["-f", str(ROOT / "meshfile.yaml"), *args], obj=Tools(cluster), input=input,
        env={"MESHC_HELM": cluster.helm, "MESHC_KUBECTL": cluster.stand_in, "NO_COLOR": "1",
             **(env or {})}, catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def rows(out: str) -> dict[tuple[str, str], list[str]]:
    return {(line.split()[0], line.split()[1]): line.split() for line in out.splitlines()
            if line.startswith(("development ", "staging ", "production"))
            and not line.split()[0].endswith(":")}  # not a note (production-dr: unreachable)


# --- status ------------------------------------------------------------------------------------

def test_status_every_environment_one_unreachable(cluster: Cluster) -> None:
    cluster.unreachable = {"prod-dr"}
    code, out, err = meshc(cluster, "status")
    table = rows(out)
    assert table[("staging", "registry")][-1] == "drifted"
    assert table[("staging", "analytics-agent")][3:5] == ["2", "failed"]
    assert table[("staging", "analytics-agent")][-1] == "failed"
    assert table[("staging", "ingress")][-1] == "not-deployed"
    assert table[("development", "weather-agent-blue")][3:7] == [
        "3", "deployed", "weather-agent-blue-0.1.0", "1.1.0-dev.1"]
    regions = ("production/eu-west", "production/us-east")
    assert {env for env, _ in table} == {"development", "staging", *regions, "production-dr"}
    for region in regions:
        assert table[(region, "grafana")][5:7] == ["grafana-7.3.0", "10.3.1"]
    assert all(r[-1] == "in-sync" for (env, _), r in table.items() if env in regions)
    assert all(r[-1] == "unreachable" for (env, _), r in table.items() if env == "production-dr")
    assert out.strip().splitlines()[-1] == (
        "summary: 5 environments, 44 releases: 32 in-sync, 1 drifted, 1 failed, "
        "1 not-deployed, 9 unreachable")
    # the unreachable cluster: said once (table note, one diagnostic), asked once
    assert out.count("production-dr: unreachable (kube-context prod-dr)") == 1
    assert err.count("error: production-dr: the cluster of kube-context 'prod-dr' cannot be "
                      "reached") == 1 and 'context "prod-dr" does not exist' in err
    assert code == 1
    dr = [c for c in cluster.calls if "prod-dr" in c]
    assert dr == [[cluster.helm, "list", "--namespace", "mcp-mesh-production-dr",
                   "--kube-context", "prod-dr", "--deployed", "--failed", "--pending",
                   "--uninstalling", "--max", "0", "-o", "json"]]
    for context in ("prod-eu", "prod-us"):  # each region asks its own cluster
        assert [cluster.helm, "status", "registry", "--namespace", "mcp-mesh-production",
                "--kube-context", context, "-o", "json"] in cluster.calls
    assert len(cluster.of(cluster.helm, "list")) == 5  # one per target's cluster and namespace
    assert not any(c[1] == "status" and c[2] == "ingress" and "mcp-mesh-staging" in c
                   for c in cluster.calls)  # not deployed: nothing more to ask


def test_status_json_and_exit_code(cluster: Cluster) -> None:
    code, out, _ = meshc(cluster, "status", "dev", "staging", "-o", "json", "--exit-code")
    assert code == 3
    data = json.loads(out)
    assert [e["name"] for e in data["environments"]] == ["development", "staging"]
    registry = data["environments"][1]["releases"][1]
    assert registry == {"release": "registry", "namespace": "mcp-mesh-staging", "revision": 1,
                        "status": "deployed", "chart": "registry-0.1.0", "appVersion": "1.0.0",
                        "updated": "2026-11-01T10:00:00Z", "sync": "drifted"}


def test_status_with_a_failing_or_missing_helm(cluster: Cluster, tmp_path: Path) -> None:
    code, _, err = meshc(cluster, "status", "--helm", str(tmp_path / "nope"))
    assert code == 1 and f"--helm {tmp_path / 'nope'}: not an executable file" in err
    code, _, err = meshc(cluster, "status", "development", env={"MESHC_HELM": None,
                                                                "PATH": str(tmp_path)})
    assert code == 1 and "helm is not installed" in err
    cluster.fail = {"status weather-agent --namespace":
                    "Error: query: failed to query with labels: boom"}
    code, out, err = meshc(cluster, "status", "development")
    assert code == 1
    assert rows(out)[("development", "weather-agent")][-1] == "error"
    assert ("error: development/weather-agent: helm failed: query: failed to query with "
            "labels: boom") in err


# --- drift -------------------------------------------------------------------------------------

def test_drift_lists_fields_in_the_plans_change_lines(cluster: Cluster) -> None:
    code, out, err = meshc(cluster, "drift", "staging", "--exit-code")
    assert code == 3, err
    assert helm_records.FAKE_SECRET not in out  # secrets are never printed
    image = ('      ~ Deployment/analytics-agent spec.template.spec.containers[name=agent].image: '
             '"registry.mcp-mesh.io/mcp-mesh/analytics-agent:1.0.1" → '
             '"registry.mcp-mesh.io/mcp-mesh/analytics-agent:1.0.0"')
    expected = ["  registry (revision 1, deployed): drifted",
                "      - values debug: true",
                "      - ConfigMap/hand-made-debug",
                "      ~ Deployment/registry spec.replicas: 5 → 3",
                "  analytics-agent (revision 2, failed): failed",
                image,
                "  grafana (revision 1, deployed): in-sync"]
    assert "\n".join(expected) in out
    assert "  ingress: not-deployed" in out
    code, out, _ = meshc(cluster, "drift", "staging", "--release", "registry", "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert [r["release"] for r in data["releases"]] == ["registry"]
    assert data["releases"][0]["values"] == [
        {"path": "debug", "change": "removed", "live": True, "rendered": None}]
    code, out, _ = meshc(cluster, "drift", "development", "--exit-code")
    assert code == 0 and "6 releases: 6 in-sync" in out


def test_drift_sees_a_missing_secret_and_a_changed_secret_key(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    def no_secret(docs: list, values: dict) -> None:
        del values["database"]["password"]
        secret = next(d for d in docs if d["kind"] == "Secret")
        docs.remove(secret)

    files = helm_records.record_files(ROOT, tmp_path / "r", {
        ("production/eu-west", "registry"): [("deployed", no_secret)],
        ("production/eu-west", "weather-agent"): [("deployed", None), ("pending-upgrade", None)]},
        envs=("production/eu-west",))
    cluster.files[("prod-eu", "mcp-mesh-production")] = str(files["production/eu-west"])
    code, out, _ = meshc(cluster, "drift", "production/eu-west", "--release", "registry",
                         "--release", "weather-agent")
    assert code == 0
    assert "  weather-agent (revision 2, pending-upgrade): pending" in out
    assert "      + values database.password: \"(secret)\"" in out
    assert "      + Secret/mcp-mesh-database" in out


def test_drift_errors(cluster: Cluster) -> None:
    code, _, err = meshc(cluster, "drift", "staging", "--release", "regsitry")
    assert code == 1 and "release 'regsitry' is not deployed in 'staging'" in err
    assert "did you mean 'registry'?" in err
    code, out, err = meshc(cluster, "drift", "prod")  # deployed in regions: drift takes one
    assert code == 1 and out == "" and "environment 'production' is deployed in regions" in err
    assert "its regions: production/eu-west, production/us-east" in err
    cluster.unreachable = {"prod-eu"}
    code, out, err = meshc(cluster, "drift", "prod/eu-west")
    assert code == 1 and out == ""
    assert err.count("cannot be reached") == 1 and "Traceback" not in err


# --- history and rollback -------------------------------------------------------------------

def test_history(cluster: Cluster) -> None:
    code, out, _ = meshc(cluster, "history", "development", "weather-agent-blue")
    assert code == 0
    assert out.splitlines()[2].split()[:4] == ["1", "2026-11-01T10:00:00Z", "superseded",
                                               "weather-agent-blue-0.1.0"]
    assert out.splitlines()[4].split()[2] == "deployed"
    code, out, _ = meshc(cluster, "history", "staging", "analytics-agent", "-o", "json")
    assert [(r["revision"], r["status"]) for r in json.loads(out)["revisions"]] == [
        (1, "superseded"), (2, "failed")]
    code, _, err = meshc(cluster, "history", "staging", "ingress")
    assert code == 1 and "no history: it was never deployed there" in err
    code, _, err = meshc(cluster, "history", "staging", "wether-agent")
    assert code == 1 and "did you mean 'weather-agent'?" in err


def test_rollback_dry_run_reverses_the_waves_and_runs_nothing(cluster: Cluster) -> None:
    code, out, err = meshc(cluster, "rollback", "development", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == [
        "# wave 0",
        "helm rollback weather-agent-blue 2 --namespace mcp-mesh-development --timeout 5m",
        "# wave 1",
        "helm rollback registry 1 --namespace mcp-mesh-development --timeout 5m"]
    assert ("left as they are (no previous good revision to roll back to): platform, "
            "weather-agent-green, weather-agent, ingress" in err)
    assert cluster.of(cluster.helm, "rollback") == []


def test_rollback_runs_dependents_first_and_stops_after_a_failure(cluster: Cluster) -> None:
    code, out, err = meshc(cluster, "rollback", "development", "registry", "weather-agent-blue")
    assert code == 0, err
    assert [c[:4] for c in cluster.of(cluster.helm, "rollback")] == [
        [cluster.helm, "rollback", "weather-agent-blue", "2"],
        [cluster.helm, "rollback", "registry", "1"]]
    assert "rolled back development: 2 releases" in out
    cluster.calls.clear()
    cluster.fail = {"rollback weather-agent-blue": "Error: timed out waiting for the condition"}
    code, out, err = meshc(cluster, "rollback", "development", "registry", "weather-agent-blue")
    assert code == 1
    assert [c[2] for c in cluster.of(cluster.helm, "rollback")] == ["weather-agent-blue"]
    assert "rollback of development failed: 1 release failed, 1 not started" in out
    assert "release 'weather-agent-blue' failed" in err and "timed out waiting" in err


def test_rollback_errors(cluster: Cluster) -> None:
    code, _, err = meshc(cluster, "rollback", "staging", "analytics-agent", "--to-revision", "7")
    assert code == 1 and "release 'analytics-agent' in 'staging' has no revision 7" in err
    assert "1  superseded" in err and "2  failed" in err  # the history, listed
    code, _, err = meshc(cluster, "rollback", "staging", "weather-agent", "ingress")
    assert code == 1 and "no previous good revision" in err and "no history" in err
    assert cluster.of(cluster.helm, "rollback") == []


def test_rollback_of_a_protected_environment_asks(cluster: Cluster,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = meshc(cluster, "rollback", "production/eu-west", "registry",
                         "--to-revision", "1")
    assert code == 1 and "is protected and there is no terminal" in err
    monkeypatch.setattr(cli_support, "can_prompt", lambda: True)
    code, _, err = meshc(cluster, "rollback", "prod/eu-west", "registry", "--to-revision", "1",
                         input="staging\n")
    assert code == 1 and "cancelled" in err
    assert cluster.of(cluster.helm, "rollback") == []
    code, _, err = meshc(cluster, "rollback", "prod/eu-west", "registry", "--to-revision", "1",
                         input="production/eu-west\n")
    assert code == 0, err
    assert cluster.of(cluster.helm, "rollback") == [[
        cluster.helm, "rollback", "registry", "1", "--namespace", "mcp-mesh-production",
        "--kube-context", "prod-eu", "--wait", "--timeout", "15m", "--dry-run=client"]]


# --- verify ---------------------------------------------------------------------------------

def test_verify_rollouts_then_health_checks(cluster: Cluster) -> None:
    cluster.fail = {"services/weather-agent:http/proxy/health":
                    "Error from server (ServiceUnavailable): the server is currently unable "
                    "to handle the request"}
    code, out, err = meshc(cluster, "verify", "staging", "--timeout", "90s")
    assert code == 1
    kubectl = [c[1:] for c in cluster.calls if c[0] == cluster.stand_in]
    assert ["rollout", "status", "deployment/registry", "--namespace", "mcp-mesh-staging",
            "--timeout", "90s"] in kubectl
    assert ["rollout", "status", "daemonset/prometheus-prometheus-node-exporter",
            "--namespace", "mcp-mesh-staging", "--timeout", "90s"] in kubectl
    proxy = "/api/v1/namespaces/mcp-mesh-staging/services/registry:http/proxy/health"
    assert ["get", "--raw", proxy] in kubectl
    first_http = next(i for i, c in enumerate(kubectl) if c[0] == "get")
    assert all(c[0] == "rollout" for c in kubectl[:first_http])  # roll-outs first
    assert "  ok      registry http registry:http/proxy/health" in out
    assert ("error: staging: weather-agent: http weather-agent:http/proxy/health failed: "
            "Error from server (ServiceUnavailable)") in err
    assert "summary: staging: 11 ok, 1 failed, 0 skipped" in out  # a rollout per slot


def test_verify_errors(cluster: Cluster, tmp_path: Path) -> None:
    code, _, err = meshc(cluster, "verify", "staging", "--kubectl", str(tmp_path / "nope"))
    assert code == 1 and "not an executable file" in err
    cluster.fail = {"deployment/registry": "error: deployment \"registry\" exceeded its "
                                           "progress deadline"}
    code, out, err = meshc(cluster, "verify", "development", "-o", "json")
    data = json.loads(out)
    assert code == 1 and not data["ok"]
    assert {c["target"]: c["status"] for c in data["checks"]}["registry:http/proxy/health"] == \
        "skipped"
    # a blue-green release: its health check (on the router's Service) waits for the live slot
    cluster.fail = {"deployment/weather-agent-blue": "error: deployment \"weather-agent-blue\" "
                                                     "exceeded its progress deadline"}
    code, out, err = meshc(cluster, "verify", "development", "-o", "json")
    statuses = {c["target"]: c["status"] for c in json.loads(out)["checks"]}
    assert code == 1 and statuses["weather-agent:http/proxy/health"] == "skipped", statuses
    assert statuses["registry:http/proxy/health"] == "ok"
    # the real kubectl, no cluster: said once, nothing else asked
    code, out, err = meshc(cluster, "verify", "production/eu-west",
                           env={"MESHC_KUBECTL": cluster.kubectl,
                                "KUBECONFIG": str(tmp_path / "none")})
    assert code == 1 and err.count("cannot be reached") == 1
    assert len([c for c in cluster.calls if c[0] == cluster.kubectl]) == 1
    # the real kubectl, no kube-context (staging): the runner's kubeconfig has a server but no
    # credentials, so kubectl asks for a username on a closed stdin; still said once
    cluster.calls.clear()
    code, out, err = meshc(cluster, "verify", "staging", env={"MESHC_KUBECTL": cluster.kubectl})
    assert code == 1 and err.count("cannot be reached") == 1, err
    assert len([c for c in cluster.calls if c[0] == cluster.kubectl]) == 1


def test_apply_verify_stops_before_the_next_wave(cluster: Cluster) -> None:
    # helm upgrade needs a cluster: scripted here (the memory driver cannot install)
    cluster.fail = {"services/registry:http/proxy/health": "Error from server: 503"}
    original = cluster.__call__

    def runner(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
               /) -> Completed:
        if argv[1:2] == ["upgrade"]:
            with cluster.lock:
                cluster.calls.append(list(argv))
            return Completed(0, "upgraded\n", "")
        return original(argv, cwd, env)

    result = CliRunner().invoke(
        main, ["-f", str(ROOT / "meshfile.yaml"), "apply", "development", "--verify",
               "--helm", cluster.helm],
        obj=Tools(runner), env={"MESHC_KUBECTL": cluster.stand_in, "NO_COLOR": "1",
                                "SOPS_AGE_KEY_FILE": str(EXAMPLE_KEY), "SOPS_AGE_KEY": None,
                                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        catch_exceptions=False)
    assert result.exit_code == 1, result.stderr
    upgraded = [c[3] for c in cluster.calls if c[1:2] == ["upgrade"]]
    assert upgraded == ["registry"]  # wave 0 only: its verify failed
    assert "apply of development stopped after wave 0: verify failed, 5 not started" in \
        result.stdout
    assert "registry:http/proxy/health failed: Error from server: 503" in result.stderr


# --- versions --live ----------------------------------------------------------------------

def test_versions_live_and_a_broken_promotion_order(cluster: Cluster, tmp_path: Path) -> None:
    files = helm_records.record_files(ROOT, tmp_path / "r", {  # the live slot, ahead
        ("production/eu-west", "weather-agent-blue"): [("deployed", helm_records.older("1.2.0"))]},
        envs=("production/eu-west",))
    cluster.files[("prod-eu", "mcp-mesh-production")] = str(files["production/eu-west"])
    code, out, err = meshc(cluster, "versions", "--live", "staging", "production/eu-west")
    assert code == 1
    lines = {" ".join(x.split()) for x in out.splitlines()}
    assert "weather-agent-blue image agent 1.0.1-rc.1 live 1.2.0 live" in lines  # what runs
    assert "weather-agent-green image agent 1.0.1-rc.1 idle 1.0.0 idle" in lines
    assert "weather-agent image agent 1.0.1-rc.1 * 1.2.0 >" in lines  # the live slot's, compared
    assert "registry image registry 1.0.0 * 1.0.0 =" in lines
    assert "grafana chart 7.3.0 * 7.3.0 =" in lines
    assert "analytics-agent image agent disabled 1.0.0 *" in lines  # failed in staging
    assert ("error: live promotion order broken: production/eu-west runs weather-agent "
            "image agent 1.2.0, newer than staging's 1.0.1-rc.1") in err
    assert ("help: promote through staging first, or roll production/eu-west back (meshc "
            "rollback production/eu-west weather-agent-blue)") in err
    assert "weather-agent-blue image agent" not in err  # slots are shown, not compared


# --- the meshfile's verify: -------------------------------------------------------------------

def test_verify_checks_are_read_with_spans_and_bad_ones_are_diagnosed() -> None:
    from compiler.core.diagnostics import Diagnostics
    from compiler.model.load import load_meshfile

    text = """\
apiVersion: meshc/v1
environments: {dev: {}}
releases:
  a:
    chart: c
    verify: [{http: {service: a, port: http, path: /health}}, {http: {service: a, port: 8080}}]
  b: {chart: c, verify: {http: {}}}
  c: {chart: c, verify: [{http: {service: c}}, {tcp: {port: 1}}, {http: {service: c, port: true}}]}
"""
    diags = Diagnostics()
    spec = load_meshfile(text, "meshfile.yaml", diags)
    a = next(r for r in spec.releases if r.name == "a")
    assert [(c.service, c.port, c.path, c.proxy_path) for c in a.verify] == [
        ("a", "http", "/health", "a:http/proxy/health"), ("a", "8080", "/", "a:8080/proxy/")]
    assert a.verify[0].span.line == 6
    messages = [(d.message, d.span.line if d.span else None) for d in diags.items]
    assert ("release 'b': verify must be a list, found a map", 7) in messages
    assert ("release 'c': verify: http needs 'port'", 8) in messages
    assert ("unknown key 'tcp' in release 'c': verify item", 8) in messages
    assert ("release 'c': verify: http port must be a number or a port name", 8) in messages


def test_status_and_rollback_refuse_a_helm_of_another_major(cluster: Cluster) -> None:
    """The example's plans are for Helm 4: with the real Helm 3.15.3, status and rollback ask
    `helm version --short` once and stop before any other helm call."""
    helm3 = str(realtools.helm3())
    cluster.helm = helm3
    for args in (["status"], ["rollback", "staging", "analytics-agent", "--dry-run"]):
        cluster.calls.clear()
        code, _, err = meshc(cluster, *args, env={"MESHC_HELM": helm3})
        assert code == 1, err
        assert "is Helm v3.15.3" in err and "is for Helm 4: refusing before any step runs" in err
        assert "--helm-version 3" in err, err
        assert [c[1:] for c in cluster.calls] == [["version", "--short"]], cluster.calls
