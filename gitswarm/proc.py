"""Every process gitswarm starts and waits for: started in a session of its own, its output read
by threads that keep a bounded head and tail (or all of it), and ended whole.

`run_killable` is the one way to run a command to its end: at `timeout`, or when `stop` is set,
its whole process group gets SIGTERM, then SIGKILL after `grace`; with `leftovers` (the default),
what it left running in its group when it exits is ended the same way. A child that left the
group (the sandbox's pid 1, in a session of its own; a `setsid` child) is found while the group
is frozen and gets SIGKILL. A tree that escaped the group otherwise is not found here: without
the sandbox, gitswarm/reaper.py (a subreaper) brings such orphans back under the group.
`start` and `end` are for a long-lived child (a service with a pipe to it, gitswarm/guardserver.py).

Standard library only and no import of gitswarm: gitswarm/reaper.py, run by its path with
`python -I`, loads this file by its path too.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Protocol

LINGER = 1.0  # seconds to read on after the command ended: a stray holding the pipe must not hang us


class Stop(Protocol):
    def is_set(self) -> bool: ...


def processes() -> list[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            found.append((int(stat.parent.name), state, int(ppid), int(group)))
        except (OSError, IndexError, ValueError):
            continue
    return found


def exit_status(code: int) -> int:
    """A child's status as a shell gives it: its exit code, or 128+n when signal n killed it."""
    return 128 - code if code < 0 else code


