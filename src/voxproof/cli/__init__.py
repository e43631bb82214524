"""The command line: one module per command, registered lazily in :mod:`voxproof.cli.main`."""
