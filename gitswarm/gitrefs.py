"""The hub's refs on disk: moving them all or none (compared and swapped under git's own ref
locks, a reflog entry each) and reading when one last moved, from its reflog. Part of the git
layer (gitswarm/git.py runs git and reads objects)."""

from __future__ import annotations

import os
from pathlib import Path

from .git import ZERO, run


def update_refs(git_dir: str, updates: list[tuple[str, str, str]], repo=None, message: str = "push") -> bool:
    """Move each ref of (old, new, ref) from its old tip (ZERO: none) to its new one, all or none,
    under git's own locks (`<ref>.lock`) and with a reflog entry each: False when one moved, or
    was locked, meanwhile. Through `repo` (pygit2: a libgit2 transaction, no process) when the
    caller holds one, else `git update-ref --stdin`. What libgit2 does not do: run a hub's
    reference-transaction hook."""
    moves = [(old, new, ref) for old, new, ref in updates if old != new]
    if not moves:
        return True
    if repo is None:
        lines = "".join(f"update {ref} {new} {old}\n" for old, new, ref in moves)
        proc = run(["update-ref", "-m", message, "--stdin"], cwd=git_dir,
                   input=("start\n" + lines + "commit\n").encode(), check=False)
        return proc.returncode == 0
    import pygit2

    repo.set_ident(*_reflog_identity(repo))  # the transaction's signature argument is broken in pygit2 1.21
    try:
        with repo.transaction() as tx:
            for _, _, ref in moves:
                tx.lock_ref(ref)
            for old, _, ref in moves:  # under the locks: what git's update-ref compares, the same way
                try:
                    found = str(repo.lookup_reference(ref).resolve().target)
                except KeyError:
                    found = ZERO
                if found != old:
                    raise _Moved(ref)
            for _, new, ref in moves:
                tx.set_target(ref, pygit2.Oid(hex=new), message=message)
    except (_Moved, pygit2.GitError, KeyError, ValueError):
        return False
    return True


class _Moved(Exception):
    pass


def _reflog_identity(repo) -> tuple[str, str]:
    """Who a reflog entry names, as git's update-ref would: the committer of the environment, else
    the configured user, else the account at this host."""
    import pwd
    import socket

    import pygit2

    name, email = os.environ.get("GIT_COMMITTER_NAME"), os.environ.get("GIT_COMMITTER_EMAIL")
    if not (name and email):
        try:
            default = repo.default_signature
            name, email = name or default.name, email or default.email
        except (KeyError, pygit2.GitError):
            account = pwd.getpwuid(os.getuid()).pw_name
            name, email = name or account, email or f"{account}@{socket.gethostname()}"
    return name, email


def reflog_time(git_dir: Path, ref: str) -> float | None:
    """The time of a ref's last reflog entry (`<old> <new> <who> <email> <unix time> <tz>\t<msg>`),
    None without one. Reads the file's tail only: reflogs grow."""
    path = git_dir / "logs" / ref
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    for line in reversed(lines):
        head = line.split(b"\t", 1)[0].rsplit(b" ", 2)
        if len(head) == 3 and head[1].isdigit():
            return float(head[1])
    return None
