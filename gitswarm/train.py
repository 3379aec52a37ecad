"""The landing train: main only ever points at trees that passed the goal's test.

Workers hand their commits to the queue (the board's `landing` tasks, gitswarm/queue.py) and go
on. The train, one per hub at a time (its lease, refs/gitswarm/train), takes the queue oldest
hand-off first, replays a batch of it onto main's tip in memory (one commit per task), runs the
goal's `test:` once on the batch's tip in a sandboxed worktree and, when it passes, lands the batch
and completes its tasks in one atomic push that also renews its lease. The batch's last commit says
so in a `Gitswarm-Tested:` trailer: `git log main` shows what was tested, how, and how long it took.

A red batch is run again `retry_red` times (a flaky test), then bisected: the half before the
culprit lands, each culprit is rejected (failed, the tail of the test's output its reason, its
commit kept for the next attempt); a single commit that fails on a main that passes is a culprit.
A commit that does not replay onto main goes back to a worker (open again, commit kept). With
`slots` > 1 the train tests the next batch on top of the one in test (speculation), and throws it
away when that one is red. When main moves under the train (a push of someone else), tests in flight
are killed and the queue is built again on the new tip.
"""

from __future__ import annotations

import threading
import time

from . import checkout, git, names, queue
from .batch import TESTED, Batch, one_commit, stamp
from .errors import BranchMoved, GitError, GitswarmError, PushDeclined
from .goal import Goal
from .roles import Stopping, Swarm
from .workrules import check_may_change
from .task import Task
from .text import printable
from .trainlease import TrainLease

LEASE = 60  # seconds without a renewal after which another process may take the train over
POLL = 1.0  # seconds between looks at tests in flight, main and the queue


