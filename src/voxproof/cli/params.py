"""Click parameter types for paths the user names: a path that is not there, or a folder that is not a
run, is a usage mistake (exit 2) caught while parsing, before any work starts, and reported as one
``UsageError: ...`` line like every other error. A run whose store exists but cannot be read is a data
error (exit 3), raised later by the store itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def require_run(value: str | Path, what: str = "RUN") -> Path:
    """``value`` as a run directory (a ``run.sqlite`` file stands for its directory); raises
    :class:`~voxproof.errors.UsageError` (exit 2) when it does not exist or holds no run store."""
    from voxproof.errors import UsageError
    from voxproof.run.store import STORE_NAME, store_path

    path = Path(value)
    if not path.exists():
        raise UsageError(f"{what} {value} does not exist; give a run directory made by 'voxproof eval -o DIR'")
    if path.is_file() and path.name == STORE_NAME:
        return path.parent
    if not store_path(path).is_file():
        raise UsageError(f"{what} {value} is not a run directory (it has no {STORE_NAME}); give a directory "
                         "made by 'voxproof eval -o DIR'")
    return path


def _label(param: click.Parameter | None, default: str) -> str:
    """How the command line names ``param``: ``--from-run`` for an option, ``RUN_A`` for an argument."""
    if isinstance(param, click.Option) and param.opts:
        return param.opts[0]
    if param is not None and param.name:
        return param.name.upper()
    return default


class RunDir(click.ParamType):
    """A run directory (holding ``run.sqlite``) or the ``run.sqlite`` file itself."""

    name = "RUN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        return require_run(value, _label(param, "RUN"))


class ExistingPath(click.ParamType):
    """A file or folder that must exist (a dataset, a manifest)."""

    name = "PATH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from voxproof.errors import UsageError
        from voxproof.perturb.generated import parse_ref

        if not Path(value).exists() and parse_ref(str(value)) is None:
            raise UsageError(f"{_label(param, 'PATH')} {value} does not exist; give a dataset folder or manifest file "
                             "(or a generated suite: non-speech, sessions)")
        return str(value)


RUN_DIR = RunDir()
EXISTING_PATH = ExistingPath()


def unfinished_run_note(run: str | Path) -> str | None:
    """A warning for a run that is not complete (interrupted, stopped, killed): how many of the rows its
    manifest and conditions call for are stored, since scores and coverage then cover only those."""
    from voxproof.run.store import RunStore

    with RunStore.open(run) as store:
        status = store.meta("status")
        if status == "complete":
            return None
        stored = store.count_rows()
        utterances = (store.provenance.get("dataset") or {}).get("utterances")
        conditions = len(store.conditions()) or 1
    expected = f" of {utterances * conditions}" if isinstance(utterances, int) else ""
    return (f"warning: the run is not complete (status {status}): {stored}{expected} rows are stored and "
            f"the figures cover only those; finish it with 'voxproof eval ... --resume -o {run}'")


def class_options(command: Any) -> Any:
    """``--classes``, ``--keywords``, ``--entities``, ``--vocab``: per-class WER (score, report, compare)."""
    file_type = click.Path(dir_okay=False)
    for option in reversed((
        click.option("--classes", "class_rules", default=None, metavar="LIST",
                     help="Token classes to score: 'all' (numbers, ordinals, dates, times, currency, email_url, "
                          "spelled_letters, proper_nouns, function_words, punctuation), a comma list, or 'none'. Default: all "
                          "when a list file is given, else no class scores."),
        click.option("--keywords", default=None, type=file_type, help="Keyword phrases, one a line: keyword WER "
                     "and precision/recall/F1."),
        click.option("--entities", default=None, type=file_type, help="Entity list, lines 'CLASS<TAB>phrase': "
                     "one WER per class."),
        click.option("--vocab", default=None, type=file_type, help="Training vocabulary, words one a line: "
                     "WER and recall of out-of-vocabulary reference words (class oov)."),
    )):
        command = option(command)
    return command


def class_request(class_rules: str | None, keywords: str | None, entities: str | None,
                  vocab: str | None) -> dict[str, Any] | None:
    """The class options as given, or ``None`` when no class score was asked for."""
    if class_rules in (None, "none") and not (keywords or entities or vocab):
        return None
    return {"rules": class_rules or "all", "keywords": keywords, "entities": entities, "vocab": vocab}
