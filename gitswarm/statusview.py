"""What `gitswarm status` shows: the serve running the hub, each goal and its spend, the landing
queue and its train (gitswarm/queuestatus.py), and the tasks by state; or all of it as JSON."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import attempts, git, names, queuestatus
from . import task as T
from .board import Board
from .errors import GitswarmError
from .queuestatus import ago
from .state import rested_at
from .statuses import ENDED, FINAL, SHOWN
from .text import printable

WHY_MAX = 160  # characters of a last error or reason shown in the table (its first line)


@dataclass(frozen=True)
class Retries:
    """How the hub retries a task (`.gitswarm.yaml` on main, else the defaults)."""
    max_attempts: int = 3
    retry_backoff: float = 10.0
    source: str = "defaults"


def render(remote: str, as_json: bool) -> tuple[str, list[str]]:
    """(the text to print, the board files that do not parse)."""
    with Board(remote) as board:
        board.refresh()
        retries = read_retries(board)
        board.retry_backoff = retries.retry_backoff  # a task resting after a failure is not ready
        tasks, ready = board.tasks(), board.ready()
        problems, records = board.problems, board.records()
        landing = queuestatus.read(board)
    if as_json:
        return json.dumps({"tasks": [t.to_dict() for t in tasks],
                           "goals": [goal_summary(r, tasks) for r in records.values()],
                           "queue": landing, "ready": [t.id for t in ready],
                           "retries": {"max_attempts": retries.max_attempts, "retry_backoff": retries.retry_backoff,
                                       "from": retries.source}}, indent=2), problems
    lines = []
    live = _serving(remote)
    if live:
        off = " (agent commands run unsandboxed on that host)" if live.get("sandbox") == "off" else ""
        lines.append(f"serve: pid {live['pid']} on {live['host']} since {live.get('started', '?')}, "
                     f"sandbox: {live.get('sandbox', '?')}{off}")
    for r in records.values():
        g = goal_summary(r, tasks)
        budget = f" of a {g['budget']} budget" if g["budget"] else ""
        lines.append(f"goal {g['name']}: {g['status']}, cycle {g['cycle']}, {g['tasks_done']}/{g['tasks']} tasks "
                     f"done, {g['tokens']} tokens{budget}{dollars(g['cost'])}" + (f" ({r.reason.splitlines()[0][:100]})" if r.reason else "")
                     + (f"; waits for {g['waits']}" if g["waits"] else ""))
    lines += queuestatus.format_queue(landing)
    lines.append(format_status(tasks, {t.id for t in ready}, retries))
    return "\n".join(lines), problems


def read_retries(board: Board) -> Retries:
    """max_attempts and retry_backoff as the hub's `.gitswarm.yaml` on main sets them, read without
    fetching main (it may be large): in the hub itself when it is a folder here, else in what this
    machine last fetched of main (a worker here fetches it). The defaults when neither has main, or
    the file does not parse (the daemon says why)."""
    from .config import CONFIG_PATH, load_config

    local = "://" not in board.remote and Path(board.remote).is_dir()
    where, ref = ((Path(board.remote), names.MAIN) if local
                  else (board.mirror.path, names.kept_ref(names.MAIN_BRANCH)))
    found, data = git.read_at_ref(where, ref, CONFIG_PATH)
    if not found:
        return Retries(source="defaults: main not fetched here" if not local else "defaults")
    try:
        settings = load_config(data.decode(errors="replace") if data is not None else None)
    except GitswarmError:
        return Retries(source=f"defaults: {CONFIG_PATH} on main does not parse")
    said = f"{CONFIG_PATH} on main" + ("" if local else " as last fetched") if data is not None else "defaults"
    return Retries(settings.max_attempts, settings.retry_backoff, said)


def _serving(remote: str) -> dict | None:
    """What the hub's `serve` runs with, where the hub is a folder on this machine."""
    if "://" in remote or not (Path(remote) / "gitswarm").is_dir():
        return None
    from .serving import alive

    return alive(Path(remote))


def dollars(cost: float | None) -> str:
    """`, $1.23` (USD, to the cent, or to four places below a dollar), or "" when the cost is unknown."""
    from .text import usd

    return "" if cost is None else f", {usd(cost)}"


def waits_for(record: Any, tasks: list[T.Task], clock: Any, now: float) -> str:
    """What a goal waits for, in words: its planner or judge at work or due (`clock`: serve's, in
    its live view; None elsewhere), its tasks still to end; an ended goal: why it ended."""
    if record.status != "active":
        return one_line(record.reason, 80)
    said = []
    if clock is not None and getattr(clock, "planning", False):
        said.append("planner running")
    elif clock is not None and getattr(clock, "plan_due", None) is not None:
        said.append(f"planner in {ago(clock.plan_due - now)}")
    if clock is not None and getattr(clock, "judging", False):
        said.append("judge running")
    busy = sum(t.status not in ENDED for t in tasks)
    if busy:
        said.append(f"{busy} task(s) to end")
    if clock is not None and not getattr(clock, "judging", False) and getattr(clock, "judge_due", None):
        said.append(f"judge in {ago(clock.judge_due - now)}")
    return ", ".join(said) or "its planner or judge (in serve)"


