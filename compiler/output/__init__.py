"""The emit stage, and what makes repeated renders cheap and safe.
Lives here: emit (atomic writes), lock, journal (no-op renders), cache, parallel, exports.
May import: core, syntax, model, values, render, secrets, cost, plan, pipeline.
"""
