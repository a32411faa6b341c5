"""Foundations: source spans, diagnostics, the error base class, resource limits.
Lives here: source, diagnostics, limits, files (bounded reads), sealed, process (tools).
May import: nothing.
"""
