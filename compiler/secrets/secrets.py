"""Secrets: SOPS-encrypted files, read for their structure only; their values reach helm only
when a plan runs.

The design, end to end:

* **Files.** An environment's ``secrets:`` files are SOPS-encrypted YAML (age recipients). Once
  decrypted, a secrets file addresses the environment's whole values tree, as its values files
  do (``registry: {database: {password: …}}``). Descendants inherit their ancestors' files, which
  layer root first, later files winning (Helm's merge).
* **No key needed to compile.** SOPS encrypts values and leaves key names in clear text, so
  :func:`environment_secrets` reads the *shape* of every file (which keys exist, in which file,
  at which line) without decrypting anything. ``render``, ``plan``, ``values``, ``explain`` and
  ``diff`` never decrypt and never see a secret value.
* **Local charts** never see secret values either. A template asks for a Kubernetes Secret with
  ``secret_ref('database')``: the map ``<valuesKey>.database`` of the environment's secrets
  becomes a Secret (default name ``<release>-database``) whose keys are the map's keys; the
  template gets ``.name`` and ``.keys`` to reference it (``secretKeyRef``). The wrapper chart
  gets a second template, ``templates/secrets.yaml`` (:func:`compiler.render.wrapper_chart.
  secrets_template`), templating ``.Values`` for the secret data only; the reviewed manifests
  stay verbatim.
* **Remote charts** receive the secrets under their ``valuesKey`` as values (the seed's
  ``-f secrets.yaml``), e.g. grafana's ``adminPassword``.
* **Executing.** Every plan step lists the encrypted files it needs (:class:`SecretInput`:
  a file and the sops ``--extract`` path of the release's ``valuesKey``). ``meshc plan -o sh``
  decrypts each into a private temporary file just before its ``helm`` command, passes it as
  one more ``--values`` and deletes it (a ``trap`` deletes it on failure too).
* **A value is secret or not, never both.** A secret whose path a release's plain values also
  set (or cross, a scalar where the secret needs a map) is an error: the reviewed
  ``rendered/`` would show one value while the cluster received another.

Leak detection (:func:`leak_findings`) is a library function ``meshc check`` runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.diagnostics import CompileError, Diagnostic, Diagnostics
from ..core.files import ProjectFiles
from ..core.source import Span, file_span
from ..model.model import Environment, Project, Release, SecretsFile
from ..render.helm_chart import stand_in
from ..render.templating import TemplateFailure
from ..syntax.yamlsrc import Path as ValuePath
from ..syntax.yamlsrc import ValuesDoc, load_values_doc
from ..values.values import ValueSet, lookup

SOPS_KEY = "sops"
SOPS_CONFIG = ".sops.yaml"
RESERVED = ("global", "features")  # every chart gets these: secrets would reach all releases
_ENC = re.compile(r"ENC\[[A-Z0-9_]+,data:[^\]]*\]")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


# --- the shape of encrypted files -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SecretLeaf:
    """One secret value, known by where it is, never by what it is."""

    path: ValuePath          # in the environment's values tree
    file: str
    span: Span               # of the (encrypted) value in ``file``
    fingerprint: str = ""    # of its ciphertext: changes when the value is re-encrypted


@dataclass(frozen=True, slots=True)
class EncryptedFile:
    """A secrets file, as far as it can be read without a key."""

    source: SecretsFile
    encrypted_to: tuple[str, ...]     # the age recipients in its sops metadata
    tree: dict[str, Any]              # its key structure; leaves are SecretLeaf

    @property
    def path(self) -> str:
        return self.source.path


@dataclass(frozen=True, slots=True)
class EnvSecrets:
    """An environment's secrets files (root first) and their merged key structure."""

    env: str
    files: tuple[EncryptedFile, ...]
    tree: dict[str, Any]

    def leaves(self, under: ValuePath = ()) -> Iterator[SecretLeaf]:
        present, node = lookup(self.tree, under)
        if present:
            yield from _leaves(node)

    def origin(self, path: ValuePath) -> SecretLeaf | None:
        """The secret at ``path`` (for ``meshc explain``: which file, never the value)."""
        present, node = lookup(self.tree, path)
        return node if present and isinstance(node, SecretLeaf) else None


