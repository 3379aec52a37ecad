"""Benchmark: a claim through each transport a hub is served over, on loopback.

    python benchmarks/transports.py             # path, git://, http, ssh, ssh-mux: about 2 minutes
    python benchmarks/transports.py --quick     # fewer claims
    python benchmarks/transports.py --transports path,ssh --json out.json

For each transport, a fresh hub (`gitswarm init`, its hooks) with a board of open tasks, served by:
  path   the bare repository's path (git runs receive-pack locally)
  git    `git daemon --enable=receive-pack`
  http   `git http-backend` as a CGI behind Basic auth (tests/servers.py: a small Python HTTP server
         that forks the backend per request, as a web server's CGI module does)
  ssh    openssh's sshd, the key's forced command running git-shell (as docs/serving.md sets it up)
  ssh-mux  the same, the client reusing one connection (ssh's ControlMaster, as docs/serving.md advises)
and measured from one client process:
  ls-remote   what an idle worker's poll costs (one round trip, no objects)
  claim       one claimer, one claim after another: each is a fetch of tasks and an atomic push
              of the claim commit and the heartbeat ref (median and p90)
  16 threads  16 claimers sharing one Board (group commit), claims/s until --claims are taken

Every run is checked on the hub: each task claimed at most once, one claim commit per claim.
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
sys.path.insert(0, str(ROOT))  # this checkout's gitswarm
sys.path.insert(0, str(ROOT / "tests"))  # the loopback servers of the tests
sys.path.insert(0, str(ROOT / "benchmarks"))


def ms(xs: list[float]) -> dict[str, float]:
    xs = sorted(x * 1000 for x in xs)
    return {"median": statistics.median(xs), "p90": xs[round(0.9 * (len(xs) - 1))], "n": len(xs)}


def make_hub(root: Path, tasks: int) -> Path:
    from gitswarm import task as T
    from gitswarm.board import Board
    from gitswarm.install import init

    hub = root / "hub.git"
    init(hub)
    subprocess.run(["git", "config", "http.receivepack", "true"], cwd=hub, check=True)
    from hubs import guard_if_asked

    guard_if_asked(hub)
    with Board(str(hub)) as board:
        for start in range(0, tasks, 100):
            board.add([T.new_task(f"Task {i}") for i in range(start, min(tasks, start + 100))])
    return hub


def serve(transport: str, hub: Path, root: Path):
    """(URL, extra environment, server or None)."""
    from servers import GitDaemon, GitHTTP, SSHServer, sshd_missing

    if transport == "path":
        return str(hub), {}, None
    if transport == "git":
        server = GitDaemon(hub.parent)
        return server.url(hub.name), {}, server
    if transport == "http":
        server = GitHTTP(hub.parent, require_auth=True)
        return server.url(hub.name, user="alice"), {}, server
    if transport in ("ssh", "ssh-mux"):
        why = sshd_missing()
        if why:
            raise RuntimeError(why)
        server = SSHServer(root)
        return server.url(hub, "alice"), server.env(multiplex=transport == "ssh-mux"), server
    raise ValueError(transport)


def measure(transport: str, claims: int, group_claims: int) -> dict:
    from gitswarm.board import Board

    with tempfile.TemporaryDirectory(prefix=f"gs-bench-{transport}-") as tmp:
        root = Path(tmp)
        os.environ["GITSWARM_CACHE"] = str(root / "cache")
        hub = make_hub(root, claims + group_claims + 16)
        url, env, server = serve(transport, hub, root)
        os.environ.update(env)
        try:
            polls = []
            for _ in range(20):
                start = time.perf_counter()
                subprocess.run(["git", "ls-remote", url, "refs/heads/tasks"], check=True, capture_output=True)
                polls.append(time.perf_counter() - start)
            got: list[str] = []
            with Board(url) as board:
                board.refresh()
                times = []
                for i in range(claims):
                    start = time.perf_counter()
                    t = board.claim("solo")
                    times.append(time.perf_counter() - start)
                    assert t is not None
                    got.append(t.id)
            with Board(url) as board:
                board.refresh()
                lock, taken = threading.Lock(), []

                def claimer(n: int) -> None:
                    while True:
                        with lock:
                            if len(taken) >= group_claims:
                                return
                        t = board.claim(f"g{n}")
                        if t is None:
                            return
                        with lock:
                            taken.append(t.id)
                threads = [threading.Thread(target=claimer, args=(n,)) for n in range(16)]
                start = time.perf_counter()
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                group_seconds = time.perf_counter() - start
                pushes = board.pushes
            got += taken
            problems = verify(hub, got)
            return {"transport": transport, "ls_remote_ms": ms(polls), "claim_ms": ms(times),
                    "solo_claims_per_s": claims / sum(times),
                    "group16_claims_per_s": len(taken) / group_seconds, "group16_claims": len(taken),
                    "group16_pushes": pushes, "problems": problems}
        finally:
            if server is not None:
                server.stop()
            for name in env:
                os.environ.pop(name, None)


def verify(hub: Path, got: list[str]) -> list[str]:
    """Each claim handed out once, each on the hub as claimed, one claim commit per claim."""
    import yaml

    problems = []
    if len(got) != len(set(got)):
        problems.append(f"{len(got) - len(set(got))} tasks handed out twice")
    subjects = subprocess.run(["git", "log", "--format=%s", "tasks"], cwd=hub, capture_output=True, text=True,
                              check=True).stdout.splitlines()
    claim_commits = [s for s in subjects if s.startswith("claim ")]
    if len(claim_commits) != len(got):
        problems.append(f"{len(claim_commits)} claim commits for {len(got)} claims")
    for tid in got[:: max(1, len(got) // 20)]:  # a sample of the task files
        text = subprocess.run(["git", "show", f"tasks:tasks/{tid[2:4]}/{tid}.yaml"], cwd=hub, capture_output=True,
                              text=True).stdout
        if (yaml.safe_load(text) or {}).get("status") != "claimed":
            problems.append(f"{tid} is not claimed on the hub")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transports", default="path,git,http,ssh,ssh-mux")
    parser.add_argument("--claims", type=int, default=40, help="sequential claims per transport")
    parser.add_argument("--group-claims", type=int, default=200, help="claims taken by the 16 threads")
    parser.add_argument("--quick", action="store_true", help="15 sequential and 60 group claims")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.claims, args.group_claims = 15, 60
    print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"load {os.getloadavg()[0]:.1f}")
    results, failed = [], False
    for transport in args.transports.split(","):
        try:
            r = measure(transport, args.claims, args.group_claims)
        except RuntimeError as e:
            print(f"{transport}: skipped: {e}")
            continue
        results.append(r)
        failed |= bool(r["problems"])
        print(f"{transport}: done" + (f"; PROBLEMS: {r['problems']}" if r["problems"] else ""), flush=True)
    base = next((r for r in results if r["transport"] == "path"), None)
    print("\n| transport | ls-remote ms (median) | claim ms (median / p90) | claims/s, 1 claimer | "
          "claims/s, 16 threads (pushes) |")
    print("|---|---|---|---|---|")
    for r in results:
        ratio = f" ({r['claim_ms']['median'] / base['claim_ms']['median']:.1f}x path)" if base else ""
        print(f"| {r['transport']} | {r['ls_remote_ms']['median']:.1f} | {r['claim_ms']['median']:.0f} / "
              f"{r['claim_ms']['p90']:.0f}{ratio} | {r['solo_claims_per_s']:.1f} | "
              f"{r['group16_claims_per_s']:.1f} ({r['group16_pushes']} for {r['group16_claims']}) |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
