"""The resident guard: checks pushes for the hub's hooks without a Python start-up per push.

`gitswarm serve` starts it (`python -m gitswarm.guardserver <hub>`, see start()). It imports
everything the hooks need once, listens on `<hub>/gitswarm/guard.sock` (mode 0600) and keeps
SPARES children forked ahead, each waiting to take one push: the child takes the hook's environment, folder, umask, stdin and stdout/stderr
(gitswarm/hookclient.py sends them), runs the hook's own code (gitswarm/hookimpl.py) exactly as
the shim would in process, and answers `exit <code>`. A child per push keeps pushes apart: no
state, cache or environment of one push reaches another, and a push that crashes its child
costs the others nothing.

Who may use it: only the hub's owner, the account this runs as. The socket is created 0600 and
every connection's peer is checked (SO_PEERCRED), so another account can neither get a push
accepted through it nor read the board with it; its pushes are checked in process, as before.
The shim checks the guard's account too (a socket planted by another account is ignored).
The quarantine's objects are read as the hook reads them: through the GIT_QUARANTINE_PATH,
GIT_OBJECT_DIRECTORY and GIT_ALTERNATE_OBJECT_DIRECTORIES the hook passes, same account.

One guard per hub: it holds `<hub>/gitswarm/guard.lock` (flock) while it serves; a second finds
the lock taken and leaves. A socket left by a guard that died refuses connections at once, and
the shim checks in process; its idle children die with it (PR_SET_PDEATHSIG), one that holds a
push answers it. The guard stops when its parent closes its stdin (the daemon ended,
however), on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

from . import proc as processes
from .hookclient import LIVE, MAGIC, SOCKET

LOCK = os.path.join("gitswarm", "guard.lock")
MAX_HEAD = 1 << 20  # the environment, the folder and the hook's name
MAX_STDIN = 64 << 20  # `<old> <new> <ref>` lines: far more refs than any push of gitswarm's
READY = "gitswarm guard: listening"
SPARES = 4  # children forked ahead, each warmed up and waiting for a push: pushes that come together find one ready
PRELOAD = ("gitswarm.hookimpl", "gitswarm.applier", "pygit2", "gitswarm.identity", "gitswarm.guard", "gitswarm.check",
           "gitswarm.workrules", "gitswarm.attemptguard", "gitswarm.attempts", "gitswarm.rules", "gitswarm.task",
           "gitswarm.runguard", "gitswarm.runlog", "gitswarm.queue", "gitswarm.goal", "gitswarm.events",
           "gitswarm.shared", "gitswarm.yamlfile", "gitswarm.text", "gitswarm.record", "subprocess", "hashlib", "json",
           "pwd", "time", "ctypes")  # what a push's check imports: a child that imports anew pays ~2 ms a module


class Refused(Exception):
    """A request the guard does not answer: the shim then checks the push in process."""


def socket_path(hub: str | os.PathLike[str]) -> Path:
    return Path(hub) / SOCKET


def serve(hub: str | os.PathLike[str], watch: int | None = None) -> int:
    """Serve the hub's hooks until `watch` (a file descriptor) reaches its end, or a signal.
    Returns 0, or 3 when another guard serves this hub already."""
    import fcntl
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    _prctl()
    os.chdir(hub)  # short relative paths: a unix socket's path is at most 107 bytes
    from .githook import preopen

    preopen(".")
    lock = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"gitswarm guard: another guard serves {hub}", flush=True)
        return 3
    listener = _listen()
    mine = os.stat(SOCKET).st_ino
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: stop.append(signum))
    took, told = os.pipe()  # children say here (their pid) when they take a push
    spares: set[int] = set()
    print(READY, flush=True)
    try:
        while not stop:
            while len(spares) < SPARES:
                pid = _spawn(listener, lock, took, told)
                if pid is None:
                    break
                spares.add(pid)
            try:
                ready, _, _ = select.select([took] + ([watch] if watch is not None else []), [], [], 1.0)
            except InterruptedError:
                continue
            _reap(spares)
            if watch is not None and watch in ready and not os.read(watch, 4096):
                break
            if took in ready:
                data = os.read(took, 4096)
                spares.difference_update(int.from_bytes(data[i:i + 4], sys.byteorder) for i in range(0, len(data), 4))
    finally:
        try:
            if os.stat(SOCKET).st_ino == mine:
                os.unlink(SOCKET)
        except FileNotFoundError:
            pass
        listener.close()
        for pid in spares:  # idle: none holds a push (one that took a push meanwhile leaves a half answer)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(set())
        os.close(lock)
    return 0


def _listen() -> socket.socket:
    """The listening socket, 0600 from its creation (no moment when another account may connect)."""
    try:
        os.unlink(SOCKET)  # a dead guard's: we hold the lock, so no live guard's
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(SOCKET)
    finally:
        os.umask(old)
    os.chmod(SOCKET, 0o600)
    listener.listen(128)
    return listener


def _reap(spares: set[int]) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        spares.discard(pid)


def _spawn(listener: socket.socket, lock: int, took: int, told: int) -> int | None:
    """A spare child, forked ahead of time and waiting in accept(): a push pays for no fork."""
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        return None  # none spare now: pushes wait in the backlog, or are checked in process
    if pid:
        return pid
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        os.close(lock)  # the lock is the guard's alone: a child must not keep it after the guard's end
        os.close(took)
        _die_with_parent(True, parent)  # while idle: a spare left behind by a dead guard would wait for ever
        try:
            from .hookimpl import warm

            warm()  # while it waits: what a push would pay for first
        except Exception:  # a hub it cannot read yet (no tasks branch): the push will say
            pass
        conn = _take(listener)
        _die_with_parent(False, parent)  # a push in hand is answered even if the guard dies meanwhile
        os.write(told, os.getpid().to_bytes(4, sys.byteorder))
        os.close(told)
        listener.close()
        code = _answer(conn) if conn is not None else 0
    except BaseException:  # no answer: the shim checks in process
        code = 1
    finally:
        os._exit(code)


def _prctl():
    """libc's prctl, looked up once in the guard (a child that looked it up paid ~0.5 ms a push)."""
    global _PRCTL
    if _PRCTL is None:
        import ctypes

        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
    return _PRCTL


