"""The landing train (issue 12): workers hand their commits to the queue, one train tests batches
and lands them; main only ever points at trees that passed the goal's test. Real hubs, real pools
and workers, real sandboxed test runs, real processes killed with SIGKILL.

Most scenarios run in two phases, so that the batches are what the test says: a pool without the
train works the tasks (they wait in the queue, as after a hub restart: the queue is the board's
`landing` tasks and their land refs, nothing else), then a pool with only the train lands them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gitswarm.board import Board
from gitswarm.pool import Pool
from gitswarm.task import new_task
from gitswarm import names

from conftest import age_train, sh


CLEAN = "test ! -e broken"  # the goal's test: fails once a task has written `broken`


def project(hub: Path, tmp_path: Path, tasks: dict[str, str], test: str = CLEAN, extra: str = "",
            add: list[str] | None = None) -> Path:
    """main holds goal g whose tasks (id -> run command) are on the board (those in `add` when
    given); its test is `test`."""
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    items = "".join(f"  - id: {i}\n    title: Task {i}\n    run: {run!r}\n" for i, run in tasks.items())
    (clone / "goals" / "g.md").write_text(f"---\ntest: {test!r}\n{extra}tasks:\n{items}---\nThe goal.\n")
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", "start", cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    with Board(str(hub)) as board:
        board.add([new_task(f"Task {i}", goal="g", task_id=i) for i in (tasks if add is None else add)])
    return clone


def files(n: int, broken: tuple[int, ...] = ()) -> dict[str, str]:
    """n tasks, each writing its own file; those in `broken` also write `broken`."""
    return {f"t-f{i}": f"echo {i} > f{i}.txt" + ("; touch broken" if i in broken else "") for i in range(n)}


def statuses(hub: Path) -> dict[str, str]:
    with Board(str(hub)) as board:
        board.refresh()
        return {t.id: t.status for t in board.tasks()}


def tasks(hub: Path) -> dict:
    with Board(str(hub)) as board:
        board.refresh()
        return {t.id: t for t in board.tasks()}


def until(predicate, what: str, timeout: float = 120.0, lines: list[str] | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + ("\n" + "\n".join(lines[-40:]) if lines else ""))


def work(hub: Path, n: int, name: str = "wk") -> None:
    """Phase one: a pool of n workers, no train, until no task is open or claimed."""
    pool = Pool(str(hub), workers=n, planners=0, name=name, log=lambda _: None)
    pool.start()
    try:
        until(lambda: not {"open", "claimed"} & set(statuses(hub).values()), "the workers to hand off")
    finally:
        pool.close()


def train(hub: Path, lines: list[str], slots: int = 1, name: str = "tr", workers: int = 0) -> Pool:
    pool = Pool(str(hub), workers=workers, planners=0, name=name, log=lines.append, train=True, train_slots=slots,
                train_lease=30)
    pool.start()
    return pool


def land_all(hub: Path, lines: list[str], **kw) -> None:
    """Phase two: a pool with the train until the queue is empty."""
    pool = train(hub, lines, **kw)
    try:
        until(lambda: "landing" not in statuses(hub).values(), "the train to empty the queue", lines=lines)
    finally:
        pool.close()


def main_tips(hub: Path) -> list[str]:
    """Every commit main pointed to, oldest first (the hub's reflog), but the first (the goal's push)."""
    shas = sh("git", "reflog", "--format=%H", "refs/heads/main", cwd=hub).stdout.split()
    return list(reversed(shas))[1:]


def assert_main_green(hub: Path) -> None:
    """Every tip main pointed to since the goal passed the test: its tree holds no `broken`, and
    its last commit says what was tested."""
    tips = main_tips(hub)
    assert tips
    for tip in tips:
        assert "broken" not in sh("git", "ls-tree", "--name-only", tip, cwd=hub).stdout.split(), tip
        message = sh("git", "log", "-1", "--format=%B", tip, cwd=hub).stdout
        assert "Gitswarm-Tested: passed in " in message and "command: " in message and CLEAN in message, message


def runs(lines: list[str]) -> int:
    return sum(1 for line in lines if line.startswith("train: testing "))


def assert_landed_once(hub: Path, ids) -> None:
    """Each task done with its own commit on main, and main holds exactly one commit per task."""
    board = tasks(hub)
    named = sh("git", "log", "--format=%(trailers:key=Gitswarm-Task,valueonly,separator=%x20)", "main",
               cwd=hub).stdout.split()
    for i in ids:
        t = board[i]
        assert t.status == "done", t
        commit = t.result["commit"]
        assert sh("git", "merge-base", "--is-ancestor", commit, "main", cwd=hub, check=False).returncode == 0
        assert sh("git", "log", "-1", "--format=%(trailers:key=Gitswarm-Task,valueonly)", commit,
                  cwd=hub).stdout.split() == [i]
        assert named.count(i) == 1, (i, named)


def test_a_queued_batch_lands_after_one_test_run(hub, tmp_path):
    ids = files(5)
    project(hub, tmp_path, ids)
    work(hub, 5)
    assert set(statuses(hub).values()) == {"landing"}  # handed off: nothing on main yet
    assert len(sh("git", "for-each-ref", names.LAND, cwd=hub).stdout.splitlines()) == 5
    assert main_tips(hub) == []
    lines: list[str] = []
    land_all(hub, lines)
    assert runs(lines) == 1, "\n".join(lines)
    assert_landed_once(hub, ids)
    assert len(main_tips(hub)) == 1  # one push: the batch, with its completions
    assert_main_green(hub)
    last = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout
    assert "batch #1 of 5 task(s); train tr-train" in last
    land_commit = sh("git", "log", "-1", "--format=%B", "tasks", cwd=hub).stdout
    assert "Gitswarm-Action: land" in land_commit and "Gitswarm-Worker: tr-train" in land_commit


@pytest.mark.parametrize("broken,slots", [((3,), 1), ((1, 6), 1), ((1, 6), 3)],
                         ids=["one-culprit", "two-culprits", "two-culprits-three-slots"])
def test_a_red_batch_lands_all_but_its_culprits(hub, tmp_path, broken, slots):
    """Bisection finds every culprit; with 3 slots it tests 3 prefixes at once (a 4-section)."""
    ids = files(8, broken)
    project(hub, tmp_path, ids)
    work(hub, 4)
    lines: list[str] = []
    land_all(hub, lines, slots=slots)
    culprits = {f"t-f{i}" for i in broken}
    board = tasks(hub)
    for i in culprits:
        t = board[i]
        assert t.status == "failed", t
        assert "the goal's tests fail with this task's commit" in t.result["reason"] and "exit 1" in t.result["reason"]
        kept = sh("git", "for-each-ref", "--format=%(objectname)", f"{names.LAND}{i}/", cwd=hub).stdout.split()
        assert kept == [t.result["commit"]]  # kept: the next attempt starts from it
    assert_landed_once(hub, set(ids) - culprits)
    assert_main_green(hub)
    if slots == 1:  # one run, then a bisection per culprit
        assert runs(lines) <= 1 + 3 * len(broken) + 2, "\n".join(lines)


def test_a_retried_culprit_starts_from_its_kept_commit(hub, tmp_path):
    """A rejected task goes back to the board with its commit kept; the worker that takes it again
    starts from that work (here its command fixes what the first attempt broke)."""
    ids = {"t-fix": "if [ -e f.txt ]; then rm broken; else echo x > f.txt; touch broken; fi"}
    project(hub, tmp_path, ids, extra="land: train\n")
    work(hub, 1)
    lines: list[str] = []
    land_all(hub, lines)
    assert statuses(hub) == {"t-fix": "failed"}
    with Board(str(hub)) as board:
        board.reopen("t-fix")
    age_train(hub, 31)  # the first pool's train (lease 30 s) is gone: its lease lapses without a wait
    log: list[str] = []
    pool = Pool(str(hub), workers=1, planners=0, name="again", log=log.append, train=True)
    pool.start()
    try:
        until(lambda: statuses(hub) == {"t-fix": "done"}, "the retry to land", lines=log)
    finally:
        pool.close()
    assert any("starts from its earlier work" in line for line in log), log
    assert sh("git", "show", "main:f.txt", cwd=hub).stdout == "x\n"
    assert_landed_once(hub, ids)
    assert_main_green(hub)


def test_a_commit_that_does_not_replay_goes_back_to_a_worker(hub, tmp_path):
    """Two tasks write one file differently on the same base: the second no longer replays once
    the first landed; it goes back to the board (open, its commit kept), a worker redoes it on the
    new main, and it lands."""
    ids = {"t-one": "echo one > f.txt", "t-two": "echo two > f.txt"}
    project(hub, tmp_path, ids)
    work(hub, 2)
    lines: list[str] = []
    pool = train(hub, lines, workers=1)
    try:
        until(lambda: statuses(hub) == {"t-one": "done", "t-two": "done"}, "both to land", lines=lines)
    finally:
        pool.close()
    assert any("sent back" in line and "does not replay onto main" in line for line in lines), "\n".join(lines)
    history = sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout
    assert "send back t-" in history
    assert_landed_once(hub, ids)
    assert_main_green(hub)


def test_a_flaky_test_is_run_again_before_bisecting(hub, tmp_path, monkeypatch):
    """train: {retry_red: 1}: a red batch runs once more; green then, it lands whole."""
    monkeypatch.setenv("GITSWARM_SANDBOX", "off")  # the test keeps its state outside the worktree
    state = tmp_path / "flaky-once"
    ids = files(4)
    project(hub, tmp_path, ids, test=f"test -e {state} || {{ touch {state}; exit 1; }}",
            extra="train: {retry_red: 1}\n")
    work(hub, 4)
    lines: list[str] = []
    land_all(hub, lines)
    assert runs(lines) == 2, "\n".join(lines)
    assert any("running it again (1 of 1) before bisecting" in line for line in lines), "\n".join(lines)
    assert not any("rejected" in line for line in lines), "\n".join(lines)
    assert_landed_once(hub, ids)


def test_a_hung_test_is_killed_at_its_timeout_and_counted_red(hub, tmp_path):
    tag = f"sleep 3600.{os.getpid()}"
    ids = {"t-ok": "echo ok > ok.txt", "t-hang": "touch hang"}
    project(hub, tmp_path, ids, test=f"if [ -e hang ]; then {tag}; fi; {CLEAN}", extra="test_timeout: 2s\n")
    work(hub, 2)
    lines: list[str] = []
    land_all(hub, lines)
    board = tasks(hub)
    assert board["t-ok"].status == "done"
    assert board["t-hang"].status == "failed" and "timed out after 2s" in board["t-hang"].result["reason"]
    assert subprocess.run(["pgrep", "-f", tag], capture_output=True).returncode == 1  # killed whole


def test_main_moving_under_the_train_cancels_its_test(hub, tmp_path):
    """Someone pushes to main while a batch is in test: the test is killed, the batch replayed on
    the new tip and tested again; what lands sits on top of that push."""
    tag = f"sleep 3.{os.getpid()}"
    ids = files(2)
    clone = project(hub, tmp_path, ids, test=f"{tag}; {CLEAN}")
    work(hub, 2)
    lines: list[str] = []
    pool = train(hub, lines)
    try:
        until(lambda: runs(lines) >= 1, "the first test run", lines=lines)
        (clone / "human.txt").write_text("by hand\n")
        sh("git", "add", "-A", cwd=clone)
        sh("git", "commit", "-q", "-m", "a change by hand", cwd=clone)
        sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
        until(lambda: "landing" not in statuses(hub).values(), "the batch to land", lines=lines)
    finally:
        pool.close()
    assert any("under the train: cancelling 1 batch(es) in test" in line for line in lines), "\n".join(lines)
    assert runs(lines) == 2, "\n".join(lines)
    assert sh("git", "show", "main:human.txt", cwd=hub).stdout == "by hand\n"
    assert_landed_once(hub, ids)
    tested = sh("git", "log", "-1", "--format=%B", "main", cwd=hub).stdout
    assert "Gitswarm-Tested: passed" in tested


def speculate(hub: Path, tmp_path: Path, monkeypatch, broken: tuple[int, ...], ended: dict[str, str]) -> list[str]:
    """Two slots: t-f0 is handed off and in test; t-f1 is handed off then and tested on top of
    it. The first batch's test waits for a flag (a folder shown read-only in the sandbox) set
    once the second batch is in test. Runs until the tasks are as `ended`; the train's log."""
    flags = tmp_path / "flags"
    flags.mkdir()
    monkeypatch.setenv("GITSWARM_SANDBOX_PATHS", str(flags))
    project(hub, tmp_path, files(2, broken), test=f"while [ ! -e {flags}/go ]; do sleep 0.1; done; {CLEAN}",
            add=["t-f0"])
    work(hub, 1, name="wk1")
    lines: list[str] = []
    pool = train(hub, lines, slots=2)
    try:
        until(lambda: runs(lines) >= 1, "the first batch in test", lines=lines)
        with Board(str(hub)) as board:
            board.add([new_task("Task t-f1", goal="g", task_id="t-f1")])
        work(hub, 1, name="wk2")
        until(lambda: runs(lines) >= 2, "the second batch in test", lines=lines)
        (flags / "go").touch()
        until(lambda: statuses(hub) == ended, f"the tasks to end as {ended}", lines=lines)
    finally:
        pool.close()
    assert "(speculative)" in [line for line in lines if line.startswith("train: testing")][1], "\n".join(lines)
    return lines


