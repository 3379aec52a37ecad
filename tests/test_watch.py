"""Idle agents wake when the board moves: a hub on this machine through its event spool (watchdog),
one elsewhere through `git ls-remote` polls that back off while nothing moves."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gitswarm.gitmirror import Mirror
from gitswarm.watch import Signal, Watcher

from conftest import gitswarm
from servers import GitDaemon


def test_a_ring_between_looking_and_sleeping_is_not_lost():
    signal = Signal()
    seen = signal.generation
    assert signal.wait(seen, 0.01) is False  # nothing rang
    signal.set()  # rings after the agent looked, before it sleeps
    assert signal.wait(seen, 0) is True
    seen = signal.generation
    threading.Timer(0.05, signal.set).start()
    assert signal.wait(seen, 30) is True


def watcher(remote: str, poll: float, poll_max: float) -> tuple[Watcher, threading.Event, list[str]]:
    stop, said = threading.Event(), []
    w = Watcher(Mirror(remote), Signal(), stop, poll=poll, poll_max=poll_max, log=said.append)
    w.start()
    return w, stop, said


def polled(w: Watcher, n: int, timeout: float = 30.0) -> None:
    """Wait until the watcher has polled `n` times (a busy machine may be slow to start a poll)."""
    deadline = time.monotonic() + timeout
    while w.polls < n:
        assert time.monotonic() < deadline, f"{w.polls} poll(s), not {n}"
        time.sleep(0.02)


def close(w: Watcher, stop: threading.Event) -> None:
    stop.set()
    w.close()


def test_a_remote_hub_is_polled_less_often_while_nothing_moves(hub: Path):
    server = GitDaemon(hub.parent)
    try:
        url = server.url(hub.name)
        w, stop, _ = watcher(url, poll=0.02, poll_max=0.32)
        try:
            time.sleep(1.2)  # a wait in which polls must NOT pile up: kept short, on short intervals
            # without backoff 60 polls; with it 0.02+0.04+0.08+0.16+0.32, then one each 0.32 s: about 7
            assert w.polls <= 12, w.polls
            polled(w, 1)
            seen = w.signal.generation
            gitswarm("task", "add", url, "--title", "Wake up")
            assert w.signal.wait(seen, 30), "the poll never saw the board move"
            seen = w.signal.generation
            assert not w.signal.wait(seen, 0.3)  # one ring per move
        finally:
            close(w, stop)
    finally:
        server.stop()


def test_an_unreachable_hub_is_said_once_and_polled_with_backoff(hub: Path):
    server = GitDaemon(hub.parent)
    url = server.url(hub.name)
    server.stop()  # nobody answers on that port now
    w, stop, said = watcher(url, poll=0.02, poll_max=0.16)
    try:
        time.sleep(0.8)  # a wait in which polls must NOT pile up: kept short, on short intervals
        # without backoff 40 polls; with it 0.02+0.04+0.08+0.16, then one each 0.16 s: about 7
        assert w.polls <= 10, w.polls
        polled(w, 2)  # at least two failures: said once, not once per failure
        assert len([s for s in said if s.startswith("cannot reach the hub")]) == 1, said
    finally:
        close(w, stop)


def test_a_hub_on_this_machine_rings_at_once_without_polling(hub: Path):
    w, stop, _ = watcher(str(hub), poll=60, poll_max=60)  # a poll would come only after a minute
    try:
        seen = w.signal.generation
        gitswarm("task", "add", str(hub), "--title", "Wake up")
        assert w.signal.wait(seen, 30), "the spool's watch never rang"
        assert w.polls == 0
    finally:
        close(w, stop)


def test_the_worker_command_refuses_unknown_roles_and_durations(hub: Path):
    bad = gitswarm("worker", str(hub), "--roles", "worker,judge", check=False)
    assert bad.returncode == 2 and "--roles: 'worker,judge'" in bad.stderr and "gitswarm serve" in bad.stderr
    bad = gitswarm("worker", str(hub), "--poll", "soon", check=False)
    assert bad.returncode == 2 and "--poll: 'soon' is not a duration" in bad.stderr
