"""`gitswarm serve`: events to roles. Watches the hub's event spool (watchdog, no polling loop),
handles what arrived while it was down first, and turns git events into work: a goal pushed to main
makes its root planner run; tasks that end and commits that land wake it again (at most once per
debounce window per goal); the judge runs on its schedule and when a cycle's tasks have all ended.
Worker and planner threads claim tasks meanwhile. SIGINT or SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from watchdog.observers import Observer

from . import events as spool
from . import git, guardserver, names, runarchive, serving
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_STOPPED, GitswarmError
from .goal import is_goal_path
from .goalrecords import GoalRecords
from .install import shims_broken
from .leases import prune_land_refs, reclaim_pass
from .logs import error, warning
from .config import CONFIG_PATH, load_config
from .endpoints import load_host
from .pool import Pool
from .agents.backends import make_model
from .roles import Stopping, judge, planner, stderr_log
from .statuses import ENDED
from .task import id_from_path
from .waiting import Waits
from .watch import Wake

ZERO = git.ZERO
EVENT_TRIES = 3  # handlings of an event that fail with a GitswarmError before it is quarantined
IDLE_SAY_EVERY = 300.0  # seconds between "waiting for a goal" lines
RECLAIM_EVERY = 5.0  # seconds between passes at most: failed tasks are retried (or buried) this soon


@dataclass
class GoalClock:
    plan_due: float | None = None  # when the root planner should run next
    planning: bool = False
    last_plan: float = 0.0
    judge_due: float = 0.0
    judging: bool = False


class Daemon:
    def __init__(self, hub: str | Path, workers: int | None = 4, planners: int = 2, until_done: bool = False,
                 name: str | None = None, log: Callable[[str], None] = stderr_log,
                 model_factory=make_model, debounce: float | None = None, judge_every: float | None = None,
                 lease: float | None = None, max_attempts: int | None = None, retry_backoff: float | None = None,
                 train_slots: int = 1, train_lease: int = 60):
        self.hub = Path(hub).resolve()
        if not spool.spool_dir(self.hub).is_dir():
            raise GitswarmError(f"{self.hub} is not a gitswarm hub (no event spool)",
                                f"run `gitswarm init {hub}` first")
        main = _main_tip(self.hub)
        endpoints = load_host()  # the host's: a broken endpoints file stops serve here, saying why
        try:
            settings = load_config(_read(self.hub, main, CONFIG_PATH), CONFIG_PATH, endpoints)
        except GitswarmError as e:  # main's: its goals are marked invalid with the reason (_check_settings)
            log(warning(f"settings: {e}; serving with the defaults until {CONFIG_PATH} is fixed"))
            settings = load_config(None, CONFIG_PATH, endpoints)
        self.lease = float(lease if lease is not None else settings.lease)
        self.max_attempts = max_attempts if max_attempts is not None else settings.max_attempts
        workers = workers if workers is not None else (settings.workers or 4)
        self.pool = Pool(str(self.hub), workers=workers, planners=planners, name=name, log=log,
                         model_factory=model_factory, lease=self.lease, watch=False,
                         retry_backoff=retry_backoff if retry_backoff is not None else settings.retry_backoff,
                         endpoints=endpoints, train=True, train_slots=train_slots, train_lease=train_lease)
        self.board, self.swarm, self.name = self.pool.board, self.pool.swarm, self.pool.name
        self.until_done = until_done
        self.debounce, self.judge_every = debounce, judge_every
        self.clocks: dict[str, GoalClock] = {}
        self.wake = threading.Event()
        self.log = log
        self.next_reclaim = 0.0
        self.event_failures: dict[str, int] = {}  # spool event -> handlings that failed
        self.interrupted: int | None = None  # the signal that stopped it
        self.said_idle = 0.0  # when it last said it waits for a goal
        self.waits = Waits(self.board, log)  # failing planners and judges, on their goals' records
        self.goals = GoalRecords(self.board, self.swarm, log, self._goal_active)

    @property
    def stop(self) -> threading.Event:
        return self.swarm.stop

    # ------------------------------------------------------------ running

    def run(self) -> int:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda signum, _: self.shutdown(signum))
        guard = guardserver.start(self.hub, self.log)  # the hooks check in process while it is not up
        observer = Observer()
        observer.schedule(Wake(self.wake), str(spool.spool_dir(self.hub)))
        observer.start()
        try:
            self.log(f"serve {self.hub}: {self.pool.workers} workers, {self.pool.planners} planners")
            broken = shims_broken(self.hub)
            if broken is not None:
                self.log(error(broken))
            self.log(self.pool.sandbox)
            try:
                serving.write(self.hub)
            except OSError as e:  # status will not show it: say so here
                self.log(f"cannot write {serving.path(self.hub)}: {e}")
            self.pool.release_stale_claims()
            self._adopt_goals()
            self.pool.start()
            code = self._loop()
            if self.swarm.fatal:
                return EXIT_ERROR
            return EXIT_INTERRUPTED if self.interrupted == signal.SIGINT else code
        finally:
            serving.clear(self.hub)
            observer.stop()
            self.pool.close()
            observer.join(timeout=5)
            guardserver.stop(guard)
            self.log("stopped" + (f": {self.swarm.fatal}" if self.swarm.fatal else ""))

    def shutdown(self, signum: int | None = None) -> None:
        self.interrupted = signum
        self.log("stopping: agents are told to stop, their tasks released")
        self.stop.set()
        self.wake.set()

    def _loop(self) -> int:
        while not self.stop.is_set():
            self.wake.clear()
            try:
                self.handle_events()
                self._schedule()
                self._say_waiting()
            except GitswarmError as e:
                self.log(f"error: {e}")
            except Exception as e:  # a bug must not stop the swarm: say it, wait a little, go on
                self.log(f"error: {type(e).__name__}: {e}")
                self.stop.wait(1.0)
            if self.until_done:
                code = self._finished()
                if code is not None:
                    return code
            self.wake.wait(self._next_due())
        return 0

    # ------------------------------------------------------------ events

    def handle_events(self) -> None:
        """Each waiting event in turn. One that cannot be read, or whose handling raises, goes to
        <spool>/bad/ with why (a log line says so): it must not hold back the events after it."""
        bad: list[tuple[str, str]] = []
        waiting = spool.pending(self.hub, bad)
        for name, why in bad:
            self._quarantined(name, why)
        for event in waiting:
            try:
                if event.ref == names.MAIN:
                    self._on_main(event.old, event.new)
                elif event.ref == names.BOARD:
                    self._on_tasks(event.old, event.new)
            except Exception as e:
                why = f"handling it failed: {type(e).__name__}: {e}"
                tries = self.event_failures[event.name] = self.event_failures.get(event.name, 0) + 1
                if isinstance(e, GitswarmError) and tries < EVENT_TRIES:  # the hub busy or out of reach: later
                    self.log(f"event {event.name}: {why}; trying again ({tries} of {EVENT_TRIES})")
                    break  # in order: the events after it wait for it
                spool.quarantine(self.hub, event.name, why)
                self._quarantined(event.name, why)
                self.event_failures.pop(event.name, None)
                continue
            self.event_failures.pop(event.name, None)
            spool.ack(self.hub, event)

    def _quarantined(self, name: str, why: str) -> None:
        self.log(f"event {name}: quarantined in {spool.spool_dir(self.hub) / spool.BAD}: {why}")

    def _on_main(self, old: str, new: str) -> None:
        if new == ZERO:
            return
        self.board.fetch_branch("main")
        repo = self.board.mirror.repo
        if new not in repo:
            return
        paths = git.changed_paths(repo, None if old == ZERO or old not in repo else old, new)
        for path in paths:
            if is_goal_path(path):
                self.goals.changed(path, new)
        if CONFIG_PATH in paths:
            self.goals.check_settings(new)
        for name, clock in self.clocks.items():  # work landed: the planners may add follow-ups
            self._plan_soon(name)

    def _on_tasks(self, old: str, new: str) -> None:
        self.board.refresh()
        self.swarm.work_ready.set()
        repo = self.board.mirror.repo
        if old == ZERO or old not in repo or new not in repo:
            return
        ended, spending = set(), set()
        for path, _ in git.changed_files(repo, old, new):
            task_id = id_from_path(path)
            t = self.board.find(task_id) if task_id else None
            if t is not None and t.status == "failed":
                self.next_reclaim = 0.0  # retry it (or bury it) now
            if t is not None and t.status in ENDED and t.goal in self.clocks:
                ended.add(t.goal)
            elif t is not None and t.goal in self.clocks and (t.result or {}).get("tokens"):
                spending.add(t.goal)  # an attempt handed back with what it spent on record
        for name in spending - ended:
            self.goals.over_budget(name)
        for name in ended:  # tasks it created ended: the planner may follow up; the cycle may be over
            if self.goals.over_budget(name):
                continue
            self._plan_soon(name)
            if self._cycle_over(name):
                self.clocks[name].judge_due = min(self.clocks[name].judge_due, time.time())

    def _goal_active(self, name: str, path: str, tip: str) -> None:
        """A goal is active from its file at `tip`: its planner runs now, its judge on schedule."""
        self.log(f"goal {name}: {'re-planning' if name in self.clocks else 'planning'} ({path} at {tip[:10]})")
        self.clocks.setdefault(name, GoalClock(judge_due=time.time() + self._judge_every(name, tip)))
        self._plan_soon(name, now=True)

    def _adopt_goals(self) -> None:
        """On start: handle the spool, then make sure every goal on main has a record and a clock
        (rebuilt from git alone: nothing is carried over from an earlier run)."""
        self.handle_events()
        tip = self.board.fetch_branch("main")
        self.board.refresh()
        if tip is not None:
            self.goals.adopt(tip, skip=self.clocks)
            self.goals.check_settings(tip)
        for name, rec in self.board.records().items():
            if rec.status == "active" and name not in self.clocks:
                self.clocks[name] = GoalClock(judge_due=time.time() + self._judge_every(name, tip))
                self._plan_soon(name, now=True)

    # ------------------------------------------------------------ schedules

    def _plan_soon(self, name: str, now: bool = False) -> None:
        clock = self.clocks.setdefault(name, GoalClock())
        due = time.time() if now else max(time.time(), clock.last_plan + self._debounce())
        clock.plan_due = due if clock.plan_due is None else min(clock.plan_due, due)
        self.wake.set()

    def _schedule(self) -> None:
        now = time.time()
        if now >= self.next_reclaim:  # lapsed claims back to the board; failed tasks retried or buried
            self.next_reclaim = now + min(max(0.5, self.lease / 3), RECLAIM_EVERY)
            self._passes()
        records = self.board.records()
        for name, clock in list(self.clocks.items()):
            rec = records.get(name)
            if rec is None or rec.status != "active":
                continue
            if clock.plan_due is not None and clock.plan_due <= now and not clock.planning:
                clock.plan_due, clock.planning, clock.last_plan = None, True, now
                self._spawn(f"plan-{name}", self._plan, name)
            planning_now = clock.planning or (clock.plan_due is not None and clock.plan_due <= now)
            if clock.judge_due <= now and not clock.judging and not planning_now:
                clock.judging = True
                self._spawn(f"judge-{name}", self._judge, name)

    def _passes(self) -> None:
        """The reclaim and release passes. Each handles its tasks one by one; a failure of a whole
        pass (the hub out of reach) is logged and must not keep the goals' planners and judges from
        their schedule below."""
        try:
            if reclaim_pass(self.board, self.hub, self.max_attempts, self.log):
                self.swarm.work_ready.set()
        except Exception as e:
            self.log(error(f"reclaim pass: {type(e).__name__}: {e}"))
        self.pool.release_idle_claims()
        try:
            prune_land_refs(self.hub, self.board, self.log)
        except Exception as e:
            self.log(error(f"pruning land refs: {type(e).__name__}: {e}"))
        for kind in runarchive.FOLDS:  # the runs records, then best of N's attempts
            try:
                runarchive.fold(self.hub, self.board, self.log, kind=kind)
            except Exception as e:
                self.log(error(f"folding {kind.live}* into {kind.archive}: {type(e).__name__}: {e}"))

    def _spawn(self, label: str, target, name: str) -> None:
        threading.Thread(target=target, args=(name,), name=label, daemon=True).start()

    def _plan(self, name: str) -> None:
        try:
            summary, tokens, cost = planner.plan(self.swarm, name, planner=f"{self.name}-root")
            self.log(f"planner {name}: {summary}")
            self.waits.succeeded(name, "planner")
            if tokens or cost:
                self.board.update_goal(name, lambda cur, st: cur.spend(tokens, cost) if cur else None,
                                       f"goal {name}: planner spent {tokens} tokens" + (f", ${cost:.4f}" if cost else ""))
                self.goals.over_budget(name)
        except Exception as e:
            if self.stop.is_set() or isinstance(e, Stopping):
                self.log(f"planner {name}: {e}")
            else:  # on the goal's record, and tried again (not only when tasks end or main moves)
                retry = time.time() + self.waits.failed(name, "planner", e)
                self.clocks[name].plan_due = min(self.clocks[name].plan_due or retry, retry)
        finally:
            self.clocks[name].planning = False
            if self._cycle_over(name):
                self.clocks[name].judge_due = min(self.clocks[name].judge_due, time.time())
            self.wake.set()

    def _judge(self, name: str) -> None:
        clock = self.clocks[name]
        retry: float | None = None
        try:
            verdict = judge.judge(self.swarm, name)
            self.waits.succeeded(name, "judge")
            if verdict is not None and verdict.decision == "continue":
                self._plan_soon(name, now=True)  # a new cycle, planned afresh
        except Exception as e:
            if self.stop.is_set() or isinstance(e, Stopping):
                self.log(f"judge {name}: {e}")
            else:  # on the goal's record, and tried again sooner than judge.every
                retry = self.waits.failed(name, "judge", e, most=self._judge_every(name, None))
        finally:
            clock.judging = False
            try:
                clock.judge_due = time.time() + (retry if retry is not None else self._judge_every(name, None))
            finally:  # even when main cannot be read now (the daemon stopping): the schedule goes on
                self.wake.set()

    def _cycle_over(self, name: str) -> bool:
        rec = self.board.records().get(name)
        if rec is None:
            return False
        tasks = judge.cycle_tasks(self.swarm, rec)
        if not tasks:  # a cycle its planner left empty waits for nothing: judge it now, not at judge.every
            clock = self.clocks.get(name)
            return clock is not None and not clock.planning and clock.plan_due is None

        def over(t) -> bool:  # a failed task with attempts left will be retried: not over yet
            return t.status in ENDED and not (t.status == "failed" and t.attempts < self.max_attempts)
        return all(over(t) for t in tasks)

    def _next_due(self) -> float:
        dues = [c.plan_due for c in self.clocks.values() if c.plan_due is not None]
        dues += [c.judge_due for c in self.clocks.values()] + [self.next_reclaim]
        return max(0.05, min([d - time.time() for d in dues] + [5.0]))

    def _debounce(self) -> float:
        if self.debounce is not None:
            return self.debounce
        try:
            return self.swarm.config(self.board.fetch_branch("main")).debounce
        except GitswarmError:  # invalid settings on main: their goals say why; the events go on
            return load_config(None, CONFIG_PATH, self.swarm.endpoints).debounce

    def _judge_every(self, name: str, tip: str | None) -> float:
        if self.judge_every is not None:
            return self.judge_every
        try:
            return self.swarm.goal(tip or self.board.fetch_branch("main"), name).judge_every
        except GitswarmError:
            return 600.0

    def _say_waiting(self) -> None:
        """With no goal on the board, say so at start and every IDLE_SAY_EVERY seconds after."""
        if self.board.records() or time.time() - self.said_idle < IDLE_SAY_EVERY:
            return
        self.said_idle = time.time()
        self.log(f"waiting for a goal: nothing to do until a goal file (goals/<name>.md) is pushed to main "
                 f"of {self.hub}; see docs/swarm.md")

    def _finished(self) -> int | None:
        """--until-done: None while a goal is active (or none was pushed yet); else the exit code:
        0 when every goal is done, EXIT_INVALID when one is invalid, EXIT_STOPPED when one stopped (its judge said stop,
        it ran out of cycles or spent its budget)."""
        records = self.board.records()
        if not records or any(r.status == "active" for r in records.values()):
            return None
        for r in records.values():
            self.log(f"goal {r.name}: {r.status} after {r.cycle} cycle(s)" + (f": {r.reason}" if r.reason else ""))
        statuses = {r.status for r in records.values()}
        return EXIT_INVALID if "invalid" in statuses else EXIT_STOPPED if statuses - {"done"} else 0


def _main_tip(hub: Path) -> str | None:
    return git.run(["rev-parse", "-q", "--verify", names.MAIN], cwd=hub, check=False).stdout.decode().strip() or None


def _read(hub: Path, tip: str | None, path: str) -> str | None:
    if tip is None:
        return None
    proc = git.run(["show", f"{tip}:{path}"], cwd=hub, check=False)
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else None
