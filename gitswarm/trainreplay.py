"""The landing train's replay: the queued tasks' handed-off commits, fetched from their land refs
into the mirror, replayed one commit each onto a base (main's tip, or the batch before it in
test). A commit that is missing, already on main, changes what its goal may not change, or does
not replay onto main goes back to a worker. In memory, with pygit2: no worktree, no push."""

from __future__ import annotations

from typing import Callable

from . import git, names
from .batch import one_commit
from .board import Board
from .errors import GitError, GitswarmError
from .goal import Goal
from .task import Task
from .workrules import check_may_change

GiveBack = Callable[[Task, str, bool], None]  # (task, reason, rejected): the train gives it back


def replay(board: Board, tasks: list[Task], base: str, goal: Goal, speculative: bool,
           give_back: GiveBack) -> tuple[list[Task], list[str]]:
    """Replay the tasks' commits onto `base`, one commit each: the tasks kept and their commits.
    Those that do not replay go back to a worker (on main's own tip; on a speculative base they
    wait for the next batch)."""
    repo = board.mirror.repo
    fetch(board, tasks)
    kept, commits, tip = [], [], base
    for t in tasks:
        handed = t.result["commit"] if t.result else ""
        try:
            if handed not in repo:
                raise GitswarmError(f"its commit {handed[:10]} is not on the hub ({names.LAND}{t.id}/...)")
            if tip == handed or repo.descendant_of(tip, handed):
                raise GitswarmError(f"its commit {handed[:10]} is already on main")
            since = repo.merge_base(handed, base)
            check_may_change(git.changed_paths(repo, str(since) if since else None, handed), t.id, "the work",
                             goal.path, goal.may_change)
        except GitswarmError as e:
            give_back(t, f"the train cannot land it: {e.message}", True)
            continue
        replayed = one_commit(repo, handed, tip)
        if replayed is None:
            if not speculative:
                give_back(t, f"its commit {handed[:10]} does not replay onto main at {base[:10]} (a "
                          "conflict with work landed since): redo it on the new main", False)
            continue
        kept.append(t)
        commits.append(replayed)
        tip = replayed
    return kept, commits


def fetch(board: Board, tasks: list[Task]) -> None:
    """Bring the tasks' handed-off commits from their land refs into the mirror."""
    repo = board.mirror.repo
    wanted = [names.land_ref(t.id, t.attempts) for t in tasks if t.result and t.result["commit"] not in repo]
    try:
        board.mirror.fetch_refs(wanted)
    except GitError:  # one missing ref fails the whole fetch: fetch those that exist
        there = board.mirror.remote_refs(names.LAND + "*")
        board.mirror.fetch_refs([r for r in wanted if r in there])
