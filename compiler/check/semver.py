"""Semantic versions (semver.org 2.0.0), compared by precedence.

``1.0.0-rc.1 < 1.0.0``; pre-release identifiers compare numerically when both are numbers,
numbers sort before words, and a longer list wins when all shared identifiers are equal
(``1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-rc.1``). Build metadata
(``+build.5``) does not count. A leading ``v`` (``v1.2.3``) is accepted, as image tags often
carry one. Anything else — ``0.3``, ``latest``, ``1.2`` — is not a semantic version: meshc
reports such a tag as unorderable rather than guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_NUMBER = r"0|[1-9]\d*"
_PRE_ID = rf"(?:{_NUMBER}|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER = re.compile(
    rf"v?(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")


@total_ordering
@dataclass(frozen=True, slots=True)
class SemVer:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()
    text: str = ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: SemVer) -> bool:
        if (self.major, self.minor, self.patch) != (other.major, other.minor, other.patch):
            return (self.major, self.minor, self.patch) < (other.major, other.minor, other.patch)
        if not self.pre or not other.pre:
            return bool(self.pre) and not other.pre   # a pre-release is lower than the release
        for mine, theirs in zip(self.pre, other.pre):
            if mine == theirs:
                continue
            if isinstance(mine, int) and isinstance(theirs, int):
                return mine < theirs
            if isinstance(mine, int) != isinstance(theirs, int):
                return isinstance(mine, int)             # numbers before words
            return str(mine) < str(theirs)               # ASCII order
        return len(self.pre) < len(other.pre)

    def _key(self) -> tuple[object, ...]:
        return (self.major, self.minor, self.patch, self.pre)

    def __str__(self) -> str:
        return self.text


def parse_semver(text: str) -> SemVer | None:
    """The semantic version ``text`` spells, or None if it is not one."""
    match = SEMVER.fullmatch(text.strip())
    if match is None:
        return None
    pre = tuple(int(p) if p.isdigit() else p
                for p in (match.group("pre").split(".") if match.group("pre") else ()))
    return SemVer(int(match.group("major")), int(match.group("minor")), int(match.group("patch")),
                  pre, text)
