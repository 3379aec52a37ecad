"""Best of N: a task done by N independent attempts, one of which a selector lands.

`attempts: N` (or a list of N variants, each a mapping of worker settings: `[{model: a},
{backend: command, command: ...}]`) on a goal's task, on the goal, or in the worker's settings
asks for it. On the board, the attempts are child tasks `<task>-a1` .. `<task>-aN` (kind work,
`parent` the task): each is claimed, leased, retried and reclaimed like any task, so a worker
killed mid-attempt loses only its attempt. An attempt's commit goes to
`refs/gitswarm/attempts/<task>/<k>`, created in the same push as the attempt's completion. The
task itself waits, not ready, while any of its attempts has not ended; then the worker that
claims it selects one (gitswarm/roles/attempt.py) and lands it the normal way.

Pure: names, the spec's validation and the readiness rule. No git, no I/O.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from .names import ID_RE, MAX_ATTEMPTS
from .statuses import FINAL  # an attempt that has ended for good (failed ones are retried)
from .task import Task
_CHILD_RE = re.compile(r"(t-[0-9a-z][0-9a-z-]*[0-9a-z])-a([1-9][0-9]?)\Z")
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

Variants = tuple[Mapping[str, Any], ...]  # one mapping of worker settings per attempt; () or 1: no best of N


def child_id(task_id: str, k: int) -> str | None:
    """The id of attempt `k` of a task; None when it would be longer than an id may be."""
    child = f"{task_id}-a{k}"
    return child if ID_RE.match(child) else None


def attempt_of(task: Task) -> tuple[str, int] | None:
    """(the task it attempts, k) when `task` is an attempt: named `<parent>-a<k>` with that parent."""
    m = _CHILD_RE.match(task.id)
    if m is None or task.parent != m.group(1) or not 1 <= int(m.group(2)) <= MAX_ATTEMPTS:
        return None
    return m.group(1), int(m.group(2))


def children(task_id: str, find: Callable[[str], Task | None]) -> list[Task]:
    """The attempts of a task on the board (`find`: a task by id, or None), in order (none: it has
    not been split)."""
    out = []
    for k in range(1, MAX_ATTEMPTS + 1):
        child = find(f"{task_id}-a{k}")
        if child is None or child.parent != task_id:
            break
        out.append(child)
    return out


def waiting(task: Task, by_id: Mapping[str, Task]) -> bool:
    """A task split into attempts waits while any of them has not ended for good (one dict look-up
    for every other task)."""
    first = by_id.get(f"{task.id}-a1")
    if first is None or first.parent != task.id:
        return False
    return any(c.status not in FINAL for c in children(task.id, by_id.get))


def chosen(*specs: Variants | None) -> Variants:
    """The first spec given (the task's own, the goal's, the worker's settings); () for one attempt."""
    for spec in specs:
        if spec:
            return spec if len(spec) > 1 else ()
    return ()


def score(output: str) -> float | None:
    """The last number a select command printed; None when it printed none."""
    found = _NUMBER_RE.findall(output)
    if not found:
        return None
    try:
        return float(found[-1])
    except ValueError:  # pragma: no cover
        return None


def split_ids(task_id: str, n: int) -> list[str] | None:
    """The ids of a task's n attempts; None when its id is too long to carry the suffix."""
    ids = [child_id(task_id, k) for k in range(1, n + 1)]
    return None if any(i is None for i in ids) else [i for i in ids if i]


def described(tasks: Iterable[Task]) -> str:
    return ", ".join(f"{t.id} {t.status}" for t in tasks)
