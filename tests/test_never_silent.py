"""A run never waits in silence, and says how it ended in its exit status: `serve` with no goal
says what it waits for; a cycle its planner left empty is judged at once, not at `judge.every`;
`--until-done` exits 4 when a goal stopped rather than done; Ctrl-C exits 130. Real hubs, real
`serve` (in-process and as a process), real signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import sh
from test_swarm import push_goal, serve

from gitswarm.board import Board
from gitswarm.daemon import Daemon

EMPTY_CYCLES = """---
max_cycles: 2
---
A goal whose planner never adds a task, and whose judge never says done.
"""
PLANS_NOTHING = """planner: {backend: command, command: 'true'}
judge: {backend: command, command: 'false'}
worker: {backend: command, command: 'true'}
"""


def test_serve_with_no_goal_says_what_it_waits_for(hub: Path) -> None:
    lines: list[str] = []
    daemon = Daemon(hub, workers=0, planners=0, until_done=True, name="t", log=lines.append)
    threading.Thread(target=daemon.run, daemon=True).start()
    deadline = time.time() + 30
    while time.time() < deadline and not any("waiting for a goal" in line for line in lines):
        time.sleep(0.1)
    daemon.shutdown()
    said = [line for line in lines if "waiting for a goal" in line]
    assert len(said) == 1 and "goals/<name>.md" in said[0] and str(hub) in said[0], lines


def test_an_empty_cycle_is_judged_at_once_and_a_stopped_goal_exits_4(hub: Path, tmp_path: Path) -> None:
    """judge.every is 10 minutes by default: with the fix the two empty cycles are judged as soon as
    their planner is done, the goal stops after max_cycles, and serve --until-done exits 4."""
    push_goal(hub, tmp_path, "empty", EMPTY_CYCLES, files={".gitswarm.yaml": PLANS_NOTHING})
    lines: list[str] = []
    code: list[int] = []
    done = threading.Thread(target=lambda: code.append(serve(hub, lines, workers=1)), daemon=True)
    done.start()
    done.join(timeout=120)
    assert code == [4], "\n".join(lines)
    with Board(str(hub)) as board:
        board.refresh()
        record = board.records()["empty"]
    assert (record.status, record.cycle) == ("stopped", 2), record
    assert [v.decision for v in record.verdicts][-1] == "stop"
    assert any(line.startswith("goal empty: stopped after 2 cycle(s)") for line in lines), lines


def test_ctrl_c_stops_serve_with_130(hub: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers", "1",
                             "--planners", "0"], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not sh("git", "ls-remote", str(hub), "refs/gitswarm/train").stdout \
            and proc.poll() is None:
        time.sleep(0.2)  # the train's lease is pushed once serve is up
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopping" in err


def test_ctrl_c_stops_a_worker_pool_with_130_and_sigterm_with_0(hub: Path, tmp_path: Path) -> None:
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 0)):
        proc = subprocess.Popen([sys.executable, "-m", "gitswarm", "worker", str(hub), "--workers", "1"],
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        assert proc.stderr is not None
        said = [proc.stderr.readline() for _ in range(2)]  # its pool line, then its sandbox line: it is up
        assert "worker pool" in said[0], said
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert "stopping" in err


def test_log_entries_from_many_threads_never_run_together(capsys) -> None:
    """Each entry is one write under a lock; a multi-line entry (a command's stderr) keeps its
    later lines indented, so every line that starts at the margin starts with a time."""
    from gitswarm.roles import stderr_log

    threads = [threading.Thread(target=lambda n=n: [stderr_log(f"w{n}: failed:\nline two\nline three")
                                                    for _ in range(200)]) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 8 * 200 * 3
    for first, second, third in zip(lines[::3], lines[1::3], lines[2::3]):
        assert first[2] == ":" and first[5] == ":" and first[9:].startswith("w") and first.endswith(": failed:")
        assert (second, third) == ("         line two", "         line three")


def test_a_script_tells_nothing_ready_from_failed_from_interrupted(hub: Path, tmp_path: Path) -> None:
    """claim's "no ready task" is 1; any error (a bad argument, a refused change, a usage error) is
    2; Ctrl-C of a command waiting on the hub is 130, not click's 1."""
    from conftest import gitswarm

    from gitswarm.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NOTHING_READY

    empty = gitswarm("claim", str(hub), "-w", "w1", check=False)
    assert empty.returncode == EXIT_NOTHING_READY == 1 and "no ready task" in empty.stderr
    bad = gitswarm("claim", str(hub), "-w", "w1", "--lease", "soon", check=False)
    assert bad.returncode == EXIT_ERROR == 2 and "--lease: 'soon' is not a duration" in bad.stderr, bad.stderr
    tid = gitswarm("task", "add", str(hub), "--title", "x").stdout.strip()
    refused = gitswarm("complete", str(hub), tid, "-w", "w1", "--summary", "s", check=False)
    assert refused.returncode == EXIT_ERROR and "it is open" in refused.stderr and "hint:" in refused.stderr
    usage = gitswarm("claim", str(hub), "--no-such-option", check=False)
    assert usage.returncode == EXIT_ERROR and "No such option" in usage.stderr
    import socket

    with socket.socket() as server:  # a git daemon that accepts and never answers: status waits on it
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        proc = subprocess.Popen([sys.executable, "-m", "gitswarm", "status",
                                 f"git://127.0.0.1:{server.getsockname()[1]}/hub.git"],
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        server.settimeout(60)
        conn, _ = server.accept()
        with conn:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "interrupted" in err, err
