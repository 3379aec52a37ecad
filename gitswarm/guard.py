"""The server's guard: checks every push to `tasks` against the board's rules (gitswarm/rules.py)
before git accepts it. Runs inside the pre-receive hook, so it reads git through the command line
and checks only what the push changes: its cost follows the push, not the size of the board."""

from __future__ import annotations

from typing import Callable

from . import names
from .errors import GitswarmError, RuleViolation, TaskInvalid
from .git import STALE, ZERO
from .githook import HookRepo, reader

REGULAR = "100644"
ACTS_FOR_WORKER = ("claim", "complete", "fail", "release", "handoff",  # the board actions that bind
                   "land", "reject", "return")  # Gitswarm-Worker to the pusher (identity.bind)
MAX_HEARTBEATS = 1024  # heartbeat refs per push; a pool sends more in further pushes (groupcommit)
MAX_BEAT_BYTES = 2048  # a heartbeat commit: gitswarm's are ~200-600 bytes (worker names <= 64 chars)


def stale(updates: list[tuple[str, str, str]], repo: HookRepo) -> list[str]:
    """Refs that moved since the pusher looked: its push would lose the ref's compare-and-swap
    anyway. Saying so at once, before loading the rules, keeps lost races cheap for the hub."""
    lines = []
    for old, new, ref in updates:
        if old != ZERO:
            tip = repo.ref(ref)
            if tip and tip != old:
                lines.append(f"{STALE} {ref} moved to {tip[:10]} while you pushed: fetch and retry")
    return lines


def check_updates(updates: list[tuple[str, str, str]], repo: HookRepo | None = None,
                  actors: set[str] | None = None, hub_own: bool = False,
                  bound: Callable[[str], str | None] = lambda worker: None, pusher: str | None = None) -> list[str]:
    """Check (old, new, ref) updates; the lines to print for the first violation, or []. The
    workers the push acts for (claims and their holders' changes, heartbeats, runs records) go
    into `actors`. `hub_own`: the push is the hub's own (gitswarm/identity.py hub_own), the only
    one that may change goal records. `bound(worker)`: the identity a worker is bound to, and
    `pusher` this push's (identity.py), for a runs record whose attempt the board no longer tells."""
    from .attemptguard import check_attempts
    from .rules import CommitInfo
    from .runguard import bad_names, check_runs
    from .workrules import check_landing

    repo = repo or reader()
    refs = {ref: (old, new) for old, new, ref in updates}
    problems = bad_names(list(refs))
    if problems:
        repo.close()
        return problems
    for ref in refs:
        if not names.allowed(ref):
            repo.close()
            return [f"gitswarm: rejected {ref}: a hub holds main, tasks, the heartbeat refs and the landing "
                    f"queue's refs ({names.LAND}<task>/<attempt>, {names.TRAIN}), the attempts' "
                    f"runs ({names.RUNS}<task>/<attempt>) and best of N's attempts "
                    f"({names.ATTEMPTS}<task>/<k>) only",
                    "gitswarm: hint: keep other branches and tags in your own clone, or in another repository; "
                    f"a heartbeat ref is {names.HEARTBEATS}<worker>, a worker's name being {names.NAME_HINT}"]
    actors = set() if actors is None else actors
    actors.update(worker for ref in refs if (worker := names.heartbeat_worker(ref)))
    rejected = names.BOARD
    try:
        rejected = names.TRAIN
        holder = check_train(refs, repo, actors)
        rejected = names.BOARD
        moved = _check_board_update(repo, *refs[names.BOARD], actors, hub_own, holder) if names.BOARD in refs else []
        completed = [t for t in moved if t.status == "done"]
        rejected = names.MAIN if names.MAIN in refs else names.BOARD  # a completion alone is refused on tasks
        main_commits = []
        if names.MAIN in refs and refs[names.MAIN][1] != ZERO:
            old, new = refs[names.MAIN]
            main_commits = [(c, CommitInfo(None, ids)) for c, ids in repo.task_trailers(old, new)]
        new_on_main = {c for c, _ in main_commits}

        def on_main(commit: str) -> bool:  # asked only for a completion naming a commit: no git call on a claim
            if commit in new_on_main:
                return True
            main_tip = refs[names.MAIN][1] if names.MAIN in refs else repo.ref(names.MAIN)
            return bool(main_tip and repo.is_ancestor(commit, main_tip))

        check_landing(main_commits, completed, on_main, lambda commit: _trailers(repo, commit).tasks)
        rejected = names.BOARD
        check_queue(refs, [t for t in moved if t.status == "landing"], repo, on_main)
        check_attempts(refs, moved, repo, on_main, lambda commit: _trailers(repo, commit).tasks)
        if main_commits:
            board = refs[names.BOARD][1] if names.BOARD in refs else repo.ref(names.BOARD)
            _check_work_paths(repo, *refs[names.MAIN], {c: info.tasks for c, info in main_commits}, board)
        records = [ref for ref in refs if ref.startswith(names.RUNS)]
        if records:
            rejected = records[0]
            check_runs(refs, repo, refs[names.BOARD][1] if names.BOARD in refs else repo.ref(names.BOARD), actors,
                       bound, pusher)
    except GitswarmError as e:
        message = e.message
        if isinstance(e, RuleViolation) and e.path in refs:  # a ref of its own (a land ref): named once, as itself
            rejected, message = e.path, e.rule
        lines = [f"gitswarm: rejected {rejected}: {message}"]
        if e.hint:
            lines.append(f"gitswarm: hint: {e.hint}")
        return lines
    finally:
        repo.close()
    return []


