"""``python -m qwenkit``: the same as the ``qwenkit`` command."""

from qwenkit.cli import main

main()
