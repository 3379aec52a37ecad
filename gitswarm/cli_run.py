"""The commands that run agents: serve, worker, judge, eval, demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .board import Board
from .cli_args import HERE_OR_REMOTE, TRAIN_LEASE, TRAIN_SLOTS, duration, json_flag, log_setup, output_options, \
    say_json, seconds
from .errors import GitswarmError


@click.command()
@click.argument("hub", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workers", "-n", type=int, default=None,
              help="Worker agents in this process (default: workers in .gitswarm.yaml, else 4).")
@click.option("--planners", type=int, default=2, show_default=True, help="Sub-planner agents in this process.")
@click.option("--until-done", is_flag=True, help="Exit once no goal is active: 0 all done, 1 one invalid, 4 one stopped.")
@click.option("--id", "name", default=None, help="This daemon's name, prefix of its agents' names (default: host).")
@TRAIN_SLOTS
@TRAIN_LEASE
@output_options
def serve(hub: Path, workers: int | None, planners: int, until_done: bool, name: str | None, train_slots: int,
          train_lease: str, log_format: str, verbose: bool, quiet: bool, plain: bool) -> None:
    """Run the swarm on a hub: events to planners, workers, the landing train and the judge. Ctrl-C stops it.

    On a terminal a live view shows each goal, each agent, the landing queue and the last landings
    and failures, the log scrolling above it; elsewhere (CI, the journal) a line per event."""
    from .daemon import Daemon
    from .liveview import run_with_view

    handler = log_setup(log_format, verbose, quiet)
    daemon = Daemon(hub, workers=workers, planners=planners, until_done=until_done, name=name,
                    train_slots=train_slots, train_lease=seconds(train_lease, "--train-lease"))
    sys.exit(run_with_view(daemon.run, handler, daemon.board, daemon.pool.agent_names, f"serve {daemon.hub}",
                           clocks=daemon.clocks, train=lambda: daemon.pool.train_runner, enabled=not plain))


@click.command("worker")
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
@output_options
def worker_cmd(remote: str, roles: str, workers: int, planners: int, name: str | None, lease: str, poll: str,
               poll_max: str, train: bool, train_slots: int, train_lease: str, log_format: str, verbose: bool,
               quiet: bool, plain: bool) -> None:
    """Work tasks of a hub from this machine (the hub runs `gitswarm serve`). Ctrl-C stops it.

    REMOTE is any URL git pushes to: ssh://host/path, https://host/path, git://host/path, a path.
    A hub on this machine is watched; one elsewhere is polled, less often while nothing moves."""
    from .liveview import run_with_view
    from .pool import Pool

    handler = log_setup(log_format, verbose, quiet)
    taken = {r.strip() for r in roles.split(",") if r.strip()}
    if not taken or taken - {"worker", "planner"}:
        raise GitswarmError(f"--roles: {roles!r} names no role or an unknown one",
                            "give worker, planner or worker,planner (the judge runs with `gitswarm serve`)")
    pool = Pool(remote, workers=workers if "worker" in taken else 0, planners=planners if "planner" in taken else 0,
                name=name, lease=seconds(lease, "--lease"), poll=duration(poll, "--poll"),
                poll_max=duration(poll_max, "--poll-max"), train=train, train_slots=train_slots,
                train_lease=seconds(train_lease, "--train-lease"))
    sys.exit(run_with_view(pool.run, handler, pool.board, pool.agent_names,
                           f"worker {pool.name} on {pool.board.remote}", train=lambda: pool.train_runner,
                           enabled=not plain))


@click.command("judge")
@click.argument("hub", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--goal", "goals", multiple=True, help="Only this goal (default: every active goal).")
@json_flag('{"verdicts": [{"goal", "decision" (null: not active), "cycle", "reasons", "tokens"}, ...]}')
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
        return say_json({"verdicts": [{"goal": name, "decision": v.decision if v else None,
                                        "cycle": v.cycle if v else None, "reasons": v.reasons if v else None,
                                        "tokens": v.tokens if v else 0} for name, v in verdicts.items()]})


@click.command("eval")
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
                     timeout=duration(timeout, "--timeout") if timeout else None))


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to build the demo (default: a new temporary folder).")
@click.option("--workers", "-n", type=int, default=4, show_default=True)
def demo(directory: Path | None, workers: int) -> None:
    """The whole flow, offline and without a model: hub, goal push, workers, judge."""
    from .demo import run_demo

    sys.exit(run_demo(directory, workers=workers, say=lambda line: click.echo(line)))


COMMANDS = (serve, worker_cmd, judge_cmd, eval_cmd, demo)
