"""Memory: the daemon's RSS across a run of 10,000 tasks.

    python benchmarks/memory.py              # 10,000 tasks: ~9 minutes here
    python benchmarks/memory.py --quick      # 1,000 tasks
    python benchmarks/memory.py --tasks 600 --workers 4 --fake 0     # the daemon's own workers only

Runs the real daemon, `gitswarm serve HUB --workers W --planners 0` (a process of its own), on a
hub holding --tasks open work tasks (built with git fast-import), and --fake threads in a second
process (one shared Board: group commit) that claim a task, sleep LATENCY (the fake agent) and
complete it. By default W is 0: the daemon handles the event of every push (fetch, read the changed
files, wake its workers) and runs its reclaim passes, while the fake threads do the work, ~20
tasks/s here. With W > 0, `.gitswarm.yaml` on main makes each of the daemon's worker agents a
command, `sleep LATENCY`, run in a worktree of its own (in the sandbox: bubblewrap, or GITSWARM_SANDBOX=off):
the whole worker path, ~10 git processes a task, 2-3 tasks/s on this machine, so use it for a
shorter run with --fake 0 (run together, the fake process's big batches lose nearly every push race
to the daemon's small ones). Every second this
process reads the daemon's VmRSS from /proc/<pid>/status and, every few seconds, how many tasks
are done (`git grep` on the hub), and every 5 s where its RSS lives (/proc/<pid>/smaps: pack
files, glibc's heap, other anonymous memory, libraries). Prints RSS at the start, its peak and its
end, and slopes (least-squares lines of RSS against tasks done, MB per 1,000 tasks) after the first
10% of the tasks, of each part, and over the second half. Numbers only; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from boardgen import build_board  # noqa: E402
from gitswarm import git  # noqa: E402


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def rss_parts_mb(pid: int) -> dict[str, float] | None:
    """The process's RSS by where it lives (/proc/<pid>/smaps): "packs" (pages of the mirror's pack
    and index files libgit2 maps), "heap" (glibc's heap: libgit2's allocations, Python's big
    objects), "anon" (other anonymous maps: Python's small-object arenas, thread stacks, big
    mallocs), "libs" (shared libraries and other files)."""
    parts = {"packs": 0.0, "heap": 0.0, "anon": 0.0, "libs": 0.0}
    where = "anon"
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split(None, 1)[0]
                if not head.endswith(":"):  # a mapping's first line: address perms offset dev inode [path]
                    fields = line.split()
                    path = fields[5] if len(fields) > 5 else ""
                    where = ("packs" if "/objects/pack/" in path else "heap" if path == "[heap]"
                             else "anon" if not path or path.startswith("[") else "libs")
                elif head == "Rss:":
                    parts[where] += int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parts


def done_count(hub: Path) -> int:
    proc = subprocess.run(["git", "grep", "-l", "^status: done$", "tasks", "--", "tasks/"], cwd=hub,
                          capture_output=True, env=git.no_git_env())
    return len(proc.stdout.splitlines())


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y against x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def make_main(hub: Path, work: Path, latency: float, workers: int) -> None:
    git.run(["init", "-q", "-b", "main", str(work)])
    (work / ".gitswarm.yaml").write_text(
        f"worker:\n  backend: command\n  command: \"sleep {latency}\"\n"
        "lease: 10m\nretry_backoff: 1s\n")  # workers: the command line sets them
    (work / "README.md").write_text("A repository for gitswarm's memory benchmark.\n")
    env = dict(git.no_git_env(), GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@x",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@x")
    git.run(["add", "-A"], cwd=work, env=env)
    git.run(["commit", "-q", "-m", "settings"], cwd=work, env=env)
    git.run(["push", "-q", str(hub), "HEAD:refs/heads/main"], cwd=work, env=env)


def fake_workers(hub: Path, threads: int, latency: float) -> int:
    """Claim, sleep, complete, until nothing is ready or SIGTERM; prints how many were completed."""
    import threading

    from gitswarm.board import Board

    stop, count = threading.Event(), [0]
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    errors: list[str] = []

    def work(name: str) -> None:
        while not stop.is_set():
            try:
                t = board.claim(name)
                if t is None:
                    stop.wait(1.0)
                    continue
                time.sleep(latency)
                board.complete(t.id, name, "done by the fake agent", token=t.claim.token)
                count[0] += 1
            except Exception as e:  # say it and go on, as a pool's worker does
                errors.append(f"{type(e).__name__}: {e}")
                stop.wait(1.0)

    with Board(str(hub), lease=600) as board:
        pool = [threading.Thread(target=work, args=(f"fake{i}",), daemon=True) for i in range(threads)]
        for t in pool:
            t.start()
        stop.wait()
        for t in pool:
            t.join(timeout=60)
    print(f"{count[0]} ({len(errors)} errors{', e.g. ' + errors[0][:200] if errors else ''}; "
          f"{board.pushes} pushes, {board.rejected_pushes} rejected)", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 tasks")
    ap.add_argument("--tasks", type=int, default=None, help="default 10,000 (quick: 1,000)")
    ap.add_argument("--workers", type=int, default=0, help="the daemon's worker agents (command agents)")
    ap.add_argument("--fake", type=int, default=32, help="fake worker threads in a process of their own")
    ap.add_argument("--fake-worker", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--latency", type=float, default=0.05, help="the fake agent's seconds per task")
    ap.add_argument("--budget", type=float, default=900, help="stop the run after this many seconds")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.fake_worker:
        return fake_workers(args.fake_worker, args.fake, args.latency)
    n = args.tasks or (1000 if args.quick else 10_000)
    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}, git "
          f"{git.out(['--version']).split()[-1]}, {platform.platform()}, load {os.getloadavg()[0]:.2f}", flush=True)
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, tasks done)
    with tempfile.TemporaryDirectory(prefix="gitswarm-memory-") as tmp:
        root = Path(tmp)
        hub = root / "hub.git"
        build_board(hub, n)
        make_main(hub, root / "main", args.latency, args.workers)
        env = dict(git.no_git_env(), GITSWARM_CACHE=str(root / "cache"), PYTHONPATH=str(ROOT))
        log = open(root / "daemon.log", "w")
        start = time.monotonic()
        daemon = subprocess.Popen([sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers",
                                   str(args.workers), "--planners", "0", "--id", "mem"],
                                  env=env, stderr=log, cwd="/")
        fake = subprocess.Popen([sys.executable, __file__, "--fake-worker", str(hub), "--fake", str(args.fake),
                                 "--latency", str(args.latency)], env=dict(env, GITSWARM_CACHE=str(root / "fake")),
                                stdout=subprocess.PIPE, text=True) if args.fake else None
        done, last_count, last_print = 0, 0.0, 0.0
        parts: list[tuple[int, dict[str, float]]] = []  # (done, RSS MB by where it lives), every 5 s
        try:
            while daemon.poll() is None:
                now = time.monotonic() - start
                if now - last_count >= 5:
                    done, last_count = done_count(hub), now
                rss = rss_mb(daemon.pid)
                if rss is not None:
                    samples.append((now, rss, done))
                    split = rss_parts_mb(daemon.pid) if now - last_count < 1 else None  # every 5 s
                    if split is not None:
                        parts.append((done, split))
                if now - last_print >= 30:
                    print(f"  {now:5.0f} s: {done:6d} done, RSS {rss:6.1f} MB", flush=True)
                    last_print = now
                if done >= n or now > args.budget:
                    break
                time.sleep(1.0)
        finally:
            if fake is not None:
                fake.terminate()
                fake_done = fake.communicate(timeout=120)[0].strip()
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                daemon.kill()
            log.close()
        elapsed = time.monotonic() - start
        done = done_count(hub)
        by_daemon = len(subprocess.run(["git", "log", "--format=%H", "--author=^mem-w", "--grep=^Gitswarm-Action: complete$",
                                        "tasks", "--"], cwd=hub, capture_output=True, text=True).stdout.split())
        daemon_log = (root / "daemon.log").read_text().splitlines()
        errors = [ln for ln in daemon_log if "error" in ln or "failed" in ln]
        if daemon.returncode not in (0, -signal.SIGTERM):
            print("daemon exited early:", *daemon_log[-5:], sep="\n  ")
    first_done = next((s for s in samples if s[2] > 0), samples[0])
    after_warmup = [s for s in samples if s[2] >= max(1, n // 10)]
    peak = max(samples, key=lambda s: s[1])
    per_1000 = slope([(s[2], s[1]) for s in after_warmup]) * 1000
    print(f"\nrun: {n} tasks, {args.workers} workers, fake agent `sleep {args.latency}`; "
          f"{done} done in {elapsed:.0f} s ({done / elapsed:.1f} tasks/s)")
    print(f"completed by the daemon's {args.workers} workers: {by_daemon}; by {args.fake} fake threads: "
          f"{fake_done if args.fake else 0}")
    print(f"RSS at the first task done: {first_done[1]:.1f} MB ({first_done[0]:.0f} s)")
    print(f"RSS peak: {peak[1]:.1f} MB (at {peak[0]:.0f} s, {peak[2]} done)")
    print(f"RSS at the end: {samples[-1][1]:.1f} MB ({samples[-1][2]} done)")
    print(f"slope after the first 10% of tasks: {per_1000:+.2f} MB per 1,000 tasks ({len(after_warmup)} samples)")
    warm_parts = [x for x in parts if x[0] >= max(1, n // 10)]
    if len(warm_parts) >= 2:
        print("  by where it lives, after the first 10%: " + "; ".join(
            f"{k} {warm_parts[0][1][k]:.1f} -> {warm_parts[-1][1][k]:.1f} MB "
            f"({slope([(d, p[k]) for d, p in warm_parts]) * 1000:+.2f} per 1,000)" for k in warm_parts[0][1]))
    half = [s for s in samples if s[2] >= n // 2]
    if len(half) >= 2:
        print(f"slope over the second half of the run: {slope([(s[2], s[1]) for s in half]) * 1000:+.2f} MB per 1,000 "
              f"tasks ({half[0][1]:.1f} MB at {half[0][2]} done)")
    print("RSS by tasks done: " + ", ".join(
        f"{s[2]}: {s[1]:.0f}" for s in samples[:: max(1, len(samples) // 12)]))
    print(f"daemon log lines with 'error' or 'failed': {len(errors)}" + (f", e.g. {errors[0]}" if errors else ""))
    if args.json:
        args.json.write_text(json.dumps({"tasks": n, "workers": args.workers, "latency": args.latency,
                                         "elapsed": elapsed, "done": done, "samples": samples, "parts": parts}))
    return 0 if done >= n else 1


if __name__ == "__main__":
    sys.exit(main())