def _check_work_paths(repo: HookRepo, old: str, new: str, work: dict[str, list[str]], board: str | None) -> None:
    """Work may change .gitswarm.yaml, .gitswarm/ and goals/ only where its task's goal lists them
    in `may_change` (workrules.check_may_change), that goal read from main as it was before this push:
    work cannot grant itself the right. Runs for a push that lands work (`work`: its commits with a
    Gitswarm-Task trailer, and their tasks): one rev-list and one diff-tree; a goal is read only
    when a protected path is touched. A commit without the trailer in such a push may not touch
    them either: it would carry changes past the check."""
    from .workrules import check_may_change, protected

    commits = repo.commits(old, new)
    diffs = repo.changes([(c, parents[:1]) for c, parents in commits])  # a merge: against its first parent
    for commit, _ in commits:
        touched = [path for _, _, _, path, _ in diffs[commit] if protected(path)]
        if not touched:
            continue
        name = f"commit {commit[:10]}"
        if not work.get(commit):
            raise RuleViolation(name, f"changes {touched[0]} in a push that lands work",
                                "push changes to settings, prompts and goals on their own, apart from a task's work")
        for task_id in work[commit]:
            check_may_change(touched, task_id, name, *_goal_of(repo, task_id, board, old))


def _goal_of(repo: HookRepo, task_id: str, board: str | None, main: str) -> tuple[str | None, tuple[str, ...], str | None]:
    """(the goal file of a task on the board, its may_change on main at `main`, why it could not be
    read or None)."""
    from .goal import MAX_FILE_BYTES, goal_path, parse_goal
    from .task import parse, task_path

    data = repo.read(f"{board}:{task_path(task_id)}") if board else None
    if data is None:
        return None, (), f"{task_id} is not on the board"
    goal = parse(data, task_path(task_id)).goal
    if goal is None:
        return None, (), None
    path = goal_path(goal)
    size = repo.size(f"{main}:{path}") if main != ZERO else None
    if size is None:
        return path, (), f"{path} is not on main"
    if size > MAX_FILE_BYTES:
        return path, (), f"{path} is {size} bytes, over a goal's limit"
    try:
        return path, parse_goal(path, (repo.read(f"{main}:{path}") or b"").decode("utf-8", "replace")).may_change, None
    except GitswarmError as e:
        return path, (), f"{path} is not valid on main: {e.message}"


