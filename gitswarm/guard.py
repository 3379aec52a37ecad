"""The server's guard: checks every push to `tasks` against the board's rules (gitswarm/rules.py)
before git accepts it. Runs inside the pre-receive hook, so it reads git through the command line
and checks only what the push changes: its cost follows the push, not the size of the board."""

from __future__ import annotations

from .errors import GitswarmError
from .git import ZERO, HookRepo
from .rules import Change, check_commit, parse_trailers
from .task import task_path

BOARD_REF = "refs/heads/tasks"


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
    if new == ZERO:
        raise GitswarmError("the board is never deleted")
    commits = repo.commits(old, new)
    expected_parent = None if old == ZERO else old
    for commit, parents in commits:
        name = f"commit {commit[:10]}"
        if len(parents) > 1:
            raise GitswarmError(f"{name}: merge commits are not allowed on tasks",
                                "the board's history is linear: rebase your change on the tip")
        if (parents[0] if parents else None) != expected_parent:
            raise GitswarmError(f"{name}: does not build on the board's tip",
                                "fetch tasks and re-apply your change on top")
        expected_parent = commit
    diffs = repo.changes(commits)
    for commit, parents in commits:
        raw = repo.read(commit) or b""
        message = raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else b""
        info = parse_trailers(message.decode("utf-8", errors="replace"), name=f"commit {commit[:10]}")
        changes = [Change(path, _blob(repo, old_blob), _blob(repo, new_blob))
                   for status, old_blob, new_blob, path in diffs[commit]]

        def exists(task_id: str, commit: str = commit) -> bool:
            return repo.read(f"{commit}:{task_path(task_id)}") is not None

        check_commit(info, changes, exists, root=not parents)


def _blob(repo: HookRepo, sha: str) -> bytes | None:
    return None if sha == ZERO else repo.read(sha)
