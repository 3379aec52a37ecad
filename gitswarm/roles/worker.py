"""The worker: claim a work task, do it in a worktree at main's tip, test it, commit it, and land it
on main together with the task's completion. When main moved, rebase and land again (roles/rebase.py:
a conflict goes to the worker's own agent; a command agent redoes its task on the new tip). There
is no integrator."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Callable, Iterator

from .. import attempts, checkout, git
from ..agents import AgentResult, ModelRejected, ModelUnavailable
from ..agents.tools import worker_tools
from ..errors import BranchMoved, ClaimLost, GitError, GitswarmError
from ..goal import Goal
from ..record import add_cost
from ..workrules import check_may_change
from ..task import Task
from ..text import printable
from . import Stopping, Swarm, agent_env
from .attempt import BestOfN
from .handoff import HandOff
from .rebase import Rebase
from .turns import landed_a_task

MAX_LANDINGS = 20  # pushes to main that land no task moving it under a landing task: it gives up


UNAVAILABLE_PAUSE = 30.0  # seconds a worker waits after its model endpoint stayed down
UNREACHABLE_MAX_PAUSE = 30.0  # at most this between attempts to land while the hub is out of reach


class Unavailable(Exception):
    """The model endpoint stayed down or slow through its retries, or a command agent handed its
    task back: hand the task back, pause `pause` seconds before the next claim."""

    def __init__(self, pause: float | None = None, why: str = "its model is unavailable"):
        super().__init__(why)
        self.pause = UNAVAILABLE_PAUSE if pause is None else pause  # read now: tests set it


def run(swarm: Swarm, name: str) -> None:
    """Work tasks until the swarm stops; with none ready, sleep until the board moves."""
    while not swarm.stop.is_set():
        seen = swarm.work_ready.generation
        if not work_one(swarm, name):
            swarm.sleep_idle(seen)


def work_one(swarm: Swarm, name: str) -> bool:
    """Claim and work one task; False when none was ready. The agent counts as holding from before
    its claim to after its task ended, so that a claim of its name outside that window is known to
    be nobody's (see Pool.release_idle_claims)."""
    swarm.holding.add(name)
    try:
        try:
            task = swarm.board.claim(name, kinds=["work"])
        except GitswarmError:
            # the claim's push failed in a way that cannot tell whether it landed: a claim we did
            # not get back would be held under our name by nobody. We hold nothing: hand any back.
            release_orphans(swarm, name)
            raise
        if task is None:
            return False
        swarm.log(f"{name}: claimed {task.id} {task.title!r}")
        Job(swarm, name, task).run()
        return True
    finally:
        swarm.holding.discard(name)


def release_orphans(swarm: Swarm, name: str) -> None:
    """Release every task claimed under this worker's name: called while it holds nothing."""
    swarm.board.refresh()
    swarm.board.release_held_by([name], "a claim it never got back", swarm.log)


