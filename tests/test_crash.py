"""Crash safety: kill -9 of the daemon mid-event and of a worker mid-push; after a restart the state
is whole, rebuilt from git alone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitswarm.board import Board

from conftest import commit_all, push, sh

pytestmark = pytest.mark.slow  # kill -9 of workers and the daemon mid-run


def goal(n: int, run: str = "sleep 0.5 && echo {i} > out/{i}.txt") -> str:
    tasks = "".join(f'  - title: Task {i}\n    run: "mkdir -p out && {run.format(i=i)}"\n' for i in range(n))
    return f'---\ncheck: "test $(ls out | wc -l) -eq {n}"\ntasks:\n{tasks}---\n{n} files.\n'


def push_goal(hub: Path, tmp_path: Path, text: str) -> None:
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / "g.md").write_text(text)
    (clone / ".gitswarm.yaml").write_text("lease: 3s\nretry_backoff: 0.2s\n")
    commit_all(clone, "goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0


def serve(hub: Path, cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gitswarm", "serve", str(hub), "--id", "box", *args],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def receive_packs(hub: Path) -> list[int]:
    """Pids of the hub's live `git receive-pack` processes: pushes in flight."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
            state = cmdline.parent.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(b"receive-pack" in w for w in words) and any(str(hub).encode() in w for w in words):
            found.append(int(cmdline.parent.name))
    return found


def log(hub: Path, branch: str) -> list[str]:
    return sh("git", "log", "--format=%s", branch, cwd=hub, check=False).stdout.splitlines()


def assert_whole(hub: Path, n: int) -> None:
    with Board(str(hub)) as board:
        board.refresh()
        tasks = board.tasks()
    assert len(tasks) == n and all(t.status == "done" for t in tasks)
    done = [s for s in log(hub, "tasks") if s.startswith("done t-")]
    assert len(done) == n  # none completed twice
    landed = sh("git", "log", "--format=%(trailers:key=Gitswarm-Task,valueonly)", "main", cwd=hub).stdout.split()
    assert sorted(landed) == sorted(t.id for t in tasks)
    entries = [ln.split()[:2] for ln in (hub / "logs" / "refs" / "heads" / "main").read_text().splitlines()]
    assert all(prev[1] == cur[0] for prev, cur in zip(entries, entries[1:]))  # main only fast-forwarded
    assert sh("git", "fsck", "--full", "--no-dangling", cwd=hub).returncode == 0


def test_kill_9_of_the_daemon_mid_run_then_restart(hub, tmp_path):
    push_goal(hub, tmp_path, goal(6))
    first = serve(hub, tmp_path, "--workers", "3", "--planners", "0")
    wait_for(lambda: any(s.startswith("claim ") for s in log(hub, "tasks")))
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)  # mid-agent, mid-event: whatever it was doing
    first.wait()
    held = [s for s in log(hub, "tasks") if s.startswith("claim ")]
    assert held  # it died holding claims
    second = serve(hub, tmp_path, "--workers", "3", "--planners", "0", "--until-done")
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-3000:]
    assert "released t-" in err or "lease lapsed" in err  # the dead run's claims came back
    assert_whole(hub, 6)


def test_kill_9_of_a_worker_mid_push(hub, tmp_path):
    """A landing push held inside the hub's pre-receive (a slow legacy hook; the landing goes to
    refs/for/heads/main or refs/for/replay/heads/main, for the hub to apply) while its worker is
    killed: whether git finishes the push or not, nothing is half-done."""
    marker = tmp_path / "hold-next-landing"
    legacy = hub / "hooks" / "pre-receive.legacy"
    # the held push waits until the test lets it go (after its pusher died), 30 s at most
    legacy.write_text(f"#!/bin/sh\ninput=$(cat)\ncase \"$input\" in *heads/main*)\n"
                      f"  if [ -f {marker} ]; then rm -f {marker}; touch {marker}.held; n=0;\n"
                      f"    while [ ! -f {marker}.go ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done; fi;;\n"
                      f"esac\nexit 0\n")
    legacy.chmod(0o755)
    push_goal(hub, tmp_path, goal(4))
    hub_daemon = serve(hub, tmp_path, "--workers", "0", "--planners", "0", "--until-done")
    try:
        wait_for(lambda: any(s.startswith("add ") for s in log(hub, "tasks")))
        marker.touch()
        pool = subprocess.Popen([sys.executable, "-m", "gitswarm", "worker", str(hub), "--workers", "2", "--id",
                                 "crashy", "--lease", "3s"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_for(lambda: Path(f"{marker}.held").exists())
        pool.send_signal(signal.SIGKILL)  # the pusher dies while its landing sits in pre-receive
        pool.wait()
        Path(f"{marker}.go").touch()
        wait_for(lambda: not receive_packs(hub))  # the hub finishes (or drops) the orphaned push
        again = subprocess.Popen([sys.executable, "-m", "gitswarm", "worker", str(hub), "--workers", "2", "--id",
                                  "crashy", "--lease", "3s"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        _, err = hub_daemon.communicate(timeout=300)
        assert hub_daemon.returncode == 0, err[-3000:]
    finally:
        for p in (hub_daemon, locals().get("pool"), locals().get("again")):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)
    assert_whole(hub, 4)
