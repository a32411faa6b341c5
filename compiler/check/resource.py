"""A rendered resource as the checks see it, and where ``meshc render`` writes it.

Shared by the check context and the locator (which must not import each other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.model import Environment, Project
from ..pipeline import ReleaseOutput
from ..render.render import Manifest


@dataclass(frozen=True, slots=True)
class Resource:
    """One rendered manifest of one release in one environment, parsed."""

    env: Environment
    output: ReleaseOutput
    manifest: Manifest
    data: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.manifest.kind}/{self.manifest.name}"

    @property
    def release(self) -> str:
        return self.output.release.name


def rendered_path(project: Project, resource: Resource) -> str:
    """The project-relative path ``meshc render`` writes ``resource`` to."""
    output = project.output.rstrip("/")
    return f"{output}/{resource.env.name}/{resource.release}/manifests/" \
           f"{resource.manifest.filename}"
