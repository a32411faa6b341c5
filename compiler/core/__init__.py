"""Foundations: source spans, diagnostics, the error base class, resource limits.
Lives here: source, diagnostics, limits, files (bounded, safe reads), sealed (pickles).
May import: nothing.
"""
