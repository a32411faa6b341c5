"""Foundations: source spans, diagnostics, the error base class, resource limits.
Lives here: source, diagnostics, limits, files (bounded reads), sealed, process (tools),
incomplete (the marker of an interrupted render).
May import: nothing.
"""
