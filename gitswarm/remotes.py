"""Which hub a command means: the HUB argument as the user gave it (or left out) made a remote git can
fetch from. One resolver for every command that takes HUB:

- none: the repository this runs in; a clone (a work tree) means its remote `origin`, or its only
  remote; a bare repository means itself;
- a remote name of the repository this runs in (`origin`): that remote's URL;
- a path to a clone, or inside one: the clone's remote, as above; any other path: itself;
- a URL (ssh://, https://, git://, file://, user@host:path): itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import git
from .errors import GitswarmError

_REMOTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


@dataclass(frozen=True)
class Repository:
    git_dir: Path
    top: Path | None  # the work tree's top; None for a bare repository


def resolve(given: str | None, cwd: Path | None = None) -> str:
    """The hub's address for `given` (the HUB argument, None when left out), from `cwd`."""
    cwd = Path.cwd() if cwd is None else cwd
    if given is None:
        here = repository(cwd)
        if here is None:
            raise GitswarmError(f"no HUB given, and {cwd} is not in a git repository",
                                "give the hub's path or URL, or run this inside a clone of the hub")
        return _hub_of(here)
    if given == "":
        raise GitswarmError("HUB is empty", "give the hub's path or URL, or a remote name such as origin")
    if "://" in given:
        return given
    path = Path(given).expanduser()
    if not path.is_absolute():
        path = cwd / path
    if path.exists():
        found = repository(path) if path.is_dir() else None
        return _hub_of(found) if found is not None else str(path)
    if _REMOTE_NAME.match(given):
        here = repository(cwd)
        url = remote_url(here, given) if here is not None else None
        if url is not None:
            return url
    return given  # a URL git understands (user@host:path), or a path that is not there: git says


def repository(path: Path) -> Repository | None:
    """The git repository holding `path` (a folder), or None."""
    proc = git.run(["rev-parse", "--is-bare-repository", "--absolute-git-dir"], cwd=path, check=False)
    lines = proc.stdout.decode(errors="replace").splitlines()
    if proc.returncode or len(lines) != 2:
        return None
    if lines[0] == "true":
        return Repository(Path(lines[1]), None)
    proc = git.run(["rev-parse", "--show-toplevel"], cwd=path, check=False)
    top = proc.stdout.decode(errors="replace").strip()
    if proc.returncode or not top:  # inside the .git folder of a clone: not a hub, not a clone
        return None
    return Repository(Path(lines[1]), Path(top))


def remote_url(repo: Repository, name: str) -> str | None:
    """The URL of the remote `name` of a repository (insteadOf applied); a relative path is taken
    from the repository's top, where git would take it from."""
    proc = git.run(["remote", "get-url", name], cwd=repo.top or repo.git_dir, check=False)
    url = proc.stdout.decode(errors="replace").strip()
    if proc.returncode or not url:
        return None
    if "://" not in url and not re.match(r"[^/]*:", url) and not os.path.isabs(url):
        url = str(((repo.top or repo.git_dir) / url).resolve())
    return url


def _hub_of(repo: Repository) -> str:
    """A bare repository is the hub itself; a clone names it by its remote."""
    if repo.top is None:
        return str(repo.git_dir)
    names = git.out(["remote"], cwd=repo.top).split()
    name = "origin" if "origin" in names else names[0] if len(names) == 1 else None
    if name is None and not names:
        raise GitswarmError(f"{repo.top} is a clone with no remote: it is not a hub, and it names none",
                            "give the hub's path or URL, or add it: `git remote add origin HUB`")
    if name is None:
        raise GitswarmError(f"{repo.top} has the remotes {', '.join(names)} and none is origin: which is the hub?",
                            f"name it: `gitswarm status {names[0]}`")
    url = remote_url(repo, name)
    if url is None:
        raise GitswarmError(f"{repo.top}: the remote {name} has no URL", f"`git remote set-url {name} HUB`")
    return url


def hub_of_clone(path: Path) -> str | None:
    """The hub a clone at `path` names (its origin or only remote), or None when it is no clone or
    names none."""
    found = repository(path)
    if found is None or found.top is None:
        return None
    try:
        return _hub_of(found)
    except GitswarmError:
        return None
