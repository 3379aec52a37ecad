"""The command line: a thin click layer over plain functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from . import events as spool
from . import task as T
from .board import Board
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_NOTHING_READY, BranchMoved, GitswarmError
from .tasklist import tasks_from_file

def _hub(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    from .remotes import resolve

    return resolve(value)


# HUB: a path, a URL, or a remote name of the clone this runs in (gitswarm/remotes.py). Where HUB is
# the last argument it may be left out: the hub of the clone (or the bare repository) this runs in.
REMOTE = click.argument("remote", metavar="HUB", callback=_hub)
HERE_OR_REMOTE = click.argument("remote", metavar="[HUB]", required=False, callback=_hub)
WORKER = click.option("--worker", "-w", required=True, envvar="GITSWARM_WORKER",
                      help="Who holds the claim (env GITSWARM_WORKER).")
TOKEN = click.option("--token", type=int, help="The claim's token, checked against the board's.")


def _json_flag(shape: str) -> Any:
    return click.option("--json", "as_json", is_flag=True, help=f"Print JSON for scripts: {shape}.")


def _say_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GitswarmError as e:
            from .logs import said_as_json

            if said_as_json(e.message, e.hint):  # serve/worker --log-format json: every line is an object
                ctx.exit(e.exit_code)
            click.echo(f"gitswarm: error: {e.message}", err=True)
            if e.hint:
                click.echo(f"hint: {e.hint}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:  # click would say "Aborted!" and exit 1, which is claim's "nothing ready"
            click.echo("gitswarm: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="gitswarm")
def cli() -> None:
    """Run many coding agents on one codebase, coordinated through git alone.

    HUB is any git remote holding a board: a path, file://, ssh://, git:// or https://, or a
    remote name (origin) of the clone you are in; left out where it is last, the hub of this clone.
    Exit codes: 0 done; 1 claim: no ready task (check: problems found); 2 an error (or a wrong
    usage); 3 the hub cannot be reached; serve --until-done: 4 a goal stopped; 130 Ctrl-C.
    """


@cli.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--hooks-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the hook shims into this folder instead of PATH/hooks (gitolite: docs/hosting.md).")
def init(path: Path, hooks_dir: Path | None) -> None:
    """Make PATH (new, or an existing bare repository) a hub: hooks, settings, branch tasks."""
    from .install import init as run_init

    done = run_init(path, hooks_dir)
    for line in done:
        click.echo(line)
    click.echo("nothing to change: already a gitswarm hub" if not done else f"{path} is ready")


@cli.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
def check(path: Path) -> None:
    """Check a clone's goals/*.md and .gitswarm.yaml as the hub will at push: every problem, exit 1 if any."""
    from .check import check_tree, report

    files, errors = check_tree(path)
    for line in report(errors):
        click.echo(line)
    click.echo(f"{len(errors)} problem(s) in {len(files)} file(s)" if errors else f"ok: {len(files)} file(s) checked")
    sys.exit(EXIT_INVALID if errors else 0)


@cli.group()
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
@_json_flag('{"tasks": [TASK, ...]}, each as in `task show --json`')
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
        return _say_json({"tasks": [t.to_dict() for t in added]})
    for t in added:
        click.echo(t.id)


@task.command("show")
@REMOTE
@click.argument("task_id", metavar="ID")
@_json_flag("the task's fields (id, title, status, attempts, claim, result, ...)")
def task_show(remote: str, task_id: str, as_json: bool) -> None:
    """Print a task's file."""
    with Board(remote) as board:
        board.refresh()
        found = board.get(task_id)
    if as_json:
        return _say_json(found.to_dict())
    click.echo(T.dump(found).decode(), nl=False)


@cli.command()
@HERE_OR_REMOTE
@WORKER
@click.option("--kind", type=click.Choice(T.KINDS), default=None, help="Only tasks of this kind.")
@click.option("--goal", default=None, help="Only tasks of this goal.")
@click.option("--lease", default="15m", show_default=True,
              help="How long the claim holds without a heartbeat (30s, 15m, 2h).")
@_json_flag('{"task": TASK} (its claim.token is the claim\'s fencing token), {"task": null} when none is ready')
def claim(remote: str, worker: str, kind: str | None, goal: str | None, lease: str, as_json: bool) -> None:
    """Claim the next ready task and print its id; exit 1 when none is ready, 3 when the hub cannot be reached."""
    with Board(remote) as board:
        got = board.claim(worker, kinds=[kind] if kind else None, goal=goal, lease=_seconds(lease, "--lease"))
    if as_json:
        _say_json({"task": got.to_dict() if got else None})
    if got is None:
        click.echo(f"gitswarm: no ready task on {remote}", err=True)
        sys.exit(EXIT_NOTHING_READY)
    if not as_json:
        click.echo(got.id)


