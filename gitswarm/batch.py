"""A batch of the landing train: queued tasks' commits replayed onto a base, one commit per task,
and the trailer that says its tip passed the test. In memory, with pygit2: no worktree, no push."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from . import landing
from .goal import Goal
from .queue import TESTED
from .task import Task


@dataclass
class Batch:
    """Queued tasks replayed onto `base` (main's tip, or the batch before it in test): `commits`,
    one per task, end at `tip`, whose tree is what the test runs on."""
    number: int
    goal: Goal
    base: str
    tasks: list[Task]
    commits: list[str]
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    passed: bool | None = None  # None: not yet known (or cancelled)
    output: str = ""
    seconds: float = 0.0

    @property
    def tip(self) -> str:
        return self.commits[-1]


def one_commit(repo, commit: str, tip: str) -> str | None:
    """The work of `commit` (its commits since it left main) as one commit on `tip`, its message
    and author kept; None at a conflict. A commit made right on `tip` is taken as it is."""
    import pygit2

    c = repo[commit]
    if [str(p) for p in c.parent_ids] == [tip]:
        return commit
    replayed = landing.replay_onto(repo, commit, tip)
    if replayed is None:
        return None
    committer = pygit2.Signature(c.committer.name, c.committer.email)
    return str(repo.create_commit(None, c.author, committer, c.message, repo[replayed].tree.id, [repo[tip].id]))


def stamp(repo, commit: str, tested: str) -> str:
    """`commit` again (same tree, parents, author), its trailers ending with `Gitswarm-Tested:
    <tested>`: what `git log main` shows of the test that tip passed."""
    last = repo[commit]
    message = last.message.rstrip("\n") + f"\n{TESTED}: {tested}\n"
    return str(repo.create_commit(None, last.author, last.committer, message, last.tree_id, last.parent_ids))
