"""``python3 -m voxproof.audit.example DIR``: write the README's audit example (train.jsonl, test.jsonl and
their audio, made from the bundled recordings) and say what was planted. Exit 0, or 2 on a usage error."""

from __future__ import annotations

import sys

import click

from voxproof.errors import EXIT_OK, EXIT_USAGE, VoxproofError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        click.echo("usage: python3 -m voxproof.audit.example DIR  (writes DIR/train.jsonl, DIR/test.jsonl, "
                   "DIR/audio/)", err=True)
        return EXIT_USAGE
    from voxproof.audit.example import build_example

    try:
        corpus = build_example(args[0])
    except VoxproofError as exc:
        click.echo(f"{type(exc).__name__}: {exc}", err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"UsageError: cannot write the example to {args[0]}: {exc.strerror or exc}", err=True)
        return EXIT_USAGE
    click.echo(f"wrote {corpus.train} and {corpus.test}; planted:")
    for uid, what in corpus.planted.items():
        click.echo(f"  {uid}: {what}")
    return EXIT_OK
