"""Goal files (goals/<name>.md): front matter, defaults, derived task ids, and errors that name
the file, the field and the fix."""

from __future__ import annotations

import pytest

from gitswarm.goal import Goal, GoalInvalid, GoalTask, goal_path, is_goal_path, parse_goal, task_id_for
from gitswarm.names import ID_RE
from gitswarm.validate import parse_duration

PATH = "goals/css-parser.md"

FULL = """\
---
budget: 2_000_000
judge: {every: 1h30m}
test: pytest -q
check: ./ci/goal-met.sh
models:
  worker: {model: gpt-4o, wall_time: 20m, max_steps: 80}
  judge: {backend: command, command: ./judge.sh}
max_depth: 3
max_cycles: 4
may_change: [.gitswarm/, goals/]
tasks:
  - title: Migrate src/parser
    run: ./codemod.sh src/parser
    priority: 5
  - title: Migrate src/render
    description: The renderer, after the parser.
    run: ./codemod.sh src/render
    depends_on: [Migrate src/parser]
  - id: t-docs
    title: Update the docs
    depends_on: [t-docs-before, Migrate src/render]
  - id: t-docs-before
    title: Write the changelog
---
# A CSS selector parser

Parse every CSS 3 selector.
"""


def goal(front: str | None = None, body: str = "Do the thing.\n", path: str = "goals/x.md") -> Goal:
    text = body if front is None else f"---\n{front}\n---\n{body}"
    return parse_goal(path, text)


# ---------------------------------------------------------------- valid goals

def test_a_full_goal():
    g = parse_goal(PATH, FULL)
    assert g.name == "css-parser" and g.path == PATH
    assert g.body == "# A CSS selector parser\n\nParse every CSS 3 selector."
    assert g.budget_tokens == 2_000_000
    assert g.judge_every == 5400.0
    assert (g.test, g.check) == ("pytest -q", "./ci/goal-met.sh")
    assert g.models == {"worker": {"model": "gpt-4o", "wall_time": 1200.0, "max_steps": 80},
                        "judge": {"backend": "command", "command": "./judge.sh"}}
    assert (g.max_depth, g.max_cycles, g.may_change) == (3, 4, (".gitswarm/", "goals/"))
    parser, render, docs, changelog = g.tasks
    assert parser == GoalTask(task_id_for("css-parser", "Migrate src/parser"), "Migrate src/parser", "",
                              "./codemod.sh src/parser", (), 5)
    assert render.description == "The renderer, after the parser." and render.depends_on == (parser.id,)
    assert docs.id == "t-docs" and docs.run is None
    assert docs.depends_on == ("t-docs-before", render.id)  # an id, then a title, each resolved
    assert changelog.id == "t-docs-before"


def test_a_goal_without_front_matter_takes_the_defaults():
    g = parse_goal("goals/plain.md", "# Plain\n\nJust do it.\n")
    assert g == Goal(name="plain", body="# Plain\n\nJust do it.")
    assert (g.budget_tokens, g.judge_every, g.test, g.check) == (None, 600.0, None, None)
    assert (g.models, g.max_depth, g.max_cycles, g.tasks) == ({}, None, 10, [])  # None: the settings' max_depth
    assert g.may_change == ()  # its work may change no settings, prompts or goals


def test_empty_front_matter_and_nulls_take_the_defaults():
    assert goal("") == goal(None)
    assert goal("budget: null\njudge: null\ntest: null\nmodels: null\ntasks: null\nmay_change: null") == goal(None)
    assert goal("judge: {every: null}\nbudget: {tokens: null}").judge_every == 600.0


@pytest.mark.parametrize("front, tokens", [
    ("budget: 2000000", 2_000_000),
    ("budget: 2_000_000", 2_000_000),
    ("budget: {tokens: 500}", 500),
    ("budget: {tokens: 1_000}", 1000),
])
def test_budget(front: str, tokens: int):
    assert goal(front).budget_tokens == tokens


def test_windows_line_endings_and_a_byte_order_mark():
    g = parse_goal(PATH, "\ufeff" + FULL.replace("\n", "\r\n"))
    assert g == parse_goal(PATH, FULL)


