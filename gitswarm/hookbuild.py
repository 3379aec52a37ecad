"""The pre-receive hook's C client: hooks/hookclient.c compiled by `gitswarm init` into
`<hub>/gitswarm/hookclient`, which the shim execs instead of Python when it is there (and owned by
the pusher): a push the resident guard checks then pays no Python start (~7 ms, more under load).

Built with `$CC` (or `cc`) when a compiler is there. Without one, or when it fails, init says so
in a line of its output and the shim goes on running Python: slower, the same checks. The
binary carries the hash of what built it (source, compiler command), so that init rebuilds it
when either changed and leaves it alone otherwise: a second init changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path

from . import proc

CLIENT = os.path.join("gitswarm", "hookclient")  # inside the hub; the shim names it too
FLAGS = ["-O2", "-std=c99", "-Wall"]
COMPILE_SECONDS = 120.0


def build(hub: Path, source: Path) -> list[str]:
    """Bring `<hub>/gitswarm/hookclient` up to date with `source`; returns what was done, or a
    note that the shim keeps using Python. Never raises for a missing or failing compiler."""
    target = hub / CLIENT
    compiler = shlex.split(os.environ.get("CC") or "cc")
    code = source.read_bytes()
    stamp = hashlib.sha256(repr(compiler + FLAGS).encode() + b"\0" + code).hexdigest()
    if os.access(target, os.X_OK) and _stamped(target, stamp):
        return []
    tmp = target.parent / f".{target.name}.tmp"
    why = None
    try:
        # the stamp rides in the binary as a string (hookclient.c prints it in its usage line)
        ran = proc.run_killable([*compiler, *FLAGS, f'-DGITSWARM_BUILD="{stamp}"', "-o", str(tmp), str(source)],
                                timeout=COMPILE_SECONDS, merge=True)
        if ran.code != 0 or not _stamped(tmp, stamp):
            why = f"{shlex.join(compiler)} failed: {ran.stdout.splitlines()[0] if ran.stdout else f'exit {ran.code}'}"
    except OSError as e:  # no compiler at all
        why = f"no C compiler ({shlex.join(compiler)}: {e.strerror})"
    if why is not None:
        tmp.unlink(missing_ok=True)
        target.unlink(missing_ok=True)  # an old build must not outlive the source it was built from
        return [f"note: the pre-receive hook runs Python for every push ({why}); "
                f"install a C compiler (or set CC) and run gitswarm init again to build {CLIENT}"]
    tmp.chmod(0o755)  # and never group-writable: every push of the hub's owner runs it
    os.rename(tmp, target)
    return [f"built the hook client {CLIENT} (pushes skip a Python start)"]


def _stamped(path: Path, stamp: str) -> bool:
    try:
        return stamp.encode() in path.read_bytes()
    except OSError:
        return False
