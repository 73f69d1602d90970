"""``python -m eglpp``: the ``eglpp`` command (thread policy first, eglpp.console)."""

from eglpp.console import main

main()
