"""The task model: one YAML file per task on the `tasks` branch. Parsing, validation and dumping.

Pure: no git, no I/O. The JSON Schema in tasks/task.schema.json describes the same file; the tests
check that both agree on the examples.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import yaml

from .errors import TaskInvalid
from .names import ID_RE, NAME_RE, SHA_RE
from .text import CONTROL_RE, TEXT_MAX  # CONTROL_RE: the characters a board file refuses in text

try:  # libyaml is an order of magnitude faster; PyPI wheels ship it
    _Loader: Any = yaml.CSafeLoader
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Loader, _Dumper = yaml.SafeLoader, yaml.SafeDumper

MAX_FILE_BYTES = 64 * 1024
MAX_LEASE = 7 * 24 * 3600
MAX_SKEW = 300  # seconds a claim's stamp may differ from the hub's clock when it is pushed
KINDS = ("work", "plan")
STATUSES = ("open", "claimed", "landing", "done", "failed", "dead", "cancelled")
ENDED = ("done", "failed", "dead", "cancelled")
FIELDS = ("id", "title", "description", "kind", "goal", "parent", "depends_on", "priority",
          "status", "attempts", "claim", "result", "created")
RESULT_KEYS = ("worker", "at", "commit", "summary", "reason", "tokens", "cost")

TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z\Z")
_TITLE_MAX, _TEXT_MAX = 200, TEXT_MAX


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
    ignored), as its path from the first node back to it; None when there is none. Iterative: a
    chain of any depth is walked without recursion."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if state.get(start):
            continue
        path, stack = [start], [iter(graph[start])]
        state[start] = 1
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                state[path.pop()] = 2
                stack.pop()
            elif dep not in graph or state.get(dep) == 2:
                continue
            elif state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            else:
                state[dep] = 1
                path.append(dep)
                stack.append(iter(graph[dep]))
    return None


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
    """Parse and validate one task file. Raises TaskInvalid naming the file and the field."""
    if len(data) > MAX_FILE_BYTES:
        raise TaskInvalid(path, None, f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}",
                          "shorten the description; put long material in the repository and link it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskInvalid(path, None, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    _refuse_tags_and_aliases(text, path)
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise TaskInvalid(path, None, f"not valid YAML: {_one_line(e)}") from None
    return from_dict(doc, path)


def _refuse_tags_and_aliases(text: str, path: str) -> None:
    """Refuse what safe_load would quietly accept: tags, anchors and aliases (YAML bombs among
    them), and a key given twice in one mapping (the last would win unseen)."""
    maps: list[list] = []  # per open collection: [keys seen, next node is a key] (None for a list)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise TaskInvalid(path, None, "YAML anchors and aliases are not allowed",
                                  "write every value out in full")
            tag = getattr(event, "tag", None)
            if tag is not None:
                raise TaskInvalid(path, None, f"YAML tags are not allowed (found {tag})",
                                  "remove the tag; task files hold plain maps, lists and scalars")
            if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)) and maps and maps[-1]:
                top = maps[-1]
                if top[1] and isinstance(event, yaml.ScalarEvent):
                    if event.value in top[0]:
                        raise TaskInvalid(path, event.value, "given twice", "keep one of them")
                    top[0].add(event.value)
                top[1] = not top[1]
            if isinstance(event, yaml.MappingStartEvent):
                maps.append([set(), True])
            elif isinstance(event, yaml.SequenceStartEvent):
                maps.append(None)  # type: ignore[arg-type]
            elif isinstance(event, yaml.CollectionEndEvent):
                maps.pop()
    except yaml.YAMLError as e:
        raise TaskInvalid(path, None, f"not valid YAML: {_one_line(e)}") from None


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def from_dict(doc: Any, path: str) -> Task:
    if not isinstance(doc, dict):
        raise TaskInvalid(path, None, "a task file must hold a YAML mapping",
                          f"see tasks/examples/ for the fields: {', '.join(FIELDS)}")
    unknown = [k for k in doc if k not in FIELDS]
    if unknown:
        raise TaskInvalid(path, str(unknown[0]), "unknown field",
                          f"the fields are: {', '.join(FIELDS)}")
    missing = [k for k in FIELDS if k not in doc]
    if missing:
        raise TaskInvalid(path, missing[0], "missing", "every field must be present (null where empty)")
    v = _Validator(path)
    task = Task(
        id=v.name("id", doc["id"], ID_RE, "t- then 2 to 48 lowercase letters, digits or dashes"),
        title=v.text("title", doc["title"], _TITLE_MAX, single_line=True, required=True),
        description=v.text("description", doc["description"], _TEXT_MAX),
        kind=v.choice("kind", doc["kind"], KINDS),
        goal=v.optional_name("goal", doc["goal"], NAME_RE, "letters, digits, '.', '_', '@' or '-'"),
        parent=v.optional_name("parent", doc["parent"], ID_RE, "a task id"),
        depends_on=v.ids("depends_on", doc["depends_on"]),
        priority=v.integer("priority", doc["priority"], -1_000_000, 1_000_000),
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


class _Validator:
    def __init__(self, path: str):
        self.path = path

    def fail(self, field_name: str, problem: str, hint: str | None = None) -> TaskInvalid:
        return TaskInvalid(self.path, field_name, problem, hint)

    def text(self, name: str, value: Any, limit: int, single_line: bool = False,
             required: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {_typename(value)}")
        if required and not value.strip():
            raise self.fail(name, "must not be empty")
        if len(value) > limit:
            raise self.fail(name, f"is {len(value)} characters; the limit is {limit}")
        if single_line and ("\n" in value or "\r" in value):
            raise self.fail(name, "must be a single line")
        bad = CONTROL_RE.search(value)
        if bad:
            raise self.fail(name, f"holds a control or invisible character (U+{ord(bad.group()):04X})",
                            "remove it; only printable text, newlines and tabs are allowed")
        return value

    def match(self, name: str, value: Any, regex: re.Pattern[str], what: str) -> str:
        if not isinstance(value, str) or not regex.match(value):
            shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
            raise self.fail(name, f"{shown} is not valid", f"expected {what}")
        return value

    def time(self, name: str, value: Any) -> str:
        """A board time: its shape, and a date and time that exist (no February 30, no 24:00)."""
        self.match(name, value, TIME_RE, "UTC time like 2026-11-25T08:30:00Z")
        try:
            timestamp(value)
        except ValueError as e:
            raise self.fail(name, f"{value!r} is not a real date ({e})",
                            "write a UTC time that exists, like 2026-11-25T08:30:00Z") from None
        return value

    def name(self, name: str, value: Any, regex: re.Pattern[str], what: str) -> str:
        """A task id, goal or worker name: one string object however many tasks name it (a board
        of 100,000 tasks parses each id once per change and names its workers over and over)."""
        return sys.intern(self.match(name, value, regex, what))

    def optional_name(self, name: str, value: Any, regex: re.Pattern[str], what: str) -> str | None:
        return None if value is None else self.name(name, value, regex, what)

    def choice(self, name: str, value: Any, options: tuple[str, ...]) -> str:
        if value not in options or not isinstance(value, str):
            raise self.fail(name, f"{value!r} is not one of: {', '.join(options)}")
        return options[options.index(value)]  # the constant, not a copy per task

    def integer(self, name: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, not {_typename(value)}")
        if not low <= value <= high:
            raise self.fail(name, f"{value} is out of range ({low} to {high})")
        return value

    def number(self, name: str, value: Any, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, not {_typename(value)}")
        if not low <= value <= high:  # NaN is in no range
            raise self.fail(name, f"{value} is out of range ({low:g} to {high:g})")
        return value

    def ids(self, name: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list of task ids, not {_typename(value)}")
        if len(value) > 256:
            raise self.fail(name, f"lists {len(value)} tasks; the limit is 256")
        out = tuple(self.name(f"{name}[{i}]", item, ID_RE, "a task id") for i, item in enumerate(value))
        if len(set(out)) != len(out):
            raise self.fail(name, "lists a task twice")
        return out

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
            raise self.fail("result", f"must be null or a mapping, not {_typename(value)}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key not in RESULT_KEYS:
                raise self.fail(f"result.{key}", "unknown field", f"result holds: {', '.join(RESULT_KEYS)}")
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
                out[key] = self.text(f"result.{key}", item, _TEXT_MAX)
        return out


def _typename(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------- dumping

def dump(task: Task) -> bytes:
    return dump_mapping(task.to_dict())


def dump_mapping(doc: dict[str, Any]) -> bytes:
    """A board file's YAML: fields in their order, block style, UTF-8."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100).encode("utf-8")


def new_task(title: str, description: str = "", *, kind: str = "work", goal: str | None = None,
             parent: str | None = None, depends_on: tuple[str, ...] | list[str] = (), priority: int = 0,
             task_id: str | None = None, created: str | None = None) -> Task:
    """A new open task, validated: raises TaskInvalid for a bad title, kind, id..."""
    task = Task(id=task_id or new_id(), title=title, description=description, kind=kind, goal=goal,
                parent=parent, depends_on=tuple(depends_on), priority=priority,
                created=created or now())
    return from_dict(task.to_dict(), f"new task {task.title[:40]!r}")
