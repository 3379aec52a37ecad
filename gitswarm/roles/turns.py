"""Landing in turns (`land: direct`, a goal with a `test:` command): the workers of one process
land one at a time, oldest first, and a test that runs on a tip main has left is killed at once.

Order. A worker whose commit is ready to land takes a ticket (`Turns.ticket`): tickets go in the
order workers became ready, so the lowest ticket is the task that has waited longest to land.
The lowest ticket waiting gets the turn (`Turns.take`): it rebases onto main's tip, runs the test
there and lands, then gives the turn back. The others wait instead of testing on a tip that is
about to move: within one process, a landed task's test runs once. Not the claim order: a task
claimed early may still be with its agent, and the turn can only go to work that is ready; among
those waiting, the first ready has waited longest. A worker that must redo its task on the new
tip (a conflict) steps out of the turn while its agent works and keeps its ticket: ready again,
it is first in line. Across processes (other `serve`s or `gitswarm worker` pools) there is no
order: the turn holders of each race through git, and the loser rebases and tests again.

Watch. While the test runs, `MainWatch` asks the hub for main's tip (`git ls-remote`: one round
trip, no objects) at most every `POLL` seconds; when main moved past the tip under test, the
test is killed (run_killable ends it whole) and is neither a pass nor a failure.

Giving up. A lost race counts against the task only when the pushes that moved main landed no
task (`landed_a_task`): a race lost to another task's landing is progress of the swarm, and a
task is never failed "main kept moving" for being unlucky among landings.
"""

from __future__ import annotations

import threading
from typing import Callable

from ..errors import GitswarmError
from ..rules import parse_trailers

POLL = 1.0  # seconds between two looks at the hub's main while a test runs
WAIT_LOOK = 0.5  # seconds between two looks at the swarm's stop while waiting for the turn


class Turns:
    """Whose turn it is to land among the workers of one process (one per Swarm)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: set[int] = set()
        self._holder: int | None = None
        self._issued = 0

    def ticket(self) -> tuple[int, int]:
        """A new ticket, and how many earlier tickets are waiting or hold the turn now."""
        with self._cond:
            self._issued += 1
            return self._issued, len(self._waiting) + (self._holder is not None)

    def take(self, ticket: int, stop: threading.Event) -> bool:
        """Wait until nobody holds the turn and `ticket` is the lowest waiting; hold the turn.
        False (holding nothing) when `stop` was set first."""
        with self._cond:
            self._waiting.add(ticket)
            try:
                while self._holder is not None or ticket != min(self._waiting):
                    if stop.is_set():
                        return False
                    self._cond.wait(WAIT_LOOK)
            finally:
                self._waiting.discard(ticket)
            self._holder = ticket
            return True

    def give_back(self, ticket: int) -> None:
        with self._cond:
            if self._holder == ticket:
                self._holder = None
                self._cond.notify_all()


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


def landed_a_task(repo, old: str, new: str, limit: int = 1000) -> bool:
    """Some commit on `new` that is not on `old` lands a task (its Gitswarm-Task trailer names
    one); with more than `limit` commits to look at, True (main is busy, not stuck)."""
    import pygit2

    walker = repo.walk(new, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.hide(old)
    for n, commit in enumerate(walker):
        if n >= limit or parse_trailers(commit.message).tasks:
            return True
    return False
