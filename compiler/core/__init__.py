"""Foundations: source spans, diagnostics, the error base class, resource limits.
Lives here: source, diagnostics, limits, files, sealed, process (tools), incomplete (render marker).
May import: nothing.
"""
