"""``voxproof`` entry point: a click group whose commands are imported only when invoked.

Errors: a :class:`VoxproofError` prints one line ``ErrorType: message`` on stderr and exits with the
error's code (2 usage, 3 could not evaluate); any other exception is a bug, printed as one
``InternalError`` line with exit 3 (a full disk or out of memory says so); ``--debug`` shows the traceback. Commands that decide (gate, audit)
exit 1 themselves when their verdict fails. Ctrl-C exits 130 (a run says how to resume).
"""

from __future__ import annotations

import importlib
import logging
import os
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
    "export": "voxproof.cli.export_cmd:export_command",
    "suites": "voxproof.cli.suites_cmd:suites_command",
    "tts-eval": "voxproof.cli.tts_cmd:tts_eval_command",
    "listen": "voxproof.cli.listen_cmd:listen_group",
    "audit": "voxproof.cli.audit_cmd:audit_command",
    "gate": "voxproof.cli.gate_cmd:gate_command",
    "registry": "voxproof.cli.registry_cmd:registry_group",
    "card": "voxproof.cli.card_cmd:card_command",
    "serve": "voxproof.cli.serve_cmd:serve_command",
    "keys": "voxproof.cli.keys_cmd:keys_group",
    "monitor": "voxproof.cli.monitor_cmd:monitor_group",
    "probe": "voxproof.cli.probe_cmd:probe_group",
    "bias-eval": "voxproof.cli.bias_cmd:bias_eval_command",
    "speaker-score": "voxproof.cli.speakers_cmd:speaker_score_command",
}


# What the root help promises, each only while its command is registered in COMMANDS (first match wins),
# so `voxproof --help` never names a capability that has no command.
_CAPABILITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("evaluate", ("eval", "tts-eval")),
    ("audit", ("audit",)),
    ("gate", ("gate",)),
    ("serve", ("serve",)),
    ("watch", ("monitor", "watch")),
    ("probe", ("probe",)),
)


def capability_summary() -> str:
    """``Evaluate, audit and gate.`` from the commands that exist (see ``_CAPABILITIES``)."""
    verbs = [verb for verb, names in _CAPABILITIES
             if any(name in COMMANDS and _module_exists(COMMANDS[name]) for name in names)]
    if not verbs:
        return ""
    text = verbs[0] if len(verbs) == 1 else ", ".join(verbs[:-1]) + " and " + verbs[-1]
    return text[0].upper() + text[1:] + "."


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
@click.option("--redact-pii", "redact_pii", default=None, envvar="VOXPROOF_REDACT_PII", metavar="all|none|KINDS",
              help="Replace personal data (email, phone, card, address, name; comma list or 'all') in every "
                   "report, log and export this command writes. Default: none ('serve' logs: all).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, redact_pii: str | None) -> None:
    """voxproof: is this speech model good enough to ship? {capabilities}

    Exit codes: 0 done or gate passed, 1 gate failed or findings above the threshold,
    2 usage error, 3 could not evaluate (data or backend error, full disk, internal error),
    130 interrupted (Ctrl-C; finished rows are kept).
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("voxproof").setLevel(level)
    # Third-party libraries log every file at INFO; keep them to warnings unless debugging.
    for name in ("faster_whisper", "numba", "httpx", "matplotlib", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    from voxproof.security.redact import RedactingFilter, RedactionPolicy, set_policy

    # None: no choice made, so each exit keeps its default (off; on for serve's logs), see security/redact.py
    set_policy(RedactionPolicy.parse(redact_pii) if redact_pii is not None else None)
    for handler in logging.getLogger().handlers:  # one filter per handler, whatever the invocation count
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


cli.help = (cli.help or "").replace("{capabilities}", capability_summary())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        if any("\x00" in arg for arg in args):
            raise UsageError("an argument contains a NUL byte; paths and values cannot contain one")
        # with standalone_mode=False click returns ctx.exit(N)'s code instead of raising Exit
        result = cli.main(args=args, prog_name="voxproof", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (KeyboardInterrupt) into Abort; the interrupt is its cause.
        code = _interrupted(exc.__cause__) if isinstance(exc.__cause__, KeyboardInterrupt) else EXIT_USAGE
        if code == EXIT_USAGE:
            click.echo("Aborted.", err=True)
    except VoxproofError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"{type(exc).__name__}: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt as exc:  # outside click's own handling (while parsing, or re-raised)
        code = _interrupted(exc)
    except Exception as exc:  # not raised on purpose: still one line, and never exit 1 ("gate failed")
        if debug:
            traceback.print_exc()
        click.echo(_unexpected(exc), err=True)
        code = EXIT_CANNOT_EVALUATE
    finally:
        from voxproof.security.redact import set_policy

        set_policy(None)  # the policy is this invocation's, not the (test) process's
    if argv is None:
        _exit(code)
    return code


def _unexpected(exc: Exception) -> str:
    """One line for an exception voxproof did not raise on purpose."""
    import errno

    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" while writing {exc.filename}" if exc.filename else ""
        return f"DiskFull: no space left on the device{where}; free some space and rerun (--resume keeps finished rows)"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {text}"
    if isinstance(exc, MemoryError):
        return "MemoryError: out of memory; lower --workers, --max-seconds or the batch size"
    return (f"InternalError: {type(exc).__name__}: {text} (a bug in voxproof; rerun with --debug for the traceback "
            "and report it)")


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Report a Ctrl-C. A run stopped by the runner says how many rows it kept and how to continue."""
    from voxproof.run.runner import RunInterrupted

    if isinstance(exc, RunInterrupted):
        click.echo(f"Interrupted: {exc}; {exc.resume_hint}", err=True)
    else:
        click.echo("Interrupted.", err=True)
    return EXIT_INTERRUPTED


def _exit(code: int) -> None:
    """Exit with ``code``. If a backend call abandoned by a timeout still runs in a thread, leave without
    running interpreter finalisation: tearing down a native model under a running call aborts the
    process (SIGABRT) instead of exiting with ``code``."""
    import threading

    if any(t.name.startswith("vp-") and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


__all__ = ["COMMANDS", "UsageError", "cli", "main"]
