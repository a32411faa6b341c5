"""The render stage: Jinja charts into Kubernetes manifests, in a sandbox.
Lives here: templating, sandbox, render, trace (template lines), inputs, wrapper_chart.
May import: core, syntax, model, values.
"""
