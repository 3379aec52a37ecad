"""Where a landing goes on its branch: on the tip as it is, or replayed onto a tip that moved.

A worker commits on main's tip as it fetched it. When main moved since (other landings), the
commit would be refused as a non-fast-forward. Instead of a round trip through the worker (fetch,
`git rebase`, land again), the board may replay the commit in memory on the tip it knows: a
three-way merge of trees per commit, as `git rebase` does, refused at the first conflict. The
worker allows that only when nothing has to run on the result (its goal has no test command), so
the replayed work is what a clean `git rebase` would have given it. Every commit is replayed, its
message and trailers kept, even one whose change the tip already has (it lands empty): nothing is
skipped as already applied, and work already on the branch is never landed again as a task's own.
"""

from __future__ import annotations

from . import git
from .errors import BranchMoved, GitswarmError


def place(repo, commit: str, branch: str, tip: str | None, replay: bool) -> str:
    """The commit to push to `branch` for work `commit`, given the branch's tip as we know it (the
    hub's is that or a descendant: branches only move forward). Raises BranchMoved when the work
    does not build on `tip` and may not, or cannot, be replayed onto it; GitswarmError when `commit`
    is already on the branch: there is nothing of the work's own to land (a replay would give the
    tip itself, and the task would be done with commits of others)."""
    if tip is not None and (tip == commit or repo.descendant_of(tip, commit)):
        raise GitswarmError(f"commit {commit[:10]} is already on {branch} (at {tip[:10]}): it holds no new work "
                            "to land", "land the task's own commit (its Gitswarm-Task trailer names the task), "
                            "made on the tip or rebased onto it")
    if tip is None or repo.descendant_of(commit, tip):
        return commit  # builds on the tip we know, or on a newer one: git decides
    if replay:
        replayed = replay_onto(repo, commit, tip)
        if replayed is not None:
            return replayed
    raise BranchMoved(branch)


def replay_onto(repo, commit: str, onto: str) -> str | None:
    """Replay the commits of `commit` since its merge base with `onto` on top of `onto`
    (git.replay_onto); the new tip, or None at a conflict or a merge commit."""
    replayed = git.replay_onto(repo, commit, onto)
    return replayed[0] if replayed else None
