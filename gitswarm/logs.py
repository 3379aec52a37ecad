"""The `gitswarm` logger: how `serve` and `worker` write what happens, one entry at a time.

Every part logs through a plain `log(line)` callable (Swarm.log, Pool.log, Daemon.log); the default
one, `roles.stderr_log`, hands the line to `emit` here, which makes it a `logging` record of the
`gitswarm` logger: the text made printable (agent output is hostile: no escape sequence, no control
character reaches the terminal or breaks a JSON line), a level read from what the line says (a
failure is a WARNING, an error an ERROR, the metering proxy's requests DEBUG), and the fields its
conventional prefix names (`<agent>: ...`, `goal <name>: ...`, a task id).

`setup` (the CLI's `--log-format plain|json`, `-v`, `-q`) chooses where records go:
- plain, not a terminal (CI, the systemd journal): `HH:MM:SS text` lines, no escape code, the later
  lines of a multi-line entry indented;
- plain on a terminal: the same lines through a rich Console (colour unless NO_COLOR is set), which
  the live view (gitswarm/liveview.py) shares so that lines scroll above it;
- json: one object per line: time (ISO-8601 UTC), level, logger, message, agent, task, goal.
Without `setup` (a library caller, the tests), the first entry installs the plain lines.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from datetime import datetime, timezone
from typing import IO, Any

from .names import ID
from .text import printable

LOGGER = "gitswarm"
FORMATS = ("plain", "json")
ENTRY_MAX = 1_000_000  # characters of one entry (a command's whole stderr)
INDENT = " " * 9  # under `HH:MM:SS `: a multi-line entry's later lines

logger = logging.getLogger(LOGGER)
_setup_lock = threading.Lock()

# What a line says, read from its first line (its later lines are a command's output, which may say
# anything). Agent text on a first line (a failure's reason) can at most raise a failure's WARNING to
# ERROR: warnings are matched before DEBUG, whose patterns are anchored to lines gitswarm writes whole.
_ERROR_RE = re.compile(r"^(?:[\w.-]+: )*error: |: [A-Za-z]*(?:Error|Exception): |\bTraceback\b")
_WARNING_RE = re.compile(
    r"\b(?:failed|fails|could not|cannot|invalid|quarantined|refused|rejected|lost the claim|"
    r"unavailable|unreachable|red|lapsed|sent back|trying again|retrying|out of tries|stopped: |stopped after)\b")
_DEBUG_RE = re.compile(r"^meter: |^deleted \d+ land ref|^folded the runs")

_AGENT_RE = re.compile(r"^([A-Za-z0-9._-]+-(?:w\d+|p\d+|root|train)): ")
_GOAL_RE = re.compile(r"^(?:goal|planner|judge) ([^\s:]+):|^judge: ([^\s:]+) cycle \d+")
_ROOT_GOAL_RE = re.compile(r"^([^\s:]+): \d+ tasks created")  # a root planner's `<agent>-root: <goal>: ...`
_TASK_RE = re.compile(rf"(?<![\w-])({ID})(?![\w-])")


class Entry(str):
    """A log line that carries its level, where its words do not tell it (`log(warning(f"planner
    {name}: {e}"))`): it passes wherever a line does (a test's `lines.append` keeps it as text)."""

    level: int

    def __new__(cls, text: str, level: int) -> "Entry":
        entry = super().__new__(cls, text)
        entry.level = level
        return entry


def warning(text: str) -> Entry:
    return Entry(text, logging.WARNING)


def error(text: str) -> Entry:
    return Entry(text, logging.ERROR)


def level_of(message: str) -> int:
    """The level a line's own words give it: ERROR for an error, WARNING for a failure or refusal,
    DEBUG for the routine traffic only -v shows, INFO otherwise. Reads the first line only."""
    first = message.split("\n", 1)[0]
    if _ERROR_RE.search(first):
        return logging.ERROR
    if _WARNING_RE.search(first):
        return logging.WARNING
    if _DEBUG_RE.search(first):
        return logging.DEBUG
    return logging.INFO


def fields_of(message: str) -> dict[str, str]:
    """The agent, task and goal a line's conventional prefix names (`t-w0: claimed t-1a2b ...`,
    `goal greet: planning`, `judge: greet cycle 1: done`), where it names them."""
    first = message.split("\n", 1)[0]
    found: dict[str, str] = {}
    agent = _AGENT_RE.match(first)
    if agent:
        found["agent"] = agent.group(1)
        first = first[agent.end():]
    goal = _GOAL_RE.search(first) or (_ROOT_GOAL_RE.search(first) if found.get("agent", "").endswith("-root") else None)
    if goal:
        found["goal"] = next(g for g in goal.groups() if g)
    task = _TASK_RE.search(first)
    if task and not _AGENT_RE.match(task.group(1) + ": "):
        found["task"] = task.group(1)
    return found


def emit(line: str, level: int | None = None, **fields: str) -> None:
    """One entry: made printable, given its level and fields (those given win over those read from
    the line), handed to the `gitswarm` logger. Never raises for what the line holds."""
    level = getattr(line, "level", None) if level is None else level
    text = printable(str(line), ENTRY_MAX).rstrip("\n")
    level = level_of(text) if level is None else level
    if not logger.handlers:
        setup()
    if logger.isEnabledFor(level):
        extra = {**fields_of(text), **{k: printable(str(v), 4000) for k, v in fields.items()}}
        logger.log(level, "%s", text, extra={"gitswarm": extra})


def said_as_json(message: str, hint: str | None) -> bool:
    """A command's error (a GitswarmError that ends it) as one JSON line, where the log is JSON
    (`--log-format json`): True when said so; False, and the caller prints it as text."""
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return False
    emit(f"error: {message}", logging.ERROR, **({"hint": hint} if hint else {}))
    return True


# ------------------------------------------------------------------ formats


def _fields(record: logging.LogRecord) -> dict[str, str]:
    return getattr(record, "gitswarm", None) or {}


class PlainFormatter(logging.Formatter):
    """`HH:MM:SS text`, each later line of the entry indented under the text: every line at the
    margin starts with a time."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.getMessage()}".replace("\n", "\n" + INDENT)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (json.dumps escapes every newline and control character)."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        doc: dict[str, Any] = {"time": at.replace("+00:00", "Z"), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        doc.update(_fields(record))
        return json.dumps(doc, ensure_ascii=False)


# ------------------------------------------------------------------ where lines go


class LineHandler(logging.Handler):
    """Writes each formatted entry and its newline in one write under the handler's lock (threads
    share the stream), to `stream`, or to whatever sys.stderr is at the time."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            stream = self._stream or sys.stderr
            with self.lock:  # type: ignore[union-attr]
                stream.write(text)
                stream.flush()
        except Exception:
            self.handleError(record)