@cli.command()
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


@cli.command()
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


@cli.command()
@REMOTE
@click.argument("task_id", metavar="ID")
@WORKER
@TOKEN
def release(remote: str, task_id: str, worker: str, token: int | None) -> None:
    """Give a task you hold back to the board (open again)."""
    with Board(remote) as board:
        board.release(task_id, worker, token=token)
    click.echo(f"{task_id} released")


@cli.command()
@HERE_OR_REMOTE
@WORKER
def heartbeat(remote: str, worker: str) -> None:
    """Renew the leases of the claims a worker holds (its heartbeat ref, on the hub's clock)."""
    with Board(remote) as board:
        board.heartbeat([worker])
    click.echo(f"{worker}: heartbeat")


@cli.command()
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


def _seconds(text: str, option: str) -> int:
    return max(1, int(round(_duration(text, option))))


def _duration(text: str, option: str) -> float:
    from .validate import parse_duration

    try:
        value = parse_duration(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise GitswarmError(f"{option}: {text!r} is not a duration", "write 0.5s, 30s, 15m or 2h")
    return value


@cli.command()
@REMOTE
@click.argument("task_id", metavar="ID")
def reopen(remote: str, task_id: str) -> None:
    """Open a failed task again."""
    with Board(remote) as board:
        board.reopen(task_id)
    click.echo(f"{task_id} open")


@cli.command()
@REMOTE
@click.argument("task_id", metavar="ID")
@click.option("--reason", "-m", required=True, help="Why it is cancelled.")
def cancel(remote: str, task_id: str, reason: str) -> None:
    """Cancel an open or claimed task."""
    with Board(remote) as board:
        board.cancel(task_id, reason)
    click.echo(f"{task_id} cancelled")


@cli.command()
@HERE_OR_REMOTE
@_json_flag('{"tasks": [...], "goals": [...], "queue": {...}, "ready": [ids], "retries": {...}}')
def status(remote: str, as_json: bool) -> None:
    """The board: goals, the landing queue and its train, and a table of tasks by state."""
    from .statusview import render

    out, problems = render(remote, as_json)
    click.echo(out)
    for p in problems:
        click.echo(f"unreadable: {p}", err=True)


@cli.command()
@REMOTE
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("run.html"),
              show_default=True, help="Where to write the page.")
@click.option("--commit-url", default=None, metavar="TEMPLATE",
              help="Link commits to a forge, e.g. https://example.org/repo/commit/{sha}.")
def report(remote: str, output: Path, commit_url: str | None) -> None:
    """One self-contained HTML page of a run, from git alone: timeline, throughput, verdicts, failures."""
    from .report import build
    from .reportpage import write

    found = build(remote)
    write(found, output, commit_url)
    click.echo(f"wrote {output}: {found.summary()}")


@cli.command()
@REMOTE
@click.argument("task_id", metavar="TASK")
@click.option("--attempt", type=int, help="Show this attempt's runs (default: the last attempt's).")
def runs(remote: str, task_id: str, attempt: int | None) -> None:
    """The agent runs of a task's attempts, kept at refs/gitswarm/runs/TASK/<attempt>."""
    from .runlog import show

    click.echo(show(remote, task_id, attempt))


@cli.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def events(path: Path, as_json: bool) -> None:
    """List the events waiting in a hub's spool (PATH: the bare repository)."""
    bad: list[tuple[str, str]] = []
    pending = spool.pending(path, bad)
    for name, why in bad:  # malformed: moved aside so that it holds nothing back
        click.echo(f"{name}: quarantined in {spool.spool_dir(path) / spool.BAD}: {why}", err=True)
    if as_json:
        click.echo(json.dumps({"events": [e.to_dict() for e in pending]}, indent=2))
        return
    for e in pending:
        click.echo(f"{e.name}  {e.ref}  {e.old[:10]} -> {e.new[:10]}" + (f"  by {e.pusher}" if e.pusher else ""))
    if not pending:
        click.echo("no pending events")


@cli.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def pushers(path: Path, as_json: bool) -> None:
    """List which identity each worker name is bound to on a hub (PATH: the bare repository)."""
    from .identity import bindings

    found = bindings(path)
    if as_json:
        click.echo(json.dumps({"pushers": found}, indent=2))
        return
    for worker, who in found.items():
        click.echo(f"{worker}  {who}")
    if not found:
        click.echo("no worker is bound to an identity (no push came with one)")


