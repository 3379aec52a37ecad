"""What a run of benchmarks/train.py did, read from its hub afterwards: git alone, no rerun.

- The board's history (`git log tasks`): every transition is one commit with the trailers
  Gitswarm-Action and Gitswarm-Task, its committer time the moment it happened (1 s resolution).
  A worker is busy on a task from its `claim` to its next `handoff`, `complete`, `fail` or
  `release` of that task.
- main's reflog on the hub (`logs/refs/heads/main`): every tip main pointed to, and when (1 s). A
  task is on main from the first tip whose history holds a commit naming it (Gitswarm-Task).
- The trees of those tips: a tip fails the benchmark's test exactly when its tree has a file under
  `broken/`, so "tips of main that fail the test" is read from the trees, without running it.
- Each task's file `done/<name>` on main holds the agent's own start and end times (`date
  +%s.%N`), for the landing latency of direct landing (agent finished -> on main).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

FREE_ACTIONS = ("handoff", "complete", "fail", "release")  # the worker that held the claim is free again
BROKEN = "broken"  # the folder whose files make the benchmark's test fail
DONE = "done"  # the folder each task writes its own file into


@dataclass
class Attempt:
    task: str
    claimed: float
    freed: float | None = None  # None: still in hand when the run ended


@dataclass
class History:
    titles: dict[str, str]  # task id -> title
    status: dict[str, str]  # task id -> its status at the end
    attempts: list[Attempt] = field(default_factory=list)
    actions: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # task id -> [(time, action)]
    landed_at: dict[str, float] = field(default_factory=dict)  # task id -> when main first held it
    agent_end: dict[str, float] = field(default_factory=dict)  # task id -> its agent's end (landed tasks)
    tips: list[tuple[float, str]] = field(default_factory=list)  # (time, commit) main pointed to, in order
    failing_tips: list[str] = field(default_factory=list)
    untested_tips: list[str] = field(default_factory=list)  # tips without a Gitswarm-Tested trailer
    on_main: dict[str, list[str]] = field(default_factory=dict)  # task id -> commits on main naming it
    problems: list[str] = field(default_factory=list)


def git(hub: Path, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(hub), *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)} in {hub} failed: {proc.stderr.strip()}")
    return proc.stdout


def read(hub: Path, since: str) -> History:
    """Everything the measures need, from the hub; `since` is main's tip before the work started
    (the goal's commit): tips from there on are the work's."""
    import pygit2

    from gitswarm import task as T

    repo = pygit2.Repository(str(hub))
    board = repo.revparse_single("tasks").peel(pygit2.Commit)
    titles, status = {}, {}
    for folder in board.tree["tasks"] if "tasks" in board.tree else []:
        for entry in repo[folder.id]:
            t = T.parse(repo[entry.id].data, f"tasks/{folder.name}/{entry.name}")
            titles[t.id], status[t.id] = t.title, t.status
    h = History(titles, status)
    _board_history(hub, h)
    _main_history(repo, hub, since, h)
    repo.free()
    return h


def _board_history(hub: Path, h: History) -> None:
    fmt = "%ct%x09%(trailers:key=Gitswarm-Action,valueonly,separator=%x2C)%x09" \
          "%(trailers:key=Gitswarm-Task,valueonly,separator=%x2C)"
    open_claims: dict[str, Attempt] = {}
    for line in git(hub, "log", "--reverse", f"--format={fmt}", "tasks").splitlines():
        when, action, tasks = (line.split("\t") + ["", ""])[:3]
        for task in filter(None, tasks.split(",")):
            h.actions.setdefault(task, []).append((float(when), action))
            if action == "claim":
                open_claims[task] = Attempt(task, float(when))
                h.attempts.append(open_claims[task])
            elif action in FREE_ACTIONS and task in open_claims:
                open_claims.pop(task).freed = float(when)


def _main_history(repo, hub: Path, since: str, h: History) -> None:
    """main's tips from the reflog: each only a fast-forward of the one before, when each task
    first reached main, which tips fail the test (a file under broken/) or lack Gitswarm-Tested."""
    import pygit2

    moves = []
    for line in (hub / "logs" / "refs" / "heads" / "main").read_text().splitlines():
        head, _, _ = line.partition("\t")
        old, new, *rest = head.split()
        moves.append((old, new, float(rest[-2])))
    started = False
    for old, new, when in moves:
        if new == since:
            started = True
            continue
        if not started:
            continue
        if not repo.descendant_of(new, old):
            h.problems.append(f"main moved from {old[:10]} to {new[:10]}, which is not a fast-forward")
        h.tips.append((when, new))
        commit = repo[new]
        if BROKEN in commit.tree and len(repo[commit.tree[BROKEN].id]):
            h.failing_tips.append(new)
        if "Gitswarm-Tested:" not in commit.message:
            h.untested_tips.append(new)
        walker = repo.walk(new, pygit2.enums.SortMode.TOPOLOGICAL)
        walker.hide(old)
        for c in walker:
            for line in c.message.splitlines():
                if line.startswith("Gitswarm-Task: "):
                    task = line.split(": ", 1)[1].strip()
                    h.landed_at.setdefault(task, when)
    if moves and not started:
        h.problems.append(f"main's reflog never points at the goal's commit {since[:10]}")
    if not h.tips:
        return
    tip = repo[h.tips[-1][1]]
    walker = repo.walk(tip.id, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.hide(since)
    for c in walker:
        if len(c.parents) > 1:
            h.problems.append(f"main has a merge commit {str(c.id)[:10]}")
        for line in c.message.splitlines():
            if line.startswith("Gitswarm-Task: "):
                h.on_main.setdefault(line.split(": ", 1)[1].strip(), []).append(str(c.id))
    done = tip.tree[DONE] if DONE in tip.tree else None
    names = {title: task for task, title in h.titles.items()}
    for entry in repo[done.id] if done is not None else []:
        task = names.get(entry.name)
        stamps = repo[entry.id].data.split()
        if task and len(stamps) == 2:
            h.agent_end[task] = float(stamps[1])


def fsck(hub: Path) -> list[str]:
    proc = subprocess.run(["git", "--git-dir", str(hub), "fsck", "--connectivity-only", "--no-dangling",
                           "--no-progress"], capture_output=True, text=True)
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln and "unborn" not in ln]
    return [f"git fsck: {' / '.join(said)[:300]}"] if proc.returncode or said else []