STYLES = {logging.DEBUG: "dim", logging.WARNING: "yellow", logging.ERROR: "bold red", logging.CRITICAL: "bold red"}


class ConsoleHandler(logging.Handler):
    """Plain lines on a terminal, through a rich Console: coloured by level (rich leaves colour out
    when NO_COLOR is set), printed above the live view while one runs. The text is never read as
    markup: what an agent wrote stays text."""

    def __init__(self, console: Any):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        from rich.text import Text

        try:
            text = Text(self.format(record), style=STYLES.get(record.levelno, ""))
            with self.lock:  # type: ignore[union-attr]
                self.console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)
        except Exception:
            self.handleError(record)


def is_terminal(stream: Any) -> bool:
    """A terminal that can draw (not TERM=dumb: an editor's shell buffer gets plain lines)."""
    if os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def console_for(stream: IO[str]) -> Any:
    """A rich Console writing to `stream` (a terminal): colour unless NO_COLOR (https://no-color.org)
    is set to anything but the empty string."""
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR"))
    return Console(file=stream, no_color=no_color, color_system=None if no_color else "auto",
                   force_terminal=True, highlight=False, emoji=False, markup=False)


def setup(fmt: str = "plain", verbosity: int = 0, stream: IO[str] | None = None,
          terminal: bool | None = None) -> logging.Handler:
    """Send the `gitswarm` logger's records where the options say, replacing what was there:
    `fmt` plain or json; `verbosity` -1 (-q: warnings and errors), 0 (info), 1 (-v: debug too);
    `stream` default sys.stderr (as it is at each write, for plain lines off a terminal); a
    terminal (asked of the stream unless `terminal` says) gets a rich Console for plain lines.
    Returns the handler: a ConsoleHandler has the `console` a live view draws on."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    terminal = is_terminal(stream or sys.stderr) if terminal is None else terminal
    handler: logging.Handler
    if fmt == "plain" and terminal:
        handler = ConsoleHandler(console_for(stream or sys.stderr))
    else:
        handler = LineHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    with _setup_lock:
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO)
        logger.propagate = False  # the root logger (a library's, pytest's) does not print them again
    return handler


def fall_back_to_lines(why: str) -> None:
    """The live view failed: plain lines from now on (same stream, same level), saying why."""
    with _setup_lock:
        for old in list(logger.handlers):
            if isinstance(old, ConsoleHandler):
                logger.removeHandler(old)
                new = LineHandler(old.console.file)
                new.setFormatter(old.formatter)
                logger.addHandler(new)
    emit(f"live view: {why}; showing plain lines instead", logging.WARNING)

