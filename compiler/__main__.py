"""``python -m compiler``: the ``meshc`` command (compiler/cli/launch.py)."""

from .cli.launch import main

main()
