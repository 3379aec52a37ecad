"""Attacks on the worker's machine through what a push chose to run (issue 11, part 1): the worker's
own git, a missing sandbox, host processes and sockets, setsid escapes, and the daemon's secrets.
Each is tried for real (real goals pushed to a real hub, `serve`, bubblewrap, processes, sockets)
and must end refused or contained."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from gitswarm import sandbox
from gitswarm.agents import Limits
from gitswarm.agents.command import run_command_agent
from gitswarm.agents.tools import worker_tools
from gitswarm.board import Board
from gitswarm.daemon import Daemon
from gitswarm.errors import GitswarmError
from gitswarm.roles import Swarm

from conftest import commit_all, push, sh

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (apt-get install bubblewrap; .ci/run does)")


def push_goal(hub: Path, tmp_path: Path, name: str, text: str) -> None:
    clone = tmp_path / f"project-{name}"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / f"{name}.md").write_text(text)
    commit_all(clone, f"goal {name}")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0


def tasks_of(hub: Path) -> list:
    with Board(str(hub)) as board:
        board.refresh()
        return board.tasks()


def everything_on(hub: Path) -> str:
    """Every file of every commit of the hub, as text: where a leaked secret would land."""
    return sh("git", "log", "-p", "--all", "--format=%B", cwd=hub).stdout


def sleepers(tag: str) -> list[int]:
    """Pids of live processes whose command line holds `tag`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if tag.replace(" ", "\0").encode() in cmdline.read_bytes() and cmdline.parent.joinpath("stat").read_text().split(")")[1].split()[0] != "Z":
                found.append(int(cmdline.parent.name))
        except (OSError, IndexError):
            continue
    return [pid for pid in found if pid != os.getpid()]


