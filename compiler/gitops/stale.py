"""Exports against what is committed: the options a committed export was made with (read back
from its own documents), the files a fresh export would write, and how they differ.

Encrypted Secrets cannot be compared by bytes (SOPS encrypts with a fresh data key each time):
each carries the digest of what it was made from (``meshc.io/sources``), compared instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.diagnostics import CompileError
from ..syntax.yamlsrc import load_documents
from .argocd import argocd_files
from .flux import SOURCES_ANNOTATION, SecretRequest, flux_files
from .model import ExportEnv, ExportOptions


def export_files(engine: str, env: ExportEnv, options: ExportOptions, folder: str,
                 source_bytes: dict[str, bytes]) -> tuple[dict[str, str], tuple[SecretRequest, ...]]:
    """What ``meshc export ENGINE`` writes for ``env`` (paths relative to the engine's folder)
    and the encrypted Secrets it needs besides."""
    if engine == "argocd":
        return argocd_files(env, options, folder), ()
    return flux_files(env, options, folder, source_bytes)


def _first(path: Path, kind: str) -> dict[str, Any] | None:
    try:
        docs = load_documents(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, ValueError, CompileError):  # gone, or not YAML
        return None
    return next((d for d in docs if isinstance(d, dict) and d.get("kind") == kind), None)


def committed_options(engine_dir: Path, engine: str, env: str) -> ExportOptions | None:
    """The options the committed export of ``env`` under ``engine_dir`` (``gitops/<engine>``)
    was made with, read back from its documents; None when there is none."""
    if engine == "argocd":
        root = _first(engine_dir / env / "root.yaml", "Application")
        if root is None:
            return None
        source = root.get("spec", {}).get("source", {})
        meta = root.get("metadata", {})
        path = str(source.get("path", ""))
        suffix = f"/{env}/apps"
        prefix = path[: -len(suffix)] if path.endswith(suffix) else ""
        return ExportOptions(str(source.get("repoURL", "")),
                             str(source.get("targetRevision", "main")),
                             _project_path(prefix, engine_dir),
                             argocd_namespace=str(meta.get("namespace", "argocd")),
                             application_set=(engine_dir / env / "apps" /
                                              "applicationset.yaml").is_file())
    git = _first(engine_dir / env / "cluster" / "sources.yaml", "GitRepository")
    sync = _first(engine_dir / env / "cluster" / "sync.yaml", "Kustomization")
    if git is None or sync is None:
        return None
    spec = git.get("spec", {})
    path = str(sync.get("spec", {}).get("path", "")).removeprefix("./")
    suffix = f"/{env}/releases"
    prefix = path[: -len(suffix)] if path.endswith(suffix) else ""
    return ExportOptions(str(spec.get("url", "")), str(spec.get("ref", {}).get("branch", "main")),
                         _project_path(prefix, engine_dir),
                         flux_namespace=str(git.get("metadata", {}).get("namespace",
                                                                         "flux-system")),
                         interval=str(spec.get("interval", "5m")))


def _project_path(prefix: str, engine_dir: Path) -> str:
    """The project's folder in the repository: what precedes the engine folder's own path."""
    tail = "/".join(engine_dir.parts[-2:])  # e.g. gitops/argocd
    return prefix[: -len(tail)].rstrip("/") if prefix.endswith(tail) else ""


def committed_sources(path: Path) -> str | None:
    """The ``meshc.io/sources`` digest of a committed encrypted Secret (left in clear text)."""
    secret = _first(path, "Secret")
    if secret is None:
        return None
    value = secret.get("metadata", {}).get("annotations", {}).get(SOURCES_ANNOTATION)
    return value if isinstance(value, str) else None


def differences(engine_dir: Path, env: str, files: dict[str, str],
                secrets: tuple[SecretRequest, ...]) -> list[tuple[str, str]]:
    """(what, path) for every file of the committed export of ``env`` that a fresh export would
    change: ``missing``, ``changed``, ``not exported any more``; Secrets by their digest."""
    folder = engine_dir / env
    on_disk = ({p.relative_to(engine_dir).as_posix() for p in folder.rglob("*") if p.is_file()}
               if folder.is_dir() else set())
    wanted = {**files, **{s.path: "" for s in secrets}}
    by_path = {s.path: s for s in secrets}
    found = []
    for path in sorted(set(wanted) | on_disk):
        if path not in on_disk:
            found.append(("missing", path))
        elif path not in wanted:
            found.append(("not exported any more", path))
        elif path in by_path:
            if committed_sources(engine_dir / path) != by_path[path].sources:
                found.append(("changed", path))
        else:
            try:
                same = (engine_dir / path).read_bytes() == files[path].encode("utf-8")
            except OSError:
                same = False
            if not same:
                found.append(("changed", path))
    return found
