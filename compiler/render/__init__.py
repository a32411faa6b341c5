"""The render stage: Jinja charts (in a sandbox) and Helm charts (by helm template) into manifests.
Lives here: templating, sandbox, render, trace, inputs, wrapper_chart, helm_chart, remote (lock).
May import: core, syntax, model, values.
"""
