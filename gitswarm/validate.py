"""The field checks of every file gitswarm reads (task files and goal records on the board, goals,
`.gitswarm.yaml`, a host's endpoints file): one toolkit, so that a rule and its message exist once.

`Fields(fail)` checks the fields of one file: each check returns the value (normalized) or raises
`fail(field, problem, hint)`, the error class the caller chose (TaskInvalid for board files,
FileInvalid's kinds for files people write). `Collect` says whether the first problem ends the
check or every problem is kept. Pure: no git, no I/O.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from typing import Any, Callable, Iterable, TypeVar

from .errors import FileInvalid
from .text import CONTROL_RE

Fail = Callable[[str | None, str, str | None], Exception]  # (field, problem, hint) -> the error to raise
T = TypeVar("T")

DURATION_HINT = "write seconds (90) or a duration like 30s, 10m, 2h or 1h30m"
_DURATION_RE = re.compile(r"(?:([0-9]+(?:\.[0-9]+)?)d)?(?:([0-9]+(?:\.[0-9]+)?)h)?"
                          r"(?:([0-9]+(?:\.[0-9]+)?)m)?(?:([0-9]+(?:\.[0-9]+)?)s)?\Z")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?\Z")
COMMAND_MAX = 8192  # characters of a shell command in a setting or a goal


def typename(value: Any) -> str:
    """A YAML value's kind, as an error names it (null, str, list, dict...)."""
    return "null" if value is None else type(value).__name__


def shown(value: Any) -> str:
    """A value as an error quotes it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unknown_hint(key: Any, known: Iterable[str], what: str = "the fields are") -> str:
    """The hint for an unknown key: the known key it is closest to, if any ("did you mean 'model'?"),
    then all of them."""
    known = tuple(known)
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    mean = f"did you mean '{close[0]}'? " if close else ""
    return f"{mean}{what}: {', '.join(known)}"


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration: a number of seconds (90, "90", 1.5), or units in the order d, h, m,
    s with no spaces: "30s", "10m", "2h", "1h30m", "1d", "1.5h". Raises ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, (int, float)):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"{text!r} is not a duration")
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration")
    value = text.strip()
    if _NUMBER_RE.match(value):
        return float(value)
    match = _DURATION_RE.match(value)
    if not value or not match:
        raise ValueError(f"{text!r} is not a duration; {DURATION_HINT}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    """Seconds as a duration is written: 1s, 10m, 7d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class Collect:
    """How a validator meets a FileInvalid: raised at once (`errors` None: the first ends the check),
    or kept in `errors` and the check goes on (`gitswarm check`, the hub's guard on main: every
    problem of a file in one answer). One validator, two modes."""

    def __init__(self, errors: list[FileInvalid] | None = None):
        self.errors = errors

    def add(self, error: FileInvalid) -> None:
        if self.errors is None:
            raise error
        self.errors.append(error)

    def __call__(self, check: Callable[[], T], default: T) -> T:
        """check()'s value; when it fails while collecting, `default` (and the error is kept)."""
        if self.errors is None:
            return check()
        try:
            return check()
        except FileInvalid as e:
            self.errors.append(e)
            return default


