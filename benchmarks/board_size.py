"""The board at size: boards of 1,000, 10,000 and 100,000 tasks on a real hub (hooks and all).

    python benchmarks/board_size.py             # 1k, 10k, 100k tasks: ~4 minutes here
    python benchmarks/board_size.py --quick     # 1k and 10k, fewer runs: ~1 minute
    python benchmarks/board_size.py --sizes 100000 --claims 200 --json out.json

For each size: the board is built with `git fast-import` (add commits of 1,000 open tasks) and
repacked as `git gc --aggressive` would (`git repack -adf`: fast-import's own deltas are poor); then
- `gitswarm status` and `gitswarm status --json` (the CLI, a process each): with a cold cache (no
  mirror: fetch and parse everything) and warm (mirror and saved board present);
- a claim from a fresh client (a new Board on a warm mirror: load, fetch, claim, push), in-process
  and as `gitswarm claim` (a process);
- claims from a warm client (one Board, one claim after another): p50 and p99;
- the hub's pre-receive hook on one claim, and git's connectivity check inside receive-pack
  (`rev-list --objects --not --all`), each on its own;
- loose objects the hub and the mirror gained per board commit, and the hub's size before and
  after `git gc`.
Numbers only; not a test.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pygit2  # noqa: E402

from boardgen import build_board  # noqa: E402
from gitswarm import git, rules  # noqa: E402
from gitswarm import task as T  # noqa: E402
from gitswarm.board import Board  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def ms(xs: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(xs) * 1000, 1), "p99": round(pct(xs, 99) * 1000, 1),
            "min": round(min(xs) * 1000, 1), "max": round(max(xs) * 1000, 1), "n": len(xs)}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def env_for(cache: Path) -> dict[str, str]:
    return dict(git.no_git_env(), GITSWARM_CACHE=str(cache), PYTHONPATH=str(ROOT),
                GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@x", GIT_COMMITTER_NAME="bench",
                GIT_COMMITTER_EMAIL="bench@x")


def cli(args: list[str], cache: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gitswarm", *args], env=env_for(cache), cwd="/",
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"gitswarm {' '.join(args)}: {proc.stderr.decode()[-500:]}")
    return took


def objects(repo: Path) -> dict[str, int]:
    out = git.out(["count-objects", "-v"], cwd=repo)
    return {k: int(v) for k, v in (ln.split(": ") for ln in out.splitlines())}


def disk_kib(repo: Path) -> int:
    return int(subprocess.run(["du", "-sk", str(repo / "objects")], capture_output=True, text=True).stdout.split()[0])


def one_size(root: Path, n: int, args) -> dict:
    hub, cache = root / f"hub-{n}.git", root / f"cache-{n}"
    r: dict = {"tasks": n}
    r["build_s"] = round(timed(lambda: build_board(hub, n, repack=False)), 1)
    r["repack_s"] = round(timed(lambda: git.run(["repack", "-adfq"], cwd=hub)), 1)
    r["hub_after_build"] = {**objects(hub), "du_kib": disk_kib(hub)}
    say = lambda what: print(f"  {n:>7} tasks: {what}", flush=True)  # noqa: E731
    say(f"built in {r['build_s']} s, repacked in {r['repack_s']} s, pack {r['hub_after_build']['size-pack']} KiB")

    # gitswarm status, cold (no mirror) then warm
    cold = []
    for i in range(args.cold_runs):
        cold.append(cli(["status", str(hub)], root / f"cold-{n}-{i}"))
    r["status_cold"] = ms(cold)
    cli(["status", str(hub)], cache)  # makes the warm cache: mirror and saved board
    r["status_warm"] = ms([cli(["status", str(hub)], cache) for _ in range(args.runs)])
    r["status_json_warm"] = ms([cli(["status", "--json", str(hub)], cache) for _ in range(args.runs)])
    say(f"status cold {r['status_cold']['p50']} ms, warm {r['status_warm']['p50']} ms, "
        f"--json warm {r['status_json_warm']['p50']} ms")

    hub_before = objects(hub)
    commits_before = int(git.out(["rev-list", "--count", "tasks"], cwd=hub))
    os.environ["GITSWARM_CACHE"] = str(cache)

    def fresh_claim(i: int) -> None:
        with Board(str(hub)) as b:
            assert b.claim(f"fresh{i}") is not None
    r["claim_fresh_client"] = ms([timed(lambda i=i: fresh_claim(i)) for i in range(args.runs)])
    r["claim_cli"] = ms([cli(["claim", str(hub), "--worker", f"cli{i}"], cache) for i in range(args.runs)])
    with Board(str(hub)) as board:
        board.refresh()
        board.claim("warm")  # the first claim fetches the heartbeat refs
        warm = [timed(lambda: board.claim("warm")) for _ in range(args.claims)]
        mirror = board.mirror.path
    r["claim_warm_client"] = ms(warm)
    say(f"claim: fresh client {r['claim_fresh_client']['p50']} ms, `gitswarm claim` {r['claim_cli']['p50']} ms, "
        f"warm client p50 {r['claim_warm_client']['p50']} ms p99 {r['claim_warm_client']['p99']} ms")

    # growth: loose objects per board commit, on the hub and in the mirror; then git gc
    commits = int(git.out(["rev-list", "--count", "tasks"], cwd=hub)) - commits_before
    hub_after = objects(hub)
    r["board_commits"] = commits
    r["hub_loose_per_1000_commits"] = round((hub_after["count"] - hub_before["count"]) * 1000 / commits)
    r["hub_loose_kib_per_1000_commits"] = round((hub_after["size"] - hub_before["size"]) * 1000 / commits)
    # the hooks' share: pre-receive on a claim, and receive-pack's connectivity check
    repo = pygit2.Repository(str(hub))
    with Board(str(hub)) as board:
        board.refresh()
        tip, target = board.tip, board.ready()[0]
    claimed = rules.claim(target, "bench")
    commit = git.write_commit(repo, tip, {claimed.path: T.dump(claimed)},
                              rules.message("claim", [claimed], "bench", claimed.claim.token), ("bench", "bench@x"))
    line = f"{tip} {commit} refs/heads/tasks\n".encode()
    hook_env = dict(git.no_git_env(), GIT_DIR=".")
    pre, conn = [], []
    for _ in range(args.runs * 2):
        start = time.perf_counter()
        proc = subprocess.run([str(hub / "hooks" / "pre-receive")], input=line, cwd=hub, env=hook_env,
                              capture_output=True)
        pre.append(time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
        start = time.perf_counter()
        subprocess.run(["git", "rev-list", "--objects", "--stdin", "--not", "--all", "--quiet"],
                       input=f"{commit}\n".encode(), cwd=hub, env=hook_env, check=True)
        conn.append(time.perf_counter() - start)
    r["pre_receive_claim"], r["connectivity_check"] = ms(pre), ms(conn)
    say(f"pre-receive {r['pre_receive_claim']['p50']} ms, connectivity check {r['connectivity_check']['p50']} ms")

    r["mirror"] = objects(mirror)
    r["hub_before_gc"] = {**hub_after, "du_kib": disk_kib(hub)}
    r["gc_s"] = round(timed(lambda: git.run(["gc", "-q"], cwd=hub)), 2)
    r["hub_after_gc"] = {**objects(hub), "du_kib": disk_kib(hub)}
    say(f"{commits} board commits: hub +{r['hub_loose_per_1000_commits']} loose objects "
        f"(+{r['hub_loose_kib_per_1000_commits']} KiB) per 1,000; gc {r['gc_s']} s: "
        f"{r['hub_before_gc']['du_kib']} -> {r['hub_after_gc']['du_kib']} KiB on disk")
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1k and 10k tasks, fewer runs")
    ap.add_argument("--sizes", default=None, help="comma-separated board sizes (default 1000,10000,100000)")
    ap.add_argument("--claims", type=int, default=None, help="warm-client claims per size (default 100; quick 30)")
    ap.add_argument("--runs", type=int, default=None, help="runs of each other timing (default 5; quick 3)")
    ap.add_argument("--cold-runs", type=int, default=None, help="cold-cache status runs (default 2; quick 1)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = ap.parse_args()
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")]
    args.claims = args.claims or (30 if args.quick else 100)
    args.runs = args.runs or (3 if args.quick else 5)
    args.cold_runs = args.cold_runs or (1 if args.quick else 2)
    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}, git "
          f"{git.out(['--version']).split()[-1]}, pygit2 {pygit2.__version__} (libgit2 {pygit2.LIBGIT2_VERSION}), "
          f"{platform.platform()}, load {os.getloadavg()[0]:.2f}", flush=True)
    started = time.time()
    results = []
    with tempfile.TemporaryDirectory(prefix="gitswarm-size-") as tmp:
        for n in sizes:
            results.append(one_size(Path(tmp), n, args))
    print(f"done in {time.time() - started:.0f} s, load {os.getloadavg()[0]:.2f}")
    keys = ["status_cold", "status_warm", "status_json_warm", "claim_fresh_client", "claim_cli",
            "claim_warm_client", "pre_receive_claim", "connectivity_check"]
    print("\n| ms (p50; p99 for warm claims) | " + " | ".join(f"{r['tasks']:,}" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for k in keys:
        cell = (lambda r: f"{r[k]['p50']} / {r[k]['p99']}") if k == "claim_warm_client" else (lambda r: f"{r[k]['p50']}")
        print(f"| {k} | " + " | ".join(cell(r) for r in results) + " |")
    for k, f in [("hub pack after build (KiB)", lambda r: r["hub_after_build"]["size-pack"]),
                 ("hub loose objects per 1,000 board commits", lambda r: r["hub_loose_per_1000_commits"]),
                 ("hub loose KiB per 1,000 board commits", lambda r: r["hub_loose_kib_per_1000_commits"]),
                 ("hub objects/ on disk before gc (KiB)", lambda r: r["hub_before_gc"]["du_kib"]),
                 ("git gc (s)", lambda r: r["gc_s"]),
                 ("hub objects/ on disk after gc (KiB)", lambda r: r["hub_after_gc"]["du_kib"]),
                 ("mirror loose objects / packs at the end", lambda r: f"{r['mirror']['count']} / {r['mirror']['packs']}")]:
        print(f"| {k} | " + " | ".join(str(f(r)) for r in results) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
