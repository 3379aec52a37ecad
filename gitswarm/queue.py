"""The landing queue on the hub, and how its lease commits read. Pure: no git, no I/O. Its refs'
names are in gitswarm/names.py.

A worker hands its work to the queue in one atomic push: its task goes `claimed -> landing` on
`tasks` (result.commit names the work) and the ref `refs/gitswarm/land/<task-id>/<attempt>` is
created at that commit, which brings the work's objects to the hub and keeps them there. The queue
is the board's `landing` tasks, oldest hand-off first: a hub restart rebuilds it from git alone.
A land ref is only ever created (never moved); the hub's daemon deletes those of ended tasks. A
task the train rejects or sends back keeps its ref, so that its next attempt starts from it.

One train at a time lands the queue (gitswarm/train.py). It holds `refs/gitswarm/train`: a chain of
lease commits (an empty tree, parent the previous lease, trailers naming the holder and the lease in
seconds), renewed by pushing the next one. Another process takes the train over only when the
hub's reflog shows no renewal for longer than the lease; every landing push renews the lease in the
same atomic push, so a train that lost it cannot land.
"""

from __future__ import annotations

import re

from .names import NAME_RE
from .task import Task, timestamp

TESTED = "Gitswarm-Tested"  # the trailer of a landed batch's last commit on main: what was tested, how
MAX_LEASE = 3600  # seconds: the longest train lease a hub accepts


def lease_message(holder: str, seconds: int, status: str = "") -> str:
    """A lease commit's message; `status` (what the train is doing, for `gitswarm status`) is
    its body: one or two short lines."""
    from .text import printable

    body = printable(status, 600).strip()
    return (f"train held by {holder} for {seconds}s\n\n" + (f"{body}\n\n" if body else "")
            + f"Gitswarm-Train: {holder}\nGitswarm-Lease: {seconds}\n")


def lease_status(message: str) -> str:
    """The body of a lease commit's message: what its train was doing."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    return "\n".join(paragraphs[1:-1]).strip()


SECONDS_RE = re.compile(r"[0-9]{1,5}")


def parse_lease(message: str) -> tuple[str, int] | None:
    """(holder, lease seconds) of a lease commit's message (its trailers: the last paragraph only,
    as rules.parse_trailers reads them); None when it is not one."""
    last = message.strip().split("\n\n")[-1]
    fields = dict(line.split(": ", 1) for line in last.splitlines() if line.startswith("Gitswarm-") and ": " in line)
    holder, seconds = fields.get("Gitswarm-Train", ""), fields.get("Gitswarm-Lease", "")
    if not NAME_RE.match(holder) or not SECONDS_RE.fullmatch(seconds):
        return None
    if not 1 <= int(seconds) <= MAX_LEASE:
        return None
    return holder, int(seconds)


def handed_at(task: Task) -> float:
    """When a queued task was handed off (its result.at), in seconds since the epoch; 0 when unknown."""
    try:
        return timestamp((task.result or {}).get("at", ""))
    except (ValueError, TypeError):
        return 0.0


def tested(message: str) -> str | None:
    """The Gitswarm-Tested trailer of a commit message on main (a landed batch's last commit), or None."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    for line in paragraphs[-1].splitlines() if paragraphs else []:
        if line.startswith(TESTED + ": "):
            return line[len(TESTED) + 2:].strip()
    return None
