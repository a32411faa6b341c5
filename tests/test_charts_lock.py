"""``meshc charts update|fetch|list``: remote charts pinned by digest in ``meshfile.lock``, with
the real Helm 4 pulling from a chart repository served on 127.0.0.1.

The repository is :class:`helmjudge.ChartRepository` (``python3 -m http.server``, stopped by its
pid); its charts are packaged and indexed by the real helm, so the digests the lock must hold are
the sha256 of the served ``.tgz`` files and the ``digest:`` fields of the served ``index.yaml``.
The CLI runs in-process (``run_meshc``) with ``MESHC_HELM`` naming the Helm 4 binary and
``MESHC_CHART_CACHE`` a folder of the test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_meshc
from helmjudge import ChartRepository, write_values_chart
from realtools import helm4, run_helm

UPSTREAM = "https://charts.example.com/stable"
UNREACHABLE = "http://127.0.0.1:1/charts"  # nothing listens on port 1: refused at once

# staging deploys grafana 7.4.0 (chartVersions), prod 7.3.0; loki asks for a range
MESHFILE = """\
apiVersion: meshc/v1
project: shop
environments:
  base:
    abstract: true
  staging:
    inherits: base
    chartVersions: {{dashboards: "7.4.0"}}
  prod:
    inherits: base
releases:
  dashboards:
    chart: grafana
    repo: {repo}
    version: "7.3.0"
  logs:
    chart: loki
    repo: {logs_repo}
    version: "~2.1"
