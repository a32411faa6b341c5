"""What the plan installs for a Helm chart, judged by the real Helm 4: the chart itself, with the
reviewed values file, the decrypted secrets and the step's flags (docs/helm-charts.md, "What the
plan installs"). The project: the ``helm-chart`` golden's chart (a hook, a CRD in ``crds/``, a
subchart, a values schema) plus a Secret whose password comes from the environment's SOPS
secrets, encrypted to a fresh age key with meshc itself.

Each plan step runs as ``helm upgrade --install … --dry-run=client`` with the memory storage
driver (no cluster can run here) and its secrets decrypted by the real sops, as ``meshc apply``
passes them. What Helm would install is then compared with the committed review:

* every ordinary manifest is installed exactly as reviewed;
* the hook is installed as a hook (Helm's ``HOOKS:`` section), exactly as reviewed;
* the CRD of ``crds/`` is reviewed but not in the release's manifest: Helm creates ``crds/`` on
  first install and never upgrades or deletes them (a wrapper chart would have made it an
  ordinary manifest, deleted with the release);
* the Secret gets the real password while the review holds only digests, and no secret value
  is anywhere in the output folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import GOLDEN, pin_charts, run_meshc
from helmjudge import hook_documents, manifest_documents
from realtools import helm4, run_helm
from test_secrets import write_key

from compiler.secrets.sops import AgeKey, decrypt, find_sops

PASSWORD = "correct-horse-battery-staple-41"
SECRET_TEMPLATE = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "shop.fullname" . }}-db
type: Opaque
data:
  user: {{ .Values.db.user | b64enc | quote }}
  password: {{ required "db.password is required" .Values.db.password | b64enc | quote }}
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:  # module scope: before the autouse fixtures
        patch.setenv("MESHC_HELM", str(helm4()))
        yield _shop(tmp_path_factory.mktemp("helm-install"))


def _shop(base: Path) -> dict[str, Any]:
    root = base / "project"
    shutil.copytree(GOLDEN / "helm-chart" / "project", root,
                    ignore=shutil.ignore_patterns(".meshc-cache"))
    key, recipient = write_key(base / "key.txt")
    chart = root / "charts" / "shop"
    (chart / "templates" / "secret.yaml").write_text(SECRET_TEMPLATE)
    with (chart / "values.yaml").open("a") as values:
        values.write("db:\n  user: shop\n  password: \"\"\n")
    meshfile = root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(
        "    values: [env/prod.yaml]\n",
        f"    values: [env/prod.yaml]\n    secrets: [env/prod-secrets.yaml]\n"
        f"    sops:\n      age: [{recipient}]\n"))
    (root / "env" / "prod-secrets.yaml").write_text(f"web:\n  db:\n    password: {PASSWORD}\n")
    code, _, err = run_meshc("secrets", "encrypt", "prod", "env/prod-secrets.yaml", cwd=root)
    assert code == 0, err
    code, _, err = run_meshc("-f", str(meshfile), "render")
    assert code == 0, err
    code, out, err = run_meshc("-f", str(meshfile), "plan", "prod", "-o", "json")
    assert code == 0, err
    [step] = json.loads(out)["steps"]
    secrets = base / "secrets.yaml"
    [item] = step["secrets"]  # as meshc apply passes it: the release's part, decrypted
    plain = json.loads(decrypt(find_sops(None), root, item["file"], AgeKey(file=str(key))))
    secrets.write_text(json.dumps(plain["web"]))
    releases = base / "releases.json"
    releases.write_text("[]")
    argv = step["argv"][1:]
    done = run_helm(helm4(), [*argv, "--values", str(secrets), "--dry-run=client"],
                    base / "home", releases=releases, cwd=root)
    assert done.returncode == 0, done.stderr
    return {"root": root, "step": step, "out": done.stdout,
            "review": root / "rendered" / "prod" / "web"}


def _reviewed(shop: dict[str, Any]) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((shop["review"] / "manifests").glob("*.yaml"))}


def test_the_step_installs_the_chart_itself_with_the_reviewed_values(shop):
    argv = shop["step"]["argv"]
    assert argv[:5] == ["helm", "upgrade", "--install", "web", "charts/shop"]
    assert argv[argv.index("--values") + 1] == "rendered/prod/web/values.yaml"
    assert sorted(p.name for p in shop["review"].iterdir()) == ["manifests", "values.yaml"]
    # a chart default meshc's layers deleted is deleted at install too (debug: null in env)
    assert "debug: null" in (shop["review"] / "values.yaml").read_text()


def test_ordinary_manifests_are_installed_exactly_as_reviewed(shop):
    installed = {_key(d.text): _data(d.text) for d in manifest_documents(shop["out"])}
    reviewed = {_key(t): _data(t) for t in _reviewed(shop).values()}
    plain = {k for k in reviewed if not k.startswith(("CustomResourceDefinition/", "Secret/",
                                                       "Job/"))}
    assert plain and set(installed) - {"Secret/web-shop-db"} == plain
    assert {k: installed[k] for k in plain} == {k: reviewed[k] for k in plain}


def test_the_hook_is_installed_as_a_hook_exactly_as_reviewed(shop):
    hooks = {_key(d.text): d.text for d in hook_documents(shop["out"])}
    assert list(hooks) == ["Job/web-shop-migrate"]
    installed = _data(hooks["Job/web-shop-migrate"])
    reviewed = _data(_reviewed(shop)["job-web-shop-migrate.yaml"])
    # .Capabilities.KubeVersion: the environment's kubeVersion in the review, the cluster's at
    # install; offline (no cluster here) Helm's built-in default stands in for the cluster's
    for job in (installed, reviewed):
        [container] = job["spec"]["template"]["spec"]["containers"]
        kube = container.pop("command")[1]
    assert kube == "--kube=v1.31.0"
    assert installed == reviewed
    assert "hooks: Job/web-shop-migrate (pre-upgrade,pre-install)" in run_meshc(
        "-f", str(shop["root"] / "meshfile.yaml"), "plan", "prod")[1]
    assert shop["step"]["hooks"] == ["Job/web-shop-migrate (pre-upgrade,pre-install)"]


def test_a_crd_of_crds_is_reviewed_but_helm_keeps_it_out_of_the_release(shop):
    reviewed = [name for name in _reviewed(shop) if name.startswith("customresourcedefinition")]
    assert reviewed
    kinds = {_key(d.text).split("/")[0] for d in manifest_documents(shop["out"])}
    assert "CustomResourceDefinition" not in kinds  # created from crds/, never upgraded/deleted


def test_the_secret_gets_the_real_value_and_the_review_only_digests(shop):
    installed = {_key(d.text): _parsed(d.text) for d in manifest_documents(shop["out"])}
    secret = installed["Secret/web-shop-db"]
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD
    reviewed = _parsed(_reviewed(shop)["secret-web-shop-db.yaml"])
    assert reviewed["data"]["user"] == "sha256:" + hashlib.sha256(b"shop").hexdigest()
    assert reviewed["data"]["password"].startswith("sha256:")
    for path in (shop["root"] / "rendered").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert PASSWORD not in text and base64.b64encode(PASSWORD.encode()).decode() \
                not in text, path


def test_check_proves_the_install_equals_the_review(shop, monkeypatch):
    monkeypatch.setenv("MESHC_HELM", str(helm4()))
    code, out, err = run_meshc("-f", str(shop["root"] / "meshfile.yaml"), "check", "prod",
                               "-o", "json")
    report = json.loads(out)
    assert code in (0, 1), err  # the golden chart's policy warnings do not matter here
    assert not [f for f in report["findings"] if f["rule"] in ("helm", "secret-in-clear")], err
    assert report["helm"]["charts"] == 1


def _parsed(text: str) -> Any:
    return yaml.safe_load(text)


def _key(text: str) -> str:
    data = _parsed(text)
    return f"{data['kind']}/{data['metadata']['name']}"


def _data(text: str) -> Any:
    """A document's data, its namespace left out where it is the release's (meshc writes it
    into the review; Helm applies ``--namespace`` at install)."""
    data = _parsed(text)
    if data.get("metadata", {}).get("namespace") == "shop":
        del data["metadata"]["namespace"]
    return data


GRAFANA_ONLY = """\
apiVersion: meshc/v1
project: dashboards
environments:
  prod:
    kubeVersion: "1.31"
    apiVersions: [policy/v1/PodDisruptionBudget]
