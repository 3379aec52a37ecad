"""Benchmark: swarm efficiency, gitswarm against the flat baseline, at N workers.

    python benchmarks/swarm.py               # N = 1, 4, 16, 64, 256; agent time 30 s, 1 task a worker
    python benchmarks/swarm.py --quick       # N = 1, 16, 64; agent time 4 s, 2 tasks a worker
    python benchmarks/swarm.py --workers 256 --agent-time 91   # the target: 2.8 tasks/s with 256 workers

gitswarm: a hub made by `gitswarm init` (real hooks), N*K tasks added, then P client processes
("machines", --processes, default 4) each run a `gitswarm.pool.Pool` of N/P workers sharing one
Board: the real worker role (`gitswarm.roles.worker`: claim, a worktree at main's tip, the agent,
commit, `Board.land` atomically with the completion, rebase and land again when main moved). The
agent is a fake model: it sleeps the agent time, writes `done/<task>.txt`, and finishes.

flat: the same N agents in the same P processes, coordinating through one status file under a
lock (benchmarks/flat.py), their work committed to one shared repository under the same lock.

Per run: makespan (from the start signal to the last landing), tasks/s, efficiency = ideal makespan
(ceil(tasks/N) * agent time) / makespan, and per task the overhead = the time from the end of the
worker's previous task (or the start) to the end of this one's landing, minus its agent time: claim,
fetches, worktree, commit, land pushes, rebases and every wait. Each run is checked (every task
done exactly once, one landing commit per task on main, main only fast-forwarded, git fsck); the
script exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's gitswarm
sys.path.insert(0, str(HERE))

import flat  # noqa: E402
import hubs  # noqa: E402
import report  # noqa: E402


def sh(args: list[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {proc.stderr}")
    return proc


# ---------------------------------------------------------------- the fake agent

class SleepAgent:
    """A model that takes `seconds` to think, then writes done/<task>.txt and finishes."""

    name = "sleep"

    def __init__(self, seconds: float, slept: dict):
        self.seconds, self.slept, self.calls = seconds, slept, 0

    def complete(self, messages, tools):
        from gitswarm.agents import Reply

        self.calls += 1
        if self.calls > 1:
            return Reply.calling("finish", {"summary": "done"})
        task = re.search(r"Task (t-[0-9a-z-]+)", messages[1]["content"]).group(1)
        start = time.monotonic()
        time.sleep(self.seconds)
        self.slept[threading.current_thread().name] = time.monotonic() - start
        return Reply.calling("write_file", {"path": f"done/{task}.txt", "content": f"{task}\n"})


# ---------------------------------------------------------------- a gitswarm client process

def delays(n: int, processes: int, p: int, threads: int, agent_time: float, stagger: bool) -> list[float]:
    """When each worker of client p starts: all at once, or (staggered) worker i of the swarm at
    i * agent_time / n, the clients' workers interleaved: a swarm in its steady state."""
    return [((j * processes + p) * agent_time / n) if stagger else 0.0 for j in range(threads)]


def gitswarm_client(hub: str, threads: int, prefix: str, agent_time: float, wait: list[float]) -> dict:
    """One machine: a Pool of `threads` workers sharing one Board. Instrumented from outside: the
    Board's claim and land, and main's fetch, are wrapped to time them per task."""
    from gitswarm.pool import Pool

    slept: dict[str, float] = {}
    logs: list[str] = []
    logfile = open(Path(hub).parent / f"log-{prefix}.txt", "a", buffering=1)  # kept with the hub on a failure

    def log(text: str) -> None:
        logs.append(text)
        logfile.write(f"{time.monotonic() - t0:8.3f} {text}\n")
    t0 = time.monotonic()
    pool = Pool(hub, workers=threads, name=prefix, log=log,
                model_factory=lambda settings: SleepAgent(agent_time, slept))
    board, swarm = pool.board, pool.swarm
    now = time.monotonic
    current: dict[str, dict] = {}  # worker -> the task in hand
    records: list[dict] = []
    idle: set[str] = set()
    last: dict[str, float] = {}

    def timed(original, key):
        def call(*args, **kwargs):
            name = threading.current_thread().name
            t = now()
            try:
                return original(*args, **kwargs)
            finally:
                rec = current.get(name)
                if rec is not None:
                    rec[key] = rec.get(key, 0.0) + now() - t
        return call

    claim, land = board.claim, board.land

    def claim_timed(worker, *args, **kwargs):
        if worker not in last:  # its first claim: wait for its start
            last[worker] = t0 + wait[int(worker.rsplit("-w", 1)[1])]
            time.sleep(max(0.0, last[worker] - now()))
        t = now()
        task = claim(worker, *args, **kwargs)
        if task is None:
            idle.add(worker)
            if len(idle) == threads:
                pool.stop.set()  # nothing left to claim: the others' tasks are in hand
            return None
        current[worker] = {"task": task.id, "worker": worker, "start": last[worker],
                           "claim": now() - t, "land": 0.0, "landings": 0}
        return task

    def land_timed(task_id, worker, *args, **kwargs):
        rec = current[worker]
        t = now()
        try:
            rec["landings"] += 1
            result = land(task_id, worker, *args, **kwargs)
        finally:
            rec["land"] += now() - t
        rec["end"] = last[worker] = now()
        rec["agent"] = slept.pop(worker, 0.0)
        records.append(current.pop(worker))
        return result

    board.claim, board.land = claim_timed, land_timed
    git_times: dict[str, list[float]] = {"push": [], "fetch": []}

    def git_timed(original, key):
        def call(*args, **kwargs):
            t = now()
            try:
                return original(*args, **kwargs)
            finally:
                git_times[key].append(now() - t)
        return call
    board.mirror.push = git_timed(board.mirror.push, "push")
    board.mirror.fetch = git_timed(board.mirror.fetch, "fetch")
    board.view.fetch_branch = timed(board.view.fetch_branch, "fetch_main")  # the workers' and the group commit's
    board.refresh()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return {}
    t0 = now()
    pool.start()
    pool.stop.wait()
    pool.close()
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    problems = [ln for ln in logs if "failed" in ln or "Error" in ln or "could not" in ln or "lost" in ln]
    return {"records": records, "errors": problems, "pushes": board.pushes, "rejected": board.rejected_pushes,
            "cpu": sum(u.ru_utime + u.ru_stime for u in usage), "rebases": sum("rebasing" in ln for ln in logs),
            "git_times": git_times}


