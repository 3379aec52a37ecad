"""The metering proxy (gitswarm.meter), the relay (gitswarm.relay) and the sandbox's network modes:
the real `openai` client through a real Meter to tests/fake_openai.py on loopback, and real
bubblewrap sandboxes (those tests skip without bwrap)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest

from gitswarm import sandbox
from gitswarm.proc import run_killable
from gitswarm.errors import GitswarmError
from gitswarm.meter import Meter
from gitswarm.meterhttp import usage_of

from fake_openai import FakeOpenAI, fake_openai  # noqa: F401
from servers import free_port

HOST_KEY = "sk-host-real-key-never-shown"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap is not installed (apt-get install bubblewrap; .ci/run does)")


@pytest.fixture
def meter():
    lines: list[str] = []
    with Meter(log=lines.append) as m:
        m.lines = lines
        yield m
    assert not any(HOST_KEY in line for line in lines)


def client(meter: Meter, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=meter.base_url, api_key=token, max_retries=0, timeout=60)


def ask(c: openai.OpenAI, text: str = "hello", **kw) -> str:
    reply = c.chat.completions.create(model=kw.pop("model", "agent-model"),
                                      messages=[{"role": "user", "content": text}], **kw)
    return reply.choices[0].message.content


def test_a_call_through_the_meter_is_counted_and_recorded(meter, fake_openai):
    fake_openai.enqueue_text("hi there")
    with meter.open(label="t1", upstream=fake_openai.base_url, api_key=HOST_KEY) as session:
        assert ask(client(meter, session.token)) == "hi there"
        assert (session.calls, session.tokens_in, session.tokens_out) == (1, 10, 5)
        assert session.models == {"agent-model"} and session.unavailable is None and session.refused is None
        seen, = fake_openai.requests
        assert seen.headers["Authorization"] == f"Bearer {HOST_KEY}"
        assert session.token not in json.dumps(seen.headers)
        entry, = session.transcript()
        assert entry["path"] == "/chat/completions" and entry["status"] == 200
        assert entry["request"]["messages"] == [{"role": "user", "content": "hello"}]
        assert entry["response"]["choices"][0]["message"]["content"] == "hi there"
        assert (entry["tokens_in"], entry["tokens_out"]) == (10, 5)
        assert HOST_KEY not in json.dumps(session.transcript()) and session.token not in json.dumps(session.transcript())
    assert any("t1: POST /chat/completions 200 in=10 out=5" in line for line in meter.lines)


def test_a_streamed_call_passes_through_and_is_counted(meter, fake_openai):
    fake_openai.enqueue_text("one two three", usage=(7, 3))
    with meter.open(label="s", upstream=fake_openai.base_url, api_key=HOST_KEY) as session:
        chunks = list(client(meter, session.token).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "count"}], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.split() == ["one", "two", "three"]
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 7  # the extra chunk
        assert fake_openai.requests[0].body["stream_options"] == {"include_usage": True}  # asked for by the meter
        assert (session.tokens_in, session.tokens_out, session.calls) == (7, 3, 1)
        entry, = session.transcript()
        assert "data: [DONE]" in entry["response"] and entry["request"]["stream"] is True


def test_litellm_copes_with_the_usage_chunk(meter, fake_openai):
    litellm = pytest.importorskip("litellm")
    fake_openai.enqueue_text("from litellm", usage=(4, 2))
    with meter.open(label="l", upstream=fake_openai.base_url, api_key=HOST_KEY) as session:
        stream = litellm.completion(model="openai/m", api_base=meter.base_url, api_key=session.token,
                                    messages=[{"role": "user", "content": "x"}], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).split() == ["from", "litellm"]
        assert (session.tokens_in, session.tokens_out) == (4, 2)


def test_the_session_model_is_the_one_asked_upstream(meter, fake_openai):
    fake_openai.enqueue_text("ok")
    with meter.open(label="m", upstream=fake_openai.base_url, api_key=None, model="host-model") as session:
        ask(client(meter, session.token), model="gpt-expensive")
        assert fake_openai.requests[0].body["model"] == "host-model" and session.models == {"gpt-expensive"}
        assert "Authorization" not in fake_openai.requests[0].headers  # no key: none sent


def test_unknown_closed_and_missing_tokens_get_401(meter, fake_openai):
    session = meter.open(label="c", upstream=fake_openai.base_url, api_key=HOST_KEY)
    with pytest.raises(openai.AuthenticationError):
        ask(client(meter, "not-a-token"))
    session.close()
    with pytest.raises(openai.AuthenticationError) as closed:
        ask(client(meter, session.token))
    assert closed.value.code == "invalid_api_key"
    with socket.create_connection(("127.0.0.1", meter.port)) as raw:
        raw.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")  # no token at all
        assert raw.makefile("rb").readline().startswith(b"HTTP/1.1 401 ")
    assert fake_openai.requests == []


def test_the_budget_refuses_the_next_call(meter, fake_openai):
    spent = threading.Event()
    fake_openai.enqueue_text("first")
    with meter.open(label="b", upstream=fake_openai.base_url, api_key=HOST_KEY,
                    allow=lambda: "goal g: 18000 of 18000 tokens spent" if spent.is_set() else None) as session:
        c = client(meter, session.token)
        assert ask(c) == "first"
        spent.set()
        with pytest.raises(openai.RateLimitError) as refused:
            ask(c)
        assert refused.value.code == "budget_exhausted" and "18000 of 18000" in refused.value.message
        assert refused.value.body["type"] == "insufficient_quota"
        assert session.refused == "goal g: 18000 of 18000 tokens spent"
        assert len(fake_openai.requests) == 1 and session.calls == 1
        assert [e["status"] for e in session.transcript()] == [200, 429]


def test_a_failing_budget_check_refuses(meter, fake_openai):
    with meter.open(label="f", upstream=fake_openai.base_url, api_key=HOST_KEY, allow=lambda: 1 / 0) as session:
        with pytest.raises(openai.RateLimitError):
            ask(client(meter, session.token))
        assert "budget check failed" in session.refused and fake_openai.requests == []


def test_an_unreachable_upstream_is_502_and_unavailable(meter):
    down = f"http://127.0.0.1:{free_port()}/v1"
    with meter.open(label="d", upstream=down, api_key=HOST_KEY) as session:
        with pytest.raises(openai.InternalServerError) as failed:
            ask(client(meter, session.token))
        assert failed.value.status_code == 502 and "unreachable" in failed.value.message
        assert "unreachable" in session.unavailable and session.calls == 1


def test_a_5xx_is_passed_through_and_a_success_clears_it(meter, fake_openai):
    fake_openai.enqueue_error(503, "overloaded")
    fake_openai.enqueue_text("back")
    with meter.open(label="5", upstream=fake_openai.base_url, api_key=HOST_KEY) as session:
        c = client(meter, session.token)
        with pytest.raises(openai.InternalServerError) as failed:
            ask(c)
        assert failed.value.status_code == 503 and "overloaded" in failed.value.message
        assert session.unavailable == "the model endpoint answered HTTP 503"
        assert ask(c) == "back" and session.unavailable is None


def test_the_transcript_is_bounded(meter, fake_openai):
    fake_openai.route(lambda request: FakeOpenAI and __import__("fake_openai").text("x" * 3000))
    with meter.open(label="big", upstream=fake_openai.base_url, api_key=HOST_KEY, max_transcript=20_000) as session:
        c = client(meter, session.token)
        for i in range(12):
            ask(c, f"{i} " + "y" * 4000)
        kept = session.transcript()
        assert len(json.dumps(kept)) <= 20_000
        assert kept[-1]["note"].startswith("transcript cut:") and len(kept) > 2
        assert session.calls == 12 and session.tokens_in == 120  # counted even when not recorded
    with meter.open(label="huge", upstream=fake_openai.base_url, api_key=HOST_KEY, max_transcript=10_000) as session:
        ask(client(meter, session.token), "z" * 50_000)  # one call larger than the bound: its start is kept
        entry, = session.transcript()
        assert "[... cut, " in entry["request"] and len(json.dumps(session.transcript())) <= 10_000


def test_the_upstream_base_path_is_kept(meter, fake_openai):
    fake_openai.enqueue_text("a")
    base = fake_openai.base_url.removesuffix("/v1")
    with meter.open(label="p", upstream=f"{base}/openai/", api_key=HOST_KEY) as session:
        ask(client(meter, session.token))
    assert [r.path for r in fake_openai.requests] == ["/openai/chat/completions"]
    with meter.open(label="q", upstream=f"{base}/api?version=2", api_key=HOST_KEY) as session:
        with pytest.raises(openai.NotFoundError) as missed:  # the fake routes no query: it says the path
            ask(client(meter, session.token))
        assert "no route /api/chat/completions?version=2" in missed.value.message
    with pytest.raises(GitswarmError, match="not an http"):
        meter.open(label="x", upstream="file:///etc/passwd", api_key=HOST_KEY)


def test_models_are_listed_through_the_meter(meter, fake_openai):
    with meter.open(label="l", upstream=fake_openai.base_url, api_key=HOST_KEY) as session:
        assert [m.id for m in client(meter, session.token).models.list()] == ["fake-model"]


def test_usage_of_each_endpoint():
    assert usage_of({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4, None)
    assert usage_of({"usage": {"input_tokens": 5, "output_tokens": 6, "cost": 0.25}}) == (5, 6, 0.25)
    assert usage_of({"type": "response.completed", "response": {"usage": {"input_tokens": 1, "output_tokens": 2}}}) \
        == (1, 2, None)
    assert usage_of({"usage": None}) is None and usage_of([1]) is None
    assert usage_of({"usage": {"prompt_tokens": -5, "completion_tokens": "9"}}) == (0, 0, None)


def test_the_socket_folder_is_private_and_goes_with_the_meter():
    m = Meter().start()
    assert m.start() is m and stat.S_IMODE(m.socket_path.parent.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(m.socket_path.stat().st_mode)
    m.close()
    assert not m.socket_path.parent.exists()


# -- the relay ---------------------------------------------------------------------------------------


def relay(meter: Meter, port: int, *argv: str) -> list[str]:
    return [sys.executable, str(sandbox.RELAY), "--listen", f"127.0.0.1:{port}", "--socket",
            str(meter.socket_path), "--", *argv]


CALL = ("import json, os, sys, urllib.request as u; r = u.Request(os.environ['BASE'] + '/chat/completions', "
        "data=json.dumps({'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]}).encode(), "
        "headers={'Authorization': 'Bearer ' + os.environ['TOKEN'], 'Content-Type': 'application/json'}); "
        "print(json.load(u.urlopen(r, timeout=60))['choices'][0]['message']['content'])")


def test_the_relay_passes_connections_and_the_exit_status(meter, fake_openai, tmp_path):
    fake_openai.enqueue_text("through the relay")
    port = free_port()
    with meter.open(label="r", upstream=fake_openai.base_url, api_key=HOST_KEY) as session:
        env = {**os.environ, "BASE": f"http://127.0.0.1:{port}/v1", "TOKEN": session.token}
        ran = subprocess.run(relay(meter, port, sys.executable, "-c", CALL + "; sys.exit(7)"), env=env,
                             capture_output=True, text=True, timeout=120)
        assert (ran.returncode, ran.stdout.strip()) == (7, "through the relay"), ran.stderr
        assert session.tokens_in == 10
    killed = subprocess.run(relay(meter, free_port(), "/bin/sh", "-c", "kill -TERM $$"), timeout=60)
    assert killed.returncode == 128 + signal.SIGTERM


# -- the sandbox's network modes ---------------------------------------------------------------------


@pytest.fixture
def listener():
    """A TCP server on the host's loopback that a sandboxed agent must not reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def reach(port: int) -> str:
    return (f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)\" "
            f"2>/dev/null && echo reached-{port} || echo refused-{port}")