TRAIN_SLOTS = click.option("--train-slots", type=click.IntRange(1, 16), default=1, show_default=True,
                           help="Batches the landing train tests at once (the next on top of the one in test).")
TRAIN_LEASE = click.option("--train-lease", default="60s", show_default=True,
                           help="Silence after which another process may take the landing train over.")


def _output_options(command: Any) -> Any:
    """--log-format, -v, -q, --plain: how `serve` and `worker` say what happens (gitswarm/logs.py,
    gitswarm/liveview.py)."""
    for option in reversed((
            click.option("--log-format", type=click.Choice(["plain", "json"]), default="plain", show_default=True,
                         envvar="GITSWARM_LOG_FORMAT",
                         help="plain: a line per event; json: an object per line (time, level, logger, message, "
                              "agent, task, goal). Env GITSWARM_LOG_FORMAT."),
            click.option("--verbose", "-v", is_flag=True, help="Debug lines too (the metering proxy's requests...)."),
            click.option("--quiet", "-q", is_flag=True, help="Warnings and errors only."),
            click.option("--plain", "--no-live", "plain", is_flag=True,
                         help="Lines only, no live view on a terminal (NO_COLOR=1 keeps the view, without colour)."))):
        command = option(command)
    return command


def _log_setup(log_format: str, verbose: bool, quiet: bool) -> Any:
    from .logs import setup

    return setup(log_format, -1 if quiet else 1 if verbose else 0)


@cli.command()
@click.argument("hub", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workers", "-n", type=int, default=None,
              help="Worker agents in this process (default: workers in .gitswarm.yaml, else 4).")
@click.option("--planners", type=int, default=2, show_default=True, help="Sub-planner agents in this process.")
@click.option("--until-done", is_flag=True, help="Exit once no goal is active: 0 all done, 1 one invalid, 4 one stopped.")
@click.option("--id", "name", default=None, help="This daemon's name, prefix of its agents' names (default: host).")
@TRAIN_SLOTS
@TRAIN_LEASE
@_output_options
def serve(hub: Path, workers: int | None, planners: int, until_done: bool, name: str | None, train_slots: int,
          train_lease: str, log_format: str, verbose: bool, quiet: bool, plain: bool) -> None:
    """Run the swarm on a hub: events to planners, workers, the landing train and the judge. Ctrl-C stops it.

    On a terminal a live view shows each goal, each agent, the landing queue and the last landings
    and failures, the log scrolling above it; elsewhere (CI, the journal) a line per event."""
    from .daemon import Daemon
    from .liveview import run_with_view

    handler = _log_setup(log_format, verbose, quiet)
    daemon = Daemon(hub, workers=workers, planners=planners, until_done=until_done, name=name,
                    train_slots=train_slots, train_lease=_seconds(train_lease, "--train-lease"))
    sys.exit(run_with_view(daemon.run, handler, daemon.board, daemon.pool.agent_names, f"serve {daemon.hub}",
                           clocks=daemon.clocks, train=lambda: daemon.pool.train_runner, enabled=not plain))


@cli.command("worker")
@HERE_OR_REMOTE
@click.option("--roles", default="worker", show_default=True,
              help="The roles this machine takes, comma-separated: worker, planner (sub-planners).")
@click.option("--workers", "-n", type=int, default=4, show_default=True, help="Worker agents, with the worker role.")
@click.option("--planners", type=int, default=1, show_default=True, help="Sub-planner agents, with the planner role.")
@click.option("--id", "name", default=None, help="This pool's name, prefix of its agents' names (default: host).")
@click.option("--lease", default="15m", show_default=True, help="The lease of each claim (renewed by heartbeats).")
@click.option("--poll", default="1s", show_default=True,
              help="While idle, ask the hub (git ls-remote) this soon after the board moved...")
