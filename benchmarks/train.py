"""Benchmark: the landing train against direct landing (issue 12, "Measure it").

    flock /tmp/gitswarm-bench.lock python benchmarks/train.py           # the matrix: ~50 minutes
    flock /tmp/gitswarm-bench.lock python benchmarks/train.py --quick   # 4 small rows: ~3 minutes

Each row is one real run: a hub made by `gitswarm init`, a first commit on main, then a goal
pushed to main whose front matter lists the tasks, each with a `run:` command (the model-free
agent) that sleeps the agent time and writes its own file `done/<task>` (the agent's start and
end times); a breaking task also writes `broken/<task>`. The goal's `test:` sleeps the test time
and fails when `broken/` holds a file; `land:` is the row's mode; `.gitswarm.yaml` sets
`max_attempts: 1`, so a task that breaks the test ends dead instead of being tried again. Then
`python -m gitswarm serve HUB --workers W --planners 0 --until-done` runs as a subprocess (the
sandbox on, as by default), its log kept in the row's folder, until it exits or the row's
deadline (`--deadline` for direct rows, `--train-deadline` for train rows), when it is stopped with
SIGTERM and the row is marked cut: direct landing at 64 workers lands one task per test run at
best, and would take an hour alone.

Everything is measured afterwards from git (benchmarks/landings.py: the board's history, main's
reflog and trees), except the test and agent runs, which a thread counts from outside by
their sleep processes (benchmarks/sleepwatch.py), and the train's own count from its log.
Each run is checked: every good task done, with one commit on main naming it; every breaking
task failed or dead and never on main (unless the row was cut); main only fast-forwarded; git
fsck. The script exits 1 when a check fails or a must-be-0 figure (good tasks lost, tips of
main that fail the test) is not 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's gitswarm
sys.path.insert(0, str(HERE))

import hubs  # noqa: E402
import landings  # noqa: E402
import report  # noqa: E402
import trainreport  # noqa: E402
from sleepwatch import SleepWatch  # noqa: E402

STOP_GRACE = 90.0  # seconds serve gets to stop after SIGTERM before it is killed


def culprit_names(n: int, percent: float) -> set[str]:
    """round(n * percent / 100) of the n tasks, spread evenly over them."""
    k = round(n * percent / 100)
    return {name(int((j + 0.5) * n / k)) for j in range(k)} if k else set()


def name(i: int) -> str:
    return f"task-{i:03d}"


def goal_text(mode: str, n: int, culprits: set[str], agent_arg: str, test_arg: str) -> str:
    from gitswarm.goal import FIELDS

    land = f"land: {mode}\n" if "land" in FIELDS else ""  # before the train, every goal landed directly
    if mode == "train" and not land:
        raise SystemExit("this checkout's goals have no `land:` field: the landing train is not here; "
                         "run --modes direct, or merge the train first")
    lines = ["---", land.rstrip(), f'test: "sleep {test_arg}; test -z \\"$(ls -A broken 2>/dev/null)\\""',
             'check: "true"', "judge: {every: 2h}", "tasks:"]
    for i in range(n):
        breaks = f" && mkdir -p broken && touch broken/{name(i)}" if name(i) in culprits else ""
        lines += [f"  - title: {name(i)}",
                  f'    run: "s=$(date +%s.%N); sleep {agent_arg} && mkdir -p done && '
                  f'echo $s $(date +%s.%N) > done/{name(i)}{breaks}"']
    lines += ["---", f"Benchmark goal: {n} tasks, each writes its own file; {len(culprits)} break the test.", ""]
    return "\n".join(ln for ln in lines if ln)


def make_hub(work: Path, goal: str) -> tuple[Path, str]:
    """A hub with a first commit and the goal on main; returns it and main's tip (the goal)."""
    hub, seed = hubs.new_hub(work, "a project worked by the landing-train benchmark\n")
    (seed / "goals").mkdir()
    (seed / "goals" / "bench.md").write_text(goal)
    (seed / ".gitswarm.yaml").write_text("max_attempts: 1\n")
    hubs.git(["add", "-A"], cwd=seed)
    hubs.git(["commit", "-q", "-m", "Goal: the benchmark's tasks"], cwd=seed)
    hubs.git(["push", "-q", "origin", "HEAD:refs/heads/main"], cwd=seed)
    return hub, hubs.git(["rev-parse", "HEAD"], cwd=seed).strip()


