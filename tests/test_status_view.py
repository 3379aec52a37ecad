"""What `gitswarm status` explains: column headers, attempts of the most allowed, when a failed task
is tried again, the last error (one printable bounded line), the claim (#n: its fencing token) and
how long it has been held. A real hub and the real command line; the table itself also on fixed
times (no clock in the assertions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import commit_all, gitswarm, sh

from gitswarm import task as T
from gitswarm.statusview import HEADER, Retries, explain, format_status

NOW = T.timestamp("2026-01-07T10:00:00Z")


def _task(**fields) -> T.Task:
    return T.Task(id=fields.pop("id", "t-aa11"), title=fields.pop("title", "a task"), created="2026-01-07T09:00:00Z",
                  **fields)


def test_the_table_has_headers_and_says_what_happens_next() -> None:
    claimed = _task(id="t-c1", status="claimed", attempts=2,
                    claim=T.Claim(worker="w7", token=5, at="2026-01-07T09:57:30Z", lease=900))
    resting = _task(id="t-r1", attempts=1, result={"worker": "w1", "at": "2026-01-07T09:59:55Z", "reason": "boom"})
    waiting = _task(id="t-w1", depends_on=("t-c1", "t-done"))
    done = _task(id="t-done", status="done", attempts=1, result={"worker": "w9", "at": "2026-01-07T09:00:00Z"})
    failed = _task(id="t-f1", status="failed", attempts=3, result={"worker": "w2", "at": "2026-01-07T09:00:00Z",
                                                                      "reason": "tests red\nmore"})
    dead = _task(id="t-d1", status="dead", attempts=3, result={"at": "2026-01-07T09:00:00Z",
                                                                  "reason": "failed 3 times; last error: x"})
    text = format_status([claimed, resting, waiting, failed, dead, done], set(), Retries(3, 10.0, "defaults"), now=NOW)
    assert text.count(HEADER) == 5  # one per state shown
    assert "at most 3 attempts a task, 10s before a retry, doubling (defaults)" in text
    assert re.search(r"t-c1 .* 2/3  claimed 2m ago .*\n +claim #5 by w7, lease 15m$", text, re.M), text
    assert "token" not in text
    assert re.search(r"t-r1 .* 1/3  retry in 5s .*\n +last error: boom$", text, re.M), text
    assert re.search(r"t-w1 .* 0/3  waiting .*\n +waits for t-c1$", text, re.M), text
    assert re.search(r"t-f1 .* 3/3  out of tries .*\n +last error: tests red\n +by w2$", text, re.M), text
    assert re.search(r"t-d1 .* 3/3  dead .*\n +why: failed 3 times; last error: x$", text, re.M), text
    assert re.search(r"t-done .* 1/3  by w9 +a task$", text, re.M), text


def test_a_failed_task_with_tries_left_says_when_it_is_retried() -> None:
    failed = _task(status="failed", attempts=2, result={"worker": "w", "at": "2026-01-07T09:59:00Z", "reason": "no"})
    assert explain(failed, False, Retries(3, 60.0), NOW)[0] == "retry in 1m"  # 60s * 2^(2-1) after 09:59
    assert explain(failed, False, Retries(3, 0.0), NOW)[0] == "retry due"


def test_an_agents_error_is_one_bounded_printable_line() -> None:
    hostile = "\x1b[2J\x1b]0;pwned\x07" + "E" * 5000 + "\nsecond line"
    t = _task(attempts=1, result={"worker": "w", "at": "2026-01-07T09:00:00Z", "reason": hostile})
    state, detail = explain(t, True, Retries(), NOW)
    assert state == "ready" and len(detail) == 1
    assert detail[0].startswith("last error: EEE") and detail[0].endswith("...") and len(detail[0]) < 200
    assert "\x1b" not in detail[0] and "pwned" not in detail[0] and "second line" not in detail[0]


def test_status_of_a_real_hub_reads_its_settings_and_explains_its_tasks(hub: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    sh("git", "checkout", "-q", "-b", "main", cwd=work)
    (work / ".gitswarm.yaml").write_text("max_attempts: 2\nretry_backoff: 1h\n")
    commit_all(work, "settings")
    sh("git", "push", "-q", "origin", "main", cwd=work)
    first = gitswarm("task", "add", "--title", "first", cwd=work).stdout.strip()
    second = gitswarm("task", "add", "--title", "second", cwd=work).stdout.strip()
    assert gitswarm("claim", "-w", "w1", cwd=work).stdout.strip() == first
    assert gitswarm("claim", "-w", "w2", cwd=work).stdout.strip() == second
    gitswarm("fail", "origin", second, "-w", "w2", "-m", "tests red\n\x1b[31mdetails", cwd=work)
    gitswarm("reclaim", str(hub))  # 1 of 2 attempts: open again, resting an hour
    text = gitswarm("status", cwd=work).stdout
    assert "at most 2 attempts a task, 1h before a retry, doubling (.gitswarm.yaml on main)" in text, text
    assert re.search(rf"{first} .* 1/2  claimed \d+s ago .*\n +claim #1 by w1, lease 15m$", text, re.M), text
    assert re.search(rf"{second} .* 1/2  retry in \d+m .*\n +last error: tests red$", text, re.M), text
    doc = json.loads(gitswarm("status", "origin", "--json", cwd=work).stdout)
    assert doc["ready"] == [] and doc["retries"] == {"max_attempts": 2, "retry_backoff": 3600.0,
                                                     "from": ".gitswarm.yaml on main"}


def test_the_commands_scripts_call_print_json(hub: Path, tmp_path: Path) -> None:
    """claim, task add, task show and judge with --json print one JSON document a script parses."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("- id: t-one\n  title: One\n- title: Two\n  depends_on: [t-one]\n")
    added = json.loads(gitswarm("task", "add", str(hub), "--from", str(plan), "--json").stdout)
    assert [t["title"] for t in added["tasks"]] == ["One", "Two"] and added["tasks"][0]["id"] == "t-one"
    one = json.loads(gitswarm("task", "add", str(hub), "--title", "Three", "--json").stdout)["tasks"][0]
    shown = json.loads(gitswarm("task", "show", str(hub), one["id"], "--json").stdout)
    assert shown == one
    got = json.loads(gitswarm("claim", str(hub), "-w", "w1", "--json").stdout)["task"]
    assert got["id"] == "t-one" and got["status"] == "claimed" and got["claim"]["worker"] == "w1"
    assert got["claim"]["token"] >= 1
    gitswarm("claim", str(hub), "-w", "w1")  # Three; Two waits for One
    none = gitswarm("claim", str(hub), "-w", "w2", "--json", check=False)
    assert none.returncode == 1 and json.loads(none.stdout) == {"task": None} and "no ready task" in none.stderr
    assert json.loads(gitswarm("judge", str(hub), "--json").stdout) == {"verdicts": []}
    not_active = json.loads(gitswarm("judge", str(hub), "--goal", "nope", "--json").stdout)
    assert not_active == {"verdicts": [{"goal": "nope", "decision": None, "cycle": None, "reasons": None,
                                        "tokens": 0}]}


def test_a_goal_says_what_it_waits_for() -> None:
    from gitswarm.record import GoalRecord
    from gitswarm.statusview import goal_summary

    tasks = [_task(id="t-aa11", goal="g", status="open"), _task(id="t-bb22", goal="g", status="done"),
             _task(id="t-cc33", goal="other", status="open")]
    assert goal_summary(GoalRecord("g"), tasks)["waits"] == "1 task(s) to end"
    assert goal_summary(GoalRecord("g"), tasks[1:2])["waits"] == "its planner or judge (in serve)"
    assert goal_summary(GoalRecord("g", reason="planner failing"), tasks)["waits"] is None  # the reason says it
    assert goal_summary(GoalRecord("g", status="done"), tasks)["waits"] is None