_PRCTL = None


def _take(listener: socket.socket) -> socket.socket | None:
    """One connection from the hub's owner; None for any other (it checks in process)."""
    conn, _ = listener.accept()
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():
        conn.close()
        return None
    return conn


def _die_with_parent(on: bool, parent: int) -> None:
    """prctl(PR_SET_PDEATHSIG): SIGKILL this process when its parent dies (on), or not (off)."""
    _prctl()(1, signal.SIGKILL if on else 0, 0, 0, 0)
    if on and os.getppid() != parent:  # the guard died before the setting took
        os._exit(0)


def _answer(conn: socket.socket) -> int:
    name, cwd, mask, env, data, fds = read_request(conn)
    os.chdir(cwd)
    os.umask(mask)
    os.environb.clear()
    os.environb.update(env)
    if len(fds) == 2:  # the hook's stdin came as data; for LIVE, its stdin itself is the first fd
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    for fd, target in zip(fds, (1, 2) if len(fds) == 2 else (0, 1, 2)):
        os.dup2(fd, target)
        os.close(fd)
    from .hookimpl import main

    code = main([name], data if len(fds) == 2 else None)
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the hook's pipes closed before it exits: git reads them to their end,
        os.dup2(null, fd)  # and waits for no teardown of this child
    os.close(null)
    conn.sendall(b"exit %d\n" % code)
    return 0


def read_request(conn: socket.socket) -> tuple[str, bytes, int, dict[bytes, bytes], bytes, list[int]]:
    """(hook name, folder, umask, environment, stdin, [stdout fd, stderr fd]) as hookclient.request
    wrote them, or for LIVE (proc-receive) no stdin and [stdin fd, stdout fd, stderr fd]; Refused
    when they are not that."""
    chunk, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    if len(fds) not in (2, 3):
        for fd in fds:
            os.close(fd)
        raise Refused("no stdout and stderr passed")
    parts = [chunk]
    size = len(chunk)
    while True:
        more = conn.recv(1 << 16)
        if not more:
            break
        size += len(more)
        if size > MAX_HEAD + MAX_STDIN:
            raise Refused("request too large")
        parts.append(more)
    raw = b"".join(parts)
    magic, _, rest = raw.partition(b" ")
    length, colon, rest = rest.partition(b":")
    if magic != MAGIC or not colon or not length.isdigit() or int(length) > min(len(rest), MAX_HEAD):
        raise Refused("not a gitswarm hook's request")
    fields = rest[:int(length)].split(b"\0")
    name, cwd, mask, count = fields[:4]
    entries = fields[4:4 + int(count)]
    if len(entries) != int(count) or not all(b"=" in e[1:] for e in entries):
        raise Refused("a malformed environment")
    env = dict(e.split(b"=", 1) for e in entries)
    if (len(fds) == 3) != (name == LIVE.encode()) or (len(fds) == 3 and rest[int(length):]):
        for fd in fds:
            os.close(fd)
        raise Refused(f"{LIVE} alone passes its stdin, and no data")
    return name.decode(), cwd, int(mask, 8), env, rest[int(length):], fds


def start(hub: str | os.PathLike[str], log=None) -> subprocess.Popen | None:
    """Start the hub's guard for as long as this process lives (its stdin is our pipe); None when
    it did not start (another one serves the hub, or it failed: `log` says why; pushes are then
    checked in process, as without a guard). stop() ends it."""
    proc = processes.start([sys.executable, "-m", "gitswarm.guardserver", "--watch-stdin", os.fspath(hub)],
                           stdin=subprocess.PIPE, stderr=None)
    line = proc.stdout.readline().decode(errors="replace").strip()  # type: ignore[union-attr]
    if line == READY:
        return proc
    stop(proc)
    if log is not None:
        log(line or f"gitswarm guard: did not start (exit {proc.returncode}); pushes are checked in the hooks")
    return None


def stop(proc: subprocess.Popen | None) -> None:
    """End a guard from start(): it closes its socket; pushes in flight still get their answer."""
    if proc is None:
        return
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()
    processes.end(proc, 10)


def main(argv: list[str] | None = None) -> int:
    """`python -m gitswarm.guardserver [--watch-stdin] HUB`: --watch-stdin stops it at its stdin's end."""
    argv = sys.argv[1:] if argv is None else argv
    watch = argv[:1] == ["--watch-stdin"]
    if len(argv) != 1 + watch:
        print("usage: python -m gitswarm.guardserver [--watch-stdin] HUB", file=sys.stderr)
        return 2
    return serve(argv[-1], watch=0 if watch else None)


if __name__ == "__main__":
    sys.exit(main())