def serve_takes_train_slots() -> bool:
    out = subprocess.run([sys.executable, "-m", "gitswarm", "serve", "--help"], capture_output=True, text=True)
    return "--train-slots" in out.stdout


def run_row(root: Path, spec: dict, deadline: float, slots: int | None) -> dict:
    """One run of serve on a fresh hub, measured and checked."""
    mode, w, n = spec["mode"], spec["workers"], spec["tasks"]
    work = Path(tempfile.mkdtemp(prefix=f"{mode}-{w}w-{spec['test_time']:g}t-{spec['breaking']:g}b-", dir=root))
    nonce = f"{random.randrange(1000, 9999)}"  # the sleeps' arguments: no other process uses them,
    agent_arg, test_arg = f"{spec['agent_time']:g}.000{nonce}1", f"{spec['test_time']:g}.000{nonce}2"  # nor each other
    culprits = culprit_names(n, spec["breaking"])
    hub, since = make_hub(work, goal_text(mode, n, culprits, agent_arg, test_arg))
    argv = [sys.executable, "-m", "gitswarm", "serve", str(hub), "--workers", str(w), "--planners", "0",
            "--until-done", "--id", "bench"]
    if mode == "train" and slots is not None:
        argv += ["--train-slots", str(slots)]
    watch = SleepWatch({agent_arg: "agent", test_arg: "test"})
    watch.start()
    load = os.getloadavg()[0]
    started = time.time()
    with open(work / "serve.log", "w") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "GITSWARM_CACHE": str(work / "cache")}, start_new_session=True)
        cut_at = None
        try:
            code = proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            cut_at = time.time()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # serve's own group, started above
                code = proc.wait()
    ended = time.time()
    watch.stop()
    history = landings.read(hub, since)
    text = (work / "serve.log").read_text(errors="replace")
    row = {**spec, "culprits": len(culprits), "seconds": ended - started, "cut": cut_at is not None, "deadline": deadline,
           "load_before": load, "exit": code, "work": str(work)}
    row.update(measure(history, spec, culprits, started, cut_at, ended))
    row["test_runs"], row["agent_runs"] = len(watch.runs("test")), len(watch.runs("agent"))
    row["tests_at_once"] = watch.peak("test")
    row["runs_per_landed"] = row["test_runs"] / row["landed"] if row["landed"] else float("nan")
    row["log_train_runs"] = sum(1 for ln in text.splitlines() if "train: testing" in ln)
    row["log_rebases"] = sum(1 for ln in text.splitlines() if "main moved; rebasing" in ln)
    problems = row["problems"]
    problems += landings.fsck(hub)
    if cut_at is None and code != 0:
        problems.append(f"serve exited {code}: {' / '.join(text.splitlines()[-3:])[:300]}")
    if mode == "train" and history.untested_tips:
        problems.append(f"{len(history.untested_tips)} tip(s) of main without a Gitswarm-Tested trailer, "
                        f"e.g. {history.untested_tips[0][:10]}")
    if problems:
        problems.append(f"hub and serve.log kept in {work}")
    return row


