"""The task model: one YAML file per task on the `tasks` branch. Parsing, validation and dumping.

Pure: no git, no I/O. The JSON Schema in tasks/task.schema.json describes the same file; the tests
check that both agree on the examples.
"""

from __future__ import annotations

import dataclasses
import graphlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Container, Iterable, Mapping

from .errors import TaskInvalid
from .names import ID_RE, NAME_RE, SHA_RE
from .statuses import ENDED, STATUSES
from .text import TEXT_MAX
from .validate import Fields, typename
from .yamlfile import dump_yaml, load_yaml

MAX_FILE_BYTES = 64 * 1024
MAX_LEASE = 7 * 24 * 3600
MAX_SKEW = 300  # seconds a claim's stamp may differ from the hub's clock when it is pushed
KINDS = ("work", "plan")
FIELDS = ("id", "title", "description", "kind", "goal", "parent", "depends_on", "priority",
          "status", "attempts", "claim", "result", "created")
RESULT_KEYS = ("worker", "at", "commit", "summary", "reason", "tokens", "cost")

TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z\Z")
TITLE_MAX = 200
PRIORITY_RANGE = (-1_000_000, 1_000_000)  # higher goes first
DEPENDS_MAX = 256  # tasks one task may depend on


@dataclass(frozen=True)
class Claim:
    worker: str
    token: int
    at: str
    lease: int = 900  # seconds without news from the holder after which the claim may be taken back


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    description: str = ""
    kind: str = "work"
    goal: str | None = None
    parent: str | None = None
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    status: str = "open"
    attempts: int = 0
    claim: Claim | None = None
    result: dict[str, Any] | None = field(default=None, hash=False)
    created: str = ""

    @property
    def path(self) -> str:
        return task_path(self.id)

    @property
    def age(self) -> str:
        """`created` with six fraction digits, so that it sorts as time (a hand-written file may
        give fewer)."""
        head, _, frac = self.created[:-1].partition(".")
        return f"{head}.{frac:0<6}"

    def replace(self, **changes: Any) -> "Task":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "description": self.description, "kind": self.kind,
            "goal": self.goal, "parent": self.parent, "depends_on": list(self.depends_on),
            "priority": self.priority, "status": self.status, "attempts": self.attempts,
            "claim": dataclasses.asdict(self.claim) if self.claim else None,
            "result": dict(self.result) if self.result is not None else None,
            "created": self.created,
        }


def now() -> str:
    """The current UTC time in the board's format (microseconds, so that age orders a batch)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timestamp(stamp: str) -> float:
    """Seconds since the epoch of a board time (`2026-11-25T08:30:00.123456Z`)."""
    s = stamp  # in TIME_RE's shape; ValueError for a date or time that does not exist
    frac = s[20:-1]
    return datetime(int(s[:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19]),
                    tzinfo=timezone.utc).timestamp() + (float("0." + frac) if frac else 0.0)


def last_news(claim: Claim, heard: float | None, now: float) -> float | None:
    """When the holder of a claim last gave news, on the hub's clock: the last move of its
    heartbeat ref (`heard`, the hub's reflog) when there is one, else the claim's own stamp, never
    later than now. A stamp further ahead than MAX_SKEW never passed the hub's guard (it refuses
    such claims): it says nothing, and None means the claim counts as silent."""
    if heard is not None:
        return min(heard, now)
    at = timestamp(claim.at)
    return None if at > now + MAX_SKEW else min(at, now)


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in a dependency graph (node -> the nodes it depends on; nodes outside the graph are
    ignored), as its path from a node back to it, each node depending on the next; None when there
    is none. graphlib's: a chain of any depth is walked without recursion."""
    try:
        graphlib.TopologicalSorter({node: [d for d in deps if d in graph] for node, deps in graph.items()}).prepare()
    except graphlib.CycleError as e:
        return list(reversed(e.args[1]))  # graphlib's runs from each dependency to what depends on it
    return None


def title_index(tasks: Iterable[Any]) -> dict[str, list[str]]:
    """The ids of tasks (anything with an id and a title) by title, for `dependency_id`."""
    out: dict[str, list[str]] = {}
    for t in tasks:
        if t.id not in out.setdefault(t.title, []):
            out[t.title].append(t.id)
    return out


