"""Work lands on main together with its task's completion, in one atomic push, or not at all."""

from __future__ import annotations

import pytest

from gitswarm.board import Board
from gitswarm.errors import BranchMoved, GitswarmError
from gitswarm.task import new_task

from conftest import commit_all, push, sh


def work_commit(board: Board, parent: str | None, task_id: str, worker: str, path: str, text: str) -> str:
    """A commit of work for a task, built in the board's mirror (where a worker's worktree lives)."""
    from gitswarm import git

    message = f"{text}\n\nGitswarm-Task: {task_id}\nGitswarm-Worker: {worker}\n"
    return git.write_commit(board.mirror.repo, parent, {path: text.encode()}, message, (worker, f"{worker}@x"))


def hub_ref(hub, ref):
    return sh("git", "rev-parse", "-q", "--verify", ref, cwd=hub, check=False).stdout.strip() or None


def test_land_moves_main_and_completes_the_task_at_once(hub):
    with Board(str(hub)) as board:
        t, = board.add([new_task("write the file")])
        board.claim("alice")
        commit = work_commit(board, board.fetch_branch("main"), t.id, "alice", "a.txt", "hello")
        done = board.land(t.id, "alice", commit, "wrote a.txt")
    assert done.status == "done" and done.result["commit"] == commit
    assert hub_ref(hub, "refs/heads/main") == commit
    subject = sh("git", "log", "-1", "--format=%s", "tasks", cwd=hub).stdout.strip()
    assert subject == f"done {t.id}: write the file (alice)"


def test_land_on_a_moved_main_lands_nothing(hub, tmp_path):
    with Board(str(hub)) as board:
        a, b = board.add([new_task("a", priority=1), new_task("b")])
        board.claim("alice")
        board.claim("bob")
        base = board.fetch_branch("main")
        first = work_commit(board, base, a.id, "alice", "a.txt", "from alice")
        board.land(a.id, "alice", first, "a")
        stale = work_commit(board, base, b.id, "bob", "b.txt", "from bob")  # built on the old main
        tasks_before = hub_ref(hub, "refs/heads/tasks")
        with pytest.raises(BranchMoved) as e:
            board.land(b.id, "bob", stale, "b")
        assert e.value.branch == "main"
        assert hub_ref(hub, "refs/heads/main") == first and hub_ref(hub, "refs/heads/tasks") == tasks_before
        rebased = work_commit(board, first, b.id, "bob", "b.txt", "from bob")
        assert board.land(b.id, "bob", rebased, "b").status == "done"
    assert hub_ref(hub, "refs/heads/main") == rebased


def test_work_for_a_task_cannot_land_without_its_completion(hub, tmp_path):
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "x.txt").write_text("sneaky\n")
    commit_all(clone, "sneak it in\n\nGitswarm-Task: t-abcd1234")
    result = push(clone, "HEAD:refs/heads/main")
    assert result.returncode != 0
    assert "rejected refs/heads/main: commit" in result.stderr and "is work for t-abcd1234" in result.stderr
    assert hub_ref(hub, "refs/heads/main") is None
    # people push to main freely: a goal, code, anything without a Gitswarm-Task trailer
    sh("git", "commit", "-q", "--amend", "-m", "plain work", cwd=clone)
    assert push(clone, "HEAD:refs/heads/main").returncode == 0


def test_a_task_is_done_with_a_commit_only_when_the_commit_is_on_main(hub):
    with Board(str(hub)) as board:
        t, = board.add([new_task("x")])
        board.claim("alice")
        orphan = work_commit(board, None, t.id, "alice", "x.txt", "never pushed to main")
        with pytest.raises(GitswarmError, match="is not on main"):
            board.complete(t.id, "alice", "done?", commit=orphan)
        assert board.get(t.id).status == "claimed"