OPENAI_CALL = ("import openai, os; c = openai.OpenAI(base_url=os.environ['BASE'], api_key=os.environ['TOKEN'], "
               "max_retries=0); print(c.chat.completions.create(model='m', messages=[{'role': 'user', "
               "'content': 'hi'}]).choices[0].message.content)")


@needs_bwrap
def test_in_the_sandbox_the_model_is_all_there_is(meter, fake_openai, listener, tmp_path):
    fake_openai.enqueue_text("from inside")
    work, results = tmp_path / "work", tmp_path / "run"
    work.mkdir()
    results.mkdir()
    with meter.open(label="box", upstream=fake_openai.base_url, api_key=HOST_KEY) as session:
        script = work / "agent.py"
        script.write_text(OPENAI_CALL)
        command = (f"{sys.executable} agent.py > {results}/result.txt; {reach(listener)}; "
                   f"{reach(fake_openai.base_url.split(':')[2].split('/')[0])}; exit 3")
        env = {**sandbox.agent_env(), "BASE": meter.base_url, "TOKEN": session.token}
        argv = sandbox.wrap(["/bin/sh", "-c", command], work, writable=[results], network="model",
                            meter_socket=meter.socket_path, meter_port=meter.port)
        ran = run_killable(argv, work, env, 120)
        assert ran.code == 3, ran.stderr  # the command's exit status, through the relay and bwrap
        assert (results / "result.txt").read_text().strip() == "from inside"
        assert ran.stdout.split()[0].startswith("refused-") and ran.stdout.split()[1].startswith("refused-")
        assert session.calls == 1 and HOST_KEY not in ran.stdout + ran.stderr
        # outside the sandbox the same probes reach both: they can fail
        assert "refused" not in subprocess.run(["/bin/sh", "-c", f"{reach(listener)}"], capture_output=True,
                                               text=True).stdout


