"""Leases: a claim holds while its holder gives news. Holders renew through heartbeat refs of their
own (refs/gitswarm/heartbeats/<worker>), never through `tasks`; the hub's reflog of that ref is the
clock (the server's, never a commit date). A pass over the board takes back lapsed claims (open
again, or dead once the task has used up its attempts) and retries or buries failed tasks. The hub's
guard checks every lapse again on its own clock, so a pass run anywhere can do no harm. The hub's
daemon also deletes the land refs of ended tasks (prune_land_refs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from . import git, gitrefs, names
from . import task as T
from .board import Board
from .errors import GitswarmError
from .statuses import FINAL
from .task import Task


def silence(hub: Path, claim: T.Claim, now: float | None = None) -> float | None:
    """Seconds since the holder of a claim last gave news, on the hub's clock; None when nothing
    on it says (a claim stamped far ahead with no heartbeat, which counts as silent: task.last_news)."""
    now = time.time() if now is None else now
    last = T.last_news(claim, gitrefs.reflog_time(hub, names.heartbeat_ref(claim.worker)), now)
    return None if last is None else now - last


def reclaim_pass(board: Board, hub: Path, max_attempts: int,
                 log: Callable[[str], None] = lambda _: None, now: float | None = None) -> list[Task]:
    """One pass: lapsed claims back to the board, failed tasks retried or buried. What changed.
    An error on one task is logged and that task skipped: the others still come back. `now`: the
    pass's clock (default the time now); the hub's guard checks each lapse again on its own."""
    board.refresh()
    changed: list[Task] = []
    for t in board.tasks("claimed", "failed"):
        try:
            new = _reclaim_one(board, hub, t, max_attempts, now)
        except GitswarmError as e:  # the hub disagrees (a heartbeat just came in): next pass
            log(f"reclaim {t.id}: {e.message}")
            continue
        except Exception as e:  # a record no pass can read must not hold back the others
            log(f"reclaim {t.id}: {type(e).__name__}: {e}")
            continue
        if new is not None:
            log(f"reclaim: {t.id} {t.status} -> {new.status}: {(new.result or {}).get('reason', '')}")
            changed.append(new)
    return changed


def _reclaim_one(board: Board, hub: Path, t: Task, max_attempts: int, now: float | None) -> Task | None:
    if t.status == "claimed" and t.claim is not None:
        quiet = silence(hub, t.claim, now)
        if quiet is not None and quiet <= t.claim.lease:
            return None
        dead = t.attempts >= max_attempts
        said = (f"no news from {t.claim.worker} for {quiet:.0f}s" if quiet is not None else
                f"{t.claim.worker}'s claim is dated {t.claim.at}, ahead of the hub's clock, and no heartbeat came")
        reason = (f"lease lapsed: {said} (lease {t.claim.lease}s, token {t.claim.token})"
                  + (f"; dead after {t.attempts} attempts" if dead else ""))
        return board.reclaim(t.id, reason, dead=dead)
    if t.status == "failed":
        if t.attempts >= max_attempts:
            return board.bury(t.id, f"failed {t.attempts} times (max_attempts {max_attempts})")
        return board.reopen(t.id)
    return None


def prune_land_refs(hub: Path, board: Board, log: Callable[[str], None]) -> int:
    """Delete, in the hub itself (the hub's own daemon: pushes never delete), the land refs of tasks
    that ended: done, dead or cancelled. A task still open, failed or claimed keeps its refs (its
    next attempt starts from the last). How many were deleted."""
    listed = git.run(["for-each-ref", "--format=%(objectname) %(refname)", names.LAND], cwd=hub).stdout
    gone = 0
    for line in listed.decode().splitlines():
        sha, ref = line.split(" ", 1)
        parsed = names.parse_land_ref(ref)
        t = board.find(parsed[0]) if parsed else None
        if parsed is None or (t is not None and t.status in FINAL):
            if git.run(["update-ref", "-d", ref, sha], cwd=hub, check=False).returncode == 0:
                gone += 1
    if gone:
        log(f"deleted {gone} land ref(s) of ended tasks")
    return gone
