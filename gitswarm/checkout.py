"""A worker's checkout: a worktree of the local mirror at main's tip, where its agent works and
its commit is made, rebased when main moved, and removed afterwards.

An agent wrote everything in a worktree, so every git command on one goes through `_git`, which
takes the repository from gitswarm, never from the tree: GIT_DIR is the admin folder `git worktree
add` made in the mirror (found from the mirror's side), GIT_WORK_TREE the worktree; no system or
global config, the agent environment (sandbox.agent_env), and hooks, fsmonitor, attribute files,
submodule recursion and signing turned off. Program-valued settings (filters, textconv, merge
drivers) can then come only from the mirror's config, which gitswarm writes and the sandbox shows
read-only. A worktree whose `.git` is not the exact file git wrote is refused: nothing runs in it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import git
from .errors import GitError, GitswarmError
from .sandbox import agent_env
from .names import SHA_RE
from .text import printable

SAFE = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.attributesFile=/dev/null",
        "-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false", "-c", "submodule.recurse=false",
        "-c", "diff.ignoreSubmodules=all", "-c", "status.submoduleSummary=false", "-c", "core.untrackedCache=false",
        "-c", "user.name=gitswarm", "-c", "user.email=gitswarm@localhost"]


class WorktreeChanged(GitswarmError):
    """The worktree's `.git` is not the file git wrote: git is not run on it."""


@contextmanager
def _worktrees_locked(mirror: Path) -> Iterator[None]:
    """One worktree added or removed at a time in a mirror, by any thread or process: `git worktree
    prune` takes a worktree still being added (no gitdir file yet) for a stale one and deletes it
    under `git worktree add`, which then fails."""
    with open(mirror / "gitswarm-worktrees.lock", "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _git(args: list[str], git_dir: Path, work_tree: Path | None = None, *, input: bytes | None = None,
         check: bool = True, env: dict[str, str] | None = None):
    """`git <args>` on a repository gitswarm names: the one helper for git on a mirror or a worktree."""
    full = {**git.no_git_env(agent_env()), "GIT_DIR": str(git_dir), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true",
            "GIT_SEQUENCE_EDITOR": "true", **(env or {})}
    if work_tree is not None:
        full["GIT_WORK_TREE"] = str(work_tree)
    return git.run([*SAFE, *args], cwd=work_tree or git_dir, input=input, env=full, check=check)


def _admin_dir(mirror: Path, worktree: Path) -> Path:
    """The mirror's folder for this worktree (`worktrees/<name>`), found from the mirror's side:
    the one whose gitdir file names the worktree's .git. Refused when none does, or when the
    worktree's .git is not the file git wrote (a symlink, a folder, another repository)."""
    worktree = Path(worktree).resolve()
    dotgit = worktree / ".git"
    for admin in sorted((mirror / "worktrees").glob("*")):
        try:
            if Path((admin / "gitdir").read_text().strip()) == dotgit:
                break
        except OSError:
            continue
    else:
        raise WorktreeChanged(f"{worktree} is not a worktree of {mirror}: refused to run git on it",
                              "the worktree was removed or the mirror pruned; the task is tried again")
    try:
        info = os.lstat(dotgit)
        same = stat.S_ISREG(info.st_mode) and info.st_size < 4096 and \
            dotgit.read_text() == f"gitdir: {admin.resolve()}\n"
    except (OSError, UnicodeDecodeError):
        same = False
    if not same:
        raise WorktreeChanged(f"the task changed its worktree's .git ({dotgit}), which ties it to gitswarm's "
                              "repository: refused, gitswarm runs no git command on that tree",
                              "agents and run: commands edit the files of the worktree and leave .git alone; "
                              "gitswarm makes the commit")
    return admin


def _worktree_git(mirror: Path, worktree: Path, args: list[str], **kw):
    return _git(args, _admin_dir(mirror, worktree), Path(worktree).resolve(), **kw)


def _out(mirror: Path, worktree: Path, args: list[str]) -> str:
    return _worktree_git(mirror, worktree, args).stdout.decode(errors="replace").strip()


def add_worktree(mirror: Path, path: Path, commit: str) -> None:
    """A checkout of `commit` at `path`, sharing the mirror's objects: commits made there can be
    pushed from the mirror at once."""
    with _worktrees_locked(mirror):
        _git(["worktree", "add", "-q", "--detach", str(path), commit], mirror)


def remove_worktree(mirror: Path, path: Path) -> None:
    """Delete the worktree's files (without running git in it: an agent wrote them) and prune the
    mirror's record of it."""
    with _worktrees_locked(mirror):
        shutil.rmtree(path, ignore_errors=True)
        _git(["worktree", "prune"], mirror, check=False)


def commit_all(mirror: Path, worktree: Path, message: str, author: tuple[str, str], base: str | None = None,
               ignore: tuple[str, ...] | list[str] = ()) -> str | None:
    """Commit everything in the worktree, on `base` (the commit the task started from: whatever
    the agent committed itself on top of it is squashed into this one commit, which HEAD moves
    past), leaving out untracked files that match the gitignore patterns `ignore`. The new
    commit, or None when nothing changed."""
    if base is not None and head(mirror, worktree) != base:
        _worktree_git(mirror, worktree, ["update-ref", "--no-deref", "HEAD", base])
        _worktree_git(mirror, worktree, ["read-tree", base])
    with _excludes(ignore) as excludes:
        _worktree_git(mirror, worktree, [*excludes, "add", "-A"])
    if _worktree_git(mirror, worktree, ["diff", "--cached", "--quiet", "--ignore-submodules=all"],
                     check=False).returncode == 0:
        return None
    who = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
           "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1]}
    _worktree_git(mirror, worktree, ["commit", "-q", "--no-verify", "-F", "-"], input=message.encode(), env=who)
    return head(mirror, worktree)


