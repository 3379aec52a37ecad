"""What `gitswarm status` shows: the serve running the hub, each goal and its spend, the landing
queue and its train (gitswarm/queuestatus.py), and the tasks by state; or all of it as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import queuestatus
from . import task as T
from .board import Board

STATUS_ORDER = ("claimed", "landing", "open", "failed", "done", "dead", "cancelled")


def render(remote: str, as_json: bool) -> tuple[str, list[str]]:
    """(the text to print, the board files that do not parse)."""
    with Board(remote) as board:
        board.refresh()
        tasks, ready_ids = board.tasks(), {t.id for t in board.ready()}
        problems, records = board.problems, board.records()
        landing = queuestatus.read(board)
    if as_json:
        return json.dumps({"tasks": [t.to_dict() for t in tasks],
                           "goals": [goal_summary(r, tasks) for r in records.values()],
                           "queue": landing}, indent=2), problems
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
                     f"done, {g['tokens']} tokens{budget}" + (f" ({r.reason.splitlines()[0][:100]})" if r.reason else ""))
    lines += queuestatus.format_queue(landing)
    lines.append(format_status(tasks, ready_ids))
    return "\n".join(lines), problems


def _serving(remote: str) -> dict | None:
    """What the hub's `serve` runs with, where the hub is a folder on this machine."""
    if "://" in remote or not (Path(remote) / "gitswarm").is_dir():
        return None
    from .serving import alive

    return alive(Path(remote))


def goal_summary(record: Any, tasks: list[T.Task]) -> dict[str, Any]:
    """A goal's state with what it has spent: its planners' and judge's tokens (on its record) and
    its tasks' (on their results)."""
    from .record import spent

    mine = [t for t in tasks if t.goal == record.name]
    return {"name": record.name, "status": record.status, "cycle": record.cycle, "tokens": spent(record, tasks),
            "budget": record.budget, "tasks": len(mine), "tasks_done": sum(t.status == "done" for t in mine),
            "reason": record.reason}


def format_status(tasks: list[T.Task], ready_ids: set[str]) -> str:
    counts = {s: sum(1 for t in tasks if t.status == s) for s in STATUS_ORDER}
    lines = ["  ".join(f"{s} {n}" for s, n in counts.items() if n) or "no tasks"]
    for s in STATUS_ORDER:
        group = [t for t in tasks if t.status == s]
        if not group:
            continue
        lines += ["", f"{s.upper()} ({len(group)})"]
        for t in group:
            note = ""
            if t.claim:
                note = f"  [{t.claim.worker}, token {t.claim.token}]"
            elif s == "open":
                note = "  [ready]" if t.id in ready_ids else f"  [waits for {', '.join(t.depends_on)}]"
            elif t.result and "worker" in t.result:
                note = f"  [{t.result['worker']}]"
            lines.append(f"  {t.id:<14} {t.kind:<4} {t.priority:>4}  {t.title}{note}")
    return "\n".join(lines)
