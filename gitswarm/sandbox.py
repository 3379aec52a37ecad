"""Where agents' commands run, and with what. A push chooses these commands (`run:`, `test:`,
`check:`, a model's `bash`, a command agent), so by default they run in bubblewrap (Debian package
`bubblewrap`) or not at all:

- new pid, network, ipc and uts namespaces, a new session, killed with their parent: a command
  sees no host process, and all it started dies when its first process does (even what called
  `setsid`);
- a network by `wrap(network=...)`: "off" (the default), none at all; "model", only the model,
  through the meter (gitswarm.meter): the sandbox's own loopback, where gitswarm.relay listens on
  the meter's port and passes connections to the meter's unix socket, bound in; "on", the host's
  network, only where the operator allows it with GITSWARM_AGENT_NETWORK=on;
- a filesystem of its own: the worktree and the `writable` paths (read-write), a private /tmp
  with HOME=/tmp/home, /dev,
  /proc, and read-only the system paths (/usr, /etc, ...), the Python running gitswarm and
  gitswarm's own package (its recipes run inside: `python -m gitswarm.recipes.mini`), the
  mirror's git dir (so `git log` works) and the paths the operator names in
  GITSWARM_SANDBOX_PATHS (colon-separated). Never the home directory, /run, /var, the hub or
  the eval suites shipped in the package (their hidden checks: gitswarm/evalsuite.py);
  /etc/ssh and the shadow files are blanked;
- an environment by allow-list (`agent_env`): PATH, HOME, LANG, LC_*, TERM, TZ, ... and the names
  the operator gives in GITSWARM_AGENT_ENV (comma-separated).

GITSWARM_SANDBOX: `on` (the default; `require` is the same) refuses to run an agent command
without bubblewrap; `off` runs them unsandboxed on this host, and says so at start and in `status`
(every network mode is then the host's: the meter's TCP port on loopback is reached directly).

`executable_paths(command, PATH)` names what a command agent's program needs shown read-only to
run wherever it is installed (its venv, or its folder).
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import GitswarmError
from .proc import run_killable

ENV_ALLOWED = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR"})
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
BLANKED_DIRS = ("/etc/ssh",)  # host keys
BLANKED_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
HOME_INSIDE = "/tmp/home"
NETWORKS = ("off", "model", "on")
PROBE_TIMEOUT = 60.0  # seconds bubblewrap may take to make a sandbox at start
RELAY = Path(__file__).with_name("relay.py")
PACKAGE = Path(__file__).resolve().parent  # gitswarm itself, for recipes (python -m gitswarm.recipes.mini)
REAPER = Path(__file__).with_name("reaper.py")
EVAL_SUITES = PACKAGE / "evalsuites"  # the shipped eval suites' hidden checks: inside PACKAGE, never shown
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


def network_allowed() -> bool:
    """Whether the operator lets agents have the host's network (GITSWARM_AGENT_NETWORK=on)."""
    return os.environ.get("GITSWARM_AGENT_NETWORK", "").strip().lower() == "on"


def _check_network(network: str, meter_socket: Path | None, meter_port: int | None) -> None:
    if network not in NETWORKS:
        raise GitswarmError(f"network {network!r} is not a sandbox network mode",
                            "use off (no network), model (only the model, through gitswarm's meter) or on")
    if network == "on" and not network_allowed():
        raise GitswarmError("an agent asks for the network (network: on), and this host does not allow it",
                            "set GITSWARM_AGENT_NETWORK=on in gitswarm's environment to let agents use this "
                            "host's network, or give the role network: model (only its model) or off")
    if network == "model" and (meter_socket is None or not meter_port):
        raise GitswarmError("network: model needs the meter's socket and port",
                            "start a gitswarm.meter.Meter and pass meter_socket and meter_port")


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
        probe = wrap(["/bin/sh", "-c", "true"], Path(folder))
        try:
            ran = run_killable(probe, None, agent_env(), PROBE_TIMEOUT, keep=None)
        except OSError as e:
            ran, why = None, str(e)
        else:
            why = (f"{probe[0]} got no answer in {PROBE_TIMEOUT:g}s" if ran.ended == "time"
                   else ran.stderr or f"exit {ran.code}")
    if ran is None or ran.ended != "exited" or ran.code != 0:
        raise GitswarmError(f"bubblewrap cannot make a sandbox on this host: {why}",
                            "let bwrap create namespaces here (user namespaces, or run as root), or set "
                            "GITSWARM_SANDBOX=off to run agent commands unsandboxed on this host")
    return "sandbox: on (bubblewrap): no network, no host processes, only the worktree writable"


