"""YAML and values as Helm reads them, with exact source spans.
Lives here: yamlsrc (YAML, Go scalars), helmvalues (merge), strvals (--set), keypath, roundtrip.
May import: core.
"""
