"""Secrets: SOPS-encrypted files referenced by name, never a plaintext value in output.
Lives here: secrets (what each release needs and creates), sops (the real binary, age).
May import: core, syntax, model, values, render.
"""