class _Capture(threading.Thread):
    """Reads a pipe to the end, keeping `keep` bytes (half from the start, half from the end), or
    everything when `keep` is None."""

    def __init__(self, pipe: IO[bytes], keep: int | None):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.keep = keep
        self.keep_head = (keep // 2) if keep is not None else -1
        self.keep_tail = (keep - keep // 2) if keep is not None else -1
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def run(self) -> None:
        try:
            while chunk := self.pipe.read1(65536):  # type: ignore[attr-defined]
                self.total += len(chunk)
                if self.keep is None:
                    self.head += chunk
                    continue
                room = self.keep_head - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    del self.tail[:-self.keep_tail or len(self.tail)]
        except (OSError, ValueError):
            pass

    def waiting(self) -> bool:
        """Whether the pipe has something this thread has not read yet (it was starved)."""
        try:
            return bool(select.select([self.pipe], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def data(self) -> bytes:
        cut = self.total - len(self.head) - len(self.tail)
        return bytes(self.head) + (f"\n[... {cut} bytes cut ...]\n".encode() if cut > 0 else b"") + bytes(self.tail)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError):
        pass  # the program did not read its stdin: its business
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: an orphan's zombie stays in
    the group until init reaps it, which some container inits do only every few seconds."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    if not os.path.isdir("/proc"):
        return True
    return any(group == pgid and state != "Z" for _, state, _, group in processes())


def _freeze(pgid: int, wait: float = 1.0) -> list[int]:
    """Stop every process of the group (none can start another), then list what must get SIGKILL:
    their children that left it (the sandbox's pid 1, in a session of its own, or a child that
    called setsid) and the sandbox's pid 1 while still in the group. Killing bwrap alone is not
    enough: killed while it sets up, its pid 1 has no parent-death signal yet and lives on."""
    try:
        os.killpg(pgid, signal.SIGSTOP)
    except ProcessLookupError:
        return []
    if not os.path.isdir("/proc"):
        return []
    deadline = time.monotonic() + wait
    while True:
        procs = processes()
        members = {pid: state for pid, state, _, group in procs if group == pgid and state != "Z"}
        if all(state in "tT" for state in members.values()) or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    left = [pid for pid, state, ppid, group in procs if ppid in members and group != pgid and state != "Z"]
    return left + [pid for pid in members if _namespace_init(pid)]


def _namespace_init(pid: int) -> bool:
    """Whether the process is pid 1 of a pid namespace below ours (a sandbox's, caught before it
    left bwrap's group): it ignores SIGTERM from outside, and its death ends the namespace."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) > 1 and ids[-1] == "1"
    except OSError:
        pass
    return False


def _gone(pids: list[int], until: float) -> None:
    """Wait (until a monotonic deadline) for processes to exit: a sandbox's pid 1 exits only once
    every process of its namespace did."""
    alive = lambda pid: Path(f"/proc/{pid}/stat").exists() and \
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[:1] != ["Z"]  # noqa: E731
    while time.monotonic() < until:
        try:
            if not any(alive(pid) for pid in pids):
                return
        except OSError:
            continue
        time.sleep(0.01)


def kill_group(pgid: int, grace: float, reap: Callable[[], object] = lambda: None) -> None:
    """End the process group and what it started: its members' children that left the group (the
    sandbox's pid namespace, setsid children) get SIGKILL at once; the group SIGTERM, then SIGKILL
    if it has not emptied within `grace` seconds. `reap` collects the leader once it exits (a
    zombie still counts as a member of the group)."""
    escaped = _freeze(pgid)
    for pid in escaped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)
    except ProcessLookupError:
        _gone(escaped, time.monotonic() + max(grace, 1.0))
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        if not group_alive(pgid):
            break
        time.sleep(0.02)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _gone(escaped, time.monotonic() + max(grace, 1.0))


@dataclass
class Ran:
    """How a command ended: `ended` is "exited", "time" (killed at its timeout) or "stopped"
    (killed because `stop` was set). `out` and `err` are the bytes kept (bounded head and tail,
    the cut marked, or all of them); `stdout` and `stderr` the same as stripped text."""

    code: int
    out: bytes
    err: bytes
    ended: str
    elapsed: float

    @property
    def stdout(self) -> str:
        return self.out.decode(errors="replace").strip()

    @property
    def stderr(self) -> str:
        return self.err.decode(errors="replace").strip()


def start(argv: list[str], *, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
          stdin: int | None = subprocess.DEVNULL, stdout: int | None = subprocess.PIPE,
          stderr: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """Start argv in a session (and so a process group) of its own: a terminal's ^C does not reach
    it, and its group can be ended whole. `stdin`, `stdout`, `stderr` as for subprocess.Popen."""
    return subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True, stdin=stdin, stdout=stdout,
                            stderr=stderr)


def end(child: subprocess.Popen[bytes], wait: float) -> None:
    """End a child from start() that was told to stop (its pipes closed, say): wait `wait` seconds
    for it to exit, then SIGKILL it. Its group is left alone: what it forked may be finishing work
    of its own (the guard's children answering a push)."""
    try:
        child.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def run_killable(argv: list[str], cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
                 timeout: float | None = None, *, stdin: bytes | None = None, stop: Stop | None = None,
                 keep: int | None = 20_000, merge: bool = False, grace: float = 5.0, capture: bool = True,
                 leftovers: bool = True) -> Ran:
    """Run argv in a session of its own (in the sandbox, its first process is bwrap: the whole pid
    namespace dies with it) and end it whole: at `timeout` (None: none) or when `stop` is set,
    SIGTERM then SIGKILL after `grace`; when it exits, with `leftovers`, whatever it left running
    in its group (without: it is left to run, as a hook's or git's background job is).
    `stdin`: bytes fed to it (None: /dev/null). `keep`: bytes kept of each output (None: all);
    `merge`: stderr goes to stdout, in order; `capture` False: both go where ours go.
    `env`: its whole environment (None: ours)."""
    begun = time.monotonic()
    pipe = subprocess.PIPE if capture else None
    child = start(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                  stdout=pipe, stderr=(subprocess.STDOUT if merge and capture else pipe))
    ended, captures, exits = "exited", [], _Exit(child)
    try:
        captures = [_Capture(p, keep) for p in (child.stdout, child.stderr) if p is not None]
        for reader in captures:
            reader.start()
        if child.stdin is not None:
            threading.Thread(target=_feed, args=(child.stdin, stdin), daemon=True).start()
        deadline = None if timeout is None else begun + timeout
        while child.poll() is None:
            if stop is not None and stop.is_set():
                ended = "stopped"
                break
            if deadline is not None and time.monotonic() >= deadline:
                ended = "time"
                break
            if stop is None and deadline is None:
                child.wait()
                break
            exits.wait(0.2 if deadline is None else min(0.2, max(0.0, deadline - time.monotonic())))
    finally:
        exits.close()
        if ended != "exited" or leftovers or child.poll() is None:  # the command, or what it left behind
            kill_group(child.pid, grace if ended != "exited" else 0.5, child.poll)
        code = child.wait()
    _read_to_end(captures)
    kept = [c.data() for c in captures] + [b"", b""]
    return Ran(code, kept[0], kept[1], ended, time.monotonic() - begun)


class _Exit:
    """Waits for a child's exit woken by it (a pidfd, Linux 5.3 and later), not by polling:
    Popen.wait(timeout) sleeps in doubling steps of up to 50 ms, and saw a 45 ms `git push` end
    some 20 ms late. Without pidfds: Popen.wait(timeout)."""

    def __init__(self, child: subprocess.Popen[bytes]):
        self.child = child
        try:
            self.fd: int | None = os.pidfd_open(child.pid)
        except (AttributeError, OSError):  # no pidfds here, or the child is gone (poll() reaps it)
            self.fd = None

    def wait(self, seconds: float) -> None:
        """Return when the child exited, or after `seconds`; the caller's poll() reaps it."""
        if self.fd is None:
            try:
                self.child.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                pass
            return
        waiter = select.poll()  # not select(): its fds stop at 1024, and a daemon holds many
        waiter.register(self.fd, select.POLLIN)
        try:
            waiter.poll(seconds * 1000)
        except InterruptedError:
            pass

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _read_to_end(captures: list[_Capture]) -> None:
    """Let the readers take what the command wrote: LINGER seconds at most for all of them, and
    longer (10 LINGER) only while a pipe still holds unread bytes (a starved reader), never for a
    stray that holds it open."""
    until, most = time.monotonic() + LINGER, time.monotonic() + 10 * LINGER
    for capture in captures:
        capture.join(max(0.0, until - time.monotonic()))
        while capture.is_alive() and capture.waiting() and time.monotonic() < most:
            capture.join(0.05)
