"""Agents' commands in the sandbox (bubblewrap): no network, nothing writable but the worktree and a
private /tmp, the hub hidden, the mirror and the operator's paths read-only. Real processes; skipped with the reason where bwrap is missing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gitswarm import checkout, sandbox
from gitswarm.agents import Limits
from gitswarm.agents.command import run_command_agent
from gitswarm.daemon import Daemon
from gitswarm.errors import GitswarmError

from conftest import commit_all, push, sh

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (apt-get install bubblewrap; .ci/run does)")


@pytest.fixture
def listener():
    """A TCP server on loopback that an agent must not reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    def serve() -> None:
        try:
            while True:
                server.accept()
        except OSError:  # closed at the end of the test
            pass

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def probe(port: int, outside: Path, hub: Path) -> str:
    return (f"echo inside > made-here.txt; "
            f"(echo x > {outside}) 2>/dev/null && echo WROTE-OUTSIDE || echo no-write-outside; "
            f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)\" "
            f"2>/dev/null && echo NET || echo no-network; "
            f"ls {hub}/hooks 2>/dev/null | grep -q receive && echo SAW-HUB || echo no-hub")


@pytest.fixture
def outside(tmp_path):
    """A writable path outside /tmp (a private tmpfs inside the sandbox)."""
    path = Path("/var/tmp") / f"gitswarm-escape-{tmp_path.name}-{id(tmp_path)}"
    yield path
    path.unlink(missing_ok=True)


def test_a_sandboxed_command(tmp_path, hub, listener, outside):
    work = tmp_path / "work"
    work.mkdir()
    result = run_command_agent(probe(listener, outside, hub), "", work, Limits(),
                               wrap=lambda argv, readable, writable: sandbox.wrap(argv, work, [hub], readable, writable))
    assert result.reason == "finished", result.summary
    assert result.summary.split() == ["no-write-outside", "no-network", "no-hub"]
    assert (work / "made-here.txt").read_text() == "inside\n"
    assert not outside.exists()
    # the same command outside the sandbox reaches all three: the probe can fail
    free = run_command_agent(probe(listener, outside, hub), "", work, Limits())
    assert free.summary.split() == ["WROTE-OUTSIDE", "NET", "SAW-HUB"]


