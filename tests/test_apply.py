"""The hub applies board pushes (gitswarm/applier.py, git's proc-receive hook for refs/for/).

Real hubs, real `git push` from clones (hand-made board commits, tests/test_guard.py's helpers)
and from Boards, the hook run in process and by a real resident guard. What is shown: a push built
on an old tip is rebased onto the new one when its files did not change meanwhile; a commit whose
file did change is left out and named (or the whole push refused when it lands work); every rule of
the guard holds for a push made through refs/for/ (the same refusals, guard up or down, and when
the guard dies while it holds the push); no ref under refs/for/ is ever created; a hub that does not
apply (an old hub, a kept proc-receive hook of another's) gets plain pushes from a Board.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import test_guard as G
from gitswarm import guardserver, names, rules
from gitswarm.board import Board
from gitswarm.task import new_task

from conftest import hook_form, sh
from taskfiles import A, B, PA, PB

FOR_TASKS = "HEAD:refs/for/heads/tasks"


def _push(clone: Path, *refspecs: str) -> subprocess.CompletedProcess[str]:
    return sh("git", "push", "origin", *(refspecs or (FOR_TASKS,)), cwd=clone, check=False)


def _refs(hub: Path) -> list[str]:
    return sh("git", "for-each-ref", "--format=%(refname)", cwd=hub).stdout.split()


def _two_open_tasks(clone: Path, hub: Path):
    """Tasks A and B open on the hub, the clone at that tip; (A, B)."""
    a, b = G.mk(A), G.mk(B)
    G.commit(clone, "add", [a, b])
    G.land(clone, hub)
    return a, b


def _moved_by_another(hub: Path, tmp_path: Path, make) -> str:
    """Another clone changes the board (`make(clone)` commits) and pushes plainly: the new tip."""
    other = tmp_path / "other"
    sh("git", "clone", "-q", "-b", "tasks", str(hub), str(other))
    sh("git", "config", "user.email", "o@example.com", cwd=other)
    sh("git", "config", "user.name", "o", cwd=other)
    make(other)
    proc = sh("git", "push", "origin", "HEAD:refs/heads/tasks", cwd=other, check=False)
    assert proc.returncode == 0, proc.stderr
    return G.tip(hub)


# ---------------------------------------------------------------- in order, rebased

def test_a_push_on_an_old_tip_is_rebased_when_its_files_did_not_change(board_clone, hub, tmp_path):
    a, b = _two_open_tasks(board_clone, hub)
    moved = _moved_by_another(hub, tmp_path, lambda c: G.commit(c, "claim", [rules.claim(a, "alice")], "alice", 1))
    G.commit(board_clone, "claim", [rules.claim(b, "bob")], "bob", 1)  # on the old tip: a plain push loses
    mine = G.head(board_clone)
    proc = _push(board_clone)
    assert proc.returncode == 0, proc.stderr
    tip = G.tip(hub)
    assert tip != mine and sh("git", "rev-parse", f"{tip}~1", cwd=hub).stdout.strip() == moved
    assert f"gitswarm: applied refs/heads/tasks {tip}" in proc.stderr  # what the pusher learns
    assert b"worker: alice" in G.hub_file(hub, PA) and b"worker: bob" in G.hub_file(hub, PB)
    same = "%an %ae %at %B"  # author, date and message as pushed: `git log` reads the same
    assert sh("git", "log", "-1", f"--format={same}", tip, cwd=hub).stdout == \
        sh("git", "log", "-1", f"--format={same}", mine, cwd=board_clone).stdout
    assert not [r for r in _refs(hub) if r.startswith(names.APPLY)]
    spooled = b"".join(p.read_bytes() for p in (hub / "gitswarm" / "spool").iterdir())
    assert b"refs/heads/tasks" in spooled and names.APPLY.encode() not in spooled  # events name the branch


def test_a_commit_whose_file_changed_is_left_out_and_the_rest_applied(board_clone, hub, tmp_path):
    a, b = _two_open_tasks(board_clone, hub)
    _moved_by_another(hub, tmp_path, lambda c: G.commit(c, "claim", [rules.claim(a, "alice")], "alice", 1))
    G.commit(board_clone, "claim", [rules.claim(a, "bob")], "bob", 1)  # the same task: a real conflict
    lost = G.head(board_clone)
    G.commit(board_clone, "claim", [rules.claim(b, "carol")], "carol", 1)
    proc = _push(board_clone)
    assert proc.returncode == 0, proc.stderr
    assert f"gitswarm: dropped {lost} {PA}: changed since the commit's parent" in proc.stderr
    assert b"worker: alice" in G.hub_file(hub, PA) and b"worker: carol" in G.hub_file(hub, PB)
    assert "bob" not in sh("git", "log", "--format=%B", "tasks", cwd=hub).stdout


def test_a_push_whose_every_commit_is_left_out_moves_its_other_refs(board_clone, hub, tmp_path):
    """Its claims lost to another's: no refusal (the pusher would fetch, back off and push again),
    the commits named, `tasks` left where it is, its heartbeat ref moved."""
    a, _ = _two_open_tasks(board_clone, hub)
    moved = _moved_by_another(hub, tmp_path, lambda c: G.commit(c, "claim", [rules.claim(a, "alice")], "alice", 1))
    G.commit(board_clone, "claim", [rules.claim(a, "bob")], "bob", 1)
    lost = G.head(board_clone)
    beat = sh("git", "commit-tree", "-m", "beat", "4b825dc642cb6eb9a060e54bf8d69288fbee4904", cwd=board_clone).stdout.strip()
    proc = sh("git", "push", "--porcelain", "origin", f"HEAD:{names.APPLY}heads/tasks",
              f"{beat}:{names.apply_ref(names.heartbeat_ref('bob'))}", cwd=board_clone, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"gitswarm: dropped {lost} {PA}: changed since the commit's parent" in proc.stderr
    assert f"gitswarm: applied refs/heads/tasks {moved}" in proc.stderr
    assert G.tip(hub) == moved and sh("git", "rev-parse", names.heartbeat_ref("bob"), cwd=hub).stdout.strip() == beat


def test_a_push_with_nothing_new_is_refused_as_stale(board_clone, hub, tmp_path):
    a, _ = _two_open_tasks(board_clone, hub)
    old = G.head(board_clone)
    G.commit(board_clone, "claim", [rules.claim(a, "alice")], "alice", 1)
    G.accept(board_clone, hub)
    proc = sh("git", "push", "origin", f"{old}:{names.APPLY}heads/tasks", cwd=board_clone, check=False)
    assert proc.returncode != 0 and "gitswarm: stale: refs/heads/tasks moved" in proc.stderr, proc.stderr


def test_a_landing_is_whole_or_refused_and_main_only_fast_forwards(hub, tmp_path):
    """A push that lands work takes no commit out; main moves only forward, unless the pusher
    lets the hub replay its work (test_land.py: the replay and the completion naming it)."""
    with Board(str(hub)) as board, Board(str(hub), cache=tmp_path / "other") as other:
        t, u = board.add([new_task("a", priority=2), new_task("b", priority=1)])
        board.claim("alice")
        other.claim("bob")
        base = board.fetch_branch("main")
        first = _work(board, base, t.id, "alice", "a.txt")
        board.land(t.id, "alice", first, "a")
        stale = _work(other, base, u.id, "bob", "b.txt")
        before = G.tip(hub)
        with pytest.raises(Exception) as refused:  # no replay allowed: the hub refuses, the board says so
            other.land(u.id, "bob", stale, "b")
        assert "main" in str(refused.value)
        assert sh("git", "rev-parse", "main", cwd=hub).stdout.strip() == first and G.tip(hub) == before


def _work(board: Board, base: str | None, task_id: str, worker: str, name: str) -> str:
    from gitswarm import git

    return git.write_commit(board.mirror.repo, base, {name: b"work\n"},
                            f"work of {worker}\n\nGitswarm-Task: {task_id}\n", (worker, f"{worker}@example.com"))


# ---------------------------------------------------------------- the guard's rules, through refs/for/

@pytest.mark.parametrize("name", ["done->open", "claimed->done-by-another-worker", "claimed->claimed-stolen",
                                  "title-changed"])
@pytest.mark.parametrize("mode", ["in-process", "guard"])
def test_the_rules_hold_for_a_push_the_hub_applies(board_clone, hub, name, mode):
    guard = guardserver.start(hub) if mode == "guard" else None
    try:
        status, make, rule = G.ILLEGAL[name]
        old = G.seed(board_clone, hub, status)
        action, new, worker, token = make(old)
        G.commit(board_clone, action, [new], worker, token)
        before = G.tip(hub)
        proc = _push(board_clone)
        assert proc.returncode != 0 and "(hook declined)" in proc.stderr, proc.stderr
        said = [ln for ln in proc.stderr.splitlines() if "gitswarm: rejected refs/heads/tasks: " in ln]
        assert len(said) == 1 and PA in said[0] and rule in said[0], proc.stderr
        assert G.tip(hub) == before and not [r for r in _refs(hub) if r.startswith(names.APPLY)]
    finally:
        guardserver.stop(guard)


@pytest.mark.parametrize("refspecs, said", [
    (["HEAD:refs/for/heads/feature"], "the hub applies refs/for/heads/tasks"),
    (["HEAD:refs/for/gitswarm/runs/t-aa/1"], "the hub applies refs/for/heads/tasks"),
    (["HEAD:refs/for/replay/heads/tasks"], "the hub applies refs/for/heads/tasks"),
    ([":refs/for/heads/tasks"], ""),
    (["HEAD:refs/for/heads/main", "HEAD:refs/for/replay/heads/main"], "each once a push"),
    (["HEAD:refs/for/gitswarm/heartbeats/-w"], "the hub applies refs/for/heads/tasks"),
])
def test_refs_the_hub_does_not_apply_are_refused(board_clone, hub, refspecs, said):
    _two_open_tasks(board_clone, hub)
    before = sh("git", "for-each-ref", cwd=hub).stdout
    proc = _push(board_clone, *refspecs)
    assert proc.returncode != 0 and said in proc.stderr, proc.stderr
    assert sh("git", "for-each-ref", cwd=hub).stdout == before


def test_main_through_refs_for_must_fast_forward(board_clone, hub, tmp_path):
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    sh("git", "commit", "-q", "--allow-empty", "-m", "first", cwd=work)
    assert _push(work, "HEAD:refs/heads/main").returncode == 0
    sh("git", "commit", "-q", "--allow-empty", "--amend", "-m", "rewritten", cwd=work)
    proc = _push(work, "HEAD:refs/for/heads/main")
    assert proc.returncode != 0 and "gitswarm: stale: refs/heads/main moved" in proc.stderr, proc.stderr


def test_a_hub_that_does_not_apply_refuses_refs_for_and_a_board_pushes_plainly(hub, board_clone):
    sh("git", "config", "--unset", "receive.procReceiveRefs", cwd=hub)
    _two_open_tasks(board_clone, hub)
    proc = _push(board_clone)
    assert proc.returncode != 0 and "this hub does not apply pushes" in proc.stderr, proc.stderr
    assert not [r for r in _refs(hub) if r.startswith(names.APPLY)]
    with Board(str(hub)) as board:
        assert board.claim("alice") is not None and not board.mirror.applies


# ---------------------------------------------------------------- the resident guard holds the push

def _holder_of(lock: Path) -> int:
    """The pid of the process waiting for (or holding) the hub's apply lock, other than us."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if int(pid) == os.getpid():
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock) for fd in fds):
                    return int(pid)
            except OSError:
                continue
        time.sleep(0.02)
    raise AssertionError("no process came to apply the push")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(os.environ.get("GITSWARM_TEST_GUARD") == "1", reason="kills a guard of its own")
