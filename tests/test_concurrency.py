"""16 processes claim 200 tasks at once, through real pushes to a real hub.

Each task is claimed exactly once; every claim a process was told succeeded is on the board and
reachable from the tip of tasks; `git fsck --full` is clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from gitswarm.board import Board
from gitswarm.task import new_task

from conftest import sh

pytestmark = pytest.mark.slow  # minutes: many pushers racing on one hub

CLAIMER = r"""
import json, sys, time
from gitswarm.board import Board
hub, worker, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
while time.time() < start:
    time.sleep(0.005)
claimed = []
with Board(hub) as board:
    while (t := board.claim(worker)) is not None:
        claimed.append(t.id)
        print(json.dumps({"id": t.id, "token": t.claim.token}), flush=True)
print(json.dumps({"pushes": board.pushes, "rejected": board.rejected_pushes}), flush=True)
"""


def test_sixteen_processes_claim_two_hundred_tasks_exactly_once(hub):
    with Board(str(hub)) as board:
        ids = {t.id for t in board.add([new_task(f"task {i}", priority=i % 7) for i in range(200)])}
    start = time.time() + 3  # let every interpreter start, then go at once
    procs = {f"w{i:02d}": subprocess.Popen([sys.executable, "-c", CLAIMER, str(hub), f"w{i:02d}", str(start)],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           cwd=hub.parent)
             for i in range(16)}
    acked: dict[str, str] = {}
    rejected = 0
    for worker, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        *claims, stats = [json.loads(line) for line in out.splitlines()]
        rejected += stats["rejected"]
        for c in claims:
            assert c["id"] not in acked, f"{c['id']} acknowledged to {acked[c['id']]} and {worker}"
            assert c["token"] == 1
            acked[c["id"]] = worker
    assert set(acked) == ids  # every task claimed, each by exactly one process

    # the hub agrees: every acknowledged claim is on the board and reachable from the tip
    with Board(str(hub)) as reader:
        reader.refresh()
        on_board = {t.id: t for t in reader.tasks()}
    assert {i: (t.status, t.attempts, t.claim.worker) for i, t in on_board.items()} == \
        {i: ("claimed", 1, w) for i, w in acked.items()}
    claims = sh("git", "log", "--format=%(trailers:key=Gitswarm-Task,valueonly)%(trailers:key=Gitswarm-Worker,valueonly)",
                "--grep", "^Gitswarm-Action: claim$", "tasks", cwd=hub).stdout.split("\n\n")
    pairs = [tuple(c.split()) for c in claims if c.strip()]
    assert sorted(pairs) == sorted(acked.items())
    assert sh("git", "fsck", "--full", "--no-dangling", cwd=hub).returncode == 0
    print(f"\n200 claims by 16 processes: {rejected} rejected pushes")
