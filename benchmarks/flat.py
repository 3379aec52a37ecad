"""The flat baseline of benchmarks/swarm.py: agents coordinating through one shared status file
guarded by a lock, the design the planner/worker record began with.

Each agent loops: take the lock (`fcntl.flock` on a lock file), read `status.json`, pick the first
open task, mark it claimed, write the file back, release the lock; work (sleep the agent time);
take the lock again, write its file in the shared repository, `git add` and `git commit` it, mark
the task done in `status.json`, release. The commit happens under the lock because agents sharing
one working tree and one branch cannot commit at the same time (git's index.lock refuses the second):
the lock is what keeps the branch linear. Nothing here goes over a network or through hooks.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path


def setup(root: Path, task_ids: list[str]) -> Path:
    """A shared repository with one commit and a status file listing every task open."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "--initial-branch=main")
    (repo / "README.md").write_text("flat baseline\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "start")
    (root / "status.json").write_text(json.dumps({i: {"status": "open", "worker": None} for i in task_ids}))
    (root / "status.lock").touch()
    return repo


def git(repo: Path, *args: str) -> None:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace')}")


@contextmanager
def locked(root: Path):
    """The lock, held from before the read to after the write. Its own open file per call, so it
    excludes threads of one process as well as other processes."""
    with open(root / "status.lock", "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read(root: Path) -> dict:
    return json.loads((root / "status.json").read_text())


def write(root: Path, status: dict) -> None:
    tmp = root / "status.json.tmp"
    tmp.write_text(json.dumps(status))
    os.replace(tmp, root / "status.json")


def agent(root: Path, name: str, agent_time: float, hold: float, start: float, records: list, errors: list) -> None:
    repo = root / "repo"
    time.sleep(max(0.0, start - time.monotonic()))
    last = start
    while True:
        try:
            start = time.monotonic()
            with locked(root):
                got = time.monotonic()
                status = read(root)
                task = next((i for i, s in status.items() if s["status"] == "open"), None)
                if task is not None:
                    time.sleep(hold)  # the agent deciding, lock in hand (0 by default)
                    status[task] = {"status": "claimed", "worker": name}
                    write(root, status)
            claimed = time.monotonic()
            if task is None:
                return
            time.sleep(agent_time)  # the agent's work
            worked = time.monotonic()
            with locked(root):
                got2 = time.monotonic()
                (repo / "done").mkdir(exist_ok=True)
                (repo / "done" / f"{task}.txt").write_text(f"{task} by {name}\n")
                git(repo, "add", f"done/{task}.txt")
                git(repo, "commit", "-q", "-m", f"{task}\n\nTask: {task}\nWorker: {name}")
                status = read(root)
                if status[task] != {"status": "claimed", "worker": name}:
                    raise RuntimeError(f"{task} is {status[task]}, not claimed by {name}")
                status[task] = {"status": "done", "worker": name}
                write(root, status)
            end = time.monotonic()
        except Exception as e:  # noqa: BLE001 - reported and counted as a failed check
            errors.append(f"{name}: {type(e).__name__}: {e}")
            return
        records.append({"task": task, "worker": name, "start": last, "end": end, "agent": worked - claimed,
                        "claim": claimed - start, "land": end - worked,
                        "lock_wait": (got - start) + (got2 - worked), "landings": 1})
        last = end


def client(root: Path, threads: int, prefix: str, agent_time: float, hold: float, t0: float,
           wait: list[float]) -> dict:
    records: list = []
    errors: list = []
    pool = [threading.Thread(target=agent, args=(root, f"{prefix}-w{i}", agent_time, hold, t0 + wait[i], records,
                                                 errors))
            for i in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return {"records": records, "errors": errors}


def verify(root: Path, task_ids: list[str], records: list[dict]) -> list[str]:
    """Every task done once, by the agent that says it did it; one commit per task on main."""
    problems = []
    status = read(root)
    by_task: dict[str, list[str]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r["worker"])
    for i in task_ids:
        who = by_task.get(i, [])
        if len(who) != 1:
            problems.append(f"flat: {i} done by {len(who)} agents: {who}")
        elif status.get(i) != {"status": "done", "worker": who[0]}:
            problems.append(f"flat: {i} is {status.get(i)} in status.json, {who[0]} did it")
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=root / "repo", capture_output=True, text=True)
    subjects = [s for s in log.stdout.split() if s.startswith("t-")]
    if sorted(subjects) != sorted(task_ids):
        problems.append(f"flat: main holds {len(subjects)} task commits ({len(set(subjects))} tasks) "
                        f"for {len(task_ids)} tasks")
    fsck = subprocess.run(["git", "fsck", "--full", "--no-dangling", "--no-progress"], cwd=root / "repo",
                          capture_output=True, text=True)
    if fsck.returncode or fsck.stdout.strip():
        problems.append(f"flat: git fsck: {(fsck.stdout + fsck.stderr)[:300]}")
    return problems
