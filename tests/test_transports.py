"""The board over real network transports on loopback: git:// (`git daemon`), smart HTTP (`git
http-backend` as a CGI, behind Basic auth) and ssh (openssh's sshd, skipped where it cannot run). Client commands take the URL; the hub's
own hooks must run on every push."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gitswarm import events

from conftest import commit_all, gitswarm, sh
from servers import serve
from test_swarm import TWO_TASKS

pytestmark = pytest.mark.slow  # swarms over ssh, git daemon and http


@pytest.fixture(params=["git", "http", "ssh"])
def remote(request, hub: Path, tmp_path: Path, monkeypatch):
    """(hub path, URL of the same hub over the transport)."""
    server, url_as = serve(request.param, hub, tmp_path, monkeypatch.setenv)
    url = url_as()
    try:
        yield hub, url
    finally:
        server.stop()


def subjects(hub: Path, branch: str) -> list[str]:
    return sh("git", "log", "--format=%s", branch, cwd=hub).stdout.splitlines()


def test_board_commands_over_the_transport(remote, tmp_path):
    hub, url = remote
    before = len(events.pending(hub))
    tid = gitswarm("task", "add", url, "--title", "Parse CSS", "--description", "All of it", cwd=tmp_path).stdout.strip()
    assert tid.startswith("t-")
    assert gitswarm("claim", url, "--worker", "alice", cwd=tmp_path).stdout.strip() == tid
    gitswarm("complete", url, tid, "--worker", "alice", "--summary", "parser and tests", cwd=tmp_path)
    status = json.loads(gitswarm("status", url, "--json", cwd=tmp_path).stdout)
    task, = status["tasks"]
    assert (task["id"], task["status"]) == (tid, "done")
    # the hub's own git: three board commits, the last one the completion, by the claim's holder
    log = subjects(hub, "tasks")
    assert log[:3] == [f"done {tid}: Parse CSS (alice)", f"claim {tid}: Parse CSS (alice)", f"add {tid}: Parse CSS"], log
    text = sh("git", "show", f"tasks:tasks/{tid[2:4]}/{tid}.yaml", cwd=hub).stdout
    assert "status: done" in text and "alice" in text and "parser and tests" in text
    # the hub's post-receive hook ran for each push (one spooled event per updated ref)
    spooled = events.pending(hub)
    assert len(spooled) >= before + 3 and {e.ref for e in spooled} == {"refs/heads/tasks"}


def test_the_hubs_guard_refuses_over_the_transport(remote, tmp_path):
    hub, url = remote
    tid = gitswarm("task", "add", url, "--title", "Only for alice", cwd=tmp_path).stdout.strip()
    gitswarm("claim", url, "--worker", "alice", cwd=tmp_path)
    tip = sh("git", "rev-parse", "tasks", cwd=hub).stdout
    stolen = gitswarm("complete", url, tid, "--worker", "bob", "--summary", "not mine", check=False, cwd=tmp_path)
    assert stolen.returncode == 2, stolen
    assert "claimed by alice" in stolen.stderr and "not by bob" in stolen.stderr, stolen.stderr
    assert "Traceback" not in stolen.stderr
    # a hand-made bad push: mark the task done without being its holder, with plain git
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "tasks", url, str(clone), cwd=tmp_path)
    path = clone / "tasks" / tid[2:4] / f"{tid}.yaml"
    path.write_text(path.read_text().replace("status: claimed", "status: done"))
    commit_all(clone, f"done {tid}")
    pushed = sh("git", "push", "origin", "HEAD:refs/heads/tasks", cwd=clone, check=False)
    assert pushed.returncode != 0
    assert "remote: gitswarm: rejected refs/heads/tasks" in pushed.stderr, pushed.stderr  # the hub's pre-receive
    assert "pre-receive hook declined" in pushed.stderr
    assert sh("git", "rev-parse", "tasks", cwd=hub).stdout == tip  # nothing landed


def test_a_goal_runs_to_done_with_a_remote_worker(remote, tmp_path):
    hub, url = remote
    project = tmp_path / "project"
    sh("git", "clone", "-q", url, str(project), cwd=tmp_path)
    (project / "goals").mkdir()
    (project / "goals" / "two.md").write_text(TWO_TASKS)
    commit_all(project, "goal two")
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=project)
    assert [e.ref for e in events.pending(hub)] == ["refs/heads/main"]  # post-receive ran for the push
    run = tmp_path / "run"
    run.mkdir()
    command = [sys.executable, "-m", "gitswarm"]
    daemon = subprocess.Popen([*command, "serve", str(hub), "--workers", "0", "--planners", "0", "--until-done",
                               "--id", "hub"], cwd=run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pool = subprocess.Popen([*command, "worker", url, "--workers", "2", "--id", "remote"], cwd=run,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = daemon.communicate(timeout=120)
        assert daemon.returncode == 0, err[-3000:]
    finally:
        daemon.kill()
        pool.send_signal(signal.SIGTERM)
        try:
            _, werr = pool.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pool.kill()
            _, werr = pool.communicate()
    assert pool.returncode == 0, werr[-3000:]
    status = json.loads(gitswarm("status", url, "--json", cwd=tmp_path).stdout)
    assert sorted((t["title"], t["status"]) for t in status["tasks"]) == [("Write a", "done"), ("Write b", "done")]
    assert subjects(hub, "main")[:2] == ["Write b", "Write a"]  # b waited for a; both landed over the URL
    workers = sh("git", "log", "-2", "--format=%(trailers:key=Gitswarm-Worker,valueonly)", "main", cwd=hub).stdout
    assert len(workers.split()) == 2 and all(w.startswith("remote") for w in workers.split()), workers
    assert sh("git", "show", "main:b.txt", cwd=hub).stdout == "b\n"
    assert "status: done" in sh("git", "show", "tasks:goals/two.yaml", cwd=hub).stdout


def test_a_hub_that_never_answers_times_out(tmp_path, monkeypatch):
    """A connection that stays open but silent (a link cut mid-push) must not hang a worker."""
    import socket

    from gitswarm.errors import GitError
    from gitswarm.gitmirror import Mirror

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    monkeypatch.setenv("GITSWARM_GIT_TIMEOUT", "2")
    try:
        mirror = Mirror(f"git://127.0.0.1:{silent.getsockname()[1]}/hub.git")
        for ask in (lambda: mirror.fetch("tasks"), lambda: mirror.remote_refs("refs/heads/tasks"),
                    lambda: mirror.push({"refs/heads/tasks": "0" * 40})):
            with pytest.raises(GitError, match="got no answer in 2s"):
                ask()
    finally:
        silent.close()
