"""Leases, fencing and poison tasks, with real processes and signals: a claim holds while its holder
gives news (heartbeat refs, the hub's clock); a lapsed claim is taken back; a frozen holder cannot
land or complete when it wakes; a task that keeps failing ends dead while the others flow.

No test waits for a lease to lapse: the hub's clock of a lease is the reflog of the holder's
heartbeat ref, and conftest.age_news moves it into the past, for the guard, the CLI and the daemon
alike."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from gitswarm import rules
from gitswarm.board import Board
from gitswarm.leases import reclaim_pass
from gitswarm.task import new_task

from conftest import age_news, commit_all, gitswarm, push, sh


def board_state(hub: Path) -> dict:
    with Board(str(hub)) as board:
        board.refresh()
        return {t.id: t for t in board.tasks()}


def test_a_claim_records_its_lease_and_the_hubs_clock(hub):
    t = gitswarm("task", "add", str(hub), "--title", "x").stdout.strip()
    assert gitswarm("claim", str(hub), "--worker", "alice", "--lease", "30s").stdout.strip() == t
    task = board_state(hub)[t]
    assert task.claim.lease == 30
    reflog = (hub / "logs" / "refs" / "gitswarm" / "heartbeats" / "alice").read_text().splitlines()
    assert len(reflog) == 1  # the claim's push moved alice's heartbeat ref: the lease starts on the hub's clock
    bad = gitswarm("claim", str(hub), "--worker", "bob", "--lease", "soon", check=False)
    assert bad.returncode == 2 and "--lease: 'soon' is not a duration" in bad.stderr


def test_a_lapsed_claim_is_taken_back_and_only_then(hub, tmp_path):
    t = gitswarm("task", "add", str(hub), "--title", "x").stdout.strip()
    gitswarm("claim", str(hub), "--worker", "alice", "--lease", "3s")
    assert gitswarm("reclaim", str(hub)).stdout.strip() == "nothing to reclaim"
    # a reclaim pushed by hand before the lapse: the hub's guard refuses it on its own clock
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "tasks", str(hub), str(clone))
    held = board_state(hub)[t]
    (clone / held.path).write_bytes(__import__("gitswarm.task", fromlist=["dump"]).dump(rules.reclaim(held, "impatient")))
    commit_all(clone, rules.message("reclaim", [rules.reclaim(held, "impatient")]))
    early = push(clone)
    assert early.returncode != 0 and "the lease of alice (token 1, 3s) has not lapsed on the hub's clock" in early.stderr
    age_news(hub, "alice", 4)
    out = gitswarm("reclaim", str(hub)).stdout
    assert f"reclaim: {t} claimed -> open: lease lapsed: no news from alice" in out
    task = board_state(hub)[t]
    assert task.status == "open" and task.claim is None and task.result["worker"] == "alice"
    assert sh("git", "log", "-1", "--format=%s", "tasks", cwd=hub).stdout.strip() == f"reclaim {t}: x"
    assert gitswarm("claim", str(hub), "--worker", "bob").stdout.strip() == t
    assert board_state(hub)[t].claim.token == 2


def test_heartbeats_keep_a_claim_and_never_touch_tasks(hub):
    t = gitswarm("task", "add", str(hub), "--title", "x").stdout.strip()
    gitswarm("claim", str(hub), "--worker", "alice", "--lease", "5s")
    tip = sh("git", "rev-parse", "tasks", cwd=hub).stdout
    for _ in range(4):  # 6 s in all on the hub's clock: longer than the lease, renewed all along
        age_news(hub, "alice", 1.5)
        gitswarm("heartbeat", str(hub), "--worker", "alice")
    assert gitswarm("reclaim", str(hub)).stdout.strip() == "nothing to reclaim"
    assert board_state(hub)[t].status == "claimed"
    assert sh("git", "rev-parse", "tasks", cwd=hub).stdout == tip  # heartbeats never contend with claims
    beats = (hub / "logs" / "refs" / "gitswarm" / "heartbeats" / "alice").read_text().splitlines()
    assert len(beats) == 5


HOLDER = r"""
import json, sys, time
from gitswarm import git
from gitswarm.board import Board
from gitswarm.errors import ClaimLost
hub = sys.argv[1]
with Board(hub) as board:
    task = board.claim("frozen", lease=2)
    print(json.dumps({"claimed": task.id}), flush=True)
    sys.stdin.readline()  # the test freezes us here (SIGSTOP) until the lease has lapsed, then says go
    base = board.fetch_branch("main")
    work = git.write_commit(board.mirror.repo, base, {"late.txt": b"stale work\n"},
                            f"late work\n\nGitswarm-Task: {task.id}\nGitswarm-Worker: frozen\n", ("frozen", "f@x"))
    try:
        board.land(task.id, "frozen", work, "late", token=task.claim.token)
        print(json.dumps({"landed": work}), flush=True)
    except ClaimLost as e:
        print(json.dumps({"abandoned": e.message}), flush=True)
