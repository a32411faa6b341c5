"""Compiling on several processes gives the same bytes as compiling in one."""

from __future__ import annotations

from pathlib import Path

from conftest import run_meshc, tree_files

from compiler.output.parallel import PARALLEL_THRESHOLD

N = PARALLEL_THRESHOLD // 3 + 10  # releases × 3 environments: enough to fork


def make_project(root: Path) -> Path:
    (root / "chart").mkdir(parents=True)
    (root / "chart" / "values.yaml").write_text("replicas: 1\nimage: {tag: '1.0.0'}\n")
    (root / "chart" / "deployment.yaml.j2").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ release.name }}\n"
        "spec:\n  replicas: {{ values.replicas }}\n  selector:\n    matchLabels: "
        "{app: {{ release.name }}}\n  template:\n    metadata:\n      labels: "
        "{app: {{ release.name }}}\n    spec:\n      containers:\n        - name: app\n"
        "          image: \"example/{{ release.name }}:{{ values.image.tag }}\"\n")
    lines = ["apiVersion: meshc/v1", "environments:",
             "  base: {abstract: true, values: [base.yaml]}"]
    for env, replicas in (("dev", 1), ("stage", 2), ("prod", 3)):
        lines.append(f"  {env}: {{inherits: base, values: [{env}.yaml]}}")
        (root / f"{env}.yaml").write_text(
            "".join(f"svc-{i}: {{replicas: {replicas + i % 3}}}\n" for i in range(N)))
    (root / "base.yaml").write_text(
        "".join(f"svc-{i}: {{image: {{tag: '1.{i}.0'}}}}\n" for i in range(N)))
    lines.append("releases:")
    lines += [f"  svc-{i}: {{chart: chart{', needs: [svc-0]' if i else ''}}}" for i in range(N)]
    (root / "meshfile.yaml").write_text("\n".join(lines) + "\n")
    return root / "meshfile.yaml"


def test_parallel_and_serial_renders_are_identical(tmp_path: Path) -> None:
    meshfile = str(make_project(tmp_path / "p"))
    trees = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}"
        code, _, err = run_meshc("-f", meshfile, "render", "--no-cache", "-j", jobs,
                                 "--out", str(out))
        assert code == 0, err
        trees.append(tree_files(out))
    assert len(trees[0]) == 3 * (N * 4 + 1)  # values, Chart.yaml, template, manifest; plan
    assert trees[0] == trees[1]


def test_keys_the_workers_compute_on_a_cold_cache_are_the_parents(tmp_path: Path) -> None:
    """On a first render the workers compute the cache keys; they must be the keys the parent
    computes when it looks releases up, or the next render would compile everything again."""
    from compiler.core.files import ProjectFiles
    from compiler.output.cache import Cache
    from compiler.output.journal import CACHE_DIR
    from compiler.output.parallel import plan_work
    from compiler.pipeline import load_project

    meshfile = make_project(tmp_path / "p")
    code, _, err = run_meshc("-f", str(meshfile), "render", "-j", "2")
    assert code == 0, err
    files = ProjectFiles(meshfile.parent)
    compiler = load_project(files)
    cache = Cache(meshfile.parent / CACHE_DIR, compiler.files, compiler.templates)
    work = plan_work(compiler, list(compiler.project.deployable), cache)
    assert not work.unkeyed and not work.todo, f"{len(work.todo)} releases missed the cache"
    assert len(work.done) == 3 * N


def test_the_snapshot_from_parallel_writes_is_what_a_walk_finds(tmp_path: Path) -> None:
    from compiler.core import sealed
    from compiler.output.journal import tree_stats

    meshfile = make_project(tmp_path / "p")
    code, _, err = run_meshc("-f", str(meshfile), "render", "-j", "2")
    assert code == 0, err
    snapshot = sealed.read_map(meshfile.parent / ".meshc-cache" / "output.pickle")
    assert snapshot["stats"] == tree_stats(meshfile.parent / "rendered")


def test_the_journal_of_a_parallel_render_has_what_the_workers_read(tmp_path: Path) -> None:
    """Workers read templates in their own processes: what they read must reach the render
    journal, or an edited template would be answered with 'up to date'."""
    from compiler.core import sealed

    meshfile = make_project(tmp_path / "p")
    code, _, err = run_meshc("-f", str(meshfile), "render", "-j", "2")
    assert code == 0, err
    snapshot = sealed.read_map(meshfile.parent / ".meshc-cache" / "output.pickle")
    assert ("read", "chart/deployment.yaml.j2") in snapshot["journal"]
    template = meshfile.parent / "chart" / "deployment.yaml.j2"
    template.write_text(template.read_text().replace("name: app", "name: main"))
    code, _, err = run_meshc("-f", str(meshfile), "render", "-j", "2")
    assert code == 0 and "up to date" not in err, err
    out = (meshfile.parent / "rendered" / "dev" / "svc-1" / "manifests" /
           "deployment-svc-1.yaml").read_text()
    assert "name: main" in out
