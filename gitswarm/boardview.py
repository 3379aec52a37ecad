"""The board as this process knows it: the hub's `tasks` branch as last fetched or pushed (its tip,
tasks, goal records, the open tasks in claim order, the files that do not parse) and the tips of
the other branches landings go on. The Board (gitswarm/board.py) reads it; its group commit
(gitswarm/groupcommit.py) builds each batch on it and moves it forward when a push lands.

It changes only under the board's lock (the caller holds it), except fetch_branch, which touches
only the other branches' tips.
"""

from __future__ import annotations

import threading
from pathlib import Path

from . import git, names, record, snapshot
from . import task as T
from .errors import GitswarmError, TaskInvalid
from .gitmirror import Mirror
from .record import GoalRecord
from .state import OpenQueue, State
from .task import Task

MAINTAIN_EVERY = 200  # moves of the tip between two `git gc --auto` checks of the local mirror
REOPEN_EVERY = 20  # moves of the tip between two fresh libgit2 handles on it (drops libgit2's caches)


class BoardView:
    def __init__(self, mirror: Mirror, retry_backoff: float = 0.0):
        self.mirror = mirror
        self.retry_backoff = retry_backoff  # seconds before a task whose attempt ended is ready again
        self.tip: str | None = None
        self.tasks: dict[str, Task] = {}
        self.records: dict[str, GoalRecord] = {}
        self.queue = OpenQueue()  # the open tasks at self.tip in claim order
        self.problems: list[str] = []  # files on the board that do not parse (a board pushed unguarded)
        self.heads: dict[str, str] = {}  # refs/heads/<branch> -> its tip as last fetched or pushed
        self._fetching = threading.Lock()  # one fetch of a branch besides tasks at a time (same local ref)
        self.parsed = 0  # files this view parsed
        self.unsaved = 0  # changes since the board was last saved beside the mirror (snapshot)
        self.maintain_every = MAINTAIN_EVERY
        self.reopen_every = REOPEN_EVERY
        self._moves = 0  # how often the tip moved (fetched or pushed): the mirror's maintenance clock

    def state(self) -> State:
        """A batch's starting point: the board at the tip, to change in memory."""
        return State(self.tasks, self.records, self.retry_backoff, self.queue, heads=self.heads)

    def refresh(self, also: list[str] | tuple[str, ...] = ()) -> None:
        """Fetch tasks (and the refs `also` names, in the same fetch); parse only the files that
        changed since the tip we knew (or, the first time, start from the snapshot saved beside
        the mirror)."""
        remote = self.mirror.remote
        tip = self.mirror.fetch(names.BOARD_BRANCH, also)
        if tip is None:
            here = "" if "://" not in remote and Path(remote).exists() else " on the machine that holds it"
            raise GitswarmError(f"{remote} has no tasks branch: it is not a gitswarm hub",
                                f"run `gitswarm init {remote}`{here} to make it one, or give the hub")
        if tip == self.tip:
            return
        repo = self.mirror.repo
        if self.tip is None:
            self._load_snapshot()
        if self.tip == tip:
            return
        if self.tip is None:
            tasks, records, problems = {}, {}, []
            files = [(p, d) for folder in ("tasks", "goals") for p, _, d in git.tree_files(repo, tip, folder)]
        else:
            tasks, records, problems = dict(self.tasks), dict(self.records), list(self.problems)
            files = [(p, d) for p, d in git.changed_files(repo, self.tip, tip) if d is not None]
        for path, data in files:
            _load(tasks, records, problems, path, data)
        self.parsed += len(files)
        self.unsaved += len(files)
        if self.tip is None:
            self.queue = OpenQueue(tasks.values())
        else:
            for task_id in {T.id_from_path(p) for p, _ in files} - {None}:
                self.queue.update(self.tasks.get(task_id), tasks.get(task_id))
        self.tasks, self.records, self.problems, self.tip = tasks, records, problems, tip
        self._maintain()

    def pushed(self, chain: str | None, state: State, updates: dict[str, str]) -> None:
        """The hub took our push: `chain` (built on `state`) is the tip, and the branches of
        `updates` are where we pushed them."""
        for t in state.changed.values():
            self.queue.update(self.tasks.get(t.id), t)
        self.unsaved += len(state.changed)
        self.tip, self.tasks, self.records = chain, state.tasks, state.records
        self._maintain()
        self.heads.update({ref: sha for ref, sha in updates.items()
                           if ref.startswith(names.HEADS) and ref != names.BOARD})

    def fetch_branch(self, branch: str = "main") -> str | None:
        """Fetch a branch of the hub into the local mirror; its tip, or None when it has none.
        Needs no lock: it touches neither tasks nor the snapshot."""
        with self._fetching:
            tip = self.mirror.fetch(branch)
            ref = names.branch_ref(branch)
            known = self.heads.get(ref)
            if tip is not None and (known is None or known == tip or self.mirror.repo.descendant_of(tip, known)):
                self.heads[ref] = tip  # never back: a batch may have pushed past what this fetch saw
            return tip

    def save(self) -> None:
        """Save the board beside the mirror when enough changed since: the next fresh client
        parses only what changed after this."""
        if self.tip is not None and self.unsaved >= max(500, len(self.tasks) // 20):
            try:
                snapshot.save(self.mirror.path, snapshot.Snapshot(self.tip, self.tasks, self.records, self.problems))
            except OSError:
                pass

    def _maintain(self) -> None:
        """Every maintain_every moves of the tip (fetched or pushed), `git gc --auto` on the mirror:
        it packs the loose objects and merges the small packs that fetches and our commits leave.
        Every reopen_every moves, a fresh libgit2 handle (its caches bounded; about 0.5 ms)."""
        self._moves += 1
        if self._moves % self.maintain_every == 0:
            self.mirror.maintain()
        elif self._moves % self.reopen_every == 0:
            self.mirror.reopen()

    def _load_snapshot(self) -> None:
        """Start from the board as some client of this mirror last saved it, when its commit is here."""
        snap = snapshot.load(self.mirror.path)
        if snap is not None and snap.tip in self.mirror.repo:
            self.tasks, self.records, self.problems, self.tip = snap.tasks, snap.records, snap.problems, snap.tip
            self.queue = OpenQueue(snap.tasks.values())


def _load(tasks: dict[str, Task], records: dict[str, GoalRecord], problems: list[str], path: str,
          data: bytes) -> None:
    try:
        if T.id_from_path(path) is not None:
            t = T.parse(data, path)
            tasks[t.id] = t
        elif record.name_from_path(path) is not None:
            r = record.parse(data, path)
            records[r.name] = r
    except TaskInvalid as e:
        problems.append(str(e))
