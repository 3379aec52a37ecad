"""`gitswarm task add --from FILE`: a YAML list of tasks people write, made tasks (in the file's
order, one microsecond apart, so that their age keeps it). Each item is checked as a task list's
(gitswarm/taskitem.py): an error names the file, the item and the field."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import task as T
from .errors import FileInvalid
from .taskitem import ItemFields
from .yamlfile import load_yaml

MAX_BYTES = 16 * 1024 * 1024  # a plan of many thousand tasks


def tasks_from_file(handle: Any) -> list[T.Task]:
    name = getattr(handle, "name", "input")
    doc = load_yaml(handle.read(), name, max_bytes=MAX_BYTES)
    if not isinstance(doc, list) or not doc:
        raise FileInvalid(name, None, "expected a YAML list of tasks", "- title: ...\n  description: ...")
    v = ItemFields(lambda field, problem, hint=None: FileInvalid(name, field, problem, hint))
    created = T.now()
    return [T.new_task(created=_offset(created, i), **v.item(f"item {i + 1}", item)) for i, item in enumerate(doc)]


def _offset(stamp: str, micros: int) -> str:
    """Keep a file's order as the tasks' age: one microsecond apart."""
    t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(microseconds=micros)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
