"""End to end with a model: the real `openai` client against an OpenAI-compatible server on
127.0.0.1 that serves scripted tool calls. Goals are pushed with plain `git push`; everything is
checked through git."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Request, Response, tool_call
from gitswarm.board import Board
from gitswarm.daemon import Daemon

from conftest import sh

pytestmark = pytest.mark.slow  # whole swarms through the openai client


def push_files(hub: Path, tmp_path: Path, files: dict[str, str], message: str = "start") -> None:
    clone = tmp_path / "project"
    if not clone.exists():
        sh("git", "clone", "-q", str(hub), str(clone))
    elif sh("git", "ls-remote", "origin", "main", cwd=clone).stdout:
        sh("git", "pull", "-q", "--rebase", "origin", "main", cwd=clone)
    for path, content in files.items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_text(content)
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", message, cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)


def settings(server: FakeOpenAI) -> str:
    return f"defaults:\n  model: fake-model\n  base_url: {server.base_url}\n  max_steps: 20\n"


def role(req: Request) -> str:
    return next(r for r in ("planner", "worker", "judge") if r in req.system)


def tool_results(req: Request) -> list[str]:
    return [m.get("content") or "" for m in req.messages if m.get("role") == "tool"]


def user(req: Request) -> str:
    return req.messages[1]["content"]


def task_title(req: Request) -> str:
    found = re.search(r"\*\*(.+?)\*\*", user(req))
    return found.group(1) if found else ""


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class Brain:
    """Scripted answers by role, so that several agents can share one server."""

    def __init__(self, plan: list[dict], judge: str = "done", worker=None, planner=None):
        self.plan, self.decision = plan, judge
        self.worker, self.planner = worker, planner

    def __call__(self, req: Request) -> Response | None:
        who = role(req)
        if who == "planner":
            if self.planner is not None:
                return self.planner(req)
            if "(no tasks yet)" in user(req) and not tool_results(req):
                return tool_call("create_tasks", {"tasks": self.plan})
            return tool_call("finish", {"summary": "the plan stands"})
        if who == "worker":
            if self.worker is not None:
                answer = self.worker(req)
                if answer is not None:
                    return answer
            title = task_title(req)
            if not tool_results(req):
                return tool_call("write_file", {"path": f"{slug(title)}.txt", "content": f"{title}\n"})
            return tool_call("finish", {"summary": f"wrote {slug(title)}.txt"})
        return tool_call("verdict", {"decision": self.decision, "reasons": "every task landed on main"})


@pytest.fixture
def server(monkeypatch):
    """The model server, on loopback: the host's one endpoint (OPENAI_BASE_URL, OPENAI_API_KEY), which
    `.gitswarm.yaml` chooses by its base_url."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeOpenAI() as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        yield s


def run_daemon(hub: Path, lines: list[str] | None = None, **kw) -> int:
    kw.setdefault("workers", 2)
    kw.setdefault("planners", 1)
    kw.setdefault("debounce", 0.2)
    log = lines.append if lines is not None else (lambda _: None)
    return Daemon(hub, until_done=True, name="e2e", log=log, **kw).run()


def board_tasks(hub: Path):
    with Board(str(hub)) as board:
        board.refresh()
        return board.tasks(), board.records()


GOAL = "---\njudge: {every: 10m}\n---\n# Hello\n\nWrite hello.txt, then world.txt.\n"


