"""The documentation: the MkDocs site builds strictly, and README.md stays short with working links.

The site build needs the docs extra (``pip install '.[docs]'``, which ``.ci/run`` installs);
without MkDocs it is skipped with the reason. ``mkdocs.yml`` turns broken links and anchors
between pages into warnings, and ``--strict`` makes any warning fail the build.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 250

_HAVE_MKDOCS = all(importlib.util.find_spec(name) is not None for name in ("mkdocs", "material"))


@pytest.mark.skipif(not _HAVE_MKDOCS, reason="MkDocs and mkdocs-material (the docs extra) are not "
                    "installed: python3 -m pip install '.[docs]'")
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (
        f"mkdocs build --strict failed (exit {result.returncode}):\n{result.stderr}{result.stdout}")
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, at most {README_MAX_LINES}: move reference text to docs/")


def _relative_links(markdown: str) -> list[str]:
    """Targets of the markdown links ``](target)`` outside code fences, external ones left out."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [t for t in targets if not re.match(r"^(?:[a-z][a-z0-9+.-]*:|#|//)", t, re.IGNORECASE)]


def test_readme_relative_links_exist() -> None:
    links = _relative_links(README.read_text(encoding="utf-8"))
    assert links, "README.md links into docs/"
    missing = [link for link in links if not (ROOT / link.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a markdown heading (as mkdocs does, for headings without ``--``)."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_readme_anchors_exist() -> None:
    for link in _relative_links(README.read_text(encoding="utf-8")):
        path, _, anchor = link.partition("#")
        if not anchor or not path.endswith(".md") or not (ROOT / path).is_file():
            continue
        headings = re.findall(r"^#{1,6}\s+(.+?)\s*$",
                              re.sub(r"^```.*?^```", "", (ROOT / path).read_text(encoding="utf-8"),
                                     flags=re.MULTILINE | re.DOTALL), flags=re.MULTILINE)
        slugs = {_github_slug(h) for h in headings}
        assert anchor in slugs, f"README.md links to {link}: {path} has no heading #{anchor}"