def flat_client(root: str, threads: int, prefix: str, agent_time: float, hold: float, wait: list[float]) -> dict:
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return {}
    out = flat.client(Path(root), threads, prefix, agent_time, hold, time.monotonic(), wait)
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return {**out, "pushes": 0, "rejected": 0, "rebases": 0, "cpu": sum(u.ru_utime + u.ru_stime for u in usage)}


# ---------------------------------------------------------------- one run

def start_clients(args_of, processes: int, n: int) -> list[dict]:
    """Start the client processes, wait until each is ready, say go, collect their JSON."""
    procs = []
    for p in range(processes):
        threads = n // processes + (p < n % processes)
        procs.append(subprocess.Popen([sys.executable, __file__, *args_of(p, threads)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    for proc in procs:
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("a client process failed to start")
    t0 = time.monotonic()
    for proc in procs:
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    outputs = [proc.communicate()[0] for proc in procs]
    results = [json.loads(o.decode().splitlines()[-1]) for o in outputs]
    for r in results:
        r["t0"] = t0
    return results


def summarise(design: str, n: int, processes: int, tasks: int, agent_time: float, stagger: bool,
              results: list[dict], problems: list[str], seconds: float) -> dict:
    records = [rec for r in results for rec in r["records"]]
    t0 = results[0]["t0"]
    makespan = max((rec["end"] for rec in records), default=t0) - t0
    overheads = sorted(rec["end"] - rec["start"] - rec["agent"] for rec in records)
    ideal = math.ceil(tasks / n) * agent_time + (agent_time * (n - 1) / n if stagger else 0.0)
    return {"design": design, "workers": n, "processes": processes, "tasks": tasks, "agent_time": agent_time,
            "start": "staggered" if stagger else "together",
            "landed": len(records), "makespan": makespan, "ideal": ideal,
            "rate": len(records) / makespan if makespan > 0 else 0.0,
            "efficiency": ideal / makespan if makespan > 0 else 0.0,
            "overhead_p50": report.pct(overheads, 50), "overhead_p99": report.pct(overheads, 99),
            "overhead_max": overheads[-1] if overheads else 0.0,
            "claim_p99": report.pct(sorted(r["claim"] for r in records), 99),
            "land_p99": report.pct(sorted(r["land"] for r in records), 99),
            "landings_per_task": sum(r["landings"] for r in records) / max(1, len(records)),
            "rebases": sum(r["rebases"] for r in results),
            "pushes": sum(r["pushes"] for r in results), "rejected": sum(r["rejected"] for r in results),
            "cpu_cores": sum(r["cpu"] for r in results) / max(1e-9, seconds),
            "push_p50": report.pct(sorted(x for r in results for x in r.get("git_times", {}).get("push", [])), 50),
            "fetch_p50": report.pct(sorted(x for r in results for x in r.get("git_times", {}).get("fetch", [])), 50),
            "fetches": sum(len(r.get("git_times", {}).get("fetch", [])) for r in results),
            "problems": problems}


def run_gitswarm(root: Path, n: int, processes: int, per_worker: int, agent_time: float, stagger: bool) -> dict:
    from gitswarm import task as T
    from gitswarm.board import Board

    work = Path(tempfile.mkdtemp(prefix=f"gitswarm-{n}-", dir=root))
    hub, seed = hubs.new_hub(work, "a project worked by a benchmark swarm\n")
    hubs.guard_if_asked(hub)
    tasks = n * per_worker
    with Board(str(hub), cache=work / "cache-setup") as board:
        ids = [t.id for t in board.add([T.new_task(f"benchmark task {i}") for i in range(tasks)])]
    started = time.monotonic()

    def args_of(p: int, threads: int) -> list[str]:  # each machine its own cache (mirror, worktrees)
        os.environ["GITSWARM_CACHE"] = str(work / f"cache-m{p}")
        return ["--client", "gitswarm", str(hub), str(threads), f"m{p}", str(agent_time), "0",
                json.dumps(delays(n, processes, p, threads, agent_time, stagger))]
    results = start_clients(args_of, processes, n)
    seconds = time.monotonic() - started
    problems = [e for r in results for e in r["errors"]]
    problems += verify_hub(hub, ids, [rec for r in results for rec in r["records"]], main_start=seed)
    row = summarise("gitswarm", n, processes, tasks, agent_time, stagger, results, problems, seconds)
    if not problems:
        shutil.rmtree(work, ignore_errors=True)
    else:
        problems.append(f"hub kept in {work}")
    return row


def run_flat(root: Path, n: int, processes: int, per_worker: int, agent_time: float, hold: float,
             stagger: bool) -> dict:
    from gitswarm import task as T

    work = Path(tempfile.mkdtemp(prefix=f"flat-{n}-", dir=root))
    ids = [T.new_task("flat task").id for _ in range(n * per_worker)]
    flat.setup(work, ids)
    started = time.monotonic()
    results = start_clients(lambda p, threads: ["--client", "flat", str(work), str(threads), f"m{p}",
                                                str(agent_time), str(hold),
                                                json.dumps(delays(n, processes, p, threads, agent_time, stagger))],
                            processes, n)
    seconds = time.monotonic() - started
    problems = [e for r in results for e in r["errors"]]
    problems += flat.verify(work, ids, [rec for r in results for rec in r["records"]])
    row = summarise("flat", n, processes, len(ids), agent_time, stagger, results, problems, seconds)
    if not problems:
        shutil.rmtree(work, ignore_errors=True)
    return row


def verify_hub(hub: Path, ids: list[str], records: list[dict], main_start: Path) -> list[str]:
    """Nothing lost: every task done exactly once by the worker that landed it, its commit on main
    naming it, one such commit per task, main only fast-forwarded, git fsck clean."""
    import pygit2

    from gitswarm import task as T

    problems = []
    landed: dict[str, list[str]] = {}
    for r in records:
        landed.setdefault(r["task"], []).append(r["worker"])
    repo = pygit2.Repository(str(hub))
    main = repo.revparse_single("main").peel(pygit2.Commit)
    on_main: dict[str, list[str]] = {}  # task -> commits on main naming it
    first_parent = []
    for c in repo.walk(main.id, pygit2.enums.SortMode.TOPOLOGICAL):
        if len(c.parents) > 1:
            problems.append(f"main has a merge commit {str(c.id)[:10]}")
        first_parent.append(str(c.id))
        for line in c.message.splitlines():
            if line.startswith("Gitswarm-Task: "):
                on_main.setdefault(line.split(": ", 1)[1].strip(), []).append(str(c.id))
    for task_id in ids:
        who = landed.get(task_id, [])
        blob = repo.revparse_single(f"tasks:{T.task_path(task_id)}")
        t = T.parse(blob.data, T.task_path(task_id))
        commits = on_main.get(task_id, [])
        if len(who) != 1:
            problems.append(f"{task_id} landed by {len(who)} workers: {who}")
        elif t.status != "done" or t.attempts != 1 or (t.result or {}).get("worker") != who[0]:
            problems.append(f"{task_id} on the board: {t.status}, attempts {t.attempts}, "
                            f"by {(t.result or {}).get('worker')}; {who[0]} landed it")
        if len(commits) != 1:
            problems.append(f"{task_id}: {len(commits)} commits on main name it")
        elif (t.result or {}).get("commit") != commits[0]:
            problems.append(f"{task_id}: done with commit {(t.result or {}).get('commit')}, main has {commits[0]}")
        elif f"done/{task_id}.txt" not in repo[commits[0]].tree:
            problems.append(f"{task_id}: its commit on main lacks done/{task_id}.txt")
    extra = set(on_main) - set(ids)
    if extra:
        problems.append(f"main names {len(extra)} tasks that were never added")
    order = {c: i for i, c in enumerate(reversed(first_parent))}  # oldest first
    moves = [ln.split()[:2] for ln in (hub / "logs" / "refs" / "heads" / "main").read_text().splitlines()]
    positions = [order.get(new, -1) for _, new in moves]
    if -1 in positions or positions != sorted(positions):
        problems.append("main did not only move forward: a reflog entry is off main's history or out of order")
    fsck = sh(["git", "fsck", "--full", "--no-dangling", "--no-progress"], cwd=hub, check=False)
    said = [ln for ln in (fsck.stdout + fsck.stderr).splitlines() if ln and "unborn" not in ln]
    if fsck.returncode or said:
        problems.append(f"git fsck --full: {' / '.join(said)[:300]}")
    repo.free()
    return problems


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N = 1,16,64, agent time 4 s, 2 tasks a worker (< 2 min)")
    ap.add_argument("--workers", help="comma-separated N (1,4,16,64,256; quick 1,16,64)")
    ap.add_argument("--processes", type=int, default=4, help="client processes, the machines (4)")
    ap.add_argument("--agent-time", type=float, help="seconds the fake agent takes per task (30; quick 4)")
    ap.add_argument("--tasks-per-worker", type=int, help="tasks = N * this (1; quick 2)")
    ap.add_argument("--designs", default="gitswarm,flat", help="gitswarm, flat, or both (default)")
    ap.add_argument("--flat-hold", type=float, default=0.0,
                    help="seconds a flat agent holds the lock deciding what to claim (0)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--results", type=Path, help="write the table into this markdown file "
                    "(default benchmarks/RESULTS.md, not with --quick)")
    ap.add_argument("--plot", type=Path, help="write the plot here (default benchmarks/swarm.png, not with --quick)")
    ap.add_argument("--start", choices=["staggered", "together"], default="staggered",
                    help="staggered (default): worker i starts at i*agent_time/N, a swarm in its steady state; "
                    "together: all at once, so every wave of landings comes at the same instant")
    ap.add_argument("--client", nargs=7, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        design, where, threads, prefix, agent_time, hold, wait = a.client
        out = (gitswarm_client(where, int(threads), prefix, float(agent_time), json.loads(wait))
               if design == "gitswarm"
               else flat_client(where, int(threads), prefix, float(agent_time), float(hold), json.loads(wait)))
        print(json.dumps(out), flush=True)
        return 0
    workers = [int(x) for x in (a.workers or ("1,16,64" if a.quick else "1,4,16,64,256")).split(",")]
    agent_time = a.agent_time or (4.0 if a.quick else 30.0)
    per_worker = a.tasks_per_worker or (2 if a.quick else 1)
    designs = a.designs.split(",")
    results_md = a.results or (None if a.quick else HERE / "RESULTS.md")
    plot = a.plot or (None if a.quick else HERE / "swarm.png")

    root = hubs.isolated_root("gitswarm-swarm-")
    os.environ["GITSWARM_CACHE"] = str(root / "cache")
    command = "python benchmarks/swarm.py " + " ".join(sys.argv[1:])
    machine = report.machine()
    print(f"command: {command}\nmachine: {machine}")
    print(f"agent time {agent_time:g} s, {per_worker} tasks a worker, {a.processes} client processes; "
          f"at N={max(workers)} the steady rate is {max(workers) / agent_time:.2f} tasks/s\n", flush=True)
    started = time.monotonic()
    rows: list[dict] = []
    try:
        for n in workers:
            procs = min(a.processes, n)
            for design in designs:
                load = os.getloadavg()[0]
                stagger = a.start == "staggered"
                row = (run_gitswarm(root, n, procs, per_worker, agent_time, stagger) if design == "gitswarm"
                       else run_flat(root, n, procs, per_worker, agent_time, a.flat_hold, stagger))
                row["load_before"] = load
                rows.append(row)
                print(report.line(row), flush=True)
        print()
        table = report.table(rows)
        print(table)
        verdict = report.target(rows)
        print("\n" + verdict)
        failed = [p for r in rows for p in r["problems"]]
        if failed:
            print("\nFAILED CHECKS:\n  " + "\n  ".join(failed[:50]))
        took = time.monotonic() - started
        print(f"\ntotal {took:.0f} s, load average now {os.getloadavg()[0]:.2f}")
        if a.json:
            a.json.write_text(json.dumps({"command": command, "machine": machine, "rows": rows}, indent=1))
        if results_md and not failed:
            report.write_results(results_md, command, machine, agent_time, per_worker, a.processes, rows,
                                 verdict, took)
            print(f"wrote {results_md}")
        if plot:
            print(report.plot(plot, rows))
        return 1 if failed else 0
    finally:
        if not os.environ.get("BENCH_KEEP") and not any(r["problems"] for r in rows):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
