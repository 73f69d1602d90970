"""``python -m eglpp.cli``: the ``eglpp`` command."""

from eglpp.cli import main

main()
