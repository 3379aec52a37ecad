"""The group commit's backoff after a refused push (issue 17): retry at once when another process
just pushed, back off only when refusals repeat or bring nothing new. Real hubs, real pushes; the
rule's decisions are recorded, its sleeps are real (at most MIN_BACKOFF here)."""

from __future__ import annotations

import pytest

from gitswarm import groupcommit, names
from gitswarm.board import Board
from gitswarm.groupcommit import MAX_BACKOFF, MIN_BACKOFF, backoff_after
from gitswarm.task import new_task

from conftest import sh


def test_the_first_refusal_with_a_new_tip_retries_at_once_and_repeats_back_off():
    assert backoff_after(0.0, 1, moved=True) == (0.0, MIN_BACKOFF)
    assert backoff_after(0.5, 1, moved=True) == (0.5, MIN_BACKOFF)  # the learnt backoff is kept
    assert backoff_after(0.0, 2, moved=True) == (MIN_BACKOFF, MIN_BACKOFF)
    assert backoff_after(0.0, 1, moved=False) == (MIN_BACKOFF, MIN_BACKOFF)
    backoff, sleeps = 0.0, []
    for refusals in range(1, 12):  # a batch refused again and again: doubling up to the cap
        backoff, most = backoff_after(backoff, refusals, moved=True)
        sleeps.append(most)
    assert sleeps[:4] == [MIN_BACKOFF, MIN_BACKOFF, 2 * MIN_BACKOFF, 4 * MIN_BACKOFF]
    assert sleeps[-1] == backoff == MAX_BACKOFF


@pytest.fixture
def decisions(monkeypatch):
    """The backoff rule's calls and answers, as the group commit made them."""
    calls = []

    def recorded(backoff, refusals, moved):
        answer = backoff_after(backoff, refusals, moved)
        calls.append(((backoff, refusals, moved), answer))
        return answer
    monkeypatch.setattr(groupcommit, "backoff_after", recorded)
    return calls


@pytest.mark.parametrize("applies", [False, True], ids=["plain-hub", "applying-hub"])
def test_a_claim_refused_because_another_process_pushed_retries_on_the_new_tip_at_once(hub, tmp_path, decisions,
                                                                                        applies):
    """On a hub that applies board pushes (gitswarm/applier.py) the claim that lost is left out,
    not refused: the push stands, and the claim is made again on the new tip with no backoff."""
    if not applies:
        sh("git", "config", "--unset", "receive.procReceiveRefs", cwd=hub)
    with Board(str(hub), cache=tmp_path / "a") as a, Board(str(hub), cache=tmp_path / "b") as b:
        first, second = a.add([new_task("one"), new_task("two")])
        b.refresh()
        assert b.claim("wb").id == first.id  # a's view is stale now: its claim of `one` loses
        assert a.claim("wa").id == second.id
        assert a.rejected_pushes == (0 if applies else 1)
        assert decisions == ([] if applies else [((0.0, 1, True), (0.0, MIN_BACKOFF))])
        assert a.commits.backoff == 0.0  # nothing learnt: the next batch pushes without a fetch first


def test_a_refusal_that_brings_no_new_tip_backs_off(hub, tmp_path, decisions):
    """A heartbeat ref moved by another process: tasks did not move, so that is contention."""
    with Board(str(hub), cache=tmp_path / "a") as a, Board(str(hub), cache=tmp_path / "b") as b:
        a.add([new_task("one")])
        assert a.claim("w") is not None  # a knows w's heartbeat ref as it pushed it
        b.heartbeat(["w"])  # another process beats under the same name, twice (a's beat in the
        b.heartbeat(["w"])  # same second would be b's first commit: same parent, same bytes)
        a.heartbeat(["w"])
        assert a.rejected_pushes == 1
        assert decisions == [((0.0, 1, False), (MIN_BACKOFF, MIN_BACKOFF))]
        assert sorted(a.mirror.remote_refs(names.HEARTBEATS + "*")) == [names.heartbeat_ref("w")]


@pytest.mark.parametrize("applies", [False, True], ids=["plain-hub", "applying-hub"])
def test_a_landing_refused_because_main_moved_retries_on_the_new_main_at_once(hub, tmp_path, decisions, applies):
    """Only main moved (a plain push of another's work): that is progress too, not contention. A
    hub that applies board pushes (gitswarm/applier.py) replays the landing itself: no refusal."""
    from gitswarm import git

    if not applies:
        sh("git", "config", "--unset", "receive.procReceiveRefs", cwd=hub)
    with Board(str(hub)) as board:
        t, = board.add([new_task("write the file")])
        board.claim("alice")
        base = board.fetch_branch("main")
        work = git.write_commit(board.mirror.repo, base, {"a.txt": b"hello"},
                                f"hello\n\nGitswarm-Task: {t.id}\nGitswarm-Worker: alice\n", ("alice", "alice@x"))
        clone = tmp_path / "other"
        sh("git", "clone", "-q", str(hub), str(clone))
        (clone / "b.txt").write_text("another's work\n")
        sh("git", "add", "-A", cwd=clone)
        sh("git", "commit", "-q", "-m", "another's work", cwd=clone)
        sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
        done = board.land(t.id, "alice", work, "wrote a.txt", replay=True)
        assert done.status == "done" and done.result["commit"] != work  # replayed onto the new main
        assert done.result["commit"] == sh("git", "rev-parse", "main", cwd=hub).stdout.strip()
        assert board.rejected_pushes == (0 if applies else 1)
        assert decisions == ([] if applies else [((0.0, 1, True), (0.0, MIN_BACKOFF))])
