"""The ``meshc`` command: answers an unchanged ``meshc render`` before loading the compiler.

Loading the compiler (click, Jinja, PyYAML and meshc's stages) takes longer than checking that
nothing changed since the last render (compiler/output/journal.py), so for the plainest form of the
command — ``meshc [-f FILE] render [--out DIR] [-j N] [--lock-timeout S] [--set… K=V]`` — this
module checks the render journal first, with nothing but the standard library and the journal
loaded, and says ``up to date`` when it holds. Anything else it does not recognise exactly
(environment names, ``--no-cache``, ``--set-file``, ``--limit``, ``--help``, other commands, a
journal that does not hold) goes to :func:`compiler.cli.main.main` unchanged, which parses the
command line for real; ``render`` then does not check the journal a second time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..output import journal

_SET_KINDS = ("set", "set-string", "set-json", "set-literal")
_DEFAULT_LOCK_TIMEOUT = 300.0  # as `meshc render --lock-timeout`'s default


def main() -> None:
    """The console script."""
    plain = plain_render(sys.argv[1:])
    if plain is not None and _answer(*plain):
        sys.exit(0)
    from .main import main as cli_main

    cli_main(prog_name="meshc")


def plain_render(argv: list[str]) -> tuple[Path, Path | None, list[tuple[str, str]], float] | None:
    """(meshfile, --out, --set flags as (kind, text), --lock-timeout) when ``argv`` is exactly a
    plain full render as described above; None for anything else."""
    meshfile = Path("meshfile.yaml")
    args = list(argv)
    while args and args[0] != "render":
        name, value, args = _option(args, ("-f", "--file"))
        if name is None or value is None:
            return None
        meshfile = Path(value)
    if not args:
        return None
    args = args[1:]
    out: Path | None = None
    flags: list[tuple[str, str]] = []
    lock_timeout = _DEFAULT_LOCK_TIMEOUT
    while args:
        name, value, args = _option(args, ("--out", "-j", "--jobs", "--lock-timeout",
                                           *(f"--{kind}" for kind in _SET_KINDS)))
        if name is None or value is None:
            return None
        if name == "--out":
            out = Path(value)
        elif name in ("-j", "--jobs"):
            if not value.isdigit() or int(value) < 1:
                return None  # click says why
        elif name == "--lock-timeout":
            try:
                lock_timeout = float(value)
            except ValueError:
                return None
            if not lock_timeout >= 0:
                return None
        else:
            flags.append((name[2:], value))
    return meshfile, out, flags, lock_timeout


def _option(args: list[str], names: tuple[str, ...]) -> tuple[str | None, str | None, list[str]]:
    """The option at the head of ``args`` if it is one of ``names`` with its value (``--name
    value`` or ``--name=value``), and the rest; (None, None, args) otherwise."""
    head = args[0]
    for name in names:
        if head == name:
            return (name, args[1], args[2:]) if len(args) > 1 else (None, None, args)
        if name.startswith("--") and head.startswith(name + "="):
            return name, head[len(name) + 1:], args[1:]
    return None, None, args


def _answer(meshfile: Path, out: Path | None, flags: list[tuple[str, str]],
            lock_timeout: float) -> bool:
    """True (having said so) when the render would rewrite what is there."""
    command = journal.command_line(meshfile, out, flags, ())
    if journal.answer(meshfile.parent, command, lock_timeout, _say):
        return True
    journal.CHECKED.append(command)  # compiler.cli's render need not check it again
    return False


def _say(text: Any) -> None:
    print(text, file=sys.stderr, flush=True)
