"""The rules of the board: which changes a commit on `tasks` may make. One implementation, used by
the client before it pushes and by the server's pre-receive hook on every push.

A board change is one commit. Its trailers say what it does (`Gitswarm-Action`), to which tasks
(`Gitswarm-Task`, one per task) and, for a claim's holder, as whom (`Gitswarm-Worker`,
`Gitswarm-Token`). Pure: no git, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from . import task as T
from .errors import RuleViolation
from .statuses import TRANSITIONS  # which actions move a task from which status to which
from .task import Claim, Task
from .text import printable

ACTIONS = ("init", "add", "claim", "complete", "fail", "release", "reopen", "cancel", "goal", "reclaim",
           "bury", "handoff", "land", "reject", "return")
HOLDER_ACTIONS = ("complete", "fail", "release", "handoff")  # only the claim's holder, under its token
TRAIN_ACTIONS = ("land", "reject", "return")  # only the landing train's holder (refs/gitswarm/train)
IMMUTABLE = ("id", "title", "description", "kind", "goal", "parent", "depends_on", "priority", "created")
SUBJECT_VERB = {"complete": "done", "land": "landed", "handoff": "hand off", "return": "send back"}
TRAILER = "Gitswarm-"


# ---------------------------------------------------------------- making changes

def claim(task: Task, worker: str, at: str | None = None, lease: int = 900) -> Task:
    attempts = task.attempts + 1
    return task.replace(status="claimed", attempts=attempts, result=None,
                        claim=Claim(worker=worker, token=attempts, at=at or T.now(), lease=lease))


def spent(result: dict, tokens: int = 0, cost: float | None = None) -> dict:
    """A result with what the task's attempts spent: `tokens` (the goal's budget counts them) and
    `cost` in USD (when known), each left out when nothing."""
    if tokens:
        result["tokens"] = tokens
    if cost:
        result["cost"] = round(cost, 6)
    return result


def complete(task: Task, worker: str, summary: str, commit: str | None = None,
             at: str | None = None, tokens: int = 0, cost: float | None = None) -> Task:
    result: dict = {"worker": worker, "at": at or T.now(), "summary": printable(summary)}
    if commit:
        result["commit"] = commit
    return task.replace(status="done", claim=None, result=spent(result, tokens, cost))


def fail(task: Task, worker: str, reason: str, at: str | None = None, tokens: int = 0,
         cost: float | None = None) -> Task:
    result: dict = {"worker": worker, "at": at or T.now(), "reason": printable(reason)}
    return task.replace(status="failed", claim=None, result=spent(result, tokens, cost))


def handoff(task: Task, worker: str, commit: str, summary: str, at: str | None = None, tokens: int = 0,
            cost: float | None = None) -> Task:
    """The holder hands its work (`commit`, kept at refs/gitswarm/land/<id>) to the landing queue."""
    result: dict = {"worker": worker, "at": at or T.now(), "commit": commit, "summary": printable(summary)}
    return task.replace(status="landing", claim=None, result=spent(result, tokens, cost))


def landed(task: Task, commit: str, at: str | None = None) -> Task:
    """A queued task the train landed: done, with the commit on main (its work, replayed)."""
    assert task.result is not None
    return task.replace(status="done", result={**task.result, "at": at or T.now(), "commit": commit})


def reject(task: Task, reason: str, at: str | None = None) -> Task:
    """A queued task whose commit breaks the tests: failed, its commit kept for the retry."""
    assert task.result is not None
    kept = {k: task.result[k] for k in ("worker", "commit", "tokens", "cost") if k in task.result}
    return task.replace(status="failed", result={**kept, "at": at or T.now(), "reason": printable(reason)})


def send_back(task: Task, reason: str, at: str | None = None) -> Task:
    """A queued task whose commit does not replay on main: open again for a worker (and its agent),
    its commit kept so that the next attempt starts from it."""
    return reject(task, reason, at).replace(status="open")


def release(task: Task, reason: str | None = None, tokens: int = 0, at: str | None = None,
            cost: float | None = None) -> Task:
    """Open again, the attempt not counted against it. With `tokens` or `cost` (what the attempt
    spent: the goal's budget counts them) the result says why the attempt ended (`reason`)."""
    if not tokens and not cost:
        return task.replace(status="open", claim=None, result=None)
    assert task.claim is not None
    return task.replace(status="open", claim=None, result=spent({
        "worker": task.claim.worker, "at": at or T.now(), "reason": printable(reason or "handed back")}, tokens, cost))


def reopen(task: Task) -> Task:
    """A failed task open again; its result keeps saying why the last attempt failed."""
    return task.replace(status="open", claim=None)


def reclaim(task: Task, reason: str, dead: bool = False, at: str | None = None) -> Task:
    """Take a claim back from a holder gone silent: open again, or dead when out of attempts."""
    assert task.claim is not None
    return task.replace(status="dead" if dead else "open", claim=None,
                        result={"worker": task.claim.worker, "at": at or T.now(), "reason": printable(reason)})


def bury(task: Task, reason: str, at: str | None = None) -> Task:
    """A failed task that used up its attempts: dead, with its last error."""
    last = (task.result or {}).get("reason", "")
    return task.replace(status="dead", result={"at": at or T.now(),
                                               "reason": printable(f"{reason}; last error: {last}")})


def cancel(task: Task, reason: str, at: str | None = None) -> Task:
    return task.replace(status="cancelled", claim=None, result={"at": at or T.now(), "reason": printable(reason)})


# ---------------------------------------------------------------- commit messages

@dataclass
class CommitInfo:
    """What a board commit says of itself in its trailers."""
    action: str | None
    tasks: list[str] = field(default_factory=list)
    worker: str | None = None
    token: int | None = None
    name: str = "commit"  # how to name the commit in an error ("commit 1a2b3c4d")
    problem: str | None = None  # malformed trailers


def message(action: str, tasks: list[Task], worker: str | None = None, token: int | None = None,
            body: str = "", subject: str | None = None) -> str:
    """A commit message a person reads in `git log`: subject, body, trailers."""
    verb = SUBJECT_VERB.get(action, action)
    who = f" ({worker})" if worker else ""
    if subject is not None:
        pass
    elif not tasks:
        subject = f"{verb} board"
    elif len(tasks) == 1:
        subject = f"{verb} {tasks[0].id}: {tasks[0].title}"
    else:
        subject = f"{verb} {len(tasks)} tasks: " + ", ".join(t.title for t in tasks)
    limit = 100 - len(who)
    if len(subject) > limit:
        subject = subject[: limit - 3].rstrip() + "..."
    lines = [subject + who, ""]
    if len(tasks) > 1:
        lines += [f"- {t.id}: {t.title}" for t in tasks] + [""]
    body = printable(body)  # a reason or summary: untrusted output, read in `git log` on a terminal
    if body.strip():
        lines += [body.strip(), ""]
    lines.append(f"{TRAILER}Action: {action}")
    lines += [f"{TRAILER}Task: {t.id}" for t in tasks]
    if worker:
        lines.append(f"{TRAILER}Worker: {worker}")
    if token is not None:
        lines.append(f"{TRAILER}Token: {token}")
    return "\n".join(lines) + "\n"


def trailer_pairs(text: str) -> list[tuple[str, str]]:
    """(key, value) of each `Gitswarm-<Key>: value` line of a message's last paragraph only, so
    that a summary or a reason in the body can never pass for a trailer."""
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    pairs = []
    for line in (paragraphs[-1].splitlines() if paragraphs else []):
        key, sep, value = line.partition(": ")
        if sep and key.startswith(TRAILER):
            pairs.append((key[len(TRAILER):], value.strip()))
    return pairs


TOKEN_RE = re.compile(r"[0-9]{1,9}")  # compiled once, at import: the guard's children each compiled it anew (~0.5 ms)


def parse_trailers(text: str, name: str = "commit") -> CommitInfo:
    """Read the trailers (trailer_pairs). A trailer given twice (but Gitswarm-Task) is an error."""
    info = CommitInfo(action=None, name=name)
    seen: set[str] = set()
    for key, value in trailer_pairs(text):
        if key in seen and key != "Task":
            info.problem = f"gives Gitswarm-{key} twice"
        seen.add(key)
        if key == "Action":
            info.action = value
        elif key == "Task":
            info.tasks.append(value)
        elif key == "Worker":
            info.worker = value
        elif key == "Token":
            info.token = int(value) if TOKEN_RE.fullmatch(value) else -1
    return info


# ---------------------------------------------------------------- checking changes

@dataclass
class Change:
    """One file changed by a commit: its bytes before and after (None: absent)."""
    path: str
    old: bytes | None
    new: bytes | None


def check_commit(info: CommitInfo, changes: list[Change], exists: Callable[[str], bool],
                 root: bool = False, lapsed: Callable[[Claim], bool] | None = None,
                 trainer: Callable[[str | None], bool] | None = None) -> list[Task]:
    """Check one commit on `tasks` against its parent. Returns the tasks it adds or changes.

    `exists(id)` tells whether a task exists in the commit's tree (for depends_on and parent);
    `lapsed(claim)` whether a claim's lease has lapsed on the hub's clock (None: never, so a
    reclaim is refused); `trainer(worker)` whether a worker holds the landing train's lease (None:
    nobody, so the train's actions are refused). Raises RuleViolation or TaskInvalid naming the file
    and the rule.
    """
    if info.problem:
        raise RuleViolation(info.name, info.problem, "give each trailer once, in the last paragraph")
    if info.action not in ACTIONS:
        raise RuleViolation(info.name, f"Gitswarm-Action {info.action!r} is not one of: {', '.join(ACTIONS)}"
                            if info.action else "has no Gitswarm-Action trailer",
                            "change the board with the gitswarm client, which writes the trailers")
    if root and info.action != "init":
        raise RuleViolation(info.name, "the first commit of tasks must be an init commit",
                            "create the board with `gitswarm init`")
    changed: list[Task] = []
    added: list[Task] = []
    for change in changes:
        moved = _check_change(info, change, lapsed, trainer)
        if moved is None:
            continue
        (added if change.old is None else changed).append(moved)
    touched = [t.id for t in added + changed]
    if info.action == "claim" and len(changes) != 1:
        raise RuleViolation(info.name, f"a claim changes only the task it claims; this one changes "
                            f"{len(changes)} files ({', '.join(c.path for c in changes)})",
                            "claim one task per commit")
    if info.action in ("init",) and touched:
        raise RuleViolation(info.name, "an init commit holds only README.md")
    if sorted(touched) != sorted(info.tasks):
        raise RuleViolation(info.name, f"its Gitswarm-Task trailers ({', '.join(info.tasks) or 'none'}) "
                            f"must name exactly the tasks it changes ({', '.join(touched) or 'none'})")
    if added:
        _check_references(added, exists)
    return added + changed


def _check_change(info: CommitInfo, change: Change, lapsed: Callable[[Claim], bool] | None,
                  trainer: Callable[[str | None], bool] | None) -> Task | None:
    path = change.path
    if path == "README.md":
        if change.new is None:
            raise RuleViolation(path, "the board's README is never deleted")
        return None
    if path.startswith("goals/"):
        _check_goal_record(info, change)
        return None
    task_id = T.id_from_path(path)
    if task_id is None:
        if path.startswith("tasks/"):
            raise RuleViolation(path, "is not a task file name",
                                "a task lives at tasks/<xx>/<id>.yaml, xx being the two characters after 't-'")
        raise RuleViolation(path, "lies outside tasks/ and goals/ and is not README.md",
                            "the tasks branch holds README.md, task files (tasks/<xx>/<id>.yaml) and goal "
                            "records (goals/<name>.yaml) only")
    if change.new is None:
        raise RuleViolation(path, "task files are never deleted", "cancel the task instead")
    new = T.parse(change.new, path)
    if new.id != task_id:
        raise RuleViolation(path, f"id {new.id} does not match the file name ({task_id})")
    if change.old is None:
        if info.action != "add":
            raise RuleViolation(path, f"new task in a {info.action} commit; tasks are created by add commits")
        check_added(new, path)
        return new
    if info.action == "add":
        raise RuleViolation(path, f"task {task_id} already exists; an add commit only creates tasks",
                            "choose another id")
    old = T.parse(change.old, path)
    check_transition(old, new, info, path, lapsed, trainer)
    return new


def _check_goal_record(info: CommitInfo, change: Change) -> None:
    from . import record

    if record.name_from_path(change.path) is None:
        raise RuleViolation(change.path, "is not a goal record name", "goal records live at goals/<name>.yaml")
    if info.action != "goal":
        raise RuleViolation(change.path, f"goal records change only in goal commits, not in a {info.action}")
    if change.new is None:
        raise RuleViolation(change.path, "goal records are never deleted")
    record.parse(change.new, change.path)


def check_added(task: Task, path: str) -> None:
    if task.status != "open" or task.attempts or task.claim or task.result:
        raise RuleViolation(path, f"a new task starts open with 0 attempts, no claim and no result "
                            f"(this one is {task.status}, attempts {task.attempts})")


def check_transition(old: Task, new: Task, info: CommitInfo, path: str,
                     lapsed: Callable[[Claim], bool] | None = None,
                     trainer: Callable[[str | None], bool] | None = None) -> None:
    for name in IMMUTABLE:
        if getattr(old, name) != getattr(new, name):
            raise RuleViolation(path, f"field {name} never changes once a task exists",
                                "cancel the task and add a corrected one")
    actions = TRANSITIONS.get((old.status, new.status))
    if actions is None:
        allowed = [to for (frm, to) in TRANSITIONS if frm == old.status]
        raise RuleViolation(path, f"illegal transition {old.status} -> {new.status} "
                            f"(from {old.status}: {', '.join(allowed) or 'none, it has ended'})")
    if info.action not in actions:
        raise RuleViolation(path, f"{old.status} -> {new.status} is a {' or '.join(actions)}, "
                            f"but the commit says Gitswarm-Action: {info.action}")
    action = info.action
    if action == "reclaim":
        assert old.claim is not None
        if lapsed is None or not lapsed(old.claim):
            raise RuleViolation(path, f"the lease of {old.claim.worker} (token {old.claim.token}, "
                                f"{old.claim.lease}s) has not lapsed on the hub's clock",
                                "a claim is taken back only when its holder has gone silent")
    if action == "claim":
        assert new.claim is not None  # check_consistent
        if new.attempts != old.attempts + 1:
            raise RuleViolation(path, f"a claim counts one more attempt ({old.attempts + 1}, not {new.attempts})")
        if (info.worker, info.token) != (new.claim.worker, new.claim.token):
            raise RuleViolation(path, f"claimed for {new.claim.worker} with token {new.claim.token}, but the "
                                f"commit's trailers say {info.worker or 'nobody'}, token {info.token}")
        return
    if old.attempts != new.attempts:
        raise RuleViolation(path, "attempts changes only when the task is claimed")
    if action in TRAIN_ACTIONS:
        _check_train_action(old, new, info, path, trainer)
        return
    if action in HOLDER_ACTIONS:
        assert old.claim is not None
        if (info.worker, info.token) != (old.claim.worker, old.claim.token):
            raise RuleViolation(
                path, f"only the claim's holder ({old.claim.worker}, token {old.claim.token}) may {action} it; "
                f"this commit is from {info.worker or 'nobody'}, token {info.token}",
                "a claim that was lost cannot be completed: fetch the board and take another task")
        worker = (new.result or {}).get("worker")
        if action != "release" and worker != old.claim.worker:
            raise RuleViolation(path, f"result.worker must be the claim's holder ({old.claim.worker})")


def _check_train_action(old: Task, new: Task, info: CommitInfo, path: str,
                        trainer: Callable[[str | None], bool] | None) -> None:
    """Only the landing train's holder moves a task out of the queue, and the work stays the
    worker's: result.worker as handed off, the commit kept when it goes back (the one that landed
    is checked on main by check_landing)."""
    if trainer is None or not trainer(info.worker):
        raise RuleViolation(path, f"only the landing train's holder may {info.action} a queued task; this commit "
                            f"is from {info.worker or 'nobody'}, who does not hold refs/gitswarm/train",
                            "queued work is landed, rejected or sent back by the train (`gitswarm serve`)")
    before, after = old.result or {}, new.result or {}
    if after.get("worker") != before.get("worker"):
        raise RuleViolation(path, f"result.worker must stay {before.get('worker')} (who did the work)")
    if info.action != "land" and after.get("commit") != before.get("commit"):
        raise RuleViolation(path, f"result.commit must stay {str(before.get('commit'))[:10]}: the next attempt "
                            "starts from it")
    if info.action == "land" and "commit" not in after:
        raise RuleViolation(path, "result.commit must name the commit that landed on main")


def _check_references(added: list[Task], exists: Callable[[str], bool]) -> None:
    new_ids = {t.id: t for t in added}
    for t in added:
        for dep in t.depends_on:
            if dep not in new_ids and not exists(dep):
                raise RuleViolation(t.path, f"depends_on {dep}: no such task")
        if t.parent and t.parent not in new_ids and not exists(t.parent):
            raise RuleViolation(t.path, f"parent {t.parent}: no such task")
    # a cycle can only form among tasks added together: older tasks never gain dependencies
    cycle = T.find_cycle({t.id: t.depends_on for t in added})
    if cycle:
        raise RuleViolation(new_ids[cycle[0]].path, "depends_on forms a cycle: " + T.cycle_text(cycle),
                            "remove one of these dependencies")
