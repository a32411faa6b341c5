"""Operations on a compiled project: what users do with it after compiling.
Lives here: apply, helm_version, promote, versions, scaffold, secrets, charts, export, cost, day 2.
May import: core, syntax, model, values, render, secrets, cost, plan, pipeline, output, check, gitops.
"""