def _leaves(node: Any) -> Iterator[SecretLeaf]:
    if isinstance(node, SecretLeaf):
        yield node
    elif isinstance(node, dict):
        for key in sorted(node):
            yield from _leaves(node[key])


def read_encrypted(files: ProjectFiles, source: SecretsFile, diags: Diagnostics) -> EncryptedFile | None:
    """The key structure of one secrets file; problems (not encrypted, values in clear text,
    YAML errors) go to ``diags``."""
    try:
        doc = load_values_doc(files.read(source.path), source.path)
    except CompileError as exc:
        diags.extend(exc.diagnostics)
        return None
    meta = doc.data.get(SOPS_KEY)
    if not isinstance(meta, dict) or "mac" not in meta:
        diags.error(f"secrets file '{source.path}' is not SOPS-encrypted", file_span(source.path),
                    help=f"encrypt it in place: meshc secrets encrypt {source.owner} {source.path}",
                    notes=("a secrets file in plain text is a leaked secret once committed",))
        return None
    ages = meta.get("age")
    ages = ages if isinstance(ages, list) else []
    encrypted_to = tuple(str(a["recipient"]) for a in ages
                         if isinstance(a, dict) and "recipient" in a)
    tree = _structure(doc, meta, (), doc.data, diags)
    for key in RESERVED:
        if key in tree:
            diags.error(f"secrets cannot hold '{key}'", doc.spans.get((key,)) or
                        file_span(source.path),
                        help="every release receives the values of global and features; a "
                             "secret goes under the valuesKey of the release that needs it")
    return EncryptedFile(source, encrypted_to, tree)


def _structure(doc: ValuesDoc, meta: dict[str, Any], path: ValuePath, node: dict[str, Any],
               diags: Diagnostics) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in node.items():
        if not path and key == SOPS_KEY:
            continue
        here = (*path, key)
        span = doc.spans.get(here) or file_span(doc.file)
        if isinstance(value, dict):
            tree[key] = _structure(doc, meta, here, value, diags)
            continue
        if not _meant_clear(here, meta) and not _encrypted(value):
            diags.error(f"'{'.'.join(map(str, here))}' is in clear text in the encrypted "
                        f"file '{doc.file}'", span,
                        help="a value added after encryption: remove it and add it with "
                             "`meshc secrets edit`")
        tree[key] = SecretLeaf(here, doc.file, span,
                               hashlib.sha256(str(value).encode()).hexdigest()[:16])
    return tree


def _encrypted(value: Any) -> bool:
    if isinstance(value, list):
        return all(_encrypted(v) for v in value)
    return isinstance(value, str) and _ENC.fullmatch(value) is not None


def _meant_clear(path: ValuePath, meta: dict[str, Any]) -> bool:
    """Whether sops's own settings in the file leave this value unencrypted (a setting of the
    wrong type, or an invalid pattern, counts as absent: the value must then be encrypted)."""
    keys = [str(k) for k in path]

    def setting(name: str) -> str:
        value = meta.get(name)
        return value if isinstance(value, str) else ""

    def matches(pattern: str) -> bool:
        try:
            return any(re.search(pattern, k) for k in keys)
        except re.error:
            return False

    if setting("unencrypted_suffix") and any(k.endswith(setting("unencrypted_suffix"))
                                             for k in keys):
        return True
    if setting("encrypted_suffix"):
        return not any(k.endswith(setting("encrypted_suffix")) for k in keys)
    if setting("unencrypted_regex"):
        return matches(setting("unencrypted_regex"))
    if setting("encrypted_regex"):
        return not matches(setting("encrypted_regex"))
    return False


