"""The pre-receive hook's C client (hooks/hookclient.c, built by gitswarm/hookbuild.py at init).

Real hubs, real `git push`, a real guard (tests/test_guardserver.py's helpers; init builds the
client into every hub, so test_guardserver.py's pushes, a socket planted by another account
among them, go through it too). The shim's Python is
replaced by a wrapper that records each start, so every test knows which way a push was checked:
by the guard with no Python start, or by the shim's Python line the C client fell back to. The
client is also run by hand, as git runs a hook, against a stand-in guard of this account: what it
sends must be what the guard reads (guardserver.read_request), and anything short of a whole
`exit <code>` answer must run the fallback with the hook's stdin as it came.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import test_guard as G
from gitswarm import guardserver, hookbuild, hookclient, rules
from test_guardserver import CASES, NOBODY, Hub, _bad_claim, _good_claim, answered, as_root, guarded  # noqa: F401 (a fixture)

from conftest import gitswarm, hook_form, sh
from taskfiles import B, C

pytestmark = [pytest.mark.skipif(os.environ.get("GITSWARM_TEST_GUARD") == "1",
                                 reason="starts and kills guards of its own (conftest's hub has one running)"),
              pytest.mark.skipif(shutil.which(shlex.split(os.environ.get("CC") or "cc")[0]) is None,
                                 reason="no C compiler")]

WRAPPER = '#!/bin/sh\necho $$ >> "%s"\nexec %s "$@"\n'


@pytest.fixture(params=["client", "sh"])
def chub(guarded: Hub, tmp_path: Path, request) -> Hub:  # noqa: F811
    """The guarded hub, its C client built by init, its shim's Python recording each start; the
    client the shims' interpreter, or started by sh (a shared hub's way); "none" (indirect): no
    client the shim may run."""
    client = guarded.path / hookbuild.CLIENT
    assert os.access(client, os.X_OK), "init did not build the C client"
    hook_form(guarded.path, request.param)
    guarded.pythons = tmp_path / "pythons"  # type: ignore[attr-defined]
    wrapper = tmp_path / "python"
    wrapper.write_text(WRAPPER % (guarded.pythons, sys.executable))  # type: ignore[attr-defined]
    wrapper.chmod(0o755)
    shim = guarded.path / "hooks" / "pre-receive"
    text = shim.read_text()
    # the shim's own line; sh's also hands it to the C client as its fallback
    assert text.count(f"{sys.executable} -I -S") == (1 if request.param == "client" else 2)
    shim.write_text(text.replace(f"{sys.executable} -I -S", f"{wrapper} -I -S"))
    return guarded


def good_claim_after(clone: Path, hub: Path) -> None:
    """Drop the clone's refused commits, then push a legal claim of another task: it must be accepted."""
    sh("git", "reset", "-q", "--hard", "origin/tasks", cwd=clone)
    G.commit(clone, "claim", [rules.claim(G.seed(clone, hub, "open", B), "alice")], "alice", 1)
    G.accept(clone, hub)


def pythons(h: Hub) -> int:
    """How many times the shim's Python started."""
    log = h.pythons  # type: ignore[attr-defined]
    return len(log.read_text().split()) if log.exists() else 0


# ---------------------------------------------------------------- pushes through the shim

@pytest.mark.parametrize("name", CASES[:3])
def test_with_the_guard_up_no_python_starts(chub: Hub, board_clone: Path, name: str) -> None:
    chub.start()
    G.test_an_illegal_transition(board_clone, chub.path, name)
    good_claim_after(board_clone, chub.path)
    assert set(chub.checkers()) == {chub.guard.pid} and len(chub.checkers()) == 2
    assert pythons(chub) == 0


def test_with_the_guard_down_the_python_line_checks(chub: Hub, board_clone: Path) -> None:
    rule = _bad_claim(board_clone, chub.path)
    G.reject(board_clone, chub.path, rule)
    good_claim_after(board_clone, chub.path)
    assert pythons(chub) == 2 and len(chub.checkers()) == 2


@pytest.mark.parametrize("chub", ["none"], indirect=True)
def test_without_the_c_client_the_shim_runs_python(chub: Hub, board_clone: Path) -> None:
    chub.start()
    _good_claim(board_clone, chub.path)
    G.accept(board_clone, chub.path)
    assert chub.checkers() == [chub.guard.pid] and pythons(chub) == 1


