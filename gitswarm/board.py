"""The board client: reads the hub's `tasks` branch and changes it by pushing commits.

Optimistic concurrency through push: a change is built in memory on the tip we know and pushed; when
`tasks` moved underneath, git refuses the push, and we fetch, re-apply the change on the new tip (a
claim takes the next ready task if its task is gone) and push again, with jittered backoff.
A Board is made of two parts: the board as this process knows it (gitswarm/boardview.py) and the
group commit that pushes changes to it, several requests to one push (gitswarm/groupcommit.py); the
Board's methods say what each change is.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable

from . import landing, names, rules
from .boardview import BoardView
from .record import GoalRecord
from .state import State, next_rested, ready
from .errors import ClaimLost, GitswarmError
from .gitmirror import Mirror
from .groupcommit import GroupCommit, Outcome
from .task import Task


class Board:
    """The board as known (`view`, gitswarm/boardview.py), changed through its group commit
    (`commits`, gitswarm/groupcommit.py): each change is a request, a function that applies it to
    the board's state and returns what to commit."""

    def __init__(self, remote: str, *, cache: Path | None = None, max_tries: int = 200,
                 author: tuple[str, str] | None = None, lease: int = 900, retry_backoff: float = 0.0):
        self.mirror = Mirror(remote, cache)
        self.remote = self.mirror.remote
        self.lease = lease
        self._earlier: dict[str, tuple[int, float | None]] = {}  # task id -> its earlier attempts' spend (earlier_spend)
        self._lock = threading.Lock()  # held while the mirror and the view change
        self.view = BoardView(self.mirror, retry_backoff)
        self.commits = GroupCommit(self.mirror, self.view, self._lock, max_tries=max_tries, author=author)

    @property
    def tip(self) -> str | None:
        return self.view.tip

    @property
    def problems(self) -> list[str]:
        """Files on the board that do not parse (a board pushed unguarded)."""
        return self.view.problems

    @property
    def retry_backoff(self) -> float:
        """Seconds before a task whose attempt ended is ready again."""
        return self.view.retry_backoff

    @retry_backoff.setter
    def retry_backoff(self, seconds: float) -> None:
        self.view.retry_backoff = seconds

    @property
    def pushes(self) -> int:
        return self.commits.pushes

    @property
    def rejected_pushes(self) -> int:
        return self.commits.rejected_pushes

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self.view.save()
            self.mirror.close()

    # ------------------------------------------------------------ reading

    def refresh(self) -> None:
        with self._lock:
            self.view.refresh()

    def records(self) -> dict[str, GoalRecord]:
        return dict(self.view.records)

    def tasks(self, *statuses: str) -> list[Task]:
        """The tasks as last fetched, oldest first; only those in these statuses when given (a
        daemon's passes over claimed and failed tasks need not sort a board of 100,000)."""
        everything = self.view.tasks.values()
        found = everything if not statuses else [t for t in everything if t.status in statuses]
        return sorted(found, key=lambda t: (t.age, t.id))

    def find(self, task_id: str) -> Task | None:
        return self.view.tasks.get(task_id)

    def get(self, task_id: str) -> Task:
        return State(self.view.tasks, self.view.records).get(task_id)

    def ready(self) -> list[Task]:
        return ready(self.view.tasks.values(), self.view.tasks, self.retry_backoff)

    def next_rested(self) -> float | None:
        """When a task resting after a failed attempt becomes ready (the board as last fetched)."""
        open_ids = [k[2] for k in list(self.view.queue)]  # the open tasks only; list() copies at once
        return next_rested((self.view.tasks[i] for i in open_ids if i in self.view.tasks), self.retry_backoff)

    # ------------------------------------------------------------ changing

    def add(self, new: list[Task]) -> list[Task]:
        """Add tasks in one commit. Their depends_on may name each other or existing tasks."""
        if not new:
            return []

        def apply(state: State) -> Outcome:
            for t in new:
                if t.id in state.tasks:
                    raise GitswarmError(f"a task {t.id} already exists", "choose another id")
            return Outcome("add", list(new), result=list(new))
        return self.commits.submit(apply)

    def claim(self, worker: str, kinds: Iterable[str] | None = None, goal: str | None = None,
              lease: int | None = None) -> Task | None:
        """Claim the next ready task (of these kinds, of this goal) for `lease` seconds (renewed
        by heartbeats); None when none is ready. The claim's push also moves the worker's
        heartbeat ref, so the hub's clock knows when the lease began."""
        kinds = tuple(kinds) if kinds else None
        _check_worker(worker)

        def apply(state: State) -> Outcome | None:
            t = state.next_ready(kinds, goal, self.commits.spread)
            if t is None:
                return None
            claimed = rules.claim(t, worker, lease=int(lease or self.lease))
            self._earlier[t.id] = (int((t.result or {}).get("tokens", 0)), (t.result or {}).get("cost"))
            return Outcome("claim", [claimed], worker=worker, token=claimed.attempts, result=claimed,
                           heartbeats=[worker])
        return self.commits.submit(apply)

    def heartbeat(self, workers: Iterable[str]) -> None:
        """Renew the leases of these workers' claims: one push of their heartbeat refs, never of
        tasks, so heartbeats do not contend with claims."""
        names = sorted(set(workers))
        if names:
            self.commits.submit(lambda state: Outcome("heartbeat", [], heartbeats=names))

    def release_held_by(self, names: Iterable[str], why: str, log: Callable[[str], None]) -> None:
        """Hand back every task the board (as last fetched) shows claimed under these names: claims
        whose holders are known to hold nothing (dead, idle, never told of their claim). Each is
        failed, not released: the attempt counts, so the daemon retries it after its backoff or
        buries it at max_attempts. A task that kills its worker, or whose end cannot be recorded,
        would otherwise come back and be claimed again forever. An error on one task is logged and
        that task left: the others are still handed back."""
        names = set(names)
        for t in self.tasks("claimed"):
            if t.claim and t.claim.worker in names:
                try:
                    self.fail(t.id, t.claim.worker, f"handed back: {why}", token=t.claim.token)
                    log(f"released {t.id} (held by {t.claim.worker}) as a failed attempt "
                        f"({t.attempts}): {why}")
                except GitswarmError as e:
                    log(f"could not release {t.id}: {e.message}")
                except Exception as e:  # a record the hub cannot take must not hold back the others
                    log(f"could not release {t.id}: {type(e).__name__}: {e}")

    def reclaim(self, task_id: str, reason: str, dead: bool = False) -> Task | None:
        """Take a claim back from a holder whose lease lapsed: open again, or dead. The hub checks
        the lapse on its own clock. None when the task is no longer claimed."""
        def apply(state: State) -> Outcome | None:
            t = state.get(task_id)
            if t.status != "claimed" or t.claim is None:
                return None
            new = rules.reclaim(t, reason, dead=dead)
            return Outcome("reclaim", [new], body=reason, result=new)
        return self.commits.submit(apply)

    def bury(self, task_id: str, reason: str) -> Task | None:
        """A failed task out of attempts: dead, with its last error."""
        def apply(state: State) -> Outcome | None:
            t = state.get(task_id)
            if t.status != "failed":
                return None
            new = rules.bury(t, reason)
            return Outcome("bury", [new], body=reason, result=new)
        return self.commits.submit(apply)

    def complete(self, task_id: str, worker: str, summary: str, commit: str | None = None,
                 token: int | None = None, tokens: int = 0, cost: float | None = None) -> Task:
        def apply(state: State) -> Outcome:
            held = _held(state, task_id, worker, token, "complete")
            return _holder_outcome("complete", held, rules.complete(held, worker, summary, commit, tokens=tokens,
                                                                    cost=cost))
        return self.commits.submit(apply)

    def land(self, task_id: str, worker: str, commit: str, summary: str, token: int | None = None,
             branch: str = "main", tokens: int = 0, replay: bool = False, cost: float | None = None) -> Task:
        """Push `commit` to `branch` and complete the task with it, in one atomic push: the work
        never lands without its task done, nor the task done without its work. When the branch
        moved: with `replay`, the board replays the work onto the new tip in memory (landings of
        one batch go out in one push, one after the other), and the task's `result.commit` names
        the commit that landed; without it, or when the replay conflicts, raises BranchMoved:
        rebase the work on the new tip and land again."""
        ref = names.branch_ref(branch)

        def apply(state: State) -> Outcome:
            held = _held(state, task_id, worker, token, "complete")
            placed = landing.place(self.mirror.repo, commit, branch, state.heads.get(ref), replay)
            outcome = _holder_outcome("complete", held, rules.complete(held, worker, summary, placed, tokens=tokens,
                                                                                   cost=cost))
            outcome.refs, outcome.chained = {ref: placed}, replay
            return outcome
        return self.commits.submit(apply)

    def handoff(self, task_id: str, worker: str, commit: str, summary: str, token: int | None = None,
                tokens: int = 0, cost: float | None = None) -> Task:
        """Hand `commit` to the hub's landing queue: the task goes `landing` and its land ref
        (gitswarm/queue.py) is created at the commit, in one atomic push. The train lands it."""
        def apply(state: State) -> Outcome:
            held = _held(state, task_id, worker, token, "hand off")
            main = state.heads.get(names.MAIN)
            if main is not None and (main == commit or self.mirror.repo.descendant_of(main, commit)):
                raise GitswarmError(f"commit {commit[:10]} is already on main (at {main[:10]}): it holds no new work "
                                    "to land", "hand off the task's own commit, made on main's tip")
            outcome = _holder_outcome("handoff", held, rules.handoff(held, worker, commit, summary, tokens=tokens,
                                                                                 cost=cost))
            outcome.refs = {names.land_ref(task_id, held.attempts): commit}
            return outcome
        return self.commits.submit(apply)

    def complete_attempt(self, task_id: str, worker: str, commit: str, ref: str, summary: str,
                         token: int | None = None, tokens: int = 0, cost: float | None = None) -> Task:
        """Complete an attempt of best of N (gitswarm/attempts.py) and keep its commit at its
        attempts ref `ref`, created in the same atomic push; the commit stays off main."""
        def apply(state: State) -> Outcome:
            held = _held(state, task_id, worker, token, "complete")
            outcome = _holder_outcome("complete", held, rules.complete(held, worker, summary, None, tokens=tokens,
                                                                                   cost=cost))
            outcome.refs = {ref: commit}
            return outcome
        return self.commits.submit(apply)

    def train_land(self, holder: str, landed: dict[str, str], main: str, lease: str, note: str) -> list[Task]:
        """The train lands a tested batch: main moves to `main` (a fast-forward of the hub's main,
        else BranchMoved), each task of `landed` (id -> its commit on main) is done, and the train's
        lease is renewed (`lease`, the next commit of refs/gitswarm/train: a train that lost it
        cannot land), in one atomic push."""
        def apply(state: State) -> Outcome:
            done = []
            for task_id, commit in landed.items():
                t = state.get(task_id)
                if t.status != "landing":
                    raise GitswarmError(f"{task_id} is {t.status}: it left the landing queue")
                done.append(rules.landed(t, commit))
            outcome = Outcome("land", done, worker=holder, body=note, result=done)
            outcome.refs = {names.MAIN: main, names.TRAIN: lease}
            return outcome
        return self.commits.submit(apply)

    def train_return(self, holder: str, task_id: str, reason: str, rejected: bool) -> Task | None:
        """The train gives a queued task back: failed when its commit breaks the tests (`rejected`),
        else open again (its commit does not replay on main); its commit is kept for the next
        attempt. None when it is no longer queued."""
        def apply(state: State) -> Outcome | None:
            t = state.get(task_id)
            if t.status != "landing":
                return None
            new = rules.reject(t, reason) if rejected else rules.send_back(t, reason)
            return Outcome("reject" if rejected else "return", [new], worker=holder, body=reason, result=new)
        return self.commits.submit(apply)

    def update_goal(self, name: str, change: Callable[[GoalRecord | None, State], GoalRecord | None],
                    subject: str, cancel_open: bool = False) -> GoalRecord | None:
        """Change a goal's record: `change(current or None, state)` returns the new record (None:
        leave it as it is). With cancel_open, once the goal has ended its open tasks are cancelled,
        in a commit of their own (one action per commit)."""
        def apply(state: State) -> Outcome | None:
            new = change(state.records.get(name), state)
            if new is None or new == state.records.get(name):
                return None
            return Outcome("goal", [], records=[new], subject=subject, result=new)
        result = self.commits.submit(apply)
        if cancel_open and result is not None and result.ended:
            self.cancel_goal_tasks(name, f"goal {name} is {result.status}")
        return result

    def cancel_goal_tasks(self, name: str, reason: str) -> list[Task]:
        """Cancel every open task of a goal, in one commit."""
        def apply(state: State) -> Outcome | None:
            found = [rules.cancel(t, reason) for t in state.tasks.values() if t.goal == name and t.status == "open"]
            if not found:
                return None
            return Outcome("cancel", found, body=reason, result=found)
        return self.commits.submit(apply) or []

    def fetch_branch(self, branch: str = "main") -> str | None:
        """Fetch a branch of the hub into the local mirror; its tip, or None when it has none.
        Does not wait for a batch being pushed: it touches neither tasks nor the snapshot."""
        return self.view.fetch_branch(branch)

    def fail(self, task_id: str, worker: str, reason: str, token: int | None = None, tokens: int = 0,
             cost: float | None = None) -> Task:
        def apply(state: State) -> Outcome:
            held = _held(state, task_id, worker, token, "fail")
            return _holder_outcome("fail", held, rules.fail(held, worker, reason, tokens=tokens, cost=cost),
                                   body=reason)
        return self.commits.submit(apply)

    def release(self, task_id: str, worker: str, token: int | None = None, reason: str | None = None,
                tokens: int = 0, cost: float | None = None) -> Task:
        """Give a held task back, open, the attempt not counted; `tokens` and `cost` it spent stay on record."""
        def apply(state: State) -> Outcome:
            held = _held(state, task_id, worker, token, "release")
            return _holder_outcome("release", held, rules.release(held, reason, tokens, cost=cost))
        return self.commits.submit(apply)

    def earlier_spend(self, task_id: str) -> tuple[int, float | None]:
        """Tokens and cost (USD, None: unknown) the task's earlier attempts spent, as its result said
        when this process claimed it (a claim clears the result): its next result counts them too,
        so the goal's budget sees every attempt's."""
        return self._earlier.pop(task_id, (0, None))

    def reopen(self, task_id: str) -> Task:
        def apply(state: State) -> Outcome:
            t = state.get(task_id)
            if t.status != "failed":
                raise GitswarmError(f"{task_id} is {t.status}; only a failed task can be reopened")
            new = rules.reopen(t)
            return Outcome("reopen", [new], result=new)
        return self.commits.submit(apply)

    def cancel(self, task_id: str, reason: str) -> Task:
        def apply(state: State) -> Outcome:
            t = state.get(task_id)
            if t.status not in ("open", "claimed"):
                raise GitswarmError(f"{task_id} is {t.status}; only an open or claimed task can be cancelled")
            new = rules.cancel(t, reason)
            return Outcome("cancel", [new], body=reason, result=new)
        return self.commits.submit(apply)


def _check_worker(worker: str) -> None:
    if not names.NAME_RE.match(worker or ""):
        raise GitswarmError(f"worker name {worker!r} is not valid",
                            "use letters, digits, '.', '_', '@' or '-' (at most 64)")


def _held(state: State, task_id: str, worker: str, token: int | None, verb: str) -> Task:
    t = state.get(task_id)
    if t.status != "claimed" or t.claim is None:
        raise ClaimLost(f"cannot {verb} {task_id}: it is {t.status}, not claimed by {worker}",
                        "claims end when they are completed, failed, released, cancelled or taken back "
                        "after their lease lapsed")
    if t.claim.worker != worker or (token is not None and token != t.claim.token):
        raise ClaimLost(f"cannot {verb} {task_id}: it is claimed by {t.claim.worker} "
                            f"(token {t.claim.token}), not by {worker}"
                            + (f" (token {token})" if token is not None else ""),
                            "only the claim's holder may end it; a holder whose lease lapsed has lost its claim")
    return t


def _holder_outcome(action: str, held: Task, new: Task, body: str = "") -> Outcome:
    assert held.claim is not None
    return Outcome(action, [new], worker=held.claim.worker, token=held.claim.token, body=body, result=new)
