"""What `gitswarm report` shows, read from git alone: the board's history (every commit on `tasks`:
its trailers say the action, the tasks and the worker; the task files it wrote say where each task
went), the goal records on `tasks` (verdicts, planners' and judge's tokens) and main's log (the
commit that landed each task, with its Gitswarm-* trailers). Any clone or path that `git fetch`
reaches will do: nothing here needs the hub's folder or a server. Rendering is reportpage.py's.

Every text here came from agents or people (titles, summaries, reasons): it is kept as it is, and
the page escapes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pygit2

from . import names, rules, runlog
from . import task as T
from .board import Board
from .errors import FileInvalid, TaskInvalid
from .record import GoalRecord, spent_cost, total_cost
from .statuses import STATUSES

# How an attempt (a claim) ended, by the action that ended it.
OUTCOME = {"complete": "done", "land": "done", "fail": "failed", "reject": "failed", "return": "returned",
           "release": "released", "reclaim": "lost", "cancel": "cancelled"}
QUEUED = ("open", "landing")  # the queue: what waits to be claimed or landed
FETCH_REFS = 1000  # runs refs fetched by one `git fetch`
SKEW = 5.0  # seconds a task file's stamp may differ from its commit's time and still be used
MAIN_WALK = 100_000  # main's commits read for task trailers, at most


@dataclass
class Attempt:
    """One claim of a task: from its claim commit to the commit that ended it."""
    task: str
    worker: str
    token: int
    start: float
    claim_commit: str
    end: float | None = None  # None: still held (or still in the landing queue)
    handed: float | None = None  # when it was handed to the landing queue
    outcome: str = "held"  # done, failed, returned, released, lost, cancelled, held, landing
    end_commit: str | None = None
    reason: str | None = None
    runs: int | None = None  # agent runs its record counts (a rerun: main moved or a conflict), when recorded


@dataclass
class Landed:
    """A commit on main that names a task (Gitswarm-Task)."""
    commit: str
    at: float
    subject: str
    worker: str | None
    model: str | None
    tokens: int | None
    tested: str | None


@dataclass
class Report:
    remote: str
    tip: str
    tasks: list[T.Task]
    records: list[GoalRecord]
    attempts: list[Attempt]
    landed: dict[str, Landed]  # task id -> its commit on main
    throughput: list[tuple[float, int]]  # (time, tasks done so far) after each board commit that ended one
    queue: list[tuple[float, int]]  # (time, open + landing) after each board commit
    board_commits: dict[str, list[str]] = field(default_factory=dict)  # task id -> board commits naming it
    problems: list[str] = field(default_factory=list)

    def by_status(self) -> dict[str, int]:
        return {s: n for s in STATUSES if (n := sum(t.status == s for t in self.tasks))}

    def tokens_by_role(self) -> dict[str, int]:
        """Planner: the goal records' tokens but the judge's, and plan tasks'; judge: its verdicts';
        worker: work tasks' results."""
        judge = sum(v.tokens for r in self.records for v in r.verdicts)
        planner = sum(r.tokens for r in self.records) - judge
        planner += sum(_tokens(t) for t in self.tasks if t.kind == "plan")
        return {"planner": planner, "judge": judge, "worker": sum(_tokens(t) for t in self.tasks if t.kind == "work")}

    def cost_by_role(self) -> dict[str, float | None]:
        """USD, split as tokens_by_role (None: no run of that role said or was priced)."""
        judge = total_cost(v.cost for r in self.records for v in r.verdicts)
        on_records = total_cost(r.cost for r in self.records)  # planners' and judge's
        planners = None if on_records is None else max(0.0, on_records - (judge or 0.0))
        planner = total_cost([planners, *(_cost(t) for t in self.tasks if t.kind == "plan")])
        return {"planner": planner, "judge": judge, "worker": total_cost(_cost(t) for t in self.tasks if t.kind == "work")}

    def tokens_by_goal(self) -> dict[str, dict[str, Any]]:
        """{goal: {"goal": planners' and judge's, "tasks": its tasks', "total": both, "cost": USD or None}}."""
        found: dict[str, dict[str, Any]] = {}
        for r in self.records:
            mine = sum(_tokens(t) for t in self.tasks if t.goal == r.name)
            found[r.name] = {"goal": r.tokens, "tasks": mine, "total": r.tokens + mine,
                             "cost": spent_cost(r, self.tasks)}
        loose = sum(_tokens(t) for t in self.tasks if t.goal is None or t.goal not in found)
        if loose:
            found["(no goal)"] = {"goal": 0, "tasks": loose, "total": loose}
        return found

    def workers(self) -> list[str]:
        return sorted({a.worker for a in self.attempts})

    def summary(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in self.by_status().items()) or "no tasks"
        spent = sum(v["total"] for v in self.tokens_by_goal().values())
        return (f"{len(self.records)} goal(s), {len(self.tasks)} task(s): {states}; {len(self.attempts)} attempt(s) "
                f"by {len(self.workers())} worker(s); {spent} tokens"
                + (f"; {len(self.problems)} unreadable file(s) skipped" if self.problems else ""))


