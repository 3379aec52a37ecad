"""The names gitswarm gives things on a hub, and the rules a name follows. Pure: no git, no I/O.

The refs a hub holds, all of them (the guard refuses any other, `allowed`):
- `refs/heads/main` (the project) and `refs/heads/tasks` (the board);
- `refs/gitswarm/heartbeats/<worker>`: a worker's heartbeats, a chain of empty commits whose reflog
  on the hub tells when the worker last gave news (gitswarm/leases.py);
- `refs/gitswarm/train`: the landing train's lease chain (gitswarm/queue.py);
- `refs/gitswarm/land/<task>/<attempt>`: work handed to the landing queue (gitswarm/queue.py);
- `refs/gitswarm/runs/<task>/<attempt>`: an attempt's runs record (gitswarm/runlog.py);
- `refs/gitswarm/attempts/<task>/<k>`: best of N's attempts (gitswarm/attempts.py).
The land, runs and attempts refs are created once, never moved or deleted by a push (`created_once`).
A push to `refs/for/<ref>` (APPLY; <ref> without its `refs/`: heads/tasks, heads/main, a heartbeat)
is applied by the hub's proc-receive hook (gitswarm/applier.py) to <ref>, `tasks` rebased onto its
tip when the push's files did not change meanwhile (`refs/for/replay/heads/main`: main's work too,
replayed onto main's tip): no ref of these names is ever created.
The hub writes `refs/gitswarm/archive/runs` and `refs/gitswarm/archive/attempts` itself, folding
the runs and attempts refs of ended tasks into them (gitswarm/runarchive.py): no push may. A mirror
(gitswarm/gitmirror.py) keeps refs of its own under `refs/gitswarm/hub/` and `refs/gitswarm/<pid>-...`.
"""

from __future__ import annotations

import re

from .errors import RuleViolation

# ---------------------------------------------------------------- name rules

ID = r"t-[0-9a-z][0-9a-z-]{0,46}[0-9a-z]"  # a task id (ID_RE; unanchored, to find ids in text)
ID_RE = re.compile(ID + r"\Z")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")  # a worker's name (and a task's goal field)
NAME_HINT = "a letter or digit, then letters, digits, '.', '_', '@' or '-', at most 64 in all"
GOAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # a goal's name: goals/<name>.md
SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")  # a full object id: SHA-1, or SHA-256 (64)
ATTEMPT_RE = re.compile(r"[1-9][0-9]{0,6}\Z")  # an attempt's number in a ref's name
MAX_ATTEMPTS = 16  # best of N: attempts of one task (gitswarm/attempts.py)

# ---------------------------------------------------------------- refs

REFS = "refs/"
HEADS = REFS + "heads/"
MAIN_BRANCH = "main"
BOARD_BRANCH = "tasks"
MAIN = HEADS + MAIN_BRANCH
BOARD = HEADS + BOARD_BRANCH
GITSWARM = REFS + "gitswarm/"  # gitswarm's own refs: never a branch, no event of their own (hookimpl)
HEARTBEATS = GITSWARM + "heartbeats/"
TRAIN = GITSWARM + "train"
LAND = GITSWARM + "land/"
RUNS = GITSWARM + "runs/"
ATTEMPTS = GITSWARM + "attempts/"
ARCHIVE = GITSWARM + "archive/runs"  # the runs refs of ended tasks, folded (gitswarm/runarchive.py)
ATTEMPTS_ARCHIVE = GITSWARM + "archive/attempts"  # the attempts refs of ended tasks, folded (same)
APPLY = REFS + "for/"  # what the hub applies (applied_ref): receive.procReceiveRefs, set by `gitswarm init`
REPLAY = APPLY + "replay/"  # main's work the hub may replay onto main's tip (apply_ref)
KEPT = GITSWARM + "hub/"  # in a mirror: the hub's tips as last fetched or pushed, kept from `git gc`


def branch_ref(branch: str) -> str:
    """The ref of a branch: refs/heads/<branch>."""
    return HEADS + branch


