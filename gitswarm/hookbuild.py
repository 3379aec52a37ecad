"""The hooks' C client: hooks/hookclient.c compiled by `gitswarm init` into
`<hub>/gitswarm/hookclient`, which the shims exec when it is there (and owned by the pusher): a
push the resident guard checks then pays no Python start (~7 ms, more under load), and
post-receive writes its spool record with no bash start (~2 ms).

Built with `$CC` (or `cc`) when a compiler is there. Without one, or when it fails, init says so
in a line of its output and the shim goes on running Python: slower, the same checks. The
binary carries the hash of what built it (source, compiler command), so that init rebuilds it
when either changed and leaves it alone otherwise: a second init changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import tempfile
from pathlib import Path

from . import proc
from .identity import VARIABLES

CLIENT = os.path.join("gitswarm", "hookclient")  # inside the hub; the shim names it too
FLAGS = ["-O2", "-std=c99", "-Wall"]
COMPILE_SECONDS = 120.0
_BUILT: dict[str, bytes] = {}  # stamp -> binary: a process making many hubs (the tests) compiles once


def build(hub: Path, source: Path) -> list[str]:
    """Bring `<hub>/gitswarm/hookclient` up to date with `source`; returns what was done, or a
    note that the shim keeps using Python. Never raises for a missing or failing compiler."""
    target = hub / CLIENT
    compiler = shlex.split(os.environ.get("CC") or "cc")
    flags = FLAGS + [f'-DGITSWARM_PUSHER_VARIABLES="{" ".join(VARIABLES)}"']  # for post-receive as an interpreter
    stamp = hashlib.sha256(repr(compiler + flags).encode() + b"\0" + source.read_bytes()).hexdigest()
    if _current(target, stamp):
        return []
    binary, why = (_BUILT[stamp], None) if stamp in _BUILT else _compile(compiler, flags, source, stamp)
    if binary is None:
        target.unlink(missing_ok=True)  # an old build must not outlive the source it was built from
        return [f"note: the pre-receive hook runs Python for every push, post-receive bash ({why}); "
                f"install a C compiler (or set CC) and run gitswarm init again to build {CLIENT}"]
    _BUILT[stamp] = binary
    # A new file of our own, written and moved into place: a shared hub's gitswarm/ is writable by
    # every member, and a name chosen in advance could be a link they put there.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".hookclient.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(binary)
            os.fchmod(f.fileno(), 0o755)  # never group-writable: every push of the hub's owner runs it
        os.rename(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    why = _runs(target, stamp)
    if why is not None:  # the shim would exec it and fail every push (sh exits when exec fails)
        target.unlink(missing_ok=True)
        return [f"note: the pre-receive hook runs Python for every push, post-receive bash: the hook client built "
                f"but {why}"]
    return [f"built the hook client {CLIENT} (pushes skip a Python start, post-receive a bash start)"]


def _runs(target: Path, stamp: str) -> str | None:
    """None when the client runs where it is (it prints its usage and stamp), else why not."""
    try:
        ran = proc.run_killable([str(target)], timeout=COMPILE_SECONDS, merge=True)
    except OSError as e:
        return f"does not run from the hub ({e.strerror}: a noexec mount?)"
    return None if ran.code == 2 and stamp in ran.stdout else f"does not run from the hub (exit {ran.code})"


def _compile(compiler: list[str], flags: list[str], source: Path, stamp: str) -> tuple[bytes | None, str | None]:
    """The binary, compiled in a private folder, or None and why not."""
    with tempfile.TemporaryDirectory(prefix="gitswarm-cc-") as private:
        out = Path(private) / "hookclient"
        try:
            # the stamp rides in the binary as a string (hookclient.c prints it in its usage line)
            ran = proc.run_killable([*compiler, *flags, f'-DGITSWARM_BUILD="{stamp}"', "-o", str(out), str(source)],
                                    timeout=COMPILE_SECONDS, merge=True)
        except OSError as e:  # no compiler at all
            return None, f"no C compiler: {shlex.join(compiler)}: {e.strerror}"
        if ran.code != 0 or not _stamped(out, stamp):
            return None, f"{shlex.join(compiler)} failed: " + (ran.stdout.splitlines()[0] if ran.stdout
                                                               else f"exit {ran.code}")
        return out.read_bytes(), None


def _current(target: Path, stamp: str) -> bool:
    """Whether the hub's client is this build, as init leaves it: ours, a file, 0755."""
    try:
        st = os.lstat(target)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o755 \
        and _stamped(target, stamp)


def _stamped(path: Path, stamp: str) -> bool:
    try:
        return stamp.encode() in path.read_bytes()
    except OSError:
        return False
