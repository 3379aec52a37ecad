"""What every role stands on: the hub's board, main as the mirror last fetched it, the settings and
prompts found there, and how to run an agent for a role (a model through `openai`, or a command).
Each role (planner, worker, judge) is one module with one short loop."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import git, prompts, sandbox
from ..agents import AgentResult, ChatModel, LimitExceeded, Limits, Step, Tool, run_agent
from ..agents.command import run_command_agent, run_killable
from ..board import Board
from ..config import CONFIG_PATH, Config, RoleConfig, load_config
from ..endpoints import Endpoints, load_host
from ..errors import BranchMoved, GitswarmError
from ..goal import Goal, goal_path, parse_goal
from ..sandbox import agent_env
from ..text import printable
from ..watch import Signal
from .turns import MainWatch, Turns

SYSTEM = {
    "planner": "You are a gitswarm planner: you turn a goal into tasks for coding agents.",
    "worker": "You are a gitswarm worker: you carry out one task in a git repository.",
    "judge": "You are a gitswarm judge: you decide whether a goal is met.",
}


def default_model(role: RoleConfig) -> ChatModel:
    """The role's model at the host endpoint its settings chose (gitswarm.config), with the key in
    that endpoint's variable of the host's environment, and no other: an endpoint without one gets
    a placeholder, never the client's own $OPENAI_API_KEY."""
    from ..agents.openai_backend import PLACEHOLDER_KEY, OpenAIModel

    if not role.base_url:
        raise GitswarmError(f"no endpoint was chosen for model {role.model!r}",
                            "load the settings with the host's endpoints (gitswarm.config.load_config)")
    key = os.environ.get(role.api_key_env) if role.api_key_env else None
    return OpenAIModel(role.model or "gpt-4o-mini", base_url=role.base_url, api_key=key or PLACEHOLDER_KEY,
                       temperature=role.temperature)


class Stopping(Exception):
    """The swarm is stopping (or cannot go on): a worker hands its task back."""


def stderr_log(line: str) -> None:
    """One log line, written whole (threads share stderr), with what an agent's output may carry
    to the operator's terminal (escape sequences, control characters) taken out."""
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {printable(line, 1_000_000)}\n")
    sys.stderr.flush()