def test_a_multi_line_test_command():
    assert goal("test: |\n  make build\n  make test").test == "make build\nmake test"


def test_a_goal_of_only_tasks_with_run_commands():
    g = goal("tasks:\n" + "".join(f"  - {{title: Migrate dir{i}, run: ./migrate.sh dir{i}}}\n"
                                   for i in range(3)) + "check: ./all-migrated.sh")
    assert [t.run for t in g.tasks] == [f"./migrate.sh dir{i}" for i in range(3)]
    assert g.check == "./all-migrated.sh"


# ---------------------------------------------------------------- derived ids

TASKS = """\
tasks:
  - title: First
  - title: Second
    depends_on: [Third]
  - title: First
  - title: Third
"""


def test_derived_ids_are_valid_and_stable_across_parses():
    one, two = goal(TASKS), goal(TASKS)
    ids = [t.id for t in one.tasks]
    assert ids == [t.id for t in two.tasks]
    assert all(ID_RE.match(i) for i in ids)
    assert len(set(ids)) == 4  # the two "First" tasks differ
    assert one.tasks[1].depends_on == (ids[3],)  # "Third", by title


def test_derived_ids_survive_reordering_and_edits_of_other_tasks():
    before = {t.title: t.id for t in goal(TASKS).tasks if t.title != "First"}
    edited = ("tasks:\n  - title: Zeroth\n  - title: Third\n    description: now described\n"
              "  - title: Second\n")
    after = {t.title: t.id for t in goal(edited).tasks}
    assert after["Third"] == before["Third"] and after["Second"] == before["Second"]


def test_derived_ids_depend_on_the_goal():
    assert goal(TASKS, path="goals/a.md").tasks[0].id != goal(TASKS, path="goals/b.md").tasks[0].id
    assert goal(TASKS, path="goals/a.md").tasks[0].id == task_id_for("a", "First", 0)
    assert goal(TASKS, path="goals/a.md").tasks[2].id == task_id_for("a", "First", 1)


# ---------------------------------------------------------------- durations

@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("1h0m5s", 3605),
    ("1.5h", 5400), ("90", 90), ("0.5", 0.5), (" 10m ", 600), (45, 45), (2.5, 2.5), ("0s", 0),
])
def test_parse_duration(text: str | int | float, seconds: float):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10 minutes", "10min", "", "m", "10M", "1m1h", "1h 30m", "-5s", "1e3",
                                  "٣s", "ten", None, True, -1, float("inf"), float("nan"), [1]])
def test_parse_duration_refuses(text: object):
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


# ---------------------------------------------------------------- paths

def test_goal_path_and_is_goal_path():
    assert goal_path("css-parser") == "goals/css-parser.md"
    assert is_goal_path("goals/css-parser.md") and is_goal_path("goals/v1.2_x.md")
    for path in ("goals/sub/x.md", "goals/x.txt", "goals/.md", "goals/-x.md", "x.md", "goals.md",
                 "other/goals/x.md", "goals/a b.md", "goals/" + "x" * 65 + ".md"):
        assert not is_goal_path(path), path
    with pytest.raises(GoalInvalid) as raised:
        goal_path("../etc")
    assert raised.value.field == "name" and "hint:" in str(raised.value)


# ---------------------------------------------------------------- errors

