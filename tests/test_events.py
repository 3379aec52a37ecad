"""The post-receive hook (its C client or its bash): one event per updated ref, spooled atomically;
never fails or holds a push."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from gitswarm import events
from gitswarm.board import Board
from gitswarm.task import new_task

from conftest import commit_all, gitswarm, hook_form, push, sh


@pytest.fixture(params=["interpreter", "c", "bash"])
def way(request, hub):
    """The hook's ways to spool: the C client init built (hooks/hookclient.c), the shim's
    interpreter or started by sh, or the shim's bash when there is none it may run
    (tests/test_hookclient_c.py compares their bytes)."""
    hook_form(hub, {"interpreter": "client", "c": "sh", "bash": "none"}[request.param])
    return request.param


def test_each_updated_ref_spools_one_event(hub, tmp_path):
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    commit_all(work, "one")
    result = push(work, "HEAD:refs/heads/main")
    assert result.returncode == 0, result.stderr
    head = sh("git", "rev-parse", "HEAD", cwd=work).stdout.strip()
    (first,) = events.pending(hub)
    assert (first.ref, first.old, first.new) == ("refs/heads/main", "0" * 40, head) and first.time > 0
    # a landing moves main and tasks in one push: one event each, with their old and new tips
    with Board(str(hub)) as board:
        t, = board.add([new_task("Spool me")])
        board.claim("w")
        before = sh("git", "rev-parse", "tasks", cwd=hub).stdout.strip()
        from gitswarm import git
        assert board.fetch_branch("main") == head
        work_commit = git.write_commit(board.mirror.repo, head, {"f.txt": b"x"},
                                       f"work\n\nGitswarm-Task: {t.id}\n", ("w", "w@x"))
        board.land(t.id, "w", work_commit, "done")
    landing = events.pending(hub)[-2:]
    assert sorted((e.ref, e.old, e.new) for e in landing) == sorted([
        ("refs/heads/main", head, work_commit),
        ("refs/heads/tasks", before, sh("git", "rev-parse", "tasks", cwd=hub).stdout.strip())])
    assert not any(e.ref.startswith("refs/gitswarm/") for e in events.pending(hub))  # heartbeats are no news
    assert not [n for n in os.listdir(events.spool_dir(hub)) if n.startswith(".")]  # no temp files left


def test_events_command_lists_and_acks(hub):
    assert "no pending events" in gitswarm("events", str(hub)).stdout
    with Board(str(hub)) as board:
        board.add([new_task("First")])
        board.add([new_task("Second")])
    doc = json.loads(gitswarm("events", str(hub), "--json").stdout)
    assert [e["ref"] for e in doc["events"]] == ["refs/heads/tasks"] * 2
    assert doc["events"][0]["new"] == doc["events"][1]["old"]  # in order of arrival
    first = events.pending(hub)[0]
    events.ack(hub, first)
    assert [e.name for e in events.pending(hub)] == [doc["events"][1]["name"]]


def test_spool_failure_never_fails_the_push(hub, tmp_path, way):
    spool = events.spool_dir(hub)
    os.rmdir(spool)
    spool.write_text("a file where the spool folder should be")
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    commit_all(work, "one")
    result = push(work, "HEAD:refs/heads/main")
    assert result.returncode == 0
    assert "could not spool the event" in result.stderr
    assert sh("git", "rev-parse", "main", cwd=hub).stdout.strip() == \
        sh("git", "rev-parse", "HEAD", cwd=work).stdout.strip()


def test_post_receive_leaves_nothing_holding_the_pusher(hub):
    """The hook process must exit with nothing left attached to its output: a child holding the
    pipe would hold every push (git waits for the pipe's EOF). communicate() returns only at EOF."""
    line = f"{'0' * 40} {'1' * 40} refs/heads/main\n"
    proc = subprocess.Popen([str(hub / "hooks" / "post-receive")], cwd=hub, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, GIT_DIR="."))
    out, err = proc.communicate(line.encode(), timeout=30)  # a hang detector, not a timing assertion
    assert proc.returncode == 0, err
    assert [e.new for e in events.pending(hub)] == ["1" * 40]


def test_spool_writes_are_atomic_under_concurrent_hooks(hub, way):
    """Many hook processes at once: every event lands whole, none is lost or torn."""
    line = f"{'0' * 40} {'2' * 40} refs/heads/main\n".encode()
    procs = [subprocess.Popen([str(hub / "hooks" / "post-receive")], cwd=hub,
                              stdin=subprocess.PIPE, env=dict(os.environ, GIT_DIR=".")) for _ in range(20)]
    for p in procs:
        p.communicate(line, timeout=60)
    pending = events.pending(hub)
    assert len(pending) == 20 and len({e.name for e in pending}) == 20


def _hook(hub, stdin: bytes, **env) -> None:
    proc = subprocess.run([str(hub / "hooks" / "post-receive")], cwd=hub, input=stdin, capture_output=True,
                          env=dict(os.environ, GIT_DIR=".", **env))
    assert proc.returncode == 0 and not proc.stderr, proc.stderr


def test_the_hook_writes_one_push_record_and_the_reader_makes_its_events(hub, way):
    """hooks/post-receive (C or bash) writes `<µs>-<pid>.push`; pending() turns it into one event per
    ref outside refs/gitswarm/, in the order git gave them, with who pushed: over ssh the account
    that owns the record (the pushing account), not what USER says."""
    lines = (f"{'0' * 40} {'1' * 40} refs/heads/main\n{'0' * 40} {'2' * 40} refs/gitswarm/heartbeats/w\n"
             f"{'3' * 40} {'4' * 40} refs/heads/tasks\n").encode()
    _hook(hub, lines, SSH_CONNECTION="10.0.0.1 5000 10.0.0.2 22", USER="mallory")
    (record,) = os.listdir(hub / "gitswarm" / "spool")
    assert record.endswith(".push")
    import pwd

    got = events.pending(hub)
    assert [(e.ref, e.new, e.pusher) for e in got] == [("refs/heads/main", "1" * 40, pwd.getpwuid(os.getuid()).pw_name),
                                                       ("refs/heads/tasks", "4" * 40, pwd.getpwuid(os.getuid()).pw_name)]
    assert not any(n.endswith(".push") for n in os.listdir(hub / "gitswarm" / "spool"))
    assert events.pending(hub) == got  # read again: the same events, nothing doubled


def test_a_push_record_over_http_names_the_web_servers_user_and_a_local_one_nobody(hub, way):
    line = f"{'0' * 40} {'1' * 40} refs/heads/main\n".encode()
    _hook(hub, line, GATEWAY_INTERFACE="CGI/1.1", REMOTE_USER="alice")
    _hook(hub, line)
    assert [e.pusher for e in events.pending(hub)] == ["alice", None]


def test_a_broken_push_record_is_quarantined_and_holds_back_nothing(hub):
    spool = hub / "gitswarm" / "spool"
    (spool / "1000-1.push").write_bytes(b"gitswarm-push-1\0\0not a line\n")
    (spool / "1001-2.push").write_bytes(b"something else")
    _hook(hub, f"{'0' * 40} {'1' * 40} refs/heads/main\n".encode())
    bad: list = []
    assert [e.new for e in events.pending(hub, bad)] == ["1" * 40]
    assert sorted(name for name, _ in bad) == ["1000-1.push", "1001-2.push"]
    assert "not an `<old> <new> <ref>` line" in dict(bad)["1000-1.push"]
    assert (spool / "bad" / "1001-2.push").exists()
