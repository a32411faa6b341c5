"""Leak checks: secrets where they do not belong (the library side is compiler/secrets.py).

* ``plaintext-secret``: secret-like plain values in ordinary values files (password, token,
  apiKey, privateKey keys; connection strings with credentials; private key material);
* ``unencrypted-secrets``: a ``secrets:`` file that is not SOPS-encrypted, or holds a value in
  clear text;
* ``secret-canary``: with a key (``CheckOptions.decrypt``), no secret value occurs in the
  committed output directory or in any values file.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..diagnostics import Diagnostic
from ..secrets import canary_leaks, plaintext_leaks, rendered_texts, unencrypted_secrets
from .context import CheckContext, Finding


def check_leaks(ctx: CheckContext) -> Iterable[Finding | Diagnostic]:
    files, project = ctx.compiler.files, ctx.project
    for diag in plaintext_leaks(project):
        yield from _finding(ctx, "plaintext-secret", diag)
    problems, readable = unencrypted_secrets(files, ctx.environments)
    for diag in problems:
        yield from _finding(ctx, "unencrypted-secrets", diag)
    decrypt = getattr(ctx.options, "decrypt", None)
    if decrypt is None or not readable or ctx.level("secret-canary", None) == "off":
        return
    output = project.output.rstrip("/")
    for diag in canary_leaks(files, project, readable, decrypt,
                             rendered_texts(files.root / output, output)):
        if diag.severity == "warning":  # a file this key cannot decrypt: not a leak
            yield Finding("secret-canary", None, diag)
        else:
            yield from _finding(ctx, "secret-canary", diag)


def _finding(ctx: CheckContext, rule: str, diag: Diagnostic) -> Iterable[Finding]:
    found = ctx.finding(rule, None, diag.message, diag.span, diag.help, diag.notes)
    if found is not None:
        yield found
