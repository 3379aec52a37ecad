"""Fixtures: real bare repositories in temp folders, real `git`, real hooks; nothing of git mocked.

Every test runs with its own HOME, git identity and gitswarm cache, so nothing reads or writes the
real home directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitswarm import git, names
from gitswarm.install import init

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer", "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
}


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GITSWARM_CACHE", str(home / "cache"))
    monkeypatch.delenv("GITSWARM_WORKER", raising=False)
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    return home


@pytest.fixture
def hub(tmp_path: Path):
    """A bare repository made a hub by `gitswarm init`. With GITSWARM_TEST_GUARD=1, its resident
    guard runs for the test (gitswarm/guardserver.py): any suite then checks the guard's answers."""
    path = tmp_path / "hub.git"
    init(path)
    guard = None
    if os.environ.get("GITSWARM_TEST_GUARD") == "1":
        from gitswarm import guardserver

        guard = guardserver.start(path)
        assert guard is not None, "the resident guard did not start"
    yield path
    if guard is not None:
        from gitswarm import guardserver

        guardserver.stop(guard)


def hook_form(hub: Path, form: str) -> None:
    """How the hub's hooks start: "client" (the C client is the shims' interpreter, as init makes
    them on a hub that is its owner's alone), "sh" (sh first, which runs the client: a shared
    hub's way) or "none" (sh, with no client it may run: Python checks, bash spools)."""
    from gitswarm import hookbuild, install

    client = hub / hookbuild.CLIENT
    if form != "none" and not client.exists():
        pytest.skip("init built no C client here (no compiler)")
    if client.exists():
        client.chmod(0o644 if form == "none" else 0o755)
    install.install_hooks(hub, direct=form == "client")
    for name in install.HOOKS:
        assert (hub / "hooks" / name).read_text().startswith(install.INTERPRETER) == (form == "client"), name


def sh(*args: str, cwd: str | Path | None = None, check: bool = True, input: str | None = None,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure show its output."""
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, input=input, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def gitswarm(*args: str, check: bool = True, cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a process of its own. It runs outside the source checkout (in the
    test's home), so that `-m` imports the installed gitswarm, as a user's shell would."""
    return sh(sys.executable, "-m", "gitswarm", *args, check=check, cwd=cwd or os.environ["HOME"])


@pytest.fixture
def board_clone(hub: Path, tmp_path: Path) -> Path:
    """A clone of the hub with branch tasks checked out, for pushing by hand."""
    path = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "tasks", str(hub), str(path))
    return path


def push(clone: Path, *refspecs: str) -> subprocess.CompletedProcess[str]:
    return sh("git", "push", "origin", *(refspecs or ("HEAD:refs/heads/tasks",)), cwd=clone, check=False)


def commit_all(clone: Path, message: str) -> None:
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "--allow-empty", "-m", message, cwd=clone)


def age_news(hub: Path, worker: str, seconds: float) -> None:
    """Let `seconds` pass on the hub's clock for a worker's leases, without waiting: the clock of a
    lease is the reflog of the worker's heartbeat ref (gitswarm/leases.py), whose entries move this
    much into the past. The hub's guard, `gitswarm reclaim` and the daemon then all see the worker
    silent for that much longer, as they would after a real wait."""
    log = hub / "logs" / "refs" / "gitswarm" / "heartbeats" / worker
    assert log.exists() and log.read_bytes().strip(), f"{worker} has given no news: nothing to age"
    _age_reflog(log, seconds)


def _age_reflog(log: Path, seconds: float, last_as_before: bool = False) -> None:
    """Move every entry of a reflog `seconds` into the past; with `last_as_before`, the last entry
    takes the time of the one before it (an entry a test wrote, not a move of the ref's owner)."""
    entries = []
    for line in log.read_bytes().splitlines():
        head, tab, msg = line.partition(b"\t")
        who, stamp, zone = head.rsplit(b" ", 2)
        entries.append([who, int(stamp) - round(seconds), zone, tab + msg])
    if last_as_before and len(entries) > 1:
        entries[-1][1] = entries[-2][1]
    log.write_bytes(b"".join(b"%s %d %s%s\n" % tuple(e) for e in entries))


def age_train(hub: Path, seconds: float) -> None:
    """Let `seconds` pass for the landing train's lease, without waiting: its holder then looks
    silent for that much longer, to the trains (which read the date of the lease commit,
    gitswarm/trainlease.py) and to the hub's guard (which reads the ref's reflog). The ref moves,
    without hooks, to a copy of its last lease commit (same message, same empty tree, the old one
    as its parent: the chain the guard wants) dated `seconds` earlier, and the reflog moves as
    much into the past. Call it while no train could renew the lease (its holder stopped or dead):
    a renewal in between makes it fail, not lose a renewal."""
    ref = names.TRAIN
    old = sh("git", "rev-parse", "--verify", ref, cwd=hub).stdout.strip()
    head, _, message = sh("git", "cat-file", "commit", old, cwd=hub).stdout.partition("\n\n")
    author = next(line for line in head.splitlines() if line.startswith("author ")).split(" ", 1)[1]
    name, _, rest = author.partition(" <")
    email, _, when = rest.partition("> ")
    stamp, zone = when.split()
    date = f"@{int(stamp) - round(seconds)} {zone}"
    tree = sh("git", "mktree", cwd=hub, input="").stdout.strip()
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_AUTHOR_DATE=date,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email, GIT_COMMITTER_DATE=date)
    new = sh("git", "commit-tree", tree, "-p", old, cwd=hub, input=message, env=env).stdout.strip()
    sh("git", "update-ref", "-m", f"aged {seconds:g}s by a test", ref, new, old, cwd=hub)
    _age_reflog(hub / "logs" / ref, seconds, last_as_before=True)


__all__ = ["sh", "gitswarm", "push", "commit_all", "age_news", "age_train", "git"]
