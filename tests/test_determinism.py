"""Same input, same bytes: whatever PYTHONHASHSEED, file-system order or earlier output.

The renders of the example run in fresh interpreters (``python -m compiler.cli``), because hash
randomisation is fixed when an interpreter starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from conftest import EXAMPLE_INPUTS, ROOT, run_meshc

HASH_SEEDS = ("0", "1", "12345")


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path → bytes); fails on anything not a file
    or a directory (symlinks, sockets)."""
    files = {}
    for path in sorted(root.rglob("*")):
        assert not path.is_symlink(), f"unexpected symlink in output: {path}"
        if path.is_file():
            files[path.relative_to(root).as_posix()] = path.read_bytes()
        else:
            assert path.is_dir(), f"unexpected file type in output: {path}"
    return files


def tree_difference(a: dict[str, bytes], b: dict[str, bytes]) -> str:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    differ = sorted(p for p in set(a) & set(b) if a[p] != b[p])
    return f"only in first: {only_a}\nonly in second: {only_b}\ncontent differs: {differ}"


def assert_same_tree(a: dict[str, bytes], b: dict[str, bytes], what: str) -> None:
    assert a == b, f"{what}:\n{tree_difference(a, b)}"


def staging_leftovers(out: Path) -> list[str]:
    """Staging directories of emit (``.<name>.meshc-*``) left beside ``out``."""
    return sorted(p.name for p in out.parent.glob(f".{out.name}.meshc-*"))


def meshc_subprocess(args: list[str], cwd: Path, hash_seed: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT),
           "LC_ALL": "C.UTF-8"}
    return subprocess.Popen([sys.executable, "-m", "compiler.cli.main", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def copy_example(dest: Path, reverse: bool) -> Path:
    """Copy the example's inputs to ``dest``, creating directories and files in sorted or in
    reversed order, so the directory entries come back in a different order."""
    sources: list[Path] = []
    for name in EXAMPLE_INPUTS:
        top = ROOT / name
        sources += [top] if top.is_file() else [top, *sorted(top.rglob("*"))]
    for source in sorted(sources, reverse=reverse):
        target = dest / source.relative_to(ROOT)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return dest


def test_cli_module_is_runnable() -> None:
    text = (ROOT / "compiler" / "cli" / "main.py").read_text(encoding="utf-8")
    assert 'if __name__ == "__main__":' in text


def test_render_is_identical_across_hash_seeds_and_equals_committed_tree(tmp_path: Path) -> None:
    procs = {}
    for seed in HASH_SEEDS:
        out = tmp_path / f"seed-{seed}" / "rendered"
        args = ["-f", str(ROOT / "meshfile.yaml"), "render", "--out", str(out)]
        procs[seed] = (out, meshc_subprocess(args, tmp_path, seed))  # concurrently: 2 cores
    trees = {}
    for seed, (out, proc) in procs.items():
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr
        trees[seed] = read_tree(out)
        assert trees[seed], f"nothing rendered with PYTHONHASHSEED={seed}"
        assert not staging_leftovers(out), staging_leftovers(out)
    first = trees[HASH_SEEDS[0]]
    for seed in HASH_SEEDS[1:]:
        assert_same_tree(first, trees[seed], f"PYTHONHASHSEED=0 vs {seed}")
    assert_same_tree(read_tree(ROOT / "rendered"), first,
                     "committed rendered/ vs a fresh render (run `meshc render` and commit?)")


def test_plan_graph_and_values_output_identical_across_hash_seeds(tmp_path: Path) -> None:
    commands = [["plan", "production", "-o", fmt] for fmt in ("text", "json", "sh")]
    commands += [["graph", "-o", "json"], ["graph", "production/eu-west", "-o", "mermaid"],
                 ["values", "production/eu-west", "weather-agent-blue"]]
    script = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from compiler.cli.main import main\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    r = CliRunner().invoke(main, ['-f', sys.argv[2], *args])\n"
        "    sys.stdout.write(f'=== {args} exit {r.exit_code}\\n{r.stdout}{r.stderr}')\n"
    )
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {seed: subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(commands), str(ROOT / "meshfile.yaml")],
        cwd=tmp_path, env={**env, "PYTHONHASHSEED": seed}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) for seed in HASH_SEEDS}
    outputs = {}
    for seed, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()
        outputs[seed] = stdout.decode()
        assert outputs[seed].count(" exit 0\n") == len(commands), outputs[seed]
    for seed in HASH_SEEDS[1:]:
        assert outputs[seed] == outputs[HASH_SEEDS[0]], f"PYTHONHASHSEED=0 vs {seed}"


