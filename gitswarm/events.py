"""The event spool: a folder inside the bare repo where the post-receive hook (hooks/post-receive:
the C client hooks/hookclient.c, or bash) leaves one push record per push (`<µs>-<pid>.push`: the transport's variables, then git's
`<old> <new> <ref>` lines), which pending() turns into one JSON event per updated ref, with who
pushed it. Both written atomically (write, then rename); the daemon lists and acknowledges events.

Kept free of heavy imports: the post-receive hook imports this module on every push.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import NamedTuple

from .names import GITSWARM, SHA_RE

SPOOL = Path("gitswarm") / "spool"
BAD = "bad"  # <spool>/bad/: events that could not be read or handled, each with a <name>.why
MAX_EVENT_BYTES = 64 * 1024
PUSH = ".push"  # a push record, as hooks/post-receive writes it
PUSH_MAGIC = b"gitswarm-push-1"
MAX_PUSH_BYTES = 16 * 1024 * 1024


class Event(NamedTuple):  # not a dataclass: the hook would pay ~6 ms to import dataclasses
    ref: str
    old: str
    new: str
    time: float
    name: str  # file name in the spool: orders events by arrival
    pusher: str | None = None  # who pushed, where the transport tells (gitswarm/identity.py)

    def to_dict(self) -> dict:
        return self._asdict()


def spool_dir(git_dir: str | os.PathLike[str]) -> Path:
    return Path(git_dir) / SPOOL


def write(git_dir: str | os.PathLike[str], updates: list[tuple[str, str, str]],
          pusher: str | None = None, at: tuple[int, int] | None = None) -> list[Path]:
    """Spool one event per (old, new, ref). Returns the files written. On a hub shared by a
    group (core.sharedRepository), with the shared mode: the daemon, another account, reads them.
    `at`: (nanoseconds since the epoch, pid) of the push (default: now, this process)."""
    from .shared import adjust, make_dirs

    folder = spool_dir(git_dir)
    make_dirs(folder, git_dir)
    stamp, pid = at or (time.time_ns(), os.getpid())
    now = stamp / 1e9
    written = []
    for i, (old, new, ref) in enumerate(updates):
        name = f"{stamp:020d}-{pid}-{i:04d}.json"
        tmp = folder / f".{name}.tmp"
        with open(tmp, "w") as f:
            json.dump({"ref": ref, "old": old, "new": new, "time": now, "pusher": pusher}, f)
        adjust(tmp, git_dir)
        os.rename(tmp, folder / name)
        written.append(folder / name)
    return written


def pending(git_dir: str | os.PathLike[str], quarantined: list[tuple[str, str]] | None = None) -> list[Event]:
    """Events waiting in the spool, oldest first. A file that is not a well-formed event is moved
    to <spool>/bad/ (quarantine), so that it can hold back nothing; (its name, why) go into
    `quarantined` when given, for the caller to log."""
    folder = spool_dir(git_dir)
    if not folder.is_dir():
        return []
    _each(git_dir, PUSH, lambda name: unpack(git_dir, name), quarantined)
    events: list[Event] = []
    _each(git_dir, ".json", lambda name: events.append(_read(folder / name, name)), quarantined)
    return events


def _each(git_dir: str | os.PathLike[str], suffix: str, handle, quarantined: list[tuple[str, str]] | None) -> None:
    """handle(name) for each file of the spool whose name ends with `suffix`, in order; one it
    cannot read goes to quarantine."""
    folder = spool_dir(git_dir)
    for name in sorted(n for n in os.listdir(folder) if n.endswith(suffix) and not n.startswith(".")):
        try:
            handle(name)
        except FileNotFoundError:  # acknowledged (or unpacked) meanwhile by another reader
            continue
        except (OSError, ValueError) as e:
            quarantine(git_dir, name, str(e))
            if quarantined is not None:
                quarantined.append((name, str(e)))


def unpack(git_dir: str | os.PathLike[str], name: str) -> list[Path]:
    """Turn the push record `name` into its events (one per updated ref outside refs/gitswarm/,
    with who pushed: gitswarm/identity.py, from the transport's variables it holds and from the
    account that wrote it), then remove it. ValueError saying what is wrong with it."""
    from .identity import pusher

    path = spool_dir(git_dir) / name
    stamp, dash, pid = name[:-len(PUSH)].partition("-")
    if not (stamp.isdigit() and dash and pid.isdigit()):
        raise ValueError("its name is not <microseconds>-<pid>.push")
    with open(path, "rb") as f:
        owner = os.fstat(f.fileno()).st_uid
        data = f.read(MAX_PUSH_BYTES + 1)
    if len(data) > MAX_PUSH_BYTES:
        raise ValueError(f"larger than {MAX_PUSH_BYTES} bytes")
    magic, _, rest = data.partition(b"\0")
    head, end, lines = rest.partition(b"\0\0") if not rest.startswith(b"\0") else (b"", b"\0", rest[1:])
    if magic != PUSH_MAGIC or not end:
        raise ValueError(f"not a push record (it starts with {PUSH_MAGIC.decode()}, then NUL-ended variables)")
    env = dict(v.decode("utf-8", "replace").split("=", 1) for v in head.split(b"\0") if b"=" in v)
    updates = []
    for line in lines.decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3 or not all(SHA_RE.match(oid) for oid in parts[:2]):
            raise ValueError(f"not an `<old> <new> <ref>` line: {line[:200]!r}")
        if not parts[2].startswith(GITSWARM):
            updates.append((parts[0], parts[1], parts[2]))
    written = write(git_dir, updates, pusher(env, git_dir=git_dir, uid=owner), at=(int(stamp) * 1000, int(pid)))
    os.unlink(path)
    return written


def _read(path: Path, name: str) -> Event:
    """One spooled event; ValueError saying what is wrong with it."""
    with open(path, "rb") as f:
        data = f.read(MAX_EVENT_BYTES + 1)
    if len(data) > MAX_EVENT_BYTES:
        raise ValueError(f"larger than {MAX_EVENT_BYTES} bytes")
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ValueError(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if not isinstance(doc.get("ref"), str):
        raise ValueError("ref is not a string")
    for key in ("old", "new"):
        if not isinstance(doc.get(key), str) or not SHA_RE.match(doc[key]):
            raise ValueError(f"{key} is not an object id (40 or 64 hex digits)")
    if isinstance(doc.get("time"), bool) or not isinstance(doc.get("time"), (int, float)):
        raise ValueError("time is not a number")
    if not isinstance(doc.get("pusher"), (str, type(None))):
        raise ValueError("pusher is not a string")
    return Event(doc["ref"], doc["old"], doc["new"], float(doc["time"]), name, doc.get("pusher"))


def quarantine(git_dir: str | os.PathLike[str], name: str, reason: str) -> Path:
    """Move an event out of the way, to <spool>/bad/<name>, with why beside it (<name>.why)."""
    bad = spool_dir(git_dir) / BAD
    bad.mkdir(exist_ok=True)
    (bad / f"{name}.why").write_text(reason + "\n")
    try:
        os.replace(spool_dir(git_dir) / name, bad / name)
    except FileNotFoundError:
        pass
    return bad / name


def ack(git_dir: str | os.PathLike[str], event: Event) -> None:
    """Remove a handled event from the spool."""
    try:
        os.unlink(spool_dir(git_dir) / event.name)
    except FileNotFoundError:
        pass
