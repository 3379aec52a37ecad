"""The event spool: a folder inside the bare repo where the post-receive hook leaves one JSON file
per updated ref. Written atomically (write, then rename); the daemon lists and acknowledges them.

Kept free of heavy imports: the post-receive hook imports this module on every push.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import NamedTuple

SPOOL = Path("gitswarm") / "spool"


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
          pusher: str | None = None) -> list[Path]:
    """Spool one event per (old, new, ref). Returns the files written. On a hub shared by a
    group (core.sharedRepository), with the shared mode: the daemon, another account, reads them."""
    from .shared import adjust, make_dirs

    folder = spool_dir(git_dir)
    make_dirs(folder, git_dir)
    now = time.time()
    stamp = time.time_ns()
    written = []
    for i, (old, new, ref) in enumerate(updates):
        name = f"{stamp:020d}-{os.getpid()}-{i:04d}.json"
        tmp = folder / f".{name}.tmp"
        with open(tmp, "w") as f:
            json.dump({"ref": ref, "old": old, "new": new, "time": now, "pusher": pusher}, f)
        adjust(tmp, git_dir)
        os.rename(tmp, folder / name)
        written.append(folder / name)
    return written


def pending(git_dir: str | os.PathLike[str]) -> list[Event]:
    """Events waiting in the spool, oldest first. Unreadable files are skipped, not lost."""
    folder = spool_dir(git_dir)
    if not folder.is_dir():
        return []
    events = []
    for name in sorted(n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")):
        try:
            with open(folder / name) as f:
                doc = json.load(f)
            events.append(Event(doc["ref"], doc["old"], doc["new"], float(doc["time"]), name, doc.get("pusher")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return events


def ack(git_dir: str | os.PathLike[str], event: Event) -> None:
    """Remove a handled event from the spool."""
    try:
        os.unlink(spool_dir(git_dir) / event.name)
    except FileNotFoundError:
        pass
