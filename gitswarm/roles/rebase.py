"""The worker's rebase turn (mixed into roles/worker.py's Job): main moved under a task's finished
work, so the work is rebased onto main's new tip. A conflict goes to the worker's model with the
conflict prompt (prompts/conflict.md); a command agent, or a selection among best-of-N attempts,
redoes its task on the new tip instead. Work that comes out of the rebase without a commit of the
task's own (a conflict resolved to main's side) is redone too: a task never lands main's tip, or
another task's commit, as its own."""

from __future__ import annotations

from pathlib import Path

from .. import checkout
from ..agents import AgentResult
from ..errors import GitswarmError
from ..goal import Goal
from ..rules import parse_trailers


class Rebase:
    """Mixed into the worker's Job (roles/worker.py), whose agent, commit and turns it uses."""

    def _rebase(self, worktree: Path, goal: Goal | None, tip: str,
                result: AgentResult) -> tuple[str, AgentResult] | None:
        """The task's work on the new tip: (its commit, the agent's `result`, or the redo's), or
        None when, redone there, it changes nothing. The rebase keeps every commit (checkout.rebase);
        a conflict goes to the agent (a command agent redoes its task); and when what comes out is
        not the task's own commit (a conflict resolved to main's side drops it), the task is redone
        on the new tip: it never lands main's tip, or another task's commit, as its own."""
        mirror = self.swarm.board.mirror.path
        conflicts = checkout.rebase(mirror, worktree, tip)
        if conflicts:
            settings = self._settings(tip, goal)
            # a command agent redoes its task on the new tip; a selection applies its winner there again
            if self._run_command(goal) or settings.runs_command or self.selecting:
                self.swarm.log(f"{self.name}: conflict in {', '.join(conflicts)}; redoing {self.task.id} on the new main")
                checkout.abort_rebase(mirror, worktree)
                with self._out_of_turn():
                    return self._redo(worktree, goal, tip)
            self.swarm.log(f"{self.name}: conflict in {', '.join(conflicts)}; resolving")
            prompt = self.swarm.prompt(tip, "conflict", {"task_id": self.task.id, "title": self.task.title,
                                                         "files": "\n".join(f"- {c}" for c in conflicts)})
            with self._out_of_turn():
                fixed = self._agent(worktree, goal, tip, prompt=prompt)
            left = checkout.continue_rebase(mirror, worktree) if fixed.reason == "finished" else conflicts
            if left:
                checkout.abort_rebase(mirror, worktree)
                raise GitswarmError(f"could not resolve the conflict with main in {', '.join(left)}")
        commit = checkout.head(mirror, worktree)
        if not self._own(commit, tip):
            self.swarm.log(f"{self.name}: rebased onto {tip[:10]}, {self.task.id} has no commit of its own "
                           f"left (at {commit[:10]}); redoing {self.task.id} on the new main")
            with self._out_of_turn():
                return self._redo(worktree, goal, tip)
        return commit, result

    def _redo(self, worktree: Path, goal: Goal | None, tip: str) -> tuple[str, AgentResult] | None:
        """Do the task afresh on `tip`: its new commit and result, or None when it changes nothing."""
        mirror = self.swarm.board.mirror.path
        checkout.reset_hard(mirror, worktree, tip)
        redo = self._finished(self._agent(worktree, goal, tip), "redoing the task on the new main: ")
        commit = self._commit(worktree, goal, tip, redo)
        return None if commit is None else (commit, redo)

    def _own(self, commit: str, tip: str) -> bool:
        """`commit` is this task's work: not main's tip, and its Gitswarm-Task trailers name the task
        (the hub's guard refuses a completion with any other, workrules.check_landing)."""
        message = self.swarm.board.mirror.repo[commit].message
        return commit != tip and self.task.id in parse_trailers(message).tasks
