"""The commands that change or read one task: task add and show, claim, complete, fail, release,
heartbeat, reclaim, reopen, cancel. Each parses its arguments and calls the Board."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from . import task as T
from .board import Board
from .cli_args import HERE_OR_REMOTE, REMOTE, TOKEN, WORKER, json_flag, say_json, seconds
from .errors import EXIT_NOTHING_READY, BranchMoved, GitswarmError
from .tasklist import tasks_from_file


@click.group()
def task() -> None:
    """Add and inspect tasks."""


@task.command("add")
@HERE_OR_REMOTE
@click.option("--title", help="One line: what is to be done.")
@click.option("--description", "-d", default="", help="The whole task, for the agent that takes it.")
@click.option("--kind", type=click.Choice(T.KINDS), default="work", show_default=True)
@click.option("--depends-on", "depends_on", multiple=True, metavar="ID", help="A task that must be done first.")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher goes first.")
@click.option("--goal", default=None, help="The goal this task serves.")
@click.option("--parent", default=None, metavar="ID", help="The plan task this one came from.")
@click.option("--id", "task_id", default=None, help="Choose the id (t-...); a random one by default.")
@click.option("--from", "from_file", type=click.File("r"), default=None,
              help="A YAML list of tasks (title, description, kind, depends_on, priority, goal, parent, id), "
                   "added in one commit.")
@json_flag('{"tasks": [TASK, ...]}, each as in `task show --json`')
def task_add(remote: str, title: str | None, description: str, kind: str, depends_on: tuple[str, ...],
             priority: int, goal: str | None, parent: str | None, task_id: str | None, from_file: Any,
             as_json: bool) -> None:
    """Add a task (or many, --from FILE, in one commit); prints each new id."""
    if from_file is not None:
        new = tasks_from_file(from_file)
    elif title is None:
        raise GitswarmError("task add needs --title (or --from FILE)", "gitswarm task add HUB --title '...'")
    else:
        new = [T.new_task(title, description, kind=kind, goal=goal, parent=parent, depends_on=depends_on,
                          priority=priority, task_id=task_id)]
    with Board(remote) as board:
        added = board.add(new)
    if as_json:
        return say_json({"tasks": [t.to_dict() for t in added]})
    for t in added:
        click.echo(t.id)


@task.command("show")
@REMOTE
@click.argument("task_id", metavar="ID")
@json_flag("the task's fields (id, title, status, attempts, claim, result, ...)")
def task_show(remote: str, task_id: str, as_json: bool) -> None:
    """Print a task's file."""
    with Board(remote) as board:
        board.refresh()
        found = board.get(task_id)
    if as_json:
        return say_json(found.to_dict())
    click.echo(T.dump(found).decode(), nl=False)


@click.command()
@HERE_OR_REMOTE
@WORKER
@click.option("--kind", type=click.Choice(T.KINDS), default=None, help="Only tasks of this kind.")
@click.option("--goal", default=None, help="Only tasks of this goal.")
@click.option("--lease", default="15m", show_default=True,
              help="How long the claim holds without a heartbeat (30s, 15m, 2h).")
@json_flag('{"task": TASK} (its claim.token is the claim\'s fencing token), {"task": null} when none is ready')
def claim(remote: str, worker: str, kind: str | None, goal: str | None, lease: str, as_json: bool) -> None:
    """Claim the next ready task and print its id; exit 1 when none is ready, 3 when the hub cannot be reached."""
    with Board(remote) as board:
        got = board.claim(worker, kinds=[kind] if kind else None, goal=goal, lease=seconds(lease, "--lease"))
    if as_json:
        say_json({"task": got.to_dict() if got else None})
    if got is None:
        click.echo(f"gitswarm: no ready task on {remote}", err=True)
        sys.exit(EXIT_NOTHING_READY)
    if not as_json:
        click.echo(got.id)


@click.command()
@REMOTE
@click.argument("task_id", metavar="ID")
@WORKER
@click.option("--summary", "-m", required=True, help="What was done.")
@click.option("--commit", default=None, metavar="REV",
              help="Land this commit of the repository you run this from (HEAD, a branch, an id) on main, "
              "together with the completion; its message must end with the trailer Gitswarm-Task: ID.")
@TOKEN
def complete(remote: str, task_id: str, worker: str, summary: str, commit: str | None, token: int | None) -> None:
    """Mark a task you hold as done, landing its commit on main when given."""
    with Board(remote) as board:
        if commit is None:
            board.complete(task_id, worker, summary, token=token)
            click.echo(f"{task_id} done")
            return
        sha = board.mirror.take(Path.cwd(), commit)
        try:
            board.land(task_id, worker, sha, summary, token=token)
        except BranchMoved:
            raise GitswarmError(f"main has moved past the commit {sha[:10]} builds on",
                                "fetch main, rebase your commit onto it and run this again") from None
    click.echo(f"{task_id} done, {sha[:10]} landed on main")


@click.command()
@REMOTE
@click.argument("task_id", metavar="ID")
@WORKER
@click.option("--reason", "-m", required=True, help="Why it failed.")
@TOKEN
def fail(remote: str, task_id: str, worker: str, reason: str, token: int | None) -> None:
    """Mark a task you hold as failed."""
    with Board(remote) as board:
        board.fail(task_id, worker, reason, token=token)
    click.echo(f"{task_id} failed")


@click.command()
@REMOTE
@click.argument("task_id", metavar="ID")
@WORKER
@TOKEN
def release(remote: str, task_id: str, worker: str, token: int | None) -> None:
    """Give a task you hold back to the board (open again)."""
    with Board(remote) as board:
        board.release(task_id, worker, token=token)
    click.echo(f"{task_id} released")


@click.command()
@HERE_OR_REMOTE
@WORKER
def heartbeat(remote: str, worker: str) -> None:
    """Renew the leases of the claims a worker holds (its heartbeat ref, on the hub's clock)."""
    with Board(remote) as board:
        board.heartbeat([worker])
    click.echo(f"{worker}: heartbeat")


@click.command()
@click.argument("hub", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--max-attempts", type=int, default=3, show_default=True,
              help="Claims of a task before a lapse or a failure leaves it dead.")
def reclaim(hub: Path, max_attempts: int) -> None:
    """One pass: take back claims whose lease lapsed; retry failed tasks, or bury them when out of
    attempts. HUB is the bare repository (its reflogs are the clock)."""
    from .leases import reclaim_pass

    with Board(str(hub)) as board:
        changed = reclaim_pass(board, hub, max_attempts, log=click.echo)
        for problem in board.problems:  # files no pass can read: said, never silently skipped
            click.echo(f"skipped, does not parse: {problem}", err=True)
    if not changed:
        click.echo("nothing to reclaim")


@click.command()
@REMOTE
@click.argument("task_id", metavar="ID")
def reopen(remote: str, task_id: str) -> None:
    """Open a failed task again."""
    with Board(remote) as board:
        board.reopen(task_id)
    click.echo(f"{task_id} open")


@click.command()
@REMOTE
@click.argument("task_id", metavar="ID")
@click.option("--reason", "-m", required=True, help="Why it is cancelled.")
def cancel(remote: str, task_id: str, reason: str) -> None:
    """Cancel an open or claimed task."""
    with Board(remote) as board:
        board.cancel(task_id, reason)
    click.echo(f"{task_id} cancelled")


COMMANDS = (task, claim, complete, fail, release, heartbeat, reclaim, reopen, cancel)
