"""The render stage: Jinja charts (in a sandbox) and Helm charts (by helm template) into manifests.
Lives here: templating, sandbox, render, trace (template lines), inputs, wrapper_chart, helm_chart.
May import: core, syntax, model, values.
"""