def environment_secrets(files: ProjectFiles, env: Environment) -> EnvSecrets:
    """Read the structure of ``env``'s secrets files and merge it (later files win). Needs no
    key. Raises :class:`CompileError` with every problem found."""
    diags = Diagnostics()
    found = [read_encrypted(files, source, diags) for source in env.secret_files]
    diags.raise_if_errors()
    encrypted = tuple(f for f in found if f is not None)
    tree: dict[str, Any] = {}
    for item in encrypted:
        tree = _merge(tree, item.tree)
    return EnvSecrets(env.name, encrypted, tree)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    result = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result


# --- what a release receives ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SecretRef:
    """What ``secret_ref()`` gives a template: the Secret's name and its keys."""

    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SecretObject:
    """A Kubernetes Secret the wrapper chart creates for a local release."""

    name: str
    path: ValuePath          # in the chart's values (relative to the release's valuesKey)
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SecretInput:
    """An encrypted file a plan step needs, and the part of it the release receives."""

    file: str
    values_key: ValuePath

    @property
    def extract(self) -> str:
        """sops's ``--extract`` argument for the release's subtree (empty: the whole file)."""
        return "".join(f'["{part}"]' for part in self.values_key)


@dataclass(frozen=True, slots=True)
class ReleaseSecrets:
    """What one compiled release has to do with secrets."""

    objects: tuple[SecretObject, ...] = ()   # Secrets its wrapper chart creates
    inputs: tuple[SecretInput, ...] = ()     # encrypted files its plan step needs
    env: EnvSecrets | None = field(default=None, compare=False, repr=False)

    def secret_leaves(self, release: Release, path: ValuePath) -> list[SecretLeaf]:
        """The secrets at or under ``path`` of the release's values (where, never what)."""
        if self.env is None:
            return []
        return list(self.env.leaves((*release.values_key, *path)))

    def note(self, release: Release) -> str | None:
        """For ``meshc values``: which secrets helm receives besides these values, by name."""
        if not self.inputs:
            return None
        leaves = self.secret_leaves(release, ())  # all under the valuesKey: what is passed
        names = ", ".join(".".join(map(str, leaf.path[len(release.values_key):]))
                          for leaf in leaves)
        files = ", ".join(item.file for item in self.inputs)
        return (f"note: when the plan runs, helm also receives the secrets {names} (from "
                f"{files}); meshc never shows their values")

    def explain_json(self, release: Release, path: ValuePath) -> dict[str, Any]:
        return {"environment": self.env.env if self.env else "", "release": release.name,
                "path": ".".join(map(str, path)), "secret": True,
                "sources": [{"key": ".".join(map(str, leaf.path[len(release.values_key):])),
                             "file": leaf.file, "line": leaf.span.line, "col": leaf.span.col}
                            for leaf in self.secret_leaves(release, path)]}

    def explain(self, release: Release, path: ValuePath) -> str | None:
        """For ``meshc explain``: which encrypted files and lines hold the secrets at or under
        ``path`` (in the release's values) — never a value. None when there are none."""
        leaves = self.secret_leaves(release, path)
        if self.env is None or not leaves:
            return None
        dotted = ".".join(map(str, path))
        lines = [(f"{release.name} in {self.env.env}: {dotted} is a secret (SOPS-encrypted; meshc "
                 "never shows its value)")]
        lines += [f"  {'.'.join(map(str, leaf.path[len(release.values_key):]))}  from "
                  f"{leaf.span}" for leaf in leaves]
        lines.append("  reaches helm only when the plan runs (meshc plan -o sh)"
                     if release.chart.local is False or self.objects else
                     "  no secret_ref() uses it: the release does not receive it")
        return "\n".join(lines) + "\n"

    def template_functions(self, release: Release) -> dict[str, Callable[..., Any]]:
        """``secret_ref``/``has_secret`` as the release's render saw them (for re-rendering a
        template, e.g. to trace it)."""
        env = self.env if self.env is not None else EnvSecrets("", (), {})
        return secret_functions(env, release, {})


