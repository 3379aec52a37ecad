"""The swarm without a model: goals pushed with plain `git push`, `serve`, command tasks, the judge's
check. Everything is checked through git."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


from gitswarm import events
from gitswarm.board import Board
from gitswarm.daemon import Daemon

from conftest import gitswarm, sh


def push_goal(hub: Path, tmp_path: Path, name: str, text: str, files: dict[str, str] | None = None) -> Path:
    clone = tmp_path / "project"
    if not clone.exists():
        sh("git", "clone", "-q", str(hub), str(clone))
    elif sh("git", "ls-remote", "origin", "main", cwd=clone).stdout:
        sh("git", "pull", "-q", "--rebase", "origin", "main", cwd=clone)
    for path, content in (files or {}).items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_text(content)
    (clone / "goals").mkdir(exist_ok=True)
    (clone / "goals" / f"{name}.md").write_text(text)
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", f"goal {name}", cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    return clone


def record(hub: Path, name: str) -> str:
    return sh("git", "show", f"tasks:goals/{name}.yaml", cwd=hub).stdout


def serve(hub: Path, lines: list[str] | None = None, **kw) -> int:
    kw.setdefault("workers", 2)
    kw.setdefault("planners", 1)
    kw.setdefault("debounce", 0.1)
    return Daemon(hub, until_done=True, name="t", log=(lines.append if lines is not None else lambda _: None),
                  **kw).run()


TWO_TASKS = """---
check: "test -s a.txt && test -s b.txt"
tasks:
  - title: Write a
    run: "echo a > a.txt"
  - title: Write b
    run: "echo b > b.txt"
    depends_on: [Write a]
---
Write two files, b after a.
"""


def test_demo_runs_offline(tmp_path):
    result = gitswarm("demo", "--dir", str(tmp_path / "demo"), "--workers", "4")
    hub = tmp_path / "demo" / "hub.git"
    assert "judge: greet cycle 1: done" in result.stdout
    assert "main moved; rebasing" in result.stdout  # at least one landing was refused and resolved
    assert "git --git-dir" in result.stdout.splitlines()[-5]
    trailers = sh("git", "log", "--format=%(trailers:key=Gitswarm-Task,valueonly)", "main", cwd=hub).stdout.split()
    assert len(trailers) == 8 and len(set(trailers)) == 8
    index = sh("git", "show", "main:INDEX.md", cwd=hub).stdout
    assert len([ln for ln in index.splitlines() if ": " in ln]) == 8
    assert "status: done" in record(hub, "greet")
    # main only ever moved forward: the hub's own reflog
    reflog = sh("git", "reflog", "show", "--format=%gs", "refs/heads/main", cwd=hub).stdout
    assert "forced" not in reflog


def test_restarted_daemon_handles_the_events_waiting_in_the_spool(hub, tmp_path):
    push_goal(hub, tmp_path, "two", TWO_TASKS)  # no daemon runs: the events wait in the spool
    waiting = events.pending(hub)
    assert [e.ref for e in waiting] == ["refs/heads/main"]
    lines: list[str] = []
    assert serve(hub, lines) == 0
    assert events.pending(hub) == []
    assert "status: done" in record(hub, "two")
    subjects = sh("git", "log", "--format=%s", "main", cwd=hub).stdout.splitlines()
    assert subjects[:2] == ["Write b", "Write a"]  # b waited for a
    assert sh("git", "show", "main:b.txt", cwd=hub).stdout == "b\n"


def test_a_malformed_goal_is_reported_on_the_board(hub, tmp_path):
    # the hub refuses such a push (tests/test_check.py); a goal on main from before it did, put there
    # with plumbing that runs no hook, is still marked invalid on its record
    blob = sh("git", "hash-object", "-w", "--stdin", cwd=hub, input="---\njudge: {every: soon}\n---\nDo things.\n")
    goals = sh("git", "mktree", cwd=hub, input=f"100644 blob {blob.stdout.strip()}\tbroken.md\n").stdout.strip()
    tree = sh("git", "mktree", cwd=hub, input=f"040000 tree {goals}\tgoals\n").stdout.strip()
    commit = sh("git", "commit-tree", tree, "-m", "goal broken", cwd=hub).stdout.strip()
    sh("git", "update-ref", "refs/heads/main", commit, cwd=hub)
    lines: list[str] = []
    assert serve(hub, lines) == 1
    text = record(hub, "broken")
    assert "status: invalid" in text and "goals/broken.md" in text and "judge.every" in text


def test_a_changed_goal_file_re_plans(hub, tmp_path):
    push_goal(hub, tmp_path, "two", TWO_TASKS)
    assert serve(hub) == 0
    more = TWO_TASKS.replace('---\nWrite two', '  - title: Write c\n    run: "echo c > c.txt"\n---\nWrite two') \
                    .replace("test -s b.txt", "test -s b.txt && test -s c.txt")
    push_goal(hub, tmp_path, "two", more)
    assert serve(hub) == 0
    assert sh("git", "show", "main:c.txt", cwd=hub).stdout == "c\n"
    assert "status: done" in record(hub, "two")


def test_the_judge_runs_on_its_schedule_until_max_cycles(hub, tmp_path):
    goal = """---
