"""A big board stays cheap: the claim walks an ordered queue of open tasks instead of sorting the
board, a fresh client starts from the board as last saved beside the mirror, and the mirror is
packed by `git gc --auto` once loose objects pile up. Real repositories, real git."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from gitswarm import rules, snapshot
from gitswarm import task as T
from gitswarm.board import Board
from gitswarm.state import OpenQueue, State, order

from conftest import hook_form, sh

pytestmark = pytest.mark.slow  # large boards, gc


def tasks_of(n: int, seed: int = 0) -> list[T.Task]:
    rng = random.Random(seed)
    return [T.new_task(f"task {i}", task_id=f"t-{i:08x}", priority=rng.randrange(5),
                       created=f"2026-11-25T08:00:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z")
            for i in range(n)]


def test_the_open_queue_stays_in_claim_order_as_tasks_change():
    rng = random.Random(1)
    current = {t.id: t for t in tasks_of(300)}
    queue = OpenQueue(current.values())
    for _ in range(2000):
        t = current[rng.choice(sorted(current))]
        if t.status == "open":
            new = rules.claim(t, "w")
        elif t.status == "claimed":
            new = rng.choice([rules.release(t), rules.complete(t, "w", "ok")])
        else:
            continue
        queue.update(t, new)
        current[new.id] = new
    assert list(queue) == sorted(order(t) for t in current.values() if t.status == "open")


def test_next_ready_skips_what_is_not_ready_and_sees_what_the_batch_opened():
    a, b, c = tasks_of(3)
    a, b = a.replace(priority=9), b.replace(priority=5, depends_on=(a.id,))
    claimed = rules.claim(c.replace(priority=7), "w")
    board = {t.id: t for t in (a, b, claimed)}
    state = State(board, {}, queue=OpenQueue(board.values()))
    assert state.next_ready(None, None) == a
    state.put(rules.claim(a, "x"))
    assert state.next_ready(None, None) is None  # b waits for a; c is claimed
    state.put(rules.release(claimed))  # released in this batch: claimable in the same batch
    assert state.next_ready(None, None).id == c.id


def test_a_fresh_client_parses_only_what_changed_since_the_saved_board(hub: Path, isolated: Path):
    with Board(str(hub)) as board:
        board.add(tasks_of(600))
        board.refresh()
    saved = json.loads((board.mirror.path / snapshot.FILE).read_text())
    assert len(saved["tasks"]) == 600
    with Board(str(hub)) as other:  # changes the board after it was saved
        claimed = other.claim("w")
    fresh = Board(str(hub))
    fresh.refresh()
    assert fresh.view.parsed == 1  # the claimed task's file, not 600
    assert fresh.find(claimed.id) == claimed
    full = Board(str(hub), cache=isolated / "other-cache")  # no saved board: parses every file
    full.refresh()
    assert full.view.parsed == 600
    assert fresh.tasks() == full.tasks() and [t.id for t in fresh.ready()] == [t.id for t in full.ready()]
    fresh.close(), full.close()


def test_a_damaged_saved_board_is_ignored(hub: Path):
    with Board(str(hub)) as board:
        board.add(tasks_of(600))
        board.refresh()
    (board.mirror.path / snapshot.FILE).write_text('{"format": 1, "tasks": [[')
    with Board(str(hub)) as fresh:
        fresh.refresh()
        assert fresh.view.parsed == 600 and len(fresh.tasks()) == 600


def loose(repo: Path) -> dict[str, int]:
    out = subprocess.run(["git", "count-objects", "-v"], cwd=repo, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split(": ") for line in out.splitlines()) if v.isdigit()}


def pile_up_loose_objects(board: Board) -> None:
    """4,000 loose objects in the board's mirror, reachable from one of its refs; gc.auto low and
    gc in the foreground, so that the next `git gc --auto` packs them before it returns."""
    import pygit2

    for key, value in (("gc.auto", "256"), ("gc.autoDetach", "false")):
        subprocess.run(["git", "config", key, value], cwd=board.mirror.path, check=True)
    repo = board.mirror.repo
    builder = repo.TreeBuilder()
    for i in range(4000):
        builder.insert(f"f{i}", repo.create_blob(b"filler %d\n" % i), 0o100644)
    sig = pygit2.Signature("t", "t@x")
    filler = repo.create_commit(None, sig, sig, "filler", builder.write(), [])
    repo.create_reference("refs/gitswarm/hub/filler", filler)
    assert loose(board.mirror.path)["count"] >= 4000


def packed(repo: Path) -> bool:
    after = loose(repo)
    return after["count"] < 50 and after["packs"] >= 1 and after["in-pack"] >= 4000


def test_the_mirror_is_packed_once_loose_objects_pile_up(hub: Path):
    board = Board(str(hub))
    board.add(tasks_of(3))
    pile_up_loose_objects(board)
    board.view.maintain_every = 10**6
    board.claim("w")
    assert not packed(board.mirror.path)  # not yet: maintenance comes every maintain_every moves
    board.view.maintain_every = 1
    board.claim("w")
    assert packed(board.mirror.path)
    assert board.find(board.claim("w").id).status == "claimed"  # the reopened mirror works
    board.close()


def test_a_board_that_only_fetches_maintains_its_mirror_too(hub: Path, isolated: Path):
    writer, watcher = Board(str(hub)), Board(str(hub), cache=isolated / "watcher")
    watcher.refresh()
    pile_up_loose_objects(watcher)
    watcher.view.maintain_every = 3  # moves of its tip: its first fetch was the first
    writer.add([T.new_task("one")])
    watcher.refresh()
    assert not packed(watcher.mirror.path)
    writer.add([T.new_task("two")])
    watcher.refresh()
    assert packed(watcher.mirror.path)
    writer.close(), watcher.close()


def test_a_board_takes_a_fresh_libgit2_handle_every_few_moves(hub: Path, isolated: Path):
    """libgit2 keeps every delta base it resolved per open pack (up to 16 MiB each): a long-lived
    Board drops them by reopening its mirror; reads and writes go on across the swap."""
    writer, watcher = Board(str(hub)), Board(str(hub), cache=isolated / "watcher")
    watcher.view.reopen_every = 2
    handles: list = []  # held, so that no two handles ever share an id()
    for i in range(6):
        writer.add([T.new_task(f"task {i}")])
        watcher.refresh()
        handles.append(watcher.mirror.repo)
        t = watcher.claim("w")
        assert t is not None and watcher.find(t.id).status == "claimed"
        handles.append(watcher.mirror.repo)
    assert len({id(h) for h in handles}) >= 4
    assert len(watcher.tasks()) == 6 and all(t.status == "claimed" for t in watcher.tasks())
    writer.close(), watcher.close()


def test_a_replaced_libgit2_handle_is_freed_without_the_cyclic_collector(hub: Path):
    """pygit2's Repository points at itself through helper objects; the mirror's handles do not,
    so a handle the Board replaced goes (with its packs' caches) as soon as nothing uses it."""
    import gc
    import weakref

    with Board(str(hub)) as board:
        board.add(tasks_of(2))
        gc.disable()
        try:
            old = weakref.ref(board.mirror.repo)
            board.mirror.reopen()
            assert old() is None
        finally:
            gc.enable()
        assert board.claim("w") is not None


def _blobs_in_17(count: int) -> dict[str, str]:
    """`count` file contents whose blob ids start with 17: git estimates a repository's loose
    objects from the files in objects/17 (gc.auto's 6,700 = 27 there)."""
    import pygit2

    found, i = {}, 0
    while len(found) < count:
        text = f"filler {i}\n"
        if str(pygit2.hash(text.encode())).startswith("17"):
            found[f"f{i}"] = text
        i += 1
    return found


@pytest.mark.parametrize("form", ["client", "none"], ids=["c-client", "bash"])
def test_pushes_pack_the_hub_when_due_and_start_no_gc_before(hub: Path, tmp_path: Path, form: str):
    """init keeps `git gc --auto` out of receive-pack (receive.autoGC false: a git process after every
    push, ~1.5 ms); post-receive starts it instead, the C client only when git's estimate at its
    defaults finds work (more than 27 loose objects in objects/17), bash every time: a push of a
    few objects starts no gc, one past the threshold packs the hub (gc in the foreground here)."""
    hook_form(hub, form)
    assert sh("git", "config", "receive.autoGC", cwd=hub).stdout.strip() == "false"
    sh("git", "config", "gc.autoDetach", "false", cwd=hub)
    work = tmp_path / "work"
    sh("git", "init", "-q", "-b", "main", str(work))

    def push(files: dict[str, str], trace: Path) -> None:
        for name, text in files.items():
            (work / name).write_text(text)
        sh("git", "add", "-A", cwd=work)
        sh("git", "commit", "-q", "-m", f"{len(files)} files", cwd=work)
        env = dict(os.environ, GIT_TRACE2_EVENT=str(trace))
        subprocess.run(["git", "push", "-q", str(hub), "HEAD:refs/heads/main"], cwd=work, env=env, check=True)

    def gcs(trace: Path) -> int:
        return sum(1 for line in trace.read_text().splitlines()
                   if json.loads(line)["event"] == "start" and json.loads(line)["argv"][1:3] == ["gc", "--auto"])

    few = _blobs_in_17(40)
    push(dict(list(few.items())[:10]), tmp_path / "few.json")
    assert gcs(tmp_path / "few.json") == (0 if form == "client" else 1)
    assert loose(hub)["packs"] == 0 and len(list((hub / "objects" / "17").iterdir())) == 10
    push(few, tmp_path / "due.json")  # 30 more in objects/17: past git's estimate of 6,700
    assert gcs(tmp_path / "due.json") == 1
    after = loose(hub)
    assert after["packs"] >= 1 and after["in-pack"] >= 40 and after["count"] == 0, after


def test_libgit2_keeps_no_objects_and_a_few_mib_of_packs(hub: Path):
    """A daemon reads new commits and trees on every event; with libgit2's default 256 MiB cache
    its RSS grew ~9 MB per 1,000 tasks, and with its default 8 GiB of pack files kept mapped
    another ~1.5 MB (benchmarks/RESULTS.md, Memory)."""
    import pygit2

    from gitswarm import git

    with Board(str(hub)) as board:
        board.add(tasks_of(3))
        board.refresh()
        assert pygit2.settings.cached_memory[0] == 0
        assert pygit2.settings.mwindow_size == git.PACK_WINDOW_BYTES <= 16 * 1024 * 1024
        assert pygit2.settings.mwindow_mapped_limit == git.PACK_MAPPED_BYTES <= 64 * 1024 * 1024
        assert 0 < pygit2.settings.mwindow_file_limit == git.PACK_FILES_OPEN


def test_a_board_of_many_tasks_holds_one_copy_of_each_name(hub: Path):
    """Ids, goal and worker names, statuses and result keys are parsed again with every change
    to a task; held once each, the board's memory follows its tasks' text, not its changes."""
    with Board(str(hub)) as board:
        board.add(tasks_of(20))
        for i in range(20):
            t = board.claim("w-1")
            assert t is not None
            board.complete(t.id, "w-1", f"done {i}", token=t.claim.token)
    with Board(str(hub)) as fresh:  # reads every task from git
        fresh.refresh()
        done = fresh.tasks()
    assert len(done) == 20 and all(t.status == "done" for t in done)
    assert len({id(t.status) for t in done}) == 1
    assert len({id(t.result["worker"]) for t in done}) == 1
    assert len({id(k) for t in done for k in t.result if k == "summary"}) == 1
    assert all(t.id is T.parse(T.dump(t), "again").id for t in done)
