"""Where agents' commands run, and with what. A push chooses these commands (`run:`, `test:`,
`check:`, a model's `bash`, a command agent), so by default they run in bubblewrap (Debian package
`bubblewrap`) or not at all:

- new pid, network, ipc and uts namespaces, a new session, killed with their parent: a command
  sees no host process, reaches no network, and all it started dies when its first process does
  (even what called `setsid`);
- a filesystem of its own: the worktree (read-write), a private /tmp with HOME=/tmp/home, /dev,
  /proc, and read-only the system paths (/usr, /etc, ...), the Python running gitswarm, the
  mirror's git dir (so `git log` works) and the paths the operator names in
  GITSWARM_SANDBOX_PATHS (colon-separated). Never the home directory, /run, /var or the hub;
  /etc/ssh and the shadow files are blanked;
- an environment by allow-list (`agent_env`): PATH, HOME, LANG, LC_*, TERM, TZ, ... and the names
  the operator gives in GITSWARM_AGENT_ENV (comma-separated).

GITSWARM_SANDBOX: `on` (the default; `require` is the same) refuses to run an agent command
without bubblewrap; `off` runs them unsandboxed on this host, and says so at start and in `status`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import GitswarmError

ENV_ALLOWED = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR"})
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
BLANKED_DIRS = ("/etc/ssh",)  # host keys
BLANKED_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
HOME_INSIDE = "/tmp/home"
NO_BWRAP_HINT = ("apt-get install bubblewrap, or set GITSWARM_SANDBOX=off to run agent commands unsandboxed "
                 "on this host")


def mode() -> str:
    """`on` or `off`, from GITSWARM_SANDBOX (unset: on; `require`: on)."""
    raw = os.environ.get("GITSWARM_SANDBOX", "").strip().lower()
    if raw in ("", "on", "require"):
        return "on"
    if raw == "off":
        return "off"
    raise GitswarmError(f"GITSWARM_SANDBOX={raw!r} is not a sandbox mode",
                        "set GITSWARM_SANDBOX=on (the default: agent commands run in bubblewrap) or off "
                        "(they run unsandboxed on this host)")


def agent_env() -> dict[str, str]:
    """What agents' commands see of this process's environment: the allow-list, plus the names the
    operator gives in GITSWARM_AGENT_ENV. Nothing else: API keys, database URLs and DSNs stay out
    whatever their names."""
    extra = {name.strip() for name in os.environ.get("GITSWARM_AGENT_ENV", "").split(",") if name.strip()}
    return {k: v for k, v in os.environ.items() if k in ENV_ALLOWED or k.startswith("LC_") or k in extra}


def operator_paths() -> list[Path]:
    """GITSWARM_SANDBOX_PATHS: absolute paths shown read-only inside, colon-separated."""
    paths = [p for p in os.environ.get("GITSWARM_SANDBOX_PATHS", "").split(":") if p.strip()]
    for p in paths:
        if not os.path.isabs(p):
            raise GitswarmError(f"GITSWARM_SANDBOX_PATHS: {p!r} is not an absolute path",
                                "list absolute paths, separated by ':'")
    return [Path(p) for p in paths]


def check() -> str:
    """At start, before any agent runs: the line to log about the sandbox. Raises GitswarmError
    (with a hint) when it is on and bubblewrap is missing or cannot make a sandbox here."""
    if mode() == "off":
        return ("sandbox: OFF (GITSWARM_SANDBOX=off): agent commands (run:, test:, check:, bash, command "
                "agents) run unsandboxed on this host, with its network, processes and files")
    for path in operator_paths():
        if not path.exists():
            raise GitswarmError(f"GITSWARM_SANDBOX_PATHS names {path}, which does not exist",
                                "remove it from GITSWARM_SANDBOX_PATHS or create it")
    with tempfile.TemporaryDirectory(prefix="gitswarm-probe-") as folder:
        try:
            proc = subprocess.run(wrap(["/bin/sh", "-c", "true"], Path(folder)), env=agent_env(),
                                  capture_output=True, timeout=60)
            why = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        except (OSError, subprocess.TimeoutExpired) as e:
            proc, why = None, str(e)
    if proc is None or proc.returncode != 0:
        raise GitswarmError(f"bubblewrap cannot make a sandbox on this host: {why}",
                            "let bwrap create namespaces here (user namespaces, or run as root), or set "
                            "GITSWARM_SANDBOX=off to run agent commands unsandboxed on this host")
    return "sandbox: on (bubblewrap): no network, no host processes, only the worktree writable"


def wrap(argv: list[str], workdir: Path, hide: list[Path] | tuple[Path, ...] = (),
         readable: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    """argv, to run inside the sandbox, with `workdir` its only writable folder; `readable`: paths
    to show read-only (the mirror, a prompt file's folder); `hide`: paths (the hub) never shown,
    even where a readable path holds them. Raises GitswarmError when the sandbox is on and
    bubblewrap is missing; with GITSWARM_SANDBOX=off, argv as it is."""
    if mode() == "off":
        return argv
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise GitswarmError("agent commands run only in a sandbox, and bubblewrap (bwrap) is not installed "
                            "on this host", NO_BWRAP_HINT)
    workdir = Path(workdir).resolve()
    args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--new-session",
            "--die-with-parent"]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", HOME_INSIDE]
    shown = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *readable, *operator_paths())}
    mounts = [(p, ["--ro-bind-try", str(p), str(p)]) for p in shown if p != workdir]
    mounts.append((workdir, ["--bind", str(workdir), str(workdir)]))
    for path in hide:  # covered with an empty folder wherever something shown holds it
        path = Path(path).resolve()
        if path.is_dir() and path not in (workdir, *workdir.parents) and any(
                s == path or s in path.parents for s in shown | {Path(p) for p in SYSTEM_PATHS}):
            mounts.append((path, ["--tmpfs", str(path)]))
    for _, mount in sorted(mounts, key=lambda m: len(m[0].parts)):  # a folder before what it holds
        args += mount
    args += [arg for d in BLANKED_DIRS if os.path.isdir(d) for arg in ("--tmpfs", d)]  # whatever showed /etc
    args += [arg for f in BLANKED_FILES if os.path.isfile(f) for arg in ("--ro-bind", "/dev/null", f)]
    args += ["--setenv", "HOME", HOME_INSIDE, "--setenv", "TMPDIR", "/tmp", "--chdir", str(workdir), "--"]
    return args + argv
