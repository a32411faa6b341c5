"""The `meshc` command: thin click commands over the library, one module per group.
Lives here: main (the group), command modules, support, launch (fast no-op path), progress.
May import: anything in compiler; nothing imports it.
"""
