"""``voxproof`` entry point: a click group whose commands are imported only when invoked.

Errors: a :class:`VoxproofError` prints one line ``ErrorType: message`` on stderr and exits with the
error's code (2 usage, 3 could not evaluate); ``--debug`` shows the traceback. Commands that decide
(gate, audit) exit 1 themselves when their verdict fails.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback

import click

from voxproof import __version__
from voxproof.errors import EXIT_CANNOT_EVALUATE, EXIT_USAGE, UsageError, VoxproofError

# command name -> "module:function"; each module defines one click command.
COMMANDS: dict[str, str] = {
    "eval": "voxproof.cli.eval_cmd:eval_command",
    "score": "voxproof.cli.score_cmd:score_command",
    "report": "voxproof.cli.report_cmd:report_command",
    "models": "voxproof.cli.models_cmd:models_command",
    "compare": "voxproof.cli.compare_cmd:compare_command",
    "suites": "voxproof.cli.suites_cmd:suites_command",
    "tts-eval": "voxproof.cli.tts_cmd:tts_eval_command",
    "audit": "voxproof.cli.audit_cmd:audit_command",
    "gate": "voxproof.cli.gate_cmd:gate_command",
    "registry": "voxproof.cli.registry_cmd:registry_group",
    "card": "voxproof.cli.card_cmd:card_command",
    "probe": "voxproof.cli.probe_cmd:probe_group",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, target in COMMANDS.items() if _module_exists(target)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None or not _module_exists(target):
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


def _module_exists(target: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(target.partition(":")[0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="voxproof")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """voxproof: is this speech model good enough to ship? Evaluate, audit, gate, serve and watch.

    Exit codes: 0 done or gate passed, 1 gate failed or findings above the threshold,
    2 usage error, 3 could not evaluate (data or backend error).
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("voxproof").setLevel(level)
    # Third-party libraries log every file at INFO; keep them to warnings unless debugging.
    for name in ("faster_whisper", "numba", "httpx", "matplotlib", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # with standalone_mode=False click returns ctx.exit(N)'s code instead of raising Exit
        result = cli.main(args=args, prog_name="voxproof", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_CANNOT_EVALUATE
    except VoxproofError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"{type(exc).__name__}: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted: finished rows are kept; rerun with --resume to continue.", err=True)
        code = 130
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["COMMANDS", "UsageError", "cli", "main"]