def test_speculation_tests_the_next_batch_on_top_of_the_one_in_test(hub, tmp_path, monkeypatch):
    """train_slots 2: a task handed off while a batch is in test is tested on top of it at once,
    and lands right after it without a test run of its own on main."""
    lines = speculate(hub, tmp_path, monkeypatch, (), {"t-f0": "done", "t-f1": "done"})
    assert runs(lines) == 2, "\n".join(lines)
    assert_landed_once(hub, ["t-f0", "t-f1"])
    assert_main_green(hub)


def test_a_red_batch_throws_away_the_speculation_on_top_of_it(hub, tmp_path, monkeypatch):
    """The batch in test goes red while the next is tested on top of it: that one is thrown away
    and tested again once the culprit is out; main never points at the red tree."""
    lines = speculate(hub, tmp_path, monkeypatch, (0,), {"t-f0": "failed", "t-f1": "done"})
    # the first batch, the speculation thrown away with it, main by itself (is t-f0 to blame?), t-f1 again
    assert runs(lines) == 4, "\n".join(lines)
    assert_landed_once(hub, ["t-f1"])
    assert_main_green(hub)


def start_train(hub: Path, tmp_path: Path, name: str, lease: int = 600) -> subprocess.Popen:
    """A pool of its own, with no worker but the train, on a lease of 10 minutes unless told: it is
    taken over only once the test lets that time pass (conftest.age_train), never by a wait."""
    return subprocess.Popen([sys.executable, "-m", "gitswarm", "worker", str(hub), "--workers", "0",
                             "--roles", "worker", "--train", "--train-lease", f"{lease}s", "--id", name],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)


