"""What work may do on main: land only together with its task's completion, as the task's own
commit, and change the settings, prompts and goals (PROTECTED) only where its goal's `may_change`
lists them. One implementation, used by workers and the landing train before they push and by the
hub's pre-receive hook on every push that moves main. Pure: no git, no I/O.
"""

from __future__ import annotations

from typing import Callable

from .errors import RuleViolation
from .rules import CommitInfo
from .task import Task

PROTECTED = (".gitswarm.yaml", ".gitswarm/", "goals/")  # on main: work changes them only where its goal says so


# ---------------------------------------------------------------- landing work on main

def check_landing(main_commits: list[tuple[str, CommitInfo]], completed: list[Task],
                  on_main: Callable[[str], bool], tasks_of: Callable[[str], list[str]]) -> None:
    """Work and its task's completion travel together, in one atomic push: a commit on main that
    names a task (Gitswarm-Task) lands only with that task's completion naming it, and a task is
    done with a commit only when the commit is on main (`on_main`, after the push) and is the
    task's own: its Gitswarm-Task trailers name the task (those of `main_commits` for a commit of
    the push, `tasks_of(commit)` for one already on main), never another task's work or main's
    tip."""
    done = [t for t in completed if t.result and "commit" in t.result]
    completed_with: dict[str, set[str]] = {}  # commit -> the tasks this push completes with it
    for t in done:
        completed_with.setdefault(t.result["commit"], set()).add(t.id)  # type: ignore[index]
    for sha, info in main_commits:
        for task_id in info.tasks:
            if task_id not in completed_with.get(sha, ()):
                raise RuleViolation(f"commit {sha[:10]}", f"is work for {task_id}, which this push does not "
                                    "complete with it", "push it together with the task's completion "
                                    "(git push --atomic, as gitswarm's workers do)")
    pushed = dict(main_commits)
    for t in done:  # every completion is checked, also two that give the same commit
        commit = t.result["commit"]  # type: ignore[index]
        if not on_main(commit):
            raise RuleViolation(t.path, f"result.commit {commit[:10]} is not on main",
                                "land the commit on main first, or in the same atomic push")
        named = pushed[commit].tasks if commit in pushed else tasks_of(commit)
        if t.id not in named:
            raise RuleViolation(t.path, f"result.commit {commit[:10]} does not name {t.id} in its Gitswarm-Task "
                                f"trailers ({', '.join(named) or 'none'}): it is not the task's own work",
                                "complete a task with the commit that did its work, whose message ends with "
                                f"the trailer Gitswarm-Task: {t.id}")


# ---------------------------------------------------------------- what work may change on main

def protected(path: str) -> str | None:
    """The item of PROTECTED a path on main falls under (`.gitswarm/` for .gitswarm/prompts/x.md),
    or None."""
    for item in PROTECTED:
        if path == item or (item.endswith("/") and (path + "/").startswith(item)):
            return item
    return None


def check_may_change(paths: list[str], task_id: str, where: str, goal: str | None,
                     may_change: tuple[str, ...] = (), goal_problem: str | None = None) -> None:
    """Work for `task_id` (a commit with its Gitswarm-Task trailer, or a worker's work before it
    lands) may change the settings, prompts and goals on main only where its goal (`goal`, its
    file, read from main before the work lands) lists them in `may_change`. A task of no goal may
    change none; `goal_problem` says why its goal could not be read. `where` names the work."""
    for path in paths:
        item = protected(path)
        if item is None or (goal is not None and goal_problem is None and item in may_change):
            continue
        if goal_problem is not None:
            why = goal_problem
        elif goal is not None:
            why = f"{goal} does not list {item} in may_change"
        else:
            why = f"{task_id} has no goal, and only a goal's may_change lets work change {item}"
        raise RuleViolation(where, f"work for {task_id} changes {path}: {why}",
                            f"a goal lets its work change settings, prompts or goals with may_change: [{item}] "
                            "in its front matter on main; or change it in a commit of your own, without a "
                            "Gitswarm-Task trailer")
