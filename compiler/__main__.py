"""``python -m compiler``: the ``meshc`` command (compiler/launch.py)."""

from .launch import main

main()
