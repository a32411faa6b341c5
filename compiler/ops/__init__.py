"""Operations on a compiled project: what users do with it after compiling.
Lives here: apply (runs plans), helm_version, promote, versions, scaffold (env new),
secret_commands, charts, export; day 2: live, status, drift, rollback, verify, live_versions.
May import: core, syntax, model, values, render, secrets, plan, pipeline, output, check, gitops.
"""
