"""Text that untrusted hands wrote (a task's fields, a goal, an agent's output), as board files,
commit messages and terminals take it: which characters a board file refuses, and how output is
made into text that passes. Pure: no git, no I/O."""

from __future__ import annotations

import re

CONTROL_RE = re.compile(  # C0/C1 controls, invisible, bidi and tag characters, lone surrogates
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ud800-\udfff\U000e0000-\U000e007f]")
TEXT_MAX = 32 * 1024  # characters of a description, summary or reason in a board file


_ESCAPE_RE = re.compile(  # terminal escape sequences: CSI (colours, cursor), OSC (titles, links), others
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[P^_X][^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?")


def printable(text: str, limit: int = TEXT_MAX) -> str:
    """Untrusted output (an agent's stdout, a failing test's stderr) made into text a task file, a
    commit message and a terminal accept: terminal escape sequences removed whole, carriage returns
    made newlines, every other character the validator refuses dropped; past `limit` characters
    the end is kept (where a failure says why). What this returns always passes the task
    validator's text check (gitswarm.task)."""
    text = _ESCAPE_RE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROL_RE.sub("", text)
    if len(text) > limit:
        text = "[...] " + text[len(text) - limit + 6:]
    return text


def usd(cost: float) -> str:
    """A cost in USD as people read it: $1.23, or to four places below a dollar ($0.0123)."""
    return f"${cost:.2f}" if cost >= 1 else f"${cost:.4f}"
