"""The agent core: tools, limits, an injected chat model, and one loop that runs them.

A role hands `run_agent` a model (anything with `name` and `complete(messages, tools) -> Reply`),
a system prompt, a task prompt and its tools. Each step calls the model once and runs the tool
calls of its reply; every way out of the loop is an `AgentStop` exception turned into an
`AgentResult`, so the caller always gets the steps and tokens spent, whatever happened.

Tool handlers report the model's mistakes (bad path, bad range, ...) by raising `ValueError`:
the text goes back to the model as the tool's result. A `finish` handler raises `Finished`.
Anything else a handler raises is a bug in the tool: it ends the run with reason "error".
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from gitswarm.config import RoleConfig
from gitswarm.errors import GitswarmError

log = logging.getLogger(__name__)

REMINDER = "Your reply had no tool call. Call a tool; call finish(summary) when done."


@dataclass(frozen=True)
class Tool:
    """A function the model may call. `parameters` is a JSON schema of an object."""

    name: str
    description: str
    parameters: dict[str, Any]
    handler: Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Limits:
    """Bounds of one run: those of a role's settings (`Limits.of`; the defaults are RoleConfig's).
    `max_output`: characters of one tool result kept (the rest is cut, with a note).
    `max_malformed`: malformed replies in a row that end the run."""

    max_steps: int = RoleConfig.max_steps
    max_tokens: int = RoleConfig.max_tokens
    wall_time: float = RoleConfig.wall_time
    max_output: int = RoleConfig.max_output
    max_malformed: int = 5

    @classmethod
    def of(cls, role: RoleConfig) -> Limits:
        """The bounds a role's settings give each of its runs."""
        return cls(max_steps=role.max_steps, max_tokens=role.max_tokens, wall_time=role.wall_time,
                   max_output=role.max_output)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class Reply:
    """One answer of a model: text and/or tool calls, and the tokens it cost."""

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0

    @classmethod
    def calling(cls, name: str, arguments: dict[str, Any] | str | None = None, *,
                tokens_in: int = 0, tokens_out: int = 0, id: str = "call_1") -> Reply:
        """A reply with one tool call (`arguments` a dict, or raw text to test malformed JSON)."""
        text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        return cls(None, [ToolCall(id, name, text)], tokens_in, tokens_out)


@dataclass(frozen=True)
class Trace:
    """What a command agent's run leaves to keep in its attempt's record (gitswarm.runlog): the
    command, how it ended (`ended`: exited, time or stopped; `code` its exit status), its bounded
    stdout and stderr, the prompt it got, the result file it wrote (parsed), and the model
    exchanges the metering proxy saw (`transcript`), the commits it made in its worktree."""

    command: str
    code: int | None
    ended: str
    elapsed: float
    stdout: str = ""
    stderr: str = ""
    prompt: str = ""
    result: dict[str, Any] | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # subjects of the commits it made itself


@dataclass(frozen=True)
class AgentResult:
    """How a run ended. `reason`: finished, steps, tokens, time, malformed, error, stopped, failed
    (a command agent said so) or handback (a command agent gives its task back unharmed).
    `error` is the exception behind reason "error" (e.g. `ModelRejected`: a configuration problem).
    `cost`: what the run cost, when the agent or the endpoint said; `trace`: a command agent's run."""

    summary: str
    reason: str
    steps: int
    tokens_in: int
    tokens_out: int
    model: str
    error: Exception | None = None
    cost: float | None = None
    trace: Trace | None = None


@dataclass(frozen=True)
class Step:
    """What `on_step` sees after each step: the reply and what each of its calls returned."""

    number: int
    reply: Reply
    outputs: list[str]
    tokens_in: int
    tokens_out: int
    elapsed: float


class ChatModel(Protocol):
    name: str

    def complete(self, messages: list[dict[str, Any]], tools: list[Tool]) -> Reply: ...


# -- the ways out ---------------------------------------------------------------------------------

class AgentStop(Exception):
    """Ends the loop. `reason` goes into the AgentResult, `summary` (str(self)) too."""

    reason = "error"


class Finished(AgentStop):
    """Raised by the `finish` tool's handler: the agent says it is done."""

    reason = "finished"

    def __init__(self, summary: str):
        super().__init__(summary)
        self.summary = summary


class LimitExceeded(AgentStop):
    """A bound of `Limits` was reached; `reason` is steps, tokens, time or malformed."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or f"stopped: {reason} limit reached")
        self.reason = reason


class ModelUnavailable(AgentStop, GitswarmError):
    """The model endpoint is down, overloaded or too slow, and retrying did not help."""

    reason = "error"

    def __init__(self, message: str, hint: str | None = None, attempts: int = 0):
        GitswarmError.__init__(self, message, hint)
        self.attempts = attempts


class ModelRejected(GitswarmError):
    """The endpoint refused the request itself (bad key, unknown model, ...): retrying cannot help."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None):
        super().__init__(message, hint)
        self.status = status


class Malformed(Exception):
    """A tool call the model got wrong; the text goes back to it as the tool's result."""


# -- helpers --------------------------------------------------------------------------------------

