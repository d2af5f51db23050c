"""``python -m plugin``: the same as the ``rapport`` command."""

from plugin.cli import main

main()
