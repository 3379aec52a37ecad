"""The resident guard (gitswarm/guardserver.py) and the shim's way to it (gitswarm/hookclient.py).

Real hubs, real `git push`, a real guard process. Bad pushes from tests/test_guard.py are pushed
with the guard up, down (a stale socket left by a dead guard), and killed while the push waits
inside it: each must be refused as without a guard, and a legal push accepted. Which process
checked a push is told by a `pre-receive.legacy` hook (the shim runs it first, wherever it checks):
it writes the pid of its parent's parent, the guard itself when the guard checked.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

import test_guard as G
from gitswarm import guardserver, hookclient, rules

from conftest import push, sh

pytestmark = pytest.mark.skipif(os.environ.get("GITSWARM_TEST_GUARD") == "1",
                                reason="starts and kills guards of its own (conftest's hub has one running)")

# The legacy hook: say who checks (the pid of the shim's or guard child's parent), and, the first
# time `block` exists, stop there until `release` exists (the push then waits inside the guard).
LEGACY = """#!/bin/sh
cat >/dev/null
awk '{print $4}' /proc/$PPID/stat >> "%(log)s"
if [ -e "%(block)s" ] && [ ! -e "%(blocked)s" ]; then
  : > "%(blocked)s"
  while [ ! -e "%(release)s" ]; do sleep 0.05; done