@pytest.mark.parametrize("good", [False, True], ids=["bad-push", "good-push"])
def test_guard_and_child_killed_while_a_push_waits(chub: Hub, board_clone: Path, good: bool) -> None:
    """A half answer (the guard's group SIGKILLed mid-push): the C client runs the Python line with
    the stdin it read, which checks the push in process."""
    hub = chub.path
    rule = None if good else _bad_claim(board_clone, hub)
    if good:
        _good_claim(board_clone, hub)
    before = G.tip(hub)
    chub.block.touch()
    chub.start()
    pushing = subprocess.Popen(["git", "push", "origin", "HEAD:refs/heads/tasks"], cwd=board_clone,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chub.wait_blocked()
    assert pythons(chub) == 0
    os.killpg(chub.guard.pid, signal.SIGKILL)
    chub.guard.wait()
    chub.release.touch()
    answered(pushing, good, hub, board_clone, rule, before)
    checkers = chub.checkers()
    assert len(checkers) == 2 and checkers[0] == chub.guard.pid and checkers[1] != chub.guard.pid
    assert pythons(chub) == 1


def test_a_stale_socket_falls_back_at_once(chub: Hub, board_clone: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(chub.path / hookclient.SOCKET))
    dead.close()
    G.reject(board_clone, chub.path, _bad_claim(board_clone, chub.path))
    assert pythons(chub) == 1 and len(chub.checkers()) == 1


def test_push_options_and_the_hooks_output_pass_through(chub: Hub, board_clone: Path) -> None:
    sh("git", "config", "receive.advertisePushOptions", "true", cwd=chub.path)
    legacy = chub.path / "hooks" / "pre-receive.legacy"
    legacy.write_text(legacy.read_text().replace(
        "exit 0\n", 'echo "option: $GIT_PUSH_OPTION_0" >&2\necho "to stdout: umask $(umask)"\nexit 0\n'))
    chub.start()
    _good_claim(board_clone, chub.path)
    proc = sh("git", "push", "-o", "hello-c", "origin", "HEAD:refs/heads/tasks", cwd=board_clone, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "remote: option: hello-c" in proc.stderr and "remote: to stdout: umask 0022" in proc.stderr
    assert chub.checkers() == [chub.guard.pid] and pythons(chub) == 0


@as_root
@pytest.mark.parametrize("chub", ["sh"], indirect=True)
def test_a_client_planted_by_another_account_is_not_run(chub: Hub, board_clone: Path) -> None:
    """A shared hub's gitswarm/ is group-writable: sh starts first there (init makes the client an
    interpreter only on a hub that is its owner's alone, tests/test_init.py), and runs only a
    client of the pusher's own."""
    planted = chub.path / hookbuild.CLIENT
    planted.unlink()
    planted.write_text("#!/bin/sh\nexit 0\n")
    planted.chmod(0o755)
    os.chown(planted, NOBODY, NOBODY)
    G.reject(board_clone, chub.path, _bad_claim(board_clone, chub.path))
    assert pythons(chub) == 1


def test_the_interpreter_is_found_wherever_the_hub_moves_and_a_lost_one_is_named(hub: Path, tmp_path: Path) -> None:
    """`#!gitswarm/hookclient --shim` is relative: git runs push hooks in the hub, so a hub moved
    elsewhere still checks every push. Without its interpreter every push is refused (git says only
    "cannot run hooks/pre-receive"): serve names the cause and the fix, and init mends it."""
    from gitswarm.install import init, shims_broken

    hook_form(hub, "client")
    moved = tmp_path / "elsewhere" / "moved.git"
    moved.parent.mkdir()
    hub.rename(moved)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "tasks", str(moved), str(clone))
    G.reject(clone, moved, _bad_claim(clone, moved))
    good_claim_after(clone, moved)
    assert shims_broken(moved) is None
    task = G.seed(clone, moved, "open", C)
    (moved / hookbuild.CLIENT).unlink()
    before = G.tip(moved)
    G.commit(clone, "claim", [rules.claim(task, "bob")], "bob", 1)
    refused = sh("git", "push", "origin", "HEAD:refs/heads/tasks", cwd=clone, check=False)
    assert refused.returncode != 0 and "cannot run hooks/pre-receive" in refused.stderr and G.tip(moved) == before
    said = shims_broken(moved)
    assert said is not None and said.startswith(f"{moved / hookbuild.CLIENT} is missing or cannot run")
    assert f"run `gitswarm init {moved}`" in said
    init(moved)
    assert shims_broken(moved) is None
    G.accept(clone, moved)


# ---------------------------------------------------------------- the client alone, as git runs a hook

FALLBACK = [sys.executable, "-c", "import sys; sys.stdout.write('fallback:' + sys.stdin.read()); sys.exit(7)"]


class StandIn:
    """A guard of this account on `<hub>/gitswarm/guard.sock` that reads one request with
    guardserver.read_request (or just takes it: live, or "raw" to keep its bytes) and answers `answer`."""

    def __init__(self, hub: Path, answer: bytes, live: bool | str = False):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(hub / hookclient.SOCKET))
        self.listener.listen(1)
        self.answer, self.live, self.got = answer, live, []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:  # a request read_request refuses fails the test: got stays empty
            if self.live == "raw":
                chunk, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
                for fd in fds:  # the client's stdout and stderr: our run() reads them to their end
                    os.close(fd)
                parts = [chunk]
                while parts[-1]:
                    parts.append(conn.recv(1 << 16))
                self.got.append(b"".join(parts))
            elif self.live:
                _, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
                self.got.append(len(fds))
                for fd in fds:
                    os.close(fd)
            else:
                name, cwd, mask, env, data, fds = guardserver.read_request(conn)
                for fd in fds:
                    os.close(fd)
                self.got.append((name, cwd, mask, env, data, len(fds)))
            conn.sendall(self.answer)

    def close(self) -> None:
        self.thread.join(60)
        self.listener.close()


