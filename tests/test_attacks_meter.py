"""Attacks on the metering proxy from the agent's side: the agent holds one session's token and
speaks raw HTTP to the meter. Real Meter, real loopback sockets, tests/fake_openai.py upstream."""

from __future__ import annotations

import json
import socket
import threading

import openai
import pytest

from gitswarm.meter import Meter
from gitswarm.meterhttp import MAX_BODY

from fake_openai import fake_openai  # noqa: F401

HOST_KEY = "sk-host-real-key-never-shown"
SECRET = "the other run's secret plan"


@pytest.fixture
def meter():
    with Meter() as m:
        yield m


def raw(meter: Meter, request: bytes, *, read: bool = True) -> tuple[int, bytes]:
    """Send bytes as they are; the status and the whole answer (the meter closes after errors)."""
    with socket.create_connection(("127.0.0.1", meter.port), timeout=60) as s:
        s.sendall(request)
        if not read:
            return 0, b""
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while data := s.recv(65536):
            answer += data
    return int(answer.split(b" ", 2)[1]), answer


def post(path: str, token: str, body: bytes = b"{}", extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return (f"POST {path} {version}\r\nHost: meter\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def chat(text: str) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()


def test_one_token_reads_nothing_of_another_session(meter, fake_openai):
    fake_openai.route(lambda request: __import__("fake_openai").text(f"echo {request.last.get('content')}"))
    a = meter.open(label="a", upstream=fake_openai.base_url, api_key=HOST_KEY)
    b = meter.open(label="b", upstream=fake_openai.base_url, api_key=HOST_KEY)
    assert raw(meter, post("/v1/chat/completions", a.token, chat(SECRET)))[0] == 200
    paths = ["/", "/v1", "/v1/", "/transcript", "/v1/transcript", f"/v1/sessions/{a.token}", "/v1/sessions",
             "/v1/usage", "/admin", "/v1/files", "/v1/models", "/v1/responses", "/v1/../transcript",
             f"/v1/chat/completions?token={a.token}", "/metrics", "/debug", "/v1/chat/completions"]
    for token in (b.token, "", a.token[:-1]):
        for path in paths:
            for method in ("GET", "POST", "DELETE"):
                request = (f"{method} {path} HTTP/1.1\r\nHost: m\r\nAuthorization: Bearer {token}\r\n"
                           f"Connection: close\r\nContent-Length: 2\r\n\r\n{{}}").encode()
                status, answer = raw(meter, request)
                for leak in (SECRET, a.token, HOST_KEY):  # a.token: where the request did not hold it
                    assert leak.encode() not in answer or leak.encode() in request, (method, path, status)
    assert SECRET not in json.dumps(b.transcript()) and SECRET in json.dumps(a.transcript())
    # b's calls were answered by the fake, never with a's data: the fake saw a's secret once, from a
    assert [r.last.get("content") for r in fake_openai.requests].count(SECRET) == 1


def test_forwarded_headers_carry_the_host_key_only(meter, fake_openai):
    fake_openai.enqueue_text("ok")
    session = meter.open(label="h", upstream=fake_openai.base_url, api_key=HOST_KEY)
    extra = ("api-key: agent-chosen-key\r\nX-Api-Key: another\r\nProxy-Authorization: Basic eA==\r\n"
             "Cookie: s=1\r\nOpenAI-Organization: org-victim\r\nX-Folded: a\r\n Authorization: Bearer folded\r\n"
             "Connection: X-Drop-Me\r\nX-Drop-Me: 1\r\nX-Good: kept\r\nHost: evil.example\r\n")
    status, answer = raw(meter, post("/v1/chat/completions", session.token, chat("hi"), extra))
    assert status == 200, answer
    seen, = fake_openai.requests
    names = {name.lower(): value for name, value in seen.headers.items()}
    assert names["authorization"] == f"Bearer {HOST_KEY}"
    for gone in ("api-key", "x-api-key", "proxy-authorization", "cookie", "openai-organization", "x-folded",
                 "x-drop-me"):
        assert gone not in names, gone
    assert names["x-good"] == "kept" and names["host"] == fake_openai.base_url.split("/")[2]
    assert session.token not in json.dumps(seen.headers) and "folded" not in json.dumps(seen.headers)


def test_a_smuggled_or_chunked_body_is_refused(meter, fake_openai):
    session = meter.open(label="s", upstream=fake_openai.base_url, api_key=HOST_KEY)
    body = b"5\r\nhello\r\n0\r\n\r\nPOST /v1/chat/completions HTTP/1.1\r\n"
    status, answer = raw(meter, post("/v1/chat/completions", session.token, body, "Transfer-Encoding: chunked\r\n"))
    assert status == 411 and fake_openai.requests == []
    assert raw(meter, post("/v1/chat/completions", session.token, b"{}", "Content-Length: 0\r\n"))[0] == 411
    assert raw(meter, post("/v1/chat/completions", session.token, b"{}").replace(b"Length: 2", b"Length: -5"))[0] == 413
    assert fake_openai.requests == []


def test_a_huge_body_is_refused_unread(meter, fake_openai):
    session = meter.open(label="big", upstream=fake_openai.base_url, api_key=HOST_KEY)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\nAuthorization: Bearer {session.token}\r\n"
            f"Content-Length: {MAX_BODY + 1}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", meter.port), timeout=60) as s:
        s.sendall(head + b"x" * 1024)  # the rest is never sent: the meter answers without waiting for it
        answer = s.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 413 ") and fake_openai.requests == [] and session.calls == 0