fi
exit 0
"""


class Hub:
    """A hub with the recording legacy hook, and its guard when started."""

    def __init__(self, path: Path, tmp: Path):
        self.path, self.tmp = path, tmp
        self.log, self.block, self.blocked, self.release = (tmp / n for n in ("checkers", "block", "blocked", "release"))
        legacy = path / "hooks" / "pre-receive.legacy"
        legacy.write_text(LEGACY % {k: getattr(self, k) for k in ("log", "block", "blocked", "release")})
        legacy.chmod(0o755)
        self.guard: subprocess.Popen | None = None

    def start(self) -> None:
        self.guard = guardserver.start(self.path)
        assert self.guard is not None

    def checkers(self) -> list[int]:
        """The parent of the process that ran each pre-receive check so far, in order."""
        return [int(x) for x in self.log.read_text().split()] if self.log.exists() else []

    def wait_blocked(self) -> None:
        deadline = time.monotonic() + 120
        while not self.blocked.exists():
            assert time.monotonic() < deadline, "the push never reached the legacy hook"
            time.sleep(0.02)


@pytest.fixture
def guarded(hub: Path, tmp_path: Path):
    h = Hub(hub, tmp_path)
    yield h
    guardserver.stop(h.guard)


def _bad_claim(clone: Path, hub: Path) -> str:
    """A claim by bob of a task alice holds; returns the rule the guard must name."""
    status, make, rule = G.ILLEGAL["claimed->claimed-stolen"]
    old = G.seed(clone, hub, status)
    action, new, worker, token = make(old)
    G.commit(clone, action, [new], worker, token)
    return rule


def _good_claim(clone: Path, hub: Path):
    """A claim by alice of a new task; returns the claimed task."""
    old = G.seed(clone, hub, "open")
    claimed = rules.claim(old, "alice")
    G.commit(clone, "claim", [claimed], "alice", 1)
    return claimed


# ---------------------------------------------------------------- the same refusals, guard up or down

CASES = ["done->open", "open->done", "claimed->done-by-another-worker", "open->claimed-trailers-name-another-worker",
         "title-changed"]


@pytest.mark.parametrize("mode", ["up", "down"])
@pytest.mark.parametrize("name", CASES)
def test_the_guard_refuses_what_the_hook_refuses(guarded: Hub, board_clone: Path, mode: str, name: str) -> None:
    if mode == "up":
        guarded.start()
    G.test_an_illegal_transition(board_clone, guarded.path, name)
    checkers = guarded.checkers()
    assert checkers and (set(checkers) == {guarded.guard.pid} if mode == "up" else guarded.guard is None)


@pytest.mark.parametrize("case", ["claim-changes-readme", "forced-rewrite", "delete-board", "a-tag", "bad-yaml"])
def test_more_refusals_with_the_guard_up(guarded: Hub, board_clone: Path, case: str) -> None:
    guarded.start()
    hub = guarded.path
    if case == "claim-changes-readme":
        G.test_a_claim_commit_that_changes_other_files(board_clone, hub, "readme")
    elif case == "forced-rewrite":
        G.test_a_forced_non_fast_forward_push(board_clone, hub, "rewound")
    elif case == "delete-board":
        G.test_deleting_the_tasks_branch(board_clone, hub)
    elif case == "a-tag":
        sh("git", "tag", "v1", cwd=board_clone)
        proc = push(board_clone, "refs/tags/v1")
        assert proc.returncode != 0 and "gitswarm: rejected refs/tags/v1" in proc.stderr, proc.stderr
    else:
        G.test_a_file_that_is_not_valid_yaml(board_clone, hub, "title: [unclosed\n", "not valid YAML")
    assert set(guarded.checkers()) == {guarded.guard.pid}


def test_legal_pushes_through_the_guard_and_their_events(guarded: Hub, board_clone: Path) -> None:
    guarded.start()
    G.test_a_chain_of_legal_commits_is_accepted_in_one_push(board_clone, guarded.path)
    _good_claim(board_clone, guarded.path)
    G.accept(board_clone, guarded.path)
    assert set(guarded.checkers()) == {guarded.guard.pid}
    from gitswarm import events

    spooled = events.pending(guarded.path)
    assert spooled and spooled[-1].new == G.tip(guarded.path) and spooled[-1].ref == "refs/heads/tasks"


def test_the_guard_passes_push_options_and_what_the_hook_prints(guarded: Hub, board_clone: Path) -> None:
    """The guard child runs with the hook's environment (GIT_PUSH_OPTION_*) and prints to the
    hook's own stderr, which git relays to the pusher."""
    sh("git", "config", "receive.advertisePushOptions", "true", cwd=guarded.path)
    legacy = guarded.path / "hooks" / "pre-receive.legacy"
    legacy.write_text(legacy.read_text().replace("exit 0\n", 'echo "option: $GIT_PUSH_OPTION_0" >&2\nexit 0\n'))
    guarded.start()
    _good_claim(board_clone, guarded.path)
    proc = sh("git", "push", "-o", "hello-guard", "origin", "HEAD:refs/heads/tasks", cwd=board_clone, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "remote: option: hello-guard" in proc.stderr
    assert set(guarded.checkers()) == {guarded.guard.pid}


# ---------------------------------------------------------------- killed mid-push, stale socket

def answered(pushing: subprocess.Popen, good: bool, hub: Path, clone: Path, rule: str | None, before: str) -> None:
    """The push got a checked answer: a good one taken (the hub at the clone's HEAD), a bad one
    refused naming `rule` (the hub where it was, `before`)."""
    _, err = pushing.communicate()
    if good:
        assert pushing.returncode == 0, err
        assert G.tip(hub) == G.head(clone)
    else:
        assert pushing.returncode != 0 and G.DECLINED in err and rule in err, err
        assert G.tip(hub) == before


@pytest.mark.parametrize("good", [False, True], ids=["bad-push", "good-push"])
@pytest.mark.parametrize("kill", ["guard-and-child", "guard-only"])
def test_a_guard_killed_while_a_push_waits(guarded: Hub, board_clone: Path, kill: str, good: bool) -> None:
    """SIGKILL the guard while a push waits inside it: the push still gets a checked answer.
    Killing the guard and its child (the whole group) leaves a half answer, and the shim checks
    the push in process; killing the guard alone leaves its child to answer."""
    hub = guarded.path
    rule = None
    if good:
        claimed = _good_claim(board_clone, hub)
    else:
        rule = _bad_claim(board_clone, hub)
    before = G.tip(hub)
    guarded.block.touch()
    guarded.start()
    pushing = subprocess.Popen(["git", "push", "origin", "HEAD:refs/heads/tasks"], cwd=board_clone,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    guarded.wait_blocked()
    children = Path(f"/proc/{guarded.guard.pid}/task/{guarded.guard.pid}/children").read_text().split()
    if kill == "guard-and-child":
        os.killpg(guarded.guard.pid, signal.SIGKILL)
    else:
        os.kill(guarded.guard.pid, signal.SIGKILL)
    guarded.guard.wait()
    if kill == "guard-only":  # its spare children die with it; the one holding the push goes on
        deadline = time.monotonic() + 60
        while sum(Path(f"/proc/{pid}").exists() for pid in children) > 1:
            assert time.monotonic() < deadline, "the guard's spare children outlived it"
            time.sleep(0.02)
    guarded.release.touch()
    answered(pushing, good, hub, board_clone, rule, before)
    checkers = guarded.checkers()
    assert checkers[0] == guarded.guard.pid
    if kill == "guard-and-child":  # then checked again, in the shim's own process
        assert len(checkers) == 2 and checkers[1] != guarded.guard.pid
    else:
        assert len(checkers) == 1
    # The dead guard's socket is still there: the next push must not hang on it, and is checked.
    assert (hub / hookclient.SOCKET).exists()
    if good:  # bob completes alice's claim
        _, make, rule = G.ILLEGAL["claimed->done-by-another-worker"]
        action, new, worker, token = make(claimed)
        G.commit(board_clone, action, [new], worker, token)
    G.reject(board_clone, hub, rule)
    assert guarded.guard.pid not in guarded.checkers()[len(checkers):]


def test_a_stale_socket_does_not_hang_a_push(guarded: Hub, board_clone: Path) -> None:
    """A socket file nobody listens on (its guard died): refused at once, checked in process."""
    path = guarded.path / hookclient.SOCKET
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    assert stat.S_ISSOCK(path.stat().st_mode)
    rule = _bad_claim(board_clone, guarded.path)
    G.reject(board_clone, guarded.path, rule)
    assert guarded.checkers()


def test_a_second_guard_leaves_the_first_serving_and_a_new_one_replaces_a_dead_one(guarded: Hub) -> None:
    guarded.start()
    lines: list[str] = []
    assert guardserver.start(guarded.path, lines.append) is None
    assert "another guard serves" in lines[0]
    os.kill(guarded.guard.pid, signal.SIGKILL)
    guarded.guard.wait()
    guarded.start()  # the lock died with the first; the stale socket is replaced
    assert stat.S_IMODE((guarded.path / hookclient.SOCKET).stat().st_mode) == 0o600
    guardserver.stop(guarded.guard)
    assert not (guarded.path / hookclient.SOCKET).exists()


def test_garbage_on_the_socket_gets_no_answer_and_the_guard_goes_on(guarded: Hub, board_clone: Path) -> None:
    guarded.start()
    for junk in (b"", b"hello", b"gitswarm-guard-1 999999:x", hookclient.MAGIC + b" 3:a\0b"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(guarded.path / hookclient.SOCKET))
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b""
    rule = _bad_claim(board_clone, guarded.path)
    G.reject(board_clone, guarded.path, rule)
    assert set(guarded.checkers()) == {guarded.guard.pid}


# ---------------------------------------------------------------- other accounts

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # another account cannot run root's own interpreter (under /root)
as_root = pytest.mark.skipif(os.getuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
                             reason="needs root, to act as another account, and /usr/bin/python3")


NOBODY_KW = {"user": NOBODY, "group": NOBODY, "extra_groups": []}  # applied after the chdir to cwd


def _as_nobody(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SYSTEM_PYTHON, "-I", "-c", code], cwd=cwd, capture_output=True, text=True, **NOBODY_KW)


@as_root
def test_another_account_cannot_use_the_guard(guarded: Hub) -> None:
    guarded.start()
    for folder in (guarded.path, guarded.path / "gitswarm"):
        folder.chmod(0o755)
    proc = _as_nobody("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                      "try:\n s.connect('gitswarm/guard.sock')\nexcept PermissionError:\n print('refused')\n"
                      "else:\n s.sendall(b'x'); s.shutdown(1); print('answer', s.recv(100))\n", guarded.path)
    assert proc.stdout.strip() == "refused", proc.stdout + proc.stderr


@as_root
def test_a_socket_planted_by_another_account_is_ignored(guarded: Hub, board_clone: Path) -> None:
    """A shared hub's gitswarm/ is group-writable: another member may put a socket of its own
    there that answers `exit 0` to everything. The shim asks who listens (SO_PEERCRED) and checks
    in process instead."""
    guarded.path.chmod(0o755)
    (guarded.path / "gitswarm").chmod(0o777)
    ready = guarded.path / "gitswarm" / "planted"
    fake = subprocess.Popen(
        [SYSTEM_PYTHON, "-I", "-c",
         "import socket,pathlib\ns=socket.socket(socket.AF_UNIX); s.bind('gitswarm/guard.sock'); s.listen()\n"
         "pathlib.Path('gitswarm/planted').touch()\n"
         "while True:\n c,_=s.accept(); c.recv(1<<20); c.sendall(b'exit 0\\n'); c.close()\n"],
        cwd=guarded.path, **NOBODY_KW)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and fake.poll() is None, "the planted socket never listened"
            time.sleep(0.02)
        assert (guarded.path / hookclient.SOCKET).stat().st_uid == NOBODY
        rule = _bad_claim(board_clone, guarded.path)
        G.reject(board_clone, guarded.path, rule)
    finally:
        fake.kill()
        fake.wait()


# ---------------------------------------------------------------- serve starts it

def test_serve_runs_the_guard_while_it_runs(hub: Path) -> None:
    from gitswarm.daemon import Daemon

    seen: list[bool] = []

    def log(line: str) -> None:  # its first line comes once the guard is up: stop there
        if not seen:
            seen.append((hub / hookclient.SOCKET).exists())
            daemon.shutdown()

    daemon = Daemon(hub, workers=1, planners=0, name="t", log=log, debounce=0.1)
    daemon.run()
    assert seen == [True], "no guard socket while serve ran"
    assert not (hub / hookclient.SOCKET).exists()


def test_a_spare_warms_up_without_changing_the_hub(hub: Path, monkeypatch) -> None:
    """hookimpl.warm, what each spare child runs while it waits: it reads the board as a check
    does (and parses its task files) and writes nothing, on a hub with a board or none yet."""
    from gitswarm import hookimpl, task as T
    from gitswarm.board import Board

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(hub)): p.read_bytes() for p in sorted(hub.rglob("*")) if p.is_file()}

    empty = hub.parent / "empty.git"
    sh("git", "init", "-q", "--bare", str(empty))
    monkeypatch.setenv("GIT_DIR", str(empty))
    hookimpl.warm()  # no tasks branch: nothing to read, no error
    with Board(str(hub), cache=hub.parent / "cache") as board:
        board.add([T.new_task("one"), T.new_task("two")])
        board.claim("w1")
    monkeypatch.setenv("GIT_DIR", str(hub))
    before = files()
    hookimpl.warm()
    assert files() == before