class UnknownDependency(ValueError):
    """A depends_on entry that names no task: `count` tasks have its title (0, or several)."""

    def __init__(self, ref: str, count: int):
        super().__init__(f"{count} tasks have the title {ref!r}" if count else f"no task has the id or title {ref!r}")
        self.ref, self.count = ref, count


def dependency_id(ref: str, ids: Container[str], titles: Mapping[str, list[str]]) -> str:
    """The id a depends_on entry written by a person or a planner names: an id of `ids` as it is,
    else the title of exactly one task (`titles`: title_index). A title several tasks share names
    none of them: UnknownDependency, as for a title no task has."""
    if ref in ids:
        return ref
    found = titles.get(ref, ())
    if len(found) == 1:
        return found[0]
    raise UnknownDependency(ref, len(found))


def cycle_text(names: list[str], most: int = 12) -> str:
    """A cycle's path for a message: `a -> b -> a`, its middle left out when it is long."""
    if len(names) <= most:
        return " -> ".join(names)
    return " -> ".join(names[: most - 2]) + f" -> ... ({len(names) - most} more) -> " + " -> ".join(names[-2:])


def new_id() -> str:
    return "t-" + os.urandom(4).hex()


def task_path(task_id: str) -> str:
    """Where a task lives on the `tasks` branch: fanned out by the two characters after `t-`."""
    return f"tasks/{task_id[2:4]}/{task_id}.yaml"