def test_slow_clients_do_not_block_other_sessions(meter, fake_openai):
    fake_openai.route(lambda request: __import__("fake_openai").text("served"))
    slow = meter.open(label="slow", upstream=fake_openai.base_url, api_key=HOST_KEY)
    stalled = []
    for i in range(20):  # headers that never end, and a body that never comes
        s = socket.create_connection(("127.0.0.1", meter.port), timeout=60)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\nX-Slow: " if i % 2 else
                  post("/v1/chat/completions", slow.token, b"{}")[:-2].replace(b"Length: 2", b"Length: 9999"))
        stalled.append(s)
    try:
        other = meter.open(label="fast", upstream=fake_openai.base_url, api_key=HOST_KEY)
        c = openai.OpenAI(base_url=meter.base_url, api_key=other.token, max_retries=0, timeout=60)
        for _ in range(3):
            assert c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]
                                             ).choices[0].message.content == "served"
        assert other.calls == 3 and slow.calls == 0
    finally:
        for s in stalled:
            s.close()


@pytest.mark.parametrize("path", [
    "/v1/../../x", "/v1/..", "/v1/chat/../../../admin", "/v1/%2e%2e/%2e%2e/x", "/v1/%2E%2E/x",
    "/v1/chat/completions/..", "/v1/chat%2f..%2f..%2fx", "/v1/./chat/completions", "//v1/../x",
    "/v1//chat/completions", "http://evil.example/v1/chat/completions", "/v1/chat/completions%00",
    "/v1/chat\\..\\..\\x", "/v1/files", "/v1/fine_tuning/jobs", "/x/v1/chat/completions", "/v1/%252e%252e/x",
    "/v1/chat/completions#frag", "*"])
def test_paths_never_leave_the_upstream_base(meter, fake_openai, path):
    fake_openai.route(lambda request: __import__("fake_openai").text("reached"))
    session = meter.open(label="p", upstream=fake_openai.base_url, api_key=HOST_KEY)
    status, answer = raw(meter, post(path, session.token, chat("x")))
    assert status in (400, 404), answer
    assert all(r.path.startswith("/v1/") for r in fake_openai.requests)
    assert fake_openai.requests == [] and session.calls == 0


def test_the_right_path_reaches_the_base_path(meter, fake_openai):
    fake_openai.route(lambda request: __import__("fake_openai").text("reached"))
    session = meter.open(label="p", upstream=fake_openai.base_url.removesuffix("/v1") + "/prefix/v1",
                         api_key=HOST_KEY)
    assert raw(meter, post("/v1/chat/completions/", session.token, chat("x")))[0] == 200
    assert raw(meter, post("//v1/chat/completions", session.token, chat("x")))[0] == 200  # http.server: one /
    assert [r.path for r in fake_openai.requests] == ["/prefix/v1/chat/completions"] * 2


def test_the_unix_socket_serves_the_same_checks(meter, fake_openai):
    fake_openai.enqueue_text("by socket")
    session = meter.open(label="u", upstream=fake_openai.base_url, api_key=HOST_KEY)
    for token, expected in (("wrong", b" 401 "), (session.token, b" 200 ")):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(60)
            s.connect(str(meter.socket_path))
            s.sendall(post("/v1/chat/completions", token, chat("x")))
            assert expected in s.makefile("rb").readline()
    assert session.calls == 1


def test_a_streamed_call_is_counted_when_the_agent_hangs_up(meter, fake_openai):
    fake_openai.enqueue_text("a long answer " * 50, usage=(30, 20))
    session = meter.open(label="hang", upstream=fake_openai.base_url, api_key=HOST_KEY)
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}).encode()
    done = threading.Event()
    with socket.create_connection(("127.0.0.1", meter.port), timeout=60) as s:
        s.sendall(post("/v1/chat/completions", session.token, body))
        assert s.recv(20).startswith(b"HTTP/1.1 200")
    for _ in range(600):  # the meter reads on to the end after the agent left
        if session.calls:
            break
        done.wait(0.05)
    assert (session.calls, session.tokens_in, session.tokens_out) == (1, 30, 20)
