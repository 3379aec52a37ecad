"""`land: direct` made fair and frugal (issue 12): a goal's test that runs on a tip main has left
is killed at once and run again on the new tip; the workers of one process land in turns, oldest
first, so that within a process every landed task's test runs once; and a task does not give up
"main kept moving" while what moves main is other tasks landing. Real hubs, real pushes, real
hooks, real worker jobs and a real serve; the test commands are real processes that write marker
files outside the worktree (GITSWARM_SANDBOX=off, so that they can)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from gitswarm import git
from gitswarm.board import Board
from gitswarm.roles import Swarm
from gitswarm.roles.worker import work_one
from gitswarm.task import new_task

from conftest import sh
from test_land_safe import task_yaml
from test_swarm import push_goal, record, serve

SLOW_ONCE = """echo start >> {marks}
if [ ! -e {marks}.slow ]; then touch {marks}.slow; sleep 20; fi
echo end >> {marks}
"""


@pytest.fixture(autouse=True)
def unsandboxed(monkeypatch):
    monkeypatch.setenv("GITSWARM_SANDBOX", "off")


def wait_for(predicate, what: str, limit: float = 60.0) -> None:
    """Wait until `predicate()` holds (a precondition, not an assertion on time)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def work_while(board: Board, tmp_path: Path, lines: list[str], race, swarm: type[Swarm] = Swarm) -> None:
    """w1 of this process claims and works a task while `race` runs in a thread of its own."""
    racer = threading.Thread(target=race)
    racer.start()
    try:
        assert work_one(swarm(board, tmp_path / "work", log=lines.append), "w1")
    finally:
        racer.join()


def lines_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def others_land_during_the_test(hub: Path, tmp_path: Path, others: int, marks: Path) -> tuple[list[str], list[str]]:
    """Goal g on main, with a test command that writes `marks`; task t-bee (writes b.txt) is worked
    by w1 of this process while another machine lands `others` tasks (each its own file) on main,
    one after the other, as soon as w1's test has started. The log lines, the other machine's
    landed commits."""
    script = tmp_path / "test.sh"
    script.write_text(SLOW_ONCE.format(marks=marks))
    tasks = "".join(f"\n  - id: t-o{i}\n    title: Other {i}" for i in range(others))
    push_goal(hub, tmp_path, "g", f'---\ntest: "sh {script}"\nland: direct\ncheck: "true"\ntasks:{tasks}\n'
                                  '  - id: t-bee\n    title: Write b\n    run: "echo b > b.txt"\n---\nb.\n')
    lines: list[str] = []
    landed: list[str] = []
    with Board(str(hub)) as board, Board(str(hub), cache=tmp_path / "other-machine") as other:
        board.add([new_task(f"Other {i}", goal="g", task_id=f"t-o{i}", priority=9) for i in range(others)]
                  + [new_task("Write b", goal="g", task_id="t-bee")])
        other.refresh()
        for i in range(others):
            assert other.claim(f"other{i}").id == f"t-o{i}"

        def other_machine_lands():
            wait_for(lambda: "start" in lines_of(marks), "w1's test to start")
            for i in range(others):
                tip = other.fetch_branch("main")
                commit = git.write_commit(other.mirror.repo, tip, {f"o{i}.txt": b"other\n"},
                                          f"Other {i}\n\nGitswarm-Task: t-o{i}\nGitswarm-Worker: other{i}\n",
                                          (f"other{i}", "other@x"))
                landed.append(other.land(f"t-o{i}", f"other{i}", commit, "other").result["commit"])

        work_while(board, tmp_path, lines, other_machine_lands)
    return lines, landed


def test_a_test_on_a_tip_main_has_left_is_killed_and_run_on_the_new_tip(hub, tmp_path):
    """The first run of the test sleeps 20 s; main moves as it starts. It is killed (it never
    writes `end`), the work is rebased onto the new main and tested there, and lands on it."""
    marks = tmp_path / "marks"
    lines, landed = others_land_during_the_test(hub, tmp_path, 1, marks)
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "done", lines
    assert lines_of(marks) == ["start", "start", "end"], lines  # the first run did not reach its end
    assert sh("git", "rev-parse", f"{bee['result']['commit']}~1", cwd=hub).stdout.strip() == landed[0]
    assert any("while its test ran" in line and "killed" in line for line in lines), lines


def test_a_task_does_not_give_up_while_other_tasks_land(hub, tmp_path, monkeypatch):
    """MAX_LANDINGS 1: the first race counted against t-bee ends it. Two other tasks land while
    its test runs: that is progress, not a main that keeps moving, and t-bee lands after them."""
    from gitswarm.roles import worker

    monkeypatch.setattr(worker, "MAX_LANDINGS", 1)
    marks = tmp_path / "marks"
    lines, landed = others_land_during_the_test(hub, tmp_path, 2, marks)
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "done", (bee, lines)
    assert sh("git", "rev-parse", f"{bee['result']['commit']}~1", cwd=hub).stdout.strip() == landed[-1]