def secret_functions(secrets: EnvSecrets, release: Release,
                     found: dict[str, SecretObject]) -> dict[str, Callable[..., Any]]:
    """The template functions of one release's render: ``secret_ref(path, name=None)`` (a
    Kubernetes Secret holding the secret map at ``path`` under the release's valuesKey; every
    Secret handed out is recorded in ``found``, by name) and ``has_secret(path)``."""
    from ..model.resolve import parse_values_key

    def has_secret(path: str) -> bool:
        present, _ = lookup(secrets.tree, (*release.values_key, *parse_values_key(str(path))))
        return present

    def secret_ref(path: str, name: str | None = None) -> SecretRef:
        parts = parse_values_key(str(path))
        full = (*release.values_key, *parts)
        present, node = lookup(secrets.tree, full)
        dotted = ".".join(map(str, full))
        if not present:
            files = ", ".join(f.path for f in secrets.files) or "none"
            raise TemplateFailure(f"secret_ref('{path}'): environment '{secrets.env}' has no "
                                  f"secret '{dotted}' (its secrets files: {files})")
        if not isinstance(node, dict) or not node or \
                not all(isinstance(v, SecretLeaf) for v in node.values()):
            raise TemplateFailure(f"secret_ref('{path}'): '{dotted}' must be a map of secret "
                                  "values (key: value), one Kubernetes Secret")
        bad = [k for k in node if not _SECRET_KEY.fullmatch(k)]
        if bad:
            raise TemplateFailure(f"secret_ref('{path}'): '{bad[0]}' cannot be a Secret key "
                                  "(letters, digits, '-', '_', '.')")
        secret = name or "-".join([release.name, *map(str, parts)]).lower().replace("_", "-")
        if not _SECRET_NAME.fullmatch(secret) or len(secret) > 253:
            raise TemplateFailure(f"secret_ref('{path}'): '{secret}' is not a valid Secret name;"
                                  " pass one: secret_ref('…', name='my-secret')")
        obj = SecretObject(secret, parts, tuple(sorted(node)))
        if found.get(secret, obj) != obj:
            raise TemplateFailure(f"secret_ref('{path}'): Secret '{secret}' already holds "
                                  f"'{'.'.join(map(str, found[secret].path))}'")
        found[secret] = obj
        return SecretRef(secret, obj.keys)

    return {"secret_ref": secret_ref, "has_secret": has_secret}


def release_inputs(secrets: EnvSecrets, release: Release, local: bool,
                   objects: Sequence[SecretObject]) -> tuple[SecretInput, ...]:
    """The encrypted files a step needs: those holding secrets under the release's valuesKey
    (for a local chart, only when it creates Secrets), in layer order."""
    if local and not objects:
        return ()
    inputs = []
    for item in secrets.files:
        present, node = lookup(item.tree, release.values_key)
        if present and node:
            inputs.append(SecretInput(item.path, release.values_key))
    return tuple(inputs)


def undelivered(secrets: EnvSecrets,
                releases: Sequence[tuple[Release, ReleaseSecrets]]) -> list[SecretLeaf]:
    """The environment's secrets no deployed release receives: a remote chart gets those under
    its valuesKey, a local chart only the maps its templates reference with ``secret_ref``."""
    delivered: set[ValuePath] = set()
    for release, mine in releases:
        roots = ([release.values_key] if not release.chart.local else
                 [(*release.values_key, *obj.path) for obj in mine.objects])
        for root in roots:
            delivered.update(leaf.path for leaf in secrets.leaves(root))
    return [leaf for leaf in secrets.leaves() if leaf.path not in delivered]


def secret_stand_ins(secrets: EnvSecrets, release: Release) -> list[tuple[ValuePath, str]]:
    """(path in the release's values, stand-in text) for each secret the release receives: what
    a Helm chart renders with in place of the secrets (:func:`~compiler.render.helm_chart.stand_in`),
    when meshc renders it and when ``meshc check`` templates it again."""
    depth = len(release.values_key)
    return [(leaf.path[depth:], stand_in(leaf.path, leaf.fingerprint))
            for leaf in secrets.leaves(release.values_key)]


