"""Why a goal waits: its planner or judge failed (the model endpoint down, a command that exits
non-zero or runs out of time). The reason goes on the goal's record (`reason`, while it is active)
with when the role is tried next, so that `gitswarm status` and the report say why nothing moves,
and it goes away once the role succeeds again. The record is written when the failure changes, and
while the same failure repeats at most every REFRESH seconds (to move its next-try time): never once
per retry. The role is tried again after RETRY_FIRST seconds, doubling up to RETRY_MAX."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from . import logs
from .board import Board
from .errors import GitswarmError
from .text import printable

RETRY_FIRST = 15.0  # seconds before a failed planner or judge is tried again...
RETRY_MAX = 600.0  # ...doubling at each failure in a row, up to this
REFRESH = 600.0  # while one failure repeats, its record is rewritten at most this often
MAX_CAUSE = 4000  # characters of a failure kept on the record


@dataclass
class Failing:
    failures: int = 0  # in a row
    cause: str = ""  # what the record says of it (without the next try's time)
    written: float = 0.0  # when the record last said it


def cause_of(error: BaseException) -> str:
    """A failure as the record says it: a GitswarmError's message and hint (which names the
    settings to change), anything else with its type. Printable: a command's output is untrusted."""
    if isinstance(error, GitswarmError):
        text = error.message + (f"\nhint: {error.hint}" if error.hint else "")
    else:
        text = f"{type(error).__name__}: {error}"
    return printable(text, MAX_CAUSE).strip()


def prefix(role: str) -> str:
    return f"{role} failing"


def reason_text(role: str, cause: str, failures: int, retry_at: float) -> str:
    """`planner failing (2 in a row), next try at 06:41:10 UTC: model 'm' at URL unavailable ...`:
    what the goal waits for and until when first, as `status` shows a reason's first line."""
    at = time.strftime("%H:%M:%S UTC", time.gmtime(retry_at))
    return f"{prefix(role)} ({failures} in a row), next try at {at}: {cause}"


class Waits:
    """The failing planners and judges of one daemon's goals, and what their records say."""

    def __init__(self, board: Board, log: Callable[[str], None]):
        self.board, self.log = board, log
        self.failing: dict[tuple[str, str], Failing] = {}

    def failed(self, goal: str, role: str, error: BaseException, most: float = RETRY_MAX) -> float:
        """A failure of `role` for `goal`: logged, on the record when it changed; returns the
        seconds until the role should be tried again (at most `most`)."""
        f = self.failing.setdefault((goal, role), Failing())
        f.failures += 1
        delay = min(most, RETRY_FIRST * 2 ** min(f.failures - 1, 20))
        cause, now = cause_of(error), time.time()
        text = reason_text(role, cause, f.failures, now + delay)
        self.log(logs.warning(f"goal {goal}: {text}"))
        if (cause != f.cause or now - f.written >= REFRESH) and self._write(goal, role, text):
            f.cause, f.written = cause, now
        return delay

    def succeeded(self, goal: str, role: str) -> None:
        """`role` did its job for `goal`: a failure its record shows (from this daemon, or from an
        earlier one) is taken off."""
        f = self.failing.pop((goal, role), None)
        rec = self.board.records().get(goal)
        if rec is None or not (rec.reason or "").startswith(prefix(role)):
            return
        self.log(f"goal {goal}: the {role} works again" + (f" after {f.failures} failure(s)" if f else ""))
        self._write(goal, role, None)

    def _write(self, goal: str, role: str, reason: str | None) -> bool:
        def change(current, state):
            if current is None or current.status != "active":
                return None
            if reason is None and not (current.reason or "").startswith(prefix(role)):
                return None  # somebody else's reason now: not this role's to take off
            return current.replace(reason=reason)

        said = f"{role} failing" if reason else f"{role} works again"
        try:
            self.board.update_goal(goal, change, f"goal {goal}: {said}")
            return True
        except GitswarmError as e:  # the hub out of reach: the log said it; the next failure tries again
            self.log(logs.error(f"goal {goal}: cannot write why it waits: {e}"))
            return False
