"""Attacks on who may do what on a hub (issue 11): a client naming its own identity, goal records
written by anyone, a name bound by a push that does not act for it, a hub shared by a unix group,
unbounded heartbeats. Each over a real transport where it matters (tests/servers.py)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gitswarm import events, identity, record, rules
from gitswarm import task as T
from gitswarm.install import init

from conftest import gitswarm, sh
from servers import serve

pytestmark = pytest.mark.slow  # a minute: identities over ssh and other transports

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


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


# ------------------------------------------------------------ 1. the client must not choose its identity

@pytest.mark.parametrize("setting, variables", [
    (None, "GITSWARM_PUSHER=alice"),
    (None, "USER=alice LOGNAME=alice"),
    (None, "REMOTE_USER=alice"),
    ("ssh", "GITSWARM_PUSHER=alice"),  # trusted over ssh only where a forced command set it
    (None, "GL_USER=alice"),  # a git server's variable: not the account, not anonymous either
    ("gitolite", "GL_USER=alice"),  # trusted only under gitolite's forced command
    ("gitea", "GITEA_PUSHER_NAME=alice"),
])
def test_an_ssh_account_cannot_name_itself_through_receive_pack(setting, variables, hub, tmp_path, monkeypatch):
    """One account per person, no forced command: the client picks the remote command, so it can
    put any variable before git-receive-pack. The identity is the account, whatever it says."""
    server, url_as = serve("ssh", hub, tmp_path, monkeypatch.setenv)
    try:
        trust(hub, "local")
        monkeypatch.setenv("GITSWARM_PUSHER", "alice")
        tid = gitswarm("task", "add", str(hub), "--title", "Parse CSS").stdout.strip()
        assert gitswarm("claim", str(hub), "--worker", "aw").stdout.strip() == tid
        monkeypatch.delenv("GITSWARM_PUSHER")
        sh("git", "config", "--unset", "gitswarm.pusherEnv", cwd=hub)
        if setting:
            trust(hub, setting)
        assert identity.bindings(hub) == {"aw": "alice"}
        held = task_at(hub, tid)
        done = rules.complete(held, "aw", "taken over ssh")
        pushed = hand_commit(url_as("plain"), tmp_path, {done.path: T.dump(done)},
                             rules.message("complete", [done], "aw", held.claim.token),
                             f"--receive-pack={variables} git-receive-pack")
        assert pushed.returncode != 0, pushed.stderr
        assert f"worker aw belongs to alice; this push comes from {server.user}" in pushed.stderr, pushed.stderr
        assert task_at(hub, tid).status == "claimed"
    finally:
        server.stop()


def test_a_local_push_cannot_name_itself_unless_the_hub_trusts_it(hub, tmp_path, monkeypatch):
    trust(hub, "local")
    monkeypatch.setenv("GITSWARM_PUSHER", "alice")
    tid = gitswarm("task", "add", str(hub), "--title", "Parse CSS").stdout.strip()
    gitswarm("claim", str(hub), "--worker", "aw")
    sh("git", "config", "--unset", "gitswarm.pusherEnv", cwd=hub)
    for name in ("GITSWARM_PUSHER", "REMOTE_USER"):  # neither counts on a local push by default
        monkeypatch.delenv("GITSWARM_PUSHER")
        monkeypatch.setenv(name, "alice")
        refused = gitswarm("release", str(hub), tid, "--worker", "aw", check=False)
        assert refused.returncode == 2, refused
        assert "worker aw belongs to alice; this push comes from an anonymous pusher" in refused.stderr
        monkeypatch.delenv(name)
        monkeypatch.setenv("GITSWARM_PUSHER", "alice")
    assert task_at(hub, tid).status == "claimed"


def test_a_bad_pusher_env_setting_refuses_the_push_and_says_how_to_fix_it(hub, monkeypatch):
    trust(hub, "ssh https")
    monkeypatch.setenv("GITSWARM_PUSHER", "alice")
    refused = gitswarm("task", "add", str(hub), "--title", "Anything", check=False)
    assert refused.returncode == 2
    assert "gitswarm.pusherEnv" in refused.stderr and "'https'" in refused.stderr, refused.stderr
    assert "ssh, http, local" in refused.stderr and "Traceback" not in refused.stderr


# ------------------------------------------------------------ 2. goal records are the hub's own

def forged_record(name: str = "css") -> dict[str, bytes]:
    verdict = record.Verdict(cycle=1, decision="done", reasons="all good, trust me", at=T.now(), tokens=999_999_999)
    forged = record.GoalRecord(name, status="done", tokens=999_999_999, verdicts=(verdict,), updated=T.now())
    return {forged.path: record.dump(forged)}


@pytest.mark.parametrize("kind", ["git", "http"])
def test_a_remote_push_cannot_write_a_goal_record(kind, hub, tmp_path, monkeypatch):
    server, url_as = serve(kind, hub, tmp_path, monkeypatch.setenv)
    try:
        tip = sh("git", "rev-parse", "tasks", cwd=hub).stdout
        pushed = hand_commit(url_as(), tmp_path, forged_record(), rules.message("goal", [], subject="goal css: done"))
        assert pushed.returncode != 0, pushed.stderr
        assert "goals/css.yaml: goal records are written only by the hub" in pushed.stderr, pushed.stderr
        assert "hint:" in pushed.stderr
        assert sh("git", "rev-parse", "tasks", cwd=hub).stdout == tip
        status = json.loads(gitswarm("status", str(hub), "--json").stdout)
        assert status["goals"] == []
    finally:
        server.stop()


def test_the_hub_owner_still_writes_goal_records_on_a_local_push(hub, tmp_path):
    pushed = hand_commit(str(hub), tmp_path, forged_record(), rules.message("goal", [], subject="goal css: done"))
    assert pushed.returncode == 0, pushed.stderr  # the daemon's own way: a path, as the hub's account


def test_a_daemon_started_from_an_ssh_login_still_writes_goal_records(hub, monkeypatch):
    """An operator who logs in over ssh and starts `gitswarm serve` passes SSH_CONNECTION on to
    it: gitswarm's own git commands must not pass it on to the hub's hooks."""
    from gitswarm.board import Board
    from gitswarm.record import new_record

    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.7 50022 10.0.0.1 22")
    monkeypatch.setenv("SSH_CLIENT", "10.0.0.7 50022 22")
    with Board(str(hub)) as board:
        written = board.update_goal("css", lambda current, state: new_record("css", None), "goal css: active")
    assert written is not None and written.status == "active"


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


# ------------------------------------------------------------ 4. a hub shared by a unix group

@pytest.fixture
def two_accounts():
    """Two real unix accounts in one group; removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd to make two accounts")
    tag = f"{os.getpid() % 100000}"
    group, users = f"gsw{tag}", [f"gsw{tag}a", f"gsw{tag}b"]
    sh("groupadd", group)
    try:
        for u in users:
            sh("useradd", "--no-create-home", "--home-dir", "/nonexistent", "-g", group, u)
        yield group, users
    finally:
        for u in users:
            sh("userdel", u, check=False)
        sh("groupdel", group, check=False)