def held_until(flags: Path) -> str:
    """A goal's test that runs until the test touches `flags`/go (a folder shown read-only in the
    sandbox), so that a train is stopped or killed while it runs; pgrep finds it by that path."""
    return f"while [ ! -e {flags}/go ]; do sleep 0.05; done"


def running(what: str) -> bool:
    return subprocess.run(["pgrep", "-f", what], capture_output=True).returncode == 0


def flags_folder(tmp_path: Path, monkeypatch) -> Path:
    flags = tmp_path / "flags"
    flags.mkdir()
    monkeypatch.setenv("GITSWARM_SANDBOX_PATHS", str(flags))
    return flags


def test_a_train_killed_mid_test_is_taken_over_and_nothing_lands_twice(hub, tmp_path, monkeypatch):
    flags = flags_folder(tmp_path, monkeypatch)
    ids = files(3)
    project(hub, tmp_path, ids, test=f"{held_until(flags)}; {CLEAN}")
    work(hub, 3)

    first = start_train(hub, tmp_path, "first")
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(first.stderr), daemon=True)
    reader.start()
    until(lambda: running(f"{flags}/go"), "the test to start", lines=seen)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert "landing" in statuses(hub).values()
    (flags / "go").touch()  # the dead train's test ends; the next one's passes at once
    age_train(hub, 601)  # the dead train has been silent longer than its lease
    second = start_train(hub, tmp_path, "second")
    try:
        until(lambda: "landing" not in statuses(hub).values(), "the second train to land the queue")
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    assert "lease lapsed" in err and "taking the train over" in err, err
    assert_landed_once(hub, ids)
    assert_main_green(hub)
    holders = sh("git", "log", "--format=%(trailers:key=Gitswarm-Train,valueonly)", names.TRAIN, cwd=hub).stdout
    assert {"first-train", "second-train"} <= set(holders.split())


