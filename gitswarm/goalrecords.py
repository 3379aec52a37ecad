"""Goal files on main and their records on the board, kept in step for `gitswarm serve`: a goal
pushed or changed on main gets an active record, or an invalid one saying why (its file, main's
settings with its `models:`, the host's endpoints or the sandbox refuse it); a goal deleted from
main is stopped; a goal that spent its token budget is stopped. The daemon (gitswarm/daemon.py)
calls these on its events and schedules the planner and judge of each goal they make active
(`on_active`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Container

from . import git, record
from .board import Board
from .errors import GitswarmError
from .goal import goal_path, is_goal_path, parse_goal
from .roles import Swarm


class GoalRecords:
    def __init__(self, board: Board, swarm: Swarm, log: Callable[[str], None],
                 on_active: Callable[[str, str, str], None]):
        self.board, self.swarm, self.log = board, swarm, log
        self.on_active = on_active  # (name, path, tip): a goal is active from its file at tip

    def changed(self, path: str, tip: str) -> None:
        """The goal file at `path` changed on main at `tip` (or was deleted)."""
        name = Path(path).stem
        text = self.swarm.read_main(tip, path)
        if text is None:
            self.mark(name, "stopped", tip, f"{path} was deleted from main")
            return
        try:
            goal = parse_goal(path, text)
            settings = self.swarm.config(tip, goal)  # main's settings and the goal's models, against the host's
            missing = self.swarm.unresolved(goal, settings)  # endpoints; its commands' programs, in the sandbox
            if missing is not None:
                raise missing
        except GitswarmError as e:
            self.log(f"goal {name}: invalid: {e}")
            self.mark(name, "invalid", tip, str(e))
            return
        self.mark(name, "active", tip, None, budget=goal.budget_tokens)
        self.on_active(name, path, tip)

    def mark(self, name: str, status: str, source: str, reason: str | None, budget: int | None = None) -> None:
        """Set a goal's record (made when it has none); stopping it cancels its open tasks."""
        def change(current, state):
            base = current or record.new_record(name, source)
            if (base.status, base.source, base.reason, base.budget) == (status, source, reason, budget) \
                    and current is not None:
                return None
            return base.replace(status=status, source=source, reason=reason, budget=budget)
        self.board.update_goal(name, change, f"goal {name}: {status}" + (f" ({source[:10]})" if source else ""),
                               cancel_open=status in ("stopped",))

    def adopt(self, tip: str, skip: Container[str]) -> None:
        """Every goal file on main at `tip` (but those named in `skip`) whose record is missing or
        was made from another text of it: handled as changed."""
        records = self.board.records()
        for path in git.list_files(self.board.mirror.repo, tip, limit=100_000):
            if is_goal_path(path) and Path(path).stem not in skip:
                current = records.get(Path(path).stem)
                seen = self.swarm.read_main(current.source, path) if current and current.source else None
                if current is None or seen != self.swarm.read_main(tip, path):
                    self.changed(path, tip)

    def check_settings(self, tip: str) -> None:
        """Main's settings changed (or the daemon starts): an active goal that they, with its own
        `models:`, no longer allow (an endpoint the host does not list) is marked invalid, saying
        why, so that none of its tasks is claimed; an invalid goal they allow again is re-checked."""
        for name, rec in self.board.records().items():
            if rec.status not in ("active", "invalid"):
                continue
            text = self.swarm.read_main(tip, goal_path(name))
            try:
                goal = parse_goal(goal_path(name), text) if text is not None else None
            except GitswarmError:
                continue  # the goal file's own problem: its record says so already
            if goal is None:
                continue
            try:
                self.swarm.config(tip, goal)
            except GitswarmError as e:
                if rec.status == "active":
                    self.log(f"goal {name}: invalid: {e}")
                    self.mark(name, "invalid", tip, str(e))
                continue
            if rec.status == "invalid":
                self.changed(goal_path(name), tip)

    def over_budget(self, name: str) -> bool:
        """The circuit breaker: a goal that has spent its token budget stops; no new claim of its
        tasks is made, and its record says why. Raising the budget in the goal file resumes it."""
        rec = self.board.records().get(name)
        if rec is None or rec.budget is None or rec.status != "active":
            return False
        used = record.spent(rec, self.board.tasks())
        if used < rec.budget:
            return False
        reason = f"token budget spent: {used} of {rec.budget} tokens"
        self.log(f"goal {name}: stopped: {reason}")
        self.board.update_goal(name, lambda cur, st: cur.replace(status="stopped", reason=reason)
                               if cur and cur.status == "active" else None,
                               f"goal {name}: stopped, budget spent")  # open tasks wait for more budget
        return True