def branch_of(ref: str) -> str:
    """The branch a ref names (refs/heads/<branch>); any other ref as it is."""
    return ref.removeprefix(HEADS)


def apply_ref(ref: str, replay: bool = False) -> str:
    """Where a push asks the hub to apply an update of `ref` (refs/heads/tasks ->
    refs/for/heads/tasks); `replay`: main only, the work may be replayed onto a newer tip of main
    by the hub (refs/for/replay/heads/main), as the board replays it (gitswarm/landing.py)."""
    return (REPLAY if replay and ref == MAIN else APPLY) + ref.removeprefix(REFS)


def applied_ref(ref: str) -> str | None:
    """The ref a push to `refs/for/...` updates: the board, main or a heartbeat ref; None for any
    other (the hub applies those three only)."""
    if ref.startswith(REPLAY):
        return MAIN if ref == REPLAY + MAIN.removeprefix(REFS) else None
    if not ref.startswith(APPLY):
        return None
    target = REFS + ref[len(APPLY):]
    return target if target in (BOARD, MAIN) or heartbeat_worker(target) is not None else None


def kept_ref(name: str) -> str:
    """Where a mirror keeps the hub's tip of `name` (a branch, or a ref below refs/gitswarm/)."""
    return KEPT + name


def heartbeat_ref(worker: str) -> str:
    return HEARTBEATS + worker


def heartbeat_worker(ref: str) -> str | None:
    """The worker of a heartbeat ref; None when `ref` is not one: a heartbeat is named after a worker,
    and a worker's name follows NAME_RE (a claim's holder does, on the board and in a train lease)."""
    if not ref.startswith(HEARTBEATS):
        return None
    name = ref[len(HEARTBEATS):]
    return name if NAME_RE.match(name) else None


def land_ref(task_id: str, attempt: int) -> str:
    return f"{LAND}{task_id}/{attempt}"


def parse_land_ref(ref: str) -> tuple[str, int] | None:
    """(task id, attempt) of a land ref; None when `ref` is not exactly one."""
    return _numbered(LAND, ref)


def runs_ref(task_id: str, attempt: int) -> str:
    return f"{RUNS}{task_id}/{attempt}"


def parse_runs_ref(ref: str) -> tuple[str, int] | None:
    """(task id, attempt) of a runs ref; None when `ref` is not exactly one."""
    return _numbered(RUNS, ref)


def attempts_ref(task_id: str, k: int) -> str:
    """Where attempt `k` of a task keeps its commit (best of N)."""
    return f"{ATTEMPTS}{task_id}/{k}"


def parse_attempts_ref(ref: str) -> tuple[str, int] | None:
    """(task id, k) of an attempts ref; None when `ref` is not exactly one."""
    parsed = _numbered(ATTEMPTS, ref)
    return parsed if parsed is not None and parsed[1] <= MAX_ATTEMPTS else None


def _numbered(prefix: str, ref: str) -> tuple[str, int] | None:
    """(task id, number) of a ref named exactly `<prefix><task id>/<number>`; None otherwise."""
    if not ref.startswith(prefix):
        return None
    task_id, sep, number = ref[len(prefix):].partition("/")
    if not sep or not ID_RE.match(task_id) or not ATTEMPT_RE.match(number):
        return None
    return task_id, int(number)


def allowed(ref: str) -> bool:
    """Whether a push may update `ref`: the refs of the module's docstring; everything else (tags,
    other branches, other namespaces, the archive) is refused."""
    return (ref in (BOARD, MAIN, TRAIN) or heartbeat_worker(ref) is not None or parse_land_ref(ref) is not None
            or parse_runs_ref(ref) is not None or parse_attempts_ref(ref) is not None)


def created_once(ref: str, old: str, new: str, what: str, hint: str) -> None:
    """The rule of the land, runs and attempts refs: a push creates one (`old` is the null id),
    never moves or deletes it. `what` names the ref in the message; RuleViolation naming `ref`."""
    from .git import ZERO

    if old != ZERO or new == ZERO:
        raise RuleViolation(ref, f"{what} is created once and never moved or deleted by a push", hint)
