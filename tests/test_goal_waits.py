"""A goal whose planner or judge fails says so on its record: the reason (the model endpoint
down, with the settings to change; a command's exit status or time-out), what it waits for and
when it is tried next; `gitswarm status` shows it; it goes away when the role works again; and
the record is written when the reason changes, not at each retry. Real hubs, the real `openai`
client against tests/fake_openai.py made to fail, real command agents, in-process `serve`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import gitswarm, sh
from fake_openai import FakeOpenAI, Request, Response, error
from test_e2e_openai import Brain, push_files, role, settings
from test_swarm import push_goal

from gitswarm import waiting
from gitswarm.board import Board
from gitswarm.daemon import Daemon

GOAL = "---\njudge: {every: 10m}\n---\n# Hello\n\nWrite hello.txt.\n"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "RETRY_FIRST", 0.3)
    monkeypatch.setattr(waiting, "RETRY_MAX", 0.6)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAI() as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        yield s


def reason(hub: Path, name: str) -> str | None:
    with Board(str(hub)) as board:
        board.refresh()
        rec = board.records().get(name)
    return rec.reason if rec else None


def wait_for(what, timeout: float = 90.0, lines: list[str] | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("waited in vain" + ("\n" + "\n".join(lines) if lines else ""))


def reason_starting(hub: Path, name: str, start: str, lines: list[str]) -> str:
    """The goal's reason, once it starts with `start`."""
    return wait_for(lambda: (reason(hub, name) or "").startswith(start) and reason(hub, name), lines=lines)


def goal_commits(hub: Path, name: str) -> list[str]:
    return sh("git", "log", "--format=%s", "tasks", "--", f"goals/{name}.yaml", cwd=hub).stdout.splitlines()


def start(hub: Path, lines: list[str], **kw) -> tuple[threading.Thread, list[int]]:
    code: list[int] = []
    daemon = Daemon(hub, until_done=True, name="t", log=lines.append, workers=kw.pop("workers", 1), planners=0,
                    debounce=0.1, **kw)
    thread = threading.Thread(target=lambda: code.append(daemon.run()), daemon=True)
    thread.start()
    return thread, code


def test_a_model_endpoint_that_is_down_is_on_the_goals_record_until_it_is_back(hub, tmp_path, server):
    down = {"planner": True, "judge": True}
    brain = Brain([{"title": "Write hello", "description": "create hello.txt"}])

    def answer(req: Request) -> Response | None:
        # Retry-After 0.1 s: the client waits that between two attempts, not its backoff of about
        # 1 s (the backoff itself is test_agents' to check); each wait is still said in the log
        return error(503, "overloaded", retry_after=0.1) if down.get(role(req)) else brain(req)

    server.route(answer)
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server) + "  retries: 1\n  timeout: 5s\n"})
    push_files(hub, tmp_path, {"goals/hello.md": GOAL}, "goal hello")
    lines: list[str] = []
    thread, code = start(hub, lines)

    said = reason_starting(hub, "hello", "planner failing", lines)
    assert f"at {server.base_url} unavailable after 2 attempts: HTTP 503: overloaded" in said, said
    assert "next try at " in said and "`timeout` (now 5s) or `retries` (now 1)" in said, said
    # and each wait between two attempts is said in the log, with when the next one is
    assert any(line.startswith(f"t-root: model 'fake-model' at {server.base_url}: HTTP 503: overloaded; attempt 1 "
                               "of 2 failed, next at ") for line in lines), lines
    shown = gitswarm("status", str(hub)).stdout
    assert "goal hello: active, cycle 1, 0/0 tasks done" in shown and "(planner failing (1 in a row), next try at" \
        in shown, shown
    # tried again (and logged each time), but the record is written only when the reason changes
    wait_for(lambda: any("goal hello: planner failing (3 in a row)" in line for line in lines), lines=lines)
    assert goal_commits(hub, "hello").count("goal hello: planner failing") == 1

    down["planner"] = False  # the endpoint is back for the planner: the task is made, done; the judge is down
    said = reason_starting(hub, "hello", "judge failing", lines)
    assert "unavailable after 2 attempts: HTTP 503" in said and "retries" in said, said
    assert "goal hello: planner works again" in goal_commits(hub, "hello")
    assert any("the planner works again after" in line for line in lines), lines

    down["judge"] = False
    thread.join(timeout=120)
    assert code == [0], lines
    with Board(str(hub)) as board:
        board.refresh()
        rec = board.records()["hello"]
    assert (rec.status, rec.reason) == ("done", None)
    assert goal_commits(hub, "hello").count("goal hello: judge failing") == 1


def serve_failing(hub: Path, tmp_path: Path, name: str, goal: str, settings: str, role: str):
    """Push the goal and its settings, serve, and wait for its record to say `role` is failing:
    (what it says, serve's thread, its exit code once it ends, its log)."""
    push_goal(hub, tmp_path, name, goal, files={".gitswarm.yaml": settings})
    lines: list[str] = []
    thread, code = start(hub, lines)
    return reason_starting(hub, name, f"{role} failing", lines), thread, code, lines


PLANNER_BREAKS = """planner: {backend: command, command: "echo the planner broke >&2; exit 3"}
judge: {backend: command, command: "true"}
worker: {backend: command, command: "true"}
"""
PLANNER_MENDED = PLANNER_BREAKS.replace("echo the planner broke >&2; exit 3", "true")


def test_a_planner_command_that_exits_non_zero_says_why_until_it_is_mended(hub, tmp_path):
    said, thread, code, lines = serve_failing(hub, tmp_path, "mend", GOAL, PLANNER_BREAKS, "planner")
    assert "exit status 3" in said and "the planner broke" in said, said
    assert "hint: the planner's command failed" in said, said
    # several retries meanwhile (each logged): the record is not rewritten for them
    wait_for(lambda: any("goal mend: planner failing (3 in a row)" in line for line in lines), lines=lines)
    assert goal_commits(hub, "mend").count("goal mend: planner failing") == 1
    assert code == []  # a failing planner's empty cycle is not judged at once: it waits for its planner

    push_files(hub, tmp_path, {".gitswarm.yaml": PLANNER_MENDED}, "mend the planner")
    thread.join(timeout=120)
    assert code == [0], lines
    assert "goal mend: planner works again" in goal_commits(hub, "mend")


LISTED = """---
judge: {every: 10m}
tasks:
  - title: Write a
    run: "echo a > a.txt"
---
One file.
"""
JUDGE_SLOW = """judge: {backend: command, command: "sleep 30", wall_time: 1s}
"""


def test_a_judge_command_that_times_out_gives_no_verdict_and_says_why(hub, tmp_path):
    said, thread, code, lines = serve_failing(hub, tmp_path, "slow", LISTED, JUDGE_SLOW, "judge")
    assert "the judge command gave no verdict: killed after" in said and "judge.wall_time" in said, said
    with Board(str(hub)) as board:
        board.refresh()
        assert board.records()["slow"].verdicts == ()  # a time-out is no "continue"

    push_files(hub, tmp_path, {".gitswarm.yaml": 'judge: {backend: command, command: "true"}\n'}, "a judge that answers")
    thread.join(timeout=120)
    assert code == [0], lines
    with Board(str(hub)) as board:
        board.refresh()
        rec = board.records()["slow"]
    assert (rec.status, rec.reason, [v.decision for v in rec.verdicts]) == ("done", None, ["done"])