def release_collisions(secrets: EnvSecrets, release: Release, values: ValueSet) -> list[Diagnostic]:
    """Secrets under the release's valuesKey whose path its plain values also set (or cross);
    an empty chart default (``password: ""``) is a placeholder, not a plain value."""
    found = []
    depth = len(release.values_key)
    for leaf in secrets.leaves(release.values_key):
        rel = leaf.path[depth:]
        clash = _clash(values.values, rel)
        if clash is None:
            continue
        origin = values.origin(clash)
        if origin is not None and origin.layer.kind == "chart" and clash == rel \
                and origin.value in ("", None):
            continue  # an empty chart default is a placeholder the secret fills
        where = f" at {origin.span}" if origin is not None and origin.span is not None else ""
        dotted = ".".join(map(str, leaf.path))
        found.append(Diagnostic(
            "error", f"secret '{dotted}' of environment '{secrets.env}' is also a plain value "
                     f"of release '{release.name}'", leaf.span,
            help="a value is either secret or plain, never both: delete it from the values "
                 "files or from the secrets",
            notes=(f"plain value '{'.'.join(map(str, clash))}'{where}",)))
    return found


def _clash(tree: Any, path: ValuePath) -> ValuePath | None:
    node = tree
    for index, part in enumerate(path):
        if not isinstance(node, dict):
            return path[:index]
        if part not in node:
            return None
        node = node[part]
    return path


# --- recipients -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Recipients:
    """The age recipients a file must be encrypted to, and where that was said."""

    age: tuple[str, ...]
    origin: str              # "meshfile.yaml:12:9" or ".sops.yaml:3:5" or ""


def recipients_for(files: ProjectFiles, source: SecretsFile) -> Recipients:
    """The meshfile's ``sops.age`` of the file's environment (own or inherited), else the first
    ``.sops.yaml`` creation rule whose ``path_regex`` matches the file's project-relative path."""
    if source.recipients:
        return Recipients(tuple(t.value for t in source.recipients), str(source.recipients[0].span))
    return sops_config_recipients(files, source.path)


def sops_config_recipients(files: ProjectFiles, path: str) -> Recipients:
    try:
        text = files.read(SOPS_CONFIG)
    except FileNotFoundError:
        return Recipients((), "")
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError([Diagnostic("error", f"cannot read {SOPS_CONFIG}: {exc}")]) from None
    doc = load_values_doc(text, SOPS_CONFIG)
    rules = doc.data.get("creation_rules")
    if not isinstance(rules, list):
        return Recipients((), "")
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        pattern = rule.get("path_regex")
        try:
            if pattern is not None and not re.search(str(pattern), path):
                continue
        except re.error as exc:
            raise CompileError([Diagnostic(
                "error", f"invalid path_regex in {SOPS_CONFIG}: {exc}",
                doc.spans.get(("creation_rules", index, "path_regex")))]) from None
        age = rule.get("age")
        items = age if isinstance(age, list) else str(age or "").split(",")
        recipients = tuple(str(a).strip() for a in items if str(a).strip())
        span = doc.spans.get(("creation_rules", index, "age"))
        return Recipients(recipients, str(span) if span else SOPS_CONFIG)
    return Recipients((), "")


# --- leak detection -------------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SECRET_WORDS = (("password",), ("passwd",), ("passphrase",), ("secret",), ("token",),
                 ("api", "key"), ("apikey",), ("private", "key"), ("privatekey",),
                 ("access", "key"), ("credentials",), ("credential",), ("auth", "key"))
_NOT_A_VALUE = frozenset({"name", "names", "ref", "refs", "reference", "file", "files", "path",
                          "paths", "enabled", "enable", "ttl", "length", "expiry", "expires",
                          "lifetime", "mount", "dir", "type", "policy", "source", "existing",
                          "env", "selector", "url", "endpoint"})
