"""Real agent CLIs as workers, configured by the recipes in docs/agents.md: mini-swe-agent
(gitswarm.recipes.mini) end to end through `serve`, in the sandbox, against scripted replies from
tests/fake_openai.py in mini's format (one bash block a reply), run by a real shell. mini is in the
`test` extra; CI (.ci/run) sets GITSWARM_REQUIRE_AGENT_CLIS=1, which makes a missing mini a failure,
not a skip. aider runs only with GITSWARM_TEST_AIDER=1 (a huge install, not in CI)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import sh
from fake_openai import FakeOpenAI, error, fake_openai, text  # noqa: F401
from test_command_agents import GOAL, task_of
from test_swarm import push_goal, serve

pytestmark = pytest.mark.slow  # minutes: real agent CLIs as workers

DOCS = Path(__file__).resolve().parent.parent / "docs" / "agents.md"
SANDBOX = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (.ci/run installs it)")


def recipes() -> dict[str, str]:
    """The `.gitswarm.yaml` snippets of docs/agents.md, by the name in their `# recipe: <name>` line."""
    blocks = re.findall(r"```yaml\n# recipe: ([\w-]+)\n(.*?)```", DOCS.read_text(), re.DOTALL)
    return {name: body for name, body in blocks}


def need_mini() -> None:
    if importlib.util.find_spec("minisweagent") is None:
        why = "mini-swe-agent is not installed (pip install -e '.[test]')"
        if os.environ.get("GITSWARM_REQUIRE_AGENT_CLIS") == "1":
            pytest.fail(why + ", and GITSWARM_REQUIRE_AGENT_CLIS=1 says it must run")
        pytest.skip(why)


def bash(command: str, thought: str = "THOUGHT: next step.") -> str:
    """A reply in mini's format."""
    return f"{thought}\n\n```mswea_bash_command\n{command}\n```"


def host_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI) -> None:
    """The host's one model endpoint: the fake server, its key HOST_KEY."""
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text(f"endpoints:\n  fake: {{base_url: '{fake.base_url}', api_key_env: HOST_KEY}}\n")
    monkeypatch.setenv("GITSWARM_ENDPOINTS", str(endpoints))
    monkeypatch.setenv("HOST_KEY", "sk-host-secret")


def recipe_settings(name: str) -> str:
    settings = yaml.safe_load(recipes()[name])
    settings.update(planner={"backend": "command", "command": "true"}, judge={"backend": "command", "command": "true"},
                    retry_backoff=0, max_attempts=1)
    return yaml.safe_dump(settings)


def test_docs_have_the_recipes_the_tests_run() -> None:
    found = recipes()
    assert {"mini", "aider"} <= set(found), found.keys()
    for name, body in found.items():
        assert isinstance(yaml.safe_load(body), dict), name


@SANDBOX
def test_mini_swe_agent_does_a_task_and_it_lands(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  fake_openai) -> None:
    """mini, as docs/agents.md configures it, claims the task, edits and commits in its worktree
    (in the sandbox, its model only through the meter), submits; the work lands on main as the
    task's one commit, with the meter's token count. Colour is forced on (FORCE_COLOR=1 reaches
    the agent): the summary is still plain text."""
    need_mini()
    host_endpoint(tmp_path, monkeypatch, fake_openai)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("GITSWARM_AGENT_ENV", "FORCE_COLOR")
    fake_openai.enqueue(
        text(bash("echo hello > out.txt && git add out.txt && git commit -qm 'mini: write out.txt'"), usage=(100, 20)),
        text(bash("echo more > more.txt && git status --short"), usage=(150, 30)),
        text(bash("printf 'COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\\n\\033[32mwrote out.txt and more.txt\\033[0m\\n'",
                  "THOUGHT: done."), usage=(200, 40)))
    push_goal(hub, tmp_path, "g", GOAL.format(check="out.txt"), {".gitswarm.yaml": recipe_settings("mini")})
    lines: list[str] = []
    started = time.monotonic()
    serve(hub, lines, workers=1)
    print(f"mini end to end: {time.monotonic() - started:.1f}s")
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "hello\n", "\n".join(lines)
    assert sh("git", "show", "main:more.txt", cwd=hub).stdout == "more\n"  # left uncommitted: kept too
    assert len(fake_openai.requests) == 3
    assert all(r.headers.get("Authorization") == "Bearer sk-host-secret" for r in fake_openai.requests)
    observed = fake_openai.requests[2].last["content"]  # the real shell's output, shown to the model
    assert "<returncode>0</returncode>" in observed and "?? more.txt" in observed
    task = task_of(hub)
    assert task["status"] == "done" and task["result"]["summary"] == "wrote out.txt and more.txt"
    assert task["result"]["tokens"] == 540  # the meter's count
    message = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout
    assert "Gitswarm-Tokens: 540" in message and "Gitswarm-Model: gpt-4o-mini" in message
    assert "- mini: write out.txt" in message and "\x1b" not in message
    assert sh("git", "rev-list", "--count", "main", cwd=hub).stdout.strip() == "2"  # one commit for the task
    ref = f"refs/gitswarm/runs/{task['id']}/1"  # the attempt's record, outside main
    transcript = sh("git", "show", f"{ref}:1/transcript.jsonl", cwd=hub).stdout.splitlines()
    assert len(transcript) == 3 and "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT" in transcript[2]
    assert sh("git", "grep", "-l", "sk-host-secret", ref, cwd=hub, check=False).returncode == 1  # no key in it
    assert "outcome: done" in sh("git", "show", f"{ref}:attempt.yaml", cwd=hub).stdout


