"""Operations on a compiled project: what users do with it after compiling.
Lives here: apply (runs plans), promote, versions, scaffold (env new), secret_commands, charts.
May import: core, syntax, model, values, render, secrets, cost, plan, pipeline, output, check.
"""
