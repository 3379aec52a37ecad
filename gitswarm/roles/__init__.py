"""What every role stands on: the hub's board, main as the mirror last fetched it, the settings and
prompts found there, and how to run an agent for a role (a model through `openai`, or a command).
Each role (planner, worker, judge) is one module with one short loop."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .. import checkout, git, names, prompts, sandbox
from ..agents import AgentResult, ChatModel, LimitExceeded, Limits, ModelUnavailable, Step, Tool, contract, run_agent
from ..agents.backends import make_model
from ..agents.command import run_command_agent
from ..proc import run_killable
from ..board import Board
from ..config import CONFIG_PATH, Config, RoleConfig, load_config
from ..endpoints import Endpoints, load_host
from ..errors import BranchMoved, GitswarmError
from ..goal import Goal, goal_path, parse_goal
from ..logs import emit
from ..record import spent
from ..sandbox import agent_env
from ..watch import Signal
from .turns import MainWatch, Turns

class Stopping(Exception):
    """The swarm is stopping (or cannot go on): a worker hands its task back."""


def stderr_log(line: str) -> None:
    """One log entry, through the `gitswarm` logger (gitswarm/logs.py): written whole (threads share
    stderr), with what an agent's output may carry to the operator's terminal (escape sequences,
    control characters) taken out, at the level its words give it; in plain lines, those of a
    multi-line entry (a command's stderr) after its first are indented, so that each entry starts
    with its time."""
    emit(line)


@dataclass
class Swarm:
    """The shared context of one process's agents."""

    board: Board
    workdir: Path
    log: Callable[[str], None] = stderr_log
    model_factory: Callable[[RoleConfig], ChatModel] = make_model  # tests inject scripted models
    stop: threading.Event = field(default_factory=threading.Event)
    fatal: str | None = None  # why the swarm cannot go on (a refused model configuration)
    endpoints: Endpoints | None = None  # the host's model endpoints; None: read them (endpoints.load_host) when needed
    holding: set[str] = field(default_factory=set)  # agents holding a claim now: their heartbeats go out
    hidden: list[Path] = field(default_factory=list)  # what sandboxed agents must not see (the hub)
    meter: Any = None  # the metering proxy of this process's command agents (gitswarm.meter), once one ran
    _meter_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _metering: dict[str, set[Any]] = field(default_factory=dict, repr=False)  # goal -> its agents' sessions

    def sandbox(self, cwd: Path) -> Callable[..., list[str]]:
        """Wraps an agent's command line: the sandbox, with `cwd` the only writable folder and the
        mirror's git dir readable (`git log` and `git diff` work in a worktree)."""
        mirror = self.board.mirror.path
        return lambda argv, readable=(), writable=(): sandbox.wrap(argv, cwd, self.hidden, [*readable, mirror],
                                                                   writable)
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

    def prompt(self, tip: str | None, name: str, variables: dict[str, str], command: bool = False) -> str:
        """The prompt `name` (a role's: `<role>-command` for a `command` agent, a program), main's own
        when it has one in .gitswarm/prompts/."""
        name = prompts.prompt_name(name, command)
        override = self.read_main(tip, f"{prompts.OVERRIDE_DIR}/{name}.md")
        return prompts.render(name, variables, {name: override} if override is not None else None)

    def main_log(self, tip: str | None, limit: int = 20) -> str:
        return "\n".join(git.log_lines(self.board.mirror.repo, tip, limit)) or "(no commits yet)"

    def repo_map(self, tip: str | None) -> str:
        return "\n".join(git.list_files(self.board.mirror.repo, tip)) if tip else "(empty repository)"

    # ------------------------------------------------------------ agents

    def run_agent(self, role: str, settings: RoleConfig, prompt: str, tools: list[Tool], *, tip: str | None,
                  cwd: Path | None = None, command: str | None = None,
                  env: dict[str, str] | None = None, about: dict[str, str] | None = None) -> AgentResult:
        """Run one agent for a role: the `command` given (a goal's model-free task), the role's
        command backend, or its model (with the role's system prompt, main's at `tip` when it has
        one). Stops early when the swarm is stopping. `env` is given to a command agent (how it
        answers: GITSWARM_TASKS_FILE for a planner); `about` says what it works on (task_id,
        worker, goal: the contract's GITSWARM_TASK_ID, ... variables)."""
        limits = Limits.of(settings)
        if command is not None or settings.runs_command:
            return priced(self._run_command(role, settings, prompt, limits, cwd or self.workdir, command, env or {},
                                            about or {}), settings)

        def on_step(step: Step) -> None:
            if self.stop.is_set():
                raise LimitExceeded("stopped", "the swarm is stopping")

        system = self.prompt(tip, prompts.system_name(role), {})
        model = self.model_factory(settings)
        if getattr(model, "on_retry", False) is None:  # a model that tells its retries (OpenAIModel): say each
            who = (about or {}).get("worker") or role
            model.on_retry = lambda why, wait, n, of: self.log(  # type: ignore[attr-defined]
                f"{who}: model {settings.model!r} at {settings.base_url}: {why}; attempt {n} of {of} failed, "
                f"next at {time.strftime('%H:%M:%S', time.localtime(time.time() + wait))}")
        return priced(run_agent(model, system, prompt, tools, limits, on_step=on_step), settings)

    def _run_command(self, role: str, settings: RoleConfig, prompt: str, limits: Limits, where: Path,
                     command: str | None, env: dict[str, str], about: dict[str, str]) -> AgentResult:
        """A program as the agent (gitswarm.agents.contract). A goal's `run:` command reaches no
        model and no network; the role's command reaches its model through the metering proxy
        (gitswarm.meter), which holds the host's key, counts the tokens and keeps the exchanges."""
        line = command if command is not None else settings.command or ""
        network = "off" if command is not None else settings.network or "off"
        session = self._meter_session(role, settings, about) if command is None and settings.base_url \
            and network != "off" else None
        base_url = self.meter.base_url if session is not None and self.meter is not None else None

        def contract_env(run_dir: Path) -> dict[str, str]:
            return contract.environment(run_dir, role=role, task_id=about.get("task_id"), worker=about.get("worker"),
                                        goal=about.get("goal"), attempt=about.get("attempt"), model=settings.model if command is None else None,
                                        base_url=base_url, token=session.token if session else None)

        mirror = self.board.mirror.path
        shown = [mirror, *sandbox.executable_paths(line, agent_env().get("PATH", ""))]
        shadow = Path(tempfile.mkdtemp(prefix="gitswarm-git-")) if sandbox.mode() == "on" else None
        binds: list[tuple[Path, Path]] = []
        git_env: dict[str, str] = {}
        if shadow is not None:
            try:  # the agent may commit in its worktree: into a copy of its git admin folder
                copy, admin, git_env = checkout.shadow_admin(mirror, where, shadow)
                binds.append((copy, admin))
            except checkout.WorktreeChanged:  # not a worktree (a planner's folder): no git there
                pass

        def wrap(argv: list[str], readable: list[Path], writable: list[Path]) -> list[str]:
            return sandbox.wrap(argv, where, self.hidden, [*readable, *shown], [*writable, *([shadow] if binds else [])],
                                network=network, binds=binds,
                                meter_socket=self.meter.socket_path if session and self.meter else None,
                                meter_port=self.meter.port if session and self.meter else None)

        try:
            result = run_command_agent(line, prompt, where, limits, env={**agent_env(), **env, **git_env},
                                       prompt_mode=settings.prompt_mode,  # type: ignore[arg-type]
                                       stop=self.stop, wrap=wrap, contract=contract_env)
            if result.trace is not None and about.get("base"):
                commits = checkout.agent_commits(mirror, where, about["base"], shadow if binds else None)
                result = replace(result, trace=replace(result.trace, commits=commits))
        finally:
            if session is not None:
                session.close()
                self._metering.get(about.get("goal", ""), set()).discard(session)
            if shadow is not None:
                shutil.rmtree(shadow, ignore_errors=True)
        return metered(result, session, idle=session is not None and bool(session.unavailable)
                       and self._idle(result, where, about.get("base"), settings.ignore))

    def _idle(self, result: AgentResult, where: Path, base: str | None, ignore: tuple[str, ...]) -> bool:
        """Whether a command agent exited 0 having done nothing: no result file, its worktree as
        `base` left it (aider exits 0 so when its model is down). Unknown without a worktree."""
        if result.reason != "finished" or (result.trace is not None and result.trace.result is not None) or not base:
            return False
        try:
            return not checkout.changed(self.board.mirror.path, where, base, ignore)
        except GitswarmError:  # a worktree git refuses to look at: not idle, committing it fails saying why
            return False

    def _meter_session(self, role: str, settings: RoleConfig, about: dict[str, str]):
        """A metering session for one command agent's run: a token that reaches the role's endpoint
        (with the host's key) through the proxy, refused once the goal's budget is spent."""
        from ..meter import Meter

        with self._meter_lock:
            if self.meter is None:
                self.meter = Meter(self.log).start()
        goal = about.get("goal")
        key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        label = "/".join(v for v in (role, about.get("task_id"), about.get("worker")) if v)
        session = self.meter.open(label=label, upstream=settings.base_url or "", api_key=key, model=settings.model,
                                  allow=(lambda: self._budget_refusal(goal)) if goal else (lambda: None))
        session.earlier = int(about.get("spent") or 0)  # spent by the task, not on the board yet
        if goal:
            self._metering.setdefault(goal, set()).add(session)
        return session

    def _budget_refusal(self, goal: str) -> str | None:
        """Why a command agent of `goal` may not call its model now (its budget is spent), or None.
        Counts what the board says it spent and what this process's agents of it spend right now."""
        rec = self.board.records().get(goal)
        if rec is None or rec.budget is None:
            return None
        live = sum(s.earlier + s.tokens_in + s.tokens_out for s in list(self._metering.get(goal, ())))
        used = spent(rec, self.board.tasks()) + live
        if used < rec.budget:
            return None
        return f"goal {goal}: its token budget is spent ({used} of {rec.budget} tokens)"

    def unresolved(self, goal: Goal, settings: Config) -> GitswarmError | None:
        """Whether a program the goal's commands name is missing from the sandbox that command
        runs in (gitswarm.resolve): its test and check, its tasks' `run:`, and the command of each
        command role it uses. None when every one resolves."""
        from ..resolve import Command, unresolved

        path_env, mirror = agent_env().get("PATH", ""), self.board.mirror.path
        with tempfile.TemporaryDirectory(prefix="gitswarm-resolve-", dir=self.workdir if self.workdir.is_dir()
                                         else None) as folder:
            cwd = Path(folder)

            def as_agent(*lines: str) -> Callable[[list[str]], list[str]]:  # as _run_command shows them
                shown = [mirror, *(p for line in lines for p in sandbox.executable_paths(line, path_env))]
                return lambda argv: sandbox.wrap(argv, cwd, self.hidden, shown)

            checks, runs = self.sandbox(cwd), as_agent(*(t.run for t in goal.tasks if t.run))
            commands = [Command(goal.path, name, line, checks) for name, line in (("test", goal.test),
                                                                                  ("check", goal.check)) if line]
            commands += [Command(goal.path, f"tasks[{i}].run", t.run, runs) for i, t in enumerate(goal.tasks) if t.run]
            uses = {"planner": not goal.tasks, "worker": not goal.tasks or any(not t.run for t in goal.tasks),
                    "judge": not goal.check}  # a listed goal needs no planner; run: tasks no worker; check: no judge
            for role in (r for r, used in uses.items() if used):
                line = settings.role(role).command
                if settings.role(role).runs_command and line:
                    own = "command" in (goal.models.get(role) or {})
                    commands.append(Command(goal.path if own else CONFIG_PATH,
                                            f"models.{role}.command" if own else f"{role}.command", line,
                                            as_agent(line)))
            return unresolved(commands, cwd)

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
        return self.board.mirror.remote_refs(names.MAIN).get(names.MAIN)


def priced(result: AgentResult, settings: RoleConfig) -> AgentResult:
    """The run with its cost in USD: at the role's `price`, else what the endpoint or agent said."""
    cost = settings.cost(result.tokens_in, result.tokens_out, result.cost)
    return result if cost == result.cost else replace(result, cost=cost)


def metered(result: AgentResult, session: Any, idle: bool = False) -> AgentResult:
    """A command agent's result with what the metering proxy saw: its tokens (the proxy's count,
    when the agent called its model through it, else what the agent reported), the model, the
    exchanges as the run's transcript; a run that failed while the endpoint was down is the
    model's fault (ModelUnavailable: the task goes back), and so is an `idle` one (exit 0, no
    result file, nothing changed: aider's way when its model is down); one refused for the budget
    goes back."""
    if session is None:
        return result
    changes: dict[str, Any] = {}
    if session.calls:  # the endpoint's word on the metered calls (cost too), not the agent's own figures
        changes.update(tokens_in=session.tokens_in, tokens_out=session.tokens_out, cost=session.cost)
    if result.model == "command":
        changes["model"] = ",".join(sorted(session.models)) or "command"  # what it called, if anything
    if result.trace is not None:
        changes["trace"] = replace(result.trace, transcript=session.transcript())
    if result.reason in ("error", "failed") and session.refused:
        changes.update(reason="handback", summary=f"{session.refused}\n{result.summary}")
    elif result.reason == "error" and session.unavailable:
        changes["error"] = ModelUnavailable(f"the model endpoint is unavailable: {session.unavailable}")
    elif result.reason == "finished" and idle and session.unavailable:
        changes["error"] = ModelUnavailable(f"the agent exited 0 having changed nothing, and its model endpoint is "
                                            f"unavailable: {session.unavailable}")
    return replace(result, **changes)


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
