"""The plan stage: ordered helm steps, and how they differ from what is committed.
Lives here: plan (waves, argv; text, JSON, sh), diff (values and manifests, with origins).
May import: core, syntax, model, values, render, secrets.
"""
