"""The README, run as typed: every command in its ``console`` blocks, checked against the output printed there.

The convention (also stated in the README, section "Commands in this README are tested"):

- A fenced block whose info string is ``console`` is run. A line starting with ``$ `` is a command (a
  trailing backslash continues it on the next line); the lines after it, up to the next command, are its
  output. Blocks with any other info string (or none) are shown, never run.
- A comment on the line(s) just before the fence steers the block, clauses separated by ``;``:
  ``<!-- readme-test: skip (why) -->`` does not run it; ``<!-- readme-test: slow -->`` marks it slow;
  ``<!-- readme-test: timeout=900 -->`` sets the per-command limit in seconds (default 600);
  ``<!-- readme-test: ignore=REGEX -->`` treats text matching REGEX in the shown output as varying.
- Blocks run in README order in one temporary directory with a fresh HOME, so a walkthrough chains (a run
  written by one block is read by the next). ``voxproof`` and ``python3`` run the Python running the tests;
  ``export``, ``cd`` and ``$?`` carry over from command to command. A block is slow when it or any block
  before it is (its commands need the earlier ones).
- ``$ cat FILE`` where FILE does not exist yet creates FILE from the output shown (the README shows the
  file the reader writes).
- The shown output's non-blank lines are its key lines: each must match a line of the real output (stdout
  and stderr together), in order; real output may have more lines. In a key line, ``...`` matches any text,
  runs of spaces match any run of spaces, and these vary from run to run so they match anything: durations
  (``0.680 s``, ``1.2 s``, ``228.74s``, ``(0:03:48)``), real-time factors (``RTFx 10.6``, and the RTF,
  RTFx and cpuRTF columns of a table whose header is followed by a ``---`` line), costs per audio hour,
  ISO timestamps, and the absolute folder before a ``runs/`` path. A line that is just ``...`` is only
  for the reader. A command whose output block is empty is checked for its exit code only: 0, unless the
  next command is ``echo $?``, which then checks it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEFAULT_TIMEOUT = 600.0
DIRECTIVE = re.compile(r"\s*<!--\s*readme-test:\s*(.*?)\s*-->\s*")  # the whole line
VOLATILE = (
    r"\(\d+:\d\d:\d\d\)",  # pytest's (0:03:48)
    r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b",  # durations
    r"\bRTFx? \d+(?:\.\d+)?",  # "RTFx 10.6"
    r"\d+(?:\.\d+)? USD per audio hour",  # cost follows the machine's speed
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?",  # timestamps
    r"(?:/[^\s/]+)+/(?=runs/)",  # the absolute folder a run path was printed under
)
VOLATILE_COLUMNS = {"RTF", "RTFX", "CPURTF", "LATENCY", "ELAPSED"}
WILDCARD = "\x00"


@dataclass(frozen=True)
class Command:
    text: str
    output: tuple[str, ...]
    line: int  # README line of the command


@dataclass(frozen=True)
class Block:
    index: int
    line: int  # README line of the opening fence
    heading: str
    commands: tuple[Command, ...]
    skip: str | None = None
    slow: bool = False
    timeout: float = DEFAULT_TIMEOUT
    ignore: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        first = self.commands[0].text if self.commands else "empty"
        slug = re.sub(r"[^A-Za-z0-9]+", "-", first.replace("voxproof ", ""))[:40].strip("-")
        return f"L{self.line}-{slug}"


# --------------------------------------------------------------------------------------------- parsing


def _directives(lines: list[str], fence: int) -> dict[str, object]:
    """The readme-test comments on the lines just above the fence (blank lines between are allowed)."""
    found: dict[str, object] = {"ignore": []}
    i = fence - 1
    while i >= 0 and (not lines[i].strip() or DIRECTIVE.fullmatch(lines[i])):
        m = DIRECTIVE.fullmatch(lines[i])
        if m:
            for clause in (c.strip() for c in re.split(r";(?![^()]*\))", m.group(1)) if c.strip()):
                if clause.startswith("skip"):
                    found["skip"] = clause[4:].strip(" ()") or "marked skip"
                elif clause == "slow":
                    found["slow"] = True
                elif clause.startswith("timeout="):
                    found["timeout"] = float(clause.split("=", 1)[1])
                elif clause.startswith("ignore="):
                    found["ignore"].append(clause.split("=", 1)[1])  # type: ignore[union-attr]
                else:
                    raise ValueError(f"README line {i + 1}: unknown readme-test clause {clause!r}")
        i -= 1
    return found


def _commands(body: list[str], first_line: int) -> tuple[Command, ...]:
    commands: list[Command] = []
    text: str | None = None
    start = 0
    output: list[str] = []
    continuing = False
    for offset, raw in enumerate(body):
        if continuing and text is not None:
            text += "\n" + raw
            continuing = raw.endswith("\\")
            continue
        if raw.startswith("$ "):
            if text is not None:
                commands.append(Command(text, tuple(output), start))
            text, start, output = raw[2:], first_line + offset, []
            continuing = raw.endswith("\\")
        elif text is not None:
            output.append(raw)
    if text is not None:
        commands.append(Command(text, tuple(output), start))
    return tuple(commands)


def parse_readme(text: str) -> list[Block]:
    """Every ``console`` block of a README, with its directives."""
    lines = text.splitlines()
    blocks: list[Block] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        fence = re.match(r"^(```+|~~~+)\s*(\S*)", line)
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence.group(1)):
            end += 1
        if fence.group(2) == "console":
            d = _directives(lines, i)
            blocks.append(Block(
                index=len(blocks), line=i + 1, heading=heading, commands=_commands(lines[i + 1:end], i + 2),
                skip=d.get("skip"), slow=bool(d.get("slow")), timeout=float(d.get("timeout", DEFAULT_TIMEOUT)),
                ignore=tuple(d["ignore"]),  # type: ignore[arg-type]
            ))
        i = end + 1
    return blocks


# -------------------------------------------------------------------------------------------- matching


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _mask_columns(lines: list[str]) -> list[str]:
    """Replace the cells of varying columns (RTF, RTFx, ...) in shown tables by the wildcard."""
    out = list(lines)
    for i in range(len(lines) - 1):
        if not re.fullmatch(r"\s*-{3,}(?:\s+-{3,})*\s*", lines[i + 1]) or "  " not in lines[i].strip():
            continue
        header = _cells(lines[i])
        masked = [k for k, name in enumerate(header) if name.upper() in VOLATILE_COLUMNS]
        if not masked:
            continue
        for j in range(i + 2, len(lines)):
            cells = _cells(lines[j])
            if not lines[j].strip() or len(cells) != len(header):
                break
            out[j] = "  ".join(WILDCARD if k in masked else c for k, c in enumerate(cells))
    return out


def _pattern(expected: str, ignore: tuple[str, ...]) -> re.Pattern[str]:
    if re.fullmatch(r"\s*-{3,}(?:\s+-{3,})*\s*", expected):
        return re.compile(r"-{3,}(?:\s+-{3,})*")  # a table rule: its widths follow the real cells
    masked = expected
    for rx in (*VOLATILE, *ignore):
        masked = re.sub(rx, WILDCARD, masked)
    parts = re.split(r"(\.\.\.|\x00|\s+)", masked.strip())
    regex = []
    for part in parts:
        if part in ("...", WILDCARD):
            regex.append(".*?")
        elif part and part.isspace():
            regex.append(r"\s+")
        elif part:
            regex.append(re.escape(part))
    return re.compile("".join(regex))


def key_lines(shown: tuple[str, ...]) -> list[str]:
    return [line for line in _mask_columns(list(shown)) if line.strip() and line.strip() != "..."]


def match_output(shown: tuple[str, ...], actual: str, ignore: tuple[str, ...] = ()) -> str | None:
    """None when every key line of ``shown`` matches a line of ``actual`` in order; else what is missing."""
    real = [line.strip() for line in actual.splitlines()]
    at = 0
    for expected in key_lines(shown):
        pattern = _pattern(expected, ignore)
        while at < len(real) and not pattern.fullmatch(real[at]):
            at += 1
        if at == len(real):
            return f"no line matching {expected.strip()!r} (in order)"
        at += 1
    return None


# --------------------------------------------------------------------------------------------- running


@dataclass
class Outcome:
    command: Command
    code: int
    output: str
    problem: str | None


@dataclass
class Session:
    """One shared directory for the whole README; blocks run once, in order, whatever order tests run in."""

    root: Path
    blocks: list[Block]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    last_code: int = 0
    done: dict[int, list[Outcome]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        work, home, shims = self.root / "work", self.root / "home", self.root / "bin"
        for folder in (work, home, shims):
            folder.mkdir(parents=True, exist_ok=True)
        for name, target in (("voxproof", f'"{sys.executable}" -m voxproof'), ("python3", f'"{sys.executable}"'),
                             ("python", f'"{sys.executable}"')):
            shim = shims / name
            shim.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
            shim.chmod(0o755)
        src = str(REPO / "src")
        pythonpath = os.environ.get("PYTHONPATH", "")
        self.env = {**os.environ, "HOME": str(home), "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": src + (os.pathsep + pythonpath if pythonpath else ""), "NO_COLOR": "1",
                    "COLUMNS": "200"}
        self.env.pop("VOXPROOF_REGISTRY", None)
        self.cwd = work

    def run_through(self, index: int) -> list[Outcome]:
        for block in self.blocks[: index + 1]:
            if block.index not in self.done and not block.skip:
                self.done[block.index] = self._run_block(block)
        return self.done.get(index, [])

    def _run_block(self, block: Block) -> list[Outcome]:
        outcomes = []
        for n, cmd in enumerate(block.commands):
            nxt = block.commands[n + 1] if n + 1 < len(block.commands) else None
            outcomes.append(self._run(cmd, block, checks_code=nxt is not None and nxt.text.strip() == "echo $?"))
        return outcomes

    def _run(self, cmd: Command, block: Block, checks_code: bool) -> Outcome:
        assert self.cwd is not None
        cat = re.fullmatch(r"cat\s+(\S+)", cmd.text.strip())
        if cat and not (self.cwd / cat.group(1)).exists():
            (self.cwd / cat.group(1)).write_text("".join(line + "\n" for line in cmd.output))
        state = self.root / "state"
        script = (f"(exit {self.last_code})\n{cmd.text}\n__rc=$?\n"
                  f"pwd > {shlex.quote(str(state))}.cwd\nenv -0 > {shlex.quote(str(state))}.env\nexit $__rc\n")
        try:
            proc = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=block.timeout,
                                  check=False)
            code, output = proc.returncode, proc.stdout.decode("utf-8", "replace")
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode("utf-8", "replace")
            return Outcome(cmd, -1, out, f"timed out after {block.timeout:.0f} s")
        if Path(f"{state}.env").exists():
            pairs = Path(f"{state}.env").read_bytes().decode("utf-8", "replace").split("\0")
            self.env = dict(p.split("=", 1) for p in pairs if "=" in p)
            self.cwd = Path(Path(f"{state}.cwd").read_text().strip())
        self.last_code = code
        problem = match_output(cmd.output, output, block.ignore)
        if problem is None and not key_lines(cmd.output) and not checks_code and code != 0:
            problem = f"exit {code} with no output shown in the README"
        return Outcome(cmd, code, output, problem)


BLOCKS = parse_readme(README.read_text(encoding="utf-8"))


def _params() -> list:
    params, slow = [], False
    for block in BLOCKS:
        slow = slow or (block.slow and not block.skip)
        marks = [pytest.mark.slow] if slow or block.slow else []
        params.append(pytest.param(block, id=block.name, marks=marks))
    return params


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return Session(tmp_path_factory.mktemp("readme"), BLOCKS)


def _report(outcomes: list[Outcome]) -> str:
    parts = []
    for o in outcomes:
        if o.problem:
            tail = "\n".join(o.output.splitlines()[-25:])
            parts.append(f"$ {o.command.text}  (README line {o.command.line}, exit {o.code})\n  {o.problem}\n"
                         f"  real output (last 25 lines):\n{tail}")
    return "\n\n".join(parts)


@pytest.mark.parametrize("block", _params())
def test_readme_block_runs_as_typed(block: Block, session: Session) -> None:
    if block.skip:
        pytest.skip(f"README line {block.line}: {block.skip}")
    outcomes = session.run_through(block.index)
    failed = [o for o in outcomes if o.problem]
    assert not failed, f"README block at line {block.line} ({block.heading}):\n" + _report(failed)


# ------------------------------------------------------------------------------ the convention itself


SAMPLE = """# Demo

