"""The runs records and best of N's attempts of ended tasks, folded into archive refs on the hub.

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

Best of N's attempts refs (`refs/gitswarm/attempts/<task>/<k>`, gitswarm/attempts.py) are folded
the same way, by the same code (`fold(..., ATTEMPTS_FOLD)`), into ATTEMPTS_ARCHIVE once `<task>`
ended: their folder holds `tree`, the attempt commit's tree, and `commit`, the commit object's raw
bytes (git.commit_tree), from which `git hash-object -t commit -w --stdin` makes the very same
commit again. Until the task ends its attempts stay live refs, which the selection reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import git
from .errors import GitError
from .logs import error
from .names import ARCHIVE, ATTEMPTS, ATTEMPTS_ARCHIVE, RUNS, parse_attempts_ref, parse_runs_ref
from .statuses import FINAL
from .task import timestamp

if TYPE_CHECKING:
    from .board import Board

MOST = 2000  # refs folded in one pass (of each kind): the rest wait for the next
FOLD_AFTER = 300.0  # seconds after its task ended that a ref is folded


@dataclass(frozen=True)
class Folding:
    """One kind of refs folded into an archive ref: refs named `<live><task>/<n>`."""

    live: str  # the namespace of the live refs
    archive: str  # the ref they are folded into
    parse: Callable[[str], tuple[str, int] | None]  # a live ref's (task id, n); None: not one
    folder_tree: Callable[[object, str], str]  # (repo, the ref's commit) -> the tree kept at its folder
    what: str  # what a ref keeps of an attempt, in messages


RUNS_FOLD = Folding(RUNS, ARCHIVE, parse_runs_ref, git.tree_of, "the runs")
ATTEMPTS_FOLD = Folding(ATTEMPTS, ATTEMPTS_ARCHIVE, parse_attempts_ref, git.commit_tree, "the commits")
FOLDS = (RUNS_FOLD, ATTEMPTS_FOLD)  # what the daemon's pass folds, each on its own


def folder(task_id: str, attempt: int | None = None) -> str:
    """Where a task's records (or one attempt's) sit in an archive's tree."""
    base = f"{task_id[2:4]}/{task_id}"
    return base if attempt is None else f"{base}/{attempt}"


def fold(hub: Path, board: "Board", log: Callable[[str], None], after: float | None = None,
         kind: Folding = RUNS_FOLD) -> int:
    """Fold the refs of `kind` (the runs records unless told) of ended tasks into its archive, in
    the hub itself (`serve`'s own pass); how many were folded. Only tasks that ended `after`
    (FOLD_AFTER unless told) seconds ago or more. A ref that moved meanwhile (it never should)
    fails the whole transaction, which the next pass tries again. A ref at no commit (written
    around the guard) is left where it is, and said so at each pass."""
    after = FOLD_AFTER if after is None else after
    listed = git.run(["for-each-ref", "--format=%(objectname) %(refname)", kind.live], cwd=hub).stdout
    chosen: dict[str, tuple[str, str, int]] = {}
    for line in listed.decode().splitlines():
        sha, ref = line.split(" ", 1)
        parsed = kind.parse(ref)
        t = board.find(parsed[0]) if parsed else None
        if parsed is not None and t is not None and t.status in FINAL and len(chosen) < MOST \
                and _ended_before(t, time.time() - after):  # a failed task may be retried: its refs stay live
            chosen[ref] = (sha, *parsed)
    if not chosen:
        return 0
    repo = git.open_repository(hub)
    try:
        old = git.run(["rev-parse", "-q", "--verify", kind.archive], cwd=hub, check=False).stdout.decode().strip()
        folders = {}
        for ref, (sha, task_id, n) in list(chosen.items()):
            try:
                folders[folder(task_id, n)] = kind.folder_tree(repo, sha)
            except GitError as e:
                del chosen[ref]
                log(error(f"{ref}: not folded into {kind.archive}: {e} (no push can put it there): see it "
                          f"with `git show {ref}` in the hub, drop it with `git update-ref -d {ref}`"))
        if not chosen:
            return 0
        tasks = len({task_id for _, task_id, _ in chosen.values()})
        what = f"{kind.what} of {len(chosen)} attempt(s) of {tasks} ended task(s)"
        new = git.graft_commit(repo, old or None, folders, f"Fold {what} into the archive\n",
                               ("gitswarm", "gitswarm@hub"))
    finally:
        repo.free()
    script = f"update {kind.archive} {new} {old or git.ZERO}\n" + "".join(
        f"delete {ref} {sha}\n" for ref, (sha, _, _) in chosen.items())
    git.run(["update-ref", "--stdin"], cwd=hub, input=script.encode())  # all or nothing
    log(f"folded {what} into {kind.archive}")
    return len(chosen)


def _ended_before(task, when: float) -> bool:
    try:
        return timestamp(str((task.result or {}).get("at"))) <= when
    except (TypeError, ValueError):
        return True  # no readable end time: old enough