def gone(tag: str, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while sleepers(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not sleepers(tag)


def kill_all(tag: str) -> None:
    for pid in sleepers(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------ 1. the worker's own git

PLANTED = """---
max_cycles: 1
check: "test -f planted.txt"
tasks:
  - title: Plant a filter
    run: |
      rm -f .git && git init -q . && git config filter.x.clean "sh -c 'env > {marker}; cat'"
      echo '* filter=x' > .gitattributes
      echo planted > planted.txt
---
Plant a clean filter in a repository of the task's own.
"""


def test_the_workers_git_never_runs_a_filter_the_task_planted(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-filter-must-not-see-this")
    marker = tmp_path / "filter-ran.txt"  # outside the worktree: only a filter run outside the sandbox writes it
    push_goal(hub, tmp_path, "plant", PLANTED.format(marker=marker))
    lines: list[str] = []
    Daemon(hub, workers=1, planners=0, until_done=True, name="t", log=lines.append, debounce=0.1,
           max_attempts=1).run()
    assert not marker.exists(), marker.read_text()[:300]
    assert "sk-planted-filter" not in everything_on(hub)
    task, = tasks_of(hub)
    assert task.status in ("failed", "dead"), task
    assert ".git" in task.result["reason"] and "refused" in task.result["reason"], task.result
    assert any(".git" in ln and "failed" in ln for ln in lines), lines


# ------------------------------------------------------------ 2. fail closed

def bin_without_bwrap(tmp_path: Path) -> Path:
    """A PATH folder with git and python only."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("git",):
        (folder / name).symlink_to(shutil.which(name))
    (folder / "python3").symlink_to(sys.executable)
    return folder


def serve_cmd(hub: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers", "1", "--planners", "0", *args]


ONE_TASK = """---
check: "test -f done.txt"
tasks:
  - title: Do it
    run: "echo done > done.txt"
---
One task.
"""  # shell builtins only: valid under bin_without_bwrap's PATH (git and python), so the task can run


def test_serve_refuses_to_run_agent_commands_without_a_sandbox(hub, tmp_path, monkeypatch):
    monkeypatch.delenv("GITSWARM_SANDBOX", raising=False)
    push_goal(hub, tmp_path, "one", ONE_TASK)
    env = dict(os.environ, PATH=str(bin_without_bwrap(tmp_path)))
    proc = subprocess.run(serve_cmd(hub, "--until-done"), env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "bubblewrap" in proc.stderr and "apt-get install bubblewrap" in proc.stderr, proc.stderr
    assert "GITSWARM_SANDBOX=off" in proc.stderr, proc.stderr
    assert "claim " not in sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout  # nothing ran
    assert sh("git", "show", "main:done.txt", cwd=hub, check=False).returncode != 0
    pool = subprocess.run([sys.executable, "-m", "gitswarm", "worker", str(hub), "--workers", "1"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert pool.returncode == 2 and "apt-get install bubblewrap" in pool.stderr, pool.stderr
    assert "claim " not in sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout


def test_wrap_itself_refuses_without_bubblewrap(tmp_path, monkeypatch):
    monkeypatch.delenv("GITSWARM_SANDBOX", raising=False)
    monkeypatch.setenv("PATH", str(bin_without_bwrap(tmp_path)))
    with pytest.raises(GitswarmError) as refused:
        sandbox.wrap(["/bin/sh", "-c", "true"], tmp_path)
    assert "bubblewrap" in refused.value.message and "GITSWARM_SANDBOX=off" in refused.value.hint


def test_sandbox_off_is_said_at_start_and_in_status(hub, tmp_path):
    """With GITSWARM_SANDBOX=off and no bubblewrap, serve says so at start and in `gitswarm status`
    while it works, and the task runs unsandboxed: claimed, done, its file on main."""
    push_goal(hub, tmp_path, "one", ONE_TASK)
    env = dict(os.environ, PATH=str(bin_without_bwrap(tmp_path)), GITSWARM_SANDBOX="off")
    proc = subprocess.Popen(serve_cmd(hub), env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "claim " not in sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout:
            time.sleep(0.2)
        assert "claim " in sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout, "".join(said)
        status = sh(sys.executable, "-m", "gitswarm", "status", str(hub)).stdout
        assert any(ln.startswith("serve:") and "sandbox: off" in ln and str(proc.pid) in ln
                   for ln in status.splitlines()), status
        while time.time() < deadline and [t.status for t in tasks_of(hub)] != ["done"]:
            time.sleep(0.2)
        assert [t.status for t in tasks_of(hub)] == ["done"], "".join(said)
        assert sh("git", "show", "main:done.txt", cwd=hub).stdout == "done\n"  # it ran, unsandboxed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=60)
    err = "".join(said)
    assert "sandbox: OFF" in err and "GITSWARM_SANDBOX=off" in err, err
    assert "serve:" not in sh(sys.executable, "-m", "gitswarm", "status", str(hub)).stdout  # it stopped


# ------------------------------------------------------------ 3. a tighter sandbox

def boxed(command: str, work: Path, wall_time: float = 60.0):
    return run_command_agent(command, "", work, Limits(wall_time=wall_time),
                             wrap=lambda argv, readable, writable: sandbox.wrap(argv, work, [], readable, writable))


def test_a_sandboxed_command_cannot_see_or_kill_a_host_process(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    host = subprocess.Popen(["sleep", "600.25"])
    try:
        result = boxed(f"kill -9 {host.pid} 2>/dev/null && echo KILLED; test -e /proc/{host.pid} && echo SEEN; "
                       f"echo done", work)
        time.sleep(0.2)  # a kill that did NOT happen: a short grace for a signal in flight to land
        assert host.poll() is None, "a sandboxed command killed a host process"
        assert result.summary.split() == ["done"], result.summary
    finally:
        host.kill()
        host.wait()


def unix_server(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()

    def answer() -> None:
        try:
            while True:
                conn, _ = server.accept()
                conn.sendall(b"secret")
                conn.close()
        except OSError:
            pass

    threading.Thread(target=answer, daemon=True).start()
    return server


def test_a_sandboxed_command_cannot_reach_host_unix_sockets(tmp_path, monkeypatch):
    home = Path("/var/tmp") / f"gitswarm-home-{uuid.uuid4().hex[:8]}"  # a home outside /tmp, like a real one
    home.mkdir()
    run_sock = Path("/run") / f"gitswarm-test-{uuid.uuid4().hex[:8]}.sock"
    monkeypatch.setenv("HOME", str(home))
    servers = [unix_server(home / "agent.sock"), unix_server(run_sock)]
    work = tmp_path / "work"
    work.mkdir()
    try:
        probe = ("import socket, sys\n"
                 "for path in sys.argv[1:]:\n"
                 "    s = socket.socket(socket.AF_UNIX)\n"
                 "    try:\n"
                 "        s.connect(path); print('REACHED', s.recv(10).decode())\n"
                 "    except OSError:\n"
                 "        print('unreachable')\n")
        (work / "probe.py").write_text(probe)
        result = boxed(f"{sys.executable} probe.py {home / 'agent.sock'} {run_sock}", work)
        assert result.reason == "finished", result.summary
        assert result.summary.split() == ["unreachable", "unreachable"], result.summary
    finally:
        for s in servers:
            s.close()
        run_sock.unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)


def test_a_setsid_grandchild_is_killed_on_timeout(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    tag = f"sleep 900.{uuid.uuid4().int % 10**6}"
    try:
        result = boxed(f"setsid {tag} >/dev/null 2>&1 < /dev/null & sleep 100", work, wall_time=1.0)
        assert result.reason == "time"
        assert gone(tag), f"{tag} outlived the command's timeout"
    finally:
        kill_all(tag)


# ------------------------------------------------------------ 4. the environment, by allow-list

ENV_GOAL = """---
check: "test -f env.txt"
tasks:
  - title: Dump env
    run: "env | sort > env.txt"
---
Show the environment.
"""


def test_secrets_with_innocent_names_never_reach_a_task(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw-db-secret@h/db")
    monkeypatch.setenv("SENTRY_DSN", "https://sentry-key-secret@sentry.example.com/1")
    monkeypatch.setenv("BUILD_FLAVOUR", "named-by-the-operator")
    monkeypatch.setenv("GITSWARM_AGENT_ENV", "BUILD_FLAVOUR")
    push_goal(hub, tmp_path, "env", ENV_GOAL)
    assert Daemon(hub, workers=1, planners=0, until_done=True, name="t", log=lambda _: None, debounce=0.1).run() == 0
    seen = sh("git", "show", "main:env.txt", cwd=hub).stdout
    assert "PATH=" in seen and "BUILD_FLAVOUR=named-by-the-operator" in seen
    landed = everything_on(hub)
    assert "pw-db-secret" not in landed and "sentry-key-secret" not in landed


# ------------------------------------------------------------ 5. one way to kill a command's tree

def test_a_checks_background_child_dies_with_its_timeout(hub, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    tag = f"sleep 800.{uuid.uuid4().int % 10**6}"
    try:
        with Board(str(hub)) as board:
            swarm = Swarm(board, tmp_path)
            passed, output = swarm.run_check(f"setsid {tag} >/dev/null 2>&1 < /dev/null & sleep 100", work, timeout=1.0)
        assert not passed and "timed out" in output
        assert gone(tag), f"{tag} outlived the check's timeout"
    finally:
        kill_all(tag)


def test_the_bash_tools_background_child_dies_with_its_timeout(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    tag = f"sleep 700.{uuid.uuid4().int % 10**6}"
    bash = worker_tools(work, timeout=1.0, wrap=lambda argv, readable: sandbox.wrap(argv, work, [], readable))[0]
    try:
        said = bash.handler({"command": f"setsid {tag} >/dev/null 2>&1 < /dev/null & sleep 100"})
        assert "killed after 1s" in said
        assert gone(tag), f"{tag} outlived the bash tool's timeout"
    finally:
        kill_all(tag)


def test_the_demo_runs_without_bubblewrap_and_says_it_runs_unsandboxed(tmp_path, monkeypatch):
    """The README's one command must work on a fresh machine: the demo's commands are gitswarm's
    own (nobody pushed them), so without bubblewrap it runs them unsandboxed, saying so."""
    monkeypatch.delenv("GITSWARM_SANDBOX", raising=False)
    tools = tmp_path / "tools"  # every command of /usr/bin but bwrap, and the Python running the tests
    tools.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if entry.name != "bwrap":
            (tools / entry.name).symlink_to(entry)
    (tools / "python3").unlink(missing_ok=True)
    (tools / "python3").symlink_to(sys.executable)
    env = dict(os.environ, PATH=str(tools))
    proc = subprocess.run([sys.executable, "-m", "gitswarm", "demo", "--dir", str(tmp_path / "demo"),
                           "--workers", "2"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "bubblewrap is not installed: the demo's own commands run unsandboxed" in proc.stdout
    assert "judge: greet cycle 1: done" in proc.stdout