def measure(h: landings.History, spec: dict, culprits: set[str], started: float, cut_at: float | None,
            ended: float) -> dict:
    """The row's figures and the checks of its outcome, from the hub's history."""
    agent, mode = spec["agent_time"], spec["mode"]
    stop = cut_at or ended
    ids = sorted(h.titles, key=h.titles.get)
    bad = {t for t in ids if h.titles[t] in culprits}
    problems = list(h.problems)
    if len(ids) != spec["tasks"]:
        problems.append(f"{len(ids)} tasks on the board, {spec['tasks']} in the goal")
    landed = [t for t in ids if t in h.landed_at]
    lost, caught = [], []
    for t in ids:
        acts = [a for _, a in h.actions.get(t, [])]
        status, title = h.status[t], h.titles[t]
        if t in bad:
            if t in h.landed_at:
                problems.append(f"{title} breaks the test and reached main")
            elif status in ("failed", "dead"):
                caught.append(t)
            elif cut_at is None:
                problems.append(f"{title} breaks the test and ended {status}, not failed or dead")
            continue
        if status in ("failed", "dead") or "fail" in acts or "reject" in acts:
            lost.append(t)
            problems.append(f"{title} (good) was failed: {status}, actions {', '.join(acts)}")
        elif status == "done" and len(h.on_main.get(t, [])) != 1:
            problems.append(f"{title} is done with {len(h.on_main.get(t, []))} commits on main naming it")
        elif status != "done" and cut_at is None:
            problems.append(f"{title} (good) ended {status}, not done")
    busy = agent_busy = 0.0
    for a in h.attempts:
        wall = (a.freed if a.freed is not None else stop) - a.claimed
        busy += wall
        agent_busy += min(agent, max(0.0, wall))
    latencies = []
    for t in landed:
        if mode == "train":
            handed = [when for when, act in h.actions.get(t, []) if act == "handoff" and when <= h.landed_at[t]]
            start = handed[-1] if handed else None
        else:
            start = h.agent_end.get(t)
        if start is not None:
            latencies.append(max(0.0, h.landed_at[t] - start))
    latencies.sort()
    first = min((a.claimed for a in h.attempts), default=started)
    last = stop if cut_at else max((h.landed_at[t] for t in landed), default=stop)
    span = max(1e-9, last - first)
    return {"landed": len(landed), "efficiency": agent_busy / busy if busy else 0.0,
            "attempts": len(h.attempts), "rate": len(landed) / span, "span": span,
            "latency_p50": report.pct(latencies, 50), "latency_p99": report.pct(latencies, 99),
            "latency_max": latencies[-1] if latencies else 0.0, "latencies": len(latencies),
            "caught": len(caught), "lost": len(lost), "failing_tips": len(h.failing_tips), "tips": len(h.tips),
            "ended": sum(1 for t in ids if h.status[t] in ("done", "failed", "dead", "cancelled")),
            "problems": problems}