@needs_bwrap
def test_network_off_reaches_not_even_the_meter(meter, tmp_path):
    argv = sandbox.wrap(["/bin/sh", "-c", reach(meter.port)], tmp_path)
    assert run_killable(argv, tmp_path, sandbox.agent_env(), 60).stdout == f"refused-{meter.port}"


@needs_bwrap
def test_network_on_only_where_the_host_allows_it(tmp_path, listener, monkeypatch):
    monkeypatch.delenv("GITSWARM_AGENT_NETWORK", raising=False)
    assert not sandbox.network_allowed()
    with pytest.raises(GitswarmError) as refused:
        sandbox.wrap(["true"], tmp_path, network="on")
    assert "GITSWARM_AGENT_NETWORK=on" in refused.value.hint
    with pytest.raises(GitswarmError, match="network 'wide'"):
        sandbox.wrap(["true"], tmp_path, network="wide")
    with pytest.raises(GitswarmError, match="meter"):
        sandbox.wrap(["true"], tmp_path, network="model")
    monkeypatch.setenv("GITSWARM_AGENT_NETWORK", "on")
    argv = sandbox.wrap(["/bin/sh", "-c", reach(listener)], tmp_path, network="on")
    assert "--unshare-net" not in argv
    assert run_killable(argv, tmp_path, sandbox.agent_env(), 60).stdout == f"reached-{listener}"


