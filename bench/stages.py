#!/usr/bin/env python3
"""Where a full meshc render of the benchmark workload spends its time, by stage.

Generates the workload for N services (bench/generate.py, under bench/work/nN/ unless it is
there already), runs one full render in a single process (``meshc render --no-cache -j1``, so
every stage is in one profile) under cProfile, and prints the inclusive time of each stage and
its share of the whole. Stages nest (a template's ``toyaml`` emits YAML inside template
rendering), so the shares overlap a little and need not add up to 100%; cProfile also slows
Python code more than C code, so read the shares as proportions, not seconds.

Usage: python bench/stages.py [N] [--top K]    (default N = 1000; --top also lists the K
                                                 functions with the most time of their own)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# (label, module path suffix, function name): inclusive time of the function
STAGES = [
    ("whole command", "compiler/cli/main.py", "render"),
    ("load the project (meshfile, values files)", "compiler/pipeline.py", "load_project"),
    ("look releases up in the cache, plan the work", "compiler/output/parallel.py", "plan_work"),
    ("compile releases", "compiler/pipeline.py", "compile_releases"),
    ("  render templates (Jinja, sandboxed)", "compiler/render/sandbox.py", "render_bounded"),
    ("  read the YAML templates wrote", "compiler/syntax/yamlsrc.py", "load_documents"),
    ("  write YAML (manifests, values)", "compiler/syntax/yamlsrc.py", "dump_yaml"),
    ("write files", "compiler/output/emit.py", "write_files"),
    ("plans and plan.json", "compiler/pipeline.py", "plan_environment"),
    ("output snapshot and cache", "compiler/output/cache.py", "record_output"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=1000, help="number of services")
    parser.add_argument("--top", type=int, default=0, help="also list the K costliest functions")
    args = parser.parse_args(argv)
    work = BENCH / "work" / f"n{args.n}"
    if not (work / "meshc" / "meshfile.yaml").exists():
        subprocess.run([sys.executable, str(BENCH / "generate.py"), str(args.n), str(work)],
                       check=True)
    project = work / "meshc"
    out = Path(tempfile.mkdtemp(prefix="meshc-profile-"))
    stats_file = out / "render.prof"
    try:
        from compiler.cli.main.main import main as meshc

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            meshc(["-f", str(project / "meshfile.yaml"), "render", "--no-cache", "-j", "1",
                   "--out", str(out / "rendered")], prog_name="meshc", standalone_mode=False)
        finally:
            profiler.disable()
        profiler.dump_stats(stats_file)
        stats = pstats.Stats(str(stats_file))
        inclusive: dict[str, float] = {}
        for (file, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
            for label, suffix, function in STAGES:
                if name == function and file.endswith(suffix):
                    inclusive[label] = inclusive.get(label, 0.0) + cumulative
        whole = inclusive.get("whole command") or 1.0
        print(f"meshc render of N = {args.n} ({project}), one process, under cProfile:")
        for label, _, _ in STAGES:
            seconds = inclusive.get(label, 0.0)
            print(f"  {label:<48} {seconds:7.2f} s  {seconds / whole:6.1%}")
        if args.top:
            print()
            stats.sort_stats("tottime").print_stats(args.top)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
