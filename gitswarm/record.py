"""A goal's record on the `tasks` branch: `goals/<name>.yaml`. Its state (active, done, stopped,
invalid), its cycle, the judge's verdicts and the tokens its planners and judge spent. Written by the
daemon and the judge (Gitswarm-Action: goal); read by everyone. Pure: no git."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from . import task as T
from .names import NAME_RE, SHA_RE
from .errors import TaskInvalid
from .text import TEXT_MAX
from .yamlfile import dump_yaml, load_yaml

STATES = ("active", "done", "stopped", "invalid")
DECISIONS = ("continue", "done", "stop")
FIELDS = ("name", "status", "cycle", "source", "reason", "tokens", "budget", "verdicts", "updated")
OPTIONAL = ("cost",)  # absent from records written before it was kept


@dataclass(frozen=True)
class Verdict:
    cycle: int
    decision: str
    reasons: str
    at: str
    tokens: int = 0
    cost: float | None = None  # USD, where known (absent from the record when None)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "cost" or v is not None}


@dataclass(frozen=True)
class GoalRecord:
    name: str
    status: str = "active"
    cycle: int = 1
    source: str | None = None  # the main commit whose goal file this record follows
    reason: str | None = None  # why the goal is invalid or stopped
    tokens: int = 0  # spent by its planners and judge (workers' spend is on their tasks)
    cost: float | None = None  # what they cost in USD, where known
    budget: int | None = None  # the goal file's token budget: once spent, the goal stops
    verdicts: tuple[Verdict, ...] = field(default=())
    updated: str = ""

    @property
    def path(self) -> str:
        return record_path(self.name)

    @property
    def ended(self) -> bool:
        return self.status in ("done", "stopped")

    def replace(self, **changes: Any) -> "GoalRecord":
        return replace(self, updated=T.now(), **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "cycle": self.cycle, "source": self.source,
                "reason": self.reason, "tokens": self.tokens, "budget": self.budget,
                "verdicts": [v.to_dict() for v in self.verdicts], "updated": self.updated,
                **({"cost": round(self.cost, 6)} if self.cost is not None else {})}

    def spend(self, tokens: int, cost: float | None) -> "GoalRecord":
        """The record with a planner's or judge's spend added."""
        return self.replace(tokens=self.tokens + tokens, cost=add_cost(self.cost, cost))


def record_path(name: str) -> str:
    return f"goals/{name}.yaml"


def name_from_path(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) != 2 or parts[0] != "goals" or not parts[1].endswith(".yaml"):
        return None
    name = parts[1][: -len(".yaml")]
    return name if NAME_RE.match(name) else None


def dump(record: GoalRecord) -> bytes:
    return dump_yaml(record.to_dict())


def parse(data: bytes, path: str) -> GoalRecord:
    """Parse and validate a goal record; TaskInvalid names the file and the field, whatever the
    bytes (one bad record on a board must not stop a refresh)."""
    v = T.BoardFields(path)
    doc = load_yaml(data, path, v.fail, T.MAX_FILE_BYTES)
    if not isinstance(doc, dict) or not set(FIELDS) <= set(doc) <= {*FIELDS, *OPTIONAL}:
        raise TaskInvalid(path, None, f"a goal record holds exactly: {', '.join(FIELDS)} (and may hold "
                                      f"{', '.join(OPTIONAL)})")
    verdicts = doc["verdicts"]
    if not isinstance(verdicts, list):
        raise TaskInvalid(path, "verdicts", "must be a list")
    record = GoalRecord(
        name=v.name("name", doc["name"], NAME_RE, "a goal name"),
        status=v.choice("status", doc["status"], STATES),
        cycle=v.integer("cycle", doc["cycle"], 1, 1_000_000),
        source=None if doc["source"] is None else v.match("source", doc["source"], SHA_RE, "a full commit id"),
        reason=None if doc["reason"] is None else v.text("reason", doc["reason"], TEXT_MAX),
        tokens=v.integer("tokens", doc["tokens"], 0, 10**15),
        budget=None if doc["budget"] is None else v.integer("budget", doc["budget"], 1, 10**15),
        verdicts=tuple(_verdict(v, i, item) for i, item in enumerate(verdicts)),
        updated=v.time("updated", doc["updated"]),
        cost=None if doc.get("cost") is None else v.number("cost", doc["cost"], 0, 10**9),
    )
    if name_from_path(path) not in (None, record.name):
        raise TaskInvalid(path, "name", f"{record.name} does not match the file name")
    return record


def _verdict(v: T.BoardFields, i: int, item: Any) -> Verdict:
    if not isinstance(item, dict) or not {"cycle", "decision", "reasons", "at", "tokens"} <= set(item) \
            <= {"cycle", "decision", "reasons", "at", "tokens", "cost"}:
        raise TaskInvalid(v.path, f"verdicts[{i}]", "holds cycle, decision, reasons, at and tokens (and may hold cost)")
    return Verdict(cycle=v.integer(f"verdicts[{i}].cycle", item["cycle"], 1, 1_000_000),
                   decision=v.choice(f"verdicts[{i}].decision", item["decision"], DECISIONS),
                   reasons=v.text(f"verdicts[{i}].reasons", item["reasons"], TEXT_MAX),
                   at=v.time(f"verdicts[{i}].at", item["at"]),
                   tokens=v.integer(f"verdicts[{i}].tokens", item["tokens"], 0, 10**15),
                   cost=None if item.get("cost") is None else v.number(f"verdicts[{i}].cost", item["cost"], 0, 10**9))


def new_record(name: str, source: str | None) -> GoalRecord:
    return GoalRecord(name=name, source=source, updated=T.now())


def spent(record: GoalRecord, tasks: list) -> int:
    """Tokens a goal has spent: its planners' and judge's (on the record) and its tasks'."""
    return record.tokens + sum(int((t.result or {}).get("tokens", 0)) for t in tasks if t.goal == record.name)


def spent_cost(record: GoalRecord, tasks: list) -> float | None:
    """What a goal has cost in USD, as `spent` counts tokens; None while no run's cost is known."""
    return total_cost([record.cost, *((t.result or {}).get("cost") for t in tasks if t.goal == record.name)])


def total_cost(costs: Iterable[Any]) -> float | None:
    """A sum of costs in USD where None (or anything not a number) is unknown, not zero: None
    while every part is."""
    known = [float(c) for c in costs if isinstance(c, (int, float)) and not isinstance(c, bool)]
    return round(sum(known), 6) if known else None


def add_cost(total: float | None, more: float | None) -> float | None:
    """`total` and `more`, as total_cost sums them."""
    return total_cost([total, more])