def _trailers(repo: HookRepo, commit: str):
    from .rules import parse_trailers

    raw = repo.read(commit) or b""
    message = raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else b""
    return parse_trailers(message.decode("utf-8", errors="replace"), name=f"commit {commit[:10]}")


def _check_board_update(repo: HookRepo, old: str, new: str, actors: set[str], hub_own: bool,
                        holder: "Callable[[], str | None]") -> list:
    """Check every commit the update brings; the tasks they change. Adds the workers its commits
    act for (claims, their holders' actions, the train's) to `actors`. `holder()`: who holds the
    landing train after this push."""
    import time

    from .task import last_news

    def lapsed(claim) -> bool:
        """On the hub's clock: no news from the holder (its heartbeat ref's reflog; a claim push
        updates it too; else the claim's own stamp, never one in the future) for longer than the
        claim's lease."""
        now = time.time()
        last = last_news(claim, repo.updated_at(names.heartbeat_ref(claim.worker)), now)
        return last is None or now - last > claim.lease

    from .rules import Change, check_commit
    from .task import task_path

    if new == ZERO:
        raise GitswarmError("the board is never deleted")
    commits = repo.commits(old, new)
    if not commits and old != ZERO:  # new is an ancestor of old: a rewind
        raise GitswarmError(f"commit {new[:10]}: rewinds the board from {old[:10]}; its history only grows",
                            "fetch tasks and re-apply your change on top")
    for commit, parents in commits:  # before the chain check: a merge's sides never form a chain
        if len(parents) > 1:
            raise GitswarmError(f"commit {commit[:10]}: merge commits are not allowed on tasks",
                                "the board's history is linear: rebase your change on the tip")
    expected_parent = None if old == ZERO else old
    for commit, parents in commits:
        name = f"commit {commit[:10]}"
        if (parents[0] if parents else None) != expected_parent:
            raise GitswarmError(f"{name}: does not build on the board's tip",
                                "fetch tasks and re-apply your change on top")
        expected_parent = commit
    diffs = repo.changes(commits)
    moved_all = []
    for commit, parents in commits:
        name = f"commit {commit[:10]}"
        info = _trailers(repo, commit)
        if info.worker and info.action in ACTS_FOR_WORKER:
            actors.add(info.worker)
        changes = []
        for status, old_blob, new_blob, path, mode in diffs[commit]:
            if mode not in (REGULAR, "000000"):
                raise RuleViolation(path, f"must be a regular file (mode {REGULAR}, not {mode})")
            if path.startswith("goals/") and not hub_own:
                _refuse_record(path)
            changes.append(Change(path, _blob(repo, old_blob, path), _blob(repo, new_blob, path)))

        def exists(task_id: str, commit: str = commit) -> bool:
            return repo.size(f"{commit}:{task_path(task_id)}") is not None

        try:
            moved = check_commit(info, changes, exists, root=not parents, lapsed=lapsed,
                                 trainer=lambda worker: worker is not None and worker == holder())
            check_stamps(info.action, moved, time.time())
            moved_all += moved
        except GitswarmError as e:
            if not e.message.startswith(name):  # in a chain, say which commit broke the rule
                e.message = f"{name}: {e.message}"
            raise
    return moved_all


def check_stamps(action: str | None, moved: list, now: float) -> None:
    """Claims and hand-offs are stamped on the hub's clock: a claim's claim.at and a hand-off's
    result.at may differ from the hub's time by MAX_SKEW seconds at most, so that a stamp far
    ahead can never hold a lease open (nor one far behind lapse it at once), and a back-dated
    hand-off never jumps the landing queue (oldest hand-off first)."""
    from .task import MAX_SKEW, timestamp

    field = {"claim": "claim.at", "handoff": "result.at"}.get(action or "")
    if field is None:
        return
    for t in moved:
        at = (t.claim.at if t.claim else None) if action == "claim" else (t.result or {}).get("at")
        if at is None:
            continue
        off = timestamp(at) - now
        if abs(off) > MAX_SKEW:
            raise RuleViolation(t.path, f"{field} {at} is {abs(off):.0f}s "
                                f"{'ahead of' if off > 0 else 'behind'} the hub's clock "
                                f"(more than {MAX_SKEW}s)",
                                f"set the pushing machine's clock right (NTP): a {action} is stamped "
                                "with the time it is made")


