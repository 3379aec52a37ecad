"""Command agents (a CLI of their own) as workers, under the contract of docs/agents.md: the task
in their environment, a result file, exit 75 to hand a task back, their own commits kept, stray
files left out. Real hub, real `serve`, real processes (in bubblewrap where it is installed)."""

from __future__ import annotations

import json
import sys
import shutil
from pathlib import Path

import pytest

from conftest import sh
from fake_openai import fake_openai, text  # noqa: F401
from test_swarm import push_goal, serve

pytestmark = pytest.mark.slow  # whole swarms of command agents

SANDBOX = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (.ci/run installs it)")

GOAL = """---
check: "test -s {check}"
max_cycles: 1
tasks:
  - title: Do the work
    description: The command agent does it.
---
One task for a command agent.
"""


def settings(command: str, max_attempts: str = "2", **extra: str) -> str:
    """`.gitswarm.yaml` with a command worker that reaches no model."""
    lines = [f"worker: {{backend: command, command: {json.dumps(command)}, network: 'off'"]
    lines += [f", {k}: {v}" for k, v in extra.items()]
    return "".join(lines) + f"}}\nretry_backoff: 0\nmax_attempts: {max_attempts}\n"


def run_goal(hub: Path, tmp_path: Path, command: str, check: str = "out.txt", **extra: str) -> list[str]:
    push_goal(hub, tmp_path, "g", GOAL.format(check=check), {".gitswarm.yaml": settings(command, **extra)})
    lines: list[str] = []
    serve(hub, lines, workers=1)
    return lines


def task_of(hub: Path) -> dict:
    import yaml

    listing = sh("git", "ls-tree", "-r", "--name-only", "tasks", cwd=hub).stdout.split()
    path = next(p for p in listing if p.startswith("tasks/") and p.endswith(".yaml"))
    return yaml.safe_load(sh("git", "show", f"tasks:{path}", cwd=hub).stdout)


def test_the_agent_gets_the_contract_in_its_environment(hub: Path, tmp_path: Path) -> None:
    command = ("env | grep -E '^(GITSWARM|OPENAI|GIT_AUTHOR)' | sort > out.txt; "
               "test -s \"$GITSWARM_PROMPT_FILE\" && grep -q 'Do the work' \"$GITSWARM_PROMPT_FILE\" && "
               "! grep -q 'read_file' \"$GITSWARM_PROMPT_FILE\" && echo prompt-ok >> out.txt")
    run_goal(hub, tmp_path, command)
    seen = dict(line.split("=", 1) for line in sh("git", "show", "main:out.txt", cwd=hub).stdout.splitlines()
                if "=" in line)
    task = task_of(hub)
    assert (seen["GITSWARM_ROLE"], seen["GITSWARM_TASK_ID"], seen["GITSWARM_GOAL"]) == ("worker", task["id"], "g")
    assert seen["GITSWARM_WORKER"] == task["result"]["worker"] == seen["GIT_AUTHOR_NAME"]
    assert seen["GITSWARM_RESULT_FILE"].startswith(seen["GITSWARM_RUN_DIR"])
    assert not any(k.startswith("OPENAI") for k in seen)  # network off: no model, no key of any kind
    assert "prompt-ok" in sh("git", "show", "main:out.txt", cwd=hub).stdout


def test_the_result_file_gives_the_summary_tokens_and_model(hub: Path, tmp_path: Path) -> None:
    result = {"status": "done", "summary": "\x1b[32mwrote out.txt\x1b[0m", "tokens_in": 1200, "tokens_out": 34,
              "model": "my-model", "cost": 0.01}
    run_goal(hub, tmp_path, f"echo hi > out.txt; echo '{json.dumps(result)}' > \"$GITSWARM_RESULT_FILE\"; "
                            "printf '\\033[31mnoise\\033[0m'")
    task = task_of(hub)
    assert task["status"] == "done" and task["result"]["summary"] == "wrote out.txt"
    assert task["result"]["tokens"] == 1234
    message = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout
    assert "Gitswarm-Tokens: 1234" in message and "Gitswarm-Model: my-model" in message
    assert "\x1b" not in message


@pytest.mark.parametrize("answer, reason", [
    ('{"status": "failed", "summary": "the parser is missing"}', "the parser is missing"),
    ('{"status": "done", "tokens_in": -1}', "tokens_in must be a whole number"),
    ('not json', "is not JSON"),
    ('{"status": "done", "colour": "red"}', "unknown field 'colour'"),
])
def test_a_failed_or_broken_result_fails_the_attempt_saying_why(hub: Path, tmp_path: Path, answer: str,
                                                                 reason: str) -> None:
    run_goal(hub, tmp_path, f"echo hi > out.txt; echo '{answer}' > \"$GITSWARM_RESULT_FILE\"")
    task = task_of(hub)
    assert task["status"] == "dead" and reason in task["result"]["reason"]
    assert sh("git", "cat-file", "-e", "main:out.txt", cwd=hub, check=False).returncode != 0  # nothing landed


def test_exit_75_hands_the_task_back_without_burning_an_attempt(hub: Path, tmp_path: Path) -> None:
    """The first claim's run hands the task back (exit 75: its model was down, say), the second
    does the work. With max_attempts 1, a hand-back counted as a failure would leave it dead."""
    command = 'if [ "$GITSWARM_ATTEMPT" = 1 ]; then echo busy; exit 75; fi; echo done > out.txt'
    lines = run_goal(hub, tmp_path, command, max_attempts="1")
    assert any("handed" in line and "without burning an attempt" in line for line in lines), lines
    task = task_of(hub)
    assert (task["status"], task["attempts"]) == ("done", 2)
    subjects = sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout
    assert "release" in subjects and "fail" not in subjects


