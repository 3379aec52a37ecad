"""Issue 17: what a push to a hub costs with the resident guard and without, side by side in one run.

    python benchmarks/speed.py              # 30 pushes a row
    python benchmarks/speed.py --runs 10

Each row is timed on the same hub with no guard (the hooks check in process, as on a hub whose
`serve` is not running) and with the resident guard up (gitswarm/guardserver.py), each through
the shim's Python client (gitswarm/hookclient.py) and through the C client init builds
(hooks/hookclient.c, the shims' interpreter; "py" columns: made not executable, and sh's shims
written, which then run Python), the four
interleaved push by push so that the machine's load falls on all alike. Rows: a plain
`git push` to a bare repository without hooks; pushes to a hub of a commit on main, a claim
(Board.claim: the claim and its heartbeat ref, a new worker's), a landing (Board.land: the work on
main and the completion on tasks, atomic) and a completion (Board.complete), each also as the
`git push` inside the call alone (the hub's part: the rest is the client's own work, building
commits and keeping its view); each hook alone, as git runs it, on a claim's input. Not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's gitswarm
sys.path.insert(0, str(ROOT / "benchmarks"))

from hubs import git, isolated_root, new_hub  # noqa: E402


MODES = ("none-py", "none", "guard-py", "guard")
TITLES = {"none-py": "no guard, py", "none": "no guard, C", "guard-py": "guard, py", "guard": "guard, C"}


def ms(xs: list[float]) -> str:
    xs = sorted(x * 1000 for x in xs)
    return f"{statistics.median(xs):.1f} | {xs[round(0.9 * (len(xs) - 1))]:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"the columns to time, of {', '.join(MODES)} (speed_all.sh's A/B of two commits: guard)")
    a = ap.parse_args()
    chosen = tuple(m for m in MODES if m in a.modes.split(","))
    if not chosen or len(chosen) != len(set(a.modes.split(","))):
        ap.error(f"--modes: give some of {', '.join(MODES)}, comma-separated")
    from gitswarm import git as G, guardserver, task as T
    from gitswarm.board import Board

    root = isolated_root("gitswarm-speed-")
    os.environ["GITSWARM_CACHE"] = str(root / "cache")
    plain = root / "plain.git"
    git(["init", "-q", "--bare", str(plain)], cwd=root)
    for f in (plain / "hooks").glob("*"):
        f.unlink()
    git(["clone", "-q", str(plain), str(root / "pc")], cwd=root)
    hub, seed = new_hub(root, "speed\n")
    board = Board(str(hub), cache=root / "cache-board")
    board.add([T.new_task(f"speed {i}") for i in range(len(chosen) * (3 * a.runs + 6))])
    rows: dict[str, dict[str, list[float]]] = {}
    guard: list = [None]

    from gitswarm.hookbuild import CLIENT

    assert os.access(hub / CLIENT, os.X_OK), "init built no C client: is there a compiler (cc, $CC)?"

    from gitswarm import install

    form: list = [None]

    def setting(mode: str) -> None:
        (hub / CLIENT).chmod(0o644 if mode.endswith("py") else 0o755)
        if hasattr(install, "install_hooks") and form[0] != mode.endswith("py"):  # a code whose client may be
            install.install_hooks(hub, direct=not mode.endswith("py"))  # the shims' interpreter: sh's shims for py
            form[0] = mode.endswith("py")
        if mode.startswith("guard") and guard[0] is None:
            guard[0] = guardserver.start(hub, log=print)
            assert guard[0] is not None
        elif mode.startswith("none") and guard[0] is not None:
            guardserver.stop(guard[0])
            guard[0] = None

    def timed(row: str, mode: str, action) -> None:
        setting(mode)
        start = time.perf_counter()
        action()
        rows.setdefault(row, {}).setdefault(mode, []).append(time.perf_counter() - start)

    pushes: list[float] = []  # the board's own `git push`es, inside a Board call
    board_push = board.mirror.push

    def push_timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return board_push(*args, **kwargs)
        finally:
            pushes.append(time.perf_counter() - start)
    board.mirror.push = push_timed  # type: ignore[method-assign]

    def timed_board(row: str, mode: str, action) -> None:
        """A Board call, and apart from it the `git push` it made (the hub's part of its cost)."""
        del pushes[:]
        timed(row, mode, action)
        rows.setdefault(f"{row}: its git push", {}).setdefault(mode, []).append(sum(pushes))

    def edit_push(clone: Path, i: int) -> None:
        (clone / "f.txt").write_text(f"change {i}\n")
        git(["add", "f.txt"], cwd=clone)
        git(["commit", "-q", "-m", f"change {i}"], cwd=clone)

    claim_input: list[bytes] = []
    for i in range(a.runs + 2):
        for k, mode in enumerate(chosen):
            warm = i < 2
            edit_push(root / "pc", len(chosen) * i + k)
            timed("plain bare repo, no hooks: push to main", mode,
                  lambda: git(["push", "-q", "origin", "HEAD:refs/heads/main"], cwd=root / "pc"))
            edit_push(seed, len(chosen) * i + k)
            timed("hub: push to main (no task)", mode,
                  lambda: git(["push", "-q", "origin", "HEAD:refs/heads/main"], cwd=seed))
            worker = f"w{i}m{k}"
            before = board.tip
            got: list = []
            timed_board("hub: claim (Board.claim)", mode, lambda: got.append(board.claim(worker)))
            t = got[0]
            if not claim_input:
                claim_input.append(f"{before} {board.tip} refs/heads/tasks\n".encode())
            tip = board.fetch_branch("main")
            commit = G.write_commit(board.mirror.repo, tip, {f"done/{t.id}.txt": b"done\n"},
                                    f"Work on {t.id}\n\nGitswarm-Task: {t.id}\nGitswarm-Worker: {worker}\n",
                                    (worker, "w@x"))
            timed_board("hub: land (Board.land: main and the completion)", mode,
                        lambda: board.land(t.id, worker, commit, "done"))
            other = board.claim(worker)
            timed_board("hub: complete (Board.complete: no work lands)", mode,
                        lambda: board.complete(other.id, worker, "nothing to change"))
            git(["pull", "-q", "--ff-only", "origin", "main"], cwd=seed)
            if warm:
                for row in rows.values():
                    row[mode].pop()
    env = dict(G.no_git_env(), GIT_DIR=".")
    for i in range(a.runs):
        for mode in chosen:
            for name in ("pre-receive", "post-receive"):
                timed(f"{name} alone, a claim's input (as git runs it)", mode,
                      lambda: subprocess.run([str(hub / "hooks" / name)], input=claim_input[0], cwd=hub, env=env,
                                             capture_output=True))
    for name, args in [("python -I -S -c pass (the floor of a Python hook)", [sys.executable, "-I", "-S", "-c", "pass"]),
                       ("sh -c true", ["sh", "-c", "true"]),
                       ("C client, no guard, falling back to true", [str(hub / CLIENT), "pre-receive", "/bin/true"])]:
        for _ in range(a.runs if "none" in chosen else 0):
            timed(name, "none", lambda: subprocess.run(args, input=b"", cwd=hub, env=env))
    setting("none")
    board.close()
    load = os.getloadavg()
    print(f"python benchmarks/speed.py --runs {a.runs} --modes {','.join(chosen)}; {os.cpu_count()} cores, "
          f"python {platform.python_version()}, {git(['--version'], cwd=root).strip()}, "
          f"load {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
          f"(1 / 5 / 15 min) at the end, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    columns = " | ".join(f"{TITLES[m]}: median | p90" for m in chosen)
    print(f"| ms | {columns} | × plain push: guard, py | guard, C |")
    print("|---" * (2 * len(chosen) + 3) + "|")
    plain_median = statistics.median(sum(rows["plain bare repo, no hooks: push to main"].values(), []))  # no hooks: all
    for row, modes in rows.items():
        cells = [ms(modes[m]) if m in modes else " | " for m in chosen]
        ratios = [f"{statistics.median(modes[m]) / plain_median:.2f}" if m in modes else ""
                  for m in ("guard-py", "guard")]
        print(f"| {row} | " + " | ".join(cells + ratios) + " |")
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