def _refuse_record(path: str) -> None:
    raise RuleViolation(path, "goal records are written only by the hub's own daemon and judge (a local "
                        "push by the account that owns the hub), not by a push over ssh, http or git daemon "
                        "or from another account",
                        "to start, change or stop a goal, push its goal file (goals/<name>.md) to main; if "
                        "this is the hub's `gitswarm serve` or `gitswarm judge`, run it on the hub's path as "
                        "the hub's owner")


def check_heartbeats(updates: list[tuple[str, str, str]], repo: HookRepo) -> list[str]:
    """Heartbeat refs: at most MAX_HEARTBEATS per push, each a commit of the shape gitswarm writes
    (groupcommit's `_beat_commits`): an empty tree, a short message, and as its only parent the
    ref's previous beat (none for a new ref). So a beat brings one small object, never a history
    or a blob. Costs a `cat-file` question or two per beat. The lines to print, or []."""
    beats = [(old, new, ref) for old, new, ref in updates if names.heartbeat_worker(ref)]
    if len(beats) > MAX_HEARTBEATS:
        return [f"gitswarm: rejected: {len(beats)} heartbeat refs in one push; the limit is {MAX_HEARTBEATS}",
                "gitswarm: hint: push the rest in further pushes (gitswarm's own pools do)"]
    for old, new, ref in beats:
        problem = _chain_problem(repo, old, new, "heartbeat")
        if problem:
            return [f"gitswarm: rejected {ref}: {problem}",
                    "gitswarm: hint: a heartbeat is a commit with an empty tree and a short message whose only "
                    "parent is the ref's last beat; `gitswarm heartbeat` writes them"]
    return []


def _chain_problem(repo: HookRepo, old: str, new: str, what: str) -> str | None:
    """What is wrong with `new` as the next commit of a heartbeat's or a train lease's chain: an
    empty tree, at most MAX_BEAT_BYTES, the ref's last commit as its only parent. None: nothing."""
    if new == ZERO:
        return f"{what} refs are never deleted"
    kind, size = repo.info(new) or ("missing", 0)
    if kind != "commit":
        return f"points at a {kind} {new[:10]}, not a commit"
    if size > MAX_BEAT_BYTES:
        return f"commit {new[:10]} is {size} bytes; a {what} is at most {MAX_BEAT_BYTES}"
    head = (repo.read(new) or b"").split(b"\n\n", 1)[0].decode("utf-8", errors="replace").splitlines()
    fields = [line.split(" ", 1) for line in head if " " in line]
    trees = [v for k, v in fields if k == "tree"]
    parents = [v for k, v in fields if k == "parent"]
    if len(trees) != 1 or repo.info(trees[0]) != ("tree", 0):
        return f"commit {new[:10]} has files; a {what}'s tree is empty"
    expected = [] if old == ZERO else [old]
    if parents != expected:
        return (f"commit {new[:10]} has parents {', '.join(p[:10] for p in parents) or 'none'}; a {what}'s "
                f"only parent is the ref's last beat ({old[:10] if old != ZERO else 'none for a new ref'})")
    return None


