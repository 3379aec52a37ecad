"""Attacks on the swarm's records (issue 11, part 3): one bad record must not stop the swarm.

Bad records arrive two ways: pushed with plain git through the hub's guard, or written straight into
the hub (`git update-ref`, no hooks), as a board pushed before the guard existed would hold them.
Every test here failed on a053dc1."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pygit2
import pytest

from gitswarm import events, git, record, rules, snapshot
from gitswarm import task as T
from gitswarm.board import Board
from gitswarm.daemon import Daemon
from gitswarm.errors import TaskInvalid

from conftest import age_news, commit_all, gitswarm, push, sh
from test_swarm import TWO_TASKS, push_goal

BAD_DATE = "2026-02-30T00:00:00Z"


def stamp(seconds_from_now: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_unguarded(hub: Path, files: dict[str, bytes], message: str) -> str:
    """Commit files onto the hub's tasks branch and move it with `git update-ref`: no hook runs."""
    repo = pygit2.Repository(str(hub))
    try:
        tip = str(repo.references["refs/heads/tasks"].target)
        sha = git.write_commit(repo, tip, files, message, ("old", "old@example.com"))
    finally:
        repo.free()
    sh("git", "update-ref", "-m", "unguarded", "refs/heads/tasks", sha, tip, cwd=hub)
    return sha


def claimed(title: str, worker: str, at: str, lease: int = 900) -> T.Task:
    t = T.new_task(title)
    return t.replace(status="claimed", attempts=1, claim=T.Claim(worker, 1, at, lease))


def board_tasks(hub: Path) -> dict[str, T.Task]:
    with Board(str(hub)) as board:
        board.refresh()
        return {t.id: t for t in board.tasks()}


# ---------------------------------------------------------------- 1. real dates

def test_the_guard_refuses_a_date_that_does_not_exist(hub, board_clone):
    t = T.new_task("Leap").replace(created=BAD_DATE)
    (board_clone / t.path).parent.mkdir(parents=True)
    (board_clone / t.path).write_bytes(T.dump(t))
    commit_all(board_clone, rules.message("add", [t]))
    result = push(board_clone)
    assert result.returncode != 0
    assert f"{t.path}: created: {BAD_DATE!r} is not a real date" in result.stderr, result.stderr


def test_a_claim_dated_february_30_does_not_stop_reclaim(hub):
    bad = claimed("Bad date", "ghost", BAD_DATE)
    write_unguarded(hub, {bad.path: T.dump(bad)}, "a claim from before the guard")
    good = gitswarm("task", "add", str(hub), "--title", "Good").stdout.strip()
    gitswarm("claim", str(hub), "--worker", "alice", "--lease", "1s")
    age_news(hub, "alice", 2)  # the lease lapses on the hub's clock
    out = gitswarm("reclaim", str(hub))
    assert f"reclaim: {good} claimed -> open" in out.stdout
    assert f"skipped, does not parse: {bad.path}: claim.at: {BAD_DATE!r} is not a real date" in out.stderr
    status = gitswarm("status", str(hub)).stderr
    assert f"unreadable: {bad.path}: claim.at: {BAD_DATE!r} is not a real date" in status


def test_a_failed_task_dated_february_30_does_not_stop_the_workers(hub):
    bad = T.new_task("Bad result").replace(attempts=1, result={"worker": "w", "at": BAD_DATE, "reason": "x"})
    write_unguarded(hub, {bad.path: T.dump(bad)}, "a retried task from before the guard")
    good = gitswarm("task", "add", str(hub), "--title", "Good").stdout.strip()
    with Board(str(hub), retry_backoff=1.0) as board:
        assert board.claim("w").id == good
        assert board.next_rested() is None


def test_goal_record_times_are_real_dates():
    rec = record.new_record("g", None)
    text = record.dump(rec).decode()
    with pytest.raises(TaskInvalid, match=r"goals/g.yaml: updated: '2026-02-30T00:00:00Z' is not a real date"):
        record.parse(text.replace(rec.updated, BAD_DATE).encode(), "goals/g.yaml")
    verdict = record.Verdict(1, "continue", "more", BAD_DATE)
    with pytest.raises(TaskInvalid, match=r"verdicts\[0\].at: '2026-02-30T00:00:00Z' is not a real date"):
        record.parse(record.dump(rec.replace(verdicts=(verdict,))), "goals/g.yaml")


# ---------------------------------------------------------------- 2. the hub's clock

def hand_claim(hub: Path, clone: Path, at: str, lease: int = 900) -> T.Task:
    """Add a task, then claim it with plain git (no heartbeat ref), its claim stamped `at`."""
    task_id = gitswarm("task", "add", str(hub), "--title", "Hand").stdout.strip()
    sh("git", "pull", "-q", "origin", "tasks", cwd=clone)
    t = T.parse((clone / T.task_path(task_id)).read_bytes(), T.task_path(task_id))
    new = rules.claim(t, "mallory", at=at, lease=lease)
    (clone / new.path).write_bytes(T.dump(new))
    commit_all(clone, rules.message("claim", [new], worker="mallory", token=1))
    return new