def truncate(text: str, limit: int) -> str:
    """Keep `limit` characters (head and tail), with a note saying how many were cut."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    cut = len(text) - limit
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[len(text) - tail:] if tail else ''}"


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def check_arguments(value: Any, schema: dict[str, Any], where: str = "arguments") -> None:
    """A minimal JSON-schema check: type, enum, required keys, properties, array items.
    Raises Malformed naming the first problem."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(_TYPES.get(k, lambda v: True)(value) for k in kinds):
        raise Malformed(f"{where} must be of type {' or '.join(kinds)}, not {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise Malformed(f"{where} must be one of {json.dumps(schema['enum'])}, not {json.dumps(value)}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise Malformed(f"{where}: missing required argument {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                check_arguments(value[key], sub, f"{where}.{key}" if where != "arguments" else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            check_arguments(item, schema["items"], f"{where}[{i}]")


def finish_tool(description: str = "Call when the work is done, with a short summary of what you did.") -> Tool:
    """The `finish(summary)` tool: its handler raises `Finished`."""

    def handler(args: dict[str, Any]) -> str:
        raise Finished(args["summary"])

    return Tool("finish", description, {"type": "object", "properties": {"summary": {"type": "string"}},
                                        "required": ["summary"]}, handler)


# -- the loop -------------------------------------------------------------------------------------

def _call(call: ToolCall, tools: dict[str, Tool], max_output: int) -> str:
    """Run one tool call; raises Malformed when the model got it wrong, Finished from `finish`."""
    tool = tools.get(call.name)
    if tool is None:
        raise Malformed(f"unknown tool {call.name!r}; the tools are: {', '.join(sorted(tools))}")
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except json.JSONDecodeError as e:
        raise Malformed(f"the arguments of {call.name} are not valid JSON ({e.msg} at position {e.pos})") from None
    check_arguments(args, {"type": "object", **tool.parameters})
    try:
        output = tool.handler(args)
    except ValueError as e:
        raise Malformed(f"{call.name}: {e}") from None
    return truncate(output if isinstance(output, str) else str(output), max_output)


def _assistant_message(reply: Reply) -> dict[str, Any]:
    # an assistant message needs content or tool calls: an empty reply is sent back as ""
    content = reply.content if reply.tool_calls else reply.content or ""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reply.tool_calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in reply.tool_calls]
    return message


def run_agent(model: ChatModel, system: str, prompt: str, tools: list[Tool], limits: Limits,
              on_step: Callable[[Step], None] | None = None) -> AgentResult:
    """Run the tool loop until the agent finishes or a limit stops it. Always returns a result."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    by_name = {t.name: t for t in tools}
    steps = tokens_in = tokens_out = malformed = 0
    start = time.monotonic()
    try:
        while True:
            if steps >= limits.max_steps:
                raise LimitExceeded("steps", f"stopped after {steps} steps (limit {limits.max_steps})")
            if tokens_in + tokens_out >= limits.max_tokens:
                raise LimitExceeded("tokens", f"stopped after {tokens_in + tokens_out} tokens "
                                              f"(limit {limits.max_tokens})")
            if time.monotonic() - start >= limits.wall_time:
                raise LimitExceeded("time", f"stopped after {time.monotonic() - start:.1f}s "
                                            f"(limit {limits.wall_time:g}s)")
            reply = model.complete(messages, tools)
            steps += 1
            tokens_in += reply.tokens_in
            tokens_out += reply.tokens_out
            messages.append(_assistant_message(reply))
            outputs: list[str] = []
            ok = False
            try:
                if not reply.tool_calls:
                    outputs.append(REMINDER)
                    messages.append({"role": "user", "content": REMINDER})
                for call in reply.tool_calls:
                    try:
                        output = _call(call, by_name, limits.max_output)
                        ok = True
                    except Malformed as e:
                        output = f"error: {e}"
                    outputs.append(output)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
            finally:
                if on_step is not None:
                    on_step(Step(steps, reply, outputs, tokens_in, tokens_out, time.monotonic() - start))
            malformed = 0 if ok else malformed + 1
            if malformed >= limits.max_malformed:
                raise LimitExceeded("malformed", f"stopped after {malformed} malformed replies in a row; "
                                                 f"last: {outputs[-1] if outputs else ''}")
    except AgentStop as stop:
        return AgentResult(str(stop) if not isinstance(stop, Finished) else stop.summary, stop.reason,
                           steps, tokens_in, tokens_out, model.name,
                           stop if isinstance(stop, ModelUnavailable) else None)
    except GitswarmError as e:  # a refused request (bad key, unknown model): the hint says what to do
        return AgentResult(str(e), "error", steps, tokens_in, tokens_out, model.name, e)
    except Exception as e:  # a broken tool or callback: record it, never lose the run
        log.exception("agent run on %s ended with an error", model.name)
        return AgentResult(f"{type(e).__name__}: {e}", "error", steps, tokens_in, tokens_out, model.name, e)


class ScriptedModel:
    """A deterministic model for tests and the offline demo: answers with `replies` in order.
    An exception in the list is raised instead. `.history` holds a copy of the messages of each call."""

    def __init__(self, replies: list[Reply | Exception], name: str = "scripted"):
        self.replies = list(replies)
        self.name = name
        self.history: list[list[dict[str, Any]]] = []

    def complete(self, messages: list[dict[str, Any]], tools: list[Tool]) -> Reply:
        self.history.append(copy.deepcopy(messages))
        if not self.replies:
            raise ModelUnavailable(f"{self.name}: no scripted reply left (call {len(self.history)})")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


__all__ = ["Tool", "Limits", "ToolCall", "Reply", "AgentResult", "Trace", "Step", "ChatModel", "AgentStop", "Finished",
           "LimitExceeded", "ModelUnavailable", "ModelRejected", "truncate", "check_arguments", "finish_tool",
           "run_agent", "ScriptedModel", "REMINDER"]
