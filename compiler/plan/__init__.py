"""The plan stage: ordered helm steps, and how they differ from what is committed.
Lives here: plan (waves, argv; text, JSON, sh; the cost), diff (values and manifests, origins).
May import: core, syntax, model, values, render, secrets, cost.
"""
