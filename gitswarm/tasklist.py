"""`gitswarm task add --from FILE`: a YAML list of tasks people write, made tasks (in the file's
order, one microsecond apart, so that their age keeps it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import task as T
from .errors import GitswarmError
from .yamlfile import load_yaml

MAX_BYTES = 16 * 1024 * 1024  # a plan of many thousand tasks


def tasks_from_file(handle: Any) -> list[T.Task]:
    name = getattr(handle, "name", "input")
    doc = load_yaml(handle.read(), name, max_bytes=MAX_BYTES)
    if not isinstance(doc, list) or not doc:
        raise GitswarmError(f"{name}: expected a YAML list of tasks", "- title: ...\n  description: ...")
    allowed = {"title", "description", "kind", "depends_on", "priority", "goal", "parent", "id"}
    created = T.now()
    out = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict) or "title" not in item:
            raise GitswarmError(f"{name}: item {i + 1}: needs at least a title")
        extra = set(item) - allowed
        if extra:
            raise GitswarmError(f"{name}: item {i + 1}: unknown field {sorted(extra)[0]}",
                                f"the fields are: {', '.join(sorted(allowed))}")
        fields = {k: v for k, v in item.items() if k != "id"}
        fields["depends_on"] = tuple(fields.get("depends_on") or ())
        out.append(T.new_task(task_id=item.get("id"), created=_offset(created, i), **fields))
    return out


def _offset(stamp: str, micros: int) -> str:
    """Keep a file's order as the tasks' age: one microsecond apart."""
    t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(microseconds=micros)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