def _cost(task: T.Task) -> Any:
    return (task.result or {}).get("cost")


def _tokens(task: T.Task) -> int:
    value = (task.result or {}).get("tokens", 0)
    return value if isinstance(value, int) else 0


def build(remote: str) -> Report:
    """Fetch the hub's `tasks` and `main` into the local mirror and read the run from them."""
    with Board(remote) as board:
        board.refresh()
        tip = board.tip
        main = board.fetch_branch("main")
        repo = board.mirror.repo
        attempts, throughput, queue, named, problems = walk_board(repo, tip)
        landed = walk_main(repo, main) if main else {}
        counts = run_counts(board.mirror, problems)
        for a in attempts:
            a.runs = counts.get((a.task, a.token))
        tasks = sorted(board.tasks(), key=lambda t: (t.created, t.id))
        return Report(remote=board.remote, tip=tip, tasks=tasks, records=list(board.records().values()),
                      attempts=attempts, landed=landed, throughput=throughput, queue=queue,
                      board_commits=named, problems=list(board.problems) + problems)


def walk_board(repo, tip: str) -> tuple[list[Attempt], list[tuple[float, int]], list[tuple[float, int]],
                                        dict[str, list[str]], list[str]]:
    """Replay the board's history, oldest first: each commit's trailers and the task files it wrote."""
    status: dict[str, str] = {}
    open_attempts: dict[str, Attempt] = {}
    attempts: list[Attempt] = []
    throughput: list[tuple[float, int]] = []
    queue: list[tuple[float, int]] = []
    named: dict[str, list[str]] = {}
    problems: list[str] = []
    done = queued = 0  # tasks done, and open or landing, so far
    for commit in repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE):
        sha, committed = str(commit.id), float(commit.commit_time)
        at = committed
        info = rules.parse_trailers(commit.message, name=f"commit {sha[:10]}")
        if not info.tasks:
            continue
        before = done
        for task_id in info.tasks:
            named.setdefault(task_id, []).append(sha)
            task = _task_at(commit, task_id, problems)
            if task is None:
                continue
            stamp = _stamp(task, info.action, committed)
            at = max(at, stamp)
            done += (task.status == "done") - (status.get(task_id) == "done")
            queued += (task.status in QUEUED) - (status.get(task_id) in QUEUED)
            status[task_id] = task.status
            _attempt_step(open_attempts, attempts, info, task, sha, stamp)
        queue.append((at, queued))
        if done != before:
            throughput.append((at, done))
    return attempts, throughput, queue, named, problems


def _stamp(task: T.Task, action: str | None, committed: float) -> float:
    """When the change happened, to the microsecond: the stamp the writer put in the task file
    (claim.at, result.at) when it is within SKEW of the commit's time (whole seconds, the writer's
    clock too); the commit's time otherwise."""
    stamp = task.claim.at if action == "claim" and task.claim else (task.result or {}).get("at")
    try:
        at = T.timestamp(stamp) if isinstance(stamp, str) else None
    except ValueError:
        at = None
    return at if at is not None and abs(at - committed) <= SKEW else committed


def _task_at(commit, task_id: str, problems: list[str]) -> T.Task | None:
    path = T.task_path(task_id) if names.ID_RE.match(task_id) else None
    try:
        data = (commit.tree / path).data if path else None
    except KeyError:
        data = None
    if data is None:
        return None
    try:
        return T.parse(data, f"{path} at {str(commit.id)[:10]}")
    except TaskInvalid as e:
        problems.append(str(e))
        return None


def _attempt_step(live: dict[str, Attempt], attempts: list[Attempt], info: rules.CommitInfo, task: T.Task,
                  sha: str, at: float) -> None:
    """What one board commit did to a task's current attempt."""
    action = info.action or ""
    current = live.get(task.id)
    if action == "claim" and task.claim is not None:
        if current is not None:  # a claim we never saw end (a board written unguarded): call it lost
            _end(live, current, "lost", sha, at, None)
        live[task.id] = a = Attempt(task.id, task.claim.worker, task.claim.token, at, sha)
        attempts.append(a)
        return
    if current is None:
        return
    reason = (task.result or {}).get("reason")
    if action == "handoff":
        current.handed, current.outcome = at, "landing"
    elif action in OUTCOME:
        _end(live, current, OUTCOME[action], sha, at, reason if isinstance(reason, str) else None)
    elif task.status in ("dead", "cancelled"):
        _end(live, current, "lost" if task.status == "dead" else "cancelled", sha, at, reason)