@pytest.mark.parametrize("sandboxed", [pytest.param(True, marks=SANDBOX), False])
def test_work_the_agent_committed_itself_lands(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               sandboxed: bool) -> None:
    """aider commits by default: its commits on the task's base are squashed into the task's one
    commit (in the sandbox, where the mirror is read-only, into a copy of the worktree's git admin
    folder), and the caches it leaves are kept out by the role's `ignore:`."""
    if not sandboxed:
        monkeypatch.setenv("GITSWARM_SANDBOX", "off")
    command = ("mkdir -p .aider.tags.cache.v4 && echo cache > .aider.tags.cache.v4/x && echo one > out.txt && "
               "git add out.txt && git commit -qm 'agent: write out.txt' && echo two >> out.txt && "
               "git commit -qam 'agent: add a line' && echo three > more.txt")
    run_goal(hub, tmp_path, command, ignore="['.aider*']")
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "one\ntwo\n"
    assert sh("git", "show", "main:more.txt", cwd=hub).stdout == "three\n"  # left uncommitted: kept too
    files = sh("git", "ls-tree", "-r", "--name-only", "main", cwd=hub).stdout
    assert ".aider" not in files
    message = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout
    assert "- agent: add a line\n- agent: write out.txt" in message and "Gitswarm-Task: " in message
    assert task_of(hub)["status"] == "done"
    assert sh("git", "rev-list", "--count", "main", cwd=hub).stdout.strip() == "2"  # one commit for the task


AGENT = """
import os, sys
from openai import OpenAI
client = OpenAI(max_retries=0)  # OPENAI_BASE_URL and OPENAI_API_KEY from gitswarm's contract
with open("out.txt", "w") as out:
    for _ in range(int(sys.argv[1])):
        reply = client.chat.completions.create(model=os.environ["GITSWARM_MODEL"],
                                               messages=[{"role": "user", "content": "hi"}])
        out.write(reply.choices[0].message.content + "\\n")
    out.write("key=" + os.environ["OPENAI_API_KEY"] + "\\n")
"""


def model_goal(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake, calls: int, budget: str = "") -> list[str]:
    """A command worker that calls its model `calls` times with the openai client, through the
    metering proxy, the host's endpoint being the fake server with the key HOST_KEY."""
    (tmp_path / "agent.py").write_text(AGENT)
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text(f"endpoints:\n  fake: {{base_url: '{fake.base_url}', api_key_env: HOST_KEY}}\n")
    monkeypatch.setenv("GITSWARM_ENDPOINTS", str(endpoints))
    monkeypatch.setenv("HOST_KEY", "sk-host-secret")
    monkeypatch.setenv("GITSWARM_SANDBOX_PATHS", str(tmp_path / "agent.py"))
    config = (f"worker: {{backend: command, model: m1, command: '{sys.executable} {tmp_path / 'agent.py'} {calls}'}}\n"
              "planner: {backend: command, command: 'true'}\njudge: {backend: command, command: 'true'}\n"
              "retry_backoff: 0\nmax_attempts: 1\n")
    goal = GOAL.format(check="out.txt").replace("max_cycles: 1\n", f"max_cycles: 1\n{budget}")
    push_goal(hub, tmp_path, "g", goal, {".gitswarm.yaml": config})
    lines: list[str] = []
    serve(hub, lines, workers=1)
    return lines


@SANDBOX
def test_a_command_agent_reaches_its_model_only_through_the_meter(hub: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch, fake_openai) -> None:
    for _ in range(3):
        fake_openai.enqueue(text("hello", usage=(100, 20)))
    model_goal(hub, tmp_path, monkeypatch, fake_openai, 3)
    out = sh("git", "show", "main:out.txt", cwd=hub).stdout
    assert out.startswith("hello\nhello\nhello\nkey=") and "sk-host-secret" not in out  # a per-run token
    assert all(r.headers.get("Authorization") == "Bearer sk-host-secret" for r in fake_openai.requests)
    assert [r.body["model"] for r in fake_openai.requests] == ["m1"] * 3
    task = task_of(hub)
    assert task["result"]["tokens"] == 360  # the meter's count, not the agent's word
    message = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout
    assert "Gitswarm-Tokens: 360" in message and "Gitswarm-Model: m1" in message


@SANDBOX
def test_the_meter_refuses_calls_once_the_goals_budget_is_spent(hub: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, fake_openai) -> None:
    """Budget 150 tokens, 120 a call: the second call goes through (120 spent), the third is refused
    by the meter (it never reaches the endpoint); the task goes back to the board with the 240
    tokens on record, and the goal stops, its budget spent."""
    for _ in range(3):
        fake_openai.enqueue(text("hello", usage=(100, 20)))
    lines = model_goal(hub, tmp_path, monkeypatch, fake_openai, 3, budget="budget: 150\n")
    assert len(fake_openai.requests) == 2, "\n".join(lines)
    assert any("token budget is spent" in line for line in lines), lines
    task = task_of(hub)
    assert task["status"] == "open" and task["result"]["tokens"] == 240, task
    assert "budget spent" in sh("git", "show", "tasks:goals/g.yaml", cwd=hub).stdout
