"""One rule for a depends_on entry that names a task by title (task.dependency_id), used by a
goal's `tasks:` and by a planner's create_tasks: an id as it is, else the title of exactly one
task; a title several tasks share names none of them (an error saying so, never a silent pick)."""

from __future__ import annotations

import pytest

from gitswarm import task as T
from gitswarm.goal import GoalInvalid, parse_goal
from gitswarm.roles.planner import tasks_from_call


def test_an_id_is_taken_as_it_is_and_a_title_of_one_task_gives_its_id():
    a, b = T.new_task("Write a"), T.new_task("Write b")
    titles = T.title_index([a, b])
    assert T.dependency_id(a.id, {a.id, b.id}, titles) == a.id
    assert T.dependency_id("Write b", {a.id, b.id}, titles) == b.id


def test_a_title_two_tasks_share_names_neither():
    a, b = T.new_task("Same"), T.new_task("Same")
    with pytest.raises(T.UnknownDependency) as raised:
        T.dependency_id("Same", {a.id, b.id}, T.title_index([a, b]))
    assert raised.value.count == 2 and "2 tasks have the title 'Same'" in str(raised.value)
    with pytest.raises(T.UnknownDependency) as raised:
        T.dependency_id("Other", set(), T.title_index([a, b]))
    assert raised.value.count == 0


def test_the_same_task_listed_twice_is_one_task():
    a = T.new_task("Once")
    assert T.dependency_id("Once", set(), T.title_index([a, a])) == a.id


GOAL = """---
tasks:
  - title: Same
    id: t-same-1
  - title: Same
  - title: Last
    depends_on: [{ref}]
---
Do it.
"""


def test_a_goal_refuses_a_dependency_on_a_shared_title():
    with pytest.raises(GoalInvalid) as raised:
        parse_goal("goals/g.md", GOAL.format(ref="Same"))
    assert raised.value.field == "tasks[2].depends_on[0]"
    assert "2 tasks have the title 'Same'" in str(raised.value)
    assert parse_goal("goals/g.md", GOAL.format(ref="t-same-1")).tasks[2].depends_on == ("t-same-1",)
    with pytest.raises(GoalInvalid, match=r"tasks\[2\].depends_on\[1\]: 'Same' is listed twice"):
        parse_goal("goals/g.md", GOAL.format(ref="t-same-1, Same").replace("- title: Same\n  -", "- title: Other\n  -"))


def _goal():
    return parse_goal("goals/g.md", "---\nmax_cycles: 3\n---\nDo it.\n")


def test_a_planner_refuses_a_dependency_on_a_title_two_new_tasks_share():
    items = [{"title": "Same"}, {"title": "Same"}, {"title": "Last", "depends_on": ["Same"]}]
    with pytest.raises(ValueError, match="'Last': depends_on 'Same': 2 tasks have this title"):
        tasks_from_call(_goal(), items, None, 0, [])


def test_a_planner_resolves_titles_in_its_call_and_of_its_goal_tasks_it_repeats_and_ids():
    goal = _goal()
    on_board = T.new_task("Already there", goal="g")
    other = T.new_task("Elsewhere", goal="other")
    items = [{"title": "Already there"}, {"title": "New"},
             {"title": "Last", "depends_on": ["Already there", "New", other.id]}]
    new, known = tasks_from_call(goal, items, None, 0, [on_board, other])
    assert [t.title for t in new] == ["New", "Last"] and known == [on_board]
    assert new[1].depends_on == (on_board.id, new[0].id, other.id)
    with pytest.raises(ValueError, match="is neither a title in this call nor an existing task id"):
        tasks_from_call(goal, [{"title": "Last", "depends_on": ["Elsewhere"]}], None, 0, [on_board, other])
    with pytest.raises(ValueError, match=r"tasks\[0\]\.depends_on\[0\]: must be text, not list"):
        tasks_from_call(goal, [{"title": "Last", "depends_on": [["a list"]]}], None, 0, [])
