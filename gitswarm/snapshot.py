"""The board as last parsed, kept beside the local mirror: a client that starts fresh loads it and
parses only the files that changed since, instead of every task file (YAML at ~120 µs a file: 12 s
for 100,000 tasks). Derived data, keyed by the commit it was read from, so it is never wrong, only
old; a file that cannot be read is ignored and the board is parsed again.

JSON, not pickle: loading a cache must never run code."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import __version__, record
from . import task as T
from .errors import TaskInvalid
from .record import GoalRecord
from .task import Claim, Task

FORMAT = 1
FILE = "gitswarm-board.json"
FIELDS = [f.name for f in fields(Task)]  # a row holds these, in this order


class Snapshot:
    def __init__(self, tip: str, tasks: dict[str, Task], records: dict[str, GoalRecord], problems: list[str]):
        self.tip, self.tasks, self.records, self.problems = tip, tasks, records, problems


def save(folder: Path, snap: Snapshot) -> None:
    """Write atomically (several processes share a mirror: the last writer wins, each whole)."""
    doc = {"format": FORMAT, "version": __version__, "fields": FIELDS, "tip": snap.tip,
           "tasks": [_row(t) for t in snap.tasks.values()],
           "records": {name: record.dump(r).decode() for name, r in snap.records.items()},
           "problems": snap.problems}
    tmp = folder / f".{FILE}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(tmp, folder / FILE)


def load(folder: Path) -> Snapshot | None:
    try:
        with open(folder / FILE) as f:
            doc = json.load(f)
        if (doc.get("format"), doc.get("version"), doc.get("fields")) != (FORMAT, __version__, FIELDS):
            return None
        tasks = {row[0]: _task(row) for row in doc["tasks"]}
        records = {name: record.parse(text.encode(), record.record_path(name))
                   for name, text in doc["records"].items()}
        return Snapshot(str(doc["tip"]), tasks, records, [str(p) for p in doc["problems"]])
    except (OSError, ValueError, KeyError, TypeError, IndexError, TaskInvalid):
        return None


def _row(t: Task) -> list[Any]:
    claim = [t.claim.worker, t.claim.token, t.claim.at, t.claim.lease] if t.claim else None
    return [t.id, t.title, t.description, t.kind, t.goal, t.parent, list(t.depends_on), t.priority, t.status,
            t.attempts, claim, t.result, t.created]


def _task(row: list[Any]) -> Task:
    claim = Claim(*row[10]) if row[10] is not None else None
    return T.Task(row[0], row[1], row[2], row[3], row[4], row[5], tuple(row[6]), row[7], row[8], row[9], claim,
                  row[11], row[12])
