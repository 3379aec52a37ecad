"""gitswarm/proc.py, the one way gitswarm runs a process, on real processes: a timeout or a stop
ends the whole tree (the grandchild whose pid the command wrote down is gone), output is bounded,
exit statuses pass through; and its callers keep their own rules (git's timeout, a goal's test
run without bubblewrap)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from gitswarm import git, proc
from gitswarm.board import Board
from gitswarm.errors import HubUnreachable
from gitswarm.proc import run_killable
from gitswarm.roles import Swarm

from conftest import commit_all, push, sh

TREE = "sleep 300 & echo $! > {pids}; sleep 300"  # sh, its child sleep (pid written) and its own sleep


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def gone(pid: int) -> bool:
    """Whether `pid` is gone, waiting a while for a signal already sent to take effect."""
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def written_pid(path: Path) -> int:
    """The pid a command wrote to `path` (waiting for it to be written)."""
    deadline = time.monotonic() + 60
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(path.read_text())


@contextlib.contextmanager
def written(path: Path) -> Iterator[int]:
    """The pid a command wrote to `path`; that process is killed at the end, whatever the test found."""
    pid = written_pid(path)
    try:
        yield pid
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_once_written(path: Path) -> threading.Event:
    """An event set once a command has written its pid to `path`."""
    stop = threading.Event()
    threading.Thread(target=lambda: (written_pid(path), stop.set()), daemon=True).start()
    return stop


def test_a_timeout_ends_the_whole_tree(tmp_path):
    pids = tmp_path / "pids"
    ran = run_killable(["/bin/sh", "-c", TREE.format(pids=pids)], tmp_path, None, 1.0, grace=1.0)
    assert ran.ended == "time" and ran.code == -signal.SIGTERM
    with written(pids) as grandchild:
        assert gone(grandchild), "the command's child outlived its timeout"


def test_stop_ends_the_whole_tree(tmp_path):
    pids = tmp_path / "pids"
    ran = run_killable(["/bin/sh", "-c", TREE.format(pids=pids)], tmp_path, None, 300, stop=stop_once_written(pids),
                       grace=1.0)
    assert ran.ended == "stopped"
    with written(pids) as grandchild:
        assert gone(grandchild), "the command's child outlived the stop"


def test_a_child_that_ignores_sigterm_gets_sigkill_after_the_grace(tmp_path):
    pids = tmp_path / "pids"
    line = f"sh -c 'trap \"\" TERM; echo $$ > {pids}; while :; do sleep 0.05; done' & wait"
    ran = run_killable(["/bin/sh", "-c", line], tmp_path, None, 300, stop=stop_once_written(pids), grace=0.2)
    assert ran.ended == "stopped"
    with written(pids) as stubborn:
        assert gone(stubborn), "a child that ignores SIGTERM outlived the grace"


def test_what_a_command_leaves_behind_is_ended_unless_it_may_run_on(tmp_path):
    for leftovers in (True, False):
        pids = tmp_path / f"pids-{leftovers}"
        ran = run_killable(["/bin/sh", "-c", f"sleep 300 >/dev/null 2>&1 & echo $! > {pids}"], tmp_path, None, 60,
                           leftovers=leftovers)
        assert (ran.ended, ran.code) == ("exited", 0)
        with written(pids) as child:
            if leftovers:
                assert gone(child), "what the command left running outlived it"
            else:
                assert alive(child), "a background job of a command that may leave one was killed"


def test_a_stray_holding_the_pipe_does_not_hang_the_run(tmp_path):
    """A child in a session of its own, orphaned, is out of reach; it keeps our pipe open, and the
    run still returns what the command wrote."""
    pids = tmp_path / "pids"
    line = f"setsid sh -c 'echo $$ > {pids}; exec sleep 300' & while [ ! -s {pids} ]; do sleep 0.01; done; echo said"
    ran = run_killable(["/bin/sh", "-c", line], tmp_path, None, 60)
    with written(pids):
        pass
    assert (ran.ended, ran.code, ran.stdout) == ("exited", 0, "said")


def test_output_is_bounded_head_and_tail(tmp_path):
    line = "printf start; head -c 1000000 /dev/zero | tr '\\0' x; printf end; printf oops >&2"
    ran = run_killable(["/bin/sh", "-c", line], tmp_path, None, 60, keep=1000)
    assert ran.out.startswith(b"start") and ran.out.endswith(b"end")
    assert len(ran.out) < 1100 and b"[... 999008 bytes cut ...]" in ran.out
    assert ran.err == b"oops"
    everything = run_killable(["/bin/sh", "-c", line], tmp_path, None, 60, keep=None)
    assert everything.out == b"start" + b"x" * 1_000_000 + b"end"


def test_merged_output_keeps_its_order_and_stdin_is_fed(tmp_path):
    ran = run_killable(["/bin/sh", "-c", "cat; echo two >&2; echo three"], tmp_path, None, 60, stdin=b"one\n",
                       merge=True)
    assert (ran.stdout, ran.err) == ("one\ntwo\nthree", b"")
    assert run_killable(["/bin/sh", "-c", "cat"], tmp_path, None, 60).out == b""  # no stdin given: /dev/null


def test_exit_statuses_pass_through(tmp_path):
    assert run_killable(["/bin/sh", "-c", "exit 7"], tmp_path).code == 7
    killed = run_killable(["/bin/sh", "-c", "kill -9 $$"], tmp_path)
    assert (killed.code, killed.ended) == (-9, "exited")
    assert proc.exit_status(killed.code) == 137 and proc.exit_status(7) == 7
    with pytest.raises(OSError):
        run_killable([str(tmp_path / "no-such-program")], tmp_path)


def test_an_environment_is_the_whole_environment(tmp_path):
    ran = run_killable(["/usr/bin/env"], tmp_path, {"ONLY": "this"})
    assert ran.stdout == "ONLY=this"


def test_a_started_service_runs_in_a_session_of_its_own_and_is_ended(tmp_path):
    child = proc.start(["sleep", "300"], stdout=None, stderr=None)
    try:
        assert os.getsid(child.pid) == child.pid
        proc.end(child, 0.1)
        assert child.returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_git_killed_at_its_timeout_is_a_hub_out_of_reach(tmp_path):
    pids = tmp_path / "pids"
    nap = f"!sh -c 'sleep 300 & echo $! > {pids}; sleep 300'"
    with pytest.raises(HubUnreachable, match="got no answer in 1s"):
        git.run(["-c", f"alias.nap={nap}", "nap"], cwd=tmp_path, timeout=1.0)
    with written(pids) as grandchild:
        assert gone(grandchild), "what git started outlived its timeout"
    assert git.run(["-c", "alias.hi=!echo hi; echo there >&2", "hi"], cwd=tmp_path).stdout == b"hi\n"


def test_the_reaper_loads_proc_by_its_path(tmp_path):
    """gitswarm/reaper.py runs with `python -I` (no folder of ours on sys.path) and still finds
    gitswarm/proc.py; it passes its command's exit status on."""
    reaper = Path(proc.__file__).with_name("reaper.py")
    done = subprocess.run([sys.executable, "-I", str(reaper), "--", "/bin/sh", "-c", "kill -9 $$"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (137, "")


def test_a_goals_test_without_bubblewrap_is_killed_whole_at_its_timeout(hub, tmp_path, monkeypatch):
    """The defect of issue 15: a test's `sleep` child survived the test's timeout when only `sh`
    was killed. Unsandboxed (GITSWARM_SANDBOX=off) the tree ends with the timeout."""
    monkeypatch.setenv("GITSWARM_SANDBOX", "off")
    work = tmp_path / "work"
    work.mkdir()
    pids = tmp_path / "pids"
    with Board(str(hub)) as board:
        passed, output = Swarm(board, tmp_path).run_check(TREE.format(pids=pids), work, timeout=1.0)
    assert not passed and "timed out after 1s" in output
    with written(pids) as grandchild:
        assert gone(grandchild), "the test's sleep child outlived the test's timeout"


def test_git_leaves_its_background_jobs_to_run(tmp_path):
    pids = tmp_path / "pids"
    bg = f"!sh -c 'sleep 300 >/dev/null 2>&1 </dev/null & echo $! > {pids}'"
    git.run(["-c", f"alias.bg={bg}", "bg"], cwd=tmp_path)
    with written(pids) as job:
        assert alive(job), "git.run ended what git left running (a detached gc --auto, say)"


def test_a_legacy_hook_speaks_to_the_pusher_decides_and_its_background_job_runs_on(hub, tmp_path):
    """The previous pre-receive (kept as pre-receive.legacy): its output reaches the pusher, its
    exit status refuses the push, and what it starts in the background is not killed."""
    pids = tmp_path / "pids"
    legacy = hub / "hooks" / "pre-receive.legacy"
    legacy.write_text(f"#!/bin/sh\nread old new ref\necho \"legacy saw $ref\"\n"
                      f"sleep 300 >/dev/null 2>&1 </dev/null & echo $! > {pids}\n"
                      f"[ \"$ref\" != refs/heads/refused ]\n")
    legacy.chmod(0o755)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(hub), str(clone))
    commit_all(clone, "anything")
    refused = push(clone, "HEAD:refs/heads/refused")
    assert refused.returncode != 0 and "remote: legacy saw refs/heads/refused" in refused.stderr
    with written(pids) as job:
        assert alive(job), "the legacy hook's background job was killed"
