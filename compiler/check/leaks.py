"""Leak checks: secrets where they do not belong (the library side is compiler/secrets/secrets.py).

* ``plaintext-secret``: secret-like plain values in ordinary values files (password, token,
  apiKey, privateKey keys; connection strings with credentials; private key material);
* ``unencrypted-secrets``: a ``secrets:`` file that is not SOPS-encrypted, or holds a value in
  clear text;
* ``secret-unused``: a secret no deployed release receives (warning);
* ``secret-in-clear``: a Helm chart's manifest other than a Secret's data holds a secret's
  stand-in (:func:`compiler.render.helm_chart.stand_in`): at install it holds the secret in
  clear text (a ConfigMap, an env value, an annotation);
* ``secret-canary``: with a key (``CheckOptions.decrypt``), no secret value occurs in the
  committed output directory or in any values file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from ..core.diagnostics import Diagnostic
from ..secrets.secrets import (
    canary_leaks,
    plaintext_leaks,
    rendered_texts,
    undelivered,
    unencrypted_secrets,
)
from .context import CheckContext, Finding


def check_leaks(ctx: CheckContext) -> Iterable[Finding | Diagnostic]:
    files, project = ctx.compiler.files, ctx.project
    for diag in plaintext_leaks(project):
        yield from _finding(ctx, "plaintext-secret", diag)
    problems, readable = unencrypted_secrets(files, ctx.environments)
    for diag in problems:
        yield from _finding(ctx, "unencrypted-secrets", diag)
    if not problems:
        yield from _unused(ctx)
    yield from _in_clear(ctx)
    decrypt = getattr(ctx.options, "decrypt", None)
    if decrypt is None or not readable or ctx.level("secret-canary", None) == "off":
        return
    output = project.output.rstrip("/")
    public = ctx.option("secret-canary", None, "public") or ()
    for diag in canary_leaks(files, project, readable, decrypt,
                             rendered_texts(files.root / output, output), public):
        if diag.severity == "warning":  # a file this key cannot decrypt: not a leak
            yield Finding("secret-canary", None, diag)
        else:
            yield from _finding(ctx, "secret-canary", diag)


_STAND_IN = re.compile(r"meshc-secret:([^\s\"'@]+)")


def _in_clear(ctx: CheckContext) -> Iterable[Finding]:
    for env in ctx.environments:
        for resource in ctx.resources(env):
            if not resource.output.release.chart.is_helm:
                continue
            data = resource.data
            if data.get("kind") == "Secret":  # its data is where a secret belongs
                data = {k: v for k, v in data.items() if k not in ("data", "stringData")}
            found = sorted(set(_STAND_IN.findall(json.dumps(data))))
            for path in found:
                where = ctx.rendered_path(resource)
                finding = ctx.finding(
                    "secret-in-clear", env, f"{resource.ref} ({resource.release}) holds the "
                    f"secret '{path}' in clear text: the chart copies it outside a Secret's "
                    "data", resource.output.release.chart_span or resource.output.release.span,
                    "set the chart's option that reads it from a Secret (often existingSecret), "
                    "or keep the value out of the secrets",
                    (f"rendered at {where} (the review shows where the secret goes)",))
                if finding is not None:
                    yield finding


def _unused(ctx: CheckContext) -> Iterable[Finding]:
    for env in ctx.environments:
        outputs = ctx.output(env).releases
        if not outputs or outputs[0].secrets.env is None:
            continue
        pairs = [(o.release, o.secrets) for o in outputs]
        for leaf in undelivered(outputs[0].secrets.env, pairs):
            found = ctx.finding(
                "secret-unused", env, f"secret '{'.'.join(map(str, leaf.path))}' reaches no "
                f"release in '{env.name}'", leaf.span,
                "a remote chart receives the secrets under its valuesKey; a local chart only "
                "the maps its templates reference with secret_ref() — or delete the secret")
            if found is not None:
                yield found


def _finding(ctx: CheckContext, rule: str, diag: Diagnostic) -> Iterable[Finding]:
    found = ctx.finding(rule, None, diag.message, diag.span, diag.help, diag.notes)
    if found is not None:
        yield found
