"""A worker's checkout: a worktree of the local mirror at main's tip, where its agent works and
its commit is made, rebased when main moved, and removed afterwards. The git command line, through
gitswarm.git's helpers, with hooks and config-driven programs neutralised."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import git
from .errors import GitError

SAFE = ["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", "-c", "core.fsmonitor=false"]


@contextmanager
def _worktrees_locked(mirror: Path) -> Iterator[None]:
    """One worktree added or removed at a time in a mirror, by any thread or process: `git worktree
    prune` takes a worktree still being added (no gitdir file yet) for a stale one and deletes it
    under `git worktree add`, which then fails."""
    with open(mirror / "gitswarm-worktrees.lock", "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def add_worktree(mirror: Path, path: Path, commit: str) -> None:
    """A checkout of `commit` at `path`, sharing the mirror's objects: commits made there can be
    pushed from the mirror at once."""
    with _worktrees_locked(mirror):
        git.run([*SAFE, "worktree", "add", "-q", "--detach", str(path), commit], cwd=mirror)


def remove_worktree(mirror: Path, path: Path) -> None:
    with _worktrees_locked(mirror):
        git.run(["worktree", "remove", "--force", str(path)], cwd=mirror, check=False)
        git.run(["worktree", "prune"], cwd=mirror, check=False)


def commit_all(worktree: Path, message: str, author: tuple[str, str]) -> str | None:
    """Commit everything in the worktree; the new commit, or None when nothing changed. Runs with
    hooks and the repository's config-driven programs neutralised."""
    git.run([*SAFE, "add", "-A"], cwd=worktree)
    if git.run(["diff", "--cached", "--quiet"], cwd=worktree, check=False).returncode == 0:
        return None
    env = dict(git.no_git_env(), GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1],
               GIT_COMMITTER_NAME=author[0], GIT_COMMITTER_EMAIL=author[1])
    git.run([*SAFE, "commit", "-q", "--no-verify", "-F", "-"], cwd=worktree, input=message.encode(), env=env)
    return git.out(["rev-parse", "HEAD"], cwd=worktree)


def rebase(worktree: Path, onto: str) -> list[str]:
    """Rebase the worktree's commit onto `onto`. The conflicted paths ([] when it went through);
    with conflicts the rebase is left in progress for someone to resolve."""
    proc = git.run([*SAFE, "-c", "user.name=gitswarm", "-c", "user.email=gitswarm@localhost",
                "rebase", "-q", onto], cwd=worktree, check=False)
    if proc.returncode == 0:
        return []
    conflicted = git.out(["diff", "--name-only", "--diff-filter=U"], cwd=worktree).splitlines()
    if not conflicted:
        raise GitError(f"git rebase failed: {proc.stderr.decode(errors='replace').strip()}")
    return conflicted


def continue_rebase(worktree: Path) -> list[str]:
    """After conflicts were resolved in the files: stage and continue. Conflicts left, or []."""
    git.run([*SAFE, "add", "-A"], cwd=worktree)
    env = dict(git.no_git_env(), GIT_EDITOR="true")
    proc = git.run([*SAFE, "-c", "user.name=gitswarm", "-c", "user.email=gitswarm@localhost",
                "rebase", "--continue"], cwd=worktree, env=env, check=False)
    if proc.returncode == 0:
        return []
    return git.out(["diff", "--name-only", "--diff-filter=U"], cwd=worktree).splitlines() or ["(rebase stopped)"]


def abort_rebase(worktree: Path) -> None:
    git.run(["rebase", "--abort"], cwd=worktree, check=False)


def reset_hard(worktree: Path, commit: str) -> None:
    git.run([*SAFE, "reset", "-q", "--hard", commit], cwd=worktree)
    git.run([*SAFE, "clean", "-q", "-fdx"], cwd=worktree)


def head(worktree: Path) -> str:
    return git.out(["rev-parse", "HEAD"], cwd=worktree)
