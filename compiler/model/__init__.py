"""The meshfile as frozen objects: the first stages, load → resolve → graph.
Lives here: model (dataclasses), fields and schema (keys, JSON Schema), load, resolve, graph.
May import: core, syntax.
"""