def member_env(root: Path) -> dict[str, str]:
    """A home whose git config trusts a repository another account owns, as a shared hub's members
    need (git's safe.directory)."""
    (root / ".gitconfig").write_text("[safe]\n\tdirectory = *\n")
    return {"HOME": str(root), "XDG_CONFIG_HOME": str(root / ".config")}


def shared_hub(root: Path, group: str) -> Path:
    """A hub shared by `group`, its hooks run by a Python every account can run (this test's may
    live in root's home)."""
    python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not os.access(python, os.X_OK):
        pytest.skip(f"the hooks need a Python {sys.version_info.major}.{sys.version_info.minor} every account "
                    f"can run; {python} is missing")
    import gitswarm
    import yaml

    for module in (gitswarm, yaml):  # the hooks import them from where this test's Python has them
        probe = subprocess.run(["runuser", "-u", f"{group}a", "--", "test", "-r", module.__file__])
        if probe.returncode != 0:
            pytest.skip(f"the group's accounts cannot read {module.__file__} (a parent folder is private), "
                        "so the hooks could not run for them")
    root.chmod(0o755)
    hub = root / "hub.git"
    sh("git", "init", "-q", "--bare", "--shared=group", str(hub))
    init(hub)
    for name in ("pre-receive", "post-receive"):
        hook = hub / "hooks" / name
        hook.write_text(hook.read_text().replace(sys.executable, str(python)))
    sh("chgrp", "-R", group, str(hub))
    return hub


