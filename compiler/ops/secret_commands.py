"""What ``meshc secrets …`` does, as library functions: list key names, encrypt, rotate, edit.

Each takes the loaded :class:`~compiler.pipeline.Compiler`, the :class:`~compiler.secrets.sops.Sops`
to run and, where decrypting is needed, the :class:`~compiler.secrets.sops.AgeKey`; each raises
:class:`~compiler.core.diagnostics.CompileError` (sops failures included) and never writes
plaintext to disk: encryption reads plaintext from the file being encrypted in place, and
re-encryption happens inside sops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics, MeshcError
from ..core.files import OutsideProject
from ..core.source import Span, file_span
from ..model.model import Environment, Project, SecretsFile
from ..pipeline import Compiler, find_environment
from ..secrets.secrets import (
    RESERVED,
    SOPS_KEY,
    Recipients,
    environment_secrets,
    read_encrypted,
    recipients_for,
    sops_config_recipients,
)
from ..secrets.sops import AgeKey, Sops, SopsError, edit, encrypt, rotate, write_atomically
from ..syntax.yamlsrc import load_values_doc


def secrets_environment(project: Project, name: str) -> Environment:
    """Environment ``name`` (or alias), abstract ones included: they may own secrets files."""
    env = project.environment(name)
    return env if env is not None else find_environment(project, name)


def own_files(env: Environment) -> tuple[SecretsFile, ...]:
    return tuple(f for f in env.secret_files if f.owner == env.name)


def secret_keys(compiler: Compiler, env: Environment) -> list[tuple[str, str, Span]]:
    """(dotted key, encrypted file, span) of every secret ``env`` receives, sorted; no key
    needed: SOPS leaves key names in clear text."""
    secrets = environment_secrets(compiler.files, env)
    return [(".".join(map(str, leaf.path)), leaf.file, leaf.span) for leaf in secrets.leaves()]


def _failed(exc: SopsError, span: Span | None) -> CompileError:
    return CompileError([Diagnostic("error", exc.message, span, exc.help)])


def _need_recipients(recipients: Recipients, env: Environment, path: str, span: Span) -> None:
    if not recipients.age:
        raise CompileError([Diagnostic(
            "error", f"no age recipients for '{path}' of environment '{env.name}'", span,
            help=f"add `sops: {{age: [age1…]}}` to environment '{env.name}' in the meshfile "
                 "(or a .sops.yaml creation rule matching the file); `meshc secrets keygen` "
                 "makes a key")])


@dataclass(frozen=True, slots=True)
class Encrypted:
    path: str
    recipients: tuple[str, ...]
    declared: bool                   # whether the meshfile lists it for the environment


def encrypt_file(compiler: Compiler, sops: Sops, env: Environment, file: Path) -> Encrypted:
    """Encrypt plaintext YAML ``file`` in place to the recipients of ``env`` (or of the
    environment that lists the file)."""
    files = compiler.files
    try:
        rel = files.normalize(str(file.resolve().relative_to(files.root)))
    except (OutsideProject, ValueError):
        raise CompileError([Diagnostic("error", f"'{file}' is outside the project "
                                                f"{files.root}")]) from None
    try:
        text = files.read(rel)
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError([Diagnostic("error", f"cannot read '{rel}': {exc}")]) from None
    doc = load_values_doc(text, rel)
    if SOPS_KEY in doc.data:
        raise CompileError([Diagnostic(
            "error", f"'{rel}' is encrypted already", doc.spans.get((SOPS_KEY,)),
            help=f"change it with `meshc secrets edit {env.name}`, re-encrypt it to new "
                 f"recipients with `meshc secrets rotate {env.name}`")])
    for key in RESERVED:
        if key in doc.data:
            raise CompileError([Diagnostic(
                "error", f"secrets cannot hold '{key}'", doc.spans.get((key,)),
                help="a secret goes under the valuesKey of the release that needs it")])
    declared = next((f for f in env.secret_files if f.path == rel), None)
    recipients = (recipients_for(files, declared) if declared is not None else
                  Recipients(tuple(t.value for t in env.sops_age), "") if env.sops_age else
                  sops_config_recipients(files, rel))
    _need_recipients(recipients, env, rel, declared.span if declared else env.span)
    try:
        data = encrypt(sops, text.encode("utf-8"), recipients.age, rel)
        write_atomically(files.locate(rel), data)
    except SopsError as exc:
        raise _failed(exc, file_span(rel)) from None
    return Encrypted(rel, recipients.age, declared is not None)


@dataclass(frozen=True, slots=True)
class Rotated:
    path: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


def rotate_environment(compiler: Compiler, sops: Sops, key: AgeKey,
                       env: Environment) -> list[Rotated]:
    """Give each secrets file ``env`` lists a new data key, encrypted to exactly its current
    recipients (meshfile ``sops.age``, else ``.sops.yaml``): added ones gain access, removed ones
    lose it for every future version."""
    files = compiler.files
    result = []
    sources = own_files(env)
    if not sources:
        raise CompileError([Diagnostic("error", f"environment '{env.name}' lists no secrets "
                                                "files of its own", env.span)])
    for source in sources:
        diags = Diagnostics()
        current = read_encrypted(files, source, diags)
        if current is None:
            raise CompileError(diags.items)
        wanted = recipients_for(files, source)
        _need_recipients(wanted, env, source.path, source.span)
        add = tuple(r for r in wanted.age if r not in current.encrypted_to)
        remove = tuple(r for r in current.encrypted_to if r not in wanted.age)
        try:
            data = rotate(sops, files.root, source.path, key, add, remove, current.encrypted_to,
                          env.name)
            write_atomically(files.locate(source.path), data)
        except SopsError as exc:
            raise _failed(exc, source.span) from None
        result.append(Rotated(source.path, add, remove))
    return result


def edit_secrets(compiler: Compiler, sops: Sops, key: AgeKey, env: Environment,
                 environ: Mapping[str, str], file: str | None = None) -> tuple[str, bool, str]:
    """Open one of ``env``'s secrets files in the editor through sops. Returns (file, changed,
    warning): the warning says when the file's recipients differ from the meshfile's."""
    sources = own_files(env) or env.secret_files
    if file is not None:
        chosen = [s for s in sources if s.path == compiler.files.normalize(file)]
    else:
        chosen = list(sources)
    if len(chosen) != 1:
        listing = ", ".join(s.path for s in sources) or "none"
        what = "lists no secrets file" if not sources else "has several secrets files"
        raise CompileError([Diagnostic(
            "error", f"environment '{env.name}' {what}" if file is None else
            f"'{file}' is not a secrets file of environment '{env.name}'", env.span,
            help=f"choose one with --file ({listing})" if sources else
            f"add `secrets: [environments/{env.name}/secrets.yaml]` to it in the meshfile")])
    source = chosen[0]
    diags = Diagnostics()
    current = read_encrypted(compiler.files, source, diags)
    if current is None:
        raise CompileError(diags.items)
    try:
        changed = edit(sops, compiler.files.root, source.path, key, environ,
                       current.encrypted_to, env.name)
    except SopsError as exc:
        raise _failed(exc, source.span) from None
    wanted = recipients_for(compiler.files, source)
    warning = ""
    if wanted.age and set(wanted.age) != set(current.encrypted_to):
        warning = (f"'{source.path}' is encrypted to other recipients than the meshfile lists: "
                   f"run `meshc secrets rotate {source.owner}`")
    return source.path, changed, warning


# --- meshc secrets keygen --------------------------------------------------------------------


class KeyFileRefused(MeshcError):
    """A key file meshc will not write (inside a git repository, already there, unwritable)."""


@dataclass(frozen=True, slots=True)
class NewKey:
    """A fresh age key: its public key, and the file it went to (None: printed instead)."""

    public: str
    text: str
    path: Path | None


def git_repository(path: Path) -> Path | None:
    """The git work tree holding ``path`` (a ``.git`` folder or file in it or above), or None."""
    here = path.absolute()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def make_parents(path: Path) -> None:
    """Create the missing folders above ``path``, each 0700 (a key's folder is private)."""
    missing = [folder for folder in path.absolute().parents if not folder.exists()]
    for folder in reversed(missing):
        os.mkdir(folder, 0o700)
        os.chmod(folder, 0o700)  # whatever the umask


def keygen(output: Path | None, force: bool = False) -> NewKey:
    """A new age key, written to ``output`` (created 0600, with missing parent folders 0700;
    an existing file is never replaced) or, without ``output``, only returned. A file inside a
    git repository is refused unless ``force``: one ``git add .`` would commit the private
    key. Raises :class:`KeyFileRefused`."""
    from ..secrets.sops import age_key_file_text, generate_age_key

    private, public = generate_age_key()
    text = age_key_file_text(private, public)
    if output is None:
        return NewKey(public, text, None)
    repo = git_repository(output.parent)
    if repo is not None and not force:
        raise KeyFileRefused(
            f"refusing to write a private key inside the git repository {repo}: one "
            "`git add` away from committing it; write it outside (e.g. "
            "~/.config/meshc/age-key.txt), or pass --force if it is git-ignored on purpose")
    try:
        make_parents(output)
        handle = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyFileRefused(f"cannot create {output}: {exc.strerror}") from None
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return NewKey(public, "", output)