def test_a_train_that_lost_its_lease_mid_test_waits_to_take_it_back(hub, tmp_path, monkeypatch):
    """A train frozen (SIGSTOP) past its lease while it bisects loses the train to another; woken
    while its test still runs, it finds the lease gone, kills its test and waits. When the other
    dies, it takes the train back and lands what is queued then. (The test fails at once on a
    tree with `broken`, and on one without runs until the test lets it go: the bisection's test of
    main by itself is the one the first train is frozen in.)"""
    flags = flags_folder(tmp_path, monkeypatch)
    project(hub, tmp_path, files(3, broken=(0,)), test=f"{CLEAN} && {held_until(flags)}", add=["t-f0", "t-f1"])
    work(hub, 2, name="wk1")
    # the first's lease is short: it asks the hub again once a third of it passed since it renewed
    first, second = start_train(hub, tmp_path, "first", lease=3), None
    said: dict[str, list[str]] = {"first": [], "second": []}
    threading.Thread(target=lambda: said["first"].extend(first.stderr), daemon=True).start()
    try:
        until(lambda: any("testing main" in line for line in said["first"]), "main tested by itself",
              lines=said["first"])
        os.killpg(first.pid, signal.SIGSTOP)  # its test runs on: a session of its own
        stopped = time.monotonic()
        age_train(hub, 4)  # frozen past its lease
        second = start_train(hub, tmp_path, "second")
        threading.Thread(target=lambda: said["second"].extend(second.stderr), daemon=True).start()
        until(lambda: any("taking the train over" in line for line in said["second"]), "the second to take over",
              lines=said["second"])
        # woken, the first asks the hub only if a third of its lease passed on its own (real) clock
        time.sleep(max(0.0, 1.1 - (time.monotonic() - stopped)))
        os.killpg(first.pid, signal.SIGCONT)
        until(lambda: any("waiting to take over" in line for line in said["first"]), "the first to wait",
              lines=said["first"])
        (flags / "go").touch()  # the tests pass from now on
        until(lambda: statuses(hub) == {"t-f0": "failed", "t-f1": "done"}, "the second train to land the queue",
              lines=said["second"])
        os.killpg(second.pid, signal.SIGKILL)
        second.wait()
        age_train(hub, 601)  # the dead train has been silent longer than its lease
        with Board(str(hub)) as board:
            board.add([new_task("Task t-f2", goal="g", task_id="t-f2")])
        work(hub, 1, name="wk2")
        until(lambda: statuses(hub).get("t-f2") == "done", "the first train to take over again", lines=said["first"])
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    assert any("waiting to take over" in line for line in said["first"]), "".join(said["first"])
    assert_landed_once(hub, ["t-f1", "t-f2"])
    assert_main_green(hub)
