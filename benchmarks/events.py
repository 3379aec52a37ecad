"""Event latency: from a push to the daemon's reaction.

    python benchmarks/events.py            # 300 pushes: ~1.5 minutes here
    python benchmarks/events.py --quick    # 50 pushes
    python benchmarks/events.py --pushes 500 --tasks 10000

Runs the real daemon, `gitswarm serve HUB --workers 0 --planners 0` (a process of its own, no
agents: only the event path), on a hub holding --tasks open tasks. This process then pushes one
board change at a time (a `Board.add` of one task: build the commit, `git push`, hooks included)
and watches the spool with inotify (watchdog). The daemon's reaction is the ack: it deletes the
spool file once it has handled the event (fetched the new tip of tasks, read the changed files and
woken its workers). For each push it records
- push: from the start of Board.add to its return (the push and both hooks);
- spooled: from the start to post-receive's file appearing;
- reaction after the push returned, and from the push's start: when the file was deleted.
Prints p50, p99 and max of each. Numbers only; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from watchdog.events import FileSystemEvent, FileSystemEventHandler  # noqa: E402
from watchdog.observers import Observer  # noqa: E402

from boardgen import build_board  # noqa: E402
from gitswarm import events as spool  # noqa: E402
from gitswarm import git  # noqa: E402
from gitswarm import task as T  # noqa: E402
from gitswarm.board import Board  # noqa: E402


class Seen(FileSystemEventHandler):
    """When each spool file appeared and when it went (perf_counter), by name."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self.changed = threading.Condition()

    def on_any_event(self, event: FileSystemEvent) -> None:
        now = time.perf_counter()
        name = os.path.basename(str(getattr(event, "dest_path", "") or event.src_path))
        if not name.endswith(".json") or name.startswith("."):
            return
        with self.changed:
            if event.event_type in ("created", "moved"):  # written as .tmp, then renamed
                self.created.setdefault(name, now)
            elif event.event_type == "deleted":
                self.deleted[os.path.basename(str(event.src_path))] = now
            self.changed.notify_all()


def stats(xs: list[float]) -> str:
    xs = sorted(x * 1000 for x in xs)
    p99 = xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]
    return f"p50 {statistics.median(xs):7.1f} ms   p99 {p99:7.1f} ms   max {xs[-1]:7.1f} ms   (n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="50 pushes")
    ap.add_argument("--pushes", type=int, default=None, help="default 300 (quick: 50)")
    ap.add_argument("--tasks", type=int, default=1000, help="open tasks on the board before the pushes")
    ap.add_argument("--pause", type=float, default=0.05, help="seconds between a reaction and the next push")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pushes = args.pushes or (50 if args.quick else 300)
    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}, git "
          f"{git.out(['--version']).split()[-1]}, {platform.platform()}, load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gitswarm-events-") as tmp:
        root = Path(tmp)
        hub = root / "hub.git"
        build_board(hub, args.tasks)
        env = dict(git.no_git_env(), GITSWARM_CACHE=str(root / "daemon-cache"), PYTHONPATH=str(ROOT))
        log = open(root / "daemon.log", "w")
        daemon = subprocess.Popen([sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers", "0",
                                   "--planners", "0", "--id", "bench"], env=env, stderr=log, cwd="/")
        seen = Seen()
        observer = Observer()
        observer.schedule(seen, str(spool.spool_dir(hub)))
        observer.start()
        os.environ["GITSWARM_CACHE"] = str(root / "pusher-cache")
        push_t, spooled_t, after_t, total_t, missed = [], [], [], [], 0
        try:
            with Board(str(hub), author=("bench", "bench@x")) as board:
                board.refresh()
                time.sleep(2.0)  # the daemon starts: imports, its first fetch and pass
                for i in range(pushes):
                    before = set(seen.created)
                    start = time.perf_counter()
                    board.add([T.new_task(f"event {i}")])
                    returned = time.perf_counter()
                    deadline = time.monotonic() + 30
                    with seen.changed:
                        while time.monotonic() < deadline:
                            new = [n for n in seen.created if n not in before]
                            if new and new[0] in seen.deleted:
                                break
                            seen.changed.wait(0.5)
                    if not new or new[0] not in seen.deleted:
                        missed += 1
                        continue
                    name = new[0]
                    push_t.append(returned - start)
                    spooled_t.append(seen.created[name] - start)
                    after_t.append(seen.deleted[name] - returned)
                    total_t.append(seen.deleted[name] - start)
                    time.sleep(args.pause)
        finally:
            observer.stop()
            daemon.terminate()
            daemon.wait(timeout=60)
            observer.join()
            log.close()
            tail = (root / "daemon.log").read_text().splitlines()[-3:]
    print(f"board: {args.tasks} open tasks; {pushes} pushes, each one Board.add of one task; missed {missed}")
    print(f"push (Board.add, hooks included):     {stats(push_t)}")
    print(f"spool file written, from push start:  {stats(spooled_t)}")
    print(f"daemon's ack, after the push returned: {stats(after_t)}")
    print(f"daemon's ack, from push start:        {stats(total_t)}")
    print("daemon log (last lines): " + " | ".join(tail))
    if args.json:
        args.json.write_text(json.dumps({"push": push_t, "spooled": spooled_t, "after": after_t, "total": total_t,
                                         "missed": missed, "tasks": args.tasks}))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