class Fields:
    """The checks of one file's fields. `fail(field, problem, hint)` makes the error raised."""

    def __init__(self, fail: Fail):
        self.fail = fail

    def text(self, name: str, value: Any, limit: int, *, required: bool = False, single_line: bool = False,
             hint: str | None = None) -> str:
        """Text a person or an agent wrote: a string, within `limit` characters, no control or
        invisible characters (newlines and tabs aside)."""
        if not isinstance(value, str):
            raise self.fail(name, f"must be text, not {typename(value)}", hint or "quote it")
        if required and not value.strip():
            raise self.fail(name, "must not be empty", hint or "give it some text, or leave the field out")
        if len(value) > limit:
            raise self.fail(name, f"is {len(value)} characters; the limit is {limit}", "shorten it")
        if single_line and ("\n" in value or "\r" in value):
            raise self.fail(name, "must be a single line", "put the details in the description")
        bad = CONTROL_RE.search(value)
        if bad:
            raise self.fail(name, f"holds a control or invisible character (U+{ord(bad.group()):04X})",
                            "remove it; only printable text, newlines and tabs are allowed")
        return value

    def command(self, name: str, value: Any) -> str | None:
        """A shell command (None: not given)."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"must be a shell command, not {typename(value)}",
                            "quote it: " + name.rsplit(".", 1)[-1] + ": 'make test'")
        if not value.strip():
            raise self.fail(name, "must be a shell command; it must not be empty",
                            "give a shell command as text, or leave the field out")
        if len(value) > COMMAND_MAX:
            raise self.fail(name, f"is {len(value)} characters; the limit is {COMMAND_MAX}",
                            "put a long command in a script")
        return self.text(name, value, COMMAND_MAX)

    def match(self, name: str, value: Any, regex: re.Pattern[str], what: str) -> str:
        """A string in `regex`'s shape (`what` says which, in the hint)."""
        if not isinstance(value, str) or not regex.match(value):
            raise self.fail(name, f"{shown(value)} is not valid", f"expected {what}")
        return value

    def name(self, name: str, value: Any, regex: re.Pattern[str], what: str) -> str:
        """An id or a name: one string object however many files name it (a board of 100,000 tasks
        parses each id once per change and names its workers over and over)."""
        return sys.intern(self.match(name, value, regex, what))

    def choice(self, name: str, value: Any, options: tuple[str, ...], what: str | None = None,
               hint: str | None = None) -> str:
        """One of `options` (the constant itself, not a copy per file); `what` names them in the
        problem ("a backend"), else they are listed."""
        if not isinstance(value, str) or value not in options:
            listed = ", ".join(options)
            raise self.fail(name, f"{shown(value)} is not {what or 'one of: ' + listed}",
                            hint or f"write one of: {listed}")
        return options[options.index(value)]

    def flag(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {shown(value)}", None)
        return value

    def integer(self, name: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be a whole number, not {shown(value)}", f"give a number from {low} to {high}")
        if not low <= value <= high:
            raise self.fail(name, f"{value} is out of range", f"give a number from {low} to {high}")
        return value

    def number(self, name: str, value: Any, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, not {shown(value)}", f"give a number from {low:g} to {high:g}")
        if not low <= value <= high:  # NaN is in no range
            raise self.fail(name, f"{value} is out of range", f"give a number from {low:g} to {high:g}")
        return value

    def duration(self, name: str, value: Any, low: float = 1.0, high: float = 7 * 86400.0) -> float:
        """Seconds, written as a number or a duration like 10m (parse_duration)."""
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise self.fail(name, f"{shown(value)} is not a duration", DURATION_HINT) from None
        if not low <= seconds <= high:
            raise self.fail(name, f"{shown(value)} is out of range",
                            f"give from {format_duration(low)} to {format_duration(high)}")
        return seconds

    def list_of(self, name: str, value: Any, item: Callable[[str, Any], T], most: int, what: str,
                hint: str | None = None) -> tuple[T, ...]:
        """A list of at most `most` items, each checked by `item(field, value)` (its value must be
        hashable) and listed once."""
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list of {what}, not {typename(value)}", hint)
        if len(value) > most:
            raise self.fail(name, f"lists {len(value)} {what}; the limit is {most}", hint)
        out = tuple(item(f"{name}[{i}]", x) for i, x in enumerate(value))
        if len(set(out)) < len(out):
            i = next(i for i, x in enumerate(out) if x in out[:i])
            raise self.fail(f"{name}[{i}]", f"{shown(value[i])} is listed twice", "keep one of them")  # as written
        return out

    def known_keys(self, name: str | None, value: dict[Any, Any], keys: tuple[str, ...],
                   what: str = "the fields are", problem: str = "unknown field") -> None:
        """Refuse a key of mapping `value` (field `name`) that is not one of `keys`, saying the
        nearest known one."""
        for key in value:
            if key not in keys:
                raise self.fail(f"{name}.{key}" if name else str(key), problem, unknown_hint(key, keys, what))
