"""What the tests that let the real Helm 4 judge meshc share.

The binary comes from ``tests/realtools.py`` (``helm4()`` skips the calling test with the reason,
or fails it under ``CI=true``). Here:

* :func:`write_values_chart` and :func:`helm_values`: a chart whose one template shows ``.Values``
  as JSON, and what ``helm template`` hands it for a command line (or Helm's refusal);
* :func:`manifest_documents`: Helm's output (``helm template``, or the ``MANIFEST:`` part of
  ``helm upgrade --install --dry-run=client``) split into documents without ``# Source:`` lines;
* :class:`ChartRepository`: a chart repository served on 127.0.0.1 by ``python3 -m http.server``
  (stopped by its pid), holding a minimal chart for every remote chart a plan names;
* :func:`copy_project` and :func:`keyed_example`: copies of a project whose remote charts come
  from that repository and, for the example, whose every environment's secrets the test key
  decrypts;
* :func:`decrypt_step_secrets`: a plan step's secrets decrypted by the real sops into the values
  files ``meshc apply`` would pass (:func:`compiler.ops.apply.release_secrets`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import yaml
from conftest import EXAMPLE_INPUTS, GOLDEN, ROOT, pin_charts, run_meshc, shared_chart_cache
from realtools import helm4, run_helm

from compiler.core.diagnostics import CompileError
from compiler.core.files import ProjectFiles
from compiler.ops.apply import release_secrets
from compiler.output.journal import CACHE_DIR
from compiler.pipeline import load_project
from compiler.plan.plan import Step
from compiler.render.remote import read_lock
from compiler.secrets.sops import AgeKey, decrypt, encrypt, find_sops

TEST_KEY = ROOT / "tests" / "keys" / "example-age-key.txt"
SOPS_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
WORKERS = 4  # helm processes at once (a helm run is mostly start-up: 4 keep 2 cores busy)

T = TypeVar("T")
R = TypeVar("R")


def in_parallel(run: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[run(item) for item in items]``, on :data:`WORKERS` threads (each runs a process)."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(run, items))


# --- what Helm hands a chart --------------------------------------------------------------------

VALUES_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: values-{{ .Chart.Name }}
data:
  values.json: {{ toJson .Values | quote }}
"""
VALUES_TEMPLATE_PATH = "templates/values.yaml"


def write_values_chart(folder: Path, name: str, values: Any = None,
                       dependencies: Sequence[dict[str, Any]] = (), version: str = "0.1.0",
                       show: bool = True) -> Path:
    """Chart ``name`` in ``folder/name``: ``values`` (JSON, which YAML reads) as its
    ``values.yaml`` (none for None), each ``{name, values, dependencies}`` of ``dependencies``
    as a subchart in ``charts/``, and (``show``) one template showing ``.Values`` as JSON."""
    chart = folder / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n",
                                      encoding="utf-8")
    if values is not None:
        (chart / "values.yaml").write_text(json.dumps(values), encoding="utf-8")
    if show:
        (chart / VALUES_TEMPLATE_PATH).write_text(VALUES_TEMPLATE, encoding="utf-8")
    for dependency in dependencies:
        write_values_chart(chart / "charts", dependency["name"], dependency.get("values"),
                           dependency.get("dependencies") or (), show=False)
    return chart


@dataclass(frozen=True, slots=True)
class HelmValues:
    """What ``helm template`` did with a command line: the chart's ``.Values``, or a refusal."""

    returncode: int
    values: Any      # None when helm refused
    stderr: str

    @property
    def refused(self) -> bool:
        return self.returncode != 0


def helm_values(helm: Path, chart: Path, args: Sequence[str], cwd: Path,
                home: Path) -> HelmValues:
    """``helm template values CHART --show-only templates/values.yaml ARGS`` in ``cwd``: the
    ``.Values`` the chart (made by :func:`write_values_chart`) received."""
    done = run_helm(helm, ["template", "values", str(chart), "--show-only", VALUES_TEMPLATE_PATH,
                           *args], home, cwd=cwd)
    if done.returncode != 0:
        return HelmValues(done.returncode, None, done.stderr)
    shown = yaml.safe_load(done.stdout)
    return HelmValues(0, json.loads(shown["data"]["values.json"]), done.stderr)