def run_client(hub: Path, name: str, data: bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {"GIT_DIR": ".", "PATH": os.environ["PATH"], "GIT_QUARANTINE_PATH": "/q", "X": "a=b", **(env or {})}
    return subprocess.run([str(hub / hookbuild.CLIENT), name, *FALLBACK], cwd=hub, input=data, env=env,
                          capture_output=True, timeout=120)


def test_the_request_is_what_the_guard_reads(hub: Path) -> None:
    data = b"".join(b"%040d %040d refs/heads/r%d\n" % (i, i + 1, i) for i in range(3000))  # > a socket buffer
    standin = StandIn(hub, b"exit 3\n")
    ran = run_client(hub, "pre-receive", data)
    standin.close()
    assert ran.returncode == 3 and ran.stdout == b"", ran.stderr
    name, cwd, mask, env, got, nfds = standin.got[0]
    assert (name, cwd, mask, got, nfds) == ("pre-receive", os.fsencode(os.path.realpath(hub)), 0o022, data, 2)
    assert env[b"GIT_QUARANTINE_PATH"] == b"/q" and env[b"X"] == b"a=b" and env[b"GIT_DIR"] == b"."


def test_the_request_is_byte_for_byte_hookclient_request(hub: Path) -> None:
    env = {"GIT_DIR": ".", "LC_ALL": "C.UTF-8", "A": "", "B": "x=y=z", "C": "\u00e9"}  # UTF-8: no locale coercion
    standin = StandIn(hub, b"exit 0\n", live="raw")
    ran = subprocess.run([str(hub / hookbuild.CLIENT), "pre-receive", "/bin/false"], cwd=hub, input=b"in\n", env=env,
                         capture_output=True, timeout=120)
    standin.close()
    assert ran.returncode == 0, ran.stderr
    program = (f"import sys; sys.path[:0] = [{os.path.dirname(os.path.dirname(hookclient.__file__))!r}]; "
               "from gitswarm.hookclient import request; sys.stdout.buffer.write(request('pre-receive', b'in\\n'))")
    python = subprocess.run([sys.executable, "-I", "-S", "-c", program], cwd=hub, env=env, capture_output=True,
                            check=True)
    assert standin.got == [python.stdout]


@pytest.mark.parametrize("answer", [b"", b"exit 0", b"exit 0\nexit 0\n", b"exit \n", b"exit x\n", b"exit 256\n",
                                    b"EXIT 0\n", b"exit -1\n", b"exit 0 \n"])
def test_anything_but_a_whole_answer_runs_the_fallback_with_the_stdin(hub: Path, answer: bytes) -> None:
    standin = StandIn(hub, answer)
    ran = run_client(hub, "pre-receive", b"old new ref\n")
    standin.close()
    assert standin.got, "the client never asked"
    assert (ran.returncode, ran.stdout) == (7, b"fallback:old new ref\n"), ran.stderr


@pytest.mark.parametrize("where", ["no-socket", "other-owner"])
def test_no_guard_runs_the_fallback(hub: Path, where: str) -> None:
    listener = None
    if where == "other-owner":  # the hub is another account's: its guard (or anyone's) is not asked
        if os.getuid() != 0:
            pytest.skip("needs root, to give the hub to another account")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(hub / hookclient.SOCKET))
        listener.listen(1)
        os.chown(hub, NOBODY, NOBODY)
    try:
        ran = run_client(hub, "pre-receive", b"x\n")
    finally:
        if listener is not None:
            os.chown(hub, os.getuid(), os.getgid())
    assert (ran.returncode, ran.stdout) == (7, b"fallback:x\n"), ran.stderr
    if listener is not None:
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # nobody connected
            listener.accept()
        listener.close()


