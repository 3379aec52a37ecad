"""The worker's side of the landing train (`land: train`, gitswarm/train.py): a job does its task
and hands the commit to the hub's landing queue instead of testing and landing it, and is free at
once. A task the train gave back (rejected: its commit broke the tests; sent back: it no longer
replays on main) starts its next attempt from the commit it handed off then, kept at its land ref."""

from __future__ import annotations

from pathlib import Path

from .. import checkout, names
from ..goal import Goal

KEPT_NOTE = """

An earlier attempt at this task was handed to the landing train, which gave it back: {why}. Its work
is applied in your working tree (uncommitted). Check it against the goal's test command and fix what
fails; finish when the task is done."""


class HandOff:
    """Mixed into the worker's Job (roles/worker.py), whose agent, test, commit checks and pushes
    it uses."""

    def _hand_off(self, worktree: Path, goal: Goal, tip: str) -> None:
        """Do the task and hand its commit to the landing queue (the train tests and lands it):
        the worker is free for its next task at once. A task the train gave back starts from the
        work it handed off then."""
        board, task = self.swarm.board, self.task
        kept = self._restore_kept(worktree, tip)
        note = KEPT_NOTE.format(why="its commit broke the tests or no longer applied on main") if kept else ""
        result = self._finished(self._agent(worktree, goal, tip, note=note))
        if goal.pretest:
            self._test(worktree, goal, None)
        commit = self._commit(worktree, goal, tip, result)
        if commit is None:
            self._nothing_to_change(result.summary or "nothing to change")
            return
        self._may_land(commit, tip, goal)

        def hand_off() -> None:
            board.handoff(task.id, self.name, commit, result.summary or task.title, token=self.token,
                          tokens=self.tokens, cost=self.cost)
            self.swarm.log(f"{self.name}: {task.id} handed {commit[:10]} to the landing queue")
        self._until_answered(f"hand {task.id} off", hand_off)
        self.outcome = f"handed off: {commit[:10]} to the landing queue"

    def _restore_kept(self, worktree: Path, tip: str) -> str | None:
        """The commit of this task's last attempt that the train gave back (kept at its land ref),
        applied to the worktree on `tip` as uncommitted changes (one commit for the task in the
        end); None when there is none, or when it no longer applies (the task starts afresh)."""
        task, mirror = self.task, self.swarm.board.mirror
        if task.attempts <= 1:
            return None
        refs = mirror.remote_refs(f"{names.LAND}{task.id}/*")
        older = sorted((parsed[1], ref) for ref in refs if (parsed := names.parse_land_ref(ref))
                       and parsed[0] == task.id and parsed[1] < task.attempts)
        if not older:
            return None
        ref = older[-1][1]
        mirror.fetch_refs([ref])
        kept = refs[ref]
        if not self._own(kept, tip):
            return None
        checkout.reset_hard(mirror.path, worktree, kept)
        if checkout.rebase(mirror.path, worktree, tip):
            checkout.abort_rebase(mirror.path, worktree)
            checkout.reset_hard(mirror.path, worktree, tip)
            self.swarm.log(f"{self.name}: {task.id}'s earlier work ({kept[:10]}) conflicts with main; starting afresh")
            return None
        checkout.reset_soft(mirror.path, worktree, tip)
        self.swarm.log(f"{self.name}: {task.id} starts from its earlier work ({kept[:10]}), given back by the train")
        return kept
