"""The agent layer: the tool loop with the real openai client against a loopback server, the retry
policy, and the command backend with real processes and signals."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Request, error, text, tool_call
from fake_openai import fake_openai  # noqa: F401

from gitswarm.agents import (REMINDER, AgentResult, Finished, Limits, ModelRejected, ModelUnavailable, Reply,
                             ScriptedModel, Step, Tool, check_arguments, finish_tool, run_agent, truncate)
from gitswarm.agents.command import run_command_agent
from gitswarm.agents.openai_backend import OpenAIModel, retry_after
from gitswarm.config import RoleConfig
from gitswarm.errors import GitswarmError


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ADMIN_KEY", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(key, raising=False)


def model_for(server: FakeOpenAI, **kw: Any) -> OpenAIModel:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5)
    return OpenAIModel("fake-model", base_url=server.base_url, **kw)


def file_tools(root: Path) -> list[Tool]:
    def read_file(args: dict[str, Any]) -> str:
        path = root / args["path"]
        if not path.is_file():
            raise ValueError(f"no file {args['path']}")
        return path.read_text()

    def write_file(args: dict[str, Any]) -> str:
        (root / args["path"]).write_text(args["content"])
        return f"wrote {len(args['content'])} characters to {args['path']}"

    path = {"type": "string", "description": "relative path"}
    return [
        Tool("read_file", "Read a file.", {"type": "object", "properties": {"path": path}, "required": ["path"]},
             read_file),
        Tool("write_file", "Write a file.", {"type": "object", "required": ["path", "content"],
                                             "properties": {"path": path, "content": {"type": "string"}}}, write_file),
        finish_tool(),
    ]


def tool_messages(request: Request) -> list[str]:
    return [m["content"] for m in request.messages if m["role"] == "tool"]


# -- the loop, with the real client ---------------------------------------------------------------

def test_tool_loop_reads_writes_and_finishes(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    fake_openai.enqueue_tool_call("read_file", {"path": "a.txt"}, usage=(100, 10))
    fake_openai.enqueue_tool_call("write_file", {"path": "b.txt", "content": "HELLO"}, usage=(120, 20))
    fake_openai.enqueue_tool_call("finish", {"summary": "copied a.txt upper-cased"}, usage=(140, 5))
    steps: list[Step] = []

    result = run_agent(model_for(fake_openai), "you are a worker", "upper-case a.txt into b.txt",
                       file_tools(tmp_path), Limits(), on_step=steps.append)

    assert result == AgentResult("copied a.txt upper-cased", "finished", 3, 360, 35, "fake-model")
    assert (tmp_path / "b.txt").read_text() == "HELLO"
    assert [s.number for s in steps] == [1, 2, 3] and steps[0].outputs == ["hello"]
    first, second, third = fake_openai.requests
    assert first.system == "you are a worker"
    assert first.last == {"role": "user", "content": "upper-case a.txt into b.txt"}
    assert first.tools == ["read_file", "write_file", "finish"]
    assert first.body["tools"][0]["function"]["parameters"]["required"] == ["path"]
    # the assistant's call is echoed back, and the result answers its id
    call = second.messages[-2]["tool_calls"][0]
    assert call["function"] == {"name": "read_file", "arguments": '{"path": "a.txt"}'}
    assert second.last == {"role": "tool", "tool_call_id": call["id"], "content": "hello"}
    assert tool_messages(third) == ["hello", "wrote 5 characters to b.txt"]


def test_malformed_calls_go_back_to_the_model(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.enqueue_tool_call("read_file", '{"path": "a.txt"')            # bad JSON
    fake_openai.enqueue_tool_call("delete_everything", {})                    # unknown tool
    fake_openai.enqueue_tool_call("write_file", {"path": "x"})                # missing argument
    fake_openai.enqueue_tool_call("read_file", {"path": 7})                   # wrong type
    fake_openai.enqueue_tool_call("read_file", {"path": "missing.txt"})       # handler: ValueError
    fake_openai.enqueue_tool_call("finish", {"summary": "gave up nicely"})

    result = run_agent(model_for(fake_openai), "s", "p", file_tools(tmp_path), Limits(max_malformed=10))

    assert (result.reason, result.steps) == ("finished", 6)
    errors = tool_messages(fake_openai.requests[-1])
    assert len(errors) == 5 and all(e.startswith("error: ") for e in errors)
    assert "not valid JSON" in errors[0]
    assert "unknown tool 'delete_everything'" in errors[1] and "read_file, write_file" in errors[1]
    assert "missing required argument 'content'" in errors[2]
    assert "path must be of type string, not int" in errors[3]
    assert errors[4] == "error: read_file: no file missing.txt"


def test_malformed_replies_in_a_row_are_bounded(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.route(lambda request: tool_call("nope", {}))
    result = run_agent(model_for(fake_openai), "s", "p", file_tools(tmp_path), Limits(max_malformed=3))
    assert (result.reason, result.steps) == ("malformed", 3)
    assert "3 malformed replies in a row" in result.summary and "unknown tool 'nope'" in result.summary
    assert len(fake_openai.requests) == 3


def test_a_good_call_resets_the_malformed_count(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    for _ in range(2):
        fake_openai.enqueue_tool_call("nope", {})
        fake_openai.enqueue_tool_call("nope", {})
        fake_openai.enqueue_tool_call("read_file", {"path": "a.txt"})
    fake_openai.enqueue_tool_call("finish", {"summary": "ok"})
    result = run_agent(model_for(fake_openai), "s", "p", file_tools(tmp_path), Limits(max_malformed=3))
    assert (result.reason, result.steps) == ("finished", 7)


def test_text_reply_gets_a_reminder(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.enqueue_text("I think I am done.")
    fake_openai.enqueue_tool_call("finish", {"summary": "done"})
    result = run_agent(model_for(fake_openai), "s", "p", file_tools(tmp_path), Limits())
    assert (result.reason, result.steps) == ("finished", 2)
    assert fake_openai.requests[1].messages[-2:] == [
        {"role": "assistant", "content": "I think I am done."}, {"role": "user", "content": REMINDER}]
    assert "finish(summary)" in REMINDER


def test_text_replies_forever_count_as_malformed(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.route(lambda request: text("chatting"))
    result = run_agent(model_for(fake_openai), "s", "p", file_tools(tmp_path), Limits())
    assert (result.reason, result.steps) == ("malformed", 5)


def test_step_limit(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    fake_openai.route(lambda request: tool_call("read_file", {"path": "a.txt"}))
    result = run_agent(model_for(fake_openai), "s", "p", file_tools(tmp_path), Limits(max_steps=4))
    assert (result.reason, result.steps, result.tokens_in, result.tokens_out) == ("steps", 4, 40, 20)
    assert len(fake_openai.requests) == 4


def test_token_limit(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    fake_openai.route(lambda request: tool_call("read_file", {"path": "a.txt"}, usage=(100, 50)))
    result = run_agent(model_for(fake_openai), "s", "p", file_tools(tmp_path), Limits(max_tokens=250))
    assert (result.reason, result.steps, result.tokens_in + result.tokens_out) == ("tokens", 2, 300)


def test_time_limit(fake_openai: FakeOpenAI) -> None:
    slow = Tool("wait", "Wait a bit.", {"type": "object", "properties": {}}, lambda args: time.sleep(0.3) or "ok")
    fake_openai.route(lambda request: tool_call("wait"))
    result = run_agent(model_for(fake_openai), "s", "p", [slow, finish_tool()], Limits(wall_time=0.2))
    assert (result.reason, result.steps) == ("time", 1)
    assert "limit 0.2s" in result.summary


def test_missing_usage_counts_zero(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue_tool_call("finish", {"summary": "s"}, usage=None)
    result = run_agent(model_for(fake_openai), "s", "p", [finish_tool()], Limits())
    assert (result.reason, result.tokens_in, result.tokens_out) == ("finished", 0, 0)


def test_long_tool_output_is_cut_with_a_note(fake_openai: FakeOpenAI) -> None:
    big = Tool("big", "Big output.", {"type": "object"}, lambda args: "x" * 50 + "END")
    fake_openai.enqueue_tool_call("big")
    fake_openai.enqueue_tool_call("finish", {"summary": "s"})
    run_agent(model_for(fake_openai), "s", "p", [big, finish_tool()], Limits(max_output=20))
    [output] = tool_messages(fake_openai.requests[1])
    assert output.startswith("x" * 10) and output.endswith("xxxxxxxEND") and "[... 33 characters cut ...]" in output


def test_broken_tool_ends_the_run_with_the_error(fake_openai: FakeOpenAI) -> None:
    def broken(args: dict[str, Any]) -> str:
        raise KeyError("bug")

    fake_openai.enqueue_tool_call("broken")
    result = run_agent(model_for(fake_openai), "s", "p", [Tool("broken", "", {}, broken), finish_tool()], Limits())
    assert (result.reason, result.steps) == ("error", 1)
    assert isinstance(result.error, KeyError) and "KeyError" in result.summary


def test_request_options_and_key(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_openai.route(lambda request: tool_call("finish", {"summary": "s"}))
    model = model_for(fake_openai, temperature=0.2, extra={"max_tokens": 99, "tool_choice": "required"})
    run_agent(model, "s", "p", [finish_tool()], Limits())
    body, headers = fake_openai.requests[0].body, fake_openai.requests[0].headers
    assert (body["model"], body["temperature"], body["max_tokens"], body["tool_choice"]) == (
        "fake-model", 0.2, 99, "required")
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer not-needed"
    # base URL and key from the environment, as the client reads them
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    run_agent(OpenAIModel("fake-model"), "s", "p", [finish_tool()], Limits())
    assert {k.lower(): v for k, v in fake_openai.requests[1].headers.items()}["authorization"] == "Bearer sk-from-env"


def test_concurrent_agents_answered_by_role(fake_openai: FakeOpenAI) -> None:
    @fake_openai.route
    def by_role(request: Request) -> Any:
        role = request.system.split()[-1]
        if request.last["role"] == "tool":
            return tool_call("finish", {"summary": f"{role} done"})
        return tool_call("note", {"text": role})

    note = Tool("note", "Take a note.", {"type": "object", "properties": {"text": {"type": "string"}},
                                         "required": ["text"]}, lambda args: "noted")
    results: dict[str, AgentResult] = {}

    def run(role: str) -> None:
        results[role] = run_agent(model_for(fake_openai), f"you are a {role}", "go", [note, finish_tool()], Limits())

    threads = [threading.Thread(target=run, args=(role,)) for role in ("planner", "worker", "judge")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert {role: r.summary for role, r in results.items()} == {
        "planner": "planner done", "worker": "worker done", "judge": "judge done"}
    assert len(fake_openai.requests) == 6


# -- retries and errors ---------------------------------------------------------------------------

def test_retries_429_500_and_timeout_then_success(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue_error(429, "slow down", retry_after=0.05)
    fake_openai.enqueue_error(500)
    fake_openai.enqueue_delay(2.0)
    fake_openai.enqueue_tool_call("finish", {"summary": "made it"}, usage=(7, 3))
    model = model_for(fake_openai, timeout=0.3)
    result = run_agent(model, "s", "p", [finish_tool()], Limits())
    assert (result.summary, result.reason, result.steps, result.tokens_in, result.tokens_out) == (
        "made it", "finished", 1, 7, 3)
    assert model.attempts == 4 and len(fake_openai.requests) == 4
    assert model.waits[0] == 0.05  # Retry-After honoured
    assert len(model.waits) == 3


def test_retry_after_is_capped() -> None:
    waits: list[float] = []
    with FakeOpenAI() as server:
        server.enqueue_error(429, retry_after=3600)
        server.enqueue_tool_call("finish", {"summary": "s"})
        model = model_for(server, max_wait=0.5, sleep=waits.append)
        assert model.complete([{"role": "user", "content": "p"}], [finish_tool()]).tool_calls[0].name == "finish"
    assert waits == [0.5]


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 55 < retry_after({"retry-after": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                          time.gmtime(time.time() + 60))}) <= 60
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_backoff_grows_exponentially(fake_openai: FakeOpenAI) -> None:
    fake_openai.route(lambda request: error(503))
    waits: list[float] = []
    model = model_for(fake_openai, max_retries=4, backoff=1.0, sleep=waits.append)
    with pytest.raises(ModelUnavailable):
        model.complete([{"role": "user", "content": "p"}], [])
    assert len(waits) == 4
    for i, wait in enumerate(waits):
        assert 0.75 * 2 ** i <= wait <= 1.25 * 2 ** i


def test_server_that_keeps_failing_is_unavailable(fake_openai: FakeOpenAI) -> None:
    fake_openai.route(lambda request: error(502, "bad gateway"))
    model = model_for(fake_openai, max_retries=3)
    result = run_agent(model, "s", "p", [finish_tool()], Limits())
    assert (result.reason, result.steps) == ("error", 0)
    assert isinstance(result.error, ModelUnavailable) and result.error.attempts == 4
    assert f"at {fake_openai.base_url} unavailable after 4 attempts: HTTP 502: bad gateway" in result.summary
    assert len(fake_openai.requests) == 4 and model.attempts == 4


def test_each_wait_for_a_failing_endpoint_is_said(fake_openai: FakeOpenAI) -> None:
    fake_openai.route(lambda request: error(503, "overloaded"))
    said: list[tuple] = []
    model = model_for(fake_openai, max_retries=2, on_retry=lambda *args: said.append(args))
    with pytest.raises(ModelUnavailable):
        model.complete([{"role": "user", "content": "p"}], [])
    assert [(why, n, of) for why, _, n, of in said] == [("HTTP 503: overloaded", 1, 3), ("HTTP 503: overloaded", 2, 3)]
    assert [wait for _, wait, _, _ in said] == model.waits


def test_connection_refused_is_unavailable() -> None:
    with FakeOpenAI() as server:
        url = server.base_url
    model = OpenAIModel("m", base_url=url, max_retries=2, backoff=0.01)
    with pytest.raises(ModelUnavailable, match="after 3 attempts: connection failed") as raised:
        model.complete([{"role": "user", "content": "p"}], [])
    assert raised.value.hint and model.attempts == 3


@pytest.mark.parametrize("status, hint", [(401, "API key"), (404, "model name 'fake-model'"), (400, "tool calls")])
def test_client_errors_are_not_retried(fake_openai: FakeOpenAI, status: int, hint: str) -> None:
    fake_openai.route(lambda request: error(status, "nope"))
    model = model_for(fake_openai)
    with pytest.raises(ModelRejected) as raised:
        model.complete([{"role": "user", "content": "p"}], [])
    assert isinstance(raised.value, GitswarmError) and raised.value.status == status
    assert f"(HTTP {status}): nope" in str(raised.value) and hint in raised.value.hint
    assert len(fake_openai.requests) == 1 and model.attempts == 1
    result = run_agent(model, "s", "p", [finish_tool()], Limits())
    assert result.reason == "error" and isinstance(result.error, ModelRejected) and "hint:" in result.summary


# -- the core without a server --------------------------------------------------------------------

def test_scripted_model_records_history_and_runs_out() -> None:
    model = ScriptedModel([Reply.calling("noop", {}), Reply("thinking"), ModelUnavailable("gone")])
    noop = Tool("noop", "", {"type": "object"}, lambda args: "ok")
    result = run_agent(model, "s", "p", [noop, finish_tool()], Limits())
    assert (result.reason, result.steps, result.summary) == ("error", 2, "gone")
    assert len(model.history) == 3 and model.history[1][-1] == {"role": "tool", "tool_call_id": "call_1",
                                                                   "content": "ok"}
    empty = run_agent(ScriptedModel([]), "s", "p", [], Limits())
    assert empty.reason == "error" and "no scripted reply left" in empty.summary


def test_finished_from_any_handler() -> None:
    def done(args: dict[str, Any]) -> str:
        raise Finished("submitted")

    model = ScriptedModel([Reply.calling("submit", {}, tokens_in=3, tokens_out=2)])
    assert run_agent(model, "s", "p", [Tool("submit", "", {}, done)], Limits()) == AgentResult(
        "submitted", "finished", 1, 3, 2, "scripted")


def test_check_arguments() -> None:
    schema = {"type": "object", "required": ["mode", "n"], "properties": {
        "mode": {"type": "string", "enum": ["a", "b"]}, "n": {"type": "integer"}, "ok": {"type": "boolean"},
        "files": {"type": "array", "items": {"type": "string"}}, "opts": {"type": "object"}}}
    check_arguments({"mode": "a", "n": 1, "ok": True, "files": ["x"], "opts": {}}, schema)
    for bad, message in [({"mode": "c", "n": 1}, "one of"), ({"mode": "a", "n": True}, "integer"),
                         ({"mode": "a", "n": 1.5}, "integer"), ({"mode": "a"}, "'n'"),
                         ({"mode": "a", "n": 1, "files": [1]}, "files[0]"), ({"mode": "a", "n": 1, "ok": 1}, "boolean"),
                         ({"mode": "a", "n": 1, "opts": []}, "object"), ([], "object")]:
        with pytest.raises(Exception, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_arguments(bad, schema)


def test_truncate() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdefghij", 4) == "ab\n[... 6 characters cut ...]\nij"


# -- the command backend --------------------------------------------------------------------------

def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_command_prompt_on_stdin(tmp_path: Path) -> None:
    result = run_command_agent("pwd; tr a-z A-Z", "fix the bug", tmp_path, Limits())
    assert (result.summary, result.reason, result.steps, result.tokens_in, result.tokens_out, result.model) == \
        (f"{tmp_path}\nFIX THE BUG", "finished", 1, 0, 0, "command")
    assert result.trace.code == 0 and result.trace.prompt == "fix the bug" and result.trace.stdout.endswith("BUG")


def test_command_prompt_in_a_file(tmp_path: Path) -> None:
    result = run_command_agent('cat {prompt_file}; echo; echo "$GITSWARM_PROMPT_FILE $EXTRA"', "the prompt",
                               tmp_path, Limits(), env={**os.environ, "EXTRA": "x"}, prompt_mode="file")
    content, last = result.summary.splitlines()
    path = last.split()[0]
    assert (result.reason, content, last.split()[1]) == ("finished", "the prompt", "x")
    assert not Path(path).exists() and not Path(path).is_relative_to(tmp_path)


def test_command_exit_status(tmp_path: Path) -> None:
    result = run_command_agent("echo partial; echo 'it broke' >&2; exit 3", "p", tmp_path, Limits())
    assert (result.reason, result.summary) == ("error", "exit status 3\nit broke")
    quiet = run_command_agent("echo only stdout; exit 1", "p", tmp_path, Limits())
    assert quiet.summary == "exit status 1\nonly stdout"
    missing = run_command_agent("no-such-agent-program", "p", tmp_path, Limits())
    assert missing.reason == "error" and "127" in missing.summary and "not found" in missing.summary


def test_command_output_is_truncated(tmp_path: Path) -> None:
    result = run_command_agent("head -c 100000 /dev/zero | tr '\\0' y; echo; echo THE END", "p", tmp_path,
                               Limits(max_output=1000))
    assert result.reason == "finished" and result.summary.endswith("THE END")
    assert "[... 99009 bytes cut ...]" in result.summary and len(result.summary) < 1100


def test_command_ignoring_its_stdin(tmp_path: Path) -> None:
    result = run_command_agent("echo ok", "x" * 1_000_000, tmp_path, Limits())
    assert (result.reason, result.summary) == ("finished", "ok")


def test_command_wall_time_kills_the_whole_group(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_command_agent("sleep 100 & echo $! > child.pid; echo started; wait", "p", tmp_path,
                               Limits(wall_time=0.5), grace=2)
    assert result.reason == "time" and "killed after" in result.summary and "started" in result.summary
    assert time.monotonic() - start < 3
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child)


def test_command_ignoring_sigterm_gets_sigkill(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_command_agent("trap '' TERM; sleep 100 & echo $! > child.pid; wait", "p", tmp_path,
                               Limits(wall_time=0.3), grace=0.3)
    assert result.reason == "time" and time.monotonic() - start < 3
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child)


def test_command_leftovers_are_ended_after_exit(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_command_agent("sleep 100 & echo $! > child.pid; echo done", "p", tmp_path, Limits())
    assert (result.reason, result.summary) == ("finished", "done") and time.monotonic() - start < 3
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child)


def test_command_runs_python(tmp_path: Path) -> None:
    script = "import sys, json; print(json.dumps({'prompt': sys.stdin.read()}))"
    result = run_command_agent(f"{sys.executable} -c \"{script}\"", "hi", tmp_path, Limits(), env=dict(os.environ))
    assert json.loads(result.summary) == {"prompt": "hi"}


def test_empty_reply_is_sent_back_as_empty_text(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(text(None))  # type: ignore[arg-type]
    fake_openai.enqueue_tool_call("finish", {"summary": "s"})
    assert run_agent(model_for(fake_openai), "s", "p", [finish_tool()], Limits()).reason == "finished"
    assert fake_openai.requests[1].messages[-2] == {"role": "assistant", "content": ""}


@pytest.mark.parametrize("wall_time", [0.5, 60.0])
def test_unsandboxed_what_left_the_group_dies_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  wall_time: float) -> None:
    """Without the sandbox, a process the agent moved out of its group (setsid) whose parent died
    belongs to init: gitswarm.reaper, which sandbox.wrap puts under the command, ends it, at the
    wall time and when the command exits on its own."""
    from gitswarm import sandbox

    monkeypatch.setenv("GITSWARM_SANDBOX", "off")
    command = ("sh -c 'setsid sh -c \"sleep 100 & echo \\$! > orphan.pid\" &'; sleep 0.3; echo started; "
               + ("sleep 100" if wall_time < 1 else "true"))
    result = run_command_agent(command, "", tmp_path, Limits(wall_time=wall_time), grace=1,
                               wrap=lambda argv, readable, writable: sandbox.wrap(argv, tmp_path))
    assert result.reason == ("time" if wall_time < 1 else "finished") and "started" in result.summary
    orphan = int((tmp_path / "orphan.pid").read_text())
    deadline = time.monotonic() + 3
    while alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(orphan)


def test_a_roles_timeout_and_retries_reach_its_model_and_the_hint_names_them(fake_openai: FakeOpenAI) -> None:
    """`.gitswarm.yaml`'s timeout and retries are what the role's model waits and retries: an
    endpoint slower than the timeout is unavailable after retries + 1 attempts, and the hint names
    both settings with their values."""
    from fake_openai import delayed

    from gitswarm.config import load_config
    from gitswarm.endpoints import Endpoint, Endpoints
    from gitswarm.agents.backends import make_model

    fake_openai.route(lambda request: delayed(3, text("too late")))
    host = Endpoints((Endpoint("fake", fake_openai.base_url),), default="fake")
    role = load_config("defaults: {timeout: 1s}\nworker: {retries: 1}\n", endpoints=host).worker
    with pytest.raises(ModelUnavailable) as raised:
        make_model(role).complete([{"role": "user", "content": "p"}], [])
    assert "unavailable after 2 attempts: no answer within 1s" in raised.value.message
    assert "`timeout` (now 1s) or `retries` (now 1) in .gitswarm.yaml" in (raised.value.hint or "")
    assert len(fake_openai.requests) == 2


def test_each_backend_of_the_settings_is_in_the_factory_and_only_model_backends_make_a_model():
    """agents.backends.MODELS names every backend `.gitswarm.yaml` accepts: a model backend makes
    the role's model; the command backend (a program: RoleConfig.runs_command) has none."""
    from gitswarm.agents.backends import MODELS, make_model
    from gitswarm.config import BACKENDS, RoleConfig

    assert sorted(MODELS) == sorted(BACKENDS)
    for name, maker in MODELS.items():
        assert (maker is None) == RoleConfig(backend=name).runs_command, name
    model = make_model(RoleConfig(model="m", base_url="http://127.0.0.1:9/v1"))
    assert isinstance(model, OpenAIModel) and model.name == "m" and model.base_url == "http://127.0.0.1:9/v1"
    with pytest.raises(GitswarmError, match="backend 'command' has no model") as raised:
        make_model(RoleConfig(backend="command", command="./agent.sh"))
    assert "the model backends are: openai" in (raised.value.hint or "")
    with pytest.raises(GitswarmError, match="no endpoint was chosen"):
        make_model(RoleConfig(model="m"))


def test_limits_are_the_role_settings_with_their_defaults_written_once():
    from gitswarm.config import load_config

    assert Limits() == Limits.of(RoleConfig()) and Limits().max_malformed == 5
    role = load_config("worker: {max_steps: 7, max_tokens: 900, wall_time: 2m, max_output: 300}\n").worker
    assert Limits.of(role) == Limits(max_steps=7, max_tokens=900, wall_time=120.0, max_output=300)
