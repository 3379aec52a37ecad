"""What the command line's commands share: the HUB argument, the worker and token options, --json,
durations, and `serve`'s and `worker`'s output and train options."""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import GitswarmError


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


def json_flag(shape: str) -> Any:
    return click.option("--json", "as_json", is_flag=True, help=f"Print JSON for scripts: {shape}.")


def say_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def seconds(text: str, option: str) -> int:
    return max(1, int(round(duration(text, option))))


def duration(text: str, option: str) -> float:
    from .validate import parse_duration

    try:
        value = parse_duration(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise GitswarmError(f"{option}: {text!r} is not a duration", "write 0.5s, 30s, 15m or 2h")
    return value


TRAIN_SLOTS = click.option("--train-slots", type=click.IntRange(1, 16), default=1, show_default=True,
                           help="Batches the landing train tests at once (the next on top of the one in test).")
TRAIN_LEASE = click.option("--train-lease", default="60s", show_default=True,
                           help="Silence after which another process may take the landing train over.")


def output_options(command: Any) -> Any:
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


def log_setup(log_format: str, verbose: bool, quiet: bool) -> Any:
    from .logs import setup

    return setup(log_format, -1 if quiet else 1 if verbose else 0)
