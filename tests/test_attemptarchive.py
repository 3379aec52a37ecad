"""Best of N's attempts refs (refs/gitswarm/attempts/<task>/<k>) of ended tasks, folded by the
hub's daemon into refs/gitswarm/archive/attempts (gitswarm/runarchive.py, ATTEMPTS_FOLD): real hub,
real board, real refs and commits, read back with plain git as docs/attempts.md says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import sh
from test_attempts import RIGHT, SELECT, WRONG, attempt_refs, goal, the_task
from test_swarm import push_goal, serve

from gitswarm import git, names, runarchive
from gitswarm.daemon import Daemon
from gitswarm import task as T
from gitswarm.board import Board
from gitswarm.errors import GitError
from gitswarm.runarchive import ATTEMPTS_FOLD, folder

ARCHIVE = names.ATTEMPTS_ARCHIVE


def fold(hub: Path, after: float = 0, lines: list[str] | None = None) -> int:
    with Board(str(hub)) as board:
        board.refresh()
        return runarchive.fold(hub, board, (lines if lines is not None else []).append, after=after,
                               kind=ATTEMPTS_FOLD)


def rev(hub: Path, what: str) -> str:
    return sh("git", "rev-parse", "-q", "--verify", what, cwd=hub, check=False).stdout.strip()


def recreated(hub: Path, where: str) -> str:
    """The commit made again from the archive's `commit` blob at `where` (docs/attempts.md)."""
    raw = subprocess.run(["git", "cat-file", "blob", f"{where}/commit"], cwd=hub, capture_output=True, check=True).stdout
    return subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=hub, input=raw,
                          capture_output=True, check=True).stdout.decode().strip()


def attempt_commit(hub: Path, task_id: str, k: int, parent: str | None = None) -> str:
    """A commit as an attempt's worker makes one: a file of its own, the attempt's trailer."""
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=hub, input=f"attempt {k}\n".encode(),
                          capture_output=True, check=True).stdout.decode().strip()
    tree = subprocess.run(["git", "mktree"], cwd=hub, input=f"100644 blob {blob}\tout.txt\n".encode(),
                          capture_output=True, check=True).stdout.decode().strip()
    args = ["-p", parent] if parent else []
    return sh("git", "commit-tree", tree, *args, "-m", f"attempt {k}\n\nGitswarm-Task: {task_id}-a{k}",
              cwd=hub).stdout.strip()


@pytest.fixture
def board_hub(hub: Path, monkeypatch: pytest.MonkeyPatch):
    """A hub whose board has a task done (ended just now) and a task still open, each with attempts
    refs at real commits (made in the hub: the fold does not care how a ref came, the guard does)."""
    sh("git", "config", "gitswarm.pusherEnv", "local", cwd=hub)
    monkeypatch.setenv("GITSWARM_PUSHER", "alice-id")
    with Board(str(hub)) as board:
        board.add([T.new_task("Done"), T.new_task("Going")])
        done = board.claim("alice")
        board.complete(done.id, "alice", "selected attempt 1")
        going = next(t for t in board.tasks("open"))
    base = attempt_commit(hub, "t-base", 1)
    refs = {}
    for task_id, k in ((done.id, 1), (done.id, 2), (going.id, 1)):
        refs[names.attempts_ref(task_id, k)] = sha = attempt_commit(hub, task_id, k, base)
        sh("git", "update-ref", names.attempts_ref(task_id, k), sha, cwd=hub)
    return hub, done.id, going.id, refs


def test_an_ended_tasks_attempts_are_folded_whole_and_the_rest_stay(board_hub) -> None:
    hub, done, going, refs = board_hub
    assert fold(hub, after=3600) == 0  # ended less than an hour ago: kept live
    assert attempt_refs(hub) == refs and not rev(hub, ARCHIVE)
    lines: list[str] = []
    assert fold(hub, lines=lines) == 2
    assert lines == [f"folded the commits of 2 attempt(s) of 1 ended task(s) into {ARCHIVE}"]
    assert attempt_refs(hub) == {names.attempts_ref(going, 1): refs[names.attempts_ref(going, 1)]}  # still going
    for k in (1, 2):
        sha, where = refs[names.attempts_ref(done, k)], f"{ARCHIVE}:{folder(done, k)}"
        listing = sh("git", "ls-tree", where, cwd=hub).stdout.splitlines()
        assert [line.split()[1:2] + line.split("\t")[1:] for line in listing] == [["blob", "commit"], ["tree", "tree"]]
        assert rev(hub, f"{where}/tree") == rev(hub, f"{sha}^{{tree}}")  # the content, as the attempt left it
        assert recreated(hub, where) == sha  # the very same commit: author, message, parent, tree
        assert sh("git", "show", f"{where}/tree/out.txt", cwd=hub).stdout == f"attempt {k}\n"
    assert fold(hub) == 0  # nothing folded twice


