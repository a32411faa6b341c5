"""Rendering many releases on every core.

The environment-wide work (values trees, features, conditions) is cheap and done once in the
parent; the releases — values, templates, YAML — are split into interleaved chunks and compiled
in forked worker processes, which inherit the loaded project and template cache. Workers return
plain data (files and what the plan needs); the output is byte-identical to a serial compile.
Where ``fork`` is unavailable, or the work is small, everything runs in this process.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..core.limits import current as current_limits
from ..model.model import Environment, HelmOptions, Release
from ..pipeline import (
    Compiler,
    Prepared,
    ReleaseSecrets,
    Resource,
    committed_review,
    compile_releases,
    plan_environment,
    prepare,
    release_files,
    stale_review,
)
from ..plan.plan import Plan, format_json
from ..render.helm_chart import no_helm
from ..values.values import ValueSet, release_values
from .cache import Cache
from .emit import write_files

PARALLEL_THRESHOLD = 200  # releases × environments below which forking costs more than it saves
# What a Helm-chart release to render weighs against that threshold: a `helm template` process
# (~60-100 ms of Helm's start-up) costs a hundred Jinja releases, so two of them already fork,
# and the helm processes of a first render run on every core.
HELM_WEIGHT = 100


@dataclass(frozen=True, slots=True)
class Placed:
    """A release compiled by a worker: what the plan needs, and its files."""

    env: str
    release: Release
    namespace: str
    helm: HelmOptions
    secrets: ReleaseSecrets
    files: dict[str, str]
    hooks: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()  # what Helm would own (pipeline.resources_of)


# Set in the parent just before forking, read by the forked children (never mutated there).
_SHARED: tuple[Compiler, Work, Path | None, Cache | None] | None = None


# (environment, release, namespace, helm, secrets, files, hooks, cache key or None)
Done = tuple[int, int, str, HelmOptions, ReleaseSecrets, dict[str, str], tuple[str, ...],
             tuple[Resource, ...], str | None]


Written = dict[str, tuple[int, int]]  # path → size and modification time (ns) as written


@dataclass(frozen=True, slots=True)
class Chunk:
    """What compiling a chunk of releases gives back, as plain data."""

    done: list[Done]
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    written: Written
    observed: dict[tuple[str, str], Any]  # what it read of the project (compiler/output/journal.py)


def _work(chunk: list[tuple[int, int]]) -> Chunk:
    """Compile the (environment, release) pairs of ``chunk``; plain data comes back (a
    release is named by its index: pickling model objects back costs more than compiling).
    In a worker, the project files it reads are journaled in its own copy of the journal:
    what it adds comes back, so the parent's journal misses nothing."""
    assert _SHARED is not None
    compiler, work, write_root, cache = _SHARED
    placed: list[Done] = []
    diags = Diagnostics()
    written: Written = {}
    journal = compiler.files.journal
    known_before = set(journal) if journal is not None else set()
    for env_index, release_index in chunk:
        prep = work.prepared[env_index]
        release = prep.enabled[release_index]
        key = work.keys.get((env_index, release_index))
        known = work.values.get((env_index, release_index))
        if cache is not None and (env_index, release_index) in work.unkeyed:
            found = release_key(compiler, cache, prep, release)  # in parallel, here
            if found is not None:
                key, known = found
        try:
            (output,) = compile_releases(compiler, prep, [release],
                                         {release.name: known} if known else None)
        except CompileError as exc:
            diags.absorb(exc)
            continue
        files = release_files(prep.env.name, output)
        if write_root is not None:  # write here, in parallel
            write_files(write_root, files, written)
            if cache is None:
                files = dict.fromkeys(files, "")
        placed.append((env_index, release_index, output.namespace, output.helm, output.secrets,
                       files, output.hooks, output.resources, key))
    observed = ({k: v for k, v in journal.items() if k not in known_before}
                if journal is not None else {})
    return Chunk(placed, diags.items, diags.sources, written, observed)


def _require_helm(compiler: Compiler, work: Work) -> None:
    """One error, before any work starts, when Helm charts are left to render and there is no
    helm: it names every such release (not one error per release and environment)."""
    if compiler.renderer is not None:
        return
    envs = sorted({e for e, r in work.todo if work.prepared[e].enabled[r].chart.is_helm})
    stale = [e for e in envs if committed_review(compiler, work.prepared[e]) is None]
    pending = {work.prepared[e].enabled[r].name for e, r in work.todo
               if e in stale and work.prepared[e].enabled[r].chart.is_helm}
    if pending:
        why = {stale_review(compiler, work.prepared[e]) for e in stale} - {None}
        raise CompileError([no_helm([r for r in compiler.project.releases if r.name in pending],
                                    next(iter(why), None), compiler.helm)])