def test_a_main_moved_by_pushes_that_land_no_task_still_ends_the_attempt(hub, tmp_path, monkeypatch):
    """The bound that is left: pushes to main that land no task (people, bots) move main under the
    task MAX_LANDINGS times: it fails saying so, never loops for ever."""
    from gitswarm.roles import worker

    monkeypatch.setattr(worker, "MAX_LANDINGS", 1)
    marks = tmp_path / "marks"
    script = tmp_path / "test.sh"
    script.write_text(f"echo start >> {marks}\nsleep 20\n")
    clone = push_goal(hub, tmp_path, "g", f'---\ntest: "sh {script}"\nland: direct\ncheck: "true"\ntasks:\n'
                                          '  - id: t-bee\n    title: Write b\n    run: "echo b > b.txt"\n---\nb.\n')
    lines: list[str] = []

    def people_push():
        wait_for(lambda: "start" in lines_of(marks), "the test to start")
        (clone / "readme.txt").write_text("people work here too\n")
        sh("git", "add", "-A", cwd=clone)
        sh("git", "commit", "-q", "-m", "a plain push", cwd=clone)
        sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)

    with Board(str(hub)) as board:
        board.add([new_task("Write b", goal="g", task_id="t-bee")])
        work_while(board, tmp_path, lines, people_push)
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "failed" and "main kept moving" in bee["result"]["reason"], (bee, lines)
    assert "landed no task" in bee["result"]["reason"]


def test_tested_work_ready_while_the_hub_is_out_of_reach_waits_for_it(hub, tmp_path):
    """The hub goes away as t-bee's agent finishes: the worker cannot look at main, tests on the
    tip it has, keeps its work and lands once the hub is back, instead of failing the task."""
    push_goal(hub, tmp_path, "g", '---\ntest: "true"\nland: direct\ncheck: "true"\ntasks:\n'
                                  '  - id: t-bee\n    title: Write b\n    run: "echo b > b.txt"\n---\nb.\n')
    away = hub.with_name("hub-away.git")
    lines: list[str] = []

    class HubGoesAway(Swarm):
        def run_agent(self, *args, **kw):
            result = super().run_agent(*args, **kw)
            hub.rename(away)
            return result

    def hub_comes_back():
        try:
            wait_for(lambda: any("t-bee" in line and ("cannot reach the hub to land" in line or "failed" in line)
                                 for line in lines), "the worker to wait or fail")
        finally:
            away.rename(hub)

    with Board(str(hub)) as board:
        board.add([new_task("Write b", goal="g", task_id="t-bee")])
        work_while(board, tmp_path, lines, hub_comes_back, HubGoesAway)
    assert task_yaml(hub, "t-bee")["status"] == "done", lines


POOL_GOAL = """---
test: "sh {script}"
land: direct
check: "true"
tasks:
{tasks}
---
Each task adds its own file.
"""


def test_workers_of_one_process_land_oldest_first_with_one_test_run_each(hub, tmp_path):
    """Six tasks, four workers in one serve: the workers wait for their turn instead of testing on a
    tip that is about to move. Every task lands, in the order its work became ready to land (the
    turn each was given, as logged), and the test ran once per task."""
    runs = tmp_path / "runs"
    script = tmp_path / "test.sh"
    script.write_text(f"ls f*.txt | tr '\\n' , >> {runs}; echo >> {runs}\nsleep 1\n")
    tasks = "\n".join(f'  - id: t-f{i}\n    title: Write f{i}\n    run: "echo {i} > f{i}.txt"' for i in range(6))
    push_goal(hub, tmp_path, "six", POOL_GOAL.format(script=script, tasks=tasks))
    lines: list[str] = []
    assert serve(hub, lines, workers=4) == 0
    assert "status: done" in record(hub, "six")
    landed = sh("git", "log", "--reverse", "--format=%(trailers:key=Gitswarm-Task,valueonly)", "main",
                cwd=hub).stdout.split()
    assert sorted(landed) == [f"t-f{i}" for i in range(6)], lines
    assert len(runs.read_text().splitlines()) == 6, (runs.read_text(), lines)
    turns = {}
    for line in lines:
        m = re.search(r"(t-f\d) is ready to land: turn (\d+) in this process", line)
        if m:
            turns[m.group(1)] = int(m.group(2))
    assert sorted(turns) == sorted(landed), lines
    assert landed == sorted(landed, key=turns.__getitem__), (turns, lines)
