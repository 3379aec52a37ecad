"""The server's guard: checks every push to `tasks` against the board's rules (gitswarm/rules.py)
before git accepts it. Runs inside the pre-receive hook, so it reads git through the command line
and checks only what the push changes: its cost follows the push, not the size of the board."""

from __future__ import annotations

from .errors import GitswarmError, RuleViolation, TaskInvalid
from .git import STALE, ZERO, HookRepo


BOARD_REF = "refs/heads/tasks"
REGULAR = "100644"


def stale(updates: list[tuple[str, str, str]], repo: HookRepo) -> list[str]:
    """The board moved since the pusher looked: its push would lose the ref's compare-and-swap
    anyway. Saying so at once, before loading the rules, keeps lost races cheap for the hub."""
    for old, new, ref in updates:
        if ref == BOARD_REF and old != ZERO:
            tip = repo.ref(BOARD_REF)
            if tip and tip != old:
                return [f"{STALE} {BOARD_REF} moved to {tip[:10]} while you pushed: fetch and retry"]
    return []


def check_updates(updates: list[tuple[str, str, str]], repo: HookRepo | None = None) -> list[str]:
    """Check (old, new, ref) updates; the lines to print for the first violation, or []."""
    repo = repo or HookRepo()
    try:
        for old, new, ref in updates:
            if ref == BOARD_REF:
                _check_board_update(repo, old, new)
    except GitswarmError as e:
        lines = [f"gitswarm: rejected {BOARD_REF}: {e.message}"]
        if e.hint:
            lines.append(f"gitswarm: hint: {e.hint}")
        return lines
    finally:
        repo.close()
    return []


def _check_board_update(repo: HookRepo, old: str, new: str) -> None:
    from .rules import Change, check_commit, parse_trailers
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
    for commit, parents in commits:
        name = f"commit {commit[:10]}"
        raw = repo.read(commit) or b""
        message = raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else b""
        info = parse_trailers(message.decode("utf-8", errors="replace"), name=name)
        changes = []
        for status, old_blob, new_blob, path, mode in diffs[commit]:
            if mode not in (REGULAR, "000000"):
                raise RuleViolation(path, f"must be a regular file (mode {REGULAR}, not {mode})")
            changes.append(Change(path, _blob(repo, old_blob, path), _blob(repo, new_blob, path)))

        def exists(task_id: str, commit: str = commit) -> bool:
            return repo.size(f"{commit}:{task_path(task_id)}") is not None

        try:
            check_commit(info, changes, exists, root=not parents)
        except GitswarmError as e:
            if not e.message.startswith(name):  # in a chain, say which commit broke the rule
                e.message = f"{name}: {e.message}"
            raise


def _blob(repo: HookRepo, sha: str, path: str) -> bytes | None:
    """A blob's bytes; one over the size limit is refused before it is read into memory."""
    from .task import MAX_FILE_BYTES

    if sha == ZERO:
        return None
    size = repo.size(sha) or 0
    if size > MAX_FILE_BYTES:
        raise TaskInvalid(path, None, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
    return repo.read(sha)
