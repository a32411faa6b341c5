"""The meshfile as frozen objects: the first stages, load → resolve → graph.
Lives here: model (dataclasses), load (meshfile.yaml), resolve (references), graph (needs).
May import: core, syntax.
"""
