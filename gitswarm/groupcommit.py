"""Group commit: all threads of a process share one Board. Their requests queue up while a push is
in flight; the next thread to lead takes them all, applies them one after another to the board as
it knows it (one commit each, so `git log tasks` reads one line per change) and pushes the whole
chain at once, with the other refs the requests move (a landing's branch, heartbeat refs),
atomically. A push of the board, main and heartbeats asks the hub to apply it (gitswarm/applier.py):
it rebases the chain onto others' changes of other files, in order, and refuses only a chain whose
files changed meanwhile (a conflict: the same task). When `tasks` moved underneath a plain push, or
the hub refused a conflict, git refuses the push: the leader fetches, applies the
requests again on the new tip and pushes again: at once when the fetch brings a new tip (another
process just pushed), with a growing jittered backoff when refusals repeat (backoff_after).

The Board (gitswarm/board.py) makes the requests and owns a GroupCommit; the board as known
(gitswarm/boardview.py) is what each batch is built on, and what a push that lands moves forward.
A batch goes through named steps: take it (_take), build its chain (_build_chain), push it, on a
refusal fetch and back off (_refused) or find whose change the hub declines (_declined), move the
view on (_pushed), settle each request.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from . import git, names, record, rules
from . import task as T
from .gitmirror import Mirror, PushResult
from .errors import BranchMoved, GitError, GitswarmError, PushDeclined, PushRace
from .guard import MAX_HEARTBEATS
from .record import GoalRecord
from .state import State
from .task import Task

MIN_BACKOFF, MAX_BACKOFF = 0.02, 2.0  # seconds
MAX_SPREAD = 32  # a claim picks among at most this many first ready tasks (GroupCommit.spread)


@dataclass
class Outcome:
    """What one request wants to commit, and what it returns to its caller."""
    action: str
    tasks: list[Task]
    records: list[GoalRecord] = field(default_factory=list)
    subject: str | None = None
    worker: str | None = None
    token: int | None = None
    body: str = ""
    result: Any = None
    refs: dict[str, str] = field(default_factory=dict)  # other branches pushed with it, atomically
    heartbeats: list[str] = field(default_factory=list)  # workers whose heartbeat ref it moves
    chained: bool = False  # its refs were placed on the batch's tips: several may share a push


@dataclass
class Request:
    apply: Callable[[State], Outcome | None]
    outcome: Outcome | None = None
    error: BaseException | None = None
    done: bool = False
    deferred: bool = False  # waits for the next batch (one branch update besides tasks per push)
    commit: str | None = None  # its commit in the batch's chain


class View(Protocol):
    """What the group commit needs of the board it pushes (gitswarm/boardview.py's BoardView): the
    tip and the other branches' tips as known, a batch's starting state, a fetch, and being told
    that a push landed."""
    tip: str | None
    heads: dict[str, str]
    tasks: dict[str, Task]

    def state(self) -> State: ...

    def refresh(self) -> None: ...

    def fetch_branch(self, branch: str) -> str | None: ...

    def pushed(self, chain: str | None, state: State, updates: dict[str, str]) -> None: ...


class GroupCommit:
    """Pushes the board's changes, several requests to one push: `submit(apply)` queues a request
    and returns its result. `lock` is held while the mirror and the view change: by the thread
    that leads a batch, and by the board while it refreshes or closes."""

    def __init__(self, mirror: Mirror, view: View, lock: threading.Lock, *, max_tries: int = 200,
                 author: tuple[str, str] | None = None):
        self.mirror = mirror
        self.view = view
        self.lock = lock
        self.max_tries = max_tries
        self.author = author  # of the board's own commits; None: git's user, asked once
        self.pushes = 0
        self.rejected_pushes = 0
        # Contention, learnt from rejected pushes: how long to back off (grows on each rejection,
        # halves on each success). While it is non-zero the board is busy with other writers, so a
        # batch starts from a fresh fetch instead of a push that would surely be refused.
        self.backoff = 0.0
        # How many of the first ready tasks a claim picks among, at random (state.next_ready): 1,
        # claim order, until claims of this board meet others' claims of the same task (the hub
        # left them out, or the push lost its race); doubles on each such push, halves on a clean one.
        self.spread = 1
        self._beats: dict[str, str | None] = {}  # worker -> its heartbeat ref on the hub, as we left it
        self._pending: list[Request] = []
        self._cond = threading.Condition()  # guards _pending and _leading
        self._leading = False

    # ------------------------------------------------------------ the queue

    def submit(self, apply: Callable[[State], Outcome | None]) -> Any:
        """Queue a request; lead a batch when no thread leads, else wait to be woken when one
        ends. A thread whose request a leader pushed returns at once (a plain lock is not fair:
        the thread that just pushed would take it again and push batches of one)."""
        request = Request(apply)
        with self._cond:
            self._pending.append(request)
        while (batch := self._take(request)) is not None:
            try:
                with self.lock:
                    self._run(batch)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        return request.outcome.result if request.outcome else None

    def _take(self, request: Request) -> list[Request] | None:
        """Wait while another thread leads; None once `request` is done, else lead: take every
        request pending."""
        with self._cond:
            while not request.done and self._leading:
                self._cond.wait()
            if request.done:
                return None
            self._leading = True
            batch, self._pending = self._pending, []
            return batch

    def _run(self, batch: list[Request]) -> None:
        try:
            self._run_batch(batch)
        except BaseException as e:  # a failure of the batch is every request's failure
            for r in batch:
                if not r.done:
                    r.error, r.done = e, True
            if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit: the leader's to raise
                raise
        deferred = [r for r in batch if not r.done]
        if deferred:
            with self._cond:
                self._pending[:0] = deferred

    # ------------------------------------------------------------ a batch

    def _run_batch(self, batch: list[Request]) -> None:
        """Build the batch's chain on the tip and push it; when refused, refresh and try again
        (backoff_after); then push the heartbeats over the hub's limit, and settle the requests."""
        fresh = self.view.tip is None or self.backoff > 0
        if fresh:
            self.view.refresh()
        later: list[str] = []
        refusals = 0  # this batch's refused pushes in a row
        for _ in range(self.max_tries):
            state = self.view.state()
            chain = self._build_chain(batch, state)
            if not fresh and _unsure(batch):  # "nothing ready" or an error may come from a stale view
                self.view.refresh()
                fresh = True
                continue
            beating, later = _beating(batch)
            if chain == self.view.tip and not beating:
                break
            updates, beats = self._updates(batch, chain, beating)
            try:
                self.pushes += 1
                took = self.mirror.push(updates, atomic=len(updates) > 1, apply=_applies(updates),
                                        replay=_replays(batch))
            except PushRace as race:
                refusals += 1
                batch = self._refused(batch, race, beats, refusals)
                fresh = True
                continue
            except GitError:
                # a failure that does not say whether the hub took the push: ask the hub
                self.view.refresh()
                if not self._landed(chain):
                    raise
                self._remember(beats)
                break  # it did: the snapshot is the hub's now
            except PushDeclined as e:
                self._declined(batch, e)
                break
            self._pushed(batch, state, chain, updates, beats, took)
            break
        else:
            raise GitswarmError(f"gave up after {self.max_tries} rejected pushes to {self.mirror.remote}",
                                "the board is very busy; try again, or batch changes in one process")
        if later:  # beats over the hub's limit go in further pushes, before the batch's callers return
            self._run_batch([Request(lambda state: Outcome("heartbeat", [], heartbeats=later))])
        for r in batch:
            if not r.deferred:
                r.done = True

    def _build_chain(self, batch: list[Request], state: State) -> str | None:
        """Apply each request in turn; one commit each, chained on the tip. The chain's last commit."""
        parent = self.view.tip
        branches: set[str] = set()
        for r in batch:
            r.error, r.outcome, r.deferred, r.commit = None, None, False, None
            try:
                outcome = r.apply(state)
                if outcome is None:
                    continue
                if outcome.refs and not outcome.chained and branches & set(outcome.refs):
                    r.deferred = True  # another request of this batch moves that branch
                    continue
                if not outcome.tasks and not outcome.records:  # a heartbeat: no board change
                    r.outcome = outcome
                    continue
                files = _checked_files(outcome, state)
            except GitswarmError as e:
                r.error = e
                continue
            message = rules.message(outcome.action, outcome.tasks, outcome.worker, outcome.token, outcome.body,
                                    outcome.subject)
            author = (outcome.worker, f"{outcome.worker}@gitswarm") if outcome.worker else self._author()
            parent = r.commit = git.write_commit(self.mirror.repo, parent, files, message, author)
            for t in outcome.tasks:
                state.put(t)
            for g in outcome.records:
                state.records[g.name] = g
            branches |= set(outcome.refs)
            state.heads.update(outcome.refs)  # the next landing of the batch goes on top
            r.outcome = outcome
        return parent

    def _updates(self, batch: list[Request], chain: str | None,
                 beating: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """The push: {ref: commit} for tasks (when the chain moves it), the other refs the requests
        move, and a heartbeat commit per beating worker; and those heartbeat commits alone."""
        updates = {names.BOARD: chain} if chain != self.view.tip else {}
        for r in batch:
            updates.update(r.outcome.refs if r.outcome else {})
        beats = self._beat_commits(beating)
        updates.update(beats)
        return updates, beats

    def _pushed(self, batch: list[Request], state: State, chain: str | None, updates: dict[str, str],
                beats: dict[str, str], took: PushResult) -> None:
        """The hub took the push: the view moves on (to the hub's tip, when it rebased the chain
        onto others' changes: a fetch of what they changed); a request whose commit the hub left
        out goes again, on the new tip; a landing the hub replayed returns the task as the hub
        wrote it; the backoff halves."""
        self.view.pushed(chain, state, updates)
        replayed = [ref for ref in took.applied if ref != names.BOARD]  # main: our work on others'
        if took.applied:  # one fetch for the board and the replayed branches
            self.view.refresh(also=replayed)
        for ref in replayed:
            self.view.heads[ref] = took.applied[ref]
        for r in batch:
            if r.commit in took.dropped:
                r.deferred = True
            elif names.MAIN in took.applied and r.outcome and isinstance(r.outcome.result, Task):
                r.outcome.result = self.view.tasks.get(r.outcome.result.id, r.outcome.result)
        self._spread(bool(took.dropped))
        self._remember(beats)
        for ref, sha in beats.items():  # keep the chain reachable here: gc packs it, never prunes it
            self.mirror.keep(ref.removeprefix(names.GITSWARM), sha)
        self.backoff = self.backoff / 2 if self.backoff > MIN_BACKOFF else 0.0

    def _refused(self, batch: list[Request], race: PushRace, beats: dict[str, str],
                 refusals: int) -> list[Request]:
        """The hub refused the push (a ref moved underneath): fail the work whose branch moved
        (unless the board replays it), fetch, back off as backoff_after says. The requests left."""
        self.rejected_pushes += 1
        self._spread(True)
        replayed = _fail_moved(batch, race)
        heads = dict(self.view.heads)
        for b in sorted(replayed):
            self.view.fetch_branch(b)
        progress = self.view.heads != heads  # a landing's branch moved: another's landing
        for ref in beats:  # a heartbeat ref moved: another process beats under that name
            if ref in race.branches:
                self._beats.pop(ref.rsplit("/", 1)[1], None)
        batch = [r for r in batch if not r.done]
        moved = False
        if refusals == 1:  # did someone else's push win? the fetches say
            pushed_on = self.view.tip
            self.view.refresh()
            moved = progress or self.view.tip != pushed_on
        self.backoff, most = backoff_after(self.backoff, refusals, moved)
        time.sleep(random.uniform(0, most))  # full jitter
        if not moved:
            self.view.refresh()
        return batch

    def _spread(self, met: bool) -> None:
        """After a push that met others' changes of the same tasks (`met`), or not."""
        self.spread = min(MAX_SPREAD, self.spread * 2) if met else max(1, self.spread // 2)

    def _declined(self, batch: list[Request], e: PushDeclined) -> None:
        """The hub's guard refused the push: when several requests changed the board, push them one
        by one to find whose change it refuses; else that request gets the refusal."""
        changing = [r for r in batch if r.outcome is not None]
        if len(changing) > 1:
            for r in changing:
                self._run_batch([r])
        else:
            changing[0].error = e

    def _landed(self, chain: str | None) -> bool:
        """Whether the hub's tasks holds our chain (its tip is the chain or comes after it)."""
        tip = self.view.tip
        if chain is None or tip is None:
            return False
        return tip == chain or self.mirror.repo.descendant_of(tip, chain)

    def _remember(self, beats: dict[str, str]) -> None:
        """The hub holds these heartbeat commits: each worker's next beat goes on its own."""
        self._beats.update({ref.rsplit("/", 1)[1]: sha for ref, sha in beats.items()})

    def _beat_commits(self, workers: list[str]) -> dict[str, str]:
        """A new heartbeat commit per worker, each on its last one (fast-forward only, like
        every ref of the hub): {ref: commit}."""
        unknown = [w for w in workers if w not in self._beats]
        if unknown:
            existing = self.mirror.remote_refs(names.HEARTBEATS + "*")
            wanted = [names.heartbeat_ref(w) for w in unknown]
            self.mirror.fetch_refs([r for r in wanted if r in existing])
            self._beats.update({w: existing.get(names.heartbeat_ref(w)) for w in unknown})
        return {names.heartbeat_ref(w): git.write_commit(self.mirror.repo, self._beats[w], {},
                                                        f"heartbeat {w}\n", (w, f"{w}@gitswarm"))
                for w in workers}

    def _author(self) -> tuple[str, str]:
        if self.author is None:
            name = git.run(["config", "user.name"], check=False).stdout.decode().strip()
            email = git.run(["config", "user.email"], check=False).stdout.decode().strip()
            self.author = (name or "gitswarm", email or "gitswarm@localhost")
        return self.author


def backoff_after(backoff: float, refusals: int, moved: bool) -> tuple[float, float]:
    """After a refused push: (the board's new backoff, the most to sleep before the next try,
    full jitter). `refusals`: the batch's refusals in a row, this one included; `moved`: the fetch
    after it brought a new tip of tasks or of a branch the batch lands on.

    A batch's first refusal that brings a new tip means another process made progress and has
    just finished its push: retry at once on that tip (a jitter of MIN_BACKOFF), the backoff
    unchanged. A refusal that repeats, or that brings no new tip (a push still in flight holds the
    lock, a heartbeat ref raced), means real contention: double the backoff, up to MAX_BACKOFF
    (a cap of 0.2 s for every refusal made 32 single-claimer processes collapse). Measured in
    benchmarks/RESULTS.md (issue 17): the claims rows unchanged; the 256-worker swarm row moved
    neither way, limited by a process whose batch loses the race many times in a row."""
    if moved and refusals == 1:
        return backoff, MIN_BACKOFF
    backoff = min(MAX_BACKOFF, max(MIN_BACKOFF, backoff * 2))
    return backoff, backoff


def _applies(updates: dict[str, str]) -> bool:
    """Whether the hub is asked to apply a push (gitswarm/applier.py): one that changes the board,
    and only refs the hub applies (main, heartbeats). Its commits then meet others' changes of
    other tasks on the hub, in order, instead of losing a race on the tip to them."""
    return names.BOARD in updates and all(names.applied_ref(names.apply_ref(ref)) for ref in updates)


def _replays(batch: list[Request]) -> bool:
    """Whether the hub may replay the batch's work on main onto a newer main: every landing of it
    allows the board to (Board.land's `replay`), so its refs were placed on the batch's tips."""
    landing = [r.outcome for r in batch if r.outcome and names.MAIN in r.outcome.refs]
    return bool(landing) and all(o.chained for o in landing)


def _unsure(batch: list[Request]) -> bool:
    """Whether a request failed or found nothing to do: that may come from a stale view."""
    return any(r.error is not None or (r.outcome is None and not r.deferred) for r in batch)


def _beating(batch: list[Request]) -> tuple[list[str], list[str]]:
    """The workers whose heartbeat refs the batch moves: (in this push, in further pushes): the
    hub takes at most MAX_HEARTBEATS a push."""
    beating = sorted({w for r in batch if r.outcome for w in r.outcome.heartbeats})
    return beating[:MAX_HEARTBEATS], beating[MAX_HEARTBEATS:]


def _fail_moved(batch: list[Request], race: PushRace) -> set[str]:
    """After a refused push, the work that must be rebased because its branch moved fails with
    BranchMoved, unless the board replays it onto the new tip: the branches to fetch for that."""
    replayed: set[str] = set()
    for r in batch:
        moved = [b for b in race.branches
                 if r.outcome and (names.branch_ref(b) in r.outcome.refs or b in r.outcome.refs)]
        if moved and r.outcome.chained:
            replayed.update(moved)
        elif moved:
            r.error, r.done = BranchMoved(moved[0]), True
    return replayed


def _checked_files(outcome: Outcome, state: State) -> dict[str, bytes]:
    """The files a request's commit writes, checked by the hook's own rules first."""
    files = {t.path: T.dump(t) for t in outcome.tasks}
    files.update({g.path: record.dump(g) for g in outcome.records})
    info = rules.CommitInfo(outcome.action, [t.id for t in outcome.tasks], outcome.worker, outcome.token)
    changes = [rules.Change(path, _dump_or_none(state, path), data) for path, data in files.items()]
    rules.check_commit(info, changes, lambda i: i in state.tasks,  # the hook's own rules
                       lapsed=lambda claim: True,  # a lapse only the hub can tell: its clock
                       trainer=lambda worker: True)  # and who holds the train: its ref
    return files


def _dump_or_none(state: State, path: str) -> bytes | None:
    task_id, name = T.id_from_path(path), record.name_from_path(path)
    if task_id in state.tasks:
        return T.dump(state.tasks[task_id])
    if name in state.records:
        return record.dump(state.records[name])
    return None
