"""`gitswarm report`: a page of a real run (a goal of `run:` tasks through `serve`, one of which
fails), read from git alone, checked as data, as escaped HTML and in a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gitswarm import report as R
from gitswarm.board import Board
from gitswarm.runarchive import fold
from gitswarm.reportpage import render

from conftest import gitswarm, sh
from test_swarm import push_goal, serve

HOSTILE = "<script>alert(1)</script>"
GOAL = f"""---
check: "test -s a.txt && test -s b.txt"
max_cycles: 1
tasks:
  - title: Write a
    run: "echo a > a.txt"
  - title: Write b
    run: "echo b > b.txt"
    depends_on: [Write a]
  - title: "{HOSTILE}"
    run: "echo c > c.txt"
  - title: Break the build
    run: "echo 'the build is broken' >&2; exit 3"
---
Write files; one task always fails.
"""
SETTINGS = "retry_backoff: 0\nmax_attempts: 2\n"


def sample_run(hub: Path, tmp_path: Path) -> Path:
    push_goal(hub, tmp_path, "files", GOAL, {".gitswarm.yaml": SETTINGS})
    serve(hub, workers=2)
    return hub


def test_the_report_holds_every_task_its_attempts_failures_and_spend(hub: Path, tmp_path: Path) -> None:
    sample_run(hub, tmp_path)
    clone = tmp_path / "clone.git"  # any clone will do: the report reads git alone
    sh("git", "clone", "-q", "--mirror", str(hub), str(clone))
    found = R.build(str(clone))
    titles = {t.title: t for t in found.tasks}
    assert set(titles) == {"Write a", "Write b", HOSTILE, "Break the build"}
    assert found.by_status() == {"done": 3, "dead": 1}
    broken = titles["Break the build"]
    tries = [a for a in found.attempts if a.task == broken.id]
    assert [a.outcome for a in tries] == ["failed", "failed"] and [a.token for a in tries] == [1, 2]
    assert all("exit status 3" in a.reason and "the build is broken" in a.reason for a in tries)
    assert "the build is broken" in broken.result["reason"]
    for title in ("Write a", "Write b", HOSTILE):  # each landed once, its commit on main named
        t = titles[title]
        assert [a.outcome for a in found.attempts if a.task == t.id] == ["done"]
        assert found.landed[t.id].commit == t.result["commit"]
    assert found.throughput[-1][1] == 3 and found.queue[0][1] == 4 and found.queue[-1][1] == 0
    verdicts = found.records[0].verdicts
    assert [v.decision for v in verdicts] == ["done"] and found.records[0].status == "done"
    roles = found.tokens_by_role()
    assert set(roles) == {"planner", "judge", "worker"} and roles["worker"] == sum(
        t.result.get("tokens", 0) for t in found.tasks)
    assert found.tokens_by_goal()["files"]["total"] == sum(roles.values())
    page = render(found)
    for t in found.tasks:
        assert f"id='task-{t.id}'" in page and f"href='#task-{t.id}'" in page  # a row, and a bar linking to it


def test_a_demo_run_shows_every_task_and_each_attempt_s_rebases_live_or_archived(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's workers race to land: each rebase onto a moved main runs the task again, and its
    runs record counts the runs; the report reads them from the live refs and from the archive."""
    result = gitswarm("demo", "--dir", str(tmp_path / "demo"), "--workers", "4")
    hub = tmp_path / "demo" / "hub.git"
    rebasing = [ln for ln in result.stdout.splitlines() if "main moved; rebasing" in ln]
    monkeypatch.setattr(R, "FETCH_REFS", 3)  # the 8 records' refs in 3 fetches
    found = R.build(str(hub))
    assert len(found.tasks) == 8 and found.by_status() == {"done": 8}
    assert sorted(a.task for a in found.attempts) == sorted(t.id for t in found.tasks)
    assert rebasing and sum(a.runs - 1 for a in found.attempts) == len(rebasing)
    for a in found.attempts:
        assert a.runs - 1 == sum(a.task in ln for ln in rebasing)
        assert a.start <= a.end and a.outcome == "done"
    with Board(str(hub)) as board:
        board.refresh()
        assert fold(hub, board, lambda _: None, after=0) == 8
    assert sh("git", "for-each-ref", "refs/gitswarm/runs/", cwd=hub).stdout == ""
    archived = R.build(str(hub))
    assert [(a.task, a.runs) for a in archived.attempts] == [(a.task, a.runs) for a in found.attempts]


def test_untrusted_text_shows_as_text(hub: Path, tmp_path: Path) -> None:
    sample_run(hub, tmp_path)
    page = render(R.build(str(hub)), commit_url="https://forge.example/c/{sha}?a='\"")
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own check, nothing else
    assert "?a=&#x27;&quot;" in page  # the template is escaped too, quotes and all
    assert not re.search(r"(src|href)=['\"]?(https?:)?//(?!forge\.example)", page)  # no fetch of anything


