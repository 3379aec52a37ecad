"""The hub's own settings as its hooks read them, and the modes of the files gitswarm creates in a
hub, honouring `core.sharedRepository` as git does for its own files (git-config(1)): on a hub
shared by a unix group, what one member's push creates, every other member's push can write.

- unset, `umask`, `false`, `0`: the creating process's umask decides;
- `group`, `true`, `1`: files also group-writable, folders group-writable and set-group-id;
- `all`, `world`, `everybody`, `2`: as group, and readable by everyone;
- an octal mode (`0660`, `0640`...): files get exactly that mode, folders that mode plus the
  execute bits of its readable classes.

Kept free of heavy imports: the hooks import it on every push.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import GitswarmError

_NAMED = {"umask": None, "false": None, "no": None, "off": None, "0": None,
          "group": 0o660, "true": 0o660, "yes": 0o660, "on": 0o660, "1": 0o660,
          "all": 0o664, "world": 0o664, "everybody": 0o664, "2": 0o664}


def setting(git_dir: str | os.PathLike[str], key: str) -> str | None:
    """A setting (`section.name`) of the hub's own config file, `<hub>/config`, where `git init
    --shared` and `git -C <hub> config` write it; None when unset. Read as text, not through `git
    config`: a git process would cost every push some 5 ms. Not read: include files, and the
    user's or the system's config."""
    section, _, name = key.lower().rpartition(".")
    try:
        with open(os.path.join(git_dir, "config"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    current, value = None, None
    for raw in lines:
        line = raw.strip()
        if line.startswith("["):
            head, _, rest = line[1:].partition("]")
            current = head.strip().lower() if " " not in head.strip() else None  # no [section "sub"]
            line = rest.strip()
        if current != section or not line or line[0] in "#;":
            continue
        found, eq, text = line.partition("=")
        if found.strip().lower() == name:
            value = _value(text) if eq else "true"
    return value or None


def _value(text: str) -> str:
    """A config value: quotes removed, a comment after it dropped."""
    out, quoted = [], False
    for ch in text.strip():
        if ch == '"':
            quoted = not quoted
        elif ch in "#;" and not quoted:
            break
        else:
            out.append(ch)
    return "".join(out).strip()


def _shared(git_dir: str) -> tuple[int, bool] | None:
    """(bits, exact) from core.sharedRepository: bits added to (or, exact, replacing) the file mode."""
    value = setting(git_dir, "core.sharedRepository")
    if value is None or value.lower() in _NAMED and _NAMED[value.lower()] is None:
        return None
    if value.lower() in _NAMED:
        return _NAMED[value.lower()], False  # type: ignore[return-value]
    try:
        mode = int(value, 8)
    except ValueError:
        raise GitswarmError(f"{Path(git_dir) / 'config'}: core.sharedRepository {value!r} is not one of "
                            "umask, group, all or an octal mode",
                            f"git --git-dir {git_dir} config core.sharedRepository group") from None
    return (mode & 0o666) | 0o600, True


def file_mode(git_dir: str | os.PathLike[str], current: int) -> int | None:
    """The mode a file gitswarm creates in the hub should have; None: leave it to the umask."""
    shared = _shared(os.fspath(git_dir))
    if shared is None:
        return None
    bits, exact = shared
    return bits if exact else (current & 0o777) | bits


def dir_mode(git_dir: str | os.PathLike[str], current: int) -> int | None:
    """The mode a folder gitswarm creates in the hub should have; None: leave it to the umask."""
    files = file_mode(git_dir, current & 0o666)
    if files is None:
        return None
    return files | (files & 0o444) >> 2 | stat.S_ISGID


def adjust(path: str | os.PathLike[str], git_dir: str | os.PathLike[str]) -> None:
    """Give a file or folder gitswarm created in the hub the mode core.sharedRepository asks for
    (git's adjust_shared_perm). Only its owner may: call it on what this process created."""
    current = os.stat(path).st_mode
    mode = (dir_mode if stat.S_ISDIR(current) else file_mode)(git_dir, current)
    if mode is not None and mode != stat.S_IMODE(current):
        os.chmod(path, mode)


def make_dirs(path: str | os.PathLike[str], git_dir: str | os.PathLike[str]) -> None:
    """`mkdir -p` inside the hub, each folder it creates with the shared mode."""
    path = Path(path)
    if path.is_dir():
        return
    make_dirs(path.parent, git_dir)
    try:
        path.mkdir()
    except FileExistsError:
        return  # another push made it at the same moment; its maker sets its mode
    adjust(path, git_dir)
