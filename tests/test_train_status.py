"""`gitswarm status` shows the landing queue (issue 12): the tasks waiting in it, who holds the train
and what it is doing, and the last batch it landed. A real hub, real pushes through its hook, the
real command line."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pygit2

from gitswarm import queue, rules

from conftest import gitswarm, sh
from test_attacks_queue import HOLDER, MAIN, TASKS, TRAIN, Scene, accepted, hub_refs, scene  # noqa: F401
from test_guard import A

AGO = r"\d+[smhd] ago"


def status(hub: Path) -> tuple[str, dict]:
    return gitswarm("status", str(hub)).stdout, json.loads(gitswarm("status", str(hub), "--json").stdout)


def in_a_mirror(sha: str) -> bool:
    """Whether any gitswarm mirror on this machine (the test's cache) holds the object."""
    cache = Path(os.environ["GITSWARM_CACHE"])
    return any(sh("git", "cat-file", "-e", sha, cwd=m, check=False).returncode == 0 for m in cache.glob("*.git"))


def test_status_of_a_board_without_a_train_says_nothing_of_it_and_fetches_no_main(scene: Scene) -> None:
    text, doc = status(scene.hub)
    assert "landing queue" not in text and "train" not in text, text
    assert doc["queue"] == {"landing": 0, "oldest_age": None, "train": None, "last_batch": None}
    assert not in_a_mirror(scene.base), "status fetched main for a hub without a train"


def test_status_shows_the_queue_before_a_train_holds_it(scene: Scene) -> None:
    scene.handed_off()
    text, doc = status(scene.hub)
    assert re.search(rf"^landing queue: 1 task\(s\), the oldest handed off {AGO}$", text, re.M), text
    assert "train: none (no refs/gitswarm/train on the hub): `gitswarm serve` runs one" in text
    assert re.search(rf"^LANDING \(1\)\n  ID .* STATE +TITLE\n  {A} .* queued {AGO} .*\n +by alice, commit ", text, re.M), text
    assert "claimed" not in text.splitlines()[1] and "landing 1" in text, text
    assert doc["queue"]["landing"] == 1 and doc["queue"]["oldest_age"] >= 0 and doc["queue"]["train"] is None


def test_status_shows_who_holds_the_train_and_what_it_tests(scene: Scene) -> None:
    scene.handed_off()
    doing = "testing batch #2 (1 task(s)) on 1234567890\x1b[2J\nlast: batch #1 green, 1 task(s) landed at 0987654321"
    lease = scene.lease(message=queue.lease_message(HOLDER, 3600, doing))
    accepted(scene.clone, scene.hub, {TRAIN: lease})
    text, doc = status(scene.hub)
    assert re.search(rf"^train: held by {HOLDER} \(lease 3600s\), renewed {AGO}$", text, re.M), text
    assert "\n  testing batch #2 (1 task(s)) on 1234567890\n  last: batch #1 green, 1 task(s) landed at 0987654321\n" \
        in text, text
    assert "\x1b" not in text and "last landed batch" not in text
    train = doc["queue"]["train"]
    assert (train["holder"], train["lease"], train["commit"], train["lapsed"]) == (HOLDER, 3600, lease, False)
    assert train["doing"].startswith("testing batch #2") and train["renewed_ago"] >= 0


def backdated_lease(scene: Scene, seconds_ago: int, lease: int) -> str:
    repo = pygit2.Repository(str(scene.clone))
    try:
        then = pygit2.Signature(HOLDER, "t@example.com", int(time.time()) - seconds_ago, 0)
        empty = repo.TreeBuilder().write()
        return str(repo.create_commit(None, then, then, queue.lease_message(HOLDER, lease), empty, []))
    finally:
        repo.free()


def test_status_says_when_the_train_s_lease_has_lapsed(scene: Scene) -> None:
    accepted(scene.clone, scene.hub, {TRAIN: backdated_lease(scene, 7200, 60)})
    text, doc = status(scene.hub)
    assert "landing queue: empty" in text
    assert re.search(rf"^train: held by {HOLDER} \(lease 60s\), renewed 2h ago: lapsed, another train may take "
                     "it over$", text, re.M), text
    assert doc["queue"]["train"]["lapsed"] is True


def test_status_says_a_lease_nobody_renews_is_likely_left_by_a_stopped_serve(scene: Scene) -> None:
    """A running train renews its lease every third of it: one not renewed for longer, though not
    lapsed yet, is shown as such (the serve that held it stopped?), with when it frees."""
    accepted(scene.clone, scene.hub, {TRAIN: backdated_lease(scene, 300, 600)})
    text, doc = status(scene.hub)
    assert re.search(rf"^train: held by {HOLDER} \(lease 600s\), not renewed for 5m \(a running train renews it "
                     r"every 3m: its serve stopped\?\); another train may take it over in \d+[sm]$", text, re.M), text
    train = doc["queue"]["train"]
    assert (train["lapsed"], train["overdue"]) == (False, True) and 0 < train["free_in"] <= 300


def test_status_shows_the_last_landed_batch(scene: Scene) -> None:
    scene.handed_off()
    lease = scene.hold_train()
    tested = "passed in 0.1s; batch #1 of 1 task(s); train trainer; command: true"
    landed = scene.commit(scene.base, {"work.txt": b"work\n"},
                          f"do work.txt\n\nGitswarm-Task: {A}\nGitswarm-Tested: {tested}\n")
    done = scene.board("land", [rules.landed(scene.task(), landed)], HOLDER)
    accepted(scene.clone, scene.hub, {MAIN: landed, TASKS: done, TRAIN: scene.lease(parent=lease)})
    after = scene.commit(landed, {"notes.txt": b"by hand\n"}, "a commit of someone's own on main")
    accepted(scene.clone, scene.hub, {MAIN: after})
    text, doc = status(scene.hub)
    assert "landing queue: empty" in text
    assert re.search(rf"^last landed batch: {landed[:10]}, {AGO}: {re.escape(tested)}$", text, re.M), text
    batch = doc["queue"]["last_batch"]
    assert (batch["commit"], batch["tested"]) == (landed, tested) and batch["age"] >= 0