@dataclass
class Swarm:
    """The shared context of one process's agents."""

    board: Board
    workdir: Path
    log: Callable[[str], None] = stderr_log
    model_factory: Callable[[RoleConfig], ChatModel] = default_model
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: str | None = None  # why the swarm cannot go on (a refused model configuration)
    endpoints: Endpoints | None = None  # the host's model endpoints; None: read them (endpoints.load_host) when needed
    holding: set[str] = field(default_factory=set)  # agents holding a claim now: their heartbeats go out
    hidden: list[Path] = field(default_factory=list)  # what sandboxed agents must not see (the hub)

    def sandbox(self, cwd: Path) -> Callable[[list[str], list[Path]], list[str]]:
        """Wraps an agent's command line: the sandbox, with `cwd` the only writable folder and the
        mirror's git dir readable (`git log` and `git diff` work in a worktree)."""
        mirror = self.board.mirror.path
        return lambda argv, readable=(): sandbox.wrap(argv, cwd, self.hidden, [*readable, mirror])
    work_ready: Signal = field(default_factory=Signal)  # rung when the board moved: idle agents look again
    turns: Turns = field(default_factory=Turns)  # whose turn it is to land, oldest first (roles/turns.py)
    idle: float = 30.0  # seconds an idle agent sleeps at most between looks when nothing rings

    def sleep_idle(self, seen: int) -> None:
        """An agent that found nothing to claim: sleep until the board moves (work_ready rings past
        `seen`), a resting task may be retried, or `idle` seconds passed."""
        wake = self.board.next_rested()
        self.work_ready.wait(seen, self.idle if wake is None else max(0.05, min(self.idle, wake - time.time())))

    # ------------------------------------------------------------ main, as fetched

    def main_tip(self) -> str | None:
        return self.board.fetch_branch("main")

    def read_main(self, tip: str | None, path: str) -> str | None:
        if tip is None:
            return None
        data = git.read_file(self.board.mirror.repo, tip, path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def config(self, tip: str | None, goal: Goal | None = None) -> Config:
        """The settings on main at `tip` (with the goal's `models:`), their endpoints chosen among the
        host's. Raises ConfigInvalid (a file on main) or EndpointsInvalid (the host's file)."""
        if self.endpoints is None:
            try:
                self.endpoints = load_host()
            except GitswarmError as e:  # the host's own file: no agent of this swarm can run
                self.fatal = f"the host's model endpoints: {e}"
                self.stop.set()
                raise
        config = load_config(self.read_main(tip, CONFIG_PATH), CONFIG_PATH, self.endpoints)
        return config.for_goal(goal.models, goal.path) if goal else config

    def goal(self, tip: str | None, name: str) -> Goal:
        text = self.read_main(tip, goal_path(name))
        if text is None:
            raise GitswarmError(f"{goal_path(name)} is not on main", "push the goal file to main")
        return parse_goal(goal_path(name), text)

    def prompt(self, tip: str | None, role: str, variables: dict[str, str]) -> str:
        override = self.read_main(tip, f".gitswarm/prompts/{role}.md")
        return prompts.render(role, variables, {role: override} if override is not None else None)

    def main_log(self, tip: str | None, limit: int = 20) -> str:
        return "\n".join(git.log_lines(self.board.mirror.repo, tip, limit)) or "(no commits yet)"

    def repo_map(self, tip: str | None) -> str:
        return "\n".join(git.list_files(self.board.mirror.repo, tip)) if tip else "(empty repository)"

    # ------------------------------------------------------------ agents

    def run_agent(self, role: str, settings: RoleConfig, prompt: str, tools: list[Tool],
                  cwd: Path | None = None, command: str | None = None,
                  env: dict[str, str] | None = None) -> AgentResult:
        """Run one agent for a role: the `command` given (a goal's model-free task), the role's
        command backend, or its model. Stops early when the swarm is stopping. `env` is given
        to a command agent (how it answers: GITSWARM_TASKS_FILE for a planner)."""
        limits = Limits(max_steps=settings.max_steps, max_tokens=settings.max_tokens,
                        wall_time=settings.wall_time, max_output=settings.max_output)
        if command is not None or settings.backend == "command":
            where = cwd or self.workdir
            return run_command_agent(command or settings.command or "", prompt, where, limits,
                                     env={**agent_env(), **(env or {})},
                                     prompt_mode=settings.prompt_mode,  # type: ignore[arg-type]
                                     stop=self.stop, wrap=self.sandbox(where))

        def on_step(step: Step) -> None:
            if self.stop.is_set():
                raise LimitExceeded("stopped", "the swarm is stopping")

        return run_agent(self.model_factory(settings), SYSTEM[role], prompt, tools, limits, on_step=on_step)

    def run_check(self, command: str, cwd: Path, timeout: float = 1800.0, tip: str | None = None,
                  stop: threading.Event | None = None) -> tuple[bool, str]:
        """Run a goal's test or check command in the sandbox, killed whole at `timeout` (a failure)
        or when `stop` (default: the swarm's) is set (Stopping: neither a pass nor a failure);
        (passed, the tail of its output). With `tip` (main's tip the command runs on), it is also
        killed as soon as the hub's main moves past it (BranchMoved, neither a pass nor a failure:
        see roles/turns.py)."""
        stop = stop or self.stop
        watch = MainWatch(tip, self._hub_main, stop) if tip is not None else None
        with watch or contextlib.nullcontext():
            ran = run_killable(self.sandbox(cwd)(["/bin/sh", "-c", command]), cwd, agent_env(), timeout,
                               stop=watch or stop, keep=8000, merge=True)
        if ran.ended == "time":
            return False, f"timed out after {timeout:g}s\n{ran.stdout[-3000:]}"
        if ran.ended == "stopped":
            if stop.is_set() or watch is None:
                raise Stopping("the swarm is stopping: the command was killed")
            raise BranchMoved("main")
        return ran.code == 0, f"exit {ran.code}\n{ran.stdout[-4000:]}"

    def _hub_main(self) -> str | None:
        """main's tip on the hub now (`git ls-remote`, no objects fetched)."""
        return self.board.mirror.remote_refs("refs/heads/main").get("refs/heads/main")


def describe_tasks(tasks: list[Any]) -> str:
    """The goal's tasks as an agent reads them: one line each, with the result when ended."""
    if not tasks:
        return "(no tasks yet)"
    lines = []
    for t in tasks:
        line = f"- {t.id} [{t.status}] ({t.kind}) {t.title}"
        if t.result:
            said = t.result.get("summary") or t.result.get("reason") or ""
            line += f" -- {' '.join(said.split())[:300]}"
        lines.append(line)
    return "\n".join(lines)