"""


def test_a_frozen_holder_cannot_land_or_complete_when_it_wakes(hub, tmp_path):
    clone = tmp_path / "main"
    sh("git", "clone", "-q", str(hub), str(clone))
    commit_all(clone, "start")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    with Board(str(hub)) as board:
        t, = board.add([new_task("contested")])
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(hub)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    first = json.loads(proc.stdout.readline())
    assert first == {"claimed": t.id}
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        with Board(str(hub)) as other:  # a pass whose clock runs ahead of the hub's: the guard refuses it
            lines: list[str] = []
            assert reclaim_pass(other, hub, max_attempts=3, log=lines.append, now=time.time() + 3) == []
            assert any("has not lapsed on the hub's clock" in ln for ln in lines), lines
        age_news(hub, "frozen", 3)  # 3 s of silence on the hub's clock: longer than the lease (2 s)
        with Board(str(hub)) as other:
            changed = reclaim_pass(other, hub, max_attempts=3)
            assert [c.status for c in changed] == ["open"]
            again = other.claim("bob")
            assert again.id == t.id and again.claim.token == 2
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, _ = proc.communicate("go\n", timeout=60)
    verdict = json.loads(out.splitlines()[-1])
    assert "abandoned" in verdict and "claimed by bob (token 2)" in verdict["abandoned"]
    assert sh("git", "show", "main:late.txt", cwd=hub, check=False).returncode != 0  # its work never landed
    # the old holder's completion fails with a clear message; the hub refuses it too, pushed by hand
    old = gitswarm("complete", str(hub), t.id, "--worker", "frozen", "--token", "1", "--summary", "late", check=False)
    assert old.returncode == 2 and "claimed by bob (token 2), not by frozen (token 1)" in old.stderr
    with Board(str(hub)) as board:
        assert board.complete(t.id, "bob", "done properly").status == "done"


POISON = """---
check: "test -f good.txt"
tasks:
  - title: Always fails
    run: "echo 'cannot do this' >&2; exit 3"
  - title: Works
    run: "echo ok > good.txt"
---
One poison task, one good one.
"""


def test_a_poison_task_ends_dead_and_the_others_flow(hub, tmp_path):
    from gitswarm.daemon import Daemon

    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / "poison.md").write_text(POISON)
    commit_all(clone, "goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    lines: list[str] = []
    code = Daemon(hub, workers=2, planners=0, until_done=True, name="t", log=lines.append, debounce=0.1,
                  max_attempts=2, retry_backoff=0.2).run()
    assert code == 0, lines
    tasks = {t.title: t for t in board_state(hub).values()}
    dead = tasks["Always fails"]
    assert dead.status == "dead" and dead.attempts == 2
    assert "failed 2 times (max_attempts 2)" in dead.result["reason"] and "cannot do this" in dead.result["reason"]
    assert tasks["Works"].status == "done"
    subjects = sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout
    assert f"bury {dead.id}: Always fails" in subjects and f"reopen {dead.id}: Always fails" in subjects


def test_the_daemon_takes_back_a_silent_claim_and_finishes_the_work(hub, tmp_path):
    from gitswarm.daemon import Daemon

    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / "one.md").write_text('---\ncheck: "test -f a.txt"\ntasks:\n  - title: Write a\n'
                                             '    run: "echo a > a.txt"\n---\nOne task.\n')
    commit_all(clone, "goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    # a daemon that never runs: plan by hand, and let a ghost claim the task and vanish
    from gitswarm.goal import parse_goal
    goal = parse_goal("goals/one.md", (clone / "goals" / "one.md").read_text())
    with Board(str(hub)) as board:
        board.add([new_task(goal.tasks[0].title, goal="one", task_id=goal.tasks[0].id)])
        ghost = board.claim("ghost", lease=2)
    age_news(hub, "ghost", 3)  # and stays silent longer than its lease
    lines: list[str] = []
    assert Daemon(hub, workers=1, planners=0, until_done=True, name="t", log=lines.append, debounce=0.1,
                  retry_backoff=0.1).run() == 0, lines
    task = board_state(hub)[ghost.id]
    assert task.status == "done" and task.attempts == 2 and task.result["worker"] == "t-w0"
    assert any("lease lapsed: no news from ghost" in ln for ln in lines)


def test_agents_never_see_the_daemons_secrets(hub, tmp_path, monkeypatch):
    from gitswarm.daemon import Daemon

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("DEPLOY_TOKEN", "also-secret")
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / "env.md").write_text('---\ncheck: "test -f env.txt"\ntasks:\n  - title: Dump env\n'
                                             '    run: "env | sort > env.txt"\n---\nShow the environment.\n')
    commit_all(clone, "goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    assert Daemon(hub, workers=1, planners=0, until_done=True, name="t", log=lambda _: None, debounce=0.1).run() == 0
    seen = sh("git", "show", "main:env.txt", cwd=hub).stdout
    assert "PATH=" in seen and "sk-secret" not in seen and "also-secret" not in seen and "GIT_DIR" not in seen


def test_a_model_that_stays_down_hands_the_task_back(hub, tmp_path):
    import threading

    from gitswarm.agents import ModelUnavailable, ScriptedModel
    from gitswarm.daemon import Daemon

    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / "down.md").write_text("---\ntasks:\n  - title: Needs a model\n---\nNo run: a model works it.\n")
    commit_all(clone, "goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    lines: list[str] = []
    daemon = Daemon(hub, workers=1, planners=0, name="t", log=lines.append, debounce=0.1,
                    model_factory=lambda role: ScriptedModel([ModelUnavailable("endpoint down after 6 attempts")]))
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.time() + 60
        while not any("released" in ln for ln in lines):
            assert time.time() < deadline, lines
            time.sleep(0.1)
    finally:
        daemon.shutdown()
        thread.join(60)
    task, = board_state(hub).values()
    assert task.status == "open" and task.attempts == 1 and task.result is None  # handed back, not failed
    assert any("the model is unavailable" in ln for ln in lines)
