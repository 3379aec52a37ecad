"""Task files for the board's rules, shared by tests/test_rules_table.py (the rules called
directly) and tests/test_guard.py (the same rules through the hub's hook): fixed ids, a fixed
creation time, files of a given size, a YAML bomb."""

from __future__ import annotations

from typing import Callable

from gitswarm import task as T
from gitswarm.task import Task, new_task

CREATED = "2026-11-25T08:30:00Z"
A, B, C = "t-ab12cd34", "t-cd56ef78", "t-ef90ab12"
PA, PB = T.task_path(A), T.task_path(B)  # tasks/ab/t-ab12cd34.yaml, tasks/cd/t-cd56ef78.yaml


def mk(task_id: str = A, **fields) -> Task:
    """A new open task with a fixed id and creation time."""
    fields.setdefault("title", f"Task {task_id}")
    return new_task(task_id=task_id, created=CREATED, **fields)


def sized(task: Task, size: int) -> bytes:
    """The task's file padded with a trailing comment to exactly `size` bytes."""
    data = T.dump(task)
    pad = size - len(data) - 2
    assert pad >= 0
    return data + b"#" + b"x" * pad + b"\n"


def set_fields(**values) -> Callable[[dict], None]:
    """A change to a task's mapping: these fields set to these values."""
    return lambda d: d.update(values)


BILLION_LAUGHS = "".join(
    [f"id: {A}\n", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    + [f"{x}: &{x} [{', '.join(['*' + p] * 9)}]\n" for p, x in zip("abcdefgh", "bcdefghi")]
    + ["title: *i\n"])
