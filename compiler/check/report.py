"""Presenting a :class:`CheckReport`: text for people, JSON for tools, GitHub Actions workflow
commands for inline pull-request annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from ..core.diagnostics import WHOLE_LINE, CompileError, Diagnostic, format_all, format_diagnostic
from ..core.source import source_line
from .context import CheckReport, Finding


def format_text(report: CheckReport, sources: Mapping[str, str]) -> str:
    """Diagnostics (rustc style, duplicates across environments merged) and a summary."""
    text = format_all(report.diagnostics, sources)
    # format_all's closing count merges environments; the summary below counts per environment
    lines = [line for line in text.rstrip("\n").split("\n")
             if line and not line.startswith("meshc: ")] if text else []
    if report.unchecked:
        lines.append(f"note: {len(report.unchecked)} custom resource"
                     f"{'s' * (len(report.unchecked) != 1)} without a Kubernetes schema "
                     "(checked for apiVersion, kind and metadata.name only):")
        lines.extend(f"  unchecked: {entry}" for entry in report.unchecked)
    lines.extend(format_diagnostic(note.diagnostic, sources) for note in report.notes)
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def summary(report: CheckReport) -> str:
    versions = sorted(set(report.kube_versions.values()))
    against = f" against Kubernetes {', '.join(versions)}" if versions else ""
    verdict = "failed" if report.errors else "passed"
    helm = report.helm
    judged = (f", {helm.charts} chart{'s' * (helm.charts != 1)} judged by Helm "
              f"{helm.version}" if helm is not None else "")
    return (f"meshc check {verdict}: {len(report.environments)} environment"
            f"{'s' * (len(report.environments) != 1)} ({', '.join(report.environments)}), "
            f"{report.resources} resources{against}{judged}; {report.errors} error"
            f"{'s' * (report.errors != 1)}, {report.warnings} warning"
            f"{'s' * (report.warnings != 1)}")


def format_json(report: CheckReport, sources: Mapping[str, str]) -> str:
    helm = report.helm
    data = {"apiVersion": "meshc/v1", "kind": "CheckReport",
            "environments": list(report.environments), "passed": report.errors == 0,
            "errors": report.errors, "warnings": report.warnings,
            "resources": report.resources, "kubernetesVersions": dict(report.kube_versions),
            "unchecked": list(report.unchecked),
            "findings": [_json_entry(f, sources) for f in report.findings],
            "notes": [_json_entry(f, sources) for f in report.notes],
            "helm": {"version": helm.version, "charts": helm.charts} if helm else None}
    return json.dumps(data, indent=2) + "\n"


def _json_entry(finding: Finding, sources: Mapping[str, str]) -> dict[str, object]:
    diag = finding.diagnostic
    entry: dict[str, object] = {"rule": finding.rule, "severity": diag.severity,
                                "environment": finding.environment, "message": diag.message}
    entry.update(_position(diag, sources))
    entry["help"] = diag.help
    entry["notes"] = [*diag.related_notes(), *diag.notes]
    return entry


def _position(diag: Diagnostic, sources: Mapping[str, str]) -> dict[str, object]:
    span = diag.span
    if span is None:
        return {"file": None, "line": None, "col": None, "endLine": None, "endCol": None}
    col, end_col = span.col, span.end_col
    if end_col >= WHOLE_LINE:
        line = source_line(sources.get(span.file, ""), span.line) or ""
        col = len(line) - len(line.lstrip()) + 1
        end_col = len(line) + 1
    end_line = span.end_line or span.line
    return {"file": span.file, "line": span.line, "col": col, "endLine": end_line,
            "endCol": end_col if end_col else col + 1}


def format_github(report: CheckReport, sources: Mapping[str, str]) -> str:
    """``::error file=…,line=…,col=…::message`` per finding (once per location and message),
    then the summary as a notice."""
    lines = []
    seen: set[tuple[object, ...]] = set()
    for finding in (*report.findings, *report.notes):
        diag = finding.diagnostic
        key = (diag.severity, diag.message, diag.span)
        if key in seen:
            continue
        seen.add(key)
        command = "error" if diag.severity == "error" else "warning" \
            if diag.severity == "warning" else "notice"
        props = [f"title={_prop('meshc check: ' + finding.rule)}"]
        pos = _position(diag, sources)
        if pos["file"] is not None:
            props = [f"file={_prop(str(pos['file']))}", f"line={pos['line']}",
                     f"col={pos['col']}", f"endLine={pos['endLine']}",
                     f"endColumn={pos['endCol']}", *props]
        body = "\n".join([diag.message, *diag.related_notes(), *diag.notes, *([f"help: {diag.help}"] if diag.help
                                                      else [])])
        lines.append(f"::{command} {','.join(props)}::{_data(body)}")
    lines.append(f"::notice title=meshc check::{_data(summary(report))}")
    return "\n".join(lines) + "\n"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def compile_failure(exc: CompileError, environments: Iterable[str] = ()) -> CheckReport:
    """The report of a check that could not run because the project does not compile: each
    diagnostic a finding of rule ``compile``, so that ``-o json`` and ``-o github`` still tell
    CI what is wrong, and where."""
    return CheckReport(tuple(environments), tuple(Finding("compile", None, diag)
                                                  for diag in exc.diagnostics),
                       0, {}, (), dict(exc.sources))