judge: {every: 1s}
max_cycles: 3
check: "test -f never.txt"
tasks:
  - title: Write a
    run: "echo a > a.txt"
---
A goal whose check never passes.
"""
    push_goal(hub, tmp_path, "never", goal)
    lines: list[str] = []
    assert serve(hub, lines) == 4  # stopped by max_cycles, not done
    text = record(hub, "never")
    assert "status: stopped" in text and "max_cycles 3 reached" in text
    assert text.count("decision: continue") == 2 and text.count("decision: stop") == 1
    judged = [ln for ln in lines if ln.startswith("judge: never")]
    assert len(judged) == 3
    # cycles 2 and 3 have no task (the goal's tasks are done): judged at once (test_never_silent.py)


def test_planner_runs_are_debounced(hub, tmp_path):
    push_goal(hub, tmp_path, "two", TWO_TASKS)
    lines: list[str] = []
    assert serve(hub, lines, debounce=30.0) == 0  # a long window: completions must not re-run it
    runs = [ln for ln in lines if ln.startswith("planner two:")]
    assert len(runs) == 1, lines


def test_serve_stops_cleanly_on_sigterm_and_releases_its_task(hub, tmp_path):
    goal = """---
tasks:
  - title: Take forever
    run: "sleep 613.25"
---
Never ends.
"""
    push_goal(hub, tmp_path, "slow", goal)
    proc = subprocess.Popen([sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers", "1",
                             "--planners", "0", "--id", "box"], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline:
        out = sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout
        if "claim " in out:
            break
        time.sleep(0.2)
    assert "claim " in out
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopping" in err
    with Board(str(hub)) as board:
        board.refresh()
        task, = board.tasks()
    assert task.status == "open" and task.attempts == 1  # released, not lost
    assert subprocess.run(["pgrep", "-f", "sleep 613.25"], capture_output=True).returncode == 1  # killed whole


COMMAND_AGENTS = """defaults:
  backend: command
planner:
  command: "printf -- '- title: Write one\\\\n  description: the first file\\\\n- title: Write two\\\\n  description: the second\\\\n  depends_on: [Write one]\\\\n' > $GITSWARM_TASKS_FILE"
worker:
  command: "python3 -c \\"import re, sys; p = sys.stdin.read(); t = re.search(r'[*][*](.+?)[*][*]', p).group(1); open(t.replace(' ', '-') + '.txt', 'w').write(t); print('wrote', t)\\""
judge:
  command: "test -f Write-one.txt && test -f Write-two.txt"
"""


def test_every_role_can_be_an_external_command(hub, tmp_path):
    """backend: command for planner (writes a YAML list to $GITSWARM_TASKS_FILE), worker (reads its
    prompt on stdin, edits the checkout) and judge (exit 0 means done): no model anywhere."""
    push_goal(hub, tmp_path, "cmd", "Write two files.\n", files={".gitswarm.yaml": COMMAND_AGENTS})
    lines: list[str] = []
    assert serve(hub, lines) == 0, lines
    assert sh("git", "show", "main:Write-two.txt", cwd=hub).stdout == "Write two"
    with Board(str(hub)) as board:
        board.refresh()
        tasks = board.tasks()
    assert [(t.title, t.status) for t in tasks] == [("Write one", "done"), ("Write two", "done")]
    assert tasks[1].depends_on == (tasks[0].id,)
    trailers = sh("git", "log", "-1", "--format=%(trailers)", "main", cwd=hub).stdout
    assert "Gitswarm-Model: command" in trailers and f"Gitswarm-Task: {tasks[1].id}" in trailers
    assert "status: done" in record(hub, "cmd")


def test_judge_command_runs_one_pass(hub, tmp_path):
    goal = TWO_TASKS.replace('check: "test -s a.txt && test -s b.txt"', 'check: "test -s a.txt"')
    push_goal(hub, tmp_path, "two", goal)
    out = gitswarm("judge", str(hub)).stdout
    assert out.strip() == f"no active goal on {hub}"  # no daemon has seen the goal yet: no record
    lines: list[str] = []
    daemon = Daemon(hub, workers=0, planners=0, name="t", log=lines.append, judge_every=3600)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.time() + 60
        while "goals/two.yaml" not in sh("git", "ls-tree", "-r", "--name-only", "tasks", cwd=hub).stdout:
            assert time.time() < deadline
            time.sleep(0.1)
    finally:
        daemon.shutdown()
        thread.join(60)
    assert gitswarm("judge", str(hub)).stdout.strip() == "two: continue"  # a.txt is not on main
    push_goal(hub, tmp_path, "two", goal, files={"a.txt": "by hand\n"})
    assert gitswarm("judge", str(hub), "--goal", "two").stdout.strip() == "two: done"
    text = record(hub, "two")
    assert "decision: continue" in text and "decision: done" in text and "status: done" in text