def values_as_helm_reads(helm: Path, texts: Sequence[str], work: Path) -> list[Any]:
    """Each text read by Helm as a values file (``--values``): the map, or ``{"error": …}``."""
    chart = write_values_chart(work, "reader")

    def read(item: tuple[int, str]) -> Any:
        index, text = item
        path = work / f"values-{index}.yaml"
        path.write_text(text, encoding="utf-8")
        found = helm_values(helm, chart, ["--values", path.name], work, work / "home")
        return {"error": found.stderr.strip()} if found.refused else found.values

    return in_parallel(read, list(enumerate(texts)))


# --- Helm's output as documents -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Document:
    """One document of Helm's output: its text (no ``# Source:`` line, no trailing line breaks),
    the template it came from and its parsed form."""

    source: str
    text: str
    data: Any

    @property
    def identity(self) -> tuple[str, str, str]:
        meta = (self.data or {}).get("metadata") or {}
        return (str(self.data.get("kind")), str(meta.get("namespace", "")),
                str(meta.get("name")))


_SOURCE = re.compile(r"^# Source: (.*)$", re.MULTILINE)


def strip_source_comments(manifest: str) -> str:
    """Drop the ``# Source: ...`` lines Helm writes after each ``---`` of a release manifest."""
    return "".join(line for line in manifest.splitlines(keepends=True)
                   if not line.startswith("# Source: "))


def manifest_documents(output: str) -> list[Document]:
    """The documents of ``helm template`` output (or of the ``MANIFEST:`` section of ``helm
    upgrade --install --dry-run=client``), in Helm's order."""
    if "\nMANIFEST:\n" in output:
        output = output.split("\nMANIFEST:\n", 1)[1].split("\nNOTES:\n", 1)[0]
    return _documents(output)


def hook_documents(output: str) -> list[Document]:
    """The documents of the ``HOOKS:`` section of ``helm upgrade --install --dry-run=client``
    (resources annotated ``helm.sh/hook``, which Helm installs apart from the manifest)."""
    if "\nHOOKS:\n" not in output:
        return []
    section = output.split("\nHOOKS:\n", 1)[1]
    return _documents(re.split(r"^MANIFEST:\n", section, maxsplit=1, flags=re.MULTILINE)[0])


def _documents(output: str) -> list[Document]:
    documents = []
    for chunk in re.split(r"^---\n", output, flags=re.MULTILINE):
        source = _SOURCE.search(chunk)
        text = strip_source_comments(chunk).rstrip("\n")
        if not text.strip():
            continue
        documents.append(Document(source.group(1) if source else "", text, yaml.safe_load(text)))
    return documents


# --- a chart repository on 127.0.0.1 -----------------------------------------------------------

