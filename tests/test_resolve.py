"""A goal whose commands name a program its sandbox does not have is refused before it runs (the
record says which program, where it is written and how to fix it), instead of failing each attempt
until its tasks are dead; what would run is never refused. Real hubs, real bubblewrap, in-process
`serve`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import sh
from test_swarm import push_goal, serve

from gitswarm.board import Board
from gitswarm.resolve import programs


@pytest.mark.parametrize("line, found", [
    ("pytest -q", ["pytest"]),
    ("cd sub && pytest -q | tee log; make", ["cd", "pytest", "tee", "make"]),
    ("A=1 env -u B C=2 mytool --x 2>&1 >/dev/null; ./run.sh", ["mytool"]),  # ./run.sh: in the checkout
    ("2>/dev/null mytool", ["mytool"]),
    ("(cd sub && make) || exit 1", ["cd", "make"]),
    ("command -v ruff && ruff check . || true", ["command"]),  # a fallback may stand in for ruff
    ("a && b || c", ["a"]),
    ("if test -f x; then make; else gmake; fi", ["test"]),  # the branches may not run
    ("for f in *.py; do flake8 $f; done", []),
    ("python -m pytest  # a comment", ["python"]),
    ("/opt/tools/bin/lint .", ["/opt/tools/bin/lint"]),
    ("first\nsecond arg", ["first", "second"]),
    ("$RUNNER tests", []),
    ("cat <<EOF\nnot a program\nEOF", []),
    ("f() { a; }; f", []),
    ('echo "unbalanced', []),
    ("echo $((1 + 2))", []),
])
def test_the_programs_a_command_line_surely_runs(line: str, found: list[str]) -> None:
    assert programs(line) == found


def tool(tmp_path: Path, name: str) -> Path:
    """A program installed under /tmp, on PATH: the sandbox does not show it."""
    folder = tmp_path / "tools" / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text("#!/bin/sh\necho ok\n")
    program.chmod(0o755)
    return folder


def claims(hub: Path) -> list[str]:
    return [s for s in sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout.splitlines() if s.startswith("claim")]


def record(hub: Path, name: str):
    with Board(str(hub)) as board:
        board.refresh()
        return board.records()[name]


TESTED = """---
check: "cd . && mytool-613 --check"
tasks:
  - title: Write a
    run: "echo a > a.txt"
---
A goal whose test names a tool.
"""


def test_a_check_command_whose_tool_the_sandbox_hides_marks_the_goal_invalid_at_once(hub, tmp_path, monkeypatch):
    folder = tool(tmp_path, "mytool-613")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    push_goal(hub, tmp_path, "tool", TESTED)
    lines: list[str] = []
    assert serve(hub, lines, workers=1) == 1, lines  # --until-done: a goal is invalid
    rec = record(hub, "tool")
    assert rec.status == "invalid", rec
    assert "goals/tool.md: check: 'mytool-613' not found in the sandbox this command runs in" in rec.reason
    assert "GITSWARM_SANDBOX_PATHS" in rec.reason and "install the tool system-wide" in rec.reason
    assert claims(hub) == []  # no attempt was spent on it
    # the fix the hint gives: the tool's folder shown to the sandbox, and serve restarted
    monkeypatch.setenv("GITSWARM_SANDBOX_PATHS", str(folder))
    assert serve(hub, lines, workers=1) == 0, lines
    rec = record(hub, "tool")
    assert (rec.status, rec.reason) == ("done", None), rec


EVERY_FIELD = """---
test: "nowhere-test-613 -q"
check: "command -v nowhere-613 && nowhere-613 || true"
tasks:
  - title: Build
    run: "mytool-613 > a.txt && not-installed-613 --fast"
  - title: Write b
    run: "echo b > b.txt"
---
The check falls back, so it may run; the run: command's program is shown (as a command agent's
is), its second is nowhere.
"""


def test_every_missing_program_is_named_with_its_field_and_a_fallback_is_not(hub, tmp_path, monkeypatch):
    folder = tool(tmp_path, "mytool-613")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    push_goal(hub, tmp_path, "every", EVERY_FIELD,
              files={".gitswarm.yaml": "worker: {backend: command, command: 'agent-613 --go'}\n"
                                       "planner: {backend: command, command: 'planner-613'}\n"})
    lines: list[str] = []
    assert serve(hub, lines, workers=1) == 1, lines
    reason = record(hub, "every").reason
    assert "goals/every.md: tasks[0].run: 'not-installed-613' not found" in reason, reason
    assert "goals/every.md: test: 'nowhere-test-613' not found" in reason, reason
    assert "mytool-613" not in reason.split("\nhint:")[0].replace("`mytool-613 > a.txt", "")
    assert "nowhere-613" not in reason and "check:" not in reason
    # every task has its run: command: the worker's and the planner's commands are never run
    assert "agent-613" not in reason and "planner-613" not in reason
    assert claims(hub) == []


def test_a_command_roles_program_is_checked_where_the_goal_uses_it(hub, tmp_path):
    push_goal(hub, tmp_path, "roles", "---\njudge: {every: 10m}\n---\nPlan it.\n",
              files={".gitswarm.yaml": "planner: {backend: command, command: 'planner-613 --plan'}\n"})
    lines: list[str] = []
    assert serve(hub, lines, workers=0) == 1, lines
    reason = record(hub, "roles").reason
    assert ".gitswarm.yaml: planner.command: 'planner-613' not found in the sandbox" in reason, reason
