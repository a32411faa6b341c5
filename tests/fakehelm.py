"""A fake ``helm`` for apply tests: records every call, fails or sleeps on request.

:func:`install` writes an executable ``helm`` script into a folder. Each call appends one JSON
line to ``$FAKE_HELM_LOG``: ``argv``, ``release`` (``argv[2]`` of ``upgrade --install``),
``start`` and ``end`` (``time.time()``), ``code``, and for each ``--values`` file outside the
project (the decrypted secrets) its ``path``, ``mode`` and ``content``. ``$FAKE_HELM_CONFIG``
names a JSON file: ``{"sleep": {release: seconds}, "fail": {release: stderr text}}``.
``helm version --short`` prints ``$FAKE_HELM_VERSION`` (default ``v4.3.1+gfake``), unrecorded.
``helm pull NAME --version V --destination D`` copies ``$FAKE_HELM_CHARTS/NAME-V.tgz`` into D.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCRIPT = """\
#!{python}
import fcntl, json, os, stat, sys, time

start = time.time()
argv = sys.argv[1:]
if argv == ["version", "--short"]:  # meshc apply asks once which Helm this is (not a step)
    print(os.environ.get("FAKE_HELM_VERSION", "v4.3.1+gfake"))
    sys.exit(0)
if argv[:1] == ["pull"]:  # a chart repository: the packages of $FAKE_HELM_CHARTS
    import shutil
    name = argv[1].rsplit("/", 1)[-1]
    version, into = argv[argv.index("--version") + 1], argv[argv.index("--destination") + 1]
    shutil.copy(os.path.join(os.environ["FAKE_HELM_CHARTS"], f"{{name}}-{{version}}.tgz"), into)
release = argv[2] if argv[:2] == ["upgrade", "--install"] and len(argv) > 2 else ""
config = {{}}
if os.environ.get("FAKE_HELM_CONFIG"):
    with open(os.environ["FAKE_HELM_CONFIG"]) as handle:
        config = json.load(handle)
secrets = []
for flag, value in zip(argv, argv[1:]):
    if flag == "--values" and os.path.isabs(value):
        info = {{"path": value, "exists": os.path.exists(value)}}
        if info["exists"]:
            info["mode"] = oct(stat.S_IMODE(os.stat(value).st_mode))
            info["content"] = open(value).read()
        secrets.append(info)
time.sleep(float(config.get("sleep", {{}}).get(release, 0)))
fail = config.get("fail", {{}}).get(release)
code = 0
if fail is not None:
    sys.stderr.write(fail + "\\n")
    code = 1
else:
    sys.stdout.write("Release \\"%s\\" has been upgraded. Happy Helming!\\n" % release)
record = {{"argv": argv, "release": release, "start": start, "end": time.time(), "code": code,
          "secrets": secrets}}
with open(os.environ["FAKE_HELM_LOG"], "a") as log:
    fcntl.flock(log, fcntl.LOCK_EX)
    log.write(json.dumps(record) + "\\n")
sys.exit(code)
"""


def install(folder: Path) -> Path:
    """Write the fake ``helm`` into ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    helm = folder / "helm"
    helm.write_text(SCRIPT.format(python=sys.executable))
    helm.chmod(0o755)
    return helm


def configure(path: Path, sleep: dict[str, float] | None = None,
              fail: dict[str, str] | None = None) -> None:
    path.write_text(json.dumps({"sleep": sleep or {}, "fail": fail or {}}))


def calls(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