def test_claims_and_a_landing_share_one_push(hub):
    """Group commit with a landing in the batch: one atomic push carries main and the chain."""
    import threading

    with Board(str(hub)) as board:
        tasks = board.add([new_task(f"t{i}") for i in range(6)])
        first = board.claim("w0")
        commit = work_commit(board, board.fetch_branch("main"), first.id, "w0", "f.txt", "work")
        results, barrier = {}, threading.Barrier(6)

        def claimer(i):
            barrier.wait()
            results[i] = board.claim(f"w{i}")

        def lander():
            barrier.wait()
            results["land"] = board.land(first.id, "w0", commit, "done")

        threads = [threading.Thread(target=claimer, args=(i,)) for i in range(1, 6)] + [threading.Thread(target=lander)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert results["land"].status == "done"
    assert sorted(r.id for k, r in results.items() if k != "land") == sorted(t.id for t in tasks[1:])
    assert hub_ref(hub, "refs/heads/main") == commit


def test_a_replayed_landing_goes_on_top_of_a_moved_main(hub):
    """Two workers commit on the same tip; with replay the second lands without a rebase of its own:
    the board replays its commit onto the first, and its completion names the commit that landed."""
    with Board(str(hub)) as board, Board(str(hub), cache=hub.parent / "other-machine") as other:
        a, b, c = board.add([new_task("a", priority=2), new_task("b", priority=1), new_task("c")])
        board.claim("alice")
        board.claim("bob")
        other.claim("carol")
        base = board.fetch_branch("main")
        first = work_commit(board, base, a.id, "alice", "a.txt", "from alice")
        board.land(a.id, "alice", first, "a")
        assert other.fetch_branch("main") == first  # the other machine sees main at alice's work
        stale = work_commit(board, base, b.id, "bob", "b.txt", "from bob")
        done = board.land(b.id, "bob", stale, "b", replay=True)
        landed = done.result["commit"]
        assert done.status == "done" and landed != stale
        # the other machine lands on alice's work, not knowing main moved again: the hub replays
        # it onto main's tip (gitswarm/applier.py), in one push, and its completion names that
        old = work_commit(other, first, c.id, "carol", "c.txt", "from carol")
        rejected = other.rejected_pushes
        carols = other.land(c.id, "carol", old, "c", replay=True)
        assert carols.status == "done" and other.rejected_pushes == rejected
    tip = hub_ref(hub, "refs/heads/main")
    assert carols.result["commit"] == tip != old
    with Board(str(hub), cache=hub.parent / "reader") as reader:
        reader.refresh()
        assert reader.get(c.id).result["commit"] == tip  # the board's file, as the hub rewrote it
    assert sh("git", "rev-parse", f"{tip}~1", cwd=hub).stdout.strip() == landed
    assert sh("git", "rev-parse", f"{landed}~1", cwd=hub).stdout.strip() == first
    assert sh("git", "ls-tree", "--name-only", tip, cwd=hub).stdout.split() == ["a.txt", "b.txt", "c.txt"]
    assert f"Gitswarm-Task: {b.id}" in sh("git", "log", "-1", "--format=%B", landed, cwd=hub).stdout
    assert "forced" not in sh("git", "reflog", "show", "--format=%gs", "refs/heads/main", cwd=hub).stdout


def test_a_replay_that_conflicts_lands_nothing(hub):
    with Board(str(hub)) as board:
        a, b = board.add([new_task("a", priority=1), new_task("b")])
        board.claim("alice")
        board.claim("bob")
        base = board.fetch_branch("main")
        first = work_commit(board, base, a.id, "alice", "same.txt", "from alice")
        board.land(a.id, "alice", first, "a")
        tasks_before = hub_ref(hub, "refs/heads/tasks")
        clash = work_commit(board, base, b.id, "bob", "same.txt", "from bob")
        with pytest.raises(BranchMoved):
            board.land(b.id, "bob", clash, "b", replay=True)
        assert board.get(b.id).status == "claimed"
    assert hub_ref(hub, "refs/heads/main") == first and hub_ref(hub, "refs/heads/tasks") == tasks_before


def test_landings_of_one_batch_all_land_when_replayed(hub):
    """Workers of one process landing at once on the same tip: every one lands, main stays linear."""
    import threading

    with Board(str(hub)) as board:
        tasks = board.add([new_task(f"t{i}") for i in range(6)])
        for i in range(6):
            board.claim(f"w{i}")
        base = board.fetch_branch("main")
        commits = [work_commit(board, base, t.id, f"w{i}", f"f{i}.txt", f"work {i}") for i, t in enumerate(tasks)]
        results, barrier = {}, threading.Barrier(6)

        def lander(i):
            barrier.wait()
            results[i] = board.land(tasks[i].id, f"w{i}", commits[i], "done", replay=True)

        threads = [threading.Thread(target=lander, args=(i,)) for i in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert all(results[i].status == "done" for i in range(6))
    tip = hub_ref(hub, "refs/heads/main")
    history = sh("git", "rev-list", "--first-parent", tip, cwd=hub).stdout.split()
    assert sorted(r.result["commit"] for r in results.values()) == sorted(history[:6])
    assert sh("git", "rev-list", "--merges", tip, cwd=hub).stdout == ""
    assert len(sh("git", "ls-tree", "--name-only", tip, cwd=hub).stdout.split()) == 6


def test_a_fetch_waits_out_a_worktree_being_added(hub, monkeypatch):
    """`git worktree add` writes a null HEAD before the real one; a fetch into the mirror at that
    moment fails its connectivity check. The mirror fetches again."""
    from gitswarm import gitmirror

    with Board(str(hub)) as board:
        board.add([new_task("x")])
        broken = board.mirror.path / "worktrees" / "half-made"
        broken.mkdir(parents=True)
        (broken / "HEAD").write_text("0" * 40 + "\n")
        (broken / "commondir").write_text("../..\n")
        (broken / "gitdir").write_text(str(hub.parent / "nowhere" / ".git") + "\n")
        sleeps = []

        def finish_the_worktree(seconds):  # git writes the real HEAD while we wait
            sleeps.append(seconds)
            (broken / "HEAD").write_text(board.tip + "\n")
        monkeypatch.setattr(gitmirror.time, "sleep", finish_the_worktree)
        board.add([new_task("y")])
        assert board.fetch_branch("tasks") == hub_ref(hub, "refs/heads/tasks")
        assert sleeps, "the fetch never met the half-made worktree"
