"""The values stage: what each (environment, release) receives, and who set each leaf.
Lives here: values (layering with provenance), explain (`meshc explain`'s answer).
May import: core, syntax, model.
"""
