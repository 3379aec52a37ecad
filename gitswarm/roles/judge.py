"""The judge: on a schedule, and when every task of the current cycle has ended, decides whether a
goal is met. It sees the goal, the board, main's state and log and the test command's result, and
records its verdict on the goal's record (goals/<name>.yaml on `tasks`): continue starts a new
cycle (planned afresh, from git alone), done or stop ends the goal. A goal with a `check:` command
needs no model: exit 0 means done."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .. import checkout
from .. import task as T
from ..agents import ModelRejected, ModelUnavailable
from ..agents.tools import judge_tools
from ..errors import GitswarmError
from ..record import GoalRecord, Verdict, add_cost
from ..text import printable
from . import Swarm, describe_tasks


def cycle_start(record: GoalRecord) -> str:
    """When the record's current cycle began: its last continue verdict, else the beginning."""
    continues = [v for v in record.verdicts if v.decision == "continue"]
    return continues[-1].at if continues else ""


def cycle_tasks(swarm: Swarm, record: GoalRecord) -> list[T.Task]:
    start = cycle_start(record)
    return [t for t in swarm.board.tasks() if t.goal == record.name and t.age >= start]


def judge(swarm: Swarm, goal_name: str) -> Verdict | None:
    """One judge pass on a goal; its verdict, or None when the goal has no active record."""
    board = swarm.board
    board.refresh()
    record = board.records().get(goal_name)
    if record is None or record.status != "active":
        return None
    tip = swarm.main_tip()
    goal = swarm.goal(tip, goal_name)
    decision, reasons, tokens, cost = _decide(swarm, goal, record, tip)
    if decision == "continue" and record.cycle >= goal.max_cycles:
        decision, reasons = "stop", f"{reasons}\n(stopped: max_cycles {goal.max_cycles} reached)"
    reasons = printable(reasons, 8000)  # a check's output or a model's words: untrusted text
    verdict = Verdict(cycle=record.cycle, decision=decision, reasons=reasons, at=T.now(), tokens=tokens,
                      cost=None if cost is None else round(cost, 6))

    def change(current: GoalRecord | None, state) -> GoalRecord | None:
        if current is None or current.status != "active" or current.cycle != record.cycle:
            return None  # somebody judged this cycle meanwhile
        status = {"continue": "active", "done": "done", "stop": "stopped"}[decision]
        return current.replace(status=status, cycle=current.cycle + (decision == "continue"),
                               verdicts=current.verdicts + (verdict,), tokens=current.tokens + tokens,
                               cost=add_cost(current.cost, cost), reason=None if decision != "stop" else reasons[:2000])

    subject = f"judge {goal_name}: {decision} (cycle {record.cycle})"
    if board.update_goal(goal_name, change, subject, cancel_open=True) is None:
        return None
    swarm.log(f"judge: {goal_name} cycle {record.cycle}: {decision}: {' '.join(reasons.split())[:200]}")
    return verdict


def _decide(swarm: Swarm, goal, record: GoalRecord, tip: str | None) -> tuple[str, str, int, float | None]:
    settings = swarm.config(tip, goal).judge
    with _checkout(swarm, tip) as where:
        if goal.check or settings.runs_command:  # model-free: exit 0 means done
            if where is None:
                return "continue", "main has no commits yet", 0, None
            if goal.check:
                passed, output = swarm.run_check(goal.check, where)
                return ("done" if passed else "continue"), f"check {goal.check!r}: {output.strip()[:2000]}", 0, None
        test_result = "(no test command)"
        if goal.test and where:
            passed, output = swarm.run_check(goal.test, where)
            test_result = f"{'passed' if passed else 'FAILED'}: {goal.test}\n{output}"
        said: list[tuple[str, str]] = []
        prompt = swarm.prompt(tip, "judge", {
            "goal_name": goal.name, "goal": goal.body, "cycle": str(record.cycle),
            "tasks": describe_tasks(cycle_tasks(swarm, record)), "main_log": swarm.main_log(tip),
            "test_result": test_result}, settings.runs_command)
        result = swarm.run_agent("judge", settings, prompt,
                                 judge_tools(lambda decision, reasons: said.append((decision, reasons))), cwd=where,
                                 tip=tip, about={"goal": goal.name})
    if isinstance(result.error, (ModelUnavailable, ModelRejected)):  # its model down or refusing: no verdict
        raise result.error
    if settings.runs_command:
        if result.reason == "time":  # killed: no verdict (an exit status is one: 0 done, else continue)
            raise GitswarmError(f"the judge command gave no verdict: {result.summary}",
                                "raise judge.wall_time in .gitswarm.yaml, or make the command faster")
        return ("done" if result.reason == "finished" else "continue"), result.summary or result.reason, \
            result.tokens_in + result.tokens_out, result.cost
    if not said:
        raise GitswarmError(f"the judge gave no verdict ({result.reason}): {result.summary}")
    return said[-1][0], said[-1][1], result.tokens_in + result.tokens_out, result.cost


class _checkout:
    """A throwaway worktree of main's tip, for the test and check commands."""

    def __init__(self, swarm: Swarm, tip: str | None):
        self.swarm, self.tip, self.path = swarm, tip, None

    def __enter__(self) -> Path | None:
        if self.tip is None:
            return None
        self.path = Path(tempfile.mkdtemp(prefix="judge-", dir=self.swarm.workdir)) / "main"
        checkout.add_worktree(self.swarm.board.mirror.path, self.path, self.tip)
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            checkout.remove_worktree(self.swarm.board.mirror.path, self.path)
            shutil.rmtree(self.path.parent, ignore_errors=True)
