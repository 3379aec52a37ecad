"""Build a big board fast: `git fast-import` writes N open tasks, in add commits of 1,000, straight
into a hub's pack (no loose objects, no hooks), on top of the `tasks` branch `gitswarm init` made.
The history is what `gitswarm task add --from` would have left; only the guard never saw it."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gitswarm

from gitswarm import git, rules  # noqa: E402
from gitswarm import task as T  # noqa: E402
from gitswarm.install import init  # noqa: E402

AUTHOR = "bench <bench@gitswarm> 1795000000 +0000"


def build_board(hub: Path, n: int, chunk: int = 1000, seed: int = 1, goal: str | None = None,
                repack: bool = True) -> list[str]:
    """Make `hub` a gitswarm hub holding n open tasks (priorities 0-9, no dependencies); their ids.
    With repack, `git repack -adf` afterwards: fast-import's own deltas are poor (on its pack, git's
    connectivity check of a push took 100-130 ms at 100,000 tasks; 25-35 ms after)."""
    init(hub)
    tip = git.out(["rev-parse", "refs/heads/tasks"], cwd=hub)
    rng = random.Random(seed)
    ids: list[str] = []
    seen: set[str] = set()
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=hub, stdin=subprocess.PIPE,
                            env=dict(git.no_git_env(), LC_ALL="C"))
    assert proc.stdin is not None
    out = proc.stdin
    for start in range(0, n, chunk):
        batch = []
        for j in range(start, min(n, start + chunk)):
            task_id = "t-%08x" % rng.getrandbits(32)
            while task_id in seen:
                task_id = "t-%08x" % rng.getrandbits(32)
            seen.add(task_id)
            created = "2026-11-25T08:%02d:%02d.%06dZ" % (j // 600000 % 60, j // 10000 % 60, j % 1000000)
            batch.append(T.Task(id=task_id, title=f"task {j}", description=f"Do thing number {j}.",
                                priority=j % 10, goal=goal, created=created))
        ids += [t.id for t in batch]
        msg = rules.message("add", batch).encode()
        out.write(b"commit refs/heads/tasks\n")
        out.write(f"author {AUTHOR}\ncommitter {AUTHOR}\n".encode())
        out.write(b"data %d\n%s\n" % (len(msg), msg))
        if start == 0:
            out.write(f"from {tip}\n".encode())
        for t in batch:
            data = T.dump(t)
            out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (t.path.encode(), len(data), data))
        out.write(b"\n")
    out.write(b"done\n")
    out.close()
    if proc.wait():
        raise RuntimeError("git fast-import failed")
    if repack:
        git.run(["repack", "-adfq"], cwd=hub)
    return ids