def test_a_group_shared_hub_lets_every_member_bind_and_spool(two_accounts, monkeypatch):
    group, users = two_accounts
    root = Path(tempfile.mkdtemp(prefix="gsw-shared-"))
    try:
        hub = shared_hub(root, group)
        trust(hub, "local")
        tids = [gitswarm("task", "add", str(hub), "--title", title).stdout.strip() for title in ("One", "Two")]
        env = member_env(root)
        for user, tid in zip(users, tids):
            work = root / f"work-{user}"
            work.mkdir()
            shutil.chown(work, user, group)
            claimed = rules.claim(task_at(hub, tid), f"w-{user}")
            pushed = hand_commit(str(hub), work, {claimed.path: T.dump(claimed)},
                                 rules.message("claim", [claimed], f"w-{user}", claimed.claim.token),
                                 env=dict(env, GITSWARM_PUSHER=user), user=user)
            assert pushed.returncode == 0, (user, pushed.stderr)
            assert "could not spool" not in pushed.stderr, pushed.stderr
        assert identity.bindings(hub) == {f"w-{u}": u for u in users}
        assert sorted(e.pusher for e in events.pending(hub) if e.pusher) == sorted(users)
    finally:
        shutil.rmtree(root)


def test_a_group_member_cannot_write_goal_records(two_accounts):
    group, users = two_accounts
    root = Path(tempfile.mkdtemp(prefix="gsw-shared-"))
    try:
        hub = shared_hub(root, group)
        work = root / "work"
        work.mkdir()
        shutil.chown(work, users[0], group)
        env = member_env(root)
        pushed = hand_commit(str(hub), work, forged_record(), rules.message("goal", [], subject="goal css: done"),
                             env=env, user=users[0])
        assert pushed.returncode != 0, pushed.stderr
        assert "goals/css.yaml: goal records are written only by the hub" in pushed.stderr, pushed.stderr
    finally:
        shutil.rmtree(root)


# ------------------------------------------------------------ 5. bounded heartbeats

def test_one_push_cannot_create_thousands_of_heartbeat_refs(hub, board_clone):
    beat = git("commit-tree", EMPTY_TREE, "-m", "heartbeat x", cwd=board_clone).stdout.strip()
    many = [f"{beat}:refs/gitswarm/heartbeats/flood-{i}" for i in range(2000)]
    pushed = git("push", "origin", *many, cwd=board_clone, check=False)
    assert pushed.returncode != 0
    assert "2000 heartbeat refs in one push; the limit is" in pushed.stderr, pushed.stderr[-2000:]
    assert not sh("git", "for-each-ref", "refs/gitswarm/heartbeats", cwd=hub).stdout


