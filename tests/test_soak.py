"""The soak test: a hub, 4 worker pools of 2 workers (8 workers) in processes of their own, 200
model-free tasks, and chaos — random kill -9 (the pool restarted under the same name) and
SIGSTOP/SIGCONT (frozen past its lease) every second or two — then drain. What goes in must come
out: 0 tasks lost, 0 completed twice, every task done or dead, main only fast-forwarded (the hub's
own reflog), `git fsck --full` clean.

A few minutes in CI; longer with GITSWARM_SOAK_SECONDS (the seconds of chaos, default 30)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitswarm.board import Board
from gitswarm.goal import parse_goal

from conftest import commit_all, push, sh

pytestmark = pytest.mark.slow  # minutes: kill -9 chaos for GITSWARM_SOAK_SECONDS

CHAOS = float(os.environ.get("GITSWARM_SOAK_SECONDS", "30"))
TASKS, POOLS, PER_POOL = 200, 4, 2


def goal_text() -> str:
    tasks = "".join(f'  - title: Task {i:03d}\n    run: "mkdir -p out && echo {i} > out/{i:03d}.txt"\n'
                    for i in range(TASKS))
    return (f'---\ncheck: "test $(ls out | wc -l) -eq {TASKS}"\njudge: {{every: 5s}}\nmax_cycles: 1000\n'
            f"tasks:\n{tasks}---\nWrite {TASKS} files.\n")


def start_pool(hub: Path, name: str, cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gitswarm", "worker", str(hub), "--workers", str(PER_POOL),
                             "--id", name, "--lease", "3s"], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=open(log, "a"))


def test_soak_with_kill_9_and_sigstop(hub, tmp_path):
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "goals").mkdir()
    (clone / "goals" / "soak.md").write_text(goal_text())
    (clone / ".gitswarm.yaml").write_text("lease: 3s\nmax_attempts: 50\nretry_backoff: 0.2s\ndebounce: 0.5s\n")
    commit_all(clone, "the soak goal")
    assert push(clone, "HEAD:refs/heads/main").returncode == 0
    ids = {t.id for t in parse_goal("goals/soak.md", goal_text()).tasks}
    logs = tmp_path / "logs"
    logs.mkdir()
    serve = subprocess.Popen([sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers", "0",
                              "--planners", "0", "--until-done", "--id", "hub"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=open(logs / "serve.log", "w"))
    pools = {f"pool{k}": start_pool(hub, f"pool{k}", tmp_path, logs / f"pool{k}.log") for k in range(POOLS)}
    frozen: dict[str, float] = {}
    rng = random.Random(int(os.environ.get("GITSWARM_SOAK_SEED", "7")))
    kills = stops = 0
    end = time.time() + CHAOS
    try:
        while time.time() < end and serve.poll() is None:
            time.sleep(rng.uniform(0.8, 2.0))
            for name, until in list(frozen.items()):
                if time.time() >= until:
                    pools[name].send_signal(signal.SIGCONT)
                    del frozen[name]
            awake = [n for n in pools if n not in frozen]
            if not awake:  # every pool is frozen for now: wait for one to thaw
                continue
            name = rng.choice(awake)
            if rng.random() < 0.5:
                pools[name].kill()  # kill -9, mid-whatever it was doing
                pools[name].wait()
                kills += 1
                time.sleep(rng.uniform(0.2, 1.5))
                pools[name] = start_pool(hub, name, tmp_path, logs / f"{name}.log")
            else:
                pools[name].send_signal(signal.SIGSTOP)  # frozen, often past its 3 s lease
                frozen[name] = time.time() + rng.uniform(1.0, 6.0)
                stops += 1
        for name in frozen:
            pools[name].send_signal(signal.SIGCONT)
        frozen.clear()
        serve.wait(timeout=600)  # drain: the goal ends once every file is there
    finally:
        for name in frozen:
            pools[name].send_signal(signal.SIGCONT)
        for p in [*pools.values(), serve]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*pools.values(), serve]:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
    assert serve.returncode == 0, (logs / "serve.log").read_text()[-3000:]

    with Board(str(hub)) as board:
        board.refresh()
        tasks = {t.id: t for t in board.tasks()}
        record = board.records()["soak"]
    # 0 lost: every task that went in came out, done or dead
    assert set(tasks) == ids
    assert {t.status for t in tasks.values()} <= {"done", "dead"}
    done = {i for i, t in tasks.items() if t.status == "done"}
    # 0 completed twice: one completion commit per task on tasks, one work commit per task on main
    completions = [s.split(":")[0].split()[1] for s in
                   sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout.splitlines() if s.startswith("done t-")]
    assert sorted(completions) == sorted(done)
    landed = sh("git", "log", "--format=%(trailers:key=Gitswarm-Task,valueonly)", "main", cwd=hub).stdout.split()
    assert sorted(landed) == sorted(done)
    for i in done:
        commit = tasks[i].result["commit"]
        assert sh("git", "merge-base", "--is-ancestor", commit, "main", cwd=hub, check=False).returncode == 0
    files = sh("git", "ls-tree", "--name-only", "main", "out/", cwd=hub).stdout.split()
    assert len(files) == len(done)
    # main only fast-forwarded: in the hub's reflog each update starts where the last one ended
    entries = [ln.split()[:2] for ln in (hub / "logs" / "refs" / "heads" / "main").read_text().splitlines()]
    assert all(prev[1] == cur[0] for prev, cur in zip(entries, entries[1:]))
    assert sh("git", "fsck", "--full", "--no-dangling", cwd=hub).returncode == 0
    reclaims = sum(1 for s in sh("git", "log", "--format=%s", "tasks", cwd=hub).stdout.splitlines()
                   if s.startswith("reclaim "))
    print(f"\nsoak: {CHAOS:.0f}s of chaos, {kills} kill -9, {stops} SIGSTOP; {len(done)} done, "
          f"{len(tasks) - len(done)} dead, {reclaims} lapsed claims taken back, goal {record.status}")
    assert len(done) == TASKS and record.status == "done"