def wrap(argv: list[str], workdir: Path, hide: list[Path] | tuple[Path, ...] = (),
         readable: list[Path] | tuple[Path, ...] = (), writable: list[Path] | tuple[Path, ...] = (),
         network: str = "off", meter_socket: Path | None = None, meter_port: int | None = None,
         binds: list[tuple[Path, Path]] | tuple[tuple[Path, Path], ...] = ()) -> list[str]:
    """argv, to run inside the sandbox, with `workdir` and `writable` its only writable folders;
    `readable`: paths to show read-only (the mirror, a prompt file's folder); `hide`: paths (the
    hub) never shown, even where a readable path holds them; `network`: "off", "model" (only the
    meter, given by `meter_socket` and `meter_port`) or "on" (see the module docstring). Raises
    GitswarmError when the sandbox is on and bubblewrap is missing, or for a network mode this
    host does not allow. `binds`: (folder, where it is shown) pairs, read-write: a copy shown in
    place of what it copies (gitswarm.checkout.shadow_admin). With GITSWARM_SANDBOX=off, argv under
    gitswarm.reaper, which ends what argv leaves running, even outside its process group."""
    _check_network(network, meter_socket, meter_port)
    if mode() == "off":
        return [sys.executable, "-I", str(REAPER), "--", *argv]
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise GitswarmError("agent commands run only in a sandbox, and bubblewrap (bwrap) is not installed "
                            "on this host", NO_BWRAP_HINT)
    workdir = Path(workdir).resolve()
    args = [bwrap, "--unshare-pid", *(["--unshare-net"] if network != "on" else []), "--unshare-ipc",
            "--unshare-uts", "--new-session", "--die-with-parent"]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", HOME_INSIDE]
    shown = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, PACKAGE, *readable,
                                         *operator_paths())}
    rw = {workdir, *(Path(p).resolve() for p in writable)}
    mounts = [(p, ["--ro-bind-try", str(p), str(p)]) for p in shown - rw]
    mounts += [(p, ["--bind", str(p), str(p)]) for p in rw]
    for path in (*hide, EVAL_SUITES):  # covered with an empty folder wherever something shown holds it
        path = Path(path).resolve()
        if path.is_dir() and not any(path == w or path in w.parents for w in rw) and any(
                s == path or s in path.parents for s in shown | {Path(p) for p in SYSTEM_PATHS}):
            mounts.append((path, ["--tmpfs", str(path)]))
    mounts += [(Path(dest), ["--bind", str(Path(src).resolve()), str(dest)]) for src, dest in binds]
    for _, mount in sorted(mounts, key=lambda m: len(m[0].parts)):  # a folder before what it holds
        args += mount
    args += [arg for d in BLANKED_DIRS if os.path.isdir(d) for arg in ("--tmpfs", d)]  # whatever showed /etc
    args += [arg for f in BLANKED_FILES if os.path.isfile(f) for arg in ("--ro-bind", "/dev/null", f)]
    if network == "model":  # last: nothing shown later covers them
        socket_path = str(Path(meter_socket).resolve())  # type: ignore[arg-type]
        args += ["--ro-bind", str(RELAY), str(RELAY), "--ro-bind", socket_path, socket_path]
        argv = [sys.executable, "-I", str(RELAY), "--listen", f"127.0.0.1:{meter_port}", "--socket", socket_path,
                "--", *argv]
    args += ["--setenv", "HOME", HOME_INSIDE, "--setenv", "TMPDIR", "/tmp", "--chdir", str(workdir), "--"]
    return args + argv


def executable_paths(command: str, path_env: str) -> list[Path]:
    """What to show read-only so that the sandbox can run the command's program where it is
    installed. The program is the first word of `command` (after `env`, its options and
    NAME=value words; a command that starts otherwise, `sh -c ...` say, names `sh`), looked up in
    `path_env`. A program in a venv's bin/ (beside a pyvenv.cfg) gives the venv and its base
    Python's prefix; any other, its folder (and where a symlink leads: the same again). Never the
    home folder or a folder above it (a program right in it gives the file alone), nor what the
    sandbox shows anyway (/usr, ...); [] when the program is not found."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    while words and (words[0] == "env" or "=" in words[0] and words[0].split("=")[0].isidentifier()
                     or words[0].startswith("-") and words[0] != "-"):
        words = words[2:] if words[0] in ("-u", "--unset", "-C", "--chdir") else words[1:]
    found = shutil.which(words[0], path=path_env) if words else None
    if found is None:
        return []
    places: list[Path] = []
    for program in dict.fromkeys((Path(os.path.abspath(found)), Path(found).resolve())):
        venv = program.parent.parent
        config = venv / "pyvenv.cfg"
        if program.parent.name == "bin" and config.is_file():
            home = _venv_home(config)
            places += [venv] + ([home.parent] if home is not None else [])
        else:
            places += [program.parent, program]
    home = Path.home().resolve()
    shown = [Path(p) for p in SYSTEM_PATHS]
    kept = [p for p in dict.fromkeys(places)
            if p != home and p not in home.parents and not any(p == s or s in p.parents for s in shown)]
    return [p for p in kept if not any(q in p.parents for q in kept)]  # not what a kept folder holds


def _venv_home(config: Path) -> Path | None:
    """The `home` of a pyvenv.cfg (the base Python's bin folder)."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string("[venv]\n" + config.read_text())
        home = parser.get("venv", "home", fallback="").strip()
    except (OSError, configparser.Error):
        return None
    return Path(home).resolve() if home and os.path.isabs(home) else None