class ChartRepository:
    """Chart repositories served by ``python3 -m http.server`` on 127.0.0.1 (one folder per
    repository URL it stands in for), for ``helm … --repo URL --version V``. Use as a context
    manager: the server is stopped by its pid on exit."""

    def __init__(self, helm: Path, folder: Path, home: Path) -> None:
        self.helm, self.folder, self.home = helm, folder, home
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.charts: set[tuple[str, str, str]] = set()

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
             "--directory", str(self.folder)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        port = re.search(r" port (\d+)", line)
        if port is None:
            self.__exit__()
            raise RuntimeError(f"http.server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{port.group(1)}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None

    def stand_in(self, url: str) -> str:
        """The URL standing in for repository ``url`` (a folder of this server)."""
        return f"{self.url}/{slug(url)}"

    def add(self, stand_in: str, name: str, version: str) -> None:
        """Serve a minimal chart ``name`` ``version`` (its one template shows ``.Values``) in
        the repository at ``stand_in``."""
        if (stand_in, name, version) in self.charts:
            return
        folder = self.folder / stand_in.removeprefix(self.url + "/")
        source = write_values_chart(self.folder / ".src" / f"{name}-{version}", name,
                                    version=version)
        for args in (["package", str(source), "--destination", str(folder)],
                     ["repo", "index", str(folder), "--url", stand_in]):
            done = run_helm(self.helm, args, self.home)
            assert done.returncode == 0, done.stderr
        self.charts.add((stand_in, name, version))

    def add_package(self, stand_in: str, name: str, version: str, package: Path) -> None:
        """Serve the chart package ``package`` as ``name`` ``version`` in the repository at
        ``stand_in`` (the same bytes: a lock's digest of it holds)."""
        if (stand_in, name, version) in self.charts:
            return
        folder = self.folder / stand_in.removeprefix(self.url + "/")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package, folder / f"{name}-{version}.tgz")
        done = run_helm(self.helm, ["repo", "index", str(folder), "--url", stand_in], self.home)
        assert done.returncode == 0, done.stderr
        self.charts.add((stand_in, name, version))

    def fetch(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}/{path}", timeout=10) as answer:
            return bytes(answer.read())