def test_a_goal_pushed_with_git_runs_to_done_through_the_cli(hub, tmp_path, server):
    server.route(Brain([{"title": "Write hello", "description": "create hello"},
                        {"title": "Write world", "description": "create world", "depends_on": ["Write hello"]}]))
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server), "README.md": "project\n"})
    push_files(hub, tmp_path, {"goals/hello.md": GOAL}, "add goal hello")
    proc = subprocess.run([sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers", "2",
                           "--until-done"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tasks, records = board_tasks(hub)
    assert sorted((t.title, t.status) for t in tasks) == [("Write hello", "done"), ("Write world", "done")]
    assert all(t.result["tokens"] > 0 and t.result["commit"] for t in tasks)
    assert records["hello"].status == "done" and records["hello"].verdicts[-1].decision == "done"
    # the work is on main, one commit per task, with its trailers
    log = sh("git", "log", "--format=%s%n%(trailers)", "main", cwd=hub).stdout
    for t in tasks:
        assert f"Gitswarm-Task: {t.id}" in log
    assert "Gitswarm-Model: fake-model" in log and "Gitswarm-Tokens: " in log
    assert sh("git", "show", "main:write-world.txt", cwd=hub).stdout == "Write world\n"
    subjects = sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout
    assert "add 2 tasks: Write hello, Write world" in subjects and "judge hello: done (cycle 1)" in subjects
    assert {role(r) for r in server.requests} == {"planner", "worker", "judge"}
    assert all(r.body["model"] == "fake-model" for r in server.requests)
    assert all(r.headers.get("authorization") == "Bearer test-key" for r in server.requests)
    # gitswarm's own loop keeps no runs record (docs/board.md): no push per attempt for nothing
    assert sh("git", "for-each-ref", "refs/gitswarm/runs/", cwd=hub).stdout == ""


def test_a_rebase_conflict_is_resolved_by_the_worker(hub, tmp_path, server):
    import threading

    both_edited = threading.Barrier(2, timeout=30)

    def worker(req: Request) -> Response | None:
        title, results = task_title(req), tool_results(req)
        if "stopped with" in user(req):  # the conflict prompt: keep both lines
            if not results:
                return tool_call("write_file", {"path": "shared.txt", "content": "A\nB\n"})
            return tool_call("finish", {"summary": "kept both"})
        letter = title[-1]
        if not results:
            return tool_call("write_file", {"path": "shared.txt", "content": f"{letter}\n"})
        if len(results) == 1:
            both_edited.wait()  # both workers edited the same line of the same main: a conflict is certain
        return tool_call("finish", {"summary": f"wrote {letter}"})

    server.route(Brain([{"title": "Write A", "description": ""}, {"title": "Write B", "description": ""}],
                       worker=worker))
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server), "shared.txt": "start\n"})
    push_files(hub, tmp_path, {"goals/both.md": GOAL}, "add goal both")
    lines: list[str] = []
    assert run_daemon(hub, lines) == 0, lines
    assert sh("git", "show", "main:shared.txt", cwd=hub).stdout == "A\nB\n"
    assert any("conflict in shared.txt; resolving" in ln for ln in lines)
    tasks, _ = board_tasks(hub)
    assert [t.status for t in tasks] == ["done", "done"]
    assert any("stopped with" in user(r) for r in server.requests if role(r) == "worker")


def test_sub_planners_recurse_down_to_the_depth_bound(hub, tmp_path, server):
    def planner(req: Request) -> Response:
        results, text = tool_results(req), user(req)
        if "the whole goal" in text:  # the root planner hands the area to a sub-planner
            if "(no tasks yet)" in text and not results:
                return tool_call("create_tasks", {"tasks": [
                    {"title": "Plan the parser", "description": "split the parser work", "kind": "plan"}]})
            return tool_call("finish", {"summary": "handed out"})
        if not results:  # the sub-planner (depth 1 = max_depth) tries to recurse once more
            return tool_call("create_tasks", {"tasks": [{"title": "Plan deeper", "description": "", "kind": "plan"}]})
        if len(results) == 1:
            return tool_call("create_tasks", {"tasks": [{"title": "Write parser", "description": "do it"}]})
        return tool_call("finish", {"summary": "parser planned"})

    server.route(Brain([], planner=planner))
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server)})
    push_files(hub, tmp_path, {"goals/deep.md": GOAL.replace("judge:", "max_depth: 1\njudge:")}, "goal deep")
    assert run_daemon(hub) == 0
    tasks, _ = board_tasks(hub)
    by_title = {t.title: t for t in tasks}
    assert set(by_title) == {"Plan the parser", "Write parser"}
    assert by_title["Plan the parser"].kind == "plan" and by_title["Plan the parser"].status == "done"
    assert by_title["Write parser"].parent == by_title["Plan the parser"].id
    assert by_title["Write parser"].status == "done"
    refused = [r for req in server.requests for r in tool_results(req) if "not allowed at depth 1" in r]
    assert refused, "the depth bound was not enforced"


