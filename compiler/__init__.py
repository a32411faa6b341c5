"""meshc: a compiler for multi-environment Helm deployments.

The library is the product; ``compiler.cli`` is a thin shell over it. The stages, in order, are
spelled out in :mod:`compiler.pipeline`.
"""

__version__ = "0.1.0"