def _placed(prepared: list[Prepared], done: Done) -> Placed:
    env_index, release_index, namespace, helm, secrets, files, hooks, resources, _ = done
    prep = prepared[env_index]
    return Placed(prep.env.name, prep.enabled[release_index], namespace, helm, secrets, files,
                  hooks, resources)


@dataclass(frozen=True, slots=True)
class Work:
    """A render split into releases served by the cache and releases still to compile."""

    prepared: list[Prepared]
    done: list[Placed]
    todo: list[tuple[int, int]]
    keys: dict[tuple[int, int], str]
    values: dict[tuple[int, int], ValueSet]  # computed for the keys: not computed again
    unkeyed: set[tuple[int, int]]  # to compile and cache, keys computed by the workers


def plan_work(compiler: Compiler, envs: list[Environment], cache: Cache | None) -> Work:
    """Prepare ``envs`` and look every enabled release up in ``cache``. Where the cache holds
    nothing for an environment (a first render), nothing can hit: its keys are left to the
    workers, which compute them in parallel."""
    prepared = []
    broken = Diagnostics()  # every environment's errors, not only the first's
    for env in envs:
        try:
            prepared.append(prepare(compiler, env))
        except CompileError as exc:
            broken.absorb(exc, f"in environment '{env.name}'")
    broken.raise_if_errors()
    work = Work(prepared, [], [], {}, {}, set())
    for e, prep in enumerate(prepared):
        cold = cache is not None and cache.is_empty(prep.env.name)
        for r, release in enumerate(prep.enabled):
            if cold:
                work.todo.append((e, r))
                work.unkeyed.add((e, r))
                continue
            found = release_key(compiler, cache, prep, release) if cache is not None else None
            if found is None:
                work.todo.append((e, r))
                continue
            key, values = found
            entry = cache.get(prep.env.name, key) if cache is not None else None
            if entry is not None:
                work.done.append(Placed(prep.env.name, release, *entry))
                continue
            work.todo.append((e, r))
            work.keys[(e, r)] = key
            work.values[(e, r)] = values
    if cache is not None:
        cache.forget_misses()
    return work


def render_files(compiler: Compiler, envs: list[Environment], jobs: int | None = None,
                 write_root: Path | None = None, cache: Cache | None = None,
                 work: Work | None = None, plans: dict[str, Plan] | None = None,
                 written: Written | None = None) -> dict[str, str]:
    """The output files of ``envs`` (paths relative to the output directory), compiled on
    ``jobs`` processes (default: every core), releases found in ``cache`` reused. With
    ``write_root`` the files are also written there (by the workers, in parallel); then,
    without a cache, the returned texts of compiled releases are empty. ``plans``, if given,
    receives each environment's plan; ``written``, each file written, with its size and
    modification time. Raises :class:`CompileError` with all problems."""
    import multiprocessing  # here: most commands never fork, and these imports cost
    from concurrent.futures import ProcessPoolExecutor

    global _SHARED
    work = work or plan_work(compiler, envs, cache)
    _require_helm(compiler, work)
    jobs = jobs or os.cpu_count() or 1
    _SHARED = (compiler, work, write_root, cache)
    try:
        _quiet_gc()
        if jobs <= 1 or _weight(compiler, work) < PARALLEL_THRESHOLD or \
                "fork" not in multiprocessing.get_all_start_methods():
            raw = [_work(work.todo)]
        else:
            chunks = [work.todo[i::jobs * 4] for i in range(jobs * 4)]
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=_die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                raw = list(pool.map(_work, chunks))
    finally:
        _SHARED = None
        _restore_gc()
    results = [([_placed(work.prepared, d) for d in chunk.done], chunk.diagnostics,
                chunk.sources) for chunk in raw]
    journal = compiler.files.journal
    if journal is not None:
        for chunk in raw:
            for observation, seen in chunk.observed.items():
                journal.setdefault(observation, seen)
    if cache is not None:
        _remember(cache, work, raw)
    files = _assemble(compiler, work.prepared, [(work.done, [], {}), *results], plans)
    if write_root is not None:
        if written is not None:
            for chunk in raw:
                written.update(chunk.written)
        write_files(write_root, {p: t for placed in work.done for p, t in placed.files.items()},
                    written)
        write_files(write_root, {p: t for p, t in files.items() if p.endswith("/plan.json")},
                    written)
    return files


def _weight(compiler: Compiler, work: Work) -> int:
    """The work left, in Jinja releases: a Helm-chart release helm renders weighs
    :data:`HELM_WEIGHT`."""
    helm = sum(1 for e, r in work.todo if work.prepared[e].enabled[r].chart.is_helm) \
        if compiler.renderer is not None and compiler.helm_manifests else 0
    return len(work.todo) + (HELM_WEIGHT - 1) * helm