def test_live_mode_falls_back_with_stdin_untouched_or_says_the_guard_died(hub: Path) -> None:
    """proc-receive's stdin is a conversation: no guard -> the fallback reads it itself; a guard
    that took it and died -> exit 1 and a sentence, never the fallback on a half-read stdin."""
    ran = run_client(hub, "proc-receive", b"pkt\n")
    assert (ran.returncode, ran.stdout) == (7, b"fallback:pkt\n"), ran.stderr
    standin = StandIn(hub, b"", live=True)
    ran = run_client(hub, "proc-receive", b"pkt\n")
    standin.close()
    assert standin.got == [3]
    assert ran.returncode == 1 and ran.stdout == b""
    assert b"gitswarm: the hub's guard died during the push; push again" in ran.stderr


# ---------------------------------------------------------------- init

@pytest.mark.parametrize("how", ["CC=/bin/false", "no cc on PATH"])
def test_init_without_a_compiler_still_makes_a_working_hub(tmp_path: Path, how: str) -> None:
    hub = tmp_path / "hub.git"
    env = dict(os.environ)
    if how == "CC=/bin/false":
        env["CC"] = "/bin/false"
    else:
        bare = tmp_path / "bin"
        bare.mkdir()
        (bare / "git").symlink_to(shutil.which("git"))
        env.pop("CC", None)
        env["PATH"] = str(bare)
    out = subprocess.run([sys.executable, "-m", "gitswarm", "init", str(hub)], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "note: the pre-receive hook runs Python for every push" in out.stdout, out.stdout
    assert not (hub / hookbuild.CLIENT).exists()
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "tasks", str(hub), str(clone))
    G.reject(clone, hub, _bad_claim(clone, hub))
    good_claim_after(clone, hub)
    again = gitswarm("init", str(hub)).stdout  # a compiler now: built
    assert "built the hook client" in again and os.access(hub / hookbuild.CLIENT, os.X_OK)


def test_init_rebuilds_when_the_compiler_changes_and_drops_a_build_it_cannot_redo(hub: Path, monkeypatch) -> None:
    from gitswarm.install import init

    client = hub / hookbuild.CLIENT
    assert init(hub) == []
    monkeypatch.setenv("CC", (os.environ.get("CC") or "cc") + " -DREBUILT")
    assert any("built the hook client" in line for line in init(hub))
    assert init(hub) == []
    client.chmod(0o775)  # not as init leaves it: rebuilt
    assert any("built the hook client" in line for line in init(hub))
    assert client.stat().st_mode & 0o777 == 0o755
    monkeypatch.setenv("CC", "/bin/false")
    assert any(line.startswith("note: ") for line in init(hub))
    assert not client.exists()


