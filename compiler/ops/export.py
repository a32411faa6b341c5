"""``meshc export argocd|flux``: the GitOps hand-off, as one library call.

Compiles each environment, generates the engine's documents (:mod:`compiler.gitops`), makes
the encrypted Secrets Flux needs (a committed one made from the same sources is kept byte for
byte; otherwise the release's part of the secrets file is decrypted in memory and re-encrypted
for the environment's recipients, which needs an age key, exactly like ``secrets rotate``), and
writes each environment's folder atomically (:mod:`compiler.output.exports`). Every error of
every environment is reported together; nothing is written unless all of them export.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..core.incomplete import require_complete
from ..gitops.flux import SecretRequest
from ..gitops.github import CiOptions, workflow_files
from ..gitops.model import (
    DEFAULT_OUT,
    ENGINES,
    ExportOptions,
    documents,
    export_environment,
    is_generated,
)
from ..gitops.stale import committed_options, committed_sources, export_files
from ..model.model import Environment
from ..output.exports import write_export, write_generated
from ..pipeline import Compiler, compile_environment
from ..secrets.sops import AgeKey, Sops, SopsError, decrypt, encrypt

SECRET_FIELDS = "^(data|stringData)$"  # what SOPS encrypts in a Secret: metadata stays readable


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export where. ``options.repo_url`` empty: each environment's committed export's
    options are reused (an error when there is none)."""

    engine: str
    environments: tuple[Environment, ...]
    options: ExportOptions
    out: Path                      # the engine's folder, e.g. <project>/gitops/flux
    folder: str                    # the same, relative to the project (paths in documents)


@dataclass(frozen=True, slots=True)
class ExportResult:
    engine: str
    out: Path
    environments: tuple[str, ...]
    files: int
    written: tuple[str, ...]       # environments whose folder changed
    encrypted: int                 # Secrets encrypted anew (the others were kept)


def default_folder(engine: str) -> str:
    return f"{DEFAULT_OUT}/{engine}"


def export_gitops(compiler: Compiler, request: ExportRequest, sops: Sops | None,
                  key: AgeKey | None) -> ExportResult:
    """Export ``request.environments`` to ``request.engine``. Raises :class:`CompileError`
    with every problem found (nothing written then), or
    :class:`~compiler.output.emit.EmitError`."""
    diags = Diagnostics()
    try:  # an export is made from the same sources as the committed output: not a half one
        require_complete(compiler.files.root, compiler.project.output,
                         [e.name for e in request.environments])
    except CompileError as exc:
        diags.extend(exc.diagnostics)
    prepared: dict[str, dict[str, str]] = {}
    encrypted = 0
    for env in request.environments:
        try:
            files, fresh = _environment_files(compiler, request, env, sops, key)
        except CompileError as exc:
            diags.absorb(exc, f"while exporting environment '{env.name}' to {request.engine}")
            continue
        prepared[env.name] = files
        encrypted += fresh
    diags.raise_if_errors()
    written = tuple(name for name, files in prepared.items()
                    if write_export(request.out, name, files, is_generated))
    return ExportResult(request.engine, request.out, tuple(prepared),
                        sum(len(f) for f in prepared.values()), written, encrypted)


def _environment_files(compiler: Compiler, request: ExportRequest, env: Environment,
                       sops: Sops | None, key: AgeKey | None) -> tuple[dict[str, str], int]:
    options = request.options
    if not options.repo_url:
        found = committed_options(request.out, request.engine, env.name)
        if found is None or not found.repo_url:
            raise CompileError([Diagnostic(
                "error", f"no repository URL for the {request.engine} export of '{env.name}'",
                None, help="pass --repo-url URL (the git repository holding this project); "
                           "later exports reuse the committed export's")])
        options = replace(found, revision=options.revision or found.revision,
                          application_set=options.application_set or found.application_set)
    elif not options.revision:
        options = replace(options, revision="main")
    result = compile_environment(compiler, env)
    xenv = export_environment(result, compiler.project.name)
    source_bytes = {}
    for item in {s.file for r in xenv.releases for s in r.secrets}:
        source_bytes[item] = compiler.files.locate(item).read_bytes()
    files, secrets = export_files(request.engine, xenv, options, request.folder, source_bytes)
    fresh = 0
    for secret in secrets:
        committed = request.out / secret.path
        if committed_sources(committed) == secret.sources:
            files[secret.path] = committed.read_text(encoding="utf-8")
            continue
        files[secret.path] = _encrypt_secret(compiler, secret, env, sops, key)
        fresh += 1
    return files, fresh


def _encrypt_secret(compiler: Compiler, secret: SecretRequest, env: Environment,
                    sops: Sops | None, key: AgeKey | None) -> str:
    """The release's part of its secrets file, re-encrypted as a Secret for the environment's
    recipients; the plaintext exists only in memory and in sops's pipes."""
    where = f"'{secret.input.file}' ({secret.input.extract or 'all of it'})"
    if not secret.recipients:
        raise CompileError([Diagnostic(
            "error", f"no age recipients to encrypt the Flux Secret of {where} for '{env.name}'",
            env.span, help=f"add `sops: {{age: [age1…]}}` to environment '{env.name}'")])
    if sops is None or key is None or not key.available:
        raise CompileError([Diagnostic(
            "error", f"{secret.path}: the Secret must be encrypted anew from {where}, which "
            "needs an age key that can decrypt it", env.span,
            help="set SOPS_AGE_KEY_FILE (or SOPS_AGE_KEY) to a key of one of its recipients, as "
                 "for `meshc secrets rotate`; unchanged Secrets are kept without one")])
    try:
        plain = decrypt(sops, compiler.files.root, secret.input.file, key, env=env.name,
                        output_type="yaml", extract=secret.input.extract)
        text = documents(secret.document(plain.decode("utf-8")))
        data = encrypt(sops, text.encode("utf-8"), secret.recipients, secret.path, SECRET_FIELDS)
    except SopsError as exc:
        raise CompileError([Diagnostic("error", exc.message, env.span, exc.help)]) from None
    return data.decode("utf-8")  # no comment added: sops covers the whole file


def write_workflows(compiler: Compiler, folder: Path,
                    meshc: str = "meshc") -> tuple[list[str], list[str]]:
    """Write the project's GitHub workflows (:mod:`compiler.gitops.github`) into ``folder``
    (``.github/workflows``): (every file, those written). Other files there are not touched.
    Environments with a committed export under ``gitops/`` are applied by their engine, not by
    the workflow; ``meshc`` is pip's requirement for meshc."""
    root = compiler.files.root / DEFAULT_OUT
    exported = tuple(env.name for env in compiler.project.deployable
                     if any((root / engine / env.name).is_dir() for engine in ENGINES))
    files = workflow_files(compiler.project, CiOptions(meshc, exported))
    return sorted(files), write_generated(folder, files)