def test_file_creation_order_does_not_matter(tmp_path: Path) -> None:
    trees = []
    for name, reverse in (("forward", False), ("reversed", True)):
        project = copy_example(tmp_path / name, reverse)
        out = tmp_path / f"{name}-out"
        code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render", "--out", str(out))
        assert code == 0, err
        trees.append(read_tree(out))
    assert_same_tree(trees[0], trees[1], "example copied in sorted vs reversed creation order")
    assert_same_tree(read_tree(ROOT / "rendered"), trees[0], "committed rendered/ vs copy")


class _ReversedScandir:
    """``os.scandir``'s iterator, yielding its entries in reversed order."""

    def __init__(self, inner: Any) -> None:
        with inner:
            self._entries = iter(list(inner)[::-1])

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._entries)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def reversed_directory_listings(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every directory listing of this process comes back in reversed order; returns the
    unpatched ``os.listdir``."""
    scandir, listdir = os.scandir, os.listdir
    monkeypatch.setattr(os, "scandir", lambda *a, **k: _ReversedScandir(scandir(*a, **k)))
    monkeypatch.setattr(os, "listdir", lambda *a, **k: listdir(*a, **k)[::-1])
    return listdir


def test_directory_listing_order_does_not_matter(tmp_path: Path,
                                                 reversed_directory_listings: Any) -> None:
    real_listdir = reversed_directory_listings
    folder = ROOT / "templates" / "registry"
    assert os.listdir(folder) == real_listdir(folder)[::-1]
    assert [e.name for e in os.scandir(folder)] == real_listdir(folder)[::-1]
    out = tmp_path / "rendered"
    code, _, err = run_meshc("-f", str(ROOT / "meshfile.yaml"), "render", "--out", str(out))
    assert code == 0, err
    assert_same_tree(read_tree(ROOT / "rendered"), read_tree(out),
                     "committed rendered/ vs a render seeing reversed directory listings")


def test_rendering_twice_into_the_same_out_is_stable_and_leaves_nothing_behind(
        tmp_path: Path) -> None:
    out = tmp_path / "site" / "rendered"
    meshfile = str(ROOT / "meshfile.yaml")
    code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    assert code == 0, err
    first = read_tree(out)
    first_mode = out.stat().st_mode
    code, _, err = run_meshc("-f", meshfile, "render", "--out", str(out))
    assert code == 0, err
    assert_same_tree(first, read_tree(out), "first vs second render into the same --out")
    assert out.stat().st_mode == first_mode
    assert sorted(p.name for p in out.parent.iterdir()) == ["rendered"], \
        f"stray entries beside the output: {sorted(p.name for p in out.parent.iterdir())}"
    assert not any(".meshc-" in p.as_posix() for p in out.rglob("*")), "staging dir inside output"


def test_rendering_one_environment_replaces_only_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    meshfile = str(ROOT / "meshfile.yaml")
    assert run_meshc("-f", meshfile, "render", "--out", str(out))[0] == 0
    everything = read_tree(out)
    stale = out / "staging" / "registry" / "stale.yaml"
    stale.write_text("x: 1\n")
    code, _, err = run_meshc("-f", meshfile, "render", "staging", "--out", str(out))
    assert code == 0, err
    assert_same_tree(everything, read_tree(out), "full render vs full render + staging again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rendered"]


def test_crlf_input_gives_the_same_output(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "crlf", reverse=False)
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".j2"):
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    out = tmp_path / "out"
    code, _, err = run_meshc("-f", str(project / "meshfile.yaml"), "render", "--out", str(out))
    assert code == 0, err
    assert_same_tree(read_tree(ROOT / "rendered"), read_tree(out), "committed vs CRLF input")


def test_relative_and_absolute_paths_give_the_same_output(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p", reverse=False)
    code, _, err = run_meshc("render", "--out", "../rel-out", cwd=project)
    assert code == 0, err
    code, _, err = run_meshc("-f", "p/meshfile.yaml", "render", cwd=tmp_path)
    assert code == 0, err
    assert_same_tree(read_tree(tmp_path / "rel-out"), read_tree(project / "rendered"),
                     "relative --out from the project vs relative -f from its parent")
    assert_same_tree(read_tree(ROOT / "rendered"), read_tree(project / "rendered"),
                     "committed vs a copy rendered through relative paths")
