"""``python -m voxproof``: the same entry point as the ``voxproof`` script."""

from voxproof.cli.main import main

main()