def test_without_the_sandbox_every_mode_is_the_command_itself(tmp_path, monkeypatch):
    """Unsandboxed, the command runs as it is, under the reaper only (gitswarm/reaper.py)."""
    monkeypatch.setenv("GITSWARM_SANDBOX", "off")
    monkeypatch.setenv("GITSWARM_AGENT_NETWORK", "on")
    for network in ("off", "model", "on"):
        argv = sandbox.wrap(["x", "y"], tmp_path, network=network, meter_socket=tmp_path / "s", meter_port=1)
        assert argv[-3:] == ["--", "x", "y"] and argv[-4].endswith("reaper.py")


@needs_bwrap
def test_a_killed_sandbox_leaves_no_relay_behind(meter, tmp_path):
    tag = f"sleep 777.{os.getpid()}"
    argv = sandbox.wrap(["/bin/sh", "-c", f"{tag}; true"], tmp_path, network="model",
                        meter_socket=meter.socket_path, meter_port=meter.port)
    relay_tag = f"--listen 127.0.0.1:{meter.port}"
    ran = run_killable(argv, tmp_path, sandbox.agent_env(), 1.5, grace=1.0)
    assert ran.ended == "time"
    for pattern in (tag, relay_tag):
        assert subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True).returncode == 1, pattern


# -- the agent's program, wherever it is installed ---------------------------------------------------


def program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho ran\n")
    path.chmod(0o755)
    return path


def test_executable_paths_name_the_venv_or_the_folder(tmp_path):
    venv = tmp_path / "tools" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    program(venv / "bin" / "mini")
    home = Path.home()
    local = program(home / ".local" / "bin" / "aider")
    loose = program(home / "mytool")
    path = f"{venv / 'bin'}:{local.parent}:{home}:/usr/bin"
    base = [] if Path(sys.base_prefix).resolve().is_relative_to("/usr") else [Path(sys.base_prefix).resolve()]
    assert sandbox.executable_paths("env FOO=1 -u BAR mini --yolo", path) == [venv, *base]  # and its base Python
    assert sandbox.executable_paths("aider --model x", path) == [local.parent]
    assert sandbox.executable_paths("'mytool' a b", path) == [loose]  # the file: never the home folder
    assert sandbox.executable_paths("sh -c 'mini'", path) == []  # /usr/bin/sh: shown anyway
    assert sandbox.executable_paths("nonexistent-agent", path) == [] == sandbox.executable_paths("'unclosed", path)
    link = home / "bin" / "mini"
    link.parent.mkdir()
    link.symlink_to(venv / "bin" / "mini")
    assert sandbox.executable_paths("mini", str(link.parent)) == [link.parent, venv, *base]


@needs_bwrap
def test_a_program_in_a_venv_under_tmp_runs_in_the_sandbox(tmp_path):
    venv = Path("/tmp") / f"gitswarm-agent-venv-{tmp_path.name}"
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        program(venv / "bin" / "agent")
        work = tmp_path / "work"
        work.mkdir()
        env = {**sandbox.agent_env(), "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
        argv = sandbox.wrap(["/bin/sh", "-c", "agent"], work, readable=sandbox.executable_paths("agent", env["PATH"]))
        assert run_killable(argv, work, env, 60).stdout == "ran"
        bare = sandbox.wrap(["/bin/sh", "-c", "agent"], work)  # the private /tmp hides it otherwise
        assert run_killable(bare, work, env, 60).code == 127
    finally:
        shutil.rmtree(venv, ignore_errors=True)
