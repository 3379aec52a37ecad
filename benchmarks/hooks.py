"""How long the hub's hooks take on a big board: pre-receive on a typical push (one claim), and
post-receive, each run as git runs it (a process per push, interpreter start-up included).

    python benchmarks/hooks.py                 # a 10,000-task board
    python benchmarks/hooks.py --tasks 1000 --runs 20

Prints the median and p90 of each hook, the time of one `git rev-parse` beside them (the cost of
any process start on this machine), and the size of the board. Not a test: numbers only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gitswarm import git, rules  # noqa: E402
from gitswarm import task as T  # noqa: E402
from gitswarm.board import Board  # noqa: E402
from gitswarm.install import init  # noqa: E402
from hubs import guard_if_asked  # noqa: E402


def timed(cmd: list[str], stdin: bytes, cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, cwd=cwd, env=env, capture_output=True)
    return (time.perf_counter() - start) * 1000, proc.returncode


def summary(samples: list[float]) -> str:
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return f"median {statistics.median(samples):6.1f} ms   p90 {p90:6.1f} ms   (n={len(samples)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GITSWARM_CACHE"] = str(Path(tmp) / "cache")
        hub = Path(tmp) / "hub.git"
        init(hub)
        guard_if_asked(hub)
        start = time.perf_counter()
        with Board(str(hub)) as board:
            for i in range(0, args.tasks, 1000):
                board.add([T.new_task(f"task {j}", priority=j % 10) for j in range(i, min(args.tasks, i + 1000))])
            fill = time.perf_counter() - start
            board.refresh()
            tip = board.tip
            target = board.ready()[0]
        # a claim commit on the tip, written into the hub as a push would leave it in quarantine
        repo = pygit2.Repository(str(hub))
        claimed = rules.claim(target, "bench")
        msg = rules.message("claim", [claimed], "bench", claimed.claim.token)
        commit = git.write_commit(repo, tip, {claimed.path: T.dump(claimed)}, msg, ("bench", "bench@x"))
        line = f"{tip} {commit} refs/heads/tasks\n".encode()
        env = dict(git.no_git_env(), GIT_DIR=".")
        pre, post, rev = [], [], []
        for _ in range(args.runs):
            ms, code = timed([str(hub / "hooks" / "pre-receive")], line, hub, env)
            assert code == 0, "the guard refused a legal claim"
            pre.append(ms)
            ms, _ = timed([str(hub / "hooks" / "post-receive")], line, hub, env)
            post.append(ms)
            ms, _ = timed(["git", "rev-parse", "HEAD"], b"", hub, env)
            rev.append(ms)
        size = subprocess.run(["git", "count-objects", "-vH"], cwd=hub, capture_output=True, text=True).stdout
    print(f"board: {args.tasks} tasks (filled in {fill:.1f} s, in commits of 1,000)")
    print(f"pre-receive, one claim:  {summary(pre)}")
    print(f"post-receive:            {summary(post)}")
    print(f"git rev-parse (a bare process start, for scale): {summary(rev)}")
    print(f"python {sys.version.split()[0]}, git {git.out(['--version']).split()[-1]}, "
          f"pygit2 {pygit2.__version__}, {os.cpu_count()} cores")
    print("hub objects: " + ", ".join(ln for ln in size.splitlines() if ln.startswith(("count", "size"))))


if __name__ == "__main__":
    main()