@click.option("--poll-max", default="30s", show_default=True, help="...then twice as long each time, up to this.")
@click.option("--train", is_flag=True, help="Also run the hub's landing train when nobody else holds it.")
@TRAIN_SLOTS
@TRAIN_LEASE
@_output_options
def worker_cmd(remote: str, roles: str, workers: int, planners: int, name: str | None, lease: str, poll: str,
               poll_max: str, train: bool, train_slots: int, train_lease: str, log_format: str, verbose: bool,
               quiet: bool, plain: bool) -> None:
    """Work tasks of a hub from this machine (the hub runs `gitswarm serve`). Ctrl-C stops it.

    REMOTE is any URL git pushes to: ssh://host/path, https://host/path, git://host/path, a path.
    A hub on this machine is watched; one elsewhere is polled, less often while nothing moves."""
    from .liveview import run_with_view
    from .pool import Pool

    handler = _log_setup(log_format, verbose, quiet)
    taken = {r.strip() for r in roles.split(",") if r.strip()}
    if not taken or taken - {"worker", "planner"}:
        raise GitswarmError(f"--roles: {roles!r} names no role or an unknown one",
                            "give worker, planner or worker,planner (the judge runs with `gitswarm serve`)")
    pool = Pool(remote, workers=workers if "worker" in taken else 0, planners=planners if "planner" in taken else 0,
                name=name, lease=_seconds(lease, "--lease"), poll=_duration(poll, "--poll"),
                poll_max=_duration(poll_max, "--poll-max"), train=train, train_slots=train_slots,
                train_lease=_seconds(train_lease, "--train-lease"))
    sys.exit(run_with_view(pool.run, handler, pool.board, pool.agent_names,
                           f"worker {pool.name} on {pool.board.remote}", train=lambda: pool.train_runner,
                           enabled=not plain))


@cli.command("judge")
@click.argument("hub", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--goal", "goals", multiple=True, help="Only this goal (default: every active goal).")
@_json_flag('{"verdicts": [{"goal", "decision" (null: not active), "cycle", "reasons", "tokens"}, ...]}')
def judge_cmd(hub: Path, goals: tuple[str, ...], as_json: bool) -> None:
    """One judge pass over the hub's active goals (for cron or a systemd timer)."""
    import tempfile

    from .roles import Swarm
    from .roles.judge import judge

    with Board(str(hub)) as board, tempfile.TemporaryDirectory(prefix="gitswarm-judge-") as work:
        board.refresh()
        names = goals or [n for n, r in board.records().items() if r.status == "active"]
        if not names and not as_json:
            click.echo(f"no active goal on {hub}")
        swarm = Swarm(board, Path(work))
        verdicts = {}
        for name in names:
            verdicts[name] = v = judge(swarm, name)
            if not as_json:
                click.echo(f"{name}: {v.decision if v else 'not active'}")
    if as_json:
        return _say_json({"verdicts": [{"goal": name, "decision": v.decision if v else None,
                                        "cycle": v.cycle if v else None, "reasons": v.reasons if v else None,
                                        "tokens": v.tokens if v else 0} for name, v in verdicts.items()]})


@cli.command("eval")
@click.argument("suite", required=False)
@click.option("--trials", "-k", type=click.IntRange(1, 1000), default=1, show_default=True, help="Trials per goal.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Trials at once (default: cores / 2).")
@click.option("--workers", "-n", type=click.IntRange(1, 64), default=2, show_default=True, help="Workers per serve.")
@click.option("--matrix", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Variants to run side by side (variants: {NAME: {settings: ..., price: ..., workers: ...}}).")
@click.option("--settings", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A .gitswarm.yaml every variant starts from.")
@click.option("--only", default="", help="Only these goals of the suite, comma-separated.")
@click.option("--price", type=click.FloatRange(0), default=None, help="USD per million tokens, for cost per success.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-results"),
              show_default=True, help="Where results.json, results.md and results.png go.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build the trials' hubs here and keep them (default: a temporary folder, removed).")
@click.option("--timeout", default=None, help="A trial's wall time for every goal (default: each goal's, 20m).")
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Run nothing: rebuild the table and the PNG from a results.json.")
def eval_cmd(suite: str | None, trials: int, jobs: int | None, workers: int, matrix: Path | None,
             settings: Path | None, only: str, price: float | None, out: Path, workdir: Path | None,
             timeout: str | None, from_file: Path | None) -> None:
    """Run a suite of goals (a folder, or a shipped suite: builtin) on fresh hubs and measure them
    by hidden checks: success with a 95% interval, time, tokens, cost, the judge's accuracy."""
    from .eval import command

    sys.exit(command(suite, trials=trials, jobs=jobs, workers=workers, matrix=matrix, settings=settings, only=only,
                     price=price, out=out, workdir=workdir, from_file=from_file, say=click.echo,
                     timeout=_duration(timeout, "--timeout") if timeout else None))


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to build the demo (default: a new temporary folder).")
@click.option("--workers", "-n", type=int, default=4, show_default=True)
def demo(directory: Path | None, workers: int) -> None:
    """The whole flow, offline and without a model: hub, goal push, workers, judge."""
    from .demo import run_demo

    sys.exit(run_demo(directory, workers=workers, say=lambda line: click.echo(line)))


def main() -> None:
    try:
        cli(prog_name="gitswarm")
    except Exception:  # a bug: its traceback, and the code of a failure, never claim's "nothing ready"
        import traceback

        traceback.print_exc()
        sys.exit(EXIT_ERROR)
