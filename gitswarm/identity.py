"""Who pushed, as the transport tells it, and which identity each worker name belongs to.

A hub's hooks learn the pusher from what the server in front of git set, and from nothing the
client can set itself:
- ssh: the account the key logged in to (the process's real uid, never USER or LOGNAME, which a
  client that chooses its remote command can set: `git push --receive-pack='USER=x git-receive-pack'`);
- http: `REMOTE_USER`, set by a web server that authenticated the request (`GATEWAY_INTERFACE` set);
- git daemon (`REMOTE_ADDR` set) and local paths: nobody, the push is anonymous;
- a git server that runs every user's push as one account and names the user it authenticated in a
  variable of its own (gitolite `GL_USER`, Gitea/Forgejo `GITEA_PUSHER_NAME`, GitLab `GL_USERNAME`,
  soft-serve `SOFT_SERVE_USERNAME`): that name where the operator trusts the server (its name in
  `gitswarm.pusherEnv`), else nobody. Such a push is never the hub's own, whatever the account.
`GITSWARM_PUSHER`, set by the operator per ssh key (a forced command in authorized_keys) or per web
location (SetEnv), counts only over the transports the hub's `gitswarm.pusherEnv` names (`ssh`,
`http`, `local`; unset by `gitswarm init`), and over ssh only under a forced command
(`SSH_ORIGINAL_COMMAND` set).

The first push that acts as a worker (claims, completes, fails, releases or beats for it) with a
known identity binds the worker's name to that identity, in `<hub>/gitswarm/pushers/<worker>`,
created atomically by pre-receive. From then on only that identity may act as that worker: a
worker cannot complete a task claimed under another identity, nor can an anonymous push.

Kept free of heavy imports: pre-receive imports it on every push.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from .errors import GitswarmError
from .names import NAME_RE

PUSHERS = Path("gitswarm") / "pushers"
PUSHER_ENV = "gitswarm.pusherEnv"  # the transports over which GITSWARM_PUSHER counts, the servers trusted
# git servers in front of a hub, each with the variable it sets to the user it authenticated for the
# hooks (docs/hosting.md; only gitolite is tested here, in tests/test_gitolite.py)
SERVERS = {"gitolite": "GL_USER", "gitea": "GITEA_PUSHER_NAME", "gitlab": "GL_USERNAME",
           "soft-serve": "SOFT_SERVE_USERNAME"}
TRUSTABLE = ("ssh", "http", "local", *SERVERS)
# every variable `pusher` reads: what hooks/post-receive keeps of a push's environment for its events
# (install.py fills them into the shim, for its C client and its bash alike)
VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_ORIGINAL_COMMAND", "GATEWAY_INTERFACE", "REMOTE_ADDR", "REMOTE_USER",
             "GITSWARM_PUSHER", *SERVERS.values())


def transport(env: Mapping[str, str] | None = None) -> str:
    """How the push came: through a git server of SERVERS (its variable set; over ssh only under a
    forced command, as gitolite's), ssh, http, daemon (git daemon sets REMOTE_ADDR) or local (a path)."""
    env = os.environ if env is None else env
    ssh = bool(env.get("SSH_CONNECTION") or env.get("SSH_CLIENT"))
    if not ssh or env.get("SSH_ORIGINAL_COMMAND"):  # over ssh the client that chose its command set them
        for server, variable in SERVERS.items():
            if env.get(variable, "").strip():
                return server
    if ssh:
        return "ssh"
    if env.get("GATEWAY_INTERFACE"):
        return "http"
    if env.get("REMOTE_ADDR"):
        return "daemon"
    return "local"


def trusted(git_dir: str | os.PathLike[str]) -> set[str]:
    """The transports over which the hub's operator lets GITSWARM_PUSHER name the pusher, and the
    servers (SERVERS) whose variable names it."""
    from .shared import setting

    value = setting(os.fspath(git_dir), PUSHER_ENV) or ""
    words = set(value.replace(",", " ").split())
    unknown = sorted(words - set(TRUSTABLE))
    if unknown:
        raise GitswarmError(f"{Path(git_dir) / 'config'}: {PUSHER_ENV}: {unknown[0]!r} is not a transport; "
                            f"give some of: {', '.join(TRUSTABLE)}",
                            f"git --git-dir {git_dir} config {PUSHER_ENV} \"ssh http\" (docs/serving.md, Identity)")
    return words


def pusher(env: Mapping[str, str] | None = None, git_dir: str | os.PathLike[str] | None = None,
           trust: set[str] | None = None, uid: int | None = None) -> str | None:
    """The identity the transport gives this push; None for an anonymous one. `trust`: the
    transports where GITSWARM_PUSHER counts (None: read the hub's gitswarm.pusherEnv, only when
    the variable is set at all). `uid`: the account that pushed (None: this process's)."""
    env = os.environ if env is None else env
    how = transport(env)
    named = env.get("GITSWARM_PUSHER", "").strip()
    if how in SERVERS or (named and (how != "ssh" or env.get("SSH_ORIGINAL_COMMAND"))):
        if trust is None:
            trust = trusted(git_dir if git_dir is not None else env.get("GIT_DIR", "."))
        if how in SERVERS:
            return env[SERVERS[how]].strip() if how in trust else None
        if how in trust:
            return named
    if how == "http":
        return env.get("REMOTE_USER", "").strip() or None
    if how == "ssh":
        return _account(uid)
    return None


def hub_own(git_dir: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> bool:
    """Whether this push is the hub's own: a local push (no ssh, web server, git daemon or git
    server of SERVERS in front) by the account that owns the hub's folder, as its daemon and judge
    push."""
    return transport(env) == "local" and os.getuid() == os.stat(git_dir).st_uid


def _account(uid: int | None = None) -> str | None:
    import pwd

    try:
        return pwd.getpwuid(os.getuid() if uid is None else uid).pw_name
    except KeyError:
        return None


def _file(git_dir: str | os.PathLike[str], worker: str) -> Path:
    """A worker's binding file: its name, which NAME_RE makes a plain file name (every worker a push
    can act for has such a name: the guard checks it); any other string by its hash."""
    if NAME_RE.match(worker):
        return Path(git_dir) / PUSHERS / worker
    import hashlib

    name = "sha1-" + hashlib.sha1(worker.encode()).hexdigest()
    return Path(git_dir) / PUSHERS / name


def bound(git_dir: str | os.PathLike[str], worker: str) -> str | None:
    """The identity a worker name is bound to; None while unbound."""
    try:
        return _file(git_dir, worker).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def bindings(git_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Every worker name's identity (names that are not plain file names show as sha1-<hash>)."""
    folder = Path(git_dir) / PUSHERS
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text().strip() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def bind(git_dir: str | os.PathLike[str], workers: Iterable[str], who: str | None) -> list[str]:
    """Bind each still unbound worker to `who` (nothing for an anonymous push), then check them
    all. Atomic: of two pushes binding one name at once, the second finds the first's binding.
    A name already bound costs one read: no write on the push path."""
    return _refuse(git_dir, workers, who, create=who is not None)


def _refuse(git_dir: str | os.PathLike[str], workers: Iterable[str], who: str | None, create: bool) -> list[str]:
    for worker in sorted(set(workers)):
        owner = bound(git_dir, worker)
        if owner is None and create:
            owner = _create(git_dir, worker, who)  # type: ignore[arg-type]
        if owner is not None and owner != who:
            return [f"gitswarm: rejected: worker {worker} belongs to {owner}; this push comes from "
                    f"{who or 'an anonymous pusher'}",
                    f"gitswarm: hint: run your workers under a name of your own (--id), or have the hub's "
                    f"admin remove {PUSHERS / _file(git_dir, worker).name} if {worker} has changed hands"]
    return []


def _create(git_dir: str | os.PathLike[str], worker: str, who: str) -> str:
    """Write the binding whole, unless one stands by then; the binding that stands."""
    from .shared import adjust, make_dirs

    path = _file(git_dir, worker)
    make_dirs(path.parent, git_dir)
    tmp = path.parent / f".{path.name}.{os.getpid()}"
    tmp.write_text(who + "\n")
    adjust(tmp, git_dir)  # before it takes its name: on a shared hub, every member reads it
    try:
        os.link(tmp, path)  # creates the file whole, or fails when another push made it first
        return who
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink()