class Train:
    def __init__(self, swarm: Swarm, holder: str, slots: int = 1, lease: int = LEASE):
        self.swarm, self.holder, self.slots, self.lease = swarm, holder, max(1, slots), max(3, lease)
        self.board = swarm.board
        self.inflight: list[Batch] = []
        self.main: str | None = None
        self.landed_as: dict[str, str] = {}  # a batch's tip as tested -> the commit that landed (same tree)
        self.green_trees: set[str] = set()  # trees that passed the test, this process
        self.red_main: str | None = None  # main's tip when it failed the test by itself: wait for a fix
        self.numbered = 0
        self.last = ""  # the last batch's result, for the lease's status
        self.lease_ref = TrainLease(self.board.mirror, holder, self.lease, self.log)

    def log(self, line: str) -> None:
        self.swarm.log(f"train: {line}")

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        self.log(f"{self.holder} runs the landing train ({self.slots} slot{'s' * (self.slots > 1)}, "
                 f"lease {self.lease}s)")
        while not self.swarm.stop.is_set():
            seen = self.swarm.work_ready.generation
            busy = False
            try:
                if self._hold():
                    busy = self._step()
                else:
                    self._cancel_all()
            except Stopping:  # the swarm stops, or the lease was lost mid-test: wait to hold it again
                self._cancel_all()
                if self.swarm.stop.is_set():
                    break
            except GitswarmError as e:
                self.log(f"{e.message}; trying again")
                self._cancel_all()
                self.swarm.stop.wait(2.0)
            except Exception as e:  # the train must not die: say why, start over
                self.log(f"{type(e).__name__}: {e}; trying again")
                self._cancel_all()
                self.swarm.stop.wait(2.0)
            if not busy:
                self.swarm.work_ready.wait(seen, min(5.0, self.lease / 3))
        self._cancel_all()

    def _step(self) -> bool:
        """One look: main, the head batch's test, the queue. True while something is in flight."""
        self.main = self.swarm.main_tip()
        if self.main is None:
            return False
        if self.inflight and not self._builds_on_main(self.inflight[0]):
            self.log(f"main moved to {self.main[:10]} under the train: cancelling {len(self.inflight)} batch(es) "
                     "in test, building again on it")
            self._cancel_all()
        if self.red_main is not None:
            if self.red_main == self.main:
                return False
            self.red_main = None
        self._fill()
        if not self.inflight:
            return False
        head = self.inflight[0]
        assert head.thread is not None
        head.thread.join(POLL)
        if head.thread.is_alive():
            return True
        self.inflight.pop(0)
        if head.passed is None:  # cancelled
            return True
        if head.passed:
            if not self._land(head):
                self._cancel_all()
        else:
            self._cancel_all()
            self._bisect(head)
        return True

    def _builds_on_main(self, batch: Batch) -> bool:
        return batch.base == self.main or self.landed_as.get(batch.base) == self.main

    def _cancel_all(self) -> None:
        for batch in self.inflight:
            batch.cancel.set()
        for batch in self.inflight:
            if batch.thread is not None:
                batch.thread.join()
        self.inflight = []

    # ------------------------------------------------------------ the queue and batches

    def queued(self) -> list[Task]:
        """The landing tasks, oldest hand-off first, but those in a batch in flight."""
        self.board.refresh()
        busy = {t.id for b in self.inflight for t in b.tasks}
        found = [t for t in self.board.tasks("landing") if t.id not in busy]
        return sorted(found, key=lambda t: (queue.handed_at(t), t.id))

    def _fill(self) -> None:
        """Start batches from the queue while slots are free."""
        if len(self.inflight) >= self.slots:
            return
        waiting = self.queued()
        while waiting and len(self.inflight) < self.slots and not self.swarm.stop.is_set():
            goal = self._goal_of(waiting[0])
            if goal is None:
                waiting = waiting[1:]
                continue
            take = [t for t in waiting if t.goal == goal.name][:goal.batch]
            waiting = [t for t in waiting if t not in take]
            speculative = bool(self.inflight)
            base = self.inflight[-1].tip if speculative else self.main
            assert base is not None
            batch = self._build(take, base, goal, speculative)
            if batch is not None:
                self._start(batch)
                self.inflight.append(batch)

    def _goal_of(self, task: Task) -> Goal | None:
        try:
            if task.goal is None:
                raise GitswarmError("it has no goal, so no test command to land it with")
            goal = self.swarm.goal(self.main, task.goal)
            if not goal.test:
                raise GitswarmError(f"its goal ({goal.path}) has no test: command any more")
            return goal
        except GitswarmError as e:
            self._give_back(task, f"the train cannot land it: {e.message}", rejected=True)
            return None

    def _build(self, tasks: list[Task], base: str, goal: Goal, speculative: bool) -> Batch | None:
        """Replay the tasks' commits onto `base`, one commit each; those that do not replay go back
        to a worker (on main's own tip; on a speculative base they wait for the next batch)."""
        repo = self.board.mirror.repo
        self._fetch(tasks)
        kept, commits, tip = [], [], base
        for t in tasks:
            handed = t.result["commit"] if t.result else ""
            try:
                if handed not in repo:
                    raise GitswarmError(f"its commit {handed[:10]} is not on the hub ({names.LAND}{t.id}/...)")
                if tip == handed or repo.descendant_of(tip, handed):
                    raise GitswarmError(f"its commit {handed[:10]} is already on main")
                since = repo.merge_base(handed, base)
                check_may_change(git.changed_paths(repo, str(since) if since else None, handed), t.id, "the work",
                                 goal.path, goal.may_change)
            except GitswarmError as e:
                self._give_back(t, f"the train cannot land it: {e.message}", rejected=True)
                continue
            replayed = one_commit(repo, handed, tip)
            if replayed is None:
                if not speculative:
                    self._give_back(t, f"its commit {handed[:10]} does not replay onto main at {base[:10]} (a "
                                    "conflict with work landed since): redo it on the new main", rejected=False)
                continue
            kept.append(t)
            commits.append(replayed)
            tip = replayed
        if not kept:
            return None
        self.numbered += 1
        return Batch(self.numbered, goal, base, kept, commits)

    def _fetch(self, tasks: list[Task]) -> None:
        """Bring the tasks' handed-off commits from their land refs into the mirror."""
        repo = self.board.mirror.repo
        wanted = [names.land_ref(t.id, t.attempts) for t in tasks if t.result and t.result["commit"] not in repo]
        try:
            self.board.mirror.fetch_refs(wanted)
        except GitError:  # one missing ref fails the whole fetch: fetch those that exist
            there = self.board.mirror.remote_refs(names.LAND + "*")
            self.board.mirror.fetch_refs([r for r in wanted if r in there])

    # ------------------------------------------------------------ testing

    def _start(self, batch: Batch) -> None:
        if not batch.tasks:
            self.log(f"testing main {batch.base[:10]} by itself")
        else:
            self._say_testing(batch)
        batch.thread = threading.Thread(target=self._test, args=(batch,), name=f"train-{batch.number}", daemon=True)
        batch.thread.start()

    def _say_testing(self, batch: Batch) -> None:
        ids = ", ".join(t.id for t in batch.tasks)
        on = f"on batch #{batch.number - 1}'s tip (speculative)" if batch.base != self.main else f"on main {self.main[:10]}"
        self.log(f"testing {len(batch.tasks)} task(s) as batch #{batch.number} {on}: {ids}")

    def _test(self, batch: Batch) -> None:
        """Run the goal's test on the batch's tip; the result goes on the batch (None: cancelled)."""
        mirror = self.board.mirror.path
        worktree = self.swarm.workdir / f"train-{batch.number}-{time.monotonic_ns()}"
        started = time.monotonic()
        try:
            checkout.add_worktree(mirror, worktree, batch.tip)
            try:
                passed, batch.output = self.swarm.run_check(batch.goal.test or "true", worktree,
                                                            batch.goal.test_timeout, stop=batch.cancel)
            except Stopping:  # cancelled: neither a pass nor a failure
                return
            batch.passed, batch.seconds = passed, time.monotonic() - started
            what = f"batch #{batch.number}" if batch.tasks else f"main {batch.base[:10]} by itself"
            self.log(f"{what} {'green' if batch.passed else 'red'} in {batch.seconds:.1f}s")
            if batch.passed:
                self.green_trees.add(str(self.board.mirror.repo[batch.tip].tree_id))
        except Exception as e:  # a test that cannot even start is no pass
            batch.passed, batch.output = False, f"the test could not run: {type(e).__name__}: {e}"
            self.log(f"batch #{batch.number}: {batch.output}")
        finally:
            checkout.remove_worktree(mirror, worktree)

    def _test_now(self, batch: Batch) -> bool:
        return self._test_all([batch])[0]

    def _test_all(self, batches: list[Batch]) -> list[bool]:
        """Test batches at once and wait for them (bisecting), the lease renewed meanwhile;
        Stopping when the swarm stops or the lease is lost."""
        for batch in batches:
            self._start(batch)
        for batch in batches:
            assert batch.thread is not None
            while batch.thread.is_alive():
                batch.thread.join(POLL)
                if self.swarm.stop.is_set() or not self._hold():
                    for b in batches:
                        b.cancel.set()
        if any(b.passed is None for b in batches):
            raise Stopping()
        return [bool(b.passed) for b in batches]

    # ------------------------------------------------------------ landing and red batches

    def _land(self, batch: Batch) -> bool:
        """Land a green batch on main's tip: on the tip it was built on, or on the commit its base
        batch landed as (same tree: the replay gives the same tree). False when main moved."""
        repo = self.board.mirror.repo
        assert self.main is not None
        if not self._hold():  # lost while it tested (frozen, cut off): the hub would refuse the push
            return False
        if batch.base != self.main:
            if self.landed_as.get(batch.base) != self.main:
                return False
            rebuilt = self._build(batch.tasks, self.main, batch.goal, speculative=True)
            if rebuilt is None or len(rebuilt.tasks) != len(batch.tasks) \
                    or repo[rebuilt.tip].tree_id != repo[batch.tip].tree_id:
                return False
            self.numbered -= 1
            batch.commits = rebuilt.commits
        command = printable((batch.goal.test or "").strip().splitlines()[0], 200)
        stamped = stamp(repo, batch.tip, f"passed in {batch.seconds:.1f}s; batch #{batch.number} of "
                        f"{len(batch.tasks)} task(s); train {self.holder}; command: {command}")
        commits = batch.commits[:-1] + [stamped]
        landed = {t.id: c for t, c in zip(batch.tasks, commits)}
        note = (f"Batch #{batch.number} passed `{command}` in {batch.seconds:.1f}s on {stamped[:10]}, "
                f"replayed onto main at {batch.base[:10] if batch.base == self.main else self.main[:10]}.")
        self.last = f"last: batch #{batch.number} green, {len(batch.tasks)} task(s) landed at {stamped[:10]}"
        for attempt in range(5):
            lease = self.lease_ref.next(self._status())
            try:
                self.board.train_land(self.holder, landed, stamped, lease, note)
                self.lease_ref.pushed(lease)
                break
            except BranchMoved:  # or only tasks moved (an atomic push does not say which ref did)
                if self.swarm.main_tip() != self.main or attempt == 4:
                    self.log(f"main moved while batch #{batch.number} was landing: building again")
                    return False
                self.lease_ref.drop()
                if not self._hold():
                    return False
            except PushDeclined as e:
                said = " ".join(e.message.split())[:1000]
                if len(batch.tasks) == 1:
                    self._give_back(batch.tasks[0], f"the hub refused to land it: {said}", rejected=True)
                else:
                    self.log(f"the hub refused batch #{batch.number}: {said}; landing its tasks one by one")
                    self._bisect(batch, known_red=False, singles=True)
                return False
        self.landed_as[batch.tip] = stamped
        self.main = stamped
        self.log(f"landed batch #{batch.number}: {len(batch.tasks)} task(s), main at {stamped[:10]}")
        return True

    def _bisect(self, batch: Batch, known_red: bool = True, singles: bool = False) -> None:
        """A red batch: run it again `retry_red` times (a flaky test), then find its culprits. Of a
        list known red on main, test k of its prefixes at once (k = the train's slots; with one
        slot, the first half): the longest green one lands, and the part up to the next prefix is
        known red on the new main (the same tree as that red prefix): it is the list to cut
        again. One task known red on a main that passes is a culprit, rejected. What follows a
        culprit is tested whole again. `singles`: one task at a time (the hub refused the batch's
        push)."""
        goal = batch.goal
        for retry in range(goal.retry_red if known_red else 0):
            self.log(f"batch #{batch.number} red; running it again ({retry + 1} of {goal.retry_red}) before bisecting")
            again = self._rebuild(batch.tasks, batch.goal)
            if again is None or self._test_now(again):
                if again is not None:
                    self._land(again)
                return
            batch = again
        pending, later, red, output, number = list(batch.tasks), [], known_red, batch.output, batch.number
        while (pending or later) and not self.swarm.stop.is_set():
            if not pending:
                pending, later, red = later, [], False
            if red and len(pending) == 1:
                if not self._main_green(goal):
                    return
                self._reject(pending[0], goal, output, number)
                pending, red = [], False
                continue
            cuts = [1 if singles else len(pending)]
            if red:  # a k-section: k prefixes in parallel, k the train's slots (1: halving)
                k = min(self.slots, len(pending) - 1)
                cuts = sorted({max(1, i * len(pending) // (k + 1)) for i in range(1, k + 1)})
            candidates = [self._rebuild(pending[:cut], goal) for cut in cuts]
            if any(c is None or [t.id for t in c.tasks] != [t.id for t in pending[:cut]]
                   for c, cut in zip(candidates, cuts)):  # some went back: what is left is not known red
                queued = {t.id for t in self.queued()}
                pending, red = [t for t in pending if t.id in queued], False
                continue
            passed = self._test_all(candidates)  # type: ignore[arg-type]
            greens = next((i for i, ok in enumerate(passed) if not ok), len(passed))
            if greens and not self._land(candidates[greens - 1]):  # type: ignore[union-attr]
                return  # main moved under us: the loop builds again from the queue
            if greens == len(cuts):  # what follows is still known red when the whole was: same tree
                pending = pending[cuts[-1]:]
                continue
            first_red = candidates[greens]
            assert first_red is not None
            output, number = first_red.output, first_red.number
            later = pending[cuts[greens]:] + later
            pending, red = pending[cuts[greens - 1] if greens else 0:cuts[greens]], True

    def _reject(self, task: Task, goal: Goal, output: str, number: int) -> None:
        """A task whose commit fails the test on a main that passes: the culprit."""
        assert self.main is not None
        self._give_back(task, f"the goal's tests fail with this task's commit on main at {self.main[:10]} (the "
                        f"landing train, batch #{number}): {goal.test}\n{output[-1500:]}", rejected=True)

    def _rebuild(self, tasks: list[Task], goal: Goal) -> Batch | None:
        self.main = self.swarm.main_tip()
        assert self.main is not None
        self.board.refresh()
        current = [self.board.find(t.id) for t in tasks]
        return self._build([t for t in current if t is not None and t.status == "landing"], self.main, goal,
                           speculative=False)

    def _main_green(self, goal: Goal) -> bool:
        """Whether main's tip passes the test by itself (known when the train tested its tree);
        when it does not, no commit is to blame: the train waits for main to be fixed."""
        repo = self.board.mirror.repo
        assert self.main is not None
        tip = repo[self.main]
        if str(tip.tree_id) in self.green_trees or f"\n{TESTED}: passed" in tip.message:
            return True
        probe = Batch(0, goal, self.main, [], [self.main])
        if self._test_now(probe):
            return True
        self.red_main = self.main
        self.log(f"main at {self.main[:10]} fails the goal's test by itself: the train waits until main moves "
                 f"(fix it with a push to main)\n{probe.output[-800:]}")
        return False

    def _give_back(self, task: Task, reason: str, rejected: bool) -> None:
        try:
            self.board.train_return(self.holder, task.id, reason, rejected)
            self.log(f"{'rejected' if rejected else 'sent back'} {task.id}: {reason.splitlines()[0][:300]}")
        except GitswarmError as e:
            self.log(f"could not give {task.id} back: {e.message}")

    # ------------------------------------------------------------ the lease

    def _hold(self) -> bool:
        return self.lease_ref.hold(self._status())

    def _status(self) -> str:
        testing = "; ".join(f"testing batch #{b.number} ({len(b.tasks)} task(s)) on {b.tip[:10]}" for b in self.inflight)
        return "\n".join(x for x in (testing, self.last) if x)