def test_the_guard_refuses_a_claim_stamped_off_the_hubs_clock(hub, board_clone):
    t = hand_claim(hub, board_clone, "2099-01-01T00:00:00Z")
    result = push(board_clone)
    assert result.returncode != 0
    assert f"{t.path}: claim.at 2099-01-01T00:00:00Z is " in result.stderr and "hub's clock" in result.stderr
    assert f"more than {T.MAX_SKEW}s" in result.stderr, result.stderr
    sh("git", "reset", "-q", "--hard", "HEAD~1", cwd=board_clone)
    hand_claim(hub, board_clone, stamp(-3600))  # an hour late: refused too
    assert push(board_clone).returncode != 0
    sh("git", "reset", "-q", "--hard", "HEAD~1", cwd=board_clone)
    sh("git", "reset", "-q", "--hard", "HEAD~1", cwd=board_clone)
    hand_claim(hub, board_clone, stamp(200))  # within the skew: accepted
    assert push(board_clone).returncode == 0


def test_an_unguarded_claim_dated_2099_lapses(hub):
    ghost = claimed("From the future", "ghost", "2099-01-01T00:00:00Z", lease=60)
    write_unguarded(hub, {ghost.path: T.dump(ghost)}, "a claim from before the guard")
    out = gitswarm("reclaim", str(hub)).stdout  # the hub's guard checks the lapse again: it agrees
    assert f"reclaim: {ghost.id} claimed -> open: lease lapsed: ghost's claim is dated 2099-01-01T00:00:00Z" in out
    assert board_tasks(hub)[ghost.id].status == "open"


def test_a_retried_task_whose_last_attempt_ended_in_2099_is_not_held_back(hub):
    """result.at is the holder's word (the guard checks only claim.at against its clock): a stamp
    far ahead must not make the task rest until then."""
    ahead = T.new_task("Rests forever").replace(
        attempts=1, result={"worker": "w", "at": "2099-01-01T00:00:00Z", "reason": "failed"})
    write_unguarded(hub, {ahead.path: T.dump(ahead)}, "a retried task from before the guard")
    with Board(str(hub), retry_backoff=1.0) as board:
        assert board.claim("w").id == ahead.id


# ---------------------------------------------------------------- 3. errors per task

def test_one_task_that_breaks_the_reclaim_pass_does_not_stall_the_others(hub):
    """A board snapshot saved by an older client still holds a task whose time cannot be read."""
    first = gitswarm("task", "add", str(hub), "--title", "First").stdout.strip()
    second = gitswarm("task", "add", str(hub), "--title", "Second").stdout.strip()
    gitswarm("claim", str(hub), "--worker", "alice", "--lease", "1s")
    gitswarm("claim", str(hub), "--worker", "bob", "--lease", "1s")
    with Board(str(hub)) as board:
        board.refresh()
        tasks = {t.id: t for t in board.tasks()}
        broken = tasks[first].replace(claim=dataclasses.replace(tasks[first].claim, worker="ghost", at=BAD_DATE))
        tasks[first] = broken
        snapshot.save(board.mirror.path, snapshot.Snapshot(board.tip, tasks, board.records(), []))
    age_news(hub, "bob", 2)  # bob's lease lapses on the hub's clock
    out = gitswarm("reclaim", str(hub))
    assert f"reclaim {first}: ValueError" in out.stdout
    assert f"reclaim: {second} claimed -> open" in out.stdout


def test_one_task_whose_time_cannot_be_read_does_not_stop_claims(hub):
    """The same snapshot holding an open task whose last attempt's time cannot be read: it waits,
    and the workers claim the others (every claim raised before)."""
    first = gitswarm("task", "add", str(hub), "--title", "First").stdout.strip()
    second = gitswarm("task", "add", str(hub), "--title", "Second").stdout.strip()
    with Board(str(hub)) as board:
        board.refresh()
        tasks = {t.id: t for t in board.tasks()}
        tasks[first] = tasks[first].replace(attempts=1, result={"worker": "w", "at": BAD_DATE, "reason": "x"})
        snapshot.save(board.mirror.path, snapshot.Snapshot(board.tip, tasks, board.records(), []))
    with Board(str(hub), retry_backoff=1.0) as board:
        assert board.next_rested() is None
        assert board.claim("w").id == second
        assert board.claim("w") is None


# ---------------------------------------------------------------- 4. the event spool