def matrix(a: argparse.Namespace) -> list[dict]:
    rows = []
    for w in a.workers:
        for test_time in a.test_times:
            for breaking in a.breaking:
                for mode in a.modes:
                    rows.append({"mode": mode, "workers": w, "agent_time": a.agent_time, "test_time": test_time,
                                 "breaking": breaking, "tasks": w * a.tasks_per_worker})
    return rows


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="8 workers, agent 4 s, test 2 s, 0 and 10 %% breaking, both modes (~3 min)")
    ap.add_argument("--modes", default="direct,train", help="direct, train or both (default)")
    ap.add_argument("--workers", help="comma-separated worker counts, run in this order (64,16; quick 8)")
    ap.add_argument("--agent-time", type=float, help="seconds each task's agent sleeps (30; quick 4)")
    ap.add_argument("--test-times", help="comma-separated seconds the goal's test sleeps (5,30; quick 2)")
    ap.add_argument("--breaking", default="0,10", help="comma-separated percent of tasks that break the test")
    ap.add_argument("--tasks-per-worker", type=int, help="tasks = workers * this (1; quick 2)")
    ap.add_argument("--deadline", type=float, help="seconds a direct run may take before it is cut (210; quick 120)")
    ap.add_argument("--train-deadline", type=float, help="seconds a train run may take before it is cut "
                    "(420; quick 120)")
    ap.add_argument("--train-slots", type=int, help="serve's --train-slots for train rows (default: serve's)")
    ap.add_argument("--results", type=Path, help="write the table into this markdown file "
                    "(default benchmarks/RESULTS.md, not with --quick)")
    ap.add_argument("--plot", type=Path, help="write the plot here (default benchmarks/train.png, not with --quick)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--keep", action="store_true", help="keep every run's hub and serve.log")
    ap.add_argument("--from-json", type=Path, help="run nothing: print, write and plot the rows of a --json file")
    a = ap.parse_args()
    a.modes = a.modes.split(",")
    a.workers = [int(x) for x in (a.workers or ("8" if a.quick else "64,16")).split(",")]
    a.agent_time = a.agent_time or (4.0 if a.quick else 30.0)
    a.test_times = floats(a.test_times or ("2" if a.quick else "5,30"))
    a.tasks_per_worker = a.tasks_per_worker or (2 if a.quick else 1)
    a.breaking = floats(a.breaking)
    deadlines = {"direct": a.deadline or (120.0 if a.quick else 210.0),
                 "train": a.train_deadline or (120.0 if a.quick else 420.0)}
    results_md = a.results or (None if a.quick else HERE / "RESULTS.md")
    plot = a.plot or (None if a.quick else HERE / "train.png")
    if a.from_json:
        data = json.loads(a.from_json.read_text())
        rows = data["rows"]
        deadlines = {r["mode"]: r["deadline"] for r in rows}
        return 1 if publish(rows, data["command"], data["machine"], deadlines, data["took"], results_md, plot) else 0
    if "train" in a.modes and a.train_slots is not None and not serve_takes_train_slots():
        raise SystemExit("this checkout's serve has no --train-slots: the landing train is not here")

    root = hubs.isolated_root("gitswarm-train-")
    command = "python benchmarks/train.py " + " ".join(sys.argv[1:])
    machine = report.machine()
    specs = matrix(a)
    print(f"command: {command}\nmachine: {machine}\n{len(specs)} runs, cut at {deadlines['direct']:g} s (direct), "
          f"{deadlines['train']:g} s (train)\n", flush=True)
    started = time.monotonic()
    rows: list[dict] = []
    for spec in specs:
        row = run_row(root, spec, deadlines[spec["mode"]], a.train_slots)
        rows.append(row)
        print(trainreport.line(row), flush=True)
        if a.json:  # after every run: a run stopped half-way keeps the rows it measured
            a.json.write_text(json.dumps({"command": command, "machine": machine, "rows": rows,
                                          "took": time.monotonic() - started}, indent=1))
        if not a.keep and not row["problems"]:
            shutil.rmtree(row["work"], ignore_errors=True)
    took = time.monotonic() - started
    failed = publish(rows, command, machine, deadlines, took, results_md, plot)
    if not any(r["problems"] for r in rows) and not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


def publish(rows: list[dict], command: str, machine: str, deadlines: dict[str, float], took: float,
            results_md: Path | None, plot: Path | None) -> list[str]:
    """Print the table and the targets, write them into `results_md` and plot `plot`; returns the
    failed checks."""
    table = trainreport.table(rows)
    verdict = trainreport.targets(rows)
    print("\n" + table + "\n\n" + verdict)
    failed = [p for r in rows for p in r["problems"]]
    if failed:
        print("\nFAILED CHECKS:\n  " + "\n  ".join(failed[:60]))
    print(f"\ntotal {took / 60:.1f} min, load average now {os.getloadavg()[0]:.2f}")
    if results_md:
        trainreport.write_results(results_md, command, machine, deadlines, rows, table, verdict, took)
        print(f"wrote {results_md}")
    if plot:
        print(trainreport.plot(plot, rows))
    return failed


if __name__ == "__main__":
    sys.exit(main())