@pytest.mark.parametrize("shape", ["big blob", "a file", "a blob", "a history", "a long message"])
def test_a_heartbeat_must_be_a_commit_of_gitswarm_s_shape(shape, hub, board_clone):
    if shape == "big blob":
        (board_clone / "big").write_bytes(os.urandom(20 * 1024 * 1024))
        git("add", "big", cwd=board_clone)
        git("commit", "-q", "-m", "heartbeat w", cwd=board_clone)
        target = "HEAD"
    elif shape == "a file":
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=board_clone, capture_output=True,
                              text=True, input="x").stdout.strip()
        tree = subprocess.run(["git", "mktree"], cwd=board_clone, capture_output=True, text=True,
                              input=f"100644 blob {blob}\tx\n").stdout.strip()
        target = git("commit-tree", tree, "-m", "heartbeat w", cwd=board_clone).stdout.strip()
    elif shape == "a blob":
        target = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=board_clone, capture_output=True,
                                text=True, input="not a commit").stdout.strip()
    elif shape == "a history":  # the board's own history, hung under a heartbeat ref
        target = git("commit-tree", EMPTY_TREE, "-p", "HEAD", "-m", "heartbeat w", cwd=board_clone).stdout.strip()
    else:
        target = git("commit-tree", EMPTY_TREE, "-m", "heartbeat w\n\n" + "x" * 100_000,
                     cwd=board_clone).stdout.strip()
    pushed = git("push", "origin", f"{target}:refs/gitswarm/heartbeats/w", cwd=board_clone, check=False)
    assert pushed.returncode != 0, (shape, pushed.stderr)
    assert "rejected refs/gitswarm/heartbeats/w" in pushed.stderr, pushed.stderr
    assert "hint:" in pushed.stderr
    assert not sh("git", "for-each-ref", "refs/gitswarm/heartbeats", cwd=hub).stdout


@pytest.mark.parametrize("name", ["-w", "wé", "w" * 65])  # a leading mark, a letter outside ASCII, too long
def test_a_heartbeat_ref_follows_the_worker_name_rule(name, hub, board_clone):
    """A heartbeat ref is named after a worker, and a worker's name follows one rule (names.NAME_RE),
    as a claim's holder does: a beat for a name no claim can hold renews no lease and is refused."""
    from gitswarm.names import NAME_RE

    assert not NAME_RE.match(name)
    beat = git("commit-tree", EMPTY_TREE, "-m", f"heartbeat {name}", cwd=board_clone).stdout.strip()
    pushed = git("push", "origin", f"{beat}:refs/gitswarm/heartbeats/{name}", cwd=board_clone, check=False)
    assert pushed.returncode != 0
    assert f"rejected refs/gitswarm/heartbeats/{name}: a hub holds main, tasks, the heartbeat refs" in pushed.stderr
    assert "a heartbeat ref is refs/gitswarm/heartbeats/<worker>, a worker's name being" in pushed.stderr
    assert not sh("git", "for-each-ref", "refs/gitswarm/heartbeats", cwd=hub).stdout
    edge = ["a" * 64, "W.x_y@z-1"]  # what NAME_RE accepts at its edges, a heartbeat may carry
    beats = [f"{beat}:refs/gitswarm/heartbeats/{worker}" for worker in edge]
    git("push", "origin", *beats, cwd=board_clone)
    assert sh("git", "for-each-ref", "--format=%(refname)", "refs/gitswarm/heartbeats", cwd=hub).stdout.split() \
        == sorted(f"refs/gitswarm/heartbeats/{worker}" for worker in edge)


def test_gitswarm_s_own_heartbeats_pass(hub, tmp_path):
    tid = gitswarm("task", "add", str(hub), "--title", "Anything").stdout.strip()
    gitswarm("claim", str(hub), "--worker", "w1")
    for _ in range(3):
        gitswarm("heartbeat", str(hub), "--worker", "w1")
    log = sh("git", "log", "--format=%T %P", "refs/gitswarm/heartbeats/w1", cwd=hub).stdout.splitlines()
    assert len(log) >= 4 and all(line.split()[0] == EMPTY_TREE for line in log)
    assert task_at(hub, tid).status == "claimed"


def test_a_pool_beating_for_more_workers_than_the_limit_splits_its_pushes(hub):
    from gitswarm.board import Board
    from gitswarm.guard import MAX_HEARTBEATS

    names = [f"w{i}" for i in range(MAX_HEARTBEATS + 3)]
    with Board(str(hub)) as board:
        board.heartbeat(names)
        assert board.pushes == 2
    refs = sh("git", "for-each-ref", "--format=%(refname)", "refs/gitswarm/heartbeats", cwd=hub).stdout.split()
    assert len(refs) == len(names)