def test_the_cli_writes_the_page_and_says_so(hub: Path, tmp_path: Path) -> None:
    sample_run(hub, tmp_path)
    out = tmp_path / "run.html"
    result = gitswarm("report", str(hub), "-o", str(out))
    assert f"wrote {out}" in result.stdout and "4 task(s): 3 done, 1 dead" in result.stdout
    assert out.read_text().startswith("<!DOCTYPE html>")
    failed = gitswarm("report", str(hub), "-o", str(tmp_path / "nowhere" / "run.html"), check=False)
    assert failed.returncode == 2 and "cannot write" in failed.stderr and "hint:" in failed.stderr
    assert "Traceback" not in failed.stderr
    failed = gitswarm("report", str(hub), "--commit-url", "javascript:alert(1)//{sha}", check=False)
    assert failed.returncode == 2 and "is not an http(s) address" in failed.stderr


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("GITSWARM_REQUIRE_BROWSER"):
        pytest.fail("GITSWARM_REQUIRE_BROWSER is set and chromium is missing: apt-get install chromium")
    return found


def test_the_page_renders_every_task_in_a_headless_browser(hub: Path, tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    sample_run(hub, tmp_path)
    out = tmp_path / "run.html"
    gitswarm("report", str(hub), "-o", str(out))
    tasks = R.build(str(hub)).tasks
    proc = subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                           "--virtual-time-budget=5000", "--dump-dom", out.as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom, log = proc.stdout, proc.stderr
    assert proc.returncode == 0, log
    assert f'data-tasks-rendered="{len(tasks)}"' in dom and 'data-check="ok"' in dom, dom[:2000]
    for t in tasks:
        assert f'id="task-{t.id}"' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln or "Content Security" in ln]
    assert not console, "\n".join(console)


def test_a_board_written_unguarded_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    """Any clone will do, so the board may be anyone's: a file that does not parse, a trailer naming
    a path, a claim never ended. The report says what it could not read and renders the rest."""
    from gitswarm import rules
    from gitswarm import task as T

    repo = tmp_path / "board"
    sh("git", "init", "-q", "-b", "tasks", str(repo))
    new = T.new_task(HOSTILE)
    path = repo / new.path
    path.parent.mkdir(parents=True)

    def commit(data: bytes, message: str) -> None:
        path.write_bytes(data)
        sh("git", "add", "-A", cwd=repo)
        sh("git", "commit", "-q", "-m", message, cwd=repo)

    commit(T.dump(new), rules.message("add", [new]))
    commit(T.dump(rules.claim(new, "w1")), rules.message("claim", [new], worker="w1", token=1)
           + "Gitswarm-Task: ../../etc/passwd\n")
    commit(b"id: [unclosed\n", f"done {new.id}\n\nGitswarm-Action: complete\nGitswarm-Task: {new.id}\n")
    found = R.build(str(repo))
    assert found.tasks == [] and any(new.path in p and "not valid YAML" in p for p in found.problems)
    assert [(a.task, a.worker, a.outcome) for a in found.attempts] == [(new.id, "w1", "held")]
    assert found.queue[-1][1] == 0  # claimed: out of the queue; the broken file changed nothing
    page = render(found)
    assert HOSTILE not in page and "Unreadable board files" in page


def test_a_worker_s_tokens_and_model_are_counted_per_goal_and_role(hub: Path, tmp_path: Path) -> None:
    """A command agent's result file says what it spent: the task's result and main's trailers
    carry it, and the report counts it for the worker role and the goal."""
    import json

    from test_command_agents import run_goal

    result = {"status": "done", "summary": "wrote out.txt", "tokens_in": 1200, "tokens_out": 34, "model": "my-model",
              "cost": 0.5}  # the agent's own figure: it reached no model through the meter
    run_goal(hub, tmp_path, f"echo hi > out.txt; echo '{json.dumps(result)}' > \"$GITSWARM_RESULT_FILE\"")
    found = R.build(str(hub))
    (task,) = found.tasks
    assert found.tokens_by_role() == {"planner": 0, "judge": 0, "worker": 1234}
    assert found.tokens_by_goal() == {"g": {"goal": 0, "tasks": 1234, "total": 1234, "cost": 0.5}}
    assert found.cost_by_role() == {"planner": None, "judge": None, "worker": 0.5}
    landed = found.landed[task.id]
    assert (landed.tokens, landed.model, landed.commit) == (1234, "my-model", task.result["commit"])
    assert "1234" in render(found) and "my-model" in render(found) and "$0.5000" in render(found)