def id_from_path(path: str) -> str | None:
    """The id a path under tasks/ must hold, or None when the path is not a task file's."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] != "tasks" or not parts[2].endswith(".yaml"):
        return None
    task_id = parts[2][: -len(".yaml")]
    if not ID_RE.match(task_id) or parts[1] != task_id[2:4]:
        return None
    return task_id


# ---------------------------------------------------------------- parsing

def parse(data: bytes, path: str) -> Task:
    """Parse and validate one task file. Raises TaskInvalid naming the file and the field, whatever
    the bytes (not UTF-8, not YAML, tags, aliases, too big)."""
    return from_dict(load_yaml(data, path, BoardFields(path).fail, MAX_FILE_BYTES), path)


def from_dict(doc: Any, path: str) -> Task:
    if not isinstance(doc, dict):
        raise TaskInvalid(path, None, "a task file must hold a YAML mapping",
                          f"see tasks/examples/ for the fields: {', '.join(FIELDS)}")
    v = BoardFields(path)
    v.known_keys(None, doc, FIELDS)
    missing = [k for k in FIELDS if k not in doc]
    if missing:
        raise TaskInvalid(path, missing[0], "missing", "every field must be present (null where empty)")
    task = Task(
        id=v.name("id", doc["id"], ID_RE, "t- then 2 to 48 lowercase letters, digits or dashes"),
        title=v.text("title", doc["title"], TITLE_MAX, single_line=True, required=True),
        description=v.text("description", doc["description"], TEXT_MAX),
        kind=v.choice("kind", doc["kind"], KINDS),
        goal=v.optional("goal", doc["goal"], NAME_RE, "letters, digits, '.', '_', '@' or '-'"),
        parent=v.optional("parent", doc["parent"], ID_RE, "a task id"),
        depends_on=v.ids("depends_on", doc["depends_on"]),
        priority=v.integer("priority", doc["priority"], *PRIORITY_RANGE),
        status=v.choice("status", doc["status"], STATUSES),
        attempts=v.integer("attempts", doc["attempts"], 0, 1_000_000),
        claim=v.claim(doc["claim"]),
        result=v.result(doc["result"]),
        created=v.time("created", doc["created"]),
    )
    check_consistent(task, path)
    return task


def check_consistent(task: Task, path: str) -> None:
    """Invariants of a single task that tie fields to its status."""
    if task.id in task.depends_on:
        raise TaskInvalid(path, "depends_on", "a task cannot depend on itself")
    if task.parent == task.id:
        raise TaskInvalid(path, "parent", "a task cannot be its own parent")
    if task.status == "claimed":
        if task.claim is None:
            raise TaskInvalid(path, "claim", "a claimed task needs a claim (worker, token, at)")
        if task.claim.token != task.attempts:
            raise TaskInvalid(path, "claim.token", f"must equal attempts ({task.attempts})",
                              "the token is the claim's number: attempts after the claim")
    elif task.claim is not None:
        raise TaskInvalid(path, "claim", f"must be null while the task is {task.status}")
    if task.status == "landing":
        for need in ("commit", "summary"):
            if task.result is None or need not in task.result:
                raise TaskInvalid(path, f"result.{need}", "missing (a task handed to the landing queue states "
                                  "its commit, kept at refs/gitswarm/land/<id>, and its summary)")
    if task.status == "open" and task.result is not None and "reason" not in task.result:
        raise TaskInvalid(path, "result", "an open task's result is null or says why its last attempt ended",
                          "give result.reason, or null")
    if task.status in ENDED:
        if task.result is None:
            raise TaskInvalid(path, "result", f"a {task.status} task needs a result")
        need = {"done": "summary", "failed": "reason", "dead": "reason", "cancelled": "reason"}[task.status]
        if need not in task.result:
            raise TaskInvalid(path, f"result.{need}", f"missing (a {task.status} task states its {need})")
    if task.status == "claimed" and task.result is not None:
        raise TaskInvalid(path, "result", "must be null while the task is claimed")


class BoardFields(Fields):
    """The checks of a board file's fields (a task file, a goal record: gitswarm.record): the
    toolkit's, and a board time, task ids, a claim and a result. Errors are TaskInvalid."""

    def __init__(self, path: str):
        super().__init__(lambda field_name, problem, hint=None: TaskInvalid(path, field_name, problem, hint))
        self.path = path

    def optional(self, name: str, value: Any, regex: re.Pattern[str], what: str) -> str | None:
        return None if value is None else self.name(name, value, regex, what)

    def time(self, name: str, value: Any) -> str:
        """A board time: its shape, and a date and time that exist (no February 30, no 24:00)."""
        self.match(name, value, TIME_RE, "UTC time like 2026-11-25T08:30:00Z")
        try:
            timestamp(value)
        except ValueError as e:
            raise self.fail(name, f"{value!r} is not a real date ({e})",
                            "write a UTC time that exists, like 2026-11-25T08:30:00Z") from None
        return value

    def ids(self, name: str, value: Any) -> tuple[str, ...]:
        return self.list_of(name, value, lambda where, item: self.name(where, item, ID_RE, "a task id"),
                            DEPENDS_MAX, "task ids")

    def claim(self, value: Any) -> Claim | None:
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) != {"worker", "token", "at", "lease"}:
            raise self.fail("claim", "must be null or a mapping of worker, token, at and lease")
        return Claim(
            worker=self.name("claim.worker", value["worker"], NAME_RE, "a worker name"),
            token=self.integer("claim.token", value["token"], 1, 1_000_000),
            at=self.time("claim.at", value["at"]),
            lease=self.integer("claim.lease", value["lease"], 1, MAX_LEASE),
        )

    def result(self, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail("result", f"must be null or a mapping, not {typename(value)}")
        self.known_keys("result", value, RESULT_KEYS, "result holds")
        out: dict[str, Any] = {}
        for key, item in value.items():
            key = RESULT_KEYS[RESULT_KEYS.index(key)]  # the constant: no key strings per task
            if key == "commit":
                out[key] = self.match("result.commit", item, SHA_RE, "a full commit id")
            elif key == "worker":
                out[key] = self.name("result.worker", item, NAME_RE, "a worker name")
            elif key == "tokens":
                out[key] = self.integer("result.tokens", item, 0, 10**12)
            elif key == "cost":
                out[key] = self.number("result.cost", item, 0, 10**9)
            elif key == "at":
                out[key] = self.time("result.at", item)
            else:
                out[key] = self.text(f"result.{key}", item, TEXT_MAX)
        return out


# ---------------------------------------------------------------- dumping

def dump(task: Task) -> bytes:
    return dump_yaml(task.to_dict())


def new_task(title: str, description: str = "", *, kind: str = "work", goal: str | None = None,
             parent: str | None = None, depends_on: tuple[str, ...] | list[str] = (), priority: int = 0,
             task_id: str | None = None, created: str | None = None) -> Task:
    """A new open task, validated: raises TaskInvalid for a bad title, kind, id..."""
    task = Task(id=task_id or new_id(), title=title, description=description, kind=kind, goal=goal,
                parent=parent, depends_on=tuple(depends_on), priority=priority,
                created=created or now())
    return from_dict(task.to_dict(), f"new task {task.title[:40]!r}")