_SAVED_GC: list[tuple[int, ...]] = []


def _die_with_parent(parent: int) -> None:
    """In a forked worker: end when the render that forked it ends, however it ends. A worker
    outliving a SIGKILLed parent would block for ever on a full result pipe nobody reads,
    holding the terminal's output pipes open (Linux: the kernel sends SIGKILL on the parent's
    death; elsewhere the pool's own shutdown applies)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _quiet_gc() -> None:
    """Keep the cyclic garbage collector off what is loaded already while releases compile.

    The project, its values and compiled templates are long-lived; without this every full
    collection walks them again (about a tenth of a large render's time). ``gc.freeze`` moves
    them out of the collector's sight — in forked workers too, which also then leave their
    copy-on-write pages alone — and a larger first threshold collects less often; cycles made
    while compiling are still collected."""
    _SAVED_GC.append(gc.get_threshold())
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _restore_gc() -> None:
    gc.set_threshold(*_SAVED_GC.pop())
    gc.unfreeze()


def release_key(compiler: Compiler, cache: Cache, prep: Prepared,
                release: Release) -> tuple[str, ValueSet] | None:
    """The cache key of ``release`` in ``prep``'s environment and the values it hashed (None:
    do not cache; compiling will report why)."""
    diags = Diagnostics()
    try:
        values = release_values(release, prep.env_values, diags)
    except CompileError:
        return None
    if diags.has_errors:
        return None
    env = prep.env
    return cache.key({
        "environment": _environment_digest(compiler, cache, prep),
        "release": [release.name, release.chart.ref, release.chart.local, release.labels,
                    release.values_key_text, repr(release.namespace), repr(release.helm),
                    repr(release.patches)],
        "values": values.values,
        "templates": cache.chart_hash(release) if release.chart.local else None,
        **({"helm": compiler.renderer.version if compiler.renderer is not None else None,
            "kubeVersion": repr(env.kube_version), "apiVersions": env.api_versions,
            "package": compiler.charts.digest(release, env)
            if compiler.charts is not None and not release.chart.local else None}
           if release.chart.is_helm else {}),
    }), values


def _environment_digest(compiler: Compiler, cache: Cache, prep: Prepared) -> str:
    """The digest of what every release of ``prep``'s environment has in its key: the
    environment's name, template context, secret key names, helm options and namespace, the
    ``allowEnv`` variables templates may read and meshc's limits. Hashed once per environment
    (per release it was a third of the key's cost), and again if any of them may differ."""
    limits = repr(current_limits())  # a lowered limit must be enforced, not served around
    memo = cache.environments.get(prep.env.name)
    if memo is not None and memo[0] is prep and memo[1] is compiler and memo[2] == limits:
        return memo[3]
    env = prep.env
    digest = cache.key({
        "env": env.name, "context": prep.env_ctx, "secrets": repr(prep.env_secrets),
        "envHelm": repr(env.helm), "envNamespace": repr(env.namespace),
        "environ": compiler.templates.environ,  # allowEnv variables templates may read
        "limits": limits,
    })
    cache.environments[prep.env.name] = (prep, compiler, limits, digest)
    return digest


def _remember(cache: Cache, work: Work, raw: list[Chunk]) -> None:
    for chunk in raw:
        for (env_index, release_index, namespace, helm, secrets, files, hooks, resources,
             key) in chunk.done:
            if key is not None:
                env = work.prepared[env_index].env.name
                cache.put(env, key, (namespace, helm, secrets, files, hooks, resources))


def _assemble(compiler: Compiler, prepared: list[Prepared],
              results: list[tuple[list[Placed], list[Diagnostic], dict[str, str]]],
              plans: dict[str, Plan] | None = None) -> dict[str, str]:
    diags = Diagnostics()
    by_key: dict[tuple[str, str], Placed] = {}
    for placed, found, sources in results:
        diags.items.extend(found)
        diags.sources.update(sources)
        for p in placed:
            by_key[(p.env, p.release.name)] = p
    diags.raise_if_errors()
    files: dict[str, str] = {}
    for prep in prepared:
        env = prep.env.name
        ordered = tuple(by_key[(env, r.name)] for r in prep.enabled)
        try:
            plan = plan_environment(compiler, prep.env, ordered, prep.disabled, prep.slots)
        except CompileError as exc:
            diags.absorb(exc)
            continue
        if plans is not None:
            plans[env] = plan
        files[f"{env}/plan.json"] = format_json(plan)
        for p in ordered:
            files.update(p.files)
    diags.raise_if_errors()
    return files

