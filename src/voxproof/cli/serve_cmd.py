"""``voxproof serve``: the OpenAI-compatible speech server over the registry's versions."""

from __future__ import annotations

import click

from voxproof.cli.derive import dataclass_options, pop_dataclass
from voxproof.serve.options import SERVE_HELP, ServeOptions


@click.command("serve")
@click.option("--registry", "location", default=None, metavar="PATH|URL",
              help="Registry SQLite file or postgresql:// URL (default: $VOXPROOF_REGISTRY or "
                   "~/.local/share/voxproof/registry.sqlite).")
@click.option("--keys", "keys_store", default=None, metavar="PATH",
              help="API key store (default: $VOXPROOF_KEYS or ~/.local/share/voxproof/keys.sqlite).")
@dataclass_options(ServeOptions, SERVE_HELP)
def serve_command(location: str | None, keys_store: str | None, **kwargs) -> None:
    """Serve the registry's models over HTTP (OpenAI audio API): /v1/audio/transcriptions,
    /v1/audio/speech, /v1/models, /healthz, /readyz, /metrics, /admin/{promote,rollback,canary}.

    'production' requests go to the canary with --canary-share probability (sticky per key); alias
    changes apply without a restart. Stop with SIGTERM or Ctrl-C: in-flight requests finish and the
    request log is flushed.
    """
    from voxproof.cli.keys_cmd import keys_location
    from voxproof.cli.registry_cmd import registry_location
    from voxproof.security.redact import serve_policy, set_policy
    from voxproof.serve.keys import KeyStore
    from voxproof.serve.server import run_server

    options = pop_dataclass(ServeOptions, kwargs)
    set_policy(serve_policy())  # logs and request log redacted unless --redact-pii/VOXPROOF_REDACT_PII say otherwise
    store = KeyStore(keys_location(keys_store))
    if not len(store.snapshot()):
        click.echo("warning: the key store has no keys; create one with 'voxproof keys create --scope "
                   "transcribe'", err=True)

    def started(port: int) -> None:
        click.echo(f"voxproof serve: listening on http://{options.host}:{port} (registry "
                   f"{registry_location(location)}, request log {options.request_log})", err=True)

    run_server(registry_location(location), options, store, on_started=started)
    click.echo("voxproof serve: stopped (in-flight requests finished, request log flushed)", err=True)