@contextmanager
def _excludes(ignore: tuple[str, ...] | list[str]) -> Iterator[list[str]]:
    """git options that leave out untracked files matching the gitignore patterns `ignore`."""
    with tempfile.NamedTemporaryFile("w", prefix="gitswarm-ignore-", suffix=".txt") as excludes:
        excludes.write("".join(f"{pattern}\n" for pattern in ignore))
        excludes.flush()
        yield ["-c", f"core.excludesFile={excludes.name}"]


def changed(mirror: Path, worktree: Path, base: str, ignore: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether the worktree's files differ from `base` (what commit_all would commit): a tracked
    file changed, or an untracked one that `ignore` does not leave out."""
    if _worktree_git(mirror, worktree, ["diff", "--quiet", "--ignore-submodules=all", base, "--"],
                     check=False).returncode != 0:
        return True
    with _excludes(ignore) as excludes:
        return bool(_out(mirror, worktree, [*excludes, "ls-files", "--others", "--exclude-standard"]))


def agent_commits(mirror: Path, worktree: Path, base: str, shadow: Path | None = None, limit: int = 50) -> list[str]:
    """The subjects of the commits an agent made on `base` in the worktree, newest first (at most
    `limit`): read from its own HEAD, or, when it ran in the sandbox, from the `shadow` made for it
    (shadow_admin). Read by value: nothing the agent wrote is run or trusted."""
    env = None
    if shadow is not None:
        try:
            tip = (shadow / "admin" / "HEAD").read_text().strip()
        except OSError:
            return []
        objects = shadow / "objects"
        if not SHA_RE.match(tip) or objects.is_symlink() or not objects.is_dir():
            return []
        shutil.rmtree(objects / "info", ignore_errors=True)  # alternates of its own: read nothing else
        if (objects / "info").exists():
            return []
        env = {"GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)}
    else:
        tip = head(mirror, worktree)
    if tip == base:
        return []
    proc = _git(["log", "--no-decorate", f"--max-count={limit}", "--format=%s", f"{base}..{tip}", "--"], mirror,
                check=False, env=env)
    return [printable(line, 200) for line in proc.stdout.decode(errors="replace").splitlines() if line.strip()]


def shadow_admin(mirror: Path, worktree: Path, folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """What lets an agent commit in its worktree inside the sandbox, where the mirror is read-only:
    a copy of the worktree's admin folder (HEAD, index) in `folder`/admin, shown in its place,
    and an object folder of its own (`folder`/objects) with the mirror's objects as alternates.
    Its commits stay there: gitswarm commits what the files hold (commit_all). (the copy, the
    admin folder it stands for, the environment git needs)."""
    admin = _admin_dir(mirror, worktree)
    copy, objects = folder / "admin", folder / "objects"
    shutil.copytree(admin, copy, symlinks=True)
    objects.mkdir()
    return copy, admin.resolve(), {"GIT_OBJECT_DIRECTORY": str(objects),
                                   "GIT_ALTERNATE_OBJECT_DIRECTORIES": str((mirror / "objects").resolve())}


def _conflicted(mirror: Path, worktree: Path) -> list[str]:
    return _out(mirror, worktree, ["diff", "--name-only", "--diff-filter=U", "--ignore-submodules=all"]).splitlines()


def rebase(mirror: Path, worktree: Path, onto: str) -> list[str]:
    """Rebase the worktree's commit onto `onto`, keeping every commit: a plain `git rebase` skips a
    commit whose patch-id (blind to whitespace: a trailing newline) is already upstream and drops
    one that becomes empty, leaving the worktree at `onto` with the work lost. The conflicted paths
    ([] when it went through); with conflicts the rebase is left in progress for someone to
    resolve. A conflict resolved to nothing still drops the commit: see the caller's check."""
    proc = _worktree_git(mirror, worktree, ["rebase", "-q", "--reapply-cherry-picks", "--empty=keep", onto],
                         check=False)
    if proc.returncode == 0:
        return []
    conflicted = _conflicted(mirror, worktree)
    if not conflicted:
        raise GitError(f"git rebase failed: {proc.stderr.decode(errors='replace').strip()}")
    return conflicted


def continue_rebase(mirror: Path, worktree: Path) -> list[str]:
    """After conflicts were resolved in the files: stage and continue. Conflicts left, or []."""
    _worktree_git(mirror, worktree, ["add", "-A"])
    proc = _worktree_git(mirror, worktree, ["rebase", "--continue"], check=False)
    if proc.returncode == 0:
        return []
    return _conflicted(mirror, worktree) or ["(rebase stopped)"]


def abort_rebase(mirror: Path, worktree: Path) -> None:
    _worktree_git(mirror, worktree, ["rebase", "--abort"], check=False)


def reset_hard(mirror: Path, worktree: Path, commit: str) -> None:
    _worktree_git(mirror, worktree, ["reset", "-q", "--hard", commit])
    _worktree_git(mirror, worktree, ["clean", "-q", "-ffdx"])


def reset_soft(mirror: Path, worktree: Path, commit: str) -> None:
    """Move HEAD to `commit`, keeping the files: what HEAD had since becomes uncommitted changes."""
    _worktree_git(mirror, worktree, ["reset", "-q", "--soft", commit])


def head(mirror: Path, worktree: Path) -> str:
    return _out(mirror, worktree, ["rev-parse", "HEAD"])