def test_on_a_shared_hub_the_client_is_not_group_writable(tmp_path: Path) -> None:
    """gitswarm/ is group-writable there (every member's push spools), the client is not: it is
    the hub owner's code, and the shim runs only a client of the pusher's own."""
    from gitswarm.install import init

    hub = tmp_path / "hub.git"
    sh("git", "init", "-q", "--bare", "--shared=group", str(hub))
    init(hub)
    assert (hub / "gitswarm").stat().st_mode & 0o020
    assert (hub / hookbuild.CLIENT).stat().st_mode & 0o7777 == 0o755
    assert init(hub) == []


def test_a_client_that_cannot_run_from_the_hub_is_not_left_for_the_shim(hub: Path, tmp_path: Path, monkeypatch) -> None:
    """A shim whose exec fails fails every push (sh exits): init runs the client once where it
    lies, and drops it with a note when it does not run as the client does (a noexec mount; here,
    a compiler that makes something else, stamp and all)."""
    from gitswarm.install import init

    fake = tmp_path / "fakecc"
    fake.write_text('#!/bin/sh\nfor a; do [ "$prev" = -o ] && out=$a; prev=$a; done\n'
                    'printf "#!/bin/sh\\nexit 0\\n# %s\\n" "$*" > "$out"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    done = init(hub)
    assert any("the hook client built but does not run from the hub (exit 0)" in line for line in done), done
    assert not (hub / hookbuild.CLIENT).exists()
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "tasks", str(hub), str(clone))
    G.reject(clone, hub, _bad_claim(clone, hub))


# ---------------------------------------------------------------- a push the hub applies: nothing to ask

APPLIED = b"%s %s refs/for/heads/tasks\n" % (b"a" * 40, b"b" * 40)
INIT_WRITES = "\tprocReceiveRefs = refs/for"


def _config(hub: Path, receive: str) -> None:
    """The hub's config with its [receive] lines replaced by `receive` (already a whole section, or
    more than one)."""
    lines = (hub / "config").read_text().splitlines()
    assert INIT_WRITES in lines, "init wrote the line as this test expects"
    start = lines.index("[receive]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    (hub / "config").write_text("\n".join(lines[:start] + receive.splitlines() + lines[end:]) + "\n")


@pytest.mark.parametrize("receive", ["[receive]\n" + INIT_WRITES, "[receive]\nprocreceiverefs=refs/for",
                                     "[Receive]\n\tProcReceiveRefs =\trefs/for  ",
                                     "[receive]\n\tprocReceiveRefs = refs/other\n\tprocReceiveRefs = refs/for"])
def test_a_push_only_to_refs_for_asks_nobody(hub: Path, receive: str) -> None:
    """Its pre-receive has nothing to check (proc-receive checks what it applies): no guard asked,
    no Python started, when the hub's config says, as init writes it, that git hands refs/for/ to
    proc-receive. git agrees on every config this takes."""
    _config(hub, receive)
    assert "refs/for" in sh("git", "config", "--get-all", "receive.procReceiveRefs", cwd=hub).stdout.split()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a guard that would be asked
    listener.bind(str(hub / hookclient.SOCKET))
    listener.listen(1)
    ran = run_client(hub, "pre-receive", APPLIED * 2 + APPLIED.replace(b"heads/tasks", b"gitswarm/heartbeats/w1"))
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):  # nobody connected
        listener.accept()
    listener.close()
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, b"", b"")


def test_a_board_push_through_refs_for_starts_no_python_in_pre_receive(chub: Hub, board_clone: Path) -> None:
    """A real push as the board makes it, the guard down: pre-receive starts no Python (proc-receive,
    not wrapped here, applies and checks it in process); a claim pushed plainly does."""
    (chub.path / "hooks" / "pre-receive.legacy").unlink()  # the fixture's recorder: it would be run
    first, second = (G.seed(board_clone, chub.path, "open", t) for t in (B, C))
    before = pythons(chub)
    G.commit(board_clone, "claim", [rules.claim(first, "alice")], "alice", 1)
    ran = sh("git", "push", "origin", "HEAD:refs/for/heads/tasks", cwd=board_clone, check=False)
    assert ran.returncode == 0 and G.tip(chub.path) == G.head(board_clone), ran.stderr
    assert pythons(chub) == before
    G.commit(board_clone, "claim", [rules.claim(second, "alice")], "alice", 1)
    G.accept(board_clone, chub.path)
    assert pythons(chub) == before + 1


