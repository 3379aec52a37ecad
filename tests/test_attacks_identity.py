"""Attacks on who may do what on a hub (issue 11): a client naming its own identity, goal records
written by anyone, a name bound by a push that does not act for it, a hub shared by a unix group,
unbounded heartbeats. Each over a real transport where it matters (tests/servers.py)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from gitswarm import identity, rules
from gitswarm import task as T

from conftest import gitswarm, sh


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True,
        user: str | None = None) -> subprocess.CompletedProcess[str]:
    """Plain git; with `user`, as that account with its own groups only."""
    account = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), **account)
    if check and proc.returncode:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def hand_commit(url: str, where: Path, files: dict[str, bytes], message: str, *push_args: str,
                env: dict[str, str] | None = None, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """Clone the board, write `files`, commit with `message` and push with plain git: what an
    attacker can do with no gitswarm client at all."""
    clone = where / f"clone-{len(list(where.glob('clone-*')))}"
    git("clone", "-q", "--branch", "tasks", url, str(clone), cwd=where, env=env, user=user)
    for path, data in files.items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_bytes(data)
    git("add", "-A", cwd=clone, user=user)
    git("commit", "-q", "-m", message, cwd=clone, user=user)
    return git("push", *push_args, "origin", "HEAD:refs/heads/tasks", cwd=clone, env=env, check=False, user=user)


def task_at(hub: Path, tid: str) -> T.Task:
    return T.parse(sh("git", "show", f"tasks:{T.task_path(tid)}", cwd=hub).stdout.encode(), T.task_path(tid))


def trust(hub: Path, transports: str) -> None:
    sh("git", "config", "gitswarm.pusherEnv", transports, cwd=hub)


# ------------------------------------------------------------ 3. bind only on actions that act for a worker

def test_an_add_naming_a_worker_binds_nothing(hub, tmp_path, monkeypatch):
    trust(hub, "local")
    monkeypatch.setenv("GITSWARM_PUSHER", "eve")
    new = T.Task(id="t-0000beef", title="Looks harmless", created=T.now())
    pushed = hand_commit(str(hub), tmp_path, {new.path: T.dump(new)},
                         rules.message("add", [new], worker="bob"))
    assert pushed.returncode == 0, pushed.stderr
    assert identity.bindings(hub) == {}  # bob is still free...
    monkeypatch.setenv("GITSWARM_PUSHER", "bob")
    assert gitswarm("claim", str(hub), "--worker", "bob").stdout.strip() == "t-0000beef"  # ...for bob
    assert identity.bindings(hub) == {"bob": "bob"}