@pytest.mark.parametrize("client", ["c", "python"])
@pytest.mark.parametrize("good", [True, False], ids=["good-push", "bad-push"])
def test_the_guard_applies_and_a_guard_killed_while_it_holds_the_push(board_clone, hub, tmp_path, good, client):
    """The guard's child takes git's conversation (handed over by the C client init builds, or by
    gitswarm/hookclient.py); killed with the guard, the push fails (never applied unchecked, no ref
    moved) and says to push again; pushed again, the hook applies it in its own process, with the
    same rules."""
    if client == "python":
        hook_form(hub, "none")
    a, b = _two_open_tasks(board_clone, hub)
    if good:
        G.commit(board_clone, "claim", [rules.claim(b, "bob")], "bob", 1)
    else:
        G.commit(board_clone, "claim", [rules.claim(b, "bob")], "carol", 1)  # trailers name another worker
    guard = guardserver.start(hub)
    lock = hub / "gitswarm" / "apply.lock"
    lock.touch()
    held = os.open(lock, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        pushing = subprocess.Popen(["git", "push", "origin", FOR_TASKS], cwd=board_clone, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        applier = _holder_of(lock)
        assert _parent(applier) == guard.pid  # the guard's child, not a hook process of its own
        before = G.tip(hub)
        os.killpg(guard.pid, signal.SIGKILL)
        guard.wait()
        _, err = pushing.communicate(timeout=120)
        assert pushing.returncode != 0 and "guard died during the push; push again" in err, err
        assert G.tip(hub) == before
    finally:
        os.close(held)
        guardserver.stop(guard)
    proc = _push(board_clone)  # no guard now: applied by the hook's own process
    if good:
        assert proc.returncode == 0, proc.stderr
        assert b"worker: bob" in G.hub_file(hub, PB)
    else:
        assert proc.returncode != 0 and "the commit's trailers say carol" in proc.stderr, proc.stderr
        assert G.tip(hub) == before