@pytest.mark.parametrize("receive", ["", "[receive]", "[receive \"x\"]\n" + INIT_WRITES, "[core]\n" + INIT_WRITES,
                                     "[receive]\n\tprocReceiveRefs = m:refs/for", "[receive]\n\tprocReceiveRefs = refs/for/",
                                     "[receive]\n\t# procReceiveRefs = refs/for", "[receive] procReceiveRefs = refs/for",
                                     "[receive]\n\tx = y \\\n" + INIT_WRITES, "[receive]\n\tprocReceiveRefs = \"refs/for\"",
                                     "[receive]\n\tprocReceiveRefsX = refs/for"])
def test_any_other_config_asks_as_before(hub: Path, receive: str) -> None:
    """Strict: a config the client does not read exactly as init writes it (some of which git
    would read as applying: they are asked about all the same) is checked as every push is."""
    _config(hub, receive)
    ran = run_client(hub, "pre-receive", APPLIED)
    assert (ran.returncode, ran.stdout) == (7, b"fallback:" + APPLIED), ran.stderr


@pytest.mark.parametrize("data", [b"", APPLIED[:-1], APPLIED + b"%s %s refs/heads/tasks\n" % (b"a" * 40, b"b" * 40),
                                  APPLIED.replace(b"a" * 40, b"A" * 40), APPLIED.replace(b"a" * 40, b"a" * 39),
                                  APPLIED.replace(b"refs/for/heads/tasks", b"refs/for/"), APPLIED.replace(b" refs", b"  refs"),
                                  APPLIED.replace(b"tasks", b"ta sks"), APPLIED.replace(b"tasks", b"ta\0sks"),
                                  APPLIED.replace(b"refs/for/", b"refs/forx/"), b"\n" + APPLIED])
def test_any_other_push_asks_as_before(hub: Path, data: bytes) -> None:
    ran = run_client(hub, "pre-receive", data)
    assert (ran.returncode, ran.stdout) == (7, b"fallback:" + data), ran.stderr


def test_a_legacy_pre_receive_is_still_run(hub: Path) -> None:
    legacy = hub / "hooks" / "pre-receive.legacy"
    legacy.write_text("#!/bin/sh\nexit 0\n")
    legacy.chmod(0o755)
    ran = run_client(hub, "pre-receive", APPLIED)
    assert (ran.returncode, ran.stdout) == (7, b"fallback:" + APPLIED), ran.stderr
    legacy.unlink()
    assert run_client(hub, "pre-receive", APPLIED).returncode == 0


# ---------------------------------------------------------------- post-receive: the spool record in C

ZERO, ONE = "0" * 40, "1" * 40


WHO_RAN = '#!/bin/sh\nbasename "$(readlink /proc/$PPID/exe)" > ran-by\ncat > /dev/null\n'  # a legacy hook: who ran it


WAYS = {"interpreter": "client", "c": "sh", "bash": "none"}  # post-receive's ways -> conftest.hook_form


def post_receive(hub: Path, way: str, data: bytes, env: dict | None = None, args: tuple[str, ...] = ()) -> bytes:
    """Run the hub's post-receive shim as git runs it, through the C client (its interpreter, or
    started by sh) or (way="bash") its bash fallback, and check which ran it; returns the one push
    record it spooled (taken out of the spool)."""
    hook_form(hub, WAYS[way])
    legacy = hub / "hooks" / "post-receive.legacy"
    legacy.write_text(WHO_RAN)
    legacy.chmod(0o755)
    ran = subprocess.run([str(hub / "hooks" / "post-receive"), *args], cwd=hub, input=data, capture_output=True,
                         env={"GIT_DIR": ".", "PATH": os.environ["PATH"], **(env or {})}, timeout=120)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, b"", b""), ran.stderr
    assert (hub / "ran-by").read_text() == ("bash\n" if way == "bash" else "hookclient\n")
    (record,) = (hub / "gitswarm" / "spool").glob("*.push")
    assert re.fullmatch(r"\d{16}-\d+\.push", record.name) and not list((hub / "gitswarm" / "spool").glob(".*"))
    assert record.stat().st_mode & 0o777 == 0o644  # umask 022, as the script sets
    data = record.read_bytes()
    record.unlink()
    return data


