"""``meshc status``: one row per (environment, release): what Helm reports and the sync verdict
against the committed output (:mod:`.drift`), an unreachable cluster said once per environment,
and a summary line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..plan.diff import Paint, _plain
from .drift import _ROLES, IN_SYNC, VERDICTS, EnvironmentDrift

COLUMNS = ("ENVIRONMENT", "RELEASE", "NAMESPACE", "REVISION", "STATUS", "CHART", "APP VERSION",
           "UPDATED", "SYNC")


def in_sync(envs: Sequence[EnvironmentDrift]) -> bool:
    """Whether every release of every environment is in sync (``--exit-code``)."""
    return all(r.sync == IN_SYNC for e in envs for r in e.releases)


def status_rows(env: EnvironmentDrift) -> list[tuple[str, ...]]:
    rows = []
    for r in env.releases:
        rev = r.revision
        rows.append((env.name, r.release, r.namespace, str(rev.revision) if rev else "-",
                     rev.status if rev else "-", rev.chart or "-" if rev else "-",
                     rev.app_version or "-" if rev else "-", rev.updated if rev else "-",
                     r.sync))
    return rows


def format_status(envs: Sequence[EnvironmentDrift], paint: Paint = _plain) -> str:
    """The table, the reasons (an unreachable cluster once per environment, a helm error per
    release), then the summary line."""
    rows = [row for env in envs for row in status_rows(env)]
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [paint("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)).rstrip(), "title")]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths)]
        lines.append("  ".join([*cells, paint(row[-1], _ROLES[row[-1]])]))
    notes = []
    for env in envs:
        if env.unreachable is not None:
            where = f"kube-context {env.kube_context}" if env.kube_context else \
                "the current kube-context"
            notes.append(paint(f"{env.name}: unreachable ({where}): {env.unreachable}", "bad"))
        notes += [paint(f"{env.name}/{r.release}: {r.reason}", "bad")
                  for r in env.releases if r.reason and env.unreachable is None]
    if notes:
        lines += ["", *notes]
    lines += ["", status_summary(envs)]
    return "\n".join(lines) + "\n"


def status_summary(envs: Sequence[EnvironmentDrift]) -> str:
    releases = [r for e in envs for r in e.releases]
    counts = [(v, sum(1 for r in releases if r.sync == v)) for v in reversed(VERDICTS)]
    shown = ", ".join(f"{n} {v}" for v, n in counts if n) or "nothing planned"
    return (f"summary: {len(envs)} environment{'s' * (len(envs) != 1)}, {len(releases)} "
            f"release{'s' * (len(releases) != 1)}: {shown}")


def status_json(envs: Sequence[EnvironmentDrift]) -> str:
    data: dict[str, Any] = {"environments": [{
        "name": env.name, "kubeContext": env.kube_context, "unreachable": env.unreachable,
        "releases": [{
            "release": r.release, "namespace": r.namespace,
            "revision": r.revision.revision if r.revision else None,
            "status": r.revision.status if r.revision else None,
            "chart": r.revision.chart if r.revision else None,
            "appVersion": r.revision.app_version if r.revision else None,
            "updated": r.revision.updated if r.revision else None,
            "sync": r.sync, **({"reason": r.reason} if r.reason else {})}
            for r in env.releases]} for env in envs],
        "summary": status_summary(envs)}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
