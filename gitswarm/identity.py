"""Who pushed, as the transport tells it, and which identity each worker name belongs to.

A hub's hooks learn the pusher from their environment, set by the server in front of git:
- `GITSWARM_PUSHER`, set by the operator: per ssh key (a forced command or `environment=` in
  authorized_keys) or per web-server location (SetEnv);
- `REMOTE_USER`, set by a web server that authenticated the request (git http-backend passes it on);
- over ssh without either, the account the key logged in to (`SSH_CONNECTION` is set).
`git daemon` and local paths tell nothing: such pushes are anonymous.

The first push that acts as a worker (claims, completes, fails, releases or beats for it) with a
known identity binds the worker's name to that identity, in `<hub>/gitswarm/pushers/<worker>`,
created atomically by pre-receive. From then on only that identity may act as that worker: a
worker cannot complete a task claimed under another identity, nor can an anonymous push.

Kept free of heavy imports: pre-receive imports it on every push.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

PUSHERS = Path("gitswarm") / "pushers"
_PLAIN = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,99}")


def pusher(env: dict[str, str] | None = None) -> str | None:
    """The identity the transport gives this push; None for an anonymous one."""
    env = os.environ if env is None else env
    for name in ("GITSWARM_PUSHER", "REMOTE_USER"):
        if env.get(name, "").strip():
            return env[name].strip()
    if env.get("SSH_CONNECTION"):
        return env.get("USER") or env.get("LOGNAME") or _account()
    return None


def transport(env: dict[str, str] | None = None) -> str:
    """How the push came: ssh, http, or local (a path, or git daemon: they look the same)."""
    env = os.environ if env is None else env
    if env.get("SSH_CONNECTION"):
        return "ssh"
    if env.get("GATEWAY_INTERFACE") or env.get("REMOTE_ADDR"):
        return "http"
    return "local"


def _account() -> str | None:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def _file(git_dir: str | os.PathLike[str], worker: str) -> Path:
    if _PLAIN.fullmatch(worker):
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


def check(git_dir: str | os.PathLike[str], workers: Iterable[str], who: str | None) -> list[str]:
    """Lines refusing the push when it acts for a worker bound to another identity, else []."""
    return _refuse(git_dir, workers, who, create=False)


def bind(git_dir: str | os.PathLike[str], workers: Iterable[str], who: str | None) -> list[str]:
    """Bind each still unbound worker to `who` (nothing for an anonymous push), then check them
    all. Atomic: of two pushes binding one name at once, the second finds the first's binding.
    A name already bound costs one read: no write on the push path."""
    return _refuse(git_dir, workers, who, create=who is not None)


def _refuse(git_dir: str | os.PathLike[str], workers: Iterable[str], who: str | None, create: bool) -> list[str]:
    for worker in sorted(set(workers)):
        owner = bound(git_dir, worker)
        if owner is None and create:
            owner = _create(_file(git_dir, worker), who)  # type: ignore[arg-type]
        if owner is not None and owner != who:
            return [f"gitswarm: rejected: worker {worker} belongs to {owner}; this push comes from "
                    f"{who or 'an anonymous pusher'}",
                    f"gitswarm: hint: run your workers under a name of your own (--id), or have the hub's "
                    f"admin remove {PUSHERS / _file(git_dir, worker).name} if {worker} has changed hands"]
    return []


def _create(path: Path, who: str) -> str:
    """Write the binding whole, unless one stands by then; the binding that stands."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}"
    tmp.write_text(who + "\n")
    try:
        os.link(tmp, path)  # creates the file whole, or fails when another push made it first
        return who
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink()
