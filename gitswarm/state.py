"""The board as one batch of changes sees it: tasks and goal records by id, changed as requests
apply, and which open tasks are ready, in order. Pure: no git."""

from __future__ import annotations

import bisect
import heapq
import math
import random
import time
from typing import Iterable, Iterator

from . import attempts
from . import task as T
from .errors import GitswarmError
from .record import GoalRecord
from .task import Task

Key = tuple[int, str, str]


def order(t: Task) -> Key:
    """Where a task stands in the claim order: priority (higher first), then age, then id. None of
    these ever changes once the task exists."""
    return (-t.priority, t.age, t.id)


class OpenQueue:
    """The open tasks in claim order, kept sorted as tasks change (a bisect per change), so that
    finding the next ready task walks from the front instead of sorting the whole board."""

    def __init__(self, tasks: Iterable[Task] = ()):
        self._keys: list[Key] = sorted(order(t) for t in tasks if t.status == "open")

    def update(self, old: Task | None, new: Task | None) -> None:
        """A task changed from `old` to `new` (None: it did not exist)."""
        was, now = old is not None and old.status == "open", new is not None and new.status == "open"
        if was and not now:
            assert old is not None
            key = order(old)
            i = bisect.bisect_left(self._keys, key)
            if i < len(self._keys) and self._keys[i] == key:
                del self._keys[i]
        elif now and not was:
            assert new is not None
            key = order(new)
            i = bisect.bisect_left(self._keys, key)
            if i == len(self._keys) or self._keys[i] != key:
                self._keys.insert(i, key)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)


class State:
    """The board as one batch attempt sees it: tasks and goal records by id, changed as requests
    apply (`put`). `queue` holds the open tasks of `tasks` in claim order (built when not given)."""

    def __init__(self, tasks: dict[str, Task], records: dict[str, GoalRecord], retry_backoff: float = 0.0,
                 queue: OpenQueue | None = None, heads: dict[str, str] | None = None):
        self.retry_backoff = retry_backoff
        self.tasks = dict(tasks)
        self.records = dict(records)
        self.heads = dict(heads or {})  # refs/heads/<branch> -> the tip landings of this batch go on
        self.changed: dict[str, Task] = {}  # what this batch changed: put() since the state was made
        self._queue = queue

    def put(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.changed[task.id] = task

    def goal_open(self, name: str | None) -> bool:
        """May tasks of this goal be claimed? Not once the goal is done, stopped or invalid."""
        record = self.records.get(name) if name else None
        return record is None or record.status == "active"

    def get(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise GitswarmError(f"no task {task_id} on the board",
                                "list the tasks with `gitswarm status`") from None

    def next_ready(self, kinds: Iterable[str] | None, goal: str | None, spread: int = 1) -> Task | None:
        """The first ready task in claim order (of these kinds, of this goal); with `spread` > 1,
        one of the first `spread` ready tasks of the first one's priority, at random: claimers in
        several processes, all seeing the same first task, then mostly claim different ones
        (groupcommit's `spread`). Walks the open tasks from the front, merged with those this batch
        opened: its cost follows how many open tasks wait ahead of those, not the size of the board."""
        if self._queue is None:
            self._queue = OpenQueue(self.tasks.values())
        opened = sorted(order(t) for t in self.changed.values() if t.status == "open")
        now = time.time()
        found: list[Task] = []
        for priority, _, task_id in heapq.merge(self._queue, opened):
            if found and (priority != -found[0].priority or len(found) >= spread):
                break
            t = self.tasks[task_id]
            if t.status == "open" and (kinds is None or t.kind in kinds) and (goal is None or t.goal == goal) \
                    and self.goal_open(t.goal) and is_ready(t, self.tasks, self.retry_backoff, now):
                found.append(t)
        return random.choice(found) if found else None


def is_ready(t: Task, by_id: dict[str, Task], retry_backoff: float, now: float) -> bool:
    """Open, its dependencies all done, its best-of-N attempts (gitswarm/attempts.py) ended, and
    rested: a task whose last attempt ended (it has a result) waits retry_backoff * 2^(attempts-1)
    (at most an hour) after that."""
    if t.status != "open" or not all(d in by_id and by_id[d].status == "done" for d in t.depends_on):
        return False
    if rested_at(t, retry_backoff) > now:
        return False
    first = by_id.get(t.id + "-a1")  # split into best of N's attempts? (one look-up; the rest only then)
    return first is None or first.parent != t.id or not attempts.waiting(t, by_id)


def ready(tasks: Iterable[Task], by_id: dict[str, Task], retry_backoff: float = 0.0,
          now: float | None = None) -> list[Task]:
    """Open tasks whose dependencies are all done: by priority (higher first), then age. A task
    whose last attempt ended (it has a result) waits retry_backoff * 2^(attempts-1) after that."""
    now = time.time() if now is None else now
    found = [t for t in tasks if is_ready(t, by_id, retry_backoff, now)]
    found.sort(key=order)
    return found


def rested_at(t: Task, retry_backoff: float) -> float:
    """When a task may be tried again: retry_backoff * 2^(attempts-1) after its last attempt ended
    (0: at once; so too when result.at is further ahead of this clock than MAX_SKEW)."""
    if not t.result or not retry_backoff or "at" not in t.result:
        return 0.0
    try:
        ended = T.timestamp(t.result["at"])
    except (ValueError, TypeError, AttributeError):  # a record that never passed parse (task.parse
        return math.inf  # refuses such a time): that task waits, the others go on
    if ended > time.time() + T.MAX_SKEW:  # a stamp from the future says nothing: rested
        return 0.0
    return ended + min(3600.0, retry_backoff * 2 ** max(0, t.attempts - 1))


def next_rested(tasks: Iterable[Task], retry_backoff: float, now: float | None = None) -> float | None:
    """The earliest time after now when an open task ends its rest; None if none is resting."""
    now = time.time() if now is None else now
    times = [r for t in tasks if t.status == "open" and now < (r := rested_at(t, retry_backoff)) < math.inf]
    return min(times, default=None)
