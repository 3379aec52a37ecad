"""The command line: a thin click layer over plain functions. Here the `gitswarm` group, the hub's
setup and the commands that read a hub; the board's commands are in cli_board.py, those that run
agents in cli_run.py, what they share in cli_args.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__, cli_board, cli_run
from . import events as spool
from .cli_args import HERE_OR_REMOTE, REMOTE, json_flag
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, GitswarmError


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


@cli.command()
@HERE_OR_REMOTE
@json_flag('{"tasks": [...], "goals": [...], "queue": {...}, "ready": [ids], "retries": {...}}')
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


for _command in cli_board.COMMANDS + cli_run.COMMANDS:
    cli.add_command(_command)


def main() -> None:
    try:
        cli(prog_name="gitswarm")
    except Exception:  # a bug: its traceback, and the code of a failure, never claim's "nothing ready"
        import traceback

        traceback.print_exc()
        sys.exit(EXIT_ERROR)