class Job(HandOff, BestOfN, Rebase):
    def __init__(self, swarm: Swarm, name: str, task: Task):
        self.swarm, self.name, self.task = swarm, name, task
        self.token = task.claim.token if task.claim else None
        self.tokens, self.cost = swarm.board.earlier_spend(task.id)  # every attempt's, in its result
        self.ticket: int | None = None  # its place in this process's turns to land (roles/turns.py)
        self.foreign_moves = 0  # times main moved under it by pushes that landed no task
        self.model = "none"
        self.runs: list[AgentResult] = []  # every agent run of this attempt, for its record
        self.published = False  # the record is on the hub (or could not be kept): once per attempt
        self.outcome = "done"  # how the attempt ended, when _land returns
        self.attempt = attempts.attempt_of(task)  # (the task it attempts, k): one of best of N's attempts
        self.selecting = False  # best of N: this job selects among the task's attempts (roles/attempt.py)
        self.selection = None  # what it selected, once

    def run(self) -> None:
        board, task = self.swarm.board, self.task
        worktree = self.swarm.workdir / f"{self.name}-{task.id}-{self.token}"
        outcome = "stopped"
        try:
            tip = self.swarm.main_tip()
            if tip is None:
                raise GitswarmError("main has no commits to work on")
            goal = self.swarm.goal(tip, task.goal) if task.goal else None
            shutil.rmtree(worktree, ignore_errors=True)
            checkout.add_worktree(board.mirror.path, worktree, tip)
            self._land(worktree, goal, tip)
            outcome = self.outcome
        except ClaimLost as lost:  # our lease lapsed and the task was taken back: abandon it
            outcome = f"lost claim: {lost.message}"
            self.swarm.log(f"{self.name}: lost the claim on {task.id}, abandoning it: {lost.message}")
        except (Stopping, Unavailable) as why:  # the task goes back to the board, not lost
            outcome = f"handed back: {why}" if isinstance(why, Unavailable) else "stopped: handed back"
            try:
                board.release(task.id, self.name, token=self.token, tokens=self.tokens, cost=self.cost,
                              reason=f"handed back by {self.name}: {why}" if str(why) else f"handed back by {self.name}")
                self.swarm.log(f"{self.name}: released {task.id}")
            except GitswarmError as lost:
                self.swarm.log(f"{self.name}: could not release {task.id}: {lost.message}")
            self._publish(outcome)  # before the pause: the board's release went first
            if isinstance(why, Unavailable):
                self.swarm.stop.wait(why.pause)  # let the endpoint (or the agent) recover before the next claim
        except Exception as e:  # the task is failed with the reason, never left claimed
            reason = str(e) if isinstance(e, GitswarmError) else f"{type(e).__name__}: {e}"
            outcome = f"failed: {reason}"
            self.swarm.log(f"{self.name}: {task.id} failed: {reason}")
            self._fail(reason)
        finally:
            checkout.remove_worktree(board.mirror.path, worktree)
            self._publish(outcome)  # after the board's push: the record never delays a landing or release

    def _publish(self, outcome: str) -> None:
        """Keep this attempt's runs on the hub (gitswarm/runlog.py), once; never raises. Only runs
        of commands (command agents, `run:` tasks) have output, a prompt file and a transcript to
        keep: gitswarm's own model loop leaves nothing its task's result does not say, and a push
        per attempt for it would cost the board's push rate."""
        if self.published or not any(r.trace is not None for r in self.runs):
            return
        self.published = True
        from .. import runlog

        runlog.publish(self.swarm.board.mirror, self.task.id, self.token or self.task.attempts, self.name,
                       self.task.goal, outcome, self.runs, self.swarm.log)

    def _fail(self, reason: str) -> None:
        """Record the failure: with its reason, or, when the hub refuses that (whatever the reason
        holds), with a plain one: a failure that cannot be recorded leaves the task claimed, and
        handed back and claimed again, without ever counting against max_attempts."""
        board, task = self.swarm.board, self.task
        try:
            board.fail(task.id, self.name, reason[:4000], token=self.token, tokens=self.tokens, cost=self.cost)
            return
        except ClaimLost as lost:
            self.swarm.log(f"{self.name}: could not fail {task.id}: {lost.message}")
            return
        except GitswarmError as refused:
            self.swarm.log(f"{self.name}: could not fail {task.id} with its reason: {refused.message}")
        try:
            board.fail(task.id, self.name, "the attempt failed; its reason could not be recorded (see the "
                       "worker's log)", token=self.token, tokens=self.tokens, cost=self.cost)
        except GitswarmError as lost:
            self.swarm.log(f"{self.name}: could not fail {task.id}: {lost.message}")

    def _land(self, worktree: Path, goal: Goal | None, tip: str) -> None:
        if self._best_of_n(worktree, goal, tip):
            return
        if goal is not None and goal.test and goal.land == "train":
            self._hand_off(worktree, goal, tip)
            return
        result, commit = self._do(worktree, goal, tip)
        if commit is None:
            return
        if goal and goal.test:  # tested on main's exact tip, in this process's turns (roles/turns.py)
            self._land_tested(worktree, goal, tip, commit, result)
            return
        while True:  # no test to run on the result: the board may replay it on a moved main
            try:
                self._push_landing(commit, result, replay=True)
                return
            except BranchMoved:  # the replay conflicted
                tip, rebased = self._onto_main(worktree, goal, tip, self._main(tip), result)
                if rebased is None:
                    return
                commit, result = rebased

    def _do(self, worktree: Path, goal: Goal | None, tip: str) -> tuple[AgentResult, str | None]:
        """The agent does the task on `tip`: its result and the task's commit, checked as the hub
        would; no commit when the work changes nothing (the task is then done)."""
        result = self._finished(self._agent(worktree, goal, tip))
        commit = self._commit(worktree, goal, tip, result)
        if commit is None:
            self._nothing_to_change(result.summary or "nothing to change")
            return result, None
        self._may_land(commit, tip, goal)
        return result, commit

    def _land_tested(self, worktree: Path, goal: Goal, tip: str, commit: str, result: AgentResult) -> None:
        """Wait for this process's turn to land (oldest first); in it, rebase onto main's tip when
        main moved, run the goal's test there (killed when main moves on: rebase and test again)
        and land."""
        self.ticket, ahead = self.swarm.turns.ticket()
        self.swarm.log(f"{self.name}: {self.task.id} is ready to land: turn {self.ticket} in this process, "
                       f"{ahead} before it")
        self._take_turn()
        try:
            while True:
                main = self._main(tip)
                if main != tip:
                    tip, rebased = self._onto_main(worktree, goal, tip, main, result)
                    if rebased is None:
                        return
                    commit, result = rebased
                    continue  # main may have moved again meanwhile (a redo steps out of the turn)
                try:
                    self._test(worktree, goal, tip)
                except BranchMoved:
                    self.swarm.log(f"{self.name}: main moved while its test ran on {tip[:10]}: "
                                   f"killed the test of {self.task.id}")
                    continue
                try:
                    self._push_landing(commit, result, replay=False)
                    return
                except BranchMoved:
                    continue
        finally:
            self.swarm.turns.give_back(self.ticket)

    def _main(self, tip: str) -> str:
        """main's tip on the hub, fetched; `tip` when the hub is out of reach (the landing's push
        then waits for it, and its answer says whether main moved)."""
        try:
            return self.swarm.main_tip() or tip
        except GitError:
            return tip

    def _take_turn(self) -> None:
        if not self.swarm.turns.take(self.ticket, self.swarm.stop):
            raise Stopping()

    @contextlib.contextmanager
    def _out_of_turn(self) -> Iterator[None]:
        """While the agent works again (a redo, a conflict): other workers may land meanwhile; this
        one keeps its ticket and is first in line again afterwards."""
        if self.ticket is None:
            yield
            return
        self.swarm.turns.give_back(self.ticket)
        yield  # an exception goes on out, without waiting for the turn again
        self._take_turn()

    def _onto_main(self, worktree: Path, goal: Goal | None, tip: str, main: str,
                   result: AgentResult) -> tuple[str, tuple[str, AgentResult] | None]:
        """main moved from `tip` to `main`: the work rebased onto `main` (`main`; the commit and
        result, or None when the task, redone there, changed nothing and is done). Fails the task
        when main moved under it MAX_LANDINGS times by pushes that landed no task: a race lost to
        another task's landing is the swarm's progress, never counted against this one."""
        if not landed_a_task(self.swarm.board.mirror.repo, tip, main):
            self.foreign_moves += 1
            if self.foreign_moves >= MAX_LANDINGS:
                raise GitswarmError(f"main kept moving: pushes that landed no task moved it {self.foreign_moves} "
                                    "times while this task was landing; gave up",
                                    "the task is retried after retry_backoff, up to max_attempts; a dead one "
                                    "comes back with `gitswarm reopen HUB ID`")
        self.swarm.log(f"{self.name}: main moved; rebasing {self.task.id} onto {main[:10]}")
        rebased = self._rebase(worktree, goal, main, result)
        if rebased is None:  # redone on the new main, the task changes nothing
            self._nothing_to_change(f"nothing to change: redone on main at {main[:10]}, which already "
                                    "has what the task asks")
            return main, None
        self._may_land(rebased[0], main, goal)
        return main, rebased

    def _push_landing(self, commit: str, result: AgentResult, replay: bool) -> None:
        """Land `commit` with the task's completion (until the hub answers). Raises BranchMoved when
        main moved and the work was not (or could not be) replayed onto it."""
        board, task = self.swarm.board, self.task

        def land() -> None:
            done = board.land(task.id, self.name, commit, result.summary or task.title, token=self.token,
                              tokens=self.tokens, cost=self.cost, replay=replay)
            landed = (done.result or {}).get("commit") or commit
            self.swarm.log(f"{self.name}: {task.id} landed {landed[:10]} on main"
                           + (f" (replayed from {commit[:10]})" if landed != commit else ""))
        self._until_answered(f"land {task.id}", land)

    def _until_answered(self, doing: str, push: Callable[[], None]) -> None:
        """Push the finished work, again and again while the hub is out of reach: the work is done,
        keep it (the hub's answer decides whether the claim still holds)."""
        pause = 0.0
        while True:
            try:
                push()
                return
            except GitError as e:
                if not pause:
                    self.swarm.log(f"{self.name}: cannot reach the hub to {doing}; retrying until it answers (its "
                                   f"answer decides whether the claim still holds): {e.message}")
                pause = min(UNREACHABLE_MAX_PAUSE, max(1.0, pause * 2))
                if self.swarm.stop.wait(pause):
                    raise Stopping() from None

    def _finished(self, result: AgentResult, doing: str = "") -> AgentResult:
        """The agent's result when it finished the task (`doing`: what the run was, for the reason);
        else the task is handed back (stopping, model unavailable) or fails saying why."""
        if result.reason == "stopped" or self.swarm.stop.is_set():
            raise Stopping()
        if isinstance(result.error, ModelRejected):  # misconfigured: every task would fail the same way
            self.swarm.fatal = f"the model refused the request: {result.error}"
            self.swarm.stop.set()
            raise Stopping()
        if isinstance(result.error, ModelUnavailable):  # the endpoint is down or slow: not the task's fault
            self.swarm.log(f"{self.name}: the model is unavailable ({result.error}); handing {self.task.id} back")
            raise Unavailable()
        if result.reason == "handback":  # a command agent gives the task back: no attempt is burnt
            said = " ".join(result.summary.split())[:300]
            pause = max(1.0, self.swarm.config(self.swarm.main_tip(), None).retry_backoff)
            self.swarm.log(f"{self.name}: the agent handed {self.task.id} back (exit 75 or its result file), "
                           f"without burning an attempt; next claim in {pause:g}s: {said}")
            raise Unavailable(pause, f"the agent handed it back: {said}")
        if result.reason != "finished":
            raise GitswarmError(f"{doing}the agent stopped ({result.reason}): {result.summary}")
        if result.summary.lstrip().upper().startswith("FAILED:"):
            raise GitswarmError(doing + result.summary.strip())
        return result

    def _nothing_to_change(self, summary: str) -> None:
        """Done without a commit: the work changes nothing on main (first run or redo alike)."""
        self.swarm.board.complete(self.task.id, self.name, summary, token=self.token, tokens=self.tokens,
                                  cost=self.cost)
        self.swarm.log(f"{self.name}: {self.task.id} done, nothing to change")

    def _agent(self, worktree: Path, goal: Goal | None, tip: str, prompt: str | None = None,
               note: str = "") -> AgentResult:
        swarm, task = self.swarm, self.task
        if self.selecting and prompt is None:
            return self._selected(worktree, goal, tip)
        settings = self._settings(tip, goal)
        run_command = self._run_command(goal)
        prompt = prompt or swarm.prompt(tip, "worker", {
            "goal_name": goal.name if goal else "(none)", "goal": goal.body if goal else "(none)",
            "task_id": task.id, "title": task.title, "description": task.description or "(none)",
            "test_command": (goal.test if goal else None) or "(none)", "main_log": swarm.main_log(tip)},
            run_command is not None or settings.runs_command) + note
        tools = worker_tools(worktree, env=agent_env(), max_output=settings.max_output,
                             wrap=swarm.sandbox(worktree))
        try:
            result = swarm.run_agent("worker", settings, prompt, tools, tip=tip, cwd=worktree, command=run_command,
                                     about={"task_id": task.id, "worker": self.name, "goal": task.goal or "",
                                            "attempt": str(self.token or task.attempts), "base": tip,
                                            "spent": str(self.tokens)})
        except Exception as e:  # the run raised: its record says so, the attempt fails as before
            self.runs.append(AgentResult(f"{type(e).__name__}: {e}", "error", 0, 0, 0, self.model, error=e))
            raise
        self.runs.append(result)
        self.tokens += result.tokens_in + result.tokens_out
        self.cost = add_cost(self.cost, result.cost)
        self.model = result.model
        return result

    def _run_command(self, goal: Goal | None) -> str | None:
        """The goal's `run:` command for this task (an attempt's: its task's), if it has one."""
        task_id = self.attempt[0] if self.attempt else self.task.id
        return next((t.run for t in goal.tasks if t.id == task_id and t.run), None) if goal else None

    def _commit(self, worktree: Path, goal: Goal | None, tip: str, result: AgentResult) -> str | None:
        """The task's one commit on `tip`: what the worktree holds (with what the agent committed
        itself squashed in), without the files the role's `ignore:` keeps out; None: no change."""
        settings = self._settings(tip, goal)
        return checkout.commit_all(self.swarm.board.mirror.path, worktree, self._message(result), self._author(),
                                   base=tip, ignore=settings.ignore)

    def _may_land(self, commit: str, tip: str, goal: Goal | None) -> None:
        """Refuse, as the hub's guard would, work that changes settings, prompts or goals its goal
        does not let it change (`may_change`): the task fails saying so, nothing is pushed."""
        paths = git.changed_paths(self.swarm.board.mirror.repo, tip, commit)
        check_may_change(paths, self.task.id, "the work", goal.path if goal else None,
                         goal.may_change if goal else ())

    def _test(self, worktree: Path, goal: Goal | None, tip: str | None) -> None:
        """Run the goal's test on the work rebased onto `tip`: raises BranchMoved (the test killed)
        when main moves past `tip` while it runs (None: whatever main does), GitswarmError when it
        fails."""
        if goal and goal.test:
            passed, output = self.swarm.run_check(goal.test, worktree, timeout=goal.test_timeout, tip=tip)
            if not passed:
                raise GitswarmError(f"the goal's tests fail: {goal.test}\n{output[-1500:]}")

    def _author(self) -> tuple[str, str]:
        return self.name, f"{self.name}@gitswarm"

    def _message(self, result: AgentResult) -> str:
        summary = printable(result.summary or "", 8000).strip()
        body = f"{summary}\n\n" if summary and summary != self.task.title else ""
        commits = result.trace.commits if result.trace else []
        if commits:
            body += "The agent's own commits, squashed into this one:\n" + "".join(f"- {c}\n" for c in commits) + "\n"
        return (f"{self.task.title}\n\n{body}Gitswarm-Task: {self.task.id}\nGitswarm-Worker: {self.name}\n"
                f"Gitswarm-Model: {self.model}\nGitswarm-Tokens: {self.tokens}\n")
