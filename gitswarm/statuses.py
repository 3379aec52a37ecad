"""A task's statuses and their facts, in one table: what each means, where `gitswarm status` lists
it, whether it has ended, what its result holds, and which actions lead out of it and where.

The rest derives from it: task.py's list of statuses, the transitions rules.py enforces, the order
of `gitswarm status`, the live view and the report. tests/test_statuses.py checks the JSON Schema
(tasks/task.schema.json), docs/board.md and the board's README (tasks/BOARD.md) against it: to add
a status, add it here, then to those three files. Pure: no imports from the package.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    name: str
    meaning: str  # one line: what a task in this status is (docs/board.md's table says the same)
    shown: int  # its place in `gitswarm status`, where held and queued work comes first
    moves: tuple[tuple[str, str], ...]  # (action, the status it leads to): the only ways out
    ended: bool = False  # its result says how the task ended
    result: bool | None = False  # True: a result is required; False: none allowed; None: optional
    needs: tuple[str, ...] = ()  # the keys its result must hold

    @property
    def final(self) -> bool:
        """Nothing leads out of it: the task has ended for good."""
        return not self.moves


# In the order a task lives through them (the schema's order). Each move's action is one of
# rules.ACTIONS; rules.HOLDER_ACTIONS and rules.TRAIN_ACTIONS say who may take it.
TABLE: tuple[Status, ...] = (
    Status("open", "waiting to be claimed", 2,
           (("claim", "claimed"), ("cancel", "cancelled")),
           result=None, needs=("reason",)),  # none, or why its last attempt ended
    Status("claimed", "held by `claim.worker`", 0,
           (("complete", "done"), ("fail", "failed"),
            ("release", "open"), ("reclaim", "open"),  # reclaim: anyone, once the holder's lease has lapsed
            ("reclaim", "dead"),  # ... and the task has used up its attempts
            ("cancel", "cancelled"),
            ("handoff", "landing"))),  # the holder hands its commit to the landing queue
    Status("landing", "handed to the landing queue; the train lands it", 1,
           (("land", "done"),  # the train landed it on main (tested)
            ("reject", "failed"),  # the train found it breaks the tests
            ("return", "open")),  # it does not replay on main: back to a worker, its commit kept
           result=True, needs=("commit", "summary")),
    Status("done", "completed by its holder", 4, (), ended=True, result=True, needs=("summary",)),
    Status("failed", "given up by its holder", 3,
           (("reopen", "open"), ("bury", "dead")), ended=True, result=True, needs=("reason",)),
    Status("dead", "out of attempts: its lease lapsed or it failed `max_attempts` times", 5, (),
           ended=True, result=True, needs=("reason",)),
    Status("cancelled", "withdrawn", 6, (), ended=True, result=True, needs=("reason",)),
)

BY_NAME = {s.name: s for s in TABLE}
STATUSES = tuple(s.name for s in TABLE)
ENDED = tuple(s.name for s in TABLE if s.ended)  # its result says how it ended (a failed task may be retried)
FINAL = tuple(s.name for s in TABLE if s.final)  # ended for good: done, dead, cancelled
SHOWN = tuple(s.name for s in sorted(TABLE, key=lambda s: s.shown))  # the order of `gitswarm status`
# (from, to) -> the actions that may make the move. Nothing else is legal.
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {}
for _s in TABLE:
    for _action, _to in _s.moves:
        TRANSITIONS[(_s.name, _to)] = TRANSITIONS.get((_s.name, _to), ()) + (_action,)
del _s, _action, _to
