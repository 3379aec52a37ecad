"""A hub for one benchmark run: `gitswarm init`, then a first commit on main pushed from a clone."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)} in {cwd} failed: {proc.stderr}")
    return proc.stdout


def new_hub(work: Path, readme: str) -> tuple[Path, Path]:
    """`work`/hub.git with main at one commit (README.md holding `readme`), and `work`/seed, the
    clone it was pushed from, to push more from."""
    from gitswarm.install import init

    hub, seed = work / "hub.git", work / "seed"
    init(hub)
    git(["clone", "-q", str(hub), str(seed)], cwd=work)
    (seed / "README.md").write_text(readme)
    git(["add", "README.md"], cwd=seed)
    git(["commit", "-q", "-m", "start"], cwd=seed)
    git(["push", "-q", "origin", "HEAD:refs/heads/main"], cwd=seed)
    return hub, seed


def isolated_root(prefix: str) -> Path:
    """A new temporary folder for a benchmark's runs, and this process's environment made
    independent of the user's: an empty HOME there (no user git config), no system git config, a
    fixed identity, no inherited GIT_* variables, the C locale."""
    import os
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "home").mkdir()
    for k in [k for k in os.environ if k.startswith("GIT_")]:
        del os.environ[k]
    os.environ.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "home"), GIT_CONFIG_NOSYSTEM="1",
                      GIT_AUTHOR_NAME="bench", GIT_COMMITTER_NAME="bench", GIT_AUTHOR_EMAIL="bench@invalid",
                      GIT_COMMITTER_EMAIL="bench@invalid", LC_ALL="C")
    return root


def guard_if_asked(hub: Path) -> None:
    """With GITSWARM_BENCH_GUARD=1, start the hub's resident guard (gitswarm/guardserver.py, as
    `gitswarm serve` does) for as long as this process runs; without it the hooks check every push
    in process, as on a hub with no daemon. The benchmarks run both ways for issue 17's before/after."""
    import atexit
    import os

    if os.environ.get("GITSWARM_BENCH_GUARD") != "1":
        return
    from gitswarm import guardserver

    proc = guardserver.start(hub, log=print)
    if proc is None:
        raise RuntimeError(f"the guard of {hub} did not start")
    atexit.register(guardserver.stop, proc)