ODD = {"GITSWARM_PUSHER": "two\nlines", "REMOTE_USER": "a=b==c", "SSH_CLIENT": "",  # set but empty: kept
       "GL_USER": b"caf\xc3 \xff\xfe", "GATEWAY_INTERFACE": "CGI/1.1", "USER": "not one of VARIABLES"}


@pytest.mark.parametrize("data", [
    b"",
    f"{ZERO} {ONE} refs/heads/main\n".encode(),
    f"{ZERO} {ONE} refs/heads/a\r\n\0{ONE} {ZERO} refs/heads/\xe9\n\n{ONE} {ONE} no-newline".encode(),
    b"".join(b"%040d %040d refs/heads/r%d\n" % (i, i + 1, i) for i in range(5000)),  # more than a pipe holds
], ids=["empty", "one-ref", "odd-lines", "5000-refs"])
def test_the_c_client_writes_the_bash_scripts_record_byte_for_byte(hub: Path, data: bytes) -> None:
    from gitswarm.identity import VARIABLES

    direct, c, bash = (post_receive(hub, way, data, ODD) for way in ("interpreter", "c", "bash"))
    lines = data.replace(b"\0", b"")  # bash's `read` drops NUL bytes and ends a last line
    lines += b"\n" if lines and not lines.endswith(b"\n") else b""
    head = b"".join(os.fsencode(k) + b"=" + os.fsencode(ODD[k]) + b"\0" for k in VARIABLES if k in ODD)
    assert direct == c == bash == b"gitswarm-push-1\0" + head + b"\0" + lines
    assert head.index(b"SSH_CLIENT=\0") < head.index(b"GATEWAY_INTERFACE") < head.index(b"GL_USER")


def test_an_environment_with_none_of_the_variables_gives_an_empty_head(hub: Path) -> None:
    line = f"{ZERO} {ONE} refs/heads/main\n".encode()
    assert post_receive(hub, "interpreter", line) == post_receive(hub, "c", line) == post_receive(hub, "bash", line) \
        == b"gitswarm-push-1\0\0" + line


LEGACY = '#!/bin/sh\n{ echo "$# $*"; pwd; umask; echo "$LC_ALL"; cat; } > "$LEGACY_OUT"\necho "legacy said so"\n'


def test_the_legacy_hook_runs_alike_with_the_lines_and_the_arguments(hub: Path, tmp_path: Path) -> None:
    legacy = hub / "hooks" / "post-receive.legacy"
    legacy.write_text(LEGACY)
    legacy.chmod(0o755)
    data = f"{ZERO} {ONE} refs/heads/main\n{ONE} {ZERO} last".encode()
    outs = {}
    for way in WAYS:
        hook_form(hub, WAYS[way])
        # git runs push hooks in the hub, where a relative interpreter is found; sh's shim cds there itself
        ran = subprocess.run([str(hub / "hooks" / "post-receive"), "x", "y z"], input=data, capture_output=True,
                             cwd=hub if way == "interpreter" else tmp_path, timeout=120,
                             env={"GIT_DIR": str(hub), "PATH": os.environ["PATH"], "LEGACY_OUT": str(tmp_path / way)})
        assert (ran.returncode, ran.stdout, ran.stderr) == (0, b"legacy said so\n", b""), ran.stderr
        outs[way] = (tmp_path / way).read_text()
    assert set(outs.values()) == {f"2 x y z\n{hub}\n0022\nC\n{ZERO} {ONE} refs/heads/main\n{ONE} {ZERO} last\n"}
    assert len(list((hub / "gitswarm" / "spool").glob("*.push"))) == 3