"""


@dataclass(frozen=True, slots=True)
class Setup:
    root: Path                  # the project
    cache: Path                 # MESHC_CHART_CACHE
    served: ChartRepository
    repo: str                   # the repository URL the meshfile names

    @property
    def lock(self) -> Path:
        return self.root / "meshfile.lock"

    def meshc(self, *args: str) -> tuple[int, str, str]:
        return run_meshc("-f", str(self.root / "meshfile.yaml"), *args)

    def package(self, name: str, version: str) -> Path:
        return self.served.folder / self.repo.removeprefix(self.served.url + "/") / \
            f"{name}-{version}.tgz"

    def index(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(self.served.fetch(
            self.repo.removeprefix(self.served.url + "/") + "/index.yaml"))
        return data

    def republish(self, name: str, version: str, values: Any) -> None:
        """Package other content as ``name`` ``version`` over the served one and re-index."""
        folder = self.package(name, version).parent
        source = write_values_chart(self.served.folder / ".republished" / f"{name}-{version}",
                                    name, values, version=version)
        for args in (["package", str(source), "--destination", str(folder)],
                     ["repo", "index", str(folder), "--url", self.repo]):
            done = run_helm(self.served.helm, args, self.served.home)
            assert done.returncode == 0, done.stderr


def write_meshfile(root: Path, repo: str, logs_repo: str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "meshfile.yaml").write_text(MESHFILE.format(repo=repo, logs_repo=logs_repo or repo),
                                        encoding="utf-8")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    helm = helm4()
    with ChartRepository(helm, tmp_path / "served", tmp_path / "helm-home") as served:
        repo = served.stand_in(UPSTREAM)
        for name, version in (("grafana", "7.3.0"), ("grafana", "7.4.0"), ("loki", "2.0.0"),
                              ("loki", "2.1.0"), ("loki", "2.1.3")):
            served.add(repo, name, version)
        root = tmp_path / "project"
        write_meshfile(root, repo)
        monkeypatch.setenv("MESHC_HELM", str(helm))
        monkeypatch.setenv("MESHC_CHART_CACHE", str(tmp_path / "cache"))
        yield Setup(root, tmp_path / "cache", served, repo)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_entries(lock: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(lock.read_text(encoding="utf-8"))
    assert data["version"] == 1
    entries: list[dict[str, Any]] = data["charts"]
    return entries


def entry(lock: Path, chart: str, version: str) -> dict[str, Any]:
    (found,) = [e for e in lock_entries(lock) if e["chart"] == chart and e["version"] == version]
    return found


# --- update -----------------------------------------------------------------------------------

def test_update_pins_the_served_packages_digests(setup: Setup) -> None:
    code, out, err = setup.meshc("charts", "update")
    assert code == 0, err
    entries = lock_entries(setup.lock)
    assert [(e["chart"], e["version"], e["resolved"]) for e in entries] == [
        ("grafana", "7.3.0", "7.3.0"), ("grafana", "7.4.0", "7.4.0"), ("loki", "~2.1", "2.1.3")]
    index = setup.index()["entries"]
    for e in entries:
        assert e["repo"] == setup.repo
        served = sha256(setup.package(e["chart"], e["resolved"]))
        assert e["digest"] == f"sha256:{served}"
        (listed,) = [v for v in index[e["chart"]] if v["version"] == e["resolved"]]
        assert listed["digest"] == served
        assert (setup.cache / f"sha256-{served}.tgz").read_bytes() == \
            setup.package(e["chart"], e["resolved"]).read_bytes()
    grafana = entry(setup.lock, "grafana", "7.3.0")["digest"]
    assert f"pinned grafana 7.3.0 {grafana} (new)\n" in out
    assert "pinned loki ~2.1 → 2.1.3 sha256:" in out
    assert out.count("pinned ") == 3
    assert "meshfile.lock: written" in err


def test_a_second_update_is_byte_identical(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    first = setup.lock.read_bytes()
    code, out, err = setup.meshc("charts", "update")
    assert code == 0, err
    assert setup.lock.read_bytes() == first
    assert out.count("(unchanged)") == 3 and "(new)" not in out
    assert "meshfile.lock: unchanged" in err
    assert not [p.name for p in setup.root.iterdir() if p.name.startswith(".meshfile.lock")]


def test_a_republished_version_is_reported_changed(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    before = entry(setup.lock, "grafana", "7.3.0")["digest"]
    setup.republish("grafana", "7.3.0", {"changed": True})
    after = f"sha256:{sha256(setup.package('grafana', '7.3.0'))}"
    assert after != before
    code, out, err = setup.meshc("charts", "update")
    assert code == 0, err
    assert f"pinned grafana 7.3.0 {after} (changed from {before})" in out
    assert entry(setup.lock, "grafana", "7.3.0")["digest"] == after
    assert "pinned grafana 7.4.0 sha256:" in out and out.count("(unchanged)") == 2


def test_updating_one_chart_keeps_the_other_entries_as_they_were(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    loki = entry(setup.lock, "loki", "~2.1")
    setup.republish("loki", "2.1.3", {"changed": True})
    setup.republish("grafana", "7.3.0", {"changed": True})
    code, out, err = setup.meshc("charts", "update", "grafana")
    assert code == 0, err
    assert "loki" not in out and "(changed from" in out
    assert entry(setup.lock, "loki", "~2.1") == loki  # not updated: the old digest stays
    assert entry(setup.lock, "grafana", "7.3.0")["digest"] == \
        f"sha256:{sha256(setup.package('grafana', '7.3.0'))}"


def test_per_environment_chart_versions_are_two_entries(setup: Setup) -> None:
    assert setup.meshc("charts", "update", "grafana")[0] == 0
    versions = [(e["chart"], e["version"]) for e in lock_entries(setup.lock)]
    assert versions == [("grafana", "7.3.0"), ("grafana", "7.4.0")]  # loki not asked for


def test_unknown_chart_name_lists_the_valid_ones(setup: Setup) -> None:
    code, _, err = setup.meshc("charts", "update", "grafna")
    assert code == 1
    assert "error: no remote chart 'grafna' in the project" in err
    assert "did you mean 'grafana'? (remote charts: grafana, loki)" in err
    assert not setup.lock.exists()


def test_an_unreachable_repository_is_located_and_the_lock_is_untouched(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    before = setup.lock.read_bytes()
    write_meshfile(setup.root, setup.repo, logs_repo=UNREACHABLE)
    cache = sorted(setup.cache.iterdir())
    code, out, err = setup.meshc("charts", "update")
    assert code == 1
    assert out == ""
    lines = (setup.root / "meshfile.yaml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip() == "chart: loki")
    col = lines[line - 1].index("loki") + 1
    assert f"meshfile.yaml:{line}:{col}: error: cannot pull chart 'loki' ~2.1 from " \
           f"{UNREACHABLE}:" in err
    assert "^^^^" in err and "deployed by release logs" in err
    assert "meshc: 1 error found" in err
    assert setup.lock.read_bytes() == before
    assert sorted(setup.cache.iterdir()) == cache  # nothing stored either


def test_no_helm_says_how_to_provide_one(setup: Setup, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHC_HELM", str(tmp_path / "no-such-helm"))
    code, _, err = setup.meshc("charts", "update")
    assert code == 1
    assert "error: pulling remote charts needs helm (Helm 4): MESHC_HELM=" in err
    assert "point MESHC_HELM at the helm binary" in err
    assert not setup.lock.exists()


def test_an_entry_no_environment_deploys_is_dropped(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    meshfile = setup.root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text(encoding="utf-8").replace(
        '    chartVersions: {dashboards: "7.4.0"}\n', ""), encoding="utf-8")
    code, out, err = setup.meshc("charts", "update")
    assert code == 0, err
    assert "dropped grafana 7.4.0 (no environment deploys it)" in out
    assert [(e["chart"], e["version"]) for e in lock_entries(setup.lock)] == [
        ("grafana", "7.3.0"), ("loki", "~2.1")]


# --- fetch ------------------------------------------------------------------------------------

def test_fetch_fills_an_empty_cache_then_finds_it_full(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    shutil.rmtree(setup.cache)
    code, out, err = setup.meshc("charts", "fetch")
    assert code == 0, err
    assert out.count("fetched ") == 3
    for e in lock_entries(setup.lock):
        assert (setup.cache / f"{e['digest'].replace(':', '-')}.tgz").is_file()
    code, out, err = setup.meshc("charts", "fetch")
    assert code == 0, err
    assert out.count("cached ") == 3 and "fetched" not in out


def test_a_warm_cache_needs_no_helm(setup: Setup, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    monkeypatch.setenv("MESHC_HELM", str(tmp_path / "no-such-helm"))
    code, out, err = setup.meshc("charts", "fetch")
    assert code == 0, err
    assert out.count("cached ") == 3


def test_fetch_refuses_a_package_whose_digest_differs_from_the_lock(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    real = entry(setup.lock, "grafana", "7.3.0")["digest"]
    fake = "sha256:" + "0" * 64
    setup.lock.write_text(setup.lock.read_text(encoding="utf-8").replace(real, fake),
                          encoding="utf-8")
    shutil.rmtree(setup.cache)
    code, out, err = setup.meshc("charts", "fetch")
    assert code == 1
    assert f"the package's digest changed: the lock pins {fake}, the repository now serves " \
           f"{real}" in err
    assert "pinned at meshfile.lock:" in err
    assert out.count("fetched ") == 2  # the others are fetched all the same
    assert not (setup.cache / f"{real.replace(':', '-')}.tgz").exists()
    assert not (setup.cache / f"{fake.replace(':', '-')}.tgz").exists()


def test_fetch_without_a_pin_says_to_update(setup: Setup) -> None:
    code, out, err = setup.meshc("charts", "fetch")
    assert code == 1
    assert "error: chart 'grafana' 7.3.0 from " in err
    assert "is not pinned in meshfile.lock (there is no meshfile.lock)" in err
    assert "run `meshc charts update`" in err
    assert "meshc: 3 errors found" in err
    assert out == ""


# --- list -------------------------------------------------------------------------------------

def test_list_before_and_after_update(setup: Setup) -> None:
    code, out, err = setup.meshc("charts")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["CHART", "VERSION", "RESOLVED", "DIGEST", "CACHE",
                                           "RELEASES", "REPOSITORY"]
    assert out.count("not pinned") == 3
    code, _, err = setup.meshc("charts", "list", "--check")
    assert code == 1
    assert "meshfile.yaml:13:12: error: chart 'grafana' 7.3.0 from" in err

    assert setup.meshc("charts", "update")[0] == 0
    code, out, err = setup.meshc("charts", "list", "--check")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[:3] + r[4:6] for r in rows] == [
        ["grafana", "7.3.0", "7.3.0", "cached", "dashboards"],
        ["grafana", "7.4.0", "7.4.0", "cached", "dashboards"],
        ["loki", "~2.1", "2.1.3", "cached", "logs"]]

    code, out, err = setup.meshc("charts", "list", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "ChartLock" and data["current"] and data["stale"] == []
    assert [(c["chart"], c["version"], c["resolved"], c["cached"]) for c in data["charts"]] == [
        ("grafana", "7.3.0", "7.3.0", True), ("grafana", "7.4.0", "7.4.0", True),
        ("loki", "~2.1", "2.1.3", True)]
    assert data["charts"][2]["digest"] == entry(setup.lock, "loki", "~2.1")["digest"]


def test_list_check_fails_on_a_stale_entry(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    shutil.rmtree(setup.cache)
    meshfile = setup.root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text(encoding="utf-8").replace('"~2.1"', '"2.0.0"'),
                        encoding="utf-8")
    code, out, _ = setup.meshc("charts", "list")
    assert code == 0
    assert "stale in meshfile.lock: loki ~2.1 → 2.1.3 sha256:" in out
    assert "loki     2.0.0    -" in out and "missing" in out  # unpinned; pinned but not cached
    code, _, err = setup.meshc("charts", "list", "--check")
    assert code == 1
    assert "meshfile.lock:" in err and "pins loki ~2.1 → 2.1.3, which no environment deploys" in err
    assert "is not pinned in meshfile.lock\n" in err
    code, out, err = setup.meshc("charts", "list", "-o", "json", "--check")
    assert code == 1
    assert json.loads(out)["current"] is False


def test_update_rewrites_a_lock_it_cannot_read(setup: Setup) -> None:
    setup.lock.write_text("version: 1\ncharts:\n  - chart: grafana\n    digest: nope\n",
                          encoding="utf-8")
    code, _, err = setup.meshc("charts", "update", "grafana")  # entries to keep: refused
    assert code == 1
    assert "meshfile.lock:3:5: error: meshfile.lock: entry 1 has no valid version" in err
    code, out, err = setup.meshc("charts", "update")
    assert code == 0, err
    assert "note: meshfile.lock could not be read: written anew" in err
    assert out.count("(new)") == 3 and len(lock_entries(setup.lock)) == 3


# --- render: what the lock pins, fetched, verified, rendered -----------------------------------

def test_render_fetches_the_pinned_packages_and_renders_them_as_helm_does(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    shutil.rmtree(setup.cache)  # a fresh machine: render fetches (and verifies) them itself
    code, _, err = setup.meshc("render")
    assert code == 0, err
    for env, version in (("prod", "7.3.0"), ("staging", "7.4.0")):
        [manifest] = (setup.root / "rendered" / env / "dashboards" / "manifests").iterdir()
        done = run_helm(setup.served.helm, ["template", "dashboards",
                                            str(setup.package("grafana", version)),
                                            "--namespace", "default", "--include-crds"],
                        setup.served.home)
        assert done.returncode == 0, done.stderr
        [document] = [d for d in done.stdout.split("---\n") if "kind:" in d]
        helm = yaml.safe_load(document)
        helm["metadata"]["namespace"] = "default"  # meshc writes the release's namespace
        assert yaml.safe_load(manifest.read_text()) == helm


def test_render_refuses_a_package_whose_digest_changed(setup: Setup) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    shutil.rmtree(setup.cache)
    setup.republish("grafana", "7.3.0", {"other": "content"})
    code, _, err = setup.meshc("render", "--out", str(setup.root / "out"))
    assert code == 1
    assert "meshfile.yaml:13:12: error: chart 'grafana' 7.3.0 from " in err
    assert "the package's digest changed: the lock pins sha256:" in err
    assert "= note: pinned at meshfile.lock:" in err
    assert not (setup.root / "out").exists()  # nothing written
    republished = sha256(setup.package("grafana", "7.3.0"))
    assert not (setup.cache / f"sha256-{republished}.tgz").exists()  # never cached
    assert "Traceback" not in err


def test_offline_a_cached_chart_renders_and_a_missing_one_says_what_to_fetch(
        setup: Setup, tmp_path: Path) -> None:
    assert setup.meshc("charts", "update")[0] == 0
    setup.served.__exit__()  # the repository is gone: offline
    code, _, err = setup.meshc("render")
    assert code == 0, err  # every pinned package is cached
    (digest,) = [e["digest"] for e in lock_entries(setup.lock) if e["version"] == "7.4.0"]
    (setup.cache / f"{digest.replace(':', '-')}.tgz").unlink()
    code, _, err = setup.meshc("render", "--no-cache", "--out", str(tmp_path / "out"))
    assert code == 1
    assert "error: chart 'grafana' 7.4.0 from " in err
    assert "is not in the chart cache and could not be fetched" in err
    assert f"help: fetch it where the repository is reachable (helm pull grafana --repo " \
           f"{setup.repo} --version 7.4.0; meshc charts fetch)" in err


def test_render_refuses_a_chart_the_lock_does_not_pin(setup: Setup) -> None:
    code, _, err = setup.meshc("render")
    assert code == 1
    assert "is not pinned in meshfile.lock" in err and "meshc charts update" in err
    assert err.count("error:") == err.count("is not pinned")  # every one reported, nothing else


def test_an_unknown_version_is_a_located_error(setup: Setup) -> None:
    meshfile = setup.root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace('version: "7.3.0"', 'version: "9.9.9"'))
    code, _, err = setup.meshc("charts", "update")
    assert code == 1
    assert "meshfile.yaml:13:12: error: cannot pull chart 'grafana' 9.9.9" in err
    assert "Traceback" not in err and not setup.lock.exists()