def test_bad_spool_events_are_quarantined_and_serve_goes_on(hub, tmp_path):
    tip = sh("git", "rev-parse", "tasks", cwd=hub).stdout.strip()
    tree = sh("git", "rev-parse", "tasks^{tree}", cwd=hub).stdout.strip()
    spool = events.spool_dir(hub)

    def event(ref, old, new) -> str:
        return json.dumps({"ref": ref, "old": old, "new": new, "time": 1.0, "pusher": None})

    bad = {
        "00000000000000000001-1-0000.json": "this is not JSON",
        "00000000000000000002-1-0000.json": event("refs/heads/main", "0" * 40, "zz" * 20),
        "00000000000000000003-1-0000.json": event("refs/heads/tasks", "abc", tip),
        "00000000000000000004-1-0000.json": event(["refs/heads/main"], "0" * 40, tip),
        "00000000000000000005-1-0000.json": json.dumps([1, 2, 3]),
        # well formed, but handling it raises (tasks "moved" to a tree): quarantined by the daemon
        "00000000000000000006-1-0000.json": event("refs/heads/tasks", tip, tree),
    }
    for name, text in bad.items():
        (spool / name).write_text(text)
    lines: list[str] = []
    daemon = Daemon(hub, workers=2, planners=1, until_done=True, name="t", log=lines.append, debounce=0.1)
    outcome: list[int] = []
    runner = threading.Thread(target=lambda: outcome.append(daemon.run()), daemon=True)
    runner.start()
    deadline = time.time() + 20
    while time.time() < deadline and any((spool / n).exists() for n in bad):
        time.sleep(0.1)
    push_goal(hub, tmp_path, "two", TWO_TASKS)
    runner.join(timeout=90)
    if runner.is_alive():
        daemon.shutdown()
        runner.join(timeout=30)
        pytest.fail("serve did not finish the goal:\n" + "\n".join(lines))
    assert outcome == [0], lines
    assert "status: done" in sh("git", "show", "tasks:goals/two.yaml", cwd=hub).stdout
    assert sorted(n for n in os.listdir(spool / "bad") if n.endswith(".json")) == sorted(bad)
    said = "\n".join(lines)
    for name in bad:
        assert f"event {name}: quarantined in" in said, said
    assert "new is not an object id (40 or 64 hex digits)" in said and "not JSON" in said and "ref is not a string" in said
    assert "AttributeError" in said  # the event whose handling raised, with the reason


# ---------------------------------------------------------------- 5. deep depends_on

def test_a_deep_depends_on_chain_is_checked_without_recursion(hub, tmp_path):
    n = 1200
    items = [{"id": f"t-chain-{i}", "title": f"step {i}", "depends_on": [f"t-chain-{i + 1}"] if i < n - 1 else []}
             for i in range(n)]
    path = tmp_path / "chain.yaml"
    path.write_text(json.dumps(items))  # JSON is YAML
    result = gitswarm("task", "add", str(hub), "--from", str(path), check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.split()) == n
    assert len(board_tasks(hub)) == n


def test_a_long_depends_on_cycle_is_reported_with_its_path(hub, tmp_path):
    n = 1200
    items = [{"id": f"t-loop-{i}", "title": f"step {i}", "depends_on": [f"t-loop-{(i + 1) % n}"]} for i in range(n)]
    path = tmp_path / "loop.yaml"
    path.write_text(json.dumps(items))
    result = gitswarm("task", "add", str(hub), "--from", str(path), check=False)
    assert result.returncode == 2
    assert "depends_on forms a cycle: t-loop-0 -> t-loop-1 -> t-loop-2 -> " in result.stderr, result.stderr[-2000:]
    assert "RecursionError" not in result.stderr


def test_find_cycle_is_iterative_and_names_the_path():
    deep = {f"t-{i:05d}": ((f"t-{i - 1:05d}",) if i else ()) for i in range(50_000)}
    assert T.find_cycle(deep) is None
    deep["t-00000"] = ("t-49999",)
    cycle = T.find_cycle(deep)
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) == 50_001
    assert T.find_cycle({"t-a": ("t-b", "t-x"), "t-b": ("t-c",), "t-c": ("t-b",)}) == ["t-b", "t-c", "t-b"]


# ---------------------------------------------------------------- 6. fsck on the hub

def test_the_hub_refuses_a_tree_entry_that_would_own_a_clone(hub, tmp_path):
    work = tmp_path / "work"
    sh("git", "init", "-q", str(work))
    blob = sh("git", "hash-object", "-w", "--stdin", cwd=work, input="[core]\n\tfsmonitor = evil\n").stdout.strip()
    inner = sh("git", "mktree", cwd=work, input=f"100644 blob {blob}\tconfig\n").stdout.strip()
    tree = sh("git", "mktree", cwd=work, input=f"040000 tree {inner}\t.GIT\n").stdout.strip()
    commit = sh("git", "commit-tree", tree, "-m", "innocent", cwd=work).stdout.strip()
    result = sh("git", "push", str(hub), f"{commit}:refs/heads/main", cwd=work, check=False)
    assert result.returncode != 0
    assert "hasDotgit" in result.stderr, result.stderr
    assert sh("git", "config", "receive.fsckObjects", cwd=hub).stdout.strip() == "true"


def test_gitswarm_events_says_what_it_quarantined(hub):
    (hub / "gitswarm" / "spool" / "00000000000000000001-1-0000.json").write_text("{not json")
    listed = gitswarm("events", str(hub))
    assert "00000000000000000001-1-0000.json: quarantined in" in listed.stderr and "not JSON" in listed.stderr
    assert (hub / "gitswarm" / "spool" / "bad" / "00000000000000000001-1-0000.json").exists()