def _end(live: dict[str, Attempt], attempt: Attempt, outcome: str, sha: str, at: float, reason: str | None) -> None:
    attempt.end, attempt.outcome, attempt.end_commit, attempt.reason = at, outcome, sha, reason
    live.pop(attempt.task, None)


def run_counts(mirror, problems: list[str]) -> dict[tuple[str, int], int]:
    """(task, attempt) -> how many agent runs its record says there were (attempt.yaml's `runs`),
    from the live records and the archive (gitswarm/runlog.py, gitswarm/runarchive.py): one
    `git ls-remote`, one fetch. A record that does not say is left out; one that cannot be read
    (written around the hub's guard) is left out and said in `problems`."""
    listed = mirror.remote_refs(f"{names.RUNS}*", names.ARCHIVE)
    if not listed:
        return {}
    refs = sorted(listed)
    for i in range(0, len(refs), FETCH_REFS):  # a command line of refspecs has a limit
        mirror.fetch_refs(refs[i:i + FETCH_REFS])
    trees: list[tuple[str, int, str, Any]] = []  # task, attempt, where, tree
    try:
        for ref, sha in listed.items():
            parsed = names.parse_runs_ref(ref)
            if parsed:
                try:
                    trees.append((parsed[0], parsed[1], ref, runlog.record_tree(mirror.repo, sha, ref)))
                except FileInvalid as e:
                    problems.append(_skipped(e, "record skipped"))
        if names.ARCHIVE in listed:
            for fan in runlog.record_tree(mirror.repo, listed[names.ARCHIVE], names.ARCHIVE):
                for task in (fan if fan.type_str == "tree" else ()):
                    for attempt in (task if task.type_str == "tree" else ()):
                        if attempt.type_str == "tree" and attempt.name.isdigit():
                            where = f"{names.ARCHIVE}:{fan.name}/{task.name}/{attempt.name}"
                            trees.append((task.name, int(attempt.name), where, attempt))
    except FileInvalid as e:  # the archive itself
        problems.append(_skipped(e, "archive skipped"))
    counts: dict[tuple[str, int], int] = {}
    for task_id, number, where, tree in trees:
        try:
            entry = tree[runlog.ATTEMPT_FILE]
        except KeyError:
            continue
        try:
            fields = runlog.read_record_yaml(entry.data if entry.type_str == "blob" else b"", where,
                                             runlog.ATTEMPT_FILE)
        except FileInvalid as e:
            problems.append(_skipped(e, "record skipped: its runs are not counted"))
            continue
        runs = fields.get("runs")
        if isinstance(runs, int) and not isinstance(runs, bool) and runs >= 0:
            counts.setdefault((task_id, number), runs)  # a live ref is read before the archive
    return counts


def _skipped(error: FileInvalid, what: str) -> str:
    return f"{error.message} ({what})" + (f"\nhint: {error.hint}" if error.hint else "")


def trailers(message: str) -> dict[str, list[str]]:
    """Every `Gitswarm-<Key>: value` line of a message's last paragraph, as rules.parse_trailers
    reads the board's (a body can never pass for a trailer), for main's other keys too."""
    found: dict[str, list[str]] = {}
    for key, value in rules.trailer_pairs(message):
        found.setdefault(key, []).append(value)
    return found


def walk_main(repo, main: str, most: int = MAIN_WALK) -> dict[str, Landed]:
    """Task id -> the last commit on main (first parents) that names it."""
    landed: dict[str, Landed] = {}
    walker = repo.walk(main, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    for n, commit in enumerate(walker):
        if n >= most:
            break
        keys = trailers(commit.message)
        for task_id in keys.get("Task", []):
            if task_id in landed:
                continue
            tokens = _first(keys, "Tokens")
            landed[task_id] = Landed(
                commit=str(commit.id), at=float(commit.commit_time),
                subject=commit.message.splitlines()[0] if commit.message else "",
                worker=_first(keys, "Worker"), model=_first(keys, "Model"),
                tokens=int(tokens) if tokens and tokens.isdigit() and len(tokens) < 16 else None,
                tested=_first(keys, "Tested"))
    return landed


def _first(keys: dict[str, list[str]], key: str) -> str | None:
    values = keys.get(key)
    return values[0] if values else None
