"""``voxproof keys``: API keys for ``voxproof serve`` (created once, stored hashed).

Where the keys live: ``--store PATH``, else ``$VOXPROOF_KEYS``, else ``~/.local/share/voxproof/keys.sqlite``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from voxproof.serve.keys import SCOPES

DEFAULT_KEYS = Path.home() / ".local" / "share" / "voxproof" / "keys.sqlite"


def keys_location(value: str | None) -> str:
    return value or os.environ.get("VOXPROOF_KEYS") or str(DEFAULT_KEYS)


_STORE = click.option("--store", default=None, metavar="PATH",
                      help="Key store file (default: $VOXPROOF_KEYS or ~/.local/share/voxproof/keys.sqlite).")


@click.group("keys")
def keys_group() -> None:
    """API keys for 'voxproof serve': scopes transcribe, synthesize, admin; only hashes are stored."""


@keys_group.command("create")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="What the key may do, repeatable (admin implies the others).")
@click.option("--name", default=None, help="Who the key is for (default: key-<random>); shown in logs and "
                                           "the registry history.")
@_STORE
def create_command(scopes: tuple[str, ...], name: str | None, store: str | None) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    import secrets

    from voxproof.serve.keys import KeyStore

    key, secret = KeyStore(keys_location(store)).create(name or f"key-{secrets.token_hex(3)}", scopes)
    click.echo(secret)
    click.echo(f"created key {key.name!r} (scopes: {', '.join(key.scopes)}); it is shown only now, store it "
               "safely", err=True)


@keys_group.command("list")
@_STORE
def list_command(store: str | None) -> None:
    """Key names, scopes and state (never the keys)."""
    from voxproof.serve.keys import KeyStore

    for key in KeyStore(keys_location(store)).list():
        state = "revoked" if key.revoked else "active"
        click.echo(f"{key.name}\t{','.join(key.scopes)}\t{state}\tcreated {key.created_at}")


@keys_group.command("revoke")
@click.argument("name")
@_STORE
def revoke_command(name: str, store: str | None) -> None:
    """Revoke a key by name (a running server stops accepting it at its next poll)."""
    from voxproof.serve.keys import KeyStore

    KeyStore(keys_location(store)).revoke(name)
    click.echo(f"revoked key {name!r}")