releases:
  grafana:
    chart: grafana
    repo: https://grafana.github.io/helm-charts
    version: 7.3.0
"""


def test_what_a_chart_decides_at_install_is_named(tmp_path, monkeypatch):
    """The real grafana chart without an admin password: it generates one at install (the review
    says so instead of committing a random value) and looks the old one up in the cluster
    first; `meshc check` names both, and the render stays the same bytes run after run."""
    monkeypatch.setenv("MESHC_HELM", str(helm4()))
    root = tmp_path / "project"
    root.mkdir()
    (root / "meshfile.yaml").write_text(GRAFANA_ONLY)
    pin_charts(root)
    outs = []
    for run in ("a", "b"):
        code, _, err = run_meshc("-f", str(root / "meshfile.yaml"), "render", "--no-cache",
                                 "--out", str(tmp_path / run))
        assert code == 0, err
        outs.append({p.relative_to(tmp_path / run): p.read_bytes()
                     for p in (tmp_path / run).rglob("*") if p.is_file()})
    assert outs[0] == outs[1]
    secret = _parsed((tmp_path / "a" / "prod" / "grafana" / "manifests" /
                      "secret-grafana.yaml").read_text())
    assert secret["data"]["admin-password"] == "(generated by the chart: differs on every render)"
    assert secret["data"]["admin-user"].startswith("sha256:")
    code, out, err = run_meshc("-f", str(root / "meshfile.yaml"), "check", "--no-stale",
                               "-o", "json")
    found = [f["message"] for f in json.loads(out)["findings"] if f["rule"] == "install-time"]
    assert any("its chart generates values at install" in m for m in found), err
    assert any("grafana/templates/_helpers.tpl:" in m and "calls lookup" in m for m in found), \
        found