_REFERENCE = re.compile(r"^(\$\{[^}]*\}|\{\{.*\}\}|ENC\[.*\]|vault:.*|ref\+.*|<[^>]*>)$", re.DOTALL)
_URL_CREDENTIALS = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@")
_KEY_MATERIAL = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}"), "an age private key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
)
CANARY_MIN_LENGTH = 6   # shorter secret values occur in ordinary text by chance


def secret_like_key(key: str) -> bool:
    """Whether a values key names a secret (``adminPassword``, ``api_key``), not a reference to
    one (``existingSecret``, ``secretName``, ``passwordSecretRef``, ``tokenTTL``)."""
    words = [w.lower() for w in _WORD.findall(key)]
    if not words or words[-1] in _NOT_A_VALUE or "existing" in words:
        return False
    return any(tuple(words[i:i + len(pattern)]) == pattern
               for pattern in _SECRET_WORDS for i in range(len(words)))


def plaintext_findings(doc: ValuesDoc, what: str = "values file") -> list[Diagnostic]:
    """Secret-like plain values in one ordinary values file (or inline meshfile values)."""
    found = []
    for path, value in _scalars(doc.data, ()):
        if not isinstance(value, str) or not value.strip() or _REFERENCE.match(value.strip()):
            continue
        span = doc.spans.get(path) or file_span(doc.file)
        dotted = ".".join(map(str, path))
        keys = [p for p in path if isinstance(p, str)]
        why = None
        if keys and secret_like_key(keys[-1]):
            why = f"'{dotted}' looks like a secret in plain text"
        elif _URL_CREDENTIALS.search(value):
            why = f"'{dotted}' holds a connection string with a password"
        else:
            why = next((f"'{dotted}' holds {kind}" for pattern, kind in _KEY_MATERIAL
                        if pattern.search(value)), None)
        if why:
            found.append(Diagnostic("error", f"{why} ({what})", span, help=(
                "move it into the environment's encrypted secrets (`meshc secrets edit ENV`) "
                "and reference it from there; values files are committed in clear text")))
    return found


