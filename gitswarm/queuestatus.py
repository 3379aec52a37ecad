"""What `gitswarm status` says of the landing queue: how many tasks wait in it (status `landing`)
and how long the oldest has, who holds the train and what it is doing (the lease commit at
refs/gitswarm/train: its holder, its lease, its committer time, its body), and the last batch the
train landed (main's last commit with a Gitswarm-Tested trailer).

A board without a train costs one `git ls-remote` more than the board itself; main and the lease
are fetched only when the hub has a train ref (a hub that never had a train has no tested batch).
"""

from __future__ import annotations

import time
from typing import Any

from . import names, queue
from .task import Task
from .text import printable

WALK = 1000  # main's first-parent commits looked through for the last landed batch
RENEW_SLACK = 10.0  # seconds past a third of its lease (when a live train renews it) before a lease is overdue


def read(board, now: float | None = None) -> dict[str, Any]:
    """The queue's state, for `status --json`: {"landing": n, "oldest_age": seconds or None,
    "train": {...} or None, "last_batch": {...} or None}. `board`: a refreshed Board."""
    now = time.time() if now is None else now
    queued: list[Task] = board.tasks("landing")
    handed = [queue.handed_at(t) for t in queued]
    found: dict[str, Any] = {"landing": len(queued), "oldest_age": round(now - min(handed), 1) if handed else None,
                             "train": None, "last_batch": None}
    mirror = board.mirror
    refs = mirror.remote_refs(names.TRAIN, names.MAIN)
    if names.TRAIN not in refs:
        return found
    mirror.fetch_refs([r for r in (names.TRAIN, names.MAIN) if r in refs])
    lease = mirror.repo[refs[names.TRAIN]]
    held = queue.parse_lease(lease.message)
    ago = round(now - lease.commit_time, 1)
    lapsed = held is None or ago > held[1]
    found["train"] = {"holder": held[0] if held else None, "lease": held[1] if held else None,
                      "commit": str(lease.id), "renewed_ago": ago, "lapsed": lapsed,
                      # a live holder renews at a third of its lease (trainlease.py): one that has not
                      # since is likely gone (its serve stopped), though its lease still holds
                      "overdue": not lapsed and ago > held[1] / 3 + RENEW_SLACK,  # type: ignore[index]
                      "free_in": None if lapsed else round(held[1] - ago, 1),  # type: ignore[index]
                      "doing": printable(queue.lease_status(lease.message), 600)}  # pushed text: no escapes
    if names.MAIN in refs:
        found["last_batch"] = last_batch(mirror.repo, refs[names.MAIN], now)
    return found


def last_batch(repo, main: str, now: float) -> dict[str, Any] | None:
    """Main's last commit (first parents, WALK at most) with a Gitswarm-Tested trailer: the train's
    last landed batch. None when there is none."""
    commit = repo[main]
    for _ in range(WALK):
        said = queue.tested(commit.message)
        if said is not None:
            return {"commit": str(commit.id), "tested": printable(said, 300), "age": round(now - commit.commit_time, 1)}
        if not commit.parents:
            return None
        commit = commit.parents[0]
    return None


def ago(seconds: float) -> str:
    """A span for people: 42s, 7m, 3h, 2d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def format_queue(found: dict[str, Any]) -> list[str]:
    """The lines `gitswarm status` prints for the queue; none for a board that never had a train
    and has nothing queued."""
    train, batch = found["train"], found["last_batch"]
    if not found["landing"] and train is None:
        return []
    waiting = (f"{found['landing']} task(s), the oldest handed off {ago(found['oldest_age'])} ago"
               if found["landing"] else "empty")
    lines = [f"landing queue: {waiting}"]
    if train is None:
        lines.append(f"train: none (no {names.TRAIN} on the hub): `gitswarm serve` runs one")
    else:
        held = (f"held by {train['holder']} (lease {train['lease']}s)" if train["holder"]
                else f"lease commit {train['commit'][:10]} does not parse")
        lapsed = ": lapsed, another train may take it over" if train["lapsed"] else ""
        if train.get("overdue"):
            lines.append(f"train: {held}, not renewed for {ago(train['renewed_ago'])} (a running train renews it "
                         f"every {ago(train['lease'] / 3)}: its serve stopped?); another train may take it over "
                         f"in {ago(train['free_in'])}")
        else:
            lines.append(f"train: {held}, renewed {ago(train['renewed_ago'])} ago{lapsed}")
        lines += [f"  {line}" for line in train["doing"].splitlines() if line.strip()]
    if batch is not None:
        lines.append(f"last landed batch: {batch['commit'][:10]}, {ago(batch['age'])} ago: {batch['tested']}")
    return lines
