"""What a repository's refs cost every push: receive-pack advertises all of them to the pusher (it
has no ref filter) and its connectivity check lists them. A plain `git push` of a one-file commit
to a bare repository without hooks that holds N refs besides main (packed, as `git gc` leaves
them, or with --loose one file each, as pushes leave them; named as best of N's attempts refs),
at each N. Why gitswarm/runarchive.py folds the runs
and the attempts refs of ended tasks into two archive refs. Not a test.

    python benchmarks/refs.py                          # N = 0, 2,000, 20,000, 100,000; 15 pushes each
    python benchmarks/refs.py --refs 0,2000 --pushes 30
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hubs import git, isolated_root  # noqa: E402


def timed_pushes(root: Path, extra: int, pushes: int, loose: bool) -> list[float]:
    bare, clone = root / f"r{extra}.git", root / f"c{extra}"
    git(["init", "-q", "--bare", str(bare)], cwd=root)
    for hook in (bare / "hooks").glob("*"):
        hook.unlink()
    git(["clone", "-q", str(bare), str(clone)], cwd=root)
    (clone / "f.txt").write_text("0\n")
    git(["add", "f.txt"], cwd=clone)
    git(["commit", "-q", "-m", "first"], cwd=clone)
    git(["push", "-q", "origin", "HEAD:refs/heads/main"], cwd=clone)
    first = git(["rev-parse", "HEAD"], cwd=clone).strip()
    script = "".join(f"create refs/gitswarm/attempts/t-{i // 16:06x}/{i % 16 + 1} {first}\n" for i in range(extra))
    subprocess.run(["git", "update-ref", "--stdin"], input=script.encode(), cwd=bare, check=True)
    if not loose:
        git(["pack-refs", "--all"], cwd=bare)
    took = []
    for i in range(pushes + 2):  # the first two warm the caches: not counted
        (clone / "f.txt").write_text(f"{i + 1}\n")
        git(["commit", "-q", "-am", f"change {i}"], cwd=clone)
        start = time.perf_counter()
        git(["push", "-q", "origin", "HEAD:refs/heads/main"], cwd=clone)
        if i >= 2:
            took.append(time.perf_counter() - start)
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refs", default="0,2000,20000,100000", help="the numbers of refs besides main, comma-separated")
    ap.add_argument("--pushes", type=int, default=15)
    ap.add_argument("--loose", action="store_true", help="leave the refs loose, one file each, as pushes leave "
                                                          "them until `git gc` packs them")
    a = ap.parse_args()
    counts = [int(n) for n in a.refs.split(",")]
    root = isolated_root("gitswarm-refs-")
    rows = []
    try:
        for n in counts:
            took = sorted(x * 1000 for x in timed_pushes(root, n, a.pushes, a.loose))
            rows.append((n, statistics.median(took), took[round(0.9 * (len(took) - 1))]))
            print(f"  {n:>7,} refs: push median {rows[-1][1]:.1f} ms", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()
    print(f"\npython benchmarks/refs.py --refs {a.refs} --pushes {a.pushes}{' --loose' * a.loose}; "
          f"refs {'loose' if a.loose else 'packed'}; {os.cpu_count()} cores, python "
          f"{platform.python_version()}, {git(['--version'], cwd=Path.cwd()).strip()}, load {load[0]:.1f} at the end, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    base = rows[0][1]
    print("| refs besides main | push median, ms | p90 | x the first row |\n|---|---|---|---|")
    for n, median, p90 in rows:
        print(f"| {n:,} | {median:.1f} | {p90:.1f} | {median / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
