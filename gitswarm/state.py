"""The board as one batch of changes sees it: tasks and goal records by id, changed as requests
apply, and which open tasks are ready, in order. Pure: no git."""

from __future__ import annotations

import time
from typing import Iterable

from . import task as T
from .errors import GitswarmError
from .record import GoalRecord
from .task import Task


class State:
    """The board as one batch attempt sees it: tasks by id and goal records by name, changed as
    requests apply."""

    def __init__(self, tasks: dict[str, Task], records: dict[str, GoalRecord], retry_backoff: float = 0.0,
                 heads: dict[str, str] | None = None):
        self.retry_backoff = retry_backoff
        self.tasks = dict(tasks)
        self.records = dict(records)
        self.heads = dict(heads or {})  # refs/heads/<branch> -> the tip landings of this batch go on
        self._ready: list[Task] | None = None

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

    def next_ready(self, kinds: Iterable[str] | None, goal: str | None) -> Task | None:
        if self._ready is None:
            self._ready = ready(self.tasks.values(), self.tasks, self.retry_backoff)
        for t in self._ready:
            current = self.tasks[t.id]
            if current.status == "open" and (kinds is None or t.kind in kinds) \
                    and (goal is None or t.goal == goal) and self.goal_open(t.goal):
                return current
        return None


def ready(tasks: Iterable[Task], by_id: dict[str, Task], retry_backoff: float = 0.0,
          now: float | None = None) -> list[Task]:
    """Open tasks whose dependencies are all done: by priority (higher first), then age. A task
    whose last attempt ended (it has a result) waits retry_backoff * 2^(attempts-1) after that."""
    now = time.time() if now is None else now

    def deps_done(t: Task) -> bool:
        return all(d in by_id and by_id[d].status == "done" for d in t.depends_on)

    def rested(t: Task) -> bool:
        if not t.result or not retry_backoff or "at" not in t.result:
            return True
        wait = min(3600.0, retry_backoff * 2 ** max(0, t.attempts - 1))
        return T.timestamp(t.result["at"]) + wait <= now

    found = [t for t in tasks if t.status == "open" and deps_done(t) and rested(t)]
    found.sort(key=lambda t: (-t.priority, t.age, t.id))
    return found