def test_a_planner_is_woken_by_completions(hub, tmp_path, server):
    def planner(req: Request) -> Response:
        text, results = user(req), tool_results(req)
        if results:
            return tool_call("finish", {"summary": "ok"})
        if "(no tasks yet)" in text:
            return tool_call("create_tasks", {"tasks": [{"title": "First step", "description": ""}]})
        if "[done] (work) First step" in text and "Follow up" not in text:
            return tool_call("create_tasks", {"tasks": [{"title": "Follow up", "description": "after the first"}]})
        return tool_call("finish", {"summary": "nothing to add"})

    server.route(Brain([], planner=planner))
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server)})
    push_files(hub, tmp_path, {"goals/wake.md": GOAL}, "goal wake")
    assert run_daemon(hub, workers=1) == 0
    tasks, _ = board_tasks(hub)
    assert [(t.title, t.status) for t in tasks] == [("First step", "done"), ("Follow up", "done")]
    first, follow = tasks
    assert follow.created > first.result["at"]  # planned after the first had ended


def test_a_repository_overrides_a_prompt(hub, tmp_path, server):
    server.route(Brain([{"title": "Write it", "description": "x"}]))
    override = "CUSTOM WORKER PROMPT for {{title}} ({{task_id}}) in {{goal_name}}.\n"
    system = "You are a gitswarm worker, as this repository says.\n"
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server), ".gitswarm/prompts/worker.md": override,
                               ".gitswarm/prompts/worker-system.md": system})
    push_files(hub, tmp_path, {"goals/custom.md": GOAL}, "goal custom")
    assert run_daemon(hub) == 0
    prompts = [user(r) for r in server.requests if role(r) == "worker"]
    assert prompts and all(p.startswith("CUSTOM WORKER PROMPT for Write it (t-") for p in prompts)
    assert all("{{" not in p for p in prompts)
    assert {r.system for r in server.requests if role(r) == "worker"} == {system}  # the system prompt too
    assert {r.system for r in server.requests if role(r) == "judge"} == {
        "You are a gitswarm judge: you decide whether a goal is met."}  # the shipped one, not overridden


def test_a_refused_model_configuration_stops_the_swarm(hub, tmp_path, server):
    from fake_openai import error

    server.route(lambda req: error(401, "invalid api key") if role(req) == "worker" else
                 Brain([{"title": "Write it", "description": "x"}])(req))
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server)})
    push_files(hub, tmp_path, {"goals/bad.md": GOAL}, "goal bad")
    lines: list[str] = []
    assert run_daemon(hub, lines) == 2
    assert any("the model refused the request" in ln for ln in lines)
    tasks, _ = board_tasks(hub)
    assert [(t.status, t.attempts) for t in tasks] == [("open", 1)]  # handed back, not failed


def test_a_spent_token_budget_stops_the_goal_and_its_claims(hub, tmp_path, server):
    plan = [{"title": f"Write file {i}", "description": "x"} for i in range(6)]
    server.route(Brain(plan))  # every reply costs 15 tokens (10 prompt, 5 completion)
    push_files(hub, tmp_path, {".gitswarm.yaml": settings(server)})
    push_files(hub, tmp_path, {"goals/cheap.md": GOAL.replace("judge:", "budget: 100\njudge:")}, "goal cheap")
    lines: list[str] = []
    assert run_daemon(hub, lines, workers=1) == 4, lines  # stopped, not done
    tasks, records = board_tasks(hub)
    rec = records["cheap"]
    assert rec.status == "stopped" and rec.budget == 100 and "token budget spent" in rec.reason
    done = [t for t in tasks if t.status == "done"]
    waiting = [t for t in tasks if t.status == "open"]
    assert done and waiting and len(done) + len(waiting) == 6  # the rest wait, unclaimed, for more budget
    subjects = sh("git", "log", "--reverse", "--format=%s", "tasks", cwd=hub).stdout.splitlines()
    stop = subjects.index("goal cheap: stopped, budget spent")
    assert not [s for s in subjects[stop:] if s.startswith("claim ")]  # no claim after the breaker tripped
    status = subprocess.run([sys.executable, "-m", "gitswarm", "status", str(hub)], capture_output=True, text=True,
                            cwd=tmp_path).stdout
    assert "goal cheap: stopped" in status and "of a 100 budget" in status and "token budget spent" in status