@pytest.mark.parametrize("way", list(WAYS))
def test_a_push_spools_and_runs_the_legacy_hook_or_says_it_could_not_spool(hub: Path, tmp_path: Path,
                                                                            way: str) -> None:
    """Real pushes: the record is read into events, the legacy hook gets git's line; with a file
    where the spool folder should be, the push stands, says so, and the legacy hook still runs."""
    from gitswarm import events
    from conftest import commit_all, push

    hook_form(hub, WAYS[way])
    legacy = hub / "hooks" / "post-receive.legacy"
    legacy.write_text('#!/bin/sh\ncat >> legacy.out\n')
    legacy.chmod(0o755)
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    commit_all(work, "one")
    assert push(work, "HEAD:refs/heads/main").returncode == 0
    first = sh("git", "rev-parse", "HEAD", cwd=work).stdout.strip()
    assert [(e.ref, e.new) for e in events.pending(hub)] == [("refs/heads/main", first)]
    spool = events.spool_dir(hub)
    shutil.rmtree(spool)
    spool.write_text("a file where the spool folder should be")
    commit_all(work, "two")
    result = push(work, "HEAD:refs/heads/main")
    second = sh("git", "rev-parse", "HEAD", cwd=work).stdout.strip()
    assert result.returncode == 0 and "remote: gitswarm: could not spool the event" in result.stderr
    assert sh("git", "rev-parse", "main", cwd=hub).stdout.strip() == second
    assert (hub / "legacy.out").read_text() == f"{ZERO} {first} refs/heads/main\n{first} {second} refs/heads/main\n"


@as_root
def test_a_post_receive_client_planted_by_another_account_is_not_run(hub: Path) -> None:
    """The shim runs only the pusher's own client; another's is skipped, and bash spools the push
    (sh's shim: a shared hub's, where another account could plant one)."""
    hook_form(hub, "sh")
    planted = hub / hookbuild.CLIENT
    planted.unlink()
    planted.write_text("#!/bin/sh\ntouch planted-ran\n")
    planted.chmod(0o755)
    os.chown(planted, NOBODY, NOBODY)
    line = f"{ZERO} {ONE} refs/heads/main\n".encode()
    ran = subprocess.run([str(hub / "hooks" / "post-receive")], cwd=hub, input=line, capture_output=True,
                         env={"GIT_DIR": ".", "PATH": os.environ["PATH"]}, timeout=120)
    assert ran.returncode == 0 and not (hub / "planted-ran").exists(), ran.stderr
    (record,) = (hub / "gitswarm" / "spool").glob("*.push")
    assert record.read_bytes() == b"gitswarm-push-1\0\0" + line


def test_the_client_never_fails_post_receive(hub: Path) -> None:
    """Exit 0 and a sentence, whatever goes wrong: a shim without `--`, a GIT_DIR it cannot enter."""
    client = str(hub / hookbuild.CLIENT)
    for args, env, said in [(["post-receive", "GL_USER"], {"GIT_DIR": "."}, b"no -- among its arguments"),
                            (["post-receive", "--"], {"GIT_DIR": "/nonexistent"}, b"")]:
        ran = subprocess.run([client, *args], cwd=hub, input=b"x\n", capture_output=True, env=env, timeout=120)
        assert ran.returncode == 0 and said in ran.stderr, ran.stderr
    assert not list((hub / "gitswarm" / "spool").iterdir())


EXECVE = """import ctypes, os, sys
args = [os.fsencode(a) for a in sys.argv[1:]]
env = [b"GIT_DIR=.", b"PATH=" + os.environb[b"PATH"], b"GL_USER=first", b"GL_USER", b"GL_USER=second"]
ctypes.CDLL(None).execve(args[0], (ctypes.c_char_p * (len(args) + 1))(*args, None),
                         (ctypes.c_char_p * (len(env) + 1))(*env, None))
"""


@pytest.mark.parametrize("run", ["shim", "client"])
def test_a_variable_given_twice_is_the_last_as_in_bash(hub: Path, run: str) -> None:
    """An environment no shell would make (git passes on what it was given): the value bash sees,
    the last, whether sh's shim hands it on or the client gets it as it is; an entry with no `=` is none."""
    line = f"{ZERO} {ONE} refs/heads/main\n".encode()
    records = []
    for way in WAYS:
        hook_form(hub, WAYS[way])
        program = [str(hub / hookbuild.CLIENT), "post-receive", "GL_USER", "--"] if (run, way) == ("client", "c") \
            else [str(hub / "hooks" / "post-receive")]
        ran = subprocess.run([sys.executable, "-c", EXECVE, *program], cwd=hub, input=line, capture_output=True,
                             timeout=120)
        assert (ran.returncode, ran.stderr) == (0, b""), ran.stderr
        (record,) = (hub / "gitswarm" / "spool").glob("*.push")
        records.append(record.read_bytes())
        record.unlink()
    assert records == [b"gitswarm-push-1\0GL_USER=second\0\0" + line] * 3