def test_a_prompt_file_is_readable_inside(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = run_command_agent("cat {prompt_file}", "the prompt", work, Limits(), prompt_mode="file",
                               wrap=lambda argv, readable, writable: sandbox.wrap(argv, work, [], readable, writable))
    assert (result.reason, result.summary) == ("finished", "the prompt")


def test_serve_runs_agents_in_the_sandbox(hub, tmp_path, listener, outside):
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    command = "{ " + probe(listener, outside, hub).replace("echo inside > made-here.txt", "echo inside") + "; } > report.txt"
    (clone / "goals" / "box.md").write_text(
        f'---\ncheck: "test -s report.txt"\ntasks:\n  - title: Probe\n    run: |\n      {command}\n---\nProbe the box.\n')
    commit_all(clone, "goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    assert Daemon(hub, workers=1, planners=0, until_done=True, name="t", log=lambda _: None, debounce=0.1).run() == 0
    report = sh("git", "show", "main:report.txt", cwd=hub).stdout.split()
    assert report == ["inside", "no-write-outside", "no-network", "no-hub"]
    assert not outside.exists()


def test_git_works_inside_on_the_read_only_mirror(hub, tmp_path):
    mirror = tmp_path / "mirror.git"
    sh("git", "clone", "-q", "--bare", str(hub), str(mirror))
    tip = sh("git", "rev-parse", "tasks", cwd=mirror).stdout.strip()
    work = tmp_path / "work"
    checkout.add_worktree(mirror, work, tip)
    command = (f"git log -1 --format=%H > log.txt; touch {mirror}/planted 2>/dev/null && echo WROTE-MIRROR; "
               f"echo hi > $HOME/x && test -w /tmp && echo $HOME")
    result = run_command_agent(command, "", work, Limits(),
                               wrap=lambda argv, readable, writable: sandbox.wrap(argv, work, [], [*readable, mirror], writable))
    assert (result.reason, result.summary) == ("finished", sandbox.HOME_INSIDE)
    assert (work / "log.txt").read_text().strip() == tip
    assert not (mirror / "planted").exists()


def test_operator_paths_are_shown_read_only(tmp_path, monkeypatch):
    shared = Path("/var/tmp") / f"gitswarm-shared-{tmp_path.name}"  # outside /tmp: not there unless named
    shared.mkdir(exist_ok=True)
    (shared / "data.txt").write_text("shared data")
    work = tmp_path / "work"
    work.mkdir()
    command = f"cat {shared}/data.txt 2>/dev/null || echo unseen; touch {shared}/new 2>/dev/null && echo WROTE || true"
    wrap = lambda argv, readable, writable: sandbox.wrap(argv, work, [], readable, writable)  # noqa: E731
    try:
        assert run_command_agent(command, "", work, Limits(), wrap=wrap).summary == "unseen"
        monkeypatch.setenv("GITSWARM_SANDBOX_PATHS", f"{shared}:/nonexistent-but-harmless")
        assert run_command_agent(command, "", work, Limits(), wrap=wrap).summary == "shared data"
        assert not (shared / "new").exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_an_unknown_sandbox_mode_is_an_error(monkeypatch):
    monkeypatch.setenv("GITSWARM_SANDBOX", "auto")
    with pytest.raises(GitswarmError) as bad:
        sandbox.mode()
    assert "GITSWARM_SANDBOX='auto'" in bad.value.message and "on" in bad.value.hint and "off" in bad.value.hint
    monkeypatch.setenv("GITSWARM_SANDBOX", "require")  # the old name of on
    assert sandbox.mode() == "on"


def test_start_refuses_a_missing_operator_path(monkeypatch):
    monkeypatch.setenv("GITSWARM_SANDBOX_PATHS", "/nonexistent-gitswarm-path")
    with pytest.raises(GitswarmError, match="GITSWARM_SANDBOX_PATHS names /nonexistent-gitswarm-path"):
        sandbox.check()
    assert "sandbox: on" in (monkeypatch.delenv("GITSWARM_SANDBOX_PATHS") or sandbox.check())


def test_a_sandbox_killed_while_it_starts_leaves_nothing(tmp_path):
    """Killed while bwrap sets up, the sandbox's pid 1 has no parent-death signal yet: kill_group
    kills it itself (it ignores SIGTERM from outside), and with it the whole namespace."""
    from gitswarm.proc import run_killable

    work = tmp_path / "work"
    work.mkdir()
    tag = f"sleep 555.{os.getpid()}"
    left: list[str] = []
    try:
        for i in range(30):
            run_killable(sandbox.wrap(["/bin/sh", "-c", tag], work), work, sandbox.agent_env(), (i % 10) * 0.003)
            left += subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True).stdout.split()
        assert not left, f"{len(left)} processes outlived their sandbox"
    finally:
        for pid in set(left):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_goal_test_killed_by_stop_hands_the_task_back(hub, tmp_path):
    """serve stopping while a worker runs the goal's test: the test is killed whole, and the task
    goes back to the board (neither a pass nor a failure)."""
    from gitswarm.board import Board

    tag = f"sleep 600.{os.getpid()}"
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / "t.md").write_text(f'---\ntest: "{tag}"\nland: direct\ntasks:\n  - title: Write a\n'
                                          f'    run: "echo a > a.txt"\n---\nA slow test.\n')
    commit_all(clone, "goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    daemon = Daemon(hub, workers=1, planners=0, name="t", log=lambda _: None, debounce=0.1)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        for _ in range(600):
            if subprocess.run(["pgrep", "-f", tag], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the goal's test never started")
    finally:
        daemon.shutdown()
        runner.join(60)
    assert subprocess.run(["pgrep", "-f", tag], capture_output=True).returncode == 1
    with Board(str(hub)) as board:
        board.refresh()
        task, = board.tasks()
    assert (task.status, task.attempts) == ("open", 1), task
