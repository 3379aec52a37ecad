"""The planner: sees the goal, a map of main, the goal's tasks and main's recent log, and answers by
creating tasks (one commit on `tasks`). `kind: plan` tasks hand an area to a sub-planner, which
planner threads claim and plan the same way, down to the goal's max_depth. A goal that lists its
tasks in its front matter needs no model: planning adds those not yet on the board."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..board import Board
from ..errors import GitswarmError
from ..goal import Goal
from ..task import Task, UnknownDependency, dependency_id, new_task, title_index
from ..taskitem import ItemFields
from ..yamlfile import load_yaml
from . import Swarm, describe_tasks
from ..agents import AgentResult
from ..agents.tools import planner_tools


def run(swarm: Swarm, name: str) -> None:
    """Claim plan tasks (sub-planners) until the swarm stops."""
    while not swarm.stop.is_set():
        seen = swarm.work_ready.generation
        swarm.holding.add(name)  # from before the claim: see Pool.release_idle_claims
        task = swarm.board.claim(name, kinds=["plan"])
        if task is None:
            swarm.holding.discard(name)
            swarm.sleep_idle(seen)
            continue
        swarm.log(f"{name}: planning area {task.id} {task.title!r}")
        try:
            summary, tokens, cost = plan(swarm, task.goal, area=task, planner=name) if task.goal else ("no goal", 0, None)
            swarm.board.complete(task.id, name, summary or "planned", token=task.claim.token, tokens=tokens, cost=cost)
        except Exception as e:
            reason = e.message if isinstance(e, GitswarmError) else f"{type(e).__name__}: {e}"
            swarm.log(f"{name}: planning {task.id} failed: {reason}")
            try:
                swarm.board.fail(task.id, name, reason[:4000], token=task.claim.token)
            except GitswarmError:
                pass
        finally:
            swarm.holding.discard(name)


def depth_of(board: Board, task: Task | None) -> int:
    """How deep an area lies: the root planner is depth 0, each plan task above adds one."""
    by_id = {t.id: t for t in board.tasks()}
    depth, seen = 0, set()
    while task is not None and task.id not in seen:
        seen.add(task.id)
        depth += task.kind == "plan"
        task = by_id.get(task.parent) if task.parent else None
    return depth


def plan(swarm: Swarm, goal_name: str, area: Task | None = None,
         planner: str = "planner") -> tuple[str, int, float | None]:
    """Plan a goal (or an area of it). Returns (summary, tokens spent, cost in USD or None)."""
    tip = swarm.main_tip()
    goal = swarm.goal(tip, goal_name)
    board = swarm.board
    board.refresh()
    if goal.tasks:
        return _add_listed(swarm, goal), 0, None
    depth = depth_of(board, area)
    max_depth = goal.max_depth if goal.max_depth is not None else swarm.config(tip).max_depth
    mine = [t for t in board.tasks() if t.goal == goal.name]
    created: list[Task] = []

    def create(items: list[dict[str, Any]]) -> str:
        try:
            tasks, known = tasks_from_call(goal, items, area, depth, board.tasks(), max_depth)
            created.extend(board.add(tasks))
        except GitswarmError as e:  # a bad title, a refused add: the model reads why and tries again
            raise ValueError(str(e)) from None
        swarm.work_ready.set()
        said = ["created " + ", ".join(f"{t.id} ({t.title})" for t in tasks)] if tasks else []
        if known:
            said.append("already on the board, not added again: " + ", ".join(f"{t.id} ({t.title})" for t in known))
        return "; ".join(said)

    settings = swarm.config(tip, goal).planner
    prompt = swarm.prompt(tip, "planner", {
        "goal_name": goal.name, "goal": goal.body,
        "area": f"{area.title}\n\n{area.description}" if area else "the whole goal",
        "depth": str(depth), "max_depth": str(max_depth), "repo_map": swarm.repo_map(tip),
        "tasks": describe_tasks(mine), "main_log": swarm.main_log(tip)}, settings.runs_command)
    about = {"goal": goal.name, "worker": planner, "task_id": area.id if area else ""}
    if settings.runs_command:
        result = _command_planner(swarm, settings, prompt, create, about)
    else:
        result = swarm.run_agent("planner", settings, prompt, planner_tools(create), tip=tip, about=about)
    swarm.log(f"{planner}: {goal.name}: {len(created)} tasks created ({result.reason})")
    if result.reason not in ("finished",) and not created:
        if isinstance(result.error, GitswarmError):  # its model unavailable or refusing: its own words and hint
            raise result.error
        raise GitswarmError(f"the planner stopped ({result.reason}): {result.summary}",
                            _STOPPED_HINT.get((settings.runs_command, result.reason)))
    return result.summary, result.tokens_in + result.tokens_out, result.cost


_STOPPED_HINT = {  # by whether a program is the planner (RoleConfig.runs_command), and reason
    (False, "time"): "the planner ran out of its wall_time: raise planner.wall_time in .gitswarm.yaml",
    (True, "time"): "the planner's command ran out of its wall_time: raise planner.wall_time in .gitswarm.yaml",
    (True, "error"): "the planner's command failed: run it by hand on a checkout of main to see why"}


TASKS_FILE_MAX = 1024 * 1024  # bytes of a planner command's tasks file


def _command_planner(swarm: Swarm, settings, prompt: str, create, about: dict[str, str]) -> AgentResult:
    """A command as the planner: it reads the prompt and writes its tasks, a YAML list of
    {title, description, kind, depends_on, priority}, to the file named by GITSWARM_TASKS_FILE."""
    with tempfile.TemporaryDirectory(prefix="gitswarm-plan-") as folder:
        answer = Path(folder) / "tasks.yaml"
        result = swarm.run_agent("planner", settings, prompt, [], tip=None, cwd=Path(folder),  # no system prompt
                                 env={"GITSWARM_TASKS_FILE": str(answer)}, about=about)
        if result.reason == "finished" and answer.exists():
            try:
                items = load_yaml(answer.read_bytes(), "tasks file", model_error, TASKS_FILE_MAX) or []
                if not isinstance(items, list):
                    raise ValueError("expected a YAML list of tasks (mappings)")
                create(items) if items else None
            except ValueError as e:
                raise GitswarmError(f"the planner command's tasks file: {' '.join(str(e).split())}",
                                    "write a YAML list of {title, description, kind, depends_on, priority} "
                                    "to $GITSWARM_TASKS_FILE") from None
    return result


def model_error(field_name: str | None, problem: str, hint: str | None = None) -> ValueError:
    """A problem with what the model (or the planner's command) gave, as the ValueError that goes
    back to it as the tool's result: the field, the problem, what to do."""
    text = f"{field_name}: {problem}" if field_name else problem
    return ValueError(f"{text} ({hint})" if hint else text)


ITEM_KEYS = ("title", "description", "kind", "depends_on", "priority")  # tools.TASK_ITEM's


def tasks_from_call(goal: Goal, items: list[dict[str, Any]], area: Task | None, depth: int,
                    board_tasks: list[Task], max_depth: int = 2) -> tuple[list[Task], list[Task]]:
    """The tasks of one create_tasks call: (new tasks, tasks of the goal already on the board under
    the same title, which are not added again, so that a planner waking again may repeat its
    plan). depends_on names titles of the same call or of the goal's tasks, or existing ids.
    A ValueError goes back to the model as the tool's result."""
    if not isinstance(items, list) or not items:
        raise ValueError("tasks must be a list of one task or more")
    v = ItemFields(model_error)
    fields = [v.item(f"tasks[{n}]", item, ITEM_KEYS, titles=True) for n, item in enumerate(items)]
    existing = {t.id for t in board_tasks}
    same_goal = {t.title: t for t in board_tasks if t.goal == goal.name and t.status not in ("cancelled", "dead")}
    drafts = [new_task(f["title"].strip(), f["description"], kind=f["kind"], goal=goal.name,
                       parent=area.id if area else None, priority=f["priority"]) for f in fields]
    known = [same_goal[d.title] for d in drafts if d.title in same_goal]
    titles = title_index([*(d for d in drafts if d.title not in same_goal), *known])
    out = []
    for item, draft in zip(fields, drafts):
        if draft.title in same_goal:
            continue
        if draft.kind == "plan" and depth >= max_depth:
            raise ValueError(f"{draft.title!r}: kind plan is not allowed at depth {depth} (max_depth "
                             f"{max_depth}); make it work tasks")
        deps = []
        for ref in item["depends_on"]:
            try:
                deps.append(dependency_id(ref, existing, titles))
            except UnknownDependency as e:
                raise ValueError(f"{draft.title!r}: depends_on {ref!r}: {e.count} tasks have this title; give "
                                 "each task its own title" if e.count else
                                 f"{draft.title!r}: depends_on {ref!r} is neither a title in this call "
                                 "nor an existing task id") from None
        out.append(draft.replace(depends_on=tuple(deps)))
    return out, known


def _add_listed(swarm: Swarm, goal: Goal) -> str:
    """A model-free goal: its front matter lists the tasks; add those not yet on the board."""
    board = swarm.board
    existing = {t.id for t in board.tasks()}
    missing = [new_task(t.title, t.description, goal=goal.name, depends_on=t.depends_on,
                        priority=t.priority, task_id=t.id) for t in goal.tasks if t.id not in existing]
    if missing:
        board.add(missing)
        swarm.work_ready.set()
    return f"{len(missing)} listed tasks added" if missing else "every listed task is on the board"
