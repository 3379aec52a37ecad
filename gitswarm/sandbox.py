"""Where agents' commands run. With bubblewrap installed (Debian package `bubblewrap`): no network,
the whole filesystem read-only but for the agent's working directory and a private /tmp, and the
hub's repository (hooks, config, refs) hidden behind an empty folder. Without it the command runs
as it is (with the stripped environment and process-group kill that every agent command gets);
GITSWARM_SANDBOX=off turns it off, GITSWARM_SANDBOX=require makes its absence an error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import GitswarmError


def wrap(argv: list[str], workdir: Path, hide: list[Path] | tuple[Path, ...] = (),
         readable: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    """argv, run inside the sandbox when there is one; `readable`: paths (a prompt file's folder)
    to show read-only even where /tmp or a hidden path would cover them."""
    mode = os.environ.get("GITSWARM_SANDBOX", "auto")
    bwrap = shutil.which("bwrap") if mode != "off" else None
    if bwrap is None:
        if mode == "require":
            raise GitswarmError("GITSWARM_SANDBOX=require, but bubblewrap (bwrap) is not installed",
                                "apt-get install bubblewrap, or unset GITSWARM_SANDBOX")
        return argv
    workdir = Path(workdir).resolve()
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in hide:
        path = Path(path).resolve()
        if path.exists() and path != workdir and path not in workdir.parents:
            args += ["--tmpfs", str(path)]
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind", str(workdir), str(workdir), "--unshare-net", "--unshare-ipc", "--die-with-parent",
             "--chdir", str(workdir), "--"]
    return args + argv
