"""A goal: `goals/<name>.md` on main. Pushing one starts a run. Markdown, with optional YAML front
matter between two `---` lines:

    ---
    budget: 2_000_000            # tokens for the whole run (or budget: {tokens: 2_000_000})
    judge: {every: 10m}          # how often the judge looks (default 10m)
    test: pytest -q              # main only ever points at trees that passed it; its result goes to the judge
    test_timeout: 30m            # a test run taking longer is killed and counts as failed (default 30m)
    land: train                  # train (default with test:): hand work to the landing queue; direct:
                                 # each worker tests on main's tip and lands itself
    train: {batch: 32, retry_red: 0, pretest: false}   # the train's batch size cap; reruns of a red
                                 # batch before bisecting it (a flaky test); whether a worker runs the
                                 # test on its own base before it hands its work to the queue
    check: ./ci/goal-met.sh      # the judge without a model: exit 0 means done
    models:                      # per-role settings over .gitswarm.yaml (see gitswarm.config)
      worker: {model: gpt-4o, max_steps: 80}
    max_depth: 2                 # how deep planners may hand areas to sub-planners (0 to 5; default: .gitswarm.yaml's)
    max_cycles: 10               # judge cycles before the run stops
    may_change: [.gitswarm/]     # what of .gitswarm.yaml, .gitswarm/ and goals/ its work may change (default: none)
    attempts: 3                  # best of N: each task done by 3 workers, one lands (or a list of
                                 # variants: [{model: a}, {model: b}]); also per task (gitswarm.attempts)
    select: ./score.sh           # what picks it: exit 0 and the last number printed is the score; without
                                 # it the judge's model compares the attempts
    tasks:                       # tasks given up front; a task with `run` needs no model
      - title: Migrate src/parser
        run: ./codemod.sh src/parser
      - title: Migrate src/render
        run: ./codemod.sh src/render
        depends_on: [Migrate src/parser]     # a title or an id from this list
    ---
    # A CSS selector parser
    Everything below the front matter is the goal, as the planner, workers and judge read it.

A task of `tasks:` without an `id` gets one derived from the goal's name, its title and how many
tasks before it have the same title: parsing the file again (or after reordering or editing other
tasks) gives it the same id.

Work may change the settings, prompts and goals on main only where its goal's `may_change` lists
them (workrules.check_may_change). Pure: no git, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from .config import ROLES, ConfigInvalid, parse_attempts, parse_role_overrides
from .errors import FileInvalid
from .names import GOAL_RE, ID_RE
from .task import (PRIORITY_RANGE, TITLE_MAX, UnknownDependency, cycle_text, dependency_id, find_cycle,
                   title_index)
from .text import TEXT_MAX
from .validate import Collect, Fields, shown, typename, unknown_hint
from .workrules import PROTECTED
from .yamlfile import load_yaml

__all__ = ["GOALS_DIR", "FIELDS", "TASK_FIELDS", "Goal", "GoalTask", "GoalInvalid", "parse_goal",
           "goal_path", "is_goal_path", "task_id_for", "goal_errors", "split_front_matter"]

GOALS_DIR = "goals"
FIELDS = ("budget", "judge", "test", "check", "models", "max_depth", "max_cycles", "may_change", "test_timeout",
          "land", "train", "tasks", "attempts", "select")
LAND_MODES = ("train", "direct")
TASK_FIELDS = ("id", "title", "description", "run", "depends_on", "priority", "attempts")
MAX_FILE_BYTES = 256 * 1024
MAX_TASKS = 1000
_NAME_HINT = "a goal's name is its file's: letters, digits, '.', '_' or '-', up to 64, starting with a letter or digit"


class GoalInvalid(FileInvalid):
    """A goal file breaks the rules."""


@dataclass(frozen=True)
class GoalTask:
    """A task given up front in the goal's `tasks:`. `depends_on` holds ids (titles resolved).
    `run`: a shell command that is the task's agent (no model); None: a worker's model does it."""

    id: str
    title: str
    description: str = ""
    run: str | None = None
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    attempts: tuple = field(default=(), hash=False)  # its best of N (gitswarm/attempts.py); (): the goal's


@dataclass(frozen=True)
class Goal:
    name: str
    body: str
    budget_tokens: int | None = None
    judge_every: float = 600.0
    test: str | None = None
    test_timeout: float = 1800.0
    land: str = "direct"  # train: the landing queue (the default with a test); direct: workers land
    batch: int = 32  # the train's largest batch
    retry_red: int = 0  # reruns of a red batch before it is bisected (a flaky test)
    pretest: bool = False  # a worker runs the test on its own base before it hands its work off
    check: str | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)
    max_depth: int | None = None  # None: .gitswarm.yaml's max_depth (default 2)
    max_cycles: int = 10
    may_change: tuple[str, ...] = ()  # items of PROTECTED its work may change
    tasks: list[GoalTask] = field(default_factory=list, hash=False)
    attempts: tuple = field(default=(), hash=False)  # its tasks' best of N (gitswarm/attempts.py)
    select: str | None = None  # the command that scores an attempt; None: the judge's model compares them

    @property
    def path(self) -> str:
        return goal_path(self.name)


# ---------------------------------------------------------------- paths

def goal_path(name: str) -> str:
    """Where goal `name` lives on main: goals/<name>.md."""
    if not isinstance(name, str) or not GOAL_RE.match(name):
        raise GoalInvalid(f"{GOALS_DIR}/", "name", f"{name!r} is not a goal name", _NAME_HINT)
    return f"{GOALS_DIR}/{name}.md"


def is_goal_path(path: str) -> bool:
    """Whether a path on main is a goal file: goals/<name>.md, directly in goals/ (a README there
    explains the folder; it is no goal)."""
    head, _, rest = path.partition("/")
    return (head == GOALS_DIR and "/" not in rest and rest.endswith(".md") and bool(GOAL_RE.match(rest[:-3]))
            and rest.lower() != "readme.md")


def task_id_for(goal_name: str, title: str, occurrence: int = 0) -> str:
    """The id of a goal's task that gives none: derived from the goal's name, the task's title
    and `occurrence` (0 for the first task with this title, 1 for the second, ...)."""
    digest = hashlib.sha256(f"{goal_name}\n{title}\n{occurrence}".encode("utf-8")).hexdigest()
    return f"t-{digest[:10]}"


# ---------------------------------------------------------------- parsing

def parse_goal(path: str, text: str) -> Goal:
    """Parse and validate a goal file. `path` is like goals/css-parser.md (its stem is the name).
    Raises GoalInvalid naming the file, the field and the fix: the first problem found."""
    return _parse(path, text, Collect())


def goal_errors(path: str, text: str) -> list[GoalInvalid]:
    """Every problem of a goal file, by the same checks as parse_goal: one per field (a problem of
    the whole file, like YAML that does not parse, is the only one). [] when it is valid."""
    errors: list = []
    try:
        _parse(path, text, Collect(errors))
    except GoalInvalid as e:
        errors.append(e)
    return errors


def _parse(path: str, text: str, collect: Collect) -> Goal:
    base = path.rsplit("/", 1)[-1]
    if not base.endswith(".md"):
        raise GoalInvalid(path, None, "a goal file's name ends in .md", "rename it goals/<name>.md")
    name = base[:-3]
    if not GOAL_RE.match(name):
        raise GoalInvalid(path, "name", f"{name!r} is not a goal name", _NAME_HINT)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise GoalInvalid(path, None, f"is {size} bytes; the limit is {MAX_FILE_BYTES}",
                          "put long material in the repository and point to it from the goal")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    front, body = split_front_matter(path, text)
    v = _Fields(path)
    doc: Any = {}
    if front is not None:
        # a blank line for the opening ---, so that YAML's line numbers are the file's
        doc = load_yaml("\n" + front, path, v.fail, MAX_FILE_BYTES)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise v.fail(None, f"the front matter must be a YAML mapping, not {typename(doc)}",
                         f"write key: value lines; the keys are: {', '.join(FIELDS)}")
    for key in doc:
        if key not in FIELDS:
            collect.add(v.fail(str(key), "unknown field", unknown_hint(key, FIELDS)))
    body = collect(lambda: v.text("body", body.strip("\n").rstrip(), 128 * 1024, required=True,
                                  hint="write what the goal is, in Markdown, below the front matter"), "")
    train = collect(lambda: v.train(doc.get("train")), (32, 0, False))
    max_depth = doc.get("max_depth")
    return Goal(
        name=name,
        body=body,
        budget_tokens=collect(lambda: v.budget(doc.get("budget")), None),
        judge_every=collect(lambda: v.judge(doc.get("judge")), 600.0),
        test=collect(lambda: v.command("test", doc.get("test")), None),
        test_timeout=1800.0 if doc.get("test_timeout") is None else collect(
            lambda: v.duration("test_timeout", doc["test_timeout"]), 1800.0),
        land=collect(lambda: v.land(doc.get("land"), doc.get("test")), "direct"),
        batch=train[0],
        retry_red=train[1],
        pretest=train[2],
        check=collect(lambda: v.command("check", doc.get("check")), None),
        models=collect(lambda: v.models(doc.get("models")), {}),
        max_depth=None if max_depth is None else collect(lambda: v.integer("max_depth", max_depth, 0, 5), None),
        max_cycles=collect(lambda: v.integer("max_cycles", doc.get("max_cycles", 10), 1, 1000), 10),
        may_change=collect(lambda: v.may_change(doc.get("may_change")), ()),
        tasks=collect(lambda: v.tasks(name, doc.get("tasks")), []),
        attempts=collect(lambda: v.attempts("attempts", doc.get("attempts")), ()),
        select=collect(lambda: v.command("select", doc.get("select")), None),
    )


def split_front_matter(path: str, text: str) -> tuple[str | None, str]:
    """(front matter, body); the front matter is None when the file does not open with ---."""
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return None, text
    for i in range(1, len(lines)):
        if lines[i].rstrip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:])
    raise GoalInvalid(path, None, "the front matter opened by --- on line 1 is never closed",
                      "end it with a line holding only ---, then write the goal below it")


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


class _Fields(Fields):
    """The toolkit's checks, with GoalInvalid as the error, and a goal's own fields."""

    def __init__(self, path: str):
        super().__init__(lambda field_name, problem, hint=None: GoalInvalid(path, field_name, problem, hint))
        self.path = path

    def budget(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, dict):
            self.known_keys("budget", value, ("tokens",), "the budget holds")
            if value.get("tokens") is None:
                return None
            return self.integer("budget.tokens", value["tokens"], 1, 10**12)
        if isinstance(value, str):
            raise self.fail("budget", f"{shown(value)} is not a number of tokens",
                            "write digits, with _ to group them: budget: 2_000_000")
        return self.integer("budget", value, 1, 10**12)

    def land(self, value: Any, test: Any) -> str:
        if value is None:
            return "train" if test is not None else "direct"
        value = self.choice("land", value, LAND_MODES, hint="train: workers hand their work to the landing queue, "
                            "which tests batches and lands them (the default with test:); direct: each worker tests "
                            "and lands its own")
        if value == "train" and test is None:
            raise self.fail("land", "train needs a test: command (the train lands batches that pass it)",
                            "give test:, or write land: direct (or leave land out)")
        return value

    def train(self, value: Any) -> tuple[int, int, bool]:
        if value is None:
            return 32, 0, False
        if not isinstance(value, dict):
            raise self.fail("train", f"must be a mapping, not {typename(value)}", "write train: {batch: 32, retry_red: 0}")
        self.known_keys("train", value, ("batch", "retry_red", "pretest"), "train holds")
        batch = 32 if value.get("batch") is None else self.integer("train.batch", value["batch"], 1, 256)
        retry = 0 if value.get("retry_red") is None else self.integer("train.retry_red", value["retry_red"], 0, 3)
        return batch, retry, self.flag("train.pretest", value.get("pretest", False))

    def judge(self, value: Any) -> float:
        if value is None:
            return 600.0
        if not isinstance(value, dict):
            raise self.fail("judge", f"must be a mapping, not {typename(value)}", "write judge: {every: 10m}")
        self.known_keys("judge", value, ("every",), "judge holds")
        return 600.0 if value.get("every") is None else self.duration("judge.every", value["every"])

    def may_change(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        hint = f"write a list of any of: {', '.join(PROTECTED)}, e.g. may_change: [.gitswarm/]"
        what = "one of " + ", ".join(PROTECTED)
        return self.list_of("may_change", value, lambda where, item: self.choice(where, item, PROTECTED, what, hint),
                            64, "protected paths", hint)

    def attempts(self, name: str, value: Any) -> tuple:
        return () if value is None else parse_attempts(value, name, self.fail)

    def models(self, value: Any) -> dict[str, dict[str, Any]]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail("models", f"must be a mapping of roles, not {typename(value)}",
                            f"write models: {{worker: {{model: gpt-4o}}}}; the roles are: {', '.join(ROLES)}")
        self.known_keys("models", value, ROLES, "the roles are", "unknown role")
        out: dict[str, dict[str, Any]] = {}
        for role, settings in value.items():
            try:
                out[role] = parse_role_overrides(settings, self.path, f"models.{role}")
            except ConfigInvalid as e:
                raise self.fail(e.field, e.problem, e.hint) from None
            if role != "worker" and "attempts" in out[role]:
                raise self.fail(f"models.{role}.attempts", "is a worker setting", "put it under models.worker, "
                                "or give the goal attempts:")
        return out

    def tasks(self, goal_name: str, value: Any) -> list[GoalTask]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail("tasks", f"must be a list of tasks, not {typename(value)}",
                            "write one `- title: ...` item per task")
        if len(value) > MAX_TASKS:
            raise self.fail("tasks", f"lists {len(value)} tasks; the limit is {MAX_TASKS}",
                            "split the work over several goals, or let a planner break it down")
        seen_titles: dict[str, int] = {}
        ids: dict[str, str] = {}  # id -> field name of the task holding it
        out: list[GoalTask] = []
        for i, item in enumerate(value):
            where = f"tasks[{i}]"
            if not isinstance(item, dict):
                raise self.fail(where, f"must be a mapping, not {typename(item)}",
                                "write `- title: ...` with optional id, description, run, depends_on, priority")
            self.known_keys(where, item, TASK_FIELDS, "a task holds")
            if "title" not in item:
                raise self.fail(f"{where}.title", "missing", "every task needs a one-line title")
            title = self.text(f"{where}.title", item["title"], TITLE_MAX, required=True, single_line=True)
            occurrence = seen_titles.get(title, 0)
            seen_titles[title] = occurrence + 1
            task_id = task_id_for(goal_name, title, occurrence) if item.get("id") is None else item["id"]
            if not isinstance(task_id, str) or not ID_RE.match(task_id):
                raise self.fail(f"{where}.id", f"{shown(task_id)} is not a task id",
                                "write t- then 2 to 48 lowercase letters, digits or dashes "
                                "(t-parser-1), or leave id out to have one derived")
            if task_id in ids:
                raise self.fail(f"{where}.id", f"{task_id} is also the id of {ids[task_id]}",
                                "give each task its own id")
            ids[task_id] = where
            priority = item.get("priority")
            out.append(GoalTask(
                id=task_id, title=title,
                description=self.text(f"{where}.description", _or(item.get("description"), ""), TEXT_MAX),
                run=self.command(f"{where}.run", item.get("run")),
                priority=0 if priority is None else self.integer(f"{where}.priority", priority, *PRIORITY_RANGE),
                attempts=self.attempts(f"{where}.attempts", item.get("attempts")),
            ))
        return self._resolve(out, value)

    def _resolve(self, tasks: list[GoalTask], items: list[dict[str, Any]]) -> list[GoalTask]:
        """Turn each task's depends_on (ids or titles in the same list) into ids; refuse cycles."""
        ids, titles = {t.id for t in tasks}, title_index(tasks)
        resolved: list[GoalTask] = []
        for i, (task, item) in enumerate(zip(tasks, items)):
            deps = self.list_of(f"tasks[{i}].depends_on", _or(item.get("depends_on"), []),
                                lambda name, ref: self._dependency(name, ref, task.id, ids, titles), MAX_TASKS,
                                "titles or ids", "write depends_on: [<title or id>, ...]")
            resolved.append(replace(task, depends_on=deps))
        loop = find_cycle({t.id: t.depends_on for t in resolved})
        if loop:
            by_id = {t.id: (i, t) for i, t in enumerate(resolved)}
            titles_text = cycle_text([repr(by_id[x][1].title) for x in loop])
            raise self.fail(f"tasks[{by_id[loop[0]][0]}].depends_on", f"the tasks depend on each other in a "
                            f"circle: {titles_text}", "remove one of these dependencies")
        return resolved

    def _dependency(self, name: str, ref: Any, own: str, ids: set[str], titles: dict[str, list[str]]) -> str:
        if not isinstance(ref, str):
            raise self.fail(name, f"{shown(ref)} is not a task's id or title", "quote it")
        try:
            dep = dependency_id(ref, ids, titles)
        except UnknownDependency as e:
            if e.count:
                raise self.fail(name, f"{e.count} tasks have the title {ref!r}",
                                "give the task you mean an id: and depend on the id") from None
            raise self.fail(name, f"no task in tasks has the id or title {ref!r}",
                            "name the exact title or the id of another task of this goal") from None
        if dep == own:
            raise self.fail(name, "a task cannot depend on itself", "remove it")
        return dep
