"""The GitOps hand-off: Argo CD and Flux documents and GitHub workflows, from compiled plans.
Lives here: model (what an export needs of a plan), argocd, flux, github (CI workflows), stale.
May import: core, syntax, model, values, render, secrets, plan, pipeline.
"""
