"""`python -m gitswarm.reaper -- ARGV...`: runs ARGV and takes its whole process tree down with it.

Without the sandbox (GITSWARM_SANDBOX=off) an agent's command runs in a process group of its own,
and a process that left it (`setsid`, a daemon that double-forked) and whose parent died is
re-parented to init: nothing finds it again. This shim makes itself the "child subreaper" of what
it runs (prctl PR_SET_CHILD_SUBREAPER, Linux), so such orphans become its children: gitswarm's
proc.kill_group sees them as children of the group and kills them, and when ARGV exits the shim ends
every process left below it (SIGTERM, then SIGKILL) before exiting with ARGV's status (128+n when
a signal n killed it). SIGTERM, SIGINT and SIGHUP are passed on to ARGV.
In the sandbox the pid namespace does the same job; there this shim is not used. Standard library
only, no import of gitswarm: it is run by its path (`python -I reaper.py`), and loads
gitswarm/proc.py (standard library only too) by its path.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _load_proc():
    """gitswarm/proc.py, by its path (standard library only): `python -I` puts no folder of ours
    on sys.path."""
    spec = importlib.util.spec_from_file_location("gitswarm_reaper_proc", Path(__file__).with_name("proc.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # its dataclasses look themselves up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


proc = _load_proc()

PR_SET_CHILD_SUBREAPER = 36
GRACE = 0.5  # seconds between SIGTERM and SIGKILL for what ARGV left behind


def _descendants(root: int) -> list[int]:
    """The live processes below `root`, from /proc (its orphans were re-parented to it)."""
    children: dict[int, list[int]] = {}
    for pid, state, ppid, _ in proc.processes():
        if state != "Z":
            children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _end_all(me: int) -> None:
    """SIGTERM every process below this one, SIGKILL what is left after GRACE, reap them."""
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, GRACE)):
        pids = _descendants(me)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _descendants(me):
            _reap()
            time.sleep(0.01)
    _reap()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m gitswarm.reaper -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    except (OSError, AttributeError) as e:
        print(f"gitswarm.reaper: cannot become a subreaper here ({e}): orphans of the command may outlive it",
              file=sys.stderr)
    try:  # not proc.start: ARGV stays in the caller's group (it kills the group) and on our stdio
        child = subprocess.Popen(argv)
    except OSError as e:
        print(f"gitswarm.reaper: {argv[0]}: {e.strerror}", file=sys.stderr)
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: child.poll() is None and child.send_signal(n))
    code = child.wait()
    _end_all(os.getpid())
    return proc.exit_status(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
