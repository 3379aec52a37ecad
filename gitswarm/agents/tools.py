"""The documented tool sets, one per role. The prompts name them; keep these names and shapes.

planner: create_tasks(tasks: [{title, description, kind, depends_on, priority}]), finish(summary)
worker:  bash(command), read_file(path), write_file(path, content), edit_file(path, old, new), finish(summary)
judge:   verdict(decision: continue|done|stop, reasons)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from . import Finished, Limits, Tool, finish_tool, truncate
from ..proc import run_killable

BASH_TIMEOUT = 300.0


def _inside(root: Path, path: str) -> Path:
    """A path of the worktree; ValueError (returned to the model) for anything outside it."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise ValueError("path must be a non-empty relative path")
    target = (root / path).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"{path} is outside the repository; use a path relative to its root")
    if ".git" in target.relative_to(root).parts:
        raise ValueError("the .git folder is off limits")
    return target


def worker_tools(root: Path, env: dict[str, str] | None = None, timeout: float = BASH_TIMEOUT,
                 max_output: int = Limits.max_output, wrap: Callable[[list[str], list[Path]], list[str]] | None = None
                 ) -> list[Tool]:
    """`wrap` turns a command line into the one to run (the sandbox); `bash` runs it with
    proc.run_killable: killed whole at `timeout`."""
    root = root.resolve()

    def bash(args: dict[str, Any]) -> str:
        argv = ["/bin/sh", "-c", args["command"]]
        ran = run_killable(wrap(argv, []) if wrap else argv, root, env, timeout, keep=max_output, merge=True,
                           grace=1.0)
        said = truncate(ran.stdout, max_output)
        return said + (f"\n[killed after {timeout:g}s]" if ran.ended == "time" else f"\n[exit {ran.code}]")

    def read_file(args: dict[str, Any]) -> str:
        target = _inside(root, args["path"])
        if not target.is_file():
            raise ValueError(f"{args['path']}: no such file")
        return target.read_text(errors="replace")

    def write_file(args: dict[str, Any]) -> str:
        target = _inside(root, args["path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(args["content"])
        return f"wrote {args['path']} ({len(args['content'])} characters)"

    def edit_file(args: dict[str, Any]) -> str:
        target = _inside(root, args["path"])
        if not target.is_file():
            raise ValueError(f"{args['path']}: no such file")
        text = target.read_text()
        count = text.count(args["old"])
        if count != 1:
            raise ValueError(f"old text found {count} times in {args['path']}; it must be found exactly once")
        target.write_text(text.replace(args["old"], args["new"]))
        return f"edited {args['path']}"

    string = {"type": "string"}
    return [
        Tool("bash", "Run a shell command in the repository's root; returns its output and exit status.",
             _object(command=string), bash),
        Tool("read_file", "Read a file of the repository.", _object(path=string), read_file),
        Tool("write_file", "Create or overwrite a file of the repository.", _object(path=string, content=string),
             write_file),
        Tool("edit_file", "Replace the one occurrence of `old` in a file with `new`.",
             _object(path=string, old=string, new=string), edit_file),
        finish_tool(),
    ]


TASK_ITEM = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "kind": {"type": "string", "enum": ["work", "plan"]},
        "depends_on": {"type": "array", "items": {"type": "string"}},
        "priority": {"type": "integer"},
    },
    "required": ["title", "description"],
}


def planner_tools(create: Callable[[list[dict[str, Any]]], str]) -> list[Tool]:
    """`create(tasks)` adds them to the board (raises ValueError to tell the model what is wrong)."""
    return [
        Tool("create_tasks", "Add tasks to the board, in one commit. depends_on names titles of tasks in the "
             "same call or ids of existing tasks; kind plan hands an area to a sub-planner.",
             {"type": "object", "properties": {"tasks": {"type": "array", "items": TASK_ITEM}},
              "required": ["tasks"]}, lambda args: create(args["tasks"])),
        finish_tool("Call when the plan is complete, with a short summary of it."),
    ]


def judge_tools(record: Callable[[str, str], None]) -> list[Tool]:
    def verdict(args: dict[str, Any]) -> str:
        record(args["decision"], args["reasons"])
        raise Finished(f"{args['decision']}: {args['reasons']}")

    return [Tool("verdict", "Decide: done (the goal is met), continue (another cycle of planning and work) "
                 "or stop (give up), with your reasons.",
                 {"type": "object", "properties": {"decision": {"type": "string", "enum": ["continue", "done", "stop"]},
                                                   "reasons": {"type": "string"}},
                  "required": ["decision", "reasons"]}, verdict)]


def select_tools(record: Callable[[str, str], None]) -> list[Tool]:
    """Best of N's judge (roles/attempt.py): which of two attempts should land, and why."""
    def prefer(args: dict[str, Any]) -> str:
        record(args["attempt"], args["reasons"])
        raise Finished(f"{args['attempt']}: {args['reasons']}")

    return [Tool("prefer", "Choose the attempt that should land (A or B), with your reasons.",
                 {"type": "object", "properties": {"attempt": {"type": "string", "enum": ["A", "B"]},
                                                   "reasons": {"type": "string"}},
                  "required": ["attempt", "reasons"]}, prefer)]


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}
