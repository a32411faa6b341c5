"""Operations on a compiled project: what users do with it after compiling.
Lives here: apply (runs plans), promote, versions, scaffold (env new), secret_commands, charts;
day 2: live (helm's view of the plans), status, drift, rollback (and history), verify, live_versions.
May import: core, syntax, model, values, render, secrets, plan, pipeline, output, check.
"""
