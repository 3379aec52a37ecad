"""Benchmark: what one push to a gitswarm hub costs, and how many claims per second it takes.

    python benchmarks/claims.py            # full: 1, 8, 32, 64 claimers (naive up to 32)
    python benchmarks/claims.py --quick    # 1, 8, 32 claimers, 100 tasks (naive up to 8)
    python benchmarks/claims.py --claimers 1,64 --layouts naive --naive-max 64 --skip-pushes

Part 1 times one `git push` of a one-file commit to a bare repository on a local path without hooks,
to a gitswarm hub's `main` and, as a claim commit, to its `tasks`; then the hooks' start-up, a fetch.

Part 2 drains a fresh hub with N concurrent claimers, each looping `board.claim(name)` until None:

  group-1p  N threads in one process sharing one Board (gitswarm's group commit)
  group-4p  N threads over --processes processes, one Board each (they race each other)
  naive     N processes with one claimer each (per-claimer optimistic retry), N <= --naive-max

Claimers are OS processes of this script; they load the board, then start together. claims/s runs
from that start to the last claim; × is to the mean single-claimer rate (measured first and last).
Every run is checked from the hub (verify); exit 1 if a check fails. After --budget s a run stops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gitswarm
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hubs import guard_if_asked  # noqa: E402


def sh(args: list[str], cwd: Path | None = None, input: bytes | None = None,
       check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(args, cwd=cwd, input=input, capture_output=True)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def stats_ms(xs: list[float]) -> dict[str, float]:
    xs = sorted(x * 1000 for x in xs)
    return {"median": statistics.median(xs), "min": xs[0], "p90": xs[round(0.9 * (len(xs) - 1))],
            "max": xs[-1], "n": len(xs)}


# ---------------------------------------------------------------- part 1: one push

def timed(n: int, action, prepare=lambda i: None, warm: int = 0) -> dict[str, float]:
    """Run prepare(i) then time action(), n times after `warm` untimed rounds."""
    times = []
    for i in range(warm + n):
        prepare(i)
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return stats_ms(times[warm:])


def measure_pushes(root: Path, runs: int) -> dict[str, dict[str, float]]:
    from gitswarm import hookbuild, rules, task as T
    from gitswarm.board import Board
    from gitswarm.install import init, install_hooks

    def pushes(clone: Path, ref: str, change) -> dict[str, float]:
        return timed(runs, lambda: sh(["git", "push", "-q", "origin", f"HEAD:{ref}"], cwd=clone),
                     lambda i: change(clone, i), warm=2)

    def edit(clone: Path, i: int, name: str = "f.txt") -> None:
        (clone / name).write_text(f"change {i}\n")
        sh(["git", "add", name], cwd=clone)
        sh(["git", "commit", "-q", "-m", f"change {i}"], cwd=clone)

    out = {}
    plain, hub, mirror = root / "plain.git", root / "hub.git", root / "mirror.git"
    sh(["git", "init", "-q", "--bare", str(plain)])
    for f in (plain / "hooks").glob("*"):
        f.unlink()
    sh(["git", "clone", "-q", str(plain), str(root / "c1")])
    out["plain bare repo, no hooks (main)"] = pushes(root / "c1", "refs/heads/main", edit)

    init(hub)
    guard_if_asked(hub)
    sh(["git", "clone", "-q", str(hub), str(root / "c2")])
    sh(["git", "checkout", "-q", "-b", "main"], cwd=root / "c2")
    out["gitswarm hub (main)"] = pushes(root / "c2", "refs/heads/main", edit)

    with Board(str(hub), cache=root / "cache-part1") as board:
        added = board.add([T.new_task(f"push timing {i}") for i in range(2 * (runs + 2))])
    sh(["git", "clone", "-q", "--branch", "tasks", str(hub), str(root / "c3")])

    def claim(clone: Path, i: int) -> None:  # a claim commit as gitswarm writes it, pushed by git
        new = rules.claim(added[i], "pusher")
        (clone / new.path).write_bytes(T.dump(new))
        sh(["git", "add", new.path], cwd=clone)
        sh(["git", "commit", "-q", "-F", "-"], cwd=clone,
           input=rules.message("claim", [new], "pusher", new.attempts).encode())
    out["gitswarm hub (a claim commit on tasks)"] = pushes(root / "c3", "refs/heads/tasks", claim)
    # the same, as the board pushes it: to refs/for/, applied by the hub's proc-receive (applier.py)
    sh(["git", "clone", "-q", "--branch", "tasks", str(hub), str(root / "c4")])
    out["gitswarm hub (the same, through refs/for/)"] = pushes(root / "c4", "refs/for/heads/tasks",
                                                               lambda clone, i: claim(clone, runs + 2 + i))

    n = max(10, runs // 2)
    hook_env = dict(os.environ, GIT_DIR=str(hub))
    for name, args, env in [("python -c pass", [sys.executable, "-c", "pass"], None),
                            ("python -S -c pass", [sys.executable, "-S", "-c", "pass"], None),
                            ("hub's pre-receive, empty input", [str(hub / "hooks" / "pre-receive")], hook_env),
                            ("hub's post-receive, empty input", [str(hub / "hooks" / "post-receive")], hook_env)]:
        out[name] = timed(n, lambda: subprocess.run(args, input=b"", capture_output=True, env=env, cwd=hub))
    client = hub / hookbuild.CLIENT
    if client.exists():  # the same hook through the shim's bash: no client it may run
        client.chmod(0o644)
        install_hooks(hub, direct=False)
        out["hub's post-receive, empty input, in bash (no C client)"] = timed(
            n, lambda: subprocess.run([str(hub / "hooks" / "post-receive")], input=b"", capture_output=True,
                                      env=hook_env, cwd=hub))
        client.chmod(0o755)
        install_hooks(hub)

    sh(["git", "init", "-q", "--bare", str(mirror)])  # what a claimer does after a rejected push:

    def new_commit(i: int) -> None:
        edit(root / "c1", i, "g.txt")
        sh(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], cwd=root / "c1")
    out["git fetch of 1 new commit"] = timed(
        n, lambda: sh(["git", "fetch", "-q", "--no-tags", str(plain), "+refs/heads/main:refs/m"], cwd=mirror),
        new_commit)
    return out


# ---------------------------------------------------------------- part 2: claimers

def worker(hub: str, threads: int, prefix: str) -> None:
    """One claimer process: `threads` claimers sharing one Board. Talks to the parent over stdio."""
    from gitswarm.board import Board

    board = Board(hub)
    board.refresh()  # load the board before the start, like a worker that has been running
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    stop = threading.Event()
    threading.Thread(target=lambda: sys.stdin.readline().strip() == "stop" and stop.set(), daemon=True).start()
    claims, errors, stopped = [], [], []

    def claimer(name: str) -> None:
        while not stop.is_set():
            try:
                t = board.claim(name)
            except Exception as e:  # noqa: BLE001 - reported, counted as a failed check
                errors.append(f"{name}: {type(e).__name__}: {e}")
                return
            if t is None:
                return
            claims.append((t.id, name, time.monotonic()))
        stopped.append(name)

    pool = [threading.Thread(target=claimer, args=(f"{prefix}-{i}",)) for i in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    print(json.dumps({"claims": claims, "pushes": board.pushes, "rejected": board.rejected_pushes,
                      "errors": errors, "stopped": bool(stopped), "end": time.monotonic(),
                      "cpu": sum(u.ru_utime + u.ru_stime for u in usage)}), flush=True)
    board.close()


def run_claimers(root: Path, layout: str, claimers: int, processes: int, tasks: int, budget: float) -> dict:
    from gitswarm import task as T
    from gitswarm.board import Board
    from gitswarm.install import init

    work = Path(tempfile.mkdtemp(prefix=f"{layout}-{claimers}-", dir=root))
    hub = work / "hub.git"
    init(hub)
    guard_if_asked(hub)
    with Board(str(hub), cache=work / "cache-setup") as board:
        ids = {t.id for t in board.add([T.new_task(f"benchmark task {i}") for i in range(tasks)])}
    env = dict(os.environ, GITSWARM_CACHE=str(work / "cache"))
    procs = []
    for p in range(processes):
        n = claimers // processes + (p < claimers % processes)
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", str(hub), str(n), f"p{p}"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))
    for proc in procs:
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("a claimer process failed to start")

    def say(word: bytes) -> None:
        for proc in procs:
            try:
                proc.stdin.write(word + b"\n")
                proc.stdin.flush()
            except (OSError, ValueError):  # it has exited already
                pass
    t0 = time.monotonic()
    say(b"go")
    finished = threading.Event()
    threading.Thread(target=lambda: finished.wait(budget) or say(b"stop"), daemon=True).start()
    outputs = [proc.stdout.read() for proc in procs]  # not communicate(): stdin must stay open for "stop"
    finished.set()
    for proc in procs:
        proc.wait()
    results = [json.loads(o.decode().splitlines()[-1]) for o in outputs]

    got: dict[str, list[str]] = {}  # task -> the claimers told they won it
    for task_id, name, _ in (c for r in results for c in r["claims"]):
        got.setdefault(task_id, []).append(name)
    claims = sum(len(r["claims"]) for r in results)
    last = max((t for r in results for *_, t in r["claims"]), default=t0)
    pushes, rejected = sum(r["pushes"] for r in results), sum(r["rejected"] for r in results)
    stopped = any(r["stopped"] for r in results)
    problems = [e for r in results for e in r["errors"]]
    problems += verify(hub, ids, got, everyone_got_none=not stopped and not problems)
    row = {"layout": layout, "claimers": claimers, "processes": processes, "tasks": tasks, "claims": claims,
           "seconds": last - t0, "rate": claims / (last - t0) if last > t0 else 0.0,
           "pushes": pushes, "rejected": rejected, "rejected_per_claim": rejected / claims if claims else 0.0,
           "claims_per_ok_push": claims / (pushes - rejected) if pushes > rejected else 0.0,
           "cpu_cores": sum(r["cpu"] for r in results) / max(1e-9, max(r["end"] for r in results) - t0),
           "left": tasks - len(got), "stopped": stopped, "problems": problems}
    if problems:
        problems.append(f"hub kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return row


def verify(hub: Path, ids: set[str], got: dict[str, list[str]], everyone_got_none: bool) -> list[str]:
    """Nothing lost: what the claimers were told is exactly what the hub holds."""
    import pygit2

    from gitswarm import task as T

    problems = [f"{i} handed to {len(w)} claimers: {w}" for i, w in got.items() if len(w) != 1]
    if everyone_got_none and set(got) != ids:
        problems.append(f"every claimer got None, yet {len(ids - set(got))} tasks were never handed out")
    repo = pygit2.Repository(str(hub))
    on_hub = {}
    for folder in repo.revparse_single("tasks").peel(pygit2.Commit).tree["tasks"]:
        for blob in folder:
            t = T.parse(blob.data, f"tasks/{folder.name}/{blob.name}")
            on_hub[t.id] = t
    if set(on_hub) != ids:
        problems.append(f"the hub holds {len(on_hub)} tasks; {len(ids)} were added")
    for task_id, t in on_hub.items():
        want = got.get(task_id, [None])[0]
        if want is None and (t.status != "open" or t.attempts):
            problems.append(f"{task_id} is {t.status} on the hub, but no claimer was told it won")
        elif want is not None and (t.status, t.attempts, t.claim and t.claim.worker) != ("claimed", 1, want):
            problems.append(f"{task_id} on the hub: {t.status}, attempts {t.attempts}, "
                            f"holder {t.claim and t.claim.worker}; {want} was told it won")
    log = sh(["git", "log", "--format=%(trailers:key=Gitswarm-Action,valueonly,separator=%x2C)%x09"
              "%(trailers:key=Gitswarm-Task,valueonly,separator=%x2C)", "tasks"], cwd=hub).stdout.decode()
    in_log = [task.strip() for action, task in (ln.split("\t", 1) for ln in log.splitlines() if "\t" in ln)
              if action.strip() == "claim"]
    if sorted(in_log) != sorted(got):
        problems.append(f"git log tasks holds {len(in_log)} claim commits for {len(got)} claims")
    beats = sh(["git", "for-each-ref", "--format=%(refname:lstrip=3)", "refs/gitswarm/heartbeats"],
               cwd=hub).stdout.decode().split()
    if {w[0] for w in got.values()} - set(beats):
        problems.append("a claimer that won has no heartbeat ref on the hub")
    fsck = sh(["git", "fsck", "--full", "--no-dangling", "--no-progress"], cwd=hub, check=False)
    said = [ln for ln in (fsck.stdout + fsck.stderr).decode().splitlines() if ln and "unborn" not in ln]
    if fsck.returncode or said:
        problems.append(f"git fsck --full: {' / '.join(said)[:300]}")
    repo.free()
    return problems


# ---------------------------------------------------------------- report

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,8,32 claimers, 100 tasks, naive up to 8")
    ap.add_argument("--tasks", type=int, help="per group run (200; quick 100); 1 claimer: min(tasks, 40); naive: 64")
    ap.add_argument("--claimers", help="comma-separated (1,8,32,64; quick 1,8,32); 1 is the single claimer")
    ap.add_argument("--processes", type=int, default=4, help="processes of the multi-process group layout (4)")
    ap.add_argument("--layouts", default="group-1p,group-4p,naive", help="any of group-1p, group-4p, naive")
    ap.add_argument("--naive-max", type=int, help="largest N run naive (32; quick 8)")
    ap.add_argument("--budget", type=float, help="seconds before a run is told to stop (30; quick 20)")
    ap.add_argument("--skip-pushes", action="store_true", help="skip part 1")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], int(a.worker[1]), a.worker[2])
        return 0
    tasks = a.tasks or (100 if a.quick else 200)
    claimers = [int(x) for x in (a.claimers or ("1,8,32" if a.quick else "1,8,32,64")).split(",")]
    naive_max = a.naive_max if a.naive_max is not None else (8 if a.quick else 32)
    budget = a.budget or (20.0 if a.quick else 30.0)
    layouts = {"group-Pp" if x.startswith("group-") and x != "group-1p" else x for x in a.layouts.split(",")}

    root = Path(tempfile.mkdtemp(prefix="gitswarm-bench-"))
    (root / "home").mkdir()  # an empty HOME (no user git config), a fixed identity, no inherited GIT_*
    for k in [k for k in os.environ if k.startswith("GIT_")]:
        del os.environ[k]
    os.environ.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "home"), GIT_CONFIG_NOSYSTEM="1",
                      GITSWARM_CACHE=str(root / "cache"), GIT_AUTHOR_NAME="bench", GIT_COMMITTER_NAME="bench",
                      GIT_AUTHOR_EMAIL="bench@invalid", GIT_COMMITTER_EMAIL="bench@invalid", LC_ALL="C")
    import pygit2

    started = time.monotonic()
    print("command: python benchmarks/claims.py " + " ".join(sys.argv[1:]))
    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}, "
          f"{sh(['git', '--version']).stdout.decode().strip()}, pygit2 {pygit2.__version__} "
          f"(libgit2 {pygit2.LIBGIT2_VERSION}), {platform.platform()}, load {os.getloadavg()[0]:.2f}")
    out: dict = {"argv": sys.argv[1:], "pushes": {}, "runs": []}
    try:
        if not a.skip_pushes:
            print("\n## Part 1: one push of a one-file commit to a bare repository on a local path (ms)\n")
            out["pushes"] = measure_pushes(root, 8 if a.quick else 20)
            print("| what | median | min | p90 | max | n |\n|---|---|---|---|---|---|")
            for k, s in out["pushes"].items():
                print(f"| {k} | {s['median']:.1f} | {s['min']:.1f} | {s['p90']:.1f} | {s['max']:.1f} | {s['n']} |")

        print(f"\n## Part 2: claimers draining a fresh hub (budget {budget:.0f} s a run)\n", flush=True)
        runs = out["runs"]

        def do(layout: str, n: int, procs: int, ntasks: int) -> dict:
            r = run_claimers(root, layout, n, procs, ntasks, budget)
            runs.append(r)
            print(f"  {layout:9} {n:3} claimers: {r['claims']} claims, {r['rate']:.1f}/s, "
                  f"{r['rejected_per_claim']:.2f} rejected/claim, {r['problems'] or 'checks ok'}", flush=True)
            return r

        first = do("1 claimer", 1, 1, min(tasks, 40))
        for n in (n for n in claimers if n > 1):
            if "group-1p" in layouts:
                do("group-1p", n, 1, tasks)
            if "group-Pp" in layouts:
                do(f"group-{min(a.processes, n)}p", n, min(a.processes, n), tasks)
            if "naive" in layouts and n <= naive_max:
                do("naive", n, n, max(n, min(tasks, 64)))
        last = do("1 claimer", 1, 1, min(tasks, 40))
        base = (first["rate"] + last["rate"]) / 2
        out["single_claimer"] = [first["rate"], last["rate"]]

        print(f"\nsingle-claimer rate {first['rate']:.1f}/s at the start, {last['rate']:.1f}/s at the end; "
              f"× is to their mean, {base:.1f}/s\n")
        print("| layout | claimers | processes | tasks | claims | claims/s | × 1 claimer | rejected/claim "
              "| pushes | claims per accepted push | CPU (cores) | end | checks |")
        print("|" + "---|" * 13)
        for r in runs:
            end = (f"{r['left']} left" if r["left"] else "all claimed") + (", stopped" if r["stopped"] else "")
            print(f"| {r['layout']} | {r['claimers']} | {r['processes']} | {r['tasks']} | {r['claims']} "
                  f"| {r['rate']:.1f} | {r['rate'] / base:.2f} | {r['rejected_per_claim']:.2f} | {r['pushes']} "
                  f"| {r['claims_per_ok_push']:.1f} | {r['cpu_cores']:.2f} | {end}, {r['seconds']:.0f} s "
                  f"| {'FAILED' if r['problems'] else 'ok'} |")

        top, bar = max(claimers), max(first["rate"], last["rate"])
        print(f"\ntarget: {top} claimers >= the higher single-claimer rate ({bar:.1f}/s), "
              "<= 1 rejected push per claim, all claimed, nothing lost")
        for r in (r for r in runs if r["claimers"] == top > 1):
            met = r["rate"] >= bar and r["rejected_per_claim"] <= 1 and not r["left"] and not r["problems"]
            print(f"  {r['layout']:9} {r['rate']:.1f}/s, {r['rejected_per_claim']:.2f} rejected/claim: "
                  f"{'MET' if met else 'MISSED'}")
        failed = [p for r in runs for p in r["problems"]]
        if failed:
            print("\nFAILED CHECKS:\n  " + "\n  ".join(failed))
        print(f"\ntotal {time.monotonic() - started:.0f} s, load average now {os.getloadavg()[0]:.2f}")
        if a.json:
            a.json.write_text(json.dumps(out, indent=1))
        return 1 if failed else 0
    finally:
        if not os.environ.get("BENCH_KEEP") and not any(r["problems"] for r in out["runs"]):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
