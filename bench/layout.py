#!/usr/bin/env python3
"""What the per-release layout costs in inodes: the rendered tree as meshc writes it, against
the same files with one folder fewer per release (issue 17, "fewer inodes").

    python3 bench/layout.py bench/work/n1000/meshc/rendered [--reps 3] [--dir bench/work]

Reads a rendered tree into memory, then writes it into fresh folders on the disk of ``--dir``,
alternately in each layout, as a first render does (every file and folder created):

    current   ENV/REL/{Chart.yaml, values.yaml, templates/manifests.yaml, manifests/*.yaml}
    flat      ENV/REL/{Chart.yaml, values.yaml, templates/manifests.yaml, *.yaml manifests}
              (the manifests beside values.yaml: 2 folders per release instead of 3)

and reports entries (files, folders), wall time and system time of each write, and of the
deletion of each tree. Measurement only: the layout meshc writes is DESIGN.md's.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def read(root: Path) -> dict[str, bytes]:
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def flat(rel: str) -> str:
    parts = rel.split("/")
    if len(parts) == 4 and parts[2] == "manifests":
        return f"{parts[0]}/{parts[1]}/{parts[3]}"
    return rel


def write(root: Path, files: dict[str, bytes]) -> tuple[float, float, int]:
    """Write ``files`` under ``root``: wall, system seconds, folders made."""
    made: set[str] = set()
    start, sys0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for rel in sorted(files):
        folder = rel.rpartition("/")[0]
        if folder not in made:
            os.makedirs(root / folder, exist_ok=True)
            while folder and folder not in made:
                made.add(folder)
                folder = folder.rpartition("/")[0]
        handle = os.open(root / rel, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.write(handle, files[rel])
        os.close(handle)
    os.sync()
    return (time.perf_counter() - start,
            resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0, len(made))


def remove(root: Path) -> tuple[float, float]:
    start, sys0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
    shutil.rmtree(root)
    os.sync()
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/layout.py", description=__doc__.split("\n")[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent / "work")
    args = parser.parse_args(argv)
    current = read(args.tree)
    layouts = {"current": current, "flat": {flat(rel): data for rel, data in current.items()}}
    assert len(layouts["flat"]) == len(current), "a manifest would collide with another file"
    args.dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[tuple[float, float, int, float, float]]] = {k: [] for k in layouts}
    for rep in range(args.reps):
        for name, files in layouts.items():
            root = Path(tempfile.mkdtemp(prefix=f"layout-{name}-", dir=args.dir))
            wall, system, folders = write(root, files)
            rwall, rsystem = remove(root)
            results[name].append((wall, system, folders, rwall, rsystem))
            print(f"rep {rep + 1} {name:<8} {len(files)} files, {folders} folders: write "
                  f"{wall:.2f} s (system {system:.2f} s), delete {rwall:.2f} s "
                  f"(system {rsystem:.2f} s)", flush=True)
    print("\n| layout | files | folders | entries | write s (median) | write system s "
          "| delete s | delete system s |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        folders = rows[0][2]
        med = [statistics.median(r[i] for r in rows) for i in (0, 1, 3, 4)]
        print(f"| {name} | {len(layouts[name])} | {folders} | {len(layouts[name]) + folders} "
              f"| {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