def check_train(refs: dict[str, tuple[str, str]], repo: HookRepo, actors: set[str]) -> "Callable[[], str | None]":
    """A push of refs/gitswarm/train: the next lease commit of its chain, naming its holder; a new
    holder only once the last one's lease has lapsed on the hub's clock (the ref's reflog). Adds the
    holder to `actors`. Returns who holds the train after the push (asked only for the train's own
    board actions: no git call otherwise)."""
    import time

    from .queue import parse_lease

    def lease_of(commit: str | None) -> tuple[str, int] | None:
        raw = repo.read(commit) if commit else None
        return parse_lease(raw.split(b"\n\n", 1)[1].decode("utf-8", "replace")) if raw and b"\n\n" in raw else None

    if names.TRAIN not in refs:
        return lambda: (lease_of(repo.ref(names.TRAIN)) or (None,))[0]
    old, new = refs[names.TRAIN]
    problem = _chain_problem(repo, old, new, "train lease")
    lease = None if problem else lease_of(new)
    if lease is None:
        raise GitswarmError(problem or f"commit {new[:10]} is not a lease commit (trailers Gitswarm-Train: <holder> "
                            "and Gitswarm-Lease: <seconds>, at most an hour)",
                            "the landing train is held by `gitswarm serve` (or a pool started with --train)")
    before = lease_of(old) if old != ZERO else None
    if before is not None and before[0] != lease[0]:
        renewed = repo.updated_at(names.TRAIN)
        if renewed is not None and time.time() - renewed <= before[1]:
            raise GitswarmError(f"the landing train is held by {before[0]}, whose lease ({before[1]}s) has not "
                                f"lapsed (renewed {time.time() - renewed:.0f}s ago on the hub's clock)",
                                "one train lands at a time; another takes over only when its holder goes silent")
    actors.add(lease[0])
    return lambda: lease[0]


def check_queue(refs: dict[str, tuple[str, str]], queued: list, repo: HookRepo,
                on_main: "Callable[[str], bool]") -> None:
    """Hand-offs and land refs travel together: a task handed to the queue in this push has its land
    ref (refs/gitswarm/land/<task>/<attempt>) created in it at the task's result.commit, a commit
    whose Gitswarm-Task trailers name the task and no other, not on main yet; and a land ref is
    created only so, never moved (the hub's daemon deletes those of ended tasks)."""
    wanted = {names.land_ref(t.id, t.attempts): t for t in queued}
    for ref, (old, new) in refs.items():
        if names.parse_land_ref(ref) is None:
            continue
        names.created_once(ref, old, new, "a land ref", "hand off a new attempt's work under its own attempt number")
        t = wanted.get(ref)
        if t is None or t.result.get("commit") != new:
            raise RuleViolation(ref, "is created only together with its task's hand-off (Gitswarm-Action: handoff) "
                                "naming this commit, at that attempt", "hand off with `gitswarm`'s worker")
    for ref, t in wanted.items():
        commit = t.result["commit"]
        if refs.get(ref, (None, None))[1] != commit:
            raise RuleViolation(t.path, f"is handed to the landing queue without its work: push {ref} at "
                                f"{commit[:10]} in the same atomic push", "git push --atomic, as gitswarm's workers do")
        if (repo.info(commit) or ("",))[0] != "commit":
            raise RuleViolation(t.path, f"result.commit {commit[:10]} is not a commit")
        named = _trailers(repo, commit).tasks
        if t.id not in named:
            raise RuleViolation(t.path, f"result.commit {commit[:10]} does not name {t.id} in its Gitswarm-Task "
                                f"trailers ({', '.join(named) or 'none'}): it is not the task's own work",
                                f"hand off the commit that did the work, ending with the trailer Gitswarm-Task: {t.id}")
        others = sorted(set(named) - {t.id})
        if others:
            raise RuleViolation(t.path, f"result.commit {commit[:10]} names {', '.join(others)} too in its "
                                "Gitswarm-Task trailers: a commit lands on main as the work of one task only, so "
                                "it never would", f"hand off a commit whose only Gitswarm-Task trailer is {t.id}")
        if on_main(commit):
            raise RuleViolation(t.path, f"result.commit {commit[:10]} is already on main: it holds no new work",
                                "hand off the task's own commit, made on main's tip")


def _blob(repo: HookRepo, sha: str, path: str) -> bytes | None:
    """A blob's bytes; one over the size limit is refused before it is read into memory."""
    from .task import MAX_FILE_BYTES

    if sha == ZERO:
        return None
    size = repo.size(sha) or 0
    if size > MAX_FILE_BYTES:
        raise TaskInvalid(path, None, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
    return repo.read(sha)
