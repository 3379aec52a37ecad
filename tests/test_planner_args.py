"""A planner's create_tasks arguments are untrusted: a field of the wrong kind, a title of two
lines, an unknown field, a number out of range goes back to the model as the tool's error (through
the real openai client against tests/fake_openai.py), which may then try again; and a command
planner's tasks file with such a field fails the planning with a sentence, not a TypeError."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_openai import Request, Response, tool_call
from gitswarm.board import Board
from gitswarm.errors import GitswarmError
from gitswarm.roles import Swarm
from gitswarm.roles.planner import plan

from conftest import sh
from test_e2e_openai import push_files, server, settings, tool_results  # noqa: F401 - server: a fixture

GOAL = "---\nmax_cycles: 1\n---\n# Build it\n\nWrite the parser.\n"
GOOD = {"title": "Write parser", "description": "parse it", "priority": 2, "depends_on": []}
BAD = [  # (a task of a create_tasks call, what the tool's result says; {i}: its index, after a good one or not)
    (GOOD | {"priority": [1]}, "error: tasks[{i}].priority must be of type integer, not list"),
    (GOOD | {"title": "Write\nparser"}, "error: create_tasks: tasks[{i}].title: must be a single line"),
    (GOOD | {"depends": ["Other"]}, "error: create_tasks: tasks[{i}].depends: unknown field (did you mean "
                                    "'depends_on'? a task holds: title, description, kind, depends_on, priority)"),
    (GOOD | {"priority": 10**9}, "error: create_tasks: tasks[{i}].priority: 1000000000 is out of range "
                                 "(give a number from -1000000 to 1000000)"),
]


def planning(hub: Path, tmp_path: Path, settings_text: str) -> tuple[Board, Swarm]:
    push_files(hub, tmp_path, {".gitswarm.yaml": settings_text})
    push_files(hub, tmp_path, {"goals/build.md": GOAL}, "add goal build")
    board = Board(str(hub))
    return board, Swarm(board, tmp_path / "work", log=lambda line: None)


def test_bad_task_fields_go_back_to_the_model_which_tries_again(hub: Path, tmp_path: Path, server) -> None:
    def planner(req: Request) -> Response:
        done = len(tool_results(req))
        if done < len(BAD):
            return tool_call("create_tasks", {"tasks": [GOOD, BAD[done][0]] if done % 2 else [BAD[done][0]]})
        if done == len(BAD):
            return tool_call("create_tasks", {"tasks": [GOOD]})
        return tool_call("finish", {"summary": "planned"})

    server.route(planner)
    board, swarm = planning(hub, tmp_path, settings(server))
    with board:
        summary, tokens, _ = plan(swarm, "build")
        board.refresh()
        tasks = board.tasks()
    assert summary == "planned" and tokens > 0
    said = tool_results(server.requests[-1])
    for n, ((_, expected), result) in enumerate(zip(BAD, said)):
        assert result.startswith(expected.format(i=n % 2)), (expected, result)
    assert said[len(BAD)].startswith("created t-") and said[len(BAD)].endswith("(Write parser)")
    assert [(t.title, t.priority, t.goal) for t in tasks] == [("Write parser", 2, "build")]  # no bad call added one


@pytest.mark.parametrize("item, said", [
    ("- title: Write parser\\n  priority: [1]\\n", "tasks[0].priority: must be a whole number, not [1]"),
    ("- title: Write parser\\n  description: {a: 1}\\n", "tasks[0].description: must be text, not dict"),
    ("- Write parser\\n", "tasks[0]: must be a mapping with at least a title, not str"),
    ("- title: Write parser\\n  depends_on: 5\\n", "tasks[0].depends_on: must be a list of task titles or ids, not int"),
])
def test_a_command_planners_bad_tasks_file_fails_the_planning_with_a_sentence(hub: Path, tmp_path: Path,
                                                                             item: str, said: str) -> None:
    command = f"planner:\n  backend: command\n  command: \"printf -- '{item}' > $GITSWARM_TASKS_FILE\"\n"
    board, swarm = planning(hub, tmp_path, command)
    with board, pytest.raises(GitswarmError) as caught:
        plan(swarm, "build")
    assert caught.value.message.startswith(f"the planner command's tasks file: {said}"), caught.value.message
    assert "$GITSWARM_TASKS_FILE" in caught.value.hint
    assert not sh("git", "ls-tree", "-r", "--name-only", "tasks", "tasks/", cwd=hub).stdout.count("/t-")
