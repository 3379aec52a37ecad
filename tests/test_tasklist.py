"""`gitswarm task add --from FILE`: every field of an item is checked by the validator toolkit
before any task is made, and a bad one is named by file, item and field with a hint; a
list that passes is added in one commit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gitswarm.errors import FileInvalid
from gitswarm.tasklist import tasks_from_file

from conftest import gitswarm, sh

BAD = {  # an item's YAML -> what the error says after "plan.yaml: "
    "no title": ("- description: x\n", "item 1: needs at least a title"),
    "not a mapping": ("- just words\n", "item 1: must be a mapping with at least a title, not str"),
    "title a list": ("- title: [a, b]\n", "item 1.title: must be text, not list"),
    "title empty": ("- title: ''\n", "item 1.title: must not be empty"),
    "title two lines": ('- title: "a\\nb"\n', "item 1.title: must be a single line"),
    "title too long": (f"- title: {'x' * 201}\n", "item 1.title: is 201 characters; the limit is 200"),
    "title control": ('- title: "a\\u0007b"\n', "item 1.title: holds a control or invisible character (U+0007)"),
    "description": ("- title: t\n  description: 5\n", "item 1.description: must be text, not int"),
    "kind": ("- title: t\n  kind: bogus\n", "item 1.kind: 'bogus' is not one of: work, plan"),
    "priority a list": ("- title: t\n  priority: [1]\n", "item 1.priority: must be a whole number, not [1]"),
    "priority text": ("- title: t\n  priority: high\n", "item 1.priority: must be a whole number, not 'high'"),
    "priority a flag": ("- title: t\n  priority: true\n", "item 1.priority: must be a whole number, not True"),
    "priority too big": ("- title: t\n  priority: 10000000\n", "item 1.priority: 10000000 is out of range"),
    "depends_on text": ("- title: t\n  depends_on: t-abcd\n", "item 1.depends_on: must be a list of task ids, not str"),
    "depends_on a number": ("- title: t\n  depends_on: [5]\n", "item 1.depends_on[0]: 5 is not valid"),
    "depends_on twice": ("- title: t\n  depends_on: [t-abcd, t-abcd]\n", "item 1.depends_on[1]: 't-abcd' is listed twice"),
    "goal": ("- title: t\n  goal: a goal\n", "item 1.goal: 'a goal' is not valid"),
    "parent": ("- title: t\n  parent: T-UP\n", "item 1.parent: 'T-UP' is not valid"),
    "id": ("- title: t\n  id: 7\n", "item 1.id: 7 is not valid"),
    "unknown field": ("- title: t\n  depends: [t-abcd]\n", "item 1.depends: unknown field"),
    "second item": ("- title: ok\n- title: t\n  kind: [work]\n", "item 2.kind: ['work'] is not one of: work, plan"),
    "not a list": ("title: t\n", "expected a YAML list of tasks"),
    "empty list": ("[]\n", "expected a YAML list of tasks"),
    "a tag": ("- title: !!binary aGk=\n", "[0].title: YAML tags are not allowed"),
}


def read(text: str):
    handle = io.StringIO(text)
    handle.name = "plan.yaml"
    return tasks_from_file(handle)


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_field_is_named_by_file_item_and_field(case: str) -> None:
    text, said = BAD[case]
    with pytest.raises(FileInvalid) as caught:
        read(text)
    assert str(caught.value).startswith(f"plan.yaml: {said}"), str(caught.value)
    assert caught.value.hint


def test_an_unknown_field_says_the_nearest_one() -> None:
    with pytest.raises(FileInvalid) as caught:
        read("- title: t\n  depends: [t-abcd]\n")
    assert caught.value.hint.startswith("did you mean 'depends_on'? a task holds: title, description, kind")


def test_fields_left_out_or_null_take_the_defaults_and_the_rest_are_kept() -> None:
    first, second = read("- title: A\n  description: null\n  kind: null\n  priority: null\n  depends_on: null\n"
                         "- title: B\n  description: d\n  kind: plan\n  priority: -3\n  depends_on: [t-abcd]\n"
                         "  goal: g.1\n  parent: t-up\n  id: t-b-1\n")
    assert (first.description, first.kind, first.priority, first.depends_on, first.goal) == ("", "work", 0, (), None)
    assert (second.id, second.kind, second.priority, second.depends_on, second.goal, second.parent) == \
        ("t-b-1", "plan", -3, ("t-abcd",), "g.1", "t-up")
    assert first.created < second.created  # the file's order is kept as the tasks' age


def test_the_cli_refuses_a_bad_field_and_adds_nothing(hub: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("- title: First\n- title: Second\n  priority: [1]\n")
    result = gitswarm("task", "add", str(hub), "--from", str(plan), check=False)
    assert result.returncode == 2, result.stderr
    assert f"{plan}: item 2.priority: must be a whole number, not [1]" in result.stderr
    assert "hint: give a number from -1000000 to 1000000" in result.stderr and "Traceback" not in result.stderr
    assert not sh("git", "ls-tree", "-r", "--name-only", "tasks", "tasks/", cwd=hub).stdout.strip().count(".yaml")