def run_mini(tmp_path: Path, fake: FakeOpenAI, *args: str) -> tuple[int, dict]:
    """The recipe alone, unsandboxed, in an empty folder, on a one-line prompt."""
    run, work = tmp_path / "run", tmp_path / "work"
    run.mkdir()
    work.mkdir()
    (run / "prompt.md").write_text("Write hello to out.txt.")
    env = {**os.environ, "GITSWARM_RUN_DIR": str(run), "GITSWARM_PROMPT_FILE": str(run / "prompt.md"),
           "GITSWARM_RESULT_FILE": str(run / "result.json"), "GITSWARM_MODEL": "m1",
           "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "token", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "gitswarm.recipes.mini", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads((run / "result.json").read_text())


def test_mini_hands_the_task_back_when_its_model_is_down(tmp_path: Path, fake_openai) -> None:
    need_mini()
    fake_openai.enqueue(*[error(500)] * 4)
    code, said = run_mini(tmp_path, fake_openai, "--retries", "1")
    assert code == 75 and said["status"] == "handback" and "InternalServerError" in said["summary"]


def test_mini_fails_saying_so_at_its_step_limit(tmp_path: Path, fake_openai) -> None:
    need_mini()
    fake_openai.enqueue(text(bash("echo hello > out.txt")), text(bash("ls")))
    code, said = run_mini(tmp_path, fake_openai, "--step-limit", "2")
    assert code == 0 and said["status"] == "failed" and "step limit (2 model calls)" in said["summary"]
    assert (said["tokens_in"], said["tokens_out"]) == (20, 10)  # from the trajectory's usage


def test_mini_fails_when_replies_are_out_of_its_format(tmp_path: Path, fake_openai) -> None:
    need_mini()
    fake_openai.enqueue(*[text("I would rather talk.")] * 3)
    code, said = run_mini(tmp_path, fake_openai)
    assert code == 0 and said["status"] == "failed" and "not in mini's format" in said["summary"]


IDLE_AGENT = """
import os, sys
from openai import OpenAI
open(".aider.chat.history.md", "a").write("# aider chat started\\n")  # a cache, left out by ignore:
try:
    reply = OpenAI(max_retries=0).chat.completions.create(model=os.environ["GITSWARM_MODEL"],
                                                          messages=[{"role": "user", "content": "hi"}])
except Exception as e:  # as aider does: say so, change nothing, exit 0
    print(f"litellm.InternalServerError: {e}")
    sys.exit(0)
open("out.txt", "w").write(reply.choices[0].message.content + "\\n")
"""


@SANDBOX
def test_an_agent_that_exits_0_idle_while_its_model_is_down_hands_the_task_back(
        hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_openai) -> None:
    """An aider-like stand-in: its model answers 500, it says so and exits 0 having changed
    nothing (but its cache) and written no result file. That is the model's fault, not "done,
    nothing to change": the task goes back without burning its one attempt, and the next claim,
    with the model back, does the work."""
    from gitswarm.roles import worker

    monkeypatch.setattr(worker, "UNAVAILABLE_PAUSE", 0.0)
    host_endpoint(tmp_path, monkeypatch, fake_openai)
    (tmp_path / "agent.py").write_text(IDLE_AGENT)
    monkeypatch.setenv("GITSWARM_SANDBOX_PATHS", str(tmp_path / "agent.py"))
    fake_openai.enqueue(error(500), text("hello"))
    settings = yaml.safe_load(recipe_settings("aider"))
    settings["worker"]["command"] = f"{sys.executable} {tmp_path / 'agent.py'}"
    push_goal(hub, tmp_path, "g", GOAL.format(check="out.txt"), {".gitswarm.yaml": yaml.safe_dump(settings)})
    lines: list[str] = []
    serve(hub, lines, workers=1)
    assert any("model is unavailable" in line and "changed nothing" in line for line in lines), lines
    task = task_of(hub)
    assert (task["status"], task["attempts"]) == ("done", 2), task
    assert sh("git", "show", "main:out.txt", cwd=hub).stdout == "hello\n"
    assert ".aider" not in sh("git", "ls-tree", "-r", "--name-only", "main", cwd=hub).stdout
    assert "done, nothing to change" not in "\n".join(lines)