INVALID = [
    # (front matter or None for the text as is, field, words in the message, words in the hint)
    ("judge: {every: 10 minutes}", "judge.every", "'10 minutes' is not a duration", "30s, 10m"),
    ("judge: {every: 0s}", "judge.every", "out of range", "1s"),
    ("judge: 10m", "judge", "must be a mapping", "judge: {every: 10m}"),
    ("judge: {often: 10m}", "judge.often", "unknown field", "every"),
    ("owner: alice", "owner", "unknown field", "budget, judge, test, check, models, max_depth"),
    ("budget: 2M", "budget", "not a number of tokens", "2_000_000"),
    ("budget: 0", "budget", "out of range", "from 1"),
    ("budget: true", "budget", "whole number", "from 1"),
    ("budget: {tokens: -5}", "budget.tokens", "out of range", "from 1"),
    ("budget: {dollars: 5}", "budget.dollars", "unknown field", "tokens"),
    ("test: 5", "test", "must be a shell command", "quote it"),
    ("check: ''", "check", "must not be empty", "shell command"),
    ("test: \"make\\u200b test\"", "test", "invisible character", "remove it"),
    ("models: {worker: {model: gpt-4o, speed: fast}}", "models.worker.speed", "unknown setting", "max_steps"),
    ("models: {reviewer: {model: x}}", "models.reviewer", "unknown role", "planner, worker, judge"),
    ("models: {worker: {wall_time: soon}}", "models.worker.wall_time", "not a duration", "30s, 10m"),
    ("models: [worker]", "models", "must be a mapping", "planner, worker, judge"),
    ("models: {worker: gpt-4o}", "models.worker", "must be a mapping", "model"),
    ("max_depth: 6", "max_depth", "out of range", "from 0 to 5"),
    ("max_depth: two", "max_depth", "whole number", "from 0 to 5"),
    ("max_cycles: 0", "max_cycles", "out of range", "from 1"),
    ("may_change: .gitswarm/", "may_change", "must be a list", "any of: .gitswarm.yaml, .gitswarm/, goals/"),
    ("may_change: [.gitswarm]", "may_change[0]", "'.gitswarm' is not one of .gitswarm.yaml, .gitswarm/, goals/",
     "may_change: [.gitswarm/]"),
    ("may_change: [src/]", "may_change[0]", "is not one of", "goals/"),
    ("may_change: [goals/, goals/]", "may_change[1]", "listed twice", "keep one"),
    ("models: {worker: {api_key_env: AWS_SECRET_ACCESS_KEY}}", "models.worker.api_key_env",
     "is not a setting main may give", "endpoints.yaml"),
    ("tasks: {title: x}", "tasks", "must be a list", "- title:"),
    ("tasks: [x]", "tasks[0]", "must be a mapping", "title"),
    ("tasks: [{description: x}]", "tasks[0].title", "missing", "title"),
    ("tasks: [{title: ''}]", "tasks[0].title", "must not be empty", "text"),
    ("tasks: [{title: \"a\\nb\"}]", "tasks[0].title", "single line", "description"),
    ("tasks: [{title: a, kind: plan}]", "tasks[0].kind", "unknown field", "id, title, description, run"),
    ("tasks: [{title: a, id: T-1}]", "tasks[0].id", "is not a task id", "t-"),
    ("tasks: [{title: a, id: t-xy}, {title: b, id: t-xy}]", "tasks[1].id", "also the id of tasks[0]", "its own id"),
    ("tasks: [{title: a, run: 7}]", "tasks[0].run", "must be a shell command", "quote it"),
    ("tasks: [{title: a, priority: high}]", "tasks[0].priority", "whole number", "from -1000000"),
    ("tasks: [{title: a, description: [x]}]", "tasks[0].description", "must be text", "quote"),
    ("tasks: [{title: a, depends_on: b}]", "tasks[0].depends_on", "must be a list", "depends_on: ["),
    ("tasks: [{title: a, depends_on: [b]}]", "tasks[0].depends_on[0]", "no task in tasks", "exact title or the id"),
    ("tasks: [{title: a, depends_on: [a]}]", "tasks[0].depends_on[0]", "cannot depend on itself", "remove"),
    ("tasks: [{title: a}, {title: b, depends_on: [a, a]}]", "tasks[1].depends_on[1]", "listed twice", "keep one"),
    ("tasks: [{title: a}, {title: a}, {title: b, depends_on: [a]}]", "tasks[2].depends_on[0]",
     "2 tasks have the title 'a'", "give the task you mean an id"),
    ("tasks: [{title: a, depends_on: [c]}, {title: b, depends_on: [a]}, {title: c, depends_on: [b]}]",
     "tasks[0].depends_on", "circle: 'a' -> 'c' -> 'b' -> 'a'", "remove one"),
    ("tasks: [{title: a, depends_on: [1]}]", "tasks[0].depends_on[0]", "not a task's id or title", "quote"),
    # YAML the front matter may not hold
    ("test: !!str make", "test", "YAML tags are not allowed", "remove the tag"),
    ("test: &t make\ncheck: *t", "test", "anchors and aliases", "in full"),
    ("tasks:\n  - title: a\n    title: b", "tasks[0].title", "given twice", "keep one"),
    ("test: make\ntest: make", "test", "given twice", "keep one"),
    ("- a list", None, "must be a YAML mapping", "budget, judge"),
    ("test: [", None, "not valid YAML", "indentation"),
]