def test_a_second_fold_goes_on_top_of_the_first(board_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub, done, going, refs = board_hub
    assert fold(hub) == 2
    first = rev(hub, ARCHIVE)
    monkeypatch.setenv("GITSWARM_PUSHER", "alice-id")
    with Board(str(hub)) as board:
        assert board.claim("alice").id == going
        board.complete(going, "alice", "selected attempt 1")
    assert fold(hub) == 1 and attempt_refs(hub) == {}
    assert rev(hub, f"{ARCHIVE}^") == first and not rev(hub, f"{ARCHIVE}^^")  # one commit per fold
    for ref, sha in refs.items():  # every attempt once, in the newest fold's tree
        assert recreated(hub, f"{ARCHIVE}:{folder(*names.parse_attempts_ref(ref))}") == sha
    changed = sh("git", "diff", "--name-only", f"{ARCHIVE}^", ARCHIVE, cwd=hub).stdout.split()
    assert changed and all(path.startswith(folder(going, 1) + "/") for path in changed)


def test_a_ref_that_moved_meanwhile_changes_nothing(board_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive's update and the deletions are one ref transaction: a ref moved between the
    listing and the transaction fails it whole; the next pass folds what it then finds."""
    hub, done, going, refs = board_hub
    moved, graft = names.attempts_ref(done, 2), git.graft_commit
    elsewhere = refs[names.attempts_ref(going, 1)]

    def graft_then_move(*args, **kw):
        made = graft(*args, **kw)
        sh("git", "update-ref", moved, elsewhere, cwd=hub)  # in the window, as a bug or an operator could
        return made

    monkeypatch.setattr(git, "graft_commit", graft_then_move)
    with pytest.raises(GitError):
        fold(hub)
    assert not rev(hub, ARCHIVE)
    assert attempt_refs(hub) == dict(refs, **{moved: elsewhere})  # no ref deleted, the moved one as it was moved
    monkeypatch.setattr(git, "graft_commit", graft)
    assert fold(hub) == 2 and recreated(hub, f"{ARCHIVE}:{folder(done, 2)}") == elsewhere


def test_a_ref_at_no_commit_is_left_and_named_and_the_rest_fold(board_hub) -> None:
    """A ref written around the guard (`git update-ref` in the hub) at a blob: not folded, said so
    with the ref and how to see and drop it; the task's other attempt folds."""
    hub, done, going, refs = board_hub
    bad = names.attempts_ref(done, 2)
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=hub, input=b"not a commit\n",
                          capture_output=True, check=True).stdout.decode().strip()
    sh("git", "update-ref", bad, blob, cwd=hub)
    lines: list[str] = []
    assert fold(hub, lines=lines) == 1
    assert lines[0] == (f"{bad}: not folded into {ARCHIVE}: {blob} is a blob, not a commit (no push can put it "
                        f"there): see it with `git show {bad}` in the hub, drop it with `git update-ref -d {bad}`")
    assert lines[1] == f"folded the commits of 1 attempt(s) of 1 ended task(s) into {ARCHIVE}"
    assert rev(hub, bad) == blob and not rev(hub, f"{ARCHIVE}:{folder(done, 2)}")
    assert recreated(hub, f"{ARCHIVE}:{folder(done, 1)}") == refs[names.attempts_ref(done, 1)]


@pytest.mark.slow
def test_a_best_of_n_run_s_attempts_fold_and_read_back_as_the_docs_say(hub: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A real best-of-2 run (docs/attempts.md): once its task ended, one pass of the daemon folds
    the runs records and the attempts; the docs' commands list them, diff the loser against the
    winner's base and make the loser's commit again."""
    push_goal(hub, tmp_path, "g", goal(WRONG, RIGHT, select=SELECT), {".gitswarm.yaml": "worker: {backend: command, "
              "command: 'true', network: 'off'}\njudge: {backend: command, command: 'true'}\nretry_backoff: 0\n"})
    lines: list[str] = []
    assert serve(hub, lines, workers=2) == 0, "\n".join(lines)
    parent, kids = the_task(hub)
    assert parent["status"] == "done" and len(kids) == 2
    refs = attempt_refs(hub)
    assert len(refs) == 2
    assert sh("git", "for-each-ref", names.RUNS, cwd=hub).stdout  # the 3 tasks' runs records
    monkeypatch.setattr(runarchive, "FOLD_AFTER", 0)
    passed: list[str] = []
    keeper = Daemon(hub, workers=0, planners=0, name="keeper", log=passed.append)
    try:
        keeper._passes()  # the reclaim, release and fold passes `serve` runs every few seconds
    finally:
        keeper.pool.close()
    assert attempt_refs(hub) == {} and not sh("git", "for-each-ref", names.RUNS, cwd=hub).stdout
    assert f"folded the commits of 2 attempt(s) of 1 ended task(s) into {ARCHIVE}" in passed
    tid = parent["id"]
    listing = sh("git", "--git-dir", str(hub), "ls-tree", f"{ARCHIVE}:{tid[2:4]}/{tid}/", cwd=tmp_path).stdout
    assert [line.split("\t")[1] for line in listing.splitlines()] == ["1", "2"]
    diff = sh("git", "--git-dir", str(hub), "diff", "main~1", f"{ARCHIVE}:{tid[2:4]}/{tid}/1/tree", cwd=tmp_path).stdout
    assert "+wrong" in diff
    loser = refs[names.attempts_ref(tid, 1)]
    again = sh("bash", "-c", f"git --git-dir hub.git cat-file blob {ARCHIVE}:{tid[2:4]}/{tid}/1/commit |\n"
               "  git --git-dir hub.git hash-object -t commit -w --stdin", cwd=tmp_path).stdout.strip()
    assert again == loser  # the docs' pipe, as written
    assert len(sh("git", "--git-dir", "hub.git", "log", "--oneline", ARCHIVE, cwd=tmp_path).stdout.splitlines()) == 1
    assert sh("git", "log", "-1", "--format=%P", loser, cwd=hub).stdout.strip() == rev(hub, "main~1")
    assert f"Gitswarm-Task: {tid}-a1" in sh("git", "log", "-1", "--format=%B", loser, cwd=hub).stdout
