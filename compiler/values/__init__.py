"""The values stage: what each (environment, release) receives, and who set each leaf.
Lives here: values (layers, provenance), flags (--set parsed into them), explain.
May import: core, syntax, model.
"""
