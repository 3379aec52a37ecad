"""Landing with a test (`land: direct`, a goal with a `test:` command): a test that runs on a tip
main has left is killed at once.

Watch. While the test runs, `MainWatch` asks the hub for main's tip (`git ls-remote`: one round
trip, no objects) at most every `POLL` seconds; when main moved past the tip under test, the
test is killed (run_killable ends it whole) and is neither a pass nor a failure.
"""

from __future__ import annotations

import threading
from typing import Callable

from ..errors import GitswarmError

POLL = 1.0  # seconds between two looks at the hub's main while a test runs


class MainWatch:
    """Watches the hub's main while a command runs on `tip`: `is_set()` (what run_killable polls,
    as it polls an Event) turns true when `stop` is set or main moved past `tip` (`moved`: the new
    tip). `ask()` gives the hub's main tip; a failed look (the hub out of reach) is not a move."""

    def __init__(self, tip: str, ask: Callable[[], str | None], stop: threading.Event, poll: float = POLL):
        self.tip, self.ask, self.stop, self.poll = tip, ask, stop, poll
        self.moved: str | None = None
        self._done = threading.Event()

    def is_set(self) -> bool:
        return self.stop.is_set() or self.moved is not None

    def __enter__(self) -> "MainWatch":
        threading.Thread(target=self._run, name="main-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()  # the thread ends at once, or after the look it is taking

    def _run(self) -> None:
        while not self._done.wait(self.poll):
            try:
                now = self.ask()
            except GitswarmError:
                continue
            if now is not None and now != self.tip:
                self.moved = now
                return
