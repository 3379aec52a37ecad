"""The worker's side of best of N (gitswarm/attempts.py). A job on a task that asks for N attempts
does one of three things:

- **split**: the task has no attempts yet: add its N attempts (`<task>-a1` .. `-aN`) and release
  it; it waits, not ready, until each attempt has ended for good;
- **attempt**: the job's task is an attempt: do it with its variant's settings, commit, and complete
  it with its commit kept at `refs/gitswarm/attempts/<task>/<k>`, in one atomic push (never on main);
- **select**: every attempt has ended: score each attempt's tree with the goal's `select:` command
  (a non-zero exit rejects it; the last number it prints is its score; highest wins, ties: the
  earliest), or have the judge's model compare them two at a time (a knockout for N > 2), and land
  the winner as the task's own work, the normal way (landing train or direct), with the reasons
  in its commit message and result. The losers' refs stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import attempts, checkout, git, names
from ..agents import AgentResult
from ..record import add_cost
from ..agents.tools import select_tools
from ..config import CONFIG_PATH, Config, RoleConfig
from ..errors import GitswarmError
from ..goal import Goal
from ..rules import trailer_pairs
from ..statuses import FINAL
from ..task import new_task
from ..text import printable

DIFF_MAX = 12_000  # characters of an attempt's diff the judge sees
OUTPUT_MAX = 1_500  # characters of a test's output the judge sees
SAID_MAX = 400  # characters of a select command's output, or of the judge's reasons, kept per attempt


@dataclass
class Candidate:
    k: int
    commit: str
    base: str
    worker: str
    model: str
    summary: str
    score: float | None = None
    verdict: str = ""  # what the selector said of it


class BestOfN:
    """Mixed into the worker's Job (roles/worker.py), whose agent, commit, checks and pushes it uses."""

    def _spec(self, goal: Goal | None, tip: str) -> attempts.Variants:
        """The variants of the task this job serves (the task's own in the goal's `tasks:`, the
        goal's `attempts:`, the worker's settings); () for one attempt."""
        task_id = self.attempt[0] if self.attempt else self.task.id
        own = next((t.attempts for t in goal.tasks if t.id == task_id), ()) if goal else ()
        return attempts.chosen(own, goal.attempts if goal else (), self.swarm.config(tip, goal).worker.attempts)

    def _settings(self, tip: str, goal: Goal | None) -> RoleConfig:
        """The worker's settings for this job: an attempt's with its variant on top."""
        config: Config = self.swarm.config(tip, goal)
        if not self.attempt:
            return config.worker
        spec = self._spec(goal, tip)
        variant = dict(spec[self.attempt[1] - 1]) if self.attempt[1] <= len(spec) else {}
        if not variant:
            return config.worker
        where = goal.path if goal else CONFIG_PATH
        return config.for_goal({"worker": variant}, f"{where} (attempts[{self.attempt[1] - 1}])").worker

    def _best_of_n(self, worktree: Path, goal: Goal | None, tip: str) -> bool:
        """Split the task or do its attempt (True: the job is over), or mark it for selection
        (False: `_agent` selects, the landing goes on as for any task)."""
        board, task = self.swarm.board, self.task
        if self.attempt:
            self._attempt(worktree, goal, tip)
            return True
        kids = attempts.children(task.id, board.find)
        if kids:
            if any(k.status not in FINAL for k in kids):  # the hub's board was older than ours
                self._release(f"waits for its attempts: {attempts.described(kids)}")
                return True
            self.selecting = True
            return False
        spec = self._spec(goal, tip)
        if len(spec) < 2:
            return False
        ids = attempts.split_ids(task.id, len(spec))
        if ids is None:
            self.swarm.log(f"{self.name}: {task.id}'s id is too long to name its {len(spec)} attempts; "
                           "doing it once")
            return False
        n = len(ids)
        board.add([new_task(f"attempt {k}/{n}: {task.title}"[:200], task.description, kind="work", goal=task.goal,
                            parent=task.id, priority=task.priority, task_id=child)
                   for k, child in enumerate(ids, 1)])
        self._release(f"split into {n} attempts ({ids[0]} .. {ids[-1]}); one of them is selected once they end")
        self.swarm.log(f"{self.name}: {task.id} split into {n} attempts")
        self.outcome = f"split into {n} attempts"
        return True

    def _release(self, why: str) -> None:
        self.swarm.board.release(self.task.id, self.name, token=self.token, tokens=self.tokens, cost=self.cost,
                                 reason=why)

    def _attempt(self, worktree: Path, goal: Goal | None, tip: str) -> None:
        """Do one attempt and keep its commit at its attempts ref, with its completion."""
        board, task = self.swarm.board, self.task
        parent, k = self.attempt
        result, commit = self._do(worktree, goal, tip)
        if commit is None:
            return
        ref = names.attempts_ref(parent, k)
        said = printable(result.summary or task.title, 3000).strip()
        summary = f"{said}\n\nattempt {k} of {parent}: {commit} at {ref}"

        def keep() -> None:
            board.complete_attempt(task.id, self.name, commit, ref, summary, token=self.token, tokens=self.tokens,
                                   cost=self.cost)
            self.swarm.log(f"{self.name}: {task.id} kept {commit[:10]} at {ref}")
        self._until_answered(f"keep {task.id}", keep)
        self.outcome = f"attempted: {commit[:10]} at {ref}"

    # ------------------------------------------------------------ selection

    def _selected(self, worktree: Path, goal: Goal | None, tip: str) -> AgentResult:
        """Select (once per job) and apply the winner to the worktree on `tip`, uncommitted: the
        job commits it as the task's own work and lands it."""
        if self.selection is None:
            self.selection = self._select(worktree, goal, tip)
        winner, result = self.selection
        self.model = result.model  # the winner's: its commit's Gitswarm-Model
        checkout.reset_hard(self.swarm.board.mirror.path, worktree, tip)
        if winner is not None:
            self._apply(worktree, winner, tip)
        return result

    def _apply(self, worktree: Path, winner: Candidate, tip: str) -> None:
        mirror = self.swarm.board.mirror.path
        checkout.reset_hard(mirror, worktree, winner.commit)
        conflicts = checkout.rebase(mirror, worktree, tip)
        if conflicts:
            checkout.abort_rebase(mirror, worktree)
            checkout.reset_hard(mirror, worktree, tip)
            raise GitswarmError(f"the selected attempt {winner.k} ({winner.commit[:10]}) no longer applies on main "
                                f"at {tip[:10]}: conflicts in {', '.join(conflicts)}",
                                "the task is retried; its attempts' refs stay for a person to look at")
        checkout.reset_soft(mirror, worktree, tip)

    def _select(self, worktree: Path, goal: Goal | None, tip: str) -> tuple[Candidate | None, AgentResult]:
        board, task = self.swarm.board, self.task
        kids = attempts.children(task.id, board.find)
        heads = board.mirror.remote_refs(f"{names.ATTEMPTS}{task.id}/*")
        board.mirror.fetch_refs(sorted(heads))
        repo = board.mirror.repo
        found: list[Candidate] = []
        for k, kid in enumerate(kids, 1):
            commit = heads.get(names.attempts_ref(task.id, k))
            if commit is None or kid.status != "done":
                continue
            c = repo[commit]
            model = printable(dict(trailer_pairs(c.message)).get("Model", "?"), 200).strip() or "?"
            found.append(Candidate(k, commit, str(c.parents[0].id) if c.parents else tip,
                                   (kid.result or {}).get("worker", "?"), model,
                                   printable(str((kid.result or {}).get("summary", "")), 600).strip()))
        n = len(kids)
        if not found:
            if kids and all(k.status == "done" for k in kids):
                return None, AgentResult(f"none of its {n} attempts changed anything", "finished", 0, 0, 0, "none")
            raise GitswarmError(f"none of its {n} attempts left work to select: {attempts.described(kids)}",
                                "see each attempt's result with `gitswarm task show HUB <id>-a<k>`")
        tokens = [0, 0]
        if goal is not None and goal.select:
            how = f"select {goal.select!r}"
            winner = self._by_command(worktree, goal, found)
        else:
            how = "the judge's model, two at a time"
            winner = self._by_judge(worktree, goal, tip, found, tokens)
        lines = [f"Selected attempt {winner.k} of {n} ({names.attempts_ref(task.id, winner.k)}, by {winner.worker}, "
                 f"model {winner.model}) by {how}:"]
        lines += [f"- attempt {c.k} ({c.commit[:10]}, {c.worker}, {c.model}): {c.verdict}" for c in found]
        missing = [k for k in kids if k.id not in {f"{task.id}-a{c.k}" for c in found}]
        lines += [f"- {k.id}: {k.status}, no work kept" for k in missing]
        self.swarm.log(f"{self.name}: {task.id}: " + lines[0])
        self.tokens += tokens[0] + tokens[1]
        return winner, AgentResult("\n".join(lines), "finished", 0, tokens[0], tokens[1], winner.model)

    def _by_command(self, worktree: Path, goal: Goal, found: list[Candidate]) -> Candidate:
        """Run `select:` on each attempt's tree, in the sandbox: exit 0 and the last number printed
        is its score, any other exit rejects it. The highest score wins, ties: the earliest."""
        mirror = self.swarm.board.mirror.path
        for c in found:
            checkout.reset_hard(mirror, worktree, c.commit)
            passed, output = self.swarm.run_check(goal.select, worktree, timeout=goal.test_timeout)
            code, _, printed = output.partition("\n")
            tail = printable(printed.strip()[-SAID_MAX:], SAID_MAX).strip().replace("\n", " | ")
            if not passed:
                c.verdict = f"rejected ({code}): {tail or '(no output)'}"
                continue
            c.score = attempts.score(printed)
            c.verdict = f"score {c.score:g}" if c.score is not None else "score 0 (it printed no number)"
            c.score = c.score or 0.0
        scored = [c for c in found if c.score is not None]
        if not scored:
            raise GitswarmError(f"the select command rejected every attempt: "
                                + "; ".join(f"attempt {c.k}: {c.verdict}" for c in found),
                                "the task is retried once its attempts are retried; check the select: command")
        best = max(c.score for c in scored)
        winner = next(c for c in scored if c.score == best)
        winner.verdict += " (the highest)" if len(scored) > 1 else ""
        return winner

    def _by_judge(self, worktree: Path, goal: Goal | None, tip: str, found: list[Candidate],
                  tokens: list[int]) -> Candidate:
        """The judge's model compares two attempts at a time, knockout rounds (the odd one out goes
        through), with their diffs and, where the goal has a test, its result on each tree."""
        settings = self.swarm.config(tip, goal).judge
        if settings.runs_command:
            raise GitswarmError("best of N needs a selector: the goal has no select: command and its judge is a "
                                "command, which cannot compare attempts",
                                "give the goal select: \"<command>\" (exit 0, last number printed is the score), "
                                "or a judge model")
        if len(found) == 1:
            found[0].verdict = "the only attempt with work"
            return found[0]
        shown = {c.k: self._shown(worktree, goal, c) for c in found}
        field = list(found)
        while len(field) > 1:
            winners = []
            for a, b in zip(field[0::2], field[1::2]):
                winners.append(self._compare(worktree, goal, tip, a, b, shown, tokens))
            if len(field) % 2:
                winners.append(field[-1])
            field = winners
        return field[0]

    def _shown(self, worktree: Path, goal: Goal | None, c: Candidate) -> str:
        repo = self.swarm.board.mirror.repo
        test = "(the goal has no test command)"
        if goal is not None and goal.test:
            checkout.reset_hard(self.swarm.board.mirror.path, worktree, c.commit)
            passed, output = self.swarm.run_check(goal.test, worktree, timeout=goal.test_timeout)
            test = f"{'passed' if passed else 'FAILED'}: {goal.test}\n{output[-OUTPUT_MAX:]}"
            c.verdict = f"tests {'passed' if passed else 'failed'}"
        return (f"worker {c.worker}, model {c.model}\nsummary: {c.summary or '(none)'}\n\n"
                f"test result: {test}\n\ndiff:\n{git.patch(repo, c.base, c.commit, DIFF_MAX)}")

    def _compare(self, worktree: Path, goal: Goal | None, tip: str, a: Candidate, b: Candidate,
                 shown: dict[int, str], tokens: list[int]) -> Candidate:
        task = self.task
        said: list[tuple[str, str]] = []
        prompt = self.swarm.prompt(tip, "select", {
            "goal_name": goal.name if goal else "(none)", "goal": goal.body if goal else "(none)",
            "task_id": task.id, "title": task.title, "description": task.description or "(none)",
            "a": shown[a.k], "b": shown[b.k]})
        settings = self.swarm.config(tip, goal).judge
        result = self.swarm.run_agent("judge", settings, prompt, select_tools(lambda x, why: said.append((x, why))),
                                      tip=tip, cwd=worktree, about={"goal": task.goal or "", "task_id": task.id})
        tokens[0] += result.tokens_in
        tokens[1] += result.tokens_out
        self.cost = add_cost(self.cost, result.cost)
        self._finished(result, "comparing its attempts: ")  # a model down hands the task back
        if not said:
            raise GitswarmError(f"the judge chose neither attempt {a.k} nor {b.k} ({result.reason}): {result.summary}")
        choice, why = said[-1]
        won, lost = (a, b) if choice == "A" else (b, a)
        why = printable(why, SAID_MAX).strip().replace("\n", " ")
        won.verdict = (won.verdict + "; " if won.verdict else "") + f"preferred to attempt {lost.k}: {why}"
        lost.verdict = (lost.verdict + "; " if lost.verdict else "") + f"lost to attempt {won.k}"
        return won