def _scalars(node: Any, path: ValuePath) -> Iterator[tuple[ValuePath, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _scalars(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _scalars(value, (*path, index))
    else:
        yield path, node


def ordinary_values(project: Project) -> list[tuple[ValuesDoc, str]]:
    """Every plain values source of the project, once: environment and release values files,
    inline release values, local charts' values.yaml."""
    seen: dict[tuple[str, int], tuple[ValuesDoc, str]] = {}
    for env in project.environments:
        for doc in env.values:
            seen.setdefault((doc.file, id(doc)), (doc, "values file"))
    for release in project.releases:
        for doc in release.values:
            seen.setdefault((doc.file, id(doc)), (doc, f"values of release '{release.name}'"))
        if release.chart.defaults is not None:
            doc = release.chart.defaults
            seen.setdefault((doc.file, id(doc)), (doc, "chart values"))
    return sorted(seen.values(), key=lambda item: item[0].file)


Decrypt = Callable[[SecretsFile], bytes]   # a secrets file's plaintext as JSON, in memory


def leak_findings(files: ProjectFiles, project: Project, envs: Sequence[Environment],
                  decrypt: Decrypt | None = None,
                  rendered: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """Secrets where they do not belong, with file:line:col (what ``meshc check`` reports):

    * :func:`plaintext_leaks`: secret-like plain values in ordinary values files;
    * :func:`unencrypted_secrets`: secrets files of ``envs`` not encrypted, or holding values
      in clear text;
    * with ``decrypt`` (a key is available), :func:`canary_leaks`: no secret value occurs in
      ``rendered`` (path → text, e.g. :func:`rendered_texts` of the output directory) or in
      any values file.
    """
    found = plaintext_leaks(project)
    problems, readable = unencrypted_secrets(files, envs)
    found += problems
    if decrypt is not None:
        found += canary_leaks(files, project, readable, decrypt, rendered or {})
    return found


def plaintext_leaks(project: Project) -> list[Diagnostic]:
    """Secret-like plain values in every ordinary values source: keys such as password, token,
    apiKey, privateKey; connection strings with credentials; private key material."""
    return [d for doc, what in ordinary_values(project) for d in plaintext_findings(doc, what)]


def unencrypted_secrets(files: ProjectFiles, envs: Sequence[Environment],
                        ) -> tuple[list[Diagnostic], list[SecretsFile]]:
    """Problems of the secrets files of ``envs`` (each file once), and the readable files."""
    diags = Diagnostics()
    sources: dict[str, SecretsFile] = {}
    for env in envs:
        for source in env.secret_files:
            sources.setdefault(source.path, source)
    readable = [s for s in sources.values() if read_encrypted(files, s, diags) is not None]
    return diags.items, readable


def canary_leaks(files: ProjectFiles, project: Project, sources: Sequence[SecretsFile],
                 decrypt: Decrypt, rendered: Mapping[str, str],
                 public: Iterable[str] = ()) -> list[Diagnostic]:
    """Decrypt ``sources`` (in memory) and look for every secret value of at least
    ``CANARY_MIN_LENGTH`` characters, as is or base64-encoded, in ``rendered`` and in the
    values files. A file the key cannot decrypt is skipped with a warning (CI often holds
    one environment's key only); any other failure (tampered, damaged) is an error.
    ``public``: dotted secret keys (``registry.database.username``) whose values are not
    secret, and so not looked for (the rule's ``public`` option)."""
    from .sops import SopsError

    found: list[Diagnostic] = []
    plaintexts, scanned = [], []
    for source in sources:
        try:
            plaintexts.append(decrypt(source))
            scanned.append(source)
        except SopsError as exc:
            skipped = exc.kind in ("no-key", "wrong-key")
            found.append(Diagnostic(
                "warning" if skipped else "error",
                f"canary scan skipped '{source.path}': {exc.message}" if skipped else exc.message,
                source.span, exc.help))
    return found + _canary(files, project, plaintexts, scanned, rendered, frozenset(public))


def _canary(files: ProjectFiles, project: Project, plaintexts: list[bytes],
            sources: list[SecretsFile], rendered: Mapping[str, str],
            public: frozenset[str] = frozenset()) -> list[Diagnostic]:
    """The canary scan proper (``plaintexts``: JSON, one per source)."""
    import base64

    needles: dict[str, str] = {}
    for source, plain in zip(sources, plaintexts, strict=True):
        for path, value in _scalars(json.loads(plain or b"{}"), ()):
            if ".".join(map(str, path)) in public:
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            if len(text) >= CANARY_MIN_LENGTH:
                name = f"'{'.'.join(map(str, path))}' of {source.path}"
                needles[text] = name
                needles[base64.b64encode(text.encode()).decode()] = f"{name} (base64)"
    haystacks = dict(rendered)
    for doc, _ in ordinary_values(project):
        if doc.file in files.texts:
            haystacks.setdefault(doc.file, files.texts[doc.file])
    found = []
    for name in sorted(haystacks):
        text = haystacks[name]
        for needle, secret in needles.items():
            at = text.find(needle)
            if at >= 0:
                line = text.count("\n", 0, at) + 1
                col = at - (text.rfind("\n", 0, at) + 1) + 1
                found.append(Diagnostic(
                    "error", f"the value of secret {secret} occurs in plain text",
                    Span(name, line, col, line, col + len(needle)),
                    help="remove it (and rotate the secret: it has been exposed)"))
    return found


def rendered_texts(root: Path, label: str) -> dict[str, str]:
    """The text files under directory ``root`` (e.g. the committed output), keyed
    ``<label>/<path relative to root>`` (``label``: how diagnostics name ``root``)."""
    result = {}
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                try:
                    result[f"{label}/{path.relative_to(root).as_posix()}"] = \
                        path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
    return result
