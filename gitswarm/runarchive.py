"""The runs records of ended tasks, folded into one ref on the hub.

Each attempt's record is pushed as a ref of its own (gitswarm/runlog.py), and every push a hub
takes advertises all of its refs to the pusher (receive-pack has no ref filter): with 100,000
runs refs a push took 335 ms against 18 ms with none (measured on this machine, plain `git push`,
no hooks). So the hub's own daemon folds the records of tasks that ended (done, dead, cancelled)
into ARCHIVE, one commit per fold on top of the last, whose tree holds each record's tree at
`<xx>/<task>/<attempt>/` (xx: the task id's first two characters after `t-`, as on the board), and
deletes their refs in the same ref transaction: nothing is lost, nothing is kept twice, and the
hub holds about as many runs refs as attempts of tasks still going or ended in the last
FOLD_AFTER seconds (a fresh record is read at its own ref first). Pushes never write the
archive (the guard refuses it). Read it with `gitswarm runs` or
`git show refs/gitswarm/archive/runs:4f/t-4f2a91bc/1/1/stdout.txt`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import git
from .names import ARCHIVE, RUNS, parse_runs_ref
from .statuses import FINAL
from .task import timestamp

if TYPE_CHECKING:
    from .board import Board

MOST = 2000  # records folded in one pass: the rest wait for the next
FOLD_AFTER = 300.0  # seconds after its task ended that a record is folded


def folder(task_id: str, attempt: int | None = None) -> str:
    """Where a task's records (or one attempt's) sit in the archive's tree."""
    base = f"{task_id[2:4]}/{task_id}"
    return base if attempt is None else f"{base}/{attempt}"


def fold(hub: Path, board: "Board", log: Callable[[str], None], after: float = FOLD_AFTER) -> int:
    """Fold the runs refs of ended tasks into the archive, in the hub itself (`serve`'s own pass);
    how many were folded. Only tasks that ended `after` seconds ago or more. A ref that moved meanwhile (it never should) fails the whole transaction,
    which the next pass tries again."""
    listed = git.run(["for-each-ref", "--format=%(objectname) %(refname)", RUNS], cwd=hub).stdout
    chosen: dict[str, tuple[str, str, int]] = {}
    for line in listed.decode().splitlines():
        sha, ref = line.split(" ", 1)
        parsed = parse_runs_ref(ref)
        t = board.find(parsed[0]) if parsed else None
        if parsed is not None and t is not None and t.status in FINAL and len(chosen) < MOST \
                and _ended_before(t, time.time() - after):  # a failed task may be retried: its records stay live
            chosen[ref] = (sha, *parsed)
    if not chosen:
        return 0
    repo = git.open_repository(hub)
    try:
        old = git.run(["rev-parse", "-q", "--verify", ARCHIVE], cwd=hub, check=False).stdout.decode().strip()
        folders = {folder(task_id, n): str(repo[sha].tree_id) for sha, task_id, n in chosen.values()}
        tasks = len({task_id for _, task_id, _ in chosen.values()})
        new = git.graft_commit(repo, old or None, folders, f"Fold the runs of {len(chosen)} attempt(s) of {tasks} "
                               f"ended task(s) into the archive\n", ("gitswarm", "gitswarm@hub"))
    finally:
        repo.free()
    script = f"update {ARCHIVE} {new} {old or git.ZERO}\n" + "".join(
        f"delete {ref} {sha}\n" for ref, (sha, _, _) in chosen.items())
    git.run(["update-ref", "--stdin"], cwd=hub, input=script.encode())  # all or nothing
    log(f"folded the runs of {len(chosen)} attempt(s) of {tasks} ended task(s) into {ARCHIVE}")
    return len(chosen)


def _ended_before(task, when: float) -> bool:
    try:
        return timestamp(str((task.result or {}).get("at"))) <= when
    except (TypeError, ValueError):
        return True  # no readable end time: old enough
