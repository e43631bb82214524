"""``python -m voxproof.cli``: the same entry point as the ``voxproof`` script."""

from voxproof.cli.main import main

main()
