"""Attacks: output that is text, not a weapon (issue 11, part 5). Real agent CLIs print colour; a
failing test prints whatever it likes. What an agent or a command prints becomes a summary, a
reason, a verdict, a commit message and a log line: terminal escapes and control characters must
never make a landing, a failure or a verdict unrecordable, and however a task comes back to the
board, max_attempts holds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gitswarm.board import Board
from gitswarm.daemon import Daemon
from gitswarm.text import CONTROL_RE

from conftest import sh
from test_swarm import push_goal

COLOUR = r"printf '\033[1;32mPASS\033[0m \033]0;owned\007done\r\n'"


def board(hub: Path) -> Board:
    b = Board(str(hub))
    b.refresh()
    return b


def run_daemon(hub: Path, until, timeout: float = 60.0, **kw) -> list[str]:
    """Serve the hub in a thread until `until(board)` holds (or time is up); the log lines."""
    lines: list[str] = []
    daemon = Daemon(hub, workers=kw.pop("workers", 1), planners=0, name=kw.pop("name", "t"), log=lines.append,
                    debounce=0.1, **kw)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.time() + timeout
        while True:
            with board(hub) as b:
                if until(b):
                    break
            assert time.time() < deadline, "\n".join(lines[-30:])
            time.sleep(0.2)
    finally:
        daemon.shutdown()
        thread.join(60)
    return lines


def printable_everywhere(hub: Path) -> None:
    """Nothing on the board, in its history or on main holds a control character."""
    for branch in ("tasks", "main"):
        history = sh("git", "log", "-p", "--format=%B", branch, cwd=hub).stdout
        assert "\x1b" not in history and "\x07" not in history
    with board(hub) as b:
        for t in b.tasks():
            for value in (t.result or {}).values():
                assert not CONTROL_RE.search(str(value)), value
        for r in b.records().values():
            assert not CONTROL_RE.search(r.reason or "")
            assert not any(CONTROL_RE.search(v.reasons) for v in r.verdicts)


def test_colour_on_success_lands_the_work(hub, tmp_path):
    push_goal(hub, tmp_path, "colour", f'---\njudge: {{every: 1h}}\ntasks:\n  - title: Colourful\n'
                                       f'    run: |\n      echo a > a.txt; {COLOUR}\n---\nPrint colour.\n')
    run_daemon(hub, lambda b: [t.status for t in b.tasks()] == ["done"])
    assert sh("git", "show", "main:a.txt", cwd=hub).stdout == "a\n"
    with board(hub) as b:
        task, = b.tasks()
    assert "PASS" in task.result["summary"] and "done" in task.result["summary"]
    printable_everywhere(hub)


def test_colour_on_failure_is_recorded_and_max_attempts_holds(hub, tmp_path):
    push_goal(hub, tmp_path, "red", '---\njudge: {every: 1h}\ntasks:\n  - title: Fails in colour\n'
                                    f'    run: |\n      {COLOUR} >&2; exit 1\n---\nFail.\n',
              files={".gitswarm.yaml": "max_attempts: 2\nretry_backoff: 0s\n"})
    lines = run_daemon(hub, lambda b: [t.status for t in b.tasks()] == ["dead"])
    with board(hub) as b:
        task, = b.tasks()
    assert task.attempts == 2, lines
    assert "PASS" in task.result["reason"] and "last error" in task.result["reason"]
    claims = [s for s in sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout.splitlines() if s.startswith("claim ")]
    assert len(claims) == 2  # claimed twice, then buried: not handed back and claimed forever
    printable_everywhere(hub)


def test_a_check_that_prints_colour_still_ends_the_goal(hub, tmp_path):
    push_goal(hub, tmp_path, "judged", f'---\ncheck: |\n  test -s a.txt && {COLOUR}\ntasks:\n'
                                       '  - title: Write a\n    run: "echo a > a.txt"\n---\nWrite a.\n')
    run_daemon(hub, lambda b: b.records().get("judged") is not None and b.records()["judged"].status == "done")
    printable_everywhere(hub)


def test_a_long_last_error_can_still_be_buried(hub):
    with Board(str(hub)) as b:
        from gitswarm.task import new_task

        t, = b.add([new_task("Fails at length")])
        b.claim("w1")
        b.fail(t.id, "w1", "x" * 32_760)
        buried = b.bury(t.id, "failed 1 times (max_attempts 1)")
    assert buried.status == "dead" and buried.result["reason"].endswith("x" * 100)


def test_a_claim_left_by_a_dead_run_counts_as_an_attempt(hub, tmp_path):
    """A task that kills its worker (or whose end cannot be recorded) comes back through the
    stale-claim path: it counts against max_attempts like any other attempt."""
    push_goal(hub, tmp_path, "killer", '---\njudge: {every: 1h}\ntasks:\n  - title: Kills its worker\n'
                                       '    run: "echo a > a.txt"\n---\nK.\n',
              files={".gitswarm.yaml": "max_attempts: 1\n"})
    run_daemon(hub, lambda b: len(b.tasks()) == 1, workers=0)  # the goal's task is on the board
    with Board(str(hub)) as b:
        b.refresh()
        assert b.claim("box-w0") is not None  # held by a run of `box` that then died
    run_daemon(hub, lambda b: [t.status for t in b.tasks()] == ["dead"], name="box")
    with board(hub) as b:
        task, = b.tasks()
    assert task.attempts == 1 and "handed back" in task.result["reason"]
