"""Exceptions. `GitswarmError` is the one a user sees: a sentence and a hint saying what to do."""

from __future__ import annotations

# Exit codes a script can tell apart (README, docs/board.md), as grep's: 1 is a "no" that is not a
# failure, 2 is trouble. Defined here once; GitswarmError.exit_code is EXIT_ERROR.
EXIT_NOTHING_READY = 1  # `claim`: no task is ready
EXIT_INVALID = 1  # `check`: problems found; `serve --until-done`: a goal is invalid
EXIT_ERROR = 2  # the command failed (a GitswarmError, with its hint), or its usage was wrong (click's own 2)
EXIT_UNREACHABLE = 3  # the hub cannot be reached: no repository there, no answer, connection refused
EXIT_STOPPED = 4  # `serve --until-done`: a goal stopped (judge, max_cycles, budget) rather than done
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells say it


class GitswarmError(Exception):
    """An error meant for the user: what went wrong, and a hint on how to fix it."""

    exit_code = EXIT_ERROR  # what the command line exits with (HubUnreachable: EXIT_UNREACHABLE)

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class FileInvalid(GitswarmError):
    """A file breaks its rules. Names the file and the field (None: the whole file)."""

    def __init__(self, path: str, field: str | None, problem: str, hint: str | None = None):
        where = f"{path}: {field}" if field else path
        super().__init__(f"{where}: {problem}", hint)
        self.path, self.field, self.problem = path, field, problem


class TaskInvalid(FileInvalid):
    """A task file (or a goal record on the board) breaks the schema."""


class RuleViolation(GitswarmError):
    """A board change that the rules forbid (illegal transition, wrong file, ...)."""

    def __init__(self, path: str, rule: str, hint: str | None = None):
        super().__init__(f"{path}: {rule}", hint)
        self.path, self.rule = path, rule


class GitError(GitswarmError):
    """A git command failed for a reason other than a lost race."""


class PushRace(Exception):
    """The push lost a race: a branch moved underneath. Fetch, re-apply, push again.
    `branches`: the branches that moved (all of the push's when git does not say)."""

    def __init__(self, branches: set[str]):
        super().__init__(", ".join(sorted(branches)))
        self.branches = branches


class PushDeclined(GitswarmError):
    """The server's hook refused the push; `lines` are what it said."""

    def __init__(self, lines: list[str]):
        text = "\n".join(lines) if lines else "the server's pre-receive hook declined the push"
        super().__init__(f"the hub refused the change:\n{text}")
        self.lines = lines


class BranchMoved(GitswarmError):
    """A branch pushed together with a board change (main, when work lands) moved underneath: the
    work must be rebased on the new tip and pushed again."""

    def __init__(self, branch: str):
        super().__init__(f"{branch} moved while this change was pushed", f"fetch {branch}, rebase, push again")
        self.branch = branch


class ClaimLost(GitswarmError):
    """The task is no longer held under this claim (its lease lapsed and it was taken back, or it
    ended): the old holder must abandon it."""


class HubUnreachable(GitError):
    """The hub cannot be reached (nothing at that path, connection refused, no answer in time)."""

    exit_code = EXIT_UNREACHABLE