@pytest.mark.parametrize("front, field, problem, hint", INVALID,
                         ids=[f"{i}-{case[1]}" for i, case in enumerate(INVALID)])
def test_invalid_goals_name_the_file_the_field_and_the_fix(front: str, field: str | None, problem: str,
                                                            hint: str):
    with pytest.raises(GoalInvalid) as raised:
        goal(front)
    e = raised.value
    assert (e.path, e.field) == ("goals/x.md", field)
    message, _, given_hint = str(e).partition("\nhint: ")
    assert message.startswith(f"goals/x.md: {field}: " if field else "goals/x.md: "), message
    assert problem in message
    assert hint in given_hint, given_hint


@pytest.mark.parametrize("path, text, field, problem", [
    ("goals/x.md", "", "body", "must not be empty"),
    ("goals/x.md", "---\nbudget: 5\n---\n\n  \n", "body", "must not be empty"),
    ("goals/x.md", "---\nbudget: 5\n# no closing line\n", None, "never closed"),
    ("goals/x.md", "Body with a bell \x07", "body", "control or invisible character"),
    ("goals/x.md", "x" * (256 * 1024 + 1), None, "the limit is 262144"),
    ("goals/a b.md", "Body", "name", "'a b' is not a goal name"),
    ("goals/x.txt", "Body", None, "ends in .md"),
])
def test_invalid_files(path: str, text: str, field: str | None, problem: str):
    with pytest.raises(GoalInvalid) as raised:
        parse_goal(path, text)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value) and "\nhint: " in str(raised.value)


def test_yaml_errors_give_the_line_in_the_file():
    with pytest.raises(GoalInvalid) as raised:
        parse_goal("goals/x.md", "---\ntest: make\nbudget: [1\n---\nBody\n")
    assert "line 4" in str(raised.value)  # the closing --- is line 4 of the file


# ---------------------------------------------------------------- what a goal's work may change

def test_protected_paths():
    from gitswarm.workrules import protected

    assert [protected(p) for p in (".gitswarm.yaml", ".gitswarm", ".gitswarm/prompts/worker.md", "goals",
                                   "goals/x.md", "goals/sub/y.md")] == [
        ".gitswarm.yaml", ".gitswarm/", ".gitswarm/", "goals/", "goals/", "goals/"]
    assert [protected(p) for p in (".gitswarm.yml", ".gitswarmx/a", "goalsx/a", "src/goals/x.md", "README.md",
                                   ".gitswarm.yaml.bak")] == [None] * 6


def test_check_may_change():
    from gitswarm.errors import RuleViolation
    from gitswarm.workrules import check_may_change

    g = goal("may_change: [.gitswarm/]", path="goals/g.md")
    check_may_change(["src/a.py", ".gitswarm/prompts/worker.md"], "t-1", "the work", g.path, g.may_change)
    with pytest.raises(RuleViolation) as raised:
        check_may_change(["src/a.py", "goals/other.md"], "t-1", "commit 1a2b3c4d5e", g.path, g.may_change)
    assert str(raised.value).startswith("commit 1a2b3c4d5e: work for t-1 changes goals/other.md: goals/g.md "
                                        "does not list goals/ in may_change\nhint: ")
    with pytest.raises(RuleViolation, match="t-1 has no goal"):
        check_may_change([".gitswarm.yaml"], "t-1", "the work", None)
    with pytest.raises(RuleViolation, match="goals/g.md is not on main"):
        check_may_change([".gitswarm/x"], "t-1", "the work", g.path, g.may_change, "goals/g.md is not on main")
