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