def goal_summary(record: Any, tasks: list[T.Task]) -> dict[str, Any]:
    """A goal's state with what it has spent: its planners' and judge's tokens (on its record) and
    its tasks' (on their results)."""
    from .record import spent, spent_cost

    mine = [t for t in tasks if t.goal == record.name]
    return {"name": record.name, "status": record.status, "cycle": record.cycle, "tokens": spent(record, tasks),
            "cost": spent_cost(record, tasks),
            "budget": record.budget, "tasks": len(mine), "tasks_done": sum(t.status == "done" for t in mine),
            "reason": record.reason,
            "waits": waits_for(record, mine, None, time.time()) if record.status == "active" and not record.reason else None}


HEADER = f"  {'ID':<14} {'KIND':<4} {'PRI':>4} {'TRY':>5}  {'STATE':<18} TITLE"
DETAIL = " " * 17  # a task's second line (why, who, what it waits for) starts under KIND


def format_status(tasks: list[T.Task], ready_ids: set[str], retries: Retries = Retries(),
                  now: float | None = None) -> str:
    """The task table: a line of counts, then per state a header and a row per task (TRY: attempts
    so far of the most the hub allows; STATE: what happens next), and under a row the detail that
    explains it: the claim (#n is its fencing token), the last error, what it waits for."""
    now = time.time() if now is None else now
    counts = {s: sum(1 for t in tasks if t.status == s) for s in SHOWN}
    done = {t.id for t in tasks if t.status == "done"}
    by_id = {t.id: t for t in tasks}
    backoff = f", {ago(retries.retry_backoff)} before a retry, doubling" if retries.retry_backoff else ""
    lines = ["  ".join(f"{s} {n}" for s, n in counts.items() if n) or "no tasks",
             f"retries: at most {retries.max_attempts} attempts a task{backoff} ({retries.source})"]
    for s in SHOWN:
        group = [t for t in tasks if t.status == s]
        if not group:
            continue
        lines += ["", f"{s.upper()} ({len(group)})", HEADER]
        for t in group:
            state, detail = explain(t, t.id in ready_ids, retries, now, done, by_id.get)
            lines.append(f"  {t.id:<14} {t.kind:<4} {t.priority:>4} {f'{t.attempts}/{retries.max_attempts}':>5}  "
                         f"{state:<18} {t.title}")
            lines += [DETAIL + d for d in detail]
    return "\n".join(lines)


def explain(t: T.Task, is_ready: bool, retries: Retries, now: float,
            done: set[str] | None = None, find: Callable[[str], T.Task | None] | None = None) -> tuple[str, list[str]]:
    """(the STATE column of a task, the detail lines under it; `done`: the ids of the done tasks,
    which a waiting task no longer waits for; `find`: a task by id, for the attempts of best of N)."""
    result = t.result or {}
    worker = one_line(result.get("worker"), 64)
    why = one_line(result.get("reason"), WHY_MAX)
    if t.claim:
        held = now - board_time(t.claim.at, now)
        return f"claimed {ago(held)} ago", [f"claim #{t.claim.token} by {t.claim.worker}, lease {ago(t.claim.lease)}"]
    if t.status == "landing":
        commit = str(result.get("commit", ""))[:10]
        return f"queued {ago(now - board_time(result.get('at'), now))} ago", [f"by {worker}, commit {commit}"]
    if t.status == "open":
        detail = [f"last error: {why}"] if why else []
        if is_ready:
            return "ready", detail
        rest = rested_at(t, retries.retry_backoff)
        if now < rest < math.inf:
            return f"retry in {ago(rest - now)}", detail
        pending = [d for d in t.depends_on if d not in (done or set())]
        kids = attempts.children(t.id, find) if find else []
        pending += [k.id for k in kids if k.status not in FINAL]
        waits = [f"waits for {', '.join(pending)}"] if pending else []
        return "waiting", waits + detail
    if t.status == "failed":
        if t.attempts >= retries.max_attempts:
            state = "out of tries"
        else:
            rest = rested_at(t, retries.retry_backoff)
            state = f"retry in {ago(rest - now)}" if now < rest < math.inf else "retry due"
        return state, [f"last error: {why or '(none given)'}"] + ([f"by {worker}"] if worker else [])
    if t.status in ("dead", "cancelled"):
        return t.status, [f"why: {why or '(none given)'}"]
    return (f"by {worker}" if worker else t.status), []


def one_line(text: Any, limit: int) -> str:
    """The first line of untrusted text (None: ""), printable, at most `limit` characters."""
    line = printable(str(text or "")).strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."


def board_time(stamp: Any, default: float) -> float:
    """A board time (untrusted text) in seconds since the epoch; `default` when it is not one."""
    try:
        return T.timestamp(stamp)
    except (ValueError, TypeError, AttributeError, IndexError):
        return default