def slug(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-")[:40] + "-" + \
        hashlib.sha256(url.encode()).hexdigest()[:8]


# --- projects to judge ------------------------------------------------------------------------

_REPO = re.compile(r"^(\s*repo:\s*)(\S+)\s*$", re.MULTILINE)


def copy_project(source: Path, dest: Path, repository: ChartRepository | None = None) -> Path:
    """A copy of the project in ``source`` (no rendered output, no cache) whose meshfile's
    ``repo:`` URLs point at ``repository``'s stand-ins."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(
        meshfile_output(source), CACHE_DIR, "__pycache__"))
    if repository is not None:
        point_repos(dest / "meshfile.yaml", repository)
    return dest


def point_repos(meshfile: Path, repository: ChartRepository) -> None:
    """Rewrite every ``repo:`` URL of ``meshfile`` to its stand-in in ``repository``."""
    text = meshfile.read_text(encoding="utf-8")
    meshfile.write_text(_REPO.sub(lambda m: m.group(1) + repository.stand_in(
        m.group(2).strip("\"'")), text), encoding="utf-8")


def example_key() -> AgeKey:
    return AgeKey(file=str(TEST_KEY))


def example_recipient() -> str:
    found = re.search(r"# public key: (age1\w+)", TEST_KEY.read_text(encoding="utf-8"))
    assert found is not None
    return found.group(1)


def keyed_example(root: Path, repository: ChartRepository | None = None) -> Path:
    """A copy of the example whose every environment's secrets the test key decrypts.

    The development secrets are the example's own (encrypted to the test key). Those of staging
    and production are encrypted to keys that are not in the repository: the copy replaces each
    of their values by ``stand-in:<path>`` (same keys, read from the encrypted files, where SOPS
    leaves them in clear text), encrypts that with the real sops to the test key and names the
    test key as the environments' recipient. Manifests and values are the example's; only the
    secret values (and so the plans' ``inputsDigest``) differ.
    """
    root.mkdir(parents=True)
    for name in EXAMPLE_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copyfile(source, root / name)
    meshfile = root / "meshfile.yaml"
    if repository is not None:
        point_repos(meshfile, repository)
    recipient = example_recipient()
    meshfile.write_text(re.sub(r"\bage1[0-9a-z]{58}\b", recipient,
                               meshfile.read_text(encoding="utf-8")), encoding="utf-8")
    sops = find_sops(SOPS_PATH)
    for path in sorted(root.glob("environments/*/secrets.yaml")):
        if recipient in path.read_text(encoding="utf-8"):
            continue  # the test key opens it already: keep the real file
        shape = yaml.safe_load(path.read_text(encoding="utf-8"))
        shape.pop("sops")
        plain = yaml.safe_dump(_stand_ins(shape, ()), sort_keys=False).encode()
        path.write_bytes(encrypt(sops, plain, [recipient], str(path.relative_to(root))))
    return root


def _stand_ins(node: Any, path: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        return {key: _stand_ins(value, (*path, str(key))) for key, value in node.items()}
    return "stand-in:" + ".".join(path)


def decrypt_step_secrets(root: Path, step: Step, into: Path) -> list[Path]:
    """The values files ``meshc apply`` passes ``step`` besides its argv: each of its secrets
    files decrypted by the real sops with the test key, the release's part only."""
    sops = find_sops(SOPS_PATH)
    paths = []
    for index, item in enumerate(step.secrets, 1):
        data = release_secrets(decrypt(sops, root, item.file, example_key()), item)
        path = into / f"{step.release}.{index}.json"
        path.write_bytes(data)
        paths.append(path)
    return paths


def meshfile_output(root: Path) -> str:
    """The meshfile's ``output:`` folder (``rendered`` unless it says otherwise)."""
    data = yaml.safe_load((root / "meshfile.yaml").read_text(encoding="utf-8")) or {}
    return str(data.get("output") or "rendered").rstrip("/")


def plan_json(root: Path, environment: str, *options: str) -> dict[str, Any]:
    """``meshc plan ENV -o json [OPTIONS…]`` of the project in ``root``."""
    with _helm_for_meshc():
        code, out, err = run_meshc("-f", str(root / "meshfile.yaml"), "plan", environment,
                                   "-o", "json", *options)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def rendered_projects(work: Path,
                      repository: ChartRepository | None = None) -> tuple[dict[str, Path], list[str]]:
    """The example (:func:`keyed_example`) and every golden project, copied into ``work``
    (remote charts from ``repository``) and rendered in place; the golden projects that do not
    render (error cases) are listed apart."""
    roots = {"example": keyed_example(work / "example", repository)}
    for project in sorted(GOLDEN.glob("*/project")):
        roots[project.parent.name] = copy_project(project, work / project.parent.name, repository)
    failed = []
    with _helm_for_meshc():  # projects with Helm charts render with the real Helm 4
        if repository is not None:
            for root in roots.values():
                serve_pinned(root, repository)
        for name, root in list(roots.items()):
            code, _, err = run_meshc("-f", str(root / "meshfile.yaml"), "render")
            if code != 0:
                assert name != "example", err
                failed.append(name)
                del roots[name]
    return roots, failed


def serve_pinned(root: Path, repository: ChartRepository) -> None:
    """Pin the remote charts of the project at ``root`` (:func:`conftest.pin_charts`: the
    example's from tests/fixtures/charts, others minimal charts showing ``.Values``) and serve
    each pinned package from its (stand-in) repository, so the plans' ``helm upgrade --install
    … --repo`` pull exactly the bytes that were rendered and reviewed."""
    try:
        load_project(ProjectFiles(root))
    except CompileError:
        return  # an error case: it does not load, nothing to pin
    lock = read_lock(ProjectFiles(root), pin_charts(root).name)
    cache = Path(os.environ["MESHC_CHART_CACHE"])
    for pin in lock.pins if lock is not None else ():
        if pin.repo:
            repository.add_package(pin.repo, pin.chart, pin.resolved,
                                   cache / f"{pin.digest.replace(':', '-')}.tgz")


@contextlib.contextmanager
def _helm_for_meshc() -> Iterator[None]:
    """``MESHC_HELM`` naming the real Helm 4 and ``MESHC_CHART_CACHE`` the tests' chart cache
    for the block (meshc's CLI reads them; module-scoped fixtures run before the autouse one)."""
    old = {name: os.environ.get(name) for name in ("MESHC_HELM", "MESHC_CHART_CACHE")}
    os.environ["MESHC_HELM"] = str(helm4())
    os.environ.setdefault("MESHC_CHART_CACHE", str(shared_chart_cache()))
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