<!-- readme-test: skip (needs a GPU) -->
```console
$ nvidia-smi
```

```
$ not run: no console info string
```

## Walk

<!-- readme-test: slow; timeout=5 -->
<!-- readme-test: ignore=load \\d+ -->
```console
$ export GREETING=hello
$ cat note.txt
line one
$ echo "$GREETING from $(cat note.txt)" \\
    "and more"
hello from line one and more
$ exit 3
$ echo $?
3
```
"""


def test_parse_console_blocks_with_directives() -> None:
    blocks = parse_readme(SAMPLE)
    assert [b.line for b in blocks] == [4, 16]
    skip, walk = blocks
    assert skip.skip == "needs a GPU" and [c.text for c in skip.commands] == ["nvidia-smi"]
    assert walk.slow and walk.timeout == 5 and walk.ignore == (r"load \d+",) and walk.heading == "Walk"
    assert [c.text for c in walk.commands] == [
        "export GREETING=hello", "cat note.txt", 'echo "$GREETING from $(cat note.txt)" \\\n    "and more"',
        "exit 3", "echo $?"]
    assert walk.commands[1].output == ("line one",) and walk.commands[1].line == 18
    with pytest.raises(ValueError, match="unknown readme-test clause"):
        parse_readme("<!-- readme-test: fast -->\n```console\n$ true\n```\n")


def test_walkthrough_chains_env_files_and_exit_codes(tmp_path: Path) -> None:
    blocks = parse_readme(SAMPLE)
    session = Session(tmp_path, blocks)
    outcomes = session.run_through(1)
    assert [o.problem for o in outcomes] == [None] * 5, _report(outcomes)
    assert [o.code for o in outcomes] == [0, 0, 0, 3, 0]
    assert (tmp_path / "work" / "note.txt").read_text() == "line one\n"  # created from the shown output


def test_key_lines_match_in_order_with_varying_figures_ignored() -> None:
    shown = (
        "model whisper (.../model)  normaliser whisper-en@1",
        "condition  WER [95% CI]        raw WER  RTF",
        "---------  ------------------  -------  -----",
        "clean      12.08% [7.7, 16.1]  98.77%   0.095",
        "...",
        "speed: RTFx 10.6 (audio s / processing s), latency p50 0.680 s p90 0.987 s, model load 0.69 s",
        "#3 2026-11-26T16:38:36 release-bot: attached /tmp/readme/runs/gate-cache/whisper-20c6",
    )
    real = "\n".join([
        "model whisper (/usr/lib/python3/site-packages/x/model)  normaliser whisper-en@1",
        "condition  WER [95% CI]          raw WER  RTF",
        "---------  --------------------  -------  ------",
        "clean      12.08% [7.7, 16.1]    98.77%   0.3150",
        "an extra line the README leaves out",
        "speed: RTFx 3.1 (audio s / processing s), latency p50 2.1 s p90 3.0 s, model load 1.9 s",
        "#3 2026-12-05T17:01:02 release-bot: attached /tmp/pytest-of-root/x/work/runs/gate-cache/whisper-20c6",
    ])
    assert match_output(shown, real) is None
    assert "12.08%" in match_output(shown, real.replace("12.08%", "12.09%"))  # WER must be equal
    swapped = "\n".join(reversed(real.splitlines()))
    assert match_output(shown, swapped) is not None  # order matters
    assert match_output(("load 7",), "load 9", ignore=(r"load \d+",)) is None
