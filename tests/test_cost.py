"""meshc cost: Kubernetes quantities, the estimator against totals computed by hand, prices
(defaults, inheritance, implausible ones refused), the SVG's structure, the check rules, and
the cost of a change in ``meshc plan`` (the example's ``--set registry.replicaCount=8``).

The hand computation (tests/golden/cost/project, environment ``prod``; docs/cost.md shows it
too). Prices per hour: cpu 0.04, memory 0.005 (GiB), gpu 2.5 (prod's own; the rest inherited
from base), storage 0.0001 (GiB), loadBalancer 0.03; 4 nodes; a month is 730 h. Each item's
cost of each resource is rounded to the cent, half up; totals add those cents.

- api: Deployment with an HPA 3–6. Per pod: init container 2 CPU / 1Gi alone beats the app
  containers' 500m + 250m / 512Mi + 256Mi, so 2 vCPU and 1 GiB.
  floor 3: cpu 6 × 0.04 × 730 = 175.20; memory 3 × 0.005 × 730 = 10.95.
  ceiling 6: 350.40 + 21.90. Service api-public (LoadBalancer): 0.03 × 730 = 21.90.
  api = 175.20 + 10.95 + 21.90 = 208.05 (ceiling 350.40 + 21.90 + 21.90 = 394.20).
- db: StatefulSet, 3 replicas, postgres 1 CPU / 2048Mi plus pod overhead 100m / 64Mi.
  cpu 3 × 1.1 × 29.2 = 96.36; memory 3 × 2.0625 × 3.65 = 22.584375 → 22.58;
  volumeClaimTemplate data 100Gi × 3 = 300 GiB × 0.0001 × 730 = 21.90. db = 140.84.
- ml: Deployment, 1 replica, 4 CPU / 16Gi, nvidia.com/gpu 1 (a limit: the request).
  cpu 116.80; memory 58.40; gpu 2.5 × 730 = 1825.00;
  PVC datasets 1T = 10^12 / 2^30 GiB = 931.32257… × 0.073 = 67.9865… → 67.99. ml = 2068.19.
- worker: Deployment, 2 replicas: container 'worker' requests nothing (listed, priced at zero),
  log-shipper has limits 100m / 128Mi only (the requests default to them):
  cpu 0.2 × 29.2 = 5.84; memory 0.25 × 3.65 = 0.9125 → 0.91.
  DaemonSet node-agent 50m / 64Mi on 4 nodes: again 5.84 + 0.91. CronJob cleanup: listed.
  worker = 13.50.
- search: declared estimate (cpu 2, memory 4Gi, 3 replicas, 50Gi storage, 1 load balancer):
  cpu 6 × 29.2 = 175.20; memory 12 × 3.65 = 43.80; storage 150 × 0.073 = 10.95; LB 21.90.
  search = 251.85.
prod = 208.05 + 140.84 + 2068.19 + 13.50 + 251.85 = 2682.43 (ceiling 2868.58).
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import GOLDEN, ROOT, run_meshc
from hypothesis import given
from hypothesis import strategies as st

from compiler.check import CheckOptions, run_checks
from compiler.core.files import ProjectFiles
from compiler.cost.estimate import Amounts, ReleaseInput, estimate_tree
from compiler.cost.prices import DEFAULT_PRICES, Prices
from compiler.cost.quantity import QuantityError, parse_quantity
from compiler.model.fields import QUANTITY
from compiler.pipeline import load_project

PROJECT = GOLDEN / "cost" / "project"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(("text", "exact"), [
    ("100m", "0.1"), ("1Gi", "1073741824"), ("500M", "500000000"), ("1e3", "1000"),
    ("0.5", "0.5"), (2, "2"), (0.1, "0.1"), ("1.5Ki", "1536"), ("12E6", "12000000"),
    ("1E", "1000000000000000000"), (".5", "0.5"), ("250u", "0.00025"), ("3n", "3E-9"),
    ("+1k", "1000"), ("1T", "1000000000000"), ("2Ti", "2199023255552")])
def test_quantities_parse_exactly(text, exact):
    assert parse_quantity(text) == Decimal(exact)


@pytest.mark.parametrize("text", ["", "1Gb", "Gi", "1.2.3", "ten", "1 Gi", "1e", "0x10", True,
                                  None, "1KiB", "--1"])
def test_what_is_not_a_quantity_is_refused(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)
    if isinstance(text, str):  # the loader's pattern (meshfile estimates) agrees
        assert re.fullmatch(QUANTITY, text) is None


@given(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
       st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "E-2"]))
def test_the_loader_pattern_and_the_parser_accept_the_same_quantities(number, suffix):
    text = f"{number}{suffix}"
    assert re.fullmatch(QUANTITY, text) is not None
    assert parse_quantity(text) >= 0


# --- the hand-computed project ----------------------------------------------------------------

@pytest.fixture(scope="module")
def prod_json(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("cost") / "p"
    shutil.copytree(PROJECT, work)
    code, out, err = run_meshc("-f", str(work / "meshfile.yaml"), "cost", "-o", "json")
    assert code == 0, err
    return {env["environment"]: env for env in json.loads(out)["environments"]}


def test_hand_computed_totals_match_to_the_cent(prod_json):
    prod = prod_json["prod"]
    by_release = {r["release"]: r for r in prod["releases"]}
    assert {name: (r["monthly"], r["ceiling"]) for name, r in by_release.items()} == {
        "api": (208.05, 394.20), "db": (140.84, 140.84), "ml": (2068.19, 2068.19),
        "worker": (13.50, 13.50), "search": (251.85, 251.85)}
    assert prod["monthly"] == 2682.43 and prod["ceiling"] == 2868.58
    assert prod["byResource"] == {"monthly": 2682.43, "cpu": 575.24, "memory": 137.55,
                                  "gpu": 1825.0, "storage": 100.84, "loadBalancer": 43.8}
    assert by_release["db"]["byResource"]["memory"] == 22.58   # 22.584375, half up
    assert by_release["ml"]["byResource"]["storage"] == 67.99  # 1T: decimal bytes
    assert by_release["search"]["declared"] is True


def test_pod_requests_follow_kubernetes_effective_request(prod_json):
    items = {(i["kind"], i["name"]): i for r in prod_json["prod"]["releases"]
             for i in r["items"]}
    api = items[("Deployment", "api")]
    assert api["each"] == {"cpu": 2, "memory": 1}             # the init container's peak
    assert api["replicas"] == {"floor": 3, "ceiling": 6} and api["scaling"] == "HPA api: 3–6"
    assert items[("StatefulSet", "db")]["each"] == {"cpu": 1.1, "memory": 2.0625}  # + overhead
    assert items[("PersistentVolumeClaim", "data (db)")]["replicas"]["floor"] == 3
    assert items[("Deployment", "trainer")]["each"]["gpu"] == 1
    assert items[("DaemonSet", "node-agent")]["replicas"] == {"floor": 4, "ceiling": 4}
    assert items[("Service", "api-public")]["each"] == {"loadBalancer": 1}


def test_what_cannot_be_priced_is_listed(prod_json):
    listed = {(u["release"], u["what"]) for u in prod_json["prod"]["notEstimated"]}
    assert listed == {("worker", "CronJob/cleanup"),
                      ("worker", "Deployment/worker container 'worker'")}


def test_prices_inherit_key_by_key_over_opencost_defaults(prod_json):
    dev, prod = prod_json["dev"], prod_json["prod"]
    assert prod["prices"] == {"cpu": 0.04, "memory": 0.005, "gpu": 2.5, "storage": 0.0001,
                              "loadBalancer": 0.03}
    assert dev["prices"]["gpu"] == 0.95 and dev["defaultPrices"] == ["gpu"]
    assert (dev["nodes"], prod["nodes"]) == (2, 4)


def test_a_daemonset_without_a_node_count_is_priced_per_node_and_listed():
    doc = {"kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {"template": {"spec": {
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}}}
    prices = Prices("USD", tuple(DEFAULT_PRICES.items()))
    cost = estimate_tree("e", prices, [ReleaseInput("r", (("a.yaml", doc),))])
    assert cost.releases[0].items[0].scaling == "per node"
    assert cost.floor.total == Decimal("23.08") + Decimal("3.09")  # one node: 1 vCPU, 1 GiB
    assert "priced for one node" in cost.unpriced[0].why


def test_remote_release_without_manifests_is_listed_never_zero_silently():
    prices = Prices("USD", tuple(DEFAULT_PRICES.items()))
    cost = estimate_tree("e", prices, [ReleaseInput("search", None)])
    assert cost.floor.total == 0
    assert "cost: {estimate" in cost.unpriced[0].why


@given(st.lists(st.tuples(st.sampled_from(["Deployment", "StatefulSet", "Pod"]),
                          st.integers(0, 4000), st.integers(0, 64 * 1024), st.integers(0, 9)),
                max_size=8))
def test_rows_add_up_to_the_total_in_every_grouping(workloads):
    docs = tuple((f"{i}.yaml", {"kind": kind, "metadata": {"name": f"w{i}"},
                                "spec": {"replicas": replicas, "template": {"spec": {
                                    "containers": [{"name": "c", "resources": {"requests": {
                                        "cpu": f"{cpu}m", "memory": f"{mem}Mi"}}}]}}}})
                 for i, (kind, cpu, mem, replicas) in enumerate(workloads))
    prices = Prices("USD", tuple(DEFAULT_PRICES.items()))
    cost = estimate_tree("e", prices, [ReleaseInput("a", docs[::2]), ReleaseInput("b", docs[1::2])])
    for by in ("release", "kind"):
        assert sum((floor.total for _, floor, _ in cost.groups(by)), Decimal(0)) == cost.floor.total
    assert all(v == v.quantize(Decimal("0.01")) for v in cost.floor.values)


def test_amounts_take_the_larger_of_init_and_app_containers():
    a, b = Amounts.of(cpu=Decimal(2)), Amounts.of(cpu=Decimal(1), memory=Decimal(3))
    assert a.most(b) == Amounts.of(cpu=Decimal(2), memory=Decimal(3))


# --- prices in the meshfile -------------------------------------------------------------------

def _meshfile(tmp_path: Path, cost: str, release_cost: str = "") -> Path:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cm.yaml.j2").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: "
                                               "{name: x}\n")
    (tmp_path / "meshfile.yaml").write_text(
        "apiVersion: meshc/v1\nenvironments:\n  prod:\n    cost:\n" + cost
        + "releases:\n  app:\n    chart: c\n" + release_cost)
    return tmp_path / "meshfile.yaml"


def test_implausible_and_malformed_prices_are_refused_all_at_once(tmp_path):
    meshfile = _meshfile(tmp_path, "      currency: dollars\n      nodes: 2.5\n"
                                   "      prices: {cpu: 23.08, memory: -1, gpu: lots}\n",
                         "    cost: {estimate: {memory: 4GB, replicas: 3}}\n")
    code, _, err = run_meshc("-f", str(meshfile), "cost")
    assert code == 1
    assert "meshfile.yaml:7:21: error: environment 'prod': cost.prices.cpu: 23.08 per vCPU per " \
           "hour is implausible (more than 2)" in err
    assert "= help: prices are per hour; if 23.08 is a monthly price, write 0.0316164 " \
           "(23.08 / 730 hours)" in err
    for message in ("currency 'dollars' is not a currency code", "nodes must be a whole number",
                    "prices.memory cannot be negative", "prices.gpu must be a number",
                    "estimate.memory '4GB' is not a Kubernetes quantity"):
        assert message in err
    assert "Traceback" not in err


def test_a_declared_estimate_prices_a_release(tmp_path):
    meshfile = _meshfile(tmp_path, "      prices: {cpu: 0.05}\n",
                         "    cost: {estimate: {cpu: 500m, memory: 1Gi, replicas: 2}}\n")
    code, out, err = run_meshc("-f", str(meshfile), "cost", "-o", "json")
    assert code == 0, err
    env = json.loads(out)["environments"][0]
    # cpu 2 × 0.5 × 0.05 × 730 = 36.50; memory 2 × 1 × 0.004237 × 730 = 6.18602 → 6.19
    assert env["monthly"] == 42.69 and env["releases"][0]["declared"] is True


# --- the SVG ----------------------------------------------------------------------------------

def test_svg_is_a_self_contained_stacked_bar_chart(prod_json, tmp_path):
    work = tmp_path / "p"
    shutil.copytree(PROJECT, work)
    code, out, err = run_meshc("-f", str(work / "meshfile.yaml"), "cost", "-o", "svg")
    assert code == 0, err
    root = ET.fromstring(out)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 900 520"
    assert not re.search(r"href|<script|@import|url\(", out)  # nothing fetched, nothing run
    bars = root.findall(f".//{SVG}g[@class='environment']")
    assert [b.get("data-environment") for b in bars] == ["dev", "prod"]
    for bar in bars:
        segments = bar.findall(f"{SVG}rect[@class='segment']")
        total = sum(Decimal(s.get("data-monthly")) for s in segments)
        assert float(total) == prod_json[bar.get("data-environment")]["monthly"]
        assert all(s.find(f"{SVG}title") is not None for s in segments)
        tops = [float(s.get("y")) for s in segments]
        assert tops == sorted(tops, reverse=True)  # stacked upwards, release by release
    legend = [t.text for t in root.findall(f".//{SVG}g[@class='legend']/{SVG}text")]
    assert legend == ["Legend", "api", "db", "worker", "search", "ml"]


# --- meshc check ------------------------------------------------------------------------------

def test_check_cost_policies_are_located_on_the_releases_responsible(tmp_path):
    work = tmp_path / "p"
    shutil.copytree(PROJECT, work)
    code, _, err = run_meshc("-f", str(work / "meshfile.yaml"), "render")
    assert code == 0, err
    meshfile = work / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text() + "policies:\n  max-monthly-cost: {level: error, "
                        "max: 2500}\n  cost-increase: {level: error, maxPercent: 10}\n")
    (work / "env" / "prod.yaml").write_text((work / "env" / "prod.yaml").read_text()
                                            .replace("replicas: 3", "replicas: 9"))
    compiler = load_project(ProjectFiles(work))
    report = run_checks(compiler, compiler.project.deployable, CheckOptions(
        stale=False, rules=frozenset({"max-monthly-cost", "cost-increase", "cost-unpriced"})))
    found = {(f.rule, f.environment): f.diagnostic for f in report.findings}
    over = found[("max-monthly-cost", "prod")]
    assert over.severity == "error" and over.span.line == _line(meshfile, "  ml:")
    assert over.message.startswith("the estimated monthly cost $2,964.12 is above the maximum "
                                   "$2,500.00")
    rise = found[("cost-increase", "prod")]
    # db: 3 → 9 replicas: 140.84 → 422.53 (cpu 9.9 × 29.2 = 289.08, memory 18.5625 × 3.65 =
    # 67.753125 → 67.75, storage 900 × 0.073 = 65.70): +281.69, +10.5% > 10%
    assert rise.span.line == _line(meshfile, "  db:")
    assert rise.message.startswith("the estimated monthly cost rises $2,682.43 → $2,964.12 "
                                   "(+10.5%), more than 10% against the committed output")
    assert any(n.startswith("db: +$281.69 (meshfile.yaml:") for n in rise.notes)
    unpriced = found[("cost-unpriced", "prod")]
    assert unpriced.span.file == "charts/worker/deployment.yaml.j2"
    assert ("max-monthly-cost", "dev") not in found and ("cost-increase", "dev") not in found


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                if line.startswith(needle))


# --- the example ------------------------------------------------------------------------------

def test_example_cost_prints_every_environment_and_plan_shows_the_delta():
    code, out, err = run_meshc("cost", "-o", "json", cwd=ROOT)
    assert code == 0, err
    envs = json.loads(out)["environments"]
    assert [e["environment"] for e in envs] == ["development", "staging", "production/eu-west",
                                                "production/us-east", "production-dr"]
    assert envs[0]["monthly"] < envs[1]["monthly"] < envs[2]["monthly"]  # minimal/medium/high
    assert all(not e["notEstimated"] for e in envs)
    code, out, err = run_meshc("plan", "production/eu-west", "--set", "registry.replicaCount=8",
                               cwd=ROOT)
    assert code == 0, err
    # registry: 5 → 8 replicas of 1 vCPU / 2Gi: cpu 3 × 23.07603 = 69.23, memory 3 × 2 ×
    # 3.09301 = 18.56 (the volume is one PVC, unchanged)
    before = next(e for e in envs if e["environment"] == "production/eu-west")["monthly"]
    after = Decimal(str(before)) + Decimal("87.79")
    assert f"cost: ${before:,.2f} → ${after:,.2f} /month (+$87.79, " in out
    assert "  registry: $154.31 → $242.10 (+$87.79, +56.9%)" in out


@pytest.mark.parametrize("text", ["1e100", "99999999999999999999", "1e-99", "9Ei", "1E+41"])
def test_quantities_beyond_kubernetes_range_are_refused_not_crashed_on(text):
    with pytest.raises(QuantityError, match="out of range"):
        parse_quantity(text)


def test_hostile_manifest_numbers_give_a_listing_not_a_traceback():
    doc = {"kind": "Deployment", "metadata": {"name": "x"}, "spec": {
        "replicas": 10**40, "template": {"spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1e30", "memory": 10**30}}}]}}}}
    prices = Prices("USD", tuple(DEFAULT_PRICES.items()))
    cost = estimate_tree("e", prices, [ReleaseInput("r", (("x.yaml", doc),))])
    assert cost.floor.total == 0 and len(cost.unpriced) == 2  # both requests out of range
