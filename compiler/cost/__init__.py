"""Cost estimates: what each environment's rendered manifests cost per month, and a change's.
Lives here: quantity (Kubernetes quantities, exact), prices, estimate (manifests → cost), report.
May import: core, syntax, model.

The estimator is a pure function over rendered manifests (the ``rendered/ENV`` tree as path →
text, fresh or committed): :func:`.estimate.estimate_tree` returns a frozen
:class:`.estimate.EnvironmentCost`; :func:`.estimate.compare` two of them. Formats (text, JSON,
Markdown, SVG) are in :mod:`.report` and :mod:`.svg`. See docs/cost.md.
"""
